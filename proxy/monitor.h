/* monitor.h: MONITOR (see monitor.c). */
#ifndef REDRAFT_MONITOR_H
#define REDRAFT_MONITOR_H

struct px_client;
struct px_req;

/* c becomes (stops being) a monitoring client. */
void px_monitor_start(struct px_client *c);
void px_monitor_stop(struct px_client *c);
/* Shows r, just dispatched for client c, to every monitoring client of this node. */
void px_monitor_feed(struct px_client *c, const struct px_req *r);

#endif
