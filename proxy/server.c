#include "proxy/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/apply.h"
#include "backend/entry.h"
#include "backend/link.h"
#include "backend/script.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "proxy/block.h"
#include "proxy/client.h"
#include "proxy/rewrite.h"
#include "proxy/monitor.h"
#include "proxy/multi.h"
#include "proxy/pause.h"
#include "proxy/pubsub.h"
#include "proxy/route.h"
#include "raftlog/node.h"

/* Completions from the backend link carry only a request id; this finds the server for them. There
 * is one server per process. */
static struct px_server *the_server;

struct px_server *px_the_server(void)
{
    return the_server;
}

static void client_flush_replies(struct px_client *c);
static void client_parse(struct px_client *c);

void px_reply_err(struct px_req *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rd_resp_simple(&r->reply, '-', msg);
}

/* Sanitizer builds reuse nothing, so a request used after it was finished is still caught. */
#if defined(__SANITIZE_ADDRESS__)
static const size_t req_pool_max = 0;
#else
static const size_t req_pool_max = PX_REQ_POOL_MAX;
#endif

static void buf_keep_small(struct rd_buf *b)
{
    if (b->cap > PX_REQ_BUF_KEEP)
        rd_buf_free(b);
    else
        rd_buf_reset(b);
}

static void req_free(struct px_req *r)
{
    px_block_req_free(r);
    px_cmd_free(&r->cmd);
    for (size_t i = 0; i < r->nm; i++)
        px_cmd_free(&r->mcmds[i]);
    free(r->mcmds);
    free(r->mdefs);
    struct px_server *s = r->c != NULL ? r->c->s : NULL;
    if (s != NULL && s->req_pool_n < req_pool_max) {
        struct rd_buf entry = r->entry, reply = r->reply;
        buf_keep_small(&entry);
        buf_keep_small(&reply);
        memset(r, 0, sizeof(*r));
        r->entry = entry;
        r->reply = reply;
        r->next = s->req_pool;
        s->req_pool = r;
        s->req_pool_n++;
        return;
    }
    rd_buf_free(&r->entry);
    rd_buf_free(&r->reply);
    free(r);
}

/* A zeroed request with empty buffers, reused when one is at hand. */
static struct px_req *req_new(struct px_server *s)
{
    struct px_req *r = s->req_pool;
    if (r != NULL) {
        s->req_pool = r->next;
        s->req_pool_n--;
        r->next = NULL;
        return r;
    }
    r = calloc(1, sizeof(*r));
    if (r != NULL) {
        rd_buf_init(&r->entry);
        rd_buf_init(&r->reply);
    }
    return r;
}

uint64_t px_new_reqid(struct px_server *s)
{
    /* Unique across restarts of this node: the boot counter is kept in the store. */
    return (s->boot << 40) | (++s->next_seq & ((1ULL << 40) - 1));
}

/* ---- client lifecycle ---- */

static void client_free(struct px_client *c)
{
    struct px_server *s = c->s;
    struct px_req *r = c->head;
    while (r) {
        struct px_req *next = r->next;
        req_free(r);
        r = next;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    rd_buf_free(&c->in);
    rd_buf_free(&c->out);
    px_pubsub_close(c);
    px_multi_free(c);
    free(c->name);
    free(c);
}

/* Drops the requests not yet dispatched; dispatched ones stay until their completion. */
static void client_drop_undispatched(struct px_client *c)
{
    struct px_req **pp = &c->head;
    c->tail = NULL;
    while (*pp) {
        struct px_req *r = *pp;
        if (r->state == REQ_NEW || r->state == REQ_DONE) {
            *pp = r->next;
            req_free(r);
            c->nreqs--;
        } else {
            c->tail = r;
            pp = &r->next;
        }
    }
    c->next_dispatch = NULL;
}

void px_client_maybe_free(struct px_client *c)
{
    if (c->closed && c->inflight == 0 && c->reads_waiting == 0 && !c->pending_write && !c->in_ready)
        client_free(c);
}

void px_client_close(struct px_client *c, const char *why)
{
    if (c->closed)
        return;
    struct px_server *s = c->s;
    if (why)
        rd_verbose("client id=%llu addr=%s closed: %s", (unsigned long long)c->id, c->addr, why);
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    close(c->fd);
    c->fd = -1;
    c->closed = 1;
    px_monitor_stop(c);
    px_pause_forget(c);
    px_pubsub_close(c);
    s->nclients--;
    px_block_client_closed(c);
    client_drop_undispatched(c);
    px_client_maybe_free(c);
}

/* ---- output ---- */

static void client_want_write(struct px_client *c)
{
    if (c->pending_write || c->closed)
        return;
    c->pending_write = 1;
    c->pw_next = c->s->pw_head;
    c->s->pw_head = c;
}

/* Writes what it can. Returns -1 when the client was closed. */
static int client_write(struct px_client *c)
{
    while (rd_buf_unread(&c->out) > 0) {
        ssize_t n = write(c->fd, rd_buf_rptr(&c->out), rd_buf_unread(&c->out));
        if (n > 0) {
            rd_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->writing) {
                ev_io_start(c->s->loop, &c->wio);
                c->writing = 1;
            }
            return 0;
        }
        px_client_close(c, "write error");
        return -1;
    }
    if (c->writing) {
        ev_io_stop(c->s->loop, &c->wio);
        c->writing = 0;
    }
    if (c->close_after_reply && c->head == NULL) {
        px_client_close(c, NULL);
        return -1;
    }
    return 0;
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct px_client *c = w->data;
    client_write(c);
}

/* Bytes of unsent replies a client may have before it is closed. Before AUTH, as in Redis, a
 * client that does not read cannot make us hold more than a small reply buffer. */
static long long output_limit(const struct px_client *c)
{
    if (c->s->cfg->requirepass[0] && !c->authed)
        return PX_UNAUTH_OUTPUT_MAX;
    return c->s->cfg->client_output_buffer_limit;
}

int px_client_push(struct px_client *c)
{
    if (c->closed)
        return -1;
    if ((long long)rd_buf_unread(&c->out) > output_limit(c)) {
        rd_warning("client id=%llu addr=%s closed for overcoming of output buffer limits",
                   (unsigned long long)c->id, c->addr);
        px_client_close(c, NULL);
        return -1;
    }
    client_want_write(c);
    return 0;
}

/* INFO commandstats: a finished request, and for EXEC each command it ran. */
static void count_command(struct px_server *s, const struct px_req *r)
{
    if (r->def == NULL || r->queued)
        return;
    int failed = rd_buf_unread(&r->reply) > 0 && rd_buf_rptr(&r->reply)[0] == '-';
    /* a blocking command's waiting is not its running time, as in Redis */
    double took = r->admitted && !px_block_was_parked(r) ? ev_time() - r->t_start : 0;
    uint64_t usec = took > 0 ? (uint64_t)(took * 1e6) : 0;
    px_stats_count(&s->cmdstats, r->def, usec, failed, !r->admitted && failed);
    for (size_t i = 0; i < r->nm; i++)
        px_stats_count(&s->cmdstats, r->mdefs[i], 0, 0, 0);
    if (!r->admitted || r->c == NULL)
        return;
    /* SLOWLOG: EXEC is not logged, the commands it ran are. */
    if (r->nm > 0) {
        for (size_t i = 0; i < r->nm; i++)
            px_slowlog_record(&s->slowlog, r->c, &r->mcmds[i], usec);
    } else if (!(r->def->flags & PX_CF_SKIP_SLOWLOG)) {
        px_slowlog_record(&s->slowlog, r->c, &r->cmd, usec);
    }
    if (!failed && r->def->check == PX_CHK_CONFIG_SET) {
        px_slowlog_settings(&s->slowlog, r->cmd.argc, (const char *const *)r->cmd.argv,
                            r->cmd.argvlen, 2);
        s->slowlog_set_at = ev_now(s->loop);
    }
}

/* Moves the replies of the finished requests at the head of the queue to the output. */
static void client_flush_replies(struct px_client *c)
{
    int moved = 0;
    while (c->head && c->head->state == REQ_DONE) {
        struct px_req *r = c->head;
        c->head = r->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->nreqs--;
        if (c->blocked == r)
            c->blocked = NULL;
        count_command(c->s, r);
        if (!c->closed && !r->quiet &&
            rd_buf_append(&c->out, rd_buf_rptr(&r->reply), rd_buf_unread(&r->reply)) != 0)
            px_client_close(c, "out of memory for replies");
        req_free(r);
        moved = 1;
    }
    if (!moved || c->closed)
        return;
    if ((long long)rd_buf_unread(&c->out) > output_limit(c)) {
        rd_warning("client id=%llu addr=%s closed for overcoming of output buffer limits",
                   (unsigned long long)c->id, c->addr);
        px_client_close(c, NULL);
        return;
    }
    client_want_write(c);
    if (c->reading_paused && c->nreqs < PX_PIPELINE_MAX / 2) {
        c->reading_paused = 0;
        ev_io_start(c->s->loop, &c->rio);
    }
}

/* A request has its reply. */
void px_req_done(struct px_req *r)
{
    r->state = REQ_DONE;
    struct px_client *c = r->c;
    if (c->blocked == r)
        c->blocked = NULL;
    client_flush_replies(c);
    if (!c->closed)
        px_client_dispatch(c);
    else
        px_client_maybe_free(c);
}

/* ---- routing ---- */

static int parse_db_index(const struct px_server *s, const char *arg, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end != '\0')
        return -1; /* not an integer: let Redis give its own error */
    *out = v;
    return 0;
}

/* CONFIG SET parameters redraft refuses: where Redis keeps or finds its data, how it is
 * reached, its replication (redraft's business), and memory limits that would make a replica
 * evict on its own. Prefix matches end with '*'. */
static const char *const config_denied[] = {
    "dir",
    "dbfilename",
    "appendfilename",
    "appenddirname",
    "logfile",
    "pidfile",
    "replicaof",
    "slaveof",
    "masterauth",
    "masteruser",
    "requirepass",
    "port",
    "bind",
    "unixsocket*",
    "tls-*",
    "aclfile",
    "maxmemory",
    "cluster-*",
    "replica-*",
    "slave-*",
    "repl-*",
    "protected-mode",
    "bind-source-addr",
    "enable-*-command",
    /* Limits on Redis's own clients, and redraft's links are its only clients: below what
     * redraft accepts from its clients (a bulk, a batch of applies, a big reply) Redis would
     * close the apply link on the same entry after every reconnect, stalling every node; or it
     * would refuse or evict the links redraft opens for subscribers. redraft has its own. */
    "maxclients",
    "timeout",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "client-output-buffer-limit",
    "maxmemory-clients",
    /* With these set, a replica of redraft's (which has no Redis replicas) refuses every write
     * with NOREPLICAS: the apply path would stall on every node. */
    "min-replicas-*",
    "min-slaves-*",
    "databases",
};

static int config_param_denied(const char *p)
{
    for (size_t i = 0; i < sizeof(config_denied) / sizeof(config_denied[0]); i++) {
        const char *d = config_denied[i];
        size_t n = strlen(d);
        if (d[n - 1] == '*' && strchr(d, '*') == d + n - 1) {
            if (strncasecmp(p, d, n - 1) == 0)
                return 1;
        } else if (strchr(d, '*') != NULL) {
            /* "enable-*-command" */
            const char *star = strchr(d, '*');
            size_t pre = (size_t)(star - d), post = n - pre - 1, pl = strlen(p);
            if (pl >= pre + post && strncasecmp(p, d, pre) == 0 &&
                strcasecmp(p + pl - post, star + 1) == 0)
                return 1;
        } else if (strcasecmp(p, d) == 0) {
            return 1;
        }
    }
    return 0;
}

/* DEBUG subcommands that only read the local Redis's data or compute: every other one could
 * change one replica behind the log's back (RELOAD, SET-ACTIVE-EXPIRE, CHANGE-REPL-ID, ...) or
 * stop it (SEGFAULT, SLEEP). */
static int debug_safe(const char *sub)
{
    static const char *const safe[] = {"object",      "digest",          "digest-value",
                                       "listpack",    "quicklist",       "htstats",
                                       "htstats-key", "stringmatch-len", "help"};
    for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
        if (!strcasecmp(sub, safe[i]))
            return 1;
    return 0;
}

/* Checks made before routing (and before queueing inside MULTI). Returns 0, or -1 with the
 * error in r->reply. */
int px_route_check(struct px_server *s, struct px_req *r)
{
    const struct px_cmddef *d = r->def;
    if (d->check == PX_CHK_DEBUG_SAFE) {
        if (r->cmd.argc < 2 || !debug_safe(r->cmd.argv[1])) {
            px_reply_err(r,
                         "ERR DEBUG %s is not supported by redraft (only OBJECT, DIGEST, "
                         "DIGEST-VALUE, LISTPACK, QUICKLIST, HTSTATS, HTSTATS-KEY, "
                         "STRINGMATCH-LEN and HELP, which only read)",
                         r->cmd.argc < 2 ? "" : r->cmd.argv[1]);
            return -1;
        }
        return 0;
    }
    if (d->check == PX_CHK_FUNCTION_RESTORE && r->cmd.argc >= 3) {
        char why[160];
        if (!be_scripts_restore_ok(be_apply_scripts(s->apply), r->cmd.argv[2], r->cmd.argvlen[2],
                                   why, sizeof(why))) {
            px_reply_err(r,
                         "ERR FUNCTION RESTORE of %s, which was not loaded through redraft, is "
                         "not supported: it would not run identically on every replica; load "
                         "its code with FUNCTION LOAD",
                         why);
            return -1;
        }
        return 0;
    }
    if (d->check == PX_CHK_CONFIG_SET) {
        for (int i = 2; i < r->cmd.argc; i += 2) {
            if (config_param_denied(r->cmd.argv[i])) {
                px_reply_err(r, "ERR CONFIG SET %s is not allowed through redraft", r->cmd.argv[i]);
                return -1;
            }
        }
        return 0;
    }
    if (d->check == PX_CHK_DB_ARG) {
        for (int i = 1; i < r->cmd.argc; i++) {
            int is_db = d->check_arg > 0 ? (i == d->check_arg ||
                                            (i == d->check_arg + 1 && !strcmp(d->name, "swapdb")))
                                         : (i > 1 && !strcasecmp(r->cmd.argv[i - 1], "db"));
            long long db;
            if (is_db && parse_db_index(s, r->cmd.argv[i], &db) == 0 && db >= s->hidden_db) {
                px_reply_err(r, "ERR DB index is out of range");
                return -1;
            }
        }
    }
    return 0;
}

/* While Redis runs a script past its threshold it answers every data command and PING with
 * BUSY (inside MULTI too, where that makes EXEC abort); while the apply path is stopped on a
 * poison entry, data commands can only fail. Either way the command is answered at once,
 * instead of a wait; INFO still answers (route.c gives redraft's own section). 1 with the
 * error in why when d must be refused now. */
static int data_refused(struct px_server *s, const struct px_cmddef *d, char *why, size_t n)
{
    int data = (d->route == PX_ROUTE_READ || d->route == PX_ROUTE_WRITE) && strcmp(d->name, "info");
    if (s->busy_err[0] && (data || d->local == PX_L_PING)) {
        snprintf(why, n, "%s", s->busy_err);
        return 1;
    }
    uint64_t poison = be_apply_poisoned(s->apply, NULL, NULL);
    if (poison != 0 && data) {
        snprintf(why, n,
                 "ERR redraft: log entry %llu makes the local redis exit; this node stopped "
                 "applying (RAFT.SKIP-ENTRY %llu skips it on every node: docs/operations.md)",
                 (unsigned long long)poison, (unsigned long long)poison);
        return 1;
    }
    return 0;
}

/* Decides what to do with the next request. Returns 0 when it was dispatched (or finished), 1
 * when it must wait for earlier requests of the same client. */
static int dispatch_one(struct px_server *s, struct px_client *c, struct px_req *r)
{
    char err[512];
    if (s->table == NULL) {
        /* Before the first contact with Redis nothing can be routed; PING still answers so a
         * liveness probe sees the process is up. */
        if (r->cmd.argc == 1 && !strcasecmp(r->cmd.argv[0], "ping"))
            rd_resp_simple(&r->reply, '+', "PONG");
        else
            px_reply_err(r, "%s", px_backend_unavailable(s));
        r->state = REQ_DONE;
        return 0;
    }
    if (r->def == NULL) {
        r->def =
            px_cmd_lookup(s->table, r->cmd.argc, r->cmd.argv, r->cmd.argvlen, err, sizeof(err));
        if (r->def == NULL) {
            rd_resp_simple(&r->reply, '-', err);
            r->state = REQ_DONE;
            if (c->in_multi)
                c->multi_dirty = 1; /* as Redis: EXEC will answer EXECABORT */
            return 0;
        }
    }
    const struct px_cmddef *d = r->def;
    if (s->cfg->requirepass[0] && !c->authed && !(d->flags & PX_CF_NO_AUTH)) {
        px_reply_err(r, "NOAUTH Authentication required.");
        r->state = REQ_DONE;
        if (c->in_multi)
            c->multi_dirty = 1;
        return 0;
    }
    if (c->in_monitor && (d->flags & (PX_CF_WRITE | PX_CF_READONLY | PX_CF_MAY_REPLICATE))) {
        px_reply_err(r, "ERR Replica can't interact with the keyspace");
        r->state = REQ_DONE;
        return 0;
    }
    if (d->local == PX_L_MONITOR && !c->in_multi && c->head != r)
        return 1; /* its lines must follow the replies to everything before it */
    if (c->in_pubsub && !px_pubsub_allowed(d->name)) {
        px_reply_err(r,
                     "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                     "QUIT / RESET are allowed in this context",
                     d->name);
        r->state = REQ_DONE;
        return 0;
    }
    r->admitted = 1;
    /* CLIENT PAUSE: checked before a command is queued in MULTI, as Redis does (an EXEC of a
     * writing transaction is checked below, once it holds its commands). */
    if (!px_req_is_exec(r) && px_pause_holds(c, r))
        return 1;
    if (!c->in_multi && (d->local == PX_L_PUBSUB || (c->in_pubsub && d->local == PX_L_PING))) {
        /* Its replies come straight from the subscriber link: everything before it must
         * have been answered first. */
        if (c->head != r)
            return 1;
        px_pubsub_forward(c, r);
        r->state = REQ_DONE;
        return 0;
    }
    if (!c->in_multi && (d->local == PX_L_SCRIPT_KILL || d->local == PX_L_FUNCTION_KILL ||
                         d->local == PX_L_SHUTDOWN || d->local == PX_L_RAFT_SKIP)) {
        int kind = d->local == PX_L_SCRIPT_KILL     ? PX_KILL_SCRIPT
                   : d->local == PX_L_FUNCTION_KILL ? PX_KILL_FUNCTION
                   : d->local == PX_L_SHUTDOWN      ? PX_KILL_SHUTDOWN
                                                    : PX_KILL_ENTRY;
        if (px_script_kill(s, r, kind) == 0)
            r->state = REQ_DONE;
        return 0;
    }
    /* While Redis runs a script past its threshold it answers every data command BUSY, also
     * inside MULTI (where it makes EXEC abort): so does redraft, instead of a wait. */
    if (s->busy_err[0] && !c->in_multi && px_busy_passthrough(s, r))
        return 0;
    char why[300];
    if (!px_req_is_exec(r) && data_refused(s, d, why, sizeof(why))) {
        px_reply_err(r, "%s", why);
        r->state = REQ_DONE;
        if (c->in_multi)
            c->multi_dirty = 1;
        return 0;
    }
    int mrc = px_req_is_exec(r) ? PX_MULTI_EXEC : px_multi_dispatch(c, r);
    if (mrc == PX_MULTI_DONE) {
        r->state = REQ_DONE;
        return 0;
    }
    if (mrc == PX_MULTI_EXEC) {
        /* EXEC: the whole transaction is one write. */
        if (s->backend_err[0]) {
            px_reply_err(r, "%s%s", strncmp(s->backend_err, "TRYAGAIN ", 9) ? "ERR " : "",
                         s->backend_err);
            r->state = REQ_DONE;
            return 0;
        }
        if (c->reads_waiting > 0 || px_pause_holds(c, r))
            return 1;
        /* A watching client's own earlier writes come before its EXEC in the log. */
        if (r->guard_len > 0 && c->writes_pending > 0)
            return 1;
        r->db = c->db;
        if (r->db_after > 0)
            c->db = r->db_after - 1;
        s->total_commands++;
        px_route_write(s, r);
        return 0;
    }
    switch (d->route) {
    case PX_ROUTE_LOCAL:
        /* The watch index must cover the client's own earlier writes (watch.h). */
        if (d->local == PX_L_WATCH && c->writes_pending > 0)
            return 1;
        if (px_local_exec(c, r) == 0)
            r->state = REQ_DONE;
        return 0;
    case PX_ROUTE_REFUSE:
        px_reply_err(r, "ERR %s", d->why ? d->why : "command not supported by redraft");
        r->state = REQ_DONE;
        return 0;
    case PX_ROUTE_READ:
    case PX_ROUTE_WRITE:
        break;
    }
    if (s->backend_err[0]) {
        px_reply_err(r, "%s%s", strncmp(s->backend_err, "TRYAGAIN ", 9) ? "ERR " : "",
                     s->backend_err);
        r->state = REQ_DONE;
        return 0;
    }
    if (px_route_check(s, r) != 0 || ((d->flags & PX_CF_BLOCKING) && px_block_prepare(s, r) != 0)) {
        r->state = REQ_DONE;
        return 0;
    }
    r->db = c->db;
    if (d->name[0] == 'c' && !strcmp(d->name, "config|resetstat"))
        px_stats_reset(&s->cmdstats); /* Redis resets its own statistics */
    if (d->route == PX_ROUTE_WRITE) {
        if (c->reads_waiting > 0)
            return 1;
        s->total_commands++;
        px_route_write(s, r);
    } else {
        /* EVENTUAL reads do not wait for the client's own writes. */
        if (c->writes_pending > 0 && c->consistency != PX_CONSISTENCY_EVENTUAL)
            return 1;
        s->total_commands++;
        px_route_read(s, r);
    }
    return 0;
}

void px_client_dispatch(struct px_client *c)
{
    struct px_server *s = c->s;
    while (!c->closed && c->next_dispatch != NULL) {
        struct px_req *r = c->next_dispatch;
        if (c->blocked != NULL && c->blocked != r)
            break; /* behind a blocking command, as in Redis: nothing is read past it */
        /* CLIENT REPLY: decided in command order, as the command is dispatched. */
        int quiet = c->reply_off || c->reply_skip, was_skip = c->reply_skip;
        if (r->state == REQ_NEW) {
            /* the start of the attempt that runs it: waiting behind earlier commands (or a
             * pause) is not its own time, as in Redis */
            r->t_start = ev_time();
            if (dispatch_one(s, c, r) != 0)
                break;
            px_monitor_feed(c, r);
            c->atime = ev_now(s->loop);
            if (r->def)
                c->last_cmd = r->def->name;
            if (r->def != NULL && r->def->local == PX_L_RESET)
                quiet = 0; /* RESET turns replies back on before it answers */
            if (r->def == NULL || r->def->local != PX_L_CLIENT_REPLY) {
                r->quiet = quiet;
                if (was_skip)
                    c->reply_skip = 0;
            }
        }
        c->next_dispatch = r->next;
        if (c->close_after_reply && r->def != NULL && r->def->local == PX_L_QUIT) {
            /* QUIT: nothing after it runs. */
            struct px_req *rest = r->next;
            r->next = NULL;
            c->tail = r;
            while (rest) {
                struct px_req *n = rest->next;
                req_free(rest);
                c->nreqs--;
                rest = n;
            }
            c->next_dispatch = NULL;
        }
    }
    if (!c->closed)
        client_flush_replies(c);
}

/* ---- input ---- */

static int client_take_command(struct px_client *c, struct px_cmd *cmd)
{
    struct px_req *r = req_new(c->s);
    if (r == NULL) {
        px_cmd_free(cmd);
        return -1;
    }
    r->id = px_new_reqid(c->s);
    r->c = c;
    r->cmd = *cmd;
    r->state = REQ_NEW;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    if (c->next_dispatch == NULL)
        c->next_dispatch = r;
    c->nreqs++;
    return 0;
}

static void client_parse(struct px_client *c)
{
    struct px_server *s = c->s;
    while (!c->closed && !c->close_after_reply) {
        if (c->nreqs >= PX_PIPELINE_MAX) {
            if (!c->reading_paused) {
                c->reading_paused = 1;
                ev_io_stop(s->loop, &c->rio);
            }
            return;
        }
        c->parser.unauth = s->cfg->requirepass[0] && !c->authed;
        struct px_cmd cmd;
        int rc = px_parse(&c->parser, &c->in, &cmd);
        if (rc == PX_PARSE_AGAIN)
            return;
        if (rc == PX_PARSE_ERR) {
            rd_verbose("protocol error from client id=%llu addr=%s: %s", (unsigned long long)c->id,
                       c->addr, c->parser.err);
            /* Replies to earlier commands go first, then the error, then the connection ends. */
            struct px_cmd none = {0};
            if (client_take_command(c, &none) == 0) {
                struct px_req *r = c->tail;
                px_reply_err(r, "ERR %s", c->parser.err);
                r->state = REQ_DONE;
            }
            /* Requests before the error still dispatch; nothing after it is read. */
            c->close_after_reply = 1;
            ev_io_stop(s->loop, &c->rio);
            client_flush_replies(c);
            return;
        }
        if (client_take_command(c, &cmd) != 0) {
            px_client_close(c, "out of memory");
            return;
        }
        px_client_dispatch(c);
    }
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct px_client *c = w->data;
    struct px_server *s = c->s;
    if (rd_buf_reserve(&c->in, PX_READ_CHUNK) != 0) {
        px_client_close(c, "out of memory");
        return;
    }
    ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
    if (n == 0) {
        px_client_close(c, "client closed connection");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            px_client_close(c, strerror(errno));
        return;
    }
    c->in.len += (size_t)n;
    if ((long long)rd_buf_unread(&c->in) > s->cfg->client_query_buffer_limit) {
        rd_warning("client id=%llu addr=%s closed for overcoming of input buffer limits",
                   (unsigned long long)c->id, c->addr);
        px_client_close(c, NULL);
        return;
    }
    /* Parsed before the loop sleeps, in the order the connections became readable: libev
     * runs a turn's read callbacks last-ready-first, so each goes to the front. Commands that
     * arrive together on two connections then reach the log in the order they arrived, as
     * Redis runs them (a BLPOP sent just before another client's LPUSH gets the element). */
    if (!c->in_ready) {
        c->in_ready = 1;
        c->ready_next = s->ready_head;
        s->ready_head = c;
    }
}

/* ---- listener ---- */

static void addr_str(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, outlen, "%s:%d", host, port);
}

/* Protected mode, as Redis: with no password set, a client from anywhere but the loopback
 * interface is told why and closed before it can send anything. The first two sentences are
 * Redis's; the remedies are redraft's (CONFIG SET protected-mode goes to the local Redis, not
 * to redraft). */
static const char protected_msg[] =
    "-DENIED Redis is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from the "
    "loopback interface. If you want to connect from external computers to redraft you may adopt "
    "one of the following solutions: 1) Set a password with redraft's 'requirepass' option, and "
    "make clients AUTH with it. 2) Disable protected mode with 'protected-mode no' in redraft's "
    "configuration file (or start it with '--protected-mode no'); MAKE SURE it is not publicly "
    "accessible from internet if you do so. NOTE: You only need to do one of the above things in "
    "order for the server to start accepting connections from the outside.\r\n";

static int protected_refuses(const struct px_server *s, const struct sockaddr_storage *sa)
{
    return s->cfg->protected_mode && s->cfg->requirepass[0] == '\0' && !rd_sockaddr_is_loopback(sa);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct px_server *s = w->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof(sa);
        int fd =
            accept4(s->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                rd_warning("accept: %s", strerror(errno));
            return;
        }
        if (s->nclients >= (size_t)s->cfg->maxclients) {
            static const char msg[] = "-ERR max number of clients reached\r\n";
            ssize_t ignored = write(fd, msg, sizeof(msg) - 1);
            (void)ignored;
            close(fd);
            s->rejected_conns++;
            continue;
        }
        if (protected_refuses(s, &sa)) {
            char peer[64];
            addr_str(&sa, peer, sizeof(peer));
            rd_verbose("client from %s refused: protected mode (no requirepass)", peer);
            ssize_t ignored = write(fd, protected_msg, sizeof(protected_msg) - 1);
            (void)ignored;
            close(fd);
            s->rejected_conns++;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct px_client *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->id = ++s->next_client_id;
        c->fd = fd;
        c->s = s;
        c->ctime = c->atime = ev_now(loop);
        c->consistency = s->cfg->consistency;
        rd_buf_init(&c->in);
        rd_buf_init(&c->out);
        px_parser_init(&c->parser, s->cfg->proto_max_bulk_len);
        addr_str(&sa, c->addr, sizeof(c->addr));
        struct sockaddr_storage la;
        socklen_t lalen = sizeof(la);
        if (getsockname(fd, (struct sockaddr *)&la, &lalen) == 0)
            addr_str(&la, c->laddr, sizeof(c->laddr));
        ev_io_init(&c->rio, read_cb, fd, EV_READ);
        c->rio.data = c;
        ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
        c->wio.data = c;
        ev_io_start(loop, &c->rio);
        c->next = s->clients;
        if (s->clients)
            s->clients->prev = c;
        s->clients = c;
        s->nclients++;
        s->total_conns++;
    }
}

int px_server_listen(struct px_server *s, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    char port[16];
    snprintf(port, sizeof(port), "%d", s->cfg->port);
    int rc = getaddrinfo(s->cfg->bind, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "bind address '%s': %s", s->cfg->bind, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 511) != 0) {
        snprintf(err, errlen, "could not listen on %s:%d: %s", s->cfg->bind, s->cfg->port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    s->listen_fd = fd;
    ev_io_init(&s->lio, accept_cb, fd, EV_READ);
    s->lio.data = s;
    ev_io_start(s->loop, &s->lio);
    return 0;
}

/* ---- server ---- */

struct px_server *px_server_new(struct ev_loop *loop, const struct px_config *cfg,
                                struct rn_node *node, uint64_t boot)
{
    struct px_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->loop = loop;
    s->cfg = cfg;
    s->node = node;
    s->boot = boot;
    s->listen_fd = -1;
    rd_map_init(&s->inflight);
    rd_map_init(&s->script_reads);
    rd_buf_init(&s->scratch);
    px_stats_init(&s->cmdstats);
    px_slowlog_init(&s->slowlog);
    s->restart_commit = rn_commit_index(node);
    s->blocks = px_blocks_new(s);
    if (s->blocks == NULL) {
        rd_map_free(&s->inflight);
        rd_map_free(&s->script_reads);
        free(s);
        return NULL;
    }
    the_server = s;
    px_route_init(s);
    px_pause_init(s);
    return s;
}

void px_server_set_backend(struct px_server *s, struct be_link *link, struct be_apply *apply,
                           struct be_ctl *ctl)
{
    s->link = link;
    s->apply = apply;
    s->ctl = ctl;
}

void px_server_free(struct px_server *s)
{
    if (s == NULL)
        return;
    if (s->listen_fd >= 0) {
        ev_io_stop(s->loop, &s->lio);
        close(s->listen_fd);
    }
    while (s->clients) {
        struct px_client *c = s->clients;
        if (!c->closed) {
            ev_io_stop(s->loop, &c->rio);
            ev_io_stop(s->loop, &c->wio);
            close(c->fd);
        }
        client_free(c);
    }
    px_route_stop(s);
    px_pause_stop(s);
    px_blocks_free(s->blocks);
    px_join_free(s);
    while (s->req_pool != NULL) {
        struct px_req *r = s->req_pool;
        s->req_pool = r->next;
        rd_buf_free(&r->entry);
        rd_buf_free(&r->reply);
        free(r);
    }
    rd_map_free(&s->inflight);
    rd_map_free(&s->script_reads);
    rd_buf_free(&s->scratch);
    px_stats_free(&s->cmdstats);
    px_slowlog_free(&s->slowlog);
    px_rewrite_free(&s->rewrite);
    px_cmdtable_free(s->table);
    for (size_t i = 0; i < s->nold_tables; i++)
        px_cmdtable_free(s->old_tables[i]);
    free(s->old_tables);
    rd_buf_free(&s->table_fp);
    if (the_server == s)
        the_server = NULL;
    free(s);
}

int px_server_before_sleep(struct px_server *s)
{
    int parsed = 0;
    struct px_client *c = s->ready_head;
    s->ready_head = NULL;
    while (c) {
        struct px_client *next = c->ready_next;
        c->in_ready = 0;
        c->ready_next = NULL;
        if (c->closed) {
            px_client_maybe_free(c);
        } else {
            size_t before = c->nreqs;
            client_parse(c);
            parsed |= c->nreqs != before;
        }
        c = next;
    }
    c = s->pw_head;
    s->pw_head = NULL;
    while (c) {
        struct px_client *next = c->pw_next;
        c->pending_write = 0;
        if (c->closed) {
            px_client_maybe_free(c);
            c = next;
            continue;
        }
        /* Commands read before the client hit PX_PIPELINE_MAX wait in its input buffer; no
         * socket event will announce them, so they are parsed here once it has room again. */
        if (!c->reading_paused && !c->close_after_reply && rd_buf_unread(&c->in) > 0) {
            size_t before = c->nreqs;
            client_parse(c);
            parsed |= c->nreqs != before;
        }
        if (!c->closed)
            client_write(c);
        c = next;
    }
    return parsed;
}

int px_server_has_output(const struct px_server *s)
{
    return s->pw_head != NULL;
}

size_t px_server_clients(const struct px_server *s)
{
    return s->nclients;
}

/* ---- backend events ---- */

void px_server_on_commands(struct px_server *s, const struct redisReply *reply)
{
    struct px_cmdtable *t;
    char err[256];
    /* Every reconnect asks COMMAND again: the same answer keeps the table in use. */
    struct rd_buf fp;
    rd_buf_init(&fp);
    if (be_reply_encode(reply, &fp) == 0 && s->table != NULL && fp.len == s->table_fp.len &&
        memcmp(fp.data, s->table_fp.data, fp.len) == 0) {
        rd_buf_free(&fp);
        return;
    }
    if (px_cmdtable_build(reply, &t, err, sizeof(err)) != 0) {
        rd_warning("cannot build the command table: %s", err);
        rd_buf_free(&fp);
        return;
    }
    rd_buf_free(&s->table_fp);
    s->table_fp = fp;
    /* The old table is kept, not freed: a transaction being queued, a request waiting its
     * turn and the commandstats still point into it. Tables change only when the local Redis
     * comes back as another version (another COMMAND answer), so few are ever kept. */
    if (s->table != NULL) {
        struct px_cmdtable **old = realloc(s->old_tables, (s->nold_tables + 1) * sizeof(*old));
        if (old == NULL) {
            px_cmdtable_free(t);
            return;
        }
        s->old_tables = old;
        s->old_tables[s->nold_tables++] = s->table;
    }
    s->table = t;
    rd_verbose("command table: %zu commands from the local redis", px_cmdtable_size(t));
}
