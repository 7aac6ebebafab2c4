/* fuzz_bus.c: the cluster bus (raftlog/bus.c) as anyone who can reach its port sees it: the
 * handshake a listener runs and the frame decoder behind it.
 *
 * One real bus (node 1) lives across inputs. Each input is one inbound connection, one end of a
 * socketpair handed over with bus_adopt; the harness plays the dialer on the other end. Byte 0
 * holds the choices: bit 0 sends the correct proof of the secret (computed here) instead of
 * bytes from the input; all of it seeds the sizes of the writes, with the loop run between them,
 * so messages arrive split anywhere. Then come 32 bytes taken as HELLO, 32 more taken as the
 * proof (unless bit 0), and the rest is the frame stream.
 *
 * Invariants checked:
 *  - a HELLO with a bad magic, version or node id closes the connection and gets no WELCOME; a
 *    good one gets a WELCOME naming node 1 whose MAC is right for the secret;
 *  - a wrong proof closes the connection, counts as an authentication failure, and nothing sent
 *    after it is delivered;
 *  - after the right proof, the frames delivered re-encode to exactly the complete frames of the
 *    stream, in order, from the node the HELLO named; a length over BUS_FRAME_MAX closes the
 *    connection and counts as a protocol error;
 *  - closing the harness's end takes the link down and leaves no connection behind (the bus
 *    would refuse new ones once BUS_PENDING_MAX leaked).
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/sha256.h"
#include "raftlog/bus.h"
#include "tests/fuzz/fuzz.h"

#define SELF        1
#define SECRET      "fuzz-cluster-secret"
#define HELLO_LEN   32
#define WELCOME_LEN 64
#define PROOF_LEN   32
#define NONCE_LEN   16

static struct ev_loop *loop;
static struct bus *bus;
static struct rd_buf got; /* frames delivered, re-encoded */
static uint64_t got_from;

static void on_frame(void *ctx, uint64_t from, uint8_t type, const void *payload, size_t len)
{
    uint8_t hdr[5] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
                      type};
    rd_buf_append(&got, hdr, sizeof(hdr));
    rd_buf_append(&got, payload, len);
    FUZZ_CHECK(got_from == 0 || got_from == from, "frames from %llu and %llu on one connection",
               (unsigned long long)got_from, (unsigned long long)from);
    got_from = from;
}

static void setup(void)
{
    rd_log_open("", RD_LL_WARNING + 1); /* nothing: rejections are expected by the thousand */
    loop = ev_loop_new(EVFLAG_AUTO);
    static const struct bus_cbs cbs = {.on_frame = on_frame};
    bus = bus_new(loop, SELF, SECRET, NULL, &cbs);
    FUZZ_CHECK(loop != NULL && bus != NULL, "no bus");
    rd_buf_init(&got);
}

static void spin(void)
{
    for (int i = 0; i < 6; i++)
        ev_run(loop, EVRUN_NOWAIT);
}

/* Writes n bytes in pieces of input-chosen sizes, letting the bus read between them. */
static void feed(int fd, const uint8_t *p, size_t n, uint32_t *seed)
{
    while (n > 0) {
        size_t chunk = 1 + fuzz_next(seed) % 48;
        if (chunk > n)
            chunk = n;
        ssize_t w = send(fd, p, chunk, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the bus closed it; the caller checks that it was right to */
        p += w;
        n -= (size_t)w;
        spin();
    }
}

/* Reads what the bus sent, up to cap bytes; *closed tells whether it closed its end. */
static size_t drain(int fd, uint8_t *buf, size_t cap, int *closed)
{
    size_t have = 0;
    *closed = 0;
    for (;;) {
        uint8_t scratch[256];
        ssize_t r = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            *closed = 1;
            return have;
        }
        if (r < 0)
            return have;
        size_t take = (size_t)r < cap - have ? (size_t)r : cap - have;
        memcpy(buf + have, scratch, take);
        have += take;
    }
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void mac(const char *label, const uint8_t *nonce_d, const uint8_t *nonce_l, uint64_t d,
                uint8_t out[RD_SHA256_LEN])
{
    uint8_t ids[16];
    for (int i = 0; i < 8; i++) {
        ids[i] = (uint8_t)(d >> (56 - 8 * i));
        ids[8 + i] = (uint8_t)((uint64_t)SELF >> (56 - 8 * i));
    }
    struct rd_hmac_sha256 h;
    rd_hmac_sha256_init(&h, SECRET, strlen(SECRET));
    rd_hmac_sha256_update(&h, label, 13);
    rd_hmac_sha256_update(&h, nonce_d, NONCE_LEN);
    rd_hmac_sha256_update(&h, nonce_l, NONCE_LEN);
    rd_hmac_sha256_update(&h, ids, sizeof(ids));
    rd_hmac_sha256_final(&h, out);
}

/* The frames the stream holds, as the documented format says: the bytes of every complete
 * frame before the first oversized length (*oversize) or the end. */
static size_t complete_frames(const uint8_t *p, size_t n, int *oversize)
{
    size_t off = 0;
    *oversize = 0;
    while (n - off >= 5) {
        uint32_t len = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
                       (uint32_t)p[off + 2] << 8 | p[off + 3];
        if (len > BUS_FRAME_MAX) {
            *oversize = 1;
            break;
        }
        if (n - off - 5 < len)
            break;
        off += 5 + (size_t)len;
    }
    return off;
}

static void session(const uint8_t *data, size_t size, int sv)
{
    uint32_t seed = data[0] | 0x100u;
    int send_right_proof = data[0] & 1;
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    struct bus_stats before, after;
    bus_stats(bus, &before);

    size_t hl = n < HELLO_LEN ? n : HELLO_LEN;
    feed(sv, s, hl, &seed);
    spin();
    uint8_t w[WELCOME_LEN];
    int closed;
    size_t wl = drain(sv, w, sizeof(w), &closed);
    int magic_ok = hl < 4 || memcmp(s, "RDBS", 4) == 0;
    uint64_t id = hl == HELLO_LEN ? be64(s + 8) : 0;
    int hello_ok = hl == HELLO_LEN && magic_ok && s[4] == 0 && s[5] == 1 && id != 0 && id != SELF;
    if (!hello_ok) {
        FUZZ_CHECK(wl == 0, "a WELCOME for a bad or partial HELLO");
        FUZZ_CHECK(closed == (hl == HELLO_LEN || !magic_ok), "bad HELLO: closed %d after %zu bytes",
                   closed, hl);
        return;
    }
    FUZZ_CHECK(!closed && wl == WELCOME_LEN, "no WELCOME for a good HELLO (%zu bytes, closed %d)",
               wl, closed);
    FUZZ_CHECK(memcmp(w, "RDBS\0\1\0\0", 8) == 0 && be64(w + 8) == SELF, "a malformed WELCOME");
    uint8_t want[RD_SHA256_LEN];
    mac("redraft-bus-L", s + 16, w + 16, id, want);
    FUZZ_CHECK(memcmp(want, w + HELLO_LEN, RD_SHA256_LEN) == 0, "the listener's proof is wrong");

    const uint8_t *rest = s + HELLO_LEN;
    size_t rn = n - HELLO_LEN;
    uint8_t proof[PROOF_LEN];
    if (send_right_proof) {
        mac("redraft-bus-D", s + 16, w + 16, id, proof);
    } else {
        if (rn < PROOF_LEN) {
            feed(sv, rest, rn, &seed);
            drain(sv, w, sizeof(w), &closed);
            FUZZ_CHECK(!closed, "closed before the proof was complete");
            return;
        }
        memcpy(proof, rest, PROOF_LEN);
        rest += PROOF_LEN;
        rn -= PROOF_LEN;
    }
    feed(sv, proof, PROOF_LEN, &seed);
    spin();
    drain(sv, w, sizeof(w), &closed);
    bus_stats(bus, &after);
    if (!send_right_proof) {
        /* The nonce is fresh from the kernel: no input can carry the right proof. */
        FUZZ_CHECK(closed, "a wrong proof was accepted");
        FUZZ_CHECK(after.auth_failures == before.auth_failures + 1, "auth failure not counted");
        feed(sv, rest, rn, &seed);
        FUZZ_CHECK(got.len == 0, "a frame delivered without the secret");
        return;
    }
    FUZZ_CHECK(!closed && bus_peer_up(bus, id), "the right proof was refused");
    FUZZ_CHECK(after.handshakes_ok == before.handshakes_ok + 1, "handshake not counted");

    feed(sv, rest, rn, &seed);
    spin();
    drain(sv, w, sizeof(w), &closed);
    int oversize;
    size_t expect = complete_frames(rest, rn, &oversize);
    FUZZ_CHECK(got.len == expect && (expect == 0 || memcmp(got.data, rest, expect) == 0),
               "%zu bytes of frames delivered, the stream holds %zu", got.len, expect);
    FUZZ_CHECK(expect == 0 || got_from == id, "frames from %llu, HELLO said %llu",
               (unsigned long long)got_from, (unsigned long long)id);
    bus_stats(bus, &after);
    FUZZ_CHECK(closed == oversize, "oversized length %d, closed %d", oversize, closed);
    if (oversize)
        FUZZ_CHECK(after.protocol_errors == before.protocol_errors + 1, "not counted");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (bus == NULL)
        setup();
    if (size < 1)
        return 0;
    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
               strerror(errno));
    int rc = bus_adopt(bus, sv[0], "fuzz");
    FUZZ_CHECK(rc == BUS_OK, "bus_adopt: %s (connections leaked?)", bus_errstr(rc));
    session(data, size, sv[1]);
    close(sv[1]);
    spin();
    uint64_t id = size > 1 + 16 ? be64(data + 1 + 8) : 0;
    if (id != 0 && id != SELF)
        FUZZ_CHECK(!bus_peer_up(bus, id), "the link is still up after the connection closed");
    rd_buf_reset(&got);
    got_from = 0;
    return 0;
}
