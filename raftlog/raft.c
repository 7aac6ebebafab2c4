/* raft.c: roles, elections, replication, commitment, leadership transfer, ticks and the
 * ready/advance contract. See raft.h for the contract. The rest of the core, one concern a file:
 * raft_log.c (the log in memory and storage), raft_read.c (ReadIndex), raft_conf.c (membership),
 * raft_snap.c (snapshots), raft_msg.c (the wire format). Section numbers cite the Raft paper
 * (§5.x) and Ongaro's thesis.
 */
#include "raftlog/raft_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static void become_follower(struct raft *r, uint64_t term, uint64_t leader);

/* ---- small helpers ------------------------------------------------------------------------- */

static uint64_t rng_next(struct raft *r)
{
    /* splitmix64: the seed alone decides every election timeout. */
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void reset_randomized_timeout(struct raft *r)
{
    r->randomized_timeout = r->cfg.election_ticks + (unsigned)(rng_next(r) % r->cfg.election_ticks);
}

int raft_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return RAFT_OK;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, ncap * elem);
    if (!np)
        return RAFT_ENOMEM;
    *p = np;
    *cap = ncap;
    return RAFT_OK;
}

static void msg_free(struct raft_msg *m)
{
    for (size_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free(m->entries);
    free((void *)m->conf_data);
    memset(m, 0, sizeof(*m));
}

static void msgvec_clear(struct raft_msg_vec *v)
{
    for (size_t i = 0; i < v->n; i++)
        msg_free(&v->v[i]);
    v->n = 0;
}

static void msgvec_free(struct raft_msg_vec *v)
{
    msgvec_clear(v);
    free(v->v);
    memset(v, 0, sizeof(*v));
}

/* Queues m (ownership of its entries and conf bytes passes to the core). A leader's messages go
 * to msgs_early only once its term is persisted: a term not yet on disk may be reused after a
 * crash, so nothing carrying it may leave before it is durable. */
void raft_send(struct raft *r, struct raft_msg *m)
{
    m->from = r->id;
    int early = r->role == RAFT_LEADER && r->hs_persisted.term == r->term;
    struct raft_msg_vec *v = early ? &r->out_early : &r->out;
    if (m->to == 0 || raft_grow((void **)&v->v, &v->cap, v->n + 1, sizeof(*v->v)) != RAFT_OK) {
        msg_free(m);
        return; /* a message that cannot be queued is a lost message: Raft tolerates it */
    }
    v->v[v->n++] = *m;
}

void raft_push_read_state(struct raft *r, uint64_t ctx, uint64_t index)
{
    if (raft_grow((void **)&r->rs, &r->cap_rs, r->n_rs + 1, sizeof(*r->rs)) != RAFT_OK)
        return; /* the caller's timeout covers it */
    r->rs[r->n_rs].ctx = ctx;
    r->rs[r->n_rs].index = index;
    r->n_rs++;
}

int raft_is_voter(const struct raft *r, uint64_t id)
{
    const struct raft_member *m = raft_conf_find(&r->conf, id);
    return m && m->voter;
}

unsigned raft_quorum(const struct raft *r)
{
    return raft_conf_voters(&r->conf) / 2 + 1;
}

struct raft_progress *raft_progress_find(struct raft *r, uint64_t id)
{
    for (unsigned i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

uint64_t raft_term_at(struct raft *r, uint64_t index)
{
    uint64_t t = 0;
    if (raft_log_term(&r->log, index, &t) != RAFT_OK)
        return 0;
    return t;
}

int raft_committed_in_term(struct raft *r)
{
    return raft_term_at(r, r->log.commit) == r->term;
}

int raft_sticky(struct raft *r)
{
    if (r->log.err)
        r->err = r->log.err;
    return r->err;
}

/* Sorts descending and returns the k-th largest (1-based). */
uint64_t raft_kth_largest(uint64_t *v, unsigned n, unsigned k)
{
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && v[j - 1] < v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return k >= 1 && k <= n ? v[k - 1] : 0;
}

/* ---- configuration ------------------------------------------------------------------------- */

/* ---- progress (per follower flow control) -------------------------------------------------- */

void raft_pr_become_probe(struct raft_progress *pr)
{
    uint64_t next = pr->match + 1;
    if (pr->state == RAFT_PROGRESS_SNAPSHOT && pr->pending_snapshot + 1 > next)
        next = pr->pending_snapshot + 1;
    pr->state = RAFT_PROGRESS_PROBE;
    pr->next = next;
    pr->probe_sent = 0;
    pr->pending_snapshot = 0;
    pr->infl_start = pr->infl_n = 0;
}

static void pr_become_replicate(struct raft_progress *pr)
{
    pr->state = RAFT_PROGRESS_REPLICATE;
    pr->next = pr->match + 1;
    pr->probe_sent = 0;
    pr->pending_snapshot = 0;
    pr->infl_start = pr->infl_n = 0;
}

static int pr_paused(const struct raft *r, const struct raft_progress *pr)
{
    switch (pr->state) {
    case RAFT_PROGRESS_PROBE:
        return pr->probe_sent;
    case RAFT_PROGRESS_REPLICATE:
        return pr->infl_n >= r->cfg.inflight_msgs_max;
    default:
        return 1;
    }
}

static void infl_add(struct raft_progress *pr, uint64_t last)
{
    if (pr->infl_n == RAFT_INFLIGHT_CAP)
        return;
    pr->infl[(pr->infl_start + pr->infl_n) % RAFT_INFLIGHT_CAP] = last;
    pr->infl_n++;
}

static void infl_free_to(struct raft_progress *pr, uint64_t index)
{
    while (pr->infl_n > 0 && pr->infl[pr->infl_start] <= index) {
        pr->infl_start = (pr->infl_start + 1) % RAFT_INFLIGHT_CAP;
        pr->infl_n--;
    }
}

static void infl_free_first(struct raft_progress *pr)
{
    if (pr->infl_n > 0) {
        pr->infl_start = (pr->infl_start + 1) % RAFT_INFLIGHT_CAP;
        pr->infl_n--;
    }
}

/* ---- role changes -------------------------------------------------------------------------- */

static void reset(struct raft *r, uint64_t term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = 0;
    }
    r->leader = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    reset_randomized_timeout(r);
    r->transferee = 0;
    r->n_votes = 0;
    r->lease_until = 0;
}

static void become_follower(struct raft *r, uint64_t term, uint64_t leader)
{
    int was_leader = r->role == RAFT_LEADER;
    r->role = RAFT_FOLLOWER;
    if (was_leader)
        raft_reads_fail(r); /* answered in the term they were asked in */
    reset(r, term);
    r->leader = leader;
    r->n_prs = 0;
}

static void become_leader(struct raft *r)
{
    r->role = RAFT_LEADER;
    reset(r, r->term);
    r->leader = r->id;
    r->n_prs = 0;
    raft_conf_sync_progress(r);
    for (unsigned i = 0; i < r->n_prs; i++) {
        r->prs[i].match = 0;
        r->prs[i].next = r->log.last + 1;
        r->prs[i].state = RAFT_PROGRESS_PROBE;
        r->prs[i].recent_active = 1;
    }
    r->uncommitted_bytes = 0;
    r->n_reads = 0;
    r->acked_seq = r->hb_seq; /* rounds of an earlier term confirm nothing now */
    /* §5.4.2 / §8: an entry of the new term lets the leader commit (and learn) what came before. */
    struct raft_entry e = {.index = r->log.last + 1, .term = r->term, .type = RAFT_ENTRY_NOOP};
    if (raft_log_append(&r->log, &e) != RAFT_OK)
        r->err = RAFT_ENOMEM;
    raft_bcast_append(r);
}

static int poll_votes(struct raft *r, uint64_t id, int granted, unsigned *yes, unsigned *no)
{
    int seen = 0;
    for (unsigned i = 0; i < r->n_votes; i++)
        if (r->vote_ids[i] == id)
            seen = 1;
    if (!seen && r->n_votes < RAFT_MEMBERS_MAX && raft_is_voter(r, id)) {
        r->vote_ids[r->n_votes] = id;
        r->vote_granted[r->n_votes] = granted;
        r->n_votes++;
    }
    *yes = *no = 0;
    for (unsigned i = 0; i < r->n_votes; i++) {
        if (r->vote_granted[i])
            (*yes)++;
        else
            (*no)++;
    }
    return 0;
}

/* §5.2 elections; with pre_vote, thesis §9.6: first ask whether we could win, without
 * touching anyone's term. `force` marks a transfer (thesis §3.10), which bypasses leases. */
static void campaign(struct raft *r, int pre, int force)
{
    if (!raft_is_voter(r, r->id))
        return;
    int type;
    uint64_t vote_term;
    int was_leader = r->role == RAFT_LEADER;
    if (pre) {
        r->role = RAFT_PRE_CANDIDATE;
        reset(r, r->term);
        type = RAFT_MSG_PREVOTE;
        vote_term = r->term + 1;
    } else {
        r->role = RAFT_CANDIDATE;
        reset(r, r->term + 1);
        r->vote = r->id;
        type = RAFT_MSG_VOTE;
        vote_term = r->term;
    }
    if (was_leader)
        raft_reads_fail(r);
    r->n_prs = 0;
    r->booting = 0;
    unsigned yes, no;
    poll_votes(r, r->id, 1, &yes, &no);
    if (yes >= raft_quorum(r)) {
        if (pre)
            campaign(r, 0, force);
        else
            become_leader(r);
        return;
    }
    uint64_t last = r->log.last, last_term = raft_log_last_term(&r->log);
    for (unsigned i = 0; i < r->conf.n; i++) {
        const struct raft_member *mb = &r->conf.members[i];
        if (mb->id == r->id || !mb->voter)
            continue;
        struct raft_msg m = {.type = (uint8_t)type,
                             .to = mb->id,
                             .term = vote_term,
                             .index = last,
                             .log_term = last_term,
                             .force = (uint8_t)force};
        raft_send(r, &m);
    }
}

/* ---- replication (leader) ------------------------------------------------------------------ */

static void send_snapshot(struct raft *r, struct raft_progress *pr)
{
    if (r->snap.index == 0)
        return;
    uint8_t *buf = malloc(RAFT_CONF_BYTES_MAX);
    size_t len = 0;
    if (!buf || raft_conf_encode(&r->snap.conf, buf, RAFT_CONF_BYTES_MAX, &len) != RAFT_OK) {
        free(buf);
        return;
    }
    if (len == 0) {
        free(buf);
        buf = NULL;
    }
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT,
                         .to = pr->id,
                         .term = r->term,
                         .index = r->snap.index,
                         .log_term = r->snap.term,
                         .commit = r->log.commit,
                         .conf_data = buf,
                         .conf_len = len};
    pr->state = RAFT_PROGRESS_SNAPSHOT;
    pr->pending_snapshot = r->snap.index;
    pr->snapshot_ticks = 0;
    pr->infl_start = pr->infl_n = 0;
    raft_send(r, &m);
}

/* Sends the entries from pr->next on (§5.3), at most msg_bytes_max of them (at least one).
 * Returns 1 when a message went out. */
int raft_send_append(struct raft *r, struct raft_progress *pr, int send_if_empty)
{
    if (pr_paused(r, pr))
        return 0;
    uint64_t prev = pr->next - 1, prev_term;
    int rc = raft_log_term(&r->log, prev, &prev_term);
    if (rc == RAFT_ENOTFOUND && prev < r->log.snap_index) {
        send_snapshot(r, pr);
        return 1;
    }
    if (rc != RAFT_OK)
        return 0;
    struct raft_entry *ents = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    for (uint64_t i = pr->next; i <= r->log.last; i++) {
        struct raft_entry e;
        int owned;
        rc = raft_log_entry(&r->log, i, &e, &owned);
        if (rc != RAFT_OK)
            break;
        if (n > 0 && bytes + e.len > r->cfg.msg_bytes_max) {
            if (owned)
                free(e.data);
            break;
        }
        if (raft_grow((void **)&ents, &cap, n + 1, sizeof(*ents)) != RAFT_OK) {
            if (owned)
                free(e.data);
            break;
        }
        if (owned)
            ents[n] = e;
        else if (raft_entry_copy(&ents[n], &e) != RAFT_OK)
            break;
        n++;
        bytes += e.len;
        if (n >= RAFT_MSG_ENTRIES_MAX)
            break;
    }
    if (n == 0 && rc == RAFT_ENOTFOUND && pr->next <= r->log.last) {
        free(ents);
        send_snapshot(r, pr); /* compacted while we looked */
        return 1;
    }
    if (n == 0 && !send_if_empty) {
        free(ents);
        return 0;
    }
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .to = pr->id,
                         .term = r->term,
                         .index = prev,
                         .log_term = prev_term,
                         .commit = r->log.commit,
                         .entries = ents,
                         .n_entries = n};
    if (n > 0 && pr->state == RAFT_PROGRESS_REPLICATE) {
        uint64_t last = ents[n - 1].index;
        pr->next = last + 1;
        infl_add(pr, last);
    } else if (pr->state == RAFT_PROGRESS_PROBE) {
        pr->probe_sent = 1;
    }
    raft_send(r, &m);
    return 1;
}

void raft_bcast_append(struct raft *r)
{
    for (unsigned i = 0; i < r->n_prs; i++)
        raft_send_append(r, &r->prs[i], 1);
}

/* Sends what was proposed since the last ready: to each follower what raft_bcast_append would
 * (a probe to one being probed), then as many more appends as its progress allows (a message
 * holds up to msg_bytes_max), as the answer to an append does. */
static void bcast_new_entries(struct raft *r)
{
    for (unsigned i = 0; i < r->n_prs && r->role == RAFT_LEADER; i++) {
        if (!raft_send_append(r, &r->prs[i], 1))
            continue;
        for (unsigned guard = 1; guard < RAFT_INFLIGHT_CAP && raft_send_append(r, &r->prs[i], 0);
             guard++) {
        }
    }
}

static void bcast_heartbeat(struct raft *r)
{
    r->hb_seq++;
    r->hb_tick[r->hb_seq % RAFT_HB_RING] = r->tick_now;
    for (unsigned i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        /* Never tell a follower to commit past what it is known to hold. */
        uint64_t c = pr->match < r->log.commit ? pr->match : r->log.commit;
        struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT,
                             .to = pr->id,
                             .term = r->term,
                             .commit = c,
                             .ctx = r->hb_seq};
        raft_send(r, &m);
    }
    raft_reads_release(r);
}

static void on_commit_advanced(struct raft *r, uint64_t old_commit)
{
    /* Give back the uncommitted budget of entries this leader proposed. */
    for (uint64_t i = old_commit + 1; i <= r->log.commit && i >= r->log.mem_first; i++) {
        struct raft_entry e;
        int owned;
        if (raft_log_entry(&r->log, i, &e, &owned) != RAFT_OK)
            break;
        if (e.term == r->term)
            r->uncommitted_bytes -= e.len < r->uncommitted_bytes ? e.len : r->uncommitted_bytes;
        if (owned)
            free(e.data);
    }
    raft_reads_on_commit(r);
    /* A leader that removed itself steps down once that configuration is committed
     * (thesis §4.2.2); until then it managed the cluster without counting itself. */
    if (!raft_is_voter(r, r->id) && r->conf_index <= r->log.commit)
        become_follower(r, r->term, 0);
}

/* Commits the highest index a quorum of voters has persisted, but only if it belongs to this
 * term: entries of earlier terms are committed only indirectly (§5.4.2, figure 8). */
static int maybe_commit(struct raft *r)
{
    uint64_t v[RAFT_MEMBERS_MAX + 1];
    unsigned n = 0;
    if (raft_is_voter(r, r->id))
        v[n++] = r->log.stable;
    for (unsigned i = 0; i < r->n_prs; i++)
        if (r->prs[i].voter)
            v[n++] = r->prs[i].match;
    if (n == 0)
        return 0;
    uint64_t idx = raft_kth_largest(v, n, raft_quorum(r));
    if (idx <= r->log.commit || raft_term_at(r, idx) != r->term)
        return 0;
    uint64_t old = r->log.commit;
    r->log.commit = idx;
    on_commit_advanced(r, old);
    return 1;
}

/* ---- ReadIndex (thesis §6.4) ----------------------------------------------------------------- */

/* ---- message handling ---------------------------------------------------------------------- */

static void commit_to(struct raft *r, uint64_t c)
{
    if (c > r->log.last)
        c = r->log.last;
    if (c > r->log.commit)
        r->log.commit = c;
}

static void reply(struct raft *r, const struct raft_msg *in, int type, uint64_t index, int reject)
{
    struct raft_msg m = {.type = (uint8_t)type,
                         .to = in->from,
                         .term = r->term,
                         .index = index,
                         .reject = (uint8_t)reject,
                         .ctx = in->ctx};
    raft_send(r, &m);
}

/* AppendEntries receiver (§5.3): consistency check, conflict truncation, append, commit. */
static int handle_append(struct raft *r, const struct raft_msg *m)
{
    if (m->index < r->log.commit) {
        reply(r, m, RAFT_MSG_APPEND_RESP, r->log.commit, 0);
        return RAFT_OK;
    }
    if (!raft_log_match_term(&r->log, m->index, m->log_term)) {
        uint64_t hint = m->index < r->log.last ? m->index : r->log.last;
        hint = raft_log_find_conflict_by_term(&r->log, hint, m->log_term);
        struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP,
                                .to = m->from,
                                .term = r->term,
                                .index = m->index,
                                .reject = 1,
                                .hint_index = hint,
                                .hint_term = raft_term_at(r, hint)};
        raft_send(r, &resp);
        return RAFT_OK;
    }
    size_t i = 0;
    for (; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index > r->log.last || !raft_log_match_term(&r->log, e->index, e->term))
            break;
    }
    if (i < m->n_entries) {
        uint64_t first = m->entries[i].index;
        if (first <= r->log.commit)
            return RAFT_EMALFORMED; /* would rewrite a committed entry: never from a correct leader
                                     */
        if (first <= r->log.last) {
            raft_log_truncate_after(&r->log, first - 1);
            raft_conf_on_truncated(r);
        }
        for (; i < m->n_entries; i++) {
            int rc = raft_log_append(&r->log, &m->entries[i]);
            if (rc != RAFT_OK)
                return rc;
            raft_conf_on_appended(r, &m->entries[i]);
        }
    }
    uint64_t last_new = m->index + m->n_entries;
    commit_to(r, m->commit < last_new ? m->commit : last_new);
    reply(r, m, RAFT_MSG_APPEND_RESP, last_new, 0);
    return RAFT_OK;
}

static void handle_heartbeat(struct raft *r, const struct raft_msg *m)
{
    commit_to(r, m->commit);
    reply(r, m, RAFT_MSG_HEARTBEAT_RESP, 0, 0);
}

/* InstallSnapshot receiver (§7), metadata half: the data is fetched by the caller. */
static void handle_snapshot(struct raft *r, const struct raft_msg *m)
{
    if (m->index <= r->log.commit) {
        reply(r, m, RAFT_MSG_APPEND_RESP, r->log.commit, 0);
        return;
    }
    if (raft_log_match_term(&r->log, m->index, m->log_term)) {
        /* We already hold the entries it stands for: just learn the commit. */
        commit_to(r, m->index);
        reply(r, m, RAFT_MSG_APPEND_RESP, m->index, 0);
        return;
    }
    if (r->fetch.index != 0)
        return; /* one fetch at a time; the leader resends */
    r->fetch.index = m->index;
    r->fetch.term = m->log_term;
    r->fetch.from = m->from;
    r->fetch_emitted = 0;
}

static void handle_vote(struct raft *r, const struct raft_msg *m)
{
    int pre = m->type == RAFT_MSG_PREVOTE;
    int can_vote =
        r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
    int type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    if (can_vote && raft_log_is_up_to_date(&r->log, m->index, m->log_term)) {
        /* A pre-vote is answered in the term it asks about, so the candidate can count it. */
        struct raft_msg resp = {.type = (uint8_t)type, .to = m->from, .term = m->term};
        raft_send(r, &resp);
        if (!pre) {
            r->election_elapsed = 0;
            r->vote = m->from;
        }
    } else {
        struct raft_msg resp = {.type = (uint8_t)type, .to = m->from, .term = r->term, .reject = 1};
        raft_send(r, &resp);
    }
}

static void handle_append_resp(struct raft *r, struct raft_progress *pr, const struct raft_msg *m)
{
    pr->recent_active = 1;
    if (m->reject) {
        /* Fast back-off (§5.3, last paragraphs): jump to the follower's hint. */
        uint64_t rejected = m->index;
        if (pr->state == RAFT_PROGRESS_REPLICATE) {
            if (rejected <= pr->match)
                return; /* stale */
            raft_pr_become_probe(pr);
        } else if (pr->state == RAFT_PROGRESS_PROBE) {
            if (pr->next - 1 != rejected)
                return; /* stale */
            uint64_t hint = m->hint_index;
            if (m->hint_term > 0)
                hint = raft_log_find_conflict_by_term(&r->log, m->hint_index, m->hint_term);
            uint64_t next = hint + 1 < rejected ? hint + 1 : rejected;
            if (next < pr->match + 1)
                next = pr->match + 1;
            pr->next = next;
            pr->probe_sent = 0;
        } else {
            return;
        }
        raft_send_append(r, pr, 1);
        return;
    }
    int was_paused = pr_paused(r, pr);
    if (m->index <= pr->match && pr->state != RAFT_PROGRESS_SNAPSHOT) {
        if (pr->state == RAFT_PROGRESS_PROBE && m->index + 1 >= pr->next)
            pr->probe_sent = 0;
        return;
    }
    if (m->index > pr->match)
        pr->match = m->index;
    if (pr->next < pr->match + 1)
        pr->next = pr->match + 1;
    switch (pr->state) {
    case RAFT_PROGRESS_PROBE:
        pr_become_replicate(pr);
        break;
    case RAFT_PROGRESS_SNAPSHOT:
        if (pr->match >= pr->pending_snapshot)
            pr_become_replicate(pr);
        break;
    default:
        infl_free_to(pr, m->index);
        break;
    }
    if (maybe_commit(r)) {
        if (r->role == RAFT_LEADER)
            raft_bcast_append(r);
    } else if (was_paused) {
        raft_send_append(r, pr, 1); /* it may not know the commit index yet */
    }
    if (r->role != RAFT_LEADER)
        return;
    for (unsigned guard = 0; guard < RAFT_INFLIGHT_CAP && raft_send_append(r, pr, 0); guard++) {
    }
    if (pr->id == r->transferee && pr->match == r->log.last) {
        struct raft_msg tn = {.type = RAFT_MSG_TIMEOUT_NOW, .to = pr->id, .term = r->term};
        raft_send(r, &tn);
    }
}

static void handle_heartbeat_resp(struct raft *r, struct raft_progress *pr,
                                  const struct raft_msg *m)
{
    pr->recent_active = 1;
    pr->probe_sent = 0;
    if (m->ctx > pr->ack_seq)
        pr->ack_seq = m->ctx;
    /* Appends may have been lost: let one more through so the follower can say what it lacks. */
    if (pr->state == RAFT_PROGRESS_REPLICATE && pr->infl_n >= r->cfg.inflight_msgs_max)
        infl_free_first(pr);
    /* Even with nothing new to send, an empty append at next-1 makes a follower that lost
     * appends say so (it rejects), which turns a stalled pipeline back into a probe. */
    if (pr->match < r->log.last)
        raft_send_append(r, pr, 1);
    raft_reads_release(r);
}

static int step_leader(struct raft *r, const struct raft_msg *m)
{
    if (m->type == RAFT_MSG_READ_INDEX)
        return raft_reads_leader(r, m->ctx, m->from);
    if (m->type == RAFT_MSG_READ_INDEX_RESP) {
        raft_push_read_state(r, m->ctx, m->reject ? 0 : m->index);
        return RAFT_OK;
    }
    struct raft_progress *pr = raft_progress_find(r, m->from);
    if (!pr)
        return RAFT_OK;
    if (m->type == RAFT_MSG_APPEND_RESP)
        handle_append_resp(r, pr, m);
    else if (m->type == RAFT_MSG_HEARTBEAT_RESP)
        handle_heartbeat_resp(r, pr, m);
    return RAFT_OK;
}

static int step_follower(struct raft *r, const struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
        r->election_elapsed = 0;
        r->leader = m->from;
        return handle_append(r, m);
    case RAFT_MSG_HEARTBEAT:
        r->election_elapsed = 0;
        r->leader = m->from;
        handle_heartbeat(r, m);
        return RAFT_OK;
    case RAFT_MSG_SNAPSHOT:
        r->election_elapsed = 0;
        r->leader = m->from;
        handle_snapshot(r, m);
        return RAFT_OK;
    case RAFT_MSG_TIMEOUT_NOW:
        campaign(r, 0, 1); /* no pre-vote: the leader asked (thesis §3.10) */
        return RAFT_OK;
    case RAFT_MSG_READ_INDEX:
        reply(r, m, RAFT_MSG_READ_INDEX_RESP, 0, 1);
        return RAFT_OK;
    case RAFT_MSG_READ_INDEX_RESP:
        raft_push_read_state(r, m->ctx, m->reject ? 0 : m->index);
        return RAFT_OK;
    default:
        return RAFT_OK;
    }
}

static int step_candidate(struct raft *r, const struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        become_follower(r, m->term, m->from); /* a leader of our term exists (§5.2) */
        return step_follower(r, m);
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP: {
        int pre = r->role == RAFT_PRE_CANDIDATE;
        if ((m->type == RAFT_MSG_PREVOTE_RESP) != pre)
            return RAFT_OK;
        unsigned yes, no;
        poll_votes(r, m->from, !m->reject, &yes, &no);
        if (yes >= raft_quorum(r)) {
            if (pre)
                campaign(r, 0, 0);
            else
                become_leader(r);
        } else if (no >= raft_quorum(r)) {
            become_follower(r, r->term, 0);
        }
        return RAFT_OK;
    }
    case RAFT_MSG_READ_INDEX:
    case RAFT_MSG_READ_INDEX_RESP:
        return step_follower(r, m);
    default:
        return RAFT_OK;
    }
}

/* Entries a peer sends must be consecutive after m->index, of terms no newer than the message
 * and never decreasing: anything else is a malformed message. */
static int valid_entries(const struct raft_msg *m)
{
    uint64_t prev_term = m->log_term;
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index != m->index + 1 + i || e->term > m->term || e->term < prev_term ||
            e->type > RAFT_ENTRY_CONF || (e->len && !e->data))
            return 0;
        prev_term = e->term;
    }
    return 1;
}

/* A follower that heard from a leader less than an election timeout ago. With lease reads, a
 * node that just started counts as such too: it may have acknowledged a leader's heartbeat
 * before it crashed, and that leader may be serving reads on the strength of it. */
static int in_lease(const struct raft *r)
{
    return r->cfg.check_quorum && (r->leader != 0 || (r->booting && r->cfg.lease_read)) &&
           r->election_elapsed < r->cfg.election_ticks;
}

int raft_step(struct raft *r, const struct raft_msg *m)
{
    if (raft_sticky(r))
        return r->err;
    if (m->to != r->id || m->from == 0 || m->from == r->id || m->type < 1 ||
        m->type > RAFT_MSG_TYPE_MAX)
        return RAFT_OK;
    if (m->n_entries && (m->type != RAFT_MSG_APPEND || !valid_entries(m)))
        return RAFT_EMALFORMED;
    int is_vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
    if (m->term > r->term) {
        /* Thesis §4.2.3: a server that hears from a current leader ignores vote requests, so
         * removed or partitioned servers cannot disrupt it (a transfer's votes are forced). */
        if (is_vote && !m->force && in_lease(r))
            return RAFT_OK;
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* pre-votes never move terms */
        } else if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                   m->type == RAFT_MSG_SNAPSHOT) {
            become_follower(r, m->term, m->from);
        } else {
            become_follower(r, m->term, 0);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)) {
            /* Tell a stale leader about our term, or it may never learn it while pre-vote
             * keeps us from disrupting it. */
            reply(r, m, RAFT_MSG_APPEND_RESP, 0, 0);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            reply(r, m, RAFT_MSG_PREVOTE_RESP, 0, 1);
        }
        return RAFT_OK;
    }
    int rc;
    if (is_vote) {
        handle_vote(r, m);
        rc = RAFT_OK;
    } else if (r->role == RAFT_LEADER) {
        rc = step_leader(r, m);
    } else if (r->role == RAFT_FOLLOWER) {
        rc = step_follower(r, m);
    } else {
        rc = step_candidate(r, m);
    }
    if (raft_sticky(r))
        return r->err;
    return rc;
}

/* ---- ticks --------------------------------------------------------------------------------- */

static int quorum_active(struct raft *r)
{
    unsigned active = raft_is_voter(r, r->id) ? 1 : 0;
    for (unsigned i = 0; i < r->n_prs; i++)
        if (r->prs[i].voter && r->prs[i].recent_active)
            active++;
    return active >= raft_quorum(r);
}

static void tick_leader(struct raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        /* Check-quorum (thesis §6.2): a leader cut off from a quorum steps down. */
        if (r->cfg.check_quorum && !quorum_active(r)) {
            become_follower(r, r->term, 0);
            return;
        }
        for (unsigned i = 0; i < r->n_prs; i++)
            r->prs[i].recent_active = 0;
        r->transferee = 0; /* a transfer that took a whole election timeout is abandoned */
    }
    for (unsigned i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        if (pr->state == RAFT_PROGRESS_SNAPSHOT &&
            ++pr->snapshot_ticks >= 2 * r->cfg.election_ticks)
            send_snapshot(r, pr); /* the announcement may have been lost */
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        bcast_heartbeat(r);
    }
}

int raft_tick(struct raft *r)
{
    if (raft_sticky(r))
        return r->err;
    r->tick_now++;
    if (r->role == RAFT_LEADER) {
        tick_leader(r);
    } else {
        r->election_elapsed++;
        if (r->election_elapsed >= r->cfg.election_ticks)
            r->booting = 0;
        if (raft_is_voter(r, r->id) && r->election_elapsed >= r->randomized_timeout)
            campaign(r, r->cfg.pre_vote, 0);
    }
    return raft_sticky(r);
}

/* ---- proposals ----------------------------------------------------------------------------- */

int raft_leader_append(struct raft *r, int type, const void *data, size_t len, uint64_t *index_out)
{
    struct raft_entry e = {.index = r->log.last + 1,
                           .term = r->term,
                           .type = (uint8_t)type,
                           .data = (void *)data,
                           .len = len};
    int rc = raft_log_append(&r->log, &e);
    if (rc != RAFT_OK)
        return rc;
    r->uncommitted_bytes += len;
    raft_conf_on_appended(r, &e);
    if (index_out)
        *index_out = e.index;
    /* Sent at the next raft_ready, one append per follower for all the entries proposed until
     * then, rather than one per proposal: a loaded leader proposes hundreds per loop turn. */
    r->append_pending = 1;
    return RAFT_OK;
}

/* Whether this node may append a proposal now: a healthy leader not handing over. */
int raft_may_propose(struct raft *r)
{
    if (raft_sticky(r))
        return r->err;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_ETRANSFER;
    return RAFT_OK;
}

int raft_propose(struct raft *r, const void *data, size_t len, uint64_t *index_out,
                 uint64_t *term_out)
{
    int rc = raft_may_propose(r);
    if (rc != RAFT_OK)
        return rc;
    if (len && !data)
        return RAFT_EINVAL;
    if (r->cfg.uncommitted_bytes_max && r->uncommitted_bytes > 0 &&
        r->uncommitted_bytes + len > r->cfg.uncommitted_bytes_max)
        return RAFT_EFULL;
    uint64_t idx;
    rc = raft_leader_append(r, RAFT_ENTRY_NORMAL, data, len, &idx);
    if (rc != RAFT_OK)
        return rc;
    if (index_out)
        *index_out = idx;
    if (term_out)
        *term_out = r->term;
    return RAFT_OK;
}

int raft_campaign(struct raft *r)
{
    if (raft_sticky(r))
        return r->err;
    if (r->role == RAFT_LEADER)
        return RAFT_OK;
    if (!raft_is_voter(r, r->id))
        return RAFT_EINVAL;
    campaign(r, r->cfg.pre_vote, 0);
    return raft_sticky(r);
}

int raft_transfer_leadership(struct raft *r, uint64_t target)
{
    if (raft_sticky(r))
        return r->err;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (target == 0) {
        uint64_t best = 0;
        for (unsigned i = 0; i < r->n_prs; i++)
            if (r->prs[i].voter && (target == 0 || r->prs[i].match > best)) {
                target = r->prs[i].id;
                best = r->prs[i].match;
            }
    }
    struct raft_progress *pr = raft_progress_find(r, target);
    if (!pr || !pr->voter)
        return RAFT_EINVAL;
    if (r->transferee == target)
        return RAFT_OK;
    /* Thesis §3.10: stop taking proposals, bring the target up to date, then TimeoutNow. The
     * election timer doubles as the transfer's deadline. */
    r->transferee = target;
    r->election_elapsed = 0;
    if (pr->match == r->log.last) {
        struct raft_msg tn = {.type = RAFT_MSG_TIMEOUT_NOW, .to = target, .term = r->term};
        raft_send(r, &tn);
    } else {
        raft_send_append(r, pr, 1);
    }
    return RAFT_OK;
}

/* ---- snapshots ----------------------------------------------------------------------------- */

/* ---- ready / advance ----------------------------------------------------------------------- */

static uint64_t apply_limit(const struct raft *r)
{
    return r->log.commit < r->log.stable ? r->log.commit : r->log.stable;
}

/* Reads start a heartbeat round only when no round is still out: the reads that come in
 * meanwhile wait for its answers and then share the next one, so under load a round serves
 * every read of a round trip, not those of one loop turn. A round sent in an earlier tick
 * counts as lost (its answers may never come), so reads wait at most a tick for a new one. */
static int read_round_free(const struct raft *r)
{
    return r->acked_seq >= r->hb_seq || r->hb_tick[r->hb_seq % RAFT_HB_RING] != r->tick_now;
}

static int want_snapshot(const struct raft *r)
{
    uint64_t base = r->snap.index > r->snapshot_want_at ? r->snap.index : r->snapshot_want_at;
    return r->cfg.snapshot_entries && r->log.applied >= base + r->cfg.snapshot_entries;
}

int raft_has_ready(const struct raft *r)
{
    if (r->rd_out || r->err)
        return 0;
    struct raft_hard_state hs = {r->term, r->vote, r->log.commit};
    return r->out_early.n || r->out.n || r->n_rs || memcmp(&hs, &r->hs_sent, sizeof(hs)) ||
           r->log.stable < r->log.last || apply_limit(r) > r->log.applied ||
           (r->fetch.index && !r->fetch_emitted) || r->installed_pending ||
           (r->read_round_needed && r->role == RAFT_LEADER && read_round_free(r)) ||
           (r->append_pending && r->role == RAFT_LEADER) || want_snapshot(r) ||
           r->soft_role != r->role || r->soft_leader != r->leader;
}

static int collect_committed(struct raft *r)
{
    uint64_t hi = apply_limit(r);
    size_t cap = 0, bytes = 0;
    for (uint64_t i = r->log.applied + 1; i <= hi; i++) {
        struct raft_entry e;
        int owned;
        int rc = raft_log_entry(&r->log, i, &e, &owned);
        if (rc != RAFT_OK)
            return rc == RAFT_ENOTFOUND ? RAFT_OK : rc;
        if (r->rd_n_committed > 0 && bytes + e.len > r->cfg.committed_bytes_max) {
            if (owned)
                free(e.data);
            break;
        }
        rc = raft_grow((void **)&r->rd_committed, &cap, r->rd_n_committed + 1, sizeof(e));
        if (rc == RAFT_OK && !owned)
            rc = raft_entry_copy(&r->rd_committed[r->rd_n_committed], &e);
        else if (rc == RAFT_OK)
            r->rd_committed[r->rd_n_committed] = e;
        if (rc != RAFT_OK) {
            if (owned)
                free(e.data);
            return rc;
        }
        r->rd_n_committed++;
        bytes += e.len;
    }
    return RAFT_OK;
}

/* Copies the unstable entries for the caller to persist (they are always in memory). */
static int collect_unstable(struct raft *r)
{
    size_t n = r->log.last > r->log.stable ? (size_t)(r->log.last - r->log.stable) : 0;
    if (n == 0)
        return RAFT_OK;
    r->rd_entries = calloc(n, sizeof(*r->rd_entries));
    if (!r->rd_entries)
        return RAFT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct raft_entry e;
        int owned;
        int rc = raft_log_entry(&r->log, r->log.stable + 1 + i, &e, &owned);
        assert(rc == RAFT_OK && !owned);
        (void)rc;
        if (raft_entry_copy(&r->rd_entries[i], &e) != RAFT_OK)
            return RAFT_ENOMEM;
        r->rd_n_entries = i + 1;
    }
    return RAFT_OK;
}

static void free_ready_entries(struct raft *r)
{
    for (size_t i = 0; i < r->rd_n_entries; i++)
        free(r->rd_entries[i].data);
    free(r->rd_entries);
    r->rd_entries = NULL;
    r->rd_n_entries = 0;
    for (size_t i = 0; i < r->rd_n_committed; i++)
        free(r->rd_committed[i].data);
    free(r->rd_committed);
    r->rd_committed = NULL;
    r->rd_n_committed = 0;
}

int raft_ready(struct raft *r, struct raft_ready *rd)
{
    if (raft_sticky(r))
        return r->err;
    if (r->rd_out)
        return RAFT_EBUSY;
    memset(rd, 0, sizeof(*rd));
    /* The copies that can fail come first, so a failure changes nothing. */
    int rc = collect_unstable(r);
    if (rc == RAFT_OK)
        rc = collect_committed(r);
    if (rc != RAFT_OK) {
        free_ready_entries(r);
        if (raft_sticky(r))
            return r->err;
        return rc;
    }
    if (r->append_pending && r->role == RAFT_LEADER)
        bcast_new_entries(r);
    r->append_pending = 0;
    if (r->read_round_needed && r->role == RAFT_LEADER && read_round_free(r)) {
        bcast_heartbeat(r); /* every read asked since the last round shares this one */
        r->read_round_needed = 0;
    }
    rd->role = r->soft_role = r->role;
    rd->leader = r->soft_leader = r->leader;
    rd->term = r->soft_term = r->term;

    struct raft_hard_state hs = {r->term, r->vote, r->log.commit};
    rd->hs = hs;
    rd->hs_changed = memcmp(&hs, &r->hs_sent, sizeof(hs)) != 0;
    r->hs_sent = r->rd_hs = hs;

    if (r->installed_pending) {
        r->rd_snapshot = r->installed;
        rd->snapshot = &r->rd_snapshot;
        rd->snapshot_discard_log = r->installed_discard;
        r->installed_pending = 0;
    }
    rd->entries = r->rd_entries;
    rd->n_entries = r->rd_n_entries;
    rd->committed = r->rd_committed;
    rd->n_committed = r->rd_n_committed;
    /* Handed out, so applied: raft_take_committed goes on after them while rd is out. */
    if (r->rd_n_committed) {
        uint64_t last = r->rd_committed[r->rd_n_committed - 1].index;
        if (last > r->log.applied)
            r->log.applied = last;
    }

    struct raft_msg_vec t = r->rd_early;
    r->rd_early = r->out_early;
    r->out_early = t;
    t = r->rd_msgs;
    r->rd_msgs = r->out;
    r->out = t;
    rd->msgs_early = r->rd_early.v;
    rd->n_msgs_early = r->rd_early.n;
    rd->msgs = r->rd_msgs.v;
    rd->n_msgs = r->rd_msgs.n;

    r->rd_reads = r->rs;
    r->rd_n_reads = r->n_rs;
    r->rs = NULL;
    r->n_rs = r->cap_rs = 0;
    rd->reads = r->rd_reads;
    rd->n_reads = r->rd_n_reads;

    if (r->fetch.index && !r->fetch_emitted) {
        rd->fetch = r->fetch;
        r->fetch_emitted = 1;
    }
    if (want_snapshot(r)) {
        rd->snapshot_want_index = r->log.applied;
        r->snapshot_want_at = r->log.applied;
    }
    r->rd_out = 1;
    return RAFT_OK;
}

int raft_take_committed(struct raft *r, struct raft_entry *out)
{
    if (raft_sticky(r))
        return r->err;
    if (apply_limit(r) <= r->log.applied)
        return RAFT_ENOTFOUND;
    struct raft_entry e;
    int owned;
    int rc = raft_log_entry(&r->log, r->log.applied + 1, &e, &owned);
    if (rc != RAFT_OK)
        return rc;
    if (owned)
        *out = e;
    else if ((rc = raft_entry_copy(out, &e)) != RAFT_OK)
        return rc;
    r->log.applied = out->index;
    return RAFT_OK;
}

size_t raft_take_read_states(struct raft *r, struct raft_read_state **out)
{
    size_t n = r->n_rs;
    *out = r->rs;
    r->rs = NULL;
    r->n_rs = r->cap_rs = 0;
    return n;
}

void *raft_ready_take_committed(struct raft *r, size_t i)
{
    if (!r->rd_out || i >= r->rd_n_committed)
        return NULL;
    void *data = r->rd_committed[i].data;
    r->rd_committed[i].data = NULL;
    return data;
}

int raft_advance(struct raft *r, struct raft_ready *rd)
{
    if (!r->rd_out)
        return RAFT_EINVAL;
    r->hs_persisted = r->rd_hs;
    /* The newest persisted entry still in the log marks everything before it stable too (log
     * matching, §5.3); entries replaced since raft_ready stay unstable. */
    for (size_t i = r->rd_n_entries; i > 0; i--) {
        const struct raft_entry *e = &r->rd_entries[i - 1];
        if (raft_log_match_term(&r->log, e->index, e->term)) {
            raft_log_stable_to(&r->log, e->index, e->term);
            break;
        }
    }
    free_ready_entries(r);
    free(r->rd_reads);
    r->rd_reads = NULL;
    r->rd_n_reads = 0;
    msgvec_clear(&r->rd_early);
    msgvec_clear(&r->rd_msgs);
    r->rd_out = 0;
    if (rd)
        memset(rd, 0, sizeof(*rd));
    /* Our own log counts toward the quorum only once persisted. */
    if (r->role == RAFT_LEADER && maybe_commit(r) && r->role == RAFT_LEADER)
        raft_bcast_append(r);
    raft_log_trim_memory(&r->log, r->cfg.mem_entries_max);
    return raft_sticky(r);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

void raft_config_defaults(struct raft_config *c)
{
    memset(c, 0, sizeof(*c));
    c->election_ticks = 10;
    c->heartbeat_ticks = 1;
    c->inflight_msgs_max = 64;
    c->msg_bytes_max = 1 << 20;
    c->uncommitted_bytes_max = 64 << 20;
    c->committed_bytes_max = 4 << 20;
    c->pre_vote = 1;
    c->check_quorum = 1;
    c->mem_entries_max = 4096;
    c->promote_lag_entries_max = 64;
}

int raft_new(const struct raft_config *cfg, const struct raft_restore *rs, struct raft **out)
{
    if (!cfg || !rs || !out || cfg->id == 0 || cfg->election_ticks < 2 ||
        cfg->heartbeat_ticks == 0 || cfg->heartbeat_ticks >= cfg->election_ticks ||
        cfg->inflight_msgs_max == 0 || cfg->inflight_msgs_max > RAFT_INFLIGHT_CAP ||
        !cfg->storage || rs->last_index < rs->snapshot.index)
        return RAFT_EINVAL;
    struct raft *r = calloc(1, sizeof(*r));
    if (!r)
        return RAFT_ENOMEM;
    r->cfg = *cfg;
    if (r->cfg.msg_bytes_max == 0)
        r->cfg.msg_bytes_max = 1;
    if (r->cfg.committed_bytes_max == 0)
        r->cfg.committed_bytes_max = 1;
    r->id = cfg->id;
    r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dULL);
    raft_log_init(&r->log, cfg->storage, cfg->storage_ctx, rs->snapshot.index, rs->snapshot.term,
                  rs->last_index);
    r->snap = rs->snapshot;
    r->term = rs->hs.term;
    r->vote = rs->hs.vote;
    /* Whatever the state machine applied was committed, even if the hard state that said so
     * did not reach the disk (the state machine keeps its own applied index). */
    uint64_t applied = rs->applied > rs->snapshot.index ? rs->applied : rs->snapshot.index;
    uint64_t commit = rs->hs.commit > applied ? rs->hs.commit : applied;
    if (commit > r->log.last)
        commit = r->log.last;
    r->log.commit = commit;
    r->log.applied = applied < commit ? applied : commit;
    if (!raft_conf_from_hint(r, rs->conf_index_hint))
        raft_conf_at(r, r->log.last, &r->conf, &r->conf_index);
    r->role = RAFT_FOLLOWER;
    r->booting = 1;
    reset_randomized_timeout(r);
    r->hs_sent = r->hs_persisted = rs->hs;
    r->hs_sent.commit = r->hs_persisted.commit = rs->hs.commit;
    r->snapshot_want_at = r->log.applied;
    if (raft_sticky(r)) {
        int rc = r->err;
        raft_free(r);
        return rc;
    }
    *out = r;
    return RAFT_OK;
}

void raft_free(struct raft *r)
{
    if (!r)
        return;
    struct raft_ready rd;
    if (r->rd_out)
        raft_advance(r, &rd);
    raft_log_free(&r->log);
    msgvec_free(&r->out_early);
    msgvec_free(&r->out);
    msgvec_free(&r->rd_early);
    msgvec_free(&r->rd_msgs);
    free(r->reads);
    free(r->rs);
    free(r);
}

/* ---- introspection ------------------------------------------------------------------------- */

void raft_status(const struct raft *r, struct raft_status *s)
{
    memset(s, 0, sizeof(*s));
    s->id = r->id;
    s->role = r->role;
    s->term = r->term;
    s->vote = r->vote;
    s->leader = r->leader;
    s->commit = r->log.commit;
    s->applied = r->log.applied;
    s->last_index = r->log.last;
    s->stable_index = r->log.stable;
    s->snapshot_index = r->log.snap_index;
    s->snapshot_term = r->log.snap_term;
    s->conf_index = r->conf_index;
    s->transferee = r->transferee;
    for (unsigned i = 0; i < r->n_prs; i++) {
        const struct raft_progress *pr = &r->prs[i];
        struct raft_peer_status *p = &s->peers[s->n_peers++];
        p->id = pr->id;
        p->voter = pr->voter;
        p->match = pr->match;
        p->next = pr->next;
        p->state = pr->state;
        p->inflight = pr->infl_n;
        p->recent_active = pr->recent_active;
    }
}

int raft_role(const struct raft *r)
{
    return r->role;
}

uint64_t raft_term(const struct raft *r)
{
    return r->term;
}

uint64_t raft_leader(const struct raft *r)
{
    return r->leader;
}

uint64_t raft_commit_index(const struct raft *r)
{
    return r->log.commit;
}

uint64_t raft_applied_index(const struct raft *r)
{
    return r->log.applied;
}

uint64_t raft_last_index(const struct raft *r)
{
    return r->log.last;
}

const struct raft_conf *raft_conf(const struct raft *r, uint64_t *index_out)
{
    if (index_out)
        *index_out = r->conf_index;
    return &r->conf;
}

int raft_entry_term(struct raft *r, uint64_t index, uint64_t *term_out)
{
    return raft_log_term(&r->log, index, term_out);
}

int raft_entry_get(struct raft *r, uint64_t index, struct raft_entry *out, int *owned_out)
{
    return raft_log_entry(&r->log, index, out, owned_out);
}
