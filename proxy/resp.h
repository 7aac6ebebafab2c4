/* resp.h: the RESP2 request parser (multibulk and inline), fed bytes, doing no I/O.
 *
 * px_parse() looks at the unread bytes of a client's input buffer and either returns one whole
 * command (PX_PARSE_OK, the bytes consumed), says more bytes are needed (PX_PARSE_AGAIN, nothing
 * consumed, the scan position remembered so the next call resumes), or fails (PX_PARSE_ERR, with
 * a sticky Redis-style message in p->err: the caller replies "-ERR <err>" and closes).
 *
 * A multibulk command is scanned until it is complete in the buffer and only then copied, once,
 * into one allocation owned by the px_cmd, so a large bulk is never copied twice.
 * Limits are Redis's: inline requests and count lines up to PX_INLINE_MAX bytes, bulks up to
 * proto_max_bulk_len, and before AUTH at most PX_UNAUTH_MBULK_MAX arguments of at most
 * PX_UNAUTH_BULK_MAX bytes each.
 */
#ifndef REDRAFT_RESP_H
#define REDRAFT_RESP_H

#include <stddef.h>

#include "common/buf.h"

#define PX_INLINE_MAX       (64 * 1024)
#define PX_UNAUTH_MBULK_MAX 10
#define PX_UNAUTH_BULK_MAX  16384

enum { PX_PARSE_OK = 0, PX_PARSE_AGAIN = 1, PX_PARSE_ERR = -1 };

/* A parsed command. argv[i] is NUL-terminated (argvlen[i] excludes the NUL). One allocation:
 * px_cmd_free releases argv, argvlen and the bytes together. */
struct px_cmd {
    int argc;
    char **argv;
    size_t *argvlen;
};

struct px_parser {
    long long proto_max_bulk_len;
    int unauth; /* apply the pre-AUTH limits */
    /* scan state of a multibulk command not yet complete */
    int in_mbulk;
    size_t scan;          /* bytes of the current command already scanned */
    long long mbulk_left; /* arguments still to scan */
    long long bulk_len;   /* -1: expecting a '$' line */
    long long argc;
    size_t data_bytes;
    const char *err; /* sticky; static string or p->errbuf */
    char errbuf[96];
};

void px_parser_init(struct px_parser *p, long long proto_max_bulk_len);
int px_parse(struct px_parser *p, struct rd_buf *in, struct px_cmd *out);
void px_cmd_free(struct px_cmd *c);

/* Splits an inline line the way redis-cli and Redis's inline protocol do (quotes, escapes).
 * Returns a px_cmd (argc may be 0 for a blank line), or -1 for unbalanced quotes. */
int px_split_inline(const char *line, size_t len, struct px_cmd *out);

/* Builds a px_cmd from an argument vector (copies). 0 or -1. */
int px_cmd_from_argv(struct px_cmd *out, int argc, const char *const *argv, const size_t *argvlen);

#endif
