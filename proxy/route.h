/* route.h: reads and writes after dispatch (route.c), and the events that move them on.
 * Internal to proxy/: server.c dispatches into it; main wires node and backend events to the
 * px_server_on_* functions declared in server.h. */
#ifndef REDRAFT_ROUTE_H
#define REDRAFT_ROUTE_H

#include <stdint.h>

struct px_server;
struct px_req;

void px_route_init(struct px_server *s);
void px_route_stop(struct px_server *s);
void px_route_read(struct px_server *s, struct px_req *r);
/* 0, or -1 when r was not proposed and has its final reply instead (no memory, or the log
 * refused it at once): r is done but not completed, the caller calls px_req_done or lets its
 * dispatcher flush it. */
int px_route_write(struct px_server *s, struct px_req *r);
/* The same, proposing the one command argv instead of the request's own (no rewrite). */
int px_route_write_argv(struct px_server *s, struct px_req *r, int argc, const char **argv,
                        const size_t *argvlen);
/* Sends r (a read, dispatched before) to the local Redis again: a parked XREAD's retry. */
void px_route_read_again(struct px_server *s, struct px_req *r);
void px_process_waiting_reads(struct px_server *s);
void px_kick_leader_waiters(struct px_server *s);
void px_on_applied_check(struct px_server *s);

#endif
