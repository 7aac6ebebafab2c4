#include "raftlog/node.h"

#include <ev.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/sha256.h"
#include "raftlog/cache.h"
#include "raftlog/bus.h"
#include "raftlog/raft.h"
#include "raftlog/store.h"

#define RN_READY_ROUNDS_MAX 8 /* readies processed per loop turn before yielding */
/* Entry bytes per append (one larger entry still goes alone). With the core's 64 appends in
 * flight per follower, this bounds what a follower catching up costs the leader's memory. */
#define RN_MSG_BYTES_MAX (256u * 1024)

/* Committed entries kept for the apply path (raftlog/cache.h). */
#define RN_CACHE_ENTRIES_MAX 16384u /* a power of two */
#define RN_CACHE_BYTES_MAX   (16u * 1024 * 1024)

struct rn_node {
    struct ev_loop *loop;
    struct rlog *store;
    struct bus *bus;
    struct rn_node_cfg cfg;
    void *ctx;
    struct rn_node_cbs cbs;
    struct raft *raft;
    ev_timer tick;
    uint64_t commit; /* highest committed index this node has durably */
    int failed;
    int joining;
    uint64_t fsyncs;
    int role;
    uint64_t term, leader;
    uint64_t conf_index;              /* index of the configuration the bus peers reflect */
    uint64_t conf_hint;               /* index of the last stored configuration entry */
    uint64_t cterm, cterm_index;      /* newest term among committed entries, and its first */
    uint64_t peers[RAFT_MEMBERS_MAX]; /* ids given to the bus */
    unsigned npeers;
    struct rd_buf scratch;
    uint8_t *msgbuf;
    size_t msgcap;
    struct rlog_entry *ents;
    size_t entcap;
    struct raft_snapshot_meta snap; /* the latest snapshot's metadata */
    int joins_blocked;              /* RAFT.NODE ADD answers TRYAGAIN (rn_block_joins) */
    char announce[RAFT_MEMBER_BLOB_BYTES_MAX + 1]; /* this node's bus address now */
    unsigned addr_ticks;                           /* ticks since the last address check */
    /* leader: followers far behind, last reported (the log's catch-up progress lines) */
    struct {
        uint64_t id, match;
        double at;
    } behind[RAFT_MEMBERS_MAX];
    unsigned nbehind;
    double behind_next;    /* no report before this time */
    struct rn_cache cache; /* committed entries the apply path has not fetched yet */
    /* The ready being handled. While its synced write runs on the store's writer thread
     * (rd_inflight), the loop goes on; rn_flush finishes it once the write is done. */
    struct raft_ready rd;
    int rd_out, rd_inflight;
    uint64_t unreach[RAFT_MEMBERS_MAX]; /* peers an append could not be queued for */
    size_t nunreach;
    struct raft_snapshot_fetch fetch; /* to hand to cbs.snapshot_fetch after the advance */
    ev_async persisted;               /* the writer thread wakes the loop */
};

/* ---- storage for the core ---- */

static int st_entry(void *ctx, uint64_t index, struct raft_entry *out)
{
    struct rn_node *n = ctx;
    struct rlog_entry e;
    int rc = rlog_get(n->store, index, &e);
    if (rc == RLOG_ENOTFOUND)
        return RAFT_ENOTFOUND;
    if (rc != 0)
        return RAFT_EIO;
    out->index = e.index;
    out->term = e.term;
    out->type = e.type;
    out->data = (void *)e.data;
    out->len = e.len;
    return 0;
}

static int st_term(void *ctx, uint64_t index, uint64_t *term_out)
{
    struct rn_node *n = ctx;
    int rc = rlog_term(n->store, index, term_out);
    if (rc == RLOG_ENOTFOUND)
        return RAFT_ENOTFOUND;
    return rc == 0 ? 0 : RAFT_EIO;
}

static const struct raft_storage_ops storage_ops = {.entry = st_entry, .term = st_term};

/* ---- sending ---- */

static int send_raft_msg(struct rn_node *n, const struct raft_msg *m)
{
    size_t need = raft_msg_encoded_size(m);
    if (need > n->msgcap) {
        uint8_t *p = realloc(n->msgbuf, need);
        if (p == NULL)
            return -1;
        n->msgbuf = p;
        n->msgcap = need;
    }
    size_t len;
    if (raft_msg_encode(m, n->msgbuf, n->msgcap, &len) != 0)
        return -1;
    return bus_send(n->bus, m->to, RN_BUS_RAFT, n->msgbuf, len);
}

static void send_msgs(struct rn_node *n, const struct raft_msg *msgs, size_t count,
                      uint64_t *unreachable, size_t *nunreach)
{
    for (size_t i = 0; i < count; i++) {
        if (send_raft_msg(n, &msgs[i]) != 0 && msgs[i].type == RAFT_MSG_APPEND &&
            *nunreach < RAFT_MEMBERS_MAX)
            unreachable[(*nunreach)++] = msgs[i].to;
    }
}

static int send_frame_u64s(struct rn_node *n, uint64_t to, uint8_t type, const uint64_t *v,
                           int count)
{
    rd_buf_reset(&n->scratch);
    for (int i = 0; i < count; i++)
        rd_put_varint(&n->scratch, v[i]);
    return bus_send(n->bus, to, type, n->scratch.data, n->scratch.len);
}

/* ---- membership -> bus peers ---- */

static void refresh_peers(struct rn_node *n)
{
    uint64_t idx;
    const struct raft_conf *c = raft_conf(n->raft, &idx);
    if (c == NULL || idx == n->conf_index)
        return;
    n->conf_index = idx;
    /* Peers that left the configuration are dropped from the bus. */
    for (unsigned k = 0; k < n->npeers;) {
        if (raft_conf_find(c, n->peers[k]) == NULL) {
            bus_remove_peer(n->bus, n->peers[k]);
            n->peers[k] = n->peers[--n->npeers];
        } else {
            k++;
        }
    }
    for (unsigned i = 0; i < c->n; i++) {
        const struct raft_member *m = &c->members[i];
        if (m->id == n->cfg.id || m->blob_len == 0)
            continue;
        char addr[RAFT_MEMBER_BLOB_BYTES_MAX + 1];
        memcpy(addr, m->blob, m->blob_len);
        addr[m->blob_len] = '\0';
        bus_set_peer(n->bus, m->id, addr);
        unsigned k;
        for (k = 0; k < n->npeers && n->peers[k] != m->id; k++)
            ;
        if (k == n->npeers && n->npeers < RAFT_MEMBERS_MAX)
            n->peers[n->npeers++] = m->id;
    }
    rd_notice("cluster configuration at index %llu: %u member(s)", (unsigned long long)idx, c->n);
}

/* ---- ready ---- */

/* Stages the snapshot's metadata: index and term (with the log trim) and its configuration. */
static int stage_snapshot(struct rn_node *n, const struct raft_snapshot_meta *m, int discard)
{
    uint8_t conf[RAFT_CONF_BYTES_MAX];
    size_t clen;
    if (raft_conf_encode(&m->conf, conf, sizeof(conf), &clen) != 0)
        return -1;
    int rc = discard ? rlog_reset_to_snapshot(n->store, m->index, m->term)
                     : rlog_set_snapshot(n->store, m->index, m->term);
    if (rc != 0 || rlog_set_meta(n->store, "snap_conf", conf, clen) != 0)
        return -1;
    /* A configuration entry the trim dropped is described by the snapshot now. */
    if (discard || n->conf_hint <= m->index) {
        if (rlog_set_meta_u64(n->store, "conf_index", m->index) != 0)
            return -1;
        n->conf_hint = m->index;
    }
    n->snap = *m;
    return 0;
}

/* Stages what rd asks to persist; *need_sync says whether it needs an fsync before anyone
 * hears of it. */
static int stage(struct rn_node *n, const struct raft_ready *rd, int *need_sync)
{
    if (rd->snapshot != NULL && stage_snapshot(n, rd->snapshot, rd->snapshot_discard_log) != 0)
        return -1;
    if (rd->n_entries > 0) {
        if (rd->n_entries > n->entcap) {
            struct rlog_entry *p = realloc(n->ents, rd->n_entries * sizeof(*p));
            if (p == NULL)
                return -1;
            n->ents = p;
            n->entcap = rd->n_entries;
        }
        for (size_t i = 0; i < rd->n_entries; i++) {
            n->ents[i].index = rd->entries[i].index;
            n->ents[i].term = rd->entries[i].term;
            n->ents[i].type = rd->entries[i].type;
            n->ents[i].data = rd->entries[i].data;
            n->ents[i].len = rd->entries[i].len;
        }
        if (rlog_append(n->store, n->ents, rd->n_entries) != 0)
            return -1;
        /* Where the last configuration entry is, kept in the same batch, so a restart need not
         * scan the log for it. A suffix that replaced it leaves it unknown (0: scan). */
        uint64_t conf = n->conf_hint;
        if (conf >= rd->entries[0].index)
            conf = 0;
        for (size_t i = 0; i < rd->n_entries; i++)
            if (rd->entries[i].type == RAFT_ENTRY_CONF)
                conf = rd->entries[i].index;
        if (conf != n->conf_hint) {
            if (rlog_set_meta_u64(n->store, "conf_index", conf) != 0)
                return -1;
            n->conf_hint = conf;
        }
    }
    /* Entries, term and vote must be on disk before anyone hears of them (Raft §5.1, fig. 2's
     * "persistent state"). The commit index need not be: a node that loses it learns it again
     * from the leader. A ready that only moves the commit index is written without an fsync,
     * which spares a second fsync per write at low concurrency. */
    *need_sync = rd->n_entries > 0 || rd->snapshot != NULL;
    if (rd->hs_changed) {
        struct rlog_hard_state old;
        rlog_hard_state(n->store, &old);
        if (rd->hs.term != old.term || rd->hs.vote != old.vote)
            *need_sync = 1;
        struct rlog_hard_state hs = {rd->hs.term, rd->hs.vote, rd->hs.commit};
        if (rlog_set_hard_state(n->store, &hs) != 0)
            return -1;
    }
    return 0;
}

static void note_role(struct rn_node *n, const struct raft_ready *rd)
{
    if (rd->role == n->role && rd->term == n->term && rd->leader == n->leader)
        return;
    int changed_leader = rd->leader != n->leader || rd->role != n->role;
    n->role = rd->role;
    n->term = rd->term;
    n->leader = rd->leader;
    rd_log_set_role(rd->role == RAFT_LEADER ? 'L' : rd->role == RAFT_FOLLOWER ? 'F' : 'C');
    if (changed_leader) {
        if (rd->role == RAFT_LEADER)
            rd_notice("this node is the leader now (term %llu)", (unsigned long long)rd->term);
        else if (rd->leader)
            rd_notice("leader is node %llu (term %llu)", (unsigned long long)rd->leader,
                      (unsigned long long)rd->term);
        else
            rd_verbose("no leader (term %llu, %s)", (unsigned long long)rd->term,
                       raft_role_name(rd->role));
    }
    if (n->cbs.role_changed)
        n->cbs.role_changed(n->ctx, n->role, n->term, n->leader);
}

/* What a log write returned (rc) and whether it was synced. */
static void write_done(struct rn_node *n, int rc, int synced)
{
    if (rc != 0) {
        /* A failed write leaves durability unknown: stop, as a database must. */
        rd_warning("log write failed: %s; this node stops taking part", rlog_last_error(n->store));
        n->failed = 1;
    } else if (synced) {
        n->fsyncs++;
    }
}

/* The leader's write on the store's thread: finished (or waited for, when `wait`) here.
 * Returns 1 while it still runs. */
static int finish_write(struct rn_node *n, int wait)
{
    int rc = wait ? rlog_flush_wait(n->store) : rlog_flush_busy(n->store);
    if (rc == 1)
        return 1;
    n->rd_inflight = 0;
    write_done(n, rc, 1);
    return 0;
}

/* The second half of a ready, once its write is on disk: the messages that depend on it, and
 * the advance. The snapshot fetch it asks for is kept for rn_flush to start. */
static void finish_ready(struct rn_node *n)
{
    struct raft_ready *rd = &n->rd;
    if (!n->failed) {
        send_msgs(n, rd->msgs, rd->n_msgs, n->unreach, &n->nunreach);
        refresh_peers(n);
        if (rd->snapshot != NULL) {
            rd_notice("log reset to start after the installed snapshot (index %llu, term %llu)",
                      (unsigned long long)rd->snapshot->index,
                      (unsigned long long)rd->snapshot->term);
            if (rd->snapshot->index > n->commit)
                n->commit = rd->snapshot->index;
        }
        if (rd->fetch.index != 0)
            n->fetch = rd->fetch;
    }
    raft_advance(n->raft, rd);
    n->rd_out = 0;
    for (size_t i = 0; i < n->nunreach; i++)
        raft_report_unreachable(n->raft, n->unreach[i]);
    n->nunreach = 0;
}

/* A committed entry goes to the cache the apply path reads (data: malloc'd, taken over). */
static void hand_committed(struct rn_node *n, const struct raft_entry *e, void *data)
{
    if (e->term > n->cterm) {
        n->cterm = e->term;
        n->cterm_index = e->index;
    }
    rn_cache_put(&n->cache, e->index, e->type, data, e->len);
}

/* Tells the owner the apply path may go on to `last`, and hands it read indexes. */
static void hand_on(struct rn_node *n, uint64_t last, const struct raft_read_state *reads,
                    size_t n_reads)
{
    if (last > n->commit) {
        n->commit = last;
        if (n->cbs.committed)
            n->cbs.committed(n->ctx, n->commit);
    }
    for (size_t i = 0; i < n_reads; i++)
        if (n->cbs.read_index)
            n->cbs.read_index(n->ctx, reads[i].ctx, reads[i].index);
}

/* While the leader's write runs: entries committed since (by the followers' answers; never
 * beyond what this node has on disk) and read indexes answered since are handed on now, not
 * after the write: applying them need not wait for it. */
static void take_early(struct rn_node *n)
{
    struct raft_entry e;
    uint64_t last = 0;
    while (raft_take_committed(n->raft, &e) == RAFT_OK) {
        hand_committed(n, &e, e.data);
        last = e.index;
    }
    struct raft_read_state *reads = NULL;
    size_t n_reads = raft_take_read_states(n->raft, &reads);
    hand_on(n, last, reads, n_reads);
    free(reads);
}

/* The first half: committed entries and read states are handed on (committed entries are
 * always on this node's disk already: the core hands out none beyond its persisted log), so
 * the owner can start applying them first; the leader's appends go out (they do not wait for
 * its own disk, thesis §10.2.1); and the write starts. Returns 1 while the write runs on the
 * store's thread. */
static int start_ready(struct rn_node *n)
{
    struct raft_ready *rd = &n->rd;
    note_role(n, rd);
    for (size_t i = 0; i < rd->n_committed; i++)
        hand_committed(n, &rd->committed[i], raft_ready_take_committed(n->raft, i));
    hand_on(n, rd->n_committed ? rd->committed[rd->n_committed - 1].index : 0, rd->reads,
            rd->n_reads);
    send_msgs(n, rd->msgs_early, rd->n_msgs_early, n->unreach, &n->nunreach);
    /* Sent now, not at the end of the turn, so the followers' fsyncs overlap this node's. */
    if (rd->n_msgs_early > 0)
        bus_flush(n->bus);
    int need_sync = 0;
    if (stage(n, rd, &need_sync) != 0) {
        write_done(n, -1, 0);
        return 0;
    }
    if (!rlog_pending(n->store))
        return 0;
    /* Only a leader writes on the store's thread: it has clients and followers to serve
     * meanwhile. A follower's ack waits for its own write anyway, and handing the write to a
     * thread and back would only add two wake-ups to every commit. An installed snapshot
     * (rare) is written here too. */
    if (need_sync && rd->snapshot == NULL && rd->role == RAFT_LEADER) {
        int rc = rlog_flush_start(n->store);
        if (rc == 1)
            return 1;
        write_done(n, rc, 1);
        return 0;
    }
    write_done(n, rlog_flush(n->store, need_sync), need_sync);
    return 0;
}

/* A ready whose write is running is finished now, waiting for the disk; for calls into the
 * core that must not come between a ready and its advance. */
static void settle(struct rn_node *n)
{
    if (!n->rd_out)
        return;
    if (n->rd_inflight)
        finish_write(n, 1);
    finish_ready(n);
}

int rn_flush(struct rn_node *n)
{
    for (int round = 0; round < RN_READY_ROUNDS_MAX; round++) {
        if (n->rd_inflight && finish_write(n, 0)) {
            take_early(n);
            break; /* the writer thread wakes the loop when it is done */
        }
        if (n->rd_out)
            finish_ready(n);
        if (n->fetch.index != 0) {
            struct raft_snapshot_fetch f = n->fetch;
            memset(&n->fetch, 0, sizeof(n->fetch));
            if (n->cbs.snapshot_fetch)
                n->cbs.snapshot_fetch(n->ctx, f.index, f.term, f.from);
            else
                raft_snapshot_fetch_failed(n->raft);
        }
        if (n->failed || !raft_has_ready(n->raft) || raft_ready(n->raft, &n->rd) != 0)
            break;
        n->rd_out = 1;
        n->rd_inflight = start_ready(n);
        if (!n->rd_inflight)
            finish_ready(n);
    }
    return n->failed ? RN_EIO : RN_OK;
}

/* ---- ticks and leader chores ---- */

static void promote_learners(struct rn_node *n)
{
    uint64_t idx;
    const struct raft_conf *c = raft_conf(n->raft, &idx);
    for (unsigned i = 0; c && i < c->n; i++) {
        if (c->members[i].voter)
            continue;
        uint64_t id = c->members[i].id;
        int rc = raft_propose_conf_change(n->raft, RAFT_CONF_PROMOTE, id, NULL, 0, NULL);
        if (rc == 0)
            rd_notice("promoting node %llu to voter (caught up)", (unsigned long long)id);
        break; /* one change at a time */
    }
}

/* A node that comes back at another address (a rescheduled container) tells the cluster, so
 * that the others dial it there: its entry in the configuration is what they follow. */
static void check_own_address(struct rn_node *n)
{
    if (n->announce[0] == '\0' || !rn_in_cluster(n) || raft_leader(n->raft) == 0)
        return;
    uint64_t idx;
    const struct raft_conf *c = raft_conf(n->raft, &idx);
    const struct raft_member *m = c ? raft_conf_find(c, n->cfg.id) : NULL;
    size_t alen = strlen(n->announce);
    if (m == NULL || (m->blob_len == alen && memcmp(m->blob, n->announce, alen) == 0))
        return;
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)n->cfg.id);
    const char *argv[] = {"RAFT.NODE", "ADDR", id, n->announce};
    size_t lens[] = {9, 4, strlen(id), alen};
    struct rd_buf out;
    rd_buf_init(&out);
    rd_notice("this node's address is %s now (the cluster knows %.*s): telling the leader",
              n->announce, (int)m->blob_len, m->blob);
    rn_admin(n, 0, 4, argv, lens, &out);
    rd_buf_free(&out);
}

#define CATCHUP_REPORT_S 5.0  /* how often the leader logs a lagging follower's progress */
#define CATCHUP_BEHIND   1000 /* entries behind the leader's log worth a line */

/* Leader: every CATCHUP_REPORT_S, one line per follower more than CATCHUP_BEHIND entries behind
 * (where it is, how far behind, and its rate since the last line), and one when it has caught
 * up. The same figures are INFO raft's match_index. */
static void report_catchup(struct rn_node *n)
{
    double now = ev_now(n->loop);
    if (now < n->behind_next)
        return;
    n->behind_next = now + CATCHUP_REPORT_S;
    struct raft_status st;
    raft_status(n->raft, &st);
    unsigned kept = 0;
    for (unsigned k = 0; k < st.n_peers; k++) {
        uint64_t id = st.peers[k].id, match = st.peers[k].match;
        int was = -1;
        for (unsigned i = 0; i < n->nbehind; i++)
            if (n->behind[i].id == id)
                was = (int)i;
        if (st.last_index - match <= CATCHUP_BEHIND) {
            if (was >= 0) {
                rd_notice("node %llu caught up: match index %llu of %llu", (unsigned long long)id,
                          (unsigned long long)match, (unsigned long long)st.last_index);
                /* Its catch-up read, copied and queued tens of MB that are free now; glibc
                 * keeps such memory unless asked (measured: 100 MB resident -> about 60). */
                malloc_trim(0);
            }
            continue;
        }
        double rate = 0;
        if (was >= 0 && now > n->behind[was].at && match >= n->behind[was].match)
            rate = (double)(match - n->behind[was].match) / (now - n->behind[was].at);
        rd_notice("node %llu catching up: match index %llu of %llu (%llu behind%s, %.0f "
                  "entries/s)",
                  (unsigned long long)id, (unsigned long long)match,
                  (unsigned long long)st.last_index, (unsigned long long)(st.last_index - match),
                  st.peers[k].state == RAFT_PROGRESS_SNAPSHOT ? ", receiving a snapshot" : "",
                  rate);
        n->behind[kept].id = id;
        n->behind[kept].match = match;
        n->behind[kept].at = now;
        kept++;
    }
    n->nbehind = kept;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct rn_node *n = w->data;
    raft_tick(n->raft);
    if (raft_role(n->raft) == RAFT_LEADER) {
        promote_learners(n);
        report_catchup(n);
    } else {
        n->nbehind = 0;
    }
    if (++n->addr_ticks >= 10) {
        n->addr_ticks = 0;
        check_own_address(n);
    }
}

/* ---- bus frames ---- */

static int get_u64s(const uint8_t *p, size_t len, uint64_t *v, int count, size_t *used)
{
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        size_t k = rd_get_varint(p + off, len - off, &v[i]);
        if (k == 0)
            return -1;
        off += k;
    }
    *used = off;
    return 0;
}

static int map_raft_err(int rc)
{
    switch (rc) {
    case RAFT_ENOTLEADER:
    case RAFT_ENOLEADER:
        return RN_ENOLEADER;
    case RAFT_EFULL:
        return RN_EFULL;
    case RAFT_ETRANSFER:
        return RN_ETRANSFER;
    case RAFT_ENOMEM:
        return RN_ENOMEM;
    default:
        return RN_EIO;
    }
}

/* The log view's reader (struct rn_log_view): entries from the core, which keeps the recent
 * ones in memory and reads older ones from the store. */
struct log_reader {
    struct rn_node *n;
    void *owned; /* the last entry read from the store, freed at the next read */
};

static int log_read(void *rctx, uint64_t index, const void **data, size_t *len)
{
    struct log_reader *lr = rctx;
    free(lr->owned);
    lr->owned = NULL;
    struct raft_entry e;
    int owned;
    if (raft_entry_get(lr->n->raft, index, &e, &owned) != RAFT_OK)
        return -1;
    if (owned)
        lr->owned = e.data;
    *data = e.type == RAFT_ENTRY_NORMAL ? e.data : NULL;
    *len = e.type == RAFT_ENTRY_NORMAL ? e.len : 0;
    return 0;
}

/* Appends a proposal on this leader: the guard (the first guard_len bytes) is checked against
 * the log first, and only the entry after it is appended. raft_propose appends at once, at
 * last + 1 (nothing is queued to be appended later), so the entries the check saw are exactly
 * those that precede the new one. Returns an RN_* code. */
static int leader_propose(struct rn_node *n, const uint8_t *data, size_t len, size_t guard_len,
                          uint64_t *index, uint64_t *term)
{
    if (raft_role(n->raft) != RAFT_LEADER)
        return RN_ENOLEADER;
    if (guard_len > 0) {
        if (n->cbs.admit == NULL)
            return RN_EWATCH;
        struct log_reader lr = {n, NULL};
        struct rn_log_view view = {raft_last_index(n->raft), log_read, &lr};
        int rc = n->cbs.admit(n->ctx, data, guard_len, &view);
        free(lr.owned);
        if (rc != RN_OK)
            return rc;
    }
    int rc = raft_propose(n->raft, data + guard_len, len - guard_len, index, term);
    return rc == 0 ? RN_OK : map_raft_err(rc);
}

static void on_fwd(struct rn_node *n, uint64_t from, const uint8_t *p, size_t len, int guarded)
{
    uint64_t hdr[3] = {0, 0, 0}; /* reqid, the term the sender forwarded it in, guard length */
    size_t used;
    if (get_u64s(p, len, hdr, guarded ? 3 : 2, &used) != 0 || hdr[2] > len - used) {
        rd_warning("malformed forwarded write from node %llu", (unsigned long long)from);
        return;
    }
    uint64_t index, term;
    /* Proposed only in the term the sender meant: then a write it never heard back about can
     * only have been proposed in that term, which it can rule out later (see rn_term_start). */
    int rc = raft_role(n->raft) == RAFT_LEADER && raft_term(n->raft) != hdr[1]
                 ? RN_ENOLEADER
                 : leader_propose(n, p + used, len - used, (size_t)hdr[2], &index, &term);
    if (rc == RN_OK) {
        uint64_t v[3] = {hdr[0], index, term};
        send_frame_u64s(n, from, RN_BUS_FWD_ACK, v, 3);
    } else {
        /* The term tells the sender which of its forwards this answers: an answer to an old
         * one can arrive after it forwarded the write again in a newer term. */
        uint64_t v[3] = {hdr[0], (uint64_t)(-rc), hdr[1]};
        send_frame_u64s(n, from, RN_BUS_FWD_NACK, v, 3);
    }
}

static void on_admin(struct rn_node *n, uint64_t from, const uint8_t *p, size_t len)
{
    uint64_t hdr[2];
    size_t off;
    if (get_u64s(p, len, hdr, 2, &off) != 0 || hdr[1] == 0 || hdr[1] > 16) {
        rd_warning("malformed admin request from node %llu", (unsigned long long)from);
        return;
    }
    const char *argv[16];
    size_t argvlen[16];
    for (uint64_t i = 0; i < hdr[1]; i++) {
        uint64_t l;
        size_t k = rd_get_varint(p + off, len - off, &l);
        if (k == 0 || l > len - off - k) {
            rd_warning("malformed admin request from node %llu", (unsigned long long)from);
            return;
        }
        argv[i] = (const char *)p + off + k;
        argvlen[i] = (size_t)l;
        off += k + (size_t)l;
    }
    struct rd_buf out;
    rd_buf_init(&out);
    rd_put_varint(&out, hdr[0]);
    size_t head = out.len;
    int rc = rn_admin(n, 0, (int)hdr[1], argv, argvlen, &out);
    if (rc == RN_FORWARDED) {
        /* Not the leader any more: do not bounce it around. */
        out.len = head;
        rd_resp_simple(&out, '-', "TRYAGAIN leadership changed; retry");
    }
    bus_send(n->bus, from, RN_BUS_ADMIN_REPLY, out.data, out.len);
    rd_buf_free(&out);
}

void rn_on_frame(struct rn_node *n, uint64_t from, uint8_t type, const void *payload, size_t len)
{
    const uint8_t *p = payload;
    uint64_t v[3];
    size_t used;
    switch (type) {
    case RN_BUS_RAFT: {
        struct raft_msg m;
        if (raft_msg_decode(payload, len, &m) != 0) {
            rd_warning("malformed raft message from node %llu", (unsigned long long)from);
            return;
        }
        /* The bus authenticated the sender: a message may not speak for another node. */
        if (m.from != from)
            rd_warning("raft message from node %llu claims to be from %llu; dropped",
                       (unsigned long long)from, (unsigned long long)m.from);
        else
            raft_step(n->raft, &m);
        raft_msg_release(&m);
        return;
    }
    case RN_BUS_FWD:
    case RN_BUS_FWD_GUARDED:
        on_fwd(n, from, p, len, type == RN_BUS_FWD_GUARDED);
        return;
    case RN_BUS_FWD_ACK:
        if (get_u64s(p, len, v, 3, &used) == 0 && n->cbs.proposed)
            n->cbs.proposed(n->ctx, v[0], v[1], v[2]);
        return;
    case RN_BUS_FWD_NACK:
        /* The code is an RN_E* value (a small negative number, sent negated); anything else
         * from a peer is taken as a failed store, never trusted as a number. */
        if (get_u64s(p, len, v, 2, &used) == 0 && n->cbs.propose_failed) {
            size_t more;
            if (get_u64s(p + used, len - used, &v[2], 1, &more) != 0)
                v[2] = 0; /* a NACK of two fields: from a node that does not send the term */
            n->cbs.propose_failed(n->ctx, v[0], v[1] >= 1 && v[1] <= 64 ? -(int)v[1] : RN_EIO,
                                  v[2]);
        }
        return;
    case RN_BUS_ADMIN:
        on_admin(n, from, p, len);
        return;
    case RN_BUS_ADMIN_REPLY:
        if (get_u64s(p, len, v, 1, &used) == 0 && n->cbs.admin_reply)
            n->cbs.admin_reply(n->ctx, v[0], (const char *)p + used, len - used);
        return;
    case RN_BUS_SNAP_REQ:
    case RN_BUS_SNAP_CHUNK:
        if (n->cbs.snap_frame)
            n->cbs.snap_frame(n->ctx, from, type, payload, len);
        return;
    default:
        rd_warning("unknown bus frame type %u from node %llu", type, (unsigned long long)from);
    }
}

void rn_on_peer_state(struct rn_node *n, uint64_t node, int up)
{
    if (!up && raft_role(n->raft) == RAFT_LEADER)
        raft_report_unreachable(n->raft, node);
}

/* ---- life ---- */

/* The core's configuration, from the node's (rn_node_new and a bootstrap's restart). */
static void core_config(struct rn_node *n, struct raft_config *rc)
{
    raft_config_defaults(rc);
    rc->id = n->cfg.id;
    rc->election_ticks = (unsigned)n->cfg.election_ticks;
    rc->heartbeat_ticks = (unsigned)n->cfg.heartbeat_ticks;
    rc->seed = n->cfg.seed;
    rc->uncommitted_bytes_max = n->cfg.uncommitted_bytes_max;
    rc->msg_bytes_max = RN_MSG_BYTES_MAX;
    rc->storage = &storage_ops;
    rc->storage_ctx = n;
}

/* On the store's writer thread: a write finished. */
static void notify_persisted(void *arg)
{
    struct rn_node *n = arg;
    ev_async_send(n->loop, &n->persisted);
}

/* On the loop: nothing to do here; the turn's before-sleep step (rn_flush) finishes the
 * ready. */
static void persisted_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

struct rn_node *rn_node_new(struct ev_loop *loop, struct rlog *store, struct bus *bus,
                            const struct rn_node_cfg *cfg, void *ctx, const struct rn_node_cbs *cbs,
                            char *err, size_t errlen)
{
    struct rn_node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->loop = loop;
    n->store = store;
    n->bus = bus;
    n->cfg = *cfg;
    n->ctx = ctx;
    n->cbs = *cbs;
    n->role = -1;
    rd_buf_init(&n->scratch);
    rn_cache_init(&n->cache, RN_CACHE_ENTRIES_MAX, RN_CACHE_BYTES_MAX);

    struct rlog_hard_state hs;
    rlog_hard_state(store, &hs);
    struct raft_restore rs;
    memset(&rs, 0, sizeof(rs));
    rs.hs.term = hs.term;
    rs.hs.vote = hs.vote;
    rs.hs.commit = hs.commit;
    rlog_snapshot(store, &rs.snapshot.index, &rs.snapshot.term);
    if (rs.snapshot.index) {
        void *conf = NULL;
        size_t clen = 0;
        if (rlog_get_meta(store, "snap_conf", &conf, &clen) != 0 ||
            raft_conf_decode(conf, clen, &rs.snapshot.conf) != 0) {
            snprintf(err, errlen, "the log's snapshot record has no valid configuration");
            free(conf);
            rd_buf_free(&n->scratch);
            free(n);
            return NULL;
        }
        free(conf);
    }
    n->snap = rs.snapshot;
    rs.last_index = rlog_last_index(store);
    /* The apply path resumes from the index Redis itself holds; the core need not hand out
     * entries it already knows committed. */
    rs.applied = hs.commit;
    n->commit = hs.commit;
    if (rlog_get_meta_u64(store, "conf_index", &n->conf_hint) != 0)
        n->conf_hint = 0;
    rs.conf_index_hint = n->conf_hint;

    struct raft_config rc;
    core_config(n, &rc);
    int rcode = raft_new(&rc, &rs, &n->raft);
    if (rcode != 0) {
        snprintf(err, errlen, "cannot start the raft core: %s", raft_errstr(rcode));
        rd_buf_free(&n->scratch);
        free(n);
        return NULL;
    }
    refresh_peers(n);
    ev_timer_init(&n->tick, tick_cb, cfg->tick_ms / 1000.0, cfg->tick_ms / 1000.0);
    n->tick.data = n;
    ev_async_init(&n->persisted, persisted_cb);
    n->persisted.data = n;
    return n;
}

void rn_node_start(struct rn_node *n)
{
    ev_timer_start(n->loop, &n->tick);
    ev_async_start(n->loop, &n->persisted);
    rlog_set_flush_notify(n->store, notify_persisted, n);
}

void rn_node_free(struct rn_node *n)
{
    if (n == NULL)
        return;
    /* No write may still run to call notify_persisted on a freed node. */
    if (n->rd_inflight)
        rlog_flush_wait(n->store);
    rlog_set_flush_notify(n->store, NULL, NULL);
    if (n->rd_out)
        raft_advance(n->raft, &n->rd);
    ev_async_stop(n->loop, &n->persisted);
    ev_timer_stop(n->loop, &n->tick);
    raft_free(n->raft);
    rn_cache_free(&n->cache);
    rd_buf_free(&n->scratch);
    free(n->msgbuf);
    free(n->ents);
    free(n);
}

int rn_in_cluster(const struct rn_node *n)
{
    uint64_t idx;
    const struct raft_conf *c = raft_conf(n->raft, &idx);
    return (c != NULL && c->n > 0) || rlog_last_index(n->store) > 0;
}

void rn_set_joining(struct rn_node *n)
{
    n->joining = 1;
}

int rn_joining(const struct rn_node *n)
{
    return n->joining;
}

int rn_bootstrap(struct rn_node *n, const char *bus_addr, char *err, size_t errlen)
{
    if (rn_in_cluster(n)) {
        snprintf(err, errlen, "ERR this node is already part of a cluster");
        return -1;
    }
    struct raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    conf.n = 1;
    conf.members[0].id = n->cfg.id;
    conf.members[0].voter = 1;
    size_t alen = strlen(bus_addr);
    if (alen > RAFT_MEMBER_BLOB_BYTES_MAX) {
        snprintf(err, errlen, "ERR cluster address too long");
        return -1;
    }
    memcpy(conf.members[0].blob, bus_addr, alen);
    conf.members[0].blob_len = (uint16_t)alen;
    uint8_t buf[RAFT_CONF_ENTRY_BYTES_MAX];
    size_t len;
    if (raft_conf_entry_encode(RAFT_CONF_BOOTSTRAP, 0, &conf, buf, sizeof(buf), &len) != 0) {
        snprintf(err, errlen, "ERR cannot encode the configuration");
        return -1;
    }
    struct rlog_entry e = {.index = 1, .term = 1, .type = RAFT_ENTRY_CONF, .data = buf, .len = len};
    struct rlog_hard_state hs = {.term = 1, .vote = 0, .commit = 1};
    if (rlog_append(n->store, &e, 1) != 0 || rlog_set_hard_state(n->store, &hs) != 0 ||
        rlog_set_meta_u64(n->store, "conf_index", 1) != 0 || rlog_flush(n->store, 1) != 0) {
        snprintf(err, errlen, "ERR cannot write the log: %s", rlog_last_error(n->store));
        return -1;
    }
    /* Start the core again from what is now on disk. */
    struct raft_config rc;
    core_config(n, &rc);
    struct raft_restore rs;
    memset(&rs, 0, sizeof(rs));
    rs.hs.term = 1;
    rs.hs.commit = 1;
    rs.last_index = 1;
    rs.applied = 1;
    rs.conf_index_hint = 1;
    n->conf_hint = 1;
    struct raft *r;
    int rcode = raft_new(&rc, &rs, &r);
    if (rcode != 0) {
        snprintf(err, errlen, "ERR cannot start the raft core: %s", raft_errstr(rcode));
        return -1;
    }
    raft_free(n->raft);
    n->raft = r;
    n->commit = 1;
    n->conf_index = 0;
    refresh_peers(n);
    raft_campaign(n->raft);
    if (n->cbs.committed)
        n->cbs.committed(n->ctx, n->commit);
    return 0;
}

int rn_propose(struct rn_node *n, uint64_t reqid, const void *data, size_t len, size_t guard_len,
               uint64_t *index_out, uint64_t *term_out)
{
    if (n->failed)
        return RN_EIO;
    if (guard_len > len || len - guard_len > RLOG_ENTRY_DATA_MAX)
        return RN_ETOOBIG;
    if (!rn_in_cluster(n))
        return RN_ENOCLUSTER;
    if (raft_role(n->raft) == RAFT_LEADER)
        return leader_propose(n, data, len, guard_len, index_out, term_out);
    uint64_t leader = raft_leader(n->raft);
    if (leader == 0 || leader == n->cfg.id)
        return RN_ENOLEADER;
    uint64_t term = raft_term(n->raft);
    rd_buf_reset(&n->scratch);
    rd_put_varint(&n->scratch, reqid);
    rd_put_varint(&n->scratch, term);
    if (guard_len > 0)
        rd_put_varint(&n->scratch, guard_len);
    if (rd_buf_append(&n->scratch, data, len) != 0)
        return RN_ENOMEM;
    if (bus_send(n->bus, leader, guard_len > 0 ? RN_BUS_FWD_GUARDED : RN_BUS_FWD, n->scratch.data,
                 n->scratch.len) != 0)
        return RN_ENOLEADER;
    if (term_out)
        *term_out = term;
    return RN_FORWARDED;
}

int rn_read_index(struct rn_node *n, uint64_t rctx)
{
    if (!rn_in_cluster(n))
        return RN_ENOCLUSTER;
    int rc = raft_read_index(n->raft, rctx);
    return rc == 0 ? RN_OK : map_raft_err(rc);
}

uint64_t rn_leader_term(const struct rn_node *n)
{
    return raft_role(n->raft) == RAFT_LEADER ? raft_term(n->raft) : 0;
}

uint64_t rn_lead_read_index(struct rn_node *n)
{
    return rn_in_cluster(n) ? raft_lead_read_index(n->raft) : 0;
}

int rn_fetch(struct rn_node *n, uint64_t index, void **data, size_t *len)
{
    if (index > n->commit)
        return RN_ENOTFOUND;
    struct rlog_entry e;
    void *cdata;
    if (rn_cache_take(&n->cache, index, &e.type, &cdata, &e.len) == 0) {
        e.data = cdata;
        if (e.data == NULL)
            e.data = malloc(1); /* non-NULL even when empty, as rlog_get gives it */
        if (e.data == NULL)
            return RN_ENOMEM;
    } else {
        int rc = rlog_get(n->store, index, &e);
        if (rc != 0)
            return rc == RLOG_ENOTFOUND ? RN_ENOTFOUND : RN_EIO;
    }
    if (e.type != RAFT_ENTRY_NORMAL) {
        /* a leader's no-op or a configuration: nothing for Redis */
        free((void *)e.data);
        *data = NULL;
        *len = 0;
        return RN_OK;
    }
    *data = (void *)e.data;
    *len = e.len;
    return RN_OK;
}

/* ---- admin ---- */

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int eq(const char *a, size_t alen, const char *b)
{
    size_t bl = strlen(b);
    if (alen != bl)
        return 0;
    for (size_t i = 0; i < bl; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != b[i])
            return 0;
    }
    return 1;
}

static void admin_err(struct rd_buf *out, int rc)
{
    switch (rc) {
    case RAFT_ECONFPENDING:
        rd_resp_simple(out, '-', "TRYAGAIN a membership change is in progress; retry shortly");
        break;
    case RAFT_ENOTREADY:
        rd_resp_simple(out, '-', "TRYAGAIN the node has not caught up yet");
        break;
    case RAFT_ETRANSFER:
        rd_resp_simple(out, '-', "TRYAGAIN leadership transfer in progress");
        break;
    case RAFT_EINVAL:
        rd_resp_simple(out, '-', "ERR invalid membership change");
        break;
    default: {
        char msg[128];
        snprintf(msg, sizeof(msg), "ERR %s", raft_errstr(rc));
        rd_resp_simple(out, '-', msg);
    }
    }
}

static int admin_forward(struct rn_node *n, uint64_t reqid, int argc, const char **argv,
                         const size_t *argvlen, struct rd_buf *out)
{
    uint64_t leader = raft_leader(n->raft);
    if (leader == 0 || leader == n->cfg.id) {
        rd_resp_simple(out, '-', "CLUSTERDOWN no leader; retry shortly");
        return 0;
    }
    rd_buf_reset(&n->scratch);
    rd_put_varint(&n->scratch, reqid);
    rd_put_varint(&n->scratch, (uint64_t)argc);
    for (int i = 0; i < argc; i++) {
        rd_put_varint(&n->scratch, argvlen[i]);
        rd_buf_append(&n->scratch, argv[i], argvlen[i]);
    }
    if (bus_send(n->bus, leader, RN_BUS_ADMIN, n->scratch.data, n->scratch.len) != 0) {
        rd_resp_simple(out, '-', "CLUSTERDOWN the leader cannot be reached; retry shortly");
        return 0;
    }
    return RN_FORWARDED;
}

static int is_node_cmd(const char *a, size_t alen)
{
    return eq(a, alen, "node") || eq(a, alen, "raft.node");
}

void rn_join_proof(const char *secret, uint64_t id, const char *addr, size_t addrlen,
                   char out[RN_JOIN_PROOF_HEX + 1])
{
    struct rd_hmac_sha256 h;
    char idbuf[32];
    int n = snprintf(idbuf, sizeof(idbuf), "%llu|", (unsigned long long)id);
    rd_hmac_sha256_init(&h, secret, strlen(secret));
    rd_hmac_sha256_update(&h, "redraft-join|", 13);
    rd_hmac_sha256_update(&h, idbuf, (size_t)n);
    rd_hmac_sha256_update(&h, addr, addrlen);
    uint8_t mac[RD_SHA256_LEN];
    rd_hmac_sha256_final(&h, mac);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < RD_SHA256_LEN; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[RN_JOIN_PROOF_HEX] = '\0';
}

/* RAFT.MATCH index, asked by a follower for WAIT: the voters whose log holds index as this
 * leader knows it (its own stable log; each follower's match index), as an array of ids. */
static void admin_match(struct rn_node *n, const char *arg, size_t len, struct rd_buf *out)
{
    uint64_t index;
    if (parse_u64(arg, len, &index) != 0) {
        rd_resp_simple(out, '-', "ERR usage: RAFT.MATCH <index>");
        return;
    }
    static struct raft_status st; /* large: kept off the stack */
    raft_status(n->raft, &st);
    uint64_t ids[RAFT_MEMBERS_MAX + 1];
    long long k = 0;
    if (st.stable_index >= index)
        ids[k++] = st.id;
    for (unsigned i = 0; i < st.n_peers && k <= RAFT_MEMBERS_MAX; i++)
        if (st.peers[i].voter && st.peers[i].match >= index)
            ids[k++] = st.peers[i].id;
    rd_resp_array_len(out, k);
    for (long long i = 0; i < k; i++)
        rd_resp_int(out, (long long)ids[i]);
}

/* argv: RAFT.NODE ADD id addr [proof] | RAFT.NODE REMOVE id ("NODE" also accepted) |
 * RAFT.MATCH index (internal: WAIT on a follower) */
int rn_admin(struct rn_node *n, uint64_t reqid, int argc, const char **argv, const size_t *argvlen,
             struct rd_buf *out)
{
    if (!rn_in_cluster(n)) {
        rd_resp_simple(out, '-', "ERR this node is not part of a cluster");
        return 0;
    }
    if (raft_role(n->raft) != RAFT_LEADER)
        return admin_forward(n, reqid, argc, argv, argvlen, out);
    if (argc == 2 && eq(argv[0], argvlen[0], "raft.match")) {
        admin_match(n, argv[1], argvlen[1], out);
        return 0;
    }
    uint64_t id;
    if (argc >= 3 && is_node_cmd(argv[0], argvlen[0]) && eq(argv[1], argvlen[1], "add")) {
        if ((argc != 4 && argc != 5) || parse_u64(argv[2], argvlen[2], &id) != 0 || id == 0) {
            rd_resp_simple(out, '-', "ERR usage: RAFT.NODE ADD <id> <host:port>");
            return 0;
        }
        if (argvlen[3] == 0 || argvlen[3] > RAFT_MEMBER_BLOB_BYTES_MAX) {
            rd_resp_simple(out, '-', "ERR invalid node address");
            return 0;
        }
        if (argc == 5) {
            char want[RN_JOIN_PROOF_HEX + 1];
            rn_join_proof(n->cfg.secret ? n->cfg.secret : "", id, argv[3], argvlen[3], want);
            if (argvlen[4] != RN_JOIN_PROOF_HEX || !rd_ct_memeq(want, argv[4], RN_JOIN_PROOF_HEX)) {
                rd_warning("refused the join of node %llu at %.*s: it does not know the cluster "
                           "secret",
                           (unsigned long long)id, (int)argvlen[3], argv[3]);
                rd_resp_simple(out, '-', "ERR join refused: wrong cluster secret");
                return 0;
            }
        }
        if (n->joins_blocked) {
            rd_resp_simple(out, '-',
                           "TRYAGAIN the cluster's first snapshot (the data its redis held "
                           "before the cluster existed) is not taken yet; retry shortly");
            return 0;
        }
        uint64_t idx;
        const struct raft_conf *c = raft_conf(n->raft, &idx);
        const struct raft_member *m = c ? raft_conf_find(c, id) : NULL;
        if (m != NULL) {
            /* Asking again (a retried JOIN) with the same address is fine. */
            if (m->blob_len == argvlen[3] && memcmp(m->blob, argv[3], argvlen[3]) == 0)
                rd_resp_simple(out, '+', "OK");
            else
                rd_resp_simple(out, '-', "ERR a node with this id is already a member");
            return 0;
        }
        int rc =
            raft_propose_conf_change(n->raft, RAFT_CONF_ADD_LEARNER, id, argv[3], argvlen[3], NULL);
        if (rc != 0) {
            admin_err(out, rc);
            return 0;
        }
        rd_notice("adding node %llu at %.*s as a learner", (unsigned long long)id, (int)argvlen[3],
                  argv[3]);
        rd_resp_simple(out, '+', "OK");
        return 0;
    }
    if (argc >= 3 && is_node_cmd(argv[0], argvlen[0]) && eq(argv[1], argvlen[1], "addr")) {
        if (argc != 4 || parse_u64(argv[2], argvlen[2], &id) != 0 || id == 0) {
            rd_resp_simple(out, '-', "ERR usage: RAFT.NODE ADDR <id> <host:port>");
            return 0;
        }
        if (argvlen[3] == 0 || argvlen[3] > RAFT_MEMBER_BLOB_BYTES_MAX ||
            memchr(argv[3], ':', argvlen[3]) == NULL) {
            rd_resp_simple(out, '-', "ERR invalid node address");
            return 0;
        }
        uint64_t idx;
        const struct raft_conf *c = raft_conf(n->raft, &idx);
        const struct raft_member *m = c ? raft_conf_find(c, id) : NULL;
        if (m == NULL) {
            rd_resp_simple(out, '-', "ERR no such node in the cluster");
            return 0;
        }
        if (m->blob_len == argvlen[3] && memcmp(m->blob, argv[3], argvlen[3]) == 0) {
            rd_resp_simple(out, '+', "OK");
            return 0;
        }
        int rc =
            raft_propose_conf_change(n->raft, RAFT_CONF_SET_BLOB, id, argv[3], argvlen[3], NULL);
        if (rc != 0) {
            admin_err(out, rc);
            return 0;
        }
        rd_notice("node %llu moved: its address is %.*s now (was %.*s)", (unsigned long long)id,
                  (int)argvlen[3], argv[3], (int)m->blob_len, m->blob);
        rd_resp_simple(out, '+', "OK");
        return 0;
    }
    if (argc >= 3 && is_node_cmd(argv[0], argvlen[0]) && eq(argv[1], argvlen[1], "remove")) {
        if (argc != 3 || parse_u64(argv[2], argvlen[2], &id) != 0) {
            rd_resp_simple(out, '-', "ERR usage: RAFT.NODE REMOVE <id>");
            return 0;
        }
        uint64_t idx;
        const struct raft_conf *c = raft_conf(n->raft, &idx);
        if (c == NULL || raft_conf_find(c, id) == NULL) {
            rd_resp_simple(out, '-', "ERR no such node in the cluster");
            return 0;
        }
        int rc = raft_propose_conf_change(n->raft, RAFT_CONF_REMOVE, id, NULL, 0, NULL);
        if (rc != 0) {
            admin_err(out, rc);
            return 0;
        }
        rd_notice("removing node %llu", (unsigned long long)id);
        rd_resp_simple(out, '+', "OK");
        return 0;
    }
    rd_resp_simple(out, '-', "ERR unknown cluster command");
    return 0;
}

int rn_transfer_leader(struct rn_node *n, uint64_t target)
{
    int rc = raft_transfer_leadership(n->raft, target);
    return rc == 0 ? RN_OK : map_raft_err(rc);
}

/* ---- snapshots ---- */

int rn_snapshot_taken(struct rn_node *n, uint64_t index, struct raft_snapshot_meta *meta_out)
{
    settle(n);
    if (n->failed)
        return RN_EIO;
    struct raft_snapshot_meta m;
    int rc = raft_snapshot_taken(n->raft, index, &m);
    if (rc == RAFT_EINVAL || rc == RAFT_ENOTFOUND)
        return RN_ENOTFOUND;
    if (rc != 0 || stage_snapshot(n, &m, 0) != 0 || rlog_flush(n->store, 1) != 0) {
        rd_warning("log write failed: %s; this node stops taking part", rlog_last_error(n->store));
        n->failed = 1;
        return RN_EIO;
    }
    n->fsyncs++;
    rlog_compact_log(n->store);
    if (meta_out)
        *meta_out = m;
    return RN_OK;
}

int rn_snapshot_installed(struct rn_node *n, const struct raft_snapshot_meta *meta)
{
    settle(n);
    int rc = raft_snapshot_installed(n->raft, meta);
    if (rc != 0) {
        rd_warning("the raft core refused the installed snapshot at index %llu: %s",
                   (unsigned long long)meta->index, raft_errstr(rc));
        return RN_ENOTFOUND;
    }
    return RN_OK;
}

void rn_snapshot_fetch_failed(struct rn_node *n)
{
    raft_snapshot_fetch_failed(n->raft);
}

void rn_snapshot_meta(const struct rn_node *n, struct raft_snapshot_meta *out)
{
    *out = n->snap;
}

int rn_send(struct rn_node *n, uint64_t to, uint8_t type, const void *payload, size_t len)
{
    return bus_send(n->bus, to, type, payload, len) == 0 ? 0 : -1;
}

void rn_set_announce(struct rn_node *n, const char *addr)
{
    snprintf(n->announce, sizeof(n->announce), "%s", addr);
}

void rn_block_joins(struct rn_node *n, int on)
{
    n->joins_blocked = on;
}

unsigned rn_member_count(const struct rn_node *n)
{
    uint64_t idx;
    const struct raft_conf *c = raft_conf(n->raft, &idx);
    return c ? c->n : 0;
}

int rn_is_client_entry(struct rn_node *n, uint64_t index)
{
    struct rlog_entry e;
    if (rlog_get(n->store, index, &e) != 0)
        return 1; /* unknown: assume the worst */
    free((void *)e.data);
    return e.type == RAFT_ENTRY_NORMAL;
}

struct rlog *rn_store(const struct rn_node *n)
{
    return n->store;
}

/* ---- looking inside ---- */

void rn_term_start(const struct rn_node *n, uint64_t *term, uint64_t *index)
{
    *term = n->cterm;
    *index = n->cterm_index;
}

uint64_t rn_id(const struct rn_node *n)
{
    return n->cfg.id;
}

uint64_t rn_commit_index(const struct rn_node *n)
{
    return n->commit;
}

uint64_t rn_last_index(const struct rn_node *n)
{
    return rlog_last_index(n->store);
}

uint64_t rn_first_index(const struct rn_node *n)
{
    return rlog_first_index(n->store);
}

int rn_role(const struct rn_node *n)
{
    return raft_role(n->raft);
}

uint64_t rn_leader(const struct rn_node *n)
{
    return raft_leader(n->raft);
}

int rn_failed(const struct rn_node *n)
{
    return n->failed;
}

uint64_t rn_fsyncs(const struct rn_node *n)
{
    return n->fsyncs;
}

void rn_status(const struct rn_node *n, struct raft_status *out)
{
    raft_status(n->raft, out);
}

const char *rn_member_addr(const struct rn_node *n, uint64_t id, char *buf, size_t buflen)
{
    uint64_t idx;
    const struct raft_conf *c = raft_conf(n->raft, &idx);
    const struct raft_member *m = c ? raft_conf_find(c, id) : NULL;
    if (m == NULL || buflen == 0) {
        if (buflen)
            buf[0] = '\0';
        return buf;
    }
    size_t l = m->blob_len < buflen - 1 ? m->blob_len : buflen - 1;
    memcpy(buf, m->blob, l);
    buf[l] = '\0';
    return buf;
}

void rn_info(struct rn_node *n, struct rd_buf *out)
{
    struct raft_status st;
    raft_status(n->raft, &st);
    char addr[RAFT_MEMBER_BLOB_BYTES_MAX + 1];
    rd_buf_printf(out,
                  "# Raft\r\nnode_id:%llu\r\nrole:%s\r\nstate:%s\r\nterm:%llu\r\nleader_id:%llu\r\n"
                  "leader_addr:%s\r\ncommit_index:%llu\r\nlast_index:%llu\r\nfirst_index:%llu\r\n"
                  "snapshot_index:%llu\r\nlog_bytes:%llu\r\nfsyncs:%llu\r\n",
                  (unsigned long long)st.id,
                  st.role == RAFT_LEADER     ? "leader"
                  : st.role == RAFT_FOLLOWER ? "follower"
                                             : "candidate",
                  !rn_in_cluster(n) ? (n->joining ? "joining" : "uninitialized")
                  : n->failed       ? "failed"
                                    : "up",
                  (unsigned long long)st.term, (unsigned long long)st.leader,
                  rn_member_addr(n, st.leader, addr, sizeof(addr)), (unsigned long long)n->commit,
                  (unsigned long long)rlog_last_index(n->store),
                  (unsigned long long)rlog_first_index(n->store),
                  (unsigned long long)st.snapshot_index,
                  (unsigned long long)rlog_disk_bytes(n->store), (unsigned long long)n->fsyncs);
    uint64_t idx;
    const struct raft_conf *c = raft_conf(n->raft, &idx);
    rd_buf_printf(out, "num_nodes:%u\r\nnum_voters:%u\r\n", c ? c->n : 0,
                  c ? raft_conf_voters(c) : 0);
    for (unsigned i = 0; c && i < c->n; i++) {
        const struct raft_member *m = &c->members[i];
        uint64_t match = 0;
        const char *pstate = "-";
        for (unsigned k = 0; k < st.n_peers; k++)
            if (st.peers[k].id == m->id) {
                match = st.peers[k].match;
                pstate = st.peers[k].state == RAFT_PROGRESS_REPLICATE  ? "replicate"
                         : st.peers[k].state == RAFT_PROGRESS_SNAPSHOT ? "snapshot"
                                                                       : "probe";
            }
        rd_buf_printf(out,
                      "node%u:id=%llu,addr=%s,voter=%d,self=%d,match_index=%llu,progress=%s,"
                      "link=%s\r\n",
                      i, (unsigned long long)m->id, rn_member_addr(n, m->id, addr, sizeof(addr)),
                      m->voter, m->id == n->cfg.id, (unsigned long long)match, pstate,
                      m->id == n->cfg.id           ? "self"
                      : bus_peer_up(n->bus, m->id) ? "up"
                                                   : "down");
    }
}
