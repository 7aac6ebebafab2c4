/* join.c: RAFT.CLUSTER JOIN, and the cluster-init / cluster-join options at start.
 *
 * A node joins by asking a member, over that member's client port (as in RedisRaft), to run
 * `RAFT.NODE ADD <our id> <our bus address> <proof>`, the proof an HMAC of the two keyed with
 * the cluster secret: a node that does not know the secret is refused before it is a member. Any
 * member will do: a follower passes the command to the leader, which adds us as a learner; the
 * leader then connects to our bus address and sends us the log, and promotes us to voter once we
 * have caught up. Addresses are tried in turn. A join asked by a client answers it once; a join
 * from the config file retries every second until it succeeds (a container may start before its
 * peers).
 */
#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/link.h"
#include "common/log.h"
#include "proxy/client.h"
#include "proxy/snapshot.h"
#include "proxy/server.h"
#include "raftlog/node.h"

#define JOIN_ADDRS_MAX 8
#define JOIN_RETRY_MS  1000

struct px_join {
    struct px_server *s;
    uint64_t reqid; /* 0: from the config, retried until it works */
    char addrs[JOIN_ADDRS_MAX][256];
    int naddrs, cur;
    redisAsyncContext *ac;
    ev_timer retry;
    char last_err[256];
};

static void join_next(struct px_join *j);

static void join_drop_conn(struct px_join *j)
{
    if (j->ac == NULL)
        return;
    redisAsyncContext *ac = j->ac;
    j->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
}

static void join_finish(struct px_join *j, const char *resp)
{
    struct px_server *s = j->s;
    join_drop_conn(j);
    ev_timer_stop(s->loop, &j->retry);
    s->join = NULL;
    if (j->reqid)
        px_async_done(s, j->reqid, resp, strlen(resp));
    free(j);
}

static void flushed_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct px_server *s = privdata;
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR)
        rd_warning("could not empty the local redis: %s", r->str);
    /* A fresh handshake reads the (now empty) dataset again. */
    if (r)
        be_link_reset(s->link, "emptied before joining");
}

/* A node that joins takes the cluster's data: whatever its Redis held before (keys of its own,
 * or the applied index of another cluster) would otherwise sit under what the log rebuilds. */
static void flush_foreign(struct px_server *s)
{
    if (!s->backend_ready && !s->backend_err[0])
        return;
    if (s->foreign_keys == 0 && s->last_applied == 0)
        return;
    rd_warning("the local redis holds data that is not the cluster's (%lld keys without an "
               "applied index, applied index %llu): emptying it (FLUSHALL) before the cluster's "
               "data arrives",
               s->foreign_keys, (unsigned long long)s->last_applied);
    static const char *argv[] = {"FLUSHALL"};
    static const size_t lens[] = {8};
    be_link_send_argv(s->link, 1, argv, lens, flushed_cb, s);
}

static void join_failed_attempt(struct px_join *j, const char *why)
{
    snprintf(j->last_err, sizeof(j->last_err), "%s: %s", j->addrs[j->cur], why);
    rd_verbose("join via %s failed: %s", j->addrs[j->cur], why);
    join_drop_conn(j);
    j->cur++;
    if (j->cur < j->naddrs) {
        join_next(j);
        return;
    }
    j->cur = 0;
    if (j->reqid) {
        char resp[400];
        snprintf(resp, sizeof(resp), "-ERR could not join the cluster (%s)\r\n", j->last_err);
        join_finish(j, resp);
        return;
    }
    rd_warning("could not join the cluster yet (%s); retrying", j->last_err);
    ev_timer_set(&j->retry, JOIN_RETRY_MS / 1000.0, 0);
    ev_timer_start(j->s->loop, &j->retry);
}

static void add_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct px_join *j = ac->data;
    redisReply *r = reply;
    if (j == NULL)
        return;
    if (r == NULL) {
        join_failed_attempt(j, "connection lost");
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        join_failed_attempt(j, r->str);
        return;
    }
    rd_notice("joined the cluster through %s; waiting for the leader to send the log",
              j->addrs[j->cur]);
    rn_set_joining(j->s->node);
    flush_foreign(j->s);
    join_finish(j, "+OK\r\n");
}

static void auth_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct px_join *j = ac->data;
    redisReply *r = reply;
    if (j != NULL && r != NULL && r->type == REDIS_REPLY_ERROR)
        join_failed_attempt(j, r->str);
}

static void connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct px_join *j = ac->data;
    if (j == NULL)
        return;
    if (status != REDIS_OK) {
        j->ac = NULL; /* hiredis frees it after this callback */
        join_failed_attempt(j, ac->errstr);
        return;
    }
    struct px_server *s = j->s;
    if (s->cfg->requirepass[0])
        redisAsyncCommand(ac, auth_reply_cb, NULL, "AUTH %s", s->cfg->requirepass);
    char id[32];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)rn_id(s->node));
    char proof[RN_JOIN_PROOF_HEX + 1];
    rn_join_proof(s->cfg->cluster_secret, rn_id(s->node), s->bus_announce, strlen(s->bus_announce),
                  proof);
    redisAsyncCommand(ac, add_reply_cb, NULL, "RAFT.NODE ADD %s %s %s", id, s->bus_announce, proof);
}

static void disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct px_join *j = ac->data;
    if (j != NULL && j->ac == ac) {
        j->ac = NULL;
        join_failed_attempt(j, "connection closed");
    }
}

static void join_next(struct px_join *j)
{
    const char *a = j->addrs[j->cur];
    const char *colon = strrchr(a, ':');
    if (colon == NULL) {
        join_failed_attempt(j, "address must be host:port");
        return;
    }
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - a), a);
    redisAsyncContext *ac = redisAsyncConnect(host, atoi(colon + 1));
    if (ac == NULL || ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        join_failed_attempt(j, why);
        return;
    }
    ac->data = j;
    j->ac = ac;
    redisLibevAttach(j->s->loop, ac);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct px_join *j = w->data;
    if (rn_in_cluster(j->s->node)) {
        join_finish(j, "+OK\r\n");
        return;
    }
    join_next(j);
}

int px_join_start(struct px_server *s, uint64_t reqid, int argc, char **argv, char *err,
                  size_t errlen)
{
    if (rn_in_cluster(s->node)) {
        snprintf(err, errlen, "ERR this node is already part of a cluster");
        return -1;
    }
    if (s->join != NULL) {
        snprintf(err, errlen, "ERR a join is already in progress");
        return -1;
    }
    if (argc < 1 || argc > JOIN_ADDRS_MAX) {
        snprintf(err, errlen, "ERR RAFT.CLUSTER JOIN takes 1 to %d host:port addresses",
                 JOIN_ADDRS_MAX);
        return -1;
    }
    struct px_join *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        snprintf(err, errlen, "ERR out of memory");
        return -1;
    }
    j->s = s;
    j->reqid = reqid;
    for (int i = 0; i < argc; i++) {
        if (strlen(argv[i]) >= sizeof(j->addrs[0]) || strrchr(argv[i], ':') == NULL) {
            snprintf(err, errlen, "ERR invalid address '%s' (host:port)", argv[i]);
            free(j);
            return -1;
        }
        snprintf(j->addrs[j->naddrs++], sizeof(j->addrs[0]), "%s", argv[i]);
    }
    ev_timer_init(&j->retry, retry_cb, 0, 0);
    j->retry.data = j;
    s->join = j;
    join_next(j);
    return 0;
}

void px_join_free(struct px_server *s)
{
    struct px_join *j = s->join;
    if (j == NULL)
        return;
    join_drop_conn(j);
    ev_timer_stop(s->loop, &j->retry);
    s->join = NULL;
    free(j);
}

void px_server_set_announce(struct px_server *s, const char *addr)
{
    snprintf(s->bus_announce, sizeof(s->bus_announce), "%s", addr);
}

void px_server_cluster_start(struct px_server *s)
{
    if (rn_in_cluster(s->node))
        return;
    if (s->cfg->cluster_init) {
        char err[256];
        if (rn_bootstrap(s->node, s->bus_announce, err, sizeof(err)) != 0)
            rd_warning("cluster-init: %s", err);
        else {
            rd_notice("cluster initialized (cluster-init yes): node %llu is its first member",
                      (unsigned long long)rn_id(s->node));
            if (s->foreign_keys > 0 && s->snap)
                px_snap_adopt(s->snap);
        }
        return;
    }
    if (s->cfg->cluster_join[0]) {
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s", s->cfg->cluster_join);
        char *argv[JOIN_ADDRS_MAX];
        int argc = 0;
        for (char *tok = strtok(buf, " "); tok && argc < JOIN_ADDRS_MAX; tok = strtok(NULL, " "))
            argv[argc++] = tok;
        char err[256];
        if (px_join_start(s, 0, argc, argv, err, sizeof(err)) != 0)
            rd_warning("cluster-join: %s", err);
        return;
    }
    rd_notice("this node is not part of a cluster yet: run RAFT.CLUSTER INIT on the first node "
              "and RAFT.CLUSTER JOIN <host:port> on the others");
}
