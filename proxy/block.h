/* block.h: blocking commands (BLPOP, BLMOVE, BZPOPMIN, XREAD BLOCK, XREADGROUP BLOCK, WAIT, ...)
 * with Redis's semantics, without ever blocking the apply path (docs/blocking.md).
 *
 * A blocking pop is proposed through the log as it is. Every node applies it inside MULTI/EXEC,
 * where Redis never blocks: it pops when it can and answers its null reply otherwise, the same
 * on every replica. On a null reply the origin node does not answer: it parks the request on
 * the command's keys. When a write that may touch one of them has been applied here (any
 * node's: every node applies every entry), the request is proposed again, with a new request
 * id. At its deadline it gets the reply Redis gives at a timeout. XREAD BLOCK is a read: it is
 * sent to the local Redis without BLOCK and parked on an empty result the same way (a `$` ID
 * is resolved to the stream's last ID on the first try). WAIT is answered by the proxy from
 * the Raft log's match indexes.
 *
 * Ownership: a request's struct px_blk is the request's (freed by px_block_req_free). A parked
 * request stays in its client's queue; the server's struct px_blocks finds it by request id
 * (maps of ids, never pointers held across events). While a request is parked or being tried,
 * the client's later commands are not dispatched (client->blocked): Redis does not read a
 * blocked client's commands either, and their replies stay in order.
 *
 * Internal to proxy/: server.c and route.c call in at the points named below.
 */
#ifndef REDRAFT_BLOCK_H
#define REDRAFT_BLOCK_H

#include <stddef.h>
#include <stdint.h>

/* ---- pure helpers (no server state; unit-tested) ---- */

enum px_blk_kind {
    PX_BLK_NONE = 0,
    PX_BLK_POP,        /* BLPOP BRPOP BRPOPLPUSH BLMOVE BLMPOP BZPOPMIN BZPOPMAX BZMPOP: a write */
    PX_BLK_XREADGROUP, /* XREADGROUP ... BLOCK ms: a write */
    PX_BLK_XREAD,      /* XREAD ... BLOCK ms: a read */
    PX_BLK_WAIT,       /* WAIT numreplicas timeout: answered by the proxy */
};

/* Redis's default COUNT for a stream read served after it blocked (XREAD_BLOCKED_DEFAULT_COUNT). */
#define PX_BLK_XREAD_COUNT "1000"

struct px_blk_spec {
    enum px_blk_kind kind;
    int timeout_arg; /* argv index of the timeout */
    int unit_ms;     /* the timeout is integer milliseconds (else seconds, a float) */
    int count_given; /* XREAD/XREADGROUP: a COUNT option is present */
};

/* What kind of blocking command argv is, by the command table's name (lower case) and with its
 * arity already checked. PX_BLK_NONE when it does not block: XREAD/XREADGROUP without BLOCK, or
 * options Redis will refuse anyway (it then gives its own error). */
void px_blk_classify(const char *name, int argc, const char *const *argv, const size_t *argvlen,
                     struct px_blk_spec *out);

/* A timeout argument parsed as Redis does (getTimeoutFromObjectOrReply): unit_ms, an integer of
 * milliseconds; otherwise seconds as a float, rounded up to the millisecond. Returns 0 with *ms
 * (0: for ever), or -1 with Redis's error text (without "-") in *err. */
int px_blk_timeout_ms(const char *arg, size_t len, int unit_ms, long long *ms, const char **err);

/* 1 when resp (one RESP2 reply) is a null bulk or a null array: nothing to pop or read. */
int px_blk_is_null(const char *resp, size_t len);

/* The reply Redis gives a list, zset or stream command at its timeout (and CLIENT UNBLOCK ...
 * TIMEOUT): a null array in RESP2 for every one of them, BLMOVE and BRPOPLPUSH included
 * (replyToBlockedClientTimedOut in Redis 7.0). */
#define PX_BLK_TIMEOUT_REPLY "*-1\r\n"
#define PX_BLK_UNBLOCKED_ERR "UNBLOCKED client unblocked via CLIENT UNBLOCK"

/* The arguments of XREAD/XREADGROUP with every `BLOCK ms` option left out (drop_block) and
 * `COUNT 1000` added after the command name (add_count), as pointers into argv: out_argv and
 * out_len need argc + 2 slots. Returns the new argc. */
int px_blk_rewrite_xread(int argc, const char *const *argv, const size_t *argvlen, int drop_block,
                         int add_count, const char **out_argv, size_t *out_len);

/* ---- the proxy's side ---- */

struct px_server;
struct px_client;
struct px_req;

struct px_blocks *px_blocks_new(struct px_server *s);
void px_blocks_free(struct px_blocks *b);
/* Requests parked or waiting (WAIT): while any is, the command table is not replaced. */
size_t px_block_count(const struct px_server *s);
/* Whether r is a blocking command that was parked at some point (its waiting is not its
 * running time: commandstats and SLOWLOG leave it out, as Redis does). */
int px_block_was_parked(const struct px_req *r);

/* Dispatch of a READ or WRITE command flagged `blocking`, before its route's own checks: makes r
 * a blocking request (idempotent) and the client's blocked one. Returns 0 (go on routing it), or
 * -1 with an error in r->reply (a bad XREAD timeout, no memory). */
int px_block_prepare(struct px_server *s, struct px_req *r);
/* A blocking try came back with a null reply. Returns 1 when r was taken (parked, or answered:
 * timeout, CLIENT UNBLOCK), 0 when the caller completes r as usual (its client is gone). */
int px_block_on_null(struct px_server *s, struct px_req *r);
/* A retry (not the first try) came back with an error (err: its text, without the "-"). Redis keeps
 * a client blocked on a key whose type changed, and tells a blocked XREADGROUP that its stream or
 * group is gone in words of its own; this does the same. Returns 1 when r was taken (parked again,
 * or answered later), 0 when the caller completes r with resp. */
int px_block_on_retry_error(struct px_server *s, struct px_req *r, const char *err, size_t len);
/* A blocking pop came back with data for a client that is gone: the data is put back. */
void px_block_on_orphan(struct px_server *s, struct px_req *r, const char *resp, size_t len);
/* XREAD: sends what resolves its `$` IDs just before the read itself goes (same link). 0 or -1. */
int px_block_before_read(struct px_server *s, struct px_req *r);

/* A command of an entry this node applied (db: where it ran; argc 0: unknown, wake all;
 * null_or_error: Redis answered it with a null or an error). */
void px_block_on_applied_cmd(struct px_server *s, uint64_t db, int argc, const char *const *argv,
                             const size_t *argvlen, int null_or_error);
/* The batch those commands came in is applied: retries go now, in the order clients parked. */
void px_block_after_apply(struct px_server *s);
/* Every parked request tries again (the local Redis was reloaded or came back). */
void px_block_wake_all(struct px_server *s);
/* Periodic (housekeeping) and commit events: WAIT progress. */
void px_block_tick(struct px_server *s);
/* An admin reply that may be a WAIT query's. 1 when it was. */
int px_block_on_admin_reply(struct px_server *s, uint64_t reqid, const char *resp, size_t len);

/* The client is closing: its parked request is let go (no reply). */
void px_block_client_closed(struct px_client *c);
/* 1 while c's blocked request is parked (CLIENT LIST flags=b). */
int px_block_parked(const struct px_client *c);
void px_block_req_free(struct px_req *r);

/* Local commands: WAIT and CLIENT UNBLOCK. Return 0 when r->reply holds the answer, 1 when it
 * comes later. */
int px_block_wait_cmd(struct px_client *c, struct px_req *r);
int px_block_unblock_cmd(struct px_client *c, struct px_req *r);

#endif
