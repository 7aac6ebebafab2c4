#include "proxy/cmdtable.h"

#include <ctype.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct px_cmdtable {
    struct px_cmddef *cmds; /* sorted by name */
    size_t n;
    size_t n_backend; /* of those, listed by the backend's COMMAND */
};

/* redraft's overrides, by name or "container|sub". A route of -1 keeps the one from the flags. */
struct px_override {
    const char *name;
    int route;
    enum px_local local;
    enum px_check check;
    int check_arg;
    const char *why;
};

#define LOCAL(n, l)                                                                                \
    {                                                                                              \
        n, PX_ROUTE_LOCAL, l, PX_CHK_NONE, 0, NULL                                                 \
    }
#define WRITE(n)                                                                                   \
    {                                                                                              \
        n, PX_ROUTE_WRITE, PX_L_NONE, PX_CHK_NONE, 0, NULL                                         \
    }
#define REFUSE(n, why)                                                                             \
    {                                                                                              \
        n, PX_ROUTE_REFUSE, PX_L_NONE, PX_CHK_NONE, 0, why                                         \
    }
#define CHECK(n, c, a)                                                                             \
    {                                                                                              \
        n, -1, PX_L_NONE, c, a, NULL                                                               \
    }

/* Starts as multi.c expects: inside MULTI, Redis runs a blocking command without blocking. */
#define WHY_BLOCK "blocking commands other than those redraft knows are not supported"
#define WHY_ADMIN "this would change the local redis behind redraft's back; not allowed"
#define WHY_REPL  "replication of the local redis is managed by redraft; not allowed"

static const struct px_override overrides[] = {
    LOCAL("ping", PX_L_PING),
    LOCAL("echo", PX_L_ECHO),
    LOCAL("quit", PX_L_QUIT),
    LOCAL("hello", PX_L_HELLO),
    LOCAL("auth", PX_L_AUTH),
    LOCAL("select", PX_L_SELECT),
    LOCAL("reset", PX_L_RESET),
    LOCAL("client|setname", PX_L_CLIENT_SETNAME),
    LOCAL("client|getname", PX_L_CLIENT_GETNAME),
    LOCAL("client|id", PX_L_CLIENT_ID),
    LOCAL("client|info", PX_L_CLIENT_INFO),
    LOCAL("client|list", PX_L_CLIENT_LIST),
    LOCAL("client|kill", PX_L_CLIENT_KILL),
    LOCAL("client|reply", PX_L_CLIENT_REPLY),
    LOCAL("client|unblock", PX_L_CLIENT_UNBLOCK),
    /* Counts the followers holding the client's last write (proxy/block.c). */
    LOCAL("wait", PX_L_WAIT),
    /* Not flagged `write` by Redis, but they change what every replica must hold or see. */
    WRITE("eval"),
    WRITE("evalsha"),
    WRITE("fcall"),
    WRITE("publish"),
    WRITE("spublish"),
    WRITE("script|load"),
    WRITE("script|flush"),
    /* Database arguments must not reach redraft's hidden database. */
    CHECK("move", PX_CHK_DB_ARG, 2),
    CHECK("swapdb", PX_CHK_DB_ARG, 1),
    CHECK("copy", PX_CHK_DB_ARG, -1),
    /* A library dumped from a Redis without redraft would run undeterministically. */
    CHECK("function|restore", PX_CHK_FUNCTION_RESTORE, 0),
    /* PFCOUNT may rewrite the cardinality cached inside the value: every replica must. */
    WRITE("pfcount"),
    LOCAL("monitor", PX_L_MONITOR),
    LOCAL("subscribe", PX_L_PUBSUB),
    LOCAL("psubscribe", PX_L_PUBSUB),
    LOCAL("ssubscribe", PX_L_PUBSUB),
    LOCAL("unsubscribe", PX_L_PUBSUB),
    LOCAL("punsubscribe", PX_L_PUBSUB),
    LOCAL("sunsubscribe", PX_L_PUBSUB),
    LOCAL("multi", PX_L_MULTI),
    LOCAL("exec", PX_L_EXEC),
    LOCAL("discard", PX_L_DISCARD),
    LOCAL("watch", PX_L_WATCH),
    LOCAL("unwatch", PX_L_UNWATCH),
    /* Through the log, so every replica runs with the same settings; parameters that point
     * Redis elsewhere or make replicas differ are refused (server.c, route_check). */
    {"config|set", PX_ROUTE_WRITE, PX_L_NONE, PX_CHK_CONFIG_SET, 0, NULL},
    REFUSE("config|rewrite", WHY_ADMIN),
    /* Statistics are each node's own. */
    {"config|resetstat", PX_ROUTE_READ, PX_L_NONE, PX_CHK_NONE, 0, NULL},
    /* Only subcommands that read, run on the local Redis alone (server.c debug_safe). */
    {"debug", PX_ROUTE_READ, PX_L_NONE, PX_CHK_DEBUG_SAFE, 0, NULL},
    /* Refused, but for SHUTDOWN NOSAVE while a script runs: it restarts every node's Redis
     * (kill.c). */
    {"shutdown", PX_ROUTE_WRITE, PX_L_SHUTDOWN, PX_CHK_NONE, 0, NULL},
    REFUSE("replicaof", WHY_REPL),
    REFUSE("slaveof", WHY_REPL),
    REFUSE("sync", WHY_REPL),
    REFUSE("psync", WHY_REPL),
    REFUSE("replconf", WHY_REPL),
    REFUSE("failover", WHY_REPL),
    REFUSE("module", WHY_ADMIN),
    /* Every replica would run it against the same target: the first moves the key, the others
     * get BUSYKEY (or cannot reach it) and keep theirs, so replicas would differ. */
    REFUSE("migrate", "MIGRATE is not allowed through redraft: its outcome depends on another "
                      "server, so replicas would differ"),
    REFUSE("cluster", "redraft is not a Redis Cluster; use RAFT.* commands"),
    REFUSE("readonly", "redraft is not a Redis Cluster"),
    REFUSE("readwrite", "redraft is not a Redis Cluster"),
    REFUSE("asking", "redraft is not a Redis Cluster"),
    REFUSE("acl|setuser", WHY_ADMIN),
    REFUSE("acl|deluser", WHY_ADMIN),
    REFUSE("acl|load", WHY_ADMIN),
    REFUSE("acl|save", WHY_ADMIN),
    LOCAL("latency|histogram", PX_L_LATENCY_HISTOGRAM),
    LOCAL("slowlog|get", PX_L_SLOWLOG),
    LOCAL("slowlog|len", PX_L_SLOWLOG),
    LOCAL("slowlog|reset", PX_L_SLOWLOG),
    LOCAL("client|pause", PX_L_CLIENT_PAUSE),
    LOCAL("client|unpause", PX_L_CLIENT_UNPAUSE),
    REFUSE("client|no-evict", WHY_ADMIN),
    REFUSE("client|tracking", "client-side caching is not supported by redraft yet"),
    REFUSE("client|caching", "client-side caching is not supported by redraft yet"),
    REFUSE("client|getredir", "client-side caching is not supported by redraft yet"),
    REFUSE("client|trackinginfo", "client-side caching is not supported by redraft yet"),
    /* Decided through the log, done on every node's Redis beside the apply path (kill.c). */
    {"script|kill", PX_ROUTE_WRITE, PX_L_SCRIPT_KILL, PX_CHK_NONE, 0, NULL},
    {"function|kill", PX_ROUTE_WRITE, PX_L_FUNCTION_KILL, PX_CHK_NONE, 0, NULL},
    REFUSE("script|debug", "SCRIPT DEBUG is not supported by redraft"),
    REFUSE("save", WHY_ADMIN),
    REFUSE("bgsave", WHY_ADMIN),
    REFUSE("bgrewriteaof", WHY_ADMIN),
};

/* The commands Redis flags `blocking` that proxy/block.c serves (routed by their other flags:
 * the pops and XREADGROUP through the log, XREAD as a read). Any other is refused: it would
 * block the connection the applies use. */
static const char *const blocking_served[] = {
    "blpop",    "brpop",  "brpoplpush", "blmove",     "blmpop", "bzpopmin",
    "bzpopmax", "bzmpop", "xread",      "xreadgroup", NULL,
};

static int is_blocking_served(const char *name)
{
    for (const char *const *n = blocking_served; *n != NULL; n++)
        if (!strcmp(*n, name))
            return 1;
    return 0;
}

static const struct {
    const char *name;
    uint32_t bit;
} flag_names[] = {
    {"write", PX_CF_WRITE},
    {"readonly", PX_CF_READONLY},
    {"denyoom", PX_CF_DENYOOM},
    {"admin", PX_CF_ADMIN},
    {"pubsub", PX_CF_PUBSUB},
    {"noscript", PX_CF_NOSCRIPT},
    {"blocking", PX_CF_BLOCKING},
    {"loading", PX_CF_LOADING},
    {"stale", PX_CF_STALE},
    {"fast", PX_CF_FAST},
    {"no_auth", PX_CF_NO_AUTH},
    {"may_replicate", PX_CF_MAY_REPLICATE},
    {"movablekeys", PX_CF_MOVABLEKEYS},
    {"skip_slowlog", PX_CF_SKIP_SLOWLOG},
    {"no_multi", PX_CF_NO_MULTI},
};

/* redraft's own commands, which no Redis lists: name, arity, flags, route. Subcommands are
 * written "container|sub"; a container named here gets them as its subcommands. */
struct px_own {
    const char *name;
    int arity;
    uint32_t flags;
    enum px_local local;
};

static const struct px_own own_cmds[] = {
    {"client|consistency", -2, PX_CF_FAST, PX_L_CLIENT_CONSISTENCY},
    {"raft.cluster|init", 2, PX_CF_ADMIN, PX_L_RAFT_INIT},
    {"raft.cluster|join", -3, PX_CF_ADMIN, PX_L_RAFT_JOIN},
    {"raft.node|add", -4, PX_CF_ADMIN, PX_L_RAFT_NODE},
    {"raft.node|remove", 3, PX_CF_ADMIN, PX_L_RAFT_NODE},
    {"raft.node|addr", 4, PX_CF_ADMIN, PX_L_RAFT_NODE},
    {"raft.transfer-leader", -1, PX_CF_ADMIN, PX_L_RAFT_TRANSFER},
    {"raft.info", 1, PX_CF_FAST, PX_L_RAFT_INFO},
    {"raft.skip-entry", 2, PX_CF_ADMIN, PX_L_RAFT_SKIP},
};

static int cmp_def(const void *a, const void *b)
{
    return strcmp(((const struct px_cmddef *)a)->name, ((const struct px_cmddef *)b)->name);
}

static void lower_copy(char *dst, size_t dstlen, const char *src, size_t n)
{
    if (n >= dstlen)
        n = dstlen - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[n] = '\0';
}

static const struct px_override *find_override(const char *name)
{
    for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++)
        if (strcmp(overrides[i].name, name) == 0)
            return &overrides[i];
    return NULL;
}

/* parent: the container's name for a subcommand ("module" for "module|load"), else NULL. */
static void apply_override(struct px_cmddef *d, const char *parent)
{
    /* Defaults from Redis's flags. */
    if ((d->flags & PX_CF_BLOCKING) && !is_blocking_served(d->name)) {
        d->route = PX_ROUTE_REFUSE;
        d->why = WHY_BLOCK;
    } else if (d->flags & (PX_CF_WRITE | PX_CF_MAY_REPLICATE)) {
        d->route = PX_ROUTE_WRITE;
    } else {
        d->route = PX_ROUTE_READ;
    }
    /* A refused container refuses every subcommand without an override of its own: lookups
     * return the subcommand's entry, so refusing "module" alone let MODULE LOAD through. */
    const struct px_override *po = parent != NULL ? find_override(parent) : NULL;
    if (po != NULL && po->route == PX_ROUTE_REFUSE) {
        d->route = PX_ROUTE_REFUSE;
        d->why = po->why;
    }
    for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
        const struct px_override *o = &overrides[i];
        if (strcmp(o->name, d->name) != 0)
            continue;
        if (o->route >= 0)
            d->route = (enum px_route)o->route;
        d->local = o->local;
        d->check = o->check;
        d->check_arg = o->check_arg;
        if (o->why)
            d->why = o->why;
    }
}

static int fill_def(struct px_cmddef *d, const redisReply *r, const char *parent)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 6 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_ARRAY)
        return -1;
    memset(d, 0, sizeof(*d));
    lower_copy(d->name, sizeof(d->name), r->element[0]->str, r->element[0]->len);
    snprintf(d->display, sizeof(d->display), "%s", d->name);
    d->arity = (int)r->element[1]->integer;
    for (size_t i = 0; i < r->element[2]->elements; i++) {
        const redisReply *f = r->element[2]->element[i];
        if (f->type != REDIS_REPLY_STATUS && f->type != REDIS_REPLY_STRING)
            continue;
        for (size_t k = 0; k < sizeof(flag_names) / sizeof(flag_names[0]); k++)
            if (strcmp(f->str, flag_names[k].name) == 0)
                d->flags |= flag_names[k].bit;
    }
    d->first_key = (int)r->element[3]->integer;
    d->last_key = (int)r->element[4]->integer;
    d->key_step = (int)r->element[5]->integer;
    /* A container (CONFIG, CLIENT, ...) lists its subcommands as the 10th element. */
    if (r->elements >= 10 && r->element[9]->type == REDIS_REPLY_ARRAY &&
        r->element[9]->elements > 0) {
        const redisReply *subs = r->element[9];
        d->subs = calloc(subs->elements, sizeof(*d->subs));
        if (d->subs == NULL)
            return -1;
        for (size_t i = 0; i < subs->elements; i++) {
            if (fill_def(&d->subs[d->nsubs], subs->element[i], d->name) == 0)
                d->nsubs++;
        }
        qsort(d->subs, d->nsubs, sizeof(*d->subs), cmp_def);
    }
    apply_override(d, parent);
    return 0;
}

static void defs_free(struct px_cmddef *defs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (defs[i].subs)
            defs_free(defs[i].subs, defs[i].nsubs);
    free(defs);
}

static void own_def(struct px_cmddef *d, const char *name, int arity, uint32_t flags,
                    enum px_local local)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    snprintf(d->display, sizeof(d->display), "%s", name);
    d->arity = arity;
    d->flags = flags;
    /* RAFT.SKIP-ENTRY goes through the log (proxy/kill.c). */
    d->route = local == PX_L_RAFT_SKIP ? PX_ROUTE_WRITE : PX_ROUTE_LOCAL;
    d->local = local;
}

static struct px_cmddef *find_mut(struct px_cmddef *defs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(defs[i].name, name))
            return &defs[i];
    return NULL;
}

/* Adds redraft's own commands (and subcommands) to a table built from Redis's. */
static int add_own(struct px_cmdtable *t)
{
    size_t nown = sizeof(own_cmds) / sizeof(own_cmds[0]);
    struct px_cmddef *cmds = realloc(t->cmds, (t->n + nown) * sizeof(*cmds));
    if (cmds == NULL)
        return -1;
    t->cmds = cmds;
    for (size_t i = 0; i < nown; i++) {
        const struct px_own *o = &own_cmds[i];
        const char *bar = strchr(o->name, '|');
        if (bar == NULL) {
            if (find_mut(t->cmds, t->n, o->name) == NULL)
                own_def(&t->cmds[t->n++], o->name, o->arity, o->flags, o->local);
            continue;
        }
        char parent[48];
        snprintf(parent, sizeof(parent), "%.*s", (int)(bar - o->name), o->name);
        struct px_cmddef *p = find_mut(t->cmds, t->n, parent);
        if (p == NULL) {
            p = &t->cmds[t->n++];
            own_def(p, parent, -2, 0, PX_L_NONE);
            p->route = PX_ROUTE_REFUSE;
        }
        struct px_cmddef *subs = realloc(p->subs, (p->nsubs + 1) * sizeof(*subs));
        if (subs == NULL)
            return -1;
        p->subs = subs;
        own_def(&p->subs[p->nsubs++], o->name, o->arity, o->flags, o->local);
        qsort(p->subs, p->nsubs, sizeof(*p->subs), cmp_def);
    }
    return 0;
}

int px_cmdtable_build(const redisReply *r, struct px_cmdtable **out, char *err, size_t errlen)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        snprintf(err, errlen, "COMMAND returned no command table");
        return -1;
    }
    struct px_cmdtable *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->cmds = calloc(r->elements, sizeof(*t->cmds))) == NULL) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < r->elements; i++)
        if (fill_def(&t->cmds[t->n], r->element[i], NULL) == 0)
            t->n++;
    t->n_backend = t->n;
    if (add_own(t) != 0) {
        px_cmdtable_free(t);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    qsort(t->cmds, t->n, sizeof(*t->cmds), cmp_def);
    *out = t;
    return 0;
}

void px_cmdtable_free(struct px_cmdtable *t)
{
    if (t == NULL)
        return;
    defs_free(t->cmds, t->n);
    free(t);
}

size_t px_cmdtable_size(const struct px_cmdtable *t)
{
    return t->n_backend;
}

size_t px_cmdtable_count(const struct px_cmdtable *t)
{
    return t->n;
}

const struct px_cmddef *px_cmdtable_at(const struct px_cmdtable *t, size_t i)
{
    return i < t->n ? &t->cmds[i] : NULL;
}

static const struct px_cmddef *find(const struct px_cmddef *defs, size_t n, const char *name)
{
    struct px_cmddef key;
    snprintf(key.name, sizeof(key.name), "%s", name);
    return bsearch(&key, defs, n, sizeof(*defs), cmp_def);
}

/* Redis quotes at most 128 bytes of each argument and stops adding after 128 bytes in all. */
static void unknown_cmd_err(char *err, size_t errlen, int argc, char *const *argv)
{
    int off =
        snprintf(err, errlen, "ERR unknown command '%.128s', with args beginning with: ", argv[0]);
    size_t args = 0;
    for (int i = 1; i < argc && args < 128 && off > 0 && (size_t)off < errlen; i++) {
        int n = snprintf(err + off, errlen - (size_t)off, "'%.*s' ", (int)(128 - args), argv[i]);
        if (n < 0)
            break;
        args += (size_t)n;
        off += n;
    }
}

static int arity_ok(const struct px_cmddef *d, int argc)
{
    return d->arity > 0 ? argc == d->arity : argc >= -d->arity;
}

enum lookup_miss { MISS_NONE = 0, MISS_UNKNOWN, MISS_SUB, MISS_ARITY };

/* The command (or subcommand) argv names, or NULL with the reason in *miss (for MISS_ARITY the
 * definition whose arity failed is still returned through *d_out). Reads arguments by their
 * lengths only. */
static const struct px_cmddef *resolve(const struct px_cmdtable *t, int argc,
                                       const char *const *argv, const size_t *argvlen,
                                       enum lookup_miss *miss, const struct px_cmddef **d_out)
{
    char name[48];
    *miss = MISS_UNKNOWN;
    *d_out = NULL;
    /* A NUL inside a name would make the C-string compare below match a real command. */
    if (argvlen[0] >= sizeof(name) || memchr(argv[0], '\0', argvlen[0]) != NULL)
        return NULL;
    lower_copy(name, sizeof(name), argv[0], argvlen[0]);
    const struct px_cmddef *d = find(t->cmds, t->n, name);
    if (d == NULL)
        return NULL;
    *d_out = d;
    if (d->nsubs > 0 && argc >= 2) {
        char full[96];
        char sub[48];
        const struct px_cmddef *s = NULL;
        if (argvlen[1] < sizeof(sub) && memchr(argv[1], '\0', argvlen[1]) == NULL) {
            lower_copy(sub, sizeof(sub), argv[1], argvlen[1]);
            snprintf(full, sizeof(full), "%s|%s", name, sub);
            s = find(d->subs, d->nsubs, full);
        }
        if (s == NULL) {
            *miss = MISS_SUB;
            return NULL;
        }
        *d_out = d = s;
    }
    if (!arity_ok(d, argc)) {
        *miss = MISS_ARITY;
        return NULL;
    }
    *miss = MISS_NONE;
    return d;
}

const struct px_cmddef *px_cmd_find(const struct px_cmdtable *t, int argc, const char *const *argv,
                                    const size_t *argvlen)
{
    enum lookup_miss miss;
    const struct px_cmddef *d;
    return argc >= 1 ? resolve(t, argc, argv, argvlen, &miss, &d) : NULL;
}

const struct px_cmddef *px_cmd_lookup(const struct px_cmdtable *t, int argc, char *const *argv,
                                      const size_t *argvlen, char *err, size_t errlen)
{
    enum lookup_miss miss;
    const struct px_cmddef *d;
    const struct px_cmddef *found = resolve(t, argc, (const char *const *)argv, argvlen, &miss, &d);
    if (found != NULL)
        return found;
    if (miss == MISS_UNKNOWN) {
        unknown_cmd_err(err, errlen, argc, argv);
        return NULL;
    }
    if (miss == MISS_SUB) {
        char name[48];
        lower_copy(name, sizeof(name), argv[0], argvlen[0]);
        char upper[48];
        size_t i;
        for (i = 0; name[i] && i < sizeof(upper) - 1; i++)
            upper[i] = (char)toupper((unsigned char)name[i]);
        upper[i] = '\0';
        snprintf(err, errlen, "ERR unknown subcommand '%.128s'. Try %s HELP.", argv[1], upper);
        return NULL;
    }
    snprintf(err, errlen, "ERR wrong number of arguments for '%s' command", d->display);
    return NULL;
}
