/* Unit tests for backend/entry.c: the versioned binary log entry that carries commands.
 *
 * Round trips (one command, many, binary and empty arguments, the largest varints), then
 * decoding of damaged bytes: every truncation, wrong versions, trailing garbage and counts that
 * claim more than is there. Damaged inputs are copied into allocations of exactly their size so
 * that ASan catches any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/entry.h"
#include "common/buf.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static uint8_t *exact_copy(const void *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    if (n)
        memcpy(c, p, n);
    return c;
}

static int validate_exact(const void *p, size_t n)
{
    uint8_t *c = exact_copy(p, n);
    int rc = be_entry_validate(c, n);
    free(c);
    return rc;
}

static void put_cmd_strs(struct rd_buf *b, int argc, const char *const *argv)
{
    size_t lens[16];
    assert_true(argc <= 16);
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    assert_int_equal(be_entry_put_cmd(b, argc, argv, lens), 0);
}

static void expect_cmd(struct be_entry_reader *r, int argc, const char *const *argv,
                       const size_t *lens)
{
    struct be_cmd c;
    assert_int_equal(be_entry_next(r, &c), 1);
    assert_int_equal(c.argc, argc);
    for (int i = 0; i < argc; i++) {
        assert_int_equal(c.argvlen[i], lens[i]);
        if (lens[i])
            assert_memory_equal(c.argv[i], argv[i], lens[i]);
    }
}

/* An entry with a header h and one command "SET k v". */
static void build_simple(struct rd_buf *b, const struct be_entry_hdr *h)
{
    static const char *const set[] = {"SET", "k", "v"};
    assert_int_equal(be_entry_put_hdr(b, h), 0);
    for (uint32_t i = 0; i < h->ncmds; i++)
        put_cmd_strs(b, 3, set);
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_roundtrip_one(void **state)
{
    (void)state;
    struct be_entry_hdr h = {
        .flags = 0, .origin = 3, .reqid = 77, .db = 5, .time_ms = 1700000000123ULL, .ncmds = 1};
    struct rd_buf b;
    rd_buf_init(&b);
    build_simple(&b, &h);
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), 0);

    struct be_entry_reader r = {0};
    struct be_entry_hdr g;
    memset(&g, 0xa5, sizeof(g));
    assert_int_equal(be_entry_open(&r, rd_buf_rptr(&b), rd_buf_unread(&b), &g), 0);
    assert_int_equal(g.flags, 0);
    assert_int_equal(g.origin, 3);
    assert_int_equal(g.reqid, 77);
    assert_int_equal(g.db, 5);
    assert_true(g.time_ms == 1700000000123ULL);
    assert_int_equal(g.ncmds, 1);
    const char *argv[] = {"SET", "k", "v"};
    const size_t lens[] = {3, 1, 1};
    expect_cmd(&r, 3, argv, lens);
    struct be_cmd c;
    assert_int_equal(be_entry_next(&r, &c), 0);
    assert_int_equal(be_entry_next(&r, &c), 0); /* stays at the end */
    be_entry_reader_free(&r);
    be_entry_reader_free(&r); /* twice is harmless */

    /* the first byte is the version */
    assert_int_equal((uint8_t)rd_buf_rptr(&b)[0], BE_ENTRY_VERSION);
    rd_buf_free(&b);
}

/* Arguments point into the entry's bytes: no copies. */
static void test_args_point_into_entry(void **state)
{
    (void)state;
    struct be_entry_hdr h = {.origin = 1, .reqid = 1, .ncmds = 1};
    struct rd_buf b;
    rd_buf_init(&b);
    build_simple(&b, &h);
    struct be_entry_reader r = {0};
    struct be_entry_hdr g;
    assert_int_equal(be_entry_open(&r, rd_buf_rptr(&b), rd_buf_unread(&b), &g), 0);
    struct be_cmd c;
    assert_int_equal(be_entry_next(&r, &c), 1);
    for (int i = 0; i < c.argc; i++) {
        assert_true(c.argv[i] >= rd_buf_rptr(&b));
        assert_true(c.argv[i] + c.argvlen[i] <= rd_buf_rptr(&b) + rd_buf_unread(&b));
    }
    be_entry_reader_free(&r);
    rd_buf_free(&b);
}

static void test_roundtrip_max_varints(void **state)
{
    (void)state;
    struct be_entry_hdr h = {.flags = UINT32_MAX,
                             .origin = UINT64_MAX,
                             .reqid = UINT64_MAX - 1,
                             .db = UINT64_MAX,
                             .time_ms = UINT64_MAX,
                             .ncmds = 2};
    struct rd_buf b;
    rd_buf_init(&b);
    build_simple(&b, &h);
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), 0);
    struct be_entry_reader r = {0};
    struct be_entry_hdr g;
    assert_int_equal(be_entry_open(&r, rd_buf_rptr(&b), rd_buf_unread(&b), &g), 0);
    assert_true(g.flags == UINT32_MAX);
    assert_true(g.origin == UINT64_MAX);
    assert_true(g.reqid == UINT64_MAX - 1);
    assert_true(g.db == UINT64_MAX);
    assert_true(g.time_ms == UINT64_MAX);
    assert_int_equal(g.ncmds, 2);
    be_entry_reader_free(&r);

    /* zero everywhere */
    struct be_entry_hdr z = {.ncmds = 1};
    rd_buf_reset(&b);
    build_simple(&b, &z);
    assert_int_equal(be_entry_open(&r, rd_buf_rptr(&b), rd_buf_unread(&b), &g), 0);
    assert_true(g.flags == 0 && g.origin == 0 && g.reqid == 0 && g.db == 0 && g.time_ms == 0);
    be_entry_reader_free(&r);
    rd_buf_free(&b);
}

/* Many commands of many shapes: binary bytes, NULs, CR LF, empty arguments, long arguments. */
static void test_roundtrip_many(void **state)
{
    (void)state;
    enum { NCMDS = 500 };
    struct be_entry_hdr h = {.flags = BE_ENTRY_F_MULTI,
                             .origin = 2,
                             .reqid = 123456789,
                             .db = 0,
                             .time_ms = 1,
                             .ncmds = NCMDS};
    struct rd_buf b;
    rd_buf_init(&b);
    assert_int_equal(be_entry_put_hdr(&b, &h), 0);

    /* deterministic argument bytes: command i, argument j has length (i*7+j*13) % 300, except
     * that every 5th argument is empty; bytes are f(i, j, k) covering all 256 values */
    static char pool[1000];
    for (size_t k = 0; k < sizeof(pool); k++)
        pool[k] = (char)(k * 37 + 11);
    const char *argv[64];
    size_t lens[64];
    for (int i = 0; i < NCMDS; i++) {
        int argc = 1 + (i * 11) % 40;
        for (int j = 0; j < argc; j++) {
            lens[j] = (j % 5 == 4) ? 0 : (size_t)((i * 7 + j * 13) % 300);
            argv[j] = pool + (i + j) % 500;
        }
        assert_int_equal(be_entry_put_cmd(&b, argc, argv, lens), 0);
    }
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), 0);

    struct be_entry_reader r = {0};
    struct be_entry_hdr g;
    assert_int_equal(be_entry_open(&r, rd_buf_rptr(&b), rd_buf_unread(&b), &g), 0);
    assert_int_equal(g.flags, BE_ENTRY_F_MULTI);
    assert_int_equal(g.ncmds, NCMDS);
    for (int i = 0; i < NCMDS; i++) {
        int argc = 1 + (i * 11) % 40;
        for (int j = 0; j < argc; j++) {
            lens[j] = (j % 5 == 4) ? 0 : (size_t)((i * 7 + j * 13) % 300);
            argv[j] = pool + (i + j) % 500;
        }
        expect_cmd(&r, argc, argv, lens);
    }
    struct be_cmd c;
    assert_int_equal(be_entry_next(&r, &c), 0);
    be_entry_reader_free(&r);
    rd_buf_free(&b);
}

static void test_roundtrip_big_arg(void **state)
{
    (void)state;
    enum { BIG = 1 << 20 };
    char *big = malloc(BIG);
    assert_non_null(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)(i % 3 == 0 ? '\0' : (i % 3 == 1 ? '\r' : '\n'));
    struct be_entry_hdr h = {.origin = 1, .reqid = 9, .ncmds = 1};
    struct rd_buf b;
    rd_buf_init(&b);
    assert_int_equal(be_entry_put_hdr(&b, &h), 0);
    const char *argv[] = {"SET", "", big};
    const size_t lens[] = {3, 0, BIG};
    assert_int_equal(be_entry_put_cmd(&b, 3, argv, lens), 0);
    struct be_entry_reader r = {0};
    struct be_entry_hdr g;
    assert_int_equal(be_entry_open(&r, rd_buf_rptr(&b), rd_buf_unread(&b), &g), 0);
    expect_cmd(&r, 3, argv, lens);
    struct be_cmd c;
    assert_int_equal(be_entry_next(&r, &c), 0);
    be_entry_reader_free(&r);
    /* one byte short anywhere in the big argument is malformed */
    assert_int_equal(be_entry_validate(rd_buf_rptr(&b), rd_buf_unread(&b) - 1), -1);
    rd_buf_free(&b);
    free(big);
}

/* The reader's argv scratch is reused from command to command and grows when needed; the
 * be_cmd returned points at it. */
static void test_scratch_reuse(void **state)
{
    (void)state;
    struct be_entry_hdr h = {.origin = 1, .reqid = 1, .ncmds = 4};
    struct rd_buf b;
    rd_buf_init(&b);
    assert_int_equal(be_entry_put_hdr(&b, &h), 0);
    const char *small[] = {"GET", "a"};
    const size_t small_len[] = {3, 1};
    const char *big[100];
    size_t big_len[100];
    char names[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", i);
        big[i] = names[i];
        big_len[i] = strlen(names[i]);
    }
    assert_int_equal(be_entry_put_cmd(&b, 2, small, small_len), 0);
    assert_int_equal(be_entry_put_cmd(&b, 2, small, small_len), 0);
    assert_int_equal(be_entry_put_cmd(&b, 100, big, big_len), 0);
    assert_int_equal(be_entry_put_cmd(&b, 2, small, small_len), 0);

    struct be_entry_reader r = {0};
    struct be_entry_hdr g;
    assert_int_equal(be_entry_open(&r, rd_buf_rptr(&b), rd_buf_unread(&b), &g), 0);
    struct be_cmd c1, c2;
    assert_int_equal(be_entry_next(&r, &c1), 1);
    assert_ptr_equal(c1.argv, r.argv);
    const char **scratch = r.argv;
    size_t cap1 = r.argcap;
    assert_true(cap1 >= 2);
    assert_int_equal(be_entry_next(&r, &c2), 1);
    assert_ptr_equal(c2.argv, scratch); /* same scratch, no new allocation */
    assert_int_equal(r.argcap, cap1);
    expect_cmd(&r, 100, big, big_len);
    assert_true(r.argcap >= 100);
    size_t cap2 = r.argcap;
    expect_cmd(&r, 2, small, small_len);
    assert_int_equal(r.argcap, cap2); /* does not shrink */
    struct be_cmd c;
    assert_int_equal(be_entry_next(&r, &c), 0);
    be_entry_reader_free(&r);
    assert_null(r.argv);
    assert_null(r.argvlen);

    /* the same reader struct opened again after a free (open resets it) */
    assert_int_equal(be_entry_open(&r, rd_buf_rptr(&b), rd_buf_unread(&b), &g), 0);
    expect_cmd(&r, 2, small, small_len);
    be_entry_reader_free(&r);
    rd_buf_free(&b);
}

/* ---- damaged input ------------------------------------------------------------------------ */

/* Every proper prefix of a valid entry is rejected; none crashes or reads past its end. */
static void test_truncated_every_length(void **state)
{
    (void)state;
    struct be_entry_hdr h = {.flags = 1,
                             .origin = UINT64_MAX,
                             .reqid = 300,
                             .db = 16384,
                             .time_ms = 1ULL << 40,
                             .ncmds = 3};
    struct rd_buf b;
    rd_buf_init(&b);
    assert_int_equal(be_entry_put_hdr(&b, &h), 0);
    const char *a1[] = {"SET", "key", ""};
    const size_t l1[] = {3, 3, 0};
    assert_int_equal(be_entry_put_cmd(&b, 3, a1, l1), 0);
    char mid[200];
    memset(mid, 'm', sizeof(mid));
    const char *a2[] = {"APPEND", "k", mid};
    const size_t l2[] = {6, 1, sizeof(mid)};
    assert_int_equal(be_entry_put_cmd(&b, 3, a2, l2), 0);
    const char *a3[] = {"DEL", "\0\r\n"};
    const size_t l3[] = {3, 3};
    assert_int_equal(be_entry_put_cmd(&b, 2, a3, l3), 0);
    size_t full = rd_buf_unread(&b);
    assert_int_equal(validate_exact(rd_buf_rptr(&b), full), 0);
    for (size_t len = 0; len < full; len++) {
        if (validate_exact(rd_buf_rptr(&b), len) != -1)
            fail_msg("a truncation to %zu of %zu bytes validated", len, full);
        /* open + next agree: somewhere along the way, -1 */
        uint8_t *c = exact_copy(rd_buf_rptr(&b), len);
        struct be_entry_reader r = {0};
        struct be_entry_hdr g;
        int rc = be_entry_open(&r, c, len, &g);
        if (rc == 0) {
            struct be_cmd cmd;
            while ((rc = be_entry_next(&r, &cmd)) == 1)
                ;
            assert_int_equal(rc, -1);
        }
        be_entry_reader_free(&r);
        free(c);
    }
    assert_int_equal(be_entry_validate(NULL, 0), -1);
    rd_buf_free(&b);
}

static void test_wrong_version(void **state)
{
    (void)state;
    struct be_entry_hdr h = {.origin = 1, .reqid = 1, .ncmds = 1};
    struct rd_buf b;
    rd_buf_init(&b);
    build_simple(&b, &h);
    uint8_t *c = exact_copy(rd_buf_rptr(&b), rd_buf_unread(&b));
    const uint8_t bad[] = {0, 2, 0x81, 0xff};
    for (size_t i = 0; i < sizeof(bad); i++) {
        c[0] = bad[i];
        assert_int_equal(be_entry_validate(c, rd_buf_unread(&b)), -1);
        struct be_entry_reader r = {0};
        struct be_entry_hdr g;
        assert_int_equal(be_entry_open(&r, c, rd_buf_unread(&b), &g), -1);
        be_entry_reader_free(&r);
    }
    c[0] = BE_ENTRY_VERSION;
    assert_int_equal(be_entry_validate(c, rd_buf_unread(&b)), 0);
    free(c);
    rd_buf_free(&b);
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    struct be_entry_hdr h = {.origin = 1, .reqid = 1, .ncmds = 2};
    struct rd_buf b;
    rd_buf_init(&b);
    build_simple(&b, &h);
    size_t full = rd_buf_unread(&b);
    const char *tails[] = {"\0", "x", "\x03SET"};
    const size_t tlen[] = {1, 1, 4};
    for (size_t i = 0; i < 3; i++) {
        struct rd_buf t;
        rd_buf_init(&t);
        assert_int_equal(rd_buf_append(&t, rd_buf_rptr(&b), full), 0);
        assert_int_equal(rd_buf_append(&t, tails[i], tlen[i]), 0);
        assert_int_equal(validate_exact(rd_buf_rptr(&t), rd_buf_unread(&t)), -1);
        /* the commands themselves still read; the end is where the garbage shows */
        struct be_entry_reader r = {0};
        struct be_entry_hdr g;
        struct be_cmd c;
        assert_int_equal(be_entry_open(&r, rd_buf_rptr(&t), rd_buf_unread(&t), &g), 0);
        assert_int_equal(be_entry_next(&r, &c), 1);
        assert_int_equal(be_entry_next(&r, &c), 1);
        assert_int_equal(be_entry_next(&r, &c), -1);
        be_entry_reader_free(&r);
        rd_buf_free(&t);
    }
    rd_buf_free(&b);
}

/* Builds an entry by hand: version, header varints, then raw varints/bytes for the body. */
static void hand_hdr(struct rd_buf *b, uint64_t flags, uint64_t ncmds)
{
    uint8_t v = BE_ENTRY_VERSION;
    assert_int_equal(rd_buf_append(b, &v, 1), 0);
    assert_int_equal(rd_put_varint(b, flags), 0);
    assert_int_equal(rd_put_varint(b, 1), 0); /* origin */
    assert_int_equal(rd_put_varint(b, 2), 0); /* reqid */
    assert_int_equal(rd_put_varint(b, 0), 0); /* db */
    assert_int_equal(rd_put_varint(b, 5), 0); /* time_ms */
    assert_int_equal(rd_put_varint(b, ncmds), 0);
}

static void test_argc_zero(void **state)
{
    (void)state;
    struct rd_buf b;
    rd_buf_init(&b);
    /* the encoder refuses it */
    assert_int_equal(be_entry_put_cmd(&b, 0, NULL, NULL), -1);
    assert_int_equal(be_entry_put_cmd(&b, -1, NULL, NULL), -1);
    /* the decoder refuses it */
    hand_hdr(&b, 0, 1);
    assert_int_equal(rd_put_varint(&b, 0), 0);
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), -1);
    rd_buf_free(&b);
}

static void test_argc_huge(void **state)
{
    (void)state;
    uint64_t bad[] = {BE_ENTRY_ARGC_MAX + 1ULL, 1ULL << 31, 1ULL << 32, UINT64_MAX,
                      BE_ENTRY_ARGC_MAX /* allowed by the limit, but not there */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rd_buf b;
        rd_buf_init(&b);
        hand_hdr(&b, 0, 1);
        assert_int_equal(rd_put_varint(&b, bad[i]), 0);
        /* a few real arguments after it */
        for (int k = 0; k < 3; k++) {
            assert_int_equal(rd_put_varint(&b, 1), 0);
            assert_int_equal(rd_buf_append(&b, "x", 1), 0);
        }
        assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), -1);
        rd_buf_free(&b);
    }
    /* argc just one more than the arguments present */
    struct rd_buf b;
    rd_buf_init(&b);
    hand_hdr(&b, 0, 1);
    assert_int_equal(rd_put_varint(&b, 4), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(rd_put_varint(&b, 1), 0);
        assert_int_equal(rd_buf_append(&b, "x", 1), 0);
    }
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), -1);
    /* ... and exactly right */
    rd_buf_reset(&b);
    hand_hdr(&b, 0, 1);
    assert_int_equal(rd_put_varint(&b, 3), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(rd_put_varint(&b, 1), 0);
        assert_int_equal(rd_buf_append(&b, "x", 1), 0);
    }
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), 0);
    rd_buf_free(&b);
}

static void test_arglen_huge(void **state)
{
    (void)state;
    uint64_t bad[] = {2, 1000, 1ULL << 40, UINT64_MAX, UINT64_MAX - 1};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rd_buf b;
        rd_buf_init(&b);
        hand_hdr(&b, 0, 1);
        assert_int_equal(rd_put_varint(&b, 1), 0);
        assert_int_equal(rd_put_varint(&b, bad[i]), 0);
        assert_int_equal(rd_buf_append(&b, "x", 1), 0); /* one byte where more are claimed */
        assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), -1);
        rd_buf_free(&b);
    }
}

static void test_ncmds_and_flags_huge(void **state)
{
    (void)state;
    uint64_t bad_ncmds[] = {BE_ENTRY_CMDS_MAX + 1ULL, 1ULL << 32, UINT64_MAX};
    for (size_t i = 0; i < sizeof(bad_ncmds) / sizeof(bad_ncmds[0]); i++) {
        struct rd_buf b;
        rd_buf_init(&b);
        hand_hdr(&b, 0, bad_ncmds[i]);
        assert_int_equal(rd_put_varint(&b, 1), 0);
        assert_int_equal(rd_put_varint(&b, 1), 0);
        assert_int_equal(rd_buf_append(&b, "x", 1), 0);
        struct be_entry_reader r = {0};
        struct be_entry_hdr g;
        assert_int_equal(be_entry_open(&r, rd_buf_rptr(&b), rd_buf_unread(&b), &g), -1);
        be_entry_reader_free(&r);
        assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), -1);
        rd_buf_free(&b);
    }
    /* within the limit but more than the bytes hold: open succeeds, the reading fails */
    struct rd_buf b;
    rd_buf_init(&b);
    hand_hdr(&b, 0, BE_ENTRY_CMDS_MAX);
    assert_int_equal(rd_put_varint(&b, 1), 0);
    assert_int_equal(rd_put_varint(&b, 1), 0);
    assert_int_equal(rd_buf_append(&b, "x", 1), 0);
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), -1);
    /* flags wider than 32 bits */
    rd_buf_reset(&b);
    hand_hdr(&b, 1ULL << 32, 1);
    assert_int_equal(rd_put_varint(&b, 1), 0);
    assert_int_equal(rd_put_varint(&b, 1), 0);
    assert_int_equal(rd_buf_append(&b, "x", 1), 0);
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), -1);
    rd_buf_reset(&b);
    hand_hdr(&b, UINT32_MAX, 1);
    assert_int_equal(rd_put_varint(&b, 1), 0);
    assert_int_equal(rd_put_varint(&b, 1), 0);
    assert_int_equal(rd_buf_append(&b, "x", 1), 0);
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), 0);
    rd_buf_free(&b);
}

/* A header varint longer than 64 bits is malformed. */
static void test_overlong_header_varint(void **state)
{
    (void)state;
    struct rd_buf b;
    rd_buf_init(&b);
    uint8_t v = BE_ENTRY_VERSION;
    assert_int_equal(rd_buf_append(&b, &v, 1), 0);
    assert_int_equal(rd_put_varint(&b, 0), 0); /* flags */
    for (int i = 0; i < 11; i++)               /* origin: 11 continuation bytes */
        assert_int_equal(rd_buf_append(&b, "\x80", 1), 0);
    assert_int_equal(rd_buf_append(&b, "\x01", 1), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rd_put_varint(&b, 1), 0);
    assert_int_equal(validate_exact(rd_buf_rptr(&b), rd_buf_unread(&b)), -1);
    rd_buf_free(&b);
}

/* Found by fuzz_entry (tests/fuzz/corpus/entry/padded-varint): a header number written with a
 * padding byte ("\xd4\x00" for 84) decoded, so two byte strings meant one entry. Rejected now:
 * an accepted entry re-encodes to exactly its bytes. */
static void test_padded_varint_rejected(void **state)
{
    (void)state;
    static const uint8_t crash[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0xd4, 0x00, 0x00};
    assert_int_equal(validate_exact(crash, sizeof(crash)), -1);
    /* the same entry in its shortest form is fine */
    static const uint8_t shortest[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x54, 0x00};
    assert_int_equal(validate_exact(shortest, sizeof(shortest)), 0);
    /* padding in an argument's length is refused too */
    static const uint8_t arglen[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                                     0x01, 0x01, 0x81, 0x00, 'x'};
    assert_int_equal(validate_exact(arglen, sizeof(arglen)), -1);
    static const uint8_t arglen_short[] = {0x01, 0x00, 0x00, 0x00, 0x00,
                                           0x00, 0x01, 0x01, 0x01, 'x'};
    assert_int_equal(validate_exact(arglen_short, sizeof(arglen_short)), 0);
}

/* Seeded random damage to valid entries: flips, insertions, deletions. validate never crashes
 * or leaks, and agrees with open + next. */
static void test_mutation_fuzz(void **state)
{
    (void)state;
    struct be_entry_hdr h = {.flags = 1, .origin = 9, .reqid = 1000, .db = 3, .ncmds = 4};
    struct rd_buf base;
    rd_buf_init(&base);
    assert_int_equal(be_entry_put_hdr(&base, &h), 0);
    const char *a[] = {"HSET", "h", "f", "v", "", "x\0y"};
    const size_t l[] = {4, 1, 1, 1, 0, 3};
    for (int i = 0; i < 4; i++)
        assert_int_equal(be_entry_put_cmd(&base, 6 - i, a, l), 0);
    uint64_t seed = 42;
    for (int iter = 0; iter < 20000; iter++) {
        struct rd_buf m;
        rd_buf_init(&m);
        assert_int_equal(rd_buf_append(&m, rd_buf_rptr(&base), rd_buf_unread(&base)), 0);
        int nmut = 1 + iter % 4;
        for (int k = 0; k < nmut; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t pos = (size_t)((seed >> 33) % (m.len + 1));
            uint8_t byte = (uint8_t)(seed >> 17);
            switch ((seed >> 60) % 3) {
            case 0: /* flip */
                if (pos < m.len)
                    m.data[pos] = (char)byte;
                break;
            case 1: /* insert */
                assert_int_equal(rd_buf_reserve(&m, 1), 0);
                memmove(m.data + pos + 1, m.data + pos, m.len - pos);
                m.data[pos] = (char)byte;
                m.len++;
                break;
            default: /* delete */
                if (pos < m.len) {
                    memmove(m.data + pos, m.data + pos + 1, m.len - pos - 1);
                    m.len--;
                }
                break;
            }
        }
        uint8_t *c = exact_copy(m.data, m.len);
        int v = be_entry_validate(c, m.len);
        struct be_entry_reader r = {0};
        struct be_entry_hdr g;
        int rc = be_entry_open(&r, c, m.len, &g);
        if (rc == 0) {
            struct be_cmd cmd;
            uint32_t n = 0;
            while ((rc = be_entry_next(&r, &cmd)) == 1) {
                n++;
                for (int i = 0; i < cmd.argc; i++)
                    assert_true((const uint8_t *)cmd.argv[i] + cmd.argvlen[i] <= c + m.len);
            }
            if (rc == 0)
                assert_int_equal(n, g.ncmds);
        }
        assert_int_equal(v, rc == 0 ? 0 : -1);
        be_entry_reader_free(&r);
        free(c);
        rd_buf_free(&m);
    }
    rd_buf_free(&base);
}

/* ---- the watch guard ---------------------------------------------------------------------- */

/* A guard (index 7 or as given) with keys k0.. in databases db0.. as given. */
static void build_guard(struct rd_buf *b, uint64_t index, int n, const uint64_t *dbs,
                        const char *const *keys, const size_t *lens)
{
    assert_int_equal(be_watch_put_hdr(b, index, (uint32_t)n), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(be_watch_put_key(b, dbs[i], keys[i], lens[i]), 0);
}

/* Reads a whole guard from an exact-size copy: 0 with every key checked against the expected
 * ones (when given), -1 when the guard is rejected anywhere. */
static int read_guard(const void *p, size_t n, uint64_t *index, uint32_t *nkeys,
                      const uint64_t *dbs, const char *const *keys, const size_t *lens)
{
    uint8_t *c = exact_copy(p, n);
    struct be_watch_reader r;
    struct be_watch_key k;
    int rc = be_watch_open(&r, c, n, index, nkeys);
    for (uint32_t i = 0; rc == 0 && i < *nkeys; i++) {
        rc = be_watch_next(&r, &k) == 1 ? 0 : -1;
        if (rc == 0) {
            assert_true((const uint8_t *)k.key >= c && (const uint8_t *)k.key + k.len <= c + n);
            if (keys != NULL) {
                assert_int_equal(k.db, dbs[i]);
                assert_int_equal(k.len, lens[i]);
                if (lens[i])
                    assert_memory_equal(k.key, keys[i], lens[i]);
            }
        }
    }
    if (rc == 0)
        rc = be_watch_next(&r, &k); /* 0 at the end, -1 with bytes left over */
    free(c);
    return rc;
}

static void test_guard_roundtrip(void **state)
{
    (void)state;
    const uint64_t dbs[] = {0, 15, UINT64_MAX};
    const char *const keys[] = {"x", "", "bin\0\r\nkey"};
    const size_t lens[] = {1, 0, 10};
    struct rd_buf b;
    rd_buf_init(&b);
    build_guard(&b, UINT64_MAX, 3, dbs, keys, lens);
    uint64_t index = 0;
    uint32_t n = 0;
    assert_int_equal(read_guard(b.data, b.len, &index, &n, dbs, keys, lens), 0);
    assert_int_equal(index, UINT64_MAX);
    assert_int_equal(n, 3);
    /* index 0 and no keys decode too (the caller decides what they mean) */
    rd_buf_reset(&b);
    assert_int_equal(be_watch_put_hdr(&b, 0, 0), 0);
    assert_int_equal(read_guard(b.data, b.len, &index, &n, NULL, NULL, NULL), 0);
    assert_int_equal(index, 0);
    assert_int_equal(n, 0);
    rd_buf_free(&b);
}

/* The guard is not an entry and an entry is not a guard: each starts with its own version. */
static void test_guard_and_entry_apart(void **state)
{
    (void)state;
    const uint64_t dbs[] = {0};
    const char *const keys[] = {"k"};
    const size_t lens[] = {1};
    struct rd_buf b;
    rd_buf_init(&b);
    build_guard(&b, 5, 1, dbs, keys, lens);
    uint64_t index;
    uint32_t n;
    b.data[0] = 2;
    assert_int_equal(read_guard(b.data, b.len, &index, &n, NULL, NULL, NULL), -1);
    b.data[0] = 0;
    assert_int_equal(read_guard(b.data, b.len, &index, &n, NULL, NULL, NULL), -1);
    assert_int_equal(read_guard(b.data, 0, &index, &n, NULL, NULL, NULL), -1);
    rd_buf_free(&b);
}

/* Every proper prefix is rejected, and so are bytes after the last key. */
static void test_guard_truncated_and_trailing(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'b', sizeof(big));
    const uint64_t dbs[] = {3, 1ULL << 40};
    const char *const keys[] = {"key", big};
    const size_t lens[] = {3, sizeof(big)};
    struct rd_buf b;
    rd_buf_init(&b);
    build_guard(&b, 1ULL << 35, 2, dbs, keys, lens);
    uint64_t index;
    uint32_t n;
    for (size_t len = 0; len < b.len; len++)
        if (read_guard(b.data, len, &index, &n, NULL, NULL, NULL) != -1)
            fail_msg("a guard cut to %zu of %zu bytes was read", len, b.len);
    assert_int_equal(read_guard(b.data, b.len, &index, &n, NULL, NULL, NULL), 0);
    assert_int_equal(rd_buf_append(&b, "x", 1), 0);
    assert_int_equal(read_guard(b.data, b.len, &index, &n, NULL, NULL, NULL), -1);
    rd_buf_free(&b);
}

/* Counts and lengths that claim more than the bytes hold, or more than the limit. */
static void test_guard_claims_too_much(void **state)
{
    (void)state;
    struct rd_buf b;
    rd_buf_init(&b);
    uint64_t index;
    uint32_t n;
    /* more keys than the limit, with the bytes to back a few */
    assert_int_equal(be_watch_put_hdr(&b, 1, BE_WATCH_KEYS_MAX), 0);
    rd_buf_reset(&b);
    uint8_t v = BE_WATCH_VERSION;
    assert_int_equal(rd_buf_append(&b, &v, 1), 0);
    assert_int_equal(rd_put_varint(&b, 1), 0);
    assert_int_equal(rd_put_varint(&b, (uint64_t)BE_WATCH_KEYS_MAX + 1), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(be_watch_put_key(&b, 0, "k", 1), 0);
    assert_int_equal(read_guard(b.data, b.len, &index, &n, NULL, NULL, NULL), -1);
    /* a count larger than the bytes could hold */
    rd_buf_reset(&b);
    assert_int_equal(be_watch_put_hdr(&b, 1, 1000), 0);
    assert_int_equal(be_watch_put_key(&b, 0, "k", 1), 0);
    assert_int_equal(read_guard(b.data, b.len, &index, &n, NULL, NULL, NULL), -1);
    /* a key length past the end, including one that would wrap a size_t */
    static const uint64_t bad_lens[] = {2, 1000, UINT64_MAX};
    for (size_t i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
        rd_buf_reset(&b);
        assert_int_equal(be_watch_put_hdr(&b, 1, 1), 0);
        assert_int_equal(rd_put_varint(&b, 0), 0);
        assert_int_equal(rd_put_varint(&b, bad_lens[i]), 0);
        assert_int_equal(rd_buf_append(&b, "k", 1), 0);
        assert_int_equal(read_guard(b.data, b.len, &index, &n, NULL, NULL, NULL), -1);
    }
    rd_buf_free(&b);
}

/* Random damage to a valid guard: never a read outside the bytes, whatever is accepted. */
static void test_guard_mutation_fuzz(void **state)
{
    (void)state;
    const uint64_t dbs[] = {0, 9, 200};
    const char *const keys[] = {"alpha", "b", "gamma-gamma"};
    const size_t lens[] = {5, 1, 11};
    struct rd_buf base;
    rd_buf_init(&base);
    build_guard(&base, 123456, 3, dbs, keys, lens);
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        uint8_t *c = exact_copy(base.data, base.len);
        size_t len = base.len;
        for (int k = 0; k < 1 + round % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            c[at] = (uint8_t)(seed >> 16);
        }
        seed = seed * 1103515245u + 12345u;
        if (seed % 4 == 0)
            len = (seed >> 8) % (len + 1);
        uint64_t index;
        uint32_t n;
        (void)read_guard(c, len, &index, &n, NULL, NULL, NULL);
        free(c);
    }
    rd_buf_free(&base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_one),
        cmocka_unit_test(test_args_point_into_entry),
        cmocka_unit_test(test_roundtrip_max_varints),
        cmocka_unit_test(test_roundtrip_many),
        cmocka_unit_test(test_roundtrip_big_arg),
        cmocka_unit_test(test_scratch_reuse),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_argc_zero),
        cmocka_unit_test(test_argc_huge),
        cmocka_unit_test(test_arglen_huge),
        cmocka_unit_test(test_ncmds_and_flags_huge),
        cmocka_unit_test(test_overlong_header_varint),
        cmocka_unit_test(test_padded_varint_rejected),
        cmocka_unit_test(test_mutation_fuzz),
        cmocka_unit_test(test_guard_roundtrip),
        cmocka_unit_test(test_guard_and_entry_apart),
        cmocka_unit_test(test_guard_truncated_and_trailing),
        cmocka_unit_test(test_guard_claims_too_much),
        cmocka_unit_test(test_guard_mutation_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
