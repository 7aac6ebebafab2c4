/* sha256.c: SHA-256 per FIPS 180-4 section 6.2, HMAC per RFC 2104. See sha256.h. */
#include "common/sha256.h"

#include <string.h>

#include "common/md.h"

static const uint32_t k256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

/* One block through the compression function (FIPS 180-4 section 6.2.2). */
static void compress(uint32_t h[8], const uint8_t *blk)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = rd_md_load_be32(blk + 4 * t);
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 =
            hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k256[t] + w[t];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void rd_sha256_init(struct rd_sha256 *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof(iv));
    rd_md_init(&c->md);
}

void rd_sha256_update(struct rd_sha256 *c, const void *p, size_t n)
{
    rd_md_update(&c->md, c->h, compress, p, n);
}

void rd_sha256_final(struct rd_sha256 *c, uint8_t out[RD_SHA256_LEN])
{
    rd_md_pad(&c->md, c->h, compress);
    for (int i = 0; i < 8; i++)
        rd_md_store_be32(out + 4 * i, c->h[i]);
    /* Member by member: on the whole struct GCC's overflow check misreads the inlined HMAC. */
    explicit_bzero(&c->md, sizeof(c->md));
    explicit_bzero(c->h, sizeof(c->h));
}

void rd_sha256(const void *p, size_t n, uint8_t out[RD_SHA256_LEN])
{
    struct rd_sha256 c;
    rd_sha256_init(&c);
    rd_sha256_update(&c, p, n);
    rd_sha256_final(&c, out);
}

void rd_hmac_sha256_init(struct rd_hmac_sha256 *h, const void *key, size_t keylen)
{
    uint8_t k[RD_SHA256_BLOCK] = {0};
    uint8_t pad[RD_SHA256_BLOCK];
    if (keylen > RD_SHA256_BLOCK)
        rd_sha256(key, keylen, k);
    else if (keylen > 0)
        memcpy(k, key, keylen);
    for (int i = 0; i < RD_SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x36;
    rd_sha256_init(&h->inner);
    rd_sha256_update(&h->inner, pad, sizeof(pad));
    for (int i = 0; i < RD_SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x5c;
    rd_sha256_init(&h->outer);
    rd_sha256_update(&h->outer, pad, sizeof(pad));
    explicit_bzero(k, sizeof(k));
    explicit_bzero(pad, sizeof(pad));
}

void rd_hmac_sha256_update(struct rd_hmac_sha256 *h, const void *p, size_t n)
{
    rd_sha256_update(&h->inner, p, n);
}

void rd_hmac_sha256_final(struct rd_hmac_sha256 *h, uint8_t out[RD_SHA256_LEN])
{
    uint8_t ih[RD_SHA256_LEN];
    rd_sha256_final(&h->inner, ih);
    rd_sha256_update(&h->outer, ih, sizeof(ih));
    rd_sha256_final(&h->outer, out);
    explicit_bzero(ih, sizeof(ih));
}

void rd_hmac_sha256(const void *key, size_t keylen, const void *p, size_t n,
                    uint8_t out[RD_SHA256_LEN])
{
    struct rd_hmac_sha256 h;
    rd_hmac_sha256_init(&h, key, keylen);
    rd_hmac_sha256_update(&h, p, n);
    rd_hmac_sha256_final(&h, out);
}

int rd_ct_memeq(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff == 0;
}
