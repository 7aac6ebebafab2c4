#include "proxy/pubsub.h"

#include <errno.h>
#include <ev.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend/apply.h"
#include "backend/link.h"
#include "backend/reader.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "proxy/client.h"

struct px_sub {
    int fd;
    ev_io rio, wio;
    int writing;
    struct rd_buf out;
    struct be_reader reader;
    struct px_client *c;
    int skip; /* replies not for the client (AUTH) */
};

static const char *const allowed[] = {"subscribe",   "psubscribe",   "ssubscribe",
                                      "unsubscribe", "punsubscribe", "sunsubscribe",
                                      "ping",        "quit",         "reset"};

int px_pubsub_allowed(const char *name)
{
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (!strcmp(name, allowed[i]))
            return 1;
    return 0;
}

static void sub_free(struct px_sub *sb)
{
    struct ev_loop *loop = sb->c->s->loop;
    ev_io_stop(loop, &sb->rio);
    ev_io_stop(loop, &sb->wio);
    if (sb->fd >= 0)
        close(sb->fd);
    rd_buf_free(&sb->out);
    be_reader_free(&sb->reader);
    free(sb);
}

void px_pubsub_close(struct px_client *c)
{
    if (c->sub == NULL)
        return;
    sub_free(c->sub);
    c->sub = NULL;
    c->in_pubsub = 0;
}

/* The link failed: the client cannot keep its subscriptions, so it is closed, as a Redis
 * client whose server went away would be; its library reconnects and subscribes again. */
static void sub_failed(struct px_sub *sb, const char *why)
{
    struct px_client *c = sb->c;
    rd_verbose("subscriber link of client id=%llu lost: %s", (unsigned long long)c->id, why);
    px_pubsub_close(c);
    px_client_close(c, "its subscriber link to the local redis was lost");
}

static int sub_flush(struct px_sub *sb)
{
    while (rd_buf_unread(&sb->out) > 0) {
        ssize_t n = send(sb->fd, rd_buf_rptr(&sb->out), rd_buf_unread(&sb->out), MSG_NOSIGNAL);
        if (n > 0) {
            rd_buf_consume(&sb->out, (size_t)n);
            continue;
        }
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOTCONN))
            break;
        return -1;
    }
    int want = rd_buf_unread(&sb->out) > 0;
    if (want != sb->writing) {
        struct ev_loop *loop = sb->c->s->loop;
        if (want)
            ev_io_start(loop, &sb->wio);
        else
            ev_io_stop(loop, &sb->wio);
        sb->writing = want;
    }
    return 0;
}

static void sub_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct px_sub *sb = w->data;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(sb->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
        sub_failed(sb, strerror(err));
        return;
    }
    if (sub_flush(sb) != 0)
        sub_failed(sb, strerror(errno));
}

/* Subscribe mode ends when Redis says no subscription is left. */
static void track_mode(struct px_client *c, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_INTEGER)
        return;
    const char *k = r->element[0]->str;
    if (strstr(k, "subscribe") != NULL)
        c->in_pubsub = r->element[2]->integer > 0;
}

static void sub_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct px_sub *sb = w->data;
    struct px_client *c = sb->c;
    char buf[16384];
    ssize_t n = read(sb->fd, buf, sizeof(buf));
    if (n == 0) {
        sub_failed(sb, "connection closed");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            sub_failed(sb, strerror(errno));
        return;
    }
    if (be_reader_feed(&sb->reader, buf, (size_t)n) != 0) {
        sub_failed(sb, sb->reader.errstr);
        return;
    }
    for (;;) {
        redisReply *r = NULL;
        if (be_reader_get(&sb->reader, &r) != 0) {
            sub_failed(sb, sb->reader.errstr);
            return;
        }
        if (r == NULL)
            break;
        if (sb->skip > 0) {
            sb->skip--;
            int bad = r->type == REDIS_REPLY_ERROR;
            be_reply_free(r);
            if (bad) {
                sub_failed(sb, "AUTH refused");
                return;
            }
            continue;
        }
        track_mode(c, r);
        int rc = be_reply_encode(r, &c->out);
        be_reply_free(r);
        if (rc != 0) {
            px_client_close(c, "out of memory");
            return;
        }
        if (px_client_push(c) != 0)
            return; /* the client was closed, and this link with it */
    }
}

static struct px_sub *sub_open(struct px_client *c)
{
    struct px_server *s = c->s;
    struct px_sub *sb = calloc(1, sizeof(*sb));
    if (sb == NULL)
        return NULL;
    sb->c = c;
    rd_buf_init(&sb->out);
    be_reader_init(&sb->reader);
    sb->fd = rd_connect_addr(s->cfg->redis, NULL, 0);
    if (sb->fd < 0) {
        sb->fd = sb->fd < 0 ? -1 : sb->fd;
        c->sub = sb;
        px_pubsub_close(c);
        return NULL;
    }
    ev_io_init(&sb->rio, sub_read_cb, sb->fd, EV_READ);
    sb->rio.data = sb;
    ev_io_init(&sb->wio, sub_write_cb, sb->fd, EV_WRITE);
    sb->wio.data = sb;
    ev_io_start(s->loop, &sb->rio);
    if (s->cfg->redis_password[0]) {
        const char *pw = s->cfg->redis_password;
        rd_resp_array_len(&sb->out, 2);
        rd_resp_bulk(&sb->out, "AUTH", 4);
        rd_resp_bulk(&sb->out, pw, strlen(pw));
        sb->skip = 1;
    }
    return sb;
}

int px_pubsub_forward(struct px_client *c, struct px_req *r)
{
    if (c->sub == NULL && (c->sub = sub_open(c)) == NULL) {
        px_reply_err(r, "%s", px_backend_unavailable(c->s));
        return -1;
    }
    struct px_sub *sb = c->sub;
    rd_resp_array_len(&sb->out, r->cmd.argc);
    for (int i = 0; i < r->cmd.argc; i++)
        rd_resp_bulk(&sb->out, r->cmd.argv[i], r->cmd.argvlen[i]);
    if (strstr(r->def->name, "subscribe") != NULL && strstr(r->def->name, "unsub") == NULL)
        c->in_pubsub = 1;
    if (sub_flush(sb) != 0) {
        px_pubsub_close(c);
        px_reply_err(r, "%s", px_backend_unavailable(c->s));
        return -1;
    }
    return 0;
}
