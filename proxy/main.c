/* main.c: wires redraft together. The only file that knows every module:
 *
 *   config -> log -> store (RocksDB) -> node (drives the Raft core) <-> bus (other nodes)
 *                                       node -> server (clients) -> link (local Redis) -> apply
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
#include "backend/ctl.h"
#include "backend/script.h"
#include "backend/link.h"
#include "common/log.h"
#include "common/random.h"
#include "proxy/config.h"
#include "proxy/server.h"
#include "proxy/snapshot.h"
#include "raftlog/bus.h"
#include "raftlog/node.h"
#include "raftlog/raft.h"
#include "raftlog/store.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define REDRAFT_VERSION "0.1.0"

struct app {
    struct ev_loop *loop;
    struct px_config cfg;
    struct rlog *store;
    struct rn_node *node;
    struct bus *bus;
    ev_timer shutdown_wait;
    int shutting_down;
    double shutting_down_at;
    struct px_server *server;
    struct be_link *link;
    struct be_apply *apply;
    struct be_ctl *ctl;
    struct px_snap *snap;
    ev_prepare before_sleep;
    ev_idle more_work;
    ev_signal sigterm, sigint;
};

static void on_frame(void *ctx, uint64_t from, uint8_t type, const void *payload, size_t len)
{
    struct app *a = ctx;
    rn_on_frame(a->node, from, type, payload, len);
}

static void on_peer_state(void *ctx, uint64_t node, int up)
{
    struct app *a = ctx;
    rn_on_peer_state(a->node, node, up);
}

static void on_read_index(void *ctx, uint64_t rctx, uint64_t index)
{
    struct app *a = ctx;
    px_on_read_index(a->server, rctx, index);
}

static void on_proposed(void *ctx, uint64_t reqid, uint64_t index, uint64_t term)
{
    struct app *a = ctx;
    px_on_proposed(a->server, reqid, index, term);
}

static void on_propose_failed(void *ctx, uint64_t reqid, int code, uint64_t term)
{
    struct app *a = ctx;
    px_on_propose_failed(a->server, reqid, code, term);
}

static int on_admit(void *ctx, const void *guard, size_t guard_len, const struct rn_log_view *log)
{
    struct app *a = ctx;
    return px_server_admit(a->server, guard, guard_len, log);
}

static void on_admin_reply(void *ctx, uint64_t reqid, const char *resp, size_t len)
{
    struct app *a = ctx;
    px_server_on_admin_reply(a->server, reqid, resp, len);
}

static void on_role(void *ctx, int role, uint64_t term, uint64_t leader)
{
    struct app *a = ctx;
    if (a->server)
        px_server_on_role(a->server, role, term, leader);
    if (a->snap)
        px_snap_on_leader(a->snap, leader);
}

static void on_committed(void *ctx, uint64_t commit)
{
    struct app *a = ctx;
    if (a->server == NULL)
        return;
    px_server_on_committed(a->server, commit);
    /* The apply batch this queued leaves now, ahead of the log write and the messages to the
     * other nodes that the same ready still makes: a client waiting for its write's reply
     * waits for this batch. */
    if (a->link)
        be_link_flush(a->link);
}

static void on_snapshot_fetch(void *ctx, uint64_t index, uint64_t term, uint64_t from)
{
    struct app *a = ctx;
    if (a->snap)
        px_snap_on_fetch(a->snap, index, term, from);
    else
        rn_snapshot_fetch_failed(a->node);
}

static void on_snap_frame(void *ctx, uint64_t from, uint8_t type, const void *payload, size_t len)
{
    struct app *a = ctx;
    if (a->snap)
        px_snap_on_frame(a->snap, from, type, payload, len);
}

static void on_busy(void *ctx, const char *err)
{
    struct app *a = ctx;
    px_server_on_busy(a->server, err);
}

static void on_ctl_answer(void *ctx, uint64_t id, const struct redisReply *reply)
{
    struct app *a = ctx;
    px_server_on_ctl_answer(a->server, id, reply);
}

static int on_script_ahead(void *ctx, uint64_t seq)
{
    struct app *a = ctx;
    return px_server_script_ahead(a->server, seq);
}

static void on_script_sent(void *ctx)
{
    struct app *a = ctx;
    be_ctl_poke(a->ctl);
}

static int on_kill(void *ctx, int function, uint64_t kill_index)
{
    struct app *a = ctx;
    return px_server_kill_running(a->server, function, kill_index);
}

static void on_commands(void *ctx, const struct redisReply *reply)
{
    struct app *a = ctx;
    px_server_on_commands(a->server, reply);
}

/* The script registry read back from the local Redis, before anything is applied. */
static void on_hidden(void *ctx, const struct redisReply *reply)
{
    struct app *a = ctx;
    if (be_scripts_load(be_apply_scripts(a->apply), reply) != 0)
        rd_warning("the script registry in the local redis is malformed; EVALSHA of scripts "
                   "loaded before is answered NOSCRIPT");
}

/* Libraries loaded into this Redis before it was behind redraft have no prelude: say so, for
 * the operator to load them again through redraft (docs/scripts.md, "Upgrading"). */
static void on_function_list(struct be_link *l, void *reply, void *privdata)
{
    char names[512];
    int n = reply != NULL ? be_scripts_unwrapped(privdata, reply, names, sizeof(names)) : 0;
    if (n > 0)
        rd_warning("%d function librar%s in the local redis lack redraft's prelude and would not "
                   "run identically on every replica: %s; load %s again with FUNCTION LOAD "
                   "REPLACE through redraft",
                   n, n == 1 ? "y" : "ies", names, n == 1 ? "it" : "them");
}

static void on_ready(void *ctx, const struct be_link_info *info)
{
    struct app *a = ctx;
    px_server_on_backend_ready(a->server, info);
    const char *argv[3] = {"FUNCTION", "LIST", "WITHCODE"};
    const size_t lens[3] = {8, 4, 8};
    be_link_send_argv(a->link, 3, argv, lens, on_function_list, be_apply_scripts(a->apply));
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

static void on_applied_cmd(void *ctx, uint64_t db, int argc, const char *const *argv,
                           const size_t *argvlen, int null_or_error)
{
    struct app *a = ctx;
    px_server_on_applied_cmd(a->server, db, argc, argv, argvlen, null_or_error);
}

static void on_applied(void *ctx, uint64_t index)
{
    struct app *a = ctx;
    px_server_on_applied(a->server, index);
}

static void before_sleep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct app *a = w->data;
    /* Bounded: a client with a deep pipeline gets more parsed on the next turn, and the idle
     * watcher keeps the loop from sleeping until then. */
    int more = 1;
    for (int round = 0; round < 4 && more; round++) {
        rn_flush(a->node);
        more = px_server_before_sleep(a->server);
    }
    /* The turn's frames to the other nodes and its commands to Redis leave now, one write per
     * connection, rather than on the next turn's write events. A link that breaks here may
     * leave replies to write: one more turn writes them. */
    bus_flush(a->bus);
    be_link_flush(a->link);
    if (more || px_server_has_output(a->server))
        ev_idle_start(loop, &a->more_work);
}

static void more_work_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    ev_idle_stop(loop, w); /* it only had to keep the loop awake for one more turn */
}

#define SHUTDOWN_TRANSFER_MS 3000

static void shutdown_now(struct app *a)
{
    rn_flush(a->node);
    px_server_before_sleep(a->server);
    ev_break(a->loop, EVBREAK_ALL);
}

/* Waits (bounded) for the leadership to move before exiting. */
static void shutdown_wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct app *a = w->data;
    if (rn_role(a->node) != RAFT_LEADER ||
        ev_now(loop) - a->shutting_down_at > SHUTDOWN_TRANSFER_MS / 1000.0) {
        if (rn_role(a->node) == RAFT_LEADER)
            rd_warning("leadership did not move in time; exiting as leader");
        else
            rd_notice("leadership handed over to node %llu",
                      (unsigned long long)rn_leader(a->node));
        shutdown_now(a);
    }
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct app *a = w->data;
    if (a->shutting_down) {
        shutdown_now(a);
        return;
    }
    rd_notice("received %s, shutting down", w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
    a->shutting_down = 1;
    a->shutting_down_at = ev_now(loop);
    /* A leader hands over first, so the cluster does not wait an election timeout. */
    if (rn_role(a->node) == RAFT_LEADER && rn_transfer_leader(a->node, 0) == RN_OK) {
        rd_notice("transferring leadership before exiting");
        ev_timer_init(&a->shutdown_wait, shutdown_wait_cb, 0.05, 0.05);
        a->shutdown_wait.data = a;
        ev_timer_start(loop, &a->shutdown_wait);
        return;
    }
    shutdown_now(a);
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

/* The node id: configured, or chosen once at random and kept in the log's metadata. Ids stay
 * below 2^53 so that every client and script language holds them exactly. */
static int node_id(struct app *a, uint64_t *out, char *err, size_t errlen)
{
    uint64_t stored = 0;
    int have = rlog_get_meta_u64(a->store, "node_id", &stored) == 0;
    uint64_t want = (uint64_t)a->cfg.node_id;
    if (have && want && stored != want) {
        snprintf(err, errlen, "node-id %llu does not match the id %llu this log belongs to",
                 (unsigned long long)want, (unsigned long long)stored);
        return -1;
    }
    if (have) {
        *out = stored;
        return 0;
    }
    uint64_t id = want;
    while (id == 0)
        id = rd_random_u64() & ((1ULL << 53) - 1);
    rlog_set_meta_u64(a->store, "node_id", id);
    *out = id;
    return 0;
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
    uint64_t id;
    if (node_id(&a, &id, err, sizeof(err)) != 0) {
        rd_warning("%s", err);
        goto out;
    }
    if (rlog_flush(a.store, 1) != 0) {
        rd_warning("cannot write the log in '%s': %s", a.cfg.dir, rlog_last_error(a.store));
        goto out;
    }
    rd_notice("node %llu, log in %s: entries %llu..%llu, boot %llu", (unsigned long long)id,
              a.cfg.dir, (unsigned long long)rlog_first_index(a.store),
              (unsigned long long)rlog_last_index(a.store), (unsigned long long)boot);

    a.loop = ev_default_loop(0);
    int cport = a.cfg.cluster_port ? a.cfg.cluster_port : a.cfg.port + 10000;
    if (cport > 65535) {
        rd_warning("cluster-port %d is out of range: set cluster-port", cport);
        goto out;
    }
    static const struct bus_cbs bcbs = {.on_frame = on_frame, .on_peer_state = on_peer_state};
    a.bus = bus_new(a.loop, id, a.cfg.cluster_secret, &a, &bcbs);
    if (a.bus != NULL && a.cfg.protected_mode && a.cfg.cluster_secret[0] == '\0') {
        /* Protected mode, for the bus: with no secret, only this host's nodes may link. */
        bus_set_loopback_only(a.bus, 1);
        rd_notice("bus: cluster-secret is empty: protected mode admits bus peers from the "
                  "loopback interface only");
    }
    if (a.bus == NULL || bus_listen(a.bus, a.cfg.bind, cport, err, sizeof(err)) != 0) {
        rd_warning("cluster bus: %s", a.bus ? err : "out of memory");
        goto out;
    }
    char announce[300];
    if (a.cfg.cluster_announce[0])
        snprintf(announce, sizeof(announce), "%s", a.cfg.cluster_announce);
    else
        snprintf(announce, sizeof(announce), "%s:%d", a.cfg.bind, cport);
    struct rn_node_cfg ncfg = {
        .id = id,
        .tick_ms = a.cfg.heartbeat_ms,
        .election_ticks = a.cfg.election_timeout_ms / a.cfg.heartbeat_ms,
        .heartbeat_ticks = 1,
        .seed = rd_random_u64(),
        .uncommitted_bytes_max = 256u * 1024 * 1024,
        .secret = a.cfg.cluster_secret,
    };
    if (ncfg.election_ticks < 3) {
        rd_warning("election-timeout must be at least 3 heartbeat intervals");
        goto out;
    }
    static const struct rn_node_cbs ncbs = {
        .committed = on_committed,
        .read_index = on_read_index,
        .proposed = on_proposed,
        .propose_failed = on_propose_failed,
        .admin_reply = on_admin_reply,
        .role_changed = on_role,
        .snapshot_fetch = on_snapshot_fetch,
        .snap_frame = on_snap_frame,
        .admit = on_admit,
    };
    a.node = rn_node_new(a.loop, a.store, a.bus, &ncfg, &a, &ncbs, err, sizeof(err));
    if (a.node == NULL) {
        rd_warning("%s", err);
        goto out;
    }
    rn_set_announce(a.node, announce);
    a.server = px_server_new(a.loop, &a.cfg, a.node, boot);
    if (a.server)
        px_server_set_announce(a.server, announce);
    static const struct be_link_cbs lcbs = {.on_commands = on_commands,
                                            .on_hidden = on_hidden,
                                            .on_ready = on_ready,
                                            .on_down = on_down};
    a.link = be_link_new(a.loop, a.cfg.redis, a.cfg.redis_password, &a, &lcbs);
    static const struct be_apply_cbs acbs = {.fetch = on_fetch,
                                             .reply = on_reply,
                                             .applied = on_applied,
                                             .command = on_applied_cmd,
                                             .kill = on_kill,
                                             .script_sent = on_script_sent,
                                             .script_ahead = on_script_ahead};
    a.apply = be_apply_new(a.loop, a.link, id, a.cfg.apply_batch_max, &a, &acbs);
    static const struct be_ctl_cbs ccbs = {.busy = on_busy, .answer = on_ctl_answer};
    a.ctl = be_ctl_new(a.loop, a.cfg.redis, a.cfg.redis_password, &a, &ccbs);
    if (a.server && a.link && a.apply)
        a.snap = px_snap_new(a.loop, &a.cfg, a.node, a.link, a.apply, a.server);
    if (a.node == NULL || a.server == NULL || a.link == NULL || a.apply == NULL || a.snap == NULL ||
        a.ctl == NULL) {
        rd_warning("out of memory at start");
        goto out;
    }
    px_server_set_backend(a.server, a.link, a.apply, a.ctl);
    px_server_set_snap(a.server, a.snap);
    if (px_server_listen(a.server, err, sizeof(err)) != 0) {
        rd_warning("%s", err);
        goto out;
    }
    rd_notice("ready to accept connections on %s:%d; cluster bus on %s; local redis at %s",
              a.cfg.bind, a.cfg.port, announce, a.cfg.redis);

    ev_idle_init(&a.more_work, more_work_cb);
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
    be_ctl_start(a.ctl);
    rn_node_start(a.node);
    px_server_cluster_start(a.server);
    ev_run(a.loop, 0);
    rc = 0;

out:
    /* The link first: freeing it calls every pending reply callback (with no reply), and
     * those reach the apply path, the snapshot loader and the server, which must still be
     * there. */
    be_link_free(a.link);
    be_ctl_free(a.ctl);
    be_apply_free(a.apply);
    px_snap_free(a.snap);
    px_server_free(a.server);
    rn_node_free(a.node);
    bus_free(a.bus);
    if (a.store)
        rlog_close(a.store);
    if (a.loop) {
        ev_timer_stop(a.loop, &a.shutdown_wait);
        ev_idle_stop(a.loop, &a.more_work);
        ev_loop_destroy(a.loop);
    }
    rd_notice("bye");
    rd_log_close();
    return rc;
}
