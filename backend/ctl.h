/* ctl.h: the control connection to the local Redis, beside the apply link (link.h).
 *
 * The apply link is stuck behind whatever Redis runs for it: a script that loops runs inside
 * an apply batch, and nothing else on that connection is read until it ends. This second
 * connection is what redraft keeps talking on meanwhile:
 *   - a probe: PING every BE_CTL_PROBE_MS (one at a time). While a script has run longer than
 *     Redis's busy-reply-threshold, Redis answers it with its own `BUSY ...` error; cbs.busy
 *     reports that text, and NULL once a PING is answered again. A PING that does not come back
 *     (Redis is busy with a long command that is not a script) just waits: nothing is reported.
 *   - SCRIPT KILL / FUNCTION KILL, sent when the log says so (apply.h, be_apply_kill_*).
 * It carries nothing else: no data, no reads.
 */
#ifndef REDRAFT_CTL_H
#define REDRAFT_CTL_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct be_ctl;
struct redisReply;

#define BE_CTL_PROBE_MS      200 /* idle */
#define BE_CTL_PROBE_FAST_MS 5   /* for a while after a script was sent (be_ctl_poke) */
#define BE_CTL_PROBE_BUSY_MS 20  /* while busy: how soon the end is seen */
#define BE_CTL_FAST_FOR_MS   100

struct be_ctl_cbs {
    /* err: Redis's BUSY error text (without the leading '-'), or NULL when no longer busy. */
    void (*busy)(void *ctx, const char *err);
    /* The answer to be_ctl_call(id), borrowed for the call; NULL when the connection was lost
     * before it came. */
    void (*answer)(void *ctx, uint64_t id, const struct redisReply *reply);
};

struct be_ctl *be_ctl_new(struct ev_loop *loop, const char *addr, const char *password, void *ctx,
                          const struct be_ctl_cbs *cbs);
void be_ctl_start(struct be_ctl *c);
void be_ctl_free(struct be_ctl *c);

/* Redis's BUSY text while a script runs past its threshold, else NULL. */
const char *be_ctl_busy(const struct be_ctl *c);

/* Sends one command (SCRIPT KILL, FUNCTION KILL, FUNCTION STATS: those Redis answers while
 * busy); cbs.answer(id) follows. 0, or -1 when the connection is down (nothing is sent, no
 * callback). */
int be_ctl_call(struct be_ctl *c, int argc, const char **argv, const size_t *argvlen, uint64_t id);
/* Something came back on the apply link: whatever script ran there has ended. */
void be_ctl_not_busy(struct be_ctl *c);
/* A script was just sent to Redis (an apply batch or a read): probe often for a while, so a
 * short busy-reply-threshold is seen as soon as Redis answers BUSY. */
void be_ctl_poke(struct be_ctl *c);

#endif
