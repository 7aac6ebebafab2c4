/* sha1.c: SHA-1 per FIPS 180-4 section 6.1. See sha1.h. */
#include "common/sha1.h"

#include <string.h>

#include "common/md.h"

static uint32_t rotl(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static void compress(uint32_t h[5], const uint8_t *blk)
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = rd_md_load_be32(blk + 4 * t);
    for (int t = 16; t < 80; t++)
        w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void rd_sha1_init(struct rd_sha1 *c)
{
    static const uint32_t h0[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(c->h, h0, sizeof(h0));
    rd_md_init(&c->md);
}

void rd_sha1_update(struct rd_sha1 *c, const void *p, size_t n)
{
    rd_md_update(&c->md, c->h, compress, p, n);
}

void rd_sha1_final(struct rd_sha1 *c, uint8_t out[RD_SHA1_LEN])
{
    rd_md_pad(&c->md, c->h, compress);
    for (int i = 0; i < 5; i++)
        rd_md_store_be32(out + 4 * i, c->h[i]);
    memset(c, 0, sizeof(*c));
}

void rd_sha1_hex(const void *p, size_t n, char out[RD_SHA1_HEX])
{
    static const char digits[] = "0123456789abcdef";
    struct rd_sha1 c;
    uint8_t d[RD_SHA1_LEN];
    rd_sha1_init(&c);
    rd_sha1_update(&c, p, n);
    rd_sha1_final(&c, d);
    for (int i = 0; i < RD_SHA1_LEN; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
}
