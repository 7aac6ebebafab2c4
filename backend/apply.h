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

#include "backend/reader.h"
#include "common/buf.h"

struct be_link;
struct redisReply;
struct ev_loop;

/* A kill decided through the log: the entry `REDRAFT.KILL SCRIPT|FUNCTION <index>` (one
 * command), proposed by the node whose client sent SCRIPT KILL or FUNCTION KILL while the
 * script of entry <index> ran on its Redis. It is never sent to Redis. Each node, while its
 * Redis says it is busy (ctl.h), reads entries as they commit; finding the kill of the script
 * in flight, it asks the owner to send the kill (cbs.kill) and, when the answer comes
 * (be_apply_kill_outcome), gives it to the kill's client when the kill entry is applied. A kill
 * of an entry not yet run here makes that entry a no-op (its reply Redis's "Script killed by
 * user" text), so the killed entry does nothing on any replica. A script entry always ends its
 * batch, so the one in flight is known exactly. */
#define BE_KILL_CMD "redraft.kill"
/* Its kinds: SCRIPT KILL, FUNCTION KILL, and SHUTDOWN NOSAVE (for a script that wrote, which
 * Redis cannot kill: every node's Redis exits, its supervisor starts it again, and redraft
 * refills it from the log without the killed entry). */
enum { BE_KILL_SCRIPT = 0, BE_KILL_FUNCTION = 1, BE_KILL_SHUTDOWN = 2, BE_KILL_ENTRY = 3 };
/* BE_KILL_ENTRY (RAFT.SKIP-ENTRY): the entry becomes a no-op everywhere it has not run yet;
 * a node stopped by it as a poison entry (be_apply_poisoned) goes on. */

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
    /* Send the kill of kind (BE_KILL_*) to the local Redis for the kill entry at kill_index;
     * answer with be_apply_kill_outcome. 0, or -1 when it cannot be sent. */
    int (*kill)(void *ctx, int kind, uint64_t kill_index);
    /* A batch that runs a script was just sent (ctl.h: be_ctl_poke). */
    void (*script_sent)(void *ctx);
    /* 1 when a script the owner sent on the link (EVAL_RO, ...) before link command number
     * seq (link.h: be_link_seq) has not been answered yet: that one runs first. */
    int (*script_ahead)(void *ctx, uint64_t seq);
};

struct be_apply;

struct be_apply *be_apply_new(struct ev_loop *loop, struct be_link *link, uint64_t node_id,
                              int batch_max, void *ctx, const struct be_apply_cbs *cbs);
void be_apply_free(struct be_apply *ap);

/* The link is ready and Redis says it has applied through `applied`: resume after it. */
void be_apply_start(struct be_apply *ap, uint64_t applied);
/* The link went down: forget what is in flight (it is re-sent after be_apply_start). */
void be_apply_stop(struct be_apply *ap);
/* The same, when the link to Redis was lost (why: what it said): a batch in flight counts
 * towards a poison entry. After a lost batch its entries go one per batch; an entry lost
 * with the link 3 times in a row stops applying (be_apply_poisoned) until a RAFT.SKIP-ENTRY of
 * it commits or redraft restarts. */
void be_apply_link_down(struct be_apply *ap, const char *why);
/* The poison entry that stopped applying (0: none), how many tries, what the link said. */
uint64_t be_apply_poisoned(const struct be_apply *ap, int *tries, const char **why);
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

/* The local Redis says a script runs past its threshold (1), or no longer (0). */
void be_apply_set_busy(struct be_apply *ap, int busy);
/* Redis's answer to the kill asked for kill_index (NULL: none came). */
void be_apply_kill_outcome(struct be_apply *ap, uint64_t kill_index, const char *reply,
                           int is_error);
/* The index of the script entry in the batch in flight, or 0 (also while a script of the owner's
 * sent before that batch runs: cbs.script_ahead). */
uint64_t be_apply_running_script(const struct be_apply *ap);
/* A script of the owner's was answered: a kill that waited for it may go now. */
void be_apply_recheck_kills(struct be_apply *ap);

/* be_reply_encode, which writes a reply back as RESP, is in reader.h. */

#endif
