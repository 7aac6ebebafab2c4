#include "backend/snapshot.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/netaddr.h"
#include "common/sha256.h"

#define SNAP_IO_CHUNK    (256u * 1024) /* bytes moved per read or write */
#define SNAP_LINE_MAX    512           /* a protocol line longer than this is garbage */
#define SNAP_REQ_MAX     (64u * 1024)  /* bytes a replica's handshake command may take */
#define SNAP_REPLICA_ARG 16            /* arguments of one handshake command, at most */

static void fmt(char *why, size_t whylen, const char *f, const char *arg)
{
    if (why && whylen)
        snprintf(why, whylen, f, arg);
}

static int fsync_close(int fd)
{
    int rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

/* ---- the RDB stream of a SYNC ---------------------------------------------------------------- */

static int rdb_fail(struct be_rdb_reader *r, const char *why)
{
    snprintf(r->err, sizeof(r->err), "%s", why);
    r->state = BE_RDB_FAILED;
    return -1;
}

void be_rdb_reader_init(struct be_rdb_reader *r, int expect_auth, be_rdb_sink_fn *sink, void *ctx)
{
    memset(r, 0, sizeof(*r));
    r->state = expect_auth ? BE_RDB_AUTH : BE_RDB_HEADER;
    r->sink = sink;
    r->ctx = ctx;
}

/* EOF framing: everything but the last BE_RDB_EOF_MARK bytes goes to the sink; the held-back
 * tail is compared with the mark. Returns 1 at the end, 0 to continue, -1 on a sink error. */
static int rdb_body_eof(struct be_rdb_reader *r, const char *p, size_t n)
{
    while (n > 0) {
        size_t take = n;
        if (r->taillen + take > BE_RDB_EOF_MARK) {
            size_t spill = r->taillen + take - BE_RDB_EOF_MARK;
            size_t from_tail = spill < r->taillen ? spill : r->taillen;
            if (from_tail && r->sink(r->ctx, r->tail, from_tail) != 0)
                return -1;
            memmove(r->tail, r->tail + from_tail, r->taillen - from_tail);
            r->taillen -= from_tail;
            size_t from_new = spill - from_tail;
            if (from_new && r->sink(r->ctx, p, from_new) != 0)
                return -1;
            p += from_new;
            n -= from_new;
            r->got += spill;
            take = n;
        }
        memcpy(r->tail + r->taillen, p, take);
        r->taillen += take;
        p += take;
        n -= take;
    }
    return r->taillen == BE_RDB_EOF_MARK && memcmp(r->tail, r->mark, BE_RDB_EOF_MARK) == 0;
}

int be_rdb_reader_feed(struct be_rdb_reader *r, const char *p, size_t n)
{
    if (r->state == BE_RDB_DONE)
        return 1;
    if (r->state == BE_RDB_FAILED)
        return -1;
    while (n > 0) {
        if (r->state == BE_RDB_BODY) {
            int rc;
            if (r->eof_mode) {
                rc = rdb_body_eof(r, p, n);
                if (rc < 0)
                    snprintf(r->err, sizeof(r->err), "cannot write the snapshot file");
            } else {
                size_t take = n < r->want ? n : (size_t)r->want;
                if (r->sink(r->ctx, p, take) != 0) {
                    snprintf(r->err, sizeof(r->err), "cannot write the snapshot file");
                    rc = -1;
                } else {
                    r->want -= take;
                    r->got += take;
                    rc = r->want == 0; /* bytes after the RDB are the replication feed */
                }
            }
            r->state = rc > 0 ? BE_RDB_DONE : rc < 0 ? BE_RDB_FAILED : r->state;
            return rc;
        }
        /* A line: +OK of AUTH, or the RDB header; bare newlines are keep-alives. */
        char ch = *p++;
        n--;
        if (ch == '\n' && r->linelen == 0)
            continue;
        if (ch != '\n') {
            if (r->linelen + 1 >= sizeof(r->line))
                return rdb_fail(r, "redis sent a line too long for the replication protocol");
            r->line[r->linelen++] = ch;
            continue;
        }
        if (r->linelen && r->line[r->linelen - 1] == '\r')
            r->linelen--;
        r->line[r->linelen] = '\0';
        r->linelen = 0;
        if (r->line[0] == '-') {
            snprintf(r->err, sizeof(r->err), "redis refused the sync: %.*s",
                     (int)(sizeof(r->err) - 40), r->line + 1);
            r->state = BE_RDB_FAILED;
            return -1;
        }
        if (r->state == BE_RDB_AUTH) {
            if (r->line[0] != '+')
                return rdb_fail(r, "unexpected answer to AUTH");
            r->state = BE_RDB_HEADER;
            continue;
        }
        if (r->line[0] != '$')
            return rdb_fail(r, "unexpected answer to SYNC");
        if (strncmp(r->line, "$EOF:", 5) == 0) {
            if (strlen(r->line + 5) != BE_RDB_EOF_MARK)
                return rdb_fail(r, "bad diskless end mark from redis");
            memcpy(r->mark, r->line + 5, BE_RDB_EOF_MARK);
            r->eof_mode = 1;
        } else {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(r->line + 1, &end, 10);
            if (errno || *end || end == r->line + 1 || r->line[1] == '-')
                return rdb_fail(r, "bad RDB length from redis");
            r->want = v;
            if (v == 0) {
                r->state = BE_RDB_DONE;
                return 1;
            }
        }
        r->state = BE_RDB_BODY;
    }
    return 0;
}

/* ---- capture --------------------------------------------------------------------------------- */

struct be_capture {
    struct ev_loop *loop;
    int fd, file;
    ev_io rio, wio;
    ev_timer stall;
    int done_called;
    char out[1024]; /* the request: AUTH and SYNC */
    size_t outlen, outoff;
    struct be_rdb_reader rd;
    be_snap_done_fn *done;
    void *ctx;
};

static void cap_stop_io(struct be_capture *c)
{
    ev_io_stop(c->loop, &c->rio);
    ev_io_stop(c->loop, &c->wio);
    ev_timer_stop(c->loop, &c->stall);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void cap_finish(struct be_capture *c, int ok, const char *why)
{
    if (c->done_called)
        return;
    c->done_called = 1;
    cap_stop_io(c);
    if (c->file >= 0) {
        if (fsync_close(c->file) != 0 && ok) {
            ok = 0;
            why = "cannot fsync the snapshot file";
        }
        c->file = -1;
    }
    c->done(c->ctx, ok, why);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cap_sink(void *ctx, const void *p, size_t n)
{
    struct be_capture *c = ctx;
    return write_all(c->file, p, n);
}

static void cap_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct be_capture *c = w->data;
    static char buf[SNAP_IO_CHUNK];
    for (int round = 0; round < 16 && !c->done_called; round++) {
        ssize_t r = read(c->fd, buf, sizeof(buf));
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (r <= 0) {
            cap_finish(c, 0, r == 0 ? "redis closed the sync connection" : strerror(errno));
            return;
        }
        ev_timer_again(loop, &c->stall);
        int rc = be_rdb_reader_feed(&c->rd, buf, (size_t)r);
        if (rc != 0) {
            cap_finish(c, rc > 0, rc > 0 ? NULL : c->rd.err);
            return;
        }
    }
}

static void cap_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct be_capture *c = w->data;
    while (c->outoff < c->outlen) {
        ssize_t r = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            cap_finish(c, 0, "cannot send SYNC to redis");
            return;
        }
        c->outoff += (size_t)r;
    }
    ev_io_stop(loop, w);
}

static void cap_stall_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cap_finish(w->data, 0, "the sync from redis stalled");
}

struct be_capture *be_capture_start(struct ev_loop *loop, const char *addr, const char *password,
                                    const char *path, be_snap_done_fn *done, void *ctx, char *why,
                                    size_t whylen)
{
    struct be_capture *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fmt(why, whylen, "%s", "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->done = done;
    c->ctx = ctx;
    c->fd = c->file = -1;
    size_t off = 0;
    if (password && password[0]) {
        size_t pl = strlen(password);
        if (pl > 512) {
            fmt(why, whylen, "%s", "redis password too long");
            free(c);
            return NULL;
        }
        off = (size_t)snprintf(c->out, sizeof(c->out), "*2\r\n$4\r\nAUTH\r\n$%zu\r\n", pl);
        memcpy(c->out + off, password, pl);
        off += pl;
        memcpy(c->out + off, "\r\n", 2);
        off += 2;
    }
    be_rdb_reader_init(&c->rd, off > 0, cap_sink, c);
    memcpy(c->out + off, "*1\r\n$4\r\nSYNC\r\n", 14);
    c->outlen = off + 14;
    c->file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (c->file < 0) {
        fmt(why, whylen, "cannot create the snapshot file: %s", strerror(errno));
        free(c);
        return NULL;
    }
    c->fd = rd_connect_addr(addr, why, whylen);
    if (c->fd < 0) {
        close(c->file);
        free(c);
        return NULL;
    }
    ev_io_init(&c->rio, cap_read_cb, c->fd, EV_READ);
    ev_io_init(&c->wio, cap_write_cb, c->fd, EV_WRITE);
    ev_init(&c->stall, cap_stall_cb);
    c->stall.repeat = BE_SNAP_STALL_SECONDS;
    c->rio.data = c->wio.data = c->stall.data = c;
    ev_io_start(loop, &c->rio);
    ev_io_start(loop, &c->wio);
    ev_timer_again(loop, &c->stall);
    return c;
}

uint64_t be_capture_bytes(const struct be_capture *c)
{
    return c->rd.got;
}

void be_capture_free(struct be_capture *c)
{
    if (c == NULL)
        return;
    cap_stop_io(c);
    if (c->file >= 0)
        close(c->file);
    free(c);
}

/* ---- feeder (redraft as master for one full sync) ------------------------------------------ */

enum feed_state { FEED_LISTEN, FEED_HANDSHAKE, FEED_SEND, FEED_SENT, FEED_DONE };

struct be_feeder {
    struct ev_loop *loop;
    int lfd, fd, file;
    ev_io lio, rio, wio;
    ev_timer stall;
    enum feed_state state;
    uint64_t size, sent;
    size_t hdr;     /* bytes of the sync header still queued ahead of the file */
    char token[65]; /* the replica must AUTH with it first ("" = no check) */
    int authed;
    char in[SNAP_REQ_MAX];
    size_t inlen;
    char out[SNAP_IO_CHUNK];
    size_t outlen, outoff;
    be_snap_done_fn *done;
    void *ctx;
};

static void feed_finish(struct be_feeder *f, int ok, const char *why)
{
    if (f->state == FEED_DONE || f->state == FEED_SENT)
        return;
    f->state = ok ? FEED_SENT : FEED_DONE;
    ev_io_stop(f->loop, &f->wio);
    ev_timer_stop(f->loop, &f->stall);
    if (!ok) {
        ev_io_stop(f->loop, &f->rio);
        ev_io_stop(f->loop, &f->lio);
    }
    f->done(f->ctx, ok, why);
}

/* Queues bytes for the replica (the buffer is empty whenever this is called in the handshake). */
static int feed_queue(struct be_feeder *f, const char *p, size_t n)
{
    if (f->outlen + n > sizeof(f->out))
        return -1;
    memcpy(f->out + f->outlen, p, n);
    f->outlen += n;
    ev_io_start(f->loop, &f->wio);
    return 0;
}

/* One complete multibulk command at the head of f->in: its first argument (upper-case,
 * truncated) and its last (as is; "" when longer than lastlen - 1). Returns bytes used, 0 when
 * incomplete, -1 when malformed. */
static long feed_parse(const char *p, size_t n, char *name, size_t namelen, char *last,
                       size_t lastlen)
{
    last[0] = '\0';
    const char *end = p + n, *q = p;
    if (n == 0)
        return 0;
    if (*q != '*') {
        /* An inline command (a PING typed by hand, say): one line. */
        const char *nl = memchr(q, '\n', n);
        if (!nl)
            return n >= SNAP_LINE_MAX ? -1 : 0;
        size_t l = 0;
        while (q < nl && *q != ' ' && *q != '\r' && l + 1 < namelen)
            name[l++] = (char)(*q >= 'a' && *q <= 'z' ? *q - 32 : *q), q++;
        name[l] = '\0';
        return (long)(nl - p + 1);
    }
    char *e;
    long argc = strtol(q + 1, &e, 10);
    if (e >= end)
        return 0;
    if (argc < 1 || argc > SNAP_REPLICA_ARG || e + 1 >= end || e[0] != '\r')
        return e + 1 >= end ? 0 : -1;
    q = e + 2;
    for (long i = 0; i < argc; i++) {
        if (q >= end)
            return 0;
        if (*q != '$')
            return -1;
        long len = strtol(q + 1, &e, 10);
        if (e + 1 >= end)
            return 0;
        if (len < 0 || len > (long)SNAP_REQ_MAX || e[0] != '\r')
            return -1;
        q = e + 2;
        if (end - q < len + 2)
            return 0;
        if (i == 0) {
            size_t l = (size_t)len < namelen - 1 ? (size_t)len : namelen - 1;
            for (size_t k = 0; k < l; k++)
                name[k] = (char)(q[k] >= 'a' && q[k] <= 'z' ? q[k] - 32 : q[k]);
            name[l] = '\0';
        }
        if (i == argc - 1) {
            size_t l = (size_t)len < lastlen ? (size_t)len : 0;
            memcpy(last, q, l);
            last[l] = '\0';
        }
        q += len + 2;
    }
    return (long)(q - p);
}

static void feed_fill(struct be_feeder *f)
{
    if (f->outoff < f->outlen || f->sent >= f->size)
        return;
    ssize_t r = read(f->file, f->out, sizeof(f->out));
    if (r <= 0) {
        feed_finish(f, 0, "cannot read the snapshot file");
        return;
    }
    f->outoff = 0;
    f->outlen = (size_t)r;
    ev_io_start(f->loop, &f->wio);
}

static void feed_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct be_feeder *f = w->data;
    for (int round = 0; round < 16; round++) {
        while (f->outoff < f->outlen) {
            ssize_t r = write(f->fd, f->out + f->outoff, f->outlen - f->outoff);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (r <= 0) {
                feed_finish(f, 0, "the replica closed the sync connection");
                return;
            }
            f->outoff += (size_t)r;
            if (f->state == FEED_SEND) {
                size_t h = (size_t)r < f->hdr ? (size_t)r : f->hdr;
                f->hdr -= h;
                f->sent += (uint64_t)r - h;
            }
            ev_timer_again(loop, &f->stall);
        }
        f->outoff = f->outlen = 0;
        if (f->state != FEED_SEND) {
            ev_io_stop(loop, w);
            return;
        }
        if (f->sent >= f->size) {
            feed_finish(f, 1, NULL);
            return;
        }
        feed_fill(f);
        if (f->state != FEED_SEND)
            return;
    }
}

/* A connection that did not prove it is our Redis (the token it was given as masterauth):
 * closed, and the feeder listens again. Another local process can neither take the data nor
 * break the load. */
static void feed_drop(struct be_feeder *f, const char *why)
{
    rd_warning("snapshot: refused a connection to the sync listener: %s", why);
    ev_io_stop(f->loop, &f->rio);
    ev_io_stop(f->loop, &f->wio);
    close(f->fd);
    f->fd = -1;
    f->inlen = f->outlen = f->outoff = 0;
    f->state = FEED_LISTEN;
    ev_io_start(f->loop, &f->lio);
}

/* Returns -1 when the connection was dropped. */
static int feed_command(struct be_feeder *f, const char *name, const char *last)
{
    if (f->state != FEED_HANDSHAKE)
        return 0; /* REPLCONF ACK and the like, after the sync: nothing to answer */
    if (f->token[0] && !f->authed && strcmp(name, "PING") != 0) {
        if (strcmp(name, "AUTH") != 0 || strlen(last) != strlen(f->token) ||
            !rd_ct_memeq(last, f->token, strlen(f->token))) {
            feed_drop(f, strcmp(name, "AUTH") ? "no AUTH" : "wrong AUTH");
            return -1;
        }
        f->authed = 1;
        feed_queue(f, "+OK\r\n", 5);
        return 0;
    }
    if (!strcmp(name, "PING")) {
        feed_queue(f, "+PONG\r\n", 7);
    } else if (!strcmp(name, "PSYNC") || !strcmp(name, "SYNC")) {
        char hdr[128];
        int n = 0;
        if (!strcmp(name, "PSYNC"))
            n = snprintf(hdr, sizeof(hdr), "+FULLRESYNC %040d 0\r\n", 0);
        n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "$%llu\r\n", (unsigned long long)f->size);
        feed_queue(f, hdr, (size_t)n);
        f->state = FEED_SEND;
        /* The header goes out first; the file follows from feed_write_cb. */
        f->sent = 0;
        f->hdr = (size_t)n;
    } else {
        feed_queue(f, "+OK\r\n", 5); /* AUTH, REPLCONF, anything else of the handshake */
    }
    return 0;
}

static void feed_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct be_feeder *f = w->data;
    if (f->inlen == sizeof(f->in)) {
        if (f->state == FEED_HANDSHAKE) {
            feed_finish(f, 0, "the replica sent a command too long");
            return;
        }
        f->inlen = 0; /* after the sync: acks we do not need */
    }
    ssize_t r = read(f->fd, f->in + f->inlen, sizeof(f->in) - f->inlen);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        if (f->token[0] && !f->authed) {
            feed_drop(f, "closed before AUTH");
            return;
        }
        if (f->state != FEED_SENT)
            feed_finish(f, 0, "the replica closed the sync connection");
        ev_io_stop(loop, w);
        return;
    }
    f->inlen += (size_t)r;
    size_t off = 0;
    for (;;) {
        char name[32], last[72];
        long used = feed_parse(f->in + off, f->inlen - off, name, sizeof(name), last, sizeof(last));
        if (used == 0)
            break;
        if (used < 0) {
            if (f->token[0] && !f->authed) {
                feed_drop(f, "garbage");
                return;
            }
            if (f->state == FEED_HANDSHAKE) {
                feed_finish(f, 0, "the replica sent garbage");
                return;
            }
            off = f->inlen;
            break;
        }
        off += (size_t)used;
        if (feed_command(f, name, last) != 0)
            return;
    }
    memmove(f->in, f->in + off, f->inlen - off);
    f->inlen -= off;
}

static void feed_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct be_feeder *f = w->data;
    int fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (f->fd >= 0) {
        close(fd); /* one replica only */
        return;
    }
    f->fd = fd;
    f->authed = 0;
    f->state = FEED_HANDSHAKE;
    ev_io_stop(loop, &f->lio);
    ev_io_init(&f->rio, feed_read_cb, fd, EV_READ);
    ev_io_init(&f->wio, feed_write_cb, fd, EV_WRITE);
    f->rio.data = f->wio.data = f;
    ev_io_start(loop, &f->rio);
    ev_timer_again(loop, &f->stall);
}

static void feed_stall_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    feed_finish(w->data, 0, "the sync to the local redis stalled");
}

struct be_feeder *be_feeder_start(struct ev_loop *loop, const char *bind_ip, const char *path,
                                  const char *token, int *port_out, be_snap_done_fn *done,
                                  void *ctx, char *why, size_t whylen)
{
    struct be_feeder *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        fmt(why, whylen, "%s", "out of memory");
        return NULL;
    }
    f->loop = loop;
    f->done = done;
    f->ctx = ctx;
    f->lfd = f->fd = -1;
    snprintf(f->token, sizeof(f->token), "%s", token ? token : "");
    f->file = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (f->file < 0 || fstat(f->file, &st) != 0) {
        fmt(why, whylen, "cannot open the snapshot file: %s", strerror(errno));
        if (f->file >= 0)
            close(f->file);
        free(f);
        return NULL;
    }
    f->size = (uint64_t)st.st_size;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    if (getaddrinfo(bind_ip, "0", &hints, &res) != 0 || res == NULL) {
        fmt(why, whylen, "bad address for the sync listener: %s", bind_ip);
        close(f->file);
        free(f);
        return NULL;
    }
    f->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (f->lfd < 0 || bind(f->lfd, res->ai_addr, res->ai_addrlen) != 0 || listen(f->lfd, 4) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&ss, &sl) != 0) {
        fmt(why, whylen, "cannot listen for the sync: %s", strerror(errno));
        freeaddrinfo(res);
        if (f->lfd >= 0)
            close(f->lfd);
        close(f->file);
        free(f);
        return NULL;
    }
    freeaddrinfo(res);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    ev_io_init(&f->lio, feed_accept_cb, f->lfd, EV_READ);
    f->lio.data = f;
    ev_init(&f->stall, feed_stall_cb);
    f->stall.repeat = BE_SNAP_STALL_SECONDS;
    f->stall.data = f;
    ev_io_start(loop, &f->lio);
    ev_timer_again(loop, &f->stall);
    return f;
}

uint64_t be_feeder_sent(const struct be_feeder *f)
{
    return f->state == FEED_SEND || f->state == FEED_SENT ? f->sent : 0;
}

void be_feeder_free(struct be_feeder *f)
{
    if (f == NULL)
        return;
    ev_io_stop(f->loop, &f->lio);
    ev_io_stop(f->loop, &f->rio);
    ev_io_stop(f->loop, &f->wio);
    ev_timer_stop(f->loop, &f->stall);
    if (f->fd >= 0)
        close(f->fd);
    if (f->lfd >= 0)
        close(f->lfd);
    close(f->file);
    free(f);
}

int be_info_field(const char *info, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = info, *end = info + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *ve = eol;
            if (ve > v && ve[-1] == '\r')
                ve--;
            size_t l = (size_t)(ve - v) < outlen - 1 ? (size_t)(ve - v) : outlen - 1;
            memcpy(out, v, l);
            out[l] = '\0';
            return 0;
        }
        p = eol + 1;
    }
    return -1;
}
