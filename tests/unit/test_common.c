/* Unit tests for common/: rd_map (open addressing, backward-shift deletion), rd_buf (read mark,
 * reserve, compact), the RESP writers and the LEB128 varint helpers.
 *
 * The map tests check the probing invariant directly on the public slot array after every
 * deletion: every stored key must be reachable from its home slot without crossing an empty slot.
 * A key's home slot is found without knowing the hash: insert it alone into a fresh map.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/map.h"
#include "common/netaddr.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    /* xorshift64*: seeded, so a failure replays exactly */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static void *val_of(uint64_t key)
{
    return (void *)(uintptr_t)(key * 2 + 1);
}

/* The slot a key lands in when it is alone in a map of the default first capacity. */
static size_t home_slot(uint64_t key, size_t *cap)
{
    struct rd_map m;
    rd_map_init(&m);
    assert_int_equal(rd_map_put(&m, key, val_of(key)), 0);
    size_t home = SIZE_MAX;
    for (size_t i = 0; i < m.cap; i++)
        if (m.slots[i].key == key)
            home = i;
    *cap = m.cap;
    rd_map_free(&m);
    assert_true(home != SIZE_MAX);
    return home;
}

/* Every key is reachable from its home without crossing an empty slot (linear probing
 * invariant); count matches the occupied slots. Only valid while cap is the first capacity
 * (homes are computed for that capacity). */
static void check_invariant_small(const struct rd_map *m, const uint64_t *keys, const size_t *homes,
                                  size_t nkeys)
{
    size_t used = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == 0)
            continue;
        used++;
        size_t h = SIZE_MAX;
        for (size_t k = 0; k < nkeys; k++)
            if (keys[k] == m->slots[i].key)
                h = homes[k];
        assert_true(h != SIZE_MAX);
        for (size_t j = h; j != i; j = (j + 1) & (m->cap - 1))
            assert_true(m->slots[j].key != 0);
    }
    assert_int_equal(used, m->count);
}

/* ---- rd_map ----------------------------------------------------------------------------- */

static void test_map_empty_and_key0(void **state)
{
    (void)state;
    struct rd_map m;
    rd_map_init(&m);
    assert_null(rd_map_get(&m, 1));
    assert_null(rd_map_del(&m, 1));
    assert_null(rd_map_get(&m, 0));
    assert_int_equal(rd_map_put(&m, 0, val_of(0)), -1);
    assert_int_equal(m.count, 0);
    assert_int_equal(rd_map_put(&m, 7, val_of(7)), 0);
    assert_int_equal(rd_map_put(&m, 0, val_of(0)), -1);
    assert_null(rd_map_get(&m, 0));
    assert_null(rd_map_del(&m, 0));
    assert_int_equal(m.count, 1);
    assert_ptr_equal(rd_map_get(&m, 7), val_of(7));
    rd_map_free(&m);
    assert_null(m.slots);
    assert_int_equal(m.cap, 0);
    rd_map_free(&m); /* twice is harmless */
}

static void test_map_replace(void **state)
{
    (void)state;
    struct rd_map m;
    rd_map_init(&m);
    assert_int_equal(rd_map_put(&m, 42, val_of(1)), 0);
    assert_int_equal(rd_map_put(&m, 42, val_of(2)), 0);
    assert_int_equal(m.count, 1);
    assert_ptr_equal(rd_map_get(&m, 42), val_of(2));
    assert_ptr_equal(rd_map_del(&m, 42), val_of(2));
    assert_int_equal(m.count, 0);
    assert_null(rd_map_get(&m, 42));
    assert_null(rd_map_del(&m, 42));
    rd_map_free(&m);
}

static void test_map_extreme_keys(void **state)
{
    (void)state;
    struct rd_map m;
    rd_map_init(&m);
    uint64_t keys[] = {1, UINT64_MAX, UINT64_MAX - 1, 1ULL << 63, 1ULL << 32, 0xffffffffULL};
    size_t n = sizeof(keys) / sizeof(keys[0]);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rd_map_put(&m, keys[i], val_of(i)), 0);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(rd_map_get(&m, keys[i]), val_of(i));
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(rd_map_del(&m, keys[i]), val_of(i));
    assert_int_equal(m.count, 0);
    rd_map_free(&m);
}

/* 10^5 random keys; delete a random 60% in random order; everything left is found, everything
 * deleted is gone; then delete the rest. */
static void test_map_many_random(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint64_t *keys = malloc(N * sizeof(*keys));
    char *gone = calloc(N, 1);
    assert_non_null(keys);
    assert_non_null(gone);
    struct rd_map m;
    rd_map_init(&m);
    rng_state = 12345;
    for (size_t i = 0; i < N; i++) {
        uint64_t k;
        do {
            /* half dense small ids (clustered probe runs), half random 64-bit */
            k = (i & 1) ? rng() : (uint64_t)i + 1;
        } while (k == 0 || rd_map_get(&m, k) != NULL);
        keys[i] = k;
        assert_int_equal(rd_map_put(&m, k, val_of(k)), 0);
    }
    assert_int_equal(m.count, N);
    assert_true(m.cap >= N && (m.cap & (m.cap - 1)) == 0);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(rd_map_get(&m, keys[i]), val_of(keys[i]));

    /* random order of deletions: Fisher-Yates over indexes */
    size_t *order = malloc(N * sizeof(*order));
    assert_non_null(order);
    for (size_t i = 0; i < N; i++)
        order[i] = i;
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = (size_t)(rng() % (i + 1));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    size_t ndel = N * 6 / 10;
    for (size_t d = 0; d < ndel; d++) {
        size_t i = order[d];
        assert_ptr_equal(rd_map_del(&m, keys[i]), val_of(keys[i]));
        gone[i] = 1;
        if (d % 10007 == 0) { /* a full check now and then */
            for (size_t k = 0; k < N; k++) {
                if (gone[k])
                    assert_null(rd_map_get(&m, keys[k]));
                else
                    assert_ptr_equal(rd_map_get(&m, keys[k]), val_of(keys[k]));
            }
        }
    }
    assert_int_equal(m.count, N - ndel);
    for (size_t k = 0; k < N; k++) {
        if (gone[k])
            assert_null(rd_map_get(&m, keys[k]));
        else
            assert_ptr_equal(rd_map_get(&m, keys[k]), val_of(keys[k]));
    }
    /* re-insert some deleted keys, then drain everything */
    for (size_t d = 0; d < 1000; d++)
        assert_int_equal(rd_map_put(&m, keys[order[d]], val_of(keys[order[d]])), 0);
    for (size_t d = 0; d < 1000; d++)
        gone[order[d]] = 0;
    for (size_t k = 0; k < N; k++) {
        if (!gone[k])
            assert_ptr_equal(rd_map_del(&m, keys[k]), val_of(keys[k]));
        assert_null(rd_map_get(&m, keys[k]));
    }
    assert_int_equal(m.count, 0);
    for (size_t i = 0; i < m.cap; i++)
        assert_int_equal(m.slots[i].key, 0);
    rd_map_free(&m);
    free(order);
    free(gone);
    free(keys);
}

/* Probe runs that wrap around the end of the slot array: keys homed at the last two slots and
 * at the first two; delete each one (and every pair in both orders) and check the invariant. */
static void test_map_backward_shift_wraparound(void **state)
{
    (void)state;
    size_t cap0 = 0;
    (void)home_slot(1, &cap0);
    assert_true(cap0 >= 8);
    const size_t want_home[] = {cap0 - 2, cap0 - 2, cap0 - 1, cap0 - 1, cap0 - 1, 0, 0, 1};
    enum { NK = 8 };
    uint64_t keys[NK];
    size_t homes[NK];
    char used[NK] = {0};
    size_t found = 0;
    for (uint64_t k = 1; found < NK && k < 10000000; k++) {
        size_t cap;
        size_t h = home_slot(k, &cap);
        for (size_t i = 0; i < NK; i++) {
            if (!used[i] && want_home[i] == h) {
                used[i] = 1;
                keys[i] = k;
                homes[i] = h;
                found++;
                break;
            }
        }
    }
    assert_int_equal(found, NK);

    /* every single deletion and every ordered pair of deletions, from a fresh map */
    for (size_t a = 0; a < NK; a++) {
        for (size_t b = 0; b <= NK; b++) { /* b == NK: only a */
            if (b == a)
                continue;
            struct rd_map m;
            rd_map_init(&m);
            for (size_t i = 0; i < NK; i++)
                assert_int_equal(rd_map_put(&m, keys[i], val_of(keys[i])), 0);
            assert_int_equal(m.cap, cap0); /* still the first capacity: homes hold */
            check_invariant_small(&m, keys, homes, NK);
            assert_ptr_equal(rd_map_del(&m, keys[a]), val_of(keys[a]));
            check_invariant_small(&m, keys, homes, NK);
            if (b < NK) {
                assert_ptr_equal(rd_map_del(&m, keys[b]), val_of(keys[b]));
                check_invariant_small(&m, keys, homes, NK);
            }
            for (size_t i = 0; i < NK; i++) {
                if (i == a || i == b)
                    assert_null(rd_map_get(&m, keys[i]));
                else
                    assert_ptr_equal(rd_map_get(&m, keys[i]), val_of(keys[i]));
            }
            rd_map_free(&m);
        }
    }

    /* insertion in reverse order too, then delete all in a rotating order */
    for (size_t start = 0; start < NK; start++) {
        struct rd_map m;
        rd_map_init(&m);
        for (size_t i = NK; i-- > 0;)
            assert_int_equal(rd_map_put(&m, keys[i], val_of(keys[i])), 0);
        for (size_t d = 0; d < NK; d++) {
            size_t i = (start + d) % NK;
            assert_ptr_equal(rd_map_del(&m, keys[i]), val_of(keys[i]));
            check_invariant_small(&m, keys, homes, NK);
            for (size_t r = d + 1; r < NK; r++) {
                size_t j = (start + r) % NK;
                assert_ptr_equal(rd_map_get(&m, keys[j]), val_of(keys[j]));
            }
        }
        assert_int_equal(m.count, 0);
        rd_map_free(&m);
    }
}

/* ---- rd_buf ----------------------------------------------------------------------------- */

static void test_buf_append_consume(void **state)
{
    (void)state;
    struct rd_buf b;
    rd_buf_init(&b);
    assert_int_equal(rd_buf_unread(&b), 0);
    assert_int_equal(rd_buf_append(&b, "", 0), 0); /* nothing to add: no allocation needed */
    assert_int_equal(rd_buf_append(&b, "hello", 5), 0);
    assert_int_equal(rd_buf_append_str(&b, " world"), 0);
    assert_int_equal(rd_buf_unread(&b), 11);
    assert_memory_equal(rd_buf_rptr(&b), "hello world", 11);
    rd_buf_consume(&b, 6);
    assert_int_equal(rd_buf_unread(&b), 5);
    assert_memory_equal(rd_buf_rptr(&b), "world", 5);
    assert_int_equal(b.rpos, 6);
    rd_buf_consume(&b, 5); /* everything read: back to empty */
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(rd_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(rd_buf_unread(&b), 4);
    assert_memory_equal(rd_buf_rptr(&b), "42-x", 4);
    assert_int_equal(rd_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(rd_buf_unread(&b), 4);
    rd_buf_reset(&b);
    assert_int_equal(rd_buf_unread(&b), 0);
    rd_buf_free(&b);
    assert_null(b.data);
    rd_buf_free(&b);
}

static void test_buf_binary_and_growth(void **state)
{
    (void)state;
    struct rd_buf b;
    rd_buf_init(&b);
    /* 1 MB of every byte value, appended in odd-sized pieces */
    enum { N = 1 << 20 };
    char *src = malloc(N);
    assert_non_null(src);
    for (size_t i = 0; i < N; i++)
        src[i] = (char)(i * 7 + (i >> 8));
    size_t off = 0, step = 1;
    while (off < N) {
        size_t n = step < N - off ? step : N - off;
        assert_int_equal(rd_buf_append(&b, src + off, n), 0);
        off += n;
        step = step * 3 + 1;
        if (step > 100000)
            step = 1;
        assert_true(b.cap >= b.len);
    }
    assert_int_equal(rd_buf_unread(&b), N);
    assert_memory_equal(rd_buf_rptr(&b), src, N);
    free(src);
    rd_buf_free(&b);
}

static void test_buf_reserve(void **state)
{
    (void)state;
    struct rd_buf b;
    rd_buf_init(&b);
    assert_int_equal(rd_buf_reserve(&b, 0), 0);
    assert_int_equal(rd_buf_reserve(&b, 1000), 0);
    assert_true(b.cap - b.len >= 1000);
    char *p = b.data;
    size_t cap = b.cap;
    assert_int_equal(rd_buf_reserve(&b, 10), 0); /* room already there: nothing moves */
    assert_ptr_equal(b.data, p);
    assert_int_equal(b.cap, cap);
    /* fill the buffer, then reserve more than is left */
    memset(b.data, 'a', b.cap);
    b.len = b.cap;
    assert_int_equal(rd_buf_reserve(&b, 1), 0);
    assert_true(b.cap > cap);
    for (size_t i = 0; i < cap; i++)
        assert_int_equal(b.data[i], 'a');
    rd_buf_free(&b);
}

/* When most of the buffer is read, reserve compacts instead of growing; unread bytes survive. */
static void test_buf_reserve_compacts(void **state)
{
    (void)state;
    struct rd_buf b;
    rd_buf_init(&b);
    assert_int_equal(rd_buf_reserve(&b, 1000), 0);
    size_t cap = b.cap;
    char *all = malloc(cap);
    assert_non_null(all);
    for (size_t i = 0; i < cap; i++)
        all[i] = (char)('A' + i % 26);
    assert_int_equal(rd_buf_append(&b, all, cap), 0);
    assert_int_equal(b.cap, cap);
    rd_buf_consume(&b, cap - 10); /* 10 unread at the very end */
    assert_int_equal(rd_buf_reserve(&b, cap / 2), 0);
    assert_true(b.cap - b.len >= cap / 2);
    assert_int_equal(rd_buf_unread(&b), 10);
    assert_memory_equal(rd_buf_rptr(&b), all + cap - 10, 10);
    assert_int_equal(rd_buf_append(&b, "xyz", 3), 0);
    assert_int_equal(rd_buf_unread(&b), 13);
    assert_memory_equal(rd_buf_rptr(&b) + 10, "xyz", 3);
    free(all);
    rd_buf_free(&b);
}

static void test_buf_compact(void **state)
{
    (void)state;
    struct rd_buf b;
    rd_buf_init(&b);
    rd_buf_compact(&b); /* empty: no-op */
    assert_int_equal(rd_buf_append_str(&b, "0123456789"), 0);
    rd_buf_compact(&b); /* rpos 0: no-op */
    assert_int_equal(b.rpos, 0);
    rd_buf_consume(&b, 4);
    rd_buf_compact(&b);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "456789", 6);
    rd_buf_consume(&b, 3);
    assert_int_equal(rd_buf_append_str(&b, "ab"), 0);
    rd_buf_compact(&b);
    assert_int_equal(rd_buf_unread(&b), 5);
    assert_memory_equal(rd_buf_rptr(&b), "789ab", 5);
    rd_buf_free(&b);
}

/* ---- RESP writers --------------------------------------------------------------------------- */

static void expect_buf(struct rd_buf *b, const char *want, size_t n)
{
    assert_int_equal(rd_buf_unread(b), n);
    assert_memory_equal(rd_buf_rptr(b), want, n);
    rd_buf_reset(b);
}
#define EXPECT(b, lit) expect_buf((b), (lit), sizeof(lit) - 1)

static void test_resp_writers(void **state)
{
    (void)state;
    struct rd_buf b;
    rd_buf_init(&b);
    assert_int_equal(rd_resp_simple(&b, '+', "OK"), 0);
    EXPECT(&b, "+OK\r\n");
    assert_int_equal(rd_resp_simple(&b, '-', "ERR bad thing"), 0);
    EXPECT(&b, "-ERR bad thing\r\n");
    assert_int_equal(rd_resp_simple(&b, '+', ""), 0);
    EXPECT(&b, "+\r\n");
    /* line breaks in a simple string would break the protocol: Redis turns them into spaces */
    assert_int_equal(rd_resp_simple(&b, '-', "ERR a\r\nb\nc\rd"), 0);
    EXPECT(&b, "-ERR a  b c d\r\n");

    assert_int_equal(rd_resp_int(&b, 0), 0);
    EXPECT(&b, ":0\r\n");
    assert_int_equal(rd_resp_int(&b, -5), 0);
    EXPECT(&b, ":-5\r\n");
    assert_int_equal(rd_resp_int(&b, LLONG_MAX), 0);
    EXPECT(&b, ":9223372036854775807\r\n");
    assert_int_equal(rd_resp_int(&b, LLONG_MIN), 0);
    EXPECT(&b, ":-9223372036854775808\r\n");

    assert_int_equal(rd_resp_bulk(&b, "foo", 3), 0);
    EXPECT(&b, "$3\r\nfoo\r\n");
    assert_int_equal(rd_resp_bulk(&b, "", 0), 0);
    EXPECT(&b, "$0\r\n\r\n");
    assert_int_equal(rd_resp_bulk(&b, "a\0\r\nb", 5), 0);
    EXPECT(&b, "$5\r\na\0\r\nb\r\n");
    assert_int_equal(rd_resp_nil(&b), 0);
    EXPECT(&b, "$-1\r\n");
    assert_int_equal(rd_resp_array_len(&b, 0), 0);
    EXPECT(&b, "*0\r\n");
    assert_int_equal(rd_resp_array_len(&b, -1), 0);
    EXPECT(&b, "*-1\r\n");
    assert_int_equal(rd_resp_array_len(&b, 3), 0);
    EXPECT(&b, "*3\r\n");

    /* a whole reply built in sequence */
    assert_int_equal(rd_resp_array_len(&b, 4), 0);
    assert_int_equal(rd_resp_int(&b, 1), 0);
    assert_int_equal(rd_resp_bulk(&b, "x", 1), 0);
    assert_int_equal(rd_resp_nil(&b), 0);
    assert_int_equal(rd_resp_simple(&b, '+', "PONG"), 0);
    EXPECT(&b, "*4\r\n:1\r\n$1\r\nx\r\n$-1\r\n+PONG\r\n");

    /* a large bulk */
    enum { BIG = 100000 };
    char *big = malloc(BIG);
    assert_non_null(big);
    memset(big, 'z', BIG);
    assert_int_equal(rd_resp_bulk(&b, big, BIG), 0);
    assert_int_equal(rd_buf_unread(&b), 9 + BIG + 2);
    assert_memory_equal(rd_buf_rptr(&b), "$100000\r\n", 9);
    assert_memory_equal(rd_buf_rptr(&b) + 9, big, BIG);
    assert_memory_equal(rd_buf_rptr(&b) + 9 + BIG, "\r\n", 2);
    free(big);
    rd_buf_free(&b);
}

/* ---- varints ---------------------------------------------------------------------------- */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void test_varint_roundtrip(void **state)
{
    (void)state;
    uint64_t vals[] = {0,
                       1,
                       127,
                       128,
                       255,
                       300,
                       16383,
                       16384,
                       (1ULL << 21) - 1,
                       1ULL << 21,
                       UINT32_MAX,
                       1ULL << 32,
                       (1ULL << 56) - 1,
                       1ULL << 56,
                       (1ULL << 63) - 1,
                       1ULL << 63,
                       UINT64_MAX - 1,
                       UINT64_MAX};
    struct rd_buf b;
    rd_buf_init(&b);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        rd_buf_reset(&b);
        assert_int_equal(rd_put_varint(&b, vals[i]), 0);
        assert_int_equal(rd_buf_unread(&b), varint_size(vals[i]));
        uint64_t v = 12345;
        size_t n = rd_get_varint((const uint8_t *)rd_buf_rptr(&b), rd_buf_unread(&b), &v);
        assert_int_equal(n, varint_size(vals[i]));
        assert_true(v == vals[i]);
        /* with more bytes after it, only the varint is read */
        assert_int_equal(rd_buf_append(&b, "\x7f\x7f", 2), 0);
        n = rd_get_varint((const uint8_t *)rd_buf_rptr(&b), rd_buf_unread(&b), &v);
        assert_int_equal(n, varint_size(vals[i]));
        assert_true(v == vals[i]);
    }
    /* exact encodings */
    rd_buf_reset(&b);
    assert_int_equal(rd_put_varint(&b, 300), 0);
    EXPECT(&b, "\xac\x02");
    assert_int_equal(rd_put_varint(&b, 0), 0);
    EXPECT(&b, "\x00");
    assert_int_equal(rd_put_varint(&b, UINT64_MAX), 0);
    EXPECT(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01");

    /* random values, many in one buffer, read back in sequence */
    rng_state = 777;
    uint64_t seq[2000];
    for (size_t i = 0; i < 2000; i++) {
        seq[i] = rng() >> (rng() % 64);
        assert_int_equal(rd_put_varint(&b, seq[i]), 0);
    }
    const uint8_t *p = (const uint8_t *)rd_buf_rptr(&b);
    size_t left = rd_buf_unread(&b);
    for (size_t i = 0; i < 2000; i++) {
        uint64_t v;
        size_t n = rd_get_varint(p, left, &v);
        assert_true(n >= 1 && n <= 10);
        assert_true(v == seq[i]);
        p += n;
        left -= n;
    }
    assert_int_equal(left, 0);
    rd_buf_free(&b);
}

/* Every proper prefix of an encoding is truncated: 0, never a wrong value, never a read past
 * len (each prefix is copied into an allocation of exactly its size for ASan). */
static void test_varint_truncated(void **state)
{
    (void)state;
    uint64_t vals[] = {128, 16384, 1ULL << 35, 1ULL << 63, UINT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct rd_buf b;
        rd_buf_init(&b);
        assert_int_equal(rd_put_varint(&b, vals[i]), 0);
        for (size_t len = 0; len < rd_buf_unread(&b); len++) {
            uint8_t *copy = malloc(len ? len : 1);
            assert_non_null(copy);
            memcpy(copy, rd_buf_rptr(&b), len);
            uint64_t v = 99;
            assert_int_equal(rd_get_varint(copy, len, &v), 0);
            assert_true(v == 99); /* untouched on failure */
            free(copy);
        }
        rd_buf_free(&b);
    }
    uint64_t v;
    assert_int_equal(rd_get_varint(NULL, 0, &v), 0);
}

/* Found by fuzz_entry: "\xd4\x00" decoded as 84, which re-encodes as "\x54". A zero last byte
 * after the first is padding; every number has one encoding, the shortest. */
static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    return ss;
}

/* Redis's islocalClient: 127.0.0.1 and ::1 only; the mapped form of 127.0.0.1 is the same peer. */
static void test_loopback_rule(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    ss = v4("127.0.0.1");
    assert_int_equal(rd_sockaddr_is_loopback(&ss), 1);
    ss = v6("::1");
    assert_int_equal(rd_sockaddr_is_loopback(&ss), 1);
    ss = v6("::ffff:127.0.0.1");
    assert_int_equal(rd_sockaddr_is_loopback(&ss), 1);
    const char *not_local4[] = {"127.0.0.2", "127.1.0.1", "10.0.0.1", "0.0.0.0", "1.0.0.127"};
    for (size_t i = 0; i < sizeof(not_local4) / sizeof(not_local4[0]); i++) {
        ss = v4(not_local4[i]);
        assert_int_equal(rd_sockaddr_is_loopback(&ss), 0);
    }
    const char *not_local6[] = {"::", "::2", "::ffff:127.0.0.2", "fe80::1", "::127.0.0.1"};
    for (size_t i = 0; i < sizeof(not_local6) / sizeof(not_local6[0]); i++) {
        ss = v6(not_local6[i]);
        assert_int_equal(rd_sockaddr_is_loopback(&ss), 0);
    }
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    assert_int_equal(rd_sockaddr_is_loopback(&ss), 0);
}

static void test_varint_padded_rejected(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(rd_get_varint((const uint8_t *)"\xd4\x00", 2, &v), 0);
    assert_int_equal(rd_get_varint((const uint8_t *)"\x80\x00", 2, &v), 0);
    assert_int_equal(rd_get_varint((const uint8_t *)"\x80\x80\x00", 3, &v), 0);
    assert_int_equal(
        rd_get_varint((const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00", 10, &v), 0);
    assert_true(v == 7); /* untouched */
    /* the shortest forms still read */
    assert_int_equal(rd_get_varint((const uint8_t *)"\x00", 1, &v), 1);
    assert_true(v == 0);
    assert_int_equal(rd_get_varint((const uint8_t *)"\x54", 1, &v), 1);
    assert_true(v == 84);
    assert_int_equal(rd_get_varint((const uint8_t *)"\x80\x01", 2, &v), 2);
    assert_true(v == 128);
}

static void test_varint_overlong(void **state)
{
    (void)state;
    uint64_t v = 0;
    /* ten bytes with the continuation bit on every one: would need an 11th byte */
    uint8_t cont[12];
    memset(cont, 0x80, sizeof(cont));
    assert_int_equal(rd_get_varint(cont, 10, &v), 0);
    assert_int_equal(rd_get_varint(cont, 12, &v), 0);
    cont[10] = 0x00; /* an 11-byte encoding of 0 is still too long */
    assert_int_equal(rd_get_varint(cont, 12, &v), 0);

    /* the 10th byte can carry only bit 63 */
    uint8_t big[10];
    memset(big, 0xff, 9);
    big[9] = 0x01;
    assert_int_equal(rd_get_varint(big, 10, &v), 10);
    assert_true(v == UINT64_MAX);
    big[9] = 0x02; /* bit 64: overflow */
    assert_int_equal(rd_get_varint(big, 10, &v), 0);
    big[9] = 0x7f;
    assert_int_equal(rd_get_varint(big, 10, &v), 0);
    big[9] = 0x81; /* bit 63 plus a continuation */
    assert_int_equal(rd_get_varint(big, 10, &v), 0);
    memset(big, 0x80, 9);
    big[9] = 0x01;
    assert_int_equal(rd_get_varint(big, 10, &v), 10);
    assert_true(v == 1ULL << 63);
}

/* rd_parse_ll reads exactly n bytes, as Redis's string2ll: no spaces, no '+', no overflow. */
static void test_parse_ll(void **state)
{
    (void)state;
    long long v = 7;
    assert_int_equal(rd_parse_ll("123x", 3, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(rd_parse_ll("-5", 2, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(rd_parse_ll("9223372036854775807", 19, &v), 0);
    assert_true(v == LLONG_MAX);
    assert_int_equal(rd_parse_ll("-9223372036854775808", 20, &v), 0);
    assert_true(v == LLONG_MIN);
    v = 7;
    assert_int_equal(rd_parse_ll("9223372036854775808", 19, &v), -1);
    assert_int_equal(rd_parse_ll("-9223372036854775809", 20, &v), -1);
    assert_int_equal(rd_parse_ll("99999999999999999999", 20, &v), -1);
    assert_int_equal(rd_parse_ll("", 0, &v), -1);
    assert_int_equal(rd_parse_ll("-", 1, &v), -1);
    assert_int_equal(rd_parse_ll("+1", 2, &v), -1);
    assert_int_equal(rd_parse_ll(" 1", 2, &v), -1);
    assert_int_equal(rd_parse_ll("1 ", 2, &v), -1);
    assert_int_equal(rd_parse_ll("1\0", 2, &v), -1);
    assert_int_equal(rd_parse_ll("01", 2, &v), -1);
    assert_int_equal(rd_parse_ll("-0", 2, &v), -1);
    assert_int_equal(rd_parse_ll("0", 1, &v), 0);
    assert_int_equal(v, 0);
    v = 7;
    assert_int_equal(rd_parse_ll("x", 1, &v), -1);
    assert_int_equal(v, 7); /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ll),
        cmocka_unit_test(test_map_empty_and_key0),
        cmocka_unit_test(test_map_replace),
        cmocka_unit_test(test_map_extreme_keys),
        cmocka_unit_test(test_map_many_random),
        cmocka_unit_test(test_map_backward_shift_wraparound),
        cmocka_unit_test(test_buf_append_consume),
        cmocka_unit_test(test_buf_binary_and_growth),
        cmocka_unit_test(test_buf_reserve),
        cmocka_unit_test(test_buf_reserve_compacts),
        cmocka_unit_test(test_buf_compact),
        cmocka_unit_test(test_resp_writers),
        cmocka_unit_test(test_varint_roundtrip),
        cmocka_unit_test(test_varint_truncated),
        cmocka_unit_test(test_varint_overlong),
        cmocka_unit_test(test_varint_padded_rejected),
        cmocka_unit_test(test_loopback_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
