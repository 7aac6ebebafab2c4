/* raft_conf.c: membership (thesis §4): the configuration in effect, one-server changes through
 * learners, and keeping the leader's per-member progress in step with the configuration.
 */
#include "raftlog/raft_int.h"

#include <stdlib.h>
#include <string.h>

/* The configuration in effect at `index`: the latest CONF entry at or before it, else the
 * snapshot's. Once the core has a configuration (r->conf, the latest in the log: its entry is at
 * r->conf_index and no CONF entry follows it), an index at or after that entry needs no search:
 * a snapshot taken every N entries would otherwise read N entries back from storage. Otherwise
 * (at start, a change after index, after a truncation) it scans back through the log. */
void raft_conf_at(struct raft *r, uint64_t index, struct raft_conf *out, uint64_t *index_out)
{
    if (index > r->log.last)
        index = r->log.last;
    if (r->conf.n > 0 && r->conf_index <= index) {
        int in_log = r->conf_index > r->log.snap_index;
        *out = in_log ? r->conf : r->snap.conf;
        *index_out = in_log ? r->conf_index : r->snap.index;
        return;
    }
    for (uint64_t i = index; i > r->log.snap_index; i--) {
        struct raft_entry e;
        int owned;
        if (raft_log_entry(&r->log, i, &e, &owned) != RAFT_OK)
            break;
        int found = e.type == RAFT_ENTRY_CONF &&
                    raft_conf_entry_decode(e.data, e.len, NULL, NULL, out) == RAFT_OK;
        if (owned)
            free(e.data);
        if (found) {
            *index_out = i;
            return;
        }
    }
    *out = r->snap.conf;
    *index_out = r->snap.index;
}

/* Takes the configuration from the caller's hint when the entry there is one; 0 otherwise (the
 * caller then scans). */
int raft_conf_from_hint(struct raft *r, uint64_t hint)
{
    if (hint == 0 || hint > r->log.last)
        return 0;
    if (hint <= r->log.snap_index) {
        /* The hint is exact (no configuration entry follows it), and the snapshot that covers
         * it carries the configuration in effect at its index: that one is still current. */
        if (r->log.snap_index == 0 || r->snap.conf.n == 0)
            return 0;
        r->conf = r->snap.conf;
        r->conf_index = r->log.snap_index;
        return 1;
    }
    struct raft_entry e;
    int owned;
    if (raft_log_entry(&r->log, hint, &e, &owned) != RAFT_OK)
        return 0;
    int ok = e.type == RAFT_ENTRY_CONF &&
             raft_conf_entry_decode(e.data, e.len, NULL, NULL, &r->conf) == RAFT_OK;
    if (owned)
        free(e.data);
    if (ok)
        r->conf_index = hint;
    return ok;
}

/* Leader: keep one progress per member other than this node. New members start probing from the
 * end of the log and count as recently active, so adding one never trips check-quorum. */
void raft_conf_sync_progress(struct raft *r)
{
    struct raft_progress old[RAFT_MEMBERS_MAX];
    unsigned n_old = r->n_prs;
    memcpy(old, r->prs, sizeof(old));
    r->n_prs = 0;
    for (unsigned i = 0; i < r->conf.n; i++) {
        const struct raft_member *m = &r->conf.members[i];
        if (m->id == r->id)
            continue;
        struct raft_progress *pr = &r->prs[r->n_prs++];
        int found = 0;
        for (unsigned j = 0; j < n_old; j++)
            if (old[j].id == m->id) {
                *pr = old[j];
                found = 1;
            }
        if (!found) {
            memset(pr, 0, sizeof(*pr));
            pr->id = m->id;
            pr->next = r->log.last + 1;
            pr->state = RAFT_PROGRESS_PROBE;
            pr->recent_active = 1;
        }
        pr->voter = m->voter;
    }
    if (r->transferee && !raft_progress_find(r, r->transferee))
        r->transferee = 0;
}

void raft_conf_set(struct raft *r, const struct raft_conf *c, uint64_t index)
{
    r->conf = *c;
    r->conf_index = index;
    if (r->role == RAFT_LEADER)
        raft_conf_sync_progress(r);
}

/* A configuration takes effect as soon as it is in the log (thesis §4.1). */
void raft_conf_on_appended(struct raft *r, const struct raft_entry *e)
{
    struct raft_conf c;
    if (e->type == RAFT_ENTRY_CONF && raft_conf_entry_decode(e->data, e->len, NULL, NULL, &c) == 0)
        raft_conf_set(r, &c, e->index);
}

/* After a truncation, a configuration whose entry is gone no longer applies (thesis §4.1). */
void raft_conf_on_truncated(struct raft *r)
{
    if (r->conf_index > r->log.last) {
        struct raft_conf c;
        uint64_t ci;
        raft_conf_at(r, r->log.last, &c, &ci);
        raft_conf_set(r, &c, ci);
    }
}

/* Single-server changes (thesis §4.1) with the fix Ongaro published on raft-dev in 2015 for
 * the bug in the original single-server algorithm: a leader may append a new configuration only
 * after it has committed an entry of its own term (the no-op of §8 suffices). Without it, two
 * leaders of successive terms can each add a server to different configurations whose quorums
 * do not overlap. We also require the previous change to be committed. */
int raft_propose_conf_change(struct raft *r, int change, uint64_t node, const void *blob,
                             size_t blob_len, uint64_t *index_out)
{
    int rc = raft_may_propose(r);
    if (rc != RAFT_OK)
        return rc;
    if (node == 0)
        return RAFT_EINVAL;
    if (r->conf_index > r->log.commit || !raft_committed_in_term(r))
        return RAFT_ECONFPENDING;
    struct raft_conf c = r->conf;
    struct raft_member *m = NULL;
    for (unsigned i = 0; i < c.n; i++)
        if (c.members[i].id == node)
            m = &c.members[i];
    switch (change) {
    case RAFT_CONF_ADD_LEARNER:
        if (m || c.n >= RAFT_MEMBERS_MAX || blob_len > RAFT_MEMBER_BLOB_BYTES_MAX ||
            (blob_len && !blob))
            return RAFT_EINVAL;
        m = &c.members[c.n++];
        memset(m, 0, sizeof(*m));
        m->id = node;
        m->blob_len = (uint16_t)blob_len;
        if (blob_len)
            memcpy(m->blob, blob, blob_len);
        break;
    case RAFT_CONF_PROMOTE: {
        if (!m || m->voter)
            return RAFT_EINVAL;
        struct raft_progress *pr = raft_progress_find(r, node);
        /* Thesis §4.2.1: catch up before counting in quorums. Being within the lag is not
         * enough on a short log (a learner that never answered has match 0): it must also
         * hold the configuration that added it, which proves it is alive and receiving. */
        if (!pr || pr->match < r->conf_index ||
            pr->match + r->cfg.promote_lag_entries_max < r->log.last)
            return RAFT_ENOTREADY;
        m->voter = 1;
        break;
    }
    case RAFT_CONF_REMOVE:
        if (!m || (m->voter && raft_conf_voters(&c) == 1))
            return RAFT_EINVAL;
        *m = c.members[--c.n];
        break;
    case RAFT_CONF_SET_BLOB:
        /* Changes no quorum; it still goes one change at a time like the others. */
        if (!m || blob_len > RAFT_MEMBER_BLOB_BYTES_MAX || (blob_len && !blob))
            return RAFT_EINVAL;
        memset(m->blob, 0, sizeof(m->blob));
        m->blob_len = (uint16_t)blob_len;
        if (blob_len)
            memcpy(m->blob, blob, blob_len);
        break;
    default:
        return RAFT_EINVAL;
    }
    uint8_t buf[RAFT_CONF_ENTRY_BYTES_MAX];
    size_t len;
    rc = raft_conf_entry_encode(change, node, &c, buf, sizeof(buf), &len);
    if (rc != RAFT_OK)
        return rc;
    return raft_leader_append(r, RAFT_ENTRY_CONF, buf, len, index_out);
}
