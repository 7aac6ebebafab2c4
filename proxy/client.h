/* client.h: the proxy's internal structures, shared by server.c (sessions, I/O, routing) and
 * local.c (commands the proxy answers itself). Nothing outside proxy/ includes this.
 *
 * Ownership: the server owns every client (list `clients`); a client owns its queued requests.
 * A request that has been dispatched (a write proposed, a read sent) is also registered in the
 * server's `inflight` map under its id; completions look it up there and never hold pointers.
 * A closed client stays allocated, with its socket closed, until its last in-flight request
 * completes (`inflight` count), then it is freed.
 */
#ifndef REDRAFT_CLIENT_H
#define REDRAFT_CLIENT_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/map.h"
#include "proxy/cmdtable.h"
#include "proxy/config.h"
#include "proxy/resp.h"
#include "proxy/rewrite.h"

#define PX_READ_CHUNK      (16 * 1024)
#define PX_PIPELINE_MAX    1024 /* queued requests per client before reading pauses */
#define PX_CLIENT_NAME_MAX 1024

enum px_req_state { REQ_NEW = 0, REQ_WAIT_INDEX, REQ_INFLIGHT, REQ_DONE };

struct px_client;

struct px_req {
    uint64_t id;
    struct px_client *c;
    struct px_req *next;  /* in the client's queue */
    struct px_req *wnext; /* in the server's queue of reads waiting for an index */
    struct px_cmd cmd;
    const struct px_cmddef *def;
    int db;
    enum px_req_state state;
    uint64_t need_index;
    struct rd_buf reply;
};

struct px_server;

struct px_client {
    uint64_t id;
    int fd;
    struct px_server *s;
    ev_io rio, wio;
    struct rd_buf in, out;
    struct px_parser parser;
    struct px_req *head, *tail; /* every request whose reply is not yet in `out` */
    struct px_req *next_dispatch;
    size_t nreqs;
    int db;
    int authed;
    char *name;
    char addr[64];
    char laddr[64];
    double ctime;
    unsigned closed : 1;
    unsigned close_after_reply : 1;
    unsigned pending_write : 1;
    unsigned reading_paused : 1;
    unsigned writing : 1;
    size_t inflight;           /* requests registered in the server's map */
    size_t writes_pending;     /* proposed, not yet answered */
    size_t reads_waiting;      /* waiting for the read index, not yet sent */
    struct px_client *pw_next; /* in the server's list of clients with output to write */
    struct px_client *prev, *next;
};

struct rn_node;
struct be_link;
struct be_apply;

struct px_server {
    struct ev_loop *loop;
    const struct px_config *cfg;
    struct rn_node *node;
    struct be_link *link;
    struct be_apply *apply;
    struct px_cmdtable *table;
    int listen_fd;
    ev_io lio;
    struct px_client *clients;
    size_t nclients;
    uint64_t next_client_id;
    uint64_t boot;
    uint64_t next_seq;
    struct rd_map inflight;               /* request id -> struct px_req */
    struct px_req *wait_head, *wait_tail; /* reads waiting for their index */
    struct px_client *pw_head;            /* clients with output to write */
    struct rd_buf scratch;
    struct px_rewrite rewrite;
    int backend_ready;
    int hidden_db;
    char backend_version[32];
    char backend_err[256]; /* non-empty: data commands are refused with this */
    uint64_t last_applied; /* highest applied index Redis confirmed */
    char run_id[41];
    /* stats */
    uint64_t total_commands, total_writes, total_reads, total_conns, rejected_conns;
};

/* Local commands (local.c). Each writes the reply into r->reply. */
void px_local_exec(struct px_client *c, struct px_req *r);

/* Shared helpers (server.c). */
void px_reply_err(struct px_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void px_client_close(struct px_client *c, const char *why);

#endif
