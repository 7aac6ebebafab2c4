/* node.h: the replicated log as the rest of redraft sees it. It drives the Raft core
 * (raftlog/raft.h) with libev ticks, persists through raftlog/store.h and talks to the other
 * nodes through the cluster bus (raftlog/bus.h).
 *
 * Writes: rn_propose hands bytes to the log. On the leader they are proposed at once (the index
 * and term come back); on a follower they are forwarded to the leader over the bus and the
 * leader's answer comes back later through cbs->proposed (index, term) or cbs->propose_failed
 * (definitely not proposed: safe to retry). A proposal that was accepted can still be lost with
 * a change of leader: the caller learns it when the index it was given is applied with another
 * entry (it then never will be applied), or by its own deadline (outcome unknown).
 *
 * Guarded proposals: the first guard_len bytes of a proposal may be a guard, a condition the
 * leader checks against its own log at the moment it appends (cbs->admit, set by the owner, who
 * alone knows what the guard says: proxy/watch.c for WATCH). The check and the append happen in
 * one call of the synchronous core, so no entry can come between them; only the bytes after the
 * guard go into the log. A refused proposal ends with RN_EWATCH (on a follower: a FWD_NACK with
 * that code). A guarded forward travels as RN_BUS_FWD_GUARDED, which a leader of an older
 * version does not know and drops, rather than appending the guard as part of the entry.
 *
 * Commit: cbs->committed(commit) reports entries that are durable on a quorum and on this node's
 * own disk; rn_fetch reads them back for the apply path (non-client entries, such as a leader's
 * no-op or a configuration change, come back empty: they change nothing in Redis).
 *
 * Group commit: every event of a loop turn (ticks, messages, proposals) only changes the core;
 * rn_flush, called once per turn from the before-sleep step, takes the core's ready state and
 * writes it with one synced RocksDB WriteBatch before sending the messages that depend on it.
 * A leader's write runs on the store's thread: rn_flush returns at once and finishes the ready
 * in a later turn (the thread wakes the loop), and whatever was proposed meanwhile goes into the
 * next batch. The owner must call rn_flush every loop turn.
 *
 * Reads: rn_read_index(rctx) asks for a linearizable read index (Raft thesis §6.4), answered
 * through cbs->read_index(rctx, index); index 0 means it failed (no leader, leadership lost).
 *
 * Ownership: the node borrows the store and the bus (main owns them). Data passed in is copied.
 */
#ifndef REDRAFT_NODE_H
#define REDRAFT_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct rlog;
struct bus;
struct ev_loop;
struct raft_status;

enum {
    RN_OK = 0,
    RN_EIO = -1, /* the store failed: the node can no longer accept writes */
    RN_ENOMEM = -2,
    RN_ETOOBIG = -3, /* entry larger than the store accepts */
    RN_ENOTFOUND = -4,
    RN_ENOLEADER = -5,  /* no leader known (or the leader cannot be reached): not proposed */
    RN_EFULL = -6,      /* too much uncommitted data: not proposed */
    RN_ENOCLUSTER = -7, /* this node is not part of a cluster yet */
    RN_ETRANSFER = -8,  /* leadership transfer in progress: not proposed */
    RN_EWATCH = -9,     /* the leader's admit check refused a guarded proposal: not proposed */
    RN_FORWARDED = 1,   /* sent to the leader; the outcome comes through a callback */
};

/* Frame types on the cluster bus (the bus itself knows nothing of them). */
enum {
    RN_BUS_RAFT = 1,        /* an encoded Raft message */
    RN_BUS_FWD = 2,         /* reqid | entry bytes: a follower's write for the leader */
    RN_BUS_FWD_ACK = 3,     /* reqid | index | term */
    RN_BUS_FWD_NACK = 4,    /* reqid | code (RN_E*) | term forwarded in: not proposed */
    RN_BUS_ADMIN = 5,       /* reqid | argc | args: a membership command for the leader */
    RN_BUS_ADMIN_REPLY = 6, /* reqid | RESP reply */
    RN_BUS_SNAP_REQ = 7,    /* a follower asks for a piece of the snapshot (proxy/snapshot.c) */
    RN_BUS_SNAP_CHUNK = 8,  /* the leader's answer: one piece of it */
    RN_BUS_FWD_GUARDED = 9, /* reqid | term | guard length | guard | entry: a guarded FWD */
};

/* The leader's log as cbs->admit sees it: entries 1..last exist, but those a snapshot dropped
 * cannot be read. read gives the bytes of a client entry, or len 0 for the others (a no-op, a
 * configuration); they stay valid until the next read. 0, or -1 when the entry cannot be read
 * (compacted away, or a store error). */
struct rn_log_view {
    uint64_t last;
    int (*read)(void *rctx, uint64_t index, const void **data, size_t *len);
    void *rctx;
};

struct rn_node_cbs {
    void (*committed)(void *ctx, uint64_t commit);
    void (*read_index)(void *ctx, uint64_t rctx, uint64_t index);
    void (*proposed)(void *ctx, uint64_t reqid, uint64_t index, uint64_t term);
    /* term: the term the refused forward was sent in (0 from a node that does not say). */
    void (*propose_failed)(void *ctx, uint64_t reqid, int code, uint64_t term);
    void (*admin_reply)(void *ctx, uint64_t reqid, const char *resp, size_t len);
    /* Role or leader changed (for logging and for writes waiting for a leader). */
    void (*role_changed)(void *ctx, int role, uint64_t term, uint64_t leader);
    /* The leader `from` announced a snapshot at (index, term) this node needs: fetch it and
     * then call rn_snapshot_installed, or rn_snapshot_fetch_failed. */
    void (*snapshot_fetch)(void *ctx, uint64_t index, uint64_t term, uint64_t from);
    /* A RN_BUS_SNAP_REQ or RN_BUS_SNAP_CHUNK frame (the snapshot transfer is the owner's). */
    void (*snap_frame)(void *ctx, uint64_t from, uint8_t type, const void *payload, size_t len);
    /* On the leader, just before a guarded proposal would be appended at log->last + 1: RN_OK
     * to append it, or an RN_E* code (RN_EWATCH) to refuse it. guard is borrowed. Without this
     * callback every guarded proposal is refused. */
    int (*admit)(void *ctx, const void *guard, size_t guard_len, const struct rn_log_view *log);
};

struct rn_node_cfg {
    uint64_t id;
    int tick_ms;
    int election_ticks;
    int heartbeat_ticks;
    uint64_t seed;
    size_t uncommitted_bytes_max;
    const char *secret; /* the cluster secret (borrowed; lives as long as the node) */
};

#define RN_JOIN_PROOF_HEX 64
/* The proof a joining node sends with RAFT.NODE ADD: hex HMAC-SHA256 over its id and address
 * keyed with the cluster secret, so a node that does not know the secret cannot join. */
void rn_join_proof(const char *secret, uint64_t id, const char *addr, size_t addrlen,
                   char out[RN_JOIN_PROOF_HEX + 1]);

struct rn_node;

struct rn_node *rn_node_new(struct ev_loop *loop, struct rlog *store, struct bus *bus,
                            const struct rn_node_cfg *cfg, void *ctx, const struct rn_node_cbs *cbs,
                            char *err, size_t errlen);
void rn_node_free(struct rn_node *n);
void rn_node_start(struct rn_node *n); /* starts ticking */

/* 1 once this node is part of a cluster (initialized, joined, or holding a log). */
int rn_in_cluster(const struct rn_node *n);
/* RAFT.CLUSTER INIT: makes this node the one voter of a new cluster; addr is its bus address.
 * Returns 0 or an error (already in a cluster). */
int rn_bootstrap(struct rn_node *n, const char *bus_addr, char *err, size_t errlen);
/* Marks a node that asked to join (so it reports itself as waiting to be added). */
void rn_set_joining(struct rn_node *n);
/* 1 once rn_set_joining was called (stays 1 after the node is in the cluster). */
int rn_joining(const struct rn_node *n);

/* RN_OK: proposed here at *index_out, *term_out. RN_FORWARDED: sent to the leader, to be
 * proposed only in term *term_out (the leader refuses it in any other term). The first
 * guard_len bytes of data are a guard (0: none), see "Guarded proposals" above. */
int rn_propose(struct rn_node *n, uint64_t reqid, const void *data, size_t len, size_t guard_len,
               uint64_t *index_out, uint64_t *term_out);
/* The newest term among the entries committed since start, and the index of its first entry.
 * Once a node has applied that index, no entry of an older term can commit any more (terms
 * only grow along the log): a write forwarded in an older term and not applied by then never
 * will be. (0, 0) before any entry was committed since start. */
void rn_term_start(const struct rn_node *n, uint64_t *term, uint64_t *index);
int rn_read_index(struct rn_node *n, uint64_t rctx);
/* The term, when this node leads (0 otherwise), and raft_lead_read_index: the commit index a
 * linearizable read may be taken at now, before its round (0: not the leader, or no entry of its
 * term committed yet). */
uint64_t rn_leader_term(const struct rn_node *n);
uint64_t rn_lead_read_index(struct rn_node *n);
/* Processes the core's ready state (persist, send, report). Called once per loop turn. */
int rn_flush(struct rn_node *n);
int rn_fetch(struct rn_node *n, uint64_t index, void **data, size_t *len);

/* Membership and leadership commands (RAFT.NODE ADD id addr [proof] | REMOVE id | ADDR id addr:
 * a member's new bus address). ADD with a
 * proof (a join) is refused unless the proof matches this cluster's secret; without one it is
 * an operator's command, trusted like any client command. On the
 * leader they run now and the reply (RESP) is appended to out, returning 0; on a follower they
 * go to the leader and RN_FORWARDED is returned (the reply comes through cbs->admin_reply). */
int rn_admin(struct rn_node *n, uint64_t reqid, int argc, const char **argv, const size_t *argvlen,
             struct rd_buf *out);
/* Starts a leadership transfer (target 0: any). 0 or an error code. */
int rn_transfer_leader(struct rn_node *n, uint64_t target);

uint64_t rn_id(const struct rn_node *n);
uint64_t rn_commit_index(const struct rn_node *n);
uint64_t rn_last_index(const struct rn_node *n);
uint64_t rn_first_index(const struct rn_node *n);
int rn_role(const struct rn_node *n);
uint64_t rn_leader(const struct rn_node *n);
int rn_failed(const struct rn_node *n);
uint64_t rn_fsyncs(const struct rn_node *n);
void rn_status(const struct rn_node *n, struct raft_status *out);
/* The bus address a member announced ("" when unknown). */
const char *rn_member_addr(const struct rn_node *n, uint64_t id, char *buf, size_t buflen);
/* Cluster bus events (wired by main). */
void rn_on_frame(struct rn_node *n, uint64_t from, uint8_t type, const void *payload, size_t len);
void rn_on_peer_state(struct rn_node *n, uint64_t node, int up);

/* Snapshots. The data is the owner's (an RDB file); the node keeps its metadata. */
struct raft_snapshot_meta;
/* The owner stored a snapshot of its state machine holding at least every entry through index
 * (index <= what it has applied). Records it (term and configuration at index), drops the log
 * through index and persists that, then compacts the freed range in the background.
 * *meta_out gets the snapshot's metadata. 0 or an RN_E* code (RN_ENOTFOUND: index not above
 * the current snapshot or not applied yet). */
int rn_snapshot_taken(struct rn_node *n, uint64_t index, struct raft_snapshot_meta *meta_out);
/* The snapshot described by meta (as fetched from the leader) is in the state machine now.
 * Both calls first wait for a log write in flight (they must not come between a ready and its
 * advance), so neither may be made from inside the node's own callbacks. */
int rn_snapshot_installed(struct rn_node *n, const struct raft_snapshot_meta *meta);
void rn_snapshot_fetch_failed(struct rn_node *n);
/* The latest snapshot's metadata (index 0: none). */
void rn_snapshot_meta(const struct rn_node *n, struct raft_snapshot_meta *out);
/* Sends one frame to a member over the bus. 0 or -1. */
int rn_send(struct rn_node *n, uint64_t to, uint8_t type, const void *payload, size_t len);
struct rlog *rn_store(const struct rn_node *n);
/* Members in the latest configuration. */
unsigned rn_member_count(const struct rn_node *n);
/* 1 when the stored entry at index carries a client write (not a no-op or a configuration). */
int rn_is_client_entry(struct rn_node *n, uint64_t index);
/* While on, RAFT.NODE ADD on this leader answers TRYAGAIN (a dataset adopted at INIT has no
 * snapshot yet, and a node that joined now would miss it). */
void rn_block_joins(struct rn_node *n, int on);
/* This node's bus address as it announces it now. When the configuration holds another one
 * (the node moved), the node asks the leader to record the new one (RAFT.NODE ADDR). */
void rn_set_announce(struct rn_node *n, const char *addr);

/* Appends the "# Raft" INFO section. */
void rn_info(struct rn_node *n, struct rd_buf *out);

#endif
