/* Unit tests of proxy/rewrite.c: time- and chance-dependent writes become deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/cmdtable.h"
#include "proxy/resp.h"
#include "proxy/rewrite.h"

#define NOW 1700000000000ULL

/* Rewrites "a b c" (space-separated, as inline) and returns the result joined by spaces. */
static char *rewrite(const char *name, const char *line)
{
    struct px_cmd cmd;
    assert_int_equal(px_split_inline(line, strlen(line), &cmd), 0);
    struct px_cmddef def;
    memset(&def, 0, sizeof(def));
    snprintf(def.name, sizeof(def.name), "%s", name);
    struct px_rewrite rw = {0};
    assert_int_equal(px_rewrite(&def, &cmd, NOW, 42, &rw), 0);
    static char out[8192];
    out[0] = '\0';
    for (int i = 0; i < rw.argc; i++) {
        if (i)
            strcat(out, " ");
        if (rw.argvlen[i] > 64)
            strcat(out, "<script>");
        else
            strncat(out, rw.argv[i], rw.argvlen[i]);
    }
    px_rewrite_free(&rw);
    px_cmd_free(&cmd);
    return out;
}

static void test_expire(void **state)
{
    (void)state;
    assert_string_equal(rewrite("expire", "EXPIRE k 100"), "PEXPIREAT k 1700000100000");
    assert_string_equal(rewrite("expire", "expire k 10 NX"), "PEXPIREAT k 1700000010000 NX");
    assert_string_equal(rewrite("pexpire", "PEXPIRE k 1500 GT"), "PEXPIREAT k 1700000001500 GT");
    /* negative: already expired, as with EXPIRE itself */
    assert_string_equal(rewrite("expire", "EXPIRE k -5"), "PEXPIREAT k 1699999995000");
    /* not an integer or overflowing: left for Redis to reject */
    assert_string_equal(rewrite("expire", "EXPIRE k abc"), "EXPIRE k abc");
    assert_string_equal(rewrite("expire", "EXPIRE k 9223372036854775807"),
                        "EXPIRE k 9223372036854775807");
    assert_string_equal(rewrite("pexpire", "PEXPIRE k 9223372036854775000"),
                        "PEXPIRE k 9223372036854775000");
}

static void test_setex(void **state)
{
    (void)state;
    assert_string_equal(rewrite("setex", "SETEX k 10 v"), "SET k v PXAT 1700000010000");
    assert_string_equal(rewrite("psetex", "PSETEX k 10 v"), "SET k v PXAT 1700000000010");
    /* Redis rejects a non-positive time with its own error: keep the command */
    assert_string_equal(rewrite("setex", "SETEX k 0 v"), "SETEX k 0 v");
    assert_string_equal(rewrite("setex", "SETEX k -1 v"), "SETEX k -1 v");
}

static void test_set_options(void **state)
{
    (void)state;
    assert_string_equal(rewrite("set", "SET k v EX 5"), "SET k v PXAT 1700000005000");
    assert_string_equal(rewrite("set", "SET k v NX px 7 GET"), "SET k v NX PXAT 1700000000007 GET");
    assert_string_equal(rewrite("set", "SET k v"), "SET k v");
    assert_string_equal(rewrite("set", "SET k v KEEPTTL"), "SET k v KEEPTTL");
    assert_string_equal(rewrite("set", "SET k v EXAT 5"), "SET k v EXAT 5");
    /* syntax errors stay for Redis */
    assert_string_equal(rewrite("set", "SET k v EX 5 PX 6"), "SET k v EX 5 PX 6");
    assert_string_equal(rewrite("set", "SET k v EX"), "SET k v EX");
    assert_string_equal(rewrite("set", "SET k v EX 0"), "SET k v EX 0");
    assert_string_equal(rewrite("getex", "GETEX k EX 3"), "GETEX k PXAT 1700000003000");
    assert_string_equal(rewrite("getex", "GETEX k PERSIST"), "GETEX k PERSIST");
}

static void test_restore(void **state)
{
    (void)state;
    assert_string_equal(rewrite("restore", "RESTORE k 100 payload REPLACE"),
                        "RESTORE k 1700000000100 payload REPLACE ABSTTL");
    assert_string_equal(rewrite("restore", "RESTORE k 0 payload"), "RESTORE k 0 payload");
    assert_string_equal(rewrite("restore", "RESTORE k 5 payload ABSTTL"),
                        "RESTORE k 5 payload ABSTTL");
}

static void test_spop(void **state)
{
    (void)state;
    assert_string_equal(rewrite("spop", "SPOP s"), "EVAL <script> 1 s 42");
    assert_string_equal(rewrite("spop", "SPOP s 3"), "EVAL <script> 1 s 42 3");
    /* an invalid count keeps Redis's own error */
    assert_string_equal(rewrite("spop", "SPOP s -1"), "SPOP s -1");
    assert_string_equal(rewrite("spop", "SPOP s x"), "SPOP s x");
}

static void test_xadd(void **state)
{
    (void)state;
    assert_string_equal(rewrite("xadd", "XADD s * f v"),
                        "EVAL <script> 1 s 1700000000000 2 s * f v");
    assert_string_equal(rewrite("xadd", "XADD s NOMKSTREAM MAXLEN ~ 10 LIMIT 5 * f v"),
                        "EVAL <script> 1 s 1700000000000 8 s NOMKSTREAM MAXLEN ~ 10 LIMIT 5 * f v");
    assert_string_equal(rewrite("xadd", "XADD s MINID 5 * f v"),
                        "EVAL <script> 1 s 1700000000000 4 s MINID 5 * f v");
    /* an explicit id is deterministic already */
    assert_string_equal(rewrite("xadd", "XADD s 5-1 f v"), "XADD s 5-1 f v");
    assert_string_equal(rewrite("xadd", "XADD s 5-* f v"), "XADD s 5-* f v");
}

static void test_untouched(void **state)
{
    (void)state;
    assert_string_equal(rewrite("incr", "INCR k"), "INCR k");
    assert_string_equal(rewrite("pexpireat", "PEXPIREAT k 5"), "PEXPIREAT k 5");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expire),      cmocka_unit_test(test_setex),
        cmocka_unit_test(test_set_options), cmocka_unit_test(test_restore),
        cmocka_unit_test(test_spop),        cmocka_unit_test(test_xadd),
        cmocka_unit_test(test_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
