/* multi.h: MULTI/EXEC/DISCARD in the proxy (multi.c). Internal to proxy/. */
#ifndef REDRAFT_MULTI_H
#define REDRAFT_MULTI_H

#define PX_MULTI_CMDS_MAX  (1u << 20)           /* commands in one transaction */
#define PX_MULTI_BYTES_MAX (512u * 1024 * 1024) /* argument bytes in one transaction */

enum { PX_MULTI_NONE = 0, PX_MULTI_DONE, PX_MULTI_EXEC };

struct px_client;
struct px_req;

/* Called for every looked-up command. PX_MULTI_NONE: not transaction business, route it as
 * usual. PX_MULTI_DONE: answered (queued, or an error). PX_MULTI_EXEC: r now carries the
 * transaction (r->mcmds) and must be routed as a write. */
int px_multi_dispatch(struct px_client *c, struct px_req *r);
void px_multi_free(struct px_client *c);

#endif
