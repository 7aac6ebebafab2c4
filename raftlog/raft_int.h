/* raft_int.h: the core's private state, shared by raftlog/raft*.c only. Callers use raft.h. */
#ifndef REDRAFT_RAFT_INT_H
#define REDRAFT_RAFT_INT_H

#include "raftlog/raft.h"
#include "raftlog/raft_log.h"

#define RAFT_INFLIGHT_CAP 256 /* upper bound for raft_config.inflight_msgs_max */
#define RAFT_HB_RING      64  /* heartbeat rounds remembered for the leader lease */

/* What a leader knows of one follower (Raft §5.3, "nextIndex" and "matchIndex"). */
struct raft_progress {
    uint64_t id;
    int voter;
    uint64_t match, next;
    int state;                 /* enum raft_progress_state */
    int probe_sent;            /* probe: one append is out, wait for its answer */
    uint64_t pending_snapshot; /* snapshot: index announced */
    unsigned snapshot_ticks;   /* snapshot: ticks since announced (resent when it grows old) */
    uint64_t infl[RAFT_INFLIGHT_CAP]; /* replicate: last index of each append in flight */
    unsigned infl_start, infl_n;
    int recent_active; /* heard from it since the last check-quorum round */
    uint64_t ack_seq;  /* highest heartbeat round it answered (ReadIndex) */
};

/* A read waiting for its heartbeat round (thesis §6.4). */
struct raft_read_req {
    uint64_t ctx;
    uint64_t from;  /* this node, or the follower that asked */
    uint64_t index; /* 0 until the leader has committed an entry of its term */
    uint64_t seq;   /* heartbeat round that must be acknowledged by a quorum */
};

struct raft_msg_vec {
    struct raft_msg *v;
    size_t n, cap;
};

struct raft {
    struct raft_config cfg;
    uint64_t id;
    int role;
    uint64_t term, vote, leader;
    int booting; /* just started: behave as if in a leader's lease (see in_lease) */
    struct raft_log log;
    int err; /* sticky storage error */

    struct raft_conf conf; /* latest appended configuration (thesis §4.1) */
    uint64_t conf_index;
    struct raft_snapshot_meta snap; /* latest snapshot */

    struct raft_progress prs[RAFT_MEMBERS_MAX]; /* leader: every member but this node */
    unsigned n_prs;
    uint64_t vote_ids[RAFT_MEMBERS_MAX];
    int vote_granted[RAFT_MEMBERS_MAX];
    unsigned n_votes;

    unsigned election_elapsed, heartbeat_elapsed, randomized_timeout;
    uint64_t rng;
    uint64_t tick_now;
    uint64_t transferee;
    uint64_t uncommitted_bytes;

    /* ReadIndex */
    struct raft_read_req *reads;
    size_t n_reads, cap_reads;
    uint64_t hb_seq, acked_seq;
    uint64_t hb_tick[RAFT_HB_RING];
    uint64_t lease_until; /* tick before which lease reads may be served */
    int read_round_needed;

    /* outputs gathered for the next ready */
    int append_pending; /* leader: entries were proposed since the last ready */
    struct raft_msg_vec out_early, out;
    struct raft_read_state *rs;
    size_t n_rs, cap_rs;
    struct raft_hard_state hs_sent, hs_persisted;
    int soft_role;
    uint64_t soft_leader, soft_term;
    struct raft_snapshot_fetch fetch;
    int fetch_emitted;
    struct raft_snapshot_meta installed;
    int installed_pending, installed_discard;
    uint64_t snapshot_want_at;

    /* the outstanding ready, owned until raft_advance */
    int rd_out;
    struct raft_msg_vec rd_early, rd_msgs;
    struct raft_entry *rd_entries;
    size_t rd_n_entries;
    struct raft_entry *rd_committed;
    size_t rd_n_committed;
    struct raft_read_state *rd_reads;
    size_t rd_n_reads;
    struct raft_snapshot_meta rd_snapshot;
    struct raft_hard_state rd_hs;
};

/* Shared between the core's files (raft.c and the raft_*.c it is split into). */
int raft_grow(void **p, size_t *cap, size_t need, size_t elem);
void raft_send(struct raft *r, struct raft_msg *m); /* takes ownership of m's buffers */
void raft_push_read_state(struct raft *r, uint64_t ctx, uint64_t index);
int raft_is_voter(const struct raft *r, uint64_t id);
unsigned raft_quorum(const struct raft *r);
struct raft_progress *raft_progress_find(struct raft *r, uint64_t id);
uint64_t raft_term_at(struct raft *r, uint64_t index);
int raft_committed_in_term(struct raft *r);
int raft_sticky(struct raft *r);
uint64_t raft_kth_largest(uint64_t *v, unsigned n, unsigned k);
int raft_send_append(struct raft *r, struct raft_progress *pr, int send_if_empty);
void raft_bcast_append(struct raft *r);
int raft_leader_append(struct raft *r, int type, const void *data, size_t len, uint64_t *index_out);
void raft_pr_become_probe(struct raft_progress *pr);

/* raft_read.c */
void raft_reads_fail(struct raft *r);
void raft_reads_release(struct raft *r);
int raft_reads_leader(struct raft *r, uint64_t ctx, uint64_t from);
void raft_reads_on_commit(struct raft *r);

/* raft_conf.c */
int raft_may_propose(struct raft *r);
int raft_conf_from_hint(struct raft *r, uint64_t hint);
void raft_conf_at(struct raft *r, uint64_t index, struct raft_conf *out, uint64_t *index_out);
void raft_conf_set(struct raft *r, const struct raft_conf *c, uint64_t index);
void raft_conf_sync_progress(struct raft *r);
void raft_conf_on_appended(struct raft *r, const struct raft_entry *e);
void raft_conf_on_truncated(struct raft *r);

#endif
