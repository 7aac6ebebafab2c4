#include "backend/ctl.h"

#include <ev.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/link.h"
#include "common/log.h"

struct be_ctl {
    struct ev_loop *loop;
    struct be_link *link;
    void *ctx;
    struct be_ctl_cbs cbs;
    ev_timer probe;
    int probing;       /* a PING is out */
    double fast_until; /* probe every BE_CTL_PROBE_FAST_MS until then */
    char busy[256];    /* Redis's BUSY text, empty when not busy */
    int freeing;       /* be_ctl_free: the link's callbacks tell nobody */
};

/* A call's answer must find its id; it lives until its callback (hiredis calls every pending
 * callback once, with NULL when the connection is lost). */
struct call_req {
    struct be_ctl *ctl;
    uint64_t id;
};

static void set_busy(struct be_ctl *c, const char *err)
{
    if (err == NULL) {
        if (c->busy[0] == '\0')
            return;
        c->busy[0] = '\0';
        rd_notice("local redis is no longer busy");
        if (c->cbs.busy)
            c->cbs.busy(c->ctx, NULL);
        return;
    }
    if (strcmp(c->busy, err) == 0)
        return;
    snprintf(c->busy, sizeof(c->busy), "%s", err);
    rd_warning("local redis is busy: %s", c->busy);
    if (c->cbs.busy)
        c->cbs.busy(c->ctx, c->busy);
}

static void probe_later(struct be_ctl *c, int ms)
{
    ev_timer_stop(c->loop, &c->probe);
    ev_timer_set(&c->probe, ms / 1000.0, 0);
    ev_timer_start(c->loop, &c->probe);
}

static int next_probe_ms(const struct be_ctl *c)
{
    if (c->busy[0])
        return BE_CTL_PROBE_BUSY_MS;
    return ev_now(c->loop) < c->fast_until ? BE_CTL_PROBE_FAST_MS : BE_CTL_PROBE_MS;
}

static void probe_cb(struct be_link *l, void *reply, void *privdata)
{
    struct be_ctl *c = privdata;
    redisReply *r = reply;
    if (c->freeing)
        return;
    c->probing = 0;
    if (r == NULL)
        return; /* lost: on_down reported it */
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSY", 4) == 0)
        set_busy(c, r->str);
    else
        set_busy(c, NULL);
    probe_later(c, next_probe_ms(c));
}

static void send_probe(struct be_ctl *c)
{
    if (c->probing || !be_link_is_ready(c->link))
        return;
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    if (be_link_send(c->link, ping, sizeof(ping) - 1, probe_cb, c) == 0) {
        c->probing = 1;
        be_link_flush(c->link);
    }
}

static void probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct be_ctl *c = w->data;
    send_probe(c);
    if (!c->probing)
        probe_later(c, BE_CTL_PROBE_MS); /* not connected: try again later */
}

static void call_cb(struct be_link *l, void *reply, void *privdata)
{
    struct call_req *k = privdata;
    struct be_ctl *c = k->ctl;
    if (!c->freeing && c->cbs.answer)
        c->cbs.answer(c->ctx, k->id, reply);
    free(k);
}

static void on_ready(void *ctx, const struct be_link_info *info)
{
    struct be_ctl *c = ctx;
    c->probing = 0;
    probe_later(c, 0);
}

static void on_down(void *ctx, const char *why)
{
    struct be_ctl *c = ctx;
    c->probing = 0;
    set_busy(c, NULL);
}

struct be_ctl *be_ctl_new(struct ev_loop *loop, const char *addr, const char *password, void *ctx,
                          const struct be_ctl_cbs *cbs)
{
    struct be_ctl *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->ctx = ctx;
    c->cbs = *cbs;
    static const struct be_link_cbs lcbs = {.on_ready = on_ready, .on_down = on_down};
    c->link = be_link_new(loop, addr, password, c, &lcbs);
    if (c->link == NULL) {
        free(c);
        return NULL;
    }
    be_link_set_bare(c->link);
    ev_timer_init(&c->probe, probe_timer_cb, BE_CTL_PROBE_MS / 1000.0, 0);
    c->probe.data = c;
    return c;
}

void be_ctl_start(struct be_ctl *c)
{
    be_link_start(c->link);
    ev_timer_start(c->loop, &c->probe);
}

void be_ctl_free(struct be_ctl *c)
{
    if (c == NULL)
        return;
    ev_timer_stop(c->loop, &c->probe);
    c->freeing = 1;
    be_link_free(c->link);
    free(c);
}

const char *be_ctl_busy(const struct be_ctl *c)
{
    return c->busy[0] ? c->busy : NULL;
}

void be_ctl_not_busy(struct be_ctl *c)
{
    if (c->busy[0] == '\0')
        return;
    set_busy(c, NULL);
    /* The next script of the pipeline may be running already: look again soon. */
    c->fast_until = ev_now(c->loop) + BE_CTL_FAST_FOR_MS / 1000.0;
    if (!c->probing)
        probe_later(c, BE_CTL_PROBE_FAST_MS);
}

void be_ctl_poke(struct be_ctl *c)
{
    c->fast_until = ev_now(c->loop) + BE_CTL_FAST_FOR_MS / 1000.0;
    if (!c->probing)
        probe_later(c, BE_CTL_PROBE_FAST_MS);
}

int be_ctl_call(struct be_ctl *c, int argc, const char **argv, const size_t *argvlen, uint64_t id)
{
    struct call_req *k = malloc(sizeof(*k));
    if (k == NULL)
        return -1;
    k->ctl = c;
    k->id = id;
    if (be_link_send_argv(c->link, argc, argv, argvlen, call_cb, k) != 0) {
        free(k);
        return -1;
    }
    be_link_flush(c->link);
    return 0;
}
