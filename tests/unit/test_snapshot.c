/* Unit tests for the RDB stream reader of a SYNC (backend/snapshot.c): both framings Redis
 * uses, keep-alives, AUTH's answer, errors, and every split point of the stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/snapshot.h"

struct sink {
    char buf[4096];
    size_t len;
    int fail_after; /* fail once this many bytes were taken (-1: never) */
};

static int sink_fn(void *ctx, const void *p, size_t n)
{
    struct sink *s = ctx;
    if (s->fail_after >= 0 && s->len + n > (size_t)s->fail_after)
        return -1;
    assert_true(s->len + n <= sizeof(s->buf));
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* Feeds stream in two pieces split at cut; returns the final result. A result other than 0
 * must come only with the last byte that decides it. */
static int feed_split(const char *stream, size_t len, size_t cut, int auth, struct sink *s,
                      struct be_rdb_reader *r)
{
    memset(s, 0, sizeof(*s));
    s->fail_after = -1;
    be_rdb_reader_init(r, auth, sink_fn, s);
    int rc = be_rdb_reader_feed(r, stream, cut);
    if (rc != 0)
        return rc;
    return be_rdb_reader_feed(r, stream + cut, len - cut);
}

static const char rdb[] = "REDIS0010\xfa\x09redis-ver\x06"
                          "7.0.15\xff"
                          "checksum";

static void test_length_framing_every_split(void **state)
{
    char stream[512];
    int n = snprintf(stream, sizeof(stream), "+OK\r\n\n\n\n$%zu\r\n", sizeof(rdb) - 1);
    memcpy(stream + n, rdb, sizeof(rdb) - 1);
    size_t len = (size_t)n + sizeof(rdb) - 1;
    /* what follows the RDB is the replication feed: never part of the file */
    memcpy(stream + len, "*1\r\n$4\r\nPING\r\n", 14);
    for (size_t cut = 0; cut <= len + 14; cut++) {
        struct sink s;
        struct be_rdb_reader r;
        assert_int_equal(feed_split(stream, len + 14, cut, 1, &s, &r), 1);
        assert_int_equal(s.len, sizeof(rdb) - 1);
        assert_memory_equal(s.buf, rdb, sizeof(rdb) - 1);
        assert_int_equal(r.got, sizeof(rdb) - 1);
    }
}

static void test_eof_framing_every_split(void **state)
{
    const char mark[] = "0123456789abcdef0123456789abcdef01234567";
    assert_int_equal(strlen(mark), BE_RDB_EOF_MARK);
    /* The payload holds a prefix of the mark, which must not end it early. */
    char payload[200];
    int pl =
        snprintf(payload, sizeof(payload), "REDIS0010%.20s-more-bytes-after-a-partial-mark", mark);
    char stream[512];
    int n = snprintf(stream, sizeof(stream), "\n$EOF:%s\r\n", mark);
    memcpy(stream + n, payload, (size_t)pl);
    memcpy(stream + n + pl, mark, BE_RDB_EOF_MARK);
    size_t len = (size_t)n + (size_t)pl + BE_RDB_EOF_MARK;
    for (size_t cut = 0; cut <= len; cut++) {
        struct sink s;
        struct be_rdb_reader r;
        assert_int_equal(feed_split(stream, len, cut, 0, &s, &r), 1);
        assert_int_equal(s.len, (size_t)pl);
        assert_memory_equal(s.buf, payload, (size_t)pl);
    }
    /* One byte at a time. */
    struct sink s;
    struct be_rdb_reader r;
    memset(&s, 0, sizeof(s));
    s.fail_after = -1;
    be_rdb_reader_init(&r, 0, sink_fn, &s);
    int rc = 0;
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(rc, 0);
        rc = be_rdb_reader_feed(&r, stream + i, 1);
    }
    assert_int_equal(rc, 1);
    assert_int_equal(s.len, (size_t)pl);
}

static void test_empty_rdb(void **state)
{
    struct sink s;
    struct be_rdb_reader r;
    assert_int_equal(feed_split("$0\r\n", 4, 2, 0, &s, &r), 1);
    assert_int_equal(s.len, 0);
}

static void expect_failure(const char *stream, int auth, const char *why)
{
    struct sink s;
    struct be_rdb_reader r;
    assert_int_equal(feed_split(stream, strlen(stream), strlen(stream) / 2, auth, &s, &r), -1);
    assert_non_null(strstr(r.err, why));
    assert_int_equal(s.len, 0);
    /* and it stays failed */
    assert_int_equal(be_rdb_reader_feed(&r, "$1\r\nx", 5), -1);
}

static void test_errors(void **state)
{
    expect_failure("-NOPERM this user has no permissions\r\n", 0, "NOPERM this user");
    expect_failure("+OK\r\n-ERR Replica can't interact with the keyspace\r\n", 1, "Replica can't");
    expect_failure("-WRONGPASS invalid username-password pair\r\n", 1, "WRONGPASS");
    expect_failure(":1\r\n", 1, "unexpected answer to AUTH");
    expect_failure("*3\r\n", 0, "unexpected answer to SYNC");
    expect_failure("$abc\r\n", 0, "bad RDB length");
    expect_failure("$-1\r\n", 0, "bad RDB length");
    expect_failure("$\r\n", 0, "bad RDB length");
    expect_failure("$99999999999999999999999\r\n", 0, "bad RDB length");
    expect_failure("$EOF:short\r\n", 0, "bad diskless end mark");
    char longline[BE_RDB_LINE_MAX + 10];
    memset(longline, 'x', sizeof(longline) - 1);
    longline[0] = '$';
    longline[sizeof(longline) - 1] = '\0';
    expect_failure(longline, 0, "too long");
}

static void test_sink_failure(void **state)
{
    struct sink s;
    memset(&s, 0, sizeof(s));
    s.fail_after = 3;
    struct be_rdb_reader r;
    be_rdb_reader_init(&r, 0, sink_fn, &s);
    assert_int_equal(be_rdb_reader_feed(&r, "$10\r\n0123456789", 15), -1);
    assert_non_null(strstr(r.err, "cannot write"));
}

static void test_info_field(void **state)
{
    const char info[] = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n"
                        "master_sync_in_progress:0\r\nmaster_link:other\r\n";
    char v[32];
    assert_int_equal(be_info_field(info, sizeof(info) - 1, "master_link_status", v, sizeof(v)), 0);
    assert_string_equal(v, "up");
    assert_int_equal(be_info_field(info, sizeof(info) - 1, "master_sync_in_progress", v, sizeof(v)),
                     0);
    assert_string_equal(v, "0");
    assert_int_equal(be_info_field(info, sizeof(info) - 1, "master_link", v, sizeof(v)), 0);
    assert_string_equal(v, "other");
    assert_int_equal(be_info_field(info, sizeof(info) - 1, "master", v, sizeof(v)), -1);
    assert_int_equal(be_info_field(info, sizeof(info) - 1, "role", v, 3), 0);
    assert_string_equal(v, "sl"); /* truncated to the buffer */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length_framing_every_split),
        cmocka_unit_test(test_eof_framing_every_split),
        cmocka_unit_test(test_empty_rdb),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sink_failure),
        cmocka_unit_test(test_info_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
