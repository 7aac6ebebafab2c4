/* Unit tests for common/sha256 and common/sha1 (SHA-1: FIPS examples, Redis's own script sha): the
 * FIPS 180-4 example messages, the RFC 4231 HMAC-SHA256 test cases 1-7, incremental hashing split
 * at every offset (block-boundary bugs hide there), a keyed HMAC context reused by copying (as the
 * bus does), and the constant-time compare.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha1.h"
#include "common/sha256.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void to_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void check_sha(const void *msg, size_t n, const char *want)
{
    uint8_t d[RD_SHA256_LEN];
    char hex[2 * RD_SHA256_LEN + 1];
    rd_sha256(msg, n, d);
    to_hex(d, sizeof(d), hex);
    assert_string_equal(hex, want);
}

/* want may be shorter than a full MAC (test case 5 compares the first 128 bits). */
static void check_hmac(const void *key, size_t keylen, const void *msg, size_t n, const char *want)
{
    uint8_t d[RD_SHA256_LEN];
    char hex[2 * RD_SHA256_LEN + 1];
    rd_hmac_sha256(key, keylen, msg, n, d);
    to_hex(d, sizeof(d), hex);
    hex[strlen(want)] = '\0';
    assert_string_equal(hex, want);
}

/* ---- SHA-256: FIPS 180-4 examples (csrc.nist.gov, "SHA256.pdf" example values) ------------- */

static void test_sha256_abc(void **state)
{
    (void)state;
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_empty(void **state)
{
    (void)state;
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sha256_448_bits(void **state)
{
    (void)state;
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(strlen(m) * 8, 448);
    check_sha(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_sha256_896_bits(void **state)
{
    (void)state;
    const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
                    "jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    assert_int_equal(strlen(m) * 8, 896);
    check_sha(m, strlen(m), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_sha256_million_a(void **state)
{
    (void)state;
    /* Fed in uneven pieces so the buffered path is exercised as well as whole blocks. */
    char chunk[1000];
    memset(chunk, 'a', sizeof(chunk));
    struct rd_sha256 c;
    rd_sha256_init(&c);
    size_t left = 1000000, step = 1;
    while (left > 0) {
        size_t n = step < left ? step : left;
        rd_sha256_update(&c, chunk, n);
        left -= n;
        step = step % 983 + 13; /* stays below sizeof(chunk) */
    }
    uint8_t d[RD_SHA256_LEN];
    char hex[2 * RD_SHA256_LEN + 1];
    rd_sha256_final(&c, d);
    to_hex(d, sizeof(d), hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every split point of messages around one and two blocks gives the one-shot digest. */
static void test_sha256_split_everywhere(void **state)
{
    (void)state;
    uint8_t msg[200];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof(msg); len += (len < 130 ? 1 : 7)) {
        uint8_t want[RD_SHA256_LEN];
        rd_sha256(msg, len, want);
        for (size_t cut = 0; cut <= len; cut++) {
            struct rd_sha256 c;
            uint8_t got[RD_SHA256_LEN];
            rd_sha256_init(&c);
            rd_sha256_update(&c, msg, cut);
            rd_sha256_update(&c, msg + cut, len - cut);
            rd_sha256_final(&c, got);
            assert_memory_equal(got, want, RD_SHA256_LEN);
        }
    }
}

/* ---- SHA-1: the FIPS 180-4 examples, and Redis's script names ----------------------------- */

static void check_sha1(const void *msg, size_t n, const char *want)
{
    char hex[RD_SHA1_HEX + 1];
    rd_sha1_hex(msg, n, hex);
    hex[RD_SHA1_HEX] = '\0';
    assert_string_equal(hex, want);
}

static void test_sha1_examples(void **state)
{
    (void)state;
    check_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha1(m448, strlen(m448), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    /* What SCRIPT LOAD answers for this body on Redis 7.0.15. */
    check_sha1("return 1", 8, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

/* A million 'a' in uneven pieces, and every split of short messages: the buffering shared with
 * SHA-256 (common/md.c) serves SHA-1 too. */
static void test_sha1_pieces(void **state)
{
    (void)state;
    char chunk[1000];
    memset(chunk, 'a', sizeof(chunk));
    struct rd_sha1 c;
    uint8_t d[RD_SHA1_LEN];
    char hex[2 * RD_SHA1_LEN + 1];
    rd_sha1_init(&c);
    for (size_t left = 1000000, step = 1; left > 0; step = step % 983 + 13) {
        size_t n = step < left ? step : left;
        rd_sha1_update(&c, chunk, n);
        left -= n;
    }
    rd_sha1_final(&c, d);
    to_hex(d, sizeof(d), hex);
    assert_string_equal(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    uint8_t msg[150];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 5 + 1);
    for (size_t len = 0; len <= sizeof(msg); len++) {
        char want[RD_SHA1_HEX], got[RD_SHA1_HEX + 1];
        rd_sha1_hex(msg, len, want);
        for (size_t cut = 0; cut <= len; cut += 3) {
            rd_sha1_init(&c);
            rd_sha1_update(&c, msg, cut);
            rd_sha1_update(&c, msg + cut, len - cut);
            rd_sha1_final(&c, d);
            to_hex(d, sizeof(d), got);
            assert_memory_equal(got, want, RD_SHA1_HEX);
        }
    }
}

/* ---- HMAC-SHA256: RFC 4231 section 4 ------------------------------------------------------ */

static void test_hmac_rfc4231_1(void **state)
{
    (void)state;
    uint8_t key[20];
    memset(key, 0x0b, sizeof(key));
    check_hmac(key, sizeof(key), "Hi There", 8,
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void test_hmac_rfc4231_2(void **state)
{
    (void)state;
    const char *m = "what do ya want for nothing?";
    check_hmac("Jefe", 4, m, strlen(m),
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_hmac_rfc4231_3(void **state)
{
    (void)state;
    uint8_t key[20], msg[50];
    memset(key, 0xaa, sizeof(key));
    memset(msg, 0xdd, sizeof(msg));
    check_hmac(key, sizeof(key), msg, sizeof(msg),
               "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

static void test_hmac_rfc4231_4(void **state)
{
    (void)state;
    uint8_t key[25], msg[50];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i + 1);
    memset(msg, 0xcd, sizeof(msg));
    check_hmac(key, sizeof(key), msg, sizeof(msg),
               "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

static void test_hmac_rfc4231_5_truncated(void **state)
{
    (void)state;
    uint8_t key[20];
    memset(key, 0x0c, sizeof(key));
    check_hmac(key, sizeof(key), "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b");
}

static void test_hmac_rfc4231_6_long_key(void **state)
{
    (void)state;
    uint8_t key[131];
    memset(key, 0xaa, sizeof(key));
    const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
    check_hmac(key, sizeof(key), m, strlen(m),
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_hmac_rfc4231_7_long_key_and_data(void **state)
{
    (void)state;
    uint8_t key[131];
    memset(key, 0xaa, sizeof(key));
    const char *m = "This is a test using a larger than block-size key and a larger than "
                    "block-size data. The key needs to be hashed before being used by the HMAC "
                    "algorithm.";
    check_hmac(key, sizeof(key), m, strlen(m),
               "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* The bus keys one context and copies it per handshake: copies must not disturb each other. */
static void test_hmac_keyed_copy(void **state)
{
    (void)state;
    struct rd_hmac_sha256 keyed, a, b;
    uint8_t da[RD_SHA256_LEN], db[RD_SHA256_LEN], want[RD_SHA256_LEN];
    rd_hmac_sha256_init(&keyed, "Jefe", 4);
    a = keyed;
    b = keyed;
    rd_hmac_sha256_update(&a, "what do ya ", 11);
    rd_hmac_sha256_update(&b, "something else", 14);
    rd_hmac_sha256_update(&a, "want for nothing?", 17);
    rd_hmac_sha256_final(&a, da);
    rd_hmac_sha256_final(&b, db);
    rd_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, want);
    assert_memory_equal(da, want, RD_SHA256_LEN);
    assert_memory_not_equal(db, want, RD_SHA256_LEN);
}

static void test_ct_memeq(void **state)
{
    (void)state;
    uint8_t x[32], y[32];
    memset(x, 0x5a, sizeof(x));
    memcpy(y, x, sizeof(y));
    assert_int_equal(rd_ct_memeq(x, y, sizeof(x)), 1);
    assert_int_equal(rd_ct_memeq(x, y, 0), 1);
    for (size_t i = 0; i < sizeof(y); i++) {
        for (int bit = 0; bit < 8; bit++) {
            y[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(rd_ct_memeq(x, y, sizeof(x)), 0);
            y[i] ^= (uint8_t)(1u << bit);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_abc),
        cmocka_unit_test(test_sha256_empty),
        cmocka_unit_test(test_sha256_448_bits),
        cmocka_unit_test(test_sha256_896_bits),
        cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_sha256_split_everywhere),
        cmocka_unit_test(test_sha1_examples),
        cmocka_unit_test(test_sha1_pieces),
        cmocka_unit_test(test_hmac_rfc4231_1),
        cmocka_unit_test(test_hmac_rfc4231_2),
        cmocka_unit_test(test_hmac_rfc4231_3),
        cmocka_unit_test(test_hmac_rfc4231_4),
        cmocka_unit_test(test_hmac_rfc4231_5_truncated),
        cmocka_unit_test(test_hmac_rfc4231_6_long_key),
        cmocka_unit_test(test_hmac_rfc4231_7_long_key_and_data),
        cmocka_unit_test(test_hmac_keyed_copy),
        cmocka_unit_test(test_ct_memeq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
