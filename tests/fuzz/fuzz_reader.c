/* fuzz_reader.c: the reader of Redis's replies (backend/reader.c) against any bytes a Redis, or
 * something pretending to be one, may send.
 *
 * Input: byte 0 seeds the chunk sizes (0: everything in one feed), byte 1 picks the limits (bit
 * 0: a small bulk_max, bit 1: a small elements_max), the rest is what the connection sends.
 *
 * Invariants checked:
 *  - each reply, encoded back, is exactly the bytes it was read from (the reader consumes no
 *    more and no fewer than one reply's bytes, and loses nothing: the link passes what Redis sent
 *    to clients byte for byte);
 *  - the stream fed in chunks gives the same replies and the same error as the whole stream fed
 *    at once: the reader resumes exactly where it stopped;
 *  - an error is sticky, and nothing is left allocated (ASan's leak check).
 */
#include <string.h>

#include "backend/reader.h"
#include "common/buf.h"
#include "tests/fuzz/fuzz.h"

/* Reads the stream; appends every reply's encoding to out. Returns the reader's final error. */
static int run(const uint8_t *data, size_t size, uint8_t chunk_seed, uint8_t limits,
               struct rd_buf *out, char *errstr, size_t errlen)
{
    struct be_reader r;
    be_reader_init(&r);
    if (limits & 1)
        r.bulk_max = 64;
    if (limits & 2)
        r.elements_max = 8;
    uint32_t st = chunk_seed;
    size_t at = 0;
    int err = 0;
    while (at < size && err == 0) {
        size_t n = size - at;
        if (chunk_seed != 0) {
            size_t c = 1 + fuzz_next(&st) % 17;
            n = c < n ? c : n;
        }
        err = be_reader_feed(&r, (const char *)data + at, n);
        at += n;
        while (err == 0) {
            redisReply *rep = NULL;
            err = be_reader_get(&r, &rep);
            if (err != 0 || rep == NULL)
                break;
            FUZZ_CHECK(be_reply_encode(rep, out) == 0, "a reply it read does not encode");
            be_reply_free(rep);
        }
    }
    if (err != 0) {
        redisReply *rep = NULL;
        FUZZ_CHECK(be_reader_get(&r, &rep) == -1 && rep == NULL, "the error is not sticky");
        FUZZ_CHECK(be_reader_feed(&r, "+OK\r\n", 5) == -1, "the error is not sticky");
        snprintf(errstr, errlen, "%s", r.errstr);
    }
    be_reader_free(&r);
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t seed = data[0], limits = data[1];
    data += 2;
    size -= 2;
    struct rd_buf whole, chunked;
    rd_buf_init(&whole);
    rd_buf_init(&chunked);
    char e1[128] = "", e2[128] = "";
    int err1 = run(data, size, 0, limits, &whole, e1, sizeof(e1));
    int err2 = run(data, size, seed, limits, &chunked, e2, sizeof(e2));
    /* What was read is a prefix of the input, byte for byte. */
    FUZZ_CHECK(whole.len <= size && (whole.len == 0 || memcmp(whole.data, data, whole.len) == 0),
               "the replies re-encoded (%zu bytes) are not the bytes they came from", whole.len);
    FUZZ_CHECK(err1 == err2 && strcmp(e1, e2) == 0, "chunked: error %d '%s', whole: %d '%s'", err2,
               e2, err1, e1);
    FUZZ_CHECK(whole.len == chunked.len &&
                   (whole.len == 0 || memcmp(whole.data, chunked.data, whole.len) == 0),
               "chunked reading gave other replies");
    rd_buf_free(&whole);
    rd_buf_free(&chunked);
    return 0;
}
