/* md.c: block buffering and padding for SHA-1 and SHA-256. See md.h. */
#include "common/md.h"

#include <string.h>

uint32_t rd_md_load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void rd_md_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void rd_md_init(struct rd_md *m)
{
    m->total = 0;
    m->used = 0;
}

void rd_md_update(struct rd_md *m, uint32_t *h, rd_md_compress_fn *f, const void *p, size_t n)
{
    const uint8_t *in = p;
    m->total += n;
    if (m->used > 0) {
        size_t take = RD_MD_BLOCK - m->used;
        if (take > n)
            take = n;
        memcpy(m->blk + m->used, in, take);
        m->used += take;
        in += take;
        n -= take;
        if (m->used < RD_MD_BLOCK)
            return;
        f(h, m->blk);
        m->used = 0;
    }
    for (; n >= RD_MD_BLOCK; in += RD_MD_BLOCK, n -= RD_MD_BLOCK)
        f(h, in);
    if (n > 0) {
        memcpy(m->blk, in, n);
        m->used = n;
    }
}

void rd_md_pad(struct rd_md *m, uint32_t *h, rd_md_compress_fn *f)
{
    uint64_t bits = m->total * 8;
    m->blk[m->used++] = 0x80;
    if (m->used > RD_MD_BLOCK - 8) {
        memset(m->blk + m->used, 0, RD_MD_BLOCK - m->used);
        f(h, m->blk);
        m->used = 0;
    }
    memset(m->blk + m->used, 0, RD_MD_BLOCK - 8 - m->used);
    rd_md_store_be32(m->blk + 56, (uint32_t)(bits >> 32));
    rd_md_store_be32(m->blk + 60, (uint32_t)bits);
    f(h, m->blk);
}
