/* reader.h: redraft's byte-fed reader of Redis replies (RESP2, and RESP3's types), and the
 * encoder that writes a reply back as the bytes it came as.
 *
 * Why not hiredis's reader: hiredis 0.14 refuses replies nested deeper than 7 levels, and a Lua
 * script (or an EXEC around one) can return any depth. This reader keeps its place in an
 * explicit, heap-allocated stack, so depth is bounded by memory only, and nothing here recurses.
 *
 * Use: be_reader_feed the bytes as they arrive, then call be_reader_get until it gives no more
 * replies. The reader does no I/O. Sizes the peer declares are checked against named limits and
 * never allocated up front: a bulk's buffer and an aggregate's element array grow with the bytes
 * that actually arrive (geometrically, so a large bulk in many pieces is copied a bounded number
 * of times). A protocol error is sticky: every later call fails with the same errstr.
 *
 * Replies are hiredis's public struct redisReply, allocated as hiredis 0.14.1's freeReplyObject
 * frees them (every node, its str and its element array with malloc), so code written against
 * hiredis's replies reads them unchanged. The RESP2 types keep hiredis's numbers; a null array
 * ("*-1") is REDIS_REPLY_NIL with integer = 1 (a null bulk "$-1" has integer = 0) and RESP3's
 * null "_" has integer = 2, so be_reply_encode gives each back as it came. RESP3's types take
 * hiredis 1.x's numbers (BE_REPLY_*); freeReplyObject of 0.14 does not know them, so free with
 * be_reply_free, which knows every type and does not recurse.
 *
 * RESP3 details: a double ("," BE_REPLY_DOUBLE), a big number ("(" BE_REPLY_BIGNUM) and a
 * verbatim string ("=" BE_REPLY_VERB, str is the whole payload "txt:...") keep their bytes in str;
 * a boolean ("#") has integer 0 or 1; a map ("%") has 2n elements, key then value; a set ("~")
 * and a push (">") are arrays of their own type. An attribute ("|", BE_REPLY_ATTR) is a node of
 * 2n + 1 elements: the attribute's n key/value pairs, then the reply it annotates, so that it
 * counts as one element where it appears. Not read: streamed aggregates ("*?") and blob errors
 * ("!"), which Redis 7.0 never sends; they are protocol errors.
 */
#ifndef REDRAFT_READER_H
#define REDRAFT_READER_H

#include <hiredis/hiredis.h>
#include <stddef.h>

struct redisReply;
struct rd_buf;

/* RESP3 types, numbered as in hiredis 1.x (the RESP2 ones are REDIS_REPLY_* of hiredis 0.14). */
#define BE_REPLY_DOUBLE 7
#define BE_REPLY_BOOL   8
#define BE_REPLY_MAP    9
#define BE_REPLY_SET    10
#define BE_REPLY_ATTR   11
#define BE_REPLY_PUSH   12
#define BE_REPLY_BIGNUM 13
#define BE_REPLY_VERB   14

/* Named limits (defaults; a reader's own copies may be lowered, as tests do). */
#define BE_READER_BULK_MAX     (1LL << 40) /* bytes of one bulk or verbatim string */
#define BE_READER_ELEMENTS_MAX (1LL << 32) /* elements of one aggregate */
#define BE_READER_LINE_MAX     (1 << 16)   /* bytes of a length, integer, double... line */

struct be_reader_frame {
    struct redisReply *r;
    unsigned long long left; /* elements still to come */
    size_t cap;              /* of r->element */
};

struct be_reader {
    char *buf; /* unparsed bytes are buf[pos, len) */
    size_t len, pos, cap;
    size_t scanned; /* bytes after pos already searched for the line's end */
    struct be_reader_frame *stack;
    size_t depth, stack_cap;
    struct redisReply *root;   /* the reply being built (owned), NULL between replies */
    struct redisReply *bulk;   /* a bulk whose payload is still arriving, or NULL */
    size_t bulk_got, bulk_cap; /* bytes of payload + CRLF in bulk->str, its allocation */
    long long bulk_max;        /* limits, BE_READER_* by default */
    long long elements_max;
    int err; /* sticky: 0, or -1 with errstr */
    char errstr[128];
};

void be_reader_init(struct be_reader *r);
/* Frees the buffer and any half-read reply; the reader may be initialised again. */
void be_reader_free(struct be_reader *r);
/* Forgets everything fed (and the error): as new. */
void be_reader_reset(struct be_reader *r);
/* Appends n bytes. 0, or -1 (out of memory, or the sticky error). */
int be_reader_feed(struct be_reader *r, const char *p, size_t n);
/* The next complete reply, if there is one: 0 with *out set (the caller owns it; free it with
 * be_reply_free), 0 with *out = NULL when more bytes are needed, or -1 on a protocol error (or
 * out of memory) with errstr set; the error is sticky. */
int be_reader_get(struct be_reader *r, struct redisReply **out);

/* Frees a reply of this reader (any type, any depth) without recursion. NULL is a no-op. */
void be_reply_free(struct redisReply *r);

/* Appends the reply as RESP: exactly the bytes it was read from. 0, or -1 (out of memory, or a
 * type it does not know). */
int be_reply_encode(const struct redisReply *r, struct rd_buf *out);

#endif
