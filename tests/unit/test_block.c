/* Unit tests of proxy/block.c's pure parts: which commands block and where their timeout is,
 * timeouts parsed as Redis parses them (errors in Redis 7.0.15's words), the null replies, and
 * XREAD's arguments without BLOCK. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/block.h"
#include "proxy/resp.h"

/* Classifies a space-separated command line (the name as the table has it: lower case). */
static struct px_blk_spec classify(const char *name, const char *line)
{
    struct px_cmd cmd;
    assert_int_equal(px_split_inline(line, strlen(line), &cmd), 0);
    struct px_blk_spec sp;
    px_blk_classify(name, cmd.argc, (const char *const *)cmd.argv, cmd.argvlen, &sp);
    px_cmd_free(&cmd);
    return sp;
}

static void test_classify_pops(void **state)
{
    struct px_blk_spec sp = classify("blpop", "BLPOP a b 1.5");
    assert_int_equal(sp.kind, PX_BLK_POP);
    assert_int_equal(sp.timeout_arg, 3);
    assert_int_equal(sp.unit_ms, 0);
    assert_int_equal(classify("brpop", "BRPOP a 0").timeout_arg, 2);
    assert_int_equal(classify("bzpopmin", "BZPOPMIN z 0").timeout_arg, 2);
    assert_int_equal(classify("bzpopmax", "BZPOPMAX z y 0").timeout_arg, 3);
    assert_int_equal(classify("brpoplpush", "BRPOPLPUSH a b 7").timeout_arg, 3);
    assert_int_equal(classify("blmove", "BLMOVE a b LEFT RIGHT 7").timeout_arg, 5);
    assert_int_equal(classify("blmpop", "BLMPOP 3 2 a b LEFT COUNT 2").timeout_arg, 1);
    assert_int_equal(classify("bzmpop", "BZMPOP 3 1 z MIN").timeout_arg, 1);
    assert_int_equal(classify("lpop", "LPOP a").kind, PX_BLK_NONE);
    struct px_blk_spec w = classify("wait", "WAIT 1 100");
    assert_int_equal(w.kind, PX_BLK_WAIT);
    assert_int_equal(w.timeout_arg, 2);
    assert_int_equal(w.unit_ms, 1);
}

static void test_classify_streams(void **state)
{
    struct px_blk_spec sp = classify("xread", "XREAD COUNT 2 BLOCK 100 STREAMS s $");
    assert_int_equal(sp.kind, PX_BLK_XREAD);
    assert_int_equal(sp.timeout_arg, 4);
    assert_int_equal(sp.unit_ms, 1);
    assert_int_equal(sp.count_given, 1);
    /* without BLOCK it does not block */
    assert_int_equal(classify("xread", "XREAD STREAMS s 0").kind, PX_BLK_NONE);
    /* "block" as a key or an ID is not the option */
    assert_int_equal(classify("xread", "XREAD STREAMS block 0").kind, PX_BLK_NONE);
    /* the last BLOCK counts, as in Redis */
    assert_int_equal(classify("xread", "XREAD BLOCK 1 BLOCK 2 STREAMS s 0").timeout_arg, 4);
    sp = classify("xreadgroup", "XREADGROUP GROUP block c BLOCK 0 STREAMS s >");
    assert_int_equal(sp.kind, PX_BLK_XREADGROUP);
    assert_int_equal(sp.timeout_arg, 5);
    assert_int_equal(sp.count_given, 0);
    /* a group called "block" is not the option */
    assert_int_equal(classify("xreadgroup", "XREADGROUP GROUP block c STREAMS s >").kind,
                     PX_BLK_NONE);
    /* a syntax error: Redis answers it */
    assert_int_equal(classify("xread", "XREAD BOGUS BLOCK 1 STREAMS s 0").kind, PX_BLK_NONE);
    assert_int_equal(classify("xread", "XREAD BLOCK 1").kind, PX_BLK_NONE);
}

static void test_timeouts(void **state)
{
    long long ms = -7;
    const char *err = NULL;
    assert_int_equal(px_blk_timeout_ms("0", 1, 0, &ms, &err), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(px_blk_timeout_ms("1.5", 3, 0, &ms, &err), 0);
    assert_int_equal(ms, 1500);
    /* rounded up to the millisecond, as ceill(x * 1000) */
    assert_int_equal(px_blk_timeout_ms("0.0001", 6, 0, &ms, &err), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(px_blk_timeout_ms("1e1", 3, 0, &ms, &err), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(px_blk_timeout_ms("-1", 2, 0, &ms, &err), -1);
    assert_string_equal(err, "ERR timeout is negative");
    assert_int_equal(px_blk_timeout_ms("abc", 3, 0, &ms, &err), -1);
    assert_string_equal(err, "ERR timeout is not a float or out of range");
    assert_int_equal(px_blk_timeout_ms(" 1", 2, 0, &ms, &err), -1);
    assert_int_equal(px_blk_timeout_ms("1 ", 2, 0, &ms, &err), -1);
    assert_int_equal(px_blk_timeout_ms("nan", 3, 0, &ms, &err), -1);
    assert_int_equal(px_blk_timeout_ms("", 0, 0, &ms, &err), -1);
    /* huge: for ever in practice, never an overflow */
    assert_int_equal(px_blk_timeout_ms("1e300", 5, 0, &ms, &err), 0);
    assert_true(ms > 0);
    /* milliseconds: an integer */
    assert_int_equal(px_blk_timeout_ms("250", 3, 1, &ms, &err), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(px_blk_timeout_ms("1.5", 3, 1, &ms, &err), -1);
    assert_string_equal(err, "ERR timeout is not an integer or out of range");
    assert_int_equal(px_blk_timeout_ms("-5", 2, 1, &ms, &err), -1);
    assert_string_equal(err, "ERR timeout is negative");
}

static void test_null_replies(void **state)
{
    assert_true(px_blk_is_null("*-1\r\n", 5));
    assert_true(px_blk_is_null("$-1\r\n", 5));
    assert_false(px_blk_is_null("*0\r\n", 4));
    assert_false(px_blk_is_null(":-1\r\n", 5));
    assert_false(px_blk_is_null("*2\r\n$1\r\nk\r\n$1\r\nv\r\n", 18));
    assert_false(px_blk_is_null("-ERR x\r\n", 8));
    assert_string_equal(PX_BLK_TIMEOUT_REPLY, "*-1\r\n");
}

/* Rewrites a command line and joins the result with spaces. */
static char *rewrite(const char *line, int drop_block, int add_count)
{
    struct px_cmd cmd;
    assert_int_equal(px_split_inline(line, strlen(line), &cmd), 0);
    const char *argv[32];
    size_t len[32];
    assert_true(cmd.argc + 2 <= 32);
    int n = px_blk_rewrite_xread(cmd.argc, (const char *const *)cmd.argv, cmd.argvlen, drop_block,
                                 add_count, argv, len);
    static char out[1024];
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i)
            strcat(out, " ");
        strncat(out, argv[i], len[i]);
    }
    px_cmd_free(&cmd);
    return out;
}

static void test_rewrite_xread(void **state)
{
    assert_string_equal(rewrite("XREAD BLOCK 100 STREAMS s $", 1, 0), "XREAD STREAMS s $");
    assert_string_equal(rewrite("XREAD COUNT 5 BLOCK 0 STREAMS a b 0 $", 1, 0),
                        "XREAD COUNT 5 STREAMS a b 0 $");
    assert_string_equal(rewrite("XREAD BLOCK 1 BLOCK 2 STREAMS s 0", 1, 0), "XREAD STREAMS s 0");
    /* COUNT's argument and keys called "block" stay */
    assert_string_equal(rewrite("XREAD COUNT block STREAMS block 0", 1, 0),
                        "XREAD COUNT block STREAMS block 0");
    assert_string_equal(rewrite("XREADGROUP GROUP block c BLOCK 5 STREAMS s >", 1, 0),
                        "XREADGROUP GROUP block c STREAMS s >");
    /* a parked read gets Redis's COUNT for a blocked read */
    assert_string_equal(rewrite("XREADGROUP GROUP g c BLOCK 5 STREAMS s >", 0, 1),
                        "XREADGROUP COUNT " PX_BLK_XREAD_COUNT " GROUP g c BLOCK 5 STREAMS s >");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_pops), cmocka_unit_test(test_classify_streams),
        cmocka_unit_test(test_timeouts),      cmocka_unit_test(test_null_replies),
        cmocka_unit_test(test_rewrite_xread),
    };
    return cmocka_run_group_tests_name("blocking commands", tests, NULL, NULL);
}
