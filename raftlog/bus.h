/* bus.h: the cluster bus, the TCP transport between redraft nodes.
 *
 * What it does: carries opaque typed frames (Raft messages encoded elsewhere, forwarded client
 * writes, snapshot chunks) between nodes that have proved the shared cluster secret. It knows
 * nothing of Raft: a frame is a type byte and up to BUS_FRAME_MAX bytes. docs/cluster-bus.md has
 * the wire format and the reasons behind it.
 *
 * Connections: the bus dials every peer given to bus_set_peer (re-resolving the host name on each
 * attempt, retrying with exponential back-off from BUS_BACKOFF_MIN_MS to BUS_BACKOFF_MAX_MS), and
 * accepts connections on its listener from any node that proves the secret, configured or not.
 * Either direction carries frames both ways: bus_send uses the authenticated outbound connection
 * to a node when there is one, else the newest authenticated inbound connection from it. That is
 * what lets a node that has just joined answer a leader whose address it does not know yet.
 * A node is "up" while at least one authenticated connection with it exists; on_peer_state
 * reports each change once. There is at most one outbound and one inbound connection per node:
 * a newer authenticated inbound connection from a node replaces the older one.
 *
 * Delivery: frames sent on one connection arrive in order, at most once. Nothing is retried
 * across connections: a frame queued on a connection that dies is lost, which Raft tolerates.
 * bus_send never blocks; it fails when there is no authenticated connection or the connection's
 * queue is over BUS_SENDQ_BYTES_MAX (an empty queue always takes one frame up to BUS_FRAME_MAX).
 *
 * Security: a connection is authenticated by a mutual HMAC-SHA256 challenge over fresh nonces.
 * It proves both ends know the secret when the connection opens; it does not encrypt or sign
 * later frames, so the bus belongs on a network an attacker cannot sit in the middle of (or
 * inside a tunnel). Anything a peer sends that breaks the protocol closes its connection with
 * one log line naming its address.
 *
 * Threading and calls: single-threaded, driven by the libev loop given to bus_new; every function
 * must be called from the loop's thread. Callbacks run only from the loop, never from inside a
 * bus_* call: a state change caused by bus_set_peer or bus_remove_peer is reported on a later
 * loop turn. Inside a callback any bus_* function may be called, bus_free included (the free
 * then happens once the callback returns).
 *
 * Ownership: the bus copies the secret, addresses and queued payloads. A payload handed to
 * on_frame is borrowed for the duration of the call. The caller owns the loop and must call
 * bus_free before destroying it; bus_free closes every connection and reports nothing.
 *
 * Errors: functions return 0 or a negative BUS_E* code; bus_errstr names one.
 */
#ifndef REDRAFT_BUS_H
#define REDRAFT_BUS_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

enum {
    BUS_OK = 0,
    BUS_ENOMEM = -1,
    BUS_EINVAL = -2,   /* caller error: node id 0 or our own, malformed "host:port" */
    BUS_ENOTCONN = -3, /* no authenticated connection with that node */
    BUS_EFULL = -4,    /* the connection's send queue is over BUS_SENDQ_BYTES_MAX */
    BUS_ETOOBIG = -5,  /* payload longer than BUS_FRAME_MAX */
    BUS_ELISTEN = -6,  /* the listener could not be set up (see err) */
    BUS_ENOTFOUND = -7,
};

/* Limits. */
#define BUS_FRAME_MAX       (64u * 1024 * 1024) /* payload bytes of one frame */
#define BUS_SENDQ_BYTES_MAX (64u * 1024 * 1024) /* queued output bytes per connection */
#define BUS_HANDSHAKE_MS    3000                /* connect + handshake must finish within */
#define BUS_BACKOFF_MIN_MS  100                 /* first retry after a failed or lost link */
#define BUS_BACKOFF_MAX_MS  2000                /* retries never wait longer than this */
#define BUS_PENDING_MAX     64                  /* inbound connections still in handshake */
#define BUS_ADDR_MAX        256                 /* bytes of "host:port", including the NUL */
#define BUS_LINK_TIMEOUT_MS 15000               /* unacknowledged output this old closes the link */

struct bus;

struct bus_cbs {
    /* A frame from an authenticated node; payload is borrowed for the call. */
    void (*on_frame)(void *ctx, uint64_t from_node, uint8_t type, const void *payload, size_t len);
    /* A node became reachable (up 1) or unreachable (up 0); for INFO and for telling Raft
     * (raft_report_unreachable). Also called for nodes that only ever dialed us. May be NULL. */
    void (*on_peer_state)(void *ctx, uint64_t node, int up);
};

/* A new bus for node self_id (not 0). secret may be any bytes up to its NUL; an empty secret
 * authenticates nothing and is logged as a warning. Returns NULL when out of memory or when
 * self_id is 0. cbs is copied. */
struct bus *bus_new(struct ev_loop *loop, uint64_t self_id, const char *secret, void *ctx,
                    const struct bus_cbs *cbs);
/* Closes every connection and frees the bus; no callbacks are made. NULL is a no-op. */
void bus_free(struct bus *b);

/* Listens on bind_addr (numeric IPv4 or IPv6; NULL or "" means 0.0.0.0) and port (0: the kernel
 * picks one, see bus_listen_port). At most one listener per bus. When bind_addr is a specific
 * address, outbound connections dialed afterwards leave from it too (best effort: the kernel
 * picks when that address cannot reach the peer; and always in protected mode, see
 * bus_set_loopback_only), so firewall rules can name a node's links. On
 * failure returns BUS_ELISTEN and, when err is given, a sentence in it. */
int bus_listen(struct bus *b, const char *bind_addr, int port, char *err, size_t errlen);
/* The port the listener is bound to, or 0 when not listening. */
int bus_listen_port(const struct bus *b);

/* Protected mode for the bus: when on, inbound connections from anywhere but 127.0.0.1 and ::1
 * are closed at accept, before the handshake. redraft turns it on when cluster-secret is empty
 * and protected-mode is yes: an empty secret proves nothing. Off after bus_new. */
void bus_set_loopback_only(struct bus *b, int on);

/* Takes an inbound connection accepted elsewhere (a socket handed over by a supervisor, or one
 * end of a socketpair in tests and the fuzzer) and treats it exactly as one the listener
 * accepted: the other end must complete the handshake before anything it sends is delivered.
 * The bus owns fd from then on, on every path (it is made non-blocking; it is closed on error).
 * remote names the other end in logs. BUS_EFULL: BUS_PENDING_MAX connections are already in
 * handshake; BUS_EINVAL: fd is not usable. */
int bus_adopt(struct bus *b, int fd, const char *remote);

/* Adds node with address "host:port" ("[v6]:port" for an IPv6 literal), or changes its address.
 * host may be a DNS name, resolved without blocking on every (re)connect. Dialing starts on the
 * next loop turn. Setting the address a peer already has changes nothing; a new address closes
 * the outbound connection to the old one. */
int bus_set_peer(struct bus *b, uint64_t node, const char *addr);
/* Stops dialing node and closes the outbound connection to it. An inbound connection from it
 * stays (a node may talk to us without being configured). Unknown nodes are ignored. */
void bus_remove_peer(struct bus *b, uint64_t node);

/* Queues one frame for node; never blocks. BUS_ENOTCONN, BUS_EFULL and BUS_ETOOBIG mean the
 * frame was not queued (the caller drops it or retries later). */
int bus_send(struct bus *b, uint64_t node, uint8_t type, const void *payload, size_t len);
/* Writes the queued frames of every connection now, as far as the sockets take them (the rest
 * goes when they are writable). The owner calls it at the end of a loop turn, so a turn's frames
 * leave in one write per connection without waiting one more turn for the write event. Optional:
 * without it they go on the next turn. */
void bus_flush(struct bus *b);
/* 1 when an authenticated connection with node exists (either direction), else 0. */
int bus_peer_up(const struct bus *b, uint64_t node);

/* What INFO shows of one node the bus knows (configured, or connected to us). */
struct bus_peer_info {
    uint64_t node;
    char addr[BUS_ADDR_MAX];   /* configured "host:port", or "" when only connected inbound */
    char remote[BUS_ADDR_MAX]; /* numeric address of the connection frames go out on, or "" */
    int configured;
    int up;                         /* an authenticated connection exists */
    int outbound_up;                /* the connection we dialed is authenticated */
    int inbound_up;                 /* a connection it dialed is authenticated */
    uint64_t frames_in, bytes_in;   /* delivered to on_frame; bytes count payload only */
    uint64_t frames_out, bytes_out; /* accepted by bus_send */
    uint64_t sends_refused;         /* bus_send failures (not connected, queue full) */
    uint64_t links;                 /* outbound connections that completed the handshake */
    uint64_t reconnects;            /* of those, the ones after the first */
    uint64_t dial_failures;         /* dial attempts that failed before authenticating */
    size_t sendq_bytes;             /* output queued on the connection in use */
};

/* Fills out for node; BUS_ENOTFOUND when the bus does not know it. */
int bus_peer_info(const struct bus *b, uint64_t node, struct bus_peer_info *out);
/* Calls fn for every node the bus knows, in no particular order. fn must not call bus_*. */
void bus_peer_each(const struct bus *b, void *ctx,
                   void (*fn)(void *ctx, const struct bus_peer_info *info));

/* Totals since bus_new, for INFO and tests. */
struct bus_stats {
    uint64_t accepted;           /* inbound TCP connections accepted */
    uint64_t refused_busy;       /* inbound closed at once: BUS_PENDING_MAX in handshake */
    uint64_t refused_protected;  /* inbound closed at once: not loopback, loopback_only set */
    uint64_t handshakes_ok;      /* both directions */
    uint64_t auth_failures;      /* wrong proof: the other side does not know the secret */
    uint64_t protocol_errors;    /* bad magic or version, own or zero node id, wrong node,
                                    oversize frame */
    uint64_t handshake_failures; /* closed, timed out or failed before authenticating */
    uint64_t links_lost;         /* authenticated connections that closed */
};
void bus_stats(const struct bus *b, struct bus_stats *out);

const char *bus_errstr(int err);

#endif
