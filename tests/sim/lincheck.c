/* lincheck.c: Wing & Gong search with a memo of visited states (Lowe), for one register. */
#include "tests/sim/lincheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct memo {
    uint64_t *keys; /* slots of (words + 1) u64: bitset words, then the value */
    uint8_t *used;
    size_t slots, n, words;
};

struct search {
    struct lin_op *ops;
    size_t n, words;
    uint64_t *lin; /* bitset of linearized ops */
    struct memo memo;
    uint64_t steps, steps_max;
    int exhausted;
};

static uint64_t hash_state(const uint64_t *bits, size_t words, int64_t v)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)v;
    for (size_t i = 0; i < words; i++) {
        h ^= bits[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h;
}

static int memo_grow(struct memo *m);

/* Returns 1 if (bits, v) was already there; otherwise adds it. */
static int memo_test_and_add(struct memo *m, const uint64_t *bits, int64_t v)
{
    if ((m->n + 1) * 2 > m->slots && memo_grow(m) != 0)
        return 0; /* out of memory: just search without the memo */
    size_t stride = m->words + 1;
    size_t i = hash_state(bits, m->words, v) & (m->slots - 1);
    for (;;) {
        uint64_t *k = &m->keys[i * stride];
        if (!m->used[i]) {
            memcpy(k, bits, m->words * sizeof(uint64_t));
            k[m->words] = (uint64_t)v;
            m->used[i] = 1;
            m->n++;
            return 0;
        }
        if (k[m->words] == (uint64_t)v && memcmp(k, bits, m->words * sizeof(uint64_t)) == 0)
            return 1;
        i = (i + 1) & (m->slots - 1);
    }
}

static int memo_grow(struct memo *m)
{
    size_t nslots = m->slots ? m->slots * 2 : 1024;
    size_t stride = m->words + 1;
    uint64_t *keys = calloc(nslots, stride * sizeof(uint64_t));
    uint8_t *used = calloc(nslots, 1);
    if (!keys || !used) {
        free(keys);
        free(used);
        return -1;
    }
    struct memo old = *m;
    m->keys = keys;
    m->used = used;
    m->slots = nslots;
    m->n = 0;
    for (size_t i = 0; i < old.slots; i++)
        if (old.used[i])
            memo_test_and_add(m, &old.keys[i * stride], (int64_t)old.keys[i * stride + m->words]);
    free(old.keys);
    free(old.used);
    return 0;
}

/* Applies op to v: returns 1 if the op's recorded result is consistent, with the new value. */
static int step_model(const struct lin_op *op, int64_t v, int64_t *nv)
{
    switch (op->type) {
    case LIN_READ:
        *nv = v;
        return !op->done || op->result == v;
    case LIN_SET:
        *nv = op->a;
        return 1;
    case LIN_INC:
        *nv = v + 1;
        return !op->done || op->result == v + 1;
    case LIN_CAS:
        *nv = v == op->a ? op->b : v;
        return !op->done || op->result == (v == op->a);
    default:
        return 0;
    }
}

static int dfs(struct search *s, int64_t v, size_t done_left)
{
    if (done_left == 0)
        return 1;
    if (++s->steps > s->steps_max) {
        s->exhausted = 1;
        return 0;
    }
    if (memo_test_and_add(&s->memo, s->lin, v))
        return 0;
    /* An op may go next only if no unlinearized op completed before it was invoked. */
    uint64_t min_c = UINT64_MAX;
    for (size_t i = 0; i < s->n; i++)
        if (!(s->lin[i / 64] >> (i % 64) & 1) && s->ops[i].done && s->ops[i].complete < min_c)
            min_c = s->ops[i].complete;
    for (size_t i = 0; i < s->n && !s->exhausted; i++) {
        if (s->lin[i / 64] >> (i % 64) & 1)
            continue;
        const struct lin_op *op = &s->ops[i];
        if (op->invoke > min_c)
            break; /* sorted by invocation: nothing later qualifies */
        int64_t nv;
        if (!step_model(op, v, &nv))
            continue;
        s->lin[i / 64] |= 1ULL << (i % 64);
        if (dfs(s, nv, done_left - (op->done ? 1 : 0)))
            return 1;
        s->lin[i / 64] &= ~(1ULL << (i % 64));
    }
    return 0;
}

static int cmp_invoke(const void *a, const void *b)
{
    const struct lin_op *x = a, *y = b;
    if (x->invoke != y->invoke)
        return x->invoke < y->invoke ? -1 : 1;
    return x->complete < y->complete ? -1 : x->complete > y->complete;
}

int lin_check(struct lin_op *ops, size_t n, uint64_t steps_max, char *why, size_t why_len)
{
    qsort(ops, n, sizeof(*ops), cmp_invoke);
    struct search s = {.ops = ops, .n = n, .words = (n + 63) / 64 + 1, .steps_max = steps_max};
    s.lin = calloc(s.words, sizeof(uint64_t));
    s.memo.words = s.words;
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
        done += ops[i].done != 0;
    int ok = s.lin && dfs(&s, 0, done);
    int rc = ok ? LIN_OK : s.exhausted ? LIN_INCONCLUSIVE : LIN_VIOLATION;
    if (rc == LIN_VIOLATION && why)
        snprintf(why, why_len, "no linearization of %zu ops (%zu completed)", n, done);
    free(s.lin);
    free(s.memo.keys);
    free(s.memo.used);
    return rc;
}
