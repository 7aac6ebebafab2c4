#include "backend/reader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* First allocation of an aggregate's element array: the rest grows as elements arrive, so a
 * declared count costs nothing before its elements do. */
#define READER_ELEMENTS_PREALLOC 256
/* First allocation of a bulk still arriving (it doubles up to its declared size). */
#define READER_BULK_PREALLOC (64 * 1024)

static int is_aggregate(int type)
{
    return type == REDIS_REPLY_ARRAY || type == BE_REPLY_MAP || type == BE_REPLY_SET ||
           type == BE_REPLY_PUSH || type == BE_REPLY_ATTR;
}

void be_reader_init(struct be_reader *r)
{
    memset(r, 0, sizeof(*r));
    r->scanned = 1;
    r->bulk_max = BE_READER_BULK_MAX;
    r->elements_max = BE_READER_ELEMENTS_MAX;
}

static void drop_reply(struct be_reader *r)
{
    be_reply_free(r->root);
    r->root = NULL;
    r->bulk = NULL;
    r->depth = 0;
}

void be_reader_free(struct be_reader *r)
{
    drop_reply(r);
    free(r->buf);
    free(r->stack);
    memset(r, 0, sizeof(*r));
}

void be_reader_reset(struct be_reader *r)
{
    long long bulk_max = r->bulk_max, elements_max = r->elements_max;
    be_reader_free(r);
    be_reader_init(r);
    r->bulk_max = bulk_max;
    r->elements_max = elements_max;
}

static int fail(struct be_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct be_reader *r, const char *fmt, ...)
{
    if (r->err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->errstr, sizeof(r->errstr), fmt, ap);
    va_end(ap);
    r->err = -1;
    drop_reply(r);
    return -1;
}

/* Copies up to n bytes of the bulk still arriving; returns how many it took, or -1. */
static long long bulk_take(struct be_reader *r, const char *p, size_t n)
{
    size_t need = r->bulk->len + 2 - r->bulk_got;
    size_t take = n < need ? n : need;
    if (r->bulk_got + take > r->bulk_cap) {
        size_t ncap = r->bulk_cap * 2;
        if (ncap < r->bulk_got + take)
            ncap = r->bulk_got + take;
        if (ncap > r->bulk->len + 2)
            ncap = r->bulk->len + 2;
        char *s = realloc(r->bulk->str, ncap);
        if (s == NULL)
            return fail(r, "out of memory");
        r->bulk->str = s;
        r->bulk_cap = ncap;
    }
    memcpy(r->bulk->str + r->bulk_got, p, take);
    r->bulk_got += take;
    return (long long)take;
}

int be_reader_feed(struct be_reader *r, const char *p, size_t n)
{
    if (r->err)
        return -1;
    if (r->pos == r->len) {
        r->pos = r->len = 0;
        /* Straight into a bulk still arriving: its bytes are copied once. */
        if (r->bulk != NULL && n > 0) {
            long long took = bulk_take(r, p, n);
            if (took < 0)
                return -1;
            p += took;
            n -= (size_t)took;
        }
    }
    if (n == 0)
        return 0;
    if (r->cap - r->len < n && r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->cap - r->len < n) {
        size_t ncap = r->cap ? r->cap : 16 * 1024;
        while (ncap - r->len < n)
            ncap *= 2;
        char *b = realloc(r->buf, ncap);
        if (b == NULL)
            return fail(r, "out of memory");
        r->buf = b;
        r->cap = ncap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

/* A new node, attached where the reply being built expects its next value. */
static redisReply *node_new(struct be_reader *r, int type)
{
    redisReply *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        fail(r, "out of memory");
        return NULL;
    }
    v->type = type;
    if (r->depth == 0) {
        r->root = v;
        return v;
    }
    struct be_reader_frame *f = &r->stack[r->depth - 1];
    redisReply *parent = f->r;
    if (parent->elements == f->cap) {
        size_t ncap = f->cap * 2;
        redisReply **e = realloc(parent->element, ncap * sizeof(*e));
        if (e == NULL) {
            free(v);
            fail(r, "out of memory");
            return NULL;
        }
        parent->element = e;
        f->cap = ncap;
    }
    parent->element[parent->elements++] = v;
    f->left--;
    return v;
}

/* A value is complete: closes every aggregate it completes. 1 when the whole reply is. */
static int value_done(struct be_reader *r)
{
    while (r->depth > 0 && r->stack[r->depth - 1].left == 0)
        r->depth--;
    return r->depth == 0;
}

static int push_aggregate(struct be_reader *r, redisReply *v, unsigned long long count)
{
    if (r->depth == r->stack_cap) {
        size_t ncap = r->stack_cap ? r->stack_cap * 2 : 16;
        struct be_reader_frame *s = realloc(r->stack, ncap * sizeof(*s));
        if (s == NULL)
            return fail(r, "out of memory");
        r->stack = s;
        r->stack_cap = ncap;
    }
    size_t cap = count < READER_ELEMENTS_PREALLOC ? (size_t)count : READER_ELEMENTS_PREALLOC;
    v->element = malloc(cap * sizeof(*v->element));
    if (v->element == NULL)
        return fail(r, "out of memory");
    r->stack[r->depth].r = v;
    r->stack[r->depth].left = count;
    r->stack[r->depth].cap = cap;
    r->depth++;
    return 0;
}

/* The end of the line that starts at pos ("\r\n"), or NULL when it has not arrived yet. */
static const char *line_end(struct be_reader *r)
{
    const char *end = r->buf + r->len;
    const char *from = r->buf + r->pos + r->scanned;
    while (from < end) {
        const char *cr = memchr(from, '\r', (size_t)(end - from));
        if (cr == NULL)
            break;
        if (cr + 1 == end) { /* the '\n' may be in the next read: look at this '\r' again */
            r->scanned = (size_t)(cr - (r->buf + r->pos));
            return NULL;
        }
        if (cr[1] == '\n') {
            r->scanned = 1;
            return cr;
        }
        from = cr + 1;
    }
    r->scanned = r->len - r->pos;
    return NULL;
}

static int str_dup(struct be_reader *r, redisReply *v, const char *s, size_t n)
{
    v->str = malloc(n + 1);
    if (v->str == NULL)
        return fail(r, "out of memory");
    memcpy(v->str, s, n);
    v->str[n] = '\0';
    v->len = n;
    return 0;
}

static int valid_double(const char *s, size_t n)
{
    char tmp[400];
    if (n == 0 || n >= sizeof(tmp))
        return 0;
    if ((n == 3 && memcmp(s, "inf", 3) == 0) || (n == 4 && memcmp(s, "-inf", 4) == 0) ||
        (n == 3 && memcmp(s, "nan", 3) == 0))
        return 1;
    if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) /* what strtod reads beyond decimals: hex, inf, nan */
        if (s[i] == 'x' || s[i] == 'X' || s[i] == 'n' || s[i] == 'N' || s[i] == 'i' || s[i] == 'I')
            return 0;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    (void)strtod(tmp, &end);
    return end == tmp + n;
}

static int valid_bignum(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '-';
    if (i == n || (s[i] == '0' && n > i + 1))
        return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return !(n == 2 && s[0] == '-' && s[1] == '0');
}

/* A bulk's payload with its CRLF has arrived: checks and terminates it. */
static int bulk_done(struct be_reader *r, redisReply *v)
{
    if (v->str[v->len] != '\r' || v->str[v->len + 1] != '\n')
        return fail(r, "Protocol error: a bulk of %zu bytes does not end with CRLF", v->len);
    v->str[v->len] = '\0';
    if (v->type == BE_REPLY_VERB && (v->len < 4 || v->str[3] != ':'))
        return fail(r, "Protocol error: a verbatim string without its 3-letter format");
    return 0;
}

/* "$<n>" or "=<n>" read: takes what has arrived of the payload. 1 when it is complete. */
static int bulk_start(struct be_reader *r, redisReply *v, long long n)
{
    size_t total = (size_t)n + 2, avail = r->len - r->pos;
    v->len = (size_t)n;
    if (avail >= total) {
        v->str = malloc(total);
        if (v->str == NULL)
            return fail(r, "out of memory");
        memcpy(v->str, r->buf + r->pos, total);
        r->pos += total;
        return bulk_done(r, v) == 0 ? 1 : -1;
    }
    r->bulk_cap = total < READER_BULK_PREALLOC ? total : READER_BULK_PREALLOC;
    if (r->bulk_cap < avail)
        r->bulk_cap = avail;
    v->str = malloc(r->bulk_cap);
    if (v->str == NULL)
        return fail(r, "out of memory");
    memcpy(v->str, r->buf + r->pos, avail);
    r->bulk_got = avail;
    r->pos = r->len;
    r->bulk = v;
    return 0;
}

static int known_type(char c)
{
    return strchr("+-:$*%~>|_,#(=", c) != NULL && c != '\0';
}

static int bad_number(struct be_reader *r, char type, const char *s, size_t n)
{
    return fail(r, "Protocol error: bad %s '%.*s'",
                type == ':' ? "integer" : (type == '$' || type == '=' ? "bulk length" : "count"),
                (int)(n > 40 ? 40 : n), s);
}

/* Reads one line's value (the line is buf[pos, end) and its CRLF). 1 when it completed a
 * value, 0 when it opened an aggregate or a bulk that is still arriving, -1 on error. */
static int read_line(struct be_reader *r, const char *end)
{
    const char *s = r->buf + r->pos + 1;
    size_t n = (size_t)(end - s);
    char type = r->buf[r->pos];
    r->pos = (size_t)(end - r->buf) + 2;
    long long num = 0;
    redisReply *v;
    switch (type) {
    case '+':
    case '-':
        v = node_new(r, type == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR);
        return v == NULL || str_dup(r, v, s, n) != 0 ? -1 : 1;
    case ':':
        if (rd_parse_ll(s, n, &num) != 0)
            return bad_number(r, type, s, n);
        v = node_new(r, REDIS_REPLY_INTEGER);
        if (v == NULL)
            return -1;
        v->integer = num;
        return 1;
    case '$':
    case '=':
        if (rd_parse_ll(s, n, &num) != 0 || num < -1 || (num == -1 && type == '='))
            return bad_number(r, type, s, n);
        if (num > r->bulk_max)
            return fail(r, "Protocol error: a bulk of %lld bytes is over the limit of %lld", num,
                        r->bulk_max);
        v = node_new(r, num == -1     ? REDIS_REPLY_NIL
                        : type == '$' ? REDIS_REPLY_STRING
                                      : BE_REPLY_VERB);
        if (v == NULL)
            return -1;
        return num == -1 ? 1 : bulk_start(r, v, num);
    case '_':
        if (n != 0)
            return fail(r, "Protocol error: a null with bytes after '_'");
        v = node_new(r, REDIS_REPLY_NIL);
        if (v == NULL)
            return -1;
        v->integer = 2;
        return 1;
    case '#':
        if (n != 1 || (s[0] != 't' && s[0] != 'f'))
            return fail(r, "Protocol error: a boolean that is not #t or #f");
        v = node_new(r, BE_REPLY_BOOL);
        if (v == NULL)
            return -1;
        v->integer = s[0] == 't';
        return 1;
    case ',':
    case '(':
        if (type == ',' ? !valid_double(s, n) : !valid_bignum(s, n))
            return fail(r, "Protocol error: bad %s '%.*s'", type == ',' ? "double" : "big number",
                        (int)(n > 40 ? 40 : n), s);
        v = node_new(r, type == ',' ? BE_REPLY_DOUBLE : BE_REPLY_BIGNUM);
        return v == NULL || str_dup(r, v, s, n) != 0 ? -1 : 1;
    default: /* the aggregates: * % ~ > | */
        break;
    }
    if (rd_parse_ll(s, n, &num) != 0 || num < -1 || (num == -1 && type != '*'))
        return bad_number(r, type, s, n);
    int pairs = type == '%' || type == '|';
    if (num > (pairs ? r->elements_max / 2 : r->elements_max))
        return fail(r, "Protocol error: an aggregate of %lld elements is over the limit of %lld",
                    num, r->elements_max);
    static const int types[] = {['*'] = REDIS_REPLY_ARRAY,
                                ['%'] = BE_REPLY_MAP,
                                ['~'] = BE_REPLY_SET,
                                ['>'] = BE_REPLY_PUSH,
                                ['|'] = BE_REPLY_ATTR};
    v = node_new(r, num == -1 ? REDIS_REPLY_NIL : types[(unsigned char)type]);
    if (v == NULL)
        return -1;
    if (num == -1) {
        v->integer = 1; /* a null array, not a null bulk */
        return 1;
    }
    /* An attribute's pairs are followed by the value they annotate (reader.h). */
    unsigned long long count = (unsigned long long)num * (pairs ? 2 : 1) + (type == '|');
    if (count == 0)
        return 1;
    return push_aggregate(r, v, count) == 0 ? 0 : -1;
}

int be_reader_get(struct be_reader *r, redisReply **out)
{
    *out = NULL;
    if (r->err)
        return -1;
    for (;;) {
        int rc;
        if (r->bulk != NULL) {
            long long took = bulk_take(r, r->buf + r->pos, r->len - r->pos);
            if (took < 0)
                return -1;
            r->pos += (size_t)took;
            if (r->bulk_got < r->bulk->len + 2)
                return 0;
            redisReply *v = r->bulk;
            r->bulk = NULL;
            rc = bulk_done(r, v) == 0 ? 1 : -1;
        } else {
            if (r->pos == r->len)
                return 0;
            char type = r->buf[r->pos];
            if (!known_type(type))
                return fail(r, "Protocol error: '%c' (0x%02x) is no reply type",
                            type > 32 && type < 127 ? type : '?', (unsigned char)type);
            const char *end = line_end(r);
            /* The same error however the bytes are cut: the line's content is known to be
             * longer than the limit (without its CRLF, of which a '\r' may have come). */
            size_t content = end != NULL ? (size_t)(end - (r->buf + r->pos)) - 1
                                         : (r->len - r->pos >= 2 ? r->len - r->pos - 2 : 0);
            if (type != '+' && type != '-' && content > BE_READER_LINE_MAX)
                return fail(r, "Protocol error: a '%c' line longer than %d bytes", type,
                            BE_READER_LINE_MAX);
            if (end == NULL)
                return 0;
            rc = read_line(r, end);
        }
        if (rc < 0)
            return -1;
        if (rc == 1 && value_done(r)) {
            *out = r->root;
            r->root = NULL;
            return 0;
        }
    }
}

/* Frees without recursion and without memory of its own: while a node's children are freed, the
 * node's address is kept in the child's integer field (unused in an aggregate). */
void be_reply_free(redisReply *r)
{
    if (r == NULL)
        return;
    if (is_aggregate(r->type))
        r->integer = 0;
    redisReply *cur = r;
    while (cur != NULL) {
        if (is_aggregate(cur->type) && cur->elements > 0) {
            redisReply *child = cur->element[--cur->elements];
            if (child == NULL)
                continue;
            if (is_aggregate(child->type) && child->elements > 0) {
                child->integer = (long long)(intptr_t)cur;
                cur = child;
            } else {
                free(child->element);
                free(child->str);
                free(child);
            }
            continue;
        }
        redisReply *parent = is_aggregate(cur->type) ? (redisReply *)(intptr_t)cur->integer : NULL;
        free(cur->element);
        free(cur->str);
        free(cur);
        cur = parent;
    }
}

static int encode_leaf(const redisReply *r, struct rd_buf *out)
{
    switch (r->type) {
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
    case BE_REPLY_DOUBLE:
    case BE_REPLY_BIGNUM: {
        char t = r->type == REDIS_REPLY_STATUS  ? '+'
                 : r->type == REDIS_REPLY_ERROR ? '-'
                 : r->type == BE_REPLY_DOUBLE   ? ','
                                                : '(';
        if (rd_buf_reserve(out, r->len + 3) != 0)
            return -1;
        out->data[out->len++] = t;
        memcpy(out->data + out->len, r->str, r->len);
        out->len += r->len;
        out->data[out->len++] = '\r';
        out->data[out->len++] = '\n';
        return 0;
    }
    case REDIS_REPLY_INTEGER:
        return rd_resp_int(out, r->integer);
    case REDIS_REPLY_NIL:
        return r->integer == 1   ? rd_resp_array_len(out, -1)
               : r->integer == 2 ? rd_buf_append(out, "_\r\n", 3)
                                 : rd_resp_nil(out);
    case BE_REPLY_BOOL:
        return rd_buf_append(out, r->integer ? "#t\r\n" : "#f\r\n", 4);
    case REDIS_REPLY_STRING:
        return rd_resp_bulk(out, r->str, r->len);
    case BE_REPLY_VERB:
        return rd_resp_blob(out, '=', r->str, r->len);
    default:
        return -1;
    }
}

static int encode_header(const redisReply *r, struct rd_buf *out)
{
    switch (r->type) {
    case REDIS_REPLY_ARRAY:
        return rd_resp_prefix(out, '*', (long long)r->elements);
    case BE_REPLY_SET:
        return rd_resp_prefix(out, '~', (long long)r->elements);
    case BE_REPLY_PUSH:
        return rd_resp_prefix(out, '>', (long long)r->elements);
    case BE_REPLY_MAP:
        return r->elements % 2 ? -1 : rd_resp_prefix(out, '%', (long long)r->elements / 2);
    default: /* BE_REPLY_ATTR */
        return r->elements % 2 == 0 ? -1 : rd_resp_prefix(out, '|', (long long)r->elements / 2);
    }
}

struct encode_frame {
    const redisReply *r;
    size_t next;
};

int be_reply_encode(const redisReply *r, struct rd_buf *out)
{
    if (!is_aggregate(r->type))
        return encode_leaf(r, out);
    struct encode_frame small[32], *stack = small;
    size_t depth = 0, cap = sizeof(small) / sizeof(small[0]);
    int rc = encode_header(r, out);
    if (rc == 0)
        stack[depth++] = (struct encode_frame){r, 0};
    while (rc == 0 && depth > 0) {
        struct encode_frame *f = &stack[depth - 1];
        if (f->next == f->r->elements) {
            depth--;
            continue;
        }
        const redisReply *c = f->r->element[f->next++];
        if (!is_aggregate(c->type)) {
            rc = encode_leaf(c, out);
            continue;
        }
        rc = encode_header(c, out);
        if (rc != 0)
            break;
        if (depth == cap) {
            struct encode_frame *n = malloc(2 * cap * sizeof(*n));
            if (n == NULL) {
                rc = -1;
                break;
            }
            memcpy(n, stack, cap * sizeof(*n));
            if (stack != small)
                free(stack);
            stack = n;
            cap *= 2;
        }
        stack[depth++] = (struct encode_frame){c, 0};
    }
    if (stack != small)
        free(stack);
    return rc;
}
