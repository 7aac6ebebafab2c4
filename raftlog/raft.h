/* raft.h: redraft's Raft consensus core, a pure state machine with no I/O of its own.
 *
 * What it is for: it decides what the replicated log holds. It never touches a socket, a clock, a
 * disk or a random source: the caller (raftlog/node.c in the server, tests/sim in the simulator)
 * feeds it ticks (raft_tick), messages from peers (raft_step), proposals (raft_propose), read
 * requests (raft_read_index) and membership changes, and then asks what is ready (raft_ready):
 *
 *   1. persist rd.snapshot (if any), then rd.entries, then rd.hs (one atomic write is best);
 *   2. send rd.msgs (rd.msgs_early may be sent before step 1: they are a leader's appends and
 *      heartbeats, which do not depend on the leader's own disk, Raft thesis §10.2.1);
 *   3. apply rd.committed in order, serve rd.reads once applied >= their index, start a snapshot
 *      fetch if rd.fetch.index != 0, take a snapshot if rd.snapshot_want_index != 0;
 *   4. call raft_advance(r, &rd).
 * Between raft_ready and raft_advance the caller may keep calling raft_tick, raft_step,
 * raft_propose and raft_read_index (for example while an fsync is in flight); raft_ready is refused
 * until then. A leader counts its own log toward a commit quorum only for entries reported
 * persisted by raft_advance, so a leader may ship entries to followers before its own fsync
 * finishes.
 *
 * Time: the core knows only ticks. One tick is whatever the caller makes it (100 ms, say);
 * election_ticks and heartbeat_ticks are in that unit. Randomness: a seeded generator in the core's
 * state (raft_config.seed), so a run replays exactly.
 *
 * Ownership: a struct raft is created by raft_new and freed by raft_free, owned by one caller and
 * not thread-safe. Every pointer passed in is borrowed for the call (data is copied when kept).
 * Everything a struct raft_ready points to is owned by the core and stays valid until raft_advance
 * (also across raft_step/raft_tick calls made in between). Entries a storage callback returns carry
 * malloc'd data whose ownership passes to the core.
 *
 * Entries: each has an index, a term, a type and opaque bytes. RAFT_ENTRY_NORMAL holds the caller's
 * command (the caller puts its own {origin node, request id} in the bytes to recognise it on
 * apply); RAFT_ENTRY_NOOP is the empty entry a new leader appends (Raft §5.4.2, §8);
 * RAFT_ENTRY_CONF holds a whole configuration (decode it with raft_conf_entry_decode).
 *
 * Membership: one voter at a time (thesis §4.1), new servers join as learners (non-voting, §4.2.1)
 * and are promoted once caught up. A configuration takes effect as soon as it is appended to a log,
 * committed or not, and is undone if that entry is truncated. Node addresses are not the core's
 * business: each member carries an opaque blob (an address, say) that the caller maps to a peer.
 *
 * Snapshots: the payload is the caller's. The core asks for one (rd.snapshot_want_index), is told
 * when it exists (raft_snapshot_taken) and then trims its log; a leader sends RAFT_MSG_SNAPSHOT
 * (metadata only) to a follower whose next entry is gone; that follower's core asks its caller to
 * fetch the data (rd.fetch); the caller transfers it, installs it between a raft_advance and the
 * next raft_ready, then calls raft_snapshot_installed (or raft_snapshot_fetch_failed). The leader's
 * caller may report the transfer's fate with raft_report_snapshot; the follower's reply to the
 * leader also settles it.
 *
 * Errors: functions return 0 or a negative RAFT_E* code; raft_errstr names it. A storage error is
 * sticky: after it every mutating call returns RAFT_EIO.
 */
#ifndef REDRAFT_RAFT_H
#define REDRAFT_RAFT_H

#include <stddef.h>
#include <stdint.h>

enum {
    RAFT_OK = 0,
    RAFT_ENOMEM = -1,
    RAFT_EINVAL = -2,       /* caller error: bad argument, wrong state for the call */
    RAFT_ENOTLEADER = -3,   /* only a leader may do this; the caller forwards or redirects */
    RAFT_ETRANSFER = -4,    /* a leadership transfer is in progress; retry elsewhere soon */
    RAFT_EFULL = -5,        /* too many uncommitted bytes (uncommitted_bytes_max) */
    RAFT_ECONFPENDING = -6, /* a config change is not committed yet, or no entry of this term is */
    RAFT_ENOTFOUND = -7,    /* storage: the index is compacted away or beyond the log */
    RAFT_EIO = -8,          /* storage failed; sticky */
    RAFT_EMALFORMED = -9,   /* bytes did not decode */
    RAFT_EBUSY = -10,       /* a ready is outstanding (call raft_advance first) */
    RAFT_ENOLEADER = -11,   /* no leader known right now */
    RAFT_ENOTREADY = -12,   /* the learner has not caught up yet */
};
const char *raft_errstr(int code);

enum raft_role { RAFT_FOLLOWER = 0, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };
const char *raft_role_name(int role);

enum raft_entry_type { RAFT_ENTRY_NORMAL = 0, RAFT_ENTRY_NOOP = 1, RAFT_ENTRY_CONF = 2 };

struct raft_entry {
    uint64_t index;
    uint64_t term;
    uint8_t type; /* enum raft_entry_type */
    void *data;
    size_t len;
};

/* ---- Membership ---------------------------------------------------------------------------- */

#define RAFT_MEMBERS_MAX           16
#define RAFT_MEMBER_BLOB_BYTES_MAX 128

struct raft_member {
    uint64_t id;   /* never 0 */
    uint8_t voter; /* 1 voter, 0 learner */
    uint16_t blob_len;
    uint8_t blob[RAFT_MEMBER_BLOB_BYTES_MAX]; /* the caller's, e.g. "10.0.0.7:16379" */
};

struct raft_conf {
    unsigned n;
    struct raft_member members[RAFT_MEMBERS_MAX];
};

enum raft_conf_change {
    RAFT_CONF_ADD_LEARNER = 1, /* a new non-voting member; it receives the log */
    RAFT_CONF_PROMOTE = 2,     /* learner -> voter, once caught up */
    RAFT_CONF_REMOVE = 3,      /* voter or learner leaves */
    RAFT_CONF_BOOTSTRAP = 4,   /* only in the first entry of a new cluster */
    RAFT_CONF_SET_BLOB = 5,    /* a member's blob (its address) changes; votes are unchanged */
};

/* Finds a member; NULL when absent. */
const struct raft_member *raft_conf_find(const struct raft_conf *c, uint64_t id);
unsigned raft_conf_voters(const struct raft_conf *c);

/* Encoded configuration (for the caller's snapshot metadata) and configuration entry payload
 * ({change, node, resulting conf}). Encoders return RAFT_EINVAL when cap is too small;
 * decoders reject anything malformed with RAFT_EMALFORMED. */
#define RAFT_CONF_BYTES_MAX       (4 + RAFT_MEMBERS_MAX * (10 + 1 + 3 + RAFT_MEMBER_BLOB_BYTES_MAX))
#define RAFT_CONF_ENTRY_BYTES_MAX (2 + 10 + RAFT_CONF_BYTES_MAX)
int raft_conf_encode(const struct raft_conf *c, uint8_t *buf, size_t cap, size_t *len_out);
int raft_conf_decode(const void *buf, size_t len, struct raft_conf *out);
int raft_conf_entry_encode(int change, uint64_t node, const struct raft_conf *c, uint8_t *buf,
                           size_t cap, size_t *len_out);
int raft_conf_entry_decode(const void *buf, size_t len, int *change_out, uint64_t *node_out,
                           struct raft_conf *out);

/* ---- Messages ------------------------------------------------------------------------------ */

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,  /* AppendEntries (§5.3): index/log_term = previous entry */
    RAFT_MSG_APPEND_RESP, /* index = last matching index, or the rejected prev index */
    RAFT_MSG_VOTE,        /* RequestVote (§5.2): index/log_term = candidate's last entry */
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_PREVOTE, /* thesis §9.6: term = the term the candidate would use */
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_HEARTBEAT,       /* commit, ctx = heartbeat round (ReadIndex, thesis §6.4) */
    RAFT_MSG_HEARTBEAT_RESP,  /* ctx echoed */
    RAFT_MSG_SNAPSHOT,        /* InstallSnapshot metadata: index, log_term, conf bytes (§7) */
    RAFT_MSG_TIMEOUT_NOW,     /* leadership transfer: start an election now (thesis §3.10) */
    RAFT_MSG_READ_INDEX,      /* follower asks the leader for a read index; ctx is the caller's */
    RAFT_MSG_READ_INDEX_RESP, /* index (0 with reject = failed), ctx */
    RAFT_MSG_TYPE_MAX = RAFT_MSG_READ_INDEX_RESP
};
const char *raft_msg_type_name(int type);

struct raft_msg {
    uint8_t type;
    uint8_t reject; /* responses: 1 = rejected / not granted */
    uint8_t force;  /* VOTE: sent because of a leadership transfer; bypasses the lease */
    uint64_t from, to, term;
    uint64_t index;
    uint64_t log_term;
    uint64_t commit;
    uint64_t hint_index, hint_term; /* APPEND_RESP reject: follower's hint for fast back-off */
    uint64_t ctx;
    size_t n_entries; /* APPEND only; entries[i].index == index + 1 + i */
    struct raft_entry *entries;
    size_t conf_len; /* SNAPSHOT only: encoded raft_conf */
    const uint8_t *conf_data;
};

/* Limits the decoder enforces. A cluster bus frame should be capped by the caller too. */
#define RAFT_MSG_ENTRIES_MAX 65536
#define RAFT_MSG_VERSION     1

/* Exact encoded size of m. */
size_t raft_msg_encoded_size(const struct raft_msg *m);
/* Encodes m into buf (cap bytes). RAFT_EINVAL when it does not fit. */
int raft_msg_encode(const struct raft_msg *m, uint8_t *buf, size_t cap, size_t *len_out);
/* Decodes len bytes. On success out->entries is malloc'd (free it with raft_msg_release) and
 * entry data and conf_data point INTO buf, which must outlive out. Anything malformed (bad
 * version or type, a length beyond the buffer, trailing bytes, index overflow) is rejected with
 * RAFT_EMALFORMED and nothing to release. */
int raft_msg_decode(const void *buf, size_t len, struct raft_msg *out);
void raft_msg_release(struct raft_msg *m);

/* ---- Storage the core reads from ----------------------------------------------------------- */

/* The caller's durable log. The core keeps unstable entries and a window of recent stable ones in
 * memory and asks here for older ones (to send to a lagging follower, to apply after a restart).
 * Maps directly onto raftlog/store.h: entry -> rlog_get, term -> rlog_term. Both return 0,
 * RAFT_ENOTFOUND when the index is compacted away or absent, or RAFT_EIO. */
struct raft_storage_ops {
    /* Fills out (index, term, type, len); out->data is malloc'd, ownership passes to the core. */
    int (*entry)(void *ctx, uint64_t index, struct raft_entry *out);
    /* Term of the entry at index (snapshot term for the snapshot index). */
    int (*term)(void *ctx, uint64_t index, uint64_t *term_out);
};

/* ---- Creating a core ----------------------------------------------------------------------- */

struct raft_config {
    uint64_t id;                  /* this node, never 0 */
    unsigned election_ticks;      /* base election timeout; each wait is random in [e, 2e) */
    unsigned heartbeat_ticks;     /* leader heartbeat period, < election_ticks */
    uint64_t seed;                /* for the randomized election timeout */
    unsigned inflight_msgs_max;   /* pipelined appends per follower in replicate state */
    size_t msg_bytes_max;         /* entry bytes per append (at least one entry is sent) */
    size_t uncommitted_bytes_max; /* leader refuses proposals beyond this; 0 = no limit */
    size_t committed_bytes_max;   /* entry bytes handed to apply per ready (at least one) */
    int pre_vote;                 /* thesis §9.6: ask before disrupting with a new term */
    int check_quorum;             /* leader steps down when it has not heard from a quorum for
                                   * election_ticks; followers ignore votes while they hear a leader */
    int lease_read;               /* serve reads from the leader's lease without a heartbeat round
                                   * (thesis §6.4.1). Safe only with bounded clock drift between nodes;
                                   * needs check_quorum. Off by default. */
    uint64_t snapshot_entries;    /* ask for a snapshot every N applied entries; 0 = never */
    uint64_t mem_entries_max;     /* stable, applied entries kept in memory */
    uint64_t promote_lag_entries_max; /* a learner this close to the leader may be promoted */
    const struct raft_storage_ops *storage;
    void *storage_ctx;
};
/* Fills sensible defaults (election 10 ticks, heartbeat 1, pre-vote and check-quorum on). */
void raft_config_defaults(struct raft_config *c);

struct raft_hard_state {
    uint64_t term;
    uint64_t vote; /* 0 = none */
    uint64_t commit;
};

struct raft_snapshot_meta {
    uint64_t index; /* 0 = no snapshot */
    uint64_t term;
    struct raft_conf conf; /* configuration in effect at index */
};

/* Durable state the caller read back from its store. For a brand-new node everything is zero and
 * the log is empty (it waits to be added by a leader). A new cluster is bootstrapped by writing
 * one entry first: index 1, term 1, RAFT_ENTRY_CONF made by raft_conf_entry_encode(
 * RAFT_CONF_BOOTSTRAP, 0, conf), with hs = {term 1, vote 0, commit 1}, on every initial voter. */
struct raft_restore {
    struct raft_hard_state hs;
    struct raft_snapshot_meta snapshot;
    uint64_t last_index; /* last stored entry; snapshot.index when the log is empty */
    uint64_t applied;    /* index the caller's state machine has applied (>= snapshot.index) */
    /* Optional: the index of the last configuration entry in the stored log, if the caller
     * tracks it (0: unknown). It spares the core a backward scan of the whole log at start,
     * which costs one storage read per entry. It must be exact: no configuration entry may
     * follow it in the log (the caller records it in the same write as the entries). */
    uint64_t conf_index_hint;
};

struct raft;

/* Creates a core from cfg and the durable state rs (both borrowed). Reads the last entry's term
 * and the latest configuration from storage. */
int raft_new(const struct raft_config *cfg, const struct raft_restore *rs, struct raft **out);
void raft_free(struct raft *r);

/* ---- Driving it ---------------------------------------------------------------------------- */

/* One unit of time passed. */
int raft_tick(struct raft *r);
/* A message from a peer (decoded by the caller). m is borrowed. Messages for another node, from a
 * stale term or that make no sense are ignored (0); RAFT_EMALFORMED for inconsistent entries. */
int raft_step(struct raft *r, const struct raft_msg *m);
/* Appends a command (copied) to the leader's log; *index_out and *term_out (either may be NULL) say
 * where it went. It is committed only if it is later seen in rd.committed with that index and
 * term; a change of leader may drop it silently, so the caller times requests out. A follower
 * returns RAFT_ENOTLEADER: forwarding to raft_leader() over the bus is the caller's job. */
int raft_propose(struct raft *r, const void *data, size_t len, uint64_t *index_out,
                 uint64_t *term_out);
/* Asks for a linearizable read index (thesis §6.4). The answer comes as a struct raft_read_state
 * with the same ctx in a later ready: once the state machine has applied its index, a read reflects
 * every write committed before the call. index 0 means it failed (leadership changed); a request
 * may also vanish with a lost message, so time it out. On a follower the request goes to the
 * leader as RAFT_MSG_READ_INDEX (RAFT_ENOLEADER when none is known). */
int raft_read_index(struct raft *r, uint64_t ctx);
/* On a leader that has committed an entry of its term: its commit index; otherwise 0. A read of
 * a state machine that has applied at least this index, taken now, is linearizable once a
 * read-index round asked for after it (raft_read_index, in this same term) succeeds: the round
 * shows no other leader had been elected by the time it was sent, and every write acknowledged
 * before the read began is at or below this index. */
uint64_t raft_lead_read_index(struct raft *r);
/* Starts an election now (tests, or a single-node bootstrap that does not want to wait). */
int raft_campaign(struct raft *r);
/* Hands leadership to `target` (0: the most up-to-date voter), thesis §3.10: proposals are
 * refused while it runs; it is abandoned after election_ticks. Used on graceful shutdown. */
int raft_transfer_leadership(struct raft *r, uint64_t target);
/* Proposes a membership change of one node (thesis §4.1). blob (the node's address, up to
 * RAFT_MEMBER_BLOB_BYTES_MAX) is used with ADD_LEARNER and kept through PROMOTE. Refused with
 * RAFT_ECONFPENDING unless the previous change is committed AND this leader has committed an
 * entry of its own term; with RAFT_ENOTREADY when promoting a learner that lags. */
int raft_propose_conf_change(struct raft *r, int change, uint64_t node, const void *blob,
                             size_t blob_len, uint64_t *index_out);
/* Leader side: the caller's snapshot transfer to `peer` ended (ok 1) or failed (ok 0). */
int raft_report_snapshot(struct raft *r, uint64_t peer, int ok);
/* Leader side: the caller could not reach `peer`; go back to probing it. */
int raft_report_unreachable(struct raft *r, uint64_t peer);
/* Follower side: the caller fetched and installed snapshot data described by meta into its state
 * machine (only do that when meta->index > applied and no ready is outstanding: RAFT_EBUSY
 * otherwise). The core resets its log to start after meta->index (rd.snapshot in the next ready
 * tells what to persist) and tells the leader. */
int raft_snapshot_installed(struct raft *r, const struct raft_snapshot_meta *meta);
/* Follower side: the fetch announced in rd.fetch failed; a later RAFT_MSG_SNAPSHOT retries. */
int raft_snapshot_fetch_failed(struct raft *r);
/* The caller captured its state machine at `index` (above the current snapshot's index and
 * at most the applied index; RAFT_EINVAL otherwise) and stored it. The core records
 * the snapshot (its term and the configuration in effect at index go to *meta_out, which the
 * caller persists with it, e.g. rlog_set_snapshot) and drops entries <= index from memory. */
int raft_snapshot_taken(struct raft *r, uint64_t index, struct raft_snapshot_meta *meta_out);

/* ---- Ready / advance ----------------------------------------------------------------------- */

struct raft_read_state {
    uint64_t ctx;   /* as given to raft_read_index */
    uint64_t index; /* serve once applied >= index; 0 = failed, retry */
};

struct raft_snapshot_fetch {
    uint64_t index, term; /* at least this snapshot is wanted */
    uint64_t from;        /* the leader that announced it: fetch from there */
};

struct raft_ready {
    /* soft state, for the caller's information (leader changes, INFO) */
    int role;
    uint64_t term, leader;

    int hs_changed; /* persist hs */
    struct raft_hard_state hs;

    /* A snapshot this node installed: persist its metadata first (rlog_set_snapshot); when
     * snapshot_discard_log is set, also drop every stored entry after snapshot->index. */
    const struct raft_snapshot_meta *snapshot;
    int snapshot_discard_log;

    /* Entries to persist; entries[0] may overwrite the stored suffix from its index on. */
    const struct raft_entry *entries;
    size_t n_entries;

    const struct raft_msg *msgs_early; /* may be sent before persisting (leader, §10.2.1) */
    size_t n_msgs_early;
    const struct raft_msg *msgs; /* send only after persisting */
    size_t n_msgs;

    const struct raft_entry *committed; /* apply in order */
    size_t n_committed;

    const struct raft_read_state *reads;
    size_t n_reads;

    struct raft_snapshot_fetch fetch; /* index != 0: fetch and install this snapshot */
    uint64_t snapshot_want_index;     /* != 0: please snapshot (at applied) */
};

/* 1 when raft_ready would return something (0 while a ready is outstanding). */
int raft_has_ready(const struct raft *r);
/* Fills rd; RAFT_EBUSY if the previous one was not advanced. */
int raft_ready(struct raft *r, struct raft_ready *rd);
/* Hands the data of rd.committed[i] (malloc'd) to the caller, who frees it, instead of copying
 * it: rd.committed[i].data is NULL from then on (len stays). NULL when there is no data or it was
 * taken already, or i is out of range. Only between raft_ready and raft_advance. */
void *raft_ready_take_committed(struct raft *r, size_t i);
/* The caller did everything rd asked. Frees what rd points to. */
int raft_advance(struct raft *r, struct raft_ready *rd);

/* What needs no disk write may be taken at any time, also while a ready is out (its write still
 * in flight), so applying and reading need not wait for that write:
 * raft_take_committed hands out the next committed entry after those already handed out (by a
 * ready or by this call), never beyond this node's persisted log; its data is malloc'd and the
 * caller's (free it). RAFT_ENOTFOUND when there is none now. Apply it as a ready's.
 * raft_take_read_states hands out the read states answered since the last ready (or call), as a
 * malloc'd array the caller frees; returns how many. */
int raft_take_committed(struct raft *r, struct raft_entry *out);
size_t raft_take_read_states(struct raft *r, struct raft_read_state **out);

/* ---- Looking inside (INFO, tests, simulator checks) ---------------------------------------- */

enum raft_progress_state {
    RAFT_PROGRESS_PROBE = 0,
    RAFT_PROGRESS_REPLICATE,
    RAFT_PROGRESS_SNAPSHOT
};

struct raft_peer_status {
    uint64_t id;
    int voter;
    uint64_t match, next;
    int state; /* enum raft_progress_state (leader only) */
    unsigned inflight;
    int recent_active;
};

struct raft_status {
    uint64_t id;
    int role;
    uint64_t term, vote, leader;
    uint64_t commit, applied, last_index, stable_index;
    uint64_t snapshot_index, snapshot_term;
    uint64_t conf_index;
    uint64_t transferee;
    unsigned n_peers; /* leader: every member but itself */
    struct raft_peer_status peers[RAFT_MEMBERS_MAX];
};
void raft_status(const struct raft *r, struct raft_status *out);

int raft_role(const struct raft *r);
uint64_t raft_term(const struct raft *r);
uint64_t raft_leader(const struct raft *r);
uint64_t raft_commit_index(const struct raft *r);
uint64_t raft_applied_index(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
/* The latest configuration (possibly uncommitted) and the index of its entry. */
const struct raft_conf *raft_conf(const struct raft *r, uint64_t *index_out);
/* Term of the entry at index (from memory or storage). */
int raft_entry_term(struct raft *r, uint64_t index, uint64_t *term_out);
/* The entry at index, from memory or storage (a leader looking back at the entries before the
 * one it is about to append). When *owned_out is set, out->data is malloc'd and the caller
 * frees it; otherwise it points into the core's memory, valid until the next mutating call.
 * RAFT_ENOTFOUND outside (snapshot index, last index]. */
int raft_entry_get(struct raft *r, uint64_t index, struct raft_entry *out, int *owned_out);

#endif
