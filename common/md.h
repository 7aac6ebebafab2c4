/* md.h: the Merkle-Damgard framing that SHA-1 and SHA-256 share (FIPS 180-4 sections 5.1.1,
 * 5.2.1 and 6): 64-byte blocks, the bytes of a partial block kept until it fills, and the
 * padding (a 1 bit, zeros, the message length in bits, big-endian). Each hash keeps its own
 * state words and compression function and hands both in. A plain value; nothing allocates.
 */
#ifndef REDRAFT_MD_H
#define REDRAFT_MD_H

#include <stddef.h>
#include <stdint.h>

#define RD_MD_BLOCK 64

typedef void rd_md_compress_fn(uint32_t *h, const uint8_t *blk);

struct rd_md {
    uint64_t total; /* bytes hashed so far */
    size_t used;    /* bytes waiting in blk */
    uint8_t blk[RD_MD_BLOCK];
};

void rd_md_init(struct rd_md *m);
void rd_md_update(struct rd_md *m, uint32_t *h, rd_md_compress_fn *f, const void *p, size_t n);
/* Pads and compresses the last block(s); then the digest is h, big-endian. */
void rd_md_pad(struct rd_md *m, uint32_t *h, rd_md_compress_fn *f);
void rd_md_store_be32(uint8_t *p, uint32_t v);
uint32_t rd_md_load_be32(const uint8_t *p);

#endif
