/* Unit tests for raftlog/store.c: the RocksDB-backed Raft log.
 *
 * Each test gets a fresh directory under /tmp (removed afterwards) with a store opened in it.
 * Corruption tests close the store, edit records directly through the RocksDB C API, and reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "raftlog/store.h"

struct fixture {
    char dir[64]; /* the temp dir */
    char db[96];  /* the store inside it (created by rlog_open) */
    struct rlog *s;
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/rlog-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/db", f->dir);
    char errbuf[256] = "";
    assert_int_equal(rlog_open(f->db, &f->s, errbuf, sizeof(errbuf)), RLOG_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rlog_close(f->s);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void reopen(struct fixture *f)
{
    char errbuf[256] = "";
    rlog_close(f->s);
    f->s = NULL;
    int rc = rlog_open(f->db, &f->s, errbuf, sizeof(errbuf));
    if (rc != RLOG_OK)
        fail_msg("reopen: %s (%s)", rlog_errstr(rc), errbuf);
}

/* Stages entries [lo, lo + n) with the given term; entry i's data is "e<i>t<term>". */
static void append_range(struct rlog *s, uint64_t lo, size_t n, uint64_t term)
{
    char bufs[64][32];
    struct rlog_entry ents[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(bufs[i], sizeof(bufs[i]), "e%llut%llu", (unsigned long long)(lo + i),
                           (unsigned long long)term);
        ents[i] = (struct rlog_entry){.index = lo + i,
                                      .term = term,
                                      .type = (uint8_t)(i % 3),
                                      .data = bufs[i],
                                      .len = (size_t)len};
    }
    assert_int_equal(rlog_append(s, ents, n), RLOG_OK);
}

/* Checks entry `index` holds what append_range(.., term) wrote. */
static void expect_entry(struct rlog *s, uint64_t index, uint64_t term)
{
    char want[32];
    snprintf(want, sizeof(want), "e%llut%llu", (unsigned long long)index, (unsigned long long)term);
    struct rlog_entry e;
    assert_int_equal(rlog_get(s, index, &e), RLOG_OK);
    assert_int_equal(e.index, index);
    assert_int_equal(e.term, term);
    assert_int_equal(e.len, strlen(want));
    assert_memory_equal(e.data, want, e.len);
    free((void *)e.data);
    uint64_t t = 0;
    assert_int_equal(rlog_term(s, index, &t), RLOG_OK);
    assert_int_equal(t, term);
}

static void expect_range(struct rlog *s, uint64_t first, uint64_t last)
{
    assert_int_equal(rlog_first_index(s), first);
    assert_int_equal(rlog_last_index(s), last);
}

/* Checks the log is entries 1..last of one term, with hard state hs. */
static void expect_log(struct rlog *s, uint64_t last, uint64_t term,
                       const struct rlog_hard_state *hs)
{
    struct rlog_hard_state got;
    expect_range(s, 1, last);
    for (uint64_t i = 1; i <= last; i++)
        expect_entry(s, i, term);
    rlog_hard_state(s, &got);
    assert_memory_equal(&got, hs, sizeof(got));
}

/* ---- raw RocksDB access for corruption tests (store must be closed) ---- */

static rocksdb_t *raw_open(const char *path, rocksdb_options_t **opts)
{
    char *err = NULL;
    *opts = rocksdb_options_create();
    rocksdb_t *db = rocksdb_open(*opts, path, &err);
    if (err)
        fail_msg("raw open: %s", err);
    return db;
}

static void raw_close(rocksdb_t *db, rocksdb_options_t *opts)
{
    rocksdb_close(db);
    rocksdb_options_destroy(opts);
}

static void raw_put(rocksdb_t *db, const void *k, size_t klen, const void *v, size_t vlen)
{
    char *err = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put(db, wo, k, klen, v, vlen, &err);
    rocksdb_writeoptions_destroy(wo);
    if (err)
        fail_msg("raw put: %s", err);
}

static void raw_delete(rocksdb_t *db, const void *k, size_t klen)
{
    char *err = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_delete(db, wo, k, klen, &err);
    rocksdb_writeoptions_destroy(wo);
    if (err)
        fail_msg("raw delete: %s", err);
}

/* Returns the malloc'd raw value under k (rocksdb_free it), NULL when absent. */
static char *raw_get(rocksdb_t *db, const void *k, size_t klen, size_t *vlen)
{
    char *err = NULL;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *v = rocksdb_get(db, ro, k, klen, vlen, &err);
    rocksdb_readoptions_destroy(ro);
    if (err)
        fail_msg("raw get: %s", err);
    return v;
}

static void ekey(unsigned char k[9], uint64_t index)
{
    k[0] = 'e';
    for (int i = 8; i >= 1; i--, index >>= 8)
        k[i] = (unsigned char)index;
}

/* Bit-at-a-time CRC32C, an independent reference for the on-disk format test. */
static uint32_t ref_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* ---- tests ---- */

static void test_fresh_store_is_empty(void **state)
{
    struct fixture *f = *state;
    struct rlog_entry e;
    struct rlog_hard_state hs = {1, 1, 1};
    uint64_t t = 99, si = 99, st = 99;
    void *v = NULL;
    size_t len = 0;

    expect_range(f->s, 1, 0);
    assert_int_equal(rlog_get(f->s, 0, &e), RLOG_ENOTFOUND);
    assert_int_equal(rlog_get(f->s, 1, &e), RLOG_ENOTFOUND);
    assert_int_equal(rlog_term(f->s, 0, &t), RLOG_OK); /* term(0) == 0: Raft's sentinel */
    assert_int_equal(t, 0);
    assert_int_equal(rlog_term(f->s, 1, &t), RLOG_ENOTFOUND);
    rlog_hard_state(f->s, &hs);
    assert_int_equal(hs.term + hs.vote + hs.commit, 0);
    rlog_snapshot(f->s, &si, &st);
    assert_int_equal(si + st, 0);
    assert_int_equal(rlog_get_meta(f->s, "node-id", &v, &len), RLOG_ENOTFOUND);
    assert_int_equal(rlog_pending(f->s), 0);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK); /* nothing staged: no-op */
    assert_string_equal(rlog_last_error(f->s), "");

    reopen(f); /* a store that never had anything flushed reopens empty */
    expect_range(f->s, 1, 0);
}

static void test_append_rejects_bad_ranges(void **state)
{
    struct fixture *f = *state;
    char d[4] = "abc";
    struct rlog_entry e = {.index = 0, .term = 1, .data = d, .len = 3};

    assert_int_equal(rlog_append(f->s, &e, 0), RLOG_OK);
    assert_int_equal(rlog_pending(f->s), 0);
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_EINVAL); /* index 0 */
    e.index = 2;
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_EINVAL); /* gap after last (0) */

    struct rlog_entry two[2] = {{.index = 1, .term = 1, .data = d, .len = 3},
                                {.index = 3, .term = 1, .data = d, .len = 3}};
    assert_int_equal(rlog_append(f->s, two, 2), RLOG_EINVAL); /* not consecutive */
    two[1].index = 2;
    two[1].data = NULL;
    assert_int_equal(rlog_append(f->s, two, 2), RLOG_EINVAL); /* data missing */
    two[1].data = d;
    two[1].len = (size_t)RLOG_ENTRY_DATA_MAX + 1;
    assert_int_equal(rlog_append(f->s, two, 2), RLOG_EINVAL); /* over the limit */
    /* Nothing of the rejected calls was staged. */
    assert_int_equal(rlog_pending(f->s), 0);
    expect_range(f->s, 1, 0);

    /* The largest index is RLOG_INDEX_MAX, reachable only through a snapshot. */
    assert_int_equal(rlog_set_snapshot(f->s, RLOG_INDEX_MAX - 1, 4), RLOG_OK);
    e.index = RLOG_INDEX_MAX;
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_OK);
    expect_range(f->s, RLOG_INDEX_MAX, RLOG_INDEX_MAX);
    e.index = RLOG_INDEX_MAX + 1;
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_EINVAL);
    assert_int_equal(rlog_set_snapshot(f->s, UINT64_MAX, 4), RLOG_EINVAL);
    assert_int_equal(rlog_flush(f->s, 0), RLOG_OK);
    reopen(f);
    expect_range(f->s, RLOG_INDEX_MAX, RLOG_INDEX_MAX);
}

static void test_reads_see_staged_entries(void **state)
{
    struct fixture *f = *state;
    append_range(f->s, 1, 5, 1);
    assert_int_equal(rlog_pending(f->s), 1);
    expect_range(f->s, 1, 5);
    for (uint64_t i = 1; i <= 5; i++)
        expect_entry(f->s, i, 1);
    struct rlog_entry e;
    assert_int_equal(rlog_get(f->s, 6, &e), RLOG_ENOTFOUND);

    /* Half flushed, half staged: reads span both. */
    assert_int_equal(rlog_flush(f->s, 0), RLOG_OK);
    assert_int_equal(rlog_pending(f->s), 0);
    append_range(f->s, 6, 5, 2);
    for (uint64_t i = 1; i <= 10; i++)
        expect_entry(f->s, i, i <= 5 ? 1 : 2);
}

static void test_flush_and_reopen_recovers_everything(void **state)
{
    struct fixture *f = *state;
    struct rlog_hard_state hs = {.term = 7, .vote = 3, .commit = 4}, got;
    append_range(f->s, 1, 8, 7);
    assert_int_equal(rlog_set_hard_state(f->s, &hs), RLOG_OK);
    assert_int_equal(rlog_set_meta(f->s, "name", "node-a", 6), RLOG_OK);
    assert_int_equal(rlog_set_meta_u64(f->s, "boot", 42), RLOG_OK);
    rlog_hard_state(f->s, &got); /* staged hard state is visible at once */
    assert_memory_equal(&got, &hs, sizeof(hs));
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);

    reopen(f);
    expect_log(f->s, 8, 7, &hs);
    void *v = NULL;
    size_t len = 0;
    uint64_t boot = 0;
    assert_int_equal(rlog_get_meta(f->s, "name", &v, &len), RLOG_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(v, "node-a", 6);
    free(v);
    assert_int_equal(rlog_get_meta_u64(f->s, "boot", &boot), RLOG_OK);
    assert_int_equal(boot, 42);
    /* A value that is not 8 bytes is not a u64. */
    assert_int_equal(rlog_get_meta_u64(f->s, "name", &boot), RLOG_ECORRUPT);
}

static void test_close_discards_unflushed(void **state)
{
    struct fixture *f = *state;
    struct rlog_hard_state hs = {.term = 2}, got;
    append_range(f->s, 1, 3, 1);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    append_range(f->s, 4, 3, 1);
    assert_int_equal(rlog_set_hard_state(f->s, &hs), RLOG_OK);
    assert_int_equal(rlog_set_meta_u64(f->s, "boot", 1), RLOG_OK);
    reopen(f);
    expect_range(f->s, 1, 3);
    rlog_hard_state(f->s, &got);
    assert_int_equal(got.term, 0);
    uint64_t boot;
    assert_int_equal(rlog_get_meta_u64(f->s, "boot", &boot), RLOG_ENOTFOUND);
}

/* Raft §5.3: a follower drops a conflicting suffix and takes the leader's entries. */
static void test_conflicting_suffix_is_replaced(void **state)
{
    struct fixture *f = *state;
    struct rlog_entry e;

    /* All staged: overwrite from 3 with a shorter run. */
    append_range(f->s, 1, 5, 1);
    append_range(f->s, 3, 2, 2);
    expect_range(f->s, 1, 4);
    assert_int_equal(rlog_get(f->s, 5, &e), RLOG_ENOTFOUND);
    expect_entry(f->s, 2, 1);
    expect_entry(f->s, 3, 2);
    expect_entry(f->s, 4, 2);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    reopen(f);
    expect_range(f->s, 1, 4);
    expect_entry(f->s, 4, 2);

    /* Flushed 1..4, staged 5..7, then overwrite from 3: crosses the flushed/staged line. */
    append_range(f->s, 5, 3, 2);
    append_range(f->s, 3, 1, 3);
    expect_range(f->s, 1, 3);
    expect_entry(f->s, 3, 3);
    assert_int_equal(rlog_get(f->s, 4, &e), RLOG_ENOTFOUND);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    reopen(f); /* the dropped keys 4.. must be gone on disk, or last would come back as 7 */
    expect_range(f->s, 1, 3);
    expect_entry(f->s, 2, 1);
    expect_entry(f->s, 3, 3);

    /* Overwrite with a longer run than what it replaces, and from the very first index. */
    append_range(f->s, 2, 6, 4);
    expect_range(f->s, 1, 7);
    append_range(f->s, 1, 2, 5);
    expect_range(f->s, 1, 2);
    assert_int_equal(rlog_flush(f->s, 0), RLOG_OK);
    reopen(f);
    expect_range(f->s, 1, 2);
    expect_entry(f->s, 1, 5);
    expect_entry(f->s, 2, 5);

    /* Appending below the first index is a caller error. */
    assert_int_equal(rlog_set_snapshot(f->s, 1, 5), RLOG_OK);
    e = (struct rlog_entry){.index = 1, .term = 6};
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_EINVAL);
}

static void test_snapshot_trims_log(void **state)
{
    struct fixture *f = *state;
    struct rlog_entry e;
    uint64_t t = 0, si = 0, st = 0;

    append_range(f->s, 1, 10, 2);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    assert_int_equal(rlog_set_snapshot(f->s, 5, 2), RLOG_OK);
    expect_range(f->s, 6, 10);
    assert_int_equal(rlog_get(f->s, 5, &e), RLOG_ENOTFOUND);
    assert_int_equal(rlog_term(f->s, 5, &t), RLOG_OK); /* the snapshot's term */
    assert_int_equal(t, 2);
    assert_int_equal(rlog_term(f->s, 4, &t), RLOG_ENOTFOUND);
    expect_entry(f->s, 6, 2);
    assert_int_equal(rlog_set_snapshot(f->s, 3, 2), RLOG_EINVAL); /* older than the current */
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);

    reopen(f);
    expect_range(f->s, 6, 10);
    rlog_snapshot(f->s, &si, &st);
    assert_int_equal(si, 5);
    assert_int_equal(st, 2);
    for (uint64_t i = 6; i <= 10; i++)
        expect_entry(f->s, i, 2);

    /* A snapshot past the end empties the log; it restarts after the snapshot. */
    assert_int_equal(rlog_set_snapshot(f->s, 20, 9), RLOG_OK);
    expect_range(f->s, 21, 20);
    assert_int_equal(rlog_term(f->s, 20, &t), RLOG_OK);
    assert_int_equal(t, 9);
    assert_int_equal(rlog_get(f->s, 10, &e), RLOG_ENOTFOUND);
    e = (struct rlog_entry){.index = 20, .term = 9};
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_EINVAL);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    reopen(f);
    expect_range(f->s, 21, 20);
    append_range(f->s, 21, 2, 9);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    reopen(f);
    expect_range(f->s, 21, 22);
    expect_entry(f->s, 21, 9);
}

static void test_snapshot_over_staged_entries(void **state)
{
    struct fixture *f = *state;
    append_range(f->s, 1, 3, 1);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    append_range(f->s, 4, 3, 1); /* 4..6 staged */
    assert_int_equal(rlog_set_snapshot(f->s, 4, 1), RLOG_OK);
    expect_range(f->s, 5, 6);
    expect_entry(f->s, 5, 1);
    expect_entry(f->s, 6, 1);
    append_range(f->s, 7, 1, 2);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    reopen(f);
    expect_range(f->s, 5, 7);
    expect_entry(f->s, 5, 1);
    expect_entry(f->s, 7, 2);

    /* Snapshot on a fresh-from-reopen store, the whole staged tail covered. */
    append_range(f->s, 8, 2, 2);
    assert_int_equal(rlog_set_snapshot(f->s, 9, 2), RLOG_OK);
    expect_range(f->s, 10, 9);
    assert_int_equal(rlog_flush(f->s, 0), RLOG_OK);
    reopen(f);
    expect_range(f->s, 10, 9);
}

static void test_meta_limits_and_overlay(void **state)
{
    struct fixture *f = *state;
    char key[RLOG_META_KEY_MAX + 2];
    void *v = NULL;
    size_t len = 0;
    uint64_t u = 0;

    memset(key, 'k', sizeof(key));
    key[RLOG_META_KEY_MAX] = '\0';
    assert_int_equal(rlog_set_meta(f->s, key, "x", 1), RLOG_OK);
    key[RLOG_META_KEY_MAX] = 'k';
    key[RLOG_META_KEY_MAX + 1] = '\0';
    assert_int_equal(rlog_set_meta(f->s, key, "x", 1), RLOG_EINVAL);
    assert_int_equal(rlog_get_meta(f->s, key, &v, &len), RLOG_EINVAL);
    assert_int_equal(rlog_set_meta(f->s, "", "x", 1), RLOG_EINVAL);
    assert_int_equal(rlog_set_meta(f->s, NULL, "x", 1), RLOG_EINVAL);

    char *big = malloc(RLOG_META_VAL_MAX + 1);
    assert_non_null(big);
    memset(big, 0xa5, RLOG_META_VAL_MAX + 1);
    assert_int_equal(rlog_set_meta(f->s, "big", big, RLOG_META_VAL_MAX + 1), RLOG_EINVAL);
    assert_int_equal(rlog_set_meta(f->s, "big", big, RLOG_META_VAL_MAX), RLOG_OK);

    /* The latest staged value wins, before and after the flush. */
    assert_int_equal(rlog_set_meta_u64(f->s, "boot", 1), RLOG_OK);
    assert_int_equal(rlog_set_meta_u64(f->s, "boot", 2), RLOG_OK);
    assert_int_equal(rlog_get_meta_u64(f->s, "boot", &u), RLOG_OK);
    assert_int_equal(u, 2);
    assert_int_equal(rlog_set_meta(f->s, "empty", NULL, 0), RLOG_OK);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    assert_int_equal(rlog_set_meta_u64(f->s, "boot", 3), RLOG_OK);
    assert_int_equal(rlog_get_meta_u64(f->s, "boot", &u), RLOG_OK);
    assert_int_equal(u, 3);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);

    reopen(f);
    assert_int_equal(rlog_get_meta_u64(f->s, "boot", &u), RLOG_OK);
    assert_int_equal(u, 3);
    assert_int_equal(rlog_get_meta(f->s, "big", &v, &len), RLOG_OK);
    assert_int_equal(len, RLOG_META_VAL_MAX);
    assert_memory_equal(v, big, len);
    free(v);
    assert_int_equal(rlog_get_meta(f->s, "empty", &v, &len), RLOG_OK);
    assert_int_equal(len, 0);
    assert_non_null(v);
    free(v);
    free(big);
}

static void test_large_entry(void **state)
{
    struct fixture *f = *state;
    size_t n = 32u << 20;
    unsigned char *data = malloc(n);
    assert_non_null(data);
    uint64_t x = 88172645463325252ull; /* xorshift64: incompressible, so the size check holds */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data[i] = (unsigned char)x;
    }
    struct rlog_entry e = {.index = 1, .term = 3, .type = 1, .data = data, .len = n}, got;
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_OK);
    append_range(f->s, 2, 1, 3);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    reopen(f);
    assert_int_equal(rlog_get(f->s, 1, &got), RLOG_OK);
    assert_int_equal(got.len, n);
    assert_int_equal(got.type, 1);
    assert_memory_equal(got.data, data, n);
    free((void *)got.data);
    expect_entry(f->s, 2, 3);

    /* An empty entry comes back with a non-NULL buffer. */
    e = (struct rlog_entry){.index = 3, .term = 3, .type = 2, .data = NULL, .len = 0};
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_OK);
    assert_int_equal(rlog_get(f->s, 3, &got), RLOG_OK);
    assert_int_equal(got.len, 0);
    assert_int_equal(got.type, 2);
    assert_non_null(got.data);
    free((void *)got.data);
    assert_true(rlog_disk_bytes(f->s) > n / 2);
    free(data);
}

/* Pins the documented record layout, CRC included, against an independent CRC32C. */
static void test_on_disk_format(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ref_crc32c(0, "123456789", 9), 0xE3069283u);

    struct rlog_entry e = {
        .index = 1, .term = 0x0102030405060708ull, .type = 9, .data = "hi", .len = 2};
    struct rlog_hard_state hs = {.term = 1, .vote = 2, .commit = 3};
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_OK);
    assert_int_equal(rlog_set_hard_state(f->s, &hs), RLOG_OK);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    rlog_close(f->s);
    f->s = NULL;

    rocksdb_options_t *opts;
    rocksdb_t *db = raw_open(f->db, &opts);
    unsigned char k[9], want[20] = {1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 2, 'h', 'i'};
    ekey(k, 1);
    uint32_t c = ref_crc32c(ref_crc32c(0, k, 9), want, 16);
    want[16] = (unsigned char)(c >> 24);
    want[17] = (unsigned char)(c >> 16);
    want[18] = (unsigned char)(c >> 8);
    want[19] = (unsigned char)c;
    size_t vlen = 0;
    char *v = raw_get(db, k, 9, &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, 20);
    assert_memory_equal(v, want, 20);
    rocksdb_free(v);

    v = raw_get(db, "h", 1, &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, 29);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[8], 1);
    assert_int_equal(v[16], 2);
    assert_int_equal(v[24], 3);
    rocksdb_free(v);
    raw_close(db, opts);
    reopen(f);
}

static void test_corrupt_records_are_detected(void **state)
{
    struct fixture *f = *state;
    struct rlog_entry e;
    uint64_t t;
    append_range(f->s, 1, 6, 1);
    assert_int_equal(rlog_set_meta(f->s, "name", "abc", 3), RLOG_OK);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    rlog_close(f->s);
    f->s = NULL;

    rocksdb_options_t *opts;
    rocksdb_t *db = raw_open(f->db, &opts);
    unsigned char k[9];
    size_t vlen = 0;
    ekey(k, 1);
    char *good = raw_get(db, k, 9, &vlen);
    assert_non_null(good);
    char *bad = malloc(vlen + 1);
    assert_non_null(bad);

    memcpy(bad, good, vlen); /* 2: a flipped data bit (CRC) */
    bad[vlen - 5] ^= 1;
    ekey(k, 2);
    raw_put(db, k, 9, bad, vlen);
    memcpy(bad, good, vlen); /* 3: unknown format version */
    bad[0] = 2;
    ekey(k, 3);
    raw_put(db, k, 9, bad, vlen);
    ekey(k, 4); /* 4: truncated record */
    raw_put(db, k, 9, good, 7);
    ekey(k, 5); /* 5: entry 1's intact record under the wrong key */
    raw_put(db, k, 9, good, vlen);
    memcpy(bad, good, vlen); /* 6: declared length disagrees with the record's size */
    bad[vlen] = 0;
    ekey(k, 6);
    raw_put(db, k, 9, bad, vlen + 1);
    unsigned char mk[5] = {'m', 'n', 'a', 'm', 'e'};
    raw_put(db, mk, 5, "\x01garbage", 8);
    rocksdb_free(good);
    free(bad);
    raw_close(db, opts);

    reopen(f);
    for (uint64_t i = 2; i <= 6; i++) {
        assert_int_equal(rlog_get(f->s, i, &e), RLOG_ECORRUPT);
        assert_int_equal(rlog_term(f->s, i, &t), RLOG_ECORRUPT);
    }
    void *v;
    size_t len;
    assert_int_equal(rlog_get_meta(f->s, "name", &v, &len), RLOG_ECORRUPT);
    /* Corruption is per record, not sticky. */
    expect_entry(f->s, 1, 1);
    assert_string_equal(rlog_last_error(f->s), "");

    /* A hole inside [first, last] is corruption too. */
    rlog_close(f->s);
    f->s = NULL;
    db = raw_open(f->db, &opts);
    ekey(k, 3);
    raw_delete(db, k, 9);
    raw_close(db, opts);
    reopen(f);
    expect_range(f->s, 1, 6);
    assert_int_equal(rlog_get(f->s, 3, &e), RLOG_ECORRUPT);
}

static void test_corrupt_state_fails_open(void **state)
{
    struct fixture *f = *state;
    char errbuf[256] = "";
    struct rlog_hard_state hs = {.term = 1};
    assert_int_equal(rlog_set_hard_state(f->s, &hs), RLOG_OK);
    append_range(f->s, 1, 3, 1);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);
    rlog_close(f->s);
    f->s = NULL;

    rocksdb_options_t *opts;
    rocksdb_t *db = raw_open(f->db, &opts);
    size_t vlen = 0;
    char *h = raw_get(db, "h", 1, &vlen);
    assert_non_null(h);
    h[3] ^= 0x40;
    raw_put(db, "h", 1, h, vlen);
    raw_close(db, opts);

    assert_int_equal(rlog_open(f->db, &f->s, errbuf, sizeof(errbuf)), RLOG_ECORRUPT);
    assert_null(f->s);
    assert_non_null(strstr(errbuf, f->db));

    /* Restore the hard state, then make the log start where no snapshot says it may. */
    db = raw_open(f->db, &opts);
    h[3] ^= 0x40;
    raw_put(db, "h", 1, h, vlen);
    rocksdb_free(h);
    unsigned char k[9];
    ekey(k, 1);
    raw_delete(db, k, 9);
    raw_close(db, opts);
    assert_int_equal(rlog_open(f->db, &f->s, errbuf, sizeof(errbuf)), RLOG_ECORRUPT);
    assert_null(f->s);
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    char errbuf[256] = "";
    struct rlog *other = (struct rlog *)1;
    /* RocksDB's LOCK file keeps a second opener out. */
    assert_int_equal(rlog_open(f->db, &other, errbuf, sizeof(errbuf)), RLOG_EIO);
    assert_null(other);
    assert_true(strlen(errbuf) > 0);
    assert_int_equal(rlog_open(NULL, &other, errbuf, sizeof(errbuf)), RLOG_EINVAL);
    assert_int_equal(rlog_open("", &other, NULL, 0), RLOG_EINVAL);
    assert_string_equal(rlog_errstr(RLOG_ECORRUPT), "corrupt record");
    assert_string_equal(rlog_errstr(12345), "unknown error");
}

/* A failed write (here: the file size limit) makes the store fail every later call. */
/* A write RocksDB cannot make (the file-size limit) fails the store for good; the write is
 * made here or, with async, on the store's thread. */
static void io_error_case(struct fixture *f, int async)
{
    struct rlog_entry e;
    struct rlimit old, lim;
    append_range(f->s, 1, 2, 1);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_OK);

    size_t n = 4u << 20;
    char *data = calloc(1, n);
    assert_non_null(data);
    e = (struct rlog_entry){.index = 3, .term = 1, .data = data, .len = n};
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_OK);

    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int started = async ? rlog_flush_start(f->s) : 1;
    /* With async, a call that stages waits for the write first and sees it fail; the write is
     * then reported failed too, never done. */
    int staged = async ? rlog_set_meta_u64(f->s, "boot", 1) : RLOG_EIO;
    int rc = async ? rlog_flush_busy(f->s) : rlog_flush(f->s, 1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    free(data);

    assert_int_equal(started, 1);
    assert_int_equal(staged, RLOG_EIO);
    assert_int_equal(rc, RLOG_EIO);
    assert_true(strlen(rlog_last_error(f->s)) > 0);
    uint64_t t;
    assert_int_equal(rlog_get(f->s, 1, &e), RLOG_EIO);
    assert_int_equal(rlog_term(f->s, 1, &t), RLOG_EIO);
    assert_int_equal(rlog_flush(f->s, 1), RLOG_EIO);
    assert_int_equal(rlog_flush_start(f->s), RLOG_EIO);
    assert_int_equal(rlog_flush_busy(f->s), RLOG_EIO); /* nothing in flight, but failed */
    assert_int_equal(rlog_flush_wait(f->s), RLOG_EIO);
    assert_int_equal(rlog_set_meta_u64(f->s, "boot", 1), RLOG_EIO);
    assert_int_equal(rlog_set_snapshot(f->s, 1, 1), RLOG_EIO);
    e = (struct rlog_entry){.index = 4, .term = 1};
    assert_int_equal(rlog_append(f->s, &e, 1), RLOG_EIO);
}

static void test_io_error_is_sticky(void **state)
{
    io_error_case(*state, 0);
}

/* ---- writes on the store's thread (rlog_flush_start) ---- */

static int notified; /* rlog_set_flush_notify's calls, from the writer thread */

static void count_notify(void *arg)
{
    __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static void test_async_flush_writes_in_background(void **state)
{
    struct fixture *f = *state;
    struct rlog_hard_state hs = {.term = 3, .vote = 1, .commit = 2};
    notified = 0;
    rlog_set_flush_notify(f->s, count_notify, &notified);
    assert_int_equal(rlog_flush_start(f->s), 0); /* nothing staged: nothing to start */
    append_range(f->s, 1, 5, 3);
    assert_int_equal(rlog_set_hard_state(f->s, &hs), RLOG_OK);
    assert_int_equal(rlog_flush_start(f->s), 1);
    /* While it is written, reads see what it holds, and nothing else is staged. */
    assert_int_equal(rlog_pending(f->s), 0);
    expect_log(f->s, 5, 3, &hs);
    assert_int_equal(rlog_flush_wait(f->s), RLOG_OK);
    assert_int_equal(__atomic_load_n(&notified, __ATOMIC_SEQ_CST), 1);
    assert_int_equal(rlog_flush_busy(f->s), RLOG_OK); /* finished, nothing in flight */
    assert_int_equal(rlog_flush_wait(f->s), RLOG_OK);

    /* A second write, finished by polling. */
    append_range(f->s, 6, 2, 3);
    assert_int_equal(rlog_flush_start(f->s), 1);
    int rc, polls = 0;
    while ((rc = rlog_flush_busy(f->s)) == 1 && polls++ < 100000)
        usleep(10);
    assert_int_equal(rc, RLOG_OK);
    assert_int_equal(__atomic_load_n(&notified, __ATOMIC_SEQ_CST), 2);
    rlog_set_flush_notify(f->s, NULL, NULL);

    reopen(f);
    expect_log(f->s, 7, 3, &hs);
}

/* Staging while a write runs waits for it, so batches reach the disk in order; closing the
 * store waits for a write in flight too. */
static void test_async_flush_orders_later_writes(void **state)
{
    struct fixture *f = *state;
    append_range(f->s, 1, 5, 1);
    assert_int_equal(rlog_flush_start(f->s), 1);
    /* Replaces 4..5 of the batch being written: the replacement must win. */
    append_range(f->s, 4, 3, 2);
    assert_int_equal(rlog_flush_busy(f->s), RLOG_OK); /* the wait above finished it */
    assert_int_equal(rlog_pending(f->s), 1);
    expect_range(f->s, 1, 6);
    assert_int_equal(rlog_flush_start(f->s), 1);
    assert_int_equal(rlog_set_meta_u64(f->s, "boot", 9), RLOG_OK);
    assert_int_equal(rlog_flush_start(f->s), 1);
    reopen(f); /* closes with that write in flight */
    expect_range(f->s, 1, 6);
    for (uint64_t i = 1; i <= 6; i++)
        expect_entry(f->s, i, i <= 3 ? 1 : 2);
    uint64_t boot = 0;
    assert_int_equal(rlog_get_meta_u64(f->s, "boot", &boot), RLOG_OK);
    assert_int_equal(boot, 9);
}

static void test_async_flush_error_is_sticky(void **state)
{
    io_error_case(*state, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_store_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_rejects_bad_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_see_staged_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_and_reopen_recovers_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_discards_unflushed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicting_suffix_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_trims_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_over_staged_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_limits_and_overlay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_disk_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_records_are_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_state_fails_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error_is_sticky, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_flush_writes_in_background, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_flush_orders_later_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_flush_error_is_sticky, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
