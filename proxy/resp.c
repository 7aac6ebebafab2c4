#include "proxy/resp.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void px_parser_init(struct px_parser *p, long long proto_max_bulk_len)
{
    memset(p, 0, sizeof(*p));
    p->proto_max_bulk_len = proto_max_bulk_len;
    p->bulk_len = -1;
}

void px_cmd_free(struct px_cmd *c)
{
    free(c->argv); /* argvlen and the bytes live in the same block */
    c->argv = NULL;
    c->argvlen = NULL;
    c->argc = 0;
}

/* One block: argc pointers, argc lengths, then the bytes with a NUL after each argument. */
static int cmd_alloc(struct px_cmd *c, long long argc, size_t data_bytes)
{
    size_t head = (size_t)argc * (sizeof(char *) + sizeof(size_t));
    char *blk = malloc(head + data_bytes + (size_t)argc + 1);
    if (blk == NULL)
        return -1;
    c->argc = 0;
    c->argv = (char **)blk;
    c->argvlen = (size_t *)(blk + (size_t)argc * sizeof(char *));
    return 0;
}

static char *cmd_data(struct px_cmd *c, long long argc)
{
    return (char *)c->argvlen + (size_t)argc * sizeof(size_t);
}

int px_cmd_from_argv(struct px_cmd *out, int argc, const char *const *argv, const size_t *argvlen)
{
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += argvlen[i];
    if (cmd_alloc(out, argc, total) != 0)
        return -1;
    char *d = cmd_data(out, argc);
    for (int i = 0; i < argc; i++) {
        memcpy(d, argv[i], argvlen[i]);
        d[argvlen[i]] = '\0';
        out->argv[i] = d;
        out->argvlen[i] = argvlen[i];
        d += argvlen[i] + 1;
    }
    out->argc = argc;
    return 0;
}

static int fail(struct px_parser *p, const char *msg)
{
    p->err = msg;
    return PX_PARSE_ERR;
}

/* Finds "\r\n"... Redis looks for '\r' and requires the line up to it. */
static const char *find_cr(const char *s, size_t n)
{
    return memchr(s, '\r', n);
}

static void reset_scan(struct px_parser *p)
{
    p->in_mbulk = 0;
    p->scan = 0;
    p->mbulk_left = 0;
    p->bulk_len = -1;
    p->argc = 0;
    p->data_bytes = 0;
}

static int parse_inline(struct px_parser *p, struct rd_buf *in, struct px_cmd *out)
{
    const char *s = rd_buf_rptr(in);
    size_t n = rd_buf_unread(in);
    const char *nl = memchr(s, '\n', n);
    if (nl == NULL) {
        if (n > PX_INLINE_MAX)
            return fail(p, "Protocol error: too big inline request");
        return PX_PARSE_AGAIN;
    }
    size_t linelen = (size_t)(nl - s);
    if (linelen > 0 && s[linelen - 1] == '\r')
        linelen--;
    if (px_split_inline(s, linelen, out) != 0)
        return fail(p, "Protocol error: unbalanced quotes in request");
    rd_buf_consume(in, (size_t)(nl - s) + 1);
    return PX_PARSE_OK;
}

/* Second pass over a complete multibulk command: copy each argument into its block. */
static int copy_mbulk(struct px_parser *p, struct rd_buf *in, struct px_cmd *out)
{
    if (cmd_alloc(out, p->argc, p->data_bytes) != 0)
        return fail(p, "out of memory");
    const char *s = rd_buf_rptr(in);
    const char *cr = find_cr(s, p->scan);
    size_t off = (size_t)(cr - s) + 2; /* after "*<n>\r\n" */
    char *d = cmd_data(out, p->argc);
    for (long long i = 0; i < p->argc; i++) {
        cr = find_cr(s + off, p->scan - off);
        long long len = 0;
        rd_parse_ll(s + off + 1, (size_t)(cr - (s + off + 1)), &len);
        off = (size_t)(cr - s) + 2;
        memcpy(d, s + off, (size_t)len);
        d[len] = '\0';
        out->argv[i] = d;
        out->argvlen[i] = (size_t)len;
        d += len + 1;
        off += (size_t)len + 2;
    }
    out->argc = (int)p->argc;
    rd_buf_consume(in, p->scan);
    reset_scan(p);
    return PX_PARSE_OK;
}

static int parse_mbulk(struct px_parser *p, struct rd_buf *in, struct px_cmd *out)
{
    const char *s = rd_buf_rptr(in);
    size_t n = rd_buf_unread(in);
    if (!p->in_mbulk) {
        const char *cr = find_cr(s, n);
        if (cr == NULL || (size_t)(cr - s) + 1 >= n) {
            if (n > PX_INLINE_MAX)
                return fail(p, "Protocol error: too big mbulk count string");
            return PX_PARSE_AGAIN;
        }
        long long ll;
        if (rd_parse_ll(s + 1, (size_t)(cr - s - 1), &ll) != 0 || ll > INT_MAX)
            return fail(p, "Protocol error: invalid multibulk length");
        if (p->unauth && ll > PX_UNAUTH_MBULK_MAX)
            return fail(p, "Protocol error: unauthenticated multibulk length");
        size_t hdr = (size_t)(cr - s) + 2;
        if (ll <= 0) { /* "*0" and "*-1" are empty: skip them as Redis does */
            rd_buf_consume(in, hdr);
            return PX_PARSE_AGAIN;
        }
        p->in_mbulk = 1;
        p->scan = hdr;
        p->mbulk_left = ll;
        p->argc = ll;
        p->bulk_len = -1;
        p->data_bytes = 0;
    }
    while (p->mbulk_left > 0) {
        if (p->bulk_len < 0) {
            if (p->scan >= n)
                return PX_PARSE_AGAIN;
            const char *line = s + p->scan;
            size_t avail = n - p->scan;
            const char *cr = find_cr(line, avail);
            if (cr == NULL || (size_t)(cr - line) + 1 >= avail) {
                if (avail > PX_INLINE_MAX)
                    return fail(p, "Protocol error: too big bulk count string");
                return PX_PARSE_AGAIN;
            }
            if (line[0] != '$') {
                snprintf(p->errbuf, sizeof(p->errbuf), "Protocol error: expected '$', got '%c'",
                         line[0]);
                return fail(p, p->errbuf);
            }
            long long ll;
            if (rd_parse_ll(line + 1, (size_t)(cr - line - 1), &ll) != 0 || ll < 0 ||
                ll > p->proto_max_bulk_len)
                return fail(p, "Protocol error: invalid bulk length");
            if (p->unauth && ll > PX_UNAUTH_BULK_MAX)
                return fail(p, "Protocol error: unauthenticated bulk length");
            p->bulk_len = ll;
            p->scan += (size_t)(cr - line) + 2;
        }
        /* The bulk and its trailing CRLF (not checked, as Redis does not check it). */
        if (n - p->scan < (size_t)p->bulk_len + 2) {
            /* Make sure the buffer can hold the whole bulk so the caller reads it in. */
            if (rd_buf_reserve(in, (size_t)p->bulk_len + 2 - (n - p->scan)) != 0)
                return fail(p, "out of memory");
            return PX_PARSE_AGAIN;
        }
        p->scan += (size_t)p->bulk_len + 2;
        p->data_bytes += (size_t)p->bulk_len;
        p->bulk_len = -1;
        p->mbulk_left--;
    }
    return copy_mbulk(p, in, out);
}

int px_parse(struct px_parser *p, struct rd_buf *in, struct px_cmd *out)
{
    if (p->err != NULL)
        return PX_PARSE_ERR;
    for (;;) {
        if (rd_buf_unread(in) == 0)
            return PX_PARSE_AGAIN;
        int rc;
        if (p->in_mbulk || rd_buf_rptr(in)[0] == '*') {
            size_t before = rd_buf_unread(in);
            rc = parse_mbulk(p, in, out);
            /* An empty multibulk consumed its header: look at what follows. */
            if (rc == PX_PARSE_AGAIN && !p->in_mbulk && rd_buf_unread(in) < before)
                continue;
        } else {
            rc = parse_inline(p, in, out);
            if (rc == PX_PARSE_OK && out->argc == 0) {
                px_cmd_free(out);
                continue; /* blank line */
            }
        }
        return rc;
    }
}

static int hex_val(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Two passes: the first validates and measures, the second fills the block. */
static int split_pass(const char *line, size_t len, struct px_cmd *out, int *argc_out,
                      size_t *bytes_out)
{
    size_t i = 0;
    int argc = 0;
    size_t bytes = 0;
    char *d = out ? cmd_data(out, *argc_out) : NULL;
    for (;;) {
        while (i < len && isspace((unsigned char)line[i]))
            i++;
        if (i >= len || line[i] == '\0')
            break; /* Redis splits a C string: a NUL ends the line */
        int inq = 0, insq = 0;
        char *start = d;
        size_t alen = 0;
        for (;;) {
            char ch;
            if (inq) {
                if (i >= len)
                    return -1;
                if (line[i] == '\\' && i + 3 < len && line[i + 1] == 'x' &&
                    hex_val(line[i + 2]) >= 0 && hex_val(line[i + 3]) >= 0) {
                    ch = (char)(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 4;
                } else if (line[i] == '\\' && i + 1 < len) {
                    i++;
                    switch (line[i]) {
                    case 'n':
                        ch = '\n';
                        break;
                    case 'r':
                        ch = '\r';
                        break;
                    case 't':
                        ch = '\t';
                        break;
                    case 'b':
                        ch = '\b';
                        break;
                    case 'a':
                        ch = '\a';
                        break;
                    default:
                        ch = line[i];
                        break;
                    }
                    i++;
                } else if (line[i] == '"') {
                    /* closing quote must be followed by a space or the end */
                    if (i + 1 < len && !isspace((unsigned char)line[i + 1]))
                        return -1;
                    i++;
                    break;
                } else {
                    ch = line[i++];
                }
            } else if (insq) {
                if (i >= len)
                    return -1;
                if (line[i] == '\\' && i + 1 < len && line[i + 1] == '\'') {
                    ch = '\'';
                    i += 2;
                } else if (line[i] == '\'') {
                    if (i + 1 < len && !isspace((unsigned char)line[i + 1]))
                        return -1;
                    i++;
                    break;
                } else {
                    ch = line[i++];
                }
            } else {
                /* An unquoted argument ends only at these, as in Redis (not at \v or \f). */
                if (i >= len || line[i] == ' ' || line[i] == '\n' || line[i] == '\r' ||
                    line[i] == '\t' || line[i] == '\0')
                    break;
                if (line[i] == '"') {
                    inq = 1;
                    i++;
                    continue;
                }
                if (line[i] == '\'') {
                    insq = 1;
                    i++;
                    continue;
                }
                ch = line[i++];
            }
            if (d)
                *d++ = ch;
            alen++;
        }
        if (d) {
            *d++ = '\0';
            out->argv[argc] = start;
            out->argvlen[argc] = alen;
        }
        argc++;
        bytes += alen;
    }
    if (!out) {
        *argc_out = argc;
        *bytes_out = bytes;
    }
    return 0;
}

int px_split_inline(const char *line, size_t len, struct px_cmd *out)
{
    int argc;
    size_t bytes;
    if (split_pass(line, len, NULL, &argc, &bytes) != 0)
        return -1;
    if (cmd_alloc(out, argc, bytes) != 0)
        return -1;
    split_pass(line, len, out, &argc, &bytes);
    out->argc = argc;
    return 0;
}
