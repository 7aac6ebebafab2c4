/* link.h: the one hiredis async connection from redraft to its local Redis (libev adapter).
 *
 * Reads and applied batches share this connection on purpose: Redis executes one connection's
 * commands in the order they were written, so a read written after a batch sees that batch, with
 * no waiting for its reply. The link reconnects with back-off when Redis goes away, authenticates
 * with redis-password, and runs a handshake before it reports itself ready:
 *   CONFIG GET databases, COMMAND, INFO (server and keyspace), SELECT <hidden db>, GET <applied
 * key>. The last database of the backend is hidden from clients; it holds the applied-index key.
 *
 * Callbacks: every command sent gets its reply callback exactly once; when the connection is lost
 * the pending callbacks are called with a NULL reply (hiredis drains them). privdata is an id or a
 * long-lived object, never a pointer that may die first. on_ready/on_down tell the owner about
 * the link's state; the redisReply of COMMAND passed to on_commands is borrowed for that call.
 */
#ifndef REDRAFT_LINK_H
#define REDRAFT_LINK_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct redisReply;
struct redisAsyncContext;

#define BE_APPLIED_KEY "__redraft_applied_index"
/* The script registry's hash (backend/script.h), read back with the applied index. */
#define BE_LINK_SCRIPTS_KEY "__redraft_scripts"

typedef void be_reply_fn(struct redisAsyncContext *ac, void *reply, void *privdata);

struct be_link_info {
    int databases;          /* the backend's `databases` */
    int hidden_db;          /* databases - 1 */
    int applied_present;    /* the applied-index key exists */
    uint64_t applied;       /* its value (0 when absent) */
    long long visible_keys; /* keys in every database but the hidden one */
    char run_id[41];
    char version[32];
};

struct be_link_cbs {
    /* COMMAND's reply during the handshake; borrowed for the call. */
    void (*on_commands)(void *ctx, const struct redisReply *reply);
    /* During the handshake, before on_ready: HGETALL of BE_LINK_SCRIPTS_KEY in the hidden
     * database (backend/script.h keeps it); borrowed for the call. */
    void (*on_hidden)(void *ctx, const struct redisReply *reply);
    void (*on_ready)(void *ctx, const struct be_link_info *info);
    void (*on_down)(void *ctx, const char *why);
};

struct be_link;

/* addr is "host:port" or a path to a unix socket (contains '/'). */
struct be_link *be_link_new(struct ev_loop *loop, const char *addr, const char *password, void *ctx,
                            const struct be_link_cbs *cbs);
void be_link_start(struct be_link *l);
void be_link_free(struct be_link *l);
int be_link_is_ready(const struct be_link *l);
int be_link_hidden_db(const struct be_link *l);

/* Sends RESP bytes as one command. fn may be NULL (reply ignored). Returns 0, or -1 when the link
 * is not connected (nothing was sent, fn is not called). */
int be_link_send(struct be_link *l, const char *cmd, size_t len, be_reply_fn *fn, void *privdata);
/* Sends an argv command; same contract. */
int be_link_send_argv(struct be_link *l, int argc, const char **argv, const size_t *argvlen,
                      be_reply_fn *fn, void *privdata);
/* Writes the commands sent so far now, as far as the socket takes them (the rest goes when it is
 * writable). The owner calls it at the end of a loop turn, so a turn's commands leave in one
 * write without waiting one more turn for the write event. May report the link down. */
void be_link_flush(struct be_link *l);
/* Makes db the connection's selected database for what is sent next (sends SELECT if needed). */
int be_link_select(struct be_link *l, int db);
/* After sending something that may change the selected db (a MULTI batch), forget it. */
void be_link_forget_db(struct be_link *l);
/* The local address of the connection (the address Redis can reach this process at), or
 * "127.0.0.1" when it is a unix socket or down. */
void be_link_local_ip(const struct be_link *l, char *buf, size_t len);
/* Drops the connection (it will reconnect); used when the owner detects a broken state. */
void be_link_reset(struct be_link *l, const char *why);

/* hiredis reads both "$-1" (null bulk) and "*-1" (null array) as REDIS_REPLY_NIL, but Redis
 * answers each command with one of them (GET: $-1, BLPOP/ZMPOP/EXEC: *-1) and clients tell them
 * apart. This makes reader r mark a nil array (integer = 1 in its reply object) so that
 * be_reply_encode (apply.h) gives it back as it came. Call it on every reader whose replies are
 * passed on. */
struct redisReader;
void be_reply_mark_nil_arrays(struct redisReader *r);

#endif
