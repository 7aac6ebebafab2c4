#include "raftlog/node.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "raftlog/store.h"

/* The entry type the store records for client data (the Raft core's "normal" entry). */
#define RN_ENTRY_NORMAL 1
/* A single node writes every entry in term 1. */
#define RN_SINGLE_TERM 1

struct rn_node {
    struct rlog *store;
    uint64_t node_id;
    void *ctx;
    struct rn_node_cbs cbs;
    uint64_t commit;
    int failed;
    uint64_t fsyncs;
};

struct rn_node *rn_node_new(struct rlog *store, uint64_t node_id, void *ctx,
                            const struct rn_node_cbs *cbs)
{
    struct rn_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->store = store;
    n->node_id = node_id;
    n->ctx = ctx;
    n->cbs = *cbs;
    /* Everything in the store was synced before it was acknowledged: all of it is committed. */
    n->commit = rlog_last_index(store);
    return n;
}

void rn_node_free(struct rn_node *n)
{
    free(n);
}

int rn_propose(struct rn_node *n, const void *data, size_t len, uint64_t *index_out)
{
    if (n->failed)
        return RN_EIO;
    if (len > RLOG_ENTRY_DATA_MAX)
        return RN_ETOOBIG;
    struct rlog_entry e = {
        .index = rlog_last_index(n->store) + 1,
        .term = RN_SINGLE_TERM,
        .type = RN_ENTRY_NORMAL,
        .data = data,
        .len = len,
    };
    int rc = rlog_append(n->store, &e, 1);
    if (rc == RLOG_ENOMEM)
        return RN_ENOMEM;
    if (rc != 0) {
        rd_warning("log append failed: %s (%s)", rlog_errstr(rc), rlog_last_error(n->store));
        n->failed = 1;
        return RN_EIO;
    }
    *index_out = e.index;
    return RN_OK;
}

int rn_flush(struct rn_node *n)
{
    if (n->failed || !rlog_pending(n->store))
        return n->failed ? RN_EIO : RN_OK;
    int rc = rlog_flush(n->store, 1);
    if (rc != 0) {
        /* A failed fsync leaves the durability of what was written unknown: stop, as a
         * database must, rather than acknowledge anything more. */
        rd_warning("log write failed: %s (%s); refusing writes from now on", rlog_errstr(rc),
                   rlog_last_error(n->store));
        n->failed = 1;
        return RN_EIO;
    }
    n->fsyncs++;
    n->commit = rlog_last_index(n->store);
    if (n->cbs.committed)
        n->cbs.committed(n->ctx, n->commit);
    return RN_OK;
}

int rn_fetch(struct rn_node *n, uint64_t index, void **data, size_t *len)
{
    if (index > n->commit)
        return RN_ENOTFOUND;
    struct rlog_entry e;
    int rc = rlog_get(n->store, index, &e);
    if (rc != 0)
        return rc == RLOG_ENOTFOUND ? RN_ENOTFOUND : RN_EIO;
    *data = (void *)e.data;
    *len = e.len;
    return RN_OK;
}

uint64_t rn_commit_index(const struct rn_node *n)
{
    return n->commit;
}

uint64_t rn_last_index(const struct rn_node *n)
{
    return rlog_last_index(n->store);
}

uint64_t rn_first_index(const struct rn_node *n)
{
    return rlog_first_index(n->store);
}

uint64_t rn_read_index(const struct rn_node *n)
{
    return n->commit;
}

int rn_failed(const struct rn_node *n)
{
    return n->failed;
}

uint64_t rn_fsyncs(const struct rn_node *n)
{
    return n->fsyncs;
}
