/* raft_read.c: linearizable reads without writing to the log: ReadIndex (thesis §6.4) and the
 * optional leader lease (§6.4.1). A read gets the commit index once the leader has committed an
 * entry of its term, and is answered after a quorum acknowledged a heartbeat round sent after it.
 */
#include "raftlog/raft_int.h"

#include <stdlib.h>
#include <string.h>

static uint64_t quorum_acked_seq(struct raft *r)
{
    uint64_t v[RAFT_MEMBERS_MAX + 1];
    unsigned n = 0;
    if (raft_is_voter(r, r->id))
        v[n++] = r->hb_seq;
    for (unsigned i = 0; i < r->n_prs; i++)
        if (r->prs[i].voter)
            v[n++] = r->prs[i].ack_seq;
    return n ? raft_kth_largest(v, n, raft_quorum(r)) : 0;
}

static void answer_read(struct raft *r, const struct raft_read_req *q, uint64_t index)
{
    if (q->from == r->id) {
        raft_push_read_state(r, q->ctx, index);
    } else {
        struct raft_msg m = {.type = RAFT_MSG_READ_INDEX_RESP,
                             .to = q->from,
                             .term = r->term,
                             .index = index,
                             .ctx = q->ctx};
        raft_send(r, &m);
    }
}

void raft_reads_release(struct raft *r)
{
    if (r->role != RAFT_LEADER)
        return;
    uint64_t acked = quorum_acked_seq(r);
    if (acked > r->acked_seq) {
        r->acked_seq = acked;
        /* The lease: voters that acknowledged round `acked` will not vote for anyone else for
         * election_ticks of their own time from receiving it; keep a margin for drift. */
        if (r->hb_seq - acked < RAFT_HB_RING && r->cfg.election_ticks > 2)
            r->lease_until = r->hb_tick[acked % RAFT_HB_RING] + r->cfg.election_ticks - 2;
    }
    size_t w = 0;
    for (size_t i = 0; i < r->n_reads; i++) {
        struct raft_read_req *q = &r->reads[i];
        if (q->index != 0 && q->seq <= r->acked_seq)
            answer_read(r, q, q->index);
        else
            r->reads[w++] = *q;
    }
    r->n_reads = w;
}

int raft_reads_leader(struct raft *r, uint64_t ctx, uint64_t from)
{
    struct raft_read_req q = {.ctx = ctx, .from = from};
    if (raft_committed_in_term(r)) {
        if (r->cfg.lease_read && r->cfg.check_quorum && !r->transferee &&
            r->tick_now < r->lease_until) {
            answer_read(r, &q, r->log.commit);
            return RAFT_OK;
        }
        q.index = r->log.commit;
        q.seq = r->hb_seq + 1; /* the next round, which the next ready sends */
        r->read_round_needed = 1;
    }
    if (raft_grow((void **)&r->reads, &r->cap_reads, r->n_reads + 1, sizeof(*r->reads)) != RAFT_OK)
        return RAFT_ENOMEM;
    r->reads[r->n_reads++] = q;
    return RAFT_OK;
}

void raft_reads_fail(struct raft *r)
{
    for (size_t i = 0; i < r->n_reads; i++) {
        struct raft_read_req *q = &r->reads[i];
        if (q->from == r->id) {
            raft_push_read_state(r, q->ctx, 0);
        } else {
            struct raft_msg m = {.type = RAFT_MSG_READ_INDEX_RESP,
                                 .to = q->from,
                                 .term = r->term,
                                 .reject = 1,
                                 .ctx = q->ctx};
            raft_send(r, &m);
        }
    }
    r->n_reads = 0;
    r->read_round_needed = 0;
}

uint64_t raft_lead_read_index(struct raft *r)
{
    if (r->role != RAFT_LEADER || raft_sticky(r) || !raft_committed_in_term(r))
        return 0;
    return r->log.commit;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
    if (raft_sticky(r))
        return r->err;
    if (r->role == RAFT_LEADER)
        return raft_reads_leader(r, ctx, r->id);
    if (r->role != RAFT_FOLLOWER || r->leader == 0)
        return RAFT_ENOLEADER;
    struct raft_msg m = {.type = RAFT_MSG_READ_INDEX, .to = r->leader, .term = r->term, .ctx = ctx};
    raft_send(r, &m);
    return RAFT_OK;
}

/* Reads that waited for the first commit of this term get their index now (thesis §6.4). */
void raft_reads_on_commit(struct raft *r)
{
    if (!raft_committed_in_term(r))
        return;
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].index == 0) {
            r->reads[i].index = r->log.commit;
            r->reads[i].seq = r->hb_seq + 1;
            r->read_round_needed = 1;
        }
}
