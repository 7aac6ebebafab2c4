/* watch.c: WATCH/UNWATCH and the leader's check of a watching client's EXEC (see watch.h). */
#include "proxy/watch.h"

#include <stdlib.h>
#include <string.h>

#include "backend/apply.h"
#include "backend/entry.h"
#include "proxy/client.h"
#include "proxy/keys.h"
#include "proxy/server.h"
#include "raftlog/node.h"

/* ---- the client's side ---- */

/* What the client's later reads are sure to see: the index Redis confirmed applied. */
static uint64_t confirmed_index(const struct px_server *s)
{
    uint64_t a = s->apply != NULL ? be_apply_applied(s->apply) : 0;
    return a > s->last_applied ? a : s->last_applied;
}

int px_watch_active(const struct px_client *c)
{
    return c->watch_nkeys > 0;
}

void px_watch_clear(struct px_client *c)
{
    rd_buf_free(&c->watch_keys);
    c->watch_nkeys = 0;
    c->watch_index = 0;
}

void px_watch_add(struct px_client *c, struct px_req *r)
{
    size_t bytes = 0;
    for (int i = 1; i < r->cmd.argc; i++)
        bytes += r->cmd.argvlen[i] + 20; /* the key and at most two varints */
    if (c->watch_keys.len + bytes > PX_WATCH_BYTES_MAX ||
        c->watch_nkeys + (size_t)(r->cmd.argc - 1) > BE_WATCH_KEYS_MAX) {
        px_reply_err(r, "ERR too many watched keys for redraft");
        return;
    }
    size_t undo = c->watch_keys.len;
    for (int i = 1; i < r->cmd.argc; i++) {
        if (be_watch_put_key(&c->watch_keys, (uint64_t)c->db, r->cmd.argv[i], r->cmd.argvlen[i]) !=
            0) {
            c->watch_keys.len = undo;
            px_reply_err(r, "ERR out of memory");
            return;
        }
    }
    /* The earliest WATCH counts: every key is watched from then on or later. */
    if (c->watch_nkeys == 0)
        c->watch_index = confirmed_index(c->s);
    c->watch_nkeys += (uint32_t)(r->cmd.argc - 1);
    rd_resp_simple(&r->reply, '+', "OK");
}

int px_watch_take(struct px_client *c, struct px_req *r)
{
    rd_buf_reset(&r->entry);
    int rc = be_watch_put_hdr(&r->entry, c->watch_index, c->watch_nkeys) != 0 ||
                     rd_buf_append(&r->entry, c->watch_keys.data, c->watch_keys.len) != 0
                 ? -1
                 : 0;
    r->guard_len = rc == 0 ? r->entry.len : 0;
    if (rc != 0)
        rd_buf_reset(&r->entry);
    px_watch_clear(c);
    return rc;
}

/* ---- the leader's check ---- */

static int key_cmp(uint64_t adb, const char *a, size_t alen, const struct be_watch_key *b)
{
    if (adb != b->db)
        return adb < b->db ? -1 : 1;
    if (alen != b->len)
        return alen < b->len ? -1 : 1;
    return memcmp(a, b->key, alen);
}

static int sort_cmp(const void *pa, const void *pb)
{
    const struct be_watch_key *a = pa;
    return key_cmp(a->db, a->key, a->len, pb);
}

struct watched {
    struct be_watch_key *keys; /* sorted by (db, length, bytes) */
    uint32_t n;
    int hit;
};

static void match_key(void *ctx, int64_t db, const char *key, size_t len)
{
    struct watched *w = ctx;
    size_t lo = 0, hi = w->n;
    while (!w->hit && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp((uint64_t)db, key, len, &w->keys[mid]);
        if (c == 0)
            w->hit = 1;
        else if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
}

static int watches_db(const struct watched *w, int64_t db)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (w->keys[i].db == (uint64_t)db)
            return 1;
    return 0;
}

/* Whether one command of an entry (d: its definition, NULL when unknown), run in database db,
 * may write a watched key. */
static int cmd_touches(const struct px_cmddef *d, const struct be_cmd *cmd, int64_t db,
                       struct watched *w)
{
    if (d == NULL)
        return 1; /* a command this leader does not know: it may write anything */
    if (d->route == PX_ROUTE_READ || d->route == PX_ROUTE_LOCAL)
        return 0; /* reads, and PING/ECHO/SELECT queued in a transaction */
    struct px_keys_span span;
    px_cmd_keys(d, cmd->argc, cmd->argv, cmd->argvlen, db, match_key, w, &span);
    if (w->hit || span.scope == PX_KEYS_EVERY)
        return 1;
    for (int i = 0; span.scope == PX_KEYS_DBS && i < span.ndbs; i++)
        if (watches_db(w, span.dbs[i]))
            return 1;
    return 0;
}

/* Whether a client entry may write a watched key. A SELECT inside a transaction moves the
 * commands after it to that database. An entry that does not decode is applied as a no-op. */
static int entry_touches(const struct px_cmdtable *t, struct be_entry_reader *er, const void *data,
                         size_t len, struct watched *w)
{
    struct be_entry_hdr h;
    struct be_cmd cmd;
    if (be_entry_open(er, data, len, &h) != 0)
        return 0;
    int64_t db = (int64_t)h.db;
    while (be_entry_next(er, &cmd) == 1) {
        const struct px_cmddef *d =
            t != NULL ? px_cmd_find(t, cmd.argc, cmd.argv, cmd.argvlen) : NULL;
        if (d != NULL && d->local == PX_L_SELECT) {
            long long v;
            if (rd_parse_ll(cmd.argv[1], cmd.argvlen[1], &v) != 0)
                return 1;
            db = v;
            continue;
        }
        if (cmd_touches(d, &cmd, db, w))
            return 1;
    }
    return 0;
}

int px_watch_admit(const struct px_cmdtable *t, const void *guard, size_t guard_len,
                   const struct rn_log_view *log)
{
    struct be_watch_reader wr;
    uint64_t from;
    uint32_t n;
    if (be_watch_open(&wr, guard, guard_len, &from, &n) != 0 || n == 0)
        return RN_EWATCH;
    /* W beyond this log cannot be checked; too far behind costs too much to check. */
    if (from > log->last || log->last - from > PX_WATCH_SCAN_MAX)
        return RN_EWATCH;
    struct watched w = {calloc(n, sizeof(*w.keys)), n, 0};
    if (w.keys == NULL)
        return RN_EWATCH;
    int rc = RN_OK;
    for (uint32_t i = 0; i < n && rc == RN_OK; i++)
        if (be_watch_next(&wr, &w.keys[i]) != 1)
            rc = RN_EWATCH;
    if (rc == RN_OK && be_watch_next(&wr, &w.keys[0]) != 0)
        rc = RN_EWATCH; /* trailing bytes */
    qsort(w.keys, n, sizeof(*w.keys), sort_cmp);
    struct be_entry_reader er = {0};
    for (uint64_t i = from + 1; rc == RN_OK && i <= log->last; i++) {
        const void *data;
        size_t len;
        /* An entry that cannot be read (a snapshot compacted it away) may have written any
         * key. */
        if (log->read(log->rctx, i, &data, &len) != 0 ||
            (len > 0 && entry_touches(t, &er, data, len, &w)))
            rc = RN_EWATCH;
    }
    be_entry_reader_free(&er);
    free(w.keys);
    return rc;
}

int px_server_admit(struct px_server *s, const void *guard, size_t guard_len,
                    const struct rn_log_view *log)
{
    return px_watch_admit(s->table, guard, guard_len, log);
}
