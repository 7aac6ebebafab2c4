/* Unit tests for backend/reader.c: the byte-fed reader of Redis's replies, and be_reply_encode.
 *
 * The central check is a round trip: bytes are read into replies, each reply is encoded back, and
 * the encodings, one after another, are exactly the bytes fed. Every input is read three ways
 * (whole, one byte at a time, and cut in two at every byte boundary), which must agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/reader.h"
#include "common/buf.h"

/* Reads everything fed through pieces of the given sizes (0: the rest at once) and appends
 * every reply's encoding to out. Returns the number of replies; *err is 0 or the reader's -1. */
static int read_pieces(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                       struct rd_buf *out, int *err, char *errstr, size_t errlen)
{
    struct be_reader r;
    be_reader_init(&r);
    int replies = 0;
    size_t at = 0;
    *err = 0;
    for (size_t c = 0; c <= ncuts && !*err; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        if (be_reader_feed(&r, in + at, end - at) != 0) {
            *err = -1;
            break;
        }
        at = end;
        for (;;) {
            redisReply *rep = NULL;
            if (be_reader_get(&r, &rep) != 0) {
                *err = -1;
                break;
            }
            if (rep == NULL)
                break;
            assert_int_equal(be_reply_encode(rep, out), 0);
            be_reply_free(rep);
            replies++;
        }
    }
    if (*err && errstr)
        snprintf(errstr, errlen, "%s", r.errstr);
    be_reader_free(&r);
    return replies;
}

/* in must read as `replies` replies whose encodings are in itself, every way it is cut. */
static void roundtrip(const char *in, size_t n, int replies)
{
    struct rd_buf out;
    rd_buf_init(&out);
    int err;
    assert_int_equal(read_pieces(in, n, NULL, 0, &out, &err, NULL, 0), replies);
    assert_int_equal(err, 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, in, n);
    /* cut in two at every boundary */
    for (size_t cut = 0; cut <= n; cut++) {
        rd_buf_reset(&out);
        assert_int_equal(read_pieces(in, n, &cut, 1, &out, &err, NULL, 0), replies);
        assert_int_equal(err, 0);
        assert_int_equal(out.len, n);
        assert_memory_equal(out.data, in, n);
    }
    /* one byte at a time (bounded: long inputs are cut every 7 bytes instead) */
    size_t step = n > 4096 ? 7 : 1, ncuts = n / step;
    size_t *cuts = malloc((ncuts + 1) * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t i = 0; i < ncuts; i++)
        cuts[i] = (i + 1) * step;
    rd_buf_reset(&out);
    assert_int_equal(read_pieces(in, n, cuts, ncuts, &out, &err, NULL, 0), replies);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, in, n);
    free(cuts);
    rd_buf_free(&out);
}

#define RT(lit, nreplies) roundtrip(lit, sizeof(lit) - 1, nreplies)

/* A single reply, read whole; the caller frees it. */
static redisReply *read_one(const char *in, size_t n)
{
    struct be_reader r;
    be_reader_init(&r);
    assert_int_equal(be_reader_feed(&r, in, n), 0);
    redisReply *rep = NULL;
    assert_int_equal(be_reader_get(&r, &rep), 0);
    assert_non_null(rep);
    be_reader_free(&r);
    return rep;
}

static void test_resp2_types(void **state)
{
    (void)state;
    RT("+OK\r\n", 1);
    RT("-ERR wrong\r\n", 1);
    RT(":0\r\n:-9223372036854775808\r\n:9223372036854775807\r\n", 3);
    RT("$0\r\n\r\n$5\r\nhello\r\n", 2);
    RT("$4\r\na\r\nb\r\n", 1); /* CRLF inside a bulk */
    RT("*0\r\n*3\r\n:1\r\n$1\r\nx\r\n+y\r\n", 2);
    RT("+\r\n-\r\n", 2);
    RT("+a\rb\r\n", 1); /* a lone CR in a line */

    redisReply *r = read_one("*3\r\n:7\r\n$3\r\nfoo\r\n+OK\r\n", 22);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->element[0]->integer, 7);
    assert_int_equal(r->element[1]->type, REDIS_REPLY_STRING);
    assert_int_equal(r->element[1]->len, 3);
    assert_string_equal(r->element[1]->str, "foo"); /* NUL-terminated, as hiredis's */
    assert_int_equal(r->element[2]->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->element[2]->str, "OK");
    /* allocated as hiredis's own replies: its free takes them (ASan checks) */
    freeReplyObject(r);
}

/* A null bulk and a null array are both REDIS_REPLY_NIL, told apart by integer, and encoded
 * back as they came: GET answers $-1, BLPOP and an aborted EXEC *-1, and clients tell them
 * apart. */
static void test_nulls(void **state)
{
    (void)state;
    RT("$-1\r\n", 1);
    RT("*-1\r\n", 1);
    RT("*7\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n:-3\r\n+OK\r\n*2\r\n*-1\r\n$1\r\nx\r\n", 1);
    RT("_\r\n*2\r\n_\r\n$-1\r\n", 2);
    redisReply *a = read_one("*-1\r\n", 5), *b = read_one("$-1\r\n", 5), *c = read_one("_\r\n", 3);
    assert_int_equal(a->type, REDIS_REPLY_NIL);
    assert_int_equal(b->type, REDIS_REPLY_NIL);
    assert_int_equal(c->type, REDIS_REPLY_NIL);
    assert_int_equal(a->integer, 1);
    assert_int_equal(b->integer, 0);
    assert_int_equal(c->integer, 2);
    freeReplyObject(a);
    freeReplyObject(b);
    be_reply_free(c);
}

static void test_resp3_types(void **state)
{
    (void)state;
    RT(",1.5\r\n,-0.25\r\n,inf\r\n,-inf\r\n,nan\r\n,1e+300\r\n,3\r\n", 7);
    RT("#t\r\n#f\r\n", 2);
    RT("(3492890328409238509324850943850943825024385\r\n(-1\r\n(0\r\n", 3);
    RT("=15\r\ntxt:Some string\r\n", 1);
    RT("%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n*1\r\n:2\r\n%0\r\n", 2);
    RT("~3\r\n:1\r\n:2\r\n:3\r\n", 1);
    RT(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", 1);
    RT("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.19\r\n$1\r\nb\r\n,0.05\r\n*2\r\n:2\r\n:9\r\n",
       1);
    RT("*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:5\r\n", 1); /* an attribute counts once */

    redisReply *m = read_one("%1\r\n+k\r\n#t\r\n", 12);
    assert_int_equal(m->type, BE_REPLY_MAP);
    assert_int_equal(m->elements, 2);
    assert_int_equal(m->element[1]->type, BE_REPLY_BOOL);
    assert_int_equal(m->element[1]->integer, 1);
    be_reply_free(m);
    redisReply *d = read_one(",2.5\r\n", 6);
    assert_int_equal(d->type, BE_REPLY_DOUBLE);
    assert_string_equal(d->str, "2.5");
    be_reply_free(d);
    redisReply *a = read_one("|1\r\n+k\r\n+v\r\n:1\r\n", 16);
    assert_int_equal(a->type, BE_REPLY_ATTR);
    assert_int_equal(a->elements, 3);
    assert_int_equal(a->element[2]->integer, 1); /* the annotated reply comes last */
    be_reply_free(a);
}

/* "*1\r\n" depth times, then ":1\r\n": as Redis sends {{...{1}...}}. */
static char *nested(size_t depth, size_t *len)
{
    *len = depth * 4 + 4;
    char *s = malloc(*len + 1);
    assert_non_null(s);
    for (size_t i = 0; i < depth; i++)
        memcpy(s + 4 * i, "*1\r\n", 4);
    memcpy(s + 4 * depth, ":1\r\n", 5);
    return s;
}

static void test_depth(void **state)
{
    (void)state;
    size_t n;
    char *s = nested(10, &n); /* what hiredis 0.14 refused (its limit is 7) */
    roundtrip(s, n, 1);
    free(s);
    s = nested(1000, &n);
    roundtrip(s, n, 1);
    free(s);
    /* deep enough that anything recursive in the reader, encoder or free would overflow an
     * ASan-sized stack; read in pieces of 3 bytes */
    s = nested(200000, &n);
    struct rd_buf out;
    rd_buf_init(&out);
    size_t ncuts = n / 3, *cuts = malloc(ncuts * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t i = 0; i < ncuts; i++)
        cuts[i] = 3 * (i + 1);
    int err;
    assert_int_equal(read_pieces(s, n, cuts, ncuts, &out, &err, NULL, 0), 1);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, s, n);
    free(cuts);
    rd_buf_free(&out);
    redisReply *r = read_one(s, n);
    const redisReply *leaf = r;
    for (int i = 0; i < 200000; i++)
        leaf = leaf->element[0];
    assert_int_equal(leaf->type, REDIS_REPLY_INTEGER);
    be_reply_free(r);
    free(s);
}

/* An EXEC reply of the apply path, and others pipelined behind it. */
static void test_pipelined(void **state)
{
    (void)state;
    RT("*4\r\n+OK\r\n:12\r\n$3\r\nbar\r\n-WRONGTYPE Operation against a key\r\n+QUEUED\r\n"
       "+QUEUED\r\n*-1\r\n$-1\r\n*2\r\n*1\r\n*1\r\n:1\r\n+OK\r\n",
       6);
}

/* A bulk far larger than the pieces it comes in: read whole, every piece is copied straight
 * into the reply (the reader's own buffer never holds it). */
static void test_huge_bulk(void **state)
{
    (void)state;
    const size_t len = 32u << 20, piece = 4096;
    struct rd_buf in;
    rd_buf_init(&in);
    assert_int_equal(rd_buf_printf(&in, "*2\r\n$%zu\r\n", len), 0);
    size_t hdr = in.len;
    assert_int_equal(rd_buf_reserve(&in, len + 16), 0);
    for (size_t i = 0; i < len; i++)
        in.data[in.len++] = (char)('a' + i % 26);
    assert_int_equal(rd_buf_append(&in, "\r\n:5\r\n", 6), 0);

    struct be_reader r;
    be_reader_init(&r);
    redisReply *rep = NULL;
    for (size_t at = 0; at < in.len && rep == NULL; at += piece) {
        size_t n = in.len - at < piece ? in.len - at : piece;
        assert_int_equal(be_reader_feed(&r, in.data + at, n), 0);
        assert_int_equal(be_reader_get(&r, &rep), 0);
        assert_true(r.cap <= 64 * 1024);
    }
    assert_non_null(rep);
    assert_int_equal(rep->element[0]->len, len);
    assert_memory_equal(rep->element[0]->str, in.data + hdr, len);
    assert_int_equal(rep->element[0]->str[len], '\0');
    assert_int_equal(rep->element[1]->integer, 5);
    be_reply_free(rep);
    be_reader_free(&r);
    rd_buf_free(&in);
}

/* in must fail with an error containing want, every way it is cut, and stay failed. */
static void bad(const char *in, const char *want)
{
    size_t n = strlen(in);
    for (size_t cut = 0; cut <= n; cut++) {
        struct rd_buf out;
        rd_buf_init(&out);
        int err;
        char errstr[128];
        read_pieces(in, n, &cut, 1, &out, &err, errstr, sizeof(errstr));
        if (err == 0 || strstr(errstr, want) == NULL)
            fail_msg("'%s' cut at %zu: err %d '%s', want '%s'", in, cut, err, err ? errstr : "",
                     want);
        rd_buf_free(&out);
    }
}

static void test_malformed(void **state)
{
    (void)state;
    bad("?x\r\n", "is no reply type");
    bad("\r\n", "is no reply type");
    bad(":\r\n", "bad integer");
    bad(":12a\r\n", "bad integer");
    bad(":007\r\n", "bad integer");
    bad(":-0\r\n", "bad integer");
    bad(":99999999999999999999\r\n", "bad integer");
    bad("$-2\r\n", "bad bulk length");
    bad("$abc\r\n", "bad bulk length");
    bad("$3\r\nabcd\r\n", "does not end with CRLF");
    bad("*-2\r\n", "bad count");
    bad("*2\r\n:1\r\n*x\r\n", "bad count");
    bad("%-1\r\n", "bad count");
    bad("*?\r\n", "bad count");
    bad("_x\r\n", "null with bytes");
    bad("#x\r\n", "boolean");
    bad(",abc\r\n", "bad double");
    bad(",0x10\r\n", "bad double");
    bad(",\r\n", "bad double");
    bad("(12a\r\n", "bad big number");
    bad("=3\r\ntxt\r\n", "verbatim");
    bad("=-1\r\n", "bad bulk length");
    bad("!3\r\nerr\r\n", "is no reply type");
    bad("*1\r\n*1\r\n$1\r\nab\r\n", "does not end with CRLF");

    /* a length line that never ends is refused once it is longer than any can be */
    struct be_reader r;
    be_reader_init(&r);
    char junk[1024];
    memset(junk, '1', sizeof(junk));
    redisReply *rep = NULL;
    int rc = be_reader_feed(&r, "$", 1);
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = be_reader_feed(&r, junk, sizeof(junk));
        if (rc == 0)
            rc = be_reader_get(&r, &rep);
    }
    assert_int_equal(rc, -1);
    assert_non_null(strstr(r.errstr, "longer than"));
    /* sticky */
    assert_int_equal(be_reader_feed(&r, "+OK\r\n", 5), -1);
    assert_int_equal(be_reader_get(&r, &rep), -1);
    assert_null(rep);
    be_reader_reset(&r);
    assert_int_equal(be_reader_feed(&r, "+OK\r\n", 5), 0);
    assert_int_equal(be_reader_get(&r, &rep), 0);
    assert_non_null(rep);
    be_reply_free(rep);
    be_reader_free(&r);
}

/* Declared sizes are checked against the limits before anything is allocated for them, and
 * nothing is allocated for what has not arrived. */
static void test_limits(void **state)
{
    (void)state;
    struct be_reader r;
    be_reader_init(&r);
    r.bulk_max = 10;
    r.elements_max = 4;
    redisReply *rep = NULL;
    static const char four[] = "*4\r\n$10\r\n0123456789\r\n";
    assert_int_equal(be_reader_feed(&r, four, sizeof(four) - 1), 0);
    assert_int_equal(be_reader_get(&r, &rep), 0);
    assert_null(rep); /* three elements to come */
    be_reader_reset(&r);
    assert_int_equal(r.bulk_max, 10); /* reset keeps the limits */
    assert_int_equal(be_reader_feed(&r, "$11\r\n", 5), 0);
    assert_int_equal(be_reader_get(&r, &rep), -1);
    assert_non_null(strstr(r.errstr, "over the limit"));
    be_reader_reset(&r);
    assert_int_equal(be_reader_feed(&r, "%3\r\n", 4), 0);
    assert_int_equal(be_reader_get(&r, &rep), -1);
    assert_non_null(strstr(r.errstr, "over the limit"));
    be_reader_free(&r);

    /* a huge declared aggregate and bulk cost nothing until their bytes come */
    be_reader_init(&r);
    static const char huge[] = "*4000000000\r\n$1099511627776\r\nab";
    assert_int_equal(be_reader_feed(&r, huge, sizeof(huge) - 1), 0);
    assert_int_equal(be_reader_get(&r, &rep), 0);
    assert_null(rep);
    assert_true(r.bulk_cap <= 64 * 1024);
    be_reader_free(&r); /* frees the half-read reply (ASan: no leak) */
}

/* A half-read reply freed with its reader, at every point of a nested input. */
static void test_free_half_read(void **state)
{
    (void)state;
    static const char in[] = "*3\r\n*2\r\n$5\r\nhello\r\n%1\r\n+k\r\n~1\r\n,1.5\r\n:1\r\n+x\r\n";
    for (size_t cut = 0; cut < sizeof(in) - 1; cut++) {
        struct be_reader r;
        be_reader_init(&r);
        assert_int_equal(be_reader_feed(&r, in, cut), 0);
        redisReply *rep = NULL;
        assert_int_equal(be_reader_get(&r, &rep), 0);
        assert_null(rep);
        be_reader_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp2_types),    cmocka_unit_test(test_nulls),
        cmocka_unit_test(test_resp3_types),    cmocka_unit_test(test_depth),
        cmocka_unit_test(test_pipelined),      cmocka_unit_test(test_huge_bulk),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_limits),
        cmocka_unit_test(test_free_half_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
