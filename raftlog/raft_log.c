/* raft_log.c: the in-memory window of the log, falling back to the caller's storage. */
#include "raftlog/raft_log.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void raft_entry_free_data(struct raft_entry *e)
{
    free(e->data);
    e->data = NULL;
    e->len = 0;
}

int raft_entry_copy(struct raft_entry *dst, const struct raft_entry *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->len) {
        dst->data = malloc(src->len);
        if (!dst->data)
            return RAFT_ENOMEM;
        memcpy(dst->data, src->data, src->len);
    }
    return RAFT_OK;
}

static struct raft_entry *mem_at(struct raft_log *l, uint64_t index)
{
    return &l->ents[l->head + (size_t)(index - l->mem_first)];
}

void raft_log_init(struct raft_log *l, const struct raft_storage_ops *ops, void *ctx,
                   uint64_t snap_index, uint64_t snap_term, uint64_t last_index)
{
    memset(l, 0, sizeof(*l));
    l->ops = ops;
    l->ops_ctx = ctx;
    l->snap_index = snap_index;
    l->snap_term = snap_term;
    l->last = last_index < snap_index ? snap_index : last_index;
    l->stable = l->last;
    l->mem_first = l->last + 1;
    l->commit = l->applied = snap_index;
}

void raft_log_free(struct raft_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        raft_entry_free_data(&l->ents[l->head + i]);
    free(l->ents);
    l->ents = NULL;
    l->n = l->head = l->cap = 0;
}

int raft_log_term(struct raft_log *l, uint64_t index, uint64_t *term_out)
{
    if (index == l->snap_index) {
        *term_out = l->snap_term;
        return RAFT_OK;
    }
    if (index < l->snap_index || index > l->last)
        return RAFT_ENOTFOUND;
    if (index >= l->mem_first) {
        *term_out = mem_at(l, index)->term;
        return RAFT_OK;
    }
    if (!l->ops || !l->ops->term)
        return RAFT_ENOTFOUND;
    int rc = l->ops->term(l->ops_ctx, index, term_out);
    if (rc == RAFT_OK || rc == RAFT_ENOTFOUND)
        return rc;
    l->err = RAFT_EIO;
    return RAFT_EIO;
}

uint64_t raft_log_last_term(struct raft_log *l)
{
    uint64_t t = 0;
    if (raft_log_term(l, l->last, &t) != RAFT_OK)
        return 0;
    return t;
}

int raft_log_match_term(struct raft_log *l, uint64_t index, uint64_t term)
{
    uint64_t t;
    return raft_log_term(l, index, &t) == RAFT_OK && t == term;
}

int raft_log_entry(struct raft_log *l, uint64_t index, struct raft_entry *out, int *owned_out)
{
    *owned_out = 0;
    if (index <= l->snap_index || index > l->last)
        return RAFT_ENOTFOUND;
    if (index >= l->mem_first) {
        *out = *mem_at(l, index);
        return RAFT_OK;
    }
    if (!l->ops || !l->ops->entry)
        return RAFT_ENOTFOUND;
    memset(out, 0, sizeof(*out));
    int rc = l->ops->entry(l->ops_ctx, index, out);
    if (rc != RAFT_OK) {
        free(out->data);
        out->data = NULL;
        if (rc == RAFT_ENOTFOUND)
            return rc;
        l->err = RAFT_EIO;
        return RAFT_EIO;
    }
    *owned_out = 1;
    if (out->index != index) { /* the store handed back something else: treat as corrupt */
        free(out->data);
        out->data = NULL;
        *owned_out = 0;
        l->err = RAFT_EIO;
        return RAFT_EIO;
    }
    return RAFT_OK;
}

static int grow(struct raft_log *l)
{
    if (l->head + l->n < l->cap)
        return RAFT_OK;
    if (l->head > 0 && l->head >= l->n) { /* slide down instead of growing */
        memmove(l->ents, l->ents + l->head, l->n * sizeof(*l->ents));
        l->head = 0;
        return RAFT_OK;
    }
    size_t ncap = l->cap ? l->cap * 2 : 64;
    struct raft_entry *p = realloc(l->ents, ncap * sizeof(*p));
    if (!p)
        return RAFT_ENOMEM;
    l->ents = p;
    l->cap = ncap;
    return RAFT_OK;
}

int raft_log_append(struct raft_log *l, const struct raft_entry *e)
{
    assert(e->index == l->last + 1);
    if (l->n == 0)
        l->mem_first = e->index;
    assert(l->mem_first + l->n == e->index);
    int rc = grow(l);
    if (rc != RAFT_OK)
        return rc;
    rc = raft_entry_copy(&l->ents[l->head + l->n], e);
    if (rc != RAFT_OK)
        return rc;
    l->n++;
    l->last = e->index;
    return RAFT_OK;
}

void raft_log_truncate_after(struct raft_log *l, uint64_t index)
{
    if (index >= l->last)
        return;
    if (index < l->snap_index)
        index = l->snap_index;
    while (l->n > 0 && l->mem_first + l->n - 1 > index) {
        raft_entry_free_data(&l->ents[l->head + l->n - 1]);
        l->n--;
    }
    l->last = index;
    if (l->n == 0)
        l->mem_first = index + 1;
    if (l->stable > index)
        l->stable = index;
}

void raft_log_stable_to(struct raft_log *l, uint64_t index, uint64_t term)
{
    if (index <= l->stable)
        return;
    if (raft_log_match_term(l, index, term))
        l->stable = index;
}

void raft_log_trim_memory(struct raft_log *l, uint64_t keep_entries)
{
    uint64_t upto = l->applied < l->stable ? l->applied : l->stable;
    while (l->n > keep_entries && l->mem_first <= upto) {
        raft_entry_free_data(&l->ents[l->head]);
        l->head++;
        l->n--;
        l->mem_first++;
    }
    if (l->n == 0)
        l->head = 0;
}

void raft_log_compact(struct raft_log *l, uint64_t index, uint64_t term, int discard)
{
    if (discard || index >= l->last) {
        raft_log_truncate_after(l, l->snap_index);
        l->snap_index = index;
        l->snap_term = term;
        l->last = l->stable = index;
        l->mem_first = index + 1;
        l->n = l->head = 0;
    } else {
        while (l->n > 0 && l->mem_first <= index) {
            raft_entry_free_data(&l->ents[l->head]);
            l->head++;
            l->n--;
            l->mem_first++;
        }
        if (l->mem_first <= index)
            l->mem_first = index + 1;
        if (l->stable < index)
            l->stable = index; /* the snapshot stands for entries not yet written */
        l->snap_index = index;
        l->snap_term = term;
    }
    if (l->commit < index)
        l->commit = index;
    if (l->applied < index)
        l->applied = index;
}

uint64_t raft_log_find_conflict_by_term(struct raft_log *l, uint64_t index, uint64_t term)
{
    if (index > l->last)
        index = l->last;
    while (index > l->snap_index) {
        uint64_t t;
        if (raft_log_term(l, index, &t) != RAFT_OK)
            return index;
        if (t <= term)
            return index;
        index--;
    }
    return index;
}

int raft_log_is_up_to_date(struct raft_log *l, uint64_t index, uint64_t term)
{
    uint64_t lt = raft_log_last_term(l);
    return term > lt || (term == lt && index >= l->last);
}
