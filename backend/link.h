/* link.h: the one connection from redraft to its local Redis (non-blocking socket, libev).
 *
 * Reads and applied batches share this connection on purpose: Redis executes one connection's
 * commands in the order they were written, so a read written after a batch sees that batch, with
 * no waiting for its reply. The link reconnects with back-off when Redis goes away, authenticates
 * with redis-password, and runs a handshake before it reports itself ready:
 *   CONFIG GET databases, COMMAND, INFO (server and keyspace), SELECT <hidden db>, GET <applied
 * key>. The last database of the backend is hidden from clients; it holds the applied-index key.
 *
 * The link is its own small asynchronous client: an output buffer written at the end of a loop
 * turn (be_link_flush) or when the socket is writable, and a FIFO of {callback, privdata} matched
 * in order to the replies that redraft's own reader (reader.h) cuts out of the byte stream. That
 * reader has no depth limit, which hiredis 0.14's has (7): a script's deep reply, inside the
 * EXEC of an apply batch, must reach the client, never break the link.
 *
 * Callbacks: every command sent gets its reply callback exactly once; when the connection is lost
 * (or reset, or the link freed) the pending callbacks are called with a NULL reply, in the order
 * sent, before on_down. A reply is a redisReply tree (reader.h: nil arrays are marked) borrowed
 * for the call: it is freed when the callback returns. A callback may send, reset the link or
 * free it (the free waits until the callback returns). privdata is an id or a long-lived object,
 * never a pointer that may die first. on_ready/on_down tell the owner about the link's state;
 * the redisReply of COMMAND passed to on_commands is borrowed for that call.
 */
#ifndef REDRAFT_LINK_H
#define REDRAFT_LINK_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct redisReply;
struct be_link;

#define BE_APPLIED_KEY "__redraft_applied_index"
/* The script registry's hash (backend/script.h), read back with the applied index. */
#define BE_LINK_SCRIPTS_KEY "__redraft_scripts"

/* reply is a struct redisReply *, or NULL when the connection was lost before it came. */
typedef void be_reply_fn(struct be_link *link, void *reply, void *privdata);

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

/* addr is "host:port" or a path to a unix socket (contains '/'). */
struct be_link *be_link_new(struct ev_loop *loop, const char *addr, const char *password, void *ctx,
                            const struct be_link_cbs *cbs);
void be_link_start(struct be_link *l);
/* Before be_link_start: the handshake is AUTH and a PING only, and the link is ready once Redis
 * answers, BUSY included (the control connection, ctl.h: it must come up while a script runs).
 * on_ready gets an empty info. */
void be_link_set_bare(struct be_link *l);
/* How many commands were sent so far (never goes back, across reconnects): the number of the
 * last one sent. Redis runs them in this order. */
uint64_t be_link_seq(const struct be_link *l);
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

#endif
