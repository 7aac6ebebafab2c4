/* snapshot.h: when and how redraft snapshots, ships and installs its Redis's dataset.
 *
 * Files under `dir`: snapshot.rdb is this node's latest snapshot (taken here, or fetched from a
 * leader and installed); snapshot.tmp is a capture in progress; snapshot.recv a fetch in
 * progress. The log's store keeps the latest snapshot's metadata: index and term (the Raft
 * core's), its configuration, and here a nonce naming the file and its size.
 *
 * Index of a snapshot: a capture starts right after the apply path has a confirmed index A;
 * whatever Redis forks for SYNC holds every entry through A and perhaps a few more (batches
 * keep flowing while Redis prepares the RDB). The snapshot is recorded at A, so the log keeps
 * every entry after A; the exact index the data stands for is in the data itself (the
 * applied-index key), and whoever loads it reads that key back and resumes after it.
 *
 * Take: when the log since the last snapshot holds snapshot-log-entries entries or
 * snapshot-log-bytes bytes, or right after RAFT.CLUSTER INIT adopted a Redis that already held
 * data (upgrade in place: that data becomes the first snapshot, and no node may join before it
 * exists). Ship: a follower whose next entry the leader no longer has pulls the leader's
 * snapshot in chunks over the bus (RN_BUS_SNAP_REQ / RN_BUS_SNAP_CHUNK), one chunk in flight,
 * into snapshot.recv; a broken transfer resumes where it stopped when the same file is offered
 * again, and starts over when the leader (or its snapshot) changed. Install: the local Redis
 * is loaded through one full sync from redraft playing master (backend/snapshot.h), while
 * reads on this node answer -TRYAGAIN; then the link is re-established, the applied index read
 * back, and applying resumes after it. The same install refills a Redis that came back empty
 * or behind the start of the log, from this node's own snapshot.rdb.
 */
#ifndef REDRAFT_PROXY_SNAPSHOT_H
#define REDRAFT_PROXY_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct px_config;
struct rn_node;
struct be_link;
struct be_apply;
struct px_server;
struct rd_buf;

struct px_snap;

struct px_snap *px_snap_new(struct ev_loop *loop, const struct px_config *cfg, struct rn_node *node,
                            struct be_link *link, struct be_apply *apply, struct px_server *server);
void px_snap_free(struct px_snap *p);

/* From the node: the leader announced a snapshot this node needs. */
void px_snap_on_fetch(struct px_snap *p, uint64_t index, uint64_t term, uint64_t from);
/* From the node: the leader changed (a fetch from the old one is abandoned). */
void px_snap_on_leader(struct px_snap *p, uint64_t leader);
/* From the node: a snapshot transfer frame. */
void px_snap_on_frame(struct px_snap *p, uint64_t from, uint8_t type, const void *payload,
                      size_t len);
/* From the server: the local Redis is behind the start of the log; load snapshot.rdb into it.
 * Returns 0 when a restore started (or one is already running), -1 when there is nothing to
 * restore from. */
int px_snap_restore_local(struct px_snap *p);
/* RAFT.SNAPSHOT: take a snapshot now. 0, or -1 with a reason (one is running, nothing new). */
int px_snap_take_now(struct px_snap *p, char *why, size_t whylen);
/* No entry beyond this index is in the latest snapshot's data (a capture records its index
 * when it starts and this bound when the RDB has arrived). A Redis loaded from it may be this
 * far ahead of a log that starts right after the snapshot. */
uint64_t px_snap_max_index(const struct px_snap *p);
/* 1 while the local Redis is being loaded (reads answer TRYAGAIN). */
int px_snap_loading(const struct px_snap *p);
/* The RAFT.NODE ADD guard: 1 while an adopted dataset has no snapshot yet. */
int px_snap_adopt_pending(const struct px_snap *p);
/* RAFT.CLUSTER INIT on a Redis that held keys redraft did not write: they become the cluster's
 * first snapshot, taken as soon as the first entry is applied. */
void px_snap_adopt(struct px_snap *p);
/* Appends snapshot fields to the "# Raft" INFO section. */
void px_snap_info(const struct px_snap *p, struct rd_buf *out);

#endif
