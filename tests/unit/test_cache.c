/* Unit tests for raftlog/cache.c: the committed entries kept in memory for the apply path.
 * They check the order of hand-outs, the bounds (entries and bytes, which must come back as
 * entries are taken), and that anything out of sequence empties the cache rather than hand out
 * a wrong entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftlog/cache.h"

static void *copy_of(const void *p, size_t len)
{
    void *d = malloc(len);
    assert_non_null(d);
    memcpy(d, p, len);
    return d;
}

static void push_str(struct rn_cache *c, uint64_t index, const char *s)
{
    rn_cache_put(c, index, 0, copy_of(s, strlen(s)), strlen(s));
}

static void expect_take(struct rn_cache *c, uint64_t index, const char *want)
{
    uint8_t type = 9;
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(rn_cache_take(c, index, &type, &data, &len), 0);
    assert_int_equal(type, 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(data, want, len);
    free(data);
}

static void expect_miss(struct rn_cache *c, uint64_t index)
{
    uint8_t type;
    void *data = NULL;
    size_t len;
    assert_int_equal(rn_cache_take(c, index, &type, &data, &len), -1);
    assert_null(data);
}

static void test_in_order(void **state)
{
    struct rn_cache c;
    rn_cache_init(&c, 8, 1024);
    push_str(&c, 5, "five");
    push_str(&c, 6, "six");
    rn_cache_put(&c, 7, 2, NULL, 0); /* a no-op or configuration: no data */
    expect_miss(&c, 4);
    expect_take(&c, 5, "five");
    expect_miss(&c, 5); /* taken: the caller reads the store if it wants it again */
    expect_take(&c, 6, "six");
    uint8_t type;
    void *data = (void *)1;
    size_t len = 1;
    assert_int_equal(rn_cache_take(&c, 7, &type, &data, &len), 0);
    assert_int_equal(type, 2);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(c.bytes, 0);
    rn_cache_free(&c);
}

static void test_take_skips_older(void **state)
{
    struct rn_cache c;
    rn_cache_init(&c, 8, 1024);
    for (uint64_t i = 1; i <= 4; i++)
        push_str(&c, i, "x");
    expect_take(&c, 3, "x");
    expect_miss(&c, 1);
    expect_miss(&c, 2);
    expect_take(&c, 4, "x");
    assert_int_equal(c.bytes, 0);
    rn_cache_free(&c);
}

/* Bytes come back when entries are taken: a long run never fills the cache. */
static void test_bytes_return(void **state)
{
    struct rn_cache c;
    rn_cache_init(&c, 4, 100);
    char v[40];
    memset(v, 'v', sizeof(v));
    for (uint64_t i = 1; i <= 1000; i++) {
        rn_cache_put(&c, i, 0, copy_of(v, sizeof(v)), sizeof(v));
        uint8_t type;
        void *data;
        size_t len;
        assert_int_equal(rn_cache_take(&c, i, &type, &data, &len), 0);
        free(data);
    }
    assert_int_equal(c.bytes, 0);
    rn_cache_free(&c);
}

static void test_bounds_drop_oldest(void **state)
{
    struct rn_cache c;
    rn_cache_init(&c, 4, 1024);
    char name[16];
    for (uint64_t i = 1; i <= 6; i++) {
        snprintf(name, sizeof(name), "e%llu", (unsigned long long)i);
        push_str(&c, i, name);
    }
    assert_int_equal(c.n, 4);
    expect_miss(&c, 2);
    expect_take(&c, 3, "e3");
    expect_take(&c, 6, "e6");
    rn_cache_free(&c);

    rn_cache_init(&c, 16, 10);
    push_str(&c, 1, "aaaa");
    push_str(&c, 2, "bbbb");
    push_str(&c, 3, "cccc"); /* 12 bytes: the first goes */
    assert_int_equal(c.bytes, 8);
    expect_miss(&c, 1);
    push_str(&c, 4, "this is too long to keep"); /* larger than the bound: nothing kept */
    assert_int_equal(c.n, 0);
    expect_miss(&c, 4);
    push_str(&c, 5, "e5");
    expect_take(&c, 5, "e5");
    rn_cache_free(&c);
}

/* An entry that does not follow the last one starts the cache again. */
static void test_gap_restarts(void **state)
{
    struct rn_cache c;
    rn_cache_init(&c, 8, 1024);
    push_str(&c, 1, "a");
    push_str(&c, 2, "b");
    push_str(&c, 10, "j");
    expect_miss(&c, 1);
    expect_miss(&c, 2);
    expect_take(&c, 10, "j");
    push_str(&c, 3, "c"); /* going back (a reset log) also starts again */
    expect_take(&c, 3, "c");
    rn_cache_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),     cmocka_unit_test(test_take_skips_older),
        cmocka_unit_test(test_bytes_return), cmocka_unit_test(test_bounds_drop_oldest),
        cmocka_unit_test(test_gap_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
