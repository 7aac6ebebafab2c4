/* map.h: an open-addressing hash map from uint64_t keys to pointers.
 *
 * Used to find in-flight work by id (request ids, batch ids) so that asynchronous completions
 * carry ids, never pointers to objects that may be gone. Linear probing with backward-shift
 * deletion (no tombstones). Key 0 is reserved (means empty). The map stores the pointers it is
 * given and owns none of them.
 */
#ifndef REDRAFT_MAP_H
#define REDRAFT_MAP_H

#include <stddef.h>
#include <stdint.h>

struct rd_map_slot {
    uint64_t key;
    void *val;
};

struct rd_map {
    struct rd_map_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
};

void rd_map_init(struct rd_map *m);
void rd_map_free(struct rd_map *m);
/* Inserts or replaces. Returns 0, or -1 when key is 0 or memory is out. */
int rd_map_put(struct rd_map *m, uint64_t key, void *val);
void *rd_map_get(const struct rd_map *m, uint64_t key);
/* Removes key; returns the value it had, or NULL. */
void *rd_map_del(struct rd_map *m, uint64_t key);

#endif
