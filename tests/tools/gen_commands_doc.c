/* Prints docs/commands.md: how redraft routes every command of a Redis command table, from a raw
 * COMMAND reply (tests/unit/data/command-7.0.15.resp). Run by `make docs`. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/script.h"
#include "proxy/cmdtable.h"

static const char *route_name(const struct px_cmddef *d)
{
    switch (d->route) {
    case PX_ROUTE_READ:
        return "read (local redis)";
    case PX_ROUTE_WRITE:
        return "write (through the log)";
    case PX_ROUTE_LOCAL:
        return "answered by redraft";
    case PX_ROUTE_REFUSE:
        return "refused";
    }
    return "?";
}

static const char *note(const struct px_cmddef *d)
{
    static const char *rewritten[] = {"expire", "pexpire", "setex",   "psetex", "set",
                                      "xadd",   "getex",   "restore", "spop",   NULL};
    for (int i = 0; rewritten[i]; i++)
        if (!strcmp(d->name, rewritten[i]))
            return "made deterministic before it is logged (absolute expiry / recorded seed)";
    if (d->local == PX_L_SCRIPT_KILL || d->local == PX_L_FUNCTION_KILL)
        return "the same script entry ends on every replica: decided through the log, sent to "
               "each Redis beside its apply path (docs/scripts.md)";
    if (d->local == PX_L_SHUTDOWN)
        return "refused, but SHUTDOWN NOSAVE while a script runs: every node's redis-server "
               "exits and is refilled without that script (docs/scripts.md)";
    if (d->local == PX_L_RAFT_SKIP)
        return "makes a log entry a no-op on every node that has not applied it: the way past "
               "a poison entry (docs/operations.md)";
    if (d->check == PX_CHK_DB_ARG)
        return "the hidden database is out of range";
    static const struct {
        const char *name, *note;
    } scripting[] = {
        {"eval", "run identically on every node: clock, chance and relative expiries from the "
                 "log entry; see below and docs/scripts.md"},
        {"evalsha", "the client's sha, through any node (the script registry); then as EVAL"},
        {"fcall", "run identically on every node, as EVAL"},
        {"eval_ro", "the same wrapped body as EVAL, answered as Redis would (no determinism "
                    "needed)"},
        {"evalsha_ro", "the body the registry holds for the client's sha"},
        {"fcall_ro", "answered as Redis would"},
        {"script|load", "answers sha1(body); every node registers the body"},
        {"script|exists", "answered from the script registry (the client's shas)"},
        {"script|flush", "empties every node's script registry too"},
        {"function|load", "the library gets redraft's prelude (docs/scripts.md)"},
        {"function|list", "WITHCODE shows the code as it was loaded"},
        {"function|restore", "a library dumped without redraft's prelude is refused"},
    };
    for (size_t i = 0; i < sizeof(scripting) / sizeof(scripting[0]); i++)
        if (!strcmp(d->name, scripting[i].name))
            return scripting[i].note;
    if (!strcmp(d->name, "xread"))
        return "with BLOCK: read without BLOCK, parked until a write to its streams is applied "
               "(docs/blocking.md)";
    if (d->flags & PX_CF_BLOCKING && d->route != PX_ROUTE_REFUSE)
        return "blocks as in Redis: tried through the log, parked until a write to its keys is "
               "applied (docs/blocking.md)";
    if (d->local == PX_L_WAIT)
        return "the number of other voters whose log holds the client's last write";
    if (d->local == PX_L_CLIENT_UNBLOCK)
        return "unblocks a client of this node";
    if (d->check == PX_CHK_CONFIG_SET)
        return "every node gets the setting; parameters that point Redis elsewhere or make "
               "replicas differ (dir, port, maxmemory, min-replicas-*, ...) are refused";
    if (d->local == PX_L_PUBSUB)
        return "sent on the subscriber's own link to the local redis";
    if (d->check == PX_CHK_DEBUG_SAFE)
        return "only the subcommands that read (OBJECT, DIGEST, DIGEST-VALUE, LISTPACK, QUICKLIST, "
               "HTSTATS, HTSTATS-KEY, STRINGMATCH-LEN, HELP), on this node's Redis; the rest "
               "refused";
    if (d->local == PX_L_MONITOR)
        return "the commands this node's clients send, in Redis's format";
    if (d->local == PX_L_CLIENT_PAUSE || d->local == PX_L_CLIENT_UNPAUSE)
        return "holds this node's clients (WRITE or ALL), as Redis does";
    if (d->local == PX_L_SLOWLOG || d->local == PX_L_LATENCY_HISTOGRAM)
        return "redraft's own timings of its clients' commands (start to reply)";
    if (d->local == PX_L_MULTI || d->local == PX_L_EXEC || d->local == PX_L_DISCARD)
        return "the transaction is queued by redraft and proposed as one log entry";
    if (d->local == PX_L_WATCH || d->local == PX_L_UNWATCH)
        return "a watching client's EXEC is checked by the leader against the log entries "
               "since the WATCH (docs/architecture.md, WATCH)";
    if (d->route == PX_ROUTE_REFUSE)
        return d->why ? d->why : "";
    if (!strcmp(d->name, "info"))
        return "the hidden database's keyspace line is left out";
    if (!strcmp(d->name, "config|get"))
        return "`databases` reports the usable count";
    return "";
}

static void row(const struct px_cmddef *d)
{
    /* "config|get" is written "CONFIG GET": a '|' would end the table cell. */
    char name[64];
    size_t i;
    for (i = 0; d->name[i] && i < sizeof(name) - 1; i++)
        name[i] = d->name[i] == '|'
                      ? ' '
                      : (char)(d->name[i] >= 'a' && d->name[i] <= 'z' ? d->name[i] - 'a' + 'A'
                                                                      : d->name[i]);
    name[i] = '\0';
    printf("| `%s` | %s | %s |\n", name, route_name(d), note(d));
}

/* What a script or function may not call, from the list the prelude refuses. */
static void scripts_section(void)
{
    printf("\n## Inside scripts and functions\n\n"
           "Every node runs every script and function (`EVAL`, `EVALSHA`, `FCALL`) itself,\n"
           "behind a prelude that takes the clock and chance from the log entry (docs/scripts.md\n"
           "says how). Inside them, these calls cannot be made identical on every replica and\n"
           "get an error, the same on every node (the `_RO` forms, served by one node, run\n"
           "them as Redis does):\n\n"
           "| call | error |\n| --- | --- |\n");
    for (int i = 0; be_scripts_refused[i] != NULL; i++)
        printf("| `%s` | `ERR %s is not allowed in scripts and functions run through redraft: its "
               "result would differ between replicas` |\n",
               be_scripts_refused[i], be_scripts_refused[i]);
    printf("| `SRANDMEMBER`, `SPOP`, `HRANDFIELD`, `ZRANDMEMBER`, `SMEMBERS`, `SINTER`, "
           "`SUNION`, `SDIFF`, `HGETALL` after `redis.setresp(3)` | `ERR <NAME> under RESP3 in a "
           "script is not supported by redraft` |\n"
           "| a relative expiry (`EXPIRE`, `SET ... EX`, ...) past 2^53 ms from now | `ERR invalid "
           "expire time in '<command>' command` |\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s command.resp\n", argv[0]);
        return 2;
    }
    FILE *fp = fopen(argv[1], "rb");
    if (!fp) {
        perror(argv[1]);
        return 1;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    redisReaderFeed(rd, buf, n);
    if (redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL) {
        fprintf(stderr, "cannot parse %s\n", argv[1]);
        return 1;
    }
    struct px_cmdtable *t;
    char err[256];
    if (px_cmdtable_build(reply, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("# Commands: how redraft routes each one\n\n"
           "Generated by `make docs` from the command table of redis-server 7.0.15 and the\n"
           "overrides in `proxy/cmdtable.c`. At start redraft builds the same table from the\n"
           "`COMMAND` reply of the Redis behind it, so a newer Redis brings its new commands\n"
           "along: a command flagged `write` goes through the log, any other is read locally,\n"
           "and a `blocking` one redraft does not serve (docs/blocking.md) is refused, unless\n"
           "the overrides say otherwise.\n\n"
           "- **read**: sent to the local Redis once this client's earlier writes are applied.\n"
           "- **write**: proposed to the log, fsync'd, applied on every node in a MULTI/EXEC\n"
           "  batch; the client gets the reply of its own node's apply.\n"
           "- **answered by redraft**: the proxy answers as Redis would.\n"
           "- **refused**: an error that says why; nothing is changed.\n\n"
           "Known limits: a Lua script or function must be deterministic (no `TIME`, no random\n"
           "choice of keys) because every node runs it. Replies of any depth reach the client as\n"
           "Redis sent them (redraft reads them with its own reader, backend/reader.h).\n\n"
           "| command | route | note |\n| --- | --- | --- |\n");
    /* The table is sorted; walk it through lookups of each name. */
    for (size_t i = 0; i < px_cmdtable_count(t); i++) {
        const struct px_cmddef *d = px_cmdtable_at(t, i);
        if (d->nsubs == 0) {
            row(d);
            continue;
        }
        for (size_t k = 0; k < d->nsubs; k++)
            row(&d->subs[k]);
    }
    scripts_section();
    px_cmdtable_free(t);
    freeReplyObject(reply);
    redisReaderFree(rd);
    return 0;
}
