#include "backend/entry.h"

#include <stdlib.h>
#include <string.h>

int be_entry_put_hdr(struct rd_buf *b, const struct be_entry_hdr *h)
{
    uint8_t v = BE_ENTRY_VERSION;
    if (rd_buf_append(b, &v, 1) != 0 || rd_put_varint(b, h->flags) != 0 ||
        rd_put_varint(b, h->origin) != 0 || rd_put_varint(b, h->reqid) != 0 ||
        rd_put_varint(b, h->db) != 0 || rd_put_varint(b, h->time_ms) != 0 ||
        rd_put_varint(b, h->ncmds) != 0)
        return -1;
    return 0;
}

int be_entry_put_cmd(struct rd_buf *b, int argc, const char *const *argv, const size_t *argvlen)
{
    if (argc < 1 || rd_put_varint(b, (uint64_t)argc) != 0)
        return -1;
    for (int i = 0; i < argc; i++)
        if (rd_put_varint(b, argvlen[i]) != 0 || rd_buf_append(b, argv[i], argvlen[i]) != 0)
            return -1;
    return 0;
}

/* The varint at p[*off], moving *off past it. 0 or -1. */
static int take_u64(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
    size_t n = rd_get_varint(p + *off, len - *off, v);
    if (n == 0)
        return -1;
    *off += n;
    return 0;
}

static int get_u64(struct be_entry_reader *r, uint64_t *v)
{
    return take_u64(r->p, r->len, &r->off, v);
}

int be_entry_open(struct be_entry_reader *r, const void *data, size_t len, struct be_entry_hdr *h)
{
    /* The scratch arrays (argv, argvlen) survive: a reader is reused from entry to entry. */
    r->p = data;
    r->len = len;
    r->off = 0;
    r->left = 0;
    if (len < 1 || r->p[0] != BE_ENTRY_VERSION)
        return -1;
    r->off = 1;
    uint64_t flags, ncmds;
    if (get_u64(r, &flags) || get_u64(r, &h->origin) || get_u64(r, &h->reqid) ||
        get_u64(r, &h->db) || get_u64(r, &h->time_ms) || get_u64(r, &ncmds))
        return -1;
    if (flags > UINT32_MAX || ncmds > BE_ENTRY_CMDS_MAX)
        return -1;
    h->flags = (uint32_t)flags;
    h->ncmds = (uint32_t)ncmds;
    r->left = h->ncmds;
    return 0;
}

int be_entry_next(struct be_entry_reader *r, struct be_cmd *cmd)
{
    if (r->left == 0)
        return r->off == r->len ? 0 : -1;
    uint64_t argc;
    if (get_u64(r, &argc) != 0 || argc < 1 || argc > BE_ENTRY_ARGC_MAX)
        return -1;
    /* Each argument takes at least one byte (its length): a cheap bound before allocating. */
    if (argc > r->len - r->off)
        return -1;
    if (argc > r->argcap) {
        size_t ncap = r->argcap ? r->argcap : 8;
        while (ncap < argc)
            ncap *= 2;
        const char **nv = realloc(r->argv, ncap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        r->argv = nv;
        size_t *nl = realloc(r->argvlen, ncap * sizeof(*nl));
        if (nl == NULL)
            return -1;
        r->argvlen = nl;
        r->argcap = ncap;
    }
    for (uint64_t i = 0; i < argc; i++) {
        uint64_t alen;
        if (get_u64(r, &alen) != 0 || alen > r->len - r->off)
            return -1;
        r->argv[i] = (const char *)r->p + r->off;
        r->argvlen[i] = (size_t)alen;
        r->off += alen;
    }
    r->left--;
    cmd->argc = (int)argc;
    cmd->argv = r->argv;
    cmd->argvlen = r->argvlen;
    return 1;
}

void be_entry_reader_free(struct be_entry_reader *r)
{
    free(r->argv);
    free(r->argvlen);
    r->argv = NULL;
    r->argvlen = NULL;
    r->argcap = 0;
}

int be_entry_check(struct be_entry_reader *r, const void *data, size_t len)
{
    struct be_entry_hdr h;
    struct be_cmd c;
    int rc = be_entry_open(r, data, len, &h);
    while (rc == 0 && (rc = be_entry_next(r, &c)) == 1)
        rc = 0;
    return rc == 0 ? 0 : -1;
}

int be_entry_validate(const void *data, size_t len)
{
    struct be_entry_reader r = {0};
    int rc = be_entry_check(&r, data, len);
    be_entry_reader_free(&r);
    return rc;
}

int be_watch_put_hdr(struct rd_buf *b, uint64_t index, uint32_t nkeys)
{
    uint8_t v = BE_WATCH_VERSION;
    if (rd_buf_append(b, &v, 1) != 0 || rd_put_varint(b, index) != 0 ||
        rd_put_varint(b, nkeys) != 0)
        return -1;
    return 0;
}

int be_watch_put_key(struct rd_buf *b, uint64_t db, const void *key, size_t len)
{
    if (rd_put_varint(b, db) != 0 || rd_put_varint(b, len) != 0 || rd_buf_append(b, key, len) != 0)
        return -1;
    return 0;
}

static int watch_u64(struct be_watch_reader *r, uint64_t *v)
{
    return take_u64(r->p, r->len, &r->off, v);
}

int be_watch_open(struct be_watch_reader *r, const void *data, size_t len, uint64_t *index,
                  uint32_t *nkeys)
{
    r->p = data;
    r->len = len;
    r->off = 0;
    r->left = 0;
    uint64_t n;
    if (len < 1 || r->p[0] != BE_WATCH_VERSION)
        return -1;
    r->off = 1;
    if (watch_u64(r, index) != 0 || watch_u64(r, &n) != 0 || n > BE_WATCH_KEYS_MAX)
        return -1;
    /* Each key takes at least two bytes (db and length): a cheap bound on the count. */
    if (n > (r->len - r->off) / 2)
        return -1;
    r->left = (uint32_t)n;
    *nkeys = r->left;
    return 0;
}

int be_watch_next(struct be_watch_reader *r, struct be_watch_key *k)
{
    if (r->left == 0)
        return r->off == r->len ? 0 : -1;
    uint64_t klen;
    if (watch_u64(r, &k->db) != 0 || watch_u64(r, &klen) != 0 || klen > r->len - r->off)
        return -1;
    k->key = (const char *)r->p + r->off;
    k->len = (size_t)klen;
    r->off += (size_t)klen;
    r->left--;
    return 1;
}
