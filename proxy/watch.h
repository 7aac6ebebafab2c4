/* watch.h: WATCH/UNWATCH, and the check that makes a watching client's EXEC fail (watch.c).
 *
 * Optimistic locking across the cluster, decided once, by the leader, against its own log:
 *   - WATCH records (db, key) pairs for the client and, at the first WATCH, the watch index W:
 *     the applied index this node's Redis has confirmed when the WATCH's turn comes (after the
 *     client's earlier writes are applied). Every read the client makes after it sees at least
 *     the entries through W, so a write it may not have seen has an index above W.
 *   - EXEC proposes its transaction with a guard in front (backend/entry.h: W and the keys).
 *   - The leader, just before it would append the entry at last + 1, reads entries (W, last]
 *     back; if any of them may write a watched key (proxy/keys.c), the entry is not appended
 *     and EXEC answers a null array, as Redis does. By Raft's log matching those entries are
 *     the ones before the transaction on every node, so no other node checks again.
 * Conservative where it cannot be exact: an entry that may touch every key (scripts, FLUSHALL,
 * an unknown command), a log compacted past W, or more than PX_WATCH_SCAN_MAX entries to read
 * abort the EXEC. Internal to proxy/; main wires px_server_admit as the node's admit callback.
 */
#ifndef REDRAFT_WATCH_H
#define REDRAFT_WATCH_H

#include <stddef.h>
#include <stdint.h>

/* Key bytes one client may watch at a time (the guard travels in one bus frame). */
#define PX_WATCH_BYTES_MAX (16u * 1024 * 1024)
/* Entries the leader reads back for one EXEC: reading them blocks its loop (older ones come
 * from RocksDB), so an EXEC whose WATCH is older than this many entries is aborted instead. */
#define PX_WATCH_SCAN_MAX 100000u

struct px_client;
struct px_req;
struct px_cmdtable;
struct rn_log_view;

/* WATCH key [key ...] outside MULTI: remembers the keys in the client's database; the reply
 * goes into r. */
void px_watch_add(struct px_client *c, struct px_req *r);
/* Forgets what the client watches (UNWATCH, EXEC, DISCARD, RESET, a closed client). */
void px_watch_clear(struct px_client *c);
int px_watch_active(const struct px_client *c);
/* EXEC of a watching client: the guard goes into r->entry (px_route_write appends the entry
 * after it), r->guard_len says how long it is, and the client no longer watches. 0 or -1 (out
 * of memory; the watch is cleared too). */
int px_watch_take(struct px_client *c, struct px_req *r);

/* The leader's decision on a guarded proposal: RN_OK when no client entry of the log in
 * (W, log->last] may write a watched key, RN_EWATCH otherwise (and for a malformed guard).
 * Without a command table (t NULL) every command counts as writing every key. */
int px_watch_admit(const struct px_cmdtable *t, const void *guard, size_t guard_len,
                   const struct rn_log_view *log);

#endif
