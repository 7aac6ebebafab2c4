#include "proxy/snapshot.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/apply.h"
#include "backend/link.h"
#include "backend/snapshot.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/random.h"
#include "proxy/config.h"
#include "proxy/server.h"
#include "raftlog/node.h"
#include "raftlog/raft.h"
#include "raftlog/store.h"

#define SNAP_CHUNK_BYTES  (1024u * 1024) /* file bytes per RN_BUS_SNAP_CHUNK frame */
#define SNAP_CHUNK_WAIT_S 10.0           /* no chunk for this long: the fetch failed */
#define SNAP_CHECK_S      0.2            /* how often the thresholds are looked at */
#define SNAP_RETRY_S      2.0            /* after a failure, wait this long before the next try */
#define SNAP_SYNC_WAIT_S  600.0          /* the local Redis must have loaded the RDB by then */
#define SNAP_PATH_MAX     1100

enum snap_state { SS_IDLE, SS_CAPTURE, SS_FETCH, SS_DRAIN, SS_REPLICAOF, SS_WAIT_SYNC, SS_NO_ONE };

struct px_snap {
    struct ev_loop *loop;
    const struct px_config *cfg;
    struct rn_node *node;
    struct be_link *link;
    struct be_apply *apply;
    struct px_server *server;
    enum snap_state state;
    ev_timer check, wait, pace;
    double not_before; /* no new attempt before this time (after a failure) */
    unsigned gen;      /* bumps when an operation ends: late replies of an old one are ignored */
    char path_rdb[SNAP_PATH_MAX], path_tmp[SNAP_PATH_MAX], path_recv[SNAP_PATH_MAX];

    /* the latest snapshot on disk (path_rdb) */
    uint64_t nonce, size;
    uint64_t max_index; /* its data holds no entry beyond this (see px_snap_max_index) */
    int adopt_pending;

    /* capture */
    struct be_capture *cap;
    uint64_t cap_index;
    double cap_started;

    /* fetch (follower) */
    uint64_t f_from, f_index, f_nonce, f_off, f_total, f_max;
    struct raft_snapshot_meta f_meta;
    int f_fd;

    /* serving (leader): the file being sent, kept open across a newer capture */
    int s_fd;
    uint64_t s_nonce, s_size, s_max;
    struct raft_snapshot_meta s_meta;

    /* install */
    int inst_fetched; /* 1: from a fetch (tell the core), 0: restore of the local snapshot */
    struct be_feeder *feeder;
    int feeder_done;
    char token[33];       /* the local Redis's masterauth while it syncs from us */
    char saved_auth[512]; /* its masterauth before */
    int saved_auth_known;
    double inst_started;
    struct raft_snapshot_meta inst_meta;

    /* stats for INFO */
    uint64_t taken, installed, restored, failures, sent_chunks;
    double last_take_s, last_install_s;
    double phase_started; /* when the capture, fetch or load now running began (its rate) */
    uint64_t last_size;
};

static double now_s(const struct px_snap *p)
{
    return ev_now(p->loop);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Moves a finished file into place as snapshot.rdb, durably. */
static int commit_file(struct px_snap *p, const char *from)
{
    if (rename(from, p->path_rdb) != 0 || fsync_dir(p->cfg->dir) != 0) {
        rd_warning("snapshot: cannot move %s into place: %s", from, strerror(errno));
        return -1;
    }
    return 0;
}

static int store_file_meta(struct px_snap *p, uint64_t nonce, uint64_t size, uint64_t max)
{
    struct rlog *st = rn_store(p->node);
    if (rlog_set_meta_u64(st, "snap_nonce", nonce) != 0 ||
        rlog_set_meta_u64(st, "snap_size", size) != 0 ||
        rlog_set_meta_u64(st, "snap_max", max) != 0)
        return -1;
    p->nonce = nonce;
    p->size = size;
    p->max_index = max;
    return 0;
}

static void fail_later(struct px_snap *p)
{
    p->failures++;
    p->not_before = now_s(p) + SNAP_RETRY_S;
}

/* ---- taking a snapshot ---------------------------------------------------------------------- */

static uint64_t log_entries_since_snapshot(struct px_snap *p)
{
    struct raft_snapshot_meta m;
    rn_snapshot_meta(p->node, &m);
    uint64_t applied = be_apply_applied(p->apply);
    return applied > m.index ? applied - m.index : 0;
}

static void capture_done(void *ctx, int ok, const char *why)
{
    struct px_snap *p = ctx;
    uint64_t bytes = be_capture_bytes(p->cap);
    p->state = SS_IDLE;
    p->gen++;
    if (!ok) {
        rd_warning("snapshot: capture from the local redis failed: %s", why ? why : "?");
        unlink(p->path_tmp);
        fail_later(p);
        return;
    }
    struct raft_snapshot_meta m;
    rn_snapshot_meta(p->node, &m);
    if (p->cap_index <= m.index) {
        /* An installed snapshot overtook this one meanwhile. */
        unlink(p->path_tmp);
        return;
    }
    uint64_t nonce = rd_random_u64();
    /* The file first, then the record that points at it: a crash in between leaves a file
     * that holds more than its record says, which loading handles (the data names its index). */
    /* Redis forked somewhere between the start of the capture and the first byte of the RDB:
     * what the apply path had confirmed by now bounds what the data can hold. */
    uint64_t max = be_apply_applied(p->apply);
    if (max < p->cap_index)
        max = p->cap_index;
    if (commit_file(p, p->path_tmp) != 0 || store_file_meta(p, nonce, bytes, max) != 0) {
        fail_later(p);
        return;
    }
    int rc = rn_snapshot_taken(p->node, p->cap_index, &m);
    if (rc != RN_OK) {
        rd_warning("snapshot: the log did not take the snapshot at index %llu (code %d)",
                   (unsigned long long)p->cap_index, rc);
        fail_later(p);
        return;
    }
    double took = now_s(p) - p->cap_started;
    p->taken++;
    p->last_take_s = took;
    p->last_size = bytes;
    if (p->adopt_pending) {
        p->adopt_pending = 0;
        rn_block_joins(p->node, 0);
        rlog_set_meta_u64(rn_store(p->node), "adopt_pending", 0);
        rlog_flush(rn_store(p->node), 1);
        rd_notice("snapshot: the dataset redis held before the cluster existed is its first "
                  "snapshot now; nodes may join");
    }
    rd_notice("snapshot taken at index %llu (term %llu): %llu bytes in %.2fs; the log starts at "
              "%llu now",
              (unsigned long long)m.index, (unsigned long long)m.term, (unsigned long long)bytes,
              took, (unsigned long long)rn_first_index(p->node));
}

static int start_capture(struct px_snap *p, char *why, size_t whylen)
{
    if (!be_apply_running(p->apply)) {
        snprintf(why, whylen, "the local redis is not in use right now");
        return -1;
    }
    uint64_t applied = be_apply_applied(p->apply);
    struct raft_snapshot_meta m;
    rn_snapshot_meta(p->node, &m);
    if (applied <= m.index) {
        snprintf(why, whylen, "nothing applied since the last snapshot (index %llu)",
                 (unsigned long long)m.index);
        return -1;
    }
    be_capture_free(p->cap); /* a finished one the check timer has not freed yet */
    p->cap = be_capture_start(p->loop, p->cfg->redis, p->cfg->redis_password, p->path_tmp,
                              capture_done, p, why, whylen);
    if (p->cap == NULL)
        return -1;
    p->cap_index = applied;
    p->cap_started = now_s(p);
    p->state = SS_CAPTURE;
    p->phase_started = now_s(p);
    rd_verbose("snapshot: capturing the local redis at applied index %llu",
               (unsigned long long)applied);
    return 0;
}

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct px_snap *p = w->data;
    if (p->cap && p->state != SS_CAPTURE) {
        be_capture_free(p->cap);
        p->cap = NULL;
    }
    if (p->feeder && p->state == SS_IDLE) {
        be_feeder_free(p->feeder);
        p->feeder = NULL;
    }
    if (p->state != SS_IDLE || now_s(p) < p->not_before || !rn_in_cluster(p->node) ||
        rn_failed(p->node))
        return;
    int want = p->adopt_pending && be_apply_applied(p->apply) >= 1;
    if (!want && p->cfg->snapshot_log_entries > 0 &&
        log_entries_since_snapshot(p) >= (uint64_t)p->cfg->snapshot_log_entries)
        want = 1;
    if (!want && p->cfg->snapshot_log_bytes > 0 && log_entries_since_snapshot(p) > 0 &&
        rlog_disk_bytes(rn_store(p->node)) >= (uint64_t)p->cfg->snapshot_log_bytes)
        want = 1;
    if (!want)
        return;
    char why[256];
    if (start_capture(p, why, sizeof(why)) != 0) {
        rd_verbose("snapshot: not now: %s", why);
        fail_later(p);
    }
}

int px_snap_take_now(struct px_snap *p, char *why, size_t whylen)
{
    if (p->state != SS_IDLE) {
        snprintf(why, whylen, "a snapshot operation is already running");
        return -1;
    }
    if (!rn_in_cluster(p->node)) {
        snprintf(why, whylen, "this node is not part of a cluster");
        return -1;
    }
    return start_capture(p, why, whylen);
}

/* ---- installing into the local Redis -------------------------------------------------------- */

static void install_end(struct px_snap *p, int ok, const char *why);
static void feeder_done(void *ctx, int ok, const char *why);
static void fetch_abandon(struct px_snap *p, const char *why, int tell_core);

static void no_one_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct px_snap *p = privdata;
    redisReply *r = reply;
    if (p->state != SS_NO_ONE)
        return;
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        install_end(p, 0, r ? r->str : "the local redis went away");
        return;
    }
    install_end(p, 1, NULL);
}

static void saved_auth_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct px_snap *p = privdata;
    redisReply *r = reply;
    /* CONFIG GET masterauth: ["masterauth", value] */
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING && r->element[1]->len < sizeof(p->saved_auth)) {
        memcpy(p->saved_auth, r->element[1]->str, r->element[1]->len);
        p->saved_auth[r->element[1]->len] = '\0';
        p->saved_auth_known = 1;
    }
}

static void set_masterauth(struct px_snap *p, const char *value)
{
    const char *argv[] = {"CONFIG", "SET", "masterauth", value};
    size_t lens[] = {6, 3, 10, strlen(value)};
    be_link_send_argv(p->link, 4, argv, lens, NULL, NULL);
}

/* REPLICAOF NO ONE, then the local Redis's own masterauth back. ok 0: best effort, on a
 * failure (never leave the local Redis following a master that is gone). */
static void send_no_one(struct px_snap *p, int ok)
{
    static const char *argv[] = {"REPLICAOF", "NO", "ONE"};
    static const size_t lens[] = {9, 2, 3};
    int rc;
    if (ok) {
        p->state = SS_NO_ONE;
        rc = be_link_send_argv(p->link, 3, argv, lens, no_one_cb, p);
    } else {
        rc = be_link_send_argv(p->link, 3, argv, lens, NULL, NULL);
    }
    if (p->saved_auth_known) {
        set_masterauth(p, p->saved_auth);
        p->saved_auth_known = 0;
    }
    if (ok && rc != 0)
        install_end(p, 0, "the local redis went away");
}

static void info_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct px_snap *p = privdata;
    redisReply *r = reply;
    if (p->state != SS_WAIT_SYNC)
        return;
    if (r == NULL) {
        install_end(p, 0, "the local redis went away during the sync");
        return;
    }
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
        return; /* LOADING and the like: ask again */
    char link[32] = "", inprog[8] = "";
    be_info_field(r->str, r->len, "master_link_status", link, sizeof(link));
    be_info_field(r->str, r->len, "master_sync_in_progress", inprog, sizeof(inprog));
    if (p->feeder_done && !strcmp(link, "up") && !strcmp(inprog, "0"))
        send_no_one(p, 1);
}

static void wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct px_snap *p = w->data;
    if (p->state == SS_FETCH) {
        rd_warning("snapshot: no answer from node %llu for %.0fs; the fetch failed (it resumes "
                   "at byte %llu when offered again)",
                   (unsigned long long)p->f_from, SNAP_CHUNK_WAIT_S, (unsigned long long)p->f_off);
        p->state = SS_IDLE;
        p->gen++;
        p->failures++;
        rn_snapshot_fetch_failed(p->node);
        return;
    }
    if (p->state == SS_DRAIN) {
        if (!be_apply_idle(p->apply))
            return;
        /* Nothing in flight to Redis: stop using it, and make it follow us. */
        px_server_set_loading(p->server, 1);
        char ip[64], why[256];
        be_link_local_ip(p->link, ip, sizeof(ip));
        int port = 0;
        const char *src = p->path_rdb; /* a fetched file is in place before its load */
        p->feeder_done = 0;
        /* Only our Redis may take the data: it must AUTH with a one-time token, set as its
         * masterauth for the load (its own value is put back afterwards). */
        snprintf(p->token, sizeof(p->token), "%016llx%016llx", (unsigned long long)rd_random_u64(),
                 (unsigned long long)rd_random_u64());
        /* One that ended is freed here if the check timer has not done it yet (never from
         * inside its own callback). */
        be_feeder_free(p->feeder);
        p->feeder =
            be_feeder_start(p->loop, ip, src, p->token, &port, feeder_done, p, why, sizeof(why));
        if (p->feeder == NULL) {
            install_end(p, 0, why);
            return;
        }
        char portbuf[16];
        snprintf(portbuf, sizeof(portbuf), "%d", port);
        const char *argv[] = {"REPLICAOF", ip, portbuf};
        size_t lens[] = {9, strlen(ip), strlen(portbuf)};
        p->state = SS_WAIT_SYNC;
        p->phase_started = now_s(p);
        static const char *gargv[] = {"CONFIG", "GET", "masterauth"};
        static const size_t glens[] = {6, 3, 10};
        p->saved_auth_known = 0;
        if (be_link_send_argv(p->link, 3, gargv, glens, saved_auth_cb, p) != 0) {
            install_end(p, 0, "the local redis went away");
            return;
        }
        set_masterauth(p, p->token);
        if (be_link_send_argv(p->link, 3, argv, lens, NULL, NULL) != 0) {
            install_end(p, 0, "the local redis went away");
            return;
        }
        rd_notice("snapshot: loading %s into the local redis (full sync from %s:%d)", src, ip,
                  port);
        return;
    }
    if (p->state == SS_WAIT_SYNC) {
        if (now_s(p) - p->inst_started > SNAP_SYNC_WAIT_S) {
            install_end(p, 0, "the local redis did not finish loading in time");
            return;
        }
        static const char *argv[] = {"INFO", "replication"};
        static const size_t lens[] = {4, 11};
        if (be_link_send_argv(p->link, 2, argv, lens, info_cb, p) != 0)
            install_end(p, 0, "the local redis went away");
    }
}

static void feeder_done(void *ctx, int ok, const char *why)
{
    struct px_snap *p = ctx;
    if (p->state != SS_WAIT_SYNC)
        return;
    if (!ok) {
        install_end(p, 0, why);
        return;
    }
    p->feeder_done = 1;
}

/* Starts loading a file into the local Redis: first let the batch in flight finish. */
static void install_start(struct px_snap *p, int fetched)
{
    p->inst_fetched = fetched;
    p->inst_started = now_s(p);
    p->state = SS_DRAIN;
    be_apply_pause(p->apply);
    ev_timer_stop(p->loop, &p->wait);
    ev_timer_set(&p->wait, 0.01, 0.1);
    ev_timer_start(p->loop, &p->wait);
}

static uint64_t local_index(struct px_snap *p)
{
    struct raft_snapshot_meta m;
    rn_snapshot_meta(p->node, &m);
    return m.index;
}

static void install_end(struct px_snap *p, int ok, const char *why)
{
    int fetched = p->inst_fetched;
    double took = now_s(p) - p->inst_started;
    ev_timer_stop(p->loop, &p->wait);
    if (!ok)
        send_no_one(p, 0);
    p->state = SS_IDLE;
    p->gen++;
    /* The feeder is freed from the check timer, never from inside its own callback. */
    if (ok) {
        p->last_install_s = took;
        if (fetched)
            p->installed++;
        else
            p->restored++;
        rd_notice("snapshot: the local redis holds the snapshot (index %llu) after %.2fs; "
                  "applying the log after it",
                  (unsigned long long)(fetched ? p->inst_meta.index : local_index(p)), took);
    } else {
        /* The snapshot is this node's own by now (recorded before the load): the next
         * handshake finds the local Redis behind the log and loads it again. */
        rd_warning("snapshot: loading the local redis failed: %s", why ? why : "?");
        fail_later(p);
    }
    /* Start over on a fresh connection: the handshake reads the applied index back and the
     * apply path resumes after it. */
    px_server_set_loading(p->server, 0);
    be_link_reset(p->link, "snapshot loaded");
}

int px_snap_restore_local(struct px_snap *p)
{
    if (p->state != SS_IDLE)
        return 0;
    if (p->size == 0 && access(p->path_rdb, R_OK) != 0)
        return -1;
    rd_notice("snapshot: the local redis is behind the start of the log; refilling it from %s",
              p->path_rdb);
    install_start(p, 0);
    return 0;
}

/* ---- the transfer: follower side ------------------------------------------------------------ */

static void send_req(struct px_snap *p)
{
    struct rd_buf b;
    rd_buf_init(&b);
    rd_put_varint(&b, p->f_index);
    rd_put_varint(&b, p->f_nonce);
    rd_put_varint(&b, p->f_off);
    if (rn_send(p->node, p->f_from, RN_BUS_SNAP_REQ, b.data, b.len) != 0)
        rd_verbose("snapshot: cannot reach node %llu yet", (unsigned long long)p->f_from);
    rd_buf_free(&b);
    ev_timer_stop(p->loop, &p->wait);
    ev_timer_set(&p->wait, SNAP_CHUNK_WAIT_S, 0);
    ev_timer_start(p->loop, &p->wait);
}

static void fetch_abandon(struct px_snap *p, const char *why, int tell_core)
{
    rd_notice("snapshot: fetch from node %llu abandoned (%s) at byte %llu of %llu",
              (unsigned long long)p->f_from, why, (unsigned long long)p->f_off,
              (unsigned long long)p->f_total);
    ev_timer_stop(p->loop, &p->wait);
    ev_timer_stop(p->loop, &p->pace);
    p->state = SS_IDLE;
    p->gen++;
    p->failures++;
    if (tell_core)
        rn_snapshot_fetch_failed(p->node);
}

void px_snap_on_leader(struct px_snap *p, uint64_t leader)
{
    if (p->state == SS_FETCH && leader != 0 && leader != p->f_from)
        fetch_abandon(p, "a new leader", 1);
}

static void pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct px_snap *p = w->data;
    if (p->state == SS_FETCH)
        send_req(p);
}

void px_snap_on_fetch(struct px_snap *p, uint64_t index, uint64_t term, uint64_t from)
{
    if (p->state == SS_CAPTURE) {
        /* The leader's snapshot replaces anything taken here. */
        be_capture_free(p->cap);
        p->cap = NULL;
        unlink(p->path_tmp);
        p->state = SS_IDLE;
        p->gen++;
    }
    if (p->state == SS_FETCH && from != p->f_from)
        fetch_abandon(p, "another leader offers its snapshot", 0);
    if (p->state == SS_FETCH && index <= p->f_index) {
        send_req(p); /* the same offer again: carry on */
        return;
    }
    if (p->state != SS_IDLE && p->state != SS_FETCH) {
        rn_snapshot_fetch_failed(p->node);
        return;
    }
    if (p->f_fd < 0) {
        p->f_fd = open(p->path_recv, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (p->f_fd < 0) {
            rd_warning("snapshot: cannot create %s: %s", p->path_recv, strerror(errno));
            rn_snapshot_fetch_failed(p->node);
            return;
        }
    }
    if (from != p->f_from || index > p->f_index)
        rd_notice("snapshot: node %llu offers its snapshot at index %llu (term %llu); fetching "
                  "it%s",
                  (unsigned long long)from, (unsigned long long)index, (unsigned long long)term,
                  p->f_off ? " (resuming if it is the same file)" : "");
    p->f_from = from;
    p->f_index = index;
    p->state = SS_FETCH;
    p->phase_started = now_s(p);
    p->inst_started = now_s(p);
    send_req(p);
}

static void on_chunk(struct px_snap *p, uint64_t from, const uint8_t *d, size_t len)
{
    uint64_t v[8]; /* status, index, term, nonce, total, offset, max index, conf length */
    size_t off = 0;
    for (int i = 0; i < 8; i++) {
        size_t k = rd_get_varint(d + off, len - off, &v[i]);
        if (k == 0) {
            rd_warning("snapshot: malformed chunk from node %llu", (unsigned long long)from);
            return;
        }
        off += k;
    }
    if (p->state != SS_FETCH || from != p->f_from)
        return;
    if (v[0] == 0) {
        rd_notice("snapshot: node %llu has no snapshot at index %llu or later any more",
                  (unsigned long long)from, (unsigned long long)p->f_index);
        ev_timer_stop(p->loop, &p->wait);
        p->state = SS_IDLE;
        p->gen++;
        rn_snapshot_fetch_failed(p->node);
        return;
    }
    if (v[7] > len - off || v[1] < p->f_index || v[4] > (1ULL << 50)) {
        rd_warning("snapshot: malformed chunk from node %llu", (unsigned long long)from);
        return;
    }
    struct raft_snapshot_meta m;
    memset(&m, 0, sizeof(m));
    m.index = v[1];
    m.term = v[2];
    if (raft_conf_decode(d + off, (size_t)v[7], &m.conf) != 0) {
        rd_warning("snapshot: bad configuration in a chunk from node %llu",
                   (unsigned long long)from);
        return;
    }
    off += (size_t)v[7];
    const uint8_t *data = d + off;
    size_t dlen = len - off;
    if (v[3] != p->f_nonce) {
        if (v[5] != 0)
            return; /* stale */
        if (ftruncate(p->f_fd, 0) != 0)
            return;
        p->f_nonce = v[3];
        p->f_off = 0;
    }
    if (v[5] != p->f_off || p->f_off + dlen > v[4])
        return; /* an old answer */
    if (dlen > 0 && pwrite(p->f_fd, data, dlen, (off_t)p->f_off) != (ssize_t)dlen) {
        rd_warning("snapshot: cannot write %s: %s", p->path_recv, strerror(errno));
        ev_timer_stop(p->loop, &p->wait);
        p->state = SS_IDLE;
        p->gen++;
        rn_snapshot_fetch_failed(p->node);
        return;
    }
    p->f_off += dlen;
    p->f_total = v[4];
    p->f_max = v[6] > v[1] ? v[6] : v[1];
    p->f_meta = m;
    if (p->f_off < p->f_total) {
        if (p->cfg->snapshot_fetch_rate > 0 && dlen > 0) {
            /* Pace the pulls: the next one waits as long as this chunk takes at the rate. */
            ev_timer_stop(p->loop, &p->wait);
            ev_timer_set(&p->wait, SNAP_CHUNK_WAIT_S, 0);
            ev_timer_start(p->loop, &p->wait);
            ev_timer_set(&p->pace, (double)dlen / (double)p->cfg->snapshot_fetch_rate, 0);
            ev_timer_start(p->loop, &p->pace);
        } else {
            send_req(p);
        }
        return;
    }
    ev_timer_stop(p->loop, &p->wait);
    if (fsync(p->f_fd) != 0) {
        p->state = SS_IDLE;
        p->gen++;
        rn_snapshot_fetch_failed(p->node);
        return;
    }
    close(p->f_fd);
    p->f_fd = -1;
    rd_notice("snapshot: received %llu bytes from node %llu in %.2fs",
              (unsigned long long)p->f_total, (unsigned long long)from, now_s(p) - p->inst_started);
    p->inst_meta = p->f_meta;
    /* Make it this node's snapshot before Redis loads it: the file in place, its record in
     * the log's store, the core told. A crash during the load then leaves a Redis behind the
     * log (refilled from snapshot.rdb at the next handshake) or holding the snapshot, whose
     * index the log now accounts for; never a Redis ahead of the log. */
    if (commit_file(p, p->path_recv) != 0 ||
        store_file_meta(p, p->f_nonce, p->f_total, p->f_max) != 0) {
        p->state = SS_IDLE;
        p->gen++;
        fail_later(p);
        rn_snapshot_fetch_failed(p->node);
        return;
    }
    if (rn_snapshot_installed(p->node, &p->inst_meta) != RN_OK) {
        p->state = SS_IDLE;
        p->gen++;
        return;
    }
    install_start(p, 1);
    /* The next fetch starts a new file. */
    p->f_off = 0;
    p->f_from = 0;
    p->f_nonce = 0;
}

/* ---- the transfer: leader side -------------------------------------------------------------- */

static void on_req(struct px_snap *p, uint64_t from, const uint8_t *d, size_t len)
{
    uint64_t v[3]; /* index, nonce, offset */
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        size_t k = rd_get_varint(d + off, len - off, &v[i]);
        if (k == 0) {
            rd_warning("snapshot: malformed request from node %llu", (unsigned long long)from);
            return;
        }
        off += k;
    }
    struct raft_snapshot_meta cur;
    rn_snapshot_meta(p->node, &cur);
    struct rd_buf b;
    rd_buf_init(&b);
    /* Serve the file asked for while it is at hand (and still new enough), else the current
     * one from the start. */
    if (p->s_fd < 0 || v[1] != p->s_nonce || p->s_meta.index < v[0]) {
        if (cur.index == 0 || cur.index < v[0] || p->nonce == 0) {
            rd_put_varint(&b, 0);
            for (int i = 0; i < 7; i++)
                rd_put_varint(&b, 0);
            rn_send(p->node, from, RN_BUS_SNAP_CHUNK, b.data, b.len);
            rd_buf_free(&b);
            return;
        }
        if (p->s_nonce != p->nonce || p->s_fd < 0 || p->s_meta.index < cur.index) {
            if (p->s_fd >= 0)
                close(p->s_fd);
            p->s_fd = open(p->path_rdb, O_RDONLY | O_CLOEXEC);
            if (p->s_fd < 0) {
                rd_warning("snapshot: cannot open %s: %s", p->path_rdb, strerror(errno));
                rd_buf_free(&b);
                return;
            }
            p->s_nonce = p->nonce;
            p->s_size = p->size;
            p->s_max = p->max_index;
            p->s_meta = cur;
        }
        if (v[1] != p->s_nonce)
            v[2] = 0;
    }
    uint64_t at = v[2] > p->s_size ? p->s_size : v[2];
    size_t want = p->s_size - at < SNAP_CHUNK_BYTES ? (size_t)(p->s_size - at) : SNAP_CHUNK_BYTES;
    uint8_t conf[RAFT_CONF_BYTES_MAX];
    size_t clen = 0;
    raft_conf_encode(&p->s_meta.conf, conf, sizeof(conf), &clen);
    uint64_t hdr[8] = {1,   p->s_meta.index, p->s_meta.term, p->s_nonce, p->s_size, at, p->s_max,
                       clen};
    for (int i = 0; i < 8; i++)
        rd_put_varint(&b, hdr[i]);
    rd_buf_append(&b, conf, clen);
    size_t head = b.len;
    if (rd_buf_reserve(&b, want) != 0) {
        rd_buf_free(&b);
        return;
    }
    ssize_t r = want ? pread(p->s_fd, b.data + head, want, (off_t)at) : 0;
    if (r != (ssize_t)want) {
        rd_warning("snapshot: cannot read %s", p->path_rdb);
        rd_buf_free(&b);
        return;
    }
    b.len = head + want;
    if (rn_send(p->node, from, RN_BUS_SNAP_CHUNK, b.data, b.len) == 0)
        p->sent_chunks++;
    rd_buf_free(&b);
}

void px_snap_on_frame(struct px_snap *p, uint64_t from, uint8_t type, const void *payload,
                      size_t len)
{
    if (type == RN_BUS_SNAP_REQ)
        on_req(p, from, payload, len);
    else
        on_chunk(p, from, payload, len);
}

/* ---- life ----------------------------------------------------------------------------------- */

uint64_t px_snap_max_index(const struct px_snap *p)
{
    return p->max_index;
}

int px_snap_loading(const struct px_snap *p)
{
    return p->state >= SS_WAIT_SYNC;
}

int px_snap_adopt_pending(const struct px_snap *p)
{
    return p->adopt_pending;
}

void px_snap_adopt(struct px_snap *p)
{
    if (p->adopt_pending)
        return;
    p->adopt_pending = 1;
    rn_block_joins(p->node, 1);
    rlog_set_meta_u64(rn_store(p->node), "adopt_pending", 1);
    rlog_flush(rn_store(p->node), 1);
    rd_notice("snapshot: the keys the local redis holds will be the cluster's first snapshot; "
              "nodes can join once it is taken");
}

void px_snap_info(const struct px_snap *p, struct rd_buf *out)
{
    static const char *names[] = {"idle",    "capturing", "fetching", "loading",
                                  "loading", "loading",   "loading"};
    rd_buf_printf(
        out,
        "snapshot_state:%s\r\nsnapshot_bytes:%llu\r\nsnapshots_taken:%llu\r\n"
        "snapshots_installed:%llu\r\nsnapshots_restored:%llu\r\nsnapshot_failures:%llu\r\n"
        "snapshot_last_take_seconds:%.3f\r\nsnapshot_last_install_seconds:%.3f\r\n"
        "snapshot_chunks_sent:%llu\r\n",
        names[p->state], (unsigned long long)p->size, (unsigned long long)p->taken,
        (unsigned long long)p->installed, (unsigned long long)p->restored,
        (unsigned long long)p->failures, p->last_take_s, p->last_install_s,
        (unsigned long long)p->sent_chunks);
    uint64_t done = 0;
    int moving = 1;
    if (p->state == SS_FETCH) {
        done = p->f_off;
        rd_buf_printf(out, "snapshot_fetch_progress:%llu/%llu\r\n", (unsigned long long)done,
                      (unsigned long long)p->f_total);
    } else if (p->state == SS_CAPTURE && p->cap) {
        done = be_capture_bytes(p->cap);
        rd_buf_printf(out, "snapshot_capture_bytes:%llu\r\n", (unsigned long long)done);
    } else if (p->state == SS_WAIT_SYNC && p->feeder) {
        done = be_feeder_sent(p->feeder);
        rd_buf_printf(out, "snapshot_load_progress:%llu/%llu\r\n", (unsigned long long)done,
                      (unsigned long long)(p->inst_fetched ? p->f_total : p->size));
    } else {
        moving = 0;
    }
    /* The rate of the step running now, since it began. */
    double took = now_s(p) - p->phase_started;
    if (moving)
        rd_buf_printf(out, "snapshot_bytes_per_sec:%llu\r\n",
                      (unsigned long long)(took > 0.001 ? (double)done / took : 0));
}

struct px_snap *px_snap_new(struct ev_loop *loop, const struct px_config *cfg, struct rn_node *node,
                            struct be_link *link, struct be_apply *apply, struct px_server *server)
{
    struct px_snap *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->cfg = cfg;
    p->node = node;
    p->link = link;
    p->apply = apply;
    p->server = server;
    p->f_fd = p->s_fd = -1;
    snprintf(p->path_rdb, sizeof(p->path_rdb), "%s/snapshot.rdb", cfg->dir);
    snprintf(p->path_tmp, sizeof(p->path_tmp), "%s/snapshot.tmp", cfg->dir);
    snprintf(p->path_recv, sizeof(p->path_recv), "%s/snapshot.recv", cfg->dir);
    unlink(p->path_tmp); /* a capture that did not finish */
    struct rlog *st = rn_store(node);
    uint64_t v = 0;
    if (rlog_get_meta_u64(st, "snap_nonce", &v) == 0)
        p->nonce = v;
    if (rlog_get_meta_u64(st, "snap_size", &v) == 0)
        p->size = v;
    if (rlog_get_meta_u64(st, "snap_max", &v) == 0)
        p->max_index = v;
    if (rlog_get_meta_u64(st, "adopt_pending", &v) == 0)
        p->adopt_pending = v != 0;
    rn_block_joins(node, p->adopt_pending);
    ev_timer_init(&p->check, check_cb, SNAP_CHECK_S, SNAP_CHECK_S);
    p->check.data = p;
    ev_timer_start(loop, &p->check);
    ev_init(&p->wait, wait_cb);
    p->wait.data = p;
    ev_init(&p->pace, pace_cb);
    p->pace.data = p;
    return p;
}

void px_snap_free(struct px_snap *p)
{
    if (p == NULL)
        return;
    ev_timer_stop(p->loop, &p->check);
    ev_timer_stop(p->loop, &p->wait);
    ev_timer_stop(p->loop, &p->pace);
    be_capture_free(p->cap);
    be_feeder_free(p->feeder);
    if (p->f_fd >= 0)
        close(p->f_fd);
    if (p->s_fd >= 0)
        close(p->s_fd);
    free(p);
}
