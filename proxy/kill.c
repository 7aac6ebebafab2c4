/* kill.c: SCRIPT KILL and FUNCTION KILL through the log, and Redis's BUSY state.
 *
 * A script runs on every replica (each applies the same entry), so a kill must end the same
 * entry everywhere: the node whose client asks proposes `REDRAFT.KILL SCRIPT|FUNCTION <index>`
 * naming the script entry its own Redis is running, and every node, once that entry commits,
 * sends the kill to its Redis on the control connection (backend/apply.h, backend/ctl.h). The
 * client gets what its node's Redis answered. A script that is not a log entry (EVAL_RO and
 * friends, served as reads on this node alone) is killed here directly. docs/scripts.md. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "backend/apply.h"
#include "backend/ctl.h"
#include "backend/reader.h"
#include "common/log.h"
#include "proxy/client.h"
#include "proxy/route.h"
#include "proxy/server.h"

/* Calls for this node alone (not through the log) carry the request id with this bit set. */
#define LOCAL_KILL_BIT (1ULL << 63)

/* What each kind sends to Redis, by PX_KILL_*. */
static const char *kill_argv[4][2] = {
    {"SCRIPT", "KILL"}, {"FUNCTION", "KILL"}, {"SHUTDOWN", "NOSAVE"}, {"ENTRY", ""}};

int px_server_script_ahead(struct px_server *s, uint64_t seq)
{
    for (size_t i = 0; i < s->script_reads.cap; i++)
        if (s->script_reads.slots[i].key != 0 &&
            (uint64_t)(uintptr_t)s->script_reads.slots[i].val < seq)
            return 1;
    return 0;
}

void px_server_on_busy(struct px_server *s, const char *err)
{
    snprintf(s->busy_err, sizeof(s->busy_err), "%s", err ? err : "");
    if (s->apply)
        be_apply_set_busy(s->apply, err != NULL);
}

static int ctl_call(struct px_server *s, int argc, const char **argv, uint64_t id)
{
    size_t argvlen[4];
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    return s->ctl ? be_ctl_call(s->ctl, argc, argv, argvlen, id) : -1;
}

int px_server_kill_running(struct px_server *s, int kind, uint64_t kill_index)
{
    if (kind < 0 || kind > PX_KILL_SHUTDOWN)
        return -1;
    rd_notice("sending %s %s to the local redis", kill_argv[kind][0], kill_argv[kind][1]);
    return ctl_call(s, 2, kill_argv[kind], kill_index);
}

/* FUNCTION STATS names the running command as Redis got it: with the time and seed the
 * scripts' prelude takes (backend/script.h) after the client's arguments. Give the client's. */
static void stats_strip_prelude_args(const redisReply *rep)
{
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2)
        return;
    const redisReply *run = rep->element[1];
    if (run->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 1 < run->elements; i += 2) {
        const redisReply *k = run->element[i];
        redisReply *v = run->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || k->len != 7 || memcmp(k->str, "command", 7) != 0 ||
            v->type != REDIS_REPLY_ARRAY || v->elements < 4 ||
            v->element[0]->type != REDIS_REPLY_STRING)
            continue;
        static const char *const wrapped[] = {"fcall",   "fcall_ro", "eval",
                                              "eval_ro", "evalsha",  "evalsha_ro"};
        for (size_t w = 0; w < sizeof(wrapped) / sizeof(wrapped[0]); w++) {
            if (strcasecmp(v->element[0]->str, wrapped[w]) == 0) {
                be_reply_free(v->element[v->elements - 1]);
                be_reply_free(v->element[v->elements - 2]);
                v->elements -= 2;
                break;
            }
        }
    }
}

void px_server_on_ctl_answer(struct px_server *s, uint64_t id, const redisReply *rep)
{
    if (id & LOCAL_KILL_BIT) {
        stats_strip_prelude_args(rep);
        struct rd_buf b;
        rd_buf_init(&b);
        if (rep == NULL || be_reply_encode(rep, &b) != 0)
            rd_resp_simple(&b, '-', "ERR the connection to the local redis broke");
        px_async_done(s, id & ~LOCAL_KILL_BIT, b.data, b.len);
        rd_buf_free(&b);
        return;
    }
    if (s->apply == NULL)
        return;
    if (rep == NULL)
        be_apply_kill_outcome(s->apply, id, NULL, 1);
    else if (rep->type == REDIS_REPLY_STATUS || rep->type == REDIS_REPLY_ERROR)
        be_apply_kill_outcome(s->apply, id, rep->str, rep->type == REDIS_REPLY_ERROR);
    else
        be_apply_kill_outcome(s->apply, id, "ERR unexpected reply to a kill", 1);
}

/* r goes to Redis on the control connection, for this node alone; its reply comes later. */
static void local_call(struct px_server *s, struct px_req *r, int argc, const char **argv)
{
    if (px_async_start(s, r) != 0) {
        px_reply_err(r, "ERR out of memory");
        r->state = REQ_DONE;
        return;
    }
    if (ctl_call(s, argc, argv, r->id | LOCAL_KILL_BIT) != 0)
        px_server_on_ctl_answer(s, r->id | LOCAL_KILL_BIT, NULL);
}

int px_busy_passthrough(struct px_server *s, struct px_req *r)
{
    if (strcmp(r->def->name, "function|stats") != 0 || r->cmd.argc != 2)
        return 0;
    const char *argv[2] = {"FUNCTION", "STATS"};
    local_call(s, r, 2, argv);
    return 1;
}

int px_script_kill(struct px_server *s, struct px_req *r, int kind)
{
    const char *busy = s->busy_err[0] ? s->busy_err : NULL;
    if (kind == PX_KILL_SHUTDOWN) {
        if (busy == NULL || r->cmd.argc != 2 || strcasecmp(r->cmd.argv[1], "nosave") != 0) {
            px_reply_err(r, "ERR SHUTDOWN is not allowed through redraft; stop redraft and redis "
                            "instead (SHUTDOWN NOSAVE while a script runs restarts every node's "
                            "redis-server: docs/scripts.md)");
            return 0;
        }
    } else if (kind == PX_KILL_ENTRY) {
        /* no condition: the log decides what it skips (backend/apply.h) */
    } else if (busy == NULL) {
        rd_resp_simple(&r->reply, '-', "NOTBUSY No scripts in execution right now.");
        return 0;
    } else if (kind !=
               (strstr(busy, "FUNCTION KILL") != NULL ? PX_KILL_FUNCTION : PX_KILL_SCRIPT)) {
        /* Redis answers a kill of the other kind with its BUSY text, which names the right
         * one. */
        rd_resp_simple(&r->reply, '-', busy);
        return 0;
    }
    uint64_t target = be_apply_running_script(s->apply);
    if (kind == PX_KILL_ENTRY) {
        long long v;
        if (rd_parse_ll(r->cmd.argv[1], r->cmd.argvlen[1], &v) != 0 || v <= 0) {
            px_reply_err(r, "ERR RAFT.SKIP-ENTRY needs the index of a log entry");
            return 0;
        }
        target = (uint64_t)v;
    } else if (target == 0) {
        /* Not a log entry: a read-only script of a client of this node. */
        local_call(s, r, 2, kill_argv[kind]);
        return r->state == REQ_DONE ? 0 : 1;
    }
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)target);
    const char *argv[3] = {BE_KILL_CMD, kill_argv[kind][0], num};
    size_t argvlen[3] = {strlen(BE_KILL_CMD), strlen(argv[1]), (size_t)n};
    rd_notice("client %llu asks for %s %s of log entry %llu", (unsigned long long)r->c->id,
              kill_argv[kind][0], kill_argv[kind][1], (unsigned long long)target);
    s->total_commands++;
    return px_route_write_argv(s, r, 3, argv, argvlen) == 0 ? 1 : 0;
}
