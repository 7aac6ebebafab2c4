/* cache.c: committed entries in memory for the apply path (see cache.h). */
#include "raftlog/cache.h"

#include <stdlib.h>
#include <string.h>

static struct rn_cached *slot_at(struct rn_cache *c, size_t k)
{
    return &c->slots[(c->head + k) & (c->entries_max - 1)];
}

static void pop_first(struct rn_cache *c)
{
    struct rn_cached *e = slot_at(c, 0);
    c->bytes -= e->len;
    free(e->data);
    e->data = NULL;
    e->len = 0;
    c->head = (c->head + 1) & (c->entries_max - 1);
    c->first++;
    c->n--;
}

void rn_cache_init(struct rn_cache *c, size_t entries_max, size_t bytes_max)
{
    memset(c, 0, sizeof(*c));
    c->entries_max = entries_max;
    c->bytes_max = bytes_max;
}

void rn_cache_clear(struct rn_cache *c)
{
    while (c->n > 0)
        pop_first(c);
}

void rn_cache_free(struct rn_cache *c)
{
    rn_cache_clear(c);
    free(c->slots);
    c->slots = NULL;
}

void rn_cache_put(struct rn_cache *c, uint64_t index, uint8_t type, void *data, size_t len)
{
    if (c->n > 0 && index != c->first + c->n)
        rn_cache_clear(c);
    if (len > c->bytes_max || c->entries_max == 0 || (len > 0 && data == NULL))
        goto drop;
    if (c->slots == NULL) {
        c->slots = calloc(c->entries_max, sizeof(*c->slots));
        if (c->slots == NULL)
            goto drop;
    }
    while (c->n > 0 && (c->n == c->entries_max || c->bytes + len > c->bytes_max))
        pop_first(c);
    if (c->n == 0)
        c->first = index;
    struct rn_cached *e = slot_at(c, c->n);
    e->type = type;
    e->data = len > 0 ? data : NULL;
    e->len = len;
    if (len == 0)
        free(data);
    c->n++;
    c->bytes += len;
    return;
drop:
    rn_cache_clear(c);
    free(data);
}

int rn_cache_take(struct rn_cache *c, uint64_t index, uint8_t *type, void **data, size_t *len)
{
    if (c->n == 0 || index < c->first || index - c->first >= c->n)
        return -1;
    while (c->first < index)
        pop_first(c);
    struct rn_cached *e = slot_at(c, 0);
    *type = e->type;
    *data = e->data;
    *len = e->len;
    e->data = NULL; /* the caller's now; pop_first still counts its bytes out */
    pop_first(c);
    return 0;
}
