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

#include <stdint.h>

struct ev_loop;
struct be_ctl;

#define BE_CTL_PROBE_MS 200

struct be_ctl_cbs {
    /* err: Redis's BUSY error text (without the leading '-'), or NULL when no longer busy. */
    void (*busy)(void *ctx, const char *err);
    /* The answer to be_ctl_kill(id): Redis's reply as one line ("OK", "NOTBUSY ...",
     * "UNKILLABLE ...", "BUSY ..."), with is_error set for an error; NULL when the connection
     * was lost before it came. */
    void (*killed)(void *ctx, uint64_t id, const char *reply, int is_error);
};

struct be_ctl *be_ctl_new(struct ev_loop *loop, const char *addr, const char *password, void *ctx,
                          const struct be_ctl_cbs *cbs);
void be_ctl_start(struct be_ctl *c);
void be_ctl_free(struct be_ctl *c);

/* Redis's BUSY text while a script runs past its threshold, else NULL. */
const char *be_ctl_busy(const struct be_ctl *c);

/* Sends FUNCTION KILL (function != 0) or SCRIPT KILL; cbs.killed(id) follows. 0, or -1 when
 * the connection is down (nothing is sent, no callback). */
int be_ctl_kill(struct be_ctl *c, int function, uint64_t id);

#endif
