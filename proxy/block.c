/* block.c: blocking commands (see block.h and docs/blocking.md). */
#include "proxy/block.h"

#include <errno.h>
#include <ev.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/apply.h"
#include "backend/entry.h"
#include "backend/link.h"
#include "common/log.h"
#include "proxy/client.h"
#include "proxy/keys.h"
#include "proxy/route.h"
#include "raftlog/node.h"
#include "raftlog/raft.h"

/* ---- pure helpers ---- */

static int is_word(const char *arg, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(arg, word, len) == 0;
}

/* XREAD/XREADGROUP options, parsed as xreadCommand does: the last BLOCK's argument, whether a
 * COUNT is given, and where the keys start (0: no STREAMS, which Redis refuses). */
struct xread_opts {
    int block_arg, count_given, streams_arg;
};

static void xread_options(int argc, const char *const *argv, const size_t *argvlen,
                          struct xread_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        int more = argc - i - 1;
        if (is_word(argv[i], argvlen[i], "block") && more) {
            o->block_arg = ++i;
        } else if (is_word(argv[i], argvlen[i], "count") && more) {
            o->count_given = 1;
            i++;
        } else if (is_word(argv[i], argvlen[i], "streams") && more) {
            o->streams_arg = i + 1;
            return;
        } else if (is_word(argv[i], argvlen[i], "group") && more >= 2) {
            i += 2;
        } else if (!is_word(argv[i], argvlen[i], "noack")) {
            return; /* a syntax error: Redis answers it */
        }
    }
}

void px_blk_classify(const char *name, int argc, const char *const *argv, const size_t *argvlen,
                     struct px_blk_spec *out)
{
    /* Where the timeout of each blocking pop is (arity is checked). */
    static const struct {
        const char *name;
        int at; /* >0 index, <0 from the end */
    } pops[] = {
        {"blpop", -1},     {"brpop", -1}, {"bzpopmin", -1}, {"bzpopmax", -1},
        {"brpoplpush", 3}, {"blmove", 5}, {"blmpop", 1},    {"bzmpop", 1},
    };
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(pops) / sizeof(pops[0]); i++) {
        if (strcmp(name, pops[i].name) != 0)
            continue;
        int at = pops[i].at > 0 ? pops[i].at : argc + pops[i].at;
        if (at <= 0 || at >= argc)
            return;
        out->kind = PX_BLK_POP;
        out->timeout_arg = at;
        return;
    }
    if (!strcmp(name, "wait") && argc == 3) {
        out->kind = PX_BLK_WAIT;
        out->timeout_arg = 2;
        out->unit_ms = 1;
        return;
    }
    int group = !strcmp(name, "xreadgroup");
    if (!group && strcmp(name, "xread") != 0)
        return;
    struct xread_opts o;
    xread_options(argc, argv, argvlen, &o);
    out->count_given = o.count_given;
    if (o.block_arg == 0 || o.streams_arg == 0)
        return;
    out->kind = group ? PX_BLK_XREADGROUP : PX_BLK_XREAD;
    out->timeout_arg = o.block_arg;
    out->unit_ms = 1;
}

int px_blk_timeout_ms(const char *arg, size_t len, int unit_ms, long long *ms, const char **err)
{
    long long v;
    if (unit_ms) {
        if (rd_parse_ll(arg, len, &v) != 0) {
            *err = "ERR timeout is not an integer or out of range";
            return -1;
        }
    } else {
        /* string2ld: no leading space, nothing after the number, not NaN. */
        char buf[5 * 1024 + 1];
        char *end;
        if (len == 0 || len >= sizeof(buf) || arg[0] == ' ' || (arg[0] >= '\t' && arg[0] <= '\r')) {
            *err = "ERR timeout is not a float or out of range";
            return -1;
        }
        memcpy(buf, arg, len);
        buf[len] = '\0';
        errno = 0;
        long double f = strtold(buf, &end);
        if ((size_t)(end - buf) != len || isnan(f) || (errno == ERANGE && fabsl(f) > 1)) {
            *err = "ERR timeout is not a float or out of range";
            return -1;
        }
        long double t = ceill(f * 1000.0L);
        /* Redis converts without a bound; beyond centuries it is "for ever" in practice. */
        if (t > 1e15L)
            t = 1e15L;
        v = t < -1e15L ? -1 : (long long)t;
    }
    if (v < 0) {
        *err = "ERR timeout is negative";
        return -1;
    }
    *ms = v;
    return 0;
}

int px_blk_is_null(const char *resp, size_t len)
{
    return len == 5 && (resp[0] == '$' || resp[0] == '*') && memcmp(resp + 1, "-1\r\n", 4) == 0;
}

int px_blk_rewrite_xread(int argc, const char *const *argv, const size_t *argvlen, int drop_block,
                         int add_count, const char **out_argv, size_t *out_len)
{
    struct xread_opts o;
    xread_options(argc, argv, argvlen, &o);
    int n = 0;
    out_argv[n] = argv[0];
    out_len[n++] = argvlen[0];
    if (add_count) {
        out_argv[n] = "COUNT";
        out_len[n++] = 5;
        out_argv[n] = PX_BLK_XREAD_COUNT;
        out_len[n++] = strlen(PX_BLK_XREAD_COUNT);
    }
    /* The options are walked as xread_options walks them, so that only a real BLOCK option
     * goes (a COUNT or GROUP argument may be the word "block"). */
    int i = 1;
    while (drop_block && i < argc && o.streams_arg > 0 && i < o.streams_arg) {
        int more = argc - i - 1;
        int take = 1;
        if (is_word(argv[i], argvlen[i], "block") && more) {
            i += 2;
            continue;
        } else if (is_word(argv[i], argvlen[i], "count") && more) {
            take = 2;
        } else if (is_word(argv[i], argvlen[i], "group") && more >= 2) {
            take = 3;
        } else if (is_word(argv[i], argvlen[i], "streams") && more) {
            break;
        }
        for (int j = 0; j < take; j++, i++) {
            out_argv[n] = argv[i];
            out_len[n++] = argvlen[i];
        }
    }
    for (; i < argc; i++) {
        out_argv[n] = argv[i];
        out_len[n++] = argvlen[i];
    }
    return n;
}

/* ---- the server's state ---- */

/* One request parked on one key (by the key's hash: two keys with one hash only cost a
 * spurious retry). */
struct keynode {
    uint64_t id;
    struct keynode *next;
};

struct wake {
    uint64_t seq, id;
};

struct px_blocks {
    struct px_server *s;
    struct rd_map parked; /* request id -> parked px_req (a blocking pop or stream read) */
    struct rd_map bykey;  /* hash of (db, key) -> struct keynode list */
    struct rd_map waits;  /* request id -> px_req of a WAIT */
    size_t n_every;       /* parked requests whose keys are unknown: any write wakes them */
    struct wake *wake;    /* woken in the batch being applied */
    size_t nwake, wake_cap;
    uint64_t gen; /* applied batches seen: a request is woken at most once per batch */
    uint64_t seq; /* park order */
    ev_timer timer;
    int timer_on;
    double timer_at;
};

/* A blocking request's state (owned by the request). */
struct px_blk {
    enum px_blk_kind kind;
    double deadline; /* 0: for ever */
    uint64_t seq;    /* when it first parked: retries go in this order (FIFO) */
    uint64_t gen;    /* last batch generation it was woken in (+1; 0: never) */
    int parked;
    int every;
    int unblock;     /* CLIENT UNBLOCK while a try was in flight: 1 TIMEOUT, 2 ERROR */
    int count_given; /* stream reads: COUNT given (else COUNT 1000 is added once parked) */
    uint64_t *hashes;
    size_t nh, hcap;
    int *dollar; /* XREAD: argv positions of `$` IDs, resolved in this order */
    int ndollar, nresolved;
    /* WAIT */
    uint64_t wait_index;
    long long wait_n, wait_known;
    uint64_t query_id;
    double query_at;
};

#define WAIT_QUERY_RESEND_S 1.0

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

struct px_blocks *px_blocks_new(struct px_server *s)
{
    struct px_blocks *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->s = s;
    rd_map_init(&b->parked);
    rd_map_init(&b->bykey);
    rd_map_init(&b->waits);
    ev_timer_init(&b->timer, timer_cb, 0, 0);
    b->timer.data = b;
    return b;
}

void px_blocks_free(struct px_blocks *b)
{
    if (b == NULL)
        return;
    ev_timer_stop(b->s->loop, &b->timer);
    for (size_t i = 0; i < b->bykey.cap; i++) {
        struct keynode *k = b->bykey.slots[i].key ? b->bykey.slots[i].val : NULL;
        while (k) {
            struct keynode *next = k->next;
            free(k);
            k = next;
        }
    }
    rd_map_free(&b->parked);
    rd_map_free(&b->bykey);
    rd_map_free(&b->waits);
    free(b->wake);
    free(b);
}

size_t px_block_count(const struct px_server *s)
{
    return s->blocks ? s->blocks->parked.count + s->blocks->waits.count : 0;
}

void px_block_req_free(struct px_req *r)
{
    if (r->blk == NULL)
        return;
    free(r->blk->hashes);
    free(r->blk->dollar);
    free(r->blk);
    r->blk = NULL;
}

int px_block_parked(const struct px_client *c)
{
    return c->blocked != NULL && c->blocked->blk != NULL &&
           (c->blocked->blk->parked || c->blocked->blk->kind == PX_BLK_WAIT);
}

/* The ids of a map's entries (the map may change while they are handled). */
static uint64_t *map_ids(const struct rd_map *m, size_t *n)
{
    *n = 0;
    uint64_t *ids = malloc((m->count ? m->count : 1) * sizeof(*ids));
    if (ids == NULL)
        return NULL;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != 0)
            ids[(*n)++] = m->slots[i].key;
    return ids;
}

/* ---- time ---- */

static void timer_arm(struct px_blocks *b, double at)
{
    if (at <= 0 || (b->timer_on && at >= b->timer_at))
        return;
    double now = ev_now(b->s->loop);
    ev_timer_stop(b->s->loop, &b->timer);
    ev_timer_set(&b->timer, at > now ? at - now : 0.0005, 0);
    ev_timer_start(b->s->loop, &b->timer);
    b->timer_on = 1;
    b->timer_at = at;
}

/* ---- keys ---- */

static uint64_t key_hash(int64_t db, const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 8; i++) {
        h ^= (uint64_t)(((uint64_t)db >> (8 * i)) & 0xff);
        h *= 1099511628211ULL;
    }
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

static void collect_key(void *ctx, int64_t db, const char *key, size_t len)
{
    struct px_blk *k = ctx;
    if (k->nh == k->hcap) {
        size_t cap = k->hcap ? k->hcap * 2 : 4;
        uint64_t *n = realloc(k->hashes, cap * sizeof(*n));
        if (n == NULL) {
            k->every = 1; /* cannot list them: any write wakes it */
            return;
        }
        k->hashes = n;
        k->hcap = cap;
    }
    k->hashes[k->nh++] = key_hash(db, key, len);
}

static void keynode_del(struct px_blocks *b, uint64_t h, uint64_t id)
{
    struct keynode *head = rd_map_get(&b->bykey, h), **pp = &head;
    while (*pp) {
        if ((*pp)->id == id) {
            struct keynode *k = *pp;
            *pp = k->next;
            free(k);
            break;
        }
        pp = &(*pp)->next;
    }
    if (head)
        rd_map_put(&b->bykey, h, head);
    else
        rd_map_del(&b->bykey, h);
}

static void unpark(struct px_blocks *b, struct px_req *r)
{
    struct px_blk *k = r->blk;
    if (!k->parked)
        return;
    rd_map_del(&b->parked, r->id);
    for (size_t i = 0; i < k->nh; i++)
        keynode_del(b, k->hashes[i], r->id);
    if (k->every)
        b->n_every--;
    k->parked = 0;
    if (b->parked.count == 0)
        be_apply_set_watch(b->s->apply, 0);
}

static int park(struct px_blocks *b, struct px_req *r)
{
    struct px_blk *k = r->blk;
    if (k->nh == 0 && !k->every) {
        struct px_keys_span span;
        px_cmd_keys(r->def, r->cmd.argc, (const char *const *)r->cmd.argv, r->cmd.argvlen, r->db,
                    collect_key, k, &span);
        if (span.scope != PX_KEYS_LISTED || k->nh == 0)
            k->every = 1;
    }
    if (rd_map_put(&b->parked, r->id, r) != 0)
        return -1;
    for (size_t i = 0; i < k->nh; i++) {
        struct keynode *n = malloc(sizeof(*n));
        if (n == NULL) {
            k->every = 1;
            continue;
        }
        n->id = r->id;
        n->next = rd_map_get(&b->bykey, k->hashes[i]);
        if (rd_map_put(&b->bykey, k->hashes[i], n) != 0) {
            free(n);
            k->every = 1;
        }
    }
    if (k->every)
        b->n_every++;
    if (k->seq == 0)
        k->seq = ++b->seq;
    k->parked = 1;
    be_apply_set_watch(b->s->apply, 1);
    timer_arm(b, k->deadline);
    return 0;
}

/* ---- answers and retries ---- */

static void answer(struct px_req *r, const char *resp)
{
    rd_buf_reset(&r->reply);
    if (rd_buf_append(&r->reply, resp, strlen(resp)) != 0)
        px_reply_err(r, "ERR out of memory");
    px_req_done(r);
}

static long long wait_count(struct px_server *s, const struct px_blk *k);

/* The reply of a request let go by its timeout or by CLIENT UNBLOCK (how: 1 TIMEOUT, 2 ERROR). */
static void answer_unblocked(struct px_server *s, struct px_req *r, int how)
{
    if (how == 2) {
        rd_buf_reset(&r->reply);
        px_reply_err(r, PX_BLK_UNBLOCKED_ERR);
        px_req_done(r);
    } else if (r->blk->kind == PX_BLK_WAIT) {
        rd_buf_reset(&r->reply);
        rd_resp_int(&r->reply, wait_count(s, r->blk));
        px_req_done(r);
    } else {
        answer(r, PX_BLK_TIMEOUT_REPLY);
    }
}

/* Proposes (or reads) a parked request again. r may be finished and gone when this returns. */
static void retry(struct px_server *s, struct px_req *r)
{
    if (r->blk->kind == PX_BLK_XREAD) {
        px_route_read_again(s, r);
        return;
    }
    /* A new id: a late reply to an earlier try can never be taken for this one's. */
    r->id = px_new_reqid(s);
    rd_buf_reset(&r->entry);
    /* While it is pending, SESSION and LINEARIZABLE reads that arrive on this node wait for
     * its answer, as Redis serves blocked clients before it runs the next command: a read after
     * the wake-up sees the pop (route.c counts it in the pending list: retry_ahead). */
    r->retry_seq = ++s->retry_seq;
    if (px_route_write(s, r) != 0)
        px_req_done(r);
}

static int cmd_replace(struct px_req *r, int argc, const char *const *argv, const size_t *argvlen)
{
    struct px_cmd n;
    if (px_cmd_from_argv(&n, argc, argv, argvlen) != 0)
        return -1;
    px_cmd_free(&r->cmd);
    r->cmd = n;
    return 0;
}

/* r's XREAD/XREADGROUP through px_blk_rewrite_xread. 0 or -1 (no memory: r unchanged). */
static int rewrite_xread(struct px_req *r, int drop_block, int add_count)
{
    int argc = r->cmd.argc;
    const char **argv = malloc((size_t)(argc + 2) * sizeof(*argv));
    size_t *len = malloc((size_t)(argc + 2) * sizeof(*len));
    int rc = -1;
    if (argv && len) {
        int n = px_blk_rewrite_xread(argc, (const char *const *)r->cmd.argv, r->cmd.argvlen,
                                     drop_block, add_count, argv, len);
        rc = cmd_replace(r, n, argv, len);
    }
    free(argv);
    free(len);
    return rc;
}

/* Stream reads that parked are served as Redis serves a blocked one: COUNT 1000 unless a
 * COUNT was given. */
static int add_default_count(struct px_req *r)
{
    int rc = rewrite_xread(r, 0, 1);
    for (int i = r->blk->nresolved; rc == 0 && i < r->blk->ndollar; i++)
        r->blk->dollar[i] += 2; /* after the COUNT 1000 put in front */
    return rc;
}

int px_block_on_null(struct px_server *s, struct px_req *r)
{
    struct px_blk *k = r->blk;
    if (r->c->closed)
        return 0;
    if (k->unblock) {
        answer_unblocked(s, r, k->unblock);
        return 1;
    }
    if (k->deadline > 0 && ev_now(s->loop) >= k->deadline) {
        answer(r, PX_BLK_TIMEOUT_REPLY);
        return 1;
    }
    if ((k->kind == PX_BLK_XREAD || k->kind == PX_BLK_XREADGROUP) && !k->count_given) {
        if (add_default_count(r) != 0) {
            px_reply_err(r, "ERR out of memory");
            px_req_done(r);
            return 1;
        }
        k->count_given = 1;
    }
    r->state = REQ_INFLIGHT;
    if (park(s->blocks, r) != 0) {
        unpark(s->blocks, r);
        px_reply_err(r, "ERR out of memory");
        px_req_done(r);
    }
    return 1;
}

/* Answers a parked XREADGROUP whose retry got NOGROUP as Redis 7.0 answers a blocked one: the
 * stream key is gone, or only its group. EXISTS on the local Redis, right after the apply that
 * gave the error, tells which. */
static void nogroup_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct px_server *s = px_the_server();
    struct px_req *r = s ? rd_map_del(&s->inflight, (uint64_t)(uintptr_t)privdata) : NULL;
    if (r == NULL)
        return;
    r->c->inflight--;
    const redisReply *rep = reply;
    struct xread_opts o;
    xread_options(r->cmd.argc, (const char *const *)r->cmd.argv, r->cmd.argvlen, &o);
    long long nkeys = o.streams_arg > 0 ? (r->cmd.argc - o.streams_arg) / 2 : 0;
    rd_buf_reset(&r->reply);
    if (rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer == nkeys)
        px_reply_err(r, "NOGROUP the consumer group this client was blocked on no longer exists");
    else
        px_reply_err(r, "UNBLOCKED the stream key no longer exists");
    px_req_done(r);
}

int px_block_on_retry_error(struct px_server *s, struct px_req *r, const char *err, size_t len)
{
    struct px_blk *k = r->blk;
    if (k->seq == 0 || r->c->closed)
        return 0; /* the first try: Redis's own error, as Redis gives it */
    int wrongtype = len >= 9 && !memcmp(err, "WRONGTYPE", 9);
    if (k->kind != PX_BLK_XREADGROUP) {
        /* Redis leaves a client blocked on a key that now holds another type. A move's
         * WRONGTYPE is its destination's once its source has data, which Redis answers; it
         * cannot be told here from a source that changed type, so it is answered too. */
        int move = !strcmp(r->def->name, "blmove") || !strcmp(r->def->name, "brpoplpush");
        if (!wrongtype || move)
            return 0;
        return px_block_on_null(s, r);
    }
    if (wrongtype) {
        rd_buf_reset(&r->reply);
        px_reply_err(r, "UNBLOCKED the stream key no longer exists");
        px_req_done(r);
        return 1;
    }
    if (len < 7 || memcmp(err, "NOGROUP", 7) != 0)
        return 0;
    struct xread_opts o;
    xread_options(r->cmd.argc, (const char *const *)r->cmd.argv, r->cmd.argvlen, &o);
    int nkeys = o.streams_arg > 0 ? (r->cmd.argc - o.streams_arg) / 2 : 0;
    if (nkeys <= 0 || !s->backend_ready || be_link_select(s->link, r->db) != 0)
        return 0;
    const char **argv = malloc((size_t)(nkeys + 1) * sizeof(*argv));
    size_t *argvlen = malloc((size_t)(nkeys + 1) * sizeof(*argvlen));
    int ok = argv != NULL && argvlen != NULL && rd_map_put(&s->inflight, r->id, r) == 0;
    if (ok) {
        argv[0] = "EXISTS";
        argvlen[0] = 6;
        for (int i = 0; i < nkeys; i++) {
            argv[i + 1] = r->cmd.argv[o.streams_arg + i];
            argvlen[i + 1] = r->cmd.argvlen[o.streams_arg + i];
        }
        ok = be_link_send_argv(s->link, nkeys + 1, argv, argvlen, nogroup_cb,
                               (void *)(uintptr_t)r->id) == 0;
        if (!ok)
            rd_map_del(&s->inflight, r->id);
    }
    free(argv);
    free(argvlen);
    if (!ok)
        return 0;
    r->c->inflight++;
    return 1;
}

/* ---- dispatch ---- */

/* XREAD: leaves BLOCK out (the local Redis must never block the link the applies use) and
 * notes where its `$` IDs are. */
static int xread_prepare(struct px_req *r, struct px_blk *k)
{
    if (rewrite_xread(r, 1, 0) != 0)
        return -1;
    struct xread_opts o;
    xread_options(r->cmd.argc, (const char *const *)r->cmd.argv, r->cmd.argvlen, &o);
    int nkeys = o.streams_arg > 0 ? (r->cmd.argc - o.streams_arg) / 2 : 0;
    for (int i = o.streams_arg + nkeys; nkeys > 0 && i < r->cmd.argc; i++) {
        if (r->cmd.argvlen[i] != 1 || r->cmd.argv[i][0] != '$')
            continue;
        int *d = realloc(k->dollar, (size_t)(k->ndollar + 1) * sizeof(*d));
        if (d == NULL)
            return -1;
        k->dollar = d;
        k->dollar[k->ndollar++] = i;
    }
    return 0;
}

int px_block_prepare(struct px_server *s, struct px_req *r)
{
    if (r->blk != NULL)
        return 0; /* dispatched again after waiting for the client's earlier requests */
    struct px_blk_spec sp;
    px_blk_classify(r->def->name, r->cmd.argc, (const char *const *)r->cmd.argv, r->cmd.argvlen,
                    &sp);
    if (sp.kind == PX_BLK_NONE || sp.kind == PX_BLK_WAIT)
        return 0;
    long long ms;
    const char *err;
    if (px_blk_timeout_ms(r->cmd.argv[sp.timeout_arg], r->cmd.argvlen[sp.timeout_arg], sp.unit_ms,
                          &ms, &err) != 0) {
        if (sp.kind != PX_BLK_XREAD)
            return 0; /* Redis gives the same error on the first try */
        px_reply_err(r, "%s", err);
        return -1;
    }
    struct px_blk *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        px_reply_err(r, "ERR out of memory");
        return -1;
    }
    k->kind = sp.kind;
    k->count_given = sp.count_given;
    k->deadline = ms > 0 ? ev_now(s->loop) + (double)ms / 1000.0 : 0;
    r->blk = k;
    if (k->kind == PX_BLK_XREAD && xread_prepare(r, k) != 0) {
        px_reply_err(r, "ERR out of memory");
        return -1;
    }
    r->c->blocked = r;
    return 0;
}

/* ---- XREAD's `$` ---- */

/* XINFO STREAM's last-generated-id; a missing stream is 0-0, as XREAD takes it. */
static void xinfo_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct px_server *s = px_the_server();
    redisReply *rep = reply;
    struct px_req *r = s ? rd_map_get(&s->inflight, (uint64_t)(uintptr_t)privdata) : NULL;
    if (r == NULL || r->blk == NULL || rep == NULL || r->blk->nresolved >= r->blk->ndollar)
        return;
    struct px_blk *k = r->blk;
    int pos = k->dollar[k->nresolved++];
    const char *id = NULL;
    size_t idlen = 0;
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "WRONGTYPE", 9) != 0) {
        id = "0-0";
        idlen = 3;
    } else if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < rep->elements; i += 2) {
            const redisReply *f = rep->element[i], *v = rep->element[i + 1];
            if (f->type == REDIS_REPLY_STRING && !strcmp(f->str, "last-generated-id") &&
                v->type == REDIS_REPLY_STRING) {
                id = v->str;
                idlen = v->len;
            }
        }
    }
    if (id == NULL)
        return; /* a wrong type: the read answers WRONGTYPE and never parks */
    const char **argv = malloc((size_t)r->cmd.argc * sizeof(*argv));
    size_t *len = malloc((size_t)r->cmd.argc * sizeof(*len));
    if (argv && len) {
        for (int i = 0; i < r->cmd.argc; i++) {
            argv[i] = i == pos ? id : r->cmd.argv[i];
            len[i] = i == pos ? idlen : r->cmd.argvlen[i];
        }
        if (cmd_replace(r, r->cmd.argc, argv, len) != 0)
            k->every = 1; /* stays `$`: it can only miss entries, never return old ones */
    }
    free(argv);
    free(len);
}

int px_block_before_read(struct px_server *s, struct px_req *r)
{
    struct px_blk *k = r->blk;
    if (k == NULL || k->nresolved >= k->ndollar)
        return 0;
    struct xread_opts o;
    xread_options(r->cmd.argc, (const char *const *)r->cmd.argv, r->cmd.argvlen, &o);
    int nkeys = (r->cmd.argc - o.streams_arg) / 2;
    for (int i = k->nresolved; i < k->ndollar; i++) {
        int key = k->dollar[i] - nkeys; /* IDs follow the keys, one for one */
        const char *argv[3] = {"XINFO", "STREAM", r->cmd.argv[key]};
        size_t argvlen[3] = {5, 6, r->cmd.argvlen[key]};
        if (be_link_send_argv(s->link, 3, argv, argvlen, xinfo_cb, (void *)(uintptr_t)r->id) != 0)
            return -1;
    }
    return 0;
}

/* ---- waking ---- */

static void wake_one(struct px_blocks *b, struct px_req *r)
{
    struct px_blk *k = r->blk;
    if (k->gen == b->gen + 1)
        return; /* already woken by this batch */
    if (b->nwake == b->wake_cap) {
        size_t cap = b->wake_cap ? b->wake_cap * 2 : 16;
        struct wake *n = realloc(b->wake, cap * sizeof(*n));
        if (n == NULL)
            return; /* it stays parked; the next write or its timeout moves it */
        b->wake = n;
        b->wake_cap = cap;
    }
    k->gen = b->gen + 1;
    b->wake[b->nwake].seq = k->seq;
    b->wake[b->nwake].id = r->id;
    b->nwake++;
}

/* Wakes every parked request (db < 0), or those of one database. */
static void wake_db(struct px_blocks *b, int64_t db, int every_only)
{
    for (size_t i = 0; i < b->parked.cap; i++) {
        struct px_req *r = b->parked.slots[i].key ? b->parked.slots[i].val : NULL;
        if (r != NULL && (db < 0 || r->db == db) && (!every_only || r->blk->every))
            wake_one(b, r);
    }
}

static void wake_key(void *ctx, int64_t db, const char *key, size_t len)
{
    struct px_blocks *b = ctx;
    for (struct keynode *n = rd_map_get(&b->bykey, key_hash(db, key, len)); n; n = n->next) {
        struct px_req *r = rd_map_get(&b->parked, n->id);
        if (r != NULL)
            wake_one(b, r);
    }
}

void px_block_on_applied_cmd(struct px_server *s, uint64_t db, int argc, const char *const *argv,
                             const size_t *argvlen, int null_or_error)
{
    struct px_blocks *b = s->blocks;
    if (b == NULL || b->parked.count == 0)
        return;
    if (argc == 0 || s->table == NULL) {
        wake_db(b, -1, 0);
        return;
    }
    char err[256];
    const struct px_cmddef *d =
        px_cmd_lookup(s->table, argc, (char *const *)argv, argvlen, err, sizeof(err));
    if (d == NULL || (d->route != PX_ROUTE_WRITE && !(d->flags & PX_CF_WRITE)))
        return;
    /* A blocking command that found nothing (or failed: a key of another type) changed nothing.
     * Without this, two clients parked on BLMOVE a b and BLMOVE b a would wake each other with
     * their empty retries for ever, and a BLPOP parked on a key that became a string would wake
     * itself with its own WRONGTYPE retries. */
    if (null_or_error && (d->flags & PX_CF_BLOCKING))
        return;
    if (b->n_every > 0)
        wake_db(b, -1, 1);
    struct px_keys_span span;
    px_cmd_keys(d, argc, argv, argvlen, (int64_t)db, wake_key, b, &span);
    if (span.scope == PX_KEYS_EVERY)
        wake_db(b, -1, 0);
    for (int i = 0; span.scope == PX_KEYS_DBS && i < span.ndbs; i++)
        wake_db(b, span.dbs[i], 0);
}

static int wake_cmp(const void *a, const void *b)
{
    const struct wake *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void px_block_after_apply(struct px_server *s)
{
    struct px_blocks *b = s->blocks;
    if (b == NULL)
        return;
    b->gen++;
    if (b->nwake == 0)
        return;
    /* Taken out first: a retry may finish requests and so change the maps. */
    struct wake *w = b->wake;
    size_t n = b->nwake;
    b->wake = NULL;
    b->nwake = b->wake_cap = 0;
    qsort(w, n, sizeof(*w), wake_cmp);
    for (size_t i = 0; i < n; i++) {
        struct px_req *r = rd_map_get(&b->parked, w[i].id);
        if (r == NULL)
            continue;
        unpark(b, r);
        retry(s, r);
    }
    free(w);
}

void px_block_wake_all(struct px_server *s)
{
    if (s->blocks == NULL || s->blocks->parked.count == 0)
        return;
    wake_db(s->blocks, -1, 0);
    px_block_after_apply(s);
}

/* ---- timeouts ---- */

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct px_blocks *b = w->data;
    struct px_server *s = b->s;
    b->timer_on = 0;
    double now = ev_now(loop);
    for (int which = 0; which < 2; which++) {
        struct rd_map *m = which == 0 ? &b->parked : &b->waits;
        size_t n;
        uint64_t *ids = map_ids(m, &n);
        for (size_t i = 0; ids != NULL && i < n; i++) {
            struct px_req *r = rd_map_get(m, ids[i]);
            if (r == NULL || r->blk->deadline <= 0 || r->blk->deadline > now)
                continue;
            if (which == 0)
                unpark(b, r);
            else
                rd_map_del(m, ids[i]);
            answer_unblocked(s, r, 1);
        }
        free(ids);
    }
    /* The next deadline. */
    double next = 0;
    for (int which = 0; which < 2; which++) {
        struct rd_map *m = which == 0 ? &b->parked : &b->waits;
        for (size_t i = 0; i < m->cap; i++) {
            struct px_req *r = m->slots[i].key ? m->slots[i].val : NULL;
            if (r != NULL && r->blk->deadline > 0 && (next == 0 || r->blk->deadline < next))
                next = r->blk->deadline;
        }
    }
    timer_arm(b, next);
}

/* ---- clients ---- */

void px_block_client_closed(struct px_client *c)
{
    struct px_server *s = c->s;
    struct px_req *r = c->blocked;
    if (r == NULL || r->blk == NULL || s->blocks == NULL)
        return;
    if (r->blk->parked)
        unpark(s->blocks, r);
    else if (r->blk->kind == PX_BLK_WAIT && rd_map_del(&s->blocks->waits, r->id) == NULL)
        return;
    else if (r->blk->kind != PX_BLK_WAIT)
        return;          /* a try in flight: its completion finds the client gone */
    r->state = REQ_DONE; /* dropped with the client's other finished requests */
    c->blocked = NULL;
}

/* ---- a pop whose client is gone ---- */

/* Redis pops only for a client it can answer. Here the pop is in the log before the client's
 * disconnect is known: what it took is put back where it came from, through the log, so it is
 * not lost (docs/blocking.md). BLMOVE and BRPOPLPUSH moved it to their destination, and
 * XREADGROUP left it in the consumer's pending list: nothing is lost there. */
struct argv_out {
    const char **argv;
    size_t *len;
    int argc;
};

static void put(struct argv_out *o, const char *p, size_t l)
{
    o->argv[o->argc] = p;
    o->len[o->argc++] = l;
}

static int is_str(const redisReply *x)
{
    return x->type == REDIS_REPLY_STRING;
}

/* The command that puts back what r's reply says it popped, into o (room for 2 * elements + 4
 * arguments). 0, or -1 when there is nothing to put back. */
static int orphan_cmd(const struct px_req *r, const redisReply *rep, struct argv_out *o)
{
    const char *n = r->def->name;
    const redisReply *key = rep->elements >= 2 ? rep->element[0] : NULL;
    if (key == NULL || !is_str(key))
        return -1;
    if ((!strcmp(n, "blpop") || !strcmp(n, "brpop")) && rep->elements == 2 &&
        is_str(rep->element[1])) {
        put(o, n[1] == 'l' ? "LPUSH" : "RPUSH", 5);
        put(o, key->str, key->len);
        put(o, rep->element[1]->str, rep->element[1]->len);
        return 0;
    }
    if ((!strcmp(n, "bzpopmin") || !strcmp(n, "bzpopmax")) && rep->elements == 3 &&
        is_str(rep->element[1]) && is_str(rep->element[2])) {
        put(o, "ZADD", 4);
        put(o, key->str, key->len);
        put(o, "NX", 2); /* a member added again meanwhile keeps its new score */
        put(o, rep->element[2]->str, rep->element[2]->len);
        put(o, rep->element[1]->str, rep->element[1]->len);
        return 0;
    }
    const redisReply *list = rep->elements == 2 ? rep->element[1] : NULL;
    if (list == NULL || list->type != REDIS_REPLY_ARRAY || list->elements == 0)
        return -1;
    if (!strcmp(n, "blmpop")) {
        int left = 0;
        for (int i = 3; i < r->cmd.argc; i++)
            left |= !strcasecmp(r->cmd.argv[i], "left");
        put(o, left ? "LPUSH" : "RPUSH", 5);
        put(o, key->str, key->len);
        /* The last one popped goes back first: the list ends as it was. */
        for (size_t i = list->elements; i-- > 0;) {
            if (!is_str(list->element[i]))
                return -1;
            put(o, list->element[i]->str, list->element[i]->len);
        }
        return 0;
    }
    if (!strcmp(n, "bzmpop")) {
        put(o, "ZADD", 4);
        put(o, key->str, key->len);
        put(o, "NX", 2);
        for (size_t i = 0; i < list->elements; i++) {
            const redisReply *p = list->element[i];
            if (p->type != REDIS_REPLY_ARRAY || p->elements != 2 || !is_str(p->element[0]) ||
                !is_str(p->element[1]))
                return -1;
            put(o, p->element[1]->str, p->element[1]->len);
            put(o, p->element[0]->str, p->element[0]->len);
        }
        return 0;
    }
    return -1;
}

/* Proposes argv as an entry nobody waits for (its reply is dropped when applied). */
static int propose_orphan(struct px_server *s, int db, const struct argv_out *o)
{
    uint64_t id = px_new_reqid(s); /* registered nowhere */
    struct be_entry_hdr h = {.origin = rn_id(s->node),
                             .reqid = id,
                             .db = (uint64_t)db,
                             .time_ms = (uint64_t)(ev_now(s->loop) * 1000.0),
                             .ncmds = 1};
    struct rd_buf entry;
    rd_buf_init(&entry);
    uint64_t index, term;
    int rc = be_entry_put_hdr(&entry, &h) != 0 || be_entry_put_cmd(&entry, o->argc, o->argv, o->len)
                 ? RN_ENOMEM
                 : rn_propose(s->node, id, entry.data, entry.len, 0, &index, &term);
    rd_buf_free(&entry);
    return rc == RN_OK || rc == RN_FORWARDED ? 0 : rc;
}

void px_block_on_orphan(struct px_server *s, struct px_req *r, const char *resp, size_t len)
{
    if (r->blk == NULL || r->blk->kind != PX_BLK_POP || len == 0 || resp[0] != '*' ||
        px_blk_is_null(resp, len))
        return;
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    int ok = rd != NULL && redisReaderFeed(rd, resp, len) == REDIS_OK &&
             redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL;
    if (rd != NULL)
        redisReaderFree(rd);
    const redisReply *rep = reply;
    if (!ok || rep->type != REDIS_REPLY_ARRAY) {
        if (reply)
            freeReplyObject(reply);
        return;
    }
    size_t room = 4 + 2 * rep->elements;
    if (rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_ARRAY)
        room += 2 * rep->element[1]->elements;
    struct argv_out o = {malloc(room * sizeof(char *)), malloc(room * sizeof(size_t)), 0};
    if (o.argv && o.len && orphan_cmd(r, rep, &o) == 0) {
        int rc = propose_orphan(s, r->db, &o);
        if (rc == 0)
            rd_verbose("client id=%llu left while its %s was served: %.*s puts back what it took",
                       (unsigned long long)r->c->id, r->def->name, (int)o.len[0], o.argv[0]);
        else
            rd_warning("client id=%llu left while its %s was served; what it took could not be "
                       "put back (error %d) and is lost",
                       (unsigned long long)r->c->id, r->def->name, rc);
    }
    free(o.argv);
    free(o.len);
    freeReplyObject(reply);
}

/* ---- WAIT ---- */

/* Other voters known to hold every write of the client (its last write's index). The leader
 * knows each follower's match index. A follower asks the leader (RAFT.MATCH over the bus) and
 * counts what it was last told. No write yet: every other voter holds "all of them". */
static long long wait_count(struct px_server *s, const struct px_blk *k)
{
    if (rn_role(s->node) == RAFT_LEADER) {
        static struct raft_status st; /* large: kept off the stack */
        rn_status(s->node, &st);
        long long n = 0;
        for (unsigned i = 0; i < st.n_peers; i++)
            n += st.peers[i].voter && st.peers[i].id != st.id && st.peers[i].match >= k->wait_index;
        return n;
    }
    if (k->wait_index == 0) {
        unsigned members = rn_member_count(s->node);
        return members > 0 ? (long long)members - 1 : 0;
    }
    return k->wait_known;
}

static void wait_query(struct px_server *s, struct px_req *r)
{
    struct px_blk *k = r->blk;
    double now = ev_now(s->loop);
    if (rn_role(s->node) == RAFT_LEADER || k->wait_index == 0 ||
        (k->query_id != 0 && now - k->query_at < WAIT_QUERY_RESEND_S))
        return;
    char idx[32];
    int n = snprintf(idx, sizeof(idx), "%llu", (unsigned long long)k->wait_index);
    const char *argv[2] = {"raft.match", idx};
    size_t argvlen[2] = {10, (size_t)n};
    struct rd_buf out;
    rd_buf_init(&out);
    k->query_id = px_new_reqid(s);
    k->query_at = now;
    if (rn_admin(s->node, k->query_id, 2, argv, argvlen, &out) != RN_FORWARDED)
        k->query_id = 0; /* no leader to ask now: the next tick asks again */
    rd_buf_free(&out);
}

void px_block_tick(struct px_server *s)
{
    struct px_blocks *b = s->blocks;
    if (b == NULL || b->waits.count == 0)
        return;
    size_t n;
    uint64_t *ids = map_ids(&b->waits, &n);
    for (size_t i = 0; ids != NULL && i < n; i++) {
        struct px_req *r = rd_map_get(&b->waits, ids[i]);
        if (r == NULL)
            continue;
        long long have = wait_count(s, r->blk);
        if (have >= r->blk->wait_n) {
            rd_map_del(&b->waits, ids[i]);
            rd_resp_int(&r->reply, have);
            px_req_done(r);
        } else {
            wait_query(s, r);
        }
    }
    free(ids);
}

int px_block_on_admin_reply(struct px_server *s, uint64_t reqid, const char *resp, size_t len)
{
    struct px_blocks *b = s->blocks;
    if (b == NULL || b->waits.count == 0)
        return 0;
    struct px_req *r = NULL;
    for (size_t i = 0; i < b->waits.cap && r == NULL; i++) {
        struct px_req *x = b->waits.slots[i].key ? b->waits.slots[i].val : NULL;
        if (x != NULL && x->blk->query_id == reqid)
            r = x;
    }
    if (r == NULL)
        return 0;
    r->blk->query_id = 0;
    /* An array of the ids of the voters whose log holds the index. */
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    if (rd != NULL && redisReaderFeed(rd, resp, len) == REDIS_OK &&
        redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
        const redisReply *rep = reply;
        long long n = 0;
        for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
            n += rep->element[i]->type == REDIS_REPLY_INTEGER &&
                 (uint64_t)rep->element[i]->integer != rn_id(s->node);
        if (n > r->blk->wait_known)
            r->blk->wait_known = n;
        freeReplyObject(reply);
    }
    if (rd != NULL)
        redisReaderFree(rd);
    px_block_tick(s);
    return 1;
}

int px_block_wait_cmd(struct px_client *c, struct px_req *r)
{
    struct px_server *s = c->s;
    long long n, ms;
    const char *err;
    if (rd_parse_ll(r->cmd.argv[1], r->cmd.argvlen[1], &n) != 0) {
        px_reply_err(r, "ERR value is not an integer or out of range");
        return 0;
    }
    if (px_blk_timeout_ms(r->cmd.argv[2], r->cmd.argvlen[2], 1, &ms, &err) != 0) {
        px_reply_err(r, "%s", err);
        return 0;
    }
    struct px_blk *k = r->blk != NULL ? r->blk : calloc(1, sizeof(*k));
    if (k == NULL) {
        px_reply_err(r, "ERR out of memory");
        return 0;
    }
    r->blk = k;
    k->kind = PX_BLK_WAIT;
    k->wait_index = c->last_write_index;
    k->wait_n = n;
    k->deadline = ms > 0 ? ev_now(s->loop) + (double)ms / 1000.0 : 0;
    long long have = wait_count(s, k);
    if (have >= n) {
        rd_resp_int(&r->reply, have);
        return 0;
    }
    if (rd_map_put(&s->blocks->waits, r->id, r) != 0) {
        px_reply_err(r, "ERR out of memory");
        return 0;
    }
    r->state = REQ_INFLIGHT;
    c->blocked = r;
    timer_arm(s->blocks, k->deadline);
    wait_query(s, r);
    return 1;
}

/* ---- CLIENT UNBLOCK ---- */

int px_block_unblock_cmd(struct px_client *c, struct px_req *r)
{
    struct px_server *s = c->s;
    long long id;
    int how = 1;
    if (rd_parse_ll(r->cmd.argv[2], r->cmd.argvlen[2], &id) != 0) {
        px_reply_err(r, "ERR value is not an integer or out of range");
        return 0;
    }
    if (r->cmd.argc == 4) {
        if (!strcasecmp(r->cmd.argv[3], "timeout"))
            how = 1;
        else if (!strcasecmp(r->cmd.argv[3], "error"))
            how = 2;
        else {
            px_reply_err(r, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return 0;
        }
    } else if (r->cmd.argc != 3) {
        px_reply_err(r, "ERR syntax error");
        return 0;
    }
    struct px_client *x = s->clients;
    while (x != NULL && !(x->id == (uint64_t)id && !x->closed))
        x = x->next;
    struct px_req *t = x != NULL ? x->blocked : NULL;
    if (t == NULL || t->blk == NULL || x == c) {
        rd_resp_int(&r->reply, 0);
        return 0;
    }
    rd_resp_int(&r->reply, 1);
    if (t->blk->parked) {
        unpark(s->blocks, t);
        answer_unblocked(s, t, how);
    } else if (t->blk->kind == PX_BLK_WAIT && rd_map_del(&s->blocks->waits, t->id) != NULL) {
        answer_unblocked(s, t, how);
    } else {
        t->blk->unblock = how; /* a try in flight: answered when it comes back empty */
    }
    return 0;
}

int px_block_was_parked(const struct px_req *r)
{
    return r->blk != NULL && r->blk->seq != 0;
}
