/* cache.h: the committed log entries the apply path has not fetched yet, kept in memory.
 *
 * Without it the apply path reads every committed entry back from RocksDB (a memtable lookup, a
 * CRC check and a copy per entry), which was the largest single cost of a loaded node. The node
 * puts each entry the Raft core reports committed, in index order; the apply path
 * takes them in the same order soon after. The cache is bounded (entries and bytes): when the
 * apply path falls behind (its Redis is down) the oldest entries are dropped, and an entry that
 * is not here is read from the store as before. Committed entries never change, so a copy is as
 * good as the stored entry.
 *
 * Ownership: put takes the data it is given (the Raft core hands its copy over); take hands it
 * on to the caller (free()). Only the node
 * (raftlog/node.c) uses it; it is a module of its own so that it can be tested alone.
 */
#ifndef REDRAFT_CACHE_H
#define REDRAFT_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct rn_cached {
    uint8_t type;
    void *data; /* malloc'd copy; NULL when len == 0 */
    size_t len;
};

/* Entries [first, first + n), contiguous, in a ring of entries_max slots. */
struct rn_cache {
    struct rn_cached *slots; /* allocated on the first push */
    size_t entries_max;      /* a power of two */
    size_t bytes_max;
    uint64_t first;
    size_t head, n, bytes;
};

/* entries_max must be a power of two. */
void rn_cache_init(struct rn_cache *c, size_t entries_max, size_t bytes_max);
void rn_cache_free(struct rn_cache *c);
void rn_cache_clear(struct rn_cache *c);
/* Keeps the entry at index, taking data (malloc'd, or NULL when len is 0): it is the cache's
 * from now on, freed at once when it is not kept. Best effort: an entry that does not follow the
 * last one (a snapshot moved the log on) starts the cache again; one larger than bytes_max, or
 * one that finds no memory, empties it. The oldest entries make room. */
void rn_cache_put(struct rn_cache *c, uint64_t index, uint8_t type, void *data, size_t len);
/* Hands out the entry at index (its data is the caller's from now on) and drops the ones before
 * it, which the caller has gone past. 0, or -1 when it is not cached. */
int rn_cache_take(struct rn_cache *c, uint64_t index, uint8_t *type, void **data, size_t *len);

#endif
