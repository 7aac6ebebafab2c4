/* raft_snap.c: snapshots (§7) as the caller sees them: taken locally, installed from a leader,
 * and the leader being told how a transfer went. The data itself is always the caller's.
 */
#include "raftlog/raft_int.h"

#include <stdlib.h>
#include <string.h>

int raft_report_snapshot(struct raft *r, uint64_t peer, int ok)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    struct raft_progress *pr = raft_progress_find(r, peer);
    if (!pr || pr->state != RAFT_PROGRESS_SNAPSHOT)
        return RAFT_OK;
    if (!ok)
        pr->pending_snapshot = 0;
    raft_pr_become_probe(pr);
    pr->probe_sent = 1; /* resume on the next heartbeat answer */
    return RAFT_OK;
}

int raft_report_unreachable(struct raft *r, uint64_t peer)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    struct raft_progress *pr = raft_progress_find(r, peer);
    if (pr && pr->state == RAFT_PROGRESS_REPLICATE)
        raft_pr_become_probe(pr);
    return RAFT_OK;
}

int raft_snapshot_installed(struct raft *r, const struct raft_snapshot_meta *meta)
{
    if (raft_sticky(r))
        return r->err;
    if (r->rd_out)
        return RAFT_EBUSY;
    if (r->role == RAFT_LEADER || meta->index <= r->log.applied || meta->term == 0)
        return RAFT_EINVAL;
    int keep = raft_log_match_term(&r->log, meta->index, meta->term);
    uint64_t to = r->leader ? r->leader : r->fetch.from;
    raft_log_compact(&r->log, meta->index, meta->term, !keep);
    r->log.applied = meta->index;
    r->snap = *meta;
    if (!keep || r->conf_index <= meta->index)
        raft_conf_set(r, &meta->conf, meta->index);
    r->installed = *meta;
    r->installed_pending = 1;
    r->installed_discard = !keep;
    memset(&r->fetch, 0, sizeof(r->fetch));
    r->snapshot_want_at = meta->index;
    struct raft_msg m = {
        .type = RAFT_MSG_APPEND_RESP, .to = to, .term = r->term, .index = meta->index};
    raft_send(r, &m);
    return RAFT_OK;
}

int raft_snapshot_fetch_failed(struct raft *r)
{
    memset(&r->fetch, 0, sizeof(r->fetch));
    return RAFT_OK;
}

int raft_snapshot_taken(struct raft *r, uint64_t index, struct raft_snapshot_meta *meta_out)
{
    if (raft_sticky(r))
        return r->err;
    if (index > r->log.applied || index <= r->log.snap_index)
        return RAFT_EINVAL;
    struct raft_snapshot_meta meta = {.index = index};
    int rc = raft_log_term(&r->log, index, &meta.term);
    if (rc != RAFT_OK)
        return rc;
    uint64_t ci;
    raft_conf_at(r, index, &meta.conf, &ci);
    raft_log_compact(&r->log, index, meta.term, 0);
    r->snap = meta;
    if (meta_out)
        *meta_out = meta;
    return raft_sticky(r);
}
