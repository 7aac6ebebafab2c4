#include "backend/apply.h"

#include <ev.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/entry.h"
#include "backend/link.h"
#include "backend/script.h"
#include "common/log.h"
#include "common/map.h"

#define APPLY_RETRY_MS 1000

enum item_kind { ITEM_CMDS, ITEM_GROUPED_SET, ITEM_VOID, ITEM_KILL };

/* The most entries one look for kill entries reads while Redis is busy (a node far behind). */
#define APPLY_KILL_SCAN_MAX 200000
/* Losses of the link while one entry was in flight (alone in its batch) before it is taken for
 * a poison entry: one that makes Redis exit every time it is applied. */
#define APPLY_POISON_TRIES 3

static const char killed_before_run[] = "ERR Script killed by user with SCRIPT KILL...";
static const char skipped_text[] =
    "ERR redraft: this log entry was skipped on every node (RAFT.SKIP-ENTRY): it made the "
    "local redis exit";
/* Values in be_apply's killed map. */
#define KILLED_SCRIPT  ((void *)1)
#define KILLED_SKIPPED ((void *)2)
static const char notbusy[] = "-NOTBUSY No scripts in execution right now.\r\n";

struct batch_item {
    uint64_t index;
    uint64_t reqid;
    uint32_t pos;  /* position of its first command among the queued commands */
    uint32_t npos; /* how many queued commands are its own */
    uint8_t mine;  /* a client of this node waits for the reply */
    uint8_t kind;
    uint8_t multi;  /* reply is one array of all its commands' replies */
    uint8_t script; /* runs a script or a function (EVAL, EVALSHA, FCALL): ends its batch */
};

/* A script's reply names the wrapped script: the client gets its own sha (script.h). */
struct batch_swap {
    int32_t item;
    struct be_script_swap sw;
};

struct batch {
    uint64_t first, last;
    uint64_t seq;             /* the link's number of its EXEC (be_link_seq) */
    struct batch_swap *swaps; /* in item order */
    size_t nswaps, swaps_cap;
    struct batch_item *items;
    size_t nitems, cap;
    uint32_t nqueued;  /* commands sent inside MULTI */
    uint32_t nreplied; /* of those, how many answered +QUEUED or an error */
    int32_t *pos_item; /* queued position -> item (-1: ours, e.g. SELECT or SET applied) */
    size_t pos_cap;
    int32_t qerr_item; /* first item refused at queue time, -1 none */
    char qerr[256];
};

struct be_apply {
    struct ev_loop *loop;
    struct be_link *link;
    uint64_t node_id;
    int batch_max;
    void *ctx;
    struct be_apply_cbs cbs;
    int running;
    uint64_t applied, sent, commit;
    /* Entries sent in batches whose EXEC reply never came (the link broke): on reconnect the
     * applied index tells which of them Redis applied anyway; their replies are lost. */
    uint64_t lost_lo, lost_hi;
    struct batch *inflight; /* at most one */
    struct rd_map voids;    /* index -> malloc'd error text of entries applied as no-ops */
    /* Kills (apply.h): script entries whose kill committed before they ran (index -> 1), the
     * answers for kill entries of this node's clients (kill index -> malloc'd RESP line). */
    struct rd_map killed;
    struct rd_map kill_out;
    int busy;            /* the local Redis says a script runs past its threshold */
    uint64_t scan_from;  /* while busy: the next committed index to look at for kills */
    uint64_t kill_asked; /* the kill entry whose SCRIPT/FUNCTION KILL is out, 0 none */
    uint64_t kill_reqid; /* its request id when a client of this node waits for it, else 0 */
    int kill_kind;       /* BE_KILL_* */
    /* Poison entries: after a batch is lost with the link, entries go one per batch until past
     * it (isolate_until), so the one that makes Redis exit is known; lost APPLY_POISON_TRIES
     * times in a row, it stops the apply path (poisoned) until the log says what to do. */
    uint64_t isolate_until;
    uint64_t crash_first; /* the first entry of the last batch lost with the link */
    int crash_tries;
    uint64_t poisoned;
    char down_why[200]; /* what the link said when it was lost */
    ev_timer retry;
    int stalled;
    int watch; /* report applied commands (cbs.command) */
    struct rd_buf scratch;
    struct be_entry_reader rd;
    struct be_scripts *scripts;
};

static void apply_kick(struct be_apply *ap);
static void scan_kills(struct be_apply *ap);

static void batch_free(struct batch *b)
{
    if (b == NULL)
        return;
    free(b->items);
    free(b->pos_item);
    free(b->swaps);
    free(b);
}

static int batch_item_add(struct batch *b, struct batch_item **out)
{
    if (b->nitems == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        struct batch_item *n = realloc(b->items, ncap * sizeof(*n));
        if (n == NULL)
            return -1;
        b->items = n;
        b->cap = ncap;
    }
    *out = &b->items[b->nitems++];
    memset(*out, 0, sizeof(**out));
    return 0;
}

static void queued_cb(struct be_link *bl, void *reply, void *privdata);
static void exec_cb(struct be_link *bl, void *reply, void *privdata);

/* Sends one queued command (RESP in ap->scratch) that belongs to item (-1: ours). */
static int batch_send(struct be_apply *ap, struct batch *b, int32_t item)
{
    if (b->nqueued == b->pos_cap) {
        size_t ncap = b->pos_cap ? b->pos_cap * 2 : 128;
        int32_t *n = realloc(b->pos_item, ncap * sizeof(*n));
        if (n == NULL)
            return -1;
        b->pos_item = n;
        b->pos_cap = ncap;
    }
    b->pos_item[b->nqueued++] = item;
    int rc = be_link_send(ap->link, ap->scratch.data, ap->scratch.len, queued_cb, ap);
    rd_buf_reset(&ap->scratch);
    return rc;
}

static void fmt_argv(struct rd_buf *out, int argc, const char *const *argv, const size_t *argvlen)
{
    rd_resp_array_len(out, argc);
    for (int i = 0; i < argc; i++)
        rd_resp_bulk(out, argv[i], argvlen[i]);
}

static int batch_swap_add(struct batch *b, int32_t item, const struct be_script_swap *sw)
{
    if (sw->from[0] == '\0')
        return 0;
    if (b->nswaps == b->swaps_cap) {
        size_t ncap = b->swaps_cap ? b->swaps_cap * 2 : 16;
        struct batch_swap *n = realloc(b->swaps, ncap * sizeof(*n));
        if (n == NULL)
            return -1;
        b->swaps = n;
        b->swaps_cap = ncap;
    }
    b->swaps[b->nswaps].item = item;
    b->swaps[b->nswaps].sw = *sw;
    b->nswaps++;
    return 0;
}

/* The seed a script of this command gets: the same on every replica, different from command to
 * command (splitmix64 of the position in the log). */
static uint64_t script_seed(uint64_t index, int cmd)
{
    uint64_t z = index * 1024 + (uint64_t)cmd + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int is_cmd(const struct be_cmd *c, const char *name, int argc)
{
    size_t n = strlen(name);
    return (argc == 0 || c->argc == argc) && c->argvlen[0] == n &&
           strncasecmp(c->argv[0], name, n) == 0;
}

/* The kind (BE_KILL_*) of a REDRAFT.KILL command: its second argument, SCRIPT when unknown. */
static int kill_kind(const struct be_cmd *c)
{
    static const char *const names[] = {"script", "function", "shutdown", "entry"};
    for (int k = 0; k < (int)(sizeof(names) / sizeof(names[0])); k++)
        if (c->argvlen[1] == strlen(names[k]) &&
            strncasecmp(c->argv[1], names[k], c->argvlen[1]) == 0)
            return k;
    return BE_KILL_SCRIPT;
}

/* A script or function call of a client's. redraft's own scripts (proxy/rewrite.c: SPOP, XADD
 * with `*`) are short and start with "--redraft:"; they need no batch of their own. */
static int is_script_cmd(const struct be_cmd *c)
{
    char first = (char)(c->argv[0][0] | 0x20);
    if (c->argc < 2 || (first != 'e' && first != 'f'))
        return 0;
    if (is_cmd(c, "fcall", 0))
        return 1;
    if (is_cmd(c, "eval", 0))
        return !(c->argvlen[1] >= 10 && memcmp(c->argv[1], "--redraft:", 10) == 0);
    return is_cmd(c, "evalsha", 0);
}

/* A run of commands that can be merged into one (MSET or DEL) while it is being collected. */
struct run {
    int kind; /* 0 none, 1 MSET, 2 DEL */
    int32_t first_item;
    uint32_t count;     /* merged commands */
    struct rd_buf args; /* RESP bulks of the merged arguments */
    uint32_t nargs;
};

static int run_flush(struct be_apply *ap, struct batch *b, struct run *r)
{
    if (r->kind == 0)
        return 0;
    rd_resp_array_len(&ap->scratch, r->nargs + 1);
    if (r->kind == 1)
        rd_resp_bulk(&ap->scratch, "MSET", 4);
    else
        rd_resp_bulk(&ap->scratch, "DEL", 3);
    rd_buf_append(&ap->scratch, r->args.data, r->args.len);
    /* The merged command answers for every item of the run: each keeps the position. */
    for (size_t i = (size_t)r->first_item; i < b->nitems; i++)
        b->items[i].pos = b->nqueued;
    int rc = batch_send(ap, b, r->first_item);
    rd_buf_reset(&r->args);
    r->kind = 0;
    r->count = r->nargs = 0;
    return rc;
}

static int send_select(struct be_apply *ap, struct batch *b, uint64_t db)
{
    char sel[32];
    int n = snprintf(sel, sizeof(sel), "%llu", (unsigned long long)db);
    const char *argv[2] = {"SELECT", sel};
    size_t argvlen[2] = {6, (size_t)n};
    fmt_argv(&ap->scratch, 2, argv, argvlen);
    return batch_send(ap, b, -1);
}

/* Adds one entry to the batch. Returns 0, or -1 when the link refused (batch abandoned). */
static int batch_add_entry(struct be_apply *ap, struct batch *b, struct run *run, uint64_t index,
                           const void *data, size_t len, uint64_t *cur_db)
{
    struct batch_item *it;
    if (batch_item_add(b, &it) != 0)
        return -1;
    it->index = index;
    int32_t item = (int32_t)(b->nitems - 1);

    if (len == 0) {
        /* Not a client entry (a leader's no-op, a membership change): nothing for Redis, but
         * the applied index still moves past it. */
        it->kind = ITEM_VOID;
        return 0;
    }
    /* The whole entry is checked before any of its commands is sent: a malformed one must
     * not leave half of itself in the batch. Decoding is deterministic, so every replica
     * makes the same no-op of it. */
    struct be_entry_hdr h;
    struct be_cmd one;
    int have_one = 0;
    int ok = be_entry_open(&ap->rd, data, len, &h) == 0;
    if (ok && h.ncmds == 1) {
        /* Nearly every entry is one command: reading it and finding nothing after it checks
         * the whole entry in one pass, and keeps the command for below. */
        struct be_cmd end;
        ok = be_entry_next(&ap->rd, &one) == 1 && be_entry_next(&ap->rd, &end) == 0;
        have_one = ok;
    } else if (ok) {
        ok = be_entry_check(&ap->rd, data, len) == 0 && be_entry_open(&ap->rd, data, len, &h) == 0;
    }
    if (!ok)
        rd_warning("log entry %llu is malformed; applied as a no-op", (unsigned long long)index);
    if (ok && have_one && is_cmd(&one, BE_KILL_CMD, 3)) {
        /* A kill is decided by the log but done on the side (be_apply_commit): here it only
         * answers its client, with what this node's Redis said to it. */
        it->mine = h.origin == ap->node_id;
        it->reqid = h.reqid;
        it->kind = ITEM_KILL;
        long long t;
        if (it->mine && rd_map_get(&ap->kill_out, index) == NULL &&
            kill_kind(&one) == BE_KILL_ENTRY && rd_parse_ll(one.argv[2], one.argvlen[2], &t) == 0 &&
            t > 0 && rd_map_get(&ap->killed, (uint64_t)t) == NULL) {
            /* A skip of an entry this node had applied when the skip was seen. */
            char *o = strdup("-ERR that log entry was applied before RAFT.SKIP-ENTRY reached it; "
                             "only an entry not yet applied can be skipped\r\n");
            if (o != NULL && rd_map_put(&ap->kill_out, index, o) != 0)
                free(o);
        }
        return 0;
    }
    void *kl = ok ? rd_map_get(&ap->killed, index) : NULL;
    if (kl != NULL && rd_map_get(&ap->voids, index) == NULL) {
        char *msg = strdup(kl == KILLED_SKIPPED ? skipped_text : killed_before_run);
        if (msg != NULL && rd_map_put(&ap->voids, index, msg) != 0)
            free(msg);
    }
    if (!ok || rd_map_get(&ap->voids, index) != NULL) {
        /* Entries voided earlier (refused by Redis when queued) still report their error. */
        if (ok) {
            it->mine = h.origin == ap->node_id;
            it->reqid = h.reqid;
        }
        it->kind = ITEM_VOID;
        return 0;
    }
    it->mine = h.origin == ap->node_id;
    it->reqid = h.reqid;
    it->multi = (h.flags & BE_ENTRY_F_MULTI) != 0;
    it->kind = ITEM_CMDS;

    if (h.db != *cur_db) {
        if (run_flush(ap, b, run) != 0 || send_select(ap, b, h.db) != 0)
            return -1;
        *cur_db = h.db;
    }
    struct be_cmd c;
    int rc = 0;
    int first = 1;
    for (int taken = 0, k = 0;; k++) {
        if (have_one) {
            if (taken++)
                break;
            c = one;
        } else if ((rc = be_entry_next(&ap->rd, &c)) != 1) {
            break;
        }
        if (is_script_cmd(&c))
            it->script = 1;
        int mergeable = h.ncmds == 1 && !it->multi;
        int kind = 0;
        if (mergeable && is_cmd(&c, "set", 3))
            kind = 1;
        else if (mergeable && !it->mine && is_cmd(&c, "del", 0) && c.argc >= 2)
            kind = 2;
        if (run->kind != 0 && run->kind != kind && run_flush(ap, b, run) != 0)
            return -1;
        if (kind != 0) {
            if (run->kind == 0) {
                run->kind = kind;
                run->first_item = item;
            }
            for (int i = 1; i < c.argc; i++)
                rd_resp_bulk(&run->args, c.argv[i], c.argvlen[i]);
            run->nargs += (uint32_t)(c.argc - 1);
            run->count++;
            it->npos = 1;
            if (kind == 1)
                it->kind = ITEM_GROUPED_SET;
            continue;
        }
        if (first)
            it->pos = b->nqueued;
        first = 0;
        struct be_script_swap sw;
        int sc = be_scripts_cmd(ap->scripts, BE_SCRIPT_APPLY, &c, h.time_ms, script_seed(index, k),
                                &ap->scratch, &sw);
        if (sc < 0 || batch_swap_add(b, item, &sw) != 0)
            return -1;
        if (sc == 0)
            fmt_argv(&ap->scratch, c.argc, c.argv, c.argvlen);
        it->npos++;
        if (batch_send(ap, b, item) != 0)
            return -1;
    }
    /* A transaction may SELECT inside: what follows it must select again. */
    if (it->multi)
        *cur_db = UINT64_MAX;
    if (rc < 0) /* cannot happen: the entry was checked above */
        return -1;
    return 0;
}

struct preload_ctx {
    struct be_apply *ap;
    struct batch *b;
};

static int preload_sent(void *ctx)
{
    struct preload_ctx *pc = ctx;
    return batch_send(pc->ap, pc->b, -1);
}

/* Builds and sends one batch of the entries after `sent`, up to commit. */
static void batch_build(struct be_apply *ap)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return;
    b->qerr_item = -1;
    b->first = ap->sent + 1;
    uint64_t last = ap->commit;
    if (last - ap->sent > (uint64_t)ap->batch_max)
        last = ap->sent + (uint64_t)ap->batch_max;
    if (ap->isolate_until > ap->sent)
        last = ap->sent + 1; /* one entry a batch, to tell which one Redis dies of */

    struct run run = {0};
    rd_buf_init(&run.args);
    uint64_t cur_db = UINT64_MAX;
    int ok = be_link_send(ap->link, "*1\r\n$5\r\nMULTI\r\n", 15, NULL, NULL) == 0;
    struct preload_ctx pc = {ap, b};
    ok = ok && be_scripts_preload(ap->scripts, &ap->scratch, preload_sent, &pc) == 0;
    uint64_t idx;
    for (idx = b->first; ok && idx <= last; idx++) {
        void *data = NULL;
        size_t len = 0;
        if (idx == ap->kill_asked && idx > b->first)
            break; /* its answer must be in before it is applied: a batch of its own */
        if (b->nitems > 0 && b->items[b->nitems - 1].script)
            break; /* a script ends its batch: a kill then names exactly the one in flight */
        if (ap->cbs.fetch(ap->ctx, idx, &data, &len) != 0) {
            rd_warning("cannot read committed log entry %llu; will retry", (unsigned long long)idx);
            break;
        }
        ok = batch_add_entry(ap, b, &run, idx, data, len, &cur_db) == 0;
        free(data);
    }
    b->last = idx - 1;
    if (ok)
        ok = run_flush(ap, b, &run) == 0;
    rd_buf_free(&run.args);
    if (ok) {
        char num[32];
        int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)b->last);
        ok = send_select(ap, b, (uint64_t)be_link_hidden_db(ap->link)) == 0;
        while (ok && be_scripts_persist_next(ap->scripts, &ap->scratch) == 1)
            ok = batch_send(ap, b, -1) == 0;
        const char *argv[3] = {"SET", BE_APPLIED_KEY, num};
        size_t argvlen[3] = {3, strlen(BE_APPLIED_KEY), (size_t)n};
        fmt_argv(&ap->scratch, 3, argv, argvlen);
        ok = ok && batch_send(ap, b, -1) == 0;
        ok = ok && be_link_send(ap->link, "*1\r\n$4\r\nEXEC\r\n", 14, exec_cb, ap) == 0;
        b->seq = be_link_seq(ap->link);
    }
    be_link_forget_db(ap->link);
    rd_buf_reset(&ap->scratch);
    if (!ok || b->last < b->first) {
        /* The link went away mid-batch; its callbacks are drained with NULL replies and
         * be_apply_stop follows. Nothing was applied: the batch is rebuilt later. */
        batch_free(b);
        if (ok)
            be_link_reset(ap->link, "could not build an apply batch");
        return;
    }
    ap->inflight = b;
    ap->sent = b->last;
    if (b->items[b->nitems - 1].script && ap->cbs.script_sent)
        ap->cbs.script_sent(ap->ctx);
}

static void apply_kick(struct be_apply *ap)
{
    if (!ap->running || ap->stalled || ap->inflight != NULL || ap->sent >= ap->commit)
        return;
    if (ap->kill_asked != 0 && ap->kill_asked == ap->sent + 1)
        return; /* be_apply_kill_outcome kicks again */
    if (ap->poisoned != 0)
        return; /* RAFT.SKIP-ENTRY, or a restart of redraft, goes on */
    batch_build(ap);
}

static void queued_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct be_apply *ap = privdata;
    redisReply *r = reply;
    struct batch *b = ap->inflight;
    if (r == NULL || b == NULL)
        return;
    uint32_t pos = b->nreplied++;
    if (r->type == REDIS_REPLY_ERROR && b->qerr_item < 0 && pos < b->nqueued) {
        b->qerr_item = b->pos_item[pos];
        snprintf(b->qerr, sizeof(b->qerr), "%s", r->str);
    }
}

/* Errors at queue time that say "not now" rather than "never". */
static int qerr_transient(const char *e)
{
    static const char *codes[] = {"OOM",        "MISCONF",  "LOADING", "BUSY",     "MASTERDOWN",
                                  "NOREPLICAS", "READONLY", "NOPERM",  "TRYAGAIN", "NOAUTH"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(e, codes[i], n) == 0 && (e[n] == ' ' || e[n] == '\0'))
            return 1;
    }
    return 0;
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct be_apply *ap = w->data;
    ap->stalled = 0;
    apply_kick(ap);
}

static void deliver(struct be_apply *ap, const struct batch *b, size_t *swap_at,
                    const struct batch_item *it, const redisReply *exec)
{
    int32_t item = (int32_t)(it - b->items);
    struct rd_buf *out = &ap->scratch;
    rd_buf_reset(out);
    if (it->kind == ITEM_KILL) {
        const char *o = rd_map_get(&ap->kill_out, it->index);
        if (o == NULL)
            o = notbusy;
        ap->cbs.reply(ap->ctx, it->reqid, o, strlen(o));
        return;
    }
    if (it->kind == ITEM_VOID) {
        const char *e = rd_map_get(&ap->voids, it->index);
        rd_resp_simple(out, '-', e ? e : "ERR redraft: entry not applied");
    } else if (it->kind == ITEM_GROUPED_SET) {
        const redisReply *r = exec->element[it->pos];
        if (r->type == REDIS_REPLY_ERROR)
            be_reply_encode(r, out);
        else
            rd_resp_simple(out, '+', "OK");
    } else {
        if (it->multi)
            rd_resp_array_len(out, it->npos);
        for (uint32_t i = 0; i < it->npos; i++)
            be_reply_encode(exec->element[it->pos + i], out);
    }
    while (*swap_at < b->nswaps && b->swaps[*swap_at].item < item)
        (*swap_at)++;
    for (size_t i = *swap_at; i < b->nswaps && b->swaps[i].item == item; i++)
        be_scripts_swap(&b->swaps[i].sw, out->data, out->len);
    ap->cbs.reply(ap->ctx, it->reqid, out->data, out->len);
    rd_buf_reset(out);
}

/* Tells the owner every command the batch applied (only while it watches): the entries are
 * read back (from the node's cache, usually) rather than kept, since nobody needs them when no
 * client is blocked. Each command's reply is at its position in the EXEC array. */
static void report_commands(struct be_apply *ap, const struct batch *b, const redisReply *exec)
{
    for (size_t i = 0; i < b->nitems; i++) {
        const struct batch_item *it = &b->items[i];
        if (it->kind == ITEM_VOID || it->kind == ITEM_KILL)
            continue;
        void *data = NULL;
        size_t len = 0;
        struct be_entry_hdr h;
        if (ap->cbs.fetch(ap->ctx, it->index, &data, &len) != 0 ||
            be_entry_open(&ap->rd, data, len, &h) != 0) {
            ap->cbs.command(ap->ctx, 0, 0, NULL, NULL, 0);
            free(data);
            continue;
        }
        uint64_t db = h.db;
        struct be_cmd c;
        for (uint32_t k = 0; be_entry_next(&ap->rd, &c) == 1; k++) {
            const redisReply *rep = NULL;
            if (it->kind == ITEM_CMDS && it->pos + k < exec->elements)
                rep = exec->element[it->pos + k];
            long long sel;
            if (is_cmd(&c, "select", 2) && rd_parse_ll(c.argv[1], c.argvlen[1], &sel) == 0 &&
                sel >= 0 && (rep == NULL || rep->type != REDIS_REPLY_ERROR)) {
                db = (uint64_t)sel;
                continue;
            }
            ap->cbs.command(ap->ctx, db, c.argc, c.argv, c.argvlen,
                            rep != NULL &&
                                (rep->type == REDIS_REPLY_NIL || rep->type == REDIS_REPLY_ERROR));
        }
        free(data);
    }
}

static void exec_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct be_apply *ap = privdata;
    redisReply *r = reply;
    struct batch *b = ap->inflight;
    if (r == NULL || b == NULL)
        return; /* link lost: be_apply_stop follows */
    ap->inflight = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == b->nqueued) {
        /* Applied before the replies go out: a client answered here may go on at once (WATCH
         * takes be_apply_applied as what its reads will see), and it must count this batch. */
        ap->applied = b->last;
        if (ap->crash_tries > 0 && b->last >= ap->crash_first)
            ap->crash_tries = 0;
        size_t swap_at = 0;
        for (size_t i = 0; i < b->nitems; i++)
            if (b->items[i].mine)
                deliver(ap, b, &swap_at, &b->items[i], r);
        /* After the replies: a client parked by one of them must see the rest of the batch. */
        if (ap->watch && ap->cbs.command)
            report_commands(ap, b, r);
        for (uint64_t i = b->first; i <= b->last; i++) {
            free(rd_map_del(&ap->voids, i));
            free(rd_map_del(&ap->kill_out, i));
        }
        batch_free(b);
        if (ap->cbs.applied)
            ap->cbs.applied(ap->ctx, ap->applied);
        apply_kick(ap);
        return;
    }
    /* Nothing of the batch was applied, its writes of the script registry neither: the batch
     * built again writes every script the registry holds. */
    ap->sent = ap->applied;
    be_scripts_rewrite_all(ap->scripts);
    if (r->type == REDIS_REPLY_ERROR && b->qerr_item >= 0 && !qerr_transient(b->qerr)) {
        const struct batch_item *it = &b->items[b->qerr_item];
        rd_warning("local redis refused log entry %llu (%s); it is applied as a no-op with that "
                   "error as its reply, as on every replica",
                   (unsigned long long)it->index, b->qerr);
        char *msg = strdup(b->qerr);
        if (msg != NULL && rd_map_put(&ap->voids, it->index, msg) != 0)
            free(msg);
        batch_free(b);
        apply_kick(ap);
        return;
    }
    rd_warning("local redis refused to apply entries %llu..%llu (%s); retrying in %d ms",
               (unsigned long long)b->first, (unsigned long long)b->last,
               b->qerr_item >= 0 ? b->qerr : (r->type == REDIS_REPLY_ERROR ? r->str : "no reply"),
               APPLY_RETRY_MS);
    batch_free(b);
    ap->stalled = 1;
    ev_timer_set(&ap->retry, APPLY_RETRY_MS / 1000.0, 0);
    ev_timer_start(ap->loop, &ap->retry);
}

struct be_apply *be_apply_new(struct ev_loop *loop, struct be_link *link, uint64_t node_id,
                              int batch_max, void *ctx, const struct be_apply_cbs *cbs)
{
    struct be_apply *ap = calloc(1, sizeof(*ap));
    if (ap == NULL)
        return NULL;
    ap->loop = loop;
    ap->link = link;
    ap->node_id = node_id;
    ap->batch_max = batch_max;
    ap->ctx = ctx;
    ap->cbs = *cbs;
    if ((ap->scripts = be_scripts_new()) == NULL) {
        free(ap);
        return NULL;
    }
    rd_map_init(&ap->voids);
    rd_map_init(&ap->killed);
    rd_map_init(&ap->kill_out);
    rd_buf_init(&ap->scratch);
    ev_timer_init(&ap->retry, retry_cb, 0, 0);
    ap->retry.data = ap;
    return ap;
}

/* Frees a map whose values are malloc'd. */
static void free_map_vals(struct rd_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != 0)
            free(m->slots[i].val);
    rd_map_free(m);
}

void be_apply_free(struct be_apply *ap)
{
    if (ap == NULL)
        return;
    ev_timer_stop(ap->loop, &ap->retry);
    batch_free(ap->inflight);
    free_map_vals(&ap->voids);
    free_map_vals(&ap->kill_out);
    rd_map_free(&ap->killed);
    rd_buf_free(&ap->scratch);
    be_entry_reader_free(&ap->rd);
    be_scripts_free(ap->scripts);
    free(ap);
}

/* Tells the clients of entries that Redis applied while their EXEC reply was lost that their
 * write took effect but its reply is gone (re-sending would apply it twice). */
static void report_lost_replies(struct be_apply *ap, uint64_t applied)
{
    uint64_t hi = ap->lost_hi < applied ? ap->lost_hi : applied;
    for (uint64_t idx = ap->lost_lo; ap->lost_lo != 0 && idx <= hi; idx++) {
        void *data = NULL;
        size_t len = 0;
        struct be_entry_hdr h;
        if (ap->cbs.fetch(ap->ctx, idx, &data, &len) == 0 &&
            be_entry_open(&ap->rd, data, len, &h) == 0 && h.origin == ap->node_id) {
            static const char msg[] = "-ERR the write was applied, but its reply was lost when "
                                      "the connection to the local redis broke\r\n";
            ap->cbs.reply(ap->ctx, h.reqid, msg, sizeof(msg) - 1);
        }
        free(data);
    }
    ap->lost_lo = ap->lost_hi = 0;
}

void be_apply_start(struct be_apply *ap, uint64_t applied)
{
    report_lost_replies(ap, applied);
    ap->running = 1;
    ap->applied = ap->sent = applied;
    if (ap->commit < applied)
        ap->commit = applied;
    apply_kick(ap);
}

void be_apply_pause(struct be_apply *ap)
{
    ap->running = 0;
}

int be_apply_idle(const struct be_apply *ap)
{
    return ap->inflight == NULL;
}

void be_apply_link_down(struct be_apply *ap, const char *why)
{
    snprintf(ap->down_why, sizeof(ap->down_why), "%s", why ? why : "connection lost");
    const struct batch *b = ap->inflight;
    if (b != NULL && b->last >= b->first) {
        if (b->first == ap->crash_first && ap->crash_tries > 0)
            ap->crash_tries++;
        else
            ap->crash_tries = 1;
        ap->crash_first = b->first;
        if (b->last > ap->isolate_until)
            ap->isolate_until = b->last;
        if (b->first == b->last && ap->crash_tries >= APPLY_POISON_TRIES) {
            ap->poisoned = b->first;
            rd_warning("POISON ENTRY: applying log entry %llu made the local redis go away %d "
                       "times in a row (%s); this node stops applying, and answers with an "
                       "error, until RAFT.SKIP-ENTRY %llu or a restart of redraft "
                       "(docs/operations.md)",
                       (unsigned long long)b->first, ap->crash_tries, ap->down_why,
                       (unsigned long long)b->first);
        } else {
            rd_warning("the local redis went away while applying entries %llu..%llu (%s, %d "
                       "time(s)); they go again one by one",
                       (unsigned long long)b->first, (unsigned long long)b->last, ap->down_why,
                       ap->crash_tries);
        }
    }
    be_apply_stop(ap);
}

uint64_t be_apply_poisoned(const struct be_apply *ap, int *tries, const char **why)
{
    if (tries)
        *tries = ap->crash_tries;
    if (why)
        *why = ap->down_why;
    return ap->poisoned;
}

void be_apply_stop(struct be_apply *ap)
{
    if (ap->sent > ap->applied) {
        if (ap->lost_lo == 0 || ap->applied + 1 < ap->lost_lo)
            ap->lost_lo = ap->applied + 1;
        if (ap->sent > ap->lost_hi)
            ap->lost_hi = ap->sent;
    }
    ap->running = 0;
    batch_free(ap->inflight);
    ap->inflight = NULL;
    ap->sent = ap->applied;
    ap->stalled = 0;
    ev_timer_stop(ap->loop, &ap->retry);
}

/* The script entry in the batch in flight (it is always the batch's last), or 0. */
uint64_t be_apply_running_script(const struct be_apply *ap)
{
    const struct batch *b = ap->inflight;
    if (b == NULL || b->nitems == 0 || !b->items[b->nitems - 1].script)
        return 0;
    if (ap->cbs.script_ahead && ap->cbs.script_ahead(ap->ctx, b->seq))
        return 0;
    return b->items[b->nitems - 1].index;
}

/* The script entry in flight, whether it runs yet or not. */
static uint64_t batch_script(const struct be_apply *ap)
{
    const struct batch *b = ap->inflight;
    if (b == NULL || b->nitems == 0 || !b->items[b->nitems - 1].script)
        return 0;
    return b->items[b->nitems - 1].index;
}

void be_apply_recheck_kills(struct be_apply *ap)
{
    scan_kills(ap);
}

/* One committed entry looked at for a kill: REDRAFT.KILL SCRIPT|FUNCTION <target>. */
/* Returns 1 when the kill must wait for the answer to the one out (look at it again then). */
static int kill_seen(struct be_apply *ap, uint64_t kidx, const struct be_entry_hdr *h,
                     const struct be_cmd *c)
{
    long long target;
    if (rd_parse_ll(c->argv[2], c->argvlen[2], &target) != 0 || target <= 0)
        return 0;
    int kind = kill_kind(c);
    static const char *const what[] = {"script", "function", "redis-server (SHUTDOWN NOSAVE)",
                                       "entry"};
    uint64_t t = (uint64_t)target;
    if (kind == BE_KILL_ENTRY) {
        if (t > ap->sent || t == ap->poisoned) {
            rd_warning("log entry %llu skips entry %llu: it is applied as a no-op",
                       (unsigned long long)kidx, (unsigned long long)t);
            rd_map_put(&ap->killed, t, KILLED_SKIPPED);
            if (t == ap->poisoned) {
                ap->poisoned = 0;
                ap->crash_tries = 0;
            }
            if (h->origin == ap->node_id) {
                static const char ok[] = "+OK\r\n";
                ap->cbs.reply(ap->ctx, h->reqid, ok, sizeof(ok) - 1);
            }
            apply_kick(ap);
        } else {
            rd_warning("log entry %llu skips entry %llu, which this node's redis had applied: "
                       "this replica may differ from those that skipped it",
                       (unsigned long long)kidx, (unsigned long long)t);
        }
        return 0;
    }
    /* Busy with nothing of ours in flight: the script was sent before this process started, or
     * before the apply link was lost. Which entry it is cannot be told, so every kill committed
     * since then acts on it (SHUTDOWN NOSAVE, the safe one, refills from the log). */
    int stuck = ap->busy && ap->inflight == NULL && t > ap->applied;
    if (t == batch_script(ap) && be_apply_running_script(ap) == 0)
        return 1; /* queued behind a script of this node's own: killed once that one ends */
    if (t == be_apply_running_script(ap) || stuck) {
        if (ap->kill_asked != 0)
            return 1; /* one kill at a time: this one goes once the answer to that one is in */
        rd_warning("log entry %llu kills the %s of entry %llu, running on the local redis",
                   (unsigned long long)kidx, what[kind], (unsigned long long)t);
        ap->kill_asked = kidx;
        ap->kill_kind = kind;
        ap->kill_reqid = h->origin == ap->node_id ? h->reqid : 0;
        /* Should Redis come back empty (a restart), the refill must not run it again. */
        rd_map_put(&ap->killed, t, KILLED_SCRIPT);
        if (ap->cbs.kill == NULL || ap->cbs.kill(ap->ctx, kind, kidx) != 0)
            be_apply_kill_outcome(ap, kidx, "ERR the local redis could not be asked", 1);
    } else if (t > ap->sent) {
        rd_warning("log entry %llu kills entry %llu before it runs here", (unsigned long long)kidx,
                   (unsigned long long)t);
        rd_map_put(&ap->killed, t, KILLED_SCRIPT);
    } else {
        rd_warning("log entry %llu kills entry %llu, which this node's redis had finished",
                   (unsigned long long)kidx, (unsigned long long)t);
        if (kind == BE_KILL_SHUTDOWN)
            rd_map_put(&ap->killed, t, KILLED_SCRIPT); /* a refill leaves it out */
    }
    return 0;
}

/* While Redis is busy, committed entries are looked at as they commit: a kill entry must act
 * while the apply path is stuck behind the script it kills. */
static void scan_kills(struct be_apply *ap)
{
    if (!ap->busy && ap->poisoned == 0 && ap->crash_tries == 0)
        return;
    if (ap->scan_from <= ap->sent)
        ap->scan_from = ap->sent + 1;
    uint64_t end = ap->commit;
    if (end >= ap->scan_from && end - ap->scan_from >= APPLY_KILL_SCAN_MAX)
        end = ap->scan_from + APPLY_KILL_SCAN_MAX - 1;
    for (; ap->scan_from <= end; ap->scan_from++) {
        void *data = NULL;
        size_t len = 0;
        struct be_entry_hdr h;
        struct be_cmd c;
        if (ap->cbs.fetch(ap->ctx, ap->scan_from, &data, &len) != 0)
            break;
        int wait = 0;
        if (len > 0 && be_entry_open(&ap->rd, data, len, &h) == 0 && h.ncmds == 1 &&
            be_entry_next(&ap->rd, &c) == 1 && is_cmd(&c, BE_KILL_CMD, 3))
            wait = kill_seen(ap, ap->scan_from, &h, &c);
        free(data);
        if (wait)
            break; /* be_apply_kill_outcome looks again from here */
    }
}

void be_apply_set_busy(struct be_apply *ap, int busy)
{
    if (busy == ap->busy)
        return;
    ap->busy = busy;
    /* With a batch in flight the kills of its script may have committed already; with none,
     * only kills from now on can be meant for what runs (kill_seen). */
    ap->scan_from = ap->inflight != NULL ? ap->sent + 1 : ap->commit + 1;
    scan_kills(ap);
}

void be_apply_kill_outcome(struct be_apply *ap, uint64_t kill_index, const char *reply,
                           int is_error)
{
    uint64_t reqid = 0;
    if (kill_index == ap->kill_asked) {
        reqid = ap->kill_reqid;
        ap->kill_asked = ap->kill_reqid = 0;
    }
    if (reply == NULL && ap->kill_kind == BE_KILL_SHUTDOWN) {
        reply = "OK"; /* Redis answers SHUTDOWN by exiting */
        is_error = 0;
    }
    if (reply == NULL)
        reply = "ERR the connection to the local redis broke before it answered the kill";
    struct rd_buf b;
    rd_buf_init(&b);
    rd_resp_simple(&b, is_error ? '-' : '+', reply);
    char *o = malloc(b.len + 1);
    if (o != NULL) {
        memcpy(o, b.data, b.len);
        o[b.len] = '\0';
        free(rd_map_del(&ap->kill_out, kill_index));
        if (rd_map_put(&ap->kill_out, kill_index, o) != 0)
            free(o);
    }
    /* The kill's client has its answer now: the kill entry is applied only after the script
     * ends, which an unkillable one never does. */
    if (reqid != 0)
        ap->cbs.reply(ap->ctx, reqid, b.data, b.len);
    rd_buf_free(&b);
    rd_notice("the local redis answered the kill of log entry %llu: %s",
              (unsigned long long)kill_index, reply);
    scan_kills(ap); /* a kill that waited for this answer */
    apply_kick(ap);
}

void be_apply_commit(struct be_apply *ap, uint64_t commit)
{
    if (commit > ap->commit)
        ap->commit = commit;
    scan_kills(ap);
    apply_kick(ap);
}

void be_apply_set_watch(struct be_apply *ap, int on)
{
    ap->watch = on;
}

uint64_t be_apply_applied(const struct be_apply *ap)
{
    return ap->applied;
}

uint64_t be_apply_sent(const struct be_apply *ap)
{
    return ap->sent;
}

int be_apply_running(const struct be_apply *ap)
{
    return ap->running && !ap->stalled;
}

struct be_scripts *be_apply_scripts(struct be_apply *ap)
{
    return ap->scripts;
}
