/* Unit tests for raftlog/bus: real sockets on 127.0.0.1, ports picked by the kernel, each test
 * driving its own ev_loop for bounded stretches (run_until stops at a condition or a deadline).
 *
 * Covered: frames both ways (many small ones in order, ~10 MB ones byte-exact); a wrong secret
 * refused on both sides; garbage, a frame before the handshake, a bad version, our own node id and
 * an oversized length from a raw socket, each closed while good peers keep working; the handshake
 * spoken by hand from a raw socket (the documented wire format); a joining node answered over its
 * inbound connection only; reconnect after a peer's bus is freed and recreated on the same port;
 * the send queue limit; changing a peer's address; a DNS name; the wrong node at an address; the
 * handshake timeout; the limit on connections in handshake; outbound connections leave from the
 * listener's address; frees from inside callbacks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/sha256.h"
#include "raftlog/bus.h"

#define SECRET   "s3cret-for-tests"
#define T_SEQ    1 /* payload: u64 sequence number, then filler */
#define T_BIG    2 /* payload: pattern derived from its length */
#define T_TEXT   3 /* payload: a short string kept in last[] */
#define MAX_NODE 8
#define BIG_LEN  (10u * 1024 * 1024 + 17)
#define WAIT_MS  3000 /* upper bound for anything that should happen "soon" */

static struct ev_loop *loop;

struct tnode {
    uint64_t id;
    struct bus *bus;
    int port;
    char addr[64];
    size_t frames;
    uint64_t from_last;
    uint64_t seq_next[MAX_NODE];
    int out_of_order;
    size_t big_frames;
    int big_bad;
    char last[64];
    int up[MAX_NODE];
    int up_events, down_events;
    int free_on_frame;     /* bus_free(self) from inside on_frame */
    uint64_t remove_on_up; /* bus_remove_peer(this node) from inside on_peer_state */
    int state_cb_in_api;   /* set if on_peer_state ran inside a bus_* call */
};

static int in_api; /* the test sets it around bus_* calls to catch synchronous callbacks */

/* ---- helpers ---------------------------------------------------------------------------- */

static uint8_t pattern_byte(size_t i, size_t len)
{
    return (uint8_t)(i * 131 + len * 7 + (i >> 13));
}

static void on_frame(void *ctx, uint64_t from, uint8_t type, const void *payload, size_t len)
{
    struct tnode *n = ctx;
    const uint8_t *p = payload;
    n->frames++;
    n->from_last = from;
    if (type == T_SEQ) {
        uint64_t seq;
        assert_true(len >= sizeof(seq));
        memcpy(&seq, p, sizeof(seq));
        if (from >= MAX_NODE || seq != n->seq_next[from])
            n->out_of_order = 1;
        else
            n->seq_next[from]++;
    } else if (type == T_BIG) {
        for (size_t i = 0; i < len; i++)
            if (p[i] != pattern_byte(i, len)) {
                n->big_bad = 1;
                break;
            }
        n->big_frames++;
    } else if (type == T_TEXT) {
        size_t k = len < sizeof(n->last) - 1 ? len : sizeof(n->last) - 1;
        memcpy(n->last, p, k);
        n->last[k] = '\0';
    }
    if (n->free_on_frame) {
        bus_free(n->bus);
        n->bus = NULL;
    }
}

static void on_peer_state(void *ctx, uint64_t node, int up)
{
    struct tnode *n = ctx;
    if (in_api)
        n->state_cb_in_api = 1;
    if (node < MAX_NODE)
        n->up[node] = up;
    if (up)
        n->up_events++;
    else
        n->down_events++;
    if (up && n->remove_on_up == node)
        bus_remove_peer(n->bus, node);
}

static const struct bus_cbs cbs = {on_frame, on_peer_state};

static void node_start_at(struct tnode *n, uint64_t id, const char *secret, const char *ip,
                          int port)
{
    char err[256];
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->bus = bus_new(loop, id, secret, n, &cbs);
    assert_non_null(n->bus);
    int rc = bus_listen(n->bus, ip, port, err, sizeof(err));
    if (rc != 0)
        fail_msg("bus_listen: %s", err);
    n->port = bus_listen_port(n->bus);
    assert_true(n->port > 0);
    snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%d", n->port);
}

static void node_start_port(struct tnode *n, uint64_t id, const char *secret, int port)
{
    node_start_at(n, id, secret, "127.0.0.1", port);
}

static void node_start(struct tnode *n, uint64_t id, const char *secret)
{
    node_start_port(n, id, secret, 0);
}

static void node_stop(struct tnode *n)
{
    bus_free(n->bus);
    n->bus = NULL;
}

static int set_peer(struct tnode *n, const struct tnode *peer)
{
    in_api = 1;
    int rc = bus_set_peer(n->bus, peer->id, peer->addr);
    in_api = 0;
    return rc;
}

static void break_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(l, EVBREAK_ONE);
}

typedef int (*pred_fn)(void *arg);

struct until {
    pred_fn pred;
    void *arg;
};

static void check_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)revents;
    struct until *u = w->data;
    if (u->pred != NULL && u->pred(u->arg))
        ev_break(l, EVBREAK_ONE);
}

/* Runs the loop until pred(arg) holds (checked every millisecond) or ms pass. Returns pred. */
static int run_until(pred_fn pred, void *arg, int ms)
{
    struct until u = {pred, arg};
    ev_timer deadline, check;
    ev_timer_init(&deadline, break_cb, ms / 1000.0, 0.);
    ev_timer_init(&check, check_cb, 0.001, 0.001);
    check.data = &u;
    ev_timer_start(loop, &deadline);
    ev_timer_start(loop, &check);
    if (pred == NULL || !pred(arg))
        ev_run(loop, 0);
    ev_timer_stop(loop, &deadline);
    ev_timer_stop(loop, &check);
    return pred != NULL ? pred(arg) : 1;
}

static void run_ms(int ms)
{
    run_until(NULL, NULL, ms);
}

struct pair {
    struct tnode *a, *b;
};

static int both_up(void *arg)
{
    struct pair *p = arg;
    return bus_peer_up(p->a->bus, p->b->id) && bus_peer_up(p->b->bus, p->a->id) &&
           p->a->up[p->b->id] && p->b->up[p->a->id];
}

static int outbound_up(void *arg)
{
    struct pair *p = arg;
    struct bus_peer_info info;
    return bus_peer_info(p->a->bus, p->b->id, &info) == 0 && info.outbound_up && p->b->up[p->a->id];
}

static int peer_down(void *arg)
{
    struct pair *p = arg;
    return !bus_peer_up(p->a->bus, p->b->id) && p->a->up[p->b->id] == 0;
}

/* Connects a (dialer) to b and waits until both report the link up. */
static void link_pair(struct tnode *a, struct tnode *b)
{
    struct pair p = {a, b};
    assert_int_equal(set_peer(a, b), 0);
    assert_true(run_until(both_up, &p, WAIT_MS));
}

static int frames_at_least(void *arg)
{
    struct {
        struct tnode *n;
        size_t want;
    } *w = arg;
    return w->n->frames >= w->want;
}

static void wait_frames(struct tnode *n, size_t want)
{
    struct {
        struct tnode *n;
        size_t want;
    } w = {n, want};
    assert_true(run_until(frames_at_least, &w, WAIT_MS));
}

static int send_text(struct tnode *from, uint64_t to, const char *s)
{
    return bus_send(from->bus, to, T_TEXT, s, strlen(s));
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void raw_write(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* 1 once the other end has closed fd (EOF or reset), after draining what it sent. */
static int raw_closed(void *arg)
{
    int fd = *(int *)arg;
    char tmp[4096];
    for (;;) {
        ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
        if (n < 0)
            return 0;
    }
}

struct raw_want {
    int fd;
    size_t n;
};

static int raw_has(void *arg)
{
    struct raw_want *w = arg;
    char tmp[256];
    ssize_t n = recv(w->fd, tmp, w->n < sizeof(tmp) ? w->n : sizeof(tmp), MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 && (size_t)n >= w->n;
}

/* Reads exactly n bytes from fd, running the loop meanwhile. */
static void raw_read(int fd, void *buf, size_t n)
{
    struct raw_want w = {fd, n};
    assert_true(n <= 256);
    assert_true(run_until(raw_has, &w, WAIT_MS));
    assert_int_equal(recv(fd, buf, n, MSG_DONTWAIT), (ssize_t)n);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* The HELLO of docs/cluster-bus.md: "RDBS" | u16 version | u16 flags | u64 node | nonce[16]. */
static void make_hello(uint8_t out[32], uint16_t version, uint64_t node, const uint8_t nonce[16])
{
    memcpy(out, "RDBS", 4);
    out[4] = (uint8_t)(version >> 8);
    out[5] = (uint8_t)version;
    out[6] = out[7] = 0;
    put64(out + 8, node);
    memcpy(out + 16, nonce, 16);
}

static void make_mac(const char *label, const uint8_t nd[16], const uint8_t nl[16], uint64_t dialer,
                     uint64_t listener, uint8_t out[32])
{
    uint8_t msg[13 + 16 + 16 + 16];
    memcpy(msg, label, 13);
    memcpy(msg + 13, nd, 16);
    memcpy(msg + 29, nl, 16);
    put64(msg + 45, dialer);
    put64(msg + 53, listener);
    rd_hmac_sha256(SECRET, strlen(SECRET), msg, sizeof(msg), out);
}

/* Speaks the dialer's side of the handshake by hand as node `self` to a listener `node`. */
static int raw_handshake(struct tnode *listener, uint64_t self)
{
    int fd = raw_connect(listener->port);
    uint8_t nd[16], hello[32], welcome[64], want[32], proof[32];
    for (int i = 0; i < 16; i++)
        nd[i] = (uint8_t)(i * 17 + 5);
    make_hello(hello, 1, self, nd);
    raw_write(fd, hello, sizeof(hello));
    raw_read(fd, welcome, sizeof(welcome));
    assert_memory_equal(welcome, "RDBS", 4);
    assert_int_equal(welcome[4] << 8 | welcome[5], 1);
    assert_int_equal(get64(welcome + 8), listener->id);
    make_mac("redraft-bus-L", nd, welcome + 16, self, listener->id, want);
    assert_memory_equal(welcome + 32, want, 32);
    make_mac("redraft-bus-D", nd, welcome + 16, self, listener->id, proof);
    raw_write(fd, proof, sizeof(proof));
    return fd;
}

static void raw_frame_header(uint8_t out[5], uint32_t len, uint8_t type)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    out[4] = type;
}

static struct bus_stats stats_of(const struct tnode *n)
{
    struct bus_stats s;
    bus_stats(n->bus, &s);
    return s;
}

static int setup(void **state)
{
    (void)state;
    loop = ev_loop_new(EVFLAG_AUTO);
    return loop == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    ev_loop_destroy(loop);
    loop = NULL;
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_api_errors(void **state)
{
    (void)state;
    struct tnode a;
    char err[256];
    assert_null(bus_new(loop, 0, SECRET, NULL, &cbs));
    node_start(&a, 1, SECRET);
    assert_int_equal(bus_listen(a.bus, "127.0.0.1", 0, err, sizeof(err)), BUS_ELISTEN);
    assert_true(strlen(err) > 0);
    struct bus *other = bus_new(loop, 9, SECRET, NULL, &cbs);
    assert_int_equal(bus_listen(other, "not-an-ip", 0, err, sizeof(err)), BUS_ELISTEN);
    assert_int_equal(bus_listen(other, "127.0.0.1", a.port, err, sizeof(err)), BUS_ELISTEN);
    assert_int_equal(bus_listen_port(other), 0);
    bus_free(other);

    assert_int_equal(bus_set_peer(a.bus, 0, "127.0.0.1:1"), BUS_EINVAL);
    assert_int_equal(bus_set_peer(a.bus, 1, "127.0.0.1:1"), BUS_EINVAL); /* our own id */
    const char *bad[] = {
        "",        "nohost",   ":7000",     "host:",   "host:0",        "host:65536",
        "host:7x", "::1:7000", "[::1:7000", "[]:7000", "host:123456789"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(bus_set_peer(a.bus, 2, bad[i]), BUS_EINVAL);
    char longaddr[BUS_ADDR_MAX + 8];
    memset(longaddr, 'h', sizeof(longaddr));
    strcpy(longaddr + BUS_ADDR_MAX, ":7000");
    assert_int_equal(bus_set_peer(a.bus, 2, longaddr), BUS_EINVAL);
    assert_int_equal(bus_set_peer(a.bus, 2, "[::1]:7000"), 0);
    assert_int_equal(bus_set_peer(a.bus, 3, "example.invalid:7000"), 0);

    struct bus_peer_info info;
    assert_int_equal(bus_peer_info(a.bus, 4, &info), BUS_ENOTFOUND);
    assert_int_equal(bus_peer_info(a.bus, 2, &info), 0);
    assert_string_equal(info.addr, "[::1]:7000");
    assert_int_equal(info.configured, 1);
    assert_int_equal(info.up, 0);

    assert_int_equal(send_text(&a, 2, "x"), BUS_ENOTCONN);
    assert_int_equal(send_text(&a, 7, "x"), BUS_ENOTCONN);
    assert_int_equal(bus_send(a.bus, 2, T_TEXT, NULL, (size_t)BUS_FRAME_MAX + 1), BUS_ETOOBIG);
    assert_int_equal(bus_peer_up(a.bus, 2), 0);
    bus_remove_peer(a.bus, 2);
    bus_remove_peer(a.bus, 5); /* unknown: ignored */
    for (int e = 0; e >= -7; e--)
        assert_true(strlen(bus_errstr(e)) > 0);
    assert_string_equal(bus_errstr(-100), "unknown error");
    run_ms(30); /* let the dials to nowhere and the name lookup start and fail */
    node_stop(&a);
    bus_free(NULL);
}

static void test_exchange_both_ways(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, SECRET);
    node_start(&b, 2, SECRET);
    assert_int_equal(set_peer(&a, &b), 0);
    assert_int_equal(set_peer(&b, &a), 0);
    struct pair p = {&a, &b}, q = {&b, &a};
    assert_true(run_until(outbound_up, &p, WAIT_MS));
    assert_true(run_until(outbound_up, &q, WAIT_MS));
    assert_int_equal(a.state_cb_in_api + b.state_cb_in_api, 0);
    assert_int_equal(a.up_events, 1); /* two connections, one node: one "up" */

    /* Many small frames each way, interleaved with the other direction, all in order. */
    enum { N = 5000 };
    uint8_t buf[8 + 64];
    memset(buf, 0xab, sizeof(buf));
    for (uint64_t i = 0; i < N; i++) {
        memcpy(buf, &i, sizeof(i));
        assert_int_equal(bus_send(a.bus, 2, T_SEQ, buf, 8 + i % 64), 0);
        assert_int_equal(bus_send(b.bus, 1, T_SEQ, buf, 8 + (i * 7) % 64), 0);
        if (i % 1000 == 999)
            run_ms(1);
    }
    /* A few big frames each way, and empty ones. */
    uint8_t *big = malloc(BIG_LEN);
    assert_non_null(big);
    for (size_t i = 0; i < BIG_LEN; i++)
        big[i] = pattern_byte(i, BIG_LEN);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bus_send(a.bus, 2, T_BIG, big, BIG_LEN), 0);
        assert_int_equal(bus_send(b.bus, 1, T_BIG, big, BIG_LEN), 0);
    }
    free(big);
    assert_int_equal(bus_send(a.bus, 2, T_BIG, "", 0), 0);
    assert_int_equal(send_text(&a, 2, "last from a"), 0);
    assert_int_equal(send_text(&b, 1, "last from b"), 0);
    wait_frames(&b, N + 5);
    wait_frames(&a, N + 4);
    assert_int_equal(b.frames, N + 5);
    assert_int_equal(a.frames, N + 4);
    assert_int_equal(a.out_of_order + b.out_of_order, 0);
    assert_int_equal(b.seq_next[1], N);
    assert_int_equal(a.seq_next[2], N);
    assert_int_equal(b.big_frames, 4);
    assert_int_equal(a.big_frames, 3);
    assert_int_equal(a.big_bad + b.big_bad, 0);
    assert_string_equal(b.last, "last from a");
    assert_string_equal(a.last, "last from b");
    assert_int_equal(b.from_last, 1);

    struct bus_peer_info info;
    assert_int_equal(bus_peer_info(a.bus, 2, &info), 0);
    assert_int_equal(info.frames_out, N + 5);
    assert_int_equal(info.frames_in, N + 4);
    assert_true(info.bytes_out > 3ull * BIG_LEN);
    assert_int_equal(info.outbound_up, 1);
    assert_int_equal(info.inbound_up, 1);
    assert_int_equal(info.links, 1);
    assert_int_equal(info.reconnects, 0);
    assert_int_equal(info.sendq_bytes, 0);
    assert_string_equal(info.remote, b.addr);
    struct bus_stats s = stats_of(&a);
    assert_int_equal(s.handshakes_ok, 2);
    assert_int_equal(s.auth_failures + s.protocol_errors + s.handshake_failures, 0);
    node_stop(&a);
    node_stop(&b);
}

static void test_wrong_secret_refused(void **state)
{
    (void)state;
    struct tnode a, c;
    node_start(&a, 1, SECRET);
    node_start(&c, 3, "another secret");
    assert_int_equal(set_peer(&a, &c), 0);
    assert_int_equal(set_peer(&c, &a), 0);
    run_ms(400);
    assert_int_equal(bus_peer_up(a.bus, 3), 0);
    assert_int_equal(bus_peer_up(c.bus, 1), 0);
    assert_int_equal(send_text(&a, 3, "secret stuff"), BUS_ENOTCONN);
    assert_int_equal(send_text(&c, 1, "secret stuff"), BUS_ENOTCONN);
    run_ms(50);
    assert_int_equal(a.frames + c.frames, 0);
    assert_int_equal(a.up_events + c.up_events, 0);
    struct bus_stats sa = stats_of(&a), sc = stats_of(&c);
    /* Each side caught the other's wrong proof as a dialer and saw it hang up as a listener. */
    assert_true(sa.auth_failures >= 1 && sc.auth_failures >= 1);
    assert_true(sa.handshake_failures >= 2 && sc.handshake_failures >= 2);
    assert_int_equal(sa.handshakes_ok + sc.handshakes_ok, 0);
    struct bus_peer_info info;
    assert_int_equal(bus_peer_info(a.bus, 3, &info), 0);
    assert_true(info.dial_failures >= 1);
    node_stop(&a);
    node_stop(&c);
}

/* Sends bytes from a raw socket and checks the bus closes it and counts a protocol error. */
static void expect_rejected(struct tnode *a, const void *bytes, size_t n)
{
    struct bus_stats before = stats_of(a);
    int fd = raw_connect(a->port);
    raw_write(fd, bytes, n);
    assert_true(run_until(raw_closed, &fd, WAIT_MS));
    close(fd);
    struct bus_stats after = stats_of(a);
    assert_int_equal(after.protocol_errors, before.protocol_errors + 1);
}

static void test_garbage_rejected_good_peer_unaffected(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, SECRET);
    node_start(&b, 2, SECRET);
    link_pair(&b, &a);

    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_rejected(&a, http, strlen(http));

    uint8_t frame[5 + 5]; /* a well-formed frame, but before any handshake */
    raw_frame_header(frame, 5, T_TEXT);
    memcpy(frame + 5, "hello", 5);
    expect_rejected(&a, frame, sizeof(frame));

    uint8_t huge[5];
    raw_frame_header(huge, 0xffffffffu, T_TEXT);
    expect_rejected(&a, huge, sizeof(huge));

    uint8_t nonce[16] = {1, 2, 3}, hello[32];
    make_hello(hello, 2, 7, nonce); /* a version we do not speak */
    expect_rejected(&a, hello, sizeof(hello));
    make_hello(hello, 1, a.id, nonce); /* claims to be us */
    expect_rejected(&a, hello, sizeof(hello));
    make_hello(hello, 1, 0, nonce); /* node 0 is nobody */
    expect_rejected(&a, hello, sizeof(hello));

    /* Authenticated, then a length over BUS_FRAME_MAX: closed before buffering any of it. */
    int fd = raw_handshake(&a, 5);
    uint8_t over[5];
    raw_frame_header(over, BUS_FRAME_MAX + 1, T_TEXT);
    raw_write(fd, over, sizeof(over));
    assert_true(run_until(raw_closed, &fd, WAIT_MS));
    close(fd);
    assert_int_equal(stats_of(&a).protocol_errors, 7);

    /* A wrong proof after a good HELLO: an authentication failure. */
    fd = raw_connect(a.port);
    make_hello(hello, 1, 6, nonce);
    raw_write(fd, hello, sizeof(hello));
    uint8_t welcome[64], proof[32];
    raw_read(fd, welcome, sizeof(welcome));
    memset(proof, 0x42, sizeof(proof));
    raw_write(fd, proof, sizeof(proof));
    assert_true(run_until(raw_closed, &fd, WAIT_MS));
    close(fd);
    assert_int_equal(stats_of(&a).auth_failures, 1);

    /* Nothing leaked through, and the good link never noticed. */
    assert_int_equal(a.frames, 0);
    assert_int_equal(send_text(&b, 1, "still here"), 0);
    assert_int_equal(send_text(&a, 2, "me too"), 0);
    wait_frames(&a, 1);
    wait_frames(&b, 1);
    assert_string_equal(a.last, "still here");
    assert_string_equal(b.last, "me too");
    assert_int_equal(b.down_events, 0);
    assert_int_equal(a.up[2], 1);
    assert_int_equal(a.down_events, 1); /* node 5, which did authenticate */
    node_stop(&a);
    node_stop(&b);
}

/* The handshake and framing exactly as docs/cluster-bus.md writes them, spoken by hand. */
static void test_raw_dialer_speaks_documented_protocol(void **state)
{
    (void)state;
    struct tnode a;
    node_start(&a, 1, SECRET);
    int fd = raw_handshake(&a, 4);
    uint8_t frame[5 + 3];
    raw_frame_header(frame, 3, T_TEXT);
    memcpy(frame + 5, "hi!", 3);
    raw_write(fd, frame, sizeof(frame));
    wait_frames(&a, 1);
    assert_string_equal(a.last, "hi!");
    assert_int_equal(a.from_last, 4);
    assert_int_equal(a.up[4], 1);

    assert_int_equal(send_text(&a, 4, "reply"), 0);
    uint8_t got[5 + 5];
    raw_read(fd, got, sizeof(got));
    assert_memory_equal(got, "\0\0\0\5", 4); /* big-endian payload length */
    assert_int_equal(got[4], T_TEXT);
    assert_memory_equal(got + 5, "reply", 5);

    close(fd);
    struct pair p = {&a, &(struct tnode){.id = 4}};
    assert_true(run_until(peer_down, &p, WAIT_MS));
    assert_int_equal(a.up[4], 0);
    assert_int_equal(bus_peer_up(a.bus, 4), 0);
    assert_int_equal(bus_peer_info(a.bus, 4, &(struct bus_peer_info){0}), BUS_ENOTFOUND);
    node_stop(&a);
}

static void test_joining_node_answered_inbound(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, SECRET);
    node_start(&b, 2, SECRET);
    link_pair(&b, &a); /* only b dials; a has no entry for b */
    assert_int_equal(a.up[2], 1);
    struct bus_peer_info info;
    assert_int_equal(bus_peer_info(a.bus, 2, &info), 0);
    assert_int_equal(info.configured, 0);
    assert_int_equal(info.inbound_up, 1);
    assert_int_equal(info.outbound_up, 0);
    assert_string_equal(info.addr, "");
    assert_int_equal(send_text(&a, 2, "welcome aboard"), 0);
    wait_frames(&b, 1);
    assert_string_equal(b.last, "welcome aboard");
    assert_int_equal(b.from_last, 1);

    /* Once a learns b's address it dials too; frames then go out on a's own connection. */
    assert_int_equal(set_peer(&a, &b), 0);
    struct pair p = {&a, &b};
    assert_true(run_until(outbound_up, &p, WAIT_MS));
    assert_int_equal(send_text(&a, 2, "via outbound"), 0);
    wait_frames(&b, 2);
    assert_string_equal(b.last, "via outbound");
    assert_int_equal(a.up_events, 1);
    node_stop(&a);
    node_stop(&b);
}

static void test_reconnect_after_restart(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, SECRET);
    node_start(&b, 2, SECRET);
    link_pair(&a, &b);
    int port = b.port;
    node_stop(&b);
    struct pair p = {&a, &b};
    assert_true(run_until(peer_down, &p, WAIT_MS));
    assert_int_equal(a.down_events, 1);
    assert_int_equal(send_text(&a, 2, "lost"), BUS_ENOTCONN);
    run_ms(250); /* a retries into a closed port a few times */

    node_start_port(&b, 2, SECRET, port);
    assert_true(run_until(both_up, &p, WAIT_MS));
    assert_int_equal(a.up_events, 2);
    struct bus_peer_info info;
    assert_int_equal(bus_peer_info(a.bus, 2, &info), 0);
    assert_int_equal(info.links, 2);
    assert_int_equal(info.reconnects, 1);
    assert_true(info.dial_failures >= 1);
    assert_int_equal(send_text(&a, 2, "back"), 0);
    wait_frames(&b, 1);
    assert_string_equal(b.last, "back");
    node_stop(&a);
    node_stop(&b);
}

static void test_send_queue_limit(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, SECRET);
    node_start(&b, 2, SECRET);
    link_pair(&a, &b);
    enum { MIB = 1024 * 1024 };
    uint8_t *chunk = calloc(1, MIB);
    assert_non_null(chunk);
    /* Nothing drains while the loop does not run: the queue fills to the limit. */
    size_t accepted = 0;
    int rc;
    uint64_t seq = 0;
    while ((rc = bus_send(a.bus, 2, T_SEQ, (memcpy(chunk, &seq, 8), chunk), MIB)) == 0) {
        accepted++;
        seq++;
        assert_true(accepted <= BUS_SENDQ_BYTES_MAX / MIB);
    }
    assert_int_equal(rc, BUS_EFULL);
    assert_int_equal(accepted, BUS_SENDQ_BYTES_MAX / (MIB + 5));
    struct bus_peer_info info;
    assert_int_equal(bus_peer_info(a.bus, 2, &info), 0);
    assert_true(info.sendq_bytes <= BUS_SENDQ_BYTES_MAX);
    assert_int_equal(info.sends_refused, 1);
    /* The limit is exact: a frame that fills the queue to the byte fits, then nothing does. */
    size_t room = BUS_SENDQ_BYTES_MAX - info.sendq_bytes - 5;
    assert_true(room < MIB);
    assert_int_equal(bus_send(a.bus, 2, 4, chunk, room), 0);
    assert_int_equal(bus_send(a.bus, 2, 4, chunk, 0), BUS_EFULL);
    assert_int_equal(bus_peer_info(a.bus, 2, &info), 0);
    assert_int_equal(info.sendq_bytes, BUS_SENDQ_BYTES_MAX);
    accepted++;

    wait_frames(&b, accepted);
    assert_int_equal(b.out_of_order, 0);
    assert_int_equal(bus_peer_info(a.bus, 2, &info), 0);
    assert_int_equal(info.sendq_bytes, 0);
    assert_int_equal(bus_send(a.bus, 2, T_SEQ, (memcpy(chunk, &seq, 8), chunk), MIB), 0);
    wait_frames(&b, accepted + 1);
    assert_int_equal(b.out_of_order, 0);
    free(chunk);
    node_stop(&a);
    node_stop(&b);
}

static void test_change_peer_address(void **state)
{
    (void)state;
    struct tnode a, b1, b2, dead;
    node_start(&a, 1, SECRET);
    node_start(&b1, 2, SECRET);
    node_start(&b2, 2, SECRET); /* node 2 again, moved to another port */
    node_start(&dead, 9, SECRET);
    char dead_addr[64];
    snprintf(dead_addr, sizeof(dead_addr), "%s", dead.addr);
    node_stop(&dead); /* a port nobody listens on */

    assert_int_equal(bus_set_peer(a.bus, 2, dead_addr), 0);
    run_ms(150);
    assert_int_equal(bus_peer_up(a.bus, 2), 0);
    struct bus_peer_info info;
    assert_int_equal(bus_peer_info(a.bus, 2, &info), 0);
    assert_true(info.dial_failures >= 1);

    struct pair p1 = {&a, &b1}, p2 = {&a, &b2};
    assert_int_equal(set_peer(&a, &b1), 0);
    assert_true(run_until(outbound_up, &p1, WAIT_MS));
    assert_int_equal(set_peer(&a, &b1), 0); /* same address: nothing changes */
    assert_true(bus_peer_up(a.bus, 2));

    assert_int_equal(set_peer(&a, &b2), 0);
    assert_int_equal(a.state_cb_in_api, 0);
    assert_true(run_until(outbound_up, &p2, WAIT_MS));
    assert_int_equal(bus_peer_info(a.bus, 2, &info), 0);
    assert_string_equal(info.addr, b2.addr);
    assert_string_equal(info.remote, b2.addr);
    assert_int_equal(send_text(&a, 2, "to the new place"), 0);
    wait_frames(&b2, 1);
    run_ms(20);
    assert_int_equal(b1.frames, 0);
    assert_string_equal(b2.last, "to the new place");
    assert_int_equal(bus_peer_up(b1.bus, 1), 0);

    /* Removing the peer closes the link; the "down" arrives from the loop, not the call. */
    in_api = 1;
    bus_remove_peer(a.bus, 2);
    in_api = 0;
    assert_int_equal(a.state_cb_in_api, 0);
    run_ms(20);
    assert_int_equal(a.up[2], 0);
    assert_int_equal(bus_peer_up(a.bus, 2), 0);
    assert_int_equal(bus_peer_info(a.bus, 2, &info), BUS_ENOTFOUND);
    node_stop(&a);
    node_stop(&b1);
    node_stop(&b2);
}

/* A host name goes through the asynchronous resolver; "localhost" may list ::1 first, where
 * nobody listens, so this also covers moving on to a name's next address. */
static void test_dns_name(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, SECRET);
    node_start(&b, 2, SECRET);
    char addr[64];
    snprintf(addr, sizeof(addr), "localhost:%d", b.port);
    assert_int_equal(bus_set_peer(a.bus, 2, addr), 0);
    struct pair p = {&a, &b};
    assert_true(run_until(outbound_up, &p, WAIT_MS));
    assert_int_equal(send_text(&a, 2, "by name"), 0);
    wait_frames(&b, 1);
    assert_string_equal(b.last, "by name");

    /* A name that does not resolve fails quietly and keeps retrying; freeing with a lookup in
     * flight must neither crash nor leak. */
    assert_int_equal(bus_set_peer(a.bus, 3, "no-such-host.invalid:7000"), 0);
    run_ms(5);
    node_stop(&a);
    node_stop(&b);
}

static void test_wrong_node_at_address(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, SECRET);
    node_start(&b, 2, SECRET);
    assert_int_equal(bus_set_peer(a.bus, 3, b.addr), 0); /* b is node 2, not 3 */
    run_ms(150);
    assert_int_equal(bus_peer_up(a.bus, 3), 0);
    assert_int_equal(a.up_events, 0);
    assert_true(stats_of(&a).protocol_errors >= 1);
    node_stop(&a);
    node_stop(&b);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    struct tnode a;
    node_start(&a, 1, SECRET);
    int fd = raw_connect(a.port);
    raw_write(fd, "RDBS", 4); /* a good start, then silence */
    run_ms(BUS_HANDSHAKE_MS - 500);
    assert_false(raw_closed(&fd));
    assert_true(run_until(raw_closed, &fd, 1500));
    close(fd);
    assert_int_equal(stats_of(&a).handshake_failures, 1);
    node_stop(&a);
}

static void test_pending_limit(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, SECRET);
    node_start(&b, 2, SECRET);
    int fds[BUS_PENDING_MAX + 3];
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        fds[i] = raw_connect(a.port);
        run_ms(1);
    }
    run_ms(30);
    struct bus_stats s = stats_of(&a);
    assert_int_equal(s.accepted, BUS_PENDING_MAX + 3);
    assert_int_equal(s.refused_busy, 3);
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        close(fds[i]);
    run_ms(30);
    link_pair(&b, &a); /* room again once they are gone */
    node_stop(&a);
    node_stop(&b);
}

/* Protected mode for the bus (an empty cluster-secret): a peer from 127.0.0.2 is closed at accept,
 * before it sees a WELCOME; 127.0.0.1 still links. */
static void test_loopback_only(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, "");
    node_start(&b, 2, "");
    bus_set_loopback_only(a.bus, 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in me, to;
    memset(&me, 0, sizeof(me));
    me.sin_family = AF_INET;
    me.sin_addr.s_addr = htonl(0x7f000002); /* 127.0.0.2: not local, as Redis counts */
    assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)a.port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    assert_true(run_until(raw_closed, &fd, WAIT_MS));
    close(fd);
    struct bus_stats s = stats_of(&a);
    assert_int_equal(s.refused_protected, 1);
    assert_int_equal(s.handshakes_ok, 0);
    link_pair(&b, &a); /* b dials from 127.0.0.1 */
    node_stop(&a);
    node_stop(&b);
}

struct accept_wait {
    int lfd, fd;
};

static int accepted(void *arg)
{
    struct accept_wait *w = arg;
    if (w->fd < 0)
        w->fd = accept(w->lfd, NULL, NULL);
    return w->fd >= 0;
}

/* The source address of the connection a bus listening on ip (in protected mode if
 * loopback_only) dials to a raw listener. */
static void dial_source(const char *ip, int loopback_only, char *out, size_t outlen)
{
    struct tnode a;
    node_start_at(&a, 1, SECRET, ip, 0);
    bus_set_loopback_only(a.bus, loopback_only);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(bus_set_peer(a.bus, 2, addr), 0);
    struct accept_wait w = {lfd, -1};
    assert_true(run_until(accepted, &w, WAIT_MS));
    struct sockaddr_in peer;
    sl = sizeof(peer);
    assert_int_equal(getpeername(w.fd, (struct sockaddr *)&peer, &sl), 0);
    assert_non_null(inet_ntop(AF_INET, &peer.sin_addr, out, (socklen_t)outlen));
    close(w.fd);
    close(lfd);
    node_stop(&a);
}

/* A bus bound to one address dials from it (firewall rules and the chaos harness tell nodes
 * apart by it); a wildcard listener leaves the source to the kernel, and so does protected mode
 * (its peers admit 127.0.0.1 only). */
static void test_dials_from_bind_address(void **state)
{
    (void)state;
    char src[64];
    dial_source("127.0.0.21", 0, src, sizeof(src));
    assert_string_equal(src, "127.0.0.21");
    dial_source("0.0.0.0", 0, src, sizeof(src));
    assert_string_equal(src, "127.0.0.1");
    dial_source("127.0.0.21", 1, src, sizeof(src));
    assert_string_equal(src, "127.0.0.1");
}

static void test_free_inside_callbacks(void **state)
{
    (void)state;
    struct tnode a, b;
    node_start(&a, 1, SECRET);
    node_start(&b, 2, SECRET);
    link_pair(&a, &b);
    b.free_on_frame = 1;
    assert_int_equal(send_text(&a, 2, "first"), 0);
    assert_int_equal(send_text(&a, 2, "second"), 0);
    wait_frames(&b, 1);
    run_ms(20);
    assert_null(b.bus);
    assert_int_equal(b.frames, 1); /* nothing delivered after the free */
    struct pair p = {&a, &b};
    assert_true(run_until(peer_down, &p, WAIT_MS));

    /* Removing a peer from inside its own "up" callback. */
    struct tnode c;
    node_start(&c, 3, SECRET);
    a.remove_on_up = 3;
    assert_int_equal(set_peer(&a, &c), 0);
    struct pair pc = {&a, &c};
    run_until(both_up, &pc, 500);
    run_ms(50);
    assert_int_equal(a.down_events, 2);
    assert_int_equal(bus_peer_up(a.bus, 3), 0);
    node_stop(&a);
    node_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_api_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_secret_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_rejected_good_peer_unaffected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_raw_dialer_speaks_documented_protocol, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_joining_node_answered_inbound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_queue_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_peer_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_node_at_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dials_from_bind_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_callbacks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
