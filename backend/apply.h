/* apply.h: committed log entries -> the local Redis, in pipelined MULTI/EXEC batches.
 *
 * A batch is: MULTI, then for each entry SELECT when the db changes and its commands (runs of
 * plain `SET k v` grouped into one MSET; runs of DEL from entries whose replies nobody waits for
 * grouped into one DEL), then SELECT <hidden db>, SET <applied-index key> <last index>, EXEC.
 * The applied index lives inside the same transaction as the batch it closes, which makes
 * applying exactly-once across crashes of either process: on (re)connect the link reads the key
 * back and be_apply_start resumes from there.
 *
 * One batch is in flight at a time. With two, a batch refused at queue time (EXECABORT, e.g. OOM
 * or MISCONF) could be followed by the next one succeeding, which would apply entries out of order.
 * Batches are still large: each carries every entry committed while the previous one ran.
 *
 * Errors at queue time are of two kinds. Transient ones (OOM, MISCONF, LOADING, BUSY, ...) stop
 * applying and retry after a pause: an entry is never skipped. Deterministic ones (an unknown
 * command or wrong arity, which the proxy's checks should already have caught) make that entry's
 * reply the error and apply it as a no-op, which every replica does alike.
 *
 * Entry bytes come from the owner through fetch (malloc'd; apply frees them); an empty entry
 * is one with nothing for Redis (a leader's no-op, a membership change) and only moves the
 * applied index. Replies for entries
 * whose origin is this node go back through reply() as RESP bytes, by request id.
 */
#ifndef REDRAFT_APPLY_H
#define REDRAFT_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct be_link;
struct redisReply;
struct ev_loop;

struct be_apply_cbs {
    /* The committed entry at index: *data malloc'd, owned by apply from then on. 0 or -1. */
    int (*fetch)(void *ctx, uint64_t index, void **data, size_t *len);
    /* The reply (RESP bytes, borrowed for the call) to request reqid that came in on this node. */
    void (*reply)(void *ctx, uint64_t reqid, const char *resp, size_t len);
    /* The local Redis has applied every entry through index. */
    void (*applied)(void *ctx, uint64_t index);
    /* While watching (be_apply_set_watch), before applied(): every command of the batch's
     * entries, in log order, with the db it ran in (SELECT inside a transaction followed) and
     * whether its reply was a null or an error. argc 0: an entry that could not be read back
     * (assume it touched anything). Arguments are borrowed for the call. */
    void (*command)(void *ctx, uint64_t db, int argc, const char *const *argv,
                    const size_t *argvlen, int null_or_error);
};

struct be_apply;

struct be_apply *be_apply_new(struct ev_loop *loop, struct be_link *link, uint64_t node_id,
                              int batch_max, void *ctx, const struct be_apply_cbs *cbs);
void be_apply_free(struct be_apply *ap);

/* The link is ready and Redis says it has applied through `applied`: resume after it. */
void be_apply_start(struct be_apply *ap, uint64_t applied);
/* The link went down: forget what is in flight (it is re-sent after be_apply_start). */
void be_apply_stop(struct be_apply *ap);
/* Entries through commit may be applied. */
void be_apply_commit(struct be_apply *ap, uint64_t commit);

/* Stops sending new batches but lets the one in flight finish (be_apply_idle says when);
 * be_apply_stop and be_apply_start follow. */
void be_apply_pause(struct be_apply *ap);
int be_apply_idle(const struct be_apply *ap); /* no batch in flight */

/* Turns the command callback on or off. Off (the usual case) costs nothing; on, each batch's
 * entries are read back once more after its EXEC (the proxy has clients blocked on keys). */
void be_apply_set_watch(struct be_apply *ap, int on);

/* The script registry (backend/script.h): the apply path keeps it; the read path looks up. */
struct be_scripts *be_apply_scripts(struct be_apply *ap);

uint64_t be_apply_applied(const struct be_apply *ap); /* confirmed by Redis */
uint64_t be_apply_sent(const struct be_apply *ap);    /* written to the link */
int be_apply_running(const struct be_apply *ap);

/* Encodes a hiredis reply as RESP2 bytes. 0 or -1 (no memory). A nil is "$-1", or "*-1" when it
 * came from a reader marked by be_reply_mark_nil_arrays (link.h). */
int be_reply_encode(const struct redisReply *r, struct rd_buf *out);

#endif
