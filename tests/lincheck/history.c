/* history.c: parses the history text format (see history.h) into per-key operations.
 *
 * Two passes: every line becomes an event (checked on its own), then the events are sorted by
 * process and time and each completion is matched with its process's open invoke. Sorting
 * puts a completion before an invoke of the same process at the same time, so an op may start
 * in the nanosecond the previous one ended.
 */
#include "tests/lincheck/history.h"
#include "tests/lincheck/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { T_INVOKE = 0, T_OK, T_FAIL, T_INFO };

struct ev {
    int64_t process;
    uint64_t t;
    size_t line;
    uint32_t key;
    uint8_t type, f, has; /* has: a value was given (not "_") */
    int64_t a, b;         /* write/append a; cas a:b; read/incr result a (LIN_NIL: nil) */
    size_t list_off, list_len;
};

/* What the parser learns about a key before its model is known. */
struct kinfo {
    size_t list_line, scalar_line; /* the first line of each kind (0: none) */
    int write_or_cas, incr;
};

struct parser {
    struct lin_history *h;
    struct ev *evs;
    size_t n_evs, cap_evs;
    size_t cap_keys, cap_kinfo, n_vals, cap_vals;
    struct kinfo *kinfo;
    uint32_t *slots; /* key index + 1 (0: empty) */
    size_t nslots;
    char *err;
    size_t err_len;
};

struct tok {
    const char *p;
    size_t n;
};

__attribute__((format(printf, 3, 4))) static int fail_at(struct parser *ps, size_t line,
                                                         const char *fmt, ...)
{
    int k = line ? snprintf(ps->err, ps->err_len, "line %zu: ", line) : 0;
    if (k < 0 || (size_t)k >= ps->err_len)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + k, ps->err_len - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static int tok_is(struct tok t, const char *s)
{
    return t.n == strlen(s) && memcmp(t.p, s, t.n) == 0;
}

static int parse_u64(struct tok t, uint64_t *out)
{
    uint64_t v = 0;
    if (t.n == 0)
        return -1;
    for (size_t i = 0; i < t.n; i++) {
        unsigned d = (unsigned)(t.p[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A 64-bit integer other than INT64_MIN (the checker's nil). */
static int parse_i64(struct tok t, int64_t *out)
{
    int neg = t.n && t.p[0] == '-';
    uint64_t u;
    if (parse_u64((struct tok){t.p + neg, t.n - (size_t)neg}, &u) != 0 || u > INT64_MAX)
        return -1;
    *out = neg ? -(int64_t)u : (int64_t)u;
    return 0;
}

static int lookup(const char *const *names, size_t n, struct tok t)
{
    for (size_t i = 0; i < n; i++)
        if (tok_is(t, names[i]))
            return (int)i;
    return -1;
}

static uint64_t name_hash(struct tok t)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < t.n; i++)
        h = (h ^ (uint8_t)t.p[i]) * 0x100000001b3ULL;
    return h;
}

static int key_slots_grow(struct parser *ps)
{
    size_t nslots = ps->nslots ? ps->nslots * 2 : 256;
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < ps->h->n_keys; i++) {
        const char *name = ps->h->keys[i].name;
        size_t j = name_hash((struct tok){name, strlen(name)}) & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(ps->slots);
    ps->slots = slots;
    ps->nslots = nslots;
    return 0;
}

/* The index of key t, added if new. */
static int intern_key(struct parser *ps, struct tok t, uint32_t *out)
{
    struct lin_history *h = ps->h;
    if ((h->n_keys + 1) * 2 > ps->nslots && key_slots_grow(ps) != 0)
        return -1;
    size_t j = name_hash(t) & (ps->nslots - 1);
    for (; ps->slots[j]; j = (j + 1) & (ps->nslots - 1)) {
        if (tok_is(t, h->keys[ps->slots[j] - 1].name)) {
            *out = ps->slots[j] - 1;
            return 0;
        }
    }
    if (lin_grow((void **)&h->keys, &ps->cap_keys, h->n_keys + 1, sizeof(*h->keys)) != 0 ||
        lin_grow((void **)&ps->kinfo, &ps->cap_kinfo, h->n_keys + 1, sizeof(*ps->kinfo)) != 0)
        return -1;
    struct lin_key *k = &h->keys[h->n_keys];
    memset(k, 0, sizeof(*k));
    memset(&ps->kinfo[h->n_keys], 0, sizeof(*ps->kinfo));
    k->name = strndup(t.p, t.n);
    if (!k->name)
        return -1;
    *out = (uint32_t)h->n_keys;
    ps->slots[j] = (uint32_t)h->n_keys++ + 1;
    return 0;
}

/* "[]" or comma-separated integers, appended to the value arena. */
static int parse_list(struct parser *ps, struct tok t, struct ev *e)
{
    e->list_off = ps->n_vals;
    e->list_len = 0;
    if (tok_is(t, "[]"))
        return 0;
    const char *p = t.p, *end = t.p + t.n;
    for (;;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *stop = c ? c : end;
        int64_t v;
        if (parse_i64((struct tok){p, (size_t)(stop - p)}, &v) != 0)
            return -1;
        if (lin_grow((void **)&ps->h->vals, &ps->cap_vals, ps->n_vals + 1, sizeof(int64_t)) != 0)
            return fail_at(ps, e->line, "out of memory");
        ps->h->vals[ps->n_vals++] = v;
        e->list_len++;
        if (!c)
            return 0;
        p = c + 1;
    }
}

/* Fills e's value from t, as type and f allow (see history.h). */
static int parse_value(struct parser *ps, struct tok t, struct ev *e)
{
    int args = e->f == LIN_WRITE || e->f == LIN_APPEND || e->f == LIN_CAS;
    if (tok_is(t, "_")) {
        /* only where a value may be left out */
        return e->type == T_INVOKE ? (args ? -1 : 0) : e->type == T_OK && !args ? -1 : 0;
    }
    if (e->type != T_INVOKE && e->type != T_OK && !args)
        return -1; /* a read, incr or readlist that failed or timed out has no value */
    e->has = 1;
    if (e->f == LIN_CAS) {
        const char *c = memchr(t.p, ':', t.n);
        if (!c)
            return -1;
        size_t k = (size_t)(c - t.p);
        return parse_i64((struct tok){t.p, k}, &e->a) != 0 ||
                       parse_i64((struct tok){c + 1, t.n - k - 1}, &e->b) != 0
                   ? -1
                   : 0;
    }
    if (e->type == T_INVOKE && !args)
        return -1;
    if (e->f == LIN_READLIST)
        return parse_list(ps, t, e);
    if (e->f == LIN_READ && tok_is(t, "nil")) {
        e->a = LIN_NIL;
        return 0;
    }
    return parse_i64(t, &e->a);
}

static int note_kind(struct parser *ps, const struct ev *e)
{
    struct kinfo *ki = &ps->kinfo[e->key];
    int list = e->f == LIN_APPEND || e->f == LIN_READLIST;
    size_t *mine = list ? &ki->list_line : &ki->scalar_line;
    size_t other = list ? ki->scalar_line : ki->list_line;
    if (!*mine || e->line < *mine)
        *mine = e->line;
    if (other)
        return fail_at(ps, e->line, "key %s has both list and other operations (line %zu)",
                       ps->h->keys[e->key].name, other);
    ki->write_or_cas |= e->f == LIN_WRITE || e->f == LIN_CAS;
    ki->incr |= e->f == LIN_INCR;
    return 0;
}

static int parse_line(struct parser *ps, const char *p, const char *end, size_t line)
{
    static const char *const types[] = {"invoke", "ok", "fail", "info"};
    static const char *const fs[] = {"read", "write", "incr", "cas", "append", "readlist"};
    struct tok t[7];
    size_t n = 0;
    while (p < end && n < 7) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
            p++;
        if (p == end)
            break;
        const char *s = p;
        while (p < end && *p != ' ' && *p != '\t' && *p != '\r')
            p++;
        t[n++] = (struct tok){s, (size_t)(p - s)};
    }
    if (n == 0 || t[0].p[0] == '#')
        return 0;
    if (n != 6)
        return fail_at(ps, line, "expected 6 fields: process type f key value time_ns");
    struct ev e = {.line = line};
    int type = lookup(types, 4, t[1]), f = lookup(fs, 6, t[2]);
    if (parse_i64(t[0], &e.process) != 0)
        return fail_at(ps, line, "the process is not an integer: %.*s", (int)t[0].n, t[0].p);
    if (type < 0)
        return fail_at(ps, line, "unknown type %.*s", (int)t[1].n, t[1].p);
    if (f < 0)
        return fail_at(ps, line, "unknown f %.*s", (int)t[2].n, t[2].p);
    if (parse_u64(t[5], &e.t) != 0)
        return fail_at(ps, line, "the time is not an unsigned integer: %.*s", (int)t[5].n, t[5].p);
    e.type = (uint8_t)type;
    e.f = (uint8_t)f;
    if (parse_value(ps, t[4], &e) != 0)
        return fail_at(ps, line, "bad value for %s %s: %.*s", types[type], fs[f], (int)t[4].n,
                       t[4].p);
    if (intern_key(ps, t[3], &e.key) != 0)
        return fail_at(ps, line, "out of memory");
    if (note_kind(ps, &e) != 0)
        return -1;
    if (lin_grow((void **)&ps->evs, &ps->cap_evs, ps->n_evs + 1, sizeof(*ps->evs)) != 0)
        return fail_at(ps, line, "out of memory");
    ps->evs[ps->n_evs++] = e;
    return 0;
}

/* By process, then time; at the same time a completion before an invoke. */
static int cmp_ev(const void *x, const void *y)
{
    const struct ev *a = x, *b = y;
    int c = lin_order_i64(a->process, b->process);
    c = c ? c : lin_order(a->t, b->t);
    c = c ? c : lin_order(a->type == T_INVOKE, b->type == T_INVOKE);
    return c ? c : lin_order(a->line, b->line);
}

static int add_op(struct parser *ps, const struct ev *inv, const struct ev *done)
{
    struct lin_key *k = &ps->h->keys[inv->key];
    if (done && done->type == T_FAIL) {
        k->n_failed++;
        return 0;
    }
    if (lin_grow((void **)&k->ops, &k->cap, k->n + 1, sizeof(*k->ops)) != 0)
        return fail_at(ps, inv->line, "out of memory");
    struct lin_op *o = &k->ops[k->n++];
    int ok = done && done->type == T_OK;
    *o = (struct lin_op){.f = inv->f,
                         .done = ok,
                         .a = inv->a,
                         .b = inv->b,
                         .invoke = inv->t,
                         .complete = ok ? done->t : UINT64_MAX,
                         .process = inv->process,
                         .line = inv->line};
    k->n_info += !ok;
    if (ok && (inv->f == LIN_READ || inv->f == LIN_INCR))
        o->result = done->a;
    if (ok && inv->f == LIN_CAS)
        o->result = 1; /* ok means swapped; a cas that did not swap is a fail */
    if (ok && inv->f == LIN_READLIST) {
        o->list = ps->h->vals + done->list_off;
        o->list_len = done->list_len;
    }
    return 0;
}

static int check_completion(struct parser *ps, const struct ev *inv, const struct ev *e)
{
    static const char *const types[] = {"invoke", "ok", "fail", "info"};
    if (!inv)
        return fail_at(ps, e->line, "%s of process %" PRId64 " with no open invoke before it",
                       types[e->type], e->process);
    if (inv->f != e->f || inv->key != e->key)
        return fail_at(ps, e->line, "%s of %s %s answers the invoke of %s %s at line %zu",
                       types[e->type], lin_f_name(e->f), ps->h->keys[e->key].name,
                       lin_f_name(inv->f), ps->h->keys[inv->key].name, inv->line);
    int args = e->f == LIN_WRITE || e->f == LIN_APPEND || e->f == LIN_CAS;
    if (args && e->has && (e->a != inv->a || (e->f == LIN_CAS && e->b != inv->b)))
        return fail_at(ps, e->line, "the value differs from the invoke's at line %zu", inv->line);
    return 0;
}

/* Matches each completion with its process's open invoke and builds the ops. */
static int match(struct parser *ps)
{
    qsort(ps->evs, ps->n_evs, sizeof(*ps->evs), cmp_ev);
    const struct ev *open = NULL;
    for (size_t i = 0; i < ps->n_evs; i++) {
        const struct ev *e = &ps->evs[i];
        if (open && open->process != e->process) {
            if (add_op(ps, open, NULL) != 0) /* left open at the end: unknown outcome */
                return -1;
            open = NULL;
        }
        if (e->type == T_INVOKE) {
            if (open)
                return fail_at(ps, e->line,
                               "process %" PRId64 " invokes while its op from line %zu is open",
                               e->process, open->line);
            open = e;
            continue;
        }
        if (check_completion(ps, open, e) != 0 || add_op(ps, open, e) != 0)
            return -1;
        open = NULL;
    }
    return open ? add_op(ps, open, NULL) : 0;
}

static void set_models(struct parser *ps)
{
    for (size_t i = 0; i < ps->h->n_keys; i++) {
        struct lin_key *k = &ps->h->keys[i];
        const struct kinfo *ki = &ps->kinfo[i];
        k->model = ki->list_line      ? LIN_MODEL_LIST
                   : ki->write_or_cas ? LIN_MODEL_REGISTER
                   : ki->incr         ? LIN_MODEL_COUNTER
                                      : LIN_MODEL_REGISTER;
        if (k->model != LIN_MODEL_COUNTER)
            continue;
        for (size_t j = 0; j < k->n; j++)
            if (k->ops[j].f == LIN_READ && k->ops[j].done && k->ops[j].result == LIN_NIL)
                k->ops[j].result = 0; /* a counter never incremented reads nil */
    }
}

int lin_history_parse(struct lin_history *h, const char *text, size_t len, char *err,
                      size_t err_len)
{
    memset(h, 0, sizeof(*h));
    struct parser ps = {.h = h, .err = err, .err_len = err_len};
    int rc = 0;
    const char *p = text, *end = text + len;
    for (size_t line = 1; p < end && rc == 0; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        rc = parse_line(&ps, p, stop, line);
        h->n_lines = line;
        p = nl ? nl + 1 : end;
    }
    if (rc == 0)
        rc = match(&ps);
    if (rc == 0)
        set_models(&ps);
    free(ps.evs);
    free(ps.kinfo);
    free(ps.slots);
    if (rc != 0)
        lin_history_free(h);
    return rc;
}

int lin_history_read(struct lin_history *h, FILE *f, char *err, size_t err_len)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (lin_grow((void **)&buf, &cap, len + 65536, 1) != 0) {
            free(buf);
            memset(h, 0, sizeof(*h));
            snprintf(err, err_len, "out of memory reading the history");
            return -1;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0)
            break;
    }
    int rc;
    if (ferror(f)) {
        memset(h, 0, sizeof(*h));
        snprintf(err, err_len, "cannot read the history");
        rc = -1;
    } else {
        rc = lin_history_parse(h, buf, len, err, err_len);
    }
    free(buf);
    return rc;
}

void lin_history_free(struct lin_history *h)
{
    for (size_t i = 0; i < h->n_keys; i++) {
        free(h->keys[i].name);
        free(h->keys[i].ops);
    }
    free(h->keys);
    free(h->vals);
    memset(h, 0, sizeof(*h));
}

int lin_history_check(const struct lin_history *h, size_t k, const struct lin_config *cfg,
                      struct lin_result *res)
{
    struct lin_config c = *cfg;
    c.initial = h->keys[k].model == LIN_MODEL_COUNTER ? 0 : LIN_NIL;
    return lin_check(h->keys[k].ops, h->keys[k].n, &c, res);
}

const char *lin_model_name(int model)
{
    return model == LIN_MODEL_LIST ? "list" : model == LIN_MODEL_COUNTER ? "counter" : "register";
}
