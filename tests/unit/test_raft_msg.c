/* test_raft_msg.c: the Raft message and configuration encodings. Every length a peer sends is
 * checked: truncated, padded, overlong or random input is rejected, never trusted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "raftlog/raft.h"

static size_t encode(const struct raft_msg *m, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    assert_int_equal(raft_msg_encode(m, buf, cap, &len), 0);
    assert_int_equal(len, raft_msg_encoded_size(m));
    return len;
}

static void test_append_round_trip(void **state)
{
    struct raft_entry ents[3] = {
        {.index = 11, .term = 4, .type = RAFT_ENTRY_NORMAL, .data = "set k v", .len = 7},
        {.index = 12, .term = 5, .type = RAFT_ENTRY_NOOP},
        {.index = 13, .term = 5, .type = RAFT_ENTRY_CONF, .data = "\x01", .len = 1},
    };
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 300,
                         .term = 5,
                         .index = 10,
                         .log_term = 4,
                         .commit = 9,
                         .ctx = UINT64_MAX,
                         .entries = ents,
                         .n_entries = 3};
    uint8_t buf[256];
    size_t len = encode(&m, buf, sizeof(buf));
    struct raft_msg d;
    assert_int_equal(raft_msg_decode(buf, len, &d), 0);
    assert_int_equal(d.type, RAFT_MSG_APPEND);
    assert_int_equal(d.from, 1);
    assert_int_equal(d.to, 300);
    assert_int_equal(d.term, 5);
    assert_int_equal(d.index, 10);
    assert_int_equal(d.log_term, 4);
    assert_int_equal(d.commit, 9);
    assert_true(d.ctx == UINT64_MAX);
    assert_int_equal(d.n_entries, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d.entries[i].index, ents[i].index);
        assert_int_equal(d.entries[i].term, ents[i].term);
        assert_int_equal(d.entries[i].type, ents[i].type);
        assert_int_equal(d.entries[i].len, ents[i].len);
        if (ents[i].len)
            assert_memory_equal(d.entries[i].data, ents[i].data, ents[i].len);
    }
    raft_msg_release(&d);
    assert_int_equal(raft_msg_encode(&m, buf, len - 1, &len), RAFT_EINVAL);
}

static void test_flags_and_snapshot_round_trip(void **state)
{
    struct raft_conf conf = {.n = 2};
    conf.members[0] = (struct raft_member){.id = 1, .voter = 1};
    conf.members[1] = (struct raft_member){.id = 9, .voter = 0, .blob_len = 3};
    memcpy(conf.members[1].blob, "a:1", 3);
    uint8_t cbuf[RAFT_CONF_BYTES_MAX];
    size_t clen;
    assert_int_equal(raft_conf_encode(&conf, cbuf, sizeof(cbuf), &clen), 0);
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT,
                         .from = 2,
                         .to = 3,
                         .term = 7,
                         .index = 100,
                         .log_term = 6,
                         .reject = 1,
                         .force = 1,
                         .conf_data = cbuf,
                         .conf_len = clen};
    uint8_t buf[512];
    size_t len = encode(&m, buf, sizeof(buf));
    struct raft_msg d;
    assert_int_equal(raft_msg_decode(buf, len, &d), 0);
    assert_int_equal(d.reject, 1);
    assert_int_equal(d.force, 1);
    assert_int_equal(d.conf_len, clen);
    struct raft_conf back;
    assert_int_equal(raft_conf_decode(d.conf_data, d.conf_len, &back), 0);
    assert_int_equal(back.n, 2);
    assert_int_equal(back.members[1].id, 9);
    assert_int_equal(back.members[1].voter, 0);
    assert_memory_equal(back.members[1].blob, "a:1", 3);
    raft_msg_release(&d);
}

static void test_truncated_and_padded_rejected(void **state)
{
    struct raft_entry e = {.index = 2, .term = 1, .data = "abcdef", .len = 6};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 1,
                         .index = 1,
                         .log_term = 1,
                         .entries = &e,
                         .n_entries = 1};
    uint8_t buf[128];
    size_t len = encode(&m, buf, sizeof(buf));
    struct raft_msg d;
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(raft_msg_decode(buf, cut, &d), RAFT_EMALFORMED);
    buf[len] = 0;
    assert_int_equal(raft_msg_decode(buf, len + 1, &d), RAFT_EMALFORMED);
}

static void test_bad_header_rejected(void **state)
{
    struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 3};
    uint8_t buf[64];
    size_t len = encode(&m, buf, sizeof(buf));
    struct raft_msg d;
    uint8_t b2[64];
    memcpy(b2, buf, len);
    b2[0] = 2; /* unknown version */
    assert_int_equal(raft_msg_decode(b2, len, &d), RAFT_EMALFORMED);
    memcpy(b2, buf, len);
    b2[1] = 0; /* unknown type */
    assert_int_equal(raft_msg_decode(b2, len, &d), RAFT_EMALFORMED);
    b2[1] = RAFT_MSG_TYPE_MAX + 1;
    assert_int_equal(raft_msg_decode(b2, len, &d), RAFT_EMALFORMED);
    memcpy(b2, buf, len);
    b2[2] = 0x80; /* unknown flag */
    assert_int_equal(raft_msg_decode(b2, len, &d), RAFT_EMALFORMED);
    memcpy(b2, buf, len);
    b2[2] = 0x04; /* entries flag on a heartbeat */
    b2[len] = 1;
    assert_int_equal(raft_msg_decode(b2, len + 1, &d), RAFT_EMALFORMED);
}

static void test_overlong_varint_rejected(void **state)
{
    /* version, type, flags, then `from` as 11 continuation bytes */
    uint8_t buf[32] = {RAFT_MSG_VERSION, RAFT_MSG_HEARTBEAT, 0};
    for (int i = 3; i < 14; i++)
        buf[i] = 0x80;
    struct raft_msg d;
    assert_int_equal(raft_msg_decode(buf, 20, &d), RAFT_EMALFORMED);
    /* a non-minimal encoding of 1: 0x81 0x00 */
    uint8_t nm[16] = {RAFT_MSG_VERSION, RAFT_MSG_HEARTBEAT, 0, 0x81, 0x00};
    assert_int_equal(raft_msg_decode(nm, 14, &d), RAFT_EMALFORMED);
}

static void test_huge_counts_rejected_without_allocating(void **state)
{
    /* An append claiming 2^60 entries in a 30-byte buffer. */
    uint8_t buf[64] = {RAFT_MSG_VERSION, RAFT_MSG_APPEND, 0x04};
    size_t n = 3;
    for (int i = 0; i < 9; i++)
        buf[n++] = 1; /* from .. ctx */
    uint64_t v = 1ULL << 60;
    while (v >= 0x80) {
        buf[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    buf[n++] = (uint8_t)v;
    struct raft_msg d;
    assert_int_equal(raft_msg_decode(buf, n + 10, &d), RAFT_EMALFORMED);
    /* an entry claiming more data than remains */
    struct raft_entry e = {.index = 2, .term = 1, .data = "xyz", .len = 3};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 1,
                         .index = 1,
                         .entries = &e,
                         .n_entries = 1};
    size_t len = encode(&m, buf, sizeof(buf));
    buf[len - 4] = 0x7f; /* the length byte just before "xyz" */
    assert_int_equal(raft_msg_decode(buf, len, &d), RAFT_EMALFORMED);
}

static void test_mutated_bytes_never_crash(void **state)
{
    /* Valid encodings with a few bytes changed or cut: each must be rejected or decode to a
     * message that encodes back to exactly the same bytes. */
    struct raft_entry ents[2] = {{.index = 6, .term = 2, .data = "abc", .len = 3},
                                 {.index = 7, .term = 3, .type = RAFT_ENTRY_NOOP}};
    struct raft_msg seeds[3] = {
        {.type = RAFT_MSG_APPEND,
         .from = 1,
         .to = 2,
         .term = 3,
         .index = 5,
         .log_term = 2,
         .commit = 4,
         .entries = ents,
         .n_entries = 2},
        {.type = RAFT_MSG_APPEND_RESP,
         .from = 2,
         .to = 1,
         .term = 3,
         .index = 5,
         .reject = 1,
         .hint_index = 3,
         .hint_term = 1},
        {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 300, .commit = 1 << 20, .ctx = 77},
    };
    uint64_t x = 88172645463325252ULL;
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 100000; iter++) {
        uint8_t buf[128];
        size_t len = encode(&seeds[iter % 3], buf, sizeof(buf));
        for (int k = 0; k < 1 + iter % 3; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[(x >> 8) % len] = (uint8_t)x;
        }
        if (iter % 7 == 0)
            len -= (size_t)(x >> 20) % len;
        struct raft_msg d;
        if (raft_msg_decode(buf, len, &d) != 0) {
            rejected++;
            continue;
        }
        accepted++;
        uint8_t out[256];
        size_t olen;
        assert_int_equal(raft_msg_encode(&d, out, sizeof(out), &olen), 0);
        assert_int_equal(olen, len);
        assert_memory_equal(out, buf, len);
        raft_msg_release(&d);
    }
    assert_true(accepted > 1000);
    assert_true(rejected > 1000);
}

static void test_conf_entry(void **state)
{
    struct raft_conf c = {.n = 3};
    for (unsigned i = 0; i < 3; i++)
        c.members[i] = (struct raft_member){.id = i + 1, .voter = i < 2};
    uint8_t buf[RAFT_CONF_ENTRY_BYTES_MAX];
    size_t len;
    assert_int_equal(raft_conf_entry_encode(RAFT_CONF_ADD_LEARNER, 3, &c, buf, sizeof(buf), &len),
                     0);
    int change;
    uint64_t node;
    struct raft_conf back;
    assert_int_equal(raft_conf_entry_decode(buf, len, &change, &node, &back), 0);
    assert_int_equal(change, RAFT_CONF_ADD_LEARNER);
    assert_int_equal(node, 3);
    assert_int_equal(raft_conf_voters(&back), 2);
    assert_non_null(raft_conf_find(&back, 3));
    assert_null(raft_conf_find(&back, 4));
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(raft_conf_entry_decode(buf, cut, NULL, NULL, &back), RAFT_EMALFORMED);
    /* invalid configurations are refused both ways */
    c.members[2].id = 1; /* duplicate */
    assert_int_equal(raft_conf_entry_encode(RAFT_CONF_REMOVE, 1, &c, buf, sizeof(buf), &len),
                     RAFT_EINVAL);
    c.members[2].id = 0;
    assert_int_equal(raft_conf_encode(&c, buf, sizeof(buf), &len), RAFT_EINVAL);
    c.members[2].id = 3;
    c.members[2].blob_len = RAFT_MEMBER_BLOB_BYTES_MAX + 1;
    assert_int_equal(raft_conf_encode(&c, buf, sizeof(buf), &len), RAFT_EINVAL);
    c.members[2].blob_len = 0;
    assert_int_equal(raft_conf_encode(&c, buf, sizeof(buf), &len), 0);
    buf[2 + 1 + 1] = 1; /* member 2's id becomes 1: a duplicate on the wire */
    assert_int_equal(raft_conf_decode(buf, len, &back), RAFT_EMALFORMED);
}

static void test_names(void **state)
{
    assert_string_equal(raft_msg_type_name(RAFT_MSG_APPEND), "append");
    assert_string_equal(raft_msg_type_name(99), "?");
    assert_string_equal(raft_role_name(RAFT_LEADER), "leader");
    assert_string_equal(raft_errstr(RAFT_ENOTLEADER), "not the leader");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_round_trip),
        cmocka_unit_test(test_flags_and_snapshot_round_trip),
        cmocka_unit_test(test_truncated_and_padded_rejected),
        cmocka_unit_test(test_bad_header_rejected),
        cmocka_unit_test(test_overlong_varint_rejected),
        cmocka_unit_test(test_huge_counts_rejected_without_allocating),
        cmocka_unit_test(test_mutated_bytes_never_crash),
        cmocka_unit_test(test_conf_entry),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
