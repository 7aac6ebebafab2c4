/* snapshot.h: moving a whole dataset in and out of a stock Redis, with nothing but the
 * replication protocol every Redis speaks.
 *
 * Capture (be_capture_*): a connection of our own sends SYNC (after AUTH when a password is
 * set) and Redis answers as it would a replica: newline keep-alives while it prepares, then the
 * RDB, framed either as `$<len>\r\n<len bytes>` or, for a diskless transfer, as
 * `$EOF:<40-byte mark>\r\n<bytes><the same mark>`. The bytes are streamed to a file (never held
 * in memory), which is fsync'd before the capture reports success; the connection is closed
 * right after, before Redis starts streaming its replication feed. The RDB holds the
 * applied-index key like any other key, so the data says itself which log index it stands for.
 *
 * Install (be_feeder_*): redraft plays master for one full sync. The feeder listens on an
 * ephemeral port; the owner tells the local Redis `REPLICAOF <ip> <port>`; the feeder answers
 * the replica's handshake (PING, AUTH, REPLCONF: +PONG/+OK; PSYNC or SYNC: +FULLRESYNC and
 * `$<len>\r\n` followed by the file) and then keeps the link quiet until the owner, having seen
 * `master_link_status:up` in INFO, sends `REPLICAOF NO ONE` and frees the feeder.
 *
 * Both run on the libev loop and never block it; each reports once through its callback (ok 1,
 * or ok 0 with a sentence) and must then be freed by the owner (never from inside the callback).
 */
#ifndef REDRAFT_SNAPSHOT_H
#define REDRAFT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

#define BE_SNAP_STALL_SECONDS 60.0 /* no byte for this long: the transfer failed */

typedef void be_snap_done_fn(void *ctx, int ok, const char *why);

/* The answer to SYNC as a byte stream, parsed without I/O: fed whatever arrives, it hands the
 * RDB's bytes (and nothing else) to sink. Answers before the RDB: +OK (of AUTH, when expected),
 * bare newlines (keep-alives), then `$<len>` or `$EOF:<mark>`; an error line fails it. */
#define BE_RDB_EOF_MARK 40
#define BE_RDB_LINE_MAX 512
typedef int be_rdb_sink_fn(void *ctx, const void *p, size_t n); /* 0, or -1 to stop */
enum { BE_RDB_AUTH, BE_RDB_HEADER, BE_RDB_BODY, BE_RDB_DONE, BE_RDB_FAILED };
struct be_rdb_reader {
    int state;
    char line[BE_RDB_LINE_MAX];
    size_t linelen;
    int eof_mode;
    uint64_t want; /* $<len> framing: bytes still to come */
    uint64_t got;  /* RDB bytes handed to the sink */
    char mark[BE_RDB_EOF_MARK];
    char tail[BE_RDB_EOF_MARK]; /* EOF framing: the last bytes seen, held back from the sink */
    size_t taillen;
    be_rdb_sink_fn *sink;
    void *ctx;
    char err[BE_RDB_LINE_MAX + 64];
};
void be_rdb_reader_init(struct be_rdb_reader *r, int expect_auth, be_rdb_sink_fn *sink, void *ctx);
/* 1: the whole RDB went to the sink (bytes after it are ignored); 0: feed more; -1: failed
 * (r->err says why). */
int be_rdb_reader_feed(struct be_rdb_reader *r, const char *p, size_t n);

struct be_capture;
/* addr: "host:port" or a unix socket path (contains '/'). Writes the RDB to path (created or
 * truncated). NULL on an immediate failure (why says it). */
struct be_capture *be_capture_start(struct ev_loop *loop, const char *addr, const char *password,
                                    const char *path, be_snap_done_fn *done, void *ctx, char *why,
                                    size_t whylen);
uint64_t be_capture_bytes(const struct be_capture *c); /* RDB bytes received so far */
void be_capture_free(struct be_capture *c);            /* stops it if still running */

struct be_feeder;
/* Serves the RDB in path to the replica that connects to bind_ip:*port_out. With a token (the
 * owner set it as the local Redis's masterauth), a connection must AUTH with it before anything
 * but PING, or it is closed and the feeder waits for the next. done reports when the whole file
 * was written to the replica (ok 1) or the transfer failed. */
struct be_feeder *be_feeder_start(struct ev_loop *loop, const char *bind_ip, const char *path,
                                  const char *token, int *port_out, be_snap_done_fn *done,
                                  void *ctx, char *why, size_t whylen);
uint64_t be_feeder_sent(const struct be_feeder *f); /* bytes of the file sent so far */
void be_feeder_free(struct be_feeder *f);

/* Scans an INFO reply for "name:value\r\n"; copies value (NUL-terminated) or returns -1. */
int be_info_field(const char *info, size_t len, const char *name, char *out, size_t outlen);

#endif
