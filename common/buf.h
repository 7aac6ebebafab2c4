/* buf.h: a growable byte buffer with a read mark, for sockets and encoders.
 *
 * Bytes live in data[rpos, len); appends go at len, consumers advance rpos. The buffer owns data;
 * rd_buf_free releases it. Growth is geometric; rd_buf_compact moves unread bytes to the front
 * when the read mark is far along, so a long-lived connection buffer does not creep.
 * Functions that may allocate return 0 or -1 (out of memory); nothing is lost on failure.
 */
#ifndef REDRAFT_BUF_H
#define REDRAFT_BUF_H

#include <stddef.h>
#include <stdint.h>

struct rd_buf {
    char *data;
    size_t len;  /* end of written bytes */
    size_t rpos; /* start of unread bytes */
    size_t cap;
};

void rd_buf_init(struct rd_buf *b);
void rd_buf_free(struct rd_buf *b);
/* Makes room for at least n more bytes after len. */
int rd_buf_reserve(struct rd_buf *b, size_t n);
int rd_buf_append(struct rd_buf *b, const void *p, size_t n);
int rd_buf_append_str(struct rd_buf *b, const char *s);
int rd_buf_printf(struct rd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline size_t rd_buf_unread(const struct rd_buf *b)
{
    return b->len - b->rpos;
}
static inline const char *rd_buf_rptr(const struct rd_buf *b)
{
    return b->data + b->rpos;
}
/* Marks n unread bytes as consumed; resets to empty when everything is read. */
void rd_buf_consume(struct rd_buf *b, size_t n);
void rd_buf_compact(struct rd_buf *b);
void rd_buf_reset(struct rd_buf *b);

/* RESP writers (append to the buffer). */
int rd_resp_simple(struct rd_buf *b, char type, const char *s); /* "+OK", "-ERR ..." */
int rd_resp_int(struct rd_buf *b, long long v);
int rd_resp_bulk(struct rd_buf *b, const void *p, size_t n);
int rd_resp_nil(struct rd_buf *b);
int rd_resp_array_len(struct rd_buf *b, long long n);
/* "<type><v>\r\n": the header of any aggregate or length-prefixed type ('*', '%', '$', ...). */
int rd_resp_prefix(struct rd_buf *b, char type, long long v);
/* "<type><n>\r\n" then the n bytes and "\r\n": a bulk ('$') or RESP3's verbatim ('='). */
int rd_resp_blob(struct rd_buf *b, char type, const void *p, size_t n);

/* LEB128 varint helpers for binary formats. get returns bytes read, or 0 when truncated, over
 * 64 bits, or overlong (a last byte of zero after the first: put never writes one), so every
 * number has exactly one encoding and decoded bytes re-encode to themselves. */
int rd_put_varint(struct rd_buf *b, uint64_t v);
size_t rd_get_varint(const uint8_t *p, size_t len, uint64_t *v);

/* A decimal integer that is exactly the n bytes at s, as strict as Redis's string2ll: an optional
 * '-', digits, no spaces, no '+', no leading zeros, no "-0", no overflow. The bytes need not end
 * with a NUL. 0 or -1 (and *out untouched). */
int rd_parse_ll(const char *s, size_t n, long long *out);

#endif
