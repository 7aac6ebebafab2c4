/* sim.c: runs whole redraft Raft clusters in one process, deterministically from a seed.
 *
 * Everything the core never touches is simulated here: a clock (milliseconds, advanced from event
 * to event), a network that delays, drops, duplicates and reorders messages and partitions nodes
 * (symmetric, asymmetric, flapping), disks with a latency that lose whatever was not yet persisted
 * when a node crashes (sometimes with a torn last write), snapshot transfers, and clients doing
 * reads, sets, increments and compare-and-sets on a few keys.
 *
 * One seed picks every parameter and fault. Each seed runs a chaos phase, then a healed phase in
 * which the cluster must make progress and converge (liveness). Invariants are checked as events
 * happen (election safety, log matching, state machine safety, leader completeness, committed
 * entries never lost) and the client history is checked for linearizability at the end.
 *
 *   raft-sim --seed N [--trace]      one seed (the trace replays it exactly)
 *   raft-sim --start S --count N     seeds S..S+N-1; prints "P passed, F failed" last
 */
#include "raftlog/raft.h"
#include "tests/lincheck/lincheck.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES_MAX         12
#define KEYS_MAX          8
#define CLIENTS_MAX       8
#define TICK_MS           10
#define EVENTS_MAX        4000000 /* per seed: "put a limit on everything" */
#define CLIENT_TIMEOUT_MS 1000
#define LIN_STEPS_MAX     2000000
#define HISTORY_MAX       20000
#define CONVERGE_MS_MAX   10000 /* after the planned end, for the cluster to converge */

/* ---- deterministic randomness -------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd_range(uint64_t lo, uint64_t hi) /* inclusive */
{
    return lo + rnd() % (hi - lo + 1);
}

static int chance(unsigned percent_x10) /* per mille */
{
    return rnd() % 1000 < percent_x10;
}

/* ---- events -------------------------------------------------------------------------------- */

enum ev_type {
    EV_TICK,
    EV_DELIVER,
    EV_PERSIST,
    EV_CLIENT_START,
    EV_CLIENT_REQ,
    EV_CLIENT_RESP,
    EV_CLIENT_TIMEOUT,
    EV_FAULT,
    EV_RESTART,
    EV_FLAP,
    EV_FETCH,
    EV_ADMIN,
    EV_HEAL,
    EV_KILL,
};

struct ev {
    uint64_t t, seq;
    int type;
    int node; /* slot */
    uint64_t inc;
    int a;
    uint64_t b, c;
    int64_t d;
    uint8_t *buf;
    size_t len;
};

/* ---- nodes --------------------------------------------------------------------------------- */

struct dent {
    uint64_t term;
    uint8_t type;
    uint8_t *data;
    size_t len;
};

struct pend {
    uint64_t req;
    int client, key, is_read;
    uint64_t read_index;
};

struct node {
    uint64_t id;
    int exists, up, removed, to_stop;
    uint64_t inc;
    struct raft *r;
    /* durable */
    struct raft_hard_state hs;
    struct dent *log; /* log[i] has index snap.index + 1 + i */
    size_t log_n, log_cap;
    struct raft_snapshot_meta snap;
    int64_t snap_kv[KEYS_MAX];
    /* volatile */
    int64_t kv[KEYS_MAX];
    uint64_t applied;
    int rd_pending;
    int rd_delivered; /* rd's committed entries and reads were taken when it came out */
    struct raft_ready rd;
    int64_t staged_kv[KEYS_MAX];
    struct pend *pend;
    size_t n_pend, cap_pend;
    int fetching, fetch_landed, fetch_ok;
    uint64_t fetch_from;
    struct raft_snapshot_meta fetched_meta;
    int64_t fetched_kv[KEYS_MAX];
    int last_role;
    uint64_t last_term;
};

struct client {
    int busy;
    uint64_t req;
    int key;
    struct lin_op op;
    uint64_t hint;
};

struct hist {
    int key;
    struct lin_op op;
};

struct applied_rec {
    uint64_t term, hash;
    int set;
};

struct lm_slot {
    uint64_t index, term, hash, prev_term;
    int used;
};

struct params {
    unsigned n_init, n_clients, n_keys;
    unsigned delay_min, delay_max, disk_min, disk_max;
    unsigned fault_min_ms, fault_max_ms;
    unsigned drop_pm, dup_pm; /* per mille, during chaos */
    int torn, membership, transfers;
    int leader_killer; /* crash some leaders moments after they win (figure 8 material) */
    /* apply committed entries and serve reads as soon as they come out, before the ready's
     * write is done, and take more (raft_take_committed) while it runs, as redraft's leader does */
    int early_apply;
    uint64_t chaos_ms, heal_ms;
    struct raft_config rc;
};

struct sim {
    uint64_t seed;
    int trace;
    uint64_t now, seq, n_events;
    struct ev *heap;
    size_t heap_n, heap_cap;
    struct params p;
    struct node nodes[NODES_MAX];
    unsigned n_nodes; /* slots used */
    uint64_t next_id;
    int blocked[NODES_MAX][NODES_MAX];
    unsigned drop_pm, dup_pm;
    int healed;
    uint64_t heal_at, end_at, clients_stop_at;
    struct client clients[CLIENTS_MAX];
    uint64_t next_req;
    struct hist *hist;
    size_t n_hist, cap_hist;
    uint64_t ops_done, ops_timeout, ops_failed, writes_after_heal;
    /* checkers */
    uint64_t *leader_of_term;
    size_t cap_terms;
    struct applied_rec *applied;
    size_t cap_applied;
    uint64_t max_applied;
    struct lm_slot *lm;
    size_t lm_slots, lm_n;
    int failed;
    char why[512];
};

static struct sim S;

/* Totals over every seed of a run, to show what the faults exercised. */
static struct {
    uint64_t elections, crashes, torn, snapshots_taken, snapshots_installed, conf_changes,
        transfers, reads_leader, reads_follower, lin_ops, early_applied;
} T;

/* Tracing: TRACE_ALL prints every line; TRACE_TAIL keeps the last TAIL_LINES in a ring, to
 * print after a failure (a failing seed is re-run that way: replays are exact). */
enum { TRACE_OFF = 0, TRACE_ALL = 1, TRACE_TAIL = 2 };
#define TAIL_LINES 80
static char tail[TAIL_LINES][240];
static unsigned tail_next, tail_n;

static void tr(const char *fmt, ...)
{
    if (!S.trace)
        return;
    char line[240];
    int n = snprintf(line, sizeof(line), "[%6" PRIu64 "ms] ", S.now);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (S.trace == TRACE_ALL) {
        printf("%s\n", line);
        return;
    }
    memcpy(tail[tail_next], line, sizeof(line));
    tail_next = (tail_next + 1) % TAIL_LINES;
    if (tail_n < TAIL_LINES)
        tail_n++;
}

static void print_tail(void)
{
    for (unsigned i = 0; i < tail_n; i++)
        printf("  %s\n", tail[(tail_next + TAIL_LINES - tail_n + i) % TAIL_LINES]);
}

static void fail(const char *fmt, ...)
{
    if (S.failed)
        return;
    S.failed = 1;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(S.why, sizeof(S.why), "t=%" PRIu64 "ms: ", S.now);
    vsnprintf(S.why + n, sizeof(S.why) - (size_t)n, fmt, ap);
    va_end(ap);
    if (S.trace == TRACE_ALL)
        printf("FAILURE %s\n", S.why);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "raft-sim: out of memory\n");
        exit(2);
    }
    return q;
}

/* ---- event heap ---------------------------------------------------------------------------- */

static int ev_less(const struct ev *a, const struct ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(struct ev e)
{
    if (S.heap_n == S.heap_cap) {
        S.heap_cap = S.heap_cap ? S.heap_cap * 2 : 1024;
        S.heap = xrealloc(S.heap, S.heap_cap * sizeof(*S.heap));
    }
    e.seq = S.seq++;
    size_t i = S.heap_n++;
    S.heap[i] = e;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&S.heap[i], &S.heap[p]))
            break;
        struct ev t = S.heap[i];
        S.heap[i] = S.heap[p];
        S.heap[p] = t;
        i = p;
    }
}

static struct ev pop(void)
{
    struct ev top = S.heap[0];
    S.heap[0] = S.heap[--S.heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < S.heap_n && ev_less(&S.heap[l], &S.heap[m]))
            m = l;
        if (r < S.heap_n && ev_less(&S.heap[r], &S.heap[m]))
            m = r;
        if (m == i)
            break;
        struct ev t = S.heap[i];
        S.heap[i] = S.heap[m];
        S.heap[m] = t;
        i = m;
    }
    return top;
}

static void schedule(uint64_t delay, int type, int node, uint64_t inc)
{
    struct ev e = {.t = S.now + delay, .type = type, .node = node, .inc = inc};
    push(e);
}

/* ---- node lookup and storage callbacks ----------------------------------------------------- */

static int slot_of(uint64_t id)
{
    for (unsigned i = 0; i < S.n_nodes; i++)
        if (S.nodes[i].id == id)
            return (int)i;
    return -1;
}

static uint64_t dlast(const struct node *n)
{
    return n->snap.index + n->log_n;
}

static int st_term(void *ctx, uint64_t index, uint64_t *term_out)
{
    struct node *n = ctx;
    if (index == n->snap.index) {
        *term_out = n->snap.term;
        return 0;
    }
    if (index < n->snap.index || index > dlast(n))
        return RAFT_ENOTFOUND;
    *term_out = n->log[index - n->snap.index - 1].term;
    return 0;
}

static int st_entry(void *ctx, uint64_t index, struct raft_entry *out)
{
    struct node *n = ctx;
    if (index <= n->snap.index || index > dlast(n))
        return RAFT_ENOTFOUND;
    const struct dent *d = &n->log[index - n->snap.index - 1];
    out->index = index;
    out->term = d->term;
    out->type = d->type;
    out->len = d->len;
    out->data = NULL;
    if (d->len) {
        out->data = malloc(d->len);
        if (!out->data)
            return RAFT_ENOMEM;
        memcpy(out->data, d->data, d->len);
    }
    return 0;
}

static const struct raft_storage_ops storage_ops = {.entry = st_entry, .term = st_term};

/* ---- checkers ------------------------------------------------------------------------------ */

static uint64_t hash_bytes(uint8_t type, const void *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ type;
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Election safety (§5.2): at most one leader per term, over the whole run. */
static void check_leader(struct node *n)
{
    if (!n->up || raft_role(n->r) != RAFT_LEADER)
        return;
    uint64_t term = raft_term(n->r);
    if (term >= S.cap_terms) {
        size_t nc = S.cap_terms ? S.cap_terms : 64;
        while (nc <= term)
            nc *= 2;
        S.leader_of_term = xrealloc(S.leader_of_term, nc * sizeof(uint64_t));
        memset(S.leader_of_term + S.cap_terms, 0, (nc - S.cap_terms) * sizeof(uint64_t));
        S.cap_terms = nc;
    }
    if (S.leader_of_term[term] == 0) {
        S.leader_of_term[term] = n->id;
        if (S.p.leader_killer && !S.healed && chance(400)) {
            struct ev k = {.t = S.now + rnd_range(0, 8),
                           .type = EV_KILL,
                           .node = slot_of(n->id),
                           .inc = n->inc};
            push(k);
        }
        T.elections++;
        tr("n%" PRIu64 " is leader of term %" PRIu64, n->id, term);
        /* Leader completeness (§5.4): the new leader holds every entry applied anywhere. */
        struct raft_status st;
        raft_status(n->r, &st);
        for (uint64_t i = st.snapshot_index + 1; i <= S.max_applied; i++) {
            if (i >= S.cap_applied || !S.applied[i].set)
                continue;
            uint64_t t;
            if (raft_entry_term(n->r, i, &t) != 0 || t != S.applied[i].term) {
                fail("leader completeness: leader n%" PRIu64 " of term %" PRIu64
                     " lacks committed entry %" PRIu64 " (term %" PRIu64 ")",
                     n->id, term, i, S.applied[i].term);
                return;
            }
        }
    } else if (S.leader_of_term[term] != n->id) {
        fail("election safety: n%" PRIu64 " and n%" PRIu64 " both lead term %" PRIu64,
             S.leader_of_term[term], n->id, term);
    }
}

/* Log matching (§5.3): an (index, term) pair always names the same entry with the same
 * predecessor term; by induction two logs that share an (index, term) share the prefix. */
static void check_log_matching(uint64_t index, uint64_t term, uint64_t hash, uint64_t prev_term)
{
    if ((S.lm_n + 1) * 2 > S.lm_slots) {
        size_t ns = S.lm_slots ? S.lm_slots * 2 : 4096;
        struct lm_slot *nt = calloc(ns, sizeof(*nt));
        if (!nt)
            exit(2);
        for (size_t i = 0; i < S.lm_slots; i++)
            if (S.lm[i].used) {
                size_t j = (S.lm[i].index * 31 + S.lm[i].term) & (ns - 1);
                while (nt[j].used)
                    j = (j + 1) & (ns - 1);
                nt[j] = S.lm[i];
            }
        free(S.lm);
        S.lm = nt;
        S.lm_slots = ns;
    }
    size_t j = (index * 31 + term) & (S.lm_slots - 1);
    while (S.lm[j].used) {
        if (S.lm[j].index == index && S.lm[j].term == term) {
            if (S.lm[j].hash != hash || S.lm[j].prev_term != prev_term)
                fail("log matching: two different entries at index %" PRIu64 " term %" PRIu64,
                     index, term);
            return;
        }
        j = (j + 1) & (S.lm_slots - 1);
    }
    S.lm[j] = (struct lm_slot){index, term, hash, prev_term, 1};
    S.lm_n++;
}

/* State machine safety (§5.4.3): no two nodes apply different entries at one index. */
static void check_applied(struct node *n, const struct raft_entry *e)
{
    if (e->index >= S.cap_applied) {
        size_t nc = S.cap_applied ? S.cap_applied : 1024;
        while (nc <= e->index)
            nc *= 2;
        S.applied = xrealloc(S.applied, nc * sizeof(*S.applied));
        memset(S.applied + S.cap_applied, 0, (nc - S.cap_applied) * sizeof(*S.applied));
        S.cap_applied = nc;
    }
    uint64_t h = hash_bytes(e->type, e->data, e->len);
    struct applied_rec *a = &S.applied[e->index];
    if (!a->set) {
        a->set = 1;
        if (e->type == RAFT_ENTRY_CONF && e->index > 1)
            T.conf_changes++;
        a->term = e->term;
        a->hash = h;
        if (e->index > S.max_applied)
            S.max_applied = e->index;
    } else if (a->term != e->term || a->hash != h) {
        fail("state machine safety: n%" PRIu64 " applied a different entry at %" PRIu64
             " (term %" PRIu64 " vs %" PRIu64 ")",
             n->id, e->index, e->term, a->term);
    }
}

/* ---- network ------------------------------------------------------------------------------- */

static uint64_t net_delay(void)
{
    return rnd_range(S.p.delay_min, S.p.delay_max);
}

static void net_send(struct node *from, const struct raft_msg *m)
{
    int to = slot_of(m->to);
    if (to < 0)
        return;
    size_t cap = raft_msg_encoded_size(m), len;
    uint8_t *buf = malloc(cap);
    if (!buf || raft_msg_encode(m, buf, cap, &len) != 0) {
        fail("encode failed for %s", raft_msg_type_name(m->type));
        free(buf);
        return;
    }
    int fslot = slot_of(from->id);
    if (S.blocked[fslot][to] || chance(S.drop_pm)) {
        tr("n%" PRIu64 " -> n%" PRIu64 " %s DROPPED", m->from, m->to, raft_msg_type_name(m->type));
        free(buf);
        return;
    }
    int copies = chance(S.dup_pm) ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        struct ev e = {.t = S.now + net_delay(), .type = EV_DELIVER, .node = to, .a = fslot};
        e.buf = i == 0 ? buf : malloc(len);
        if (!e.buf)
            exit(2);
        if (i > 0)
            memcpy(e.buf, buf, len);
        e.len = len;
        push(e);
    }
}

static void trace_msg(const char *what, const struct raft_msg *m)
{
    if (!S.trace)
        return;
    tr("%s n%" PRIu64 " -> n%" PRIu64 " %s term=%" PRIu64 " idx=%" PRIu64 " logterm=%" PRIu64
       " commit=%" PRIu64 " n=%zu%s ctx=%" PRIu64,
       what, m->from, m->to, raft_msg_type_name(m->type), m->term, m->index, m->log_term, m->commit,
       m->n_entries, m->reject ? " REJECT" : "", m->ctx);
}

/* ---- clients ------------------------------------------------------------------------------- */

#define OP_BYTES 32

static void respond(int client, uint64_t req, int ok, int64_t result, uint64_t hint)
{
    struct ev e = {.t = S.now + rnd_range(1, 3),
                   .type = EV_CLIENT_RESP,
                   .a = client,
                   .b = req,
                   .c = hint,
                   .d = result,
                   .inc = (uint64_t)ok};
    push(e);
}

static void client_start(int ci)
{
    struct client *c = &S.clients[ci];
    if (S.now >= S.clients_stop_at || c->busy)
        return;
    c->busy = 1;
    c->req = ++S.next_req;
    c->key = (int)rnd_range(0, S.p.n_keys - 1);
    memset(&c->op, 0, sizeof(c->op));
    unsigned r = (unsigned)rnd_range(0, 99);
    c->op.f = r < 40 ? LIN_READ : r < 60 ? LIN_WRITE : r < 85 ? LIN_INCR : LIN_CAS;
    c->op.a = (int64_t)rnd_range(0, 5);
    c->op.b = (int64_t)rnd_range(0, 5);
    c->op.invoke = S.now;
    /* Ask the node we believe leads, sometimes any node (reads on followers use ReadIndex). */
    int slot = c->hint ? slot_of(c->hint) : -1;
    if (slot < 0 || chance(150))
        slot = (int)rnd_range(0, S.n_nodes - 1);
    for (int tries = 0; tries < 8 && S.nodes[slot].removed; tries++)
        slot = (int)rnd_range(0, S.n_nodes - 1); /* clients learn of removals eventually */
    struct ev e = {
        .t = S.now + rnd_range(1, 3), .type = EV_CLIENT_REQ, .node = slot, .a = ci, .b = c->req};
    push(e);
    struct ev to = {
        .t = S.now + CLIENT_TIMEOUT_MS, .type = EV_CLIENT_TIMEOUT, .a = ci, .b = c->req};
    push(to);
}

static void record(int key, const struct lin_op *op)
{
    if (S.n_hist == HISTORY_MAX)
        return;
    if (S.n_hist == S.cap_hist) {
        S.cap_hist = S.cap_hist ? S.cap_hist * 2 : 1024;
        S.hist = xrealloc(S.hist, S.cap_hist * sizeof(*S.hist));
    }
    S.hist[S.n_hist].key = key;
    S.hist[S.n_hist].op = *op;
    S.n_hist++;
}

static void client_next(int ci)
{
    struct ev e = {.t = S.now + rnd_range(0, 20), .type = EV_CLIENT_START, .a = ci};
    push(e);
}

static void client_resp(const struct ev *e)
{
    struct client *c = &S.clients[e->a];
    if (!c->busy || c->req != e->b)
        return;
    c->busy = 0;
    if (e->inc) {
        c->op.complete = S.now;
        c->op.result = e->d;
        c->op.done = 1;
        record(c->key, &c->op);
        S.ops_done++;
        if (c->op.f != LIN_READ && S.healed && c->op.invoke >= S.heal_at + 2500)
            S.writes_after_heal++;
        tr("client %d req %" PRIu64 " done: %s k%d -> %" PRId64, e->a, e->b,
           c->op.f == LIN_READ    ? "read"
           : c->op.f == LIN_WRITE ? "set"
           : c->op.f == LIN_INCR  ? "inc"
                                  : "cas",
           c->key, e->d);
    } else {
        S.ops_failed++; /* definitely not applied: nothing to record */
        c->hint = e->c;
    }
    client_next(e->a);
}

static void client_timeout(const struct ev *e)
{
    struct client *c = &S.clients[e->a];
    if (!c->busy || c->req != e->b)
        return;
    c->busy = 0;
    c->hint = 0;
    S.ops_timeout++;
    if (c->op.f != LIN_READ) { /* may or may not have happened */
        c->op.complete = UINT64_MAX;
        c->op.done = 0;
        record(c->key, &c->op);
    }
    tr("client %d req %" PRIu64 " timed out", e->a, e->b);
    client_next(e->a);
}

/* ---- state machine ------------------------------------------------------------------------- */

static void put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void serve_reads(struct node *n)
{
    size_t w = 0;
    for (size_t i = 0; i < n->n_pend; i++) {
        struct pend *p = &n->pend[i];
        if (p->is_read && p->read_index && p->read_index <= n->applied) {
            respond(p->client, p->req, 1, n->kv[p->key], 0);
            if (raft_role(n->r) == RAFT_LEADER)
                T.reads_leader++;
            else
                T.reads_follower++;
        } else
            n->pend[w++] = *p;
    }
    n->n_pend = w;
}

static void apply_entry(struct node *n, const struct raft_entry *e)
{
    if (e->index != n->applied + 1) {
        fail("n%" PRIu64 " asked to apply %" PRIu64 " after %" PRIu64, n->id, e->index, n->applied);
        return;
    }
    /* redraft's Redis keeps what it applied across a crash of its node: it must never hold an
     * entry its node's log does not. */
    if (e->index > dlast(n)) {
        fail("n%" PRIu64 " applies %" PRIu64 " beyond its persisted log (last %" PRIu64 ")", n->id,
             e->index, dlast(n));
        return;
    }
    check_applied(n, e);
    n->applied = e->index;
    if (e->type != RAFT_ENTRY_NORMAL)
        return;
    if (e->len != OP_BYTES) {
        fail("n%" PRIu64 " applied a malformed command at %" PRIu64, n->id, e->index);
        return;
    }
    const uint8_t *d = e->data;
    int op = d[0], key = d[1], client = d[2];
    uint64_t origin = get_u64(d + 8), req = get_u64(d + 16);
    int64_t a = (int8_t)d[3], b = (int8_t)d[4];
    int64_t *v = &n->kv[key % KEYS_MAX];
    int64_t result = 0;
    switch (op) {
    case LIN_WRITE:
        *v = a;
        break;
    case LIN_INCR:
        result = ++*v;
        break;
    case LIN_CAS:
        result = *v == a;
        if (result)
            *v = b;
        break;
    }
    if (origin != n->id)
        return;
    for (size_t i = 0; i < n->n_pend; i++)
        if (!n->pend[i].is_read && n->pend[i].req == req) {
            respond(client, req, 1, result, 0);
            n->pend[i] = n->pend[--n->n_pend];
            break;
        }
}

static void add_pend(struct node *n, struct pend p)
{
    if (n->n_pend == n->cap_pend) {
        n->cap_pend = n->cap_pend ? n->cap_pend * 2 : 16;
        n->pend = xrealloc(n->pend, n->cap_pend * sizeof(*n->pend));
    }
    n->pend[n->n_pend++] = p;
}

/* ---- durable storage ----------------------------------------------------------------------- */

static void dlog_truncate(struct node *n, uint64_t keep_last)
{
    while (dlast(n) > keep_last && n->log_n > 0) {
        free(n->log[n->log_n - 1].data);
        n->log_n--;
    }
}

static void dlog_drop_through(struct node *n, uint64_t index)
{
    if (index <= n->snap.index)
        return;
    size_t k = (size_t)(index - n->snap.index);
    if (k > n->log_n)
        k = n->log_n;
    for (size_t i = 0; i < k; i++)
        free(n->log[i].data);
    memmove(n->log, n->log + k, (n->log_n - k) * sizeof(*n->log));
    n->log_n -= k;
}

static void persist_entries(struct node *n, const struct raft_entry *ents, size_t cnt)
{
    if (cnt == 0)
        return;
    uint64_t first = ents[0].index;
    if (first <= n->snap.index || first > dlast(n) + 1) {
        fail("n%" PRIu64 " asked to store entry %" PRIu64 " but holds (%" PRIu64 ", %" PRIu64 "]",
             n->id, first, n->snap.index, dlast(n));
        return;
    }
    dlog_truncate(n, first - 1);
    uint64_t prev_term =
        first - 1 == n->snap.index ? n->snap.term : n->log[first - 1 - n->snap.index - 1].term;
    for (size_t i = 0; i < cnt; i++) {
        const struct raft_entry *e = &ents[i];
        if (e->index != first + i) {
            fail("n%" PRIu64 " got non-consecutive entries to store", n->id);
            return;
        }
        check_log_matching(e->index, e->term, hash_bytes(e->type, e->data, e->len), prev_term);
        prev_term = e->term;
        if (n->log_n == n->log_cap) {
            n->log_cap = n->log_cap ? n->log_cap * 2 : 64;
            n->log = xrealloc(n->log, n->log_cap * sizeof(*n->log));
        }
        struct dent *d = &n->log[n->log_n++];
        d->term = e->term;
        d->type = e->type;
        d->len = e->len;
        d->data = NULL;
        if (e->len) {
            d->data = malloc(e->len);
            if (!d->data)
                exit(2);
            memcpy(d->data, e->data, e->len);
        }
    }
}

/* The configuration in effect at index, read from the node's stored log (the latest CONF entry
 * at or before it, else the snapshot's): a checker outside the core for the metadata of the
 * snapshots it takes. 0, or -1 when it cannot tell (index beyond the stored log). */
static int stored_conf_at(const struct node *n, uint64_t index, struct raft_conf *out)
{
    if (index > dlast(n))
        return -1;
    for (uint64_t i = index; i > n->snap.index; i--) {
        const struct dent *d = &n->log[i - n->snap.index - 1];
        if (d->type == RAFT_ENTRY_CONF)
            return raft_conf_entry_decode(d->data, d->len, NULL, NULL, out) == 0 ? 0 : -1;
    }
    *out = n->snap.conf;
    return 0;
}

static int conf_same(const struct raft_conf *a, const struct raft_conf *b)
{
    uint8_t ea[RAFT_CONF_BYTES_MAX], eb[RAFT_CONF_BYTES_MAX];
    size_t la, lb;
    return raft_conf_encode(a, ea, sizeof(ea), &la) == 0 &&
           raft_conf_encode(b, eb, sizeof(eb), &lb) == 0 && la == lb && memcmp(ea, eb, la) == 0;
}

static void take_snapshot(struct node *n)
{
    struct raft_snapshot_meta meta;
    uint64_t idx = raft_applied_index(n->r);
    struct raft_status st;
    raft_status(n->r, &st);
    if (idx <= st.snapshot_index)
        return; /* e.g. a snapshot was just installed there */
    int rc = raft_snapshot_taken(n->r, idx, &meta);
    if (rc != 0) {
        fail("n%" PRIu64 " snapshot at %" PRIu64 ": %s", n->id, idx, raft_errstr(rc));
        return;
    }
    struct raft_conf want;
    if (stored_conf_at(n, idx, &want) == 0 && !conf_same(&want, &meta.conf))
        fail("n%" PRIu64 " snapshot at %" PRIu64 ": its configuration is not the one in effect "
             "there",
             n->id, idx);
    dlog_drop_through(n, idx);
    T.snapshots_taken++;
    n->snap = meta;
    memcpy(n->snap_kv, n->kv, sizeof(n->kv));
    tr("n%" PRIu64 " snapshot at %" PRIu64 " term %" PRIu64, n->id, meta.index, meta.term);
}

/* ---- driving one node ---------------------------------------------------------------------- */

static void node_pump(struct node *n);
static void finish_fetch(struct node *n);

/* Applies committed entries and hands read states to the waiting reads. */
static void deliver_now(struct node *n, const struct raft_entry *committed, size_t n_committed,
                        const struct raft_read_state *reads, size_t n_reads)
{
    for (size_t i = 0; i < n_committed && !S.failed; i++)
        apply_entry(n, &committed[i]);
    for (size_t i = 0; i < n_reads; i++) {
        const struct raft_read_state *rs = &reads[i];
        for (size_t j = 0; j < n->n_pend; j++) {
            struct pend *p = &n->pend[j];
            if (!p->is_read || p->req != rs->ctx)
                continue;
            if (rs->index == 0) {
                respond(p->client, p->req, 0, 0, raft_leader(n->r));
                n->pend[j] = n->pend[--n->n_pend];
            } else {
                p->read_index = rs->index;
            }
            break;
        }
    }
    serve_reads(n);
}

/* While a ready's write runs: what the core hands out without it. */
static void take_early(struct node *n)
{
    struct raft_entry e;
    int rc = RAFT_ENOTFOUND;
    while (!S.failed && (rc = raft_take_committed(n->r, &e)) == RAFT_OK) {
        deliver_now(n, &e, 1, NULL, 0);
        free(e.data);
        T.early_applied++;
    }
    if (rc != RAFT_OK && rc != RAFT_ENOTFOUND)
        fail("n%" PRIu64 " take committed: %s", n->id, raft_errstr(rc));
    struct raft_read_state *rs = NULL;
    size_t k = raft_take_read_states(n->r, &rs);
    deliver_now(n, NULL, 0, rs, k);
    free(rs);
}

static void persist_and_advance(struct node *n)
{
    struct raft_ready *rd = &n->rd;
    if (rd->snapshot) {
        if (rd->snapshot_discard_log || dlast(n) < rd->snapshot->index)
            dlog_truncate(n, n->snap.index); /* the whole stored log goes */
        else
            dlog_drop_through(n, rd->snapshot->index);
        n->snap = *rd->snapshot;
        memcpy(n->snap_kv, n->staged_kv, sizeof(n->snap_kv));
    }
    persist_entries(n, rd->entries, rd->n_entries);
    if (rd->hs_changed) {
        n->hs = rd->hs;
        if (n->hs.commit > dlast(n))
            fail("n%" PRIu64 " would persist commit %" PRIu64 " beyond its log %" PRIu64, n->id,
                 n->hs.commit, dlast(n));
    }
    for (size_t i = 0; i < rd->n_msgs; i++) {
        trace_msg("send", &rd->msgs[i]);
        net_send(n, &rd->msgs[i]);
    }
    if (!n->rd_delivered)
        deliver_now(n, rd->committed, rd->n_committed, rd->reads, rd->n_reads);
    if (rd->fetch.index && !n->fetching) {
        n->fetching = 1;
        struct ev e = {.t = S.now + rnd_range(5, 60),
                       .type = EV_FETCH,
                       .node = slot_of(n->id),
                       .inc = n->inc,
                       .b = rd->fetch.from,
                       .c = rd->fetch.index};
        push(e);
        tr("n%" PRIu64 " fetches snapshot >= %" PRIu64 " from n%" PRIu64, n->id, rd->fetch.index,
           rd->fetch.from);
    }
    int want = rd->snapshot_want_index != 0;
    int rc = raft_advance(n->r, rd);
    if (rc != 0)
        fail("n%" PRIu64 " advance: %s", n->id, raft_errstr(rc));
    n->rd_pending = 0;
    if (n->fetch_landed)
        finish_fetch(n);
    if (n->applied != raft_applied_index(n->r))
        fail("n%" PRIu64 " applied %" PRIu64 " but core says %" PRIu64, n->id, n->applied,
             raft_applied_index(n->r));
    if (want)
        take_snapshot(n);
}

static void node_pump(struct node *n)
{
    if (n->up && n->rd_pending && S.p.early_apply && !S.failed)
        take_early(n);
    for (int guard = 0; guard < 64 && n->up && !n->rd_pending && !S.failed; guard++) {
        if (!raft_has_ready(n->r))
            break;
        int rc = raft_ready(n->r, &n->rd);
        if (rc != 0) {
            fail("n%" PRIu64 " ready: %s", n->id, raft_errstr(rc));
            return;
        }
        n->rd_pending = 1;
        n->rd_delivered = S.p.early_apply && S.p.disk_max != 0;
        if (n->rd_delivered)
            deliver_now(n, n->rd.committed, n->rd.n_committed, n->rd.reads, n->rd.n_reads);
        if (n->rd.role != n->last_role || n->rd.term != n->last_term) {
            tr("n%" PRIu64 " is %s in term %" PRIu64 " (leader n%" PRIu64 ")", n->id,
               raft_role_name(n->rd.role), n->rd.term, n->rd.leader);
            n->last_role = n->rd.role;
            n->last_term = n->rd.term;
        }
        /* A leader's appends may leave before its own disk write (thesis §10.2.1). */
        for (size_t i = 0; i < n->rd.n_msgs_early; i++) {
            trace_msg("send", &n->rd.msgs_early[i]);
            net_send(n, &n->rd.msgs_early[i]);
        }
        if (S.p.disk_max == 0) {
            persist_and_advance(n);
        } else {
            schedule(rnd_range(S.p.disk_min, S.p.disk_max), EV_PERSIST, slot_of(n->id), n->inc);
            break;
        }
    }
}

static void node_start(struct node *n)
{
    struct raft_config rc = S.p.rc;
    rc.id = n->id;
    rc.seed = rnd();
    rc.storage = &storage_ops;
    rc.storage_ctx = n;
    struct raft_restore rs = {
        .hs = n->hs, .snapshot = n->snap, .last_index = dlast(n), .applied = n->snap.index};
    int err = raft_new(&rc, &rs, &n->r);
    if (err != 0) {
        fail("n%" PRIu64 " raft_new: %s", n->id, raft_errstr(err));
        return;
    }
    memcpy(n->kv, n->snap_kv, sizeof(n->kv));
    n->applied = n->snap.index;
    n->up = 1;
    n->inc++;
    n->rd_pending = 0;
    n->fetching = n->fetch_landed = 0;
    n->last_role = -1;
    n->n_pend = 0;
    schedule(rnd_range(1, TICK_MS), EV_TICK, slot_of(n->id), n->inc);
}

static void node_crash(struct node *n)
{
    if (!n->up)
        return;
    /* A torn last write: part of the entries in flight reached the disk, the rest and the hard
     * state did not. Nothing that depends on them was sent, so Raft must not care. */
    if (n->rd_pending && S.p.torn && n->rd.n_entries && !n->rd.snapshot && chance(500)) {
        size_t k = (size_t)rnd_range(0, n->rd.n_entries - 1);
        persist_entries(n, n->rd.entries, k);
        T.torn++;
        tr("n%" PRIu64 " torn write: %zu of %zu entries reached disk", n->id, k, n->rd.n_entries);
    }
    raft_free(n->r);
    n->r = NULL;
    n->up = 0;
    n->inc++;
    n->n_pend = 0;
    n->rd_pending = 0;
    T.crashes++;
    tr("n%" PRIu64 " CRASHED", n->id);
}

static void node_restart(struct node *n)
{
    if (n->up || n->removed || !n->exists)
        return;
    if (n->hs.commit > dlast(n))
        fail("n%" PRIu64 " restarts with commit %" PRIu64 " beyond its log", n->id, n->hs.commit);
    /* Committed entries are never lost or changed across a crash: what the disk holds up to
     * its commit index is what was applied anywhere. */
    for (uint64_t i = n->snap.index + 1; i <= n->hs.commit && i <= dlast(n); i++) {
        uint64_t t = n->log[i - n->snap.index - 1].term;
        if (i < S.cap_applied && S.applied[i].set && S.applied[i].term != t) {
            fail("n%" PRIu64 " restarts with entry %" PRIu64 " of term %" PRIu64
                 " but term %" PRIu64 " was committed there",
                 n->id, i, t, S.applied[i].term);
            return;
        }
    }
    node_start(n);
    tr("n%" PRIu64 " RESTARTED (term %" PRIu64 ", log (%" PRIu64 ", %" PRIu64 "])", n->id,
       n->hs.term, n->snap.index, dlast(n));
}

static struct node *new_node(void)
{
    if (S.n_nodes == NODES_MAX)
        return NULL;
    struct node *n = &S.nodes[S.n_nodes++];
    memset(n, 0, sizeof(*n));
    n->id = S.next_id++;
    n->exists = 1;
    return n;
}

static struct node *find_leader(void)
{
    struct node *best = NULL;
    for (unsigned i = 0; i < S.n_nodes; i++) {
        struct node *n = &S.nodes[i];
        if (n->up && raft_role(n->r) == RAFT_LEADER &&
            (!best || raft_term(n->r) > raft_term(best->r)))
            best = n;
    }
    return best;
}

/* ---- event handlers ------------------------------------------------------------------------ */

static void on_deliver(struct ev *e)
{
    struct node *n = &S.nodes[e->node];
    if (!n->up || S.blocked[e->a][e->node]) {
        free(e->buf);
        return;
    }
    struct raft_msg m;
    int rc = raft_msg_decode(e->buf, e->len, &m);
    if (rc != 0) {
        fail("decode of an encoded message failed: %s", raft_errstr(rc));
        free(e->buf);
        return;
    }
    trace_msg("recv", &m);
    rc = raft_step(n->r, &m);
    if (rc != 0)
        fail("n%" PRIu64 " step %s: %s", n->id, raft_msg_type_name(m.type), raft_errstr(rc));
    raft_msg_release(&m);
    free(e->buf);
    node_pump(n);
}

static void on_client_req(struct ev *e)
{
    struct node *n = &S.nodes[e->node];
    struct client *c = &S.clients[e->a];
    if (!n->up || !c->busy || c->req != e->b) {
        tr("client %d req %" PRIu64 " to n%" PRIu64 " lost", e->a, e->b, n->id);
        return; /* lost: the client times out */
    }
    int rc;
    if (c->op.f == LIN_READ) {
        rc = raft_read_index(n->r, e->b);
        if (rc == 0)
            add_pend(n, (struct pend){.req = e->b, .client = e->a, .key = c->key, .is_read = 1});
    } else {
        uint8_t d[OP_BYTES] = {0};
        d[0] = (uint8_t)c->op.f;
        d[1] = (uint8_t)c->key;
        d[2] = (uint8_t)e->a;
        d[3] = (uint8_t)(int8_t)c->op.a;
        d[4] = (uint8_t)(int8_t)c->op.b;
        put_u64(d + 8, n->id);
        put_u64(d + 16, e->b);
        uint64_t idx = 0;
        rc = raft_propose(n->r, d, sizeof(d), &idx, NULL);
        if (rc == 0) {
            add_pend(n, (struct pend){.req = e->b, .client = e->a, .key = c->key});
            tr("n%" PRIu64 " proposes req %" PRIu64 " at %" PRIu64, n->id, e->b, idx);
        }
    }
    if (rc != 0)
        respond(e->a, e->b, 0, 0, raft_leader(n->r));
    node_pump(n);
}

/* The snapshot data arrived (or could not be had): install it, tell both cores. */
static void finish_fetch(struct node *n)
{
    n->fetching = n->fetch_landed = 0;
    int src = slot_of(n->fetch_from);
    struct node *sn = src >= 0 ? &S.nodes[src] : NULL;
    struct raft_snapshot_meta meta = n->fetched_meta;
    if (!n->fetch_ok || meta.index <= raft_applied_index(n->r)) {
        raft_snapshot_fetch_failed(n->r);
        if (sn && sn->up && raft_role(sn->r) == RAFT_LEADER)
            raft_report_snapshot(sn->r, n->id, 0);
        tr("n%" PRIu64 " snapshot fetch from n%" PRIu64 " failed", n->id, n->fetch_from);
    } else {
        memcpy(n->kv, n->fetched_kv, sizeof(n->kv));
        memcpy(n->staged_kv, n->fetched_kv, sizeof(n->kv));
        int rc = raft_snapshot_installed(n->r, &meta);
        if (rc != 0) {
            fail("n%" PRIu64 " snapshot install at %" PRIu64 ": %s", n->id, meta.index,
                 raft_errstr(rc));
            return;
        }
        n->applied = meta.index;
        T.snapshots_installed++;
        tr("n%" PRIu64 " installed snapshot %" PRIu64 "/%" PRIu64 " from n%" PRIu64, n->id,
           meta.index, meta.term, n->fetch_from);
        serve_reads(n);
        if (sn && sn->up && raft_role(sn->r) == RAFT_LEADER)
            raft_report_snapshot(sn->r, n->id, 1);
    }
    if (sn && sn->up)
        node_pump(sn);
}

/* The transfer ends now: the data is what the source holds at this moment. A node may install
 * only between advance and its next ready, so with a ready outstanding it waits for that. */
static void on_fetch(struct ev *e)
{
    struct node *n = &S.nodes[e->node];
    if (!n->up || n->inc != e->inc)
        return;
    int src = slot_of(e->b);
    struct node *sn = src >= 0 ? &S.nodes[src] : NULL;
    n->fetch_from = e->b;
    n->fetch_ok = sn && sn->up && !S.blocked[src][e->node] && !S.blocked[e->node][src] &&
                  sn->snap.index >= e->c;
    if (n->fetch_ok) {
        n->fetched_meta = sn->snap;
        memcpy(n->fetched_kv, sn->snap_kv, sizeof(n->fetched_kv));
    }
    n->fetch_landed = 1;
    if (n->rd_pending)
        return; /* persist_and_advance finishes it */
    finish_fetch(n);
    node_pump(n);
}

static void heal_network(void)
{
    memset(S.blocked, 0, sizeof(S.blocked));
}

static struct node *random_up_node(void)
{
    for (int tries = 0; tries < 20; tries++) {
        struct node *n = &S.nodes[rnd_range(0, S.n_nodes - 1)];
        if (n->up)
            return n;
    }
    return NULL;
}

static void on_fault(void)
{
    if (S.healed)
        return;
    unsigned r = (unsigned)rnd_range(0, 99);
    if (r < 22) {
        /* Leaders are the interesting victims (figure 8 starts with one crashing). */
        struct node *n = chance(500) && find_leader() ? find_leader() : random_up_node();
        if (n) {
            node_crash(n);
            schedule(rnd_range(20, 1500), EV_RESTART, slot_of(n->id), 0);
        }
    } else if (r < 36) {
        heal_network();
        unsigned mask = (unsigned)rnd();
        struct node *l = find_leader();
        if (l && chance(500)) { /* the leader and at most one other node on one side */
            mask = 1u << slot_of(l->id);
            if (chance(600))
                mask |= 1u << rnd_range(0, S.n_nodes - 1);
        }
        for (unsigned i = 0; i < S.n_nodes; i++)
            for (unsigned j = 0; j < S.n_nodes; j++)
                if (((mask >> i) & 1) != ((mask >> j) & 1))
                    S.blocked[i][j] = 1;
        tr("FAULT symmetric partition mask %x", mask & ((1u << S.n_nodes) - 1));
    } else if (r < 46) {
        unsigned a = (unsigned)rnd_range(0, S.n_nodes - 1),
                 b = (unsigned)rnd_range(0, S.n_nodes - 1);
        S.blocked[a][b] = 1;
        tr("FAULT asymmetric: n%" PRIu64 " cannot reach n%" PRIu64, S.nodes[a].id, S.nodes[b].id);
    } else if (r < 54) {
        struct ev e = {.t = S.now,
                       .type = EV_FLAP,
                       .a = (int)rnd_range(0, S.n_nodes - 1),
                       .b = rnd_range(0, S.n_nodes - 1),
                       .c = rnd_range(4, 12)};
        push(e);
    } else if (r < 70) {
        heal_network();
        tr("FAULT network healed");
    } else if (r < 80) {
        S.drop_pm = chance(500) ? 0 : (unsigned)rnd_range(0, S.p.drop_pm);
        S.dup_pm = chance(500) ? 0 : (unsigned)rnd_range(0, S.p.dup_pm);
        tr("FAULT drop %u/1000 dup %u/1000", S.drop_pm, S.dup_pm);
    } else if (r < 88 && S.p.transfers) {
        struct node *l = find_leader();
        if (l) {
            int rc = raft_transfer_leadership(l->r, 0);
            T.transfers += rc == 0;
            tr("n%" PRIu64 " transfers leadership: %s", l->id, raft_errstr(rc));
            node_pump(l);
        }
    }
    schedule(rnd_range(S.p.fault_min_ms, S.p.fault_max_ms), EV_FAULT, 0, 0);
}

static void on_flap(struct ev *e)
{
    if (S.healed || e->c == 0)
        return;
    int a = e->a, b = (int)e->b;
    S.blocked[a][b] = !S.blocked[a][b];
    S.blocked[b][a] = S.blocked[a][b];
    tr("FAULT flap n%" PRIu64 "<->n%" PRIu64 " %s", S.nodes[a].id, S.nodes[b].id,
       S.blocked[a][b] ? "down" : "up");
    e->c--;
    e->t = S.now + rnd_range(20, 200);
    push(*e);
}

/* Membership under load: add learners, promote them once caught up, remove voters (sometimes
 * the leader itself). Nodes are stopped only once a committed configuration excludes them. */
static void on_admin(void)
{
    for (unsigned i = 0; i < S.n_nodes; i++) {
        struct node *n = &S.nodes[i];
        if (!n->to_stop || n->removed)
            continue;
        struct node *l = find_leader();
        uint64_t ci;
        if (l && !raft_conf_find(raft_conf(l->r, &ci), n->id) && ci <= raft_commit_index(l->r) &&
            l != n) {
            if (n->up)
                node_crash(n);
            n->removed = 1;
            tr("n%" PRIu64 " stopped for good (removed)", n->id);
        }
    }
    schedule(rnd_range(300, 1500), EV_ADMIN, 0, 0);
    struct node *l = find_leader();
    if (!l || S.healed)
        return;
    uint64_t ci;
    const struct raft_conf *c = raft_conf(l->r, &ci);
    unsigned voters = raft_conf_voters(c);
    uint64_t learner = 0;
    for (unsigned i = 0; i < c->n; i++)
        if (!c->members[i].voter)
            learner = c->members[i].id;
    int rc;
    if (learner) {
        rc = raft_propose_conf_change(l->r, RAFT_CONF_PROMOTE, learner, NULL, 0, NULL);
        tr("admin: promote n%" PRIu64 ": %s", learner, raft_errstr(rc));
    } else if (c->n < 5 && S.n_nodes < NODES_MAX && chance(600)) {
        char addr[32];
        uint64_t id = S.next_id;
        int len = snprintf(addr, sizeof(addr), "10.0.0.%" PRIu64 ":16379", id);
        rc = raft_propose_conf_change(l->r, RAFT_CONF_ADD_LEARNER, id, addr, (size_t)len, NULL);
        tr("admin: add learner n%" PRIu64 ": %s", id, raft_errstr(rc));
        if (rc == 0) {
            struct node *n = new_node();
            node_start(n);
        }
    } else if (voters > 3) {
        uint64_t victim = c->members[rnd_range(0, c->n - 1)].id;
        rc = raft_propose_conf_change(l->r, RAFT_CONF_REMOVE, victim, NULL, 0, NULL);
        tr("admin: remove n%" PRIu64 ": %s", victim, raft_errstr(rc));
        int s = slot_of(victim);
        if (rc == 0 && s >= 0)
            S.nodes[s].to_stop = 1;
    }
    node_pump(l);
}

static void on_heal(void)
{
    S.healed = 1;
    heal_network();
    S.drop_pm = S.dup_pm = 0;
    for (unsigned i = 0; i < S.n_nodes; i++)
        node_restart(&S.nodes[i]);
    tr("HEAL: network healed, every node restarted");
}

/* ---- one seed ------------------------------------------------------------------------------ */

static void pick_params(void)
{
    struct params *p = &S.p;
    memset(p, 0, sizeof(*p));
    unsigned r = (unsigned)rnd_range(0, 99);
    p->n_init = r < 5 ? 1 : r < 60 ? 3 : 5;
    p->n_clients = (unsigned)rnd_range(2, 5);
    p->n_keys = (unsigned)rnd_range(2, 5);
    p->delay_min = (unsigned)rnd_range(1, 3);
    p->delay_max = p->delay_min + (unsigned)(chance(200) ? rnd_range(10, 40) : rnd_range(1, 8));
    p->disk_min = 1;
    p->disk_max = chance(300) ? 0 : (unsigned)rnd_range(1, 6);
    if (chance(300)) { /* an fsync slower than the network: leaders run ahead of their disk */
        p->disk_min = (unsigned)rnd_range(3, 10);
        p->disk_max = p->disk_min + (unsigned)rnd_range(0, 20);
    }
    p->fault_min_ms = 100;
    p->fault_max_ms = 700;
    if (chance(300)) { /* storms: much more churn */
        p->fault_min_ms = 20;
        p->fault_max_ms = 200;
    }
    p->drop_pm = chance(300) ? 0 : (unsigned)rnd_range(10, 200);
    p->dup_pm = chance(400) ? 0 : (unsigned)rnd_range(10, 100);
    p->torn = chance(300);
    p->membership = chance(500);
    p->transfers = chance(500);
    p->leader_killer = chance(250);
    p->early_apply = chance(500);
    p->chaos_ms = rnd_range(3000, 7000);
    p->heal_ms = 8000;
    struct raft_config *c = &p->rc;
    raft_config_defaults(c);
    c->election_ticks = 10;
    c->heartbeat_ticks = (unsigned)rnd_range(1, 3);
    c->pre_vote = chance(800);
    c->check_quorum = chance(800);
    c->lease_read = c->check_quorum && chance(250);
    c->inflight_msgs_max = (unsigned)(chance(200) ? 1 : rnd_range(2, 64));
    c->msg_bytes_max = chance(400) ? 1 : (size_t)rnd_range(64, 4096); /* 1: one entry each */
    c->uncommitted_bytes_max = chance(200) ? 400 : 1 << 20;
    c->committed_bytes_max = chance(300) ? 40 : 1 << 20;
    c->snapshot_entries = chance(300) ? 0 : rnd_range(10, 200);
    c->mem_entries_max = chance(400) ? rnd_range(0, 16) : 4096;
    c->promote_lag_entries_max = rnd_range(0, 32);
}

static void bootstrap(void)
{
    struct raft_conf conf = {0};
    for (unsigned i = 0; i < S.p.n_init; i++) {
        conf.members[i].id = i + 1;
        conf.members[i].voter = 1;
        conf.members[i].blob_len = (uint16_t)snprintf(
            (char *)conf.members[i].blob, RAFT_MEMBER_BLOB_BYTES_MAX, "10.0.0.%u", i + 1);
    }
    conf.n = S.p.n_init;
    uint8_t buf[RAFT_CONF_ENTRY_BYTES_MAX];
    size_t len;
    if (raft_conf_entry_encode(RAFT_CONF_BOOTSTRAP, 0, &conf, buf, sizeof(buf), &len) != 0) {
        fail("bootstrap encode");
        return;
    }
    S.next_id = 1;
    for (unsigned i = 0; i < S.p.n_init; i++) {
        struct node *n = new_node();
        struct raft_entry e = {
            .index = 1, .term = 1, .type = RAFT_ENTRY_CONF, .data = buf, .len = len};
        persist_entries(n, &e, 1);
        n->hs = (struct raft_hard_state){.term = 1, .vote = 0, .commit = 1};
        node_start(n);
    }
}

static void free_all(void)
{
    for (unsigned i = 0; i < S.n_nodes; i++) {
        struct node *n = &S.nodes[i];
        if (n->r)
            raft_free(n->r);
        dlog_truncate(n, 0);
        n->log_n = 0;
        free(n->log);
        free(n->pend);
    }
    for (size_t i = 0; i < S.heap_n; i++)
        free(S.heap[i].buf);
    free(S.heap);
    free(S.hist);
    free(S.leader_of_term);
    free(S.applied);
    free(S.lm);
}

/* Every member of the leader's configuration runs and has applied all the leader committed. */
static int converged(void)
{
    struct node *l = find_leader();
    if (!l)
        return 0;
    uint64_t ci;
    const struct raft_conf *c = raft_conf(l->r, &ci);
    for (unsigned i = 0; i < c->n; i++) {
        int s = slot_of(c->members[i].id);
        if (s < 0 || !S.nodes[s].up || S.nodes[s].applied != raft_commit_index(l->r))
            return 0;
    }
    return 1;
}

static void check_liveness(void)
{
    if (S.failed)
        return;
    if (S.writes_after_heal == 0) {
        fail("liveness: no write completed after the faults healed");
        return;
    }
    struct node *l = find_leader();
    if (!l) {
        fail("liveness: no leader at the end");
        return;
    }
    uint64_t ci;
    const struct raft_conf *c = raft_conf(l->r, &ci);
    uint64_t commit = raft_commit_index(l->r);
    for (unsigned i = 0; i < c->n; i++) {
        int s = slot_of(c->members[i].id);
        struct node *n = s >= 0 ? &S.nodes[s] : NULL;
        if (!n || !n->up) {
            fail("liveness: member n%" PRIu64 " is not running at the end", c->members[i].id);
            return;
        }
        if (n->applied != commit || memcmp(n->kv, l->kv, sizeof(n->kv)) != 0) {
            fail("liveness: n%" PRIu64 " applied %" PRIu64 ", leader n%" PRIu64
                 " committed %" PRIu64 " (states %s)",
                 n->id, n->applied, l->id, commit,
                 memcmp(n->kv, l->kv, sizeof(n->kv)) ? "differ" : "equal");
            return;
        }
    }
}

static void check_linearizable(void)
{
    if (S.failed)
        return;
    struct lin_op *ops = malloc((S.n_hist + 1) * sizeof(*ops));
    if (!ops)
        exit(2);
    for (unsigned k = 0; k < S.p.n_keys && !S.failed; k++) {
        size_t n = 0;
        for (size_t i = 0; i < S.n_hist; i++)
            if (S.hist[i].key == (int)k)
                ops[n++] = S.hist[i].op;
        T.lin_ops += n;
        struct lin_config cfg = {.initial = 0, .steps_max = LIN_STEPS_MAX};
        struct lin_result res;
        int rc = lin_check(ops, n, &cfg, &res);
        if (rc == LIN_VIOLATION)
            fail("linearizability: key %u: %s", k, res.why);
        else if (rc != LIN_OK)
            fprintf(stderr, "seed %" PRIu64 ": key %u: linearizability search gave up: %s\n",
                    S.seed, k, res.why);
        lin_result_free(&res);
    }
    free(ops);
}

static int run_seed(uint64_t seed, int trace, uint64_t *ops_out, uint64_t *ms_out)
{
    memset(&S, 0, sizeof(S));
    S.seed = seed;
    S.trace = trace;
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    pick_params();
    S.drop_pm = S.p.drop_pm;
    S.dup_pm = S.p.dup_pm;
    S.heal_at = S.p.chaos_ms;
    S.end_at = S.p.chaos_ms + S.p.heal_ms;
    S.clients_stop_at = S.end_at - 2000;
    if (trace)
        printf("seed %" PRIu64 ": %u nodes, %u clients, %u keys, delay %u-%ums, disk %ums, "
               "drop %u/1000, dup %u/1000, torn %d, membership %d, transfers %d, pre-vote %d, "
               "check-quorum %d, lease %d, inflight %u, msg bytes %zu, snapshot every %" PRIu64
               ", mem window %" PRIu64 "\n",
               seed, S.p.n_init, S.p.n_clients, S.p.n_keys, S.p.delay_min, S.p.delay_max,
               S.p.disk_max, S.p.drop_pm, S.p.dup_pm, S.p.torn, S.p.membership, S.p.transfers,
               S.p.rc.pre_vote, S.p.rc.check_quorum, S.p.rc.lease_read, S.p.rc.inflight_msgs_max,
               S.p.rc.msg_bytes_max, S.p.rc.snapshot_entries, S.p.rc.mem_entries_max);
    bootstrap();
    for (unsigned i = 0; i < S.p.n_clients; i++)
        client_next((int)i);
    schedule(rnd_range(200, 600), EV_FAULT, 0, 0);
    if (S.p.membership)
        schedule(rnd_range(500, 1500), EV_ADMIN, 0, 0);
    schedule(S.heal_at, EV_HEAL, 0, 0);
    uint64_t deadline = S.end_at;
    while (S.heap_n && !S.failed) {
        if (++S.n_events > EVENTS_MAX) {
            fail("event limit reached");
            break;
        }
        struct ev e = pop();
        if (e.t > deadline) {
            /* Clients stopped long ago: give a slow configuration time to converge. */
            if (converged() || deadline >= S.end_at + CONVERGE_MS_MAX) {
                free(e.buf);
                break;
            }
            deadline += 250;
        }
        S.now = e.t;
        struct node *n = e.type == EV_TICK || e.type == EV_PERSIST || e.type == EV_DELIVER ||
                                 e.type == EV_CLIENT_REQ || e.type == EV_FETCH ||
                                 e.type == EV_RESTART || e.type == EV_KILL
                             ? &S.nodes[e.node]
                             : NULL;
        switch (e.type) {
        case EV_TICK:
            if (!n->up || n->inc != e.inc)
                break;
            raft_tick(n->r);
            schedule(TICK_MS, EV_TICK, e.node, n->inc);
            node_pump(n);
            break;
        case EV_PERSIST:
            if (!n->up || n->inc != e.inc || !n->rd_pending)
                break;
            if (S.p.torn && !S.healed && chance(15)) {
                /* Power lost in the middle of the write (a leader may have sent early). */
                node_crash(n);
                schedule(rnd_range(20, 800), EV_RESTART, e.node, 0);
                break;
            }
            persist_and_advance(n);
            node_pump(n);
            break;
        case EV_DELIVER:
            on_deliver(&e);
            break;
        case EV_CLIENT_START:
            client_start(e.a);
            break;
        case EV_CLIENT_REQ:
            on_client_req(&e);
            break;
        case EV_CLIENT_RESP:
            client_resp(&e);
            break;
        case EV_CLIENT_TIMEOUT:
            client_timeout(&e);
            break;
        case EV_FAULT:
            on_fault();
            break;
        case EV_RESTART:
            if (!S.healed)
                node_restart(n);
            break;
        case EV_FLAP:
            on_flap(&e);
            break;
        case EV_FETCH:
            on_fetch(&e);
            break;
        case EV_ADMIN:
            on_admin();
            break;
        case EV_KILL:
            if (n->up && n->inc == e.inc && !S.healed) {
                tr("FAULT n%" PRIu64 " crashes right after winning", n->id);
                node_crash(n);
                schedule(rnd_range(20, 600), EV_RESTART, e.node, 0);
            }
            break;
        case EV_HEAL:
            on_heal();
            break;
        }
        if (n)
            check_leader(n);
    }
    check_liveness();
    check_linearizable();
    *ops_out = S.ops_done + S.ops_timeout + S.ops_failed;
    *ms_out = S.now;
    int failed = S.failed;
    if (failed && trace == TRACE_OFF)
        printf("seed %" PRIu64 ": FAIL: %s\n", seed, S.why);
    else if (failed && trace == TRACE_TAIL)
        print_tail();
    else if (trace == TRACE_ALL)
        printf("seed %" PRIu64 ": %s (%" PRIu64 " ops done, %" PRIu64 " timed out, %" PRIu64
               " refused, %" PRIu64 " events)\n",
               seed, failed ? "FAIL" : "ok", S.ops_done, S.ops_timeout, S.ops_failed, S.n_events);
    free_all();
    return failed;
}

/* The checker must be able to say no: a few tiny histories with known answers, run before
 * any seed so a checker that accepts everything cannot pass silently. */
static int lin_selftest(void)
{
    const uint64_t X = UINT64_MAX;
#define OP(f_, a_, b_, inv, comp, res, done_)                                                      \
    {                                                                                              \
        .f = f_, .a = a_, .b = b_, .invoke = inv, .complete = comp, .result = res, .done = done_   \
    }
    struct {
        struct lin_op ops[4];
        size_t n;
        int want;
    } cases[] = {
        /* set 1, then a read that starts after it must see 1 */
        {{OP(LIN_WRITE, 1, 0, 0, 10, 0, 1), OP(LIN_READ, 0, 0, 20, 30, 1, 1)}, 2, LIN_OK},
        {{OP(LIN_WRITE, 1, 0, 0, 10, 0, 1), OP(LIN_READ, 0, 0, 20, 30, 0, 1)}, 2, LIN_VIOLATION},
        /* overlapping: the read may come first */
        {{OP(LIN_WRITE, 1, 0, 0, 30, 0, 1), OP(LIN_READ, 0, 0, 10, 20, 0, 1)}, 2, LIN_OK},
        /* a timed-out increment may have happened... */
        {{OP(LIN_INCR, 0, 0, 0, X, 0, 0), OP(LIN_READ, 0, 0, 50, 60, 1, 1)}, 2, LIN_OK},
        /* ...or not, but not both */
        {{OP(LIN_INCR, 0, 0, 0, X, 0, 0), OP(LIN_READ, 0, 0, 50, 60, 1, 1),
          OP(LIN_READ, 0, 0, 70, 80, 0, 1)},
         3,
         LIN_VIOLATION},
        /* two increments both claiming to be the first */
        {{OP(LIN_INCR, 0, 0, 0, 10, 1, 1), OP(LIN_INCR, 0, 0, 5, 15, 1, 1)}, 2, LIN_VIOLATION},
        /* compare-and-set sees the value a set left */
        {{OP(LIN_WRITE, 3, 0, 0, 10, 0, 1), OP(LIN_CAS, 3, 4, 20, 30, 1, 1),
          OP(LIN_READ, 0, 0, 40, 50, 4, 1)},
         3,
         LIN_OK},
        {{OP(LIN_WRITE, 3, 0, 0, 10, 0, 1), OP(LIN_CAS, 3, 4, 20, 30, 0, 1)}, 2, LIN_VIOLATION},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lin_config cfg = {.initial = 0, .steps_max = 10000};
        struct lin_result res;
        int got = lin_check(cases[i].ops, cases[i].n, &cfg, &res);
        lin_result_free(&res);
        if (got != cases[i].want) {
            printf("raft-sim: linearizability checker self-test %zu: got %d, want %d\n", i, got,
                   cases[i].want);
            return 1;
        }
    }
    return 0;
#undef OP
}

static void usage(void)
{
    fprintf(stderr, "usage: raft-sim --seed N [--trace]\n"
                    "       raft-sim --start S --count N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t seed = 0, start = 1, count = 0;
    int have_seed = 0, trace = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
            have_seed = 1;
        } else if (!strcmp(argv[i], "--trace")) {
            trace = 1;
        } else if (!strcmp(argv[i], "--start") && i + 1 < argc) {
            start = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
            count = strtoull(argv[++i], NULL, 10);
        } else {
            usage();
        }
    }
    if (have_seed) {
        start = seed;
        count = 1;
    }
    if (count == 0)
        usage();
    if (lin_selftest() != 0) {
        printf("0 passed, %" PRIu64 " failed\n", count);
        return 1;
    }
    uint64_t passed = 0, failed = 0, ops = 0, ms = 0;
    for (uint64_t s = start; s < start + count; s++) {
        uint64_t o, t;
        if (run_seed(s, trace, &o, &t)) {
            failed++;
            if (!trace && failed <= 3) { /* replay it to show how it ended */
                uint64_t o2, t2;
                tail_next = tail_n = 0;
                printf("  last %d trace lines of seed %" PRIu64 ":\n", TAIL_LINES, s);
                run_seed(s, TRACE_TAIL, &o2, &t2);
                printf("  replay: build/raft-sim --seed %" PRIu64 " --trace\n", s);
            }
        } else
            passed++;
        ops += o;
        ms += t;
        if (!trace && count >= 100 && (s - start + 1) % (count / 10) == 0) {
            printf("raft-sim: %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64 " failed\n", s - start + 1,
                   count, failed);
            fflush(stdout);
        }
    }
    printf("%" PRIu64 " seeds, %" PRIu64 " simulated client ops, %.1f simulated seconds\n",
           passed + failed, ops, (double)ms / 1000.0);
    printf("exercised: %" PRIu64 " elections, %" PRIu64 " crashes (%" PRIu64
           " torn writes), %" PRIu64 " snapshots taken, %" PRIu64 " installed, %" PRIu64
           " membership changes, %" PRIu64 " transfers, %" PRIu64 " leader reads, %" PRIu64
           " follower reads, %" PRIu64 " ops checked for linearizability, %" PRIu64
           " entries applied while their node's write was in flight\n",
           T.elections, T.crashes, T.torn, T.snapshots_taken, T.snapshots_installed, T.conf_changes,
           T.transfers, T.reads_leader, T.reads_follower, T.lin_ops, T.early_applied);
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
    return failed ? 1 : 0;
}
