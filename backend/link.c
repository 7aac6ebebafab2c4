#include "backend/link.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "backend/reader.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/netaddr.h"

#define LINK_BACKOFF_MIN_MS 100
#define LINK_BACKOFF_MAX_MS 2000
#define LINK_READ_CHUNK     (64 * 1024) /* bytes read per readable event */

enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_HANDSHAKE, LINK_READY };

/* One command whose reply has not come yet. */
struct pending {
    be_reply_fn *fn;
    void *privdata;
};

struct be_link {
    struct ev_loop *loop;
    char addr[300];
    char host[256];
    int port; /* 0: unix socket in host */
    char password[512];
    void *ctx;
    struct be_link_cbs cbs;
    int fd; /* -1 when there is no connection */
    ev_io rio, wio;
    struct rd_buf out;    /* written, not yet taken by the socket */
    struct be_reader rd;  /* replies */
    struct pending *fifo; /* ring of the commands waiting for a reply, in the order sent */
    size_t fifo_head, fifo_len, fifo_cap;
    enum link_state state;
    int cur_db; /* -1 unknown */
    ev_timer retry;
    int backoff_ms;
    int down_logged;
    int dispatching; /* inside reply callbacks: a free waits for them to return */
    int free_requested;
    struct be_link_info info; /* filled during the handshake */
    int bare;                 /* be_link_set_bare: AUTH and one PING, nothing else */
    unsigned gen;             /* connection generation: replies of an old connection are ignored */
    uint64_t nsent;           /* commands queued since start (be_link_seq) */
};

static void link_connect(struct be_link *l);

static void link_free_now(struct be_link *l)
{
    rd_buf_free(&l->out);
    be_reader_free(&l->rd);
    free(l->fifo);
    free(l);
}

/* After an event: a free asked for by a callback happens once no callback runs any more. */
static void link_maybe_free(struct be_link *l)
{
    if (l->free_requested && l->dispatching == 0)
        link_free_now(l);
}

static void link_schedule_retry(struct be_link *l)
{
    double delay = l->backoff_ms / 1000.0;
    l->backoff_ms =
        l->backoff_ms * 2 > LINK_BACKOFF_MAX_MS ? LINK_BACKOFF_MAX_MS : l->backoff_ms * 2;
    ev_timer_set(&l->retry, delay, 0);
    ev_timer_start(l->loop, &l->retry);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct be_link *l = w->data;
    link_connect(l);
    link_maybe_free(l);
}

/* Closes the connection and calls every pending callback with a NULL reply, exactly once each,
 * in the order sent. A callback that sends finds the link down (-1, not queued). */
static void link_close(struct be_link *l)
{
    if (l->fd >= 0) {
        ev_io_stop(l->loop, &l->rio);
        ev_io_stop(l->loop, &l->wio);
        close(l->fd);
        l->fd = -1;
    }
    l->state = LINK_DOWN;
    l->cur_db = -1;
    l->gen++;
    rd_buf_reset(&l->out);
    be_reader_reset(&l->rd);
    struct pending *fifo = l->fifo;
    size_t head = l->fifo_head, n = l->fifo_len, cap = l->fifo_cap;
    l->fifo = NULL;
    l->fifo_head = l->fifo_len = l->fifo_cap = 0;
    l->dispatching++;
    for (size_t i = 0; i < n; i++) {
        struct pending *p = &fifo[(head + i) % cap];
        if (p->fn != NULL)
            p->fn(l, NULL, p->privdata);
    }
    l->dispatching--;
    free(fifo);
}

static void link_went_down(struct be_link *l, const char *why)
{
    int was_ready = l->state == LINK_READY;
    char reason[256];
    snprintf(reason, sizeof(reason), "%s", why); /* why may live in what link_close resets */
    link_close(l);
    if (l->free_requested)
        return;
    if (was_ready || !l->down_logged) {
        rd_warning("local redis %s%s%d unavailable: %s; retrying", l->host, l->port ? ":" : "",
                   l->port, reason);
        l->down_logged = 1;
    }
    if (l->cbs.on_down)
        l->cbs.on_down(l->ctx, reason);
    link_schedule_retry(l);
}

static int fifo_push(struct be_link *l, be_reply_fn *fn, void *privdata)
{
    if (l->fifo_len == l->fifo_cap) {
        size_t ncap = l->fifo_cap ? l->fifo_cap * 2 : 64;
        struct pending *n = malloc(ncap * sizeof(*n));
        if (n == NULL)
            return -1;
        for (size_t i = 0; i < l->fifo_len; i++)
            n[i] = l->fifo[(l->fifo_head + i) % l->fifo_cap];
        free(l->fifo);
        l->fifo = n;
        l->fifo_head = 0;
        l->fifo_cap = ncap;
    }
    l->fifo[(l->fifo_head + l->fifo_len) % l->fifo_cap] = (struct pending){fn, privdata};
    l->fifo_len++;
    l->nsent++;
    return 0;
}

/* Queues bytes and their callback on a live connection, in any state but down. */
static int link_queue(struct be_link *l, const char *cmd, size_t len, be_reply_fn *fn, void *pd)
{
    if (l->fd < 0 || l->state == LINK_CONNECTING)
        return -1;
    size_t mark = l->out.len;
    if (rd_buf_append(&l->out, cmd, len) != 0)
        return -1;
    if (fifo_push(l, fn, pd) != 0) {
        l->out.len = mark;
        return -1;
    }
    return 0;
}

static int link_queue_argv(struct be_link *l, int argc, const char **argv, const size_t *argvlen,
                           be_reply_fn *fn, void *pd)
{
    if (l->fd < 0 || l->state == LINK_CONNECTING)
        return -1;
    size_t mark = l->out.len;
    int rc = rd_resp_array_len(&l->out, argc);
    for (int i = 0; rc == 0 && i < argc; i++)
        rc = rd_resp_bulk(&l->out, argv[i], argvlen[i]);
    if (rc != 0 || fifo_push(l, fn, pd) != 0) {
        l->out.len = mark;
        return -1;
    }
    return 0;
}

static int link_queue_words(struct be_link *l, be_reply_fn *fn, void *pd, int argc,
                            const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return link_queue_argv(l, argc, argv, lens, fn, pd);
}

/* Writes what the socket takes; keeps the write event only for the rest. 0, or -1 when the
 * connection broke (it has been reported down). */
static int link_write(struct be_link *l)
{
    while (rd_buf_unread(&l->out) > 0) {
        ssize_t n = write(l->fd, rd_buf_rptr(&l->out), rd_buf_unread(&l->out));
        if (n > 0) {
            rd_buf_consume(&l->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(l->loop, &l->wio);
            return 0;
        }
        link_went_down(l, n < 0 ? strerror(errno) : "write failed");
        return -1;
    }
    rd_buf_compact(&l->out);
    ev_io_stop(l->loop, &l->wio);
    return 0;
}

/* Hands every complete reply to its callback. Stops when a callback replaced the connection. */
static void link_dispatch(struct be_link *l)
{
    unsigned gen = l->gen;
    l->dispatching++;
    while (l->gen == gen) {
        redisReply *reply = NULL;
        if (be_reader_get(&l->rd, &reply) != 0) {
            char why[160];
            snprintf(why, sizeof(why), "%s", l->rd.errstr);
            link_went_down(l, why);
            break;
        }
        if (reply == NULL)
            break;
        if (l->fifo_len == 0) {
            be_reply_free(reply);
            link_went_down(l, "a reply nobody asked for");
            break;
        }
        struct pending p = l->fifo[l->fifo_head];
        l->fifo_head = (l->fifo_head + 1) % l->fifo_cap;
        l->fifo_len--;
        if (p.fn != NULL)
            p.fn(l, reply, p.privdata);
        be_reply_free(reply);
    }
    l->dispatching--;
}

static void link_read(struct be_link *l)
{
    char buf[LINK_READ_CHUNK];
    ssize_t n = read(l->fd, buf, sizeof(buf));
    if (n == 0) {
        link_went_down(l, "connection closed");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            link_went_down(l, strerror(errno));
        return;
    }
    if (be_reader_feed(&l->rd, buf, (size_t)n) != 0) {
        link_went_down(l, l->rd.errstr);
        return;
    }
    link_dispatch(l);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct be_link *l = w->data;
    link_read(l);
    link_maybe_free(l);
}

static void handshake_fail(struct be_link *l, const char *what, const redisReply *r)
{
    char why[256];
    snprintf(why, sizeof(why), "%s: %s", what,
             r == NULL ? "no reply" : (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
    rd_warning("local redis %s (%s)",
               l->state == LINK_READY ? "refused a command" : "handshake failed", why);
    be_link_reset(l, why);
}

/* Replies during the handshake carry the generation in privdata so a reply that arrives for a
 * connection already replaced (or drained with NULL) is ignored. */
#define GEN_PTR(l)   ((void *)(uintptr_t)(l)->gen)
#define STALE(l, pd) ((l)->fd < 0 || (uintptr_t)(pd) != (uintptr_t)(l)->gen)

static void hs_applied_cb(struct be_link *l, void *reply, void *pd)
{
    redisReply *r = reply;
    if (STALE(l, pd) || r == NULL)
        return;
    if (r->type == REDIS_REPLY_NIL) {
        l->info.applied_present = 0;
        l->info.applied = 0;
    } else if (r->type == REDIS_REPLY_STRING) {
        char *end;
        unsigned long long v = strtoull(r->str, &end, 10);
        if (*end != '\0') {
            handshake_fail(l, "applied index key is not a number", r);
            return;
        }
        l->info.applied_present = 1;
        l->info.applied = v;
    } else {
        handshake_fail(l, "GET applied index", r);
        return;
    }
}

/* The hidden database's other keys (the script registry) go to their owner before ready. */
static void hs_hidden_cb(struct be_link *l, void *reply, void *pd)
{
    redisReply *r = reply;
    if (STALE(l, pd) || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        handshake_fail(l, "read redraft's hidden keys", r);
        return;
    }
    if (l->cbs.on_hidden)
        l->cbs.on_hidden(l->ctx, r);
    l->state = LINK_READY;
    l->backoff_ms = LINK_BACKOFF_MIN_MS;
    l->down_logged = 0;
    rd_notice("local redis %s%s%d ready: redis %s, run id %s, %d databases (db %d hidden), "
              "applied index %llu%s",
              l->host, l->port ? ":" : "", l->port, l->info.version, l->info.run_id,
              l->info.databases, l->info.hidden_db, (unsigned long long)l->info.applied,
              l->info.applied_present ? "" : " (no key)");
    if (l->cbs.on_ready)
        l->cbs.on_ready(l->ctx, &l->info);
}

/* Also the callback of every SELECT the link sends itself. */
static void hs_select_cb(struct be_link *l, void *reply, void *pd)
{
    redisReply *r = reply;
    if (STALE(l, pd) || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR)
        handshake_fail(l, "SELECT", r);
}

static const char *info_field(const char *info, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    for (const char *p = info; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t len = strcspn(v, "\r\n");
            if (len >= outlen)
                len = outlen - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

/* Sums keys=N of every "dbX:" line except the hidden db. */
static long long info_visible_keys(const char *info, int hidden_db)
{
    long long total = 0;
    for (const char *p = info; p && *p;) {
        int db;
        long long keys;
        if (sscanf(p, "db%d:keys=%lld", &db, &keys) == 2 && db != hidden_db)
            total += keys;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return total;
}

static void hs_info_cb(struct be_link *l, void *reply, void *pd)
{
    redisReply *r = reply;
    if (STALE(l, pd) || r == NULL)
        return;
    if (r->type != REDIS_REPLY_STRING) {
        handshake_fail(l, "INFO", r);
        return;
    }
    if (info_field(r->str, "run_id", l->info.run_id, sizeof(l->info.run_id)) == NULL)
        l->info.run_id[0] = '\0';
    if (info_field(r->str, "redis_version", l->info.version, sizeof(l->info.version)) == NULL)
        l->info.version[0] = '\0';
    char loading[8];
    if (info_field(r->str, "loading", loading, sizeof(loading)) && strcmp(loading, "1") == 0) {
        handshake_fail(l, "redis is loading its dataset", NULL);
        return;
    }
    l->info.visible_keys = info_visible_keys(r->str, l->info.hidden_db);
    /* redraft owns its Redis's replication (it refuses REPLICAOF from clients): a replica here
     * is one that a snapshot load of ours left following a master that is gone (redraft died
     * during the load). Make it a master again before anything reads or writes it. */
    char role[16];
    if (info_field(r->str, "role", role, sizeof(role)) && strcmp(role, "slave") == 0) {
        rd_warning("local redis is a replica (a snapshot load cut short?): REPLICAOF NO ONE");
        const char *no_one[] = {"REPLICAOF", "NO", "ONE"};
        link_queue_words(l, NULL, NULL, 3, no_one);
    }

    char sel[32];
    snprintf(sel, sizeof(sel), "%d", l->info.hidden_db);
    const char *select[] = {"SELECT", sel}, *get[] = {"GET", BE_APPLIED_KEY},
               *hidden[] = {"HGETALL", BE_LINK_SCRIPTS_KEY};
    if (link_queue_words(l, hs_select_cb, GEN_PTR(l), 2, select) != 0 ||
        link_queue_words(l, hs_applied_cb, GEN_PTR(l), 2, get) != 0 ||
        link_queue_words(l, hs_hidden_cb, GEN_PTR(l), 2, hidden) != 0) {
        be_link_reset(l, "out of memory");
        return;
    }
    l->cur_db = l->info.hidden_db;
    link_write(l);
}

static void hs_command_cb(struct be_link *l, void *reply, void *pd)
{
    redisReply *r = reply;
    if (STALE(l, pd) || r == NULL)
        return;
    if (r->type != REDIS_REPLY_ARRAY) {
        handshake_fail(l, "COMMAND", r);
        return;
    }
    /* The reply is freed when this callback returns: the owner reads it now. */
    if (l->cbs.on_commands)
        l->cbs.on_commands(l->ctx, r);
}

static void hs_databases_cb(struct be_link *l, void *reply, void *pd)
{
    redisReply *r = reply;
    if (STALE(l, pd) || r == NULL)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        handshake_fail(l, "CONFIG GET databases", r);
        return;
    }
    int dbs = atoi(r->element[1]->str);
    if (dbs < 2) {
        handshake_fail(l, "redis needs at least 2 databases (the last one is redraft's)", NULL);
        return;
    }
    l->info.databases = dbs;
    l->info.hidden_db = dbs - 1;
}

static void hs_auth_cb(struct be_link *l, void *reply, void *pd)
{
    redisReply *r = reply;
    if (STALE(l, pd) || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR)
        handshake_fail(l, "AUTH", r);
}

/* A bare link is ready once Redis answers at all: BUSY (a script runs) is an answer too. */
static void hs_bare_cb(struct be_link *l, void *reply, void *pd)
{
    redisReply *r = reply;
    if (STALE(l, pd) || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSY", 4) != 0) {
        handshake_fail(l, "PING", r);
        return;
    }
    l->state = LINK_READY;
    l->backoff_ms = LINK_BACKOFF_MIN_MS;
    l->down_logged = 0;
    rd_verbose("local redis %s%s%d: control connection up", l->host, l->port ? ":" : "", l->port);
    if (l->cbs.on_ready)
        l->cbs.on_ready(l->ctx, &l->info);
}

uint64_t be_link_seq(const struct be_link *l)
{
    return l->nsent;
}

void be_link_set_bare(struct be_link *l)
{
    l->bare = 1;
}

/* The connect finished (the socket became writable): start the handshake. */
static void connected(struct be_link *l)
{
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
        err = errno;
    if (err != 0) {
        link_went_down(l, strerror(err));
        return;
    }
    l->state = LINK_HANDSHAKE;
    memset(&l->info, 0, sizeof(l->info));
    const char *auth[] = {"AUTH", l->password}, *dbs[] = {"CONFIG", "GET", "databases"},
               *cmds[] = {"COMMAND"}, *info[] = {"INFO"};
    void *gen = GEN_PTR(l);
    if (l->bare) {
        const char *ping[] = {"PING"};
        if ((l->password[0] && link_queue_words(l, hs_auth_cb, gen, 2, auth) != 0) ||
            link_queue_words(l, hs_bare_cb, gen, 1, ping) != 0) {
            link_went_down(l, "out of memory");
            return;
        }
        ev_io_start(l->loop, &l->rio);
        link_write(l);
        return;
    }
    if ((l->password[0] && link_queue_words(l, hs_auth_cb, gen, 2, auth) != 0) ||
        link_queue_words(l, hs_databases_cb, gen, 3, dbs) != 0 ||
        link_queue_words(l, hs_command_cb, gen, 1, cmds) != 0 ||
        link_queue_words(l, hs_info_cb, gen, 1, info) != 0) {
        link_went_down(l, "out of memory");
        return;
    }
    ev_io_start(l->loop, &l->rio);
    link_write(l);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct be_link *l = w->data;
    if (l->state == LINK_CONNECTING)
        connected(l);
    else
        link_write(l);
    link_maybe_free(l);
}

static void link_connect(struct be_link *l)
{
    char why[256] = "cannot connect";
    l->fd = rd_connect_addr(l->addr, why, sizeof(why));
    if (l->fd < 0) {
        link_went_down(l, why);
        return;
    }
    l->state = LINK_CONNECTING;
    ev_io_init(&l->rio, read_cb, l->fd, EV_READ);
    ev_io_init(&l->wio, write_cb, l->fd, EV_WRITE);
    l->rio.data = l->wio.data = l;
    ev_io_start(l->loop, &l->wio);
}

struct be_link *be_link_new(struct ev_loop *loop, const char *addr, const char *password, void *ctx,
                            const struct be_link_cbs *cbs)
{
    struct be_link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->loop = loop;
    l->ctx = ctx;
    l->cbs = *cbs;
    l->fd = -1;
    l->cur_db = -1;
    l->backoff_ms = LINK_BACKOFF_MIN_MS;
    rd_buf_init(&l->out);
    be_reader_init(&l->rd);
    snprintf(l->password, sizeof(l->password), "%s", password ? password : "");
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    const char *colon = strrchr(addr, ':');
    if (strchr(addr, '/') != NULL || colon == NULL) {
        snprintf(l->host, sizeof(l->host), "%s", addr);
        l->port = 0;
    } else {
        snprintf(l->host, sizeof(l->host), "%.*s", (int)(colon - addr), addr);
        l->port = atoi(colon + 1);
    }
    ev_timer_init(&l->retry, retry_cb, 0, 0);
    l->retry.data = l;
    return l;
}

void be_link_start(struct be_link *l)
{
    link_connect(l);
}

void be_link_free(struct be_link *l)
{
    if (l == NULL)
        return;
    ev_timer_stop(l->loop, &l->retry);
    l->free_requested = 1;
    link_close(l); /* drains the callbacks, which find the link down */
    if (l->dispatching == 0)
        link_free_now(l);
}

int be_link_is_ready(const struct be_link *l)
{
    return l->state == LINK_READY;
}

int be_link_hidden_db(const struct be_link *l)
{
    return l->info.hidden_db;
}

int be_link_send(struct be_link *l, const char *cmd, size_t len, be_reply_fn *fn, void *privdata)
{
    if (l->state != LINK_READY)
        return -1;
    return link_queue(l, cmd, len, fn, privdata);
}

int be_link_send_argv(struct be_link *l, int argc, const char **argv, const size_t *argvlen,
                      be_reply_fn *fn, void *privdata)
{
    if (l->state != LINK_READY)
        return -1;
    return link_queue_argv(l, argc, argv, argvlen, fn, privdata);
}

int be_link_select(struct be_link *l, int db)
{
    if (l->cur_db == db)
        return 0;
    char sel[32];
    snprintf(sel, sizeof(sel), "%d", db);
    const char *argv[] = {"SELECT", sel};
    if (l->state != LINK_READY || link_queue_words(l, hs_select_cb, GEN_PTR(l), 2, argv) != 0)
        return -1;
    l->cur_db = db;
    return 0;
}

void be_link_flush(struct be_link *l)
{
    if (l->fd < 0 || l->state == LINK_CONNECTING || rd_buf_unread(&l->out) == 0)
        return;
    /* What the write event would do: write, keep the event only for what the socket did not
     * take. A failed write reports the link down, which drains the callbacks. */
    link_write(l);
}

void be_link_forget_db(struct be_link *l)
{
    l->cur_db = -1;
}

void be_link_reset(struct be_link *l, const char *why)
{
    if (l->fd < 0)
        return;
    link_went_down(l, why);
    if (l->dispatching == 0)
        link_maybe_free(l);
}

void be_link_local_ip(const struct be_link *l, char *buf, size_t len)
{
    snprintf(buf, len, "127.0.0.1");
    if (l->fd < 0 || l->port == 0)
        return;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    char host[INET6_ADDRSTRLEN];
    const void *a = ss.ss_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    if (inet_ntop(ss.ss_family, a, host, sizeof(host)) != NULL)
        snprintf(buf, len, "%s", host);
}
