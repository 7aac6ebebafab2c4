/* snapshot.h: moving a whole dataset in and out of a stock Redis, with nothing but the
 * replication protocol every Redis speaks.
 *
 * Capture (be_capture_*): a connection of our own sends SYNC (after AUTH when a password is
 * set) and Redis answers as it would a replica: newline keep-alives while it prepares, then the
 * RDB, framed either as `$<len>\r\n<len bytes>` or, for a diskless transfer, as
 * `$EOF:<40-byte mark>\r\n<bytes><the same mark>`. The bytes are streamed to a file (never held
 * in memory), which is fsync'd before the capture reports success; the connection is closed
 * right after, before Redis starts streaming its replication feed. The RDB holds the
 * applied-index key like any other key, so the data says itself which log index it stands for.
 *
 * Install (be_feeder_*): redraft plays master for one full sync. The feeder listens on an
 * ephemeral port; the owner tells the local Redis `REPLICAOF <ip> <port>`; the feeder answers
 * the replica's handshake (PING, AUTH, REPLCONF: +PONG/+OK; PSYNC or SYNC: +FULLRESYNC and
 * `$<len>\r\n` followed by the file) and then keeps the link quiet until the owner, having seen
 * `master_link_status:up` in INFO, sends `REPLICAOF NO ONE` and frees the feeder.
 *
 * Both run on the libev loop and never block it; each reports once through its callback (ok 1,
 * or ok 0 with a sentence) and must then be freed by the owner (never from inside the callback).
 */
#ifndef REDRAFT_SNAPSHOT_H
#define REDRAFT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

#define BE_SNAP_STALL_SECONDS 60.0 /* no byte for this long: the transfer failed */

typedef void be_snap_done_fn(void *ctx, int ok, const char *why);

struct be_capture;
/* addr: "host:port" or a unix socket path (contains '/'). Writes the RDB to path (created or
 * truncated). NULL on an immediate failure (why says it). */
struct be_capture *be_capture_start(struct ev_loop *loop, const char *addr, const char *password,
                                    const char *path, be_snap_done_fn *done, void *ctx, char *why,
                                    size_t whylen);
uint64_t be_capture_bytes(const struct be_capture *c); /* RDB bytes received so far */
void be_capture_free(struct be_capture *c);            /* stops it if still running */

struct be_feeder;
/* Serves the RDB in path to the first replica that connects to bind_ip:*port_out. done reports
 * when the whole file was written to the replica (ok 1) or the transfer failed. */
struct be_feeder *be_feeder_start(struct ev_loop *loop, const char *bind_ip, const char *path,
                                  int *port_out, be_snap_done_fn *done, void *ctx, char *why,
                                  size_t whylen);
uint64_t be_feeder_sent(const struct be_feeder *f); /* bytes of the file sent so far */
void be_feeder_free(struct be_feeder *f);

/* Scans an INFO reply for "name:value\r\n"; copies value (NUL-terminated) or returns -1. */
int be_info_field(const char *info, size_t len, const char *name, char *out, size_t outlen);

#endif
