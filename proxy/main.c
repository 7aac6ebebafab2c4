/* main.c: wires redraft together. The only file that knows every module:
 *
 *   config -> log -> store (RocksDB) -> node (the log's commit rule) -> server (clients)
 *                                    -> link (hiredis to the local Redis) -> apply
 *
 * The loop's before-sleep step (an ev_prepare watcher, like Redis's beforeSleep) first makes
 * the turn's proposals durable with one synced write (group commit), which commits them and
 * starts their apply, then writes the turn's replies to clients.
 */
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/apply.h"
#include "backend/link.h"
#include "common/log.h"
#include "proxy/config.h"
#include "proxy/server.h"
#include "raftlog/node.h"
#include "raftlog/store.h"

#define REDRAFT_VERSION "0.1.0"

struct app {
    struct ev_loop *loop;
    struct px_config cfg;
    struct rlog *store;
    struct rn_node *node;
    struct px_server *server;
    struct be_link *link;
    struct be_apply *apply;
    ev_prepare before_sleep;
    ev_signal sigterm, sigint;
};

static void on_committed(void *ctx, uint64_t commit)
{
    struct app *a = ctx;
    px_server_on_committed(a->server, commit);
}

static void on_commands(void *ctx, const struct redisReply *reply)
{
    struct app *a = ctx;
    px_server_on_commands(a->server, reply);
}

static void on_ready(void *ctx, const struct be_link_info *info)
{
    struct app *a = ctx;
    px_server_on_backend_ready(a->server, info);
}

static void on_down(void *ctx, const char *why)
{
    struct app *a = ctx;
    px_server_on_backend_down(a->server, why);
}

static int on_fetch(void *ctx, uint64_t index, void **data, size_t *len)
{
    struct app *a = ctx;
    return rn_fetch(a->node, index, data, len) == RN_OK ? 0 : -1;
}

static void on_reply(void *ctx, uint64_t reqid, const char *resp, size_t len)
{
    struct app *a = ctx;
    px_server_on_write_reply(a->server, reqid, resp, len);
}

static void on_applied(void *ctx, uint64_t index)
{
    struct app *a = ctx;
    px_server_on_applied(a->server, index);
}

static void before_sleep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct app *a = w->data;
    rn_flush(a->node);
    px_server_before_sleep(a->server);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct app *a = w->data;
    rd_notice("received %s, shutting down", w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
    rn_flush(a->node);
    px_server_before_sleep(a->server);
    ev_break(loop, EVBREAK_ALL);
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static uint64_t next_boot(struct rlog *store)
{
    uint64_t boot = 0;
    rlog_get_meta_u64(store, "boot", &boot);
    boot++;
    rlog_set_meta_u64(store, "boot", boot);
    return boot;
}

int main(int argc, char **argv)
{
    static struct app a;
    char err[1024];
    if (argc >= 2 && (!strcmp(argv[1], "-v") || !strcmp(argv[1], "--version"))) {
        printf("redraft %s\n", REDRAFT_VERSION);
        return 0;
    }
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: redraft [config-file] [--option value ...]\n"
               "see contrib/redraft.conf for every option\n");
        return 0;
    }
    px_config_init(&a.cfg);
    if (px_config_load(&a.cfg, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (rd_log_open(a.cfg.logfile, a.cfg.loglevel) != 0) {
        fprintf(stderr, "cannot open logfile '%s': %s\n", a.cfg.logfile, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    rd_notice("redraft %s starting, pid %d", REDRAFT_VERSION, (int)getpid());

    int rc = 1;
    if (make_dirs(a.cfg.dir) != 0) {
        rd_warning("cannot create dir '%s': %s", a.cfg.dir, strerror(errno));
        goto out;
    }
    if (rlog_open(a.cfg.dir, &a.store, err, sizeof(err)) != 0) {
        rd_warning("cannot open the log in '%s': %s", a.cfg.dir, err);
        goto out;
    }
    uint64_t boot = next_boot(a.store);
    if (rlog_flush(a.store, 1) != 0) {
        rd_warning("cannot write the log in '%s': %s", a.cfg.dir, rlog_last_error(a.store));
        goto out;
    }
    rd_notice("log in %s: entries %llu..%llu, boot %llu", a.cfg.dir,
              (unsigned long long)rlog_first_index(a.store),
              (unsigned long long)rlog_last_index(a.store), (unsigned long long)boot);

    a.loop = ev_default_loop(0);
    static const struct rn_node_cbs ncbs = {.committed = on_committed};
    a.node = rn_node_new(a.store, (uint64_t)a.cfg.node_id, &a, &ncbs);
    a.server = px_server_new(a.loop, &a.cfg, a.node, boot);
    static const struct be_link_cbs lcbs = {
        .on_commands = on_commands, .on_ready = on_ready, .on_down = on_down};
    a.link = be_link_new(a.loop, a.cfg.redis, a.cfg.redis_password, &a, &lcbs);
    static const struct be_apply_cbs acbs = {
        .fetch = on_fetch, .reply = on_reply, .applied = on_applied};
    a.apply =
        be_apply_new(a.loop, a.link, (uint64_t)a.cfg.node_id, a.cfg.apply_batch_max, &a, &acbs);
    if (a.node == NULL || a.server == NULL || a.link == NULL || a.apply == NULL) {
        rd_warning("out of memory at start");
        goto out;
    }
    px_server_set_backend(a.server, a.link, a.apply);
    if (px_server_listen(a.server, err, sizeof(err)) != 0) {
        rd_warning("%s", err);
        goto out;
    }
    rd_notice("ready to accept connections on %s:%d; local redis at %s", a.cfg.bind, a.cfg.port,
              a.cfg.redis);

    ev_prepare_init(&a.before_sleep, before_sleep_cb);
    a.before_sleep.data = &a;
    ev_prepare_start(a.loop, &a.before_sleep);
    ev_signal_init(&a.sigterm, signal_cb, SIGTERM);
    a.sigterm.data = &a;
    ev_signal_start(a.loop, &a.sigterm);
    ev_signal_init(&a.sigint, signal_cb, SIGINT);
    a.sigint.data = &a;
    ev_signal_start(a.loop, &a.sigint);

    be_link_start(a.link);
    ev_run(a.loop, 0);
    rc = 0;

out:
    px_server_free(a.server);
    be_apply_free(a.apply);
    be_link_free(a.link);
    rn_node_free(a.node);
    if (a.store)
        rlog_close(a.store);
    if (a.loop)
        ev_loop_destroy(a.loop);
    rd_notice("bye");
    rd_log_close();
    return rc;
}
