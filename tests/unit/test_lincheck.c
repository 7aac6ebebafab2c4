/* test_lincheck.c: the linearizability checker (tests/lincheck), its history format and its
 * generator.
 *
 * Histories are written as transcripts in the file format: "process type f key value time".
 * Known-bad histories must be rejected, and the operation named as stuck must be the one at
 * fault. The search's reductions are checked against a plain exhaustive search (no memo, no
 * reductions) on many small random histories, half of them broken on purpose.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lincheck/gen.h"
#include "tests/lincheck/history.h"
#include "tests/lincheck/lincheck.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static const struct lin_config NO_LIMITS = {0};

/* Parses text (which must be valid) and checks key k. */
static int check_key(const char *text, size_t k, const struct lin_config *cfg,
                     struct lin_history *h, struct lin_result *r)
{
    char err[300] = "";
    int rc = lin_history_parse(h, text, strlen(text), err, sizeof(err));
    if (rc != 0)
        fail_msg("parse: %s", err);
    assert_true(k < h->n_keys);
    return lin_history_check(h, k, cfg, r);
}

/* The verdict on the first key of text. */
static int verdict(const char *text)
{
    struct lin_history h;
    struct lin_result r;
    int v = check_key(text, 0, &NO_LIMITS, &h, &r);
    lin_result_free(&r);
    lin_history_free(&h);
    return v;
}

/* The worst verdict over every key (violation, then unknown, then ok). */
static int verdict_all(const char *text, size_t len, const struct lin_config *cfg)
{
    struct lin_history h;
    char err[300] = "";
    if (lin_history_parse(&h, text, len, err, sizeof(err)) != 0)
        fail_msg("parse: %s", err);
    int worst = LIN_OK;
    for (size_t k = 0; k < h.n_keys; k++) {
        struct lin_result r;
        int v = lin_history_check(&h, k, cfg, &r);
        if (v == LIN_VIOLATION || (v == LIN_UNKNOWN && worst == LIN_OK))
            worst = v;
        if (v == LIN_BADINPUT)
            fail_msg("key %s: %s", h.keys[k].name, r.why);
        lin_result_free(&r);
    }
    lin_history_free(&h);
    return worst;
}

/* The line of the op the checker says cannot be linearized. */
static size_t stuck_line(const char *text)
{
    struct lin_history h;
    struct lin_result r;
    assert_int_equal(check_key(text, 0, &NO_LIMITS, &h, &r), LIN_VIOLATION);
    assert_true(r.stuck < h.keys[0].n);
    size_t line = h.keys[0].ops[r.stuck].line;
    lin_result_free(&r);
    lin_history_free(&h);
    return line;
}

/* Parsing must fail, and the message must contain want. */
static void parse_fails(const char *text, const char *want)
{
    struct lin_history h;
    char err[300] = "";
    assert_int_equal(lin_history_parse(&h, text, strlen(text), err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
}

/* The generator's defaults, with these. */
static struct lin_gen_config config(uint64_t seed, size_t ops, unsigned procs, unsigned info_pm,
                                    int model, int bug)
{
    struct lin_gen_config c;
    lin_gen_defaults(&c);
    c.seed = seed;
    c.ops = ops;
    c.procs = procs;
    c.info_pm = info_pm;
    c.model = model;
    c.bug = bug;
    return c;
}

static char *generate(const struct lin_gen_config *c, size_t *len)
{
    char err[200] = "";
    char *text = lin_gen(c, len, err, sizeof(err));
    if (!text)
        fail_msg("lin_gen: %s", err);
    return text;
}

/* ---- transcripts with known answers -------------------------------------------------------- */

struct transcript {
    const char *name;
    const char *text;
    int want;
    size_t stuck_line; /* for a violation: the line of the op to blame (0: not checked) */
};

static void run_transcripts(const struct transcript *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = verdict(t[i].text);
        if (got != t[i].want)
            fail_msg("%s: verdict %d, want %d", t[i].name, got, t[i].want);
        size_t line = t[i].stuck_line ? stuck_line(t[i].text) : 0;
        if (line != t[i].stuck_line)
            fail_msg("%s: blames line %zu, want %zu", t[i].name, line, t[i].stuck_line);
    }
}

#define RUN(cases) run_transcripts(cases, sizeof(cases) / sizeof(cases[0]))

/* A write, then (line 3) a read that overlaps a second write. */
#define OVERLAP                                                                                    \
    "1 invoke write x 1 10\n1 ok write x 1 20\n1 invoke write x 2 30\n2 invoke read x _ 35\n"      \
    "1 ok write x 2 50\n"
/* A write that timed out, then a read invoked later. */
#define TIMED_OUT_WRITE "1 invoke write x 1 10\n1 info write x 1 20\n2 invoke read x _ 30\n"
/* A cas of unknown outcome from the value a write left. */
#define TIMED_OUT_CAS                                                                              \
    "1 invoke write x 1 10\n1 ok write x 1 20\n2 invoke cas x 1:2 30\n2 info cas x 1:2 40\n"       \
    "3 invoke read x _ 50\n"

static const struct transcript registers[] = {
    {"one op at a time",
     "# a comment, then a blank line\n\n"
     "1 invoke read x _ 5\n1 ok read x nil 8\n1 invoke write x 1 10\n1 ok write x 1 20\n"
     "2 invoke read x _ 30\n2 ok read x 1 40\n2 invoke cas x 1:2 50\n2 ok cas x _ 60\n"
     "1 invoke read x _ 70\n1 ok read x 2 80\n",
     LIN_OK, 0},
    {"an overlapping read sees the old value", OVERLAP "2 ok read x 1 60\n", LIN_OK, 0},
    {"an overlapping read sees the new value", OVERLAP "2 ok read x 2 60\n", LIN_OK, 0},
    {"an overlapping read sees an older value", OVERLAP "2 ok read x nil 60\n", LIN_VIOLATION, 4},
    {"a stale read",
     "1 invoke write x 1 10\n1 ok write x 1 20\n2 invoke write x 2 30\n2 ok write x 2 40\n"
     "3 invoke read x _ 50\n3 ok read x 1 60\n",
     LIN_VIOLATION, 5},
    {"a lost write: acknowledged, then not seen by a read that starts later",
     "1 invoke write x 1 10\n1 ok write x 1 20\n2 invoke read x _ 30\n2 ok read x nil 40\n",
     LIN_VIOLATION, 3},
    {"a read of a value never written",
     "1 invoke write x 1 10\n2 invoke read x _ 12\n1 ok write x 1 20\n2 ok read x 7 25\n",
     LIN_VIOLATION, 2},
    {"two overlapping cas that both swapped 1 away",
     "1 invoke write x 1 10\n1 ok write x 1 20\n2 invoke cas x 1:2 30\n3 invoke cas x 1:3 31\n"
     "2 ok cas x 1:2 40\n3 ok cas x 1:3 41\n",
     LIN_VIOLATION, 0},
    {"two overlapping cas from 1, one failed, and a read of the winner",
     "1 invoke write x 1 10\n1 ok write x 1 20\n2 invoke cas x 1:2 30\n3 invoke cas x 1:3 31\n"
     "2 ok cas x 1:2 40\n3 fail cas x 1:3 41\n3 invoke read x _ 50\n3 ok read x 2 60\n",
     LIN_OK, 0},
    {"a cas that swapped from a value the register did not hold",
     "1 invoke write x 5 10\n1 ok write x 5 20\n1 invoke cas x 4:6 30\n1 ok cas x 4:6 40\n",
     LIN_VIOLATION, 3},
    {"a failed write is not seen",
     "1 invoke write x 1 10\n1 fail write x 1 20\n2 invoke read x _ 30\n2 ok read x nil 40\n",
     LIN_OK, 0},
    {"a failed write seen",
     "1 invoke write x 1 10\n1 fail write x 1 20\n2 invoke read x _ 30\n2 ok read x 1 40\n",
     LIN_VIOLATION, 3},
    {"a timed-out write that happened after its timeout",
     TIMED_OUT_WRITE "2 ok read x nil 40\n2 invoke read x _ 50\n2 ok read x 1 60\n", LIN_OK, 0},
    {"a timed-out write that never happened", TIMED_OUT_WRITE "2 ok read x nil 40\n", LIN_OK, 0},
    {"a timed-out write seen, then unseen",
     TIMED_OUT_WRITE "2 ok read x 1 40\n2 invoke read x _ 50\n2 ok read x nil 60\n", LIN_VIOLATION,
     5},
    {"a timed-out write seen before it was invoked",
     "2 invoke read x _ 1\n2 ok read x 1 5\n1 invoke write x 1 10\n1 info write x 1 20\n",
     LIN_VIOLATION, 1},
    {"a timed-out cas that swapped", TIMED_OUT_CAS "3 ok read x 2 60\n", LIN_OK, 0},
    {"a timed-out cas that did not", TIMED_OUT_CAS "3 ok read x 1 60\n", LIN_OK, 0},
    {"a timed-out cas and a value nobody wrote", TIMED_OUT_CAS "3 ok read x 3 60\n", LIN_VIOLATION,
     5},
    {"an invoke left open counts as timed out",
     "1 invoke write x 1 10\n2 invoke read x _ 30\n2 ok read x 1 40\n", LIN_OK, 0},
    {"lines out of order",
     "3 ok read x 1 60\n2 ok write x 2 40\n1 invoke write x 1 10\n3 invoke read x _ 50\n"
     "1 ok write x 1 20\n2 invoke write x 2 30\n",
     LIN_VIOLATION, 4},
    {"a completion and the next invoke of its process in the same nanosecond",
     "1 invoke write x 1 20\n1 invoke read x _ 30\n1 ok write x 1 30\n1 ok read x 1 40\n", LIN_OK,
     0},
};

/* An increment that timed out, then another one. */
#define TIMED_OUT_INCR "1 invoke incr c _ 10\n1 info incr c _ 20\n2 invoke incr c _ 30\n"

static const struct transcript counters[] = {
    {"overlapping increments",
     "1 invoke read c _ 1\n1 ok read c nil 2\n1 invoke incr c _ 10\n2 invoke incr c _ 11\n"
     "2 ok incr c 1 20\n1 ok incr c 2 21\n3 invoke read c _ 30\n3 ok read c 2 40\n",
     LIN_OK, 0},
    {"an increment applied twice, seen by the next one",
     "1 invoke incr c _ 10\n1 ok incr c 1 20\n1 invoke incr c _ 30\n1 ok incr c 3 40\n",
     LIN_VIOLATION, 3},
    {"an increment applied twice, seen by a read",
     "1 invoke incr c _ 10\n1 ok incr c 1 20\n1 invoke read c _ 30\n1 ok read c 2 40\n",
     LIN_VIOLATION, 3},
    {"two increments that both returned 1",
     "1 invoke incr c _ 10\n2 invoke incr c _ 11\n1 ok incr c 1 20\n2 ok incr c 1 21\n",
     LIN_VIOLATION, 0},
    {"a read of a value the counter had passed",
     "1 invoke incr c _ 10\n1 ok incr c 1 20\n1 invoke incr c _ 30\n1 ok incr c 2 40\n"
     "2 invoke read c _ 50\n2 ok read c 1 60\n",
     LIN_VIOLATION, 5},
    {"a timed-out increment that never happened", TIMED_OUT_INCR "2 ok incr c 1 40\n", LIN_OK, 0},
    {"a timed-out increment that happened", TIMED_OUT_INCR "2 ok incr c 2 40\n", LIN_OK, 0},
    {"a timed-out increment that happened twice", TIMED_OUT_INCR "2 ok incr c 3 40\n",
     LIN_VIOLATION, 3},
};

/* Two overlapping appends. */
#define TWO_APPENDS                                                                                \
    "1 invoke append l 1 10\n2 invoke append l 2 11\n1 ok append l 1 20\n2 ok append l 2 21\n"
/* An append that timed out, another that did not, and a read after both. */
#define TIMED_OUT_APPEND                                                                           \
    "1 invoke append l 1 10\n1 info append l 1 20\n2 invoke append l 2 30\n"                       \
    "2 ok append l 2 40\n3 invoke readlist l _ 50\n"

static const struct transcript lists[] = {
    {"overlapping appends, read in one order",
     "1 invoke readlist l _ 1\n1 ok readlist l [] 2\n" TWO_APPENDS
     "3 invoke readlist l _ 30\n3 ok readlist l 2,1 40\n",
     LIN_OK, 0},
    /* either read may be blamed: each fits some order of the appends */
    {"overlapping appends, read in two orders",
     TWO_APPENDS "3 invoke readlist l _ 30\n3 ok readlist l 2,1 40\n"
                 "3 invoke readlist l _ 50\n3 ok readlist l 1,2 60\n",
     LIN_VIOLATION, 0},
    {"a duplicated append",
     "1 invoke append l 1 10\n1 ok append l 1 20\n1 invoke append l 2 30\n1 ok append l 2 40\n"
     "2 invoke readlist l _ 50\n2 ok readlist l 1,2,1 60\n",
     LIN_VIOLATION, 5},
    {"a lost append",
     "1 invoke append l 1 10\n1 ok append l 1 20\n1 invoke append l 2 30\n1 ok append l 2 40\n"
     "2 invoke readlist l _ 50\n2 ok readlist l 2 60\n",
     LIN_VIOLATION, 5},
    {"a timed-out append that never happened", TIMED_OUT_APPEND "3 ok readlist l 2 60\n", LIN_OK,
     0},
    {"a timed-out append that happened after its timeout",
     TIMED_OUT_APPEND "3 ok readlist l 2,1 60\n", LIN_OK, 0},
    {"a timed-out append that happened before it", TIMED_OUT_APPEND "3 ok readlist l 1,2 60\n",
     LIN_OK, 0},
    {"a read without an acknowledged append", TIMED_OUT_APPEND "3 ok readlist l 1 60\n",
     LIN_VIOLATION, 5},
};

static void test_registers(void **state)
{
    RUN(registers);
}

static void test_counters(void **state)
{
    RUN(counters);
}

static void test_lists(void **state)
{
    RUN(lists);
}

/* ---- the report -------------------------------------------------------------------------- */

static void test_report_names_stuck_op_and_partial_order(void **state)
{
    const char *text = "1 invoke write x 1 10\n"
                       "1 ok write x 1 20\n"
                       "2 invoke write x 2 30\n"
                       "2 ok write x 2 40\n"
                       "3 invoke read x _ 50\n"
                       "3 ok read x 1 60\n";
    struct lin_history h;
    struct lin_result r;
    assert_int_equal(check_key(text, 0, &NO_LIMITS, &h, &r), LIN_VIOLATION);
    const struct lin_key *k = &h.keys[0];
    /* the two writes go in, in their real-time order; the read cannot follow */
    assert_int_equal(r.order_len, 2);
    assert_int_equal(k->ops[r.order[0]].line, 1);
    assert_int_equal(k->ops[r.order[1]].line, 3);
    assert_int_equal(r.is_list, 0);
    assert_int_equal(r.state, 2);
    char buf[200];
    lin_op_format(&k->ops[r.stuck], buf, sizeof(buf));
    assert_string_equal(buf, "process 3: read -> 1 [50, 60] (line 5)");
    assert_non_null(strstr(r.why, "read -> 1"));
    lin_result_free(&r);
    lin_history_free(&h);
}

static void test_report_of_a_pass_is_a_whole_linearization(void **state)
{
    const char *text = "1 invoke append l 1 10\n"
                       "2 invoke append l 2 11\n"
                       "1 ok append l 1 20\n"
                       "2 ok append l 2 21\n"
                       "3 invoke readlist l _ 30\n"
                       "3 ok readlist l 2,1 40\n";
    struct lin_history h;
    struct lin_result r;
    assert_int_equal(check_key(text, 0, &NO_LIMITS, &h, &r), LIN_OK);
    assert_int_equal(r.order_len, 3);
    assert_int_equal(h.keys[0].ops[r.order[0]].line, 2);
    assert_int_equal(h.keys[0].ops[r.order[1]].line, 1);
    assert_int_equal(r.is_list, 1);
    assert_int_equal(r.state_list_len, 2);
    assert_int_equal(r.state_list[0], 2);
    assert_int_equal(r.state_list[1], 1);
    lin_result_free(&r);
    lin_history_free(&h);
}

static void test_format(void **state)
{
    int64_t l[30];
    for (int i = 0; i < 30; i++)
        l[i] = i;
    char buf[200];
    lin_list_format(l, 3, buf, sizeof(buf));
    assert_string_equal(buf, "[0,1,2]");
    lin_list_format(l, 30, buf, sizeof(buf));
    assert_string_equal(buf, "[0,1,2,3,4,...(30 values)...,25,26,27,28,29]");
    lin_list_format(l, 30, buf, 8);
    assert_string_equal(buf, "[0,1,2,");
    struct lin_op o = {.f = LIN_CAS, .a = 1, .b = 2, .invoke = 7, .process = 4};
    lin_op_format(&o, buf, sizeof(buf));
    assert_string_equal(buf, "process 4: cas 1:2 [7, unknown]");
}

/* ---- limits: a search cut short is never a pass ------------------------------------------ */

static void test_memory_cap_says_unknown(void **state)
{
    /* a small cap on a small, linearizable history */
    struct lin_config tiny = {.mem_bytes_max = 256};
    struct lin_history h;
    struct lin_result r;
    assert_int_equal(check_key("1 invoke write x 1 10\n"
                               "1 ok write x 1 20\n"
                               "2 invoke read x _ 30\n"
                               "2 ok read x 1 40\n",
                               0, &tiny, &h, &r),
                     LIN_UNKNOWN);
    assert_non_null(strstr(r.why, "memory cap"));
    lin_result_free(&r);
    lin_history_free(&h);

    /* a hard history: few values, timed-out writes of them, and a stale read to disprove */
    struct lin_gen_config c = config(3, 10000, 8, 30, LIN_MODEL_REGISTER, LIN_BUG_STALE_READ);
    c.values = 5;
    size_t len;
    char *text = generate(&c, &len);
    struct lin_config capped = {.mem_bytes_max = 4 << 20};
    assert_int_equal(verdict_all(text, len, &capped), LIN_UNKNOWN);
    free(text);
}

static void test_step_bound_says_unknown(void **state)
{
    struct lin_gen_config c = config(1, 200, 5, 20, LIN_MODEL_REGISTER, LIN_BUG_NONE);
    size_t len;
    char *text = generate(&c, &len);
    struct lin_config bounded = {.steps_max = 10};
    assert_int_equal(verdict_all(text, len, &bounded), LIN_UNKNOWN);
    assert_int_equal(verdict_all(text, len, &NO_LIMITS), LIN_OK);
    free(text);
}

/* Timed-out increments are interchangeable: disproving a read needs one search node per count
 * of them placed, not one per subset (2^20 here). */
static void test_timed_out_increments_are_interchangeable(void **state)
{
    enum { N = 20 };
    struct lin_op ops[N + 2] = {
        {.f = LIN_WRITE, .done = 1, .a = 0, .invoke = 1, .complete = 2},
        {.f = LIN_READ, .done = 1, .result = N + 5, .invoke = 100, .complete = 101},
    };
    for (int i = 0; i < N; i++)
        ops[2 + i] = (struct lin_op){.f = LIN_INCR, .invoke = 3 + (uint64_t)i};
    struct lin_config cfg = {.initial = LIN_NIL, .steps_max = 10000};
    struct lin_result r;
    assert_int_equal(lin_check(ops, N + 2, &cfg, &r), LIN_VIOLATION);
    lin_result_free(&r);
    ops[1].result = N - 3; /* and a count they can reach is found */
    assert_int_equal(lin_check(ops, N + 2, &cfg, &r), LIN_OK);
    lin_result_free(&r);
}

/* ---- bad input --------------------------------------------------------------------------- */

static void test_bad_input_names_the_line(void **state)
{
    parse_fails("1 invoke write x 1\n", "line 1: expected 6 fields");
    parse_fails("1 invoke write x 1 10 extra\n", "line 1: expected 6 fields");
    parse_fails("# ok\n1 begin write x 1 10\n", "line 2: unknown type begin");
    parse_fails("1 invoke delete x 1 10\n", "line 1: unknown f delete");
    parse_fails("p invoke write x 1 10\n", "line 1: the process is not an integer");
    parse_fails("1 invoke write x 1 -5\n", "line 1: the time is not an unsigned integer");
    parse_fails("1 invoke write x _ 10\n", "line 1: bad value for invoke write: _");
    parse_fails("1 invoke read x 3 10\n", "line 1: bad value for invoke read: 3");
    parse_fails("1 invoke cas x 3 10\n", "line 1: bad value for invoke cas: 3");
    parse_fails("1 invoke incr x _ 10\n1 ok incr x nil 20\n", "line 2: bad value for ok incr");
    parse_fails("1 invoke read x _ 10\n1 ok read x _ 20\n", "line 2: bad value for ok read");
    parse_fails("1 invoke readlist l _ 10\n1 ok readlist l 1,,2 20\n",
                "line 2: bad value for ok readlist");
    parse_fails("1 invoke read x _ 10\n1 info read x 4 20\n", "line 2: bad value for info read");
    parse_fails("1 invoke write x -9223372036854775808 10\n", "line 1: bad value");
    parse_fails("1 ok write x 1 10\n", "line 1: ok of process 1 with no open invoke");
    parse_fails("1 invoke write x 1 20\n1 ok write x 1 10\n", "line 2: ok of process 1");
    parse_fails("1 invoke write x 1 10\n1 invoke write x 2 20\n",
                "line 2: process 1 invokes while its op from line 1 is open");
    parse_fails("1 invoke write x 1 10\n1 ok read x 1 20\n",
                "line 2: ok of read x answers the invoke of write x at line 1");
    parse_fails("1 invoke write x 1 10\n1 ok write y 1 20\n", "answers the invoke of write x");
    parse_fails("1 invoke write x 1 10\n1 ok write x 2 20\n",
                "line 2: the value differs from the invoke's at line 1");
    parse_fails("1 invoke write x 1 10\n1 ok write x 1 20\n2 invoke append x 1 30\n",
                "line 3: key x has both list and other operations (line 1)");
}

static void test_models_follow_from_ops(void **state)
{
    struct lin_history h;
    char err[200];
    const char *text = "1 invoke incr c _ 1\n1 ok incr c 1 2\n"
                       "1 invoke read r _ 3\n1 ok read r nil 4\n"
                       "1 invoke incr m _ 5\n1 ok incr m 1 6\n"
                       "1 invoke write m 5 7\n1 ok write m 5 8\n"
                       "1 invoke append l 1 9\n1 fail append l 1 10\n";
    assert_int_equal(lin_history_parse(&h, text, strlen(text), err, sizeof(err)), 0);
    assert_int_equal(h.n_keys, 4);
    assert_string_equal(h.keys[0].name, "c");
    assert_int_equal(h.keys[0].model, LIN_MODEL_COUNTER);
    assert_int_equal(h.keys[1].model, LIN_MODEL_REGISTER);
    assert_int_equal(h.keys[2].model, LIN_MODEL_REGISTER);
    assert_int_equal(h.keys[3].model, LIN_MODEL_LIST);
    assert_int_equal(h.keys[3].n, 0);
    assert_int_equal(h.keys[3].n_failed, 1);
    lin_history_free(&h);
    /* a register that was incremented counts nil as 0 */
    assert_int_equal(verdict("1 invoke incr m _ 5\n1 ok incr m 1 6\n"
                             "1 invoke cas m 1:7 7\n1 ok cas m 1:7 8\n"),
                     LIN_OK);
}

/* ---- generated histories ----------------------------------------------------------------- */

static void test_generated_correct_histories_pass(void **state)
{
    for (uint64_t seed = 1; seed <= 12; seed++) {
        struct lin_gen_config c = config(seed, 1500, 2 + (unsigned)(seed % 8),
                                         10 * (unsigned)(seed % 6), LIN_GEN_MIXED, LIN_BUG_NONE);
        c.keys = 3;
        c.values = seed % 3 ? 0 : 4;
        c.shuffle = seed % 2;
        size_t len;
        char *text = generate(&c, &len);
        if (verdict_all(text, len, &NO_LIMITS) != LIN_OK)
            fail_msg("seed %" PRIu64 ": a correct history is not linearizable", seed);
        free(text);
    }
}

static void test_generated_bugs_are_caught(void **state)
{
    static const struct {
        int bug, model;
    } cases[] = {
        {LIN_BUG_STALE_READ, LIN_MODEL_REGISTER},    {LIN_BUG_STALE_READ, LIN_MODEL_COUNTER},
        {LIN_BUG_STALE_READ, LIN_MODEL_LIST},        {LIN_BUG_LOST_WRITE, LIN_MODEL_REGISTER},
        {LIN_BUG_LOST_WRITE, LIN_MODEL_COUNTER},     {LIN_BUG_LOST_WRITE, LIN_MODEL_LIST},
        {LIN_BUG_DUP_APPEND, LIN_MODEL_LIST},        {LIN_BUG_DOUBLE_INCR, LIN_MODEL_COUNTER},
        {LIN_BUG_DOUBLE_CAS, LIN_MODEL_REGISTER},    {LIN_BUG_UNWRITTEN_READ, LIN_MODEL_REGISTER},
        {LIN_BUG_UNWRITTEN_READ, LIN_MODEL_COUNTER}, {LIN_BUG_UNWRITTEN_READ, LIN_MODEL_LIST},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (uint64_t seed = 1; seed <= 4; seed++) {
            struct lin_gen_config c =
                config(seed, 800, 3 + (unsigned)seed, 30, cases[i].model, cases[i].bug);
            c.shuffle = 1;
            size_t len;
            char *text = generate(&c, &len);
            if (verdict_all(text, len, &NO_LIMITS) != LIN_VIOLATION)
                fail_msg("%s on a %s, seed %" PRIu64 ": not caught", lin_gen_bug_name(c.bug),
                         lin_model_name(c.model), seed);
            free(text);
        }
    }
}

/* 10,000 operations on one key, as the chaos runs make them (timing is in docs/testing.md).
 * The search is bounded in steps, not time, so that a lost reduction fails here on any machine:
 * these take at most about 60,000 steps. A stale read must be the operation blamed. */
static void test_ten_thousand_ops_on_one_key(void **state)
{
    static const int models[] = {LIN_MODEL_REGISTER, LIN_MODEL_COUNTER, LIN_MODEL_LIST};
    for (size_t m = 0; m < 3; m++) {
        for (int bug = LIN_BUG_NONE; bug <= LIN_BUG_STALE_READ; bug++) {
            size_t ops = models[m] == LIN_MODEL_LIST ? 3000 : 10000; /* lists: long lines */
            struct lin_gen_config c = config(42, ops, 8, 30, models[m], bug);
            size_t len;
            char *text = generate(&c, &len);
            struct lin_history h;
            char err[200];
            assert_int_equal(lin_history_parse(&h, text, len, err, sizeof(err)), 0);
            assert_int_equal(h.n_keys, 1);
            assert_int_equal(h.keys[0].n + h.keys[0].n_failed, ops);
            struct lin_config bounded = {.steps_max = 500000};
            struct lin_result r;
            int v = lin_history_check(&h, 0, &bounded, &r);
            if (v != (bug ? LIN_VIOLATION : LIN_OK))
                fail_msg("%s, bug %s: verdict %d after %" PRIu64 " steps", lin_model_name(c.model),
                         lin_gen_bug_name(bug), v, r.steps);
            if (bug) {
                const struct lin_op *o = &h.keys[0].ops[r.stuck];
                int initial = o->f == LIN_READLIST ? o->list_len == 0
                              : o->f == LIN_READ   ? o->result == (m ? 0 : LIN_NIL)
                                                   : 0;
                assert_true(o->done && initial && o->line > 100);
            }
            lin_result_free(&r);
            lin_history_free(&h);
            free(text);
        }
    }
}

/* ---- against an exhaustive search --------------------------------------------------------- */

#define SMALL_OPS 7

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static int64_t pick(int64_t n)
{
    return (int64_t)(rng() % (uint64_t)n);
}

struct small {
    struct lin_op ops[SMALL_OPS];
    int64_t lists[SMALL_OPS][SMALL_OPS]; /* READLIST results */
    size_t n;
    int64_t initial;
};

struct bstate {
    int64_t v;
    int64_t list[SMALL_OPS];
    size_t len;
};

/* The model, as plainly as it can be written: whether o fits st, and the state after it. */
static int brute_step(const struct lin_op *o, const struct bstate *st, struct bstate *ns)
{
    *ns = *st;
    int64_t cur = st->v == LIN_NIL ? 0 : st->v;
    switch (o->f) {
    case LIN_READ:
        return !o->done || o->result == st->v;
    case LIN_WRITE:
        ns->v = o->a;
        return 1;
    case LIN_CAS:
        if (o->done && o->result == 0)
            return st->v != o->a;
        if (st->v == o->a)
            ns->v = o->b;
        return st->v == o->a || !o->done;
    case LIN_INCR:
        ns->v = cur + 1;
        return !o->done || o->result == cur + 1;
    case LIN_APPEND:
        ns->list[ns->len++] = o->a;
        return 1;
    case LIN_READLIST:
        return !o->done || (o->list_len == st->len &&
                            memcmp(o->list, st->list, st->len * sizeof(int64_t)) == 0);
    default:
        return 0;
    }
}

/* Every order, every subset of the ops of unknown outcome: nothing clever. */
static int brute(const struct small *h, unsigned used, const struct bstate *st)
{
    int all = 1;
    for (size_t i = 0; i < h->n; i++)
        all &= !h->ops[i].done || (used >> i & 1);
    if (all)
        return 1;
    for (size_t i = 0; i < h->n; i++) {
        const struct lin_op *o = &h->ops[i];
        int blocked = used >> i & 1;
        for (size_t j = 0; j < h->n && !blocked; j++)
            blocked = !(used >> j & 1) && h->ops[j].done && h->ops[j].complete < o->invoke;
        if (blocked)
            continue;
        struct bstate ns;
        int fits = brute_step(o, st, &ns);
        if (fits && brute(h, used | 1u << i, &ns))
            return 1;
    }
    return 0;
}

/* Whether r.order places every completed op once, keeps real-time order and fits the model:
 * a pass must come with the proof. */
static int is_linearization(const struct small *h, const struct lin_result *r)
{
    unsigned seen = 0;
    struct bstate st = {.v = h->initial};
    for (size_t p = 0; p < r->order_len; p++) {
        size_t i = r->order[p];
        if (i >= h->n || (seen >> i & 1))
            return 0;
        seen |= 1u << i;
        for (size_t q = p + 1; q < r->order_len; q++) {
            const struct lin_op *later = &h->ops[r->order[q]];
            if (later->done && later->complete < h->ops[i].invoke)
                return 0;
        }
        struct bstate next;
        if (!brute_step(&h->ops[i], &st, &next))
            return 0;
        st = next;
    }
    for (size_t i = 0; i < h->n; i++)
        if (h->ops[i].done && !(seen >> i & 1))
            return 0;
    return 1;
}

/* Random ops on one key of a model; results either from a real execution in some order
 * (possibly spoiled afterwards) or made up. */
static void make_small(struct small *h, int model)
{
    memset(h, 0, sizeof(*h));
    h->n = 1 + (size_t)pick(SMALL_OPS);
    h->initial = model == 1 ? 0 : LIN_NIL;
    int64_t next = 1;
    for (size_t i = 0; i < h->n; i++) {
        struct lin_op *o = &h->ops[i];
        int r = (int)pick(100);
        switch (model) {
        case 0: /* register, as the file format has it (CAS ok = swapped) */
            o->f = r < 40 ? LIN_READ : r < 75 ? LIN_WRITE : LIN_CAS;
            break;
        case 1: /* counter */
            o->f = r < 40 ? LIN_READ : LIN_INCR;
            break;
        case 2: /* the simulator's keys: everything, CAS may report "not swapped" */
            o->f = r < 30 ? LIN_READ : r < 55 ? LIN_WRITE : r < 75 ? LIN_INCR : LIN_CAS;
            break;
        default:
            o->f = r < 40 ? LIN_READLIST : LIN_APPEND;
        }
        o->a = o->f == LIN_APPEND ? next++ : 1 + pick(3);
        o->b = 1 + pick(3);
        o->invoke = (uint64_t)pick(20);
        o->complete = o->invoke + 1 + (uint64_t)pick(10);
        o->done = pick(100) < 75;
        o->list = h->lists[i];
    }
    /* a real execution: effects in the order of random points inside each op */
    uint64_t at[SMALL_OPS];
    size_t order[SMALL_OPS];
    for (size_t i = 0; i < h->n; i++) {
        at[i] = h->ops[i].invoke * 16 + 1 +
                (uint64_t)pick((int64_t)((h->ops[i].complete - h->ops[i].invoke) * 16 - 1));
        order[i] = i;
    }
    for (size_t i = 1; i < h->n; i++)
        for (size_t j = i; j > 0 && at[order[j]] < at[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    struct bstate st = {.v = h->initial};
    for (size_t k = 0; k < h->n; k++) {
        struct lin_op *o = &h->ops[order[k]];
        if (!o->done && pick(2))
            continue; /* timed out and never happened */
        int64_t cur = st.v == LIN_NIL ? 0 : st.v;
        switch (o->f) {
        case LIN_READ:
            o->result = st.v;
            break;
        case LIN_WRITE:
            st.v = o->a;
            break;
        case LIN_CAS:
            o->result = st.v == o->a;
            if (o->result)
                st.v = o->b;
            else if (model != 2)
                o->done = 0; /* the format has no "not swapped": make it unknown */
            break;
        case LIN_INCR:
            st.v = o->result = cur + 1;
            break;
        case LIN_APPEND:
            st.list[st.len++] = o->a;
            break;
        case LIN_READLIST:
            memcpy(h->lists[order[k]], st.list, st.len * sizeof(int64_t));
            h->ops[order[k]].list_len = st.len;
            break;
        }
    }
    /* spoil none, one or two results */
    for (int64_t k = pick(3); k > 0; k--) {
        struct lin_op *o = &h->ops[pick((int64_t)h->n)];
        if (o->f == LIN_READ)
            o->result = pick(4) ? 1 + pick(3) : LIN_NIL;
        else if (o->f == LIN_INCR)
            o->result = 1 + pick(4);
        else if (o->f == LIN_CAS && model == 2)
            o->result = !o->result;
        else if (o->f == LIN_READLIST && o->list_len)
            h->lists[o - h->ops][pick((int64_t)o->list_len)] = 1 + pick(next);
        else if (o->f == LIN_READLIST)
            h->lists[o - h->ops][o->list_len++] = 1 + pick(next);
    }
}

static void test_agrees_with_exhaustive_search(void **state)
{
    size_t counts[4][2] = {{0}};
    for (int model = 0; model < 4; model++) {
        for (int i = 0; i < 20000; i++) {
            struct small h;
            make_small(&h, model);
            struct bstate st = {.v = h.initial};
            int want = brute(&h, 0, &st) ? LIN_OK : LIN_VIOLATION;
            struct lin_config cfg = {.initial = h.initial};
            struct lin_result r;
            int got = lin_check(h.ops, h.n, &cfg, &r);
            if (got != want) {
                for (size_t j = 0; j < h.n; j++) {
                    char buf[200];
                    lin_op_format(&h.ops[j], buf, sizeof(buf));
                    print_message("  %s\n", buf);
                }
                fail_msg("model %d, history %d: checker says %d, exhaustive search %d", model, i,
                         got, want);
            }
            if (got == LIN_OK && !is_linearization(&h, &r))
                fail_msg("model %d, history %d: the order shown is not a linearization", model, i);
            lin_result_free(&r);
            counts[model][want == LIN_OK]++;
        }
        print_message("model %d: %zu not linearizable, %zu linearizable\n", model, counts[model][0],
                      counts[model][1]);
        /* both answers must be common, or the comparison says little */
        assert_true(counts[model][0] > 2000);
        assert_true(counts[model][1] > 2000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registers),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_report_names_stuck_op_and_partial_order),
        cmocka_unit_test(test_report_of_a_pass_is_a_whole_linearization),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_memory_cap_says_unknown),
        cmocka_unit_test(test_step_bound_says_unknown),
        cmocka_unit_test(test_timed_out_increments_are_interchangeable),
        cmocka_unit_test(test_bad_input_names_the_line),
        cmocka_unit_test(test_models_follow_from_ops),
        cmocka_unit_test(test_generated_correct_histories_pass),
        cmocka_unit_test(test_generated_bugs_are_caught),
        cmocka_unit_test(test_ten_thousand_ops_on_one_key),
        cmocka_unit_test(test_agrees_with_exhaustive_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
