/* server.h: the client side of redraft: listener, client sessions, request queue, routing.
 *
 * Each client has a queue of its requests in arrival order; replies are written strictly in that
 * order (pipelined clients included) because a reply is only moved to the client's output once
 * every request before it has its reply. Requests are dispatched in order too:
 *   - a WRITE is proposed to the log at once (writes of one client pipeline), unless an earlier
 *     read of the same client still waits to be sent;
 *   - a READ waits until the client's earlier writes are applied, then until the local Redis has
 *     been sent every entry committed when it arrived (the read index), then goes to Redis on the
 *     same connection the applies use, which orders it after them;
 *   - LOCAL commands are answered by the proxy when their turn comes.
 * A closed client's requests that are in flight are detached, not freed: their completions find
 * them by request id, see the client is gone and drop the reply.
 *
 * One px_server per process. It is created by main, which wires it to the node (the log) and
 * the backend link/apply, and calls px_server_before_sleep once per loop turn after the log
 * flush (replies are written there, so one turn's replies go out in as few writes as possible).
 */
#ifndef REDRAFT_SERVER_H
#define REDRAFT_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct px_config;
struct rn_node;
struct be_link;
struct be_apply;
struct px_cmdtable;
struct be_link_info;
struct redisReply;

struct px_server;

struct px_server *px_server_new(struct ev_loop *loop, const struct px_config *cfg,
                                struct rn_node *node, uint64_t boot);
/* The backend pieces are made after the server (their callbacks point at it). */
struct be_ctl;
void px_server_set_backend(struct px_server *s, struct be_link *link, struct be_apply *apply,
                           struct be_ctl *ctl);
/* backend/ctl.h's reports: Redis busy (err) or not (NULL); the answer to a kill sent for id. */
void px_server_on_busy(struct px_server *s, const char *err);
struct redisReply;
void px_server_on_ctl_answer(struct px_server *s, uint64_t id, const struct redisReply *reply);
/* Asks the control connection to kill the script of the kill entry at kill_index. */
int px_server_kill_running(struct px_server *s, int kind, uint64_t kill_index);
/* 1 when a script read sent before link command seq is still out (backend/apply.h). */
int px_server_script_ahead(struct px_server *s, uint64_t seq);
int px_server_listen(struct px_server *s, char *err, size_t errlen);
void px_server_free(struct px_server *s);

/* Writes the turn's replies, and parses commands left waiting in input buffers (a client that
 * had hit its pipeline limit). Returns 1 when that produced new requests: the caller then
 * flushes the log again before sleeping. */
int px_server_before_sleep(struct px_server *s);
/* 1 when replies wait for the next px_server_before_sleep. */
int px_server_has_output(const struct px_server *s);

/* Backend events (wired by main). */
void px_server_on_commands(struct px_server *s, const struct redisReply *reply);
void px_server_on_backend_ready(struct px_server *s, const struct be_link_info *info);
void px_server_on_backend_down(struct px_server *s, const char *why);
/* Snapshots (proxy/snapshot.c): the loader, and a load in progress (reads answer TRYAGAIN). */
struct px_snap;
void px_server_set_snap(struct px_server *s, struct px_snap *snap);
void px_server_set_loading(struct px_server *s, int on);
void px_server_on_write_reply(struct px_server *s, uint64_t reqid, const char *resp, size_t len);
void px_server_on_applied(struct px_server *s, uint64_t index);
/* A command of an applied entry (blocked clients on its keys try again): see be_apply_cbs. */
void px_server_on_applied_cmd(struct px_server *s, uint64_t db, int argc, const char *const *argv,
                              const size_t *argvlen, int null_or_error);
void px_server_on_committed(struct px_server *s, uint64_t commit);
void px_server_on_role(struct px_server *s, int role, uint64_t term, uint64_t leader);
void px_on_read_index(struct px_server *s, uint64_t round, uint64_t index);
void px_on_proposed(struct px_server *s, uint64_t reqid, uint64_t index, uint64_t term);
void px_on_propose_failed(struct px_server *s, uint64_t reqid, int code, uint64_t term);
void px_server_on_admin_reply(struct px_server *s, uint64_t reqid, const char *resp, size_t len);
/* Forms or joins the cluster as the config asks (cluster-init / cluster-join), at start. */
void px_server_cluster_start(struct px_server *s);
/* The bus address this node announces to the others. */
void px_server_set_announce(struct px_server *s, const char *addr);

size_t px_server_clients(const struct px_server *s);

/* The node's admit callback: may a guarded proposal (a watching client's EXEC) be appended
 * after log->last? RN_OK or RN_EWATCH (proxy/watch.c). */
struct rn_log_view;
int px_server_admit(struct px_server *s, const void *guard, size_t guard_len,
                    const struct rn_log_view *log);

#endif
