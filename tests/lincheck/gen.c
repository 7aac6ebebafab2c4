/* gen.c: a seeded simulation of clients and a correct object, with optional injected bugs.
 *
 * The simulation is an event queue ordered by time: a client starts an operation (choosing its
 * arguments from what it could know then), the operation takes effect on the key's state, the
 * answer arrives. Bugs are injected afterwards by changing recorded results; gen.h says when.
 */
#include "tests/lincheck/gen.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lincheck/history.h"
#include "tests/lincheck/util.h"

#define NONE      UINT32_MAX
#define THINK_NS  20000 /* a client waits up to this between operations */
#define UNWRITTEN (-7)  /* generated values are >= 0, so nobody writes this */
#define START_NS  1000000

enum { OUT_OK, OUT_FAIL, OUT_INFO };
enum { EV_START, EV_EFFECT, EV_END };

struct gop {
    int64_t a, b; /* write/append a; cas a -> b */
    int64_t r;    /* read/incr: the result (LIN_NIL: nil); readlist: how much of the log */
    int64_t prev; /* write/cas: the value before the effect */
    uint64_t inv, comp, eff;
    uint64_t seq; /* the order of effects, from 1; 0: no effect */
    uint32_t key, proc;
    uint32_t src; /* register: the op that made the value read or replaced (NONE: initial) */
    uint8_t f, out;
    uint8_t evaluated; /* the op reached the object (a cas that did not swap fails) */
    uint8_t extra;     /* readlist: shows UNWRITTEN at its end (bug) */
};

struct gkey {
    int model;
    int64_t v; /* register, counter */
    uint32_t src;
    int64_t *log; /* list: the values appended, in effect order */
    size_t log_n, log_cap;
    int64_t lost, dup; /* list bugs: a value left out of, or shown twice in, every read */
    int has_lost, has_dup;
};

struct gev {
    uint64_t t, seq;
    uint32_t idx;
    uint8_t kind;
};

struct gen {
    const struct lin_gen_config *c;
    uint64_t rng;
    struct gop *ops;
    size_t n_ops, cap_ops;
    struct gkey *keys;
    struct gev *heap;
    size_t n_heap, cap_heap;
    uint64_t ev_seq, eff_seq, next_val;
    uint32_t *order; /* ops with an effect, by seq */
    size_t n_order;
    char *out;
    size_t n_out, cap_out;
    int oom;
    char *err;
    size_t err_len;
};

static uint64_t rnd(struct gen *g)
{
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 2685821657736338717ULL;
}

/* Uniform in [0, n) (n > 0). */
static uint64_t below(struct gen *g, uint64_t n)
{
    return rnd(g) % n;
}

static int grow(struct gen *g, void **p, size_t *cap, size_t need, size_t size)
{
    if (lin_grow(p, cap, need, size) == 0)
        return 0;
    g->oom = 1;
    return -1;
}

/* ---- the event queue (a binary heap by time, then by insertion) -------------------------- */

static int ev_less(const struct gev *a, const struct gev *b)
{
    return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static void push(struct gen *g, uint64_t t, int kind, uint32_t idx)
{
    if (grow(g, (void **)&g->heap, &g->cap_heap, g->n_heap + 1, sizeof(*g->heap)) != 0)
        return;
    size_t i = g->n_heap++;
    struct gev e = {.t = t, .seq = g->ev_seq++, .idx = idx, .kind = (uint8_t)kind};
    while (i && ev_less(&e, &g->heap[(i - 1) / 2])) {
        g->heap[i] = g->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    g->heap[i] = e;
}

static struct gev pop(struct gen *g)
{
    struct gev top = g->heap[0], last = g->heap[--g->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= g->n_heap)
            break;
        if (c + 1 < g->n_heap && ev_less(&g->heap[c + 1], &g->heap[c]))
            c++;
        if (!ev_less(&g->heap[c], &last))
            break;
        g->heap[i] = g->heap[c];
        i = c;
    }
    if (g->n_heap)
        g->heap[i] = last;
    return top;
}

/* ---- the simulation ---------------------------------------------------------------------- */

static int pick_f(struct gen *g, int model)
{
    unsigned r = (unsigned)below(g, 100);
    switch (model) {
    case LIN_MODEL_COUNTER:
        return r < 40 ? LIN_READ : LIN_INCR;
    case LIN_MODEL_LIST:
        return r < 40 ? LIN_READLIST : LIN_APPEND;
    default:
        return r < 50 ? LIN_READ : r < 80 ? LIN_WRITE : LIN_CAS;
    }
}

static int64_t fresh_or_random(struct gen *g)
{
    return g->c->values ? (int64_t)below(g, g->c->values) : (int64_t)g->next_val++;
}

static void start(struct gen *g, uint32_t proc, uint64_t t)
{
    if (g->n_ops == g->c->ops ||
        grow(g, (void **)&g->ops, &g->cap_ops, g->n_ops + 1, sizeof(*g->ops)) != 0)
        return;
    uint32_t idx = (uint32_t)g->n_ops++;
    struct gop *o = &g->ops[idx];
    memset(o, 0, sizeof(*o));
    o->key = (uint32_t)below(g, g->c->keys);
    struct gkey *k = &g->keys[o->key];
    o->proc = proc;
    o->f = (uint8_t)pick_f(g, k->model);
    o->src = NONE;
    if (o->f == LIN_WRITE) {
        o->a = fresh_or_random(g);
    } else if (o->f == LIN_APPEND) {
        o->a = (int64_t)g->next_val++;
    } else if (o->f == LIN_CAS) {
        /* half the time the value the client last saw, so that some swaps succeed */
        if (k->v != LIN_NIL && below(g, 2))
            o->a = k->v;
        else
            o->a =
                g->c->values ? (int64_t)below(g, g->c->values) : (int64_t)below(g, g->next_val + 1);
        o->b = fresh_or_random(g);
    }
    uint64_t lat = 2 + below(g, g->c->latency_ns_max - 1);
    if (below(g, 100) == 0)
        lat *= 10;
    o->inv = t;
    o->comp = t + lat;
    unsigned r = (unsigned)below(g, 1000);
    o->out = r < g->c->fail_pm ? OUT_FAIL : r < g->c->fail_pm + g->c->info_pm ? OUT_INFO : OUT_OK;
    if (o->out == OUT_OK)
        push(g, t + 1 + below(g, lat - 1), EV_EFFECT, idx);
    else if (o->out == OUT_INFO && below(g, 2))
        push(g, t + 1 + below(g, 4 * lat), EV_EFFECT, idx); /* maybe after the timeout */
    push(g, o->comp, EV_END, idx);
}

static void effect(struct gen *g, uint32_t idx, uint64_t t)
{
    struct gop *o = &g->ops[idx];
    struct gkey *k = &g->keys[o->key];
    o->evaluated = 1;
    switch (o->f) {
    case LIN_READ:
        o->r = k->v;
        o->src = k->src;
        break;
    case LIN_WRITE:
    case LIN_CAS:
        o->prev = k->v;
        o->src = k->src;
        if (o->f == LIN_CAS && k->v != o->a) {
            if (o->out == OUT_OK)
                o->out = OUT_FAIL; /* definitely not swapped */
            break;
        }
        k->v = o->f == LIN_CAS ? o->b : o->a;
        k->src = idx;
        break;
    case LIN_INCR:
        k->v = (k->v == LIN_NIL ? 0 : k->v) + 1;
        o->r = k->v;
        break;
    case LIN_APPEND:
        if (grow(g, (void **)&k->log, &k->log_cap, k->log_n + 1, sizeof(*k->log)) != 0)
            return;
        k->log[k->log_n++] = o->a;
        break;
    case LIN_READLIST:
        o->r = (int64_t)k->log_n;
        break;
    }
    o->eff = t;
    o->seq = ++g->eff_seq;
}

static int simulate(struct gen *g)
{
    const struct lin_gen_config *c = g->c;
    for (unsigned i = 0; i < c->keys; i++) {
        struct gkey *k = &g->keys[i];
        k->model = c->model == LIN_GEN_MIXED ? (int)(i % 3) : c->model;
        k->v = k->model == LIN_MODEL_COUNTER ? 0 : LIN_NIL;
        k->src = NONE;
    }
    for (unsigned p = 0; p < c->procs; p++)
        push(g, START_NS + below(g, THINK_NS), EV_START, p);
    while (g->n_heap && !g->oom) {
        struct gev e = pop(g);
        if (e.kind == EV_START)
            start(g, e.idx, e.t);
        else if (e.kind == EV_EFFECT)
            effect(g, e.idx, e.t);
        else
            push(g, e.t + below(g, THINK_NS), EV_START, g->ops[e.idx].proc);
    }
    if (g->oom)
        return -1;
    g->order = malloc((g->eff_seq + 1) * sizeof(*g->order));
    if (!g->order)
        return -1;
    for (size_t i = 0; i < g->n_ops; i++)
        if (g->ops[i].seq)
            g->order[g->ops[i].seq - 1] = (uint32_t)i;
    g->n_order = g->eff_seq;
    return 0;
}

/* ---- bugs -------------------------------------------------------------------------------- */

static int is_ok(const struct gop *o, int f)
{
    return o->f == f && o->out == OUT_OK;
}

/* How many operations may produce value v on key (writes and cas targets, whatever their
 * outcome: one that timed out may have taken effect anywhere). */
static size_t producers(const struct gen *g, uint32_t key, int64_t v)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_ops; i++) {
        const struct gop *o = &g->ops[i];
        n += o->key == key && ((o->f == LIN_WRITE && o->a == v) || (o->f == LIN_CAS && o->b == v));
    }
    return n;
}

/* The next op after position pos of the effect order on key whose f is one of fs. */
static const struct gop *next_effect(const struct gen *g, size_t pos, uint32_t key, int f1, int f2)
{
    for (size_t j = pos + 1; j < g->n_order; j++) {
        const struct gop *o = &g->ops[g->order[j]];
        if (o->key == key && (o->f == f1 || o->f == f2))
            return o;
    }
    return NULL;
}

/* Adds d to every known counter value on key after position pos of the effect order. */
static void shift_counter(struct gen *g, size_t pos, uint32_t key, int64_t d)
{
    for (size_t j = pos + 1; j < g->n_order; j++) {
        struct gop *o = &g->ops[g->order[j]];
        if (o->key == key && o->out == OUT_OK && (o->f == LIN_READ || o->f == LIN_INCR))
            o->r += d;
    }
}

/* A read that starts after some change to its key completed cannot return the initial value:
 * register values are never nil again, counters only grow, lists only get longer. */
static int bug_stale_read(struct gen *g, struct gop *o)
{
    if (!is_ok(o, LIN_READ) && !is_ok(o, LIN_READLIST))
        return 0;
    for (size_t i = 0; i < g->n_ops; i++) {
        const struct gop *w = &g->ops[i];
        int change = w->out == OUT_OK && (w->f == LIN_WRITE || w->f == LIN_CAS ||
                                          w->f == LIN_INCR || w->f == LIN_APPEND);
        if (change && w->key == o->key && w->comp < o->inv) {
            o->r = g->keys[o->key].model == LIN_MODEL_REGISTER ? LIN_NIL : 0;
            return 1;
        }
    }
    return 0;
}

/* Register: W's value is unique and a read R invoked after W completed saw it; the value before
 * W is unique too and its writer X completed before W was invoked. With W lost, R sees X's
 * value, which only X wrote, and X must precede W which precedes R. Counter: if the next
 * increment after W is acknowledged, it returns W's value again, which no counter allows.
 * List: a read invoked after W completed lacks W's (unique) value. */
static int bug_lost_write(struct gen *g, struct gop *o, size_t pos)
{
    struct gkey *k = &g->keys[o->key];
    if (is_ok(o, LIN_APPEND)) {
        for (size_t i = 0; i < g->n_ops; i++)
            if (is_ok(&g->ops[i], LIN_READLIST) && g->ops[i].key == o->key &&
                g->ops[i].inv > o->comp) {
                k->lost = o->a;
                k->has_lost = 1;
                return 1;
            }
        return 0;
    }
    if (is_ok(o, LIN_INCR)) {
        const struct gop *next = next_effect(g, pos, o->key, LIN_INCR, LIN_INCR);
        if (!next || next->out != OUT_OK)
            return 0;
        shift_counter(g, pos, o->key, -1);
        return 1;
    }
    if (!is_ok(o, LIN_WRITE) || producers(g, o->key, o->a) != 1)
        return 0;
    if (o->src != NONE) {
        const struct gop *x = &g->ops[o->src];
        if (x->out != OUT_OK || x->comp >= o->inv || producers(g, o->key, o->prev) != 1)
            return 0;
    }
    uint32_t self = (uint32_t)(o - g->ops);
    int seen = 0;
    for (size_t i = 0; i < g->n_ops; i++)
        seen |= is_ok(&g->ops[i], LIN_READ) && g->ops[i].src == self && g->ops[i].inv > o->comp;
    if (!seen)
        return 0;
    for (size_t i = 0; i < g->n_ops; i++)
        if (g->ops[i].f == LIN_READ && g->ops[i].src == self)
            g->ops[i].r = o->prev;
    return 1;
}

/* Appended values are unique, so no list ever holds one twice. */
static int bug_dup_append(struct gen *g, struct gop *o)
{
    if (!is_ok(o, LIN_APPEND))
        return 0;
    for (size_t i = 0; i < g->n_ops; i++)
        if (is_ok(&g->ops[i], LIN_READLIST) && g->ops[i].key == o->key && g->ops[i].seq > o->seq) {
            g->keys[o->key].dup = o->a;
            g->keys[o->key].has_dup = 1;
            return 1;
        }
    return 0;
}

/* After W (result v) the counter skips v + 1. The next acknowledged read or increment Z needs
 * v + 1 increments before it; acknowledged ones each report their own value and none reports
 * v + 1, so only an increment of unknown outcome could fill the gap: require that none was
 * invoked before Z completed. */
static int bug_double_incr(struct gen *g, struct gop *o, size_t pos)
{
    if (!is_ok(o, LIN_INCR))
        return 0;
    const struct gop *z = NULL;
    for (size_t j = pos + 1; j < g->n_order && !z; j++) {
        const struct gop *c = &g->ops[g->order[j]];
        if (c->key == o->key && (is_ok(c, LIN_READ) || is_ok(c, LIN_INCR)))
            z = c;
    }
    if (!z)
        return 0;
    for (size_t i = 0; i < g->n_ops; i++) {
        const struct gop *c = &g->ops[i];
        if (c->key == o->key && c->f == LIN_INCR && c->out == OUT_INFO && c->inv < z->comp)
            return 0;
    }
    shift_counter(g, pos, o->key, 1);
    return 1;
}

/* C1 swapped from x, and only one op ever produces x: the state is x in one stretch only, which
 * the first swap ends, so a second swap from x (C2, which really found another value) cannot
 * be placed anywhere. */
static int bug_double_cas(struct gen *g, struct gop *o, size_t pos)
{
    if (!is_ok(o, LIN_CAS) || producers(g, o->key, o->a) != 1)
        return 0;
    for (size_t j = pos + 1; j < g->n_order; j++) {
        struct gop *c = &g->ops[g->order[j]];
        if (c->key == o->key && c->f == LIN_CAS && c->out == OUT_FAIL && c->evaluated) {
            c->a = o->a;
            c->out = OUT_OK;
            return 1;
        }
    }
    return 0;
}

/* Nobody writes UNWRITTEN; a counter never exceeds its number of increments. */
static int bug_unwritten_read(struct gen *g, struct gop *o)
{
    if (is_ok(o, LIN_READLIST)) {
        o->extra = 1;
        return 1;
    }
    if (!is_ok(o, LIN_READ))
        return 0;
    if (g->keys[o->key].model != LIN_MODEL_COUNTER) {
        o->r = UNWRITTEN;
        return 1;
    }
    int64_t incrs = 0;
    for (size_t i = 0; i < g->n_ops; i++)
        incrs += g->ops[i].key == o->key && g->ops[i].f == LIN_INCR;
    o->r = incrs + 1;
    return 1;
}

static int try_bug(struct gen *g, size_t pos)
{
    struct gop *o = &g->ops[g->order[pos]];
    switch (g->c->bug) {
    case LIN_BUG_STALE_READ:
        return bug_stale_read(g, o);
    case LIN_BUG_LOST_WRITE:
        return bug_lost_write(g, o, pos);
    case LIN_BUG_DUP_APPEND:
        return bug_dup_append(g, o);
    case LIN_BUG_DOUBLE_INCR:
        return bug_double_incr(g, o, pos);
    case LIN_BUG_DOUBLE_CAS:
        return bug_double_cas(g, o, pos);
    case LIN_BUG_UNWRITTEN_READ:
        return bug_unwritten_read(g, o);
    default:
        return 1;
    }
}

/* Places the bug at the first fitting op from the middle of the effect order on, wrapping. */
static int inject(struct gen *g)
{
    if (g->c->bug == LIN_BUG_NONE)
        return 0;
    for (size_t i = 0; i < g->n_order; i++)
        if (try_bug(g, (g->n_order / 2 + i) % g->n_order))
            return 0;
    snprintf(g->err, g->err_len, "no place in this history where %s is certain to show",
             lin_gen_bug_name(g->c->bug));
    return -1;
}

/* ---- output ------------------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void out(struct gen *g, const char *fmt, ...)
{
    for (;;) {
        size_t room = g->cap_out - g->n_out;
        va_list ap;
        va_start(ap, fmt);
        int k = room ? vsnprintf(g->out + g->n_out, room, fmt, ap) : -1;
        va_end(ap);
        if (k >= 0 && (size_t)k < room) {
            g->n_out += (size_t)k;
            return;
        }
        size_t need = g->n_out + (k > 0 ? (size_t)k : 0) + 256;
        if (grow(g, (void **)&g->out, &g->cap_out, need, 1) != 0)
            return;
    }
}

static void out_list(struct gen *g, const struct gop *o)
{
    const struct gkey *k = &g->keys[o->key];
    int first = 1;
    for (int64_t i = 0; i < o->r; i++) {
        int64_t v = k->log[i];
        if (k->has_lost && v == k->lost)
            continue;
        int times = k->has_dup && v == k->dup ? 2 : 1;
        for (int t = 0; t < times; t++, first = 0)
            out(g, "%s%" PRId64, first ? "" : ",", v);
    }
    if (o->extra)
        out(g, "%s%d", first ? "" : ",", UNWRITTEN), first = 0;
    if (first)
        out(g, "[]");
}

static void out_value(struct gen *g, const struct gop *o, int completion)
{
    int ok = completion && o->out == OUT_OK;
    if (o->f == LIN_WRITE || o->f == LIN_APPEND)
        out(g, "%" PRId64, o->a);
    else if (o->f == LIN_CAS)
        out(g, "%" PRId64 ":%" PRId64, o->a, o->b);
    else if (ok && o->f == LIN_READLIST)
        out_list(g, o);
    else if (ok && o->r == LIN_NIL)
        out(g, "nil");
    else if (ok)
        out(g, "%" PRId64, o->r);
    else
        out(g, "_");
}

struct line {
    uint64_t t;
    uint32_t op;
    uint8_t completion;
};

static int cmp_line(const void *x, const void *y)
{
    const struct line *a = x, *b = y;
    int c = lin_order(a->t, b->t);
    c = c ? c : lin_order(a->op, b->op);
    return c ? c : lin_order(a->completion, b->completion);
}

static int write_history(struct gen *g)
{
    static const char *const outs[] = {"ok", "fail", "info"};
    const struct lin_gen_config *c = g->c;
    struct line *lines = malloc((2 * g->n_ops + 1) * sizeof(*lines));
    if (!lines)
        return -1;
    for (size_t i = 0; i < g->n_ops; i++) {
        lines[2 * i] = (struct line){.t = g->ops[i].inv, .op = (uint32_t)i};
        lines[2 * i + 1] = (struct line){.t = g->ops[i].comp, .op = (uint32_t)i, .completion = 1};
    }
    size_t n = 2 * g->n_ops;
    qsort(lines, n, sizeof(*lines), cmp_line);
    for (size_t i = n; c->shuffle && i > 1; i--) {
        size_t j = below(g, i);
        struct line tmp = lines[i - 1];
        lines[i - 1] = lines[j];
        lines[j] = tmp;
    }
    out(g,
        "# lincheck-gen seed %" PRIu64 ", %zu ops, %u processes, %u keys, model %s, "
        "info %u/1000, fail %u/1000, bug %s\n",
        c->seed, c->ops, c->procs, c->keys,
        c->model == LIN_GEN_MIXED ? "mixed" : lin_model_name(c->model), c->info_pm, c->fail_pm,
        lin_gen_bug_name(c->bug));
    for (size_t i = 0; i < n && !g->oom; i++) {
        const struct gop *o = &g->ops[lines[i].op];
        out(g, "%u %s %s k%u ", o->proc, lines[i].completion ? outs[o->out] : "invoke",
            lin_f_name(o->f), o->key);
        out_value(g, o, lines[i].completion);
        out(g, " %" PRIu64 "\n", lines[i].t);
    }
    free(lines);
    return g->oom ? -1 : 0;
}

/* ---- the entry points -------------------------------------------------------------------- */

void lin_gen_defaults(struct lin_gen_config *c)
{
    *c = (struct lin_gen_config){.seed = 1,
                                 .ops = 1000,
                                 .procs = 5,
                                 .keys = 1,
                                 .model = LIN_MODEL_REGISTER,
                                 .info_pm = 20,
                                 .fail_pm = 20,
                                 .latency_ns_max = 200000};
}

char *lin_gen(const struct lin_gen_config *c, size_t *len, char *err, size_t err_len)
{
    struct gen g = {
        .c = c, .rng = c->seed * 0x9E3779B97F4A7C15ULL + 1, .err = err, .err_len = err_len};
    *len = 0;
    if (!c->procs || !c->keys || c->latency_ns_max < 3 || c->info_pm + c->fail_pm > 1000 ||
        c->ops >= NONE || c->bug < 0 || c->bug >= LIN_BUG_COUNT ||
        (c->model != LIN_GEN_MIXED &&
         (c->model < LIN_MODEL_REGISTER || c->model > LIN_MODEL_LIST))) {
        snprintf(err, err_len, "bad generator settings");
        return NULL;
    }
    g.keys = calloc(c->keys, sizeof(*g.keys));
    int rc = g.keys ? simulate(&g) : -1;
    if (rc != 0)
        snprintf(err, err_len, "out of memory");
    if (rc == 0)
        rc = inject(&g);
    if (rc == 0 && write_history(&g) != 0) {
        snprintf(err, err_len, "out of memory");
        rc = -1;
    }
    for (unsigned i = 0; g.keys && i < c->keys; i++)
        free(g.keys[i].log);
    free(g.keys);
    free(g.ops);
    free(g.heap);
    free(g.order);
    if (rc != 0) {
        free(g.out);
        return NULL;
    }
    *len = g.n_out;
    return g.out;
}

static const char *const bug_names[LIN_BUG_COUNT] = {"none",          "stale-read",  "lost-write",
                                                     "dup-append",    "double-incr", "double-cas",
                                                     "unwritten-read"};

const char *lin_gen_bug_name(int bug)
{
    return bug >= 0 && bug < LIN_BUG_COUNT ? bug_names[bug] : "?";
}

int lin_gen_bug_by_name(const char *name)
{
    for (int i = 0; i < LIN_BUG_COUNT; i++)
        if (strcmp(name, bug_names[i]) == 0)
            return i;
    return -1;
}
