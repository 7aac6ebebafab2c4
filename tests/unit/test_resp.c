/* Unit tests for proxy/resp.c: the resumable RESP2 request parser (multibulk and inline).
 *
 * Most tests run a transcript: the input is parsed whole, then fed one byte at a time (px_parse
 * after every byte), then split into two pieces at every byte boundary; the sequence of commands
 * and the final result (AGAIN, or ERR with its text) must be the same every way. Expected error
 * texts are the ones redis-server 7.0.15 sends for the same bytes (checked against a real server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proxy/resp.h"

#define MAX_BULK (512LL * 1024 * 1024)

/* What a parse produced: every command serialized as "argc|len:bytes|len:bytes...;", then the
 * final status ("AGAIN" or "ERR:<text>"). */
struct transcript {
    struct rd_buf out;
    int ncmds;
    int final_rc;
};

static void tr_init(struct transcript *t)
{
    rd_buf_init(&t->out);
    t->ncmds = 0;
    t->final_rc = PX_PARSE_AGAIN;
}

static void tr_free(struct transcript *t)
{
    rd_buf_free(&t->out);
}

static void tr_cmd(struct transcript *t, const struct px_cmd *c)
{
    assert_true(c->argc > 0);
    assert_int_equal(rd_buf_printf(&t->out, "%d", c->argc), 0);
    for (int i = 0; i < c->argc; i++) {
        assert_int_equal(c->argv[i][c->argvlen[i]], '\0'); /* NUL-terminated */
        assert_int_equal(rd_buf_printf(&t->out, "|%zu:", c->argvlen[i]), 0);
        assert_int_equal(rd_buf_append(&t->out, c->argv[i], c->argvlen[i]), 0);
    }
    assert_int_equal(rd_buf_append(&t->out, ";", 1), 0);
    t->ncmds++;
}

/* Calls px_parse until it stops returning commands. */
static void drain(struct px_parser *p, struct rd_buf *in, struct transcript *t)
{
    if (t->final_rc == PX_PARSE_ERR)
        return;
    for (;;) {
        struct px_cmd c;
        memset(&c, 0, sizeof(c));
        int rc = px_parse(p, in, &c);
        if (rc == PX_PARSE_OK) {
            tr_cmd(t, &c);
            px_cmd_free(&c);
            continue;
        }
        t->final_rc = rc;
        if (rc == PX_PARSE_ERR) {
            assert_non_null(p->err);
            assert_int_equal(rd_buf_printf(&t->out, "ERR:%s", p->err), 0);
        }
        return;
    }
}

static void tr_finish(struct transcript *t)
{
    if (t->final_rc == PX_PARSE_AGAIN)
        assert_int_equal(rd_buf_append_str(&t->out, "AGAIN"), 0);
}

static void parse_split(const char *s, size_t n, size_t cut, int unauth, long long maxbulk,
                        struct transcript *t)
{
    struct px_parser p;
    px_parser_init(&p, maxbulk);
    p.unauth = unauth;
    struct rd_buf in;
    rd_buf_init(&in);
    tr_init(t);
    assert_int_equal(rd_buf_append(&in, s, cut), 0);
    drain(&p, &in, t);
    assert_int_equal(rd_buf_append(&in, s + cut, n - cut), 0);
    drain(&p, &in, t);
    tr_finish(t);
    rd_buf_free(&in);
}

static void parse_bytewise(const char *s, size_t n, size_t chunk, int unauth, long long maxbulk,
                           struct transcript *t)
{
    struct px_parser p;
    px_parser_init(&p, maxbulk);
    p.unauth = unauth;
    struct rd_buf in;
    rd_buf_init(&in);
    tr_init(t);
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        assert_int_equal(rd_buf_append(&in, s + off, k), 0);
        drain(&p, &in, t);
    }
    if (n == 0)
        drain(&p, &in, t);
    tr_finish(t);
    rd_buf_free(&in);
}

/* Parses s every way and checks every way gives `want` (a transcript string). */
static void check_ex(const char *s, size_t n, const char *want, size_t wn, int unauth,
                     long long maxbulk, int every_cut)
{
    struct transcript t;

    parse_split(s, n, n, unauth, maxbulk, &t);
    if (rd_buf_unread(&t.out) != wn || memcmp(rd_buf_rptr(&t.out), want, wn) != 0)
        fail_msg("whole: got '%.*s'\n           want '%s'", (int)rd_buf_unread(&t.out),
                 rd_buf_rptr(&t.out), want);
    tr_free(&t);

    parse_bytewise(s, n, 1, unauth, maxbulk, &t);
    if (rd_buf_unread(&t.out) != wn || memcmp(rd_buf_rptr(&t.out), want, wn) != 0)
        fail_msg("bytewise: got '%.*s'\n              want '%s'", (int)rd_buf_unread(&t.out),
                 rd_buf_rptr(&t.out), want);
    tr_free(&t);

    if (!every_cut)
        return;
    for (size_t cut = 0; cut <= n; cut++) {
        parse_split(s, n, cut, unauth, maxbulk, &t);
        if (rd_buf_unread(&t.out) != wn || memcmp(rd_buf_rptr(&t.out), want, wn) != 0)
            fail_msg("cut at %zu: got '%.*s'\n want '%s'", cut, (int)rd_buf_unread(&t.out),
                     rd_buf_rptr(&t.out), want);
        tr_free(&t);
    }
}

/* lit: a string literal (may hold NULs); want: a C string; wantb: a literal that may hold NULs */
#define CHECK(lit, want) check_ex((lit), sizeof(lit) - 1, (want), strlen(want), 0, MAX_BULK, 1)
#define CHECKB(lit, wantb)                                                                         \
    check_ex((lit), sizeof(lit) - 1, (wantb), sizeof(wantb) - 1, 0, MAX_BULK, 1)
#define CHECK_UNAUTH(lit, want)                                                                    \
    check_ex((lit), sizeof(lit) - 1, (want), strlen(want), 1, MAX_BULK, 1)

/* The transcript as a C string (binary-safe callers use the rd_buf directly). */
static const char *tr_cstr(struct transcript *t)
{
    assert_int_equal(rd_buf_append(&t->out, "", 1), 0);
    t->out.len--;
    return rd_buf_rptr(&t->out);
}

/* ---- multibulk ---------------------------------------------------------------------------- */

static void test_multibulk_whole_and_split(void **state)
{
    (void)state;
    CHECK("*1\r\n$4\r\nPING\r\n", "1|4:PING;AGAIN");
    CHECK("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", "3|3:SET|3:key|5:value;AGAIN");
    /* incomplete command: nothing returned yet */
    CHECK("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nval", "AGAIN");
    CHECK("*2\r\n$3\r\nGET\r\n$1", "AGAIN");
    CHECK("*", "AGAIN");
    CHECK("*2\r", "AGAIN");
    /* bulk lengths with many digits */
    CHECK("*1\r\n$12\r\nhello world!\r\n", "1|12:hello world!;AGAIN");
}

static void test_multibulk_pipelined(void **state)
{
    (void)state;
    CHECK("*1\r\n$4\r\nPING\r\n"
          "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
          "set a b\n"
          "*0\r\n"
          "*-1\r\n"
          "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
          "PING\r\n"
          "*1\r\n$4\r\nPI",
          "1|4:PING;2|3:GET|1:a;3|3:set|1:a|1:b;3|3:SET|1:k|0:;1|4:PING;AGAIN");
    /* a hundred commands back to back */
    struct rd_buf s, want;
    rd_buf_init(&s);
    rd_buf_init(&want);
    for (int i = 0; i < 100; i++) {
        char arg[32];
        int n = snprintf(arg, sizeof(arg), "v%d", i * 7919);
        assert_int_equal(rd_buf_printf(&s, "*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", n, arg), 0);
        assert_int_equal(rd_buf_printf(&want, "2|4:ECHO|%d:%s;", n, arg), 0);
    }
    assert_int_equal(rd_buf_append_str(&want, "AGAIN"), 0);
    assert_int_equal(rd_buf_append(&want, "", 1), 0);
    check_ex(rd_buf_rptr(&s), rd_buf_unread(&s), rd_buf_rptr(&want), strlen(rd_buf_rptr(&want)), 0,
             MAX_BULK, 1);
    rd_buf_free(&s);
    rd_buf_free(&want);
}

static void test_multibulk_binary(void **state)
{
    (void)state;
    /* NUL bytes, CR LF and '*' / '$' inside bulks are data */
    static const char in[] =
        "*4\r\n$3\r\nSET\r\n$5\r\na\0b\0c\r\n$6\r\n\r\n\r\n\r\n\r\n$4\r\n*1\r\n\r\n";
    static const char want[] = "4|3:SET|5:a\0b\0c|6:\r\n\r\n\r\n|4:*1\r\n;AGAIN";
    struct transcript t;
    parse_split(in, sizeof(in) - 1, sizeof(in) - 1, 0, MAX_BULK, &t);
    assert_int_equal(rd_buf_unread(&t.out), sizeof(want) - 1);
    assert_memory_equal(rd_buf_rptr(&t.out), want, sizeof(want) - 1);
    tr_free(&t);
    parse_bytewise(in, sizeof(in) - 1, 1, 0, MAX_BULK, &t);
    assert_int_equal(rd_buf_unread(&t.out), sizeof(want) - 1);
    assert_memory_equal(rd_buf_rptr(&t.out), want, sizeof(want) - 1);
    tr_free(&t);
    for (size_t cut = 0; cut < sizeof(in); cut++) {
        parse_split(in, sizeof(in) - 1, cut, 0, MAX_BULK, &t);
        assert_int_equal(rd_buf_unread(&t.out), sizeof(want) - 1);
        assert_memory_equal(rd_buf_rptr(&t.out), want, sizeof(want) - 1);
        tr_free(&t);
    }
}

static void test_multibulk_empty_bulk_and_empty_arrays(void **state)
{
    (void)state;
    CHECK("*1\r\n$0\r\n\r\n", "1|0:;AGAIN");
    CHECK("*2\r\n$0\r\n\r\n$0\r\n\r\n", "2|0:|0:;AGAIN");
    /* "*0" and "*-1" are skipped, as Redis does (it answers PING after them) */
    CHECK("*0\r\n", "AGAIN");
    CHECK("*-1\r\n", "AGAIN");
    CHECK("*0\r\n*-1\r\n*0\r\nPING\r\n", "1|4:PING;AGAIN");
    CHECK("*0\r\n*0\r\n*0\r\n*0\r\n", "AGAIN");
}

/* The parser consumes exactly one command's bytes and keeps the rest for the next call. */
static void test_multibulk_consumes_exactly(void **state)
{
    (void)state;
    struct px_parser p;
    px_parser_init(&p, MAX_BULK);
    struct rd_buf in;
    rd_buf_init(&in);
    assert_int_equal(rd_buf_append_str(&in, "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nEC"), 0);
    struct px_cmd c;
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_OK);
    assert_int_equal(c.argc, 1);
    assert_string_equal(c.argv[0], "PING");
    px_cmd_free(&c);
    assert_null(c.argv);
    assert_int_equal(c.argc, 0);
    assert_int_equal(rd_buf_unread(&in), 10);
    assert_memory_equal(rd_buf_rptr(&in), "*1\r\n$4\r\nEC", 10);
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_AGAIN);
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_AGAIN); /* idempotent while waiting */
    assert_int_equal(rd_buf_unread(&in), 10);                /* nothing consumed on AGAIN */
    assert_int_equal(rd_buf_append_str(&in, "HO\r\n"), 0);
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_OK);
    assert_string_equal(c.argv[0], "ECHO");
    px_cmd_free(&c);
    assert_int_equal(rd_buf_unread(&in), 0);
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_AGAIN);
    assert_null(p.err);
    rd_buf_free(&in);
}

/* The command survives the buffer being compacted between calls (the scan is relative). */
static void test_multibulk_resume_after_compact(void **state)
{
    (void)state;
    struct px_parser p;
    px_parser_init(&p, MAX_BULK);
    struct rd_buf in;
    rd_buf_init(&in);
    assert_int_equal(rd_buf_append_str(&in, "PING\r\n*2\r\n$3\r\nGET\r\n$3\r\nab"), 0);
    struct px_cmd c;
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_OK);
    px_cmd_free(&c);
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_AGAIN);
    rd_buf_compact(&in);
    assert_int_equal(rd_buf_append_str(&in, "c\r\n"), 0);
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_OK);
    assert_int_equal(c.argc, 2);
    assert_string_equal(c.argv[0], "GET");
    assert_string_equal(c.argv[1], "abc");
    px_cmd_free(&c);
    rd_buf_free(&in);
}

/* A 1 MB bulk, whole, one byte at a time and in 4 KB chunks, with a command after it. */
static void test_multibulk_big_bulk(void **state)
{
    (void)state;
    enum { BIG = 1 << 20 };
    struct rd_buf s;
    rd_buf_init(&s);
    assert_int_equal(rd_buf_printf(&s, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n", BIG), 0);
    size_t data_at = rd_buf_unread(&s);
    assert_int_equal(rd_buf_reserve(&s, BIG), 0);
    for (size_t i = 0; i < BIG; i++)
        s.data[s.len + i] = (char)(i * 31 + (i >> 10)); /* every byte value, CR and LF too */
    s.len += BIG;
    assert_int_equal(rd_buf_append_str(&s, "\r\n*1\r\n$4\r\nPING\r\n"), 0);

    size_t chunks[] = {rd_buf_unread(&s), 1, 4096, 65537};
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        struct px_parser p;
        px_parser_init(&p, MAX_BULK);
        struct rd_buf in;
        rd_buf_init(&in);
        int got = 0;
        for (size_t off = 0; off < rd_buf_unread(&s); off += chunks[k]) {
            size_t n = rd_buf_unread(&s) - off < chunks[k] ? rd_buf_unread(&s) - off : chunks[k];
            assert_int_equal(rd_buf_append(&in, rd_buf_rptr(&s) + off, n), 0);
            for (;;) {
                struct px_cmd c;
                int rc = px_parse(&p, &in, &c);
                if (rc == PX_PARSE_AGAIN)
                    break;
                assert_int_equal(rc, PX_PARSE_OK);
                if (got == 0) {
                    assert_int_equal(c.argc, 3);
                    assert_string_equal(c.argv[1], "big");
                    assert_int_equal(c.argvlen[2], BIG);
                    assert_memory_equal(c.argv[2], rd_buf_rptr(&s) + data_at, BIG);
                    assert_int_equal(c.argv[2][BIG], '\0');
                } else {
                    assert_int_equal(c.argc, 1);
                    assert_string_equal(c.argv[0], "PING");
                }
                got++;
                px_cmd_free(&c);
            }
        }
        assert_int_equal(got, 2);
        rd_buf_free(&in);
    }
    rd_buf_free(&s);
}

/* On AGAIN in the middle of a big bulk the parser makes the buffer able to hold all of it. */
static void test_multibulk_reserves_for_bulk(void **state)
{
    (void)state;
    struct px_parser p;
    px_parser_init(&p, MAX_BULK);
    struct rd_buf in;
    rd_buf_init(&in);
    assert_int_equal(rd_buf_append_str(&in, "*1\r\n$100000\r\nabc"), 0);
    struct px_cmd c;
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_AGAIN);
    assert_true(in.cap - in.rpos >= 13 + 100000 + 2);
    rd_buf_free(&in);
}

/* ---- inline ------------------------------------------------------------------------------- */

static void test_inline(void **state)
{
    (void)state;
    CHECK("PING\r\n", "1|4:PING;AGAIN");
    CHECK("PING\n", "1|4:PING;AGAIN");
    CHECK("PING", "AGAIN");
    CHECK("PING\r", "AGAIN");
    CHECK("set a b\n", "3|3:set|1:a|1:b;AGAIN");
    CHECK("set a b\nget a\n", "3|3:set|1:a|1:b;2|3:get|1:a;AGAIN");
    CHECK("  set   a \t b  \r\n", "3|3:set|1:a|1:b;AGAIN");
    /* blank lines are skipped */
    CHECK("\r\n\n  \r\n\t\nPING\r\n", "1|4:PING;AGAIN");
    CHECK("\n\n\n", "AGAIN");
    /* quotes and escapes, as redis-server 7.0.15 splits them */
    CHECK("echo \"a b\"\r\n", "2|4:echo|3:a b;AGAIN");
    CHECK("echo 'it\\'s'\r\n", "2|4:echo|4:it's;AGAIN");
    CHECK("echo \"\\x41\\n\"\r\n", "2|4:echo|2:A\n;AGAIN");
    CHECK("echo \"\\t\\r\\b\\a\\\\\\\"\\q\"\n", "2|4:echo|7:\t\r\b\a\\\"q;AGAIN");
    CHECK("echo \"\\x4\" \"\\xZZ\"\n", "3|4:echo|2:x4|3:xZZ;AGAIN");
    CHECKB("echo \"\\x00\"\n", "2|4:echo|1:\0;AGAIN");
    CHECK("echo a\"b c\"\r\n", "2|4:echo|4:ab c;AGAIN");
    CHECK("echo \"\" ''\n", "3|4:echo|0:|0:;AGAIN");
    CHECK("echo 'a\\nb'\n", "2|4:echo|4:a\\nb;AGAIN"); /* no escapes in single quotes */
    /* inline after multibulk and the other way round */
    CHECK("PING\r\n*1\r\n$4\r\nPING\r\nPING\n", "1|4:PING;1|4:PING;1|4:PING;AGAIN");
}

/* An inline line with an embedded NUL: the transcript check handles binary. */
static void test_inline_unbalanced_quotes(void **state)
{
    (void)state;
    const char *msg = "ERR:Protocol error: unbalanced quotes in request";
    CHECK("echo \"abc\r\n", msg);
    CHECK("echo 'abc\n", msg);
    CHECK("echo \"a\"b\n", msg); /* closing quote must be followed by a space */
    CHECK("echo 'a'b\n", msg);
    CHECK("echo \"abc\\\"\n", msg);
    CHECK("PING\r\necho \"x\nPING\r\n",
          "1|4:PING;ERR:Protocol error: unbalanced quotes in request");
}

/* ---- px_split_inline directly ------------------------------------------------------------- */

static void test_split_inline(void **state)
{
    (void)state;
    struct px_cmd c;
    assert_int_equal(px_split_inline("", 0, &c), 0);
    assert_int_equal(c.argc, 0);
    px_cmd_free(&c);
    assert_int_equal(px_split_inline("   \t ", 5, &c), 0);
    assert_int_equal(c.argc, 0);
    px_cmd_free(&c);
    /* length is respected: bytes after len are not looked at */
    assert_int_equal(px_split_inline("get key trailing", 7, &c), 0);
    assert_int_equal(c.argc, 2);
    assert_string_equal(c.argv[1], "key");
    px_cmd_free(&c);
    assert_int_equal(px_split_inline("\"a b\" 'c d' e\"f g\"h", 19, &c), -1);
    assert_int_equal(px_split_inline("\"a b\" 'c d' e\"f g\"", 18, &c), 0);
    assert_int_equal(c.argc, 3);
    assert_string_equal(c.argv[0], "a b");
    assert_string_equal(c.argv[1], "c d");
    assert_string_equal(c.argv[2], "ef g");
    px_cmd_free(&c);
    /* a quoted argument may end exactly at len (the \x escape needs all four bytes) */
    assert_int_equal(px_split_inline("\"\\x41\"", 6, &c), 0);
    assert_int_equal(c.argc, 1);
    assert_string_equal(c.argv[0], "A");
    px_cmd_free(&c);
    assert_int_equal(px_split_inline("\"\\x4", 4, &c), -1);
    assert_int_equal(px_split_inline("\"\\", 2, &c), -1);
    assert_int_equal(px_split_inline("'", 1, &c), -1);
    /* many arguments */
    char line[3000];
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%c ", 'a' + i % 26);
    assert_int_equal(px_split_inline(line, n, &c), 0);
    assert_int_equal(c.argc, 1000);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(c.argvlen[i], 1);
        assert_int_equal(c.argv[i][0], 'a' + i % 26);
    }
    px_cmd_free(&c);
}

/* redis-server 7.0.15 ends an unquoted argument only at ' ', '\n', '\r', '\t' (sdssplitargs);
 * a vertical tab or form feed is part of the argument: `echo a\vb` answers "a\vb". */
static void test_split_inline_vt_ff(void **state)
{
    (void)state;
    /* Regression: proxy/resp.c split_pass ends an unquoted argument at any isspace() byte, so
     * "echo a\vb" splits into 3 arguments (echo, a, b); redis-server 7.0.15 gives 2 (echo,
     * "a\vb"). */
    CHECK("echo a\vb\r\n", "2|4:echo|3:a\vb;AGAIN");
    CHECK("echo a\fb\r\n", "2|4:echo|3:a\fb;AGAIN");
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_err_multibulk_length(void **state)
{
    (void)state;
    const char *msg = "ERR:Protocol error: invalid multibulk length";
    CHECK("*3000000000\r\n", msg);
    CHECK("*2147483648\r\n", msg);
    CHECK("*abc\r\n", msg);
    CHECK("*\r\n", msg);
    CHECK("*+1\r\n", msg);
    CHECK("*01\r\n", msg);
    CHECK("* 1\r\n", msg);
    CHECK("*1 \r\n", msg);
    CHECK("*99999999999999999999999\r\n", msg);
    CHECK("PING\r\n*x\r\n", "1|4:PING;ERR:Protocol error: invalid multibulk length");
}

/* Redis's string2ll refuses "-0": `*-0\r\n` and `$-0\r\n` are protocol errors in 7.0.15. */
static void test_err_minus_zero(void **state)
{
    (void)state;
    /* Regression: proxy/resp.c parse_ll accepts "-0" (Redis's string2ll does not).
     * "*-0\r\nPING\r\n" is skipped as an empty multibulk (then PING runs) where redis-server 7.0.15
     * answers "Protocol error: invalid multibulk length"; "*1\r\n$-0\r\n\r\n" is a command with one
     * empty argument where Redis answers "Protocol error: invalid bulk length". */
    CHECK("*-0\r\nPING\r\n", "ERR:Protocol error: invalid multibulk length");
    CHECK("*1\r\n$-0\r\n\r\n", "ERR:Protocol error: invalid bulk length");
}

static void test_err_bulk_length(void **state)
{
    (void)state;
    const char *msg = "ERR:Protocol error: invalid bulk length";
    CHECK("*1\r\n$blabla\r\n", msg);
    CHECK("*1\r\n$-1\r\n", msg);
    CHECK("*1\r\n$\r\n", msg);
    CHECK("*1\r\n$01\r\n", msg);
    CHECK("*1\r\n$+1\r\n", msg);
    CHECK("*1\r\n$9223372036854775808\r\n", msg);
    CHECK("*2\r\n$3\r\nGET\r\n$x\r\n", msg);
    /* larger than proto_max_bulk_len */
    check_ex("*1\r\n$1048577\r\n", 15, msg, strlen(msg), 0, 1024 * 1024, 1);
    check_ex("*1\r\n$1048576\r\n", 15, "AGAIN", 5, 0, 1024 * 1024, 1);
    CHECK("*1\r\n$536870913\r\n", msg); /* the default 512 MB */
}

static void test_err_expected_dollar(void **state)
{
    (void)state;
    CHECK("*1\r\n+foo\r\n", "ERR:Protocol error: expected '$', got '+'");
    CHECK("*2\r\n$3\r\nGET\r\n:1\r\n", "ERR:Protocol error: expected '$', got ':'");
    CHECK("*1\r\n*1\r\n", "ERR:Protocol error: expected '$', got '*'");
    CHECK("*1\r\nPING\r\n", "ERR:Protocol error: expected '$', got 'P'");
}

static char *filled(size_t n, char ch, const char *tail)
{
    size_t t = strlen(tail);
    char *s = malloc(n + t + 1);
    assert_non_null(s);
    memset(s, ch, n);
    memcpy(s + n, tail, t + 1);
    return s;
}

/* Limits of 64 KB on an unfinished inline line and an unfinished count line; fed in 4 KB
 * chunks (byte by byte would rescan the line 64 K times). */
static void test_err_too_big_lines(void **state)
{
    (void)state;
    struct transcript t;
    /* inline: more than 64 KB without a newline */
    char *s = filled(PX_INLINE_MAX + 1, 'x', "");
    parse_split(s, PX_INLINE_MAX + 1, PX_INLINE_MAX + 1, 0, MAX_BULK, &t);
    assert_string_equal(tr_cstr(&t), "ERR:Protocol error: too big inline request");
    tr_free(&t);
    parse_bytewise(s, PX_INLINE_MAX + 1, 4096, 0, MAX_BULK, &t);
    assert_string_equal(tr_cstr(&t), "ERR:Protocol error: too big inline request");
    tr_free(&t);
    free(s);
    /* exactly 64 KB without a newline is still allowed to wait */
    s = filled(PX_INLINE_MAX, 'x', "");
    parse_split(s, PX_INLINE_MAX, PX_INLINE_MAX, 0, MAX_BULK, &t);
    assert_string_equal(tr_cstr(&t), "AGAIN");
    tr_free(&t);
    free(s);
    /* a line longer than 64 KB is accepted when its newline is already there (as in Redis) */
    s = filled(PX_INLINE_MAX + 100, 'x', "\r\n");
    memcpy(s, "echo ", 5);
    parse_split(s, PX_INLINE_MAX + 102, PX_INLINE_MAX + 102, 0, MAX_BULK, &t);
    assert_int_equal(t.ncmds, 1);
    assert_int_equal(t.final_rc, PX_PARSE_AGAIN);
    tr_free(&t);
    free(s);

    /* '*' count line without CR */
    s = filled(PX_INLINE_MAX + 1, '1', "");
    s[0] = '*';
    parse_split(s, PX_INLINE_MAX + 1, PX_INLINE_MAX + 1, 0, MAX_BULK, &t);
    assert_string_equal(tr_cstr(&t), "ERR:Protocol error: too big mbulk count string");
    tr_free(&t);
    parse_bytewise(s, PX_INLINE_MAX + 1, 4096, 0, MAX_BULK, &t);
    assert_string_equal(tr_cstr(&t), "ERR:Protocol error: too big mbulk count string");
    tr_free(&t);
    free(s);

    /* '$' count line without CR */
    s = filled(PX_INLINE_MAX + 10, '1', "");
    memcpy(s, "*1\r\n$", 5);
    parse_split(s, PX_INLINE_MAX + 10, PX_INLINE_MAX + 10, 0, MAX_BULK, &t);
    assert_string_equal(tr_cstr(&t), "ERR:Protocol error: too big bulk count string");
    tr_free(&t);
    free(s);
}

static void test_err_unauth_limits(void **state)
{
    (void)state;
    CHECK_UNAUTH("*11\r\n", "ERR:Protocol error: unauthenticated multibulk length");
    CHECK_UNAUTH("*10\r\n", "AGAIN");
    CHECK_UNAUTH("*1\r\n$16385\r\n", "ERR:Protocol error: unauthenticated bulk length");
    CHECK_UNAUTH("*1\r\n$16384\r\n", "AGAIN");
    CHECK_UNAUTH("*2\r\n$4\r\nAUTH\r\n$16385\r\n",
                 "ERR:Protocol error: unauthenticated bulk length");
    /* the same input is fine once authenticated */
    CHECK("*11\r\n", "AGAIN");
    CHECK("*1\r\n$16385\r\n", "AGAIN");
    /* invalid length takes precedence, as in Redis */
    CHECK_UNAUTH("*abc\r\n", "ERR:Protocol error: invalid multibulk length");
    /* a full small command passes */
    CHECK_UNAUTH("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n", "2|4:AUTH|2:pw;AGAIN");
}

/* After an error the parser keeps returning it, whatever comes next. */
static void test_err_sticky(void **state)
{
    (void)state;
    struct px_parser p;
    px_parser_init(&p, MAX_BULK);
    struct rd_buf in;
    rd_buf_init(&in);
    assert_int_equal(rd_buf_append_str(&in, "*1\r\n+foo\r\n"), 0);
    struct px_cmd c;
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_ERR);
    assert_string_equal(p.err, "Protocol error: expected '$', got '+'");
    rd_buf_reset(&in);
    assert_int_equal(rd_buf_append_str(&in, "PING\r\n*1\r\n$4\r\nPING\r\n"), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_ERR);
        assert_string_equal(p.err, "Protocol error: expected '$', got '+'");
    }
    rd_buf_reset(&in);
    assert_int_equal(px_parse(&p, &in, &c), PX_PARSE_ERR); /* even with nothing to read */
    rd_buf_free(&in);
}

/* ---- px_cmd_from_argv --------------------------------------------------------------------- */

static void test_cmd_from_argv(void **state)
{
    (void)state;
    char a0[] = "SET";
    char a1[] = "k\0ey";
    char a2[] = "";
    const char *argv[] = {a0, a1, a2};
    const size_t lens[] = {3, 4, 0};
    struct px_cmd c;
    assert_int_equal(px_cmd_from_argv(&c, 3, argv, lens), 0);
    assert_int_equal(c.argc, 3);
    /* copies, not the caller's pointers */
    memset(a0, 'X', 3);
    memset(a1, 'X', 4);
    assert_int_equal(c.argvlen[0], 3);
    assert_string_equal(c.argv[0], "SET");
    assert_int_equal(c.argvlen[1], 4);
    assert_memory_equal(c.argv[1], "k\0ey", 5);
    assert_int_equal(c.argvlen[2], 0);
    assert_string_equal(c.argv[2], "");
    px_cmd_free(&c);
    assert_int_equal(px_cmd_from_argv(&c, 0, NULL, NULL), 0);
    assert_int_equal(c.argc, 0);
    px_cmd_free(&c);
    px_cmd_free(&c); /* freeing a freed command is harmless */
}

/* Random inputs built from protocol fragments: no crash, no leak, and the three feeding
 * patterns agree (the transcripts are compared against the whole-buffer parse). */
static void test_fragment_fuzz(void **state)
{
    (void)state;
    static const char *frags[] = {"*",       "*1\r\n",  "*2\r\n", "*0\r\n", "*-1\r\n",   "$",
                                  "$0\r\n",  "$1\r\n",  "$3\r\n", "\r\n",   "\r",        "\n",
                                  "a",       "abc",     "PING",   " ",      "\"",        "'",
                                  "\\",      "\\x41",   "-",      "+",      ":",         "*3\r\n",
                                  "$-1\r\n", "*11\r\n", "x y\n",  "\0",     "$16385\r\n"};
    uint64_t seed = 0x1234567;
    for (int iter = 0; iter < 3000; iter++) {
        char buf[256];
        size_t n = 0;
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int nf = 1 + (int)((seed >> 33) % 12);
        for (int k = 0; k < nf; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *f = frags[(seed >> 33) % (sizeof(frags) / sizeof(frags[0]))];
            size_t fl = f[0] ? strlen(f) : 1;
            if (n + fl > sizeof(buf))
                break;
            memcpy(buf + n, f, fl);
            n += fl;
        }
        int unauth = (int)(seed >> 60) & 1;
        struct transcript whole;
        parse_split(buf, n, n, unauth, MAX_BULK, &whole);
        assert_int_equal(rd_buf_append(&whole.out, "", 1), 0);
        struct transcript t;
        parse_bytewise(buf, n, 1, unauth, MAX_BULK, &t);
        assert_int_equal(rd_buf_append(&t.out, "", 1), 0);
        if (rd_buf_unread(&t.out) != rd_buf_unread(&whole.out) ||
            memcmp(rd_buf_rptr(&t.out), rd_buf_rptr(&whole.out), rd_buf_unread(&t.out)) != 0)
            fail_msg("iteration %d: bytewise differs from whole", iter);
        tr_free(&t);
        for (size_t cut = 0; cut <= n; cut++) {
            parse_split(buf, n, cut, unauth, MAX_BULK, &t);
            assert_int_equal(rd_buf_append(&t.out, "", 1), 0);
            if (rd_buf_unread(&t.out) != rd_buf_unread(&whole.out) ||
                memcmp(rd_buf_rptr(&t.out), rd_buf_rptr(&whole.out), rd_buf_unread(&t.out)) != 0)
                fail_msg("iteration %d: cut at %zu differs from whole", iter, cut);
            tr_free(&t);
        }
        tr_free(&whole);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk_whole_and_split),
        cmocka_unit_test(test_multibulk_pipelined),
        cmocka_unit_test(test_multibulk_binary),
        cmocka_unit_test(test_multibulk_empty_bulk_and_empty_arrays),
        cmocka_unit_test(test_multibulk_consumes_exactly),
        cmocka_unit_test(test_multibulk_resume_after_compact),
        cmocka_unit_test(test_multibulk_big_bulk),
        cmocka_unit_test(test_multibulk_reserves_for_bulk),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_inline_unbalanced_quotes),
        cmocka_unit_test(test_split_inline),
        cmocka_unit_test(test_split_inline_vt_ff),
        cmocka_unit_test(test_err_multibulk_length),
        cmocka_unit_test(test_err_minus_zero),
        cmocka_unit_test(test_err_bulk_length),
        cmocka_unit_test(test_err_expected_dollar),
        cmocka_unit_test(test_err_too_big_lines),
        cmocka_unit_test(test_err_unauth_limits),
        cmocka_unit_test(test_err_sticky),
        cmocka_unit_test(test_cmd_from_argv),
        cmocka_unit_test(test_fragment_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
