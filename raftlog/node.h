/* node.h: the log as the rest of redraft sees it: propose bytes, learn what is committed, fetch
 * committed entries to apply.
 *
 * Today a node is a single-member group: an entry is committed once it is durable in the local
 * store. Proposals made during one event-loop turn are staged and written with one synced
 * RocksDB WriteBatch at the end of the turn (rn_flush, called from the loop's before-sleep step):
 * group commit. The commit rule is the only thing the Raft core will change behind this API:
 * rn_propose, rn_flush, the committed callback and rn_fetch keep their meaning.
 *
 * Ownership: the node borrows the store (the caller opens and closes it). Data passed to
 * rn_propose is copied. rn_fetch returns malloc'd bytes owned by the caller.
 */
#ifndef REDRAFT_NODE_H
#define REDRAFT_NODE_H

#include <stddef.h>
#include <stdint.h>

struct rlog;

enum {
    RN_OK = 0,
    RN_EIO = -1, /* the store failed: the node can no longer accept writes */
    RN_ENOMEM = -2,
    RN_ETOOBIG = -3, /* entry larger than the store accepts */
    RN_ENOTFOUND = -4,
};

struct rn_node_cbs {
    /* Entries through commit are durable and may be applied. */
    void (*committed)(void *ctx, uint64_t commit);
};

struct rn_node;

struct rn_node *rn_node_new(struct rlog *store, uint64_t node_id, void *ctx,
                            const struct rn_node_cbs *cbs);
void rn_node_free(struct rn_node *n);

/* Stages an entry; returns its index through index_out. */
int rn_propose(struct rn_node *n, const void *data, size_t len, uint64_t *index_out);
/* Makes staged entries durable (one synced write) and reports the new commit index. */
int rn_flush(struct rn_node *n);
int rn_fetch(struct rn_node *n, uint64_t index, void **data, size_t *len);

uint64_t rn_commit_index(const struct rn_node *n);
uint64_t rn_last_index(const struct rn_node *n);
uint64_t rn_first_index(const struct rn_node *n);
/* Index a linearizable read must wait for: everything committed when it arrived. */
uint64_t rn_read_index(const struct rn_node *n);
int rn_failed(const struct rn_node *n);
uint64_t rn_fsyncs(const struct rn_node *n);

#endif
