/* Unit tests for proxy/watch.c's px_watch_admit: the leader's decision on a watching client's
 * EXEC, given the log entries after its watch index (no sockets, no node: the log is an array).
 *
 * Each test builds client entries as the proxy encodes them (backend/entry.h), a guard (watch
 * index and keys) and asks: admitted (RN_OK) or aborted (RN_EWATCH)? Commands are looked up in
 * redis-server 7.0.15's command table (tests/unit/cmdtable_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "backend/entry.h"
#include "common/buf.h"
#include "proxy/watch.h"
#include "raftlog/node.h"
#include "tests/unit/cmdtable_fixture.h"

/* ---- a log in an array -------------------------------------------------------------------- */

#define LOG_MAX 64

/* Entries first .. first + n - 1; an empty buffer is a non-client entry (no-op, configuration).
 * Entries before `first` were compacted away: reading them fails. */
struct test_log {
    struct rd_buf ents[LOG_MAX];
    uint64_t first;
    size_t n;
    uint64_t reads; /* entries read, to see what the check looked at */
};

static int log_read(void *rctx, uint64_t index, const void **data, size_t *len)
{
    struct test_log *l = rctx;
    l->reads++;
    if (index < l->first || index >= l->first + l->n)
        return -1;
    const struct rd_buf *b = &l->ents[index - l->first];
    *data = b->len > 0 ? b->data : NULL;
    *len = b->len;
    return 0;
}

static void log_init(struct test_log *l)
{
    memset(l, 0, sizeof(*l));
    l->first = 1;
}

static void log_free(struct test_log *l)
{
    for (size_t i = 0; i < LOG_MAX; i++)
        rd_buf_free(&l->ents[i]);
}

/* Appends an entry of ncmds commands (a transaction when multi), started in database db. Each
 * command is a NULL-terminated list of words; the list of commands ends with NULL. */
static void log_add(struct test_log *l, uint64_t db, int multi, const char *const *const *cmds)
{
    assert_true(l->n < LOG_MAX);
    struct rd_buf *b = &l->ents[l->n++];
    uint32_t ncmds = 0;
    while (cmds[ncmds] != NULL)
        ncmds++;
    struct be_entry_hdr h = {.flags = multi ? BE_ENTRY_F_MULTI : 0,
                             .origin = 2,
                             .reqid = 100 + l->n,
                             .db = db,
                             .time_ms = 1700000000000ULL,
                             .ncmds = ncmds};
    assert_int_equal(be_entry_put_hdr(b, &h), 0);
    for (uint32_t i = 0; i < ncmds; i++) {
        size_t lens[16];
        int argc = 0;
        while (cmds[i][argc] != NULL) {
            assert_true(argc < 16);
            lens[argc] = strlen(cmds[i][argc]);
            argc++;
        }
        assert_int_equal(be_entry_put_cmd(b, argc, cmds[i], lens), 0);
    }
}

static void log_add_noop(struct test_log *l)
{
    assert_true(l->n < LOG_MAX);
    l->n++;
}

#define CMD(...)          ((const char *const[]){__VA_ARGS__, NULL})
#define ONE(l, db, ...)   log_add((l), (db), 0, (const char *const *const[]){CMD(__VA_ARGS__), NULL})
#define MULTI(l, db, ...) log_add((l), (db), 1, (const char *const *const[]){__VA_ARGS__, NULL})

/* The decision for a watch taken at index w on keys "db:key" (db a single digit). */
static int admit_v(const struct px_cmdtable *t, struct test_log *l, uint64_t w, int n,
                   const char *const *keys)
{
    struct rd_buf g;
    rd_buf_init(&g);
    assert_int_equal(be_watch_put_hdr(&g, w, (uint32_t)n), 0);
    for (int i = 0; i < n; i++) {
        assert_true(strlen(keys[i]) >= 2 && keys[i][1] == ':');
        assert_int_equal(
            be_watch_put_key(&g, (uint64_t)(keys[i][0] - '0'), keys[i] + 2, strlen(keys[i] + 2)),
            0);
    }
    struct rn_log_view view = {l->first + l->n - 1, log_read, l};
    int rc = px_watch_admit(t, g.data, g.len, &view);
    rd_buf_free(&g);
    return rc;
}
#define ADMIT(t, l, w, ...)                                                                        \
    admit_v((t), (l), (w), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)),          \
            (const char *[]){__VA_ARGS__})

/* ---- tests -------------------------------------------------------------------------------- */

/* Only entries after the watch index count: a write at or before it was there to be read. */
static void test_only_entries_after_the_watch(void **state)
{
    struct fixture *f = *state;
    struct test_log l;
    log_init(&l);
    ONE(&l, 0, "SET", "k", "1"); /* 1 */
    ONE(&l, 0, "SET", "other", "1");
    assert_int_equal(ADMIT(f->t, &l, 1, "0:k"), RN_OK);
    assert_int_equal(ADMIT(f->t, &l, 0, "0:k"), RN_EWATCH);
    assert_int_equal(ADMIT(f->t, &l, 2, "0:k"), RN_OK); /* nothing after it */
    l.reads = 0;
    assert_int_equal(ADMIT(f->t, &l, 2, "0:k"), RN_OK);
    assert_int_equal(l.reads, 0);
    log_free(&l);
}

/* The key must match exactly, in its database. */
static void test_keys_and_databases(void **state)
{
    struct fixture *f = *state;
    struct test_log l;
    log_init(&l);
    ONE(&l, 3, "SET", "k", "1");
    assert_int_equal(ADMIT(f->t, &l, 0, "3:k"), RN_EWATCH);
    assert_int_equal(ADMIT(f->t, &l, 0, "0:k"), RN_OK);  /* same name, other database */
    assert_int_equal(ADMIT(f->t, &l, 0, "3:K"), RN_OK);  /* keys are case-sensitive */
    assert_int_equal(ADMIT(f->t, &l, 0, "3:kk"), RN_OK); /* no prefix match */
    assert_int_equal(ADMIT(f->t, &l, 0, "3:"), RN_OK);
    assert_int_equal(ADMIT(f->t, &l, 0, "0:a", "3:k", "9:z"), RN_EWATCH);
    log_free(&l);
}

/* Every key position a command has: MSET's pairs, RENAME's target, SORT ... STORE, MOVE's
 * target database, and commands whose name was rewritten before proposing (PEXPIREAT). */
static void test_key_positions(void **state)
{
    struct fixture *f = *state;
    struct test_log l;
    log_init(&l);
    ONE(&l, 0, "MSET", "a", "1", "b", "2");
    ONE(&l, 0, "RENAME", "c", "d");
    ONE(&l, 0, "SORT", "emptylist", "STORE", "e");
    ONE(&l, 0, "MOVE", "f", "5");
    ONE(&l, 0, "PEXPIREAT", "g", "1700000000000");
    ONE(&l, 0, "set", "h", "1"); /* names in any case */
    for (const char *const *k = (const char *const[]){"0:a", "0:b", "0:c", "0:d", "0:e", "0:f",
                                                      "5:f", "0:g", "0:h", NULL};
         *k; k++)
        if (ADMIT(f->t, &l, 0, *k) != RN_EWATCH)
            fail_msg("a write to %s was not seen", *k);
    assert_int_equal(ADMIT(f->t, &l, 0, "0:1", "0:2", "5:a", "1:f"), RN_OK);
    /* A write command counts as writing every key it names, even one it only reads (SORT's
     * source): a spurious abort at worst. */
    assert_int_equal(ADMIT(f->t, &l, 0, "0:emptylist"), RN_EWATCH);
    log_free(&l);
}

/* Reads inside a transaction write nothing; a SELECT moves the commands after it. */
static void test_transactions(void **state)
{
    struct fixture *f = *state;
    struct test_log l;
    log_init(&l);
    MULTI(&l, 0, CMD("GET", "k"), CMD("PING"), CMD("SELECT", "4"), CMD("INCR", "n"),
          CMD("SELECT", "0"), CMD("EXISTS", "m"));
    assert_int_equal(ADMIT(f->t, &l, 0, "0:k"), RN_OK);
    assert_int_equal(ADMIT(f->t, &l, 0, "0:m"), RN_OK);
    assert_int_equal(ADMIT(f->t, &l, 0, "0:n"), RN_OK);
    assert_int_equal(ADMIT(f->t, &l, 0, "4:n"), RN_EWATCH);
    /* an empty transaction (a watching client's EXEC with nothing queued) writes nothing */
    MULTI(&l, 4, NULL);
    assert_int_equal(ADMIT(f->t, &l, 1, "4:n"), RN_OK);
    log_free(&l);
}

/* Commands that touch whole databases abort whoever watches a key in them, existing or not. */
static void test_whole_databases(void **state)
{
    struct fixture *f = *state;
    struct test_log l;
    log_init(&l);
    ONE(&l, 2, "FLUSHDB");
    assert_int_equal(ADMIT(f->t, &l, 0, "2:x"), RN_EWATCH);
    assert_int_equal(ADMIT(f->t, &l, 0, "0:x", "3:x"), RN_OK);
    ONE(&l, 0, "SWAPDB", "5", "6");
    assert_int_equal(ADMIT(f->t, &l, 1, "6:x"), RN_EWATCH);
    assert_int_equal(ADMIT(f->t, &l, 1, "5:x"), RN_EWATCH);
    assert_int_equal(ADMIT(f->t, &l, 1, "0:x", "2:x"), RN_OK);
    ONE(&l, 0, "FLUSHALL");
    assert_int_equal(ADMIT(f->t, &l, 2, "9:anything"), RN_EWATCH);
    log_free(&l);
}

/* Scripts and commands this leader does not know may write any key. */
static void test_unknown_writes_are_every_key(void **state)
{
    struct fixture *f = *state;
    struct test_log l;
    log_init(&l);
    ONE(&l, 0, "EVAL", "return redis.call('set', KEYS[1], 1)", "1", "declared");
    assert_int_equal(ADMIT(f->t, &l, 0, "7:undeclared"), RN_EWATCH);
    ONE(&l, 0, "NOSUCHCOMMAND", "x");
    assert_int_equal(ADMIT(f->t, &l, 1, "7:y"), RN_EWATCH);
    ONE(&l, 0, "SET", "only-one-arg");
    assert_int_equal(ADMIT(f->t, &l, 2, "7:y"), RN_EWATCH); /* arity: not this table's SET */
    /* without a command table every client entry counts */
    struct test_log m;
    log_init(&m);
    ONE(&m, 0, "GET", "a");
    assert_int_equal(ADMIT(NULL, &m, 0, "0:b"), RN_EWATCH);
    log_free(&m);
    log_free(&l);
}

/* No-ops and configuration entries touch nothing; neither does an entry that does not decode,
 * which every node applies as a no-op. */
static void test_non_client_entries(void **state)
{
    struct fixture *f = *state;
    struct test_log l;
    log_init(&l);
    log_add_noop(&l);
    log_add_noop(&l);
    assert_int_equal(ADMIT(f->t, &l, 0, "0:k"), RN_OK);
    assert_int_equal(ADMIT(NULL, &l, 0, "0:k"), RN_OK);
    assert_true(l.n < LOG_MAX);
    struct rd_buf *b = &l.ents[l.n++];
    assert_int_equal(rd_buf_append(b, "\x07garbage", 8), 0);
    assert_int_equal(ADMIT(f->t, &l, 0, "0:k"), RN_OK);
    log_free(&l);
}

/* What cannot be checked aborts: a watch index older than the log's first entry (a snapshot
 * compacted it), one beyond the log, one more than PX_WATCH_SCAN_MAX entries back, a guard
 * that does not decode. */
static void test_what_cannot_be_checked(void **state)
{
    struct fixture *f = *state;
    struct test_log l;
    log_init(&l);
    l.first = 10;
    ONE(&l, 0, "SET", "other", "1");                        /* 10 */
    assert_int_equal(ADMIT(f->t, &l, 9, "0:k"), RN_OK);     /* 10 is there */
    assert_int_equal(ADMIT(f->t, &l, 8, "0:k"), RN_EWATCH); /* 9 is gone */
    assert_int_equal(ADMIT(f->t, &l, 11, "0:k"), RN_EWATCH);
    /* too far back: refused before reading anything */
    struct rn_log_view far = {(uint64_t)PX_WATCH_SCAN_MAX + 2, log_read, &l};
    struct rd_buf g;
    rd_buf_init(&g);
    assert_int_equal(be_watch_put_hdr(&g, 1, 1), 0);
    assert_int_equal(be_watch_put_key(&g, 0, "k", 1), 0);
    l.reads = 0;
    assert_int_equal(px_watch_admit(f->t, g.data, g.len, &far), RN_EWATCH);
    assert_int_equal(l.reads, 0);
    struct rn_log_view near = {10, log_read, &l};
    assert_int_equal(px_watch_admit(f->t, g.data, g.len, &near), RN_EWATCH); /* 2..9 gone */
    /* damaged guards: every truncation, trailing bytes, no keys */
    for (size_t len = 0; len < g.len; len++)
        assert_int_equal(px_watch_admit(f->t, g.data, len, &near), RN_EWATCH);
    assert_int_equal(rd_buf_append(&g, "x", 1), 0);
    struct rn_log_view none = {9, log_read, &l};
    assert_int_equal(px_watch_admit(f->t, g.data, g.len, &none), RN_EWATCH);
    rd_buf_reset(&g);
    assert_int_equal(be_watch_put_hdr(&g, 9, 0), 0);
    assert_int_equal(px_watch_admit(f->t, g.data, g.len, &none), RN_EWATCH);
    rd_buf_free(&g);
    log_free(&l);
}

/* Many watched keys: each one is found (they are searched, not scanned). */
static void test_many_keys(void **state)
{
    struct fixture *f = *state;
    enum { N = 500 };
    static char names[N][16];
    const char *keys[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "%d:key%d", i % 3, (i * 7919) % 1000);
        keys[i] = names[i];
    }
    for (int probe = 0; probe < N; probe += 37) {
        struct test_log l;
        log_init(&l);
        ONE(&l, (uint64_t)(names[probe][0] - '0'), "SET", names[probe] + 2, "v");
        assert_int_equal(admit_v(f->t, &l, 0, N, keys), RN_EWATCH);
        log_free(&l);
    }
    struct test_log l;
    log_init(&l);
    ONE(&l, 0, "SET", "key1001", "v");
    ONE(&l, 2, "SET", "key0", "v"); /* key0 is watched in database 0 only */
    assert_int_equal(admit_v(f->t, &l, 0, N, keys), RN_OK);
    log_free(&l);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_entries_after_the_watch),
        cmocka_unit_test(test_keys_and_databases),
        cmocka_unit_test(test_key_positions),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_whole_databases),
        cmocka_unit_test(test_unknown_writes_are_every_key),
        cmocka_unit_test(test_non_client_entries),
        cmocka_unit_test(test_what_cannot_be_checked),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests_name("px_watch_admit", tests, setup, teardown);
}
