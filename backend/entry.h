/* entry.h: the log entry that carries client commands through the Raft log.
 *
 * One entry = one unit applied atomically on every node: a single write command, or (later) a
 * whole MULTI/EXEC transaction. The encoding is versioned binary, every number a LEB128 varint:
 *
 *   u8 version (1) | flags | origin node id | request id | db | time_ms | ncmds |
 *   ncmds x ( argc | argc x ( len | bytes ) )
 *
 * origin + request id let the node where the request came in find its waiting client when it
 * applies the entry; time_ms is the proposer's clock, carried so that time-dependent commands can
 * be made deterministic before they are proposed. Decoding validates every count and length
 * against the bytes actually present and against named limits: bytes from the disk or the
 * network are never trusted. Decoded arguments point into the entry's bytes (no copies): they are
 * valid as long as those bytes are.
 */
#ifndef REDRAFT_ENTRY_H
#define REDRAFT_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define BE_ENTRY_VERSION  1
#define BE_ENTRY_CMDS_MAX (1u << 20) /* commands in one entry (a transaction) */
#define BE_ENTRY_ARGC_MAX (1u << 24) /* arguments of one command */

enum { BE_ENTRY_F_MULTI = 1 }; /* the commands came from MULTI/EXEC: reply is one array */

struct be_entry_hdr {
    uint32_t flags;
    uint64_t origin;
    uint64_t reqid;
    uint64_t db;
    uint64_t time_ms;
    uint32_t ncmds;
};

/* A command as a borrowed argument vector. */
struct be_cmd {
    int argc;
    const char **argv;
    const size_t *argvlen;
};

/* Appends the header; then call be_entry_put_cmd ncmds times. Returns 0 or -1 (no memory). */
int be_entry_put_hdr(struct rd_buf *b, const struct be_entry_hdr *h);
int be_entry_put_cmd(struct rd_buf *b, int argc, const char *const *argv, const size_t *argvlen);

/* Reading: a cursor over one entry's bytes. Scratch arrays for argv are owned by the reader and
 * reused from command to command: a be_cmd is valid until the next be_entry_next or free. */
struct be_entry_reader {
    const uint8_t *p;
    size_t len, off;
    uint32_t left; /* commands not yet read */
    const char **argv;
    size_t *argvlen;
    size_t argcap;
};

/* Returns 0 or -1 (malformed). On success h is filled and r is positioned at the first command.
 * The reader must be zeroed before its first use ({0}); it may then be reopened on entry after
 * entry, reusing its scratch, and is released once with be_entry_reader_free. */
int be_entry_open(struct be_entry_reader *r, const void *data, size_t len, struct be_entry_hdr *h);
/* Returns 1 with *cmd set, 0 at the end (all commands read, no trailing bytes), -1 malformed. */
int be_entry_next(struct be_entry_reader *r, struct be_cmd *cmd);
void be_entry_reader_free(struct be_entry_reader *r);

/* Validates a whole entry (header and every command) with r's scratch, keeping nothing: the
 * reader must be opened again to read the entry. 0 or -1. */
int be_entry_check(struct be_entry_reader *r, const void *data, size_t len);
/* The same with a reader of its own. */
int be_entry_validate(const void *data, size_t len);

/* The watch guard: what EXEC of a client that WATCHed keys puts in front of its entry when it
 * proposes it (raftlog/node.h, rn_propose's guard_len). The leader reads it just before it
 * appends the entry, decides (proxy/watch.c) and appends only the entry behind it, so the log
 * holds exactly the entry a plain MULTI/EXEC makes: a node of an older version applies it the
 * same way, and nothing but the leader at that moment ever reads the guard.
 *
 *   u8 version (1) | watch index | nkeys | nkeys x ( db | len | bytes )
 *
 * The watch index is the applied index the client's reads were sure to see at its first WATCH:
 * any entry after it that may write a listed (db, key) aborts the EXEC. Decoding validates
 * every count and length against the bytes present; keys point into the guard's bytes. */
#define BE_WATCH_VERSION  1
#define BE_WATCH_KEYS_MAX (1u << 20) /* keys in one guard */

struct be_watch_key {
    uint64_t db;
    const char *key;
    size_t len;
};

int be_watch_put_hdr(struct rd_buf *b, uint64_t index, uint32_t nkeys);
int be_watch_put_key(struct rd_buf *b, uint64_t db, const void *key, size_t len);

struct be_watch_reader {
    const uint8_t *p;
    size_t len, off;
    uint32_t left; /* keys not yet read */
};

/* 0 or -1 (malformed); r is positioned at the first key. */
int be_watch_open(struct be_watch_reader *r, const void *data, size_t len, uint64_t *index,
                  uint32_t *nkeys);
/* Returns 1 with *k set, 0 at the end (every key read, no trailing bytes), -1 malformed. */
int be_watch_next(struct be_watch_reader *r, struct be_watch_key *k);

#endif
