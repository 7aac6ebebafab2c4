/* bus.c: the cluster bus. See bus.h for the contract and docs/cluster-bus.md for the wire format.
 *
 * Shape: one struct bus_peer per node the bus knows (configured with bus_set_peer, or connected
 * to us), found by id in a map and also kept on a list; one struct bus_conn per TCP connection.
 * A peer points at its outbound connection (ours, at most one) and its newest authenticated
 * inbound connection; a connection points back at its peer. Handshake-stage inbound connections
 * belong to no peer yet.
 *
 * Safe frees: every entry point (libev callback or public function) brackets its work with
 * bus_enter/bus_leave. Closing a connection only stops its watchers, closes the fd and moves it to
 * a graveyard; memory is released by bus_leave at depth 0, so a payload borrowed from a read
 * buffer stays valid across a callback that closes its connection, and bus_free called inside a
 * callback waits for the outermost bus_leave. Peers are freed the same way, by the reaper, once
 * they are neither configured nor connected nor reported up.
 *
 * Callbacks: on_peer_state is made directly from event handlers (so "up" precedes the first
 * frame), but a change caused inside a public call is left for notify_timer, so callers never see
 * a callback from inside bus_set_peer and friends.
 */
#include "raftlog/bus.h"

#include "common/buf.h"
#include "common/log.h"
#include "common/map.h"
#include "common/netaddr.h"
#include "common/sha256.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- wire constants (docs/cluster-bus.md) --------------------------------------------------- */

static const uint8_t bus_magic[4] = {'R', 'D', 'B', 'S'};
#define BUS_VERSION     1
#define BUS_NONCE_LEN   16
#define BUS_HELLO_LEN   (4 + 2 + 2 + 8 + BUS_NONCE_LEN) /* magic version flags id nonce */
#define BUS_WELCOME_LEN (BUS_HELLO_LEN + RD_SHA256_LEN) /* ... mac_L */
#define BUS_PROOF_LEN   RD_SHA256_LEN                   /* mac_D */
#define BUS_FRAME_HDR   5                               /* u32 length, u8 type */
#define BUS_LABEL_LEN   13
static const char label_listener[BUS_LABEL_LEN + 1] = "redraft-bus-L";
static const char label_dialer[BUS_LABEL_LEN + 1] = "redraft-bus-D";

/* ---- local limits --------------------------------------------------------------------------- */

#define BUS_READ_CHUNK         (256u * 1024)      /* room reserved before each read */
#define BUS_READ_PER_EVENT_MAX (4u * 1024 * 1024) /* then other connections get a turn */
/* Input is bounded: a read buffer holds at most one partial frame (BUS_FRAME_HDR +
 * BUS_FRAME_MAX) plus what one event reads (BUS_READ_PER_EVENT_MAX). */
#define BUS_BUF_KEEP_BYTES   (1024u * 1024) /* an emptied buffer bigger than this is released */
#define BUS_ACCEPT_PER_EVENT 16
#define BUS_LISTEN_BACKLOG   511
#define BUS_DNS_POLL_MS      5     /* how often pending name lookups are checked */
#define BUS_REJECT_LOG_MS    10000 /* at most one line per this for rejected inbound connections */
#define BUS_KEEPIDLE_S       5
#define BUS_KEEPINTVL_S      2
#define BUS_KEEPCNT          3
#define BUS_PORT_STR         8

enum conn_state {
    CS_CONNECTING,    /* dialer: TCP connect in progress */
    CS_AWAIT_HELLO,   /* listener: waiting for the dialer's HELLO */
    CS_AWAIT_WELCOME, /* dialer: HELLO sent, waiting for WELCOME */
    CS_AWAIT_PROOF,   /* listener: WELCOME sent, waiting for the dialer's proof */
    CS_READY,         /* authenticated: frames both ways */
    CS_CLOSED,        /* in the graveyard */
};

/* Why a connection closed: picks the counter and how loudly to log. */
enum close_why {
    CW_LOCAL,   /* we decided (address changed, peer removed, replaced, bus freed): quiet */
    CW_IO,      /* EOF or socket error */
    CW_DIAL,    /* TCP connect failed or timed out */
    CW_TIMEOUT, /* handshake too slow */
    CW_PROTO,   /* broke the protocol */
    CW_AUTH,    /* wrong proof */
};

struct bus_peer;

struct bus_conn {
    struct bus *bus;
    struct bus_conn *prev, *next; /* live list; next alone links the graveyard */
    int fd;
    int outbound;
    enum conn_state state;
    uint64_t node;         /* dialer: the node we expect; listener: the id claimed in HELLO */
    struct bus_peer *peer; /* outbound: from creation; inbound: once authenticated */
    uint8_t nonce_d[BUS_NONCE_LEN];
    uint8_t nonce_l[BUS_NONCE_LEN];
    struct rd_buf rbuf, wbuf;
    ev_io rio, wio;
    ev_timer hs_timer;
    char remote[BUS_ADDR_MAX]; /* numeric "ip:port" of the other end, for logs */
};

struct bus_peer {
    struct bus *bus;
    struct bus_peer *prev, *next;
    uint64_t node;
    int configured;
    char addr[BUS_ADDR_MAX];
    char host[BUS_ADDR_MAX];
    char port[BUS_PORT_STR];
    uint64_t addr_gen; /* bumped on every address change; stale lookups compare it */
    struct bus_conn *out, *in;
    int reported_up; /* what on_peer_state last said */
    int fail_logged; /* a failed dial was logged since the last state change */
    int resolving;   /* an asynchronous lookup for addr_gen is in flight */
    unsigned backoff_ms;
    ev_timer retry;
    struct addrinfo *ai_list, *ai_next; /* addresses of the current dial attempt */
    char last_err[256];
    uint64_t frames_in, bytes_in, frames_out, bytes_out, sends_refused;
    uint64_t links, reconnects, dial_failures;
};

/* One getaddrinfo_a request; owned by the bus, tied to its peer by id and generation only. */
struct bus_dns {
    struct bus_dns *next;
    uint64_t node;
    uint64_t gen;
    struct gaicb req;
    struct addrinfo hints;
    char host[BUS_ADDR_MAX];
    char port[BUS_PORT_STR];
};

struct bus {
    struct ev_loop *loop;
    uint64_t self;
    struct rd_hmac_sha256 key; /* keyed with the secret; copied per MAC */
    void *ctx;
    struct bus_cbs cbs;
    int lfd;
    int lport;
    ev_io lio;
    /* The listener's address when it is a specific one (not a wildcard): outbound connections
     * leave from it, so a node's bus traffic has one source address (srclen 0: the kernel's). */
    struct sockaddr_storage src;
    socklen_t srclen;
    struct rd_map peers; /* node -> struct bus_peer */
    struct bus_peer *peer_list;
    struct bus_conn *conns;     /* live */
    struct bus_conn *graveyard; /* closed, freed by bus_leave at depth 0 */
    struct bus_dns *dns;        /* lookups in flight */
    ev_timer dns_timer;
    ev_timer notify_timer;
    unsigned pending_in; /* inbound connections in handshake */
    int depth;           /* nesting of entry points */
    int api_depth;       /* nesting of public calls: callbacks wait while > 0 */
    int free_requested;
    int freeing;
    int loopback_only; /* protected mode: inbound peers must be 127.0.0.1 or ::1 */
    ev_tstamp reject_logged_at;
    uint64_t reject_suppressed;
    struct bus_stats stats;
};

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void peer_retry_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_close(struct bus_conn *c, enum close_why why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bus_destroy(struct bus *b);

/* ---- small helpers -------------------------------------------------------------------------- */

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    put_be16(p, (uint16_t)(v >> 16));
    put_be16(p + 2, (uint16_t)v);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)get_be16(p) << 16 | get_be16(p + 2);
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static int fill_random(uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return 0;
    /* Kernels without getrandom(2): the device the brief names. */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    int rc = -1;
    if (fd >= 0) {
        rc = read(fd, p, n) == (ssize_t)n ? 0 : -1;
        close(fd);
    }
    return rc;
}

static void fmt_sockaddr(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1], serv[BUS_PORT_STR]; /* numeric forms */
    if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, outlen, "?");
        return;
    }
    if (sa->sa_family == AF_INET6)
        snprintf(out, outlen, "[%s]:%s", host, serv);
    else
        snprintf(out, outlen, "%s:%s", host, serv);
}

/* Splits "host:port" or "[v6]:port". Returns 0 or -1 (malformed). */
static int parse_addr(const char *addr, char *host, size_t hostlen, char *port)
{
    size_t n = strlen(addr);
    if (n == 0 || n >= BUS_ADDR_MAX)
        return -1;
    const char *colon = strrchr(addr, ':');
    if (colon == NULL)
        return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -1;
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl) != NULL) {
        return -1; /* an IPv6 literal needs brackets */
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (pl == 0 || pl >= BUS_PORT_STR)
        return -1;
    long v = 0;
    for (size_t i = 0; i < pl; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, p, pl + 1);
    return 0;
}

static int is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static void set_sock_opts(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
#ifdef TCP_KEEPIDLE
    int idle = BUS_KEEPIDLE_S, intvl = BUS_KEEPINTVL_S, cnt = BUS_KEEPCNT;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
#endif
#ifdef TCP_USER_TIMEOUT
    /* A peer that vanished without a FIN (power loss, partition) must not keep a link "up"
     * while our queue grows: unacknowledged output this old fails the socket. */
    unsigned int ut = BUS_LINK_TIMEOUT_MS;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
#endif
}

/* Rejections of inbound connections may come from anyone: log at most one line per
 * BUS_REJECT_LOG_MS, counting the rest. */
static void log_reject(struct bus *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_reject(struct bus *b, const char *fmt, ...)
{
    ev_tstamp now = ev_now(b->loop);
    if (b->reject_logged_at > 0 && now - b->reject_logged_at < BUS_REJECT_LOG_MS / 1000.0) {
        b->reject_suppressed++;
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (b->reject_suppressed > 0)
        rd_warning("bus: %s (%llu similar lines suppressed)", msg,
                   (unsigned long long)b->reject_suppressed);
    else
        rd_warning("bus: %s", msg);
    b->reject_logged_at = now;
    b->reject_suppressed = 0;
}

/* ---- entry and exit: deferred frees --------------------------------------------------------- */

static void bus_enter(struct bus *b)
{
    b->depth++;
}

static int peer_is_up(const struct bus_peer *p)
{
    return (p->out != NULL && p->out->state == CS_READY) ||
           (p->in != NULL && p->in->state == CS_READY);
}

static void peer_free_dial(struct bus_peer *p)
{
    if (p->ai_list != NULL)
        freeaddrinfo(p->ai_list);
    p->ai_list = p->ai_next = NULL;
}

static void reap(struct bus *b)
{
    while (b->graveyard != NULL) {
        struct bus_conn *c = b->graveyard;
        b->graveyard = c->next;
        rd_buf_free(&c->rbuf);
        rd_buf_free(&c->wbuf);
        free(c);
    }
    struct bus_peer *next;
    for (struct bus_peer *p = b->peer_list; p != NULL; p = next) {
        next = p->next;
        if (p->configured || p->out != NULL || p->in != NULL || p->reported_up)
            continue;
        if (p->prev != NULL)
            p->prev->next = p->next;
        else
            b->peer_list = p->next;
        if (p->next != NULL)
            p->next->prev = p->prev;
        rd_map_del(&b->peers, p->node);
        ev_timer_stop(b->loop, &p->retry);
        peer_free_dial(p);
        free(p);
    }
}

/* After this returns, b may be gone (a bus_free requested inside a callback). */
static void bus_leave(struct bus *b)
{
    if (--b->depth > 0)
        return;
    if (b->free_requested) {
        bus_destroy(b);
        return;
    }
    reap(b);
}

/* ---- link state ----------------------------------------------------------------------------- */

static void peer_report(struct bus *b, struct bus_peer *p)
{
    int up = peer_is_up(p);
    if (up == p->reported_up)
        return;
    p->reported_up = up;
    struct bus_conn *c = p->out != NULL && p->out->state == CS_READY ? p->out : p->in;
    if (up)
        rd_notice("bus: link with node %llu up (%s %s)", (unsigned long long)p->node,
                  c == p->out ? "to" : "from", c->remote);
    else
        rd_notice("bus: link with node %llu down", (unsigned long long)p->node);
    if (b->cbs.on_peer_state != NULL)
        b->cbs.on_peer_state(b->ctx, p->node, up);
}

/* Reports p's state now when no public call is on the stack, else on the next loop turn. */
static void peer_sync(struct bus_peer *p)
{
    struct bus *b = p->bus;
    if (b->freeing || peer_is_up(p) == p->reported_up)
        return;
    if (b->api_depth > 0) {
        if (!ev_is_active(&b->notify_timer)) {
            ev_timer_set(&b->notify_timer, 0., 0.);
            ev_timer_start(b->loop, &b->notify_timer);
        }
        return;
    }
    peer_report(b, p);
}

static void notify_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bus *b = w->data;
    bus_enter(b);
    /* A callback may change other peers; the list only grows at the head and frees wait for
     * bus_leave, so walking it once is safe, and later changes schedule another turn. */
    for (struct bus_peer *p = b->peer_list; p != NULL && !b->free_requested; p = p->next)
        peer_report(b, p);
    bus_leave(b);
}

/* ---- peers ---------------------------------------------------------------------------------- */

static struct bus_peer *peer_get(const struct bus *b, uint64_t node)
{
    return rd_map_get(&b->peers, node);
}

static struct bus_peer *peer_get_or_create(struct bus *b, uint64_t node)
{
    struct bus_peer *p = peer_get(b, node);
    if (p != NULL)
        return p;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    if (rd_map_put(&b->peers, node, p) != 0) {
        free(p);
        return NULL;
    }
    p->bus = b;
    p->node = node;
    p->backoff_ms = BUS_BACKOFF_MIN_MS;
    ev_timer_init(&p->retry, peer_retry_cb, 0., 0.);
    p->retry.data = p;
    p->next = b->peer_list;
    if (b->peer_list != NULL)
        b->peer_list->prev = p;
    b->peer_list = p;
    return p;
}

static void peer_schedule(struct bus_peer *p, unsigned delay_ms)
{
    ev_timer_stop(p->bus->loop, &p->retry);
    ev_timer_set(&p->retry, delay_ms / 1000.0, 0.);
    ev_timer_start(p->bus->loop, &p->retry);
}

/* A whole dial attempt (every address) failed: log once per outage, back off. */
static void peer_dial_failed(struct bus_peer *p, int warn, const char *why)
{
    p->dial_failures++;
    peer_free_dial(p);
    if (!p->fail_logged) {
        rd_log(warn ? RD_LL_WARNING : RD_LL_NOTICE,
               "bus: cannot link to node %llu at %s: %s (retrying quietly)",
               (unsigned long long)p->node, p->addr, why);
        p->fail_logged = 1;
    } else {
        rd_debug("bus: cannot link to node %llu at %s: %s", (unsigned long long)p->node, p->addr,
                 why);
    }
    peer_schedule(p, p->backoff_ms);
    p->backoff_ms = p->backoff_ms * 2 > BUS_BACKOFF_MAX_MS ? BUS_BACKOFF_MAX_MS : p->backoff_ms * 2;
}

static struct bus_conn *conn_new(struct bus *b, int fd, int outbound, enum conn_state st)
{
    struct bus_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->bus = b;
    c->fd = fd;
    c->outbound = outbound;
    c->state = st;
    rd_buf_init(&c->rbuf);
    rd_buf_init(&c->wbuf);
    ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
    ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
    ev_timer_init(&c->hs_timer, conn_timeout_cb, BUS_HANDSHAKE_MS / 1000.0, 0.);
    c->rio.data = c->wio.data = c->hs_timer.data = c;
    ev_timer_start(b->loop, &c->hs_timer);
    c->next = b->conns;
    if (b->conns != NULL)
        b->conns->prev = c;
    b->conns = c;
    return c;
}

/* Dials the next address of the current attempt; when none is left, the attempt failed. */
static void peer_dial_next(struct bus_peer *p)
{
    struct bus *b = p->bus;
    while (p->ai_next != NULL) {
        struct addrinfo *ai = p->ai_next;
        p->ai_next = ai->ai_next;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(p->last_err, sizeof(p->last_err), "socket: %s", strerror(errno));
            continue;
        }
        set_sock_opts(fd);
        /* Best effort: a source address that cannot be used for this destination leaves the
         * choice to the kernel rather than failing the dial. Not in protected mode: peers then
         * admit 127.0.0.1 only, which the kernel picks for a loopback peer, and a node bound to
         * another loopback address would be refused. */
        if (b->srclen > 0 && !b->loopback_only && b->src.ss_family == ai->ai_family &&
            bind(fd, (const struct sockaddr *)&b->src, b->srclen) != 0)
            rd_debug("bus: dialing %s from the kernel's source address: bind: %s", p->addr,
                     strerror(errno));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            snprintf(p->last_err, sizeof(p->last_err), "%s", strerror(errno));
            close(fd);
            continue;
        }
        struct bus_conn *c = conn_new(b, fd, 1, CS_CONNECTING);
        if (c == NULL) {
            close(fd);
            snprintf(p->last_err, sizeof(p->last_err), "out of memory");
            break;
        }
        c->node = p->node;
        c->peer = p;
        p->out = c;
        fmt_sockaddr(ai->ai_addr, ai->ai_addrlen, c->remote, sizeof(c->remote));
        ev_io_start(b->loop, &c->wio);
        return;
    }
    peer_dial_failed(p, 0, p->last_err[0] ? p->last_err : "no address");
}

static void dns_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bus *b = w->data;
    bus_enter(b);
    struct bus_dns **pp = &b->dns;
    while (*pp != NULL && !b->free_requested) {
        struct bus_dns *d = *pp;
        int rc = gai_error(&d->req);
        if (rc == EAI_INPROGRESS) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        struct bus_peer *p = peer_get(b, d->node);
        if (p != NULL && p->configured && p->resolving && p->addr_gen == d->gen) {
            p->resolving = 0;
            if (rc == 0) {
                p->ai_list = p->ai_next = d->req.ar_result;
                d->req.ar_result = NULL;
                p->last_err[0] = '\0';
                peer_dial_next(p);
            } else {
                peer_dial_failed(p, 0, gai_strerror(rc));
            }
        }
        if (d->req.ar_result != NULL)
            freeaddrinfo(d->req.ar_result);
        free(d);
    }
    if (b->dns == NULL)
        ev_timer_stop(loop, &b->dns_timer);
    bus_leave(b);
}

/* Starts a dial: numeric hosts resolve at once; names go to getaddrinfo_a so the loop never
 * waits on DNS. */
static void peer_dial(struct bus_peer *p)
{
    struct bus *b = p->bus;
    if (!p->configured || p->out != NULL || p->resolving)
        return;
    if (p->ai_next != NULL) {
        peer_dial_next(p);
        return;
    }
    peer_free_dial(p);
    p->last_err[0] = '\0';
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(p->host, p->port, &hints, &res);
    if (rc == 0) {
        p->ai_list = p->ai_next = res;
        peer_dial_next(p);
        return;
    }
    if (rc != EAI_NONAME) {
        peer_dial_failed(p, 0, gai_strerror(rc));
        return;
    }
    struct bus_dns *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        peer_dial_failed(p, 0, "out of memory");
        return;
    }
    d->node = p->node;
    d->gen = p->addr_gen;
    memcpy(d->host, p->host, sizeof(d->host));
    memcpy(d->port, p->port, sizeof(d->port));
    d->hints.ai_family = AF_UNSPEC;
    d->hints.ai_socktype = SOCK_STREAM;
    d->hints.ai_flags = AI_NUMERICSERV;
    d->req.ar_name = d->host;
    d->req.ar_service = d->port;
    d->req.ar_request = &d->hints;
    struct gaicb *list[1] = {&d->req};
    rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (rc != 0) {
        free(d);
        peer_dial_failed(p, 0, gai_strerror(rc));
        return;
    }
    d->next = b->dns;
    b->dns = d;
    p->resolving = 1;
    if (!ev_is_active(&b->dns_timer))
        ev_timer_start(b->loop, &b->dns_timer);
}

static void peer_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bus_peer *p = w->data;
    struct bus *b = p->bus;
    bus_enter(b);
    peer_dial(p);
    bus_leave(b);
}

/* ---- connections ---------------------------------------------------------------------------- */

static void conn_want_write(struct bus_conn *c)
{
    if (!ev_is_active(&c->wio))
        ev_io_start(c->bus->loop, &c->wio);
}

/* Closes c now and frees it at the next safe point. fmt says why, for the log. */
static void conn_close(struct bus_conn *c, enum close_why why, const char *fmt, ...)
{
    struct bus *b = c->bus;
    if (c->state == CS_CLOSED)
        return;
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);

    enum conn_state was = c->state;
    ev_io_stop(b->loop, &c->rio);
    ev_io_stop(b->loop, &c->wio);
    ev_timer_stop(b->loop, &c->hs_timer);
    close(c->fd);
    c->fd = -1;
    c->state = CS_CLOSED;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = b->graveyard;
    b->graveyard = c;
    if (!c->outbound && was != CS_READY)
        b->pending_in--;

    if (why == CW_PROTO)
        b->stats.protocol_errors++;
    if (why == CW_AUTH)
        b->stats.auth_failures++;
    if (was == CS_READY)
        b->stats.links_lost++;
    else if (was != CS_CONNECTING && why != CW_LOCAL)
        b->stats.handshake_failures++;

    struct bus_peer *p = c->peer;
    if (p != NULL && p->in == c)
        p->in = NULL;
    if (p != NULL && p->out == c)
        p->out = NULL;

    const char *dir = c->outbound ? "to" : "from";
    if (b->freeing || why == CW_LOCAL) {
        rd_verbose("bus: closed connection %s %s: %s", dir, c->remote, reason);
    } else if (was == CS_READY) {
        int lvl = why == CW_PROTO ? RD_LL_WARNING : RD_LL_VERBOSE;
        rd_log(lvl, "bus: connection %s node %llu (%s) closed: %s", dir,
               (unsigned long long)c->node, c->remote, reason);
    } else if (!c->outbound) {
        log_reject(b, "rejected connection from %s: %s", c->remote, reason);
    }

    if (c->outbound && p != NULL && p->configured && why != CW_LOCAL && !b->freeing) {
        if (was == CS_READY)
            peer_schedule(p, p->backoff_ms); /* first retry soon after a lost link */
        else if (was == CS_CONNECTING && p->ai_next != NULL) {
            snprintf(p->last_err, sizeof(p->last_err), "%s", reason);
            peer_schedule(p, 0); /* try the name's next address */
        } else
            peer_dial_failed(p, why == CW_AUTH || why == CW_PROTO, reason);
    }
    if (p != NULL)
        peer_sync(p);
}

/* Writes what the socket takes; keeps the write watcher only while output is left. */
static void conn_flush(struct bus_conn *c)
{
    while (rd_buf_unread(&c->wbuf) > 0) {
        ssize_t n = send(c->fd, rd_buf_rptr(&c->wbuf), rd_buf_unread(&c->wbuf), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_want_write(c);
            return;
        }
        if (n < 0) {
            conn_close(c, CW_IO, "write: %s", strerror(errno));
            return;
        }
        rd_buf_consume(&c->wbuf, (size_t)n);
    }
    ev_io_stop(c->bus->loop, &c->wio);
    if (c->wbuf.cap > BUS_BUF_KEEP_BYTES)
        rd_buf_free(&c->wbuf);
}

static void compute_mac(const struct bus *b, const struct bus_conn *c, const char *label,
                        uint8_t out[RD_SHA256_LEN])
{
    uint8_t ids[16];
    put_be64(ids, c->outbound ? b->self : c->node);
    put_be64(ids + 8, c->outbound ? c->node : b->self);
    struct rd_hmac_sha256 h = b->key;
    rd_hmac_sha256_update(&h, label, BUS_LABEL_LEN);
    rd_hmac_sha256_update(&h, c->nonce_d, BUS_NONCE_LEN);
    rd_hmac_sha256_update(&h, c->nonce_l, BUS_NONCE_LEN);
    rd_hmac_sha256_update(&h, ids, sizeof(ids));
    rd_hmac_sha256_final(&h, out);
}

/* HELLO and the head of WELCOME share a layout. */
static void put_hello(uint8_t *p, uint64_t node, const uint8_t *nonce)
{
    memcpy(p, bus_magic, 4);
    put_be16(p + 4, BUS_VERSION);
    put_be16(p + 6, 0);
    put_be64(p + 8, node);
    memcpy(p + 16, nonce, BUS_NONCE_LEN);
}

/* Checks magic and version of a HELLO or WELCOME; returns 0 or -1 after closing c. */
static int check_head(struct bus_conn *c, const uint8_t *p)
{
    if (memcmp(p, bus_magic, 4) != 0) {
        conn_close(c, CW_PROTO, "not a redraft bus handshake (bad magic)");
        return -1;
    }
    if (get_be16(p + 4) != BUS_VERSION) {
        conn_close(c, CW_PROTO, "unsupported bus protocol version %u", get_be16(p + 4));
        return -1;
    }
    return 0;
}

static void conn_ready(struct bus_conn *c)
{
    struct bus *b = c->bus;
    ev_timer_stop(b->loop, &c->hs_timer);
    struct bus_peer *p = c->peer;
    if (!c->outbound) {
        p = peer_get_or_create(b, c->node);
        if (p == NULL) {
            conn_close(c, CW_IO, "out of memory");
            return;
        }
        b->pending_in--;
    }
    c->state = CS_READY;
    c->peer = p;
    b->stats.handshakes_ok++;
    if (c->outbound) {
        p->links++;
        if (p->links > 1)
            p->reconnects++;
        p->backoff_ms = BUS_BACKOFF_MIN_MS;
        p->fail_logged = 0;
        peer_free_dial(p);
    } else {
        struct bus_conn *old = p->in;
        p->in = c;
        if (old != NULL) {
            rd_notice("bus: node %llu connected again from %s; closing its older connection "
                      "from %s",
                      (unsigned long long)p->node, c->remote, old->remote);
            conn_close(old, CW_LOCAL, "replaced by a newer connection");
        }
    }
    rd_verbose("bus: authenticated connection %s node %llu (%s)", c->outbound ? "to" : "from",
               (unsigned long long)c->node, c->remote);
    peer_sync(p);
}

/* Listener: HELLO -> check it, answer WELCOME. */
static void on_hello(struct bus_conn *c, const uint8_t *m)
{
    struct bus *b = c->bus;
    if (check_head(c, m) != 0)
        return;
    uint64_t node = get_be64(m + 8);
    if (node == 0 || node == b->self) {
        conn_close(c, CW_PROTO, "peer claims node id %llu (%s)", (unsigned long long)node,
                   node == 0 ? "invalid" : "our own");
        return;
    }
    c->node = node;
    memcpy(c->nonce_d, m + 16, BUS_NONCE_LEN);
    if (fill_random(c->nonce_l, BUS_NONCE_LEN) != 0) {
        conn_close(c, CW_IO, "no random bytes for a nonce");
        return;
    }
    uint8_t w[BUS_WELCOME_LEN];
    put_hello(w, b->self, c->nonce_l);
    compute_mac(b, c, label_listener, w + BUS_HELLO_LEN);
    if (rd_buf_append(&c->wbuf, w, sizeof(w)) != 0) {
        conn_close(c, CW_IO, "out of memory");
        return;
    }
    c->state = CS_AWAIT_PROOF;
    conn_want_write(c);
}

/* Dialer: WELCOME -> check the listener's proof, send ours, ready. */
static void on_welcome(struct bus_conn *c, const uint8_t *m)
{
    struct bus *b = c->bus;
    if (check_head(c, m) != 0)
        return;
    uint64_t node = get_be64(m + 8);
    if (node != c->node) {
        conn_close(c, CW_PROTO, "the node there is %llu, not %llu", (unsigned long long)node,
                   (unsigned long long)c->node);
        return;
    }
    memcpy(c->nonce_l, m + 16, BUS_NONCE_LEN);
    uint8_t want[RD_SHA256_LEN];
    compute_mac(b, c, label_listener, want);
    if (!rd_ct_memeq(want, m + BUS_HELLO_LEN, RD_SHA256_LEN)) {
        conn_close(c, CW_AUTH, "wrong proof (is cluster-secret the same on both nodes?)");
        return;
    }
    uint8_t proof[BUS_PROOF_LEN];
    compute_mac(b, c, label_dialer, proof);
    if (rd_buf_append(&c->wbuf, proof, sizeof(proof)) != 0) {
        conn_close(c, CW_IO, "out of memory");
        return;
    }
    conn_want_write(c);
    conn_ready(c);
}

/* Listener: the dialer's proof -> ready. */
static void on_proof(struct bus_conn *c, const uint8_t *m)
{
    uint8_t want[RD_SHA256_LEN];
    compute_mac(c->bus, c, label_dialer, want);
    if (!rd_ct_memeq(want, m, RD_SHA256_LEN)) {
        conn_close(c, CW_AUTH, "wrong proof (is cluster-secret the same on both nodes?)");
        return;
    }
    conn_ready(c);
}

static void deliver(struct bus_conn *c, uint8_t type, const uint8_t *payload, size_t len)
{
    struct bus *b = c->bus;
    c->peer->frames_in++;
    c->peer->bytes_in += len;
    if (b->cbs.on_frame != NULL)
        b->cbs.on_frame(b->ctx, c->node, type, payload, len);
}

/* Consumes whatever complete messages the read buffer holds. Stops when c closes or the bus is
 * to be freed (a callback may do either). */
static void conn_parse(struct bus_conn *c)
{
    struct bus *b = c->bus;
    while (c->state != CS_CLOSED && !b->free_requested) {
        size_t have = rd_buf_unread(&c->rbuf);
        const uint8_t *m = (const uint8_t *)rd_buf_rptr(&c->rbuf);
        size_t need;
        switch (c->state) {
        case CS_AWAIT_HELLO:
        case CS_AWAIT_WELCOME:
            /* Reject junk on its first bytes rather than waiting for a full message. */
            if (have >= 4 && memcmp(m, bus_magic, 4) != 0) {
                conn_close(c, CW_PROTO, "not a redraft bus handshake (bad magic)");
                return;
            }
            need = c->state == CS_AWAIT_HELLO ? BUS_HELLO_LEN : BUS_WELCOME_LEN;
            if (have < need)
                return;
            if (c->state == CS_AWAIT_HELLO)
                on_hello(c, m);
            else
                on_welcome(c, m);
            break;
        case CS_AWAIT_PROOF:
            need = BUS_PROOF_LEN;
            if (have < need)
                return;
            on_proof(c, m);
            break;
        case CS_READY: {
            if (have < BUS_FRAME_HDR)
                return;
            uint32_t len = get_be32(m);
            if (len > BUS_FRAME_MAX) {
                conn_close(c, CW_PROTO, "frame of %u bytes is over the limit of %u", len,
                           BUS_FRAME_MAX);
                return;
            }
            need = BUS_FRAME_HDR + (size_t)len;
            if (have < need)
                return;
            deliver(c, m[4], m + BUS_FRAME_HDR, len);
            break;
        }
        default:
            conn_close(c, CW_PROTO, "bytes before the connection was established");
            return;
        }
        if (c->state == CS_CLOSED)
            return;
        rd_buf_consume(&c->rbuf, need);
    }
}

static void conn_read(struct bus_conn *c)
{
    struct bus *b = c->bus;
    size_t total = 0;
    while (c->state != CS_CLOSED && !b->free_requested && total < BUS_READ_PER_EVENT_MAX) {
        if (rd_buf_reserve(&c->rbuf, BUS_READ_CHUNK) != 0) {
            conn_close(c, CW_IO, "out of memory for input");
            return;
        }
        size_t room = c->rbuf.cap - c->rbuf.len;
        if (room > BUS_READ_PER_EVENT_MAX - total)
            room = BUS_READ_PER_EVENT_MAX - total;
        ssize_t n = read(c->fd, c->rbuf.data + c->rbuf.len, room);
        if (n == 0) {
            conn_close(c, CW_IO,
                       c->state == CS_READY
                           ? "closed by the other end"
                           : "closed by the other end during the handshake (it may have another "
                             "cluster-secret, or expect another node at this address)");
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            conn_close(c, CW_IO, "read: %s", strerror(errno));
            return;
        }
        c->rbuf.len += (size_t)n;
        total += (size_t)n;
        conn_parse(c);
        /* A short read emptied the socket: asking again would only return EAGAIN. Anything that
         * arrives later raises a new (level-triggered) event. */
        if ((size_t)n < room)
            break;
    }
    if (c->state != CS_CLOSED && rd_buf_unread(&c->rbuf) == 0 && c->rbuf.cap > BUS_BUF_KEEP_BYTES)
        rd_buf_free(&c->rbuf);
}

/* Dialer: the TCP connect finished; on success send HELLO. */
static void conn_connected(struct bus_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        conn_close(c, CW_DIAL, "%s", strerror(err));
        return;
    }
    uint8_t hello[BUS_HELLO_LEN];
    if (fill_random(c->nonce_d, BUS_NONCE_LEN) != 0) {
        conn_close(c, CW_IO, "no random bytes for a nonce");
        return;
    }
    put_hello(hello, c->bus->self, c->nonce_d);
    if (rd_buf_append(&c->wbuf, hello, sizeof(hello)) != 0) {
        conn_close(c, CW_IO, "out of memory");
        return;
    }
    c->state = CS_AWAIT_WELCOME;
    ev_io_start(c->bus->loop, &c->rio);
    conn_flush(c);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct bus_conn *c = w->data;
    struct bus *b = c->bus;
    bus_enter(b);
    conn_read(c);
    bus_leave(b);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct bus_conn *c = w->data;
    struct bus *b = c->bus;
    bus_enter(b);
    if (c->state == CS_CONNECTING)
        conn_connected(c);
    else
        conn_flush(c);
    bus_leave(b);
}

static void conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bus_conn *c = w->data;
    struct bus *b = c->bus;
    bus_enter(b);
    if (c->state == CS_CONNECTING)
        conn_close(c, CW_DIAL, "connect timed out");
    else
        conn_close(c, CW_TIMEOUT, "handshake not finished within %d ms", BUS_HANDSHAKE_MS);
    bus_leave(b);
}

/* An inbound connection, from the listener or bus_adopt: it must say HELLO first. Takes fd. */
static int conn_accept(struct bus *b, int fd, const char *remote)
{
    b->stats.accepted++;
    if (b->pending_in >= BUS_PENDING_MAX) {
        b->stats.refused_busy++;
        log_reject(b, "refused connection from %s: %d connections already in handshake", remote,
                   BUS_PENDING_MAX);
        close(fd);
        return BUS_EFULL;
    }
    set_sock_opts(fd);
    struct bus_conn *c = conn_new(b, fd, 0, CS_AWAIT_HELLO);
    if (c == NULL) {
        close(fd);
        return BUS_ENOMEM;
    }
    b->pending_in++;
    snprintf(c->remote, sizeof(c->remote), "%s", remote);
    ev_io_start(b->loop, &c->rio);
    return BUS_OK;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct bus *b = w->data;
    bus_enter(b);
    for (int i = 0; i < BUS_ACCEPT_PER_EVENT && !b->free_requested; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(b->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
                log_reject(b, "accept: %s", strerror(errno));
            break;
        }
        char remote[BUS_ADDR_MAX];
        fmt_sockaddr((struct sockaddr *)&ss, sl, remote, sizeof(remote));
        if (b->loopback_only && !rd_sockaddr_is_loopback(&ss)) {
            b->stats.accepted++;
            b->stats.refused_protected++;
            log_reject(b, "refused connection from %s: protected mode (cluster-secret is empty)",
                       remote);
            close(fd);
            continue;
        }
        conn_accept(b, fd, remote);
    }
    bus_leave(b);
}

/* ---- public --------------------------------------------------------------------------------- */

struct bus *bus_new(struct ev_loop *loop, uint64_t self_id, const char *secret, void *ctx,
                    const struct bus_cbs *cbs)
{
    if (self_id == 0)
        return NULL;
    struct bus *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->loop = loop;
    b->self = self_id;
    b->ctx = ctx;
    if (cbs != NULL)
        b->cbs = *cbs;
    b->lfd = -1;
    if (secret == NULL)
        secret = "";
    if (secret[0] == '\0')
        rd_warning("bus: cluster-secret is empty: any node that can reach the bus port may join");
    rd_hmac_sha256_init(&b->key, secret, strlen(secret));
    rd_map_init(&b->peers);
    ev_timer_init(&b->dns_timer, dns_poll_cb, BUS_DNS_POLL_MS / 1000.0, BUS_DNS_POLL_MS / 1000.0);
    b->dns_timer.data = b;
    ev_timer_init(&b->notify_timer, notify_cb, 0., 0.);
    b->notify_timer.data = b;
    return b;
}

static void dns_cancel_all(struct bus *b)
{
    while (b->dns != NULL) {
        struct bus_dns *d = b->dns;
        b->dns = d->next;
        /* A lookup already running cannot be cancelled; its thread writes into d, so wait. */
        if (gai_cancel(&d->req) == EAI_NOTCANCELED) {
            const struct gaicb *list[1] = {&d->req};
            while (gai_error(&d->req) == EAI_INPROGRESS)
                gai_suspend(list, 1, NULL);
        }
        if (d->req.ar_result != NULL)
            freeaddrinfo(d->req.ar_result);
        free(d);
    }
}

static void bus_destroy(struct bus *b)
{
    b->freeing = 1;
    while (b->conns != NULL)
        conn_close(b->conns, CW_LOCAL, "bus closing");
    for (struct bus_peer *p = b->peer_list; p != NULL; p = p->next) {
        p->configured = 0;
        p->reported_up = 0;
    }
    reap(b);
    if (b->lfd >= 0) {
        ev_io_stop(b->loop, &b->lio);
        close(b->lfd);
    }
    ev_timer_stop(b->loop, &b->dns_timer);
    ev_timer_stop(b->loop, &b->notify_timer);
    dns_cancel_all(b);
    rd_map_free(&b->peers);
    explicit_bzero(&b->key, sizeof(b->key));
    free(b);
}

void bus_free(struct bus *b)
{
    if (b == NULL)
        return;
    if (b->depth > 0) {
        b->free_requested = 1;
        return;
    }
    bus_destroy(b);
}

int bus_listen(struct bus *b, const char *bind_addr, int port, char *err, size_t errlen)
{
    char why[256] = "";
    struct addrinfo *res = NULL;
    int fd = -1;
    int rc = BUS_ELISTEN;
    if (bind_addr == NULL || bind_addr[0] == '\0')
        bind_addr = "0.0.0.0";
    if (b->lfd >= 0) {
        snprintf(why, sizeof(why), "the bus is already listening");
        goto out;
    }
    if (port < 0 || port > 65535) {
        snprintf(why, sizeof(why), "port %d out of range", port);
        goto out;
    }
    char portstr[BUS_PORT_STR];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    int grc = getaddrinfo(bind_addr, portstr, &hints, &res);
    if (grc != 0) {
        snprintf(why, sizeof(why), "bad bind address '%s': %s", bind_addr, gai_strerror(grc));
        goto out;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, BUS_LISTEN_BACKLOG) != 0) {
        snprintf(why, sizeof(why), "cannot listen on %s:%d: %s", bind_addr, port, strerror(errno));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(why, sizeof(why), "getsockname: %s", strerror(errno));
        goto out;
    }
    b->lport = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    if (!is_wildcard(&ss)) {
        b->src = ss;
        b->srclen = sl;
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&b->src)->sin6_port = 0;
        else
            ((struct sockaddr_in *)&b->src)->sin_port = 0;
    }
    b->lfd = fd;
    fd = -1;
    ev_io_init(&b->lio, accept_cb, b->lfd, EV_READ);
    b->lio.data = b;
    ev_io_start(b->loop, &b->lio);
    rd_notice("bus: listening on %s:%d", bind_addr, b->lport);
    rc = BUS_OK;
out:
    if (fd >= 0)
        close(fd);
    if (res != NULL)
        freeaddrinfo(res);
    if (rc != BUS_OK && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", why);
    return rc;
}

int bus_listen_port(const struct bus *b)
{
    return b->lfd >= 0 ? b->lport : 0;
}

void bus_set_loopback_only(struct bus *b, int on)
{
    b->loopback_only = on != 0;
}

int bus_adopt(struct bus *b, int fd, const char *remote)
{
    if (fd < 0)
        return BUS_EINVAL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        close(fd);
        return BUS_EINVAL;
    }
    bus_enter(b);
    int rc = conn_accept(b, fd, remote != NULL && remote[0] ? remote : "?");
    bus_leave(b);
    return rc;
}

int bus_set_peer(struct bus *b, uint64_t node, const char *addr)
{
    char host[BUS_ADDR_MAX], port[BUS_PORT_STR];
    if (node == 0 || node == b->self || addr == NULL ||
        parse_addr(addr, host, sizeof(host), port) != 0)
        return BUS_EINVAL;
    int rc = BUS_OK;
    bus_enter(b);
    b->api_depth++;
    struct bus_peer *p = peer_get_or_create(b, node);
    if (p == NULL) {
        rc = BUS_ENOMEM;
        goto out;
    }
    if (p->configured && strcmp(p->addr, addr) == 0)
        goto out;
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    memcpy(p->host, host, sizeof(p->host));
    memcpy(p->port, port, sizeof(p->port));
    p->configured = 1;
    p->addr_gen++;
    p->resolving = 0;
    p->fail_logged = 0;
    p->backoff_ms = BUS_BACKOFF_MIN_MS;
    peer_free_dial(p);
    if (p->out != NULL)
        conn_close(p->out, CW_LOCAL, "address of node %llu changed to %s", (unsigned long long)node,
                   addr);
    peer_schedule(p, 0);
out:
    b->api_depth--;
    bus_leave(b);
    return rc;
}

void bus_remove_peer(struct bus *b, uint64_t node)
{
    bus_enter(b);
    b->api_depth++;
    struct bus_peer *p = peer_get(b, node);
    if (p != NULL && p->configured) {
        p->configured = 0;
        p->addr[0] = '\0';
        p->addr_gen++;
        p->resolving = 0;
        ev_timer_stop(b->loop, &p->retry);
        peer_free_dial(p);
        if (p->out != NULL)
            conn_close(p->out, CW_LOCAL, "node %llu removed", (unsigned long long)node);
    }
    b->api_depth--;
    bus_leave(b);
}

/* The connection frames to p go out on, or NULL. */
static struct bus_conn *peer_conn(const struct bus_peer *p)
{
    if (p->out != NULL && p->out->state == CS_READY)
        return p->out;
    if (p->in != NULL && p->in->state == CS_READY)
        return p->in;
    return NULL;
}

int bus_send(struct bus *b, uint64_t node, uint8_t type, const void *payload, size_t len)
{
    struct bus_peer *p = peer_get(b, node);
    struct bus_conn *c = p != NULL ? peer_conn(p) : NULL;
    int rc = BUS_OK;
    if (len > BUS_FRAME_MAX) {
        rc = BUS_ETOOBIG;
        goto out;
    }
    if (c == NULL) {
        rc = BUS_ENOTCONN;
        goto out;
    }
    size_t queued = rd_buf_unread(&c->wbuf);
    if (queued > 0 && queued + BUS_FRAME_HDR + len > BUS_SENDQ_BYTES_MAX) {
        rc = BUS_EFULL;
        goto out;
    }
    uint8_t hdr[BUS_FRAME_HDR];
    put_be32(hdr, (uint32_t)len);
    hdr[4] = type;
    if (rd_buf_reserve(&c->wbuf, BUS_FRAME_HDR + len) != 0) {
        rc = BUS_ENOMEM;
        goto out;
    }
    rd_buf_append(&c->wbuf, hdr, sizeof(hdr)); /* room reserved: cannot fail */
    rd_buf_append(&c->wbuf, payload, len);
    p->frames_out++;
    p->bytes_out += len;
    conn_want_write(c);
out:
    if (rc != BUS_OK && p != NULL)
        p->sends_refused++;
    return rc;
}

void bus_flush(struct bus *b)
{
    bus_enter(b);
    b->api_depth++;
    struct bus_conn *next;
    for (struct bus_conn *c = b->conns; c != NULL; c = next) {
        next = c->next; /* a write error closes c, which moves it to the graveyard */
        if (c->state == CS_READY && rd_buf_unread(&c->wbuf) > 0)
            conn_flush(c);
    }
    b->api_depth--;
    bus_leave(b);
}

int bus_peer_up(const struct bus *b, uint64_t node)
{
    const struct bus_peer *p = peer_get(b, node);
    return p != NULL && peer_is_up(p);
}

static void fill_info(const struct bus_peer *p, struct bus_peer_info *out)
{
    memset(out, 0, sizeof(*out));
    out->node = p->node;
    snprintf(out->addr, sizeof(out->addr), "%s", p->configured ? p->addr : "");
    out->configured = p->configured;
    out->up = peer_is_up(p);
    out->outbound_up = p->out != NULL && p->out->state == CS_READY;
    out->inbound_up = p->in != NULL && p->in->state == CS_READY;
    const struct bus_conn *c = peer_conn(p);
    if (c != NULL) {
        snprintf(out->remote, sizeof(out->remote), "%s", c->remote);
        out->sendq_bytes = rd_buf_unread(&c->wbuf);
    }
    out->frames_in = p->frames_in;
    out->bytes_in = p->bytes_in;
    out->frames_out = p->frames_out;
    out->bytes_out = p->bytes_out;
    out->sends_refused = p->sends_refused;
    out->links = p->links;
    out->reconnects = p->reconnects;
    out->dial_failures = p->dial_failures;
}

int bus_peer_info(const struct bus *b, uint64_t node, struct bus_peer_info *out)
{
    const struct bus_peer *p = peer_get(b, node);
    if (p == NULL)
        return BUS_ENOTFOUND;
    fill_info(p, out);
    return BUS_OK;
}

void bus_peer_each(const struct bus *b, void *ctx,
                   void (*fn)(void *ctx, const struct bus_peer_info *info))
{
    struct bus_peer_info info;
    for (const struct bus_peer *p = b->peer_list; p != NULL; p = p->next) {
        fill_info(p, &info);
        fn(ctx, &info);
    }
}

void bus_stats(const struct bus *b, struct bus_stats *out)
{
    *out = b->stats;
}

const char *bus_errstr(int err)
{
    switch (err) {
    case BUS_OK:
        return "ok";
    case BUS_ENOMEM:
        return "out of memory";
    case BUS_EINVAL:
        return "invalid argument";
    case BUS_ENOTCONN:
        return "no authenticated connection with that node";
    case BUS_EFULL:
        return "send queue full";
    case BUS_ETOOBIG:
        return "frame too big";
    case BUS_ELISTEN:
        return "cannot listen";
    case BUS_ENOTFOUND:
        return "unknown node";
    default:
        return "unknown error";
    }
}
