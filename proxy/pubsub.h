/* pubsub.h: SUBSCRIBE and friends through a node (pubsub.c). Internal to proxy/.
 *
 * A subscribed client gets a connection of its own to the local Redis (the shared apply link
 * cannot be put in subscribe mode); its (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE and PING go there and
 * every reply and message comes back to the client in the order Redis sends them. PUBLISH goes
 * through the log, so every node's Redis publishes it to its own subscribers. The client leaves
 * subscribe mode when Redis reports no subscription left. */
#ifndef REDRAFT_PUBSUB_H
#define REDRAFT_PUBSUB_H

#define PX_SUB_INBUF_MAX (64 * 1024 * 1024) /* unparsed bytes from Redis on one sub link */

struct px_client;
struct px_req;

/* Forwards r (a pub/sub command) to the client's subscriber link, opening it if needed.
 * Returns 0 (r is done; its replies come through the link) or -1 with the error in r. */
int px_pubsub_forward(struct px_client *c, struct px_req *r);
/* Whether a command may be run by a client in subscribe mode. */
int px_pubsub_allowed(const char *name);
/* Closes the client's subscriber link (client closed, or RESET). */
void px_pubsub_close(struct px_client *c);

#endif
