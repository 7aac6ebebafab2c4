/* raft_log.h: the core's view of the log (internal to raftlog/raft*.c).
 *
 * The log is (snapshot] + stored entries + unstable entries:
 *
 *   snap_index | stored only (ask storage) | in memory: stable window ... | unstable ... | last
 *              ^ snap_index+1              ^ mem_first                    ^ stable+1
 *
 * Entries from mem_first to last are in memory (each owns a malloc'd copy of its data); entries
 * below mem_first are stable and read back through the caller's raft_storage_ops. `stable` is the
 * last index the caller has reported persisted; it never exceeds last and drops when a conflicting
 * suffix is truncated (Raft §5.3). Only the core's own files call these functions.
 */
#ifndef REDRAFT_RAFT_LOG_H
#define REDRAFT_RAFT_LOG_H

#include "raftlog/raft.h"

struct raft_log {
    struct raft_entry *ents; /* ents[head .. head+n) are indexes mem_first .. last */
    size_t head, n, cap;
    uint64_t mem_first;
    uint64_t last, stable;
    uint64_t snap_index, snap_term;
    uint64_t commit, applied;
    const struct raft_storage_ops *ops;
    void *ops_ctx;
    int err; /* sticky: storage returned something other than 0 or RAFT_ENOTFOUND */
};

void raft_log_init(struct raft_log *l, const struct raft_storage_ops *ops, void *ctx,
                   uint64_t snap_index, uint64_t snap_term, uint64_t last_index);
void raft_log_free(struct raft_log *l);

/* Term at index: snap_index gives snap_term; 0 gives 0; RAFT_ENOTFOUND outside the log. */
int raft_log_term(struct raft_log *l, uint64_t index, uint64_t *term_out);
uint64_t raft_log_last_term(struct raft_log *l);
/* 1 when the log holds (index, term). */
int raft_log_match_term(struct raft_log *l, uint64_t index, uint64_t term);
/* Entry at index. When *owned_out is set, out->data is malloc'd and the caller frees it;
 * otherwise it points into the log's memory (valid until the log changes). */
int raft_log_entry(struct raft_log *l, uint64_t index, struct raft_entry *out, int *owned_out);
/* Appends a copy of e (e->index must be last + 1). */
int raft_log_append(struct raft_log *l, const struct raft_entry *e);
/* Drops every entry after index (index >= commit is the caller's job to ensure). */
void raft_log_truncate_after(struct raft_log *l, uint64_t index);
/* Entries are persisted through index (if the log still holds (index, term)). */
void raft_log_stable_to(struct raft_log *l, uint64_t index, uint64_t term);
/* Drops in-memory entries <= index that are stable and applied, keeping at most keep_entries. */
void raft_log_trim_memory(struct raft_log *l, uint64_t keep_entries);
/* Records a snapshot at (index, term) and forgets entries <= index. When discard is set the
 * whole log is replaced by the snapshot (last = stable = index). */
void raft_log_compact(struct raft_log *l, uint64_t index, uint64_t term, int discard);
/* Largest index <= index whose term is <= term (thesis §5.3 back-off); snap_index at worst. */
uint64_t raft_log_find_conflict_by_term(struct raft_log *l, uint64_t index, uint64_t term);
/* 1 when a candidate's last (index, term) is at least as up to date as ours (§5.4.1). */
int raft_log_is_up_to_date(struct raft_log *l, uint64_t index, uint64_t term);

void raft_entry_free_data(struct raft_entry *e);
int raft_entry_copy(struct raft_entry *dst, const struct raft_entry *src);

#endif
