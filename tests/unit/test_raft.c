/* test_raft.c: the Raft core, scenario by scenario from the Raft paper and Ongaro's thesis.
 *
 * Each test is a small transcript over an in-memory cluster: `campaign(c, 1); stabilize(c);`
 * delivers every message until nothing moves. Links can be cut (isolate, cut), nodes crashed
 * and restarted (losing nothing they reported persisted), and appends above an index held back
 * (hold_above) to freeze a cluster in the middle of a figure from the paper.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftlog/raft.h"

#define N_MAX     6
#define Q_MAX     4096
#define APPLY_MAX 512

/* ---- the harness --------------------------------------------------------------------------- */

struct sent {
    uint8_t *buf; /* encoded: every message in these tests goes through the codec */
    size_t len;
    uint64_t from, to;
};

struct tnode {
    uint64_t id;
    int up;
    struct raft *r;
    /* durable */
    struct raft_hard_state hs;
    struct raft_entry *log; /* log[i].index = snap.index + 1 + i */
    size_t log_n;
    struct raft_snapshot_meta snap;
    /* observed */
    uint64_t applied[APPLY_MAX]; /* term of each applied index */
    uint64_t last_applied;
    struct raft_read_state reads[64];
    size_t n_reads;
    struct raft_snapshot_fetch fetch;
    uint64_t want_snapshot;
    int storage_broken;   /* reads fail with RAFT_EIO */
    unsigned entry_reads; /* storage entry() calls */
    uint64_t conf_hint;   /* given to raft_new as raft_restore.conf_index_hint */
};

struct tc {
    int n;
    struct tnode nodes[N_MAX + 1]; /* by id, 1..n */
    struct sent q[Q_MAX];
    size_t qn;
    int cut[N_MAX + 1][N_MAX + 1];
    uint64_t hold_above; /* drop appends carrying entries above this index (0: none) */
    struct raft_config cfg;
    unsigned sent_by_type[RAFT_MSG_TYPE_MAX + 1];
};

static uint64_t dlast(const struct tnode *n)
{
    return n->snap.index + n->log_n;
}

static int st_term(void *ctx, uint64_t index, uint64_t *t)
{
    struct tnode *n = ctx;
    if (n->storage_broken)
        return RAFT_EIO;
    if (index == n->snap.index) {
        *t = n->snap.term;
        return 0;
    }
    if (index < n->snap.index || index > dlast(n))
        return RAFT_ENOTFOUND;
    *t = n->log[index - n->snap.index - 1].term;
    return 0;
}

static int st_entry(void *ctx, uint64_t index, struct raft_entry *out)
{
    struct tnode *n = ctx;
    if (n->storage_broken)
        return RAFT_EIO;
    n->entry_reads++;
    if (index <= n->snap.index || index > dlast(n))
        return RAFT_ENOTFOUND;
    const struct raft_entry *e = &n->log[index - n->snap.index - 1];
    *out = *e;
    out->data = NULL;
    if (e->len) {
        out->data = malloc(e->len);
        memcpy(out->data, e->data, e->len);
    }
    return 0;
}

static const struct raft_storage_ops ops = {.entry = st_entry, .term = st_term};

static void store_append(struct tnode *n, const struct raft_entry *e)
{
    assert_true(e->index > n->snap.index && e->index <= dlast(n) + 1);
    while (dlast(n) >= e->index)
        free(n->log[--n->log_n].data);
    n->log = realloc(n->log, (n->log_n + 1) * sizeof(*n->log));
    struct raft_entry *d = &n->log[n->log_n++];
    *d = *e;
    d->data = NULL;
    if (e->len) {
        d->data = malloc(e->len);
        memcpy(d->data, e->data, e->len);
    }
}

static void store_compact(struct tnode *n, const struct raft_snapshot_meta *m, int discard)
{
    if (discard || dlast(n) <= m->index) {
        while (n->log_n)
            free(n->log[--n->log_n].data);
    } else {
        size_t k = (size_t)(m->index - n->snap.index);
        for (size_t i = 0; i < k; i++)
            free(n->log[i].data);
        memmove(n->log, n->log + k, (n->log_n - k) * sizeof(*n->log));
        n->log_n -= k;
    }
    n->snap = *m;
}

static void start(struct tc *c, uint64_t id)
{
    struct tnode *n = &c->nodes[id];
    struct raft_config cfg = c->cfg;
    cfg.id = id;
    cfg.seed = id * 7919;
    cfg.storage = &ops;
    cfg.storage_ctx = n;
    struct raft_restore rs = {.hs = n->hs,
                              .snapshot = n->snap,
                              .last_index = dlast(n),
                              .applied = n->snap.index,
                              .conf_index_hint = n->conf_hint};
    assert_int_equal(raft_new(&cfg, &rs, &n->r), 0);
    n->up = 1;
    n->last_applied = n->snap.index;
}

static struct tc *cluster_cfg(int voters, int learners, const struct raft_config *cfg)
{
    struct tc *c = calloc(1, sizeof(*c));
    c->n = voters + learners;
    c->cfg = *cfg;
    struct raft_conf conf = {0};
    for (int i = 0; i < voters; i++) {
        conf.members[conf.n].id = (uint64_t)i + 1;
        conf.members[conf.n].voter = 1;
        conf.n++;
    }
    uint8_t buf[RAFT_CONF_ENTRY_BYTES_MAX];
    size_t len;
    assert_int_equal(raft_conf_entry_encode(RAFT_CONF_BOOTSTRAP, 0, &conf, buf, sizeof(buf), &len),
                     0);
    for (int i = 1; i <= c->n; i++) {
        struct tnode *n = &c->nodes[i];
        n->id = (uint64_t)i;
        if (i <= voters) { /* learners start empty and are added by a leader */
            struct raft_entry e = {
                .index = 1, .term = 1, .type = RAFT_ENTRY_CONF, .data = buf, .len = len};
            store_append(n, &e);
            n->hs = (struct raft_hard_state){.term = 1, .commit = 1};
        }
        start(c, (uint64_t)i);
    }
    return c;
}

/* Deterministic defaults for scripted tests: no pre-vote unless a test asks. */
static struct raft_config test_cfg(void)
{
    struct raft_config cfg;
    raft_config_defaults(&cfg);
    cfg.pre_vote = 0;
    cfg.check_quorum = 0;
    return cfg;
}

static struct tc *cluster(int voters)
{
    struct raft_config cfg = test_cfg();
    return cluster_cfg(voters, 0, &cfg);
}

static void crash(struct tc *c, uint64_t id)
{
    struct tnode *n = &c->nodes[id];
    raft_free(n->r);
    n->r = NULL;
    n->up = 0;
}

static void restart(struct tc *c, uint64_t id)
{
    start(c, id);
}

static void cluster_free(struct tc *c)
{
    for (int i = 1; i <= c->n; i++) {
        struct tnode *n = &c->nodes[i];
        if (n->up)
            raft_free(n->r);
        while (n->log_n)
            free(n->log[--n->log_n].data);
        free(n->log);
    }
    for (size_t i = 0; i < c->qn; i++)
        free(c->q[i].buf);
    free(c);
}

static void enqueue(struct tc *c, const struct raft_msg *m)
{
    c->sent_by_type[m->type]++;
    if (m->to < 1 || m->to > (uint64_t)c->n || c->cut[m->from][m->to])
        return;
    struct raft_msg held;
    if (c->hold_above && m->type == RAFT_MSG_APPEND && m->n_entries &&
        m->entries[m->n_entries - 1].index > c->hold_above) {
        held = *m; /* only the entries at or below hold_above get through */
        held.n_entries = m->entries[0].index > c->hold_above
                             ? 0
                             : (size_t)(c->hold_above - m->entries[0].index + 1);
        m = &held;
    }
    assert_true(c->qn < Q_MAX);
    size_t cap = raft_msg_encoded_size(m), len;
    uint8_t *buf = malloc(cap);
    assert_int_equal(raft_msg_encode(m, buf, cap, &len), 0);
    c->q[c->qn++] = (struct sent){buf, len, m->from, m->to};
}

/* One ready cycle: persist, send, apply, advance. Returns 1 if anything was ready. */
static int process(struct tc *c, uint64_t id)
{
    struct tnode *n = &c->nodes[id];
    if (!n->up || !raft_has_ready(n->r))
        return 0;
    struct raft_ready rd;
    assert_int_equal(raft_ready(n->r, &rd), 0);
    for (size_t i = 0; i < rd.n_msgs_early; i++)
        enqueue(c, &rd.msgs_early[i]);
    if (rd.snapshot)
        store_compact(n, rd.snapshot, rd.snapshot_discard_log);
    for (size_t i = 0; i < rd.n_entries; i++)
        store_append(n, &rd.entries[i]);
    if (rd.hs_changed)
        n->hs = rd.hs;
    for (size_t i = 0; i < rd.n_msgs; i++)
        enqueue(c, &rd.msgs[i]);
    for (size_t i = 0; i < rd.n_committed; i++) {
        const struct raft_entry *e = &rd.committed[i];
        assert_int_equal(e->index, n->last_applied + 1);
        assert_true(e->index < APPLY_MAX);
        n->applied[e->index] = e->term;
        n->last_applied = e->index;
    }
    for (size_t i = 0; i < rd.n_reads && n->n_reads < 64; i++)
        n->reads[n->n_reads++] = rd.reads[i];
    if (rd.fetch.index)
        n->fetch = rd.fetch;
    if (rd.snapshot_want_index)
        n->want_snapshot = rd.snapshot_want_index;
    assert_int_equal(raft_advance(n->r, &rd), 0);
    return 1;
}

/* Delivers what is queued now (not what that produces). Returns how many were delivered. */
static size_t deliver(struct tc *c)
{
    size_t n = c->qn;
    struct sent *batch = malloc(n * sizeof(*batch) + 1);
    memcpy(batch, c->q, n * sizeof(*batch));
    c->qn = 0;
    size_t delivered = 0;
    for (size_t i = 0; i < n; i++) {
        struct tnode *t = &c->nodes[batch[i].to];
        if (t->up && !c->cut[batch[i].from][batch[i].to]) {
            struct raft_msg m;
            assert_int_equal(raft_msg_decode(batch[i].buf, batch[i].len, &m), 0);
            assert_int_equal(raft_step(t->r, &m), 0);
            raft_msg_release(&m);
            delivered++;
            process(c, batch[i].to);
        }
        free(batch[i].buf);
    }
    free(batch);
    return delivered;
}

static void drop_queue(struct tc *c)
{
    for (size_t i = 0; i < c->qn; i++)
        free(c->q[i].buf);
    c->qn = 0;
}

static void stabilize(struct tc *c)
{
    for (int round = 0; round < 1000; round++) {
        int busy = 0;
        for (int i = 1; i <= c->n; i++)
            busy |= process(c, (uint64_t)i);
        if (!busy && c->qn == 0)
            return;
        deliver(c);
    }
    fail_msg("cluster did not stabilize");
}

static void campaign(struct tc *c, uint64_t id)
{
    assert_int_equal(raft_campaign(c->nodes[id].r), 0);
    process(c, id);
}

static void tick(struct tc *c, uint64_t id, int times)
{
    for (int i = 0; i < times; i++) {
        raft_tick(c->nodes[id].r);
        process(c, id);
    }
}

static int propose(struct tc *c, uint64_t id, const char *s)
{
    int rc = raft_propose(c->nodes[id].r, s, strlen(s), NULL, NULL);
    process(c, id);
    return rc;
}

static void isolate(struct tc *c, uint64_t id)
{
    for (int i = 1; i <= N_MAX; i++)
        c->cut[id][i] = c->cut[i][id] = 1;
}

static void cut(struct tc *c, uint64_t a, uint64_t b)
{
    c->cut[a][b] = c->cut[b][a] = 1;
}

static void heal(struct tc *c)
{
    memset(c->cut, 0, sizeof(c->cut));
}

static int role(struct tc *c, uint64_t id)
{
    return raft_role(c->nodes[id].r);
}

static uint64_t commit(struct tc *c, uint64_t id)
{
    return raft_commit_index(c->nodes[id].r);
}

static uint64_t term_at(struct tc *c, uint64_t id, uint64_t index)
{
    uint64_t t = 0;
    raft_entry_term(c->nodes[id].r, index, &t);
    return t;
}

/* ---- §5.2 leader election ------------------------------------------------------------------ */

static void test_single_node_elects_itself(void **state)
{
    struct tc *c = cluster(1);
    campaign(c, 1);
    stabilize(c);
    assert_int_equal(role(c, 1), RAFT_LEADER);
    assert_int_equal(raft_term(c->nodes[1].r), 2);
    assert_int_equal(commit(c, 1), 2); /* its no-op (§8) commits alone */
    cluster_free(c);
}

static void test_election_three_nodes(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    assert_int_equal(role(c, 1), RAFT_LEADER);
    assert_int_equal(role(c, 2), RAFT_FOLLOWER);
    assert_int_equal(raft_leader(c->nodes[3].r), 1);
    assert_int_equal(commit(c, 3), 2);
    cluster_free(c);
}

static void test_election_timeout_starts_election(void **state)
{
    struct tc *c = cluster(3);
    tick(c, 2, 20); /* randomized timeout is in [10, 20) ticks */
    stabilize(c);
    assert_int_equal(role(c, 2), RAFT_LEADER);
    cluster_free(c);
}

static void test_vote_once_per_term(void **state)
{
    /* §5.2: each server votes for at most one candidate in a term. */
    struct tc *c = cluster(3);
    isolate(c, 3);
    cut(c, 1, 2);
    c->cut[1][3] = 0; /* 1 <-> 3 only */
    c->cut[3][1] = 0;
    campaign(c, 1);
    stabilize(c);
    assert_int_equal(role(c, 1), RAFT_LEADER);
    assert_int_equal(c->nodes[3].hs.vote, 1);
    /* 2 campaigns in the same term 2 and reaches 3, which already voted. */
    heal(c);
    isolate(c, 1);
    struct raft_status st;
    raft_status(c->nodes[2].r, &st);
    assert_int_equal(st.term, 1);
    campaign(c, 2); /* term 2 too */
    stabilize(c);
    assert_int_not_equal(role(c, 2), RAFT_LEADER);
    cluster_free(c);
}

static void test_election_restriction(void **state)
{
    /* §5.4.1: a candidate whose log is behind cannot win. */
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 3);
    propose(c, 1, "x");
    stabilize(c);
    heal(c);
    crash(c, 1);
    campaign(c, 3);
    stabilize(c);
    assert_int_not_equal(role(c, 3), RAFT_LEADER); /* 2 has "x", 3 does not */
    campaign(c, 2);
    stabilize(c);
    assert_int_equal(role(c, 2), RAFT_LEADER);
    cluster_free(c);
}

/* ---- thesis §9.6 pre-vote, §6.2 check-quorum ----------------------------------------------- */

static void test_prevote_keeps_terms_stable(void **state)
{
    struct raft_config cfg = test_cfg();
    cfg.pre_vote = 1;
    struct tc *c = cluster_cfg(3, 0, &cfg);
    campaign(c, 1);
    stabilize(c);
    uint64_t term = raft_term(c->nodes[1].r);
    isolate(c, 3);
    for (int i = 0; i < 5; i++) {
        tick(c, 3, 25); /* times out again and again, but only pre-votes */
        stabilize(c);
    }
    assert_int_equal(raft_term(c->nodes[3].r), term);
    heal(c);
    tick(c, 1, 1);
    stabilize(c);
    assert_int_equal(role(c, 1), RAFT_LEADER);
    assert_int_equal(raft_term(c->nodes[1].r), term); /* rejoining did not depose the leader */
    cluster_free(c);
}

static void test_check_quorum_leader_steps_down(void **state)
{
    struct raft_config cfg = test_cfg();
    cfg.check_quorum = 1;
    struct tc *c = cluster_cfg(3, 0, &cfg);
    campaign(c, 1);
    stabilize(c);
    assert_int_equal(role(c, 1), RAFT_LEADER);
    isolate(c, 1);
    tick(c, 1, 10);
    stabilize(c);
    assert_int_equal(role(c, 1), RAFT_LEADER);
    tick(c, 1, 10); /* a whole election timeout without hearing from a quorum */
    assert_int_equal(role(c, 1), RAFT_FOLLOWER);
    cluster_free(c);
}

static void test_check_quorum_ignores_disruptive_votes(void **state)
{
    /* Thesis §4.2.3: while a follower hears from a leader it ignores vote requests. */
    struct raft_config cfg = test_cfg();
    cfg.check_quorum = 1;
    struct tc *c = cluster_cfg(3, 0, &cfg);
    campaign(c, 1);
    stabilize(c);
    uint64_t term = raft_term(c->nodes[1].r);
    isolate(c, 3);
    tick(c, 3, 25);
    heal(c);
    stabilize(c); /* 3's vote requests at a higher term reach 1 and 2 */
    assert_int_equal(raft_term(c->nodes[2].r), term);
    cluster_free(c);
}

/* ---- §5.3 log replication ------------------------------------------------------------------ */

static void test_replication_and_commit(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    assert_int_equal(propose(c, 1, "a"), 0);
    assert_int_equal(propose(c, 1, "b"), 0);
    stabilize(c);
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(commit(c, i), 4);
        assert_int_equal(c->nodes[i].last_applied, 4);
    }
    assert_int_equal(propose(c, 2, "c"), RAFT_ENOTLEADER);
    cluster_free(c);
}

static void test_leader_commits_only_what_it_persisted(void **state)
{
    /* A leader's own log counts toward a quorum only once persisted (thesis §10.2.1). */
    struct tc *c = cluster(1);
    campaign(c, 1);
    stabilize(c);
    assert_int_equal(raft_propose(c->nodes[1].r, "a", 1, NULL, NULL), 0);
    struct raft_ready rd;
    assert_int_equal(raft_ready(c->nodes[1].r, &rd), 0);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(commit(c, 1), 2); /* not committed before it is durable */
    store_append(&c->nodes[1], &rd.entries[0]);
    assert_int_equal(raft_advance(c->nodes[1].r, &rd), 0);
    assert_int_equal(commit(c, 1), 3);
    cluster_free(c);
}

/* Node 1, the leader, proposes s and takes the ready holding it: its appends leave, the write
 * is the caller's to finish. Returns the entry's index. */
static uint64_t leader_write_out(struct tc *c, const char *s, struct raft_ready *rd)
{
    struct raft *r = c->nodes[1].r;
    assert_int_equal(raft_propose(r, s, strlen(s), NULL, NULL), 0);
    assert_int_equal(raft_ready(r, rd), 0);
    assert_int_equal(rd->n_entries, 1);
    for (size_t i = 0; i < rd->n_msgs_early; i++)
        enqueue(c, &rd->msgs_early[i]);
    return rd->entries[0].index;
}

/* While the leader's write is out, entries the followers' answers commit are handed out by
 * raft_take_committed, but never one the leader has not persisted itself; read states
 * likewise by raft_take_read_states. A ready afterwards does not hand them out again. */
static void test_take_committed_while_write_in_flight(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    struct raft *r = c->nodes[1].r;
    struct raft_entry e;
    struct raft_ready rd;
    assert_int_equal(raft_take_committed(r, &e), RAFT_ENOTFOUND);

    /* Entry a is written, but the followers have not answered yet. */
    uint64_t a = leader_write_out(c, "a", &rd);
    store_append(&c->nodes[1], &rd.entries[0]);
    assert_int_equal(raft_advance(r, &rd), 0);

    /* Entry b's write is in flight (no advance) when the answers come. */
    assert_int_equal(raft_read_index(r, 77), 0);
    uint64_t b = leader_write_out(c, "b", &rd);
    deliver(c);                        /* the followers persist and answer */
    deliver(c);                        /* the leader hears them */
    assert_int_equal(commit(c, 1), b); /* the followers alone are a quorum */
    assert_int_equal(raft_take_committed(r, &e), 0);
    assert_int_equal(e.index, a);
    assert_int_equal(e.len, 1);
    assert_memory_equal(e.data, "a", 1);
    free(e.data);
    assert_int_equal(raft_take_committed(r, &e), RAFT_ENOTFOUND); /* b: not on our disk yet */
    struct raft_read_state *rs = NULL;
    assert_int_equal(raft_take_read_states(r, &rs), 1);
    assert_int_equal(rs[0].ctx, 77);
    assert_true(rs[0].index >= a - 1 && rs[0].index <= b);
    free(rs);

    store_append(&c->nodes[1], &rd.entries[0]);
    assert_int_equal(raft_advance(r, &rd), 0);
    assert_int_equal(raft_take_committed(r, &e), 0);
    assert_int_equal(e.index, b);
    free(e.data);
    assert_int_equal(raft_applied_index(r), b);
    while (raft_has_ready(r)) {
        assert_int_equal(raft_ready(r, &rd), 0);
        assert_int_equal(rd.n_committed, 0); /* nothing handed out twice */
        assert_int_equal(rd.n_reads, 0);
        assert_int_equal(raft_advance(r, &rd), 0);
    }
    drop_queue(c);
    cluster_free(c);
}

static void test_take_committed_data(void **state)
{
    /* The caller may keep a committed entry's bytes instead of copying them. */
    struct tc *c = cluster(1);
    campaign(c, 1);
    stabilize(c);
    assert_int_equal(raft_propose(c->nodes[1].r, "abc", 3, NULL, NULL), 0);
    struct raft_ready rd;
    assert_int_equal(raft_ready(c->nodes[1].r, &rd), 0);
    store_append(&c->nodes[1], &rd.entries[0]);
    assert_null(raft_ready_take_committed(c->nodes[1].r, 0)); /* nothing committed yet */
    assert_int_equal(raft_advance(c->nodes[1].r, &rd), 0);
    assert_null(raft_ready_take_committed(c->nodes[1].r, 0)); /* no ready outstanding */
    assert_int_equal(raft_ready(c->nodes[1].r, &rd), 0);
    assert_int_equal(rd.n_committed, 1);
    assert_int_equal(rd.committed[0].index, 3);
    void *data = raft_ready_take_committed(c->nodes[1].r, 0);
    assert_non_null(data);
    assert_memory_equal(data, "abc", 3);
    assert_null(rd.committed[0].data);
    assert_int_equal(rd.committed[0].len, 3);
    assert_null(raft_ready_take_committed(c->nodes[1].r, 0)); /* taken already */
    assert_null(raft_ready_take_committed(c->nodes[1].r, 1));
    assert_int_equal(raft_advance(c->nodes[1].r, &rd), 0); /* does not free it again */
    assert_memory_equal(data, "abc", 3);
    free(data);
    cluster_free(c);
}

static void test_conflicting_suffix_is_replaced(void **state)
{
    /* Figure 7 in miniature: a follower with extra uncommitted entries from an old leader. */
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 1);
    propose(c, 1, "lost1");
    propose(c, 1, "lost2");
    stabilize(c);
    assert_int_equal(raft_last_index(c->nodes[1].r), 4);
    heal(c);
    isolate(c, 1);
    campaign(c, 2);
    stabilize(c);
    propose(c, 2, "kept");
    stabilize(c);
    heal(c);
    tick(c, 2, 1); /* heartbeat: 1 learns of the new term */
    stabilize(c);
    assert_int_equal(role(c, 1), RAFT_FOLLOWER);
    assert_int_equal(raft_last_index(c->nodes[1].r), 4);
    assert_int_equal(term_at(c, 1, 3), term_at(c, 2, 3));
    assert_int_equal(term_at(c, 1, 4), term_at(c, 2, 4));
    assert_int_equal(c->nodes[1].last_applied, 4);
    cluster_free(c);
}

static void test_fast_backoff(void **state)
{
    /* A follower far behind with a divergent tail is found in a few round trips, not one per
     * entry (§5.3, the optimization at the end of the section). */
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 3);
    for (int i = 0; i < 50; i++)
        propose(c, 1, "x");
    stabilize(c);
    heal(c);
    memset(c->sent_by_type, 0, sizeof(c->sent_by_type));
    tick(c, 1, 1);
    stabilize(c);
    assert_int_equal(raft_last_index(c->nodes[3].r), raft_last_index(c->nodes[1].r));
    assert_true(c->sent_by_type[RAFT_MSG_APPEND] < 10);
    cluster_free(c);
}

static void test_pipeline_bounded_inflight(void **state)
{
    struct raft_config cfg = test_cfg();
    cfg.inflight_msgs_max = 2;
    cfg.msg_bytes_max = 1; /* one entry per append */
    struct tc *c = cluster_cfg(2, 0, &cfg);
    campaign(c, 1);
    stabilize(c);
    for (int i = 0; i < 10; i++)
        raft_propose(c->nodes[1].r, "y", 1, NULL, NULL);
    process(c, 1);
    struct raft_status st;
    raft_status(c->nodes[1].r, &st);
    assert_int_equal(st.peers[0].state, RAFT_PROGRESS_REPLICATE);
    assert_int_equal(st.peers[0].inflight, 2);
    assert_int_equal(c->qn, 2); /* two appends out, the rest wait */
    stabilize(c);
    assert_int_equal(commit(c, 2), 12);
    cluster_free(c);
}

/* ---- §5.4.2 figure 8: never commit an old term's entry by counting replicas ---------------- */

static void test_figure8(void **state)
{
    struct raft_config cfg = test_cfg();
    cfg.msg_bytes_max = 1;
    struct tc *c = cluster_cfg(5, 0, &cfg);
    campaign(c, 1);
    stabilize(c); /* index 2: S1's no-op, everywhere */
    /* (a) S1 leads and gets index 3 to S2 only. */
    isolate(c, 3);
    isolate(c, 4);
    isolate(c, 5);
    propose(c, 1, "a");
    stabilize(c);
    uint64_t t_a = term_at(c, 1, 3);
    assert_int_equal(term_at(c, 2, 3), t_a);
    /* (b) S1 crashes; S5 wins with S3 and S4 and appends index 3 of its term only locally. */
    crash(c, 1);
    heal(c);
    isolate(c, 2);
    campaign(c, 5);
    while (role(c, 5) != RAFT_LEADER && c->qn) {
        deliver(c);
    }
    assert_int_equal(role(c, 5), RAFT_LEADER);
    crash(c, 5);
    drop_queue(c);
    /* (c) S1 restarts, wins, and replicates index 3 (old term) to S2 and S3, but its own no-op
     * (index 4) reaches nobody. Index 3 is on a majority, yet must not be committed. */
    heal(c);
    restart(c, 1);
    isolate(c, 5);
    c->hold_above = 3;
    for (int i = 0; i < 3 && role(c, 1) != RAFT_LEADER; i++) {
        campaign(c, 1);
        stabilize(c);
    }
    assert_int_equal(role(c, 1), RAFT_LEADER);
    stabilize(c);
    assert_int_equal(term_at(c, 3, 3), t_a);
    assert_int_equal(term_at(c, 4, 3), t_a);
    assert_int_equal(commit(c, 1), 2); /* figure 8 (c): not committed */
    /* (d) S1 crashes; S5 (last term newer) wins with S2, S3, S4 and overwrites index 3. */
    crash(c, 1);
    restart(c, 5);
    heal(c);
    c->hold_above = 0;
    drop_queue(c);
    for (int i = 0; i < 3 && role(c, 5) != RAFT_LEADER; i++) {
        campaign(c, 5);
        stabilize(c);
    }
    assert_int_equal(role(c, 5), RAFT_LEADER);
    stabilize(c);
    assert_int_not_equal(term_at(c, 2, 3), t_a);
    for (uint64_t i = 2; i <= 5; i++)
        assert_int_not_equal(c->nodes[i].applied[3], t_a); /* nobody applied the old entry */
    cluster_free(c);
}

static void test_figure8_committed_after_own_term(void **state)
{
    /* (e): once S1 gets an entry of its own term to a majority, everything before it is
     * committed and S5 can no longer win. */
    struct raft_config cfg = test_cfg();
    cfg.msg_bytes_max = 1;
    struct tc *c = cluster_cfg(5, 0, &cfg);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 3);
    isolate(c, 4);
    isolate(c, 5);
    propose(c, 1, "a");
    stabilize(c);
    heal(c);
    isolate(c, 5);
    tick(c, 1, 1);
    stabilize(c);
    assert_int_equal(commit(c, 1), 3);
    crash(c, 1);
    heal(c);
    campaign(c, 5);
    stabilize(c);
    assert_int_not_equal(role(c, 5), RAFT_LEADER);
    cluster_free(c);
}

/* ---- thesis §6.4 ReadIndex ------------------------------------------------------------------ */

static void test_read_index_needs_heartbeat_round(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 1);
    assert_int_equal(raft_read_index(c->nodes[1].r, 42), 0);
    stabilize(c);
    assert_int_equal(c->nodes[1].n_reads, 0); /* no quorum confirmed leadership yet */
    heal(c);
    assert_int_equal(raft_read_index(c->nodes[1].r, 43), 0);
    stabilize(c);
    /* The lost round still counts as out until the next tick: 43 waits for it too. */
    assert_int_equal(c->nodes[1].n_reads, 0);
    tick(c, 1, 1);
    stabilize(c);
    assert_int_equal(c->nodes[1].n_reads, 2); /* both answered; 43's round confirmed 42 too */
    assert_int_equal(c->nodes[1].reads[0].ctx, 42);
    assert_int_equal(c->nodes[1].reads[0].index, 2);
    cluster_free(c);
}

/* Reads that come in while a round is out share the next round, sent once that one is
 * answered; they are not answered by the round in flight, which left before them. */
static void test_read_index_one_round_at_a_time(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    memset(c->sent_by_type, 0, sizeof(c->sent_by_type));
    assert_int_equal(raft_read_index(c->nodes[1].r, 1), 0);
    process(c, 1); /* round 1 goes out */
    assert_int_equal(c->sent_by_type[RAFT_MSG_HEARTBEAT], 2);
    for (uint64_t i = 2; i <= 5; i++) {
        assert_int_equal(raft_read_index(c->nodes[1].r, i), 0);
        process(c, 1);
    }
    assert_int_equal(c->sent_by_type[RAFT_MSG_HEARTBEAT], 2); /* still one round out */
    deliver(c);                                               /* the followers answer */
    deliver(c);                                               /* the leader hears them */
    assert_int_equal(c->nodes[1].n_reads, 1);
    assert_int_equal(c->nodes[1].reads[0].ctx, 1);
    assert_int_equal(c->sent_by_type[RAFT_MSG_HEARTBEAT], 4); /* round 2, for reads 2..5 */
    stabilize(c);
    assert_int_equal(c->nodes[1].n_reads, 5);
    assert_int_equal(c->sent_by_type[RAFT_MSG_HEARTBEAT], 4);
    cluster_free(c);
}

static void test_read_index_batched(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    memset(c->sent_by_type, 0, sizeof(c->sent_by_type));
    for (uint64_t i = 1; i <= 10; i++)
        assert_int_equal(raft_read_index(c->nodes[1].r, i), 0);
    stabilize(c);
    assert_int_equal(c->nodes[1].n_reads, 10);
    assert_int_equal(c->sent_by_type[RAFT_MSG_HEARTBEAT], 2); /* one round for all ten */
    cluster_free(c);
}

static void test_read_index_waits_for_commit_in_term(void **state)
{
    /* A new leader does not know the commit index until its no-op commits (thesis §6.4 step 1). */
    struct tc *c = cluster(3);
    campaign(c, 1);
    while (role(c, 1) != RAFT_LEADER)
        deliver(c);
    assert_int_equal(raft_read_index(c->nodes[1].r, 7), 0);
    assert_int_equal(raft_lead_read_index(c->nodes[1].r), 0); /* nor may a read go ahead */
    process(c, 1);
    assert_int_equal(c->nodes[1].n_reads, 0);
    stabilize(c);
    assert_int_equal(c->nodes[1].n_reads, 1);
    assert_int_equal(c->nodes[1].reads[0].index, 2);
    assert_int_equal(raft_lead_read_index(c->nodes[1].r), 2);
    assert_int_equal(raft_lead_read_index(c->nodes[2].r), 0); /* followers never */
    propose(c, 1, "w");
    stabilize(c);
    assert_int_equal(raft_lead_read_index(c->nodes[1].r), 3);
    /* Deposed: a higher term elsewhere, and it no longer offers an index. */
    campaign(c, 2);
    stabilize(c);
    assert_int_equal(role(c, 2), RAFT_LEADER);
    assert_int_equal(raft_lead_read_index(c->nodes[1].r), 0);
    cluster_free(c);
}

static void test_read_index_on_follower(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    propose(c, 1, "w");
    stabilize(c);
    assert_int_equal(raft_read_index(c->nodes[2].r, 99), 0);
    stabilize(c);
    assert_int_equal(c->nodes[2].n_reads, 1);
    assert_int_equal(c->nodes[2].reads[0].ctx, 99);
    assert_int_equal(c->nodes[2].reads[0].index, 3);
    crash(c, 1);
    raft_campaign(c->nodes[3].r); /* 3 is a candidate now: no leader to ask */
    assert_int_equal(raft_read_index(c->nodes[3].r, 100), RAFT_ENOLEADER);
    cluster_free(c);
}

static void test_lease_read(void **state)
{
    struct raft_config cfg = test_cfg();
    cfg.check_quorum = 1;
    cfg.lease_read = 1;
    struct tc *c = cluster_cfg(3, 0, &cfg);
    /* Just-started nodes refuse votes for an election timeout: before a crash they may have
     * acknowledged a leader that is still serving reads from its lease. */
    campaign(c, 1);
    stabilize(c);
    assert_int_not_equal(role(c, 1), RAFT_LEADER);
    uint64_t l = 0;
    for (int i = 0; i < 40 && !l; i++) {
        tick(c, 2, 1);
        tick(c, 3, 1);
        stabilize(c);
        l = role(c, 2) == RAFT_LEADER ? 2 : role(c, 3) == RAFT_LEADER ? 3 : 0;
    }
    assert_true(l != 0);
    tick(c, l, 1);
    stabilize(c); /* one acknowledged round starts the lease */
    memset(c->sent_by_type, 0, sizeof(c->sent_by_type));
    raft_read_index(c->nodes[l].r, 5);
    process(c, l);
    assert_int_equal(c->nodes[l].n_reads, 1); /* served at once, no round */
    assert_int_equal(c->sent_by_type[RAFT_MSG_HEARTBEAT], 0);
    isolate(c, l);
    tick(c, l, 9); /* the lease runs out */
    raft_read_index(c->nodes[l].r, 6);
    process(c, l);
    assert_int_equal(c->nodes[l].n_reads, 1);
    cluster_free(c);
}

/* ---- thesis §3.10 leadership transfer -------------------------------------------------------- */

static void test_leadership_transfer(void **state)
{
    struct raft_config cfg = test_cfg();
    cfg.check_quorum = 1;
    cfg.pre_vote = 1;
    struct tc *c = cluster_cfg(3, 0, &cfg);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 3);
    propose(c, 1, "a");
    stabilize(c);
    heal(c);
    assert_int_equal(raft_transfer_leadership(c->nodes[1].r, 3), 0);
    assert_int_equal(propose(c, 1, "refused"), RAFT_ETRANSFER);
    stabilize(c); /* 3 catches up, gets TimeoutNow, wins despite the others' leases */
    assert_int_equal(role(c, 3), RAFT_LEADER);
    assert_int_equal(role(c, 1), RAFT_FOLLOWER);
    assert_int_equal(propose(c, 3, "b"), 0);
    stabilize(c);
    assert_int_equal(commit(c, 1), raft_last_index(c->nodes[3].r));
    cluster_free(c);
}

static void test_leadership_transfer_times_out(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 2);
    assert_int_equal(raft_transfer_leadership(c->nodes[1].r, 2), 0);
    stabilize(c);
    assert_int_equal(propose(c, 1, "x"), RAFT_ETRANSFER);
    tick(c, 1, 10);
    assert_int_equal(propose(c, 1, "x"), 0); /* abandoned after an election timeout */
    cluster_free(c);
}

/* ---- thesis §4 membership changes ------------------------------------------------------------ */

static void test_add_learner_then_promote(void **state)
{
    struct raft_config cfg = test_cfg();
    cfg.promote_lag_entries_max = 0;
    struct tc *c = cluster_cfg(3, 1, &cfg);
    campaign(c, 1);
    stabilize(c);
    /* §4.2.1: catch up as a non-voter first. */
    assert_int_equal(raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_PROMOTE, 4, NULL, 0, NULL),
                     RAFT_EINVAL);
    uint64_t idx;
    assert_int_equal(
        raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_ADD_LEARNER, 4, "n4:1", 4, &idx), 0);
    /* one change at a time */
    assert_int_equal(raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_REMOVE, 3, NULL, 0, NULL),
                     RAFT_ECONFPENDING);
    process(c, 1);
    isolate(c, 4);
    stabilize(c);
    assert_true(commit(c, 1) >= idx); /* learners do not count toward quorum */
    assert_int_equal(raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_PROMOTE, 4, NULL, 0, NULL),
                     RAFT_ENOTREADY);
    heal(c);
    tick(c, 1, 1);
    stabilize(c);
    assert_int_equal(raft_last_index(c->nodes[4].r), raft_last_index(c->nodes[1].r));
    uint64_t ci;
    const struct raft_conf *conf = raft_conf(c->nodes[4].r, &ci);
    assert_int_equal(conf->n, 4);
    const struct raft_member *m = raft_conf_find(conf, 4);
    assert_non_null(m);
    assert_int_equal(m->voter, 0);
    assert_memory_equal(m->blob, "n4:1", 4);
    assert_int_equal(raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_PROMOTE, 4, NULL, 0, NULL),
                     0);
    stabilize(c);
    assert_int_equal(raft_conf_voters(raft_conf(c->nodes[2].r, NULL)), 4);
    /* Now a quorum is 3 of 4: with 2 and 3 gone nothing commits. */
    isolate(c, 2);
    isolate(c, 3);
    uint64_t before = commit(c, 1);
    propose(c, 1, "x");
    stabilize(c);
    assert_int_equal(commit(c, 1), before);
    cluster_free(c);
}

static void test_set_blob_changes_only_the_address(void **state)
{
    /* A member that moved: its blob changes on every node, its vote and the quorum do not. */
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    assert_int_equal(
        raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_SET_BLOB, 9, "n9:1", 4, NULL),
        RAFT_EINVAL); /* not a member */
    uint64_t idx;
    assert_int_equal(
        raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_SET_BLOB, 3, "n3:new", 6, &idx), 0);
    assert_int_equal(raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_REMOVE, 2, NULL, 0, NULL),
                     RAFT_ECONFPENDING); /* one change at a time, this one included */
    stabilize(c);
    for (int i = 1; i <= 3; i++) {
        uint64_t ci;
        const struct raft_conf *conf = raft_conf(c->nodes[i].r, &ci);
        assert_int_equal(ci, idx);
        assert_int_equal(conf->n, 3);
        assert_int_equal(raft_conf_voters(conf), 3);
        const struct raft_member *m = raft_conf_find(conf, 3);
        assert_non_null(m);
        assert_int_equal(m->voter, 1);
        assert_int_equal(m->blob_len, 6);
        assert_memory_equal(m->blob, "n3:new", 6);
    }
    assert_true(commit(c, 1) >= idx);
    cluster_free(c);
}

static void test_conf_change_waits_for_commit_in_term(void **state)
{
    /* The published fix for single-server changes: no new configuration until the leader has
     * committed an entry of its term. */
    struct tc *c = cluster(3);
    campaign(c, 1);
    while (role(c, 1) != RAFT_LEADER)
        deliver(c);
    assert_int_equal(raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_REMOVE, 3, NULL, 0, NULL),
                     RAFT_ECONFPENDING);
    stabilize(c);
    assert_int_equal(raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_REMOVE, 3, NULL, 0, NULL),
                     0);
    cluster_free(c);
}

static void test_config_applies_on_append_and_rolls_back(void **state)
{
    /* Thesis §4.1: a server uses the latest configuration in its log, committed or not, and
     * falls back when that entry is truncated. */
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 3);
    cut(c, 1, 2);
    c->cut[1][2] = 0; /* 1 -> 2 still works, 2 -> 1 does not: 2 gets the entry, 1 cannot commit */
    assert_int_equal(raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_REMOVE, 3, NULL, 0, NULL),
                     0);
    process(c, 1);
    stabilize(c);
    assert_int_equal(raft_conf(c->nodes[2].r, NULL)->n, 2); /* took effect uncommitted */
    heal(c);
    crash(c, 1);
    campaign(c, 3); /* 3 never saw the change; 2 votes for it? no: 2's log is longer */
    stabilize(c);
    assert_int_not_equal(role(c, 3), RAFT_LEADER);
    isolate(c, 2);
    restart(c, 1);
    isolate(c, 1);
    cluster_free(c);
}

static void test_remove_leader_steps_down(void **state)
{
    /* Thesis §4.2.2: a leader removing itself steps down once the change is committed. */
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    assert_int_equal(raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_REMOVE, 1, NULL, 0, NULL),
                     0);
    process(c, 1);
    stabilize(c);
    assert_int_equal(role(c, 1), RAFT_FOLLOWER);
    tick(c, 1, 40);
    assert_int_equal(role(c, 1), RAFT_FOLLOWER); /* not a member: never campaigns */
    tick(c, 2, 20);
    stabilize(c);
    assert_true(role(c, 2) == RAFT_LEADER || role(c, 3) == RAFT_LEADER);
    cluster_free(c);
}

/* ---- §7 snapshots --------------------------------------------------------------------------- */

static void take_snapshot(struct tc *c, uint64_t id)
{
    struct tnode *n = &c->nodes[id];
    struct raft_snapshot_meta meta;
    assert_int_equal(raft_snapshot_taken(n->r, raft_applied_index(n->r), &meta), 0);
    store_compact(n, &meta, 0);
}

static void test_snapshot_to_lagging_follower(void **state)
{
    struct raft_config cfg = test_cfg();
    cfg.snapshot_entries = 5;
    struct tc *c = cluster_cfg(3, 0, &cfg);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 3);
    for (int i = 0; i < 8; i++)
        propose(c, 1, "v");
    stabilize(c);
    assert_true(c->nodes[1].want_snapshot > 0); /* the core asked for one */
    take_snapshot(c, 1);
    assert_int_equal(c->nodes[1].snap.index, 10);
    assert_int_equal(c->nodes[1].snap.conf.n, 3);
    heal(c);
    tick(c, 1, 1);
    stabilize(c);
    /* 3 needs index 3, which is gone: the leader announced its snapshot and 3 asks for it. */
    struct tnode *f = &c->nodes[3];
    assert_int_equal(f->fetch.index, 10);
    assert_int_equal(f->fetch.from, 1);
    struct raft_status st;
    raft_status(c->nodes[1].r, &st);
    assert_int_equal(st.peers[1].state, RAFT_PROGRESS_SNAPSHOT);
    /* The caller transfers the data, installs it, and tells the core. */
    assert_int_equal(raft_snapshot_installed(f->r, &c->nodes[1].snap), 0);
    f->last_applied = 10;
    stabilize(c);
    assert_int_equal(f->snap.index, 10); /* persisted through rd.snapshot */
    propose(c, 1, "after");
    stabilize(c);
    assert_int_equal(commit(c, 3), 11);
    assert_int_equal(f->last_applied, 11);
    raft_status(c->nodes[1].r, &st);
    assert_int_equal(st.peers[1].state, RAFT_PROGRESS_REPLICATE);
    /* And it survives a restart from its own store. */
    crash(c, 3);
    restart(c, 3);
    assert_int_equal(raft_conf(f->r, NULL)->n, 3);
    cluster_free(c);
}

static void test_snapshot_transfer_failure(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 3);
    for (int i = 0; i < 4; i++)
        propose(c, 1, "v");
    stabilize(c);
    take_snapshot(c, 1);
    heal(c);
    tick(c, 1, 1);
    stabilize(c);
    assert_int_equal(raft_report_snapshot(c->nodes[1].r, 3, 0), 0);
    raft_snapshot_fetch_failed(c->nodes[3].r);
    struct raft_status st;
    raft_status(c->nodes[1].r, &st);
    assert_int_equal(st.peers[1].state, RAFT_PROGRESS_PROBE);
    tick(c, 1, 1);
    stabilize(c); /* probing finds the gap again and announces the snapshot again */
    raft_status(c->nodes[1].r, &st);
    assert_int_equal(st.peers[1].state, RAFT_PROGRESS_SNAPSHOT);
    cluster_free(c);
}

static void test_snapshot_over_unstable_entries(void **state)
{
    /* A snapshot may cover entries the follower holds but has not persisted yet: they are
     * superseded, and only the entries after it are left to write. */
    struct tc *c = cluster(2);
    campaign(c, 1);
    stabilize(c);
    for (int i = 0; i < 4; i++)
        propose(c, 1, "v"); /* indexes 3..6 */
    stabilize(c);
    take_snapshot(c, 1);
    struct tnode *f = &c->nodes[2];
    crash(c, 2);
    while (dlast(f) > 2)
        free(f->log[--f->log_n].data); /* as if 3..6 never reached its disk */
    f->hs.commit = 2;
    restart(c, 2);
    struct raft_entry ents[4];
    for (int i = 0; i < 4; i++)
        ents[i] = (struct raft_entry){.index = 3 + (uint64_t)i, .term = 2, .data = "v", .len = 1};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 2,
                         .index = 2,
                         .log_term = 2,
                         .commit = 2,
                         .entries = ents,
                         .n_entries = 4};
    assert_int_equal(raft_step(f->r, &m), 0);
    struct raft_snapshot_meta meta = c->nodes[1].snap;
    meta.index = 5;
    meta.term = 2;
    assert_int_equal(raft_snapshot_installed(f->r, &meta), 0);
    struct raft_ready rd;
    assert_int_equal(raft_ready(f->r, &rd), 0);
    assert_non_null(rd.snapshot);
    assert_int_equal(rd.snapshot_discard_log, 0);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].index, 6);
    assert_int_equal(raft_advance(f->r, &rd), 0);
    cluster_free(c);
}

/* ---- bad input and failures ------------------------------------------------------------------ */

static void test_malformed_append_rejected(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    struct raft_entry ents[2] = {{.index = 3, .term = 2}, {.index = 5, .term = 2}};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 2,
                         .index = 2,
                         .log_term = 2,
                         .entries = ents,
                         .n_entries = 2};
    assert_int_equal(raft_step(c->nodes[2].r, &m), RAFT_EMALFORMED); /* index gap */
    ents[1].index = 4;
    ents[1].term = 3; /* newer than the message's own term */
    assert_int_equal(raft_step(c->nodes[2].r, &m), RAFT_EMALFORMED);
    ents[1].term = 1; /* terms going backwards */
    assert_int_equal(raft_step(c->nodes[2].r, &m), RAFT_EMALFORMED);
    m.to = 3; /* for someone else: ignored */
    assert_int_equal(raft_step(c->nodes[2].r, &m), 0);
    assert_int_equal(raft_last_index(c->nodes[2].r), 2);
    cluster_free(c);
}

static void test_storage_error_is_sticky(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    crash(c, 1); /* after a restart the log is read back from storage only */
    restart(c, 1);
    c->nodes[1].storage_broken = 1;
    assert_int_equal(raft_campaign(c->nodes[1].r), RAFT_EIO); /* needs its last term */
    c->nodes[1].storage_broken = 0;
    assert_int_equal(raft_tick(c->nodes[1].r), RAFT_EIO);
    assert_int_equal(raft_propose(c->nodes[1].r, "b", 1, NULL, NULL), RAFT_EIO);
    assert_int_equal(raft_has_ready(c->nodes[1].r), 0);
    struct raft_ready rd;
    assert_int_equal(raft_ready(c->nodes[1].r, &rd), RAFT_EIO);
    cluster_free(c);
}

static void test_early_messages_wait_for_durable_term(void **state)
{
    /* A leader's appends may leave before its disk write only once its term is on disk. */
    struct raft_config cfg = test_cfg();
    struct tc *c = cluster_cfg(1, 1, &cfg);
    campaign(c, 1);
    stabilize(c);
    raft_propose_conf_change(c->nodes[1].r, RAFT_CONF_ADD_LEARNER, 2, NULL, 0, NULL);
    struct raft_ready rd;
    assert_int_equal(raft_ready(c->nodes[1].r, &rd), 0);
    assert_true(rd.n_msgs_early > 0); /* term 2 is durable: appends may go first */
    for (size_t i = 0; i < rd.n_entries; i++)
        store_append(&c->nodes[1], &rd.entries[i]);
    assert_int_equal(raft_advance(c->nodes[1].r, &rd), 0);
    crash(c, 1);
    restart(c, 1);
    raft_campaign(c->nodes[1].r); /* a single voter wins at once, in a term not yet written */
    assert_int_equal(role(c, 1), RAFT_LEADER);
    assert_int_equal(raft_ready(c->nodes[1].r, &rd), 0);
    assert_true(rd.hs_changed);
    assert_int_equal(rd.n_msgs_early, 0);
    assert_true(rd.n_msgs > 0);
    assert_int_equal(raft_advance(c->nodes[1].r, &rd), 0);
    cluster_free(c);
}

/* ---- restarts and persistence --------------------------------------------------------------- */

static void test_restart_keeps_term_vote_and_log(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    propose(c, 1, "a");
    stabilize(c);
    for (uint64_t i = 1; i <= 3; i++) {
        crash(c, i);
        restart(c, i);
    }
    assert_int_equal(raft_term(c->nodes[2].r), 2);
    assert_int_equal(raft_last_index(c->nodes[2].r), 3);
    assert_int_equal(commit(c, 2), 3);
    stabilize(c);
    assert_int_equal(c->nodes[2].last_applied, 3); /* re-delivered after the restart */
    campaign(c, 2);
    stabilize(c);
    assert_int_equal(role(c, 2), RAFT_LEADER);
    assert_int_equal(raft_term(c->nodes[2].r), 3);
    cluster_free(c);
}

/* A caller that tracks where its last configuration entry is spares the core the backward scan
 * of the whole log at start; a hint that is not a configuration entry falls back to the scan. */
static void test_restart_with_conf_hint(void **state)
{
    struct tc *c = cluster(3);
    campaign(c, 1);
    stabilize(c);
    for (int i = 0; i < 50; i++)
        propose(c, 1, "x");
    stabilize(c);
    uint64_t idx;
    crash(c, 2);
    c->nodes[2].conf_hint = 1;
    c->nodes[2].entry_reads = 0;
    restart(c, 2);
    assert_true(c->nodes[2].entry_reads <= 2);
    assert_int_equal(raft_conf_voters(raft_conf(c->nodes[2].r, &idx)), 3);
    assert_int_equal(idx, 1);
    crash(c, 3);
    c->nodes[3].conf_hint = 40; /* a normal entry: not trusted */
    c->nodes[3].entry_reads = 0;
    restart(c, 3);
    assert_true(c->nodes[3].entry_reads >= 50);
    assert_int_equal(raft_conf_voters(raft_conf(c->nodes[3].r, &idx)), 3);
    assert_int_equal(idx, 1);
    stabilize(c);
    assert_int_equal(propose(c, 1, "y"), 0);
    stabilize(c);
    assert_int_equal(commit(c, 2), commit(c, 1));
    cluster_free(c);
}

static void test_propose_limits(void **state)
{
    struct raft_config cfg = test_cfg();
    cfg.uncommitted_bytes_max = 10;
    struct tc *c = cluster_cfg(3, 0, &cfg);
    campaign(c, 1);
    stabilize(c);
    isolate(c, 1);
    assert_int_equal(propose(c, 1, "12345678"), 0);
    assert_int_equal(propose(c, 1, "12345678"), RAFT_EFULL);
    heal(c);
    tick(c, 1, 1);
    stabilize(c);
    assert_int_equal(propose(c, 1, "12345678"), 0); /* budget given back on commit */
    cluster_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_node_elects_itself),
        cmocka_unit_test(test_election_three_nodes),
        cmocka_unit_test(test_election_timeout_starts_election),
        cmocka_unit_test(test_vote_once_per_term),
        cmocka_unit_test(test_election_restriction),
        cmocka_unit_test(test_prevote_keeps_terms_stable),
        cmocka_unit_test(test_check_quorum_leader_steps_down),
        cmocka_unit_test(test_check_quorum_ignores_disruptive_votes),
        cmocka_unit_test(test_replication_and_commit),
        cmocka_unit_test(test_leader_commits_only_what_it_persisted),
        cmocka_unit_test(test_take_committed_data),
        cmocka_unit_test(test_take_committed_while_write_in_flight),
        cmocka_unit_test(test_conflicting_suffix_is_replaced),
        cmocka_unit_test(test_fast_backoff),
        cmocka_unit_test(test_pipeline_bounded_inflight),
        cmocka_unit_test(test_figure8),
        cmocka_unit_test(test_figure8_committed_after_own_term),
        cmocka_unit_test(test_read_index_needs_heartbeat_round),
        cmocka_unit_test(test_read_index_batched),
        cmocka_unit_test(test_read_index_one_round_at_a_time),
        cmocka_unit_test(test_read_index_waits_for_commit_in_term),
        cmocka_unit_test(test_read_index_on_follower),
        cmocka_unit_test(test_lease_read),
        cmocka_unit_test(test_leadership_transfer),
        cmocka_unit_test(test_leadership_transfer_times_out),
        cmocka_unit_test(test_add_learner_then_promote),
        cmocka_unit_test(test_conf_change_waits_for_commit_in_term),
        cmocka_unit_test(test_config_applies_on_append_and_rolls_back),
        cmocka_unit_test(test_remove_leader_steps_down),
        cmocka_unit_test(test_set_blob_changes_only_the_address),
        cmocka_unit_test(test_snapshot_to_lagging_follower),
        cmocka_unit_test(test_snapshot_transfer_failure),
        cmocka_unit_test(test_snapshot_over_unstable_entries),
        cmocka_unit_test(test_malformed_append_rejected),
        cmocka_unit_test(test_storage_error_is_sticky),
        cmocka_unit_test(test_early_messages_wait_for_durable_term),
        cmocka_unit_test(test_restart_keeps_term_vote_and_log),
        cmocka_unit_test(test_restart_with_conf_hint),
        cmocka_unit_test(test_propose_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
