/* monitor.h: MONITOR (see monitor.c). */
#ifndef REDRAFT_MONITOR_H
#define REDRAFT_MONITOR_H

struct px_client;
struct px_req;
struct px_cmd;

/* c becomes (stops being) a monitoring client. */
void px_monitor_start(struct px_client *c);
void px_monitor_stop(struct px_client *c);
/* Shows r, just dispatched for client c, to every monitoring client of this node. */
void px_monitor_feed(struct px_client *c, const struct px_req *r);
/* Whether argument i of cmd is a password Redis shows as "(redacted)" (AUTH, HELLO ... AUTH,
 * CONFIG SET requirepass/masterauth): MONITOR and SLOWLOG hide it. */
int px_arg_redacted(const struct px_cmd *cmd, int i);

#endif
