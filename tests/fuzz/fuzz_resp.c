/* fuzz_resp.c: the client request parser (proxy/resp.c) against any bytes a client may send.
 *
 * Input: byte 0 picks the parser's mode (bit 0: the limits before AUTH; bits 1-2: one of four
 * proto-max-bulk-len values), byte 1 seeds the chunk sizes, the rest is what one connection
 * sends. The whole input is also given to px_split_inline as one line.
 *
 * Invariants checked:
 *  - the stream fed in chunks, as reads deliver it, gives the same commands and the same error as
 *    the whole stream at once: the parser resumes exactly where it stopped;
 *  - every argument is NUL-terminated (resp.h promises it);
 *  - a parsed command re-encoded as a multibulk parses back to the same argv and consumes exactly
 *    those bytes;
 *  - a command's arguments re-quoted for the inline protocol (every byte as \xHH) split back to
 *    the same argv;
 *  - an error is sticky.
 */
#include <string.h>

#include "common/buf.h"
#include "proxy/resp.h"
#include "tests/fuzz/fuzz.h"

static const long long bulk_max_choices[4] = {1024 * 1024, 64 * 1024, 100, 0};

/* Appends argc, then each argument's length and bytes: a flat record to compare runs with. */
static void record(struct rd_buf *log, const struct px_cmd *c)
{
    rd_put_varint(log, (uint64_t)c->argc);
    for (int i = 0; i < c->argc; i++) {
        rd_put_varint(log, c->argvlen[i]);
        rd_buf_append(log, c->argv[i], c->argvlen[i]);
    }
}

static int same_argv(const struct px_cmd *a, const struct px_cmd *b)
{
    if (a->argc != b->argc)
        return 0;
    for (int i = 0; i < a->argc; i++)
        if (a->argvlen[i] != b->argvlen[i] || memcmp(a->argv[i], b->argv[i], a->argvlen[i]) != 0)
            return 0;
    return 1;
}

static void check_multibulk_roundtrip(const struct px_cmd *c)
{
    struct rd_buf enc;
    rd_buf_init(&enc);
    rd_resp_array_len(&enc, c->argc);
    for (int i = 0; i < c->argc; i++)
        rd_resp_bulk(&enc, c->argv[i], c->argvlen[i]);
    struct px_parser p;
    px_parser_init(&p, 1LL << 40);
    struct px_cmd back;
    int rc = px_parse(&p, &enc, &back);
    FUZZ_CHECK(rc == PX_PARSE_OK, "a re-encoded multibulk of %d args did not parse (%d, %s)",
               c->argc, rc, p.err ? p.err : "-");
    FUZZ_CHECK(same_argv(c, &back), "a re-encoded multibulk parsed to other arguments");
    FUZZ_CHECK(rd_buf_unread(&enc) == 0, "bytes left after a re-encoded multibulk");
    px_cmd_free(&back);
    rd_buf_free(&enc);
}

static void check_inline_roundtrip(const struct px_cmd *c)
{
    struct rd_buf line;
    rd_buf_init(&line);
    for (int i = 0; i < c->argc; i++) {
        rd_buf_append_str(&line, i ? " \"" : "\"");
        for (size_t k = 0; k < c->argvlen[i]; k++)
            rd_buf_printf(&line, "\\x%02x", (unsigned char)c->argv[i][k]);
        rd_buf_append_str(&line, "\"");
    }
    struct px_cmd back;
    int rc = px_split_inline(line.data ? line.data : "", line.len, &back);
    FUZZ_CHECK(rc == 0, "re-quoted arguments did not split");
    FUZZ_CHECK(same_argv(c, &back), "re-quoted arguments split differently");
    px_cmd_free(&back);
    rd_buf_free(&line);
}

static void check_cmd(const struct px_cmd *c)
{
    FUZZ_CHECK(c->argc > 0, "a command without arguments came out");
    for (int i = 0; i < c->argc; i++)
        FUZZ_CHECK(c->argv[i][c->argvlen[i]] == '\0', "argument %d is not NUL-terminated", i);
    check_multibulk_roundtrip(c);
    check_inline_roundtrip(c);
}

/* Parses stream in chunks (chunk_seed 0: all at once). Records every command in log; returns
 * the final status and leaves the error text in *err. */
static int parse_stream(const uint8_t *s, size_t n, int unauth, long long bulk_max,
                        uint32_t chunk_seed, struct rd_buf *log, const char **err, int check)
{
    static char errcopy[128];
    struct px_parser p;
    px_parser_init(&p, bulk_max);
    p.unauth = unauth;
    struct rd_buf in;
    rd_buf_init(&in);
    size_t fed = 0;
    int rc = PX_PARSE_AGAIN;
    while (fed < n && rc != PX_PARSE_ERR) {
        size_t chunk = n - fed;
        if (chunk_seed != 0) {
            size_t want = 1 + fuzz_next(&chunk_seed) % 64;
            if (want < chunk)
                chunk = want;
        }
        rd_buf_append(&in, s + fed, chunk);
        fed += chunk;
        struct px_cmd c;
        while ((rc = px_parse(&p, &in, &c)) == PX_PARSE_OK) {
            if (check)
                check_cmd(&c);
            record(log, &c);
            px_cmd_free(&c);
        }
    }
    *err = NULL;
    if (rc == PX_PARSE_ERR) {
        FUZZ_CHECK(p.err != NULL, "an error without a message");
        snprintf(errcopy, sizeof(errcopy), "%s", p.err);
        *err = errcopy;
        struct px_cmd c;
        FUZZ_CHECK(px_parse(&p, &in, &c) == PX_PARSE_ERR, "the error was not sticky");
    }
    rd_buf_free(&in);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The whole input as one inline line (the config file reader splits lines this way too). */
    struct px_cmd line;
    if (px_split_inline((const char *)data, size, &line) == 0) {
        if (line.argc > 0)
            check_cmd(&line);
        px_cmd_free(&line);
    }
    if (size < 2)
        return 0;
    int unauth = data[0] & 1;
    long long bulk_max = bulk_max_choices[(data[0] >> 1) & 3];
    uint32_t seed = data[1] | 0x100u; /* never 0: 0 means "all at once" */
    const uint8_t *s = data + 2;
    size_t n = size - 2;

    struct rd_buf whole_log, chunk_log;
    rd_buf_init(&whole_log);
    rd_buf_init(&chunk_log);
    const char *err_whole, *err_chunks;
    int rc_whole = parse_stream(s, n, unauth, bulk_max, 0, &whole_log, &err_whole, 1);
    char err_whole_copy[128] = "";
    if (err_whole)
        snprintf(err_whole_copy, sizeof(err_whole_copy), "%s", err_whole);
    int rc_chunks = parse_stream(s, n, unauth, bulk_max, seed, &chunk_log, &err_chunks, 0);
    /* Only the "too big ... request/string" errors depend on how much is buffered at once. */
    if (n <= PX_INLINE_MAX) {
        FUZZ_CHECK(rc_whole == rc_chunks, "whole: %d, in chunks: %d", rc_whole, rc_chunks);
        FUZZ_CHECK(
            whole_log.len == chunk_log.len &&
                (whole_log.len == 0 || memcmp(whole_log.data, chunk_log.data, whole_log.len) == 0),
            "the commands differ when the stream comes in chunks");
        if (rc_whole == PX_PARSE_ERR)
            FUZZ_CHECK(strcmp(err_whole_copy, err_chunks) == 0, "errors '%s' and '%s'",
                       err_whole_copy, err_chunks);
    }
    rd_buf_free(&whole_log);
    rd_buf_free(&chunk_log);
    return 0;
}
