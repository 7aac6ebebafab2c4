/* multi.c: MULTI/EXEC/DISCARD. The proxy queues a transaction's commands itself and EXEC
 * proposes them as ONE log entry (flag MULTI), which every node applies inside one MULTI/EXEC
 * batch: all or nothing, on every replica, in the same place of the log.
 *
 * Redis's rules are kept: a command that cannot be queued (unknown, wrong arity, refused) is
 * answered with its error and makes EXEC answer EXECABORT; MULTI cannot nest; EXEC and DISCARD
 * need a MULTI; WATCH inside MULTI is an error that leaves the transaction as it is; EXEC
 * (aborted or not) and DISCARD forget the watched keys. A watching client's EXEC is proposed
 * with a guard the leader checks (proxy/watch.h) and answers a null array when a watched key
 * was touched. Differences, each for a reason: SELECT inside MULTI is checked when queued (the
 * hidden database must never be selected, and redraft only knows which it is when queueing);
 * commands the proxy answers itself (AUTH, HELLO, CLIENT SETNAME, ...) are refused inside MULTI,
 * except PING, ECHO, SELECT and UNWATCH, which Redis can run inside the transaction; blocking
 * commands are allowed, since Redis runs them without blocking inside MULTI.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/client.h"
#include "proxy/multi.h"
#include "proxy/watch.h"

#define WHY_BLOCKING_PREFIX "blocking commands"

static void multi_clear(struct px_client *c)
{
    for (size_t i = 0; i < c->mq_len; i++)
        px_cmd_free(&c->mq[i]);
    free(c->mq);
    free(c->mq_defs);
    c->mq = NULL;
    c->mq_defs = NULL;
    c->mq_len = c->mq_cap = 0;
    c->mq_bytes = 0;
    c->in_multi = 0;
    c->multi_dirty = 0;
}

void px_multi_free(struct px_client *c)
{
    multi_clear(c);
    px_watch_clear(c);
}

static int queue_cmd(struct px_client *c, struct px_req *r)
{
    if (c->mq_len == c->mq_cap) {
        size_t cap = c->mq_cap ? c->mq_cap * 2 : 8;
        struct px_cmd *q = realloc(c->mq, cap * sizeof(*q));
        if (q == NULL)
            return -1;
        c->mq = q;
        const struct px_cmddef **d = realloc(c->mq_defs, cap * sizeof(*d));
        if (d == NULL)
            return -1;
        c->mq_defs = d;
        c->mq_cap = cap;
    }
    for (int i = 0; i < r->cmd.argc; i++)
        c->mq_bytes += r->cmd.argvlen[i];
    c->mq[c->mq_len] = r->cmd; /* the request gives its arguments to the queue */
    c->mq_defs[c->mq_len] = r->def;
    c->mq_len++;
    memset(&r->cmd, 0, sizeof(r->cmd));
    return 0;
}

/* Whether def may be queued; writes the error into r otherwise. */
static int queueable(struct px_client *c, struct px_req *r)
{
    const struct px_cmddef *d = r->def;
    if (d->route == PX_ROUTE_REFUSE) {
        int blocking_only = (d->flags & PX_CF_BLOCKING) && d->why != NULL &&
                            strncmp(d->why, WHY_BLOCKING_PREFIX, strlen(WHY_BLOCKING_PREFIX)) == 0;
        if (!blocking_only) {
            px_reply_err(r, "ERR %s", d->why ? d->why : "command not supported by redraft");
            return 0;
        }
    }
    if (d->flags & PX_CF_NO_MULTI) {
        px_reply_err(r, "ERR Command not allowed inside a transaction");
        return 0;
    }
    if (d->route == PX_ROUTE_LOCAL && d->local != PX_L_PING && d->local != PX_L_ECHO &&
        d->local != PX_L_SELECT && d->local != PX_L_UNWATCH) {
        px_reply_err(r, "ERR %s inside MULTI is not supported by redraft", d->name);
        return 0;
    }
    if (d->local == PX_L_SELECT) {
        char *end;
        errno = 0;
        long long db = strtoll(r->cmd.argv[1], &end, 10);
        if (errno || *end != '\0' || end == r->cmd.argv[1]) {
            px_reply_err(r, "ERR value is not an integer or out of range");
            return 0;
        }
        if (db < 0 || db >= c->s->hidden_db) {
            px_reply_err(r, "ERR DB index is out of range");
            return 0;
        }
    }
    /* The checks of a single command hold inside MULTI too. */
    if ((d->route == PX_ROUTE_READ || d->route == PX_ROUTE_WRITE) && px_route_check(c->s, r) != 0)
        return 0;
    if (c->mq_len >= PX_MULTI_CMDS_MAX || c->mq_bytes > PX_MULTI_BYTES_MAX) {
        px_reply_err(r, "ERR transaction too large for redraft");
        return 0;
    }
    return 1;
}

int px_multi_dispatch(struct px_client *c, struct px_req *r)
{
    enum px_local l = r->def->local;
    if (l == PX_L_RESET || l == PX_L_QUIT) {
        multi_clear(c); /* as in Redis, they run at once, and the transaction is gone */
        return PX_MULTI_NONE;
    }
    if (l == PX_L_MULTI) {
        if (c->in_multi) {
            px_reply_err(r, "ERR MULTI calls can not be nested");
            return PX_MULTI_DONE;
        }
        c->in_multi = 1;
        c->multi_dirty = 0;
        rd_resp_simple(&r->reply, '+', "OK");
        return PX_MULTI_DONE;
    }
    if (l == PX_L_DISCARD) {
        if (!c->in_multi) {
            px_reply_err(r, "ERR DISCARD without MULTI");
            return PX_MULTI_DONE;
        }
        multi_clear(c);
        px_watch_clear(c);
        rd_resp_simple(&r->reply, '+', "OK");
        return PX_MULTI_DONE;
    }
    if (l == PX_L_EXEC) {
        if (!c->in_multi) {
            px_reply_err(r, "ERR EXEC without MULTI");
            return PX_MULTI_DONE;
        }
        if (c->s->busy_err[0]) {
            /* As Redis refuses an EXEC while a script runs: the transaction is gone. */
            multi_clear(c);
            px_watch_clear(c);
            px_reply_err(r, "EXECABORT Transaction discarded because of: %s", c->s->busy_err);
            return PX_MULTI_DONE;
        }
        if (c->multi_dirty) {
            multi_clear(c);
            px_watch_clear(c);
            px_reply_err(r, "EXECABORT Transaction discarded because of previous errors.");
            return PX_MULTI_DONE;
        }
        if (c->mq_len == 0 && !px_watch_active(c)) {
            multi_clear(c);
            rd_resp_array_len(&r->reply, 0);
            return PX_MULTI_DONE;
        }
        /* Watched keys go with the transaction as its guard (proxy/watch.h). */
        if (px_watch_active(c) && px_watch_take(c, r) != 0) {
            multi_clear(c);
            px_reply_err(r, "ERR out of memory");
            return PX_MULTI_DONE;
        }
        /* The transaction becomes this request's: EXEC is proposed as one entry. */
        r->mcmds = c->mq;
        r->mdefs = c->mq_defs;
        r->nm = c->mq_len;
        c->mq = NULL;
        c->mq_defs = NULL;
        c->mq_len = c->mq_cap = 0;
        /* A queued SELECT moves the client to that database after the transaction. */
        for (size_t i = 0; i < r->nm; i++)
            if (r->mdefs[i]->local == PX_L_SELECT)
                r->db_after = (int)strtol(r->mcmds[i].argv[1], NULL, 10) + 1;
        multi_clear(c);
        return PX_MULTI_EXEC;
    }
    if (!c->in_multi)
        return PX_MULTI_NONE;
    if (r->def->local == PX_L_WATCH) {
        px_reply_err(r, "ERR WATCH inside MULTI is not allowed");
        return PX_MULTI_DONE;
    }
    if (!queueable(c, r)) {
        c->multi_dirty = 1;
        return PX_MULTI_DONE;
    }
    if (queue_cmd(c, r) != 0) {
        c->multi_dirty = 1;
        px_reply_err(r, "ERR out of memory");
        return PX_MULTI_DONE;
    }
    rd_resp_simple(&r->reply, '+', "QUEUED");
    r->queued = 1;
    return PX_MULTI_DONE;
}
