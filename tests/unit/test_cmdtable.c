/* Unit tests for proxy/cmdtable.c: the command table built from Redis's COMMAND reply.
 *
 * The table is redis-server 7.0.15's (the version the project runs against), from
 * tests/unit/cmdtable_fixture.h. Expected error texts are what redis-server 7.0.15 answers for
 * the same commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cmdtable.h"
#include "proxy/keys.h"
#include "tests/unit/cmdtable_fixture.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* Parses RESP bytes into one reply with hiredis; NULL if incomplete or malformed. */
static redisReply *parse_reply(const char *bytes, size_t len)
{
    redisReader *rd = redisReaderCreate();
    assert_non_null(rd);
    void *reply = NULL;
    if (redisReaderFeed(rd, bytes, len) != REDIS_OK ||
        redisReaderGetReply(rd, &reply) != REDIS_OK) {
        redisReaderFree(rd);
        return NULL;
    }
    redisReaderFree(rd);
    return reply;
}
#define PARSE(lit) parse_reply((lit), sizeof(lit) - 1)

/* Looks up a command given as words (each NUL-terminated, lengths from strlen). */
static const struct px_cmddef *lookup_v(const struct px_cmdtable *t, char *err, size_t errlen,
                                        int argc, const char *const *words)
{
    char *argv[64];
    size_t lens[64];
    assert_true(argc <= 64);
    for (int i = 0; i < argc; i++) {
        argv[i] = (char *)words[i];
        lens[i] = strlen(words[i]);
    }
    err[0] = '\0';
    return px_cmd_lookup(t, argc, argv, lens, err, errlen);
}
#define LOOKUP(t, err, ...)                                                                        \
    lookup_v((t), (err), sizeof(err), sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *),      \
             (const char *[]){__VA_ARGS__})

static const struct px_cmddef *must_find(const struct px_cmdtable *t, int argc,
                                         const char *const *words)
{
    char err[512];
    const struct px_cmddef *d = lookup_v(t, err, sizeof(err), argc, words);
    if (d == NULL)
        fail_msg("lookup of '%s' failed: %s", words[0], err);
    return d;
}
#define FIND(t, ...)                                                                               \
    must_find((t), sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *),                         \
              (const char *[]){__VA_ARGS__})

/* ---- the table from a real COMMAND reply --------------------------------------------------- */

static void test_build_size(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(f->reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(f->reply->elements, 240); /* Redis 7.0.15's command count */
    assert_int_equal(px_cmdtable_size(f->t), 240);
}

static void test_lookup_case_and_fields(void **state)
{
    struct fixture *f = *state;
    const struct px_cmddef *get = FIND(f->t, "get", "k");
    assert_string_equal(get->name, "get");
    assert_string_equal(get->display, "get");
    assert_int_equal(get->arity, 2);
    assert_true(get->flags & PX_CF_READONLY);
    assert_true(get->flags & PX_CF_FAST);
    assert_false(get->flags & PX_CF_WRITE);
    assert_int_equal(get->first_key, 1);
    assert_int_equal(get->last_key, 1);
    assert_int_equal(get->key_step, 1);
    assert_ptr_equal(FIND(f->t, "GET", "k"), get);
    assert_ptr_equal(FIND(f->t, "gEt", "k"), get);

    const struct px_cmddef *set = FIND(f->t, "SET", "k", "v");
    assert_string_equal(set->name, "set");
    assert_int_equal(set->arity, -3);
    assert_true(set->flags & PX_CF_WRITE);
    assert_true(set->flags & PX_CF_DENYOOM);

    const struct px_cmddef *mset = FIND(f->t, "mset", "a", "1", "b", "2");
    assert_int_equal(mset->first_key, 1);
    assert_int_equal(mset->last_key, -1);
    assert_int_equal(mset->key_step, 2);

    const struct px_cmddef *cg = FIND(f->t, "CONFIG", "GET", "maxmemory");
    assert_string_equal(cg->name, "config|get");
    assert_string_equal(cg->display, "config|get");
    assert_int_equal(cg->arity, -3);
    assert_true(cg->flags & PX_CF_ADMIN);

    assert_string_equal(FIND(f->t, "config", "HELP")->name, "config|help");

    assert_true(FIND(f->t, "auth", "pw")->flags & PX_CF_NO_AUTH);
    assert_true(FIND(f->t, "blpop", "l", "0")->flags & PX_CF_BLOCKING);
    assert_true(FIND(f->t, "subscribe", "c")->flags & PX_CF_PUBSUB);
    assert_true(FIND(f->t, "eval", "return 1", "0")->flags & PX_CF_MOVABLEKEYS);
    assert_true(FIND(f->t, "flushall")->flags & PX_CF_WRITE);
}

static void test_routes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(FIND(f->t, "get", "k")->route, PX_ROUTE_READ);
    assert_int_equal(FIND(f->t, "set", "k", "v")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "eval", "return 1", "0")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "evalsha", "abc", "0")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "fcall", "f", "0")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "publish", "c", "m")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "script", "load", "return 1")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "del", "a", "b")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "incr", "a")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "mget", "a", "b")->route, PX_ROUTE_READ);
    assert_int_equal(FIND(f->t, "exists", "a")->route, PX_ROUTE_READ);
    assert_int_equal(FIND(f->t, "info")->route, PX_ROUTE_READ);

    const struct px_cmddef *ping = FIND(f->t, "ping");
    assert_int_equal(ping->route, PX_ROUTE_LOCAL);
    assert_int_equal(ping->local, PX_L_PING);
    assert_int_equal(FIND(f->t, "echo", "x")->local, PX_L_ECHO);
    assert_int_equal(FIND(f->t, "select", "1")->local, PX_L_SELECT);
    assert_int_equal(FIND(f->t, "auth", "pw")->local, PX_L_AUTH);
    assert_int_equal(FIND(f->t, "hello")->local, PX_L_HELLO);
    assert_int_equal(FIND(f->t, "quit")->local, PX_L_QUIT);
    const struct px_cmddef *sn = FIND(f->t, "client", "setname", "x");
    assert_int_equal(sn->route, PX_ROUTE_LOCAL);
    assert_int_equal(sn->local, PX_L_CLIENT_SETNAME);
    assert_int_equal(FIND(f->t, "CLIENT", "GETNAME")->local, PX_L_CLIENT_GETNAME);
    assert_int_equal(FIND(f->t, "client", "id")->local, PX_L_CLIENT_ID);

    const struct px_cmddef *sub = FIND(f->t, "subscribe", "c");
    assert_int_equal(sub->local, PX_L_PUBSUB); /* its own link to the local redis */
    assert_int_equal(FIND(f->t, "punsubscribe")->local, PX_L_PUBSUB);
    /* blocking pops go through the log (proxy/block.c parks them) */
    assert_int_equal(FIND(f->t, "blpop", "l", "0")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "brpop", "l", "0")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "bzpopmin", "z", "0")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "blmove", "a", "b", "left", "left", "0")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "multi")->local, PX_L_MULTI);
    assert_int_equal(FIND(f->t, "exec")->local, PX_L_EXEC);
    assert_int_equal(FIND(f->t, "watch", "k")->local, PX_L_WATCH);
    assert_int_equal(FIND(f->t, "unwatch")->local, PX_L_UNWATCH);
    assert_int_equal(FIND(f->t, "wait", "1", "0")->local, PX_L_WAIT);
    assert_int_equal(FIND(f->t, "client", "unblock", "1")->local, PX_L_CLIENT_UNBLOCK);
    assert_int_equal(FIND(f->t, "monitor")->local, PX_L_MONITOR);
    assert_int_equal(FIND(f->t, "replicaof", "no", "one")->route, PX_ROUTE_REFUSE);
    /* Found reviewing hostile input: MIGRATE went through the log, so every node's Redis moved
     * the key to the same target; the first succeeded and deleted it, the rest got BUSYKEY and
     * kept it. */
    const struct px_cmddef *mig = FIND(f->t, "migrate", "h", "1", "k", "0", "100");
    assert_int_equal(mig->route, PX_ROUTE_REFUSE);
    assert_non_null(strstr(mig->why, "replicas would differ"));
    /* Found writing the hostile-input tests: the override refused the MODULE container, but a
     * lookup returns the subcommand, so MODULE LOAD went to the local Redis as a read (only its
     * own enable-module-command stood in the way). A refused container refuses every
     * subcommand. */
    const struct px_cmddef *ml = FIND(f->t, "module", "load", "/x.so");
    assert_int_equal(ml->route, PX_ROUTE_REFUSE);
    assert_non_null(ml->why);
    assert_int_equal(FIND(f->t, "module", "unload", "m")->route, PX_ROUTE_REFUSE);
    assert_int_equal(FIND(f->t, "module", "loadex", "/x.so")->route, PX_ROUTE_REFUSE);
    assert_int_equal(FIND(f->t, "cluster", "info")->route, PX_ROUTE_REFUSE);
    /* a container with no override of its own leaves each subcommand to its flags and its own
     * override */
    assert_int_equal(FIND(f->t, "acl", "whoami")->route, PX_ROUTE_READ);
    assert_int_equal(FIND(f->t, "acl", "setuser", "u")->route, PX_ROUTE_REFUSE);
    /* DEBUG: a read, checked before routing (only the subcommands that read pass) */
    assert_int_equal(FIND(f->t, "debug", "sleep", "0")->route, PX_ROUTE_READ);
    assert_int_equal(FIND(f->t, "debug", "sleep", "0")->check, PX_CHK_DEBUG_SAFE);
    /* Kills go through the log, handled by kill.c before routing; SHUTDOWN is refused there
     * but while a script runs (SHUTDOWN NOSAVE). */
    assert_int_equal(FIND(f->t, "shutdown")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "shutdown")->local, PX_L_SHUTDOWN);
    assert_int_equal(FIND(f->t, "script", "kill")->local, PX_L_SCRIPT_KILL);
    assert_int_equal(FIND(f->t, "function", "kill")->local, PX_L_FUNCTION_KILL);
    assert_int_equal(FIND(f->t, "raft.skip-entry", "5")->route, PX_ROUTE_WRITE);
    assert_int_equal(FIND(f->t, "raft.skip-entry", "5")->local, PX_L_RAFT_SKIP);

    assert_int_equal(FIND(f->t, "config", "get", "x")->route, PX_ROUTE_READ);
    const struct px_cmddef *cs = FIND(f->t, "config", "set", "x", "y");
    assert_int_equal(cs->route, PX_ROUTE_WRITE); /* every replica gets the same settings */
    assert_int_equal(cs->check, PX_CHK_CONFIG_SET);
    assert_int_equal(FIND(f->t, "config", "resetstat")->route, PX_ROUTE_READ);
    assert_int_equal(FIND(f->t, "config", "rewrite")->route, PX_ROUTE_REFUSE);
    assert_int_equal(FIND(f->t, "client", "kill", "id", "1")->route, PX_ROUTE_LOCAL);
    assert_int_equal(FIND(f->t, "client", "kill", "id", "1")->local, PX_L_CLIENT_KILL);
    assert_int_equal(FIND(f->t, "client", "reply", "on")->local, PX_L_CLIENT_REPLY);
    assert_int_equal(FIND(f->t, "client", "list")->local, PX_L_CLIENT_LIST);
    assert_int_equal(FIND(f->t, "client", "pause", "10")->local, PX_L_CLIENT_PAUSE);
    assert_int_equal(FIND(f->t, "client", "unpause")->local, PX_L_CLIENT_UNPAUSE);
    assert_int_equal(FIND(f->t, "client", "no-evict", "on")->route, PX_ROUTE_REFUSE);

    /* checks made before routing */
    const struct px_cmddef *move = FIND(f->t, "move", "k", "1");
    assert_int_equal(move->route, PX_ROUTE_WRITE);
    assert_int_equal(move->check, PX_CHK_DB_ARG);
    assert_int_equal(move->check_arg, 2);
    const struct px_cmddef *copy = FIND(f->t, "copy", "a", "b", "db", "1");
    assert_int_equal(copy->check, PX_CHK_DB_ARG);
    assert_int_equal(copy->check_arg, -1);
    assert_int_equal(FIND(f->t, "swapdb", "0", "1")->check, PX_CHK_DB_ARG);
}

/* XREAD and XREADGROUP are flagged `blocking` by Redis 7.0.15 although only their BLOCK option
 * blocks: XREAD is a read, XREADGROUP a write, with or without BLOCK (proxy/block.c). */
static void test_routes_xread(void **state)
{
    /* Regression: proxy/cmdtable.c apply_override: the `blocking` flag set route REFUSE, and an
     * override that kept the route (-1) left XREAD without BLOCK refused. */
    struct fixture *f = *state;
    const struct px_cmddef *x = FIND(f->t, "xread", "streams", "s", "0");
    assert_int_equal(x->check, PX_CHK_NONE);
    assert_int_equal(x->route, PX_ROUTE_READ);
    const struct px_cmddef *xg = FIND(f->t, "xreadgroup", "group", "g", "c", "streams", "s", ">");
    assert_int_equal(xg->check, PX_CHK_NONE);
    assert_int_equal(xg->route, PX_ROUTE_WRITE);
}

/* Every command Redis 7.0.15 flags `blocking` is one redraft serves (proxy/block.c) or refuses:
 * none reaches the local Redis with the power to block the connection the applies use. */
static void test_blocking_all_known(void **state)
{
    struct fixture *f = *state;
    static const char *const served[] = {"blpop",  "brpop",      "brpoplpush", "blmove",
                                         "blmpop", "bzpopmin",   "bzpopmax",   "bzmpop",
                                         "xread",  "xreadgroup", "wait",       NULL};
    size_t nserved = 0;
    for (size_t i = 0; i < px_cmdtable_count(f->t); i++) {
        const struct px_cmddef *d = px_cmdtable_at(f->t, i);
        if (!(d->flags & PX_CF_BLOCKING))
            continue;
        int known = 0;
        for (const char *const *n = served; *n; n++)
            known |= !strcmp(*n, d->name);
        if (known)
            nserved++;
        else
            assert_int_equal(d->route, PX_ROUTE_REFUSE);
    }
    assert_int_equal(nserved, 10); /* WAIT is not flagged `blocking`: answered by redraft */
}

/* redraft's own commands sit beside Redis's, with their arity checked like any other. */
static void test_own_commands(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(FIND(f->t, "RAFT.CLUSTER", "init")->local, PX_L_RAFT_INIT);
    assert_int_equal(FIND(f->t, "raft.cluster", "JOIN", "h:1", "h:2")->local, PX_L_RAFT_JOIN);
    assert_int_equal(FIND(f->t, "raft.node", "add", "5", "h:1")->local, PX_L_RAFT_NODE);
    assert_int_equal(FIND(f->t, "raft.node", "remove", "5")->local, PX_L_RAFT_NODE);
    assert_int_equal(FIND(f->t, "raft.info")->local, PX_L_RAFT_INFO);
    assert_int_equal(FIND(f->t, "raft.transfer-leader")->local, PX_L_RAFT_TRANSFER);
    /* CLIENT keeps Redis's subcommands and gains CONSISTENCY */
    assert_int_equal(FIND(f->t, "client", "consistency")->local, PX_L_CLIENT_CONSISTENCY);
    assert_int_equal(FIND(f->t, "client", "consistency", "eventual")->route, PX_ROUTE_LOCAL);
    assert_int_equal(FIND(f->t, "client", "setname", "x")->local, PX_L_CLIENT_SETNAME);
    char err[256];
    assert_null(LOOKUP(f->t, err, "raft.cluster", "join"));
    assert_string_equal(err, "ERR wrong number of arguments for 'raft.cluster|join' command");
    assert_null(LOOKUP(f->t, err, "raft.cluster", "nope"));
    assert_string_equal(err, "ERR unknown subcommand 'nope'. Try RAFT.CLUSTER HELP.");
    assert_null(LOOKUP(f->t, err, "raft.node", "add", "5"));
    /* counted apart from what the backend listed */
    assert_int_equal(px_cmdtable_size(f->t), 240);
    assert_int_equal(px_cmdtable_count(f->t), 245);
}

static void check_def(const struct px_cmddef *d, const char *name, long long arity)
{
    assert_string_equal(d->name, name);
    assert_string_equal(d->display, name);
    assert_int_equal(d->arity, arity);
    assert_true(d->route <= PX_ROUTE_REFUSE);
    if (d->route == PX_ROUTE_REFUSE)
        assert_non_null(d->why);
    if (d->route == PX_ROUTE_LOCAL)
        assert_true(d->local != PX_L_NONE);
    else if (d->route == PX_ROUTE_WRITE && d->local != PX_L_NONE)
        /* the kills: through the log, dispatched by kill.c */
        assert_true(d->local == PX_L_SCRIPT_KILL || d->local == PX_L_FUNCTION_KILL ||
                    d->local == PX_L_SHUTDOWN || d->local == PX_L_RAFT_SKIP);
    else
        assert_int_equal(d->local, PX_L_NONE);
    if (d->flags & PX_CF_WRITE)
        assert_true(d->route != PX_ROUTE_READ); /* a write never skips the log */
}

/* Looks up a command by `words` padded with "x" up to its arity; checks what comes back. */
static void check_entry(const struct px_cmdtable *t, const redisReply *e, int nwords,
                        const char *const *words)
{
    const char *name = e->element[0]->str;
    long long arity = e->element[1]->integer;
    int argc = (int)(arity > 0 ? arity : -arity);
    if (argc < nwords)
        argc = nwords;
    char *argv[32];
    size_t lens[32];
    assert_true(argc <= 32);
    for (int k = 0; k < argc; k++) {
        argv[k] = (char *)(k < nwords ? words[k] : "x");
        lens[k] = strlen(argv[k]);
    }
    char err[512];
    const struct px_cmddef *d = px_cmd_lookup(t, argc, argv, lens, err, sizeof(err));
    if (d == NULL)
        fail_msg("%s: %s", name, err);
    check_def(d, name, arity);
    /* one argument too few is an arity error naming the command as Redis does */
    if (argc - 1 >= nwords && argc > 1) {
        assert_null(px_cmd_lookup(t, argc - 1, argv, lens, err, sizeof(err)));
        char want[256];
        snprintf(want, sizeof(want), "ERR wrong number of arguments for '%s' command", name);
        assert_string_equal(err, want);
    }
}

/* Every command and subcommand of the real reply is found with its own arity, routes somewhere
 * sensible, and has Redis's arity error. */
static void test_every_command_consistent(void **state)
{
    struct fixture *f = *state;
    const redisReply *r = f->reply;
    size_t nsubs = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        const char *name = e->element[0]->str;
        int container = e->elements >= 10 && e->element[9]->type == REDIS_REPLY_ARRAY &&
                        e->element[9]->elements > 0;
        if (!container) {
            const char *w[] = {name};
            check_entry(f->t, e, 1, w);
            continue;
        }
        for (size_t s = 0; s < e->element[9]->elements; s++) {
            const redisReply *se = e->element[9]->element[s];
            const char *bar = strchr(se->element[0]->str, '|');
            assert_non_null(bar);
            assert_memory_equal(se->element[0]->str, name, strlen(name));
            const char *w[] = {name, bar + 1};
            check_entry(f->t, se, 2, w);
            nsubs++;
        }
    }
    assert_true(nsubs > 100); /* Redis 7.0.15 has about 130 subcommands */
}

/* ---- errors in Redis's words --------------------------------------------------------------- */

static void test_arity_errors(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_null(LOOKUP(f->t, err, "get"));
    assert_string_equal(err, "ERR wrong number of arguments for 'get' command");
    assert_null(LOOKUP(f->t, err, "GET", "a", "b"));
    assert_string_equal(err, "ERR wrong number of arguments for 'get' command");
    assert_null(LOOKUP(f->t, err, "set", "k"));
    assert_string_equal(err, "ERR wrong number of arguments for 'set' command");
    assert_non_null(LOOKUP(f->t, err, "set", "k", "v", "EX", "10", "NX"));
    assert_null(LOOKUP(f->t, err, "config", "get"));
    assert_string_equal(err, "ERR wrong number of arguments for 'config|get' command");
    assert_null(LOOKUP(f->t, err, "CONFIG", "GET"));
    assert_string_equal(err, "ERR wrong number of arguments for 'config|get' command");
    assert_null(LOOKUP(f->t, err, "client", "setname"));
    assert_string_equal(err, "ERR wrong number of arguments for 'client|setname' command");
    assert_null(LOOKUP(f->t, err, "client", "setname", "a", "b"));
    assert_string_equal(err, "ERR wrong number of arguments for 'client|setname' command");
    /* a container alone: its own arity */
    assert_null(LOOKUP(f->t, err, "config"));
    assert_string_equal(err, "ERR wrong number of arguments for 'config' command");
    assert_null(LOOKUP(f->t, err, "CLIENT"));
    assert_string_equal(err, "ERR wrong number of arguments for 'client' command");
}

static void test_unknown_command(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_null(LOOKUP(f->t, err, "foo", "a", "b"));
    assert_string_equal(err, "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
    assert_null(LOOKUP(f->t, err, "foo"));
    assert_string_equal(err, "ERR unknown command 'foo', with args beginning with: ");
    assert_null(LOOKUP(f->t, err, "FoO", "x y"));
    assert_string_equal(err, "ERR unknown command 'FoO', with args beginning with: 'x y' ");
    /* a prefix or a near name is not a command */
    assert_null(LOOKUP(f->t, err, "ge", "k"));
    assert_null(LOOKUP(f->t, err, "gett", "k"));
    assert_null(LOOKUP(f->t, err, "", "k"));
    assert_string_equal(err, "ERR unknown command '', with args beginning with: 'k' ");
    /* a subcommand's full name is not a command of its own */
    assert_null(LOOKUP(f->t, err, "config|get", "x"));
    assert_string_equal(err, "ERR unknown command 'config|get', with args beginning with: 'x' ");
}

/* Args are quoted up to 128 bytes in all (as redis-server 7.0.15 prints them). */
static void test_unknown_command_long_args(void **state)
{
    struct fixture *f = *state;
    char err[1024];
    char x200[201], x100[101], y100[101];
    memset(x200, 'x', 200);
    x200[200] = '\0';
    memset(x100, 'x', 100);
    x100[100] = '\0';
    memset(y100, 'y', 100);
    y100[100] = '\0';
    char want[1024];

    assert_null(LOOKUP(f->t, err, "foo", x200, "y"));
    snprintf(want, sizeof(want), "ERR unknown command 'foo', with args beginning with: '%.128s' ",
             x200);
    assert_string_equal(err, want);

    /* 'x*100' takes 103 bytes; 25 more of the second argument fit, and the third is dropped */
    assert_null(LOOKUP(f->t, err, "foo", x100, y100, "z"));
    snprintf(want, sizeof(want),
             "ERR unknown command 'foo', with args beginning with: '%s' '%.25s' ", x100, y100);
    assert_string_equal(err, want);

    /* many short arguments: stops once 128 bytes are written */
    const char *many[60];
    many[0] = "foo";
    for (int i = 1; i < 60; i++)
        many[i] = "ab";
    assert_null(lookup_v(f->t, err, sizeof(err), 60, many));
    size_t prefix = strlen("ERR unknown command 'foo', with args beginning with: ");
    assert_int_equal(strlen(err) - prefix, 26 * 5); /* 26 x "'ab' " reach 130 >= 128 */
}

static void test_very_long_command_names(void **state)
{
    struct fixture *f = *state;
    size_t sizes[] = {47, 48, 49, 128, 129, 1000, 100000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        char *name = malloc(n + 1);
        assert_non_null(name);
        memset(name, 'g', n);
        name[n] = '\0';
        char err[512];
        assert_null(LOOKUP(f->t, err, name, "a"));
        char want[512];
        snprintf(want, sizeof(want), "ERR unknown command '%.128s', with args beginning with: 'a' ",
                 name);
        assert_string_equal(err, want);
        /* a real command name followed by a long tail is not that command */
        memcpy(name, "get", 3);
        assert_null(LOOKUP(f->t, err, name, "a"));
        free(name);
    }
}

static void test_unknown_subcommand(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_null(LOOKUP(f->t, err, "config", "xyz"));
    assert_string_equal(err, "ERR unknown subcommand 'xyz'. Try CONFIG HELP.");
    assert_null(LOOKUP(f->t, err, "Config", "Xyz", "1", "2"));
    assert_string_equal(err, "ERR unknown subcommand 'Xyz'. Try CONFIG HELP.");
    assert_null(LOOKUP(f->t, err, "client", ""));
    assert_string_equal(err, "ERR unknown subcommand ''. Try CLIENT HELP.");
    /* a long subcommand name: quoted up to 128 bytes */
    char sub[301];
    memset(sub, 's', 300);
    sub[300] = '\0';
    assert_null(LOOKUP(f->t, err, "object", sub));
    char want[512];
    snprintf(want, sizeof(want), "ERR unknown subcommand '%.128s'. Try OBJECT HELP.", sub);
    assert_string_equal(err, want);
    /* "get" + a long tail must not resolve to config|get */
    memcpy(sub, "get", 3);
    assert_null(LOOKUP(f->t, err, "config", sub, "x"));
    /* a subcommand of another container is unknown here */
    assert_null(LOOKUP(f->t, err, "config", "setname", "x"));
    assert_string_equal(err, "ERR unknown subcommand 'setname'. Try CONFIG HELP.");
}

/* Redis compares a command name by all its bytes: "get\0xx" is not GET (7.0.15 answers
 * "ERR unknown command 'get', with args beginning with: 'k' "). */
static void test_name_with_nul(void **state)
{
    /* Regression: proxy/cmdtable.c px_cmd_lookup copies argvlen[0] bytes into a C string and
     * bsearches with strcmp, so an argv[0] of "get\0xx" (6 bytes) resolves to GET (and
     * "set\0x" to SET, routed as a write into the log); the same for a subcommand
     * ("config" "get\0x"). Expected: NULL with the unknown command (subcommand) error, as
     * redis-server 7.0.15 answers. */
    struct fixture *f = *state;
    char err[512];
    char *argv[] = {"get\0xx", "k"};
    size_t lens[] = {6, 1};
    assert_null(px_cmd_lookup(f->t, 2, argv, lens, err, sizeof(err)));
    assert_string_equal(err, "ERR unknown command 'get', with args beginning with: 'k' ");
    char *argv2[] = {"config", "get\0x", "maxmemory"};
    size_t lens2[] = {6, 5, 9};
    assert_null(px_cmd_lookup(f->t, 3, argv2, lens2, err, sizeof(err)));
    assert_string_equal(err, "ERR unknown subcommand 'get'. Try CONFIG HELP.");
}

/* A small error buffer gets a truncated, terminated message, never an overflow. */
static void test_small_err_buffer(void **state)
{
    struct fixture *f = *state;
    for (size_t errlen = 1; errlen < 80; errlen++) {
        char *err = malloc(errlen); /* exact size, for ASan */
        assert_non_null(err);
        char *argv[] = {"nosuchcommand", "aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb", "c"};
        size_t lens[] = {13, 20, 24, 1};
        assert_null(px_cmd_lookup(f->t, 4, argv, lens, err, errlen));
        assert_true(strlen(err) < errlen);
        char *argv2[] = {"config", "nosuchsub"};
        size_t lens2[] = {6, 9};
        assert_null(px_cmd_lookup(f->t, 2, argv2, lens2, err, errlen));
        assert_true(strlen(err) < errlen);
        char *argv3[] = {"config", "get"};
        size_t lens3[] = {6, 3};
        assert_null(px_cmd_lookup(f->t, 2, argv3, lens3, err, errlen));
        assert_true(strlen(err) < errlen);
        free(err);
    }
}

/* ---- malformed COMMAND replies -------------------------------------------------------------- */

static void test_build_rejects_non_tables(void **state)
{
    (void)state;
    char err[256];
    struct px_cmdtable *t = NULL;
    assert_int_equal(px_cmdtable_build(NULL, &t, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    const char *bad[] = {"+OK\r\n", "-ERR unknown command 'COMMAND'\r\n",
                         ":1\r\n",  "$3\r\nabc\r\n",
                         "$-1\r\n", "*0\r\n",
                         "*-1\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReply *r = parse_reply(bad[i], strlen(bad[i]));
        assert_non_null(r);
        err[0] = '\0';
        t = NULL;
        assert_int_equal(px_cmdtable_build(r, &t, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
        freeReplyObject(r);
    }
}

/* Builds a table from RESP text; returns it (the reply is freed: the table must not keep
 * pointers into it). */
static struct px_cmdtable *build_from(const char *resp)
{
    redisReply *r = parse_reply(resp, strlen(resp));
    assert_non_null(r);
    char err[256] = "";
    struct px_cmdtable *t = NULL;
    int rc = px_cmdtable_build(r, &t, err, sizeof(err));
    freeReplyObject(r);
    if (rc != 0)
        return NULL;
    assert_non_null(t);
    return t;
}

#define GET_ENTRY                                                                                  \
    "*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n"   \
    "*0\r\n"

static void test_build_skips_bad_entries(void **state)
{
    (void)state;
    /* good GET entry plus bad ones: an integer, too few elements, wrong element types */
    struct px_cmdtable *t = build_from("*6\r\n" GET_ENTRY ":5\r\n"
                                       "*2\r\n$3\r\nfoo\r\n:1\r\n"
                                       "*6\r\n:1\r\n:1\r\n*0\r\n:0\r\n:0\r\n:0\r\n"
                                       "*6\r\n$3\r\nbar\r\n$1\r\n1\r\n*0\r\n:0\r\n:0\r\n:0\r\n"
                                       "*6\r\n$3\r\nbaz\r\n:1\r\n+x\r\n:0\r\n:0\r\n:0\r\n");
    /* either a clean failure or a table holding only the good entry */
    if (t != NULL) {
        assert_int_equal(px_cmdtable_size(t), 1);
        char err[256];
        assert_non_null(LOOKUP(t, err, "get", "k"));
        assert_null(LOOKUP(t, err, "foo"));
        assert_null(LOOKUP(t, err, "bar"));
        assert_null(LOOKUP(t, err, "baz"));
        px_cmdtable_free(t);
    }
}

static void test_build_odd_fields(void **state)
{
    (void)state;
    /* key positions that are not integers, flags that are not strings, a nil flag, a name in
     * upper case, no subcommand array: no crash, the command is usable */
    struct px_cmdtable *t =
        build_from("*2\r\n"
                   "*6\r\n$3\r\nGET\r\n:2\r\n*4\r\n:7\r\n$-1\r\n*0\r\n+readonly\r\n$1\r\nx\r\n"
                   "$-1\r\n*0\r\n"
                   "*10\r\n$4\r\nLong\r\n:-1\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n:5\r\n");
    assert_non_null(t);
    char err[256];
    const struct px_cmddef *d = LOOKUP(t, err, "get", "k");
    assert_non_null(d);
    assert_true(d->flags & PX_CF_READONLY);
    assert_int_equal(d->route, PX_ROUTE_READ);
    assert_non_null(LOOKUP(t, err, "long", "a", "b")); /* a non-array 10th element: no subs */
    px_cmdtable_free(t);
}

static void test_build_bad_subcommands(void **state)
{
    (void)state;
    /* a container whose subcommand list holds good and bad entries */
    struct px_cmdtable *t = build_from(
        "*1\r\n"
        "*10\r\n$6\r\nconfig\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
        "*4\r\n"
        "*10\r\n$10\r\nconfig|get\r\n:-3\r\n*1\r\n+admin\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*"
        "0\r\n*0\r\n"
        ":1\r\n"
        "*1\r\n$10\r\nconfig|set\r\n"
        "$3\r\nxyz\r\n");
    assert_non_null(t);
    char err[256];
    const struct px_cmddef *d = LOOKUP(t, err, "config", "get", "x");
    assert_non_null(d);
    assert_string_equal(d->name, "config|get");
    assert_null(LOOKUP(t, err, "config", "set", "a", "b"));
    assert_string_equal(err, "ERR unknown subcommand 'set'. Try CONFIG HELP.");
    px_cmdtable_free(t);

    /* a container whose subcommands are all bad: still a usable command */
    t = build_from("*1\r\n"
                   "*10\r\n$6\r\nconfig\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
                   "*2\r\n:1\r\n$-1\r\n");
    assert_non_null(t);
    assert_non_null(LOOKUP(t, err, "config", "get"));
    px_cmdtable_free(t);
    px_cmdtable_free(NULL);
}

/* Each entry of the real reply makes a table of one command on its own. */
static void test_build_every_entry_alone(void **state)
{
    struct fixture *f = *state;
    /* a table of one command, for each command of the real reply */
    for (size_t i = 0; i < f->reply->elements; i++) {
        redisReply one = *f->reply;
        one.elements = 1;
        one.element = &f->reply->element[i];
        char err[256];
        struct px_cmdtable *t = NULL;
        assert_int_equal(px_cmdtable_build(&one, &t, err, sizeof(err)), 0);
        assert_int_equal(px_cmdtable_size(t), 1);
        px_cmdtable_free(t);
    }
}

/* ---- px_cmd_keys: which keys a command touches --------------------------------------------- */

struct keys_seen {
    char text[512]; /* "db:key " for each key, in order */
};

static void keys_collect(void *ctx, int64_t db, const char *key, size_t len)
{
    struct keys_seen *k = ctx;
    size_t n = strlen(k->text);
    snprintf(k->text + n, sizeof(k->text) - n, "%lld:%.*s ", (long long)db, (int)len, key);
}

/* The keys of argv (run in db 3) as "db:key ..." and the scope, with argv's lengths given
 * explicitly and no NUL after any argument, as a log entry hands them over. */
static const char *keys_of(struct px_cmdtable *t, struct px_keys_span *span, int argc,
                           const char *const *args)
{
    static struct keys_seen seen;
    static char bytes[1024];
    const char *argv[32];
    size_t argvlen[32], off = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(args[i]);
        memcpy(bytes + off, args[i], n);
        bytes[off + n] = '#'; /* not a NUL: the parser must stop at the length */
        argv[i] = bytes + off;
        argvlen[i] = n;
        off += n + 1;
    }
    const struct px_cmddef *d = must_find(t, (size_t)argc, args);
    memset(&seen, 0, sizeof(seen));
    px_cmd_keys(d, argc, argv, argvlen, 3, keys_collect, &seen, span);
    return seen.text;
}
#define KEYS(t, span, ...)                                                                         \
    keys_of((t), (span), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)),            \
            (const char *[]){__VA_ARGS__})

static void test_keys_fixed_positions(void **state)
{
    struct fixture *f = *state;
    struct px_keys_span sp;
    assert_string_equal(KEYS(f->t, &sp, "set", "k", "v"), "3:k ");
    assert_int_equal(sp.scope, PX_KEYS_LISTED);
    assert_string_equal(KEYS(f->t, &sp, "mset", "a", "1", "b", "2"), "3:a 3:b ");
    assert_string_equal(KEYS(f->t, &sp, "del", "a", "b", "c"), "3:a 3:b 3:c ");
    /* last key -2: BLPOP's timeout is not a key */
    assert_string_equal(KEYS(f->t, &sp, "blpop", "l1", "l2", "0"), "3:l1 3:l2 ");
    assert_string_equal(KEYS(f->t, &sp, "blmove", "s", "d", "left", "right", "0"), "3:s 3:d ");
    assert_string_equal(KEYS(f->t, &sp, "rename", "a", "b"), "3:a 3:b ");
    /* no keys at all */
    assert_string_equal(KEYS(f->t, &sp, "publish", "ch", "m"), "");
    assert_int_equal(sp.scope, PX_KEYS_LISTED);
    assert_string_equal(KEYS(f->t, &sp, "config", "set", "maxmemory-policy", "noeviction"), "");
    assert_int_equal(sp.scope, PX_KEYS_LISTED);
}

static void test_keys_movable_forms(void **state)
{
    struct fixture *f = *state;
    struct px_keys_span sp;
    assert_string_equal(KEYS(f->t, &sp, "zunionstore", "d", "2", "a", "b", "weights", "1", "2"),
                        "3:d 3:a 3:b ");
    assert_int_equal(sp.scope, PX_KEYS_LISTED);
    assert_string_equal(KEYS(f->t, &sp, "lmpop", "2", "a", "b", "left"), "3:a 3:b ");
    assert_string_equal(KEYS(f->t, &sp, "blmpop", "0.5", "1", "a", "left", "count", "2"), "3:a ");
    assert_string_equal(KEYS(f->t, &sp, "bzmpop", "1", "2", "a", "b", "min"), "3:a 3:b ");
    assert_string_equal(KEYS(f->t, &sp, "sort", "l", "by", "w_*", "store", "dst"), "3:l 3:dst ");
    assert_string_equal(KEYS(f->t, &sp, "sort", "l", "STORE", "dst", "limit", "0", "1"),
                        "3:l 3:dst ");
    assert_string_equal(KEYS(f->t, &sp, "georadius", "g", "1", "2", "3", "km", "storedist", "x"),
                        "3:g 3:x ");
    assert_string_equal(KEYS(f->t, &sp, "xread", "count", "2", "streams", "s1", "s2", "0", "$"),
                        "3:s1 3:s2 ");
    assert_string_equal(
        KEYS(f->t, &sp, "xreadgroup", "group", "g", "c", "block", "0", "STREAMS", "s", ">"),
        "3:s ");
    assert_int_equal(sp.scope, PX_KEYS_LISTED);
    /* a numkeys that is not a number, or too large, or an odd STREAMS tail: assume the worst */
    KEYS(f->t, &sp, "lmpop", "x", "a", "left");
    assert_int_equal(sp.scope, PX_KEYS_EVERY);
    KEYS(f->t, &sp, "zunionstore", "d", "9", "a");
    assert_int_equal(sp.scope, PX_KEYS_EVERY);
    KEYS(f->t, &sp, "xread", "streams", "s1", "s2", "0");
    assert_int_equal(sp.scope, PX_KEYS_EVERY);
}

static void test_keys_databases(void **state)
{
    struct fixture *f = *state;
    struct px_keys_span sp;
    assert_string_equal(KEYS(f->t, &sp, "move", "k", "7"), "3:k 7:k ");
    assert_int_equal(sp.scope, PX_KEYS_LISTED);
    assert_string_equal(KEYS(f->t, &sp, "copy", "a", "b", "db", "5", "replace"), "3:a 5:b ");
    assert_string_equal(KEYS(f->t, &sp, "copy", "a", "b"), "3:a 3:b ");
    assert_string_equal(KEYS(f->t, &sp, "flushdb"), "");
    assert_int_equal(sp.scope, PX_KEYS_DBS);
    assert_int_equal(sp.ndbs, 1);
    assert_int_equal(sp.dbs[0], 3);
    KEYS(f->t, &sp, "swapdb", "1", "4");
    assert_int_equal(sp.scope, PX_KEYS_DBS);
    assert_int_equal(sp.ndbs, 2);
    assert_int_equal(sp.dbs[0], 1);
    assert_int_equal(sp.dbs[1], 4);
    KEYS(f->t, &sp, "swapdb", "2", "2");
    assert_int_equal(sp.ndbs, 1);
    KEYS(f->t, &sp, "swapdb", "x", "2");
    assert_int_equal(sp.scope, PX_KEYS_EVERY);
    KEYS(f->t, &sp, "move", "k", "-1");
    assert_int_equal(sp.scope, PX_KEYS_EVERY);
    KEYS(f->t, &sp, "flushall");
    assert_int_equal(sp.scope, PX_KEYS_EVERY);
    /* scripts may write keys they did not declare */
    assert_string_equal(KEYS(f->t, &sp, "eval", "return 1", "1", "k"), "");
    assert_int_equal(sp.scope, PX_KEYS_EVERY);
    KEYS(f->t, &sp, "fcall", "f", "0");
    assert_int_equal(sp.scope, PX_KEYS_EVERY);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_size),
        cmocka_unit_test(test_lookup_case_and_fields),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_routes_xread),
        cmocka_unit_test(test_own_commands),
        cmocka_unit_test(test_every_command_consistent),
        cmocka_unit_test(test_arity_errors),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_unknown_command_long_args),
        cmocka_unit_test(test_very_long_command_names),
        cmocka_unit_test(test_unknown_subcommand),
        cmocka_unit_test(test_name_with_nul),
        cmocka_unit_test(test_small_err_buffer),
        cmocka_unit_test(test_build_every_entry_alone),
        cmocka_unit_test(test_keys_fixed_positions),
        cmocka_unit_test(test_keys_movable_forms),
        cmocka_unit_test(test_keys_databases),
        cmocka_unit_test(test_blocking_all_known),
    };
    const struct CMUnitTest standalone[] = {
        cmocka_unit_test(test_build_rejects_non_tables),
        cmocka_unit_test(test_build_skips_bad_entries),
        cmocka_unit_test(test_build_odd_fields),
        cmocka_unit_test(test_build_bad_subcommands),
    };
    int failed =
        cmocka_run_group_tests_name("cmdtable from COMMAND (redis 7.0.15)", tests, setup, teardown);
    failed +=
        cmocka_run_group_tests_name("cmdtable from malformed replies", standalone, NULL, NULL);
    return failed != 0;
}
