/* store.h: the durable half of the Raft log, kept in RocksDB.
 *
 * What it holds: log entries by index (each with its term, a type byte and opaque data bytes), the
 * Raft hard state (term, vote, commit), snapshot metadata (index and term of the last snapshot,
 * so the log may start after it), and a few small named metadata values (boot counter, node id).
 *
 * How writes work: every mutating call only stages its change into one pending WriteBatch; nothing
 * reaches RocksDB until rlog_flush(), which writes the whole batch at once (synced when asked).
 * The caller (raftlog/node.c) flushes once per event-loop turn, which is group commit: every
 * proposal and vote gathered in that turn costs one fsync. Reads (rlog_get, rlog_term,
 * rlog_first_index, rlog_last_index) see staged changes as if already written, so the caller never
 * needs to know whether a flush has happened.
 *
 * Ownership: a struct rlog is owned by whoever opened it and freed by rlog_close(). Data passed to
 * rlog_append is copied. Data returned by rlog_get is malloc'd and owned by the caller (free()).
 *
 * Errors: functions return 0 or a negative RLOG_E* code; rlog_errstr() names a code. A RocksDB
 * error is sticky: after it, every call returns RLOG_EIO and rlog_last_error() says what failed.
 *
 * This module knows nothing of Raft's rules, sockets or libev; it is a durable array of entries.
 */
#ifndef REDRAFT_STORE_H
#define REDRAFT_STORE_H

#include <stddef.h>
#include <stdint.h>

enum {
    RLOG_OK = 0,
    RLOG_EIO = -1,       /* RocksDB failed (sticky) */
    RLOG_ENOTFOUND = -2, /* index outside [first, last] or meta key absent */
    RLOG_EINVAL = -3,    /* caller error: non-contiguous append, bad range */
    RLOG_ECORRUPT = -4,  /* a stored record failed validation */
    RLOG_ENOMEM = -5,
};

/* Limits; a call exceeding one returns RLOG_EINVAL. Indexes run from 1 to RLOG_INDEX_MAX (so that
 * index + 1 never overflows). */
#define RLOG_META_KEY_MAX   64                   /* bytes, excluding the NUL */
#define RLOG_META_VAL_MAX   (64u * 1024)         /* bytes */
#define RLOG_ENTRY_DATA_MAX (512u * 1024 * 1024) /* bytes of one entry's data */
#define RLOG_INDEX_MAX      (UINT64_MAX - 1)

struct rlog;

struct rlog_entry {
    uint64_t index;
    uint64_t term;
    uint8_t type; /* opaque to the store; the Raft core's entry type */
    const void *data;
    size_t len;
};

struct rlog_hard_state {
    uint64_t term;
    uint64_t vote; /* 0 = none */
    uint64_t commit;
};

/* Opens (creating if missing) the store in directory `dir`. On failure returns a negative code and,
 * when errbuf is given, a sentence in it. */
int rlog_open(const char *dir, struct rlog **out, char *errbuf, size_t errlen);
/* Frees the store; anything staged and not flushed is discarded, never written. NULL is a no-op. */
void rlog_close(struct rlog *s);

/* Index of the first entry present (snapshot index + 1 when the log is empty after a snapshot;
 * 1 for a fresh store) and of the last (first - 1 when empty). */
uint64_t rlog_first_index(const struct rlog *s);
uint64_t rlog_last_index(const struct rlog *s);

/* Stages entries for append. ents[0].index must be <= last_index + 1 and >= first_index; any
 * existing entries from ents[0].index on are replaced (a conflicting suffix is dropped, Raft §5.3).
 * Indexes within ents must be consecutive. */
int rlog_append(struct rlog *s, const struct rlog_entry *ents, size_t n);

/* Reads one entry. out->data is malloc'd (caller frees), non-NULL even when out->len is 0. */
int rlog_get(struct rlog *s, uint64_t index, struct rlog_entry *out);

/* Term of the entry at index; the snapshot's term for index == snapshot index. */
int rlog_term(struct rlog *s, uint64_t index, uint64_t *term_out);

int rlog_set_hard_state(struct rlog *s, const struct rlog_hard_state *hs);
void rlog_hard_state(const struct rlog *s, struct rlog_hard_state *out);

/* Records a snapshot at (index, term) and drops every entry <= index (DeleteRange; RocksDB
 * compacts the range in the background). Entries after index are kept when they exist. */
int rlog_set_snapshot(struct rlog *s, uint64_t index, uint64_t term);
void rlog_snapshot(const struct rlog *s, uint64_t *index_out, uint64_t *term_out);
/* Records a snapshot at (index, term) that replaces the whole log: every stored entry is
 * dropped, before and after index (a follower that installed a leader's snapshot which its
 * own log contradicts). The log is then empty, first index = index + 1. */
int rlog_reset_to_snapshot(struct rlog *s, uint64_t index, uint64_t term);
/* Compacts the key range of the entries a snapshot dropped, so the disk space comes back now
 * rather than at RocksDB's next compaction of that range. Blocks while it runs; call it after
 * the flush that recorded the snapshot. */
void rlog_compact_log(struct rlog *s);

/* Small named values (keys up to 64 bytes, values up to 64 KiB). get: value malloc'd. */
int rlog_set_meta(struct rlog *s, const char *key, const void *val, size_t len);
int rlog_get_meta(struct rlog *s, const char *key, void **val_out, size_t *len_out);
int rlog_set_meta_u64(struct rlog *s, const char *key, uint64_t v);
int rlog_get_meta_u64(struct rlog *s, const char *key, uint64_t *v_out);

/* Writes everything staged since the last flush as one WriteBatch; fsync'd when sync != 0.
 * A no-op returning 0 when nothing is staged. */
int rlog_flush(struct rlog *s, int sync);
int rlog_pending(const struct rlog *s); /* 1 when something is staged and not being written */

/* The same synced write, on a thread of the store's own, so the caller's loop goes on while
 * the disk works. rlog_flush_start returns 1 when the write was started, or 0 (nothing
 * staged; or no thread could be made, and it was written here) or RLOG_EIO. While it runs,
 * reads see the staged changes as before; any call that stages or flushes first waits for it.
 * rlog_flush_busy returns 1 while it is still being written, then what the write returned: 0,
 * or RLOG_EIO (also whenever the store has failed, so a write that another call waited for
 * and found failed is never reported done); rlog_flush_wait waits for that. The notify function,
 * when set, is called on the writer thread each time a write has finished (ev_async_send, say); it
 * must not call into the store. */
int rlog_flush_start(struct rlog *s);
int rlog_flush_busy(struct rlog *s);
int rlog_flush_wait(struct rlog *s);
void rlog_set_flush_notify(struct rlog *s, void (*fn)(void *arg), void *arg);

/* Approximate bytes the log occupies on disk (for INFO and compaction thresholds). */
uint64_t rlog_disk_bytes(struct rlog *s);

const char *rlog_errstr(int code);
const char *rlog_last_error(const struct rlog *s); /* "" until a RocksDB error */

#endif
