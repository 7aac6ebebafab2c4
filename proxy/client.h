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

#include "backend/script.h"
#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/map.h"
#include "proxy/cmdtable.h"
#include "proxy/config.h"
#include "proxy/resp.h"
#include "proxy/rewrite.h"
#include "proxy/slowlog.h"
#include "proxy/stats.h"

#define PX_READ_CHUNK   (16 * 1024)
#define PX_PIPELINE_MAX 1024 /* queued requests per client before reading pauses */
/* Finished requests kept for reuse, with their entry and reply buffers up to PX_REQ_BUF_KEEP
 * bytes: a loaded node takes and finishes hundreds of requests per loop turn, and allocating
 * each (and its two buffers) afresh sent glibc's malloc down its slow paths. */
#define PX_REQ_POOL_MAX    1024
#define PX_REQ_BUF_KEEP    4096
#define PX_CLIENT_NAME_MAX 1024
/* Unsent reply bytes an unauthenticated client may have (requirepass set): Redis closes such a
 * client once its replies outgrow the 16 KB reply buffer by 1 KB (checkClientOutputBufferLimits).
 */
#define PX_UNAUTH_OUTPUT_MAX (16 * 1024 + 1024)

enum px_req_state { REQ_NEW = 0, REQ_WAIT_INDEX, REQ_INFLIGHT, REQ_DONE };

struct px_client;

/* What an in-flight request waits for. */
enum px_wait {
    PX_W_NONE = 0,
    PX_W_INDEX,      /* a read: for the local Redis to be sent its read index (wait FIFO) */
    PX_W_ROUND,      /* a linearizable read: for a read-index round to start (ri queue) */
    PX_W_ROUND_SENT, /* a linearizable read: for its round's answer */
    PX_W_LEADER,     /* a write: for a leader to propose to (leader-wait queue) */
    PX_W_COMMIT,     /* a write: for its entry to be applied here (pending list) */
    PX_W_ADMIN,      /* a cluster command answered by the leader or a join (pending list) */
};

struct px_req {
    uint64_t id;
    struct px_client *c;
    struct px_req *next;          /* in the client's queue */
    struct px_req *wnext;         /* in one server queue, per `wait` */
    struct px_req *pprev, *pnext; /* in the server's pending list (writes and admin) */
    struct px_cmd cmd;
    const struct px_cmddef *def;
    int db;
    enum px_req_state state;
    enum px_wait wait;
    uint64_t need_index;
    uint64_t prop_index, prop_term; /* where the leader put the write (0: not known yet) */
    uint64_t fwd_term;              /* a forwarded write: the only term it may be proposed in */
    uint64_t round;                 /* the read-index round it is in */
    int spec;               /* a linearizable read sent ahead of its round (route.c, SPEC_*) */
    uint64_t spec_id;       /* that send's key in the inflight map */
    uint64_t spec_term;     /* the term it was sent in: only a round of this term confirms it */
    uint64_t retry_seq;     /* a parked command proposed again (block.c), until it leaves the
                             * pending list (0: not one) */
    uint64_t need_retry;    /* a read: the retries up to this one must be answered first */
    double deadline;        /* when a write's outcome becomes "unknown" */
    double leader_deadline; /* when a write without a leader gives up */
    struct rd_buf entry;    /* a write's encoded log entry, kept for re-proposing */
    struct px_cmd *mcmds;   /* EXEC: the transaction's commands (owned) */
    const struct px_cmddef **mdefs;
    size_t nm;
    int db_after;     /* EXEC: 1 + the database a queued SELECT leaves the client in (0: none) */
    size_t guard_len; /* EXEC of a watching client: the watch guard heading `entry` (watch.h) */
    int quiet;        /* CLIENT REPLY OFF/SKIP: its reply is dropped, not sent */
    int admitted;     /* passed the checks before running (for MONITOR) */
    struct be_script_swap swap; /* a script read: the sha its reply must name (read_put) */
    int queued;                 /* queued by MULTI: counted in commandstats when EXEC runs it */
    int maybe_applied;  /* a write pending when the local Redis jumped ahead (a snapshot load):
                         * it may be in that data, with no reply; never proposed again */
    double t_start;     /* when it started running (commandstats) */
    struct px_blk *blk; /* a blocking command's state (block.c; owned) */
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
    int consistency;
    int in_multi, multi_dirty; /* MULTI state (multi.c) */
    int in_pubsub;             /* subscribe mode (pubsub.c) */
    int in_monitor;            /* MONITOR mode (monitor.c) */
    int paused;                /* a command waits for CLIENT PAUSE to end (pause.c) */
    int reply_off, reply_skip; /* CLIENT REPLY OFF / SKIP (the next command's reply) */
    double atime;              /* when its last command was dispatched */
    const char *last_cmd;      /* that command's name (for CLIENT LIST) */
    struct px_sub *sub;        /* its own link to the local Redis, once it subscribed */
    struct px_cmd *mq;         /* queued commands */
    const struct px_cmddef **mq_defs;
    size_t mq_len, mq_cap, mq_bytes;
    uint64_t watch_index;     /* WATCH (watch.c): the index reads were sure to see then */
    uint32_t watch_nkeys;     /* watched keys (0: none) */
    struct rd_buf watch_keys; /* encoded (db, key) pairs (backend/entry.h, the guard's keys) */
    char *name;
    char addr[64];
    char laddr[64];
    double ctime;
    unsigned closed : 1;
    unsigned close_after_reply : 1;
    unsigned pending_write : 1;
    unsigned reading_paused : 1;
    unsigned writing : 1;
    unsigned in_ready : 1;        /* read input this turn, to be parsed before sleeping */
    struct px_client *ready_next; /* in the server's ready list */
    size_t inflight;              /* requests registered in the server's map */
    size_t writes_pending;        /* proposed, not yet answered */
    size_t reads_waiting;         /* waiting for the read index, not yet sent */
    struct px_req *blocked;       /* a blocking command not yet answered: nothing after it goes */
    uint64_t last_write_index;    /* the log index of its last write (WAIT) */
    struct px_client *pw_next;    /* in the server's list of clients with output to write */
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
    struct rd_map inflight; /* request id -> struct px_req */
    /* Scripts sent as reads (EVAL_RO, ...) not yet answered: request id -> the link's number of
     * the command (be_link_seq), kept even when the client is gone (kill.c). */
    struct rd_map script_reads;
    struct px_req *wait_head, *wait_tail; /* reads waiting for their index */
    struct px_req *ri_head, *ri_tail;     /* linearizable reads waiting for a round */
    uint64_t ri_round;                    /* the round in flight (0: none) */
    double ri_started;
    uint64_t ri_term;                     /* the round's term if this node led it, else 0 */
    size_t ri_round_count;                /* reads in the round in flight */
    struct px_req *lw_head, *lw_tail;     /* writes waiting for a leader */
    struct px_req *pend_head, *pend_tail; /* proposed writes and cluster commands in flight */
    uint64_t min_prop_index;              /* lowest prop_index in the pending list (hint) */
    uint64_t unacked_checked_term;        /* newest term check_unacked_forwards has acted on */
    ev_timer housekeeping;
    struct px_join *join; /* a RAFT.CLUSTER JOIN in progress */
    char bus_announce[256];
    struct px_client *pw_head; /* clients with output to write */
    struct rd_buf scratch;
    struct px_req *req_pool; /* finished requests to reuse, linked by next */
    size_t req_pool_n;
    struct px_rewrite rewrite;
    int backend_ready;
    int hidden_db;
    char backend_version[32];
    char backend_err[256]; /* non-empty: data commands are refused with this */
    /* Redis's BUSY text while the local Redis runs a script past its threshold (backend/ctl.h):
     * data commands get it at once, as Redis's own clients do. */
    char busy_err[256];
    struct be_ctl *ctl;
    uint64_t last_applied;   /* highest applied index Redis confirmed */
    uint64_t restart_commit; /* reads never see a Redis behind this (commit at start) */
    char run_id[41];
    struct px_snap *snap;     /* snapshots (proxy/snapshot.c) */
    struct px_blocks *blocks; /* parked blocking commands (block.c) */
    int loading;              /* a snapshot is being loaded into the local Redis */
    long long foreign_keys;   /* keys Redis held that redraft did not write (last handshake) */
    /* stats */
    size_t nmonitors;                /* clients in MONITOR mode */
    struct px_stats cmdstats;        /* INFO commandstats (stats.c) */
    struct px_slowlog slowlog;       /* SLOWLOG (slowlog.c) */
    double slowlog_asked;            /* when its settings were last read from the local Redis */
    double slowlog_set_at;           /* when a CONFIG SET through this node last changed them */
    struct px_cmdtable **old_tables; /* replaced tables, kept until the server ends */
    size_t nold_tables;
    struct rd_buf table_fp;       /* the COMMAND answer the table in use was built from */
    struct px_client *ready_head; /* clients that read input this turn, in arrival order */
    int pause_type;               /* CLIENT PAUSE (pause.c) */
    double pause_until;
    ev_timer pause_timer;
    size_t npaused;
    uint64_t total_commands, total_writes, total_reads, total_conns, rejected_conns;
    uint64_t reads_ahead, reads_ahead_dropped; /* linearizable reads sent before their round */
    uint64_t retry_seq;     /* the last retry of a parked command proposed (block.c) */
    size_t retries_pending; /* such retries in the pending list */
};

/* An EXEC going to the log: its transaction (possibly empty when the client watches keys:
 * the leader must still say whether a watched key was touched). */
static inline int px_req_is_exec(const struct px_req *r)
{
    return r->nm > 0 || r->guard_len > 0;
}

/* Local commands (local.c). Each writes the reply into r->reply and returns 0, or returns 1
 * when the reply comes later (the request is then in flight, found by its id). */
int px_local_exec(struct px_client *c, struct px_req *r);
/* Completes an asynchronous local command (cluster commands). resp is borrowed. */
void px_async_done(struct px_server *s, uint64_t reqid, const char *resp, size_t len);
/* Registers r as an asynchronous local command waiting until its deadline. */
int px_async_start(struct px_server *s, struct px_req *r);
/* SCRIPT KILL, FUNCTION KILL, SHUTDOWN: proxy/kill.c. Returns 0 when r finished at once, 1
 * when its reply comes later. */
enum { PX_KILL_SCRIPT, PX_KILL_FUNCTION, PX_KILL_SHUTDOWN, PX_KILL_ENTRY }; /* as apply.h's */
int px_script_kill(struct px_server *s, struct px_req *r, int kind);
/* While busy: a command Redis answers even then (FUNCTION STATS) goes to it on the control
 * connection. 1 when r was taken (its reply comes later), else 0. */
int px_busy_passthrough(struct px_server *s, struct px_req *r);

/* The error a command gets while the local Redis cannot be used (route.c). */
const char *px_backend_unavailable(const struct px_server *s);

/* Shared helpers (server.c). */
struct px_server *px_the_server(void);
uint64_t px_new_reqid(struct px_server *s);
void px_reply_err(struct px_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void px_client_close(struct px_client *c, const char *why);
void px_client_dispatch(struct px_client *c);
int px_route_check(struct px_server *s, struct px_req *r);
void px_client_maybe_free(struct px_client *c);
/* Output was appended to c->out outside the request queue (pub/sub): write it. Returns -1 when
 * that closed the client (output limit): c must not be touched then. */
int px_client_push(struct px_client *c);
/* A request has its reply: flush what can go, dispatch what may follow. */
void px_req_done(struct px_req *r);

/* RAFT.CLUSTER JOIN (join.c). */
int px_join_start(struct px_server *s, uint64_t reqid, int argc, char **argv, char *err,
                  size_t errlen);
void px_join_free(struct px_server *s);

#endif
