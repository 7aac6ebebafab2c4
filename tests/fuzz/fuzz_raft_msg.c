/* fuzz_raft_msg.c: the Raft message and configuration codec (raftlog/raft_msg.c), which decodes
 * the payload of every RAFT frame a peer sends over the cluster bus and every configuration
 * entry read back from the log.
 *
 * Every input goes to all three decoders (a message, a configuration, a configuration-change
 * entry). Invariants checked:
 *  - an accepted message re-encodes to exactly its bytes (raft_msg_encoded_size agrees), its
 *    entries' data lie inside the input and their indexes follow the message's;
 *  - an accepted configuration, or configuration-change entry, re-encodes to exactly its bytes;
 *  - a rejected message leaves nothing allocated (LeakSanitizer).
 */
#include <string.h>

#include "raftlog/raft.h"
#include "tests/fuzz/fuzz.h"

static void check_msg(const uint8_t *data, size_t size)
{
    struct raft_msg m;
    if (raft_msg_decode(data, size, &m) != RAFT_OK)
        return;
    size_t need = raft_msg_encoded_size(&m);
    FUZZ_CHECK(need == size, "decoded %zu bytes, the message encodes to %zu", size, need);
    for (size_t i = 0; i < m.n_entries; i++) {
        const struct raft_entry *e = &m.entries[i];
        FUZZ_CHECK(e->index == m.index + 1 + i, "entry %zu has index %llu", i,
                   (unsigned long long)e->index);
        if (e->len > 0) {
            const uint8_t *d = e->data;
            FUZZ_CHECK(d >= data && d + e->len <= data + size, "entry %zu lies outside", i);
        }
    }
    uint8_t *out = malloc(need ? need : 1);
    size_t len = 0;
    FUZZ_CHECK(raft_msg_encode(&m, out, need, &len) == RAFT_OK, "an accepted message won't encode");
    FUZZ_CHECK(len == size && memcmp(out, data, size) == 0, "a message re-encodes differently");
    free(out);
    raft_msg_release(&m);
}

static void check_conf(const uint8_t *data, size_t size)
{
    struct raft_conf c;
    if (raft_conf_decode(data, size, &c) == RAFT_OK) {
        uint8_t *out = malloc(size ? size : 1);
        size_t len = 0;
        FUZZ_CHECK(raft_conf_encode(&c, out, size, &len) == RAFT_OK,
                   "a configuration won't encode");
        FUZZ_CHECK(len == size && memcmp(out, data, size) == 0,
                   "a configuration re-encodes differently");
        free(out);
    }
    int change;
    uint64_t node;
    if (raft_conf_entry_decode(data, size, &change, &node, &c) == RAFT_OK) {
        uint8_t *out = malloc(size ? size : 1);
        size_t len = 0;
        FUZZ_CHECK(raft_conf_entry_encode(change, node, &c, out, size, &len) == RAFT_OK,
                   "a configuration change won't encode");
        FUZZ_CHECK(len == size && memcmp(out, data, size) == 0,
                   "a configuration change re-encodes differently");
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_msg(data, size);
    check_conf(data, size);
    return 0;
}
