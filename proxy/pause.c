/* pause.c: CLIENT PAUSE and CLIENT UNPAUSE, for this node's clients.
 *
 * As in Redis 7.0: CLIENT PAUSE ms [WRITE|ALL] holds commands until the pause ends (its time
 * passes, or CLIENT UNPAUSE). WRITE holds what may change data or be replicated (write and
 * may-replicate commands: SET, EVAL, PUBLISH, PFCOUNT, ..., and an EXEC whose transaction holds
 * one), ALL holds every command, CLIENT UNPAUSE included (as in Redis: such a pause ends when its
 * time is up). A held command keeps its place: the client's
 * later commands wait behind it. Commands rejected before they would run (unknown, arity,
 * NOAUTH) are answered at once; commands queued inside MULTI are held like the same command
 * outside it, since Redis checks the pause before queueing. A pause that is already on is only
 * ever made longer or stricter. Held clients count in INFO's blocked_clients.
 *
 * The pause is this node's: other nodes' clients keep writing, and their writes reach this
 * node's Redis through the log (Redis's own use of a pause, stopping writes on a master while a
 * replica catches up, is redraft's leadership transfer). An EVAL whose script declares
 * `#!lua flags=no-writes` is not held; EVALSHA and FCALL are, since redraft does not know the
 * flags of a cached script or a function.
 */
#include "proxy/pause.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/client.h"

enum { PAUSE_NONE = 0, PAUSE_WRITE, PAUSE_ALL };

/* Whether an EVAL script's shebang line declares no-writes. */
static int script_no_writes(const char *s, size_t n)
{
    if (n < 5 || memcmp(s, "#!lua", 5) != 0)
        return 0;
    const char *nl = memchr(s, '\n', n);
    size_t line = nl ? (size_t)(nl - s) : n;
    for (size_t i = 5; i + 15 <= line; i++)
        if (!memcmp(s + i, "flags=", 6)) {
            /* flags=a,b,c up to the next blank */
            size_t j = i + 6;
            while (j < line && s[j] != ' ') {
                size_t k = j;
                while (k < line && s[k] != ',' && s[k] != ' ')
                    k++;
                if (k - j == 9 && !memcmp(s + j, "no-writes", 9))
                    return 1;
                j = k < line && s[k] == ',' ? k + 1 : k;
            }
            return 0;
        }
    return 0;
}

/* Redis holds write and may-replicate commands; 7.0's COMMAND does not list may_replicate, but
 * every such command goes through redraft's log (route WRITE: EVAL, PUBLISH, PFCOUNT, ...). */
static int may_replicate(const struct px_cmddef *d, const struct px_cmd *cmd)
{
    if (d == NULL || !(d->route == PX_ROUTE_WRITE || (d->flags & PX_CF_WRITE)))
        return 0;
    if (!strcmp(d->name, "eval") && cmd->argc > 1)
        return !script_no_writes(cmd->argv[1], cmd->argvlen[1]);
    return 1;
}

int px_pause_holds(struct px_client *c, const struct px_req *r)
{
    struct px_server *s = c->s;
    if (s->pause_type == PAUSE_NONE)
        return 0;
    int hold = s->pause_type == PAUSE_ALL;
    if (!hold && r->nm > 0) { /* EXEC: held when the transaction writes */
        for (size_t i = 0; i < r->nm && !hold; i++)
            hold = may_replicate(r->mdefs[i], &r->mcmds[i]);
    } else if (!hold) {
        hold = may_replicate(r->def, &r->cmd);
    }
    if (hold && !c->paused) {
        c->paused = 1;
        s->npaused++;
    }
    return hold;
}

size_t px_pause_count(const struct px_server *s)
{
    return s->npaused;
}

void px_pause_forget(struct px_client *c)
{
    if (c->paused) {
        c->paused = 0;
        c->s->npaused--;
    }
}

static void pause_end(struct px_server *s)
{
    s->pause_type = PAUSE_NONE;
    s->pause_until = 0;
    ev_timer_stop(s->loop, &s->pause_timer);
    /* The held clients go on, oldest first (the list is newest first). */
    struct px_client *last = s->clients;
    while (last != NULL && last->next != NULL)
        last = last->next;
    for (struct px_client *c = last, *prev; c != NULL && s->npaused > 0; c = prev) {
        prev = c->prev;
        if (!c->paused)
            continue;
        px_pause_forget(c);
        if (!c->closed)
            px_client_dispatch(c);
    }
}

static void pause_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct px_server *s = w->data;
    double left = s->pause_until - ev_now(s->loop);
    if (left <= 0.0005) {
        pause_end(s);
        return;
    }
    ev_timer_set(w, left, 0.);
    ev_timer_start(s->loop, w);
}

void px_pause_unpause(struct px_server *s)
{
    pause_end(s);
}

int px_pause_cmd(struct px_client *c, struct px_req *r)
{
    struct px_server *s = c->s;
    char *end;
    errno = 0;
    long long ms = strtoll(r->cmd.argv[2], &end, 10);
    if (errno || end == r->cmd.argv[2] || *end != '\0') {
        px_reply_err(r, "ERR timeout is not an integer or out of range");
        return -1;
    }
    if (ms < 0) {
        px_reply_err(r, "ERR timeout is negative");
        return -1;
    }
    int type = PAUSE_ALL;
    if (r->cmd.argc == 4) {
        if (!strcasecmp(r->cmd.argv[3], "write")) {
            type = PAUSE_WRITE;
        } else if (strcasecmp(r->cmd.argv[3], "all") != 0) {
            px_reply_err(r, "ERR CLIENT PAUSE mode must be WRITE or ALL");
            return -1;
        }
    } else if (r->cmd.argc > 4) {
        px_reply_err(r, "ERR syntax error");
        return -1;
    }
    double until = ev_now(s->loop) + (double)ms / 1000.0;
    if (type > s->pause_type)
        s->pause_type = type;
    if (until > s->pause_until)
        s->pause_until = until;
    ev_timer_stop(s->loop, &s->pause_timer);
    s->pause_timer.data = s;
    ev_timer_set(&s->pause_timer, s->pause_until - ev_now(s->loop), 0.);
    ev_timer_start(s->loop, &s->pause_timer);
    return 0;
}

void px_pause_init(struct px_server *s)
{
    ev_timer_init(&s->pause_timer, pause_timer_cb, 0., 0.);
    s->pause_timer.data = s;
}

void px_pause_stop(struct px_server *s)
{
    ev_timer_stop(s->loop, &s->pause_timer);
}
