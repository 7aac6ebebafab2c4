/* Unit tests of backend/script.c: how scripts, functions and the script registry are rewritten
 * at apply time (and for reads), what the registry writes to the hidden database, and the
 * fix-ups of replies. What the prelude then does inside Redis is tested against real Redis in
 * tests/integration/scripts.tcl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "backend/script.h"
#include "common/buf.h"
#include "common/sha1.h"

#define NOW  1700000000000ULL
#define SEED 0x123456789ULL /* the module keeps 31 bits: 0x23456789 */

struct parsed {
    int argc;
    char *argv[16];
    size_t len[16];
};

/* One RESP array of bulk strings (what the module writes) from the start of b. */
static void parse(const struct rd_buf *b, size_t *off, struct parsed *p)
{
    const char *s = b->data + *off;
    char *end;
    assert_int_equal(s[0], '*');
    p->argc = (int)strtol(s + 1, &end, 10);
    assert_true(p->argc <= 16);
    s = end + 2;
    for (int i = 0; i < p->argc; i++) {
        assert_int_equal(s[0], '$');
        p->len[i] = strtoul(s + 1, &end, 10);
        s = end + 2;
        p->argv[i] = (char *)s;
        s += p->len[i] + 2;
    }
    *off = (size_t)(s - b->data);
}

static int arg_is(const struct parsed *p, int i, const char *want)
{
    return i < p->argc && p->len[i] == strlen(want) && memcmp(p->argv[i], want, p->len[i]) == 0;
}

/* What every test works with: a registry, the output, the last swap and parsed command. */
struct fx {
    struct be_scripts *sc;
    struct rd_buf out;
    struct be_script_swap sw;
    struct parsed p;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->sc = be_scripts_new();
    rd_buf_init(&f->out);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rd_buf_free(&f->out);
    be_scripts_free(f->sc);
    free(f);
    return 0;
}

/* Splits "EVAL|body|0|a" at '|' into a command and runs it through be_scripts_cmd; a rewritten
 * command is parsed into f->p. */
static int run(struct fx *f, enum be_script_mode mode, const char *line)
{
    struct be_scripts *sc = f->sc;
    struct rd_buf *out = &f->out;
    struct be_script_swap *sw = &f->sw;
    struct parsed *p = &f->p;
    static char buf[16384];
    const char *argv[16];
    size_t len[16];
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", line);
    for (char *tok = buf, *bar;; tok = bar + 1) {
        argv[argc] = tok;
        bar = strchr(tok, '|');
        len[argc] = bar ? (size_t)(bar - tok) : strlen(tok);
        argc++;
        if (bar == NULL)
            break;
    }
    struct be_cmd c = {argc, argv, len};
    rd_buf_reset(out);
    int rc = be_scripts_cmd(sc, mode, &c, NOW, SEED, out, sw);
    if (rc == 1) {
        size_t off = 0;
        parse(out, &off, p);
        assert_int_equal(off, out->len);
    }
    return rc;
}

static void sha(const char *s, char out[RD_SHA1_HEX + 1])
{
    rd_sha1_hex(s, strlen(s), out);
    out[RD_SHA1_HEX] = '\0';
}

/* pre + body, as Redis gets it. */
static char *wrapped(struct be_scripts *sc, int fn, const char *head, const char *body)
{
    size_t plen;
    const char *pre = be_scripts_prelude(sc, fn, &plen);
    static char out[16384];
    snprintf(out, sizeof(out), "%s%.*s%s", head, (int)plen, pre, body);
    return out;
}

static void test_eval_wrapped_with_time_and_seed(void **state)
{
    struct fx *f = *state;
    struct be_scripts *sc = f->sc;
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "EVAL|return 1|1|k|a"), 1);
    assert_int_equal(f->p.argc, 7);
    assert_true(arg_is(&f->p, 0, "EVAL"));
    assert_true(arg_is(&f->p, 1, wrapped(sc, 0, "", "return 1")));
    assert_true(arg_is(&f->p, 2, "1") && arg_is(&f->p, 3, "k") && arg_is(&f->p, 4, "a"));
    assert_true(arg_is(&f->p, 5, "1700000000000"));
    assert_true(arg_is(&f->p, 6, "591751049")); /* 0x23456789 */
    char want_to[41], want_from[41];
    sha("return 1", want_to);
    sha(wrapped(sc, 0, "", "return 1"), want_from);
    assert_memory_equal(f->sw.to, want_to, RD_SHA1_HEX);
    assert_memory_equal(f->sw.from, want_from, RD_SHA1_HEX);
    /* Registered, once, under the client's sha. */
    assert_int_equal(be_scripts_count(sc), 1);
    assert_true(be_scripts_known(sc, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 40));
    assert_true(be_scripts_known(sc, "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", 40));
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "EVAL|return 1|0"), 1);
    assert_int_equal(be_scripts_count(sc), 1);
    /* A #! line stays the first line: the prelude opens the second. */
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "EVAL|#!lua flags=no-writes\nreturn 2|0"), 1);
    assert_true(arg_is(&f->p, 1, wrapped(sc, 0, "#!lua flags=no-writes\n", "return 2")));
}

/* What Redis refuses before it compiles anything goes as it is and registers nothing: with
 * time and seed appended, a bad numkeys could have become a good one. */
static void test_eval_left_alone(void **state)
{
    struct fx *f = *state;
    struct be_scripts *sc = f->sc;
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "EVAL|return 1|2|k"), 0);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "EVAL|return 1|-1"), 0);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "EVAL|return 1|x"), 0);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "EVAL|#!lua|0"), 0);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "GET|k"), 0);
    /* Only the _RO forms are reads. */
    assert_int_equal(run(f, BE_SCRIPT_READ, "EVAL|return 1|0"), 0);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "EVAL_RO|return 1|0"), 0);
    assert_int_equal(be_scripts_count(sc), 0);
    assert_int_equal(f->out.len, 0);
}

static void test_evalsha_and_reads(void **state)
{
    struct fx *f = *state;
    struct be_scripts *sc = f->sc;
    char s[41], sw_sha[41], line[200];
    sha("return 1", s);
    sha(wrapped(sc, 0, "", "return 1"), sw_sha);
    /* Unknown: under a name no script has, so Redis says NOSCRIPT even if it caches the body
     * unwrapped (from before an upgrade); a sha of another length is Redis's NOSCRIPT already. */
    snprintf(line, sizeof(line), "EVALSHA|%s|0", s);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, line), 1);
    assert_true(f->p.argc == 3 && arg_is(&f->p, 0, "EVALSHA") &&
                arg_is(&f->p, 1, "0000000000000000000000000000000000000000") &&
                arg_is(&f->p, 2, "0"));
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "EVALSHA|abc|0"), 0);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "SCRIPT|LOAD|return 1"), 1);
    assert_int_equal(f->p.argc, 3);
    assert_true(arg_is(&f->p, 1, "LOAD") && arg_is(&f->p, 2, wrapped(sc, 0, "", "return 1")));
    assert_memory_equal(f->sw.from, sw_sha, RD_SHA1_HEX);
    assert_memory_equal(f->sw.to, s, RD_SHA1_HEX);
    /* Applied: under the name Redis caches it by. */
    snprintf(line, sizeof(line), "EVALSHA|%s|1|k", s);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, line), 1);
    assert_int_equal(f->p.argc, 6);
    assert_true(arg_is(&f->p, 0, "EVALSHA") && arg_is(&f->p, 1, sw_sha) && arg_is(&f->p, 3, "k"));
    assert_true(arg_is(&f->p, 4, "1700000000000") && arg_is(&f->p, 5, "591751049"));
    /* A read: the body itself (Redis's cache need not have it yet), seed -1 (no wrappers). */
    snprintf(line, sizeof(line), "EVALSHA_RO|%s|1|k", s);
    assert_int_equal(run(f, BE_SCRIPT_READ, line), 1);
    assert_true(arg_is(&f->p, 0, "EVAL_RO") && arg_is(&f->p, 1, wrapped(sc, 0, "", "return 1")));
    assert_true(arg_is(&f->p, 5, "-1"));
    /* EVAL_RO is wrapped the same way, and registers nothing (only this node ran it). */
    assert_int_equal(run(f, BE_SCRIPT_READ, "EVAL_RO|return 3|0"), 1);
    assert_true(arg_is(&f->p, 1, wrapped(sc, 0, "", "return 3")) && arg_is(&f->p, 4, "-1"));
    assert_int_equal(be_scripts_count(sc), 1);
}

static void test_functions(void **state)
{
    struct fx *f = *state;
    struct be_scripts *sc = f->sc;
    const char *code = "#!lua name=l\nredis.register_function('f', function() return 1 end)";
    char line[16384];
    snprintf(line, sizeof(line), "FUNCTION|LOAD|REPLACE|%s", code);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, line), 1);
    assert_int_equal(f->p.argc, 4);
    assert_true(arg_is(&f->p, 2, "REPLACE"));
    char *w = wrapped(sc, 1, "#!lua name=l\n", strchr(code, '\n') + 1);
    assert_true(arg_is(&f->p, 3, w));
    assert_int_equal(f->sw.from[0], 0);
    /* Never twice (a library that has it already), never without a #! line. */
    snprintf(line, sizeof(line), "FUNCTION|LOAD|%s", w);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, line), 0);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "FUNCTION|LOAD|return 1"), 0);
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "FUNCTION|LOAD|#!lua name=x"), 0);
    /* FCALL: time and seed after the user's arguments; FCALL_RO read with seed -1. */
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "FCALL|f|1|k|a"), 1);
    assert_int_equal(f->p.argc, 7);
    assert_true(arg_is(&f->p, 4, "a") && arg_is(&f->p, 5, "1700000000000") &&
                arg_is(&f->p, 6, "591751049"));
    assert_int_equal(run(f, BE_SCRIPT_READ, "FCALL_RO|f|0"), 1);
    assert_true(arg_is(&f->p, 3, "1700000000000") && arg_is(&f->p, 4, "-1"));
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "FCALL|f|3|k"), 0);
}

static void persist(struct fx *f)
{
    rd_buf_reset(&f->out);
    assert_int_equal(be_scripts_persist_next(f->sc, &f->out), 1);
    size_t off = 0;
    parse(&f->out, &off, &f->p);
}

/* The registry follows EVAL, SCRIPT LOAD, SCRIPT FLUSH and FLUSHALL into the hidden database. */
static void test_persist(void **state)
{
    struct fx *f = *state;
    struct be_scripts *sc = f->sc;
    char s1[41], s2[41];
    sha("return 1", s1);
    sha("return 2", s2);
    assert_int_equal(be_scripts_persist_next(sc, &f->out), 0);
    run(f, BE_SCRIPT_APPLY, "EVAL|return 1|0");
    persist(f);
    assert_int_equal(f->p.argc, 4);
    assert_true(arg_is(&f->p, 0, "HSET") && arg_is(&f->p, 1, BE_SCRIPTS_KEY) &&
                arg_is(&f->p, 2, s1) && arg_is(&f->p, 3, "return 1"));
    rd_buf_reset(&f->out);
    assert_int_equal(be_scripts_persist_next(sc, &f->out), 0);
    /* FLUSHALL empties the hidden database too: every script is written again. */
    run(f, BE_SCRIPT_APPLY, "SCRIPT|LOAD|return 2");
    assert_int_equal(run(f, BE_SCRIPT_APPLY, "FLUSHALL"), 0);
    persist(f);
    assert_int_equal(f->p.argc, 6);
    rd_buf_reset(&f->out);
    assert_int_equal(be_scripts_persist_next(sc, &f->out), 0);
    /* SCRIPT FLUSH: the hash goes, then what was added after it. */
    run(f, BE_SCRIPT_APPLY, "SCRIPT|FLUSH|ASYNC");
    assert_int_equal(be_scripts_count(sc), 0);
    run(f, BE_SCRIPT_APPLY, "EVAL|return 2|0");
    persist(f);
    assert_true(f->p.argc == 2 && arg_is(&f->p, 0, "DEL") && arg_is(&f->p, 1, BE_SCRIPTS_KEY));
    persist(f);
    assert_true(f->p.argc == 4 && arg_is(&f->p, 2, s2));
    rd_buf_reset(&f->out);
    assert_int_equal(be_scripts_persist_next(sc, &f->out), 0);
}

static int count_sent(void *ctx)
{
    (*(int *)ctx)++;
    return 0;
}

static redisReply *str_reply(const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_STRING;
    r->len = strlen(s);
    r->str = strdup(s);
    return r;
}

static redisReply *arr_reply(size_t n)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n, sizeof(*r->element));
    return r;
}

/* Read back on connect; then every script is loaded into Redis before the next batch. */
static void test_load_and_preload(void **state)
{
    struct fx *f = *state;
    struct be_scripts *sc = f->sc;
    char s1[41];
    sha("return 1", s1);
    redisReply *r = arr_reply(4);
    r->element[0] = str_reply(s1);
    r->element[1] = str_reply("return 1");
    r->element[2] = str_reply("0000000000000000000000000000000000000000");
    r->element[3] = str_reply("return 0");
    assert_int_equal(be_scripts_load(sc, r), 0);
    freeReplyObject(r);
    assert_int_equal(be_scripts_count(sc), 2);
    assert_true(be_scripts_known(sc, s1, 40));
    int n = 0;
    assert_int_equal(be_scripts_preload(sc, &f->out, count_sent, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    rd_buf_reset(&f->out);
    assert_int_equal(be_scripts_preload(sc, &f->out, count_sent, &n), 0);
    assert_int_equal(n, 0);
    /* Nothing to write back: it came from there. */
    assert_int_equal(be_scripts_persist_next(sc, &f->out), 0);
    /* A malformed hash is refused; a missing one empties the registry. */
    r = arr_reply(1);
    r->element[0] = str_reply("x");
    assert_int_equal(be_scripts_load(sc, r), -1);
    freeReplyObject(r);
    assert_int_equal(be_scripts_load(sc, NULL), 0);
    assert_int_equal(be_scripts_count(sc), 0);
}

static void test_replies(void **state)
{
    struct fx *f = *state;
    struct be_scripts *sc = f->sc;
    memset(f->sw.from, 'a', RD_SHA1_HEX);
    memset(f->sw.to, 'b', RD_SHA1_HEX);
    char text[200];
    snprintf(text, sizeof(text), "-ERR x script: %.40s, on @user_script:1.\r\n%.40s", f->sw.from,
             f->sw.from);
    be_scripts_swap(&f->sw, text, strlen(text));
    char want[200];
    snprintf(want, sizeof(want), "-ERR x script: %.40s, on @user_script:1.\r\n%.40s", f->sw.to,
             f->sw.to);
    assert_string_equal(text, want);
    /* FUNCTION LIST WITHCODE shows the code as loaded. */
    const char *code = "#!lua name=l\nreturn 1";
    redisReply *lib = arr_reply(4);
    lib->element[0] = str_reply("library_name");
    lib->element[1] = str_reply("l");
    lib->element[2] = str_reply("library_code");
    lib->element[3] = str_reply(wrapped(sc, 1, "#!lua name=l\n", "return 1"));
    redisReply *r = arr_reply(1);
    r->element[0] = lib;
    char names[64];
    assert_int_equal(be_scripts_unwrapped(sc, r, names, sizeof(names)), 0);
    be_scripts_strip_reply(sc, r);
    assert_int_equal(lib->element[3]->len, strlen(code));
    assert_string_equal(lib->element[3]->str, code);
    /* Stripped, it is what a library loaded before redraft looks like. */
    assert_int_equal(be_scripts_unwrapped(sc, r, names, sizeof(names)), 1);
    assert_string_equal(names, "l");
    freeReplyObject(r);
    /* SCRIPT EXISTS from the registry. */
    run(f, BE_SCRIPT_APPLY, "EVAL|return 1|0");
    const char *argv[4] = {"SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "zz"};
    size_t len[4] = {6, 6, 40, 2};
    rd_buf_reset(&f->out);
    assert_int_equal(be_scripts_exists_reply(sc, 4, argv, len, &f->out), 0);
    assert_int_equal(f->out.len, strlen("*2\r\n:1\r\n:0\r\n"));
    assert_memory_equal(f->out.data, "*2\r\n:1\r\n:0\r\n", f->out.len);
}

/* The list the docs print is the one the prelude refuses, and every refused name is one the
 * prelude's quick check lets through to its handlers. */
static void test_refused_list(void **state)
{
    struct fx *f = *state;
    struct be_scripts *sc = f->sc;
    size_t plen;
    const char *pre = be_scripts_prelude(sc, 0, &plen);
    char loop[512] = "for _, k in ipairs({";
    for (int i = 0; be_scripts_refused[i] != NULL; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s'%s'", i ? ", " : "", be_scripts_refused[i]);
        strcat(loop, name);
        snprintf(name, sizeof(name), " %s ", be_scripts_refused[i]);
        assert_non_null(strstr(pre, name));
    }
    strcat(loop, "}) do H[k] = refuse end");
    assert_non_null(strstr(pre, loop));
}

/* FUNCTION DUMP payloads of Redis 7.0.15 without redraft: a small library (a plain string) and
 * one of 20 functions (LZF-compressed). */
static const char dump_small[] = "\xf5\x40\x46\x23\x21\x6c\x75\x61\x20\x6e\x61\x6d\x65\x3d\x73\x6d"
                                 "\x61\x6c\x6c\x0a\x72\x65\x64\x69"
                                 "\x73\x2e\x72\x65\x67\x69\x73\x74\x65\x72\x5f\x66\x75\x6e\x63\x74"
                                 "\x69\x6f\x6e\x28\x27\x73\x27\x2c"
                                 "\x20\x66\x75\x6e\x63\x74\x69\x6f\x6e\x28\x29\x20\x72\x65\x74\x75"
                                 "\x72\x6e\x20\x31\x20\x65\x6e\x64"
                                 "\x29\x0a\x00\x5e\x54\x75\xa2\xa9\x4e\xef\x22";
static const char dump_big[] = "\xf5\xc3\x41\x01\x44\x6e\x1f\x23\x21\x6c\x75\x61\x20\x6e\x61\x6d"
                               "\x65\x3d\x62\x69\x67\x0a\x72\x65"
                               "\x64\x69\x73\x2e\x72\x65\x67\x69\x73\x74\x65\x72\x5f\x66\x75\x0c"
                               "\x6e\x63\x74\x69\x6f\x6e\x28\x27"
                               "\x66\x30\x27\x2c\x20\xe0\x00\x0e\x0e\x29\x20\x72\x65\x74\x75\x72"
                               "\x6e\x20\x30\x20\x65\x6e\x64\x29"
                               "\xe0\x12\x36\x00\x31\xe0\x0c\x36\x00\x31\xe0\x17\x36\x00\x32\xe0"
                               "\x0c\x36\x00\x32\xe0\x17\x36\x00"
                               "\x33\xe0\x0c\x36\x00\x33\xe0\x17\x36\x00\x34\xe0\x0c\x36\x00\x34"
                               "\xe0\x17\x36\x00\x35\xe0\x0c\x36"
                               "\x00\x35\xe0\x17\x36\x00\x36\xe0\x0c\x36\x00\x36\xe0\x17\x36\x00"
                               "\x37\xe0\x0c\x36\x00\x37\xe0\x17"
                               "\x36\x00\x38\xe0\x0c\x36\x00\x38\xe0\x17\x36\x00\x39\xe0\x0c\x36"
                               "\x00\x39\xe0\x17\x36\x00\x31\xe2"
                               "\x0d\x26\x00\x31\xe2\x19\x27\xe2\x0e\x28\xe2\x18\x29\x00\x31\xe2"
                               "\x0d\x2a\x00\x31\xe2\x18\x2b\x00"
                               "\x31\xe2\x0d\x2c\x00\x31\xe2\x18\x2d\x00\x31\xe2\x0d\x2e\x00\x31"
                               "\xe2\x18\x2f\x00\x31\xe2\x0d\x30"
                               "\x00\x31\xe2\x18\x31\x00\x31\xe2\x0d\x32\x00\x31\xe2\x18\x33\x00"
                               "\x31\xe2\x0d\x34\x00\x31\xe2\x18"
                               "\x35\x00\x31\xe2\x0d\x36\x00\x31\xe2\x18\x37\x00\x31\xe2\x0d\x38"
                               "\x00\x31\x42\x39\x01\x64\x29\x0a"
                               "\x00\x5a\x6a\x8e\x30\x4e\x62\x0c\xb9";

/* Only libraries that carry the prelude may be restored; what cannot be read is Redis's to
 * refuse. */
static void test_restore_check(void **state)
{
    struct fx *f = *state;
    struct be_scripts *sc = f->sc;
    char why[200];
    assert_int_equal(
        be_scripts_restore_ok(sc, dump_small, sizeof(dump_small) - 1, why, sizeof(why)), 0);
    assert_string_equal(why, "library '#!lua name=small'");
    assert_int_equal(be_scripts_restore_ok(sc, dump_big, sizeof(dump_big) - 1, why, sizeof(why)),
                     0);
    assert_string_equal(why, "library '#!lua name=big'");
    /* The same library as redraft loads it: 245, a 32-bit length, the code, the footer. */
    char *code = wrapped(sc, 1, "#!lua name=small\n", "return 1");
    size_t n = strlen(code);
    char *payload = malloc(n + 16);
    payload[0] = (char)245;
    payload[1] = (char)0x80;
    for (int i = 0; i < 4; i++)
        payload[2 + i] = (char)(n >> (24 - 8 * i));
    memcpy(payload + 6, code, n);
    memset(payload + 6 + n, 0, 10);
    assert_int_equal(be_scripts_restore_ok(sc, payload, n + 16, why, sizeof(why)), 1);
    /* Cut short, or not a library: left for Redis. */
    assert_int_equal(be_scripts_restore_ok(sc, payload, n / 2, why, sizeof(why)), 1);
    assert_int_equal(be_scripts_restore_ok(sc, "\x01xxxxxxxxxxxx", 14, why, sizeof(why)), 1);
    free(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_eval_wrapped_with_time_and_seed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evalsha_and_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_functions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_and_preload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_check, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
