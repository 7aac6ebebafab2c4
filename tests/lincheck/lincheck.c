/* lincheck.c: Wing & Gong's search with Lowe's memo, for one key (see lincheck.h).
 *
 * The search state is a set of linearized operations and the model state after them. Completed
 * operations ("ok ops") are sorted by invocation and numbered 0..n_ok-1; operations of unknown
 * outcome ("info ops") follow, sorted by invocation too. An operation may go next iff no ok op
 * left out completed before it was invoked: with min_c the earliest completion among the ok
 * ops left out, the candidates are those invoked at or before min_c. Scanning the ok ops from
 * the first one left out (p) in invocation order, min_c can only shrink, and everything up to
 * the first op invoked after it is a candidate: that is the window [p, wend). Every ok op
 * linearized beyond p lies in the window (it was invoked before a min_c that has only grown
 * since), so the memo key is (state, p, the window's bits, the info ops' bits).
 *
 * Reductions, each of which keeps the answer exact:
 * - A candidate that does not change the state and whose result fits it now (a read of the
 *   current value, a failed CAS of another value) is taken at once, with no other branch:
 *   moving such an op earlier to a point where it is a candidate breaks no real-time order and
 *   changes no state, so if any linearization exists, one with it here does.
 * - Info ops with the same effect (two timed-out increments) are interchangeable, so only the
 *   earliest invoked one left out is tried: the linearized ones of such a group are always a
 *   prefix of it, by invocation.
 * - Lists and counters (keys without WRITE or CAS) only grow, so a state that is not a prefix
 *   of what a READLIST still to be placed read, or is above what a READ still to be placed
 *   read, or not below what an INCR still to be placed returned, is a dead end at once, rather
 *   than after every order of the ops around that op. The ops in the window are tested one by
 *   one; for all those after it, a bound made up front for each position stands in (the
 *   common prefix of their lists, the least of their values).
 * - An info op is never tried where it would not change the state; leaving it out is at least
 *   as good, as it can still go later or never.
 * - The register rule, for keys without INCR and without CAS known not to have swapped (those
 *   observe a value without naming it): an info WRITE v, or an info CAS to v, is tried only
 *   while some op not yet linearized observes v (a READ of v, a CAS from v). Placing it
 *   otherwise only changes the state to something nobody left sees before the next change,
 *   so taking it out of any linearization leaves a valid one. One that no op observes is
 *   dropped at the start, as is an info APPEND of a value no READLIST holds (the same
 *   argument: lists that follow it would hold it).
 *
 * Lists are interned in a trie: a state is a node id, APPEND goes to a child, and each READLIST
 * result is interned once up front, so a read is checked by comparing two ids.
 *
 * The search is iterative (the depth is the number of operations), and every allocation is
 * counted against the memory cap.
 */
#include "tests/lincheck/lincheck.h"
#include "tests/lincheck/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

enum { ABORT_NONE = 0, ABORT_MEM, ABORT_STEPS };
enum { E_NEW, E_DEAD, E_DONE, E_ABORT }; /* what entering a node found */

struct iop {
    uint64_t inv, comp; /* comp: UINT64_MAX for info ops */
    int64_t a, b, r;    /* r: the result; for READLIST the interned list's node id */
    uint32_t orig;      /* index into the caller's ops */
    uint32_t twin;      /* info ops: the previous info op with the same effect, or NONE */
    uint32_t ovid;      /* the value it observes, or NONE (register rule) */
    uint32_t pvid;      /* info ops: the value it may produce, or NONE (register rule) */
    uint8_t f, done;
};

struct tnode {
    uint32_t parent, len;
    uint32_t jump; /* an ancestor, for finding the one at a given length in O(log n) steps */
    int64_t v;
};

/* Interned lists: node 0 is the empty list, a node is its parent's list plus v. The jump
 * pointers follow the skew-binary scheme (Myers, "An applicative random-access stack", 1983):
 * a node jumps to its parent's jump's jump when the parent's two jumps span equal lengths,
 * else to its parent. */
struct trie {
    struct tnode *nodes;
    size_t n, cap;
    uint32_t *slots; /* node ids (0: empty; the root is nobody's child) */
    size_t nslots;
};

struct mslot {
    uint64_t hash, off; /* off: position of the key in the arena, plus one (0: empty) */
};

/* Visited (set, state) pairs; each key is stored as [length, words...] in the arena. */
struct memo {
    uint64_t *arena;
    size_t used, cap;
    struct mslot *slots;
    size_t nslots, n;
};

struct frame {
    uint64_t state;
    uint64_t min_c;
    uint32_t wend;    /* the window of ok candidates is [p, wend) */
    uint32_t cursor;  /* the next op to try */
    uint32_t forced;  /* the only op to try, or NONE */
    uint32_t chosen;  /* the op applied to reach the next frame */
    uint32_t p_saved; /* p before chosen was applied */
};

struct search {
    struct iop *ops;
    size_t n, n_ok;
    uint64_t *bits_ok, *bits_info; /* linearized ops; two spare words after each */
    size_t words_ok, words_info;
    size_t p;    /* the first ok op not linearized */
    size_t left; /* ok ops not linearized */
    int list;
    int track_obs;      /* the register rule applies (see the top of the file) */
    uint32_t *obs_left; /* per observed value: ops not linearized that observe it */
    struct trie trie;
    struct memo memo;
    struct frame *fr;
    uint32_t *path, *best;
    int counter; /* a scalar key without WRITE or CAS: its value only grows */
    /* What every ok op from j on allows of the state now, as the value only grows: lists, the
     * longest common prefix of the READLISTs from j on (NONE: no READLIST left); counters, the
     * least of the READ results and INCR results minus one from j on. */
    uint32_t *meet_after;
    int64_t *cap_after;
    uint32_t *who_after; /* the op that sets that bound (the shortest list, the least value;
                          * of equals the last, as the earlier ones agree with more ops) */
    size_t best_ok, best_len, same; /* path[0..same) == best[0..same) */
    uint64_t best_state;
    uint32_t culprit; /* an op that can never be placed after best, or NONE */
    size_t depth;     /* of the path being searched */
    uint64_t *key;
    uint64_t steps, steps_max;
    size_t mem, mem_max, mem_peak;
    int abort;
};

/* ---- memory, counted against the cap ----------------------------------------------------- */

static void *mem_resize(struct search *s, void *p, size_t old_bytes, size_t new_bytes)
{
    if (s->mem_max && s->mem - old_bytes + new_bytes > s->mem_max) {
        s->abort = ABORT_MEM;
        return NULL;
    }
    void *q = realloc(p, new_bytes ? new_bytes : 1);
    if (!q) {
        s->abort = ABORT_MEM;
        return NULL;
    }
    s->mem = s->mem - old_bytes + new_bytes;
    if (s->mem > s->mem_peak)
        s->mem_peak = s->mem;
    return q;
}

static void *mem_zalloc(struct search *s, size_t bytes)
{
    void *p = mem_resize(s, NULL, 0, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

static void mem_free(struct search *s, void *p, size_t bytes)
{
    if (p)
        s->mem -= bytes;
    free(p);
}

static uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 31);
}

/* ---- bits -------------------------------------------------------------------------------- */

static int bit_get(const uint64_t *b, size_t i)
{
    return (int)(b[i / 64] >> (i % 64) & 1);
}

static int lin_get(const struct search *s, size_t i)
{
    return i < s->n_ok ? bit_get(s->bits_ok, i) : bit_get(s->bits_info, i - s->n_ok);
}

static void lin_flip(struct search *s, size_t i)
{
    if (i < s->n_ok)
        s->bits_ok[i / 64] ^= 1ULL << (i % 64);
    else
        s->bits_info[(i - s->n_ok) / 64] ^= 1ULL << ((i - s->n_ok) % 64);
}

/* 64 bits of b starting at bit off (b has a spare word after the last one read). */
static uint64_t bits_at(const uint64_t *b, size_t off)
{
    size_t w = off / 64, sh = off % 64;
    return sh ? b[w] >> sh | b[w + 1] << (64 - sh) : b[w];
}

/* ---- the list trie ----------------------------------------------------------------------- */

static uint64_t trie_hash(uint32_t parent, int64_t v)
{
    return mix(mix(0x51ED27ULL, parent), (uint64_t)v);
}

static int trie_grow(struct search *s)
{
    struct trie *t = &s->trie;
    size_t nslots = t->nslots ? t->nslots * 2 : 1024;
    uint32_t *slots = mem_zalloc(s, nslots * sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->nslots; i++) {
        uint32_t id = t->slots[i];
        if (!id)
            continue;
        size_t j = trie_hash(t->nodes[id].parent, t->nodes[id].v) & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = id;
    }
    mem_free(s, t->slots, t->nslots * sizeof(*t->slots));
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

/* The node of parent's list plus v, made if new. Returns NONE when out of memory. */
static uint32_t trie_child(struct search *s, uint32_t parent, int64_t v)
{
    struct trie *t = &s->trie;
    if ((t->n + 1) * 2 > t->nslots && trie_grow(s) != 0)
        return NONE;
    size_t j = trie_hash(parent, v) & (t->nslots - 1);
    for (; t->slots[j]; j = (j + 1) & (t->nslots - 1)) {
        const struct tnode *nd = &t->nodes[t->slots[j]];
        if (nd->parent == parent && nd->v == v)
            return t->slots[j];
    }
    if (t->n == t->cap) {
        size_t cap = t->cap * 2;
        struct tnode *nodes =
            mem_resize(s, t->nodes, t->cap * sizeof(*nodes), cap * sizeof(*nodes));
        if (!nodes)
            return NONE;
        t->nodes = nodes;
        t->cap = cap;
    }
    if (t->n >= NONE - 1) {
        s->abort = ABORT_MEM;
        return NONE;
    }
    uint32_t id = (uint32_t)t->n++;
    const struct tnode *p = &t->nodes[parent];
    const struct tnode *pj = &t->nodes[p->jump];
    uint32_t jump =
        parent && p->len - pj->len == pj->len - t->nodes[pj->jump].len ? pj->jump : parent;
    t->nodes[id] = (struct tnode){.parent = parent, .len = p->len + 1, .jump = jump, .v = v};
    t->slots[j] = id;
    return id;
}

/* Whether list a is a prefix of list b. */
/* The first len values of list b (b itself if it is not longer). */
static uint32_t trie_ancestor(const struct trie *t, uint32_t b, uint32_t len)
{
    while (t->nodes[b].len > len)
        b = t->nodes[t->nodes[b].jump].len >= len ? t->nodes[b].jump : t->nodes[b].parent;
    return b;
}

/* Whether list a is a prefix of list b. */
static int trie_is_prefix(const struct trie *t, uint32_t a, uint32_t b)
{
    return trie_ancestor(t, b, t->nodes[a].len) == a;
}

/* The longest common prefix of lists a and b. */
static uint32_t trie_meet(const struct trie *t, uint32_t a, uint32_t b)
{
    uint32_t hi = t->nodes[a].len < t->nodes[b].len ? t->nodes[a].len : t->nodes[b].len;
    uint32_t lo = 0; /* the lengths at which they agree are 0..lo, then never again */
    if (trie_ancestor(t, a, hi) == trie_ancestor(t, b, hi))
        return trie_ancestor(t, a, hi);
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (trie_ancestor(t, a, mid) == trie_ancestor(t, b, mid))
            lo = mid;
        else
            hi = mid;
    }
    return trie_ancestor(t, a, lo);
}

static int trie_init(struct search *s)
{
    struct trie *t = &s->trie;
    t->cap = 1024;
    t->nodes = mem_zalloc(s, t->cap * sizeof(*t->nodes));
    if (!t->nodes)
        return -1;
    t->n = 1; /* the root, the empty list */
    return 0;
}

/* ---- the memo ---------------------------------------------------------------------------- */

static uint64_t key_hash(const uint64_t *k, size_t len)
{
    uint64_t h = len;
    for (size_t i = 0; i < len; i++)
        h = mix(h, k[i]);
    return h;
}

static int memo_grow(struct search *s)
{
    struct memo *m = &s->memo;
    size_t nslots = m->nslots ? m->nslots * 2 : 4096;
    struct mslot *slots = mem_zalloc(s, nslots * sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->nslots; i++) {
        if (!m->slots[i].off)
            continue;
        size_t j = m->slots[i].hash & (nslots - 1);
        while (slots[j].off)
            j = (j + 1) & (nslots - 1);
        slots[j] = m->slots[i];
    }
    mem_free(s, m->slots, m->nslots * sizeof(*m->slots));
    m->slots = slots;
    m->nslots = nslots;
    return 0;
}

/* Returns 1 if k was there, 0 if it was added, -1 out of memory (s->abort is set). */
static int memo_test_and_add(struct search *s, const uint64_t *k, size_t len)
{
    struct memo *m = &s->memo;
    if ((m->n + 1) * 2 > m->nslots && memo_grow(s) != 0)
        return -1;
    uint64_t h = key_hash(k, len);
    size_t j = h & (m->nslots - 1);
    for (; m->slots[j].off; j = (j + 1) & (m->nslots - 1)) {
        const uint64_t *e = &m->arena[m->slots[j].off - 1];
        if (m->slots[j].hash == h && e[0] == len && memcmp(e + 1, k, len * sizeof(*k)) == 0)
            return 1;
    }
    if (m->used + len + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 1 << 16;
        while (m->used + len + 1 > cap)
            cap *= 2;
        uint64_t *arena = mem_resize(s, m->arena, m->cap * sizeof(*arena), cap * sizeof(*arena));
        if (!arena)
            return -1;
        m->arena = arena;
        m->cap = cap;
    }
    m->arena[m->used] = len;
    memcpy(&m->arena[m->used + 1], k, len * sizeof(*k));
    m->slots[j].hash = h;
    m->slots[j].off = m->used + 1;
    m->used += len + 1;
    m->n++;
    return 0;
}

/* The first info op (relative index) invoked after t. */
static size_t info_upper(const struct search *s, uint64_t t)
{
    size_t lo = s->n_ok, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ops[mid].inv <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - s->n_ok;
}

/* The memo key of the current set and state (see the top of the file). */
static size_t make_key(const struct search *s, const struct frame *f)
{
    uint64_t *k = s->key;
    size_t len = 3;
    k[0] = f->state;
    k[1] = s->p;
    size_t nwin = 0, ninfo = 0;
    for (size_t off = s->p + 1; off < f->wend; off += 64) {
        k[len + nwin] = bits_at(s->bits_ok, off);
        nwin++;
    }
    while (nwin && !k[len + nwin - 1])
        nwin--;
    len += nwin;
    size_t iend = info_upper(s, f->min_c);
    for (size_t w = 0; w < (iend + 63) / 64; w++)
        k[len + w] = s->bits_info[w];
    ninfo = (iend + 63) / 64;
    while (ninfo && !k[len + ninfo - 1])
        ninfo--;
    len += ninfo;
    k[2] = nwin | (uint64_t)ninfo << 32;
    return len;
}

/* ---- the model --------------------------------------------------------------------------- */

/* Whether op o fits state st and does not change it (see "taken at once" above). */
static int keeps_state(const struct iop *o, uint64_t st)
{
    switch (o->f) {
    case LIN_READ:
    case LIN_READLIST:
        return (uint64_t)o->r == st;
    case LIN_CAS:
        return o->done && o->r == 0 && (int64_t)st != o->a;
    default:
        return 0;
    }
}

/* Applies o to st: returns 1 with the new state if o's result fits, else 0. */
static int step(struct search *s, const struct iop *o, uint64_t st, uint64_t *ns)
{
    int64_t v = (int64_t)st;
    *ns = st;
    switch (o->f) {
    case LIN_READ:
    case LIN_READLIST:
        return (uint64_t)o->r == st;
    case LIN_WRITE:
        *ns = (uint64_t)o->a;
        return 1;
    case LIN_CAS:
        if (o->done && o->r == 0)
            return v != o->a;
        if (v != o->a)
            return 0; /* a swap claimed, or one of unknown outcome that cannot happen here */
        *ns = (uint64_t)o->b;
        return 1;
    case LIN_INCR: {
        int64_t cur = v == LIN_NIL ? 0 : v;
        if (cur == INT64_MAX)
            return 0;
        *ns = (uint64_t)(cur + 1);
        return !o->done || o->r == cur + 1;
    }
    case LIN_APPEND: {
        uint32_t id = trie_child(s, (uint32_t)st, o->a);
        *ns = id;
        return id != NONE;
    }
    default:
        return 0;
    }
}

/* ---- the search -------------------------------------------------------------------------- */

static int64_t counter_value(uint64_t st)
{
    return (int64_t)st == LIN_NIL ? 0 : (int64_t)st;
}

/* Whether ok op o can never be placed from state st on, since lists and counters only grow. */
static int too_late(const struct search *s, const struct iop *o, uint64_t st)
{
    if (s->list)
        return o->f == LIN_READLIST && !trie_is_prefix(&s->trie, (uint32_t)st, (uint32_t)o->r);
    if (!s->counter)
        return 0;
    int64_t v = counter_value(st), r = counter_value((uint64_t)o->r);
    return (o->f == LIN_READ && r < v) || (o->f == LIN_INCR && r <= v);
}

/* Whether the ops from j on, none of them linearized, allow state st; *who is the one that
 * sets the bound (NONE: no bound). */
static int after_allows(const struct search *s, size_t j, uint64_t st, uint32_t *who)
{
    *who = s->who_after ? s->who_after[j] : NONE;
    if (s->list)
        return s->meet_after[j] == NONE || trie_is_prefix(&s->trie, (uint32_t)st, s->meet_after[j]);
    return !s->counter || counter_value(st) <= s->cap_after[j];
}

/* A dead end because op who (or another from j on) can never be placed. If this is the end of
 * the longest partial linearization, that op is the one to report. */
static int doomed(struct search *s, uint32_t who, size_t j, uint64_t st)
{
    if (s->same != s->best_len || s->depth != s->best_len)
        return E_DEAD;
    if (who == NONE || !too_late(s, &s->ops[who], st)) {
        while (j < s->n_ok && (bit_get(s->bits_ok, j) || !too_late(s, &s->ops[j], st)))
            j++;
        who = j < s->n_ok ? (uint32_t)j : NONE;
    }
    s->culprit = who;
    return E_DEAD;
}

static int enter(struct search *s, struct frame *f)
{
    if (s->left == 0)
        return E_DONE;
    if (s->steps_max && s->steps >= s->steps_max) {
        s->abort = ABORT_STEPS;
        return E_ABORT;
    }
    s->steps++;
    uint64_t min_c = UINT64_MAX;
    uint32_t forced = NONE, late = NONE, who;
    size_t j = s->p;
    for (; j < s->n_ok; j++) {
        const struct iop *o = &s->ops[j];
        if (o->inv > min_c)
            break;
        if (bit_get(s->bits_ok, j))
            continue;
        if (o->comp < min_c)
            min_c = o->comp;
        if (forced == NONE && keeps_state(o, f->state))
            forced = (uint32_t)j;
        if (late == NONE && too_late(s, o, f->state))
            late = (uint32_t)j;
    }
    /* the ops after the window first: a bound they set is the likelier cause to report */
    if (!after_allows(s, j, f->state, &who))
        return doomed(s, who, j, f->state);
    if (late != NONE)
        return doomed(s, late, late, f->state);
    f->min_c = min_c;
    f->wend = (uint32_t)j;
    int seen = memo_test_and_add(s, s->key, make_key(s, f));
    if (seen < 0)
        return E_ABORT;
    if (seen)
        return E_DEAD;
    f->forced = forced;
    f->cursor = forced != NONE ? forced : (uint32_t)s->p;
    return E_NEW;
}

/* The next op to try from f, with the state it leads to; 0 when there is none. */
static int next_child(struct search *s, struct frame *f, uint32_t *op, uint64_t *ns)
{
    if (f->forced != NONE) {
        if (f->cursor != f->forced)
            return 0;
        f->cursor = NONE;
        *op = f->forced;
        *ns = f->state;
        return 1;
    }
    for (uint32_t c = f->cursor; c < f->wend; c++) {
        if (bit_get(s->bits_ok, c) || !step(s, &s->ops[c], f->state, ns))
            continue;
        f->cursor = c + 1;
        *op = c;
        return 1;
    }
    uint32_t c = f->cursor > s->n_ok ? f->cursor : (uint32_t)s->n_ok;
    for (; c < s->n && s->ops[c].inv <= f->min_c && !s->abort; c++) {
        const struct iop *o = &s->ops[c];
        if (lin_get(s, c) || (o->twin != NONE && !lin_get(s, o->twin)))
            continue;
        if (s->track_obs && o->pvid != NONE && !s->obs_left[o->pvid])
            continue; /* nobody left to see what it would write */
        if (!step(s, o, f->state, ns) || *ns == f->state)
            continue;
        f->cursor = c + 1;
        *op = c;
        return 1;
    }
    f->cursor = NONE;
    return 0;
}

static void note_best(struct search *s, size_t depth, uint64_t state)
{
    size_t placed = s->n_ok - s->left;
    if (placed <= s->best_ok && s->best_len)
        return;
    memcpy(&s->best[s->same], &s->path[s->same], (depth - s->same) * sizeof(*s->path));
    s->best_len = s->same = depth;
    s->best_ok = placed;
    s->best_state = state;
    s->culprit = NONE;
}

static void apply(struct search *s, struct frame *f, uint32_t op)
{
    f->chosen = op;
    f->p_saved = (uint32_t)s->p;
    lin_flip(s, op);
    if (s->track_obs && s->ops[op].ovid != NONE)
        s->obs_left[s->ops[op].ovid]--;
    if (op < s->n_ok) {
        s->left--;
        while (s->p < s->n_ok && bit_get(s->bits_ok, s->p))
            s->p++;
    }
}

static void undo(struct search *s, const struct frame *f)
{
    lin_flip(s, f->chosen);
    if (s->track_obs && s->ops[f->chosen].ovid != NONE)
        s->obs_left[s->ops[f->chosen].ovid]++;
    if (f->chosen < s->n_ok)
        s->left++;
    s->p = f->p_saved;
}

/* Returns LIN_OK, LIN_VIOLATION or LIN_UNKNOWN. */
static int search(struct search *s, uint64_t initial)
{
    s->depth = 0;
    s->fr[0].state = initial;
    note_best(s, 0, initial);
    int e = enter(s, &s->fr[0]);
    while (e != E_DONE && e != E_ABORT) {
        struct frame *f = &s->fr[s->depth];
        uint32_t op;
        uint64_t ns;
        if (e == E_NEW && next_child(s, f, &op, &ns)) {
            apply(s, f, op);
            s->path[s->depth] = op;
            if (s->same == s->depth && s->depth < s->best_len && s->best[s->depth] == op)
                s->same++;
            s->depth++;
            note_best(s, s->depth, ns);
            s->fr[s->depth].state = ns;
            e = enter(s, &s->fr[s->depth]);
            continue;
        }
        if (s->abort)
            return LIN_UNKNOWN;
        if (s->depth == 0)
            return LIN_VIOLATION;
        /* back to the parent, which goes on with its next child */
        s->depth--;
        if (s->same > s->depth)
            s->same = s->depth;
        undo(s, &s->fr[s->depth]);
        e = E_NEW;
    }
    return e == E_DONE ? LIN_OK : LIN_UNKNOWN;
}

/* ---- setup: copy, drop, sort ------------------------------------------------------------- */

static int cmp_iop(const void *x, const void *y)
{
    const struct iop *a = x, *b = y;
    int c = lin_order(a->inv, b->inv);
    c = c ? c : lin_order(a->comp, b->comp);
    return c ? c : lin_order(a->orig, b->orig);
}

static int cmp_i64(const void *x, const void *y)
{
    return lin_order_i64(*(const int64_t *)x, *(const int64_t *)y);
}

/* Links each info op to the one before it with the same effect (by invocation). */
struct effect {
    int64_t a, b;
    uint64_t inv;
    uint32_t idx;
    uint8_t f;
};

static int cmp_effect(const void *x, const void *y)
{
    const struct effect *a = x, *b = y;
    int c = lin_order(a->f, b->f);
    c = c ? c : lin_order_i64(a->a, b->a);
    c = c ? c : lin_order_i64(a->b, b->b);
    c = c ? c : lin_order(a->inv, b->inv);
    return c ? c : lin_order(a->idx, b->idx);
}

static int link_twins(struct search *s)
{
    size_t k = s->n - s->n_ok;
    struct effect *e = mem_resize(s, NULL, 0, (k + 1) * sizeof(*e));
    if (!e)
        return -1;
    for (size_t i = 0; i < k; i++) {
        const struct iop *o = &s->ops[s->n_ok + i];
        e[i] = (struct effect){
            .a = o->a, .b = o->b, .inv = o->inv, .idx = (uint32_t)(s->n_ok + i), .f = o->f};
    }
    qsort(e, k, sizeof(*e), cmp_effect);
    for (size_t i = 1; i < k; i++)
        if (e[i].f == e[i - 1].f && e[i].a == e[i - 1].a && e[i].b == e[i - 1].b)
            s->ops[e[i].idx].twin = e[i - 1].idx;
    mem_free(s, e, (k + 1) * sizeof(*e));
    return 0;
}

/* Interns each READLIST result: its r becomes the list's node id. */
static int intern_lists(struct search *s, const struct lin_op *ops)
{
    for (size_t i = 0; i < s->n; i++) {
        struct iop *o = &s->ops[i];
        if (o->f != LIN_READLIST)
            continue;
        const struct lin_op *src = &ops[o->orig];
        uint32_t id = 0;
        for (size_t j = 0; j < src->list_len && id != NONE; j++)
            id = trie_child(s, id, src->list[j]);
        if (id == NONE)
            return -1;
        o->r = id;
    }
    return 0;
}

/* The value an op observes (a READ's result, a CAS's old value) and the one it may produce
 * (the value of an info WRITE, the new value of an info CAS), for the register rule. */
static int observes(const struct iop *o, int64_t *v)
{
    *v = o->f == LIN_READ ? o->r : o->a;
    return o->f == LIN_READ || o->f == LIN_CAS;
}

static int produces(const struct iop *o, int64_t *v)
{
    *v = o->f == LIN_WRITE ? o->a : o->b;
    return !o->done && (o->f == LIN_WRITE || o->f == LIN_CAS);
}

static uint32_t value_id(const int64_t *sorted, size_t n, int64_t v)
{
    const int64_t *at = bsearch(&v, sorted, n, sizeof(v), cmp_i64);
    return at ? (uint32_t)(at - sorted) : NONE;
}

/* The values someone observes, sorted and unique: what READs and CASes name, or (lists)
 * what READLISTs hold. */
static int64_t *observed_values(struct search *s, size_t cap, size_t *n_out)
{
    int64_t *vals = mem_resize(s, NULL, 0, cap * sizeof(*vals));
    if (!vals)
        return NULL;
    size_t k = 0;
    for (size_t i = 1; s->list && i < s->trie.n; i++)
        vals[k++] = s->trie.nodes[i].v;
    for (size_t i = 0; !s->list && i < s->n; i++)
        k += observes(&s->ops[i], &vals[k]);
    qsort(vals, k, sizeof(*vals), cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (!u || vals[i] != vals[u - 1])
            vals[u++] = vals[i];
    *n_out = u;
    return vals;
}

/* Drops the info ops whose value nobody observes; where the register rule applies, gives each
 * op its value ids and counts the observers of each value. */
static int drop_unobserved(struct search *s)
{
    size_t n_obs = 0, cap = (s->list ? s->trie.n : s->n) + 1;
    int64_t *obs = observed_values(s, cap, &n_obs);
    if (!obs)
        return -1;
    if (s->track_obs) {
        s->obs_left = mem_zalloc(s, (n_obs + 1) * sizeof(*s->obs_left));
        if (!s->obs_left) {
            mem_free(s, obs, cap * sizeof(*obs));
            return -1;
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct iop *o = &s->ops[i];
        int64_t v;
        if (s->list && o->f == LIN_APPEND && !o->done && value_id(obs, n_obs, o->a) == NONE)
            continue;
        if (s->track_obs && produces(o, &v) && (o->pvid = value_id(obs, n_obs, v)) == NONE)
            continue;
        if (s->track_obs && observes(o, &v))
            s->obs_left[o->ovid = value_id(obs, n_obs, v)]++;
        s->ops[w++] = *o;
    }
    mem_free(s, obs, cap * sizeof(*obs));
    s->n = w;
    return 0;
}

/* Sorts by invocation, the ok ops first. */
static int order_ops(struct search *s)
{
    qsort(s->ops, s->n, sizeof(*s->ops), cmp_iop);
    struct iop *tmp = mem_resize(s, NULL, 0, (s->n + 1) * sizeof(*tmp));
    if (!tmp)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->ops[i].done)
            tmp[k++] = s->ops[i];
    s->n_ok = k;
    for (size_t i = 0; i < s->n; i++)
        if (!s->ops[i].done)
            tmp[k++] = s->ops[i];
    memcpy(s->ops, tmp, s->n * sizeof(*tmp));
    mem_free(s, tmp, (s->n + 1) * sizeof(*tmp));
    return 0;
}

static int bad_input(struct lin_result *res, const char *why)
{
    snprintf(res->why, sizeof(res->why), "%s", why);
    return res->verdict = LIN_BADINPUT;
}

/* Learns the model from the ops, and whether the register rule applies. */
static int classify(struct search *s, const struct lin_op *ops, size_t n, struct lin_result *res)
{
    int scalar = 0, incr = 0, not_swapped = 0, sets = 0;
    for (size_t i = 0; i < n; i++) {
        int f = ops[i].f;
        if (f < LIN_READ || f > LIN_READLIST)
            return bad_input(res, "an operation of unknown kind");
        if (ops[i].done && ops[i].complete <= ops[i].invoke)
            return bad_input(res, "an operation completed before it was invoked");
        s->list |= f == LIN_APPEND || f == LIN_READLIST;
        scalar |= !(f == LIN_APPEND || f == LIN_READLIST);
        incr |= f == LIN_INCR;
        sets |= f == LIN_WRITE || f == LIN_CAS;
        not_swapped |= f == LIN_CAS && ops[i].done && !ops[i].result;
    }
    if (s->list && scalar)
        return bad_input(res, "a key with both list and scalar operations");
    if (n >= NONE - 1)
        return bad_input(res, "too many operations on one key");
    /* An INCR, or a CAS known not to have swapped, observes a value without naming it. */
    s->track_obs = !s->list && !incr && !not_swapped;
    s->counter = !s->list && !sets;
    return 0;
}

/* Copies the ops the search uses into s->ops (ok ops first), dropping what says nothing.
 * Returns 0, -1 out of memory, or LIN_BADINPUT with res->why set. */
static int prepare(struct search *s, const struct lin_op *ops, size_t n, struct lin_result *res)
{
    int rc = classify(s, ops, n, res);
    if (rc != 0)
        return rc;
    s->ops = mem_resize(s, NULL, 0, (n + 1) * sizeof(*s->ops));
    if (!s->ops)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct lin_op *o = &ops[i];
        if (!o->done && (o->f == LIN_READ || o->f == LIN_READLIST))
            continue; /* observed nothing we know of, changed nothing */
        s->ops[s->n++] = (struct iop){.inv = o->invoke,
                                      .comp = o->done ? o->complete : UINT64_MAX,
                                      .a = o->a,
                                      .b = o->b,
                                      .r = o->result,
                                      .orig = (uint32_t)i,
                                      .twin = NONE,
                                      .ovid = NONE,
                                      .pvid = NONE,
                                      .f = (uint8_t)o->f,
                                      .done = (uint8_t)(o->done != 0)};
    }
    if (s->list && intern_lists(s, ops) != 0)
        return -1;
    if (drop_unobserved(s) != 0 || order_ops(s) != 0)
        return -1;
    return link_twins(s);
}

/* ---- results ----------------------------------------------------------------------------- */

static int fill_order(struct search *s, struct lin_result *res)
{
    res->order = malloc((s->best_len + 1) * sizeof(*res->order));
    if (!res->order)
        return -1;
    for (size_t i = 0; i < s->best_len; i++)
        res->order[i] = s->ops[s->best[i]].orig;
    res->order_len = s->best_len;
    res->is_list = s->list;
    if (!s->list) {
        res->state = (int64_t)s->best_state;
        return 0;
    }
    uint32_t id = (uint32_t)s->best_state;
    size_t len = s->trie.nodes[id].len;
    res->state_list = malloc((len + 1) * sizeof(*res->state_list));
    if (!res->state_list)
        return -1;
    res->state_list_len = len;
    for (; id; id = s->trie.nodes[id].parent)
        res->state_list[--len] = s->trie.nodes[id].v;
    return 0;
}

/* The op to report as the first that cannot be linearized: the one a dead end right after the
 * best partial linearization blamed, else, of the ok ops outside it, the one that completed
 * first (everything invoked after that had to wait for it). */
static uint32_t find_stuck(struct search *s)
{
    memset(s->bits_ok, 0, (s->words_ok + 2) * sizeof(uint64_t));
    for (size_t i = 0; i < s->best_len; i++)
        if (s->best[i] < s->n_ok)
            s->bits_ok[s->best[i] / 64] |= 1ULL << (s->best[i] % 64);
    uint32_t stuck = s->culprit;
    for (size_t i = 0; i < s->n_ok && s->culprit == NONE; i++)
        if (!bit_get(s->bits_ok, i) && (stuck == NONE || s->ops[i].comp < s->ops[stuck].comp))
            stuck = (uint32_t)i;
    return stuck;
}

static void explain(struct search *s, const struct lin_op *ops, struct lin_result *res)
{
    char op[200];
    switch (res->verdict) {
    case LIN_OK:
        snprintf(res->why, sizeof(res->why), "linearizable");
        break;
    case LIN_VIOLATION:
        lin_op_format(&ops[res->stuck], op, sizeof(op));
        snprintf(res->why, sizeof(res->why),
                 "not linearizable: at most %zu of %zu completed ops fit; cannot place %s",
                 s->best_ok, s->n_ok, op);
        break;
    default:
        if (s->abort == ABORT_STEPS)
            snprintf(res->why, sizeof(res->why), "search bound of %" PRIu64 " steps reached",
                     s->steps_max);
        else
            snprintf(res->why, sizeof(res->why),
                     "memory cap of %zu MB reached after %" PRIu64 " steps", s->mem_max >> 20,
                     s->steps);
    }
}

static int bounds_init(struct search *s)
{
    if (!s->list && !s->counter)
        return 0;
    s->who_after = mem_zalloc(s, (s->n_ok + 1) * sizeof(*s->who_after));
    if (!s->who_after)
        return -1;
    s->who_after[s->n_ok] = NONE;
    if (s->list) {
        s->meet_after = mem_zalloc(s, (s->n_ok + 1) * sizeof(*s->meet_after));
        if (!s->meet_after)
            return -1;
        s->meet_after[s->n_ok] = NONE;
        for (size_t j = s->n_ok; j-- > 0;) {
            uint32_t next = s->meet_after[j + 1], mine = (uint32_t)s->ops[j].r;
            uint32_t who = s->who_after[j + 1];
            int reads = s->ops[j].f == LIN_READLIST;
            s->meet_after[j] = !reads         ? next
                               : next == NONE ? mine
                                              : trie_meet(&s->trie, mine, next);
            int shorter = who == NONE || s->trie.nodes[mine].len < s->trie.nodes[s->ops[who].r].len;
            s->who_after[j] = reads && shorter ? (uint32_t)j : who;
        }
    }
    if (s->counter) {
        s->cap_after = mem_zalloc(s, (s->n_ok + 1) * sizeof(*s->cap_after));
        if (!s->cap_after)
            return -1;
        s->cap_after[s->n_ok] = INT64_MAX;
        for (size_t j = s->n_ok; j-- > 0;) {
            const struct iop *o = &s->ops[j];
            int64_t cap = o->f == LIN_READ   ? counter_value((uint64_t)o->r)
                          : o->f == LIN_INCR ? counter_value((uint64_t)o->r) - 1
                                             : INT64_MAX;
            int lower = cap < s->cap_after[j + 1]; /* ties: the later op, likelier at fault */
            s->cap_after[j] = lower ? cap : s->cap_after[j + 1];
            s->who_after[j] = lower ? (uint32_t)j : s->who_after[j + 1];
        }
    }
    return 0;
}

static int setup(struct search *s)
{
    s->words_ok = (s->n_ok + 63) / 64;
    s->words_info = (s->n - s->n_ok + 63) / 64;
    s->bits_ok = mem_zalloc(s, (s->words_ok + 2) * sizeof(uint64_t));
    s->bits_info = mem_zalloc(s, (s->words_info + 2) * sizeof(uint64_t));
    s->fr = mem_zalloc(s, (s->n + 1) * sizeof(*s->fr));
    s->path = mem_zalloc(s, (s->n + 1) * sizeof(*s->path));
    s->best = mem_zalloc(s, (s->n + 1) * sizeof(*s->best));
    s->key = mem_zalloc(s, (s->words_ok + s->words_info + 5) * sizeof(*s->key));
    s->left = s->n_ok;
    if (bounds_init(s) != 0)
        return -1;
    return s->bits_ok && s->bits_info && s->fr && s->path && s->best && s->key ? 0 : -1;
}

int lin_check(const struct lin_op *ops, size_t n, const struct lin_config *cfg,
              struct lin_result *res)
{
    memset(res, 0, sizeof(*res));
    res->stuck = SIZE_MAX;
    struct search s = {.steps_max = cfg->steps_max, .mem_max = cfg->mem_bytes_max};
    int rc = trie_init(&s) != 0 ? -1 : prepare(&s, ops, n, res);
    if (rc == 0)
        rc = setup(&s);
    if (rc == LIN_BADINPUT)
        goto out;
    if (rc == 0) {
        uint64_t initial = s.list ? 0 : (uint64_t)cfg->initial;
        res->verdict = search(&s, initial);
    } else {
        s.abort = ABORT_MEM;
        res->verdict = LIN_UNKNOWN;
    }
    if (res->verdict == LIN_VIOLATION) {
        uint32_t stuck = find_stuck(&s);
        res->stuck = stuck == NONE ? SIZE_MAX : s.ops[stuck].orig;
        if (stuck == NONE) /* cannot happen: a failed search leaves some ok op out */
            res->verdict = LIN_UNKNOWN;
    }
    if (s.best && fill_order(&s, res) != 0 && res->verdict == LIN_OK)
        res->verdict = LIN_UNKNOWN; /* the answer stands, but say nothing we cannot show */
    explain(&s, ops, res);
    res->n_checked = s.n;
    res->steps = s.steps;
    res->mem_bytes_peak = s.mem_peak;
out:
    free(s.ops);
    free(s.bits_ok);
    free(s.bits_info);
    free(s.fr);
    free(s.path);
    free(s.best);
    free(s.meet_after);
    free(s.cap_after);
    free(s.who_after);
    free(s.obs_left);
    free(s.key);
    free(s.trie.nodes);
    free(s.trie.slots);
    free(s.memo.arena);
    free(s.memo.slots);
    return res->verdict;
}

void lin_result_free(struct lin_result *res)
{
    free(res->order);
    free(res->state_list);
    res->order = NULL;
    res->state_list = NULL;
    res->order_len = res->state_list_len = 0;
}

const char *lin_f_name(int f)
{
    static const char *const names[] = {"read", "write", "incr", "cas", "append", "readlist"};
    return f >= LIN_READ && f <= LIN_READLIST ? names[f] : "?";
}

/* Appends to buf at *pos, never past len (snprintf's truncation, kept sticky). */
__attribute__((format(printf, 4, 5))) static void put(char *buf, size_t len, size_t *pos,
                                                      const char *fmt, ...)
{
    if (*pos >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    *pos = k < 0 ? len : *pos + (size_t)k;
}

static void put_list(char *buf, size_t len, size_t *pos, const int64_t *l, size_t n)
{
    enum { ENDS = 5 }; /* values shown at each end of a long list */
    put(buf, len, pos, "[");
    for (size_t i = 0; i < n; i++) {
        if (n > 4 * ENDS && i == ENDS) {
            put(buf, len, pos, ",...(%zu values)...", n);
            i = n - ENDS;
        }
        put(buf, len, pos, "%s%" PRId64, i ? "," : "", l[i]);
    }
    put(buf, len, pos, "]");
}

void lin_list_format(const int64_t *list, size_t n, char *buf, size_t len)
{
    size_t pos = 0;
    if (len)
        buf[0] = 0;
    put_list(buf, len, &pos, list, n);
}

void lin_op_format(const struct lin_op *op, char *buf, size_t len)
{
    size_t pos = 0;
    if (!len)
        return;
    buf[0] = 0;
    put(buf, len, &pos, "process %" PRId64 ": %s", op->process, lin_f_name(op->f));
    switch (op->f) {
    case LIN_WRITE:
    case LIN_APPEND:
        put(buf, len, &pos, " %" PRId64, op->a);
        break;
    case LIN_CAS:
        put(buf, len, &pos, " %" PRId64 ":%" PRId64 "%s", op->a, op->b,
            op->done && !op->result ? " -> not swapped" : "");
        break;
    case LIN_READ:
    case LIN_INCR:
        if (op->done && op->result == LIN_NIL)
            put(buf, len, &pos, " -> nil");
        else if (op->done)
            put(buf, len, &pos, " -> %" PRId64, op->result);
        break;
    case LIN_READLIST:
        if (op->done) {
            put(buf, len, &pos, " -> ");
            put_list(buf, len, &pos, op->list, op->list_len);
        }
        break;
    }
    if (op->done)
        put(buf, len, &pos, " [%" PRIu64 ", %" PRIu64 "]", op->invoke, op->complete);
    else
        put(buf, len, &pos, " [%" PRIu64 ", unknown]", op->invoke);
    if (op->line)
        put(buf, len, &pos, " (line %zu)", op->line);
}
