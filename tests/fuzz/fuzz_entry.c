/* fuzz_entry.c: the log entry decoder (backend/entry.c) against any bytes a log or a peer may
 * hold.
 *
 * Invariants checked:
 *  - be_entry_validate and a read with be_entry_open/be_entry_next agree on every input;
 *  - every decoded argument lies inside the entry's bytes (ASan also sees any read past them:
 *    libFuzzer hands over a buffer of exactly `size` bytes);
 *  - a reader reused from entry to entry decodes as a fresh one does;
 *  - an accepted entry re-encodes (be_entry_put_hdr, be_entry_put_cmd) to exactly its bytes: one
 *    entry has one encoding, so no two byte strings decode to the same entry.
 * The same bytes are also read as a WATCH guard (the header a watching EXEC's proposal carries to
 * the leader over the bus): every key lies inside the bytes, no more keys than announced, and an
 * accepted guard re-encodes (be_watch_put_hdr, be_watch_put_key) to exactly its bytes.
 */
#include <string.h>

#include "backend/entry.h"
#include "common/buf.h"
#include "tests/fuzz/fuzz.h"

/* Reused across inputs, as the apply path reuses its reader. */
static struct be_entry_reader shared;

static int read_all(struct be_entry_reader *r, const uint8_t *data, size_t size,
                    struct rd_buf *reenc)
{
    struct be_entry_hdr h;
    if (be_entry_open(r, data, size, &h) != 0)
        return -1;
    FUZZ_CHECK(h.ncmds <= BE_ENTRY_CMDS_MAX, "ncmds %u over the limit", h.ncmds);
    if (reenc)
        be_entry_put_hdr(reenc, &h);
    struct be_cmd c;
    int rc;
    uint32_t seen = 0;
    while ((rc = be_entry_next(r, &c)) == 1) {
        seen++;
        FUZZ_CHECK(c.argc >= 1 && (uint32_t)c.argc <= BE_ENTRY_ARGC_MAX, "argc %d", c.argc);
        for (int i = 0; i < c.argc; i++) {
            const uint8_t *a = (const uint8_t *)c.argv[i];
            FUZZ_CHECK(a >= data && a <= data + size && c.argvlen[i] <= (size_t)(data + size - a),
                       "argument %d of command %u lies outside the entry", i, seen);
        }
        if (reenc)
            be_entry_put_cmd(reenc, c.argc, c.argv, c.argvlen);
    }
    if (rc == 0)
        FUZZ_CHECK(seen == h.ncmds, "%u commands read, %u announced", seen, h.ncmds);
    return rc == 0 ? 0 : -1;
}

static void read_guard(const uint8_t *data, size_t size)
{
    struct be_watch_reader wr;
    uint64_t index;
    uint32_t n;
    if (be_watch_open(&wr, data, size, &index, &n) != 0)
        return;
    FUZZ_CHECK(n <= BE_WATCH_KEYS_MAX, "guard announces %u keys, over the limit", n);
    struct rd_buf reenc;
    rd_buf_init(&reenc);
    be_watch_put_hdr(&reenc, index, n);
    struct be_watch_key k;
    uint32_t seen = 0;
    int rc;
    while ((rc = be_watch_next(&wr, &k)) == 1) {
        seen++;
        FUZZ_CHECK(seen <= n, "guard key %u of %u announced", seen, n);
        const uint8_t *a = (const uint8_t *)k.key;
        FUZZ_CHECK(a >= data && a <= data + size && k.len <= (size_t)(data + size - a),
                   "guard key %u lies outside the bytes", seen);
        be_watch_put_key(&reenc, k.db, k.key, k.len);
    }
    if (rc == 0) {
        FUZZ_CHECK(seen == n, "guard: %u keys read, %u announced", seen, n);
        FUZZ_CHECK(reenc.len == size && memcmp(reenc.data, data, size) == 0,
                   "an accepted guard of %zu bytes re-encodes to %zu other bytes", size, reenc.len);
    }
    rd_buf_free(&reenc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_guard(data, size);
    int valid = be_entry_validate(data, size);
    struct rd_buf reenc;
    rd_buf_init(&reenc);
    struct be_entry_reader fresh = {0};
    int read_fresh = read_all(&fresh, data, size, &reenc);
    be_entry_reader_free(&fresh);
    int read_shared = read_all(&shared, data, size, NULL);
    int checked = be_entry_check(&shared, data, size);

    FUZZ_CHECK(valid == read_fresh, "validate says %d, reading says %d", valid, read_fresh);
    FUZZ_CHECK(read_shared == read_fresh, "a reused reader says %d, a fresh one %d", read_shared,
               read_fresh);
    FUZZ_CHECK(checked == valid, "be_entry_check says %d, be_entry_validate %d", checked, valid);
    if (valid == 0)
        FUZZ_CHECK(reenc.len == size && memcmp(reenc.data, data, size) == 0,
                   "an accepted entry of %zu bytes re-encodes to %zu other bytes", size, reenc.len);
    rd_buf_free(&reenc);
    return 0;
}
