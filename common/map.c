#include "common/map.h"

#include <stdlib.h>

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

void rd_map_init(struct rd_map *m)
{
    m->slots = NULL;
    m->cap = m->count = 0;
}

void rd_map_free(struct rd_map *m)
{
    free(m->slots);
    rd_map_init(m);
}

static int map_grow(struct rd_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct rd_map_slot *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == 0)
            continue;
        size_t j = slot_of(m->slots[i].key, ncap);
        while (ns[j].key != 0)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int rd_map_put(struct rd_map *m, uint64_t key, void *val)
{
    if (key == 0)
        return -1;
    if ((m->count + 1) * 4 > m->cap * 3 && map_grow(m) != 0)
        return -1;
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key != 0 && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (m->slots[i].key == 0)
        m->count++;
    m->slots[i].key = key;
    m->slots[i].val = val;
    return 0;
}

void *rd_map_get(const struct rd_map *m, uint64_t key)
{
    if (m->cap == 0 || key == 0)
        return NULL;
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key != 0) {
        if (m->slots[i].key == key)
            return m->slots[i].val;
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

void *rd_map_del(struct rd_map *m, uint64_t key)
{
    if (m->cap == 0 || key == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0)
            return NULL;
        i = (i + 1) & mask;
    }
    void *val = m->slots[i].val;
    /* Backward-shift: pull later members of the probe run into the hole. */
    size_t hole = i;
    size_t j = (i + 1) & mask;
    while (m->slots[j].key != 0) {
        size_t home = slot_of(m->slots[j].key, m->cap);
        /* j may move into hole when its home is not within (hole, j]. */
        int movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
        j = (j + 1) & mask;
    }
    m->slots[hole].key = 0;
    m->slots[hole].val = NULL;
    m->count--;
    return val;
}
