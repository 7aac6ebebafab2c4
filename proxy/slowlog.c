/* slowlog.c: SLOWLOG, kept by redraft for the commands its clients send.
 *
 * The local Redis's slow log lists redraft's apply batches (MULTI, MSET, EXEC) and reads, not
 * what clients asked for, so SLOWLOG GET/LEN/RESET are answered here, in Redis's format: id,
 * unix time, microseconds, the arguments (at most 32, each at most 128 bytes, trimmed with
 * Redis's "... (n more arguments|bytes)"; passwords "(redacted)"), client address and name.
 * The time is from the command's start to its reply, so a write's includes its trip through the
 * log (Redis measures the execution alone; a blocking command that parked counts no time, as
 * its time was spent waiting), and EXEC is not logged but the commands it ran are,
 * each with the transaction's time. The thresholds are Redis's own settings,
 * slowlog-log-slower-than and slowlog-max-len: taken from a CONFIG SET of them that succeeded
 * through this node, and read back from the local Redis (which every node's CONFIG SET reaches
 * through the log) every few seconds.
 */
#include "proxy/slowlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/buf.h"
#include "proxy/client.h"
#include "proxy/monitor.h"

#define SLOWLOG_ARGS_MAX 32
#define SLOWLOG_ARG_MAX  128

struct px_slow_entry {
    uint64_t id;
    long long when;
    uint64_t usec;
    struct rd_buf args; /* the RESP array of the arguments, ready to send */
    char addr[64];
    char *name;
};

void px_slowlog_init(struct px_slowlog *sl)
{
    memset(sl, 0, sizeof(*sl));
    sl->slower_than = 10000; /* Redis's defaults until the local Redis says otherwise */
    sl->max_len = 128;
}

static void entry_clear(struct px_slow_entry *e)
{
    rd_buf_free(&e->args);
    free(e->name);
    memset(e, 0, sizeof(*e));
}

/* Drops every entry but the newest keep ones. */
static void trim(struct px_slowlog *sl, size_t keep)
{
    while (sl->n > keep) {
        size_t oldest = (sl->head + sl->cap - sl->n) % sl->cap;
        entry_clear(&sl->ring[oldest]);
        sl->n--;
    }
}

void px_slowlog_free(struct px_slowlog *sl)
{
    if (sl->cap > 0)
        trim(sl, 0);
    free(sl->ring);
    sl->ring = NULL;
    sl->cap = sl->n = sl->head = 0;
}

/* Makes room for max_len entries, keeping the newest. */
static int resize(struct px_slowlog *sl, size_t cap)
{
    if (cap == sl->cap)
        return 0;
    if (sl->n > cap)
        trim(sl, cap);
    struct px_slow_entry *ring = cap ? calloc(cap, sizeof(*ring)) : NULL;
    if (cap && ring == NULL)
        return -1;
    for (size_t i = 0; i < sl->n; i++) /* oldest first */
        ring[i] = sl->ring[(sl->head + sl->cap - sl->n + i) % sl->cap];
    free(sl->ring);
    sl->ring = ring;
    sl->cap = cap;
    sl->head = cap ? sl->n % cap : 0;
    return 0;
}

static void put_args(struct rd_buf *b, const struct px_cmd *cmd)
{
    int shown = cmd->argc > SLOWLOG_ARGS_MAX ? SLOWLOG_ARGS_MAX : cmd->argc;
    rd_resp_array_len(b, shown);
    for (int i = 0; i < shown; i++) {
        if (i == SLOWLOG_ARGS_MAX - 1 && cmd->argc > SLOWLOG_ARGS_MAX) {
            char more[64];
            int n = snprintf(more, sizeof(more), "... (%d more arguments)",
                             cmd->argc - SLOWLOG_ARGS_MAX + 1);
            rd_resp_bulk(b, more, (size_t)n);
        } else if (px_arg_redacted(cmd, i)) {
            rd_resp_bulk(b, "(redacted)", 10);
        } else if (cmd->argvlen[i] > SLOWLOG_ARG_MAX) {
            char more[64];
            int n = snprintf(more, sizeof(more), "... (%zu more bytes)",
                             cmd->argvlen[i] - SLOWLOG_ARG_MAX);
            rd_buf_printf(b, "$%zu\r\n", (size_t)SLOWLOG_ARG_MAX + (size_t)n);
            rd_buf_append(b, cmd->argv[i], SLOWLOG_ARG_MAX);
            rd_buf_append(b, more, (size_t)n);
            rd_buf_append(b, "\r\n", 2);
        } else {
            rd_resp_bulk(b, cmd->argv[i], cmd->argvlen[i]);
        }
    }
}

void px_slowlog_record(struct px_slowlog *sl, const struct px_client *c, const struct px_cmd *cmd,
                       uint64_t usec)
{
    if (sl->slower_than < 0 || usec < (uint64_t)sl->slower_than || sl->max_len <= 0 ||
        cmd->argc == 0)
        return;
    if (sl->cap != (size_t)sl->max_len && resize(sl, (size_t)sl->max_len) != 0)
        return;
    if (sl->n == sl->cap)
        trim(sl, sl->cap - 1);
    struct px_slow_entry *e = &sl->ring[sl->head];
    sl->head = (sl->head + 1) % sl->cap;
    sl->n++;
    e->id = sl->next_id++;
    e->when = (long long)time(NULL);
    e->usec = usec;
    rd_buf_init(&e->args);
    put_args(&e->args, cmd);
    snprintf(e->addr, sizeof(e->addr), "%s", c->addr);
    e->name = c->name ? strdup(c->name) : NULL;
}

void px_slowlog_cmd(struct px_slowlog *sl, struct px_req *r)
{
    const char *sub = r->cmd.argv[1];
    struct rd_buf *b = &r->reply;
    if (!strcasecmp(sub, "len")) {
        rd_resp_int(b, (long long)sl->n);
    } else if (!strcasecmp(sub, "reset")) {
        trim(sl, 0);
        rd_resp_simple(b, '+', "OK");
    } else if (!strcasecmp(sub, "get")) {
        long long count = 10;
        if (r->cmd.argc > 3) {
            px_reply_err(r, "ERR wrong number of arguments for 'slowlog|get' command");
            return;
        }
        if (r->cmd.argc == 3) {
            if (rd_parse_ll(r->cmd.argv[2], r->cmd.argvlen[2], &count) != 0) {
                px_reply_err(r, "ERR value is not an integer or out of range");
                return;
            }
            if (count < -1) {
                px_reply_err(r, "ERR count should be greater than or equal to -1");
                return;
            }
        }
        size_t shown = count < 0 || (size_t)count > sl->n ? sl->n : (size_t)count;
        rd_resp_array_len(b, (long long)shown);
        for (size_t i = 0; i < shown; i++) { /* newest first */
            const struct px_slow_entry *e = &sl->ring[(sl->head + sl->cap - 1 - i) % sl->cap];
            rd_resp_array_len(b, 6);
            rd_resp_int(b, (long long)e->id);
            rd_resp_int(b, e->when);
            rd_resp_int(b, (long long)e->usec);
            rd_buf_append(b, e->args.data, e->args.len);
            rd_resp_bulk(b, e->addr, strlen(e->addr));
            rd_resp_bulk(b, e->name ? e->name : "", e->name ? strlen(e->name) : 0);
        }
    } else {
        px_reply_err(r, "ERR unknown subcommand '%s'. Try SLOWLOG HELP.", sub);
    }
}

void px_slowlog_settings(struct px_slowlog *sl, int argc, const char *const *argv,
                         const size_t *argvlen, int from)
{
    for (int i = from; i + 1 < argc; i += 2) {
        long long v;
        if (rd_parse_ll(argv[i + 1], argvlen[i + 1], &v) != 0)
            continue;
        static const char than[] = "slowlog-log-slower-than", len[] = "slowlog-max-len";
        if (argvlen[i] == sizeof(than) - 1 && !strncasecmp(argv[i], than, sizeof(than) - 1))
            sl->slower_than = v;
        else if (argvlen[i] == sizeof(len) - 1 && !strncasecmp(argv[i], len, sizeof(len) - 1) &&
                 v >= 0)
            sl->max_len = v;
    }
}
