/* cmdtable.h: the command table: what each command is and how redraft routes it.
 *
 * The table is built from the backend Redis's own COMMAND reply at start (so names, arity, flags
 * and key positions match the Redis behind the proxy exactly), then redraft's overrides are laid
 * over it from one declarative table in cmdtable.c: commands the proxy answers itself, commands
 * that must go through the log although Redis does not flag them `write` (EVAL, PUBLISH, ...),
 * and commands refused with the reason why.
 *
 * Routes:
 *   READ    sent to the local Redis (after the client's earlier writes are applied)
 *   WRITE   encoded into a log entry, committed, applied on every node; the reply is the local
 *           apply's
 *   LOCAL   answered by the proxy (PING, SELECT, AUTH, HELLO, CLIENT SETNAME, ...)
 *   REFUSE  answered with an error that says why
 * A table is immutable once built; lookups return pointers valid until px_cmdtable_free.
 */
#ifndef REDRAFT_CMDTABLE_H
#define REDRAFT_CMDTABLE_H

#include <stddef.h>
#include <stdint.h>

struct redisReply;

enum px_route { PX_ROUTE_READ = 0, PX_ROUTE_WRITE, PX_ROUTE_LOCAL, PX_ROUTE_REFUSE };

/* Redis's command flags that redraft looks at. */
enum {
    PX_CF_WRITE = 1 << 0,
    PX_CF_READONLY = 1 << 1,
    PX_CF_DENYOOM = 1 << 2,
    PX_CF_ADMIN = 1 << 3,
    PX_CF_PUBSUB = 1 << 4,
    PX_CF_NOSCRIPT = 1 << 5,
    PX_CF_BLOCKING = 1 << 6,
    PX_CF_LOADING = 1 << 7,
    PX_CF_STALE = 1 << 8,
    PX_CF_FAST = 1 << 9,
    PX_CF_NO_AUTH = 1 << 10,
    PX_CF_MAY_REPLICATE = 1 << 11,
    PX_CF_MOVABLEKEYS = 1 << 12,
    PX_CF_NO_MULTI = 1 << 13,
    PX_CF_SKIP_SLOWLOG = 1 << 14,
};

/* Proxy-local commands. */
enum px_local {
    PX_L_NONE = 0,
    PX_L_PING,
    PX_L_ECHO,
    PX_L_QUIT,
    PX_L_HELLO,
    PX_L_AUTH,
    PX_L_SELECT,
    PX_L_RESET,
    PX_L_CLIENT_SETNAME,
    PX_L_CLIENT_GETNAME,
    PX_L_CLIENT_ID,
    PX_L_CLIENT_INFO,
    PX_L_CLIENT_LIST,
    PX_L_CLIENT_KILL,
    PX_L_CLIENT_REPLY,
    PX_L_CLIENT_CONSISTENCY,
    PX_L_RAFT_INIT,
    PX_L_RAFT_JOIN,
    PX_L_RAFT_NODE,
    PX_L_RAFT_TRANSFER,
    PX_L_RAFT_INFO,
    PX_L_MULTI,
    PX_L_EXEC,
    PX_L_DISCARD,
    PX_L_PUBSUB,
    PX_L_MONITOR,
    PX_L_CLIENT_PAUSE,
    PX_L_CLIENT_UNPAUSE,
    PX_L_LATENCY_HISTOGRAM,
    PX_L_SLOWLOG,
    PX_L_WATCH,
    PX_L_UNWATCH,
    PX_L_WAIT,
    PX_L_CLIENT_UNBLOCK,
    PX_L_SCRIPT_KILL,
    PX_L_FUNCTION_KILL,
    PX_L_SHUTDOWN,
    PX_L_RAFT_SKIP,
};

/* Argument checks made before a command is routed. */
enum px_check {
    PX_CHK_NONE = 0,
    PX_CHK_DB_ARG,
    PX_CHK_CONFIG_SET,
    PX_CHK_DEBUG_SAFE,
    PX_CHK_FUNCTION_RESTORE, /* only libraries that carry the prelude (backend/script.h) */
};

struct px_cmddef {
    char name[48];    /* lower case; "config|get" for a subcommand */
    char display[48]; /* as Redis names it in errors: "config|get" */
    int arity;
    uint32_t flags;
    int first_key, last_key, key_step;
    enum px_route route;
    enum px_local local;
    enum px_check check;
    int check_arg;   /* for PX_CHK_DB_ARG: argument index of the db, -1 = after a "DB" keyword */
    const char *why; /* for REFUSE */
    struct px_cmddef *subs;
    size_t nsubs;
};

struct px_cmdtable;

/* Builds the table from COMMAND's reply. 0 or -1 (with a sentence in err). */
int px_cmdtable_build(const struct redisReply *command_reply, struct px_cmdtable **out, char *err,
                      size_t errlen);
void px_cmdtable_free(struct px_cmdtable *t);
/* Commands the backend's COMMAND listed. */
size_t px_cmdtable_size(const struct px_cmdtable *t);
/* Every top-level command, redraft's own (RAFT.*) included. */
size_t px_cmdtable_count(const struct px_cmdtable *t);
/* The i-th of those, in name order (for listings). */
const struct px_cmddef *px_cmdtable_at(const struct px_cmdtable *t, size_t i);

/* Finds the command (resolving a subcommand) and checks its arity. On failure returns NULL and
 * writes Redis's own error text (without the leading '-') into err. */
const struct px_cmddef *px_cmd_lookup(const struct px_cmdtable *t, int argc, char *const *argv,
                                      const size_t *argvlen, char *err, size_t errlen);
/* The same without the error text, for arguments that need not end in a NUL (a log entry's):
 * NULL when there is no such command or argc does not fit its arity. */
const struct px_cmddef *px_cmd_find(const struct px_cmdtable *t, int argc, const char *const *argv,
                                    const size_t *argvlen);

#endif
