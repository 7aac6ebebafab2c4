/* fuzz_rdb.c: the RDB stream framing of a snapshot capture (backend/snapshot.c, be_rdb_reader):
 * what the local Redis, or whatever answers at the address redraft takes for it, sends back to
 * SYNC.
 *
 * Input: byte 0: bit 0 expects an AUTH answer first, bit 1 makes the sink fail once it has taken
 * (byte 1) bytes; byte 1 also seeds the chunk sizes; the rest is the stream.
 *
 * Invariants checked, against a reference reading of the framing written here from Redis's
 * protocol (keep-alive newlines, "+..." for AUTH, an error line, "$<len>" or "$EOF:<40 bytes>"):
 *  - fed at once, the reader finishes (1), waits (0) or fails (-1) exactly as the reference says,
 *    and the sink gets exactly the RDB: len bytes, or everything before the end mark;
 *  - fed in chunks it agrees, but for one documented difference: in $EOF: framing the mark is
 *    looked for where a feed ends (as Redis's own replica does: nothing follows the mark until
 *    the replica acknowledges), so a chunk that happens to end on a copy of the mark inside the
 *    RDB, or a stream with bytes after the mark, may end differently;
 *  - once finished or failed, the reader says so again and calls the sink no more;
 *  - a failing sink fails the reader.
 */
#include <errno.h>
#include <string.h>

#include "backend/snapshot.h"
#include "common/buf.h"
#include "tests/fuzz/fuzz.h"

struct sink {
    struct rd_buf got;
    size_t fail_after; /* SIZE_MAX: never */
    int calls_after_end;
    int ended;
};

static int sink_fn(void *ctx, const void *p, size_t n)
{
    struct sink *s = ctx;
    if (s->ended)
        s->calls_after_end++;
    if (s->got.len + n > s->fail_after)
        return -1;
    rd_buf_append(&s->got, p, n);
    return 0;
}

/* -1 malformed, 0 incomplete, 1 complete; *mark (NULL: $<len> framing), and the RDB's place. */
static int reference(const uint8_t *s, size_t n, int auth, const uint8_t **mark, size_t *off,
                     size_t *len)
{
    size_t i = 0;
    *mark = NULL;
    for (;;) {
        while (i < n && s[i] == '\n') /* keep-alives */
            i++;
        size_t start = i;
        while (i < n && s[i] != '\n') {
            if (i - start + 1 >= BE_RDB_LINE_MAX)
                return -1;
            i++;
        }
        if (i >= n)
            return 0;
        size_t ll = i - start;
        i++;
        if (ll > 0 && s[start + ll - 1] == '\r')
            ll--;
        const void *nul = memchr(s + start, '\0', ll); /* read as a C string */
        if (nul != NULL)
            ll = (size_t)((const uint8_t *)nul - (s + start));
        if (ll > 0 && s[start] == '-')
            return -1;
        if (auth) {
            if (ll == 0 || s[start] != '+')
                return -1;
            auth = 0;
            continue;
        }
        if (ll == 0 || s[start] != '$')
            return -1;
        if (ll >= 5 && memcmp(s + start, "$EOF:", 5) == 0) {
            if (ll - 5 != BE_RDB_EOF_MARK)
                return -1;
            *mark = s + start + 5;
            *off = i;
            if (n - i < BE_RDB_EOF_MARK ||
                memcmp(s + n - BE_RDB_EOF_MARK, s + start + 5, BE_RDB_EOF_MARK) != 0)
                return 0;
            *len = n - i - BE_RDB_EOF_MARK;
            return 1;
        }
        char num[BE_RDB_LINE_MAX];
        memcpy(num, s + start + 1, ll - 1);
        num[ll - 1] = '\0';
        char *end;
        errno = 0;
        unsigned long long v = strtoull(num, &end, 10);
        if (errno || *end || end == num || num[0] == '-')
            return -1;
        *off = i;
        *len = (size_t)v;
        return v <= n - i ? 1 : 0;
    }
}

/* Feeds the stream (chunk_seed 0: at once); returns the last result. */
static int run(const uint8_t *s, size_t n, int auth, size_t fail_after, uint32_t chunk_seed,
               struct sink *sk)
{
    struct be_rdb_reader r;
    rd_buf_init(&sk->got);
    sk->fail_after = fail_after;
    sk->calls_after_end = 0;
    sk->ended = 0;
    be_rdb_reader_init(&r, auth, sink_fn, sk);
    int rc = 0;
    size_t fed = 0;
    while (fed < n && rc == 0) {
        size_t chunk = n - fed;
        if (chunk_seed != 0) {
            size_t want = 1 + fuzz_next(&chunk_seed) % 64;
            if (want < chunk)
                chunk = want;
        }
        rc = be_rdb_reader_feed(&r, (const char *)s + fed, chunk);
        fed += chunk;
    }
    if (rc != 0) {
        sk->ended = 1;
        FUZZ_CHECK(be_rdb_reader_feed(&r, "$5\r\nhello", 9) == rc, "the end was not sticky");
        FUZZ_CHECK(sk->calls_after_end == 0, "the sink was called after the end");
        if (rc > 0)
            FUZZ_CHECK(r.got == sk->got.len, "got says %llu, the sink took %zu",
                       (unsigned long long)r.got, sk->got.len);
        else
            FUZZ_CHECK(r.err[0] != '\0', "a failure without a reason");
    }
    return rc;
}

static int same(const struct sink *a, const struct sink *b)
{
    return a->got.len == b->got.len &&
           (a->got.len == 0 || memcmp(a->got.data, b->got.data, a->got.len) == 0);
}

/* How many times the mark occurs in [p, p + n). */
static size_t occurrences(const uint8_t *p, size_t n, const uint8_t *mark)
{
    size_t k = 0;
    for (size_t i = 0; i + BE_RDB_EOF_MARK <= n; i++)
        k += memcmp(p + i, mark, BE_RDB_EOF_MARK) == 0;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int auth = data[0] & 1;
    size_t fail_after = (data[0] & 2) ? data[1] : SIZE_MAX;
    uint32_t seed = data[1] | 0x100u;
    const uint8_t *s = data + 2;
    size_t n = size - 2;

    const uint8_t *mark;
    size_t off = 0, len = 0;
    int want = reference(s, n, auth, &mark, &off, &len);
    struct sink whole, chunks;
    int rc_w = run(s, n, auth, fail_after, 0, &whole);
    int rc_c = run(s, n, auth, fail_after, seed, &chunks);
    int sink_fails = fail_after != SIZE_MAX;

    if (want == 1 && fail_after < len) {
        FUZZ_CHECK(rc_w == -1 && rc_c == -1, "a failing sink did not fail the reader");
    } else if (want == 1) {
        FUZZ_CHECK(rc_w == 1, "a well-framed stream was not read (%d)", rc_w);
        FUZZ_CHECK(whole.got.len == len && (len == 0 || memcmp(whole.got.data, s + off, len) == 0),
                   "the sink got %zu bytes, the RDB is %zu", whole.got.len, len);
    } else {
        FUZZ_CHECK(rc_w == want || (rc_w == -1 && sink_fails), "the reader says %d, the framing %d",
                   rc_w, want);
    }
    /* In chunks the same, unless in $EOF: framing a chunk may end on a copy of the mark that is
     * not the stream's last 40 bytes. */
    int chunk_safe = mark == NULL || occurrences(s + off, n - off, mark) == (want == 1 ? 1u : 0u);
    if (chunk_safe) {
        FUZZ_CHECK(rc_c == rc_w, "in chunks %d, at once %d", rc_c, rc_w);
        if (!sink_fails)
            FUZZ_CHECK(same(&whole, &chunks), "in chunks the sink got %zu bytes, at once %zu",
                       chunks.got.len, whole.got.len);
    }
    rd_buf_free(&whole.got);
    rd_buf_free(&chunks.got);
    return 0;
}
