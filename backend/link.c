#include "backend/link.h"

#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/log.h"

#define LINK_BACKOFF_MIN_MS 100
#define LINK_BACKOFF_MAX_MS 2000

enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_HANDSHAKE, LINK_READY };

struct be_link {
    struct ev_loop *loop;
    char host[256];
    int port; /* 0: unix socket in host */
    char password[512];
    void *ctx;
    struct be_link_cbs cbs;
    redisAsyncContext *ac;
    enum link_state state;
    int cur_db; /* -1 unknown */
    ev_timer retry;
    int backoff_ms;
    int down_logged;
    struct be_link_info info; /* filled during the handshake */
    unsigned gen;             /* connection generation: replies of an old connection are ignored */
};

static redisReplyObjectFunctions nil_marking_fns;
static void *(*default_create_nil)(const redisReadTask *);

static void *create_nil_marked(const redisReadTask *task)
{
    redisReply *r = default_create_nil(task);
    if (r != NULL && task->type == REDIS_REPLY_ARRAY)
        r->integer = 1;
    return r;
}

void be_reply_mark_nil_arrays(redisReader *r)
{
    if (r == NULL || r->fn == NULL || r->fn->createNil == NULL)
        return;
    if (r->fn == &nil_marking_fns)
        return;
    if (default_create_nil == NULL) { /* hiredis's own functions, with createNil wrapped */
        nil_marking_fns = *r->fn;
        default_create_nil = r->fn->createNil;
        nil_marking_fns.createNil = create_nil_marked;
    }
    r->fn = &nil_marking_fns;
}

static void link_connect(struct be_link *l);

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
}

static void link_went_down(struct be_link *l, const char *why)
{
    int was_ready = l->state == LINK_READY;
    l->state = LINK_DOWN;
    l->ac = NULL;
    l->cur_db = -1;
    l->gen++;
    if (was_ready || !l->down_logged) {
        rd_warning("local redis %s%s%d unavailable: %s; retrying", l->host, l->port ? ":" : "",
                   l->port, why);
        l->down_logged = 1;
    }
    if (l->cbs.on_down)
        l->cbs.on_down(l->ctx, why);
    link_schedule_retry(l);
}

static void disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct be_link *l = ac->data;
    if (l == NULL || l->ac != ac)
        return;
    link_went_down(l, status == REDIS_OK ? "connection closed" : ac->errstr);
}

static void handshake_fail(struct be_link *l, const char *what, const redisReply *r)
{
    char why[256];
    snprintf(why, sizeof(why), "%s: %s", what,
             r == NULL ? "no reply" : (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
    rd_warning("local redis handshake failed (%s)", why);
    be_link_reset(l, why);
}

/* Replies during the handshake carry the generation in privdata so a reply that arrives for a
 * connection already replaced is ignored. */
#define GEN_PTR(l)   ((void *)(uintptr_t)(l)->gen)
#define STALE(l, pd) ((l)->ac == NULL || (uintptr_t)(pd) != (uintptr_t)(l)->gen)

static void hs_applied_cb(redisAsyncContext *ac, void *reply, void *pd)
{
    struct be_link *l = ac->data;
    redisReply *r = reply;
    if (l == NULL || STALE(l, pd) || r == NULL)
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
static void hs_hidden_cb(redisAsyncContext *ac, void *reply, void *pd)
{
    struct be_link *l = ac->data;
    redisReply *r = reply;
    if (l == NULL || STALE(l, pd) || r == NULL)
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

static void hs_select_cb(redisAsyncContext *ac, void *reply, void *pd)
{
    struct be_link *l = ac->data;
    redisReply *r = reply;
    if (l == NULL || STALE(l, pd) || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR)
        handshake_fail(l, "SELECT hidden db", r);
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

static void hs_info_cb(redisAsyncContext *ac, void *reply, void *pd)
{
    struct be_link *l = ac->data;
    redisReply *r = reply;
    if (l == NULL || STALE(l, pd) || r == NULL)
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
        redisAsyncCommand(ac, NULL, NULL, "REPLICAOF NO ONE");
    }

    char sel[32];
    int n = snprintf(sel, sizeof(sel), "%d", l->info.hidden_db);
    const char *argv[2] = {"SELECT", sel};
    size_t argvlen[2] = {6, (size_t)n};
    redisAsyncCommandArgv(ac, hs_select_cb, GEN_PTR(l), 2, argv, argvlen);
    redisAsyncCommand(ac, hs_applied_cb, GEN_PTR(l), "GET %s", BE_APPLIED_KEY);
    redisAsyncCommand(ac, hs_hidden_cb, GEN_PTR(l), "HGETALL %s", BE_LINK_SCRIPTS_KEY);
    l->cur_db = l->info.hidden_db;
}

static void hs_command_cb(redisAsyncContext *ac, void *reply, void *pd)
{
    struct be_link *l = ac->data;
    redisReply *r = reply;
    if (l == NULL || STALE(l, pd) || r == NULL)
        return;
    if (r->type != REDIS_REPLY_ARRAY) {
        handshake_fail(l, "COMMAND", r);
        return;
    }
    /* hiredis frees the reply when this callback returns: the owner reads it now. */
    if (l->cbs.on_commands)
        l->cbs.on_commands(l->ctx, r);
}

static void hs_databases_cb(redisAsyncContext *ac, void *reply, void *pd)
{
    struct be_link *l = ac->data;
    redisReply *r = reply;
    if (l == NULL || STALE(l, pd) || r == NULL)
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

static void hs_auth_cb(redisAsyncContext *ac, void *reply, void *pd)
{
    struct be_link *l = ac->data;
    redisReply *r = reply;
    if (l == NULL || STALE(l, pd) || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR)
        handshake_fail(l, "AUTH", r);
}

static void connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct be_link *l = ac->data;
    if (l == NULL || l->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        link_went_down(l, ac->errstr);
        return;
    }
    l->state = LINK_HANDSHAKE;
    memset(&l->info, 0, sizeof(l->info));
    if (l->password[0])
        redisAsyncCommand(ac, hs_auth_cb, GEN_PTR(l), "AUTH %s", l->password);
    redisAsyncCommand(ac, hs_databases_cb, GEN_PTR(l), "CONFIG GET databases");
    redisAsyncCommand(ac, hs_command_cb, GEN_PTR(l), "COMMAND");
    redisAsyncCommand(ac, hs_info_cb, GEN_PTR(l), "INFO");
}

static void link_connect(struct be_link *l)
{
    redisAsyncContext *ac =
        l->port ? redisAsyncConnect(l->host, l->port) : redisAsyncConnectUnix(l->host);
    if (ac == NULL) {
        link_went_down(l, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        link_went_down(l, why);
        return;
    }
    be_reply_mark_nil_arrays(ac->c.reader);
    ac->data = l;
    l->ac = ac;
    l->state = LINK_CONNECTING;
    redisLibevAttach(l->loop, ac);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
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
    l->cur_db = -1;
    l->backoff_ms = LINK_BACKOFF_MIN_MS;
    snprintf(l->password, sizeof(l->password), "%s", password ? password : "");
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
    if (l->ac != NULL) {
        redisAsyncContext *ac = l->ac;
        l->ac = NULL;
        ac->data = NULL; /* callbacks drained by the free see no owner */
        redisAsyncFree(ac);
    }
    free(l);
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
    if (l->state != LINK_READY || l->ac == NULL)
        return -1;
    return redisAsyncFormattedCommand(l->ac, (redisCallbackFn *)fn, privdata, cmd, len) == REDIS_OK
               ? 0
               : -1;
}

int be_link_send_argv(struct be_link *l, int argc, const char **argv, const size_t *argvlen,
                      be_reply_fn *fn, void *privdata)
{
    if (l->state != LINK_READY || l->ac == NULL)
        return -1;
    return redisAsyncCommandArgv(l->ac, (redisCallbackFn *)fn, privdata, argc, argv, argvlen) ==
                   REDIS_OK
               ? 0
               : -1;
}

static void select_cb(redisAsyncContext *ac, void *reply, void *pd)
{
    struct be_link *l = ac->data;
    redisReply *r = reply;
    if (l != NULL && r != NULL && r->type == REDIS_REPLY_ERROR) {
        rd_warning("local redis refused SELECT: %s", r->str);
        be_link_reset(l, "SELECT failed");
    }
}

int be_link_select(struct be_link *l, int db)
{
    if (l->cur_db == db)
        return 0;
    char sel[32];
    int n = snprintf(sel, sizeof(sel), "%d", db);
    const char *argv[2] = {"SELECT", sel};
    size_t argvlen[2] = {6, (size_t)n};
    if (be_link_send_argv(l, 2, argv, argvlen, select_cb, NULL) != 0)
        return -1;
    l->cur_db = db;
    return 0;
}

void be_link_flush(struct be_link *l)
{
    if (l->ac == NULL || !(l->ac->c.flags & REDIS_CONNECTED) || sdslen(l->ac->c.obuf) == 0)
        return;
    /* What the write event would do: write, keep the event only for what the socket did not
     * take. A failed write disconnects, which drains the callbacks as any lost link does. */
    redisAsyncHandleWrite(l->ac);
}

void be_link_forget_db(struct be_link *l)
{
    l->cur_db = -1;
}

void be_link_reset(struct be_link *l, const char *why)
{
    if (l->ac == NULL)
        return;
    redisAsyncContext *ac = l->ac;
    /* Forget the context first so the disconnect callback it triggers is ignored, then free it:
     * hiredis calls every pending callback with a NULL reply. */
    l->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
    link_went_down(l, why);
}

void be_link_local_ip(const struct be_link *l, char *buf, size_t len)
{
    snprintf(buf, len, "127.0.0.1");
    if (l->ac == NULL || l->port == 0)
        return;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(l->ac->c.fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    char host[INET6_ADDRSTRLEN];
    const void *a = ss.ss_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    if (inet_ntop(ss.ss_family, a, host, sizeof(host)) != NULL)
        snprintf(buf, len, "%s", host);
}
