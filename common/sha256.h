/* sha256.h: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the cluster bus handshake.
 *
 * Why our own: redraft links no crypto library, and the bus needs only a keyed MAC to prove a
 * shared secret (see raftlog/bus.h). The code is checked against the FIPS 180-4 examples and the
 * RFC 4231 HMAC test cases in tests/unit/test_sha256.c.
 *
 * Use: init, any number of updates, final. A context is a plain value: it owns no memory, may be
 * copied (a keyed HMAC context is copied to MAC many messages under one key without rehashing the
 * key), and is wiped by final. Nothing here allocates or fails; anyone may call anything.
 */
#ifndef REDRAFT_SHA256_H
#define REDRAFT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "common/md.h"

#define RD_SHA256_LEN   32 /* bytes of a digest */
#define RD_SHA256_BLOCK 64 /* bytes of a compression block */

struct rd_sha256 {
    struct rd_md md; /* the partial block and the length (common/md.h) */
    uint32_t h[8];
};

void rd_sha256_init(struct rd_sha256 *c);
void rd_sha256_update(struct rd_sha256 *c, const void *p, size_t n);
/* Writes the digest and wipes the context. */
void rd_sha256_final(struct rd_sha256 *c, uint8_t out[RD_SHA256_LEN]);
/* One-shot digest of p[0, n). */
void rd_sha256(const void *p, size_t n, uint8_t out[RD_SHA256_LEN]);

struct rd_hmac_sha256 {
    struct rd_sha256 inner; /* keyed with key ^ ipad, then the message */
    struct rd_sha256 outer; /* keyed with key ^ opad, then the inner digest */
};

/* Keys the context; a key longer than a block is hashed first (RFC 2104 section 2). */
void rd_hmac_sha256_init(struct rd_hmac_sha256 *h, const void *key, size_t keylen);
void rd_hmac_sha256_update(struct rd_hmac_sha256 *h, const void *p, size_t n);
/* Writes the MAC and wipes the context. */
void rd_hmac_sha256_final(struct rd_hmac_sha256 *h, uint8_t out[RD_SHA256_LEN]);
void rd_hmac_sha256(const void *key, size_t keylen, const void *p, size_t n,
                    uint8_t out[RD_SHA256_LEN]);

/* 1 when a[0, n) equals b[0, n), else 0, in time that depends only on n (for comparing MACs
 * without telling an attacker how many leading bytes were right). */
int rd_ct_memeq(const void *a, const void *b, size_t n);

#endif
