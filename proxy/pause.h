/* pause.h: CLIENT PAUSE / CLIENT UNPAUSE for this node's clients (see pause.c). */
#ifndef REDRAFT_PAUSE_H
#define REDRAFT_PAUSE_H

#include <stddef.h>

struct px_server;
struct px_client;
struct px_req;

void px_pause_init(struct px_server *s);
void px_pause_stop(struct px_server *s);
/* CLIENT PAUSE ms [WRITE|ALL]: 0 (the caller answers +OK), or -1 with the error in r. */
int px_pause_cmd(struct px_client *c, struct px_req *r);
/* CLIENT UNPAUSE: every held client goes on. */
void px_pause_unpause(struct px_server *s);
/* Whether r, about to run for c, must wait for the pause to end (c is then held and is
 * dispatched again when it ends). */
int px_pause_holds(struct px_client *c, const struct px_req *r);
/* c no longer waits (it is closing). */
void px_pause_forget(struct px_client *c);
/* Clients held now (INFO blocked_clients). */
size_t px_pause_count(const struct px_server *s);

#endif
