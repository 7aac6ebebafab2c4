#include "common/buf.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rd_buf_init(struct rd_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void rd_buf_free(struct rd_buf *b)
{
    free(b->data);
    rd_buf_init(b);
}

void rd_buf_reset(struct rd_buf *b)
{
    b->len = b->rpos = 0;
}

int rd_buf_reserve(struct rd_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (b->rpos > 0 && b->cap - (b->len - b->rpos) >= n && b->rpos >= b->cap / 2) {
        rd_buf_compact(b);
        return 0;
    }
    size_t want = b->len + n;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap = cap < (1u << 30) ? cap * 2 : cap + (1u << 30);
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int rd_buf_append(struct rd_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (rd_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int rd_buf_append_str(struct rd_buf *b, const char *s)
{
    return rd_buf_append(b, s, strlen(s));
}

int rd_buf_printf(struct rd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || rd_buf_reserve(b, (size_t)n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void rd_buf_consume(struct rd_buf *b, size_t n)
{
    b->rpos += n;
    if (b->rpos >= b->len)
        b->rpos = b->len = 0;
}

void rd_buf_compact(struct rd_buf *b)
{
    if (b->rpos == 0)
        return;
    memmove(b->data, b->data + b->rpos, b->len - b->rpos);
    b->len -= b->rpos;
    b->rpos = 0;
}

int rd_resp_simple(struct rd_buf *b, char type, const char *s)
{
    size_t n = strlen(s);
    if (rd_buf_reserve(b, n + 3) != 0)
        return -1;
    b->data[b->len++] = type;
    /* A simple string or error must not carry a line break: Redis replaces them with spaces. */
    for (size_t i = 0; i < n; i++)
        b->data[b->len++] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
    return 0;
}

/* Writes "<type><v>\r\n" into tmp (at least 24 bytes) and returns its length. By hand: these
 * headers are written for every argument of every command the apply path sends, and snprintf
 * was a visible part of a loaded node's time. */
static size_t resp_prefix_fmt(char *tmp, char type, long long v)
{
    char digits[20];
    size_t nd = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[nd++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t n = 0;
    tmp[n++] = type;
    if (v < 0)
        tmp[n++] = '-';
    while (nd > 0)
        tmp[n++] = digits[--nd];
    tmp[n++] = '\r';
    tmp[n++] = '\n';
    return n;
}

int rd_resp_prefix(struct rd_buf *b, char type, long long v)
{
    char tmp[24];
    return rd_buf_append(b, tmp, resp_prefix_fmt(tmp, type, v));
}

int rd_resp_int(struct rd_buf *b, long long v)
{
    return rd_resp_prefix(b, ':', v);
}

int rd_resp_array_len(struct rd_buf *b, long long n)
{
    return rd_resp_prefix(b, '*', n);
}

int rd_resp_nil(struct rd_buf *b)
{
    return rd_buf_append(b, "$-1\r\n", 5);
}

int rd_resp_bulk(struct rd_buf *b, const void *p, size_t n)
{
    return rd_resp_blob(b, '$', p, n);
}

int rd_resp_blob(struct rd_buf *b, char type, const void *p, size_t n)
{
    char tmp[24];
    size_t hl = resp_prefix_fmt(tmp, type, (long long)n);
    if (rd_buf_reserve(b, hl + n + 2) != 0)
        return -1;
    memcpy(b->data + b->len, tmp, hl);
    if (n > 0)
        memcpy(b->data + b->len + hl, p, n);
    memcpy(b->data + b->len + hl + n, "\r\n", 2);
    b->len += hl + n + 2;
    return 0;
}

int rd_put_varint(struct rd_buf *b, uint64_t v)
{
    /* Written in place: entries and messages are mostly varints, and most of them one byte. */
    if (rd_buf_reserve(b, 10) != 0)
        return -1;
    uint8_t *p = (uint8_t *)b->data + b->len;
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    b->len += n;
    return 0;
}

size_t rd_get_varint(const uint8_t *p, size_t len, uint64_t *v)
{
    if (len > 0 && p[0] < 0x80) {
        *v = p[0];
        return 1;
    }
    uint64_t r = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        uint64_t byte = p[i] & 0x7f;
        if (i == 9 && p[i] > 1)
            return 0; /* more than 64 bits */
        r |= byte << (7 * i);
        if ((p[i] & 0x80) == 0) {
            if (i > 0 && p[i] == 0)
                return 0; /* overlong: a number has one encoding, the shortest */
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

int rd_parse_ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 20)
        return -1;
    int neg = 0;
    size_t i = 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1)
            return -1;
    }
    if (s[i] == '0' && (n > i + 1 || neg))
        return -1; /* leading zeros and "-0" are not canonical: Redis rejects them */
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned long long d = (unsigned long long)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return -1;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > LLONG_MAX)
            return -1;
        *out = (long long)v;
    }
    return 0;
}
