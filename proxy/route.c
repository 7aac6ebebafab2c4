/* route.c: what happens to a read or a write after dispatch, and the events that move them on.
 *
 * Reads, by the client's consistency level (docs/consistency.md):
 *   EVENTUAL      sent to the local Redis at once;
 *   SESSION       sent once the client's own earlier writes are applied here (dispatch order);
 *   LINEARIZABLE  as SESSION, then joins the next read-index round (Raft thesis §6.4: one
 *                 heartbeat round serves every read waiting when it starts), then waits until
 *                 the local Redis has been sent every entry up to the round's index.
 * Writes: encoded once (the bytes are kept), proposed through the node; while no leader is
 * known they wait (leader-wait-timeout, then CLUSTERDOWN). A proposal the leader refused is
 * retried; one the leader accepted is pending until this node applies it (the reply), until the
 * index it was given is applied with another entry (lost: definitely not applied, so retried),
 * or until write-timeout (the outcome is unknown, and the client is told so).
 */
#include <ev.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/apply.h"
#include "backend/ctl.h"
#include "backend/entry.h"
#include "backend/link.h"
#include "backend/script.h"
#include "common/log.h"
#include "proxy/block.h"
#include "proxy/client.h"
#include "proxy/pause.h"
#include "proxy/route.h"
#include "proxy/server.h"
#include "proxy/snapshot.h"
#include "raftlog/node.h"
#include "raftlog/raft.h"

#define HOUSEKEEPING_MS 50

/* ---- queues ---- */

static void q_push(struct px_req **head, struct px_req **tail, struct px_req *r)
{
    r->wnext = NULL;
    if (*tail)
        (*tail)->wnext = r;
    else
        *head = r;
    *tail = r;
}

static struct px_req *q_pop(struct px_req **head, struct px_req **tail)
{
    struct px_req *r = *head;
    if (r) {
        *head = r->wnext;
        if (*head == NULL)
            *tail = NULL;
        r->wnext = NULL;
    }
    return r;
}

static void pend_add(struct px_server *s, struct px_req *r)
{
    r->pnext = NULL;
    r->pprev = s->pend_tail;
    if (s->pend_tail)
        s->pend_tail->pnext = r;
    else
        s->pend_head = r;
    s->pend_tail = r;
    if (r->retry_seq != 0)
        s->retries_pending++;
}

static void pend_del(struct px_server *s, struct px_req *r)
{
    if (r->pprev)
        r->pprev->pnext = r->pnext;
    else
        s->pend_head = r->pnext;
    if (r->pnext)
        r->pnext->pprev = r->pprev;
    else
        s->pend_tail = r->pprev;
    r->pprev = r->pnext = NULL;
    if (r->retry_seq != 0) {
        s->retries_pending--;
        r->retry_seq = 0;
    }
}

/* Whether a retry of a parked command that r must wait for (proposed before r arrived) is still
 * unanswered. */
static int retry_ahead(const struct px_server *s, const struct px_req *r)
{
    if (r->need_retry == 0 || s->retries_pending == 0)
        return 0;
    for (const struct px_req *p = s->pend_head; p != NULL; p = p->pnext)
        if (p->retry_seq != 0 && p->retry_seq <= r->need_retry)
            return 1;
    return 0;
}

/* Takes a write or cluster command out of flight without applying it and writes its reply: an
 * error, or (msg NULL) the null array of an EXEC a touched watched key aborted, as Redis
 * answers it. The caller then finishes the request. */
static void inflight_end(struct px_server *s, struct px_req *r, const char *msg)
{
    rd_map_del(&s->inflight, r->id);
    if (r->wait == PX_W_COMMIT || r->wait == PX_W_ADMIN)
        pend_del(s, r);
    r->wait = PX_W_NONE;
    r->c->inflight--;
    if (r->def->route == PX_ROUTE_WRITE || px_req_is_exec(r))
        r->c->writes_pending--;
    if (msg != NULL)
        rd_resp_simple(&r->reply, '-', msg);
    else
        rd_resp_array_len(&r->reply, -1);
}

static void inflight_fail(struct px_server *s, struct px_req *r, const char *msg)
{
    inflight_end(s, r, msg);
    px_req_done(r);
}

/* ---- read replies ---- */

static int info_wants_raft(const struct px_req *r)
{
    if (r->cmd.argc == 1)
        return 1;
    for (int i = 1; i < r->cmd.argc; i++)
        if (!strcasecmp(r->cmd.argv[i], "raft") || !strcasecmp(r->cmd.argv[i], "all") ||
            !strcasecmp(r->cmd.argv[i], "everything") || !strcasecmp(r->cmd.argv[i], "default"))
            return 1;
    return 0;
}

/* INFO through the proxy leaves out the hidden database and adds the "# Raft" section. */
static int encode_info(struct px_server *s, const struct px_req *r, const redisReply *rep,
                       struct rd_buf *out)
{
    if (rep->type != REDIS_REPLY_STRING)
        return be_reply_encode(rep, out);
    char hidden[32];
    int hl = snprintf(hidden, sizeof(hidden), "db%d:", s->hidden_db);
    struct rd_buf body;
    rd_buf_init(&body);
    const char *p = rep->str, *end = rep->str + rep->len;
    int in_cmdstats = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        /* Redis's commandstats count the apply link's batches: the section is redraft's
         * count of its clients' commands instead (stats.c). */
        if (*p == '#') {
            in_cmdstats = (size_t)(next - p) >= 14 && memcmp(p, "# Commandstats", 14) == 0;
            if (in_cmdstats) {
                rd_buf_append(&body, p, (size_t)(next - p));
                px_stats_info(&s->cmdstats, &body);
                p = next;
                continue;
            }
        }
        if (in_cmdstats && *p != '\r' && *p != '\n') {
            p = next;
            continue;
        }
        /* The clients are redraft's: Redis's own count is redraft's few links to it. */
        if ((size_t)(next - p) > 18 && memcmp(p, "connected_clients:", 18) == 0) {
            rd_buf_printf(&body, "connected_clients:%zu\r\n", s->nclients);
            p = next;
            continue;
        }
        /* Redis never blocks for redraft's clients: the blocked ones are parked here. */
        if ((size_t)(next - p) > 16 && memcmp(p, "blocked_clients:", 16) == 0) {
            rd_buf_printf(&body, "blocked_clients:%zu\r\n", px_block_count(s) + px_pause_count(s));
            p = next;
            continue;
        }
        if (!((size_t)(next - p) >= (size_t)hl && memcmp(p, hidden, (size_t)hl) == 0))
            rd_buf_append(&body, p, (size_t)(next - p));
        p = next;
    }
    if (info_wants_raft(r)) {
        if (body.len > 0)
            rd_buf_append(&body, "\r\n", 2);
        rn_info(s->node, &body);
        if (s->snap)
            px_snap_info(s->snap, &body);
        rd_buf_printf(&body,
                      "applied_index:%llu\r\nlocal_redis:%s\r\nreads_ahead:%llu\r\n"
                      "reads_ahead_dropped:%llu\r\n",
                      (unsigned long long)s->last_applied,
                      !s->backend_ready ? "down" : (s->busy_err[0] ? "busy" : "up"),
                      (unsigned long long)s->reads_ahead,
                      (unsigned long long)s->reads_ahead_dropped);
        int tries;
        const char *why;
        uint64_t poison = be_apply_poisoned(s->apply, &tries, &why);
        rd_buf_printf(&body, "poison_entry:%llu\r\npoison_tries:%d\r\npoison_error:%s\r\n",
                      (unsigned long long)poison, poison ? tries : 0, poison ? why : "");
    }
    int rc = rd_resp_bulk(out, body.data ? body.data : "", body.len);
    rd_buf_free(&body);
    return rc;
}

/* CONFIG GET databases reports the databases clients can use. */
static int encode_config_get(struct px_server *s, const redisReply *rep, struct rd_buf *out)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0)
        return be_reply_encode(rep, out);
    if (rd_resp_array_len(out, (long long)rep->elements) != 0)
        return -1;
    for (size_t i = 0; i < rep->elements; i += 2) {
        const redisReply *k = rep->element[i];
        if (be_reply_encode(k, out) != 0)
            return -1;
        if (k->type == REDIS_REPLY_STRING && k->len == 9 && !memcmp(k->str, "databases", 9)) {
            char num[16];
            int n = snprintf(num, sizeof(num), "%d", s->hidden_db);
            if (rd_resp_bulk(out, num, (size_t)n) != 0)
                return -1;
        } else if (be_reply_encode(rep->element[i + 1], out) != 0) {
            return -1;
        }
    }
    return 0;
}

static int encode_read_reply(struct px_server *s, const struct px_req *r, const redisReply *rep,
                             struct rd_buf *out)
{
    if (!strcmp(r->def->name, "info"))
        return encode_info(s, r, rep, out);
    if (!strcmp(r->def->name, "config|get"))
        return encode_config_get(s, rep, out);
    if (!strcmp(r->def->name, "function|list"))
        be_scripts_strip_reply(be_apply_scripts(s->apply), (redisReply *)rep);
    size_t from = out->len;
    if (be_reply_encode(rep, out) != 0)
        return -1;
    be_scripts_swap(&r->swap, out->data + from, out->len - from);
    return 0;
}

/* A read's reply came: it completes (or a blocking read parks). */
static void read_finish(struct px_server *s, struct px_req *r, const redisReply *rep)
{
    if (r->blk != NULL && rep != NULL && rep->type == REDIS_REPLY_NIL && px_block_on_null(s, r))
        return; /* XREAD BLOCK found nothing: parked */
    if (r->blk != NULL && rep != NULL && rep->type == REDIS_REPLY_ERROR &&
        px_block_on_retry_error(s, r, rep->str, rep->len))
        return; /* a parked XREAD on a key of another type stays parked, as in Redis */
    if (rep == NULL)
        px_reply_err(r, "%s", px_backend_unavailable(s));
    else if (encode_read_reply(s, r, rep, &r->reply) != 0)
        px_reply_err(r, "ERR out of memory");
    px_req_done(r);
}

static void read_reply_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct px_server *s = px_the_server();
    if (s->busy_err[0] && reply != NULL && s->ctl != NULL)
        be_ctl_not_busy(s->ctl);
    if (s->script_reads.count > 0 && rd_map_del(&s->script_reads, (uint64_t)(uintptr_t)privdata))
        be_apply_recheck_kills(s->apply);
    struct px_req *r = rd_map_del(&s->inflight, (uint64_t)(uintptr_t)privdata);
    if (r == NULL)
        return;
    r->c->inflight--;
    read_finish(s, r, reply);
}

static void fmt_cmd(struct rd_buf *b, const struct px_cmd *cmd)
{
    rd_resp_array_len(b, cmd->argc);
    for (int i = 0; i < cmd->argc; i++)
        rd_resp_bulk(b, cmd->argv[i], cmd->argvlen[i]);
}

/* Sends r's command to the local Redis under key in the inflight map; cb gets the reply. 0, or
 * -1 when it could not be sent (nothing is left registered). */
static int read_put(struct px_server *s, struct px_req *r, uint64_t key, be_reply_fn *cb)
{
    rd_buf_reset(&s->scratch);
    /* EVAL_RO, EVALSHA_RO and FCALL_RO run the bodies the writes registered (script.h). */
    struct be_cmd bc = {r->cmd.argc, (const char **)r->cmd.argv, r->cmd.argvlen};
    int sc = be_scripts_cmd(be_apply_scripts(s->apply), BE_SCRIPT_READ, &bc,
                            (uint64_t)(ev_now(s->loop) * 1000.0), 0, &s->scratch, &r->swap);
    if (sc < 0)
        return -1;
    if (sc == 0)
        fmt_cmd(&s->scratch, &r->cmd);
    if (be_link_select(s->link, r->db) != 0 || px_block_before_read(s, r) != 0 ||
        rd_map_put(&s->inflight, key, r) != 0)
        return -1;
    if (be_link_send(s->link, s->scratch.data, s->scratch.len, cb, (void *)(uintptr_t)key) != 0) {
        rd_map_del(&s->inflight, key);
        return -1;
    }
    r->c->inflight++;
    s->total_reads++;
    /* EVAL_RO, EVALSHA_RO, FCALL_RO: a script may run long (backend/ctl.h). */
    const char *n = r->def->name;
    if (s->ctl != NULL && (n[0] == 'e' || n[0] == 'f') &&
        (!strcmp(n, "eval_ro") || !strcmp(n, "evalsha_ro") || !strcmp(n, "fcall_ro"))) {
        be_ctl_poke(s->ctl);
        rd_map_put(&s->script_reads, key, (void *)(uintptr_t)be_link_seq(s->link));
    }
    return 0;
}

/* Sends a read to the local Redis. The request completes now (error) or in read_reply_cb. */
static void read_send(struct px_server *s, struct px_req *r)
{
    r->wait = PX_W_NONE;
    if (!strcmp(r->def->name, "script|exists")) {
        /* Redis caches wrapped bodies under other names: the registry knows the clients'. */
        if (be_scripts_exists_reply(be_apply_scripts(s->apply), r->cmd.argc,
                                    (const char *const *)r->cmd.argv, r->cmd.argvlen,
                                    &r->reply) != 0)
            px_reply_err(r, "ERR out of memory");
        px_req_done(r);
        return;
    }
    if (!s->backend_ready || read_put(s, r, r->id, read_reply_cb) != 0) {
        px_reply_err(r, "%s", px_backend_unavailable(s));
        px_req_done(r);
        return;
    }
    r->state = REQ_INFLIGHT;
}

/* ---- linearizable reads sent ahead of their round ----
 *
 * On the leader a linearizable read need not wait for its read-index round before it goes to
 * Redis. When this node leads, has committed an entry of its term, and has sent its Redis every
 * entry it knows committed, the read goes at once, beside the round (SPEC_SENT), and its reply is
 * held (SPEC_HELD) until the round answers. It is used only if that round, asked for after the
 * read was sent, succeeds in the same term (raft_lead_read_index says why that is linearizable;
 * docs/consistency.md spells it out). Otherwise the send is forgotten (a reply still to come is
 * dropped) and the read takes the ordinary path: round, index, then Redis. A round that succeeds
 * before the reply came leaves an ordinary read in flight (SPEC_CONFIRMED). */
enum { SPEC_NONE = 0, SPEC_SENT, SPEC_HELD, SPEC_CONFIRMED };

static void spec_reply_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct px_server *s = px_the_server();
    struct px_req *r = rd_map_del(&s->inflight, (uint64_t)(uintptr_t)privdata);
    if (r == NULL)
        return; /* forgotten */
    r->c->inflight--;
    if (r->spec == SPEC_CONFIRMED) {
        r->spec = SPEC_NONE;
        read_finish(s, r, reply);
        return;
    }
    r->spec = SPEC_NONE;
    if (reply == NULL || encode_read_reply(s, r, reply, &r->reply) != 0) {
        rd_buf_reset(&r->reply); /* the ordinary path will send it again */
        return;
    }
    r->spec = SPEC_HELD;
}

static void spec_send(struct px_server *s, struct px_req *r)
{
    uint64_t term = rn_leader_term(s->node);
    uint64_t index = rn_lead_read_index(s->node);
    if (index == 0 || r->blk != NULL || r->need_retry != 0 || be_apply_sent(s->apply) < index)
        return;
    if (!strcmp(r->def->name, "script|exists"))
        return; /* answered from the script registry, when its turn comes (read_send) */
    r->spec_id = px_new_reqid(s);
    if (read_put(s, r, r->spec_id, spec_reply_cb) != 0)
        return;
    r->spec = SPEC_SENT;
    r->spec_term = term;
    s->reads_ahead++;
}

/* Forgets a read sent ahead: its reply is dropped, whether held or still to come. */
static void spec_forget(struct px_server *s, struct px_req *r)
{
    if (r->spec != SPEC_NONE)
        s->reads_ahead_dropped++;
    if (r->spec == SPEC_SENT && rd_map_del(&s->inflight, r->spec_id) != NULL)
        r->c->inflight--;
    else if (r->spec == SPEC_HELD)
        rd_buf_reset(&r->reply);
    r->spec = SPEC_NONE;
}

void px_route_read_again(struct px_server *s, struct px_req *r)
{
    read_send(s, r);
}

/* A read leaves the waiting queues: sent, or failed with msg. */
static void read_release(struct px_server *s, struct px_req *r, const char *msg)
{
    struct px_client *c = r->c;
    c->reads_waiting--;
    r->wait = PX_W_NONE;
    if (c->closed || msg)
        spec_forget(s, r);
    if (c->closed) {
        r->state = REQ_DONE;
        px_client_maybe_free(c);
        return;
    }
    if (msg) {
        rd_resp_simple(&r->reply, '-', msg);
        px_req_done(r);
    } else if (r->spec == SPEC_HELD) {
        r->spec = SPEC_NONE;
        px_req_done(r);
    } else if (r->spec == SPEC_SENT) {
        r->spec = SPEC_CONFIRMED;
        r->state = REQ_INFLIGHT;
    } else {
        read_send(s, r);
    }
    px_client_dispatch(c); /* writes behind this read may go now */
}

/* Sends every waiting read whose index the local Redis has been sent. */
void px_process_waiting_reads(struct px_server *s)
{
    while (s->wait_head) {
        struct px_req *r = s->wait_head;
        if (s->backend_ready && (be_apply_sent(s->apply) < r->need_index || retry_ahead(s, r)))
            break;
        q_pop(&s->wait_head, &s->wait_tail);
        read_release(s, r, NULL);
    }
}

static void wait_for_index(struct px_server *s, struct px_req *r, uint64_t index)
{
    r->need_index = index;
    r->wait = PX_W_INDEX;
    q_push(&s->wait_head, &s->wait_tail, r);
}

/* Starts a read-index round for every linearizable read waiting for one. */
static void ri_kick(struct px_server *s)
{
    if (s->ri_round != 0 || s->ri_head == NULL)
        return;
    uint64_t round = ++s->next_seq | (1ULL << 63);
    if (rn_read_index(s->node, round) != RN_OK)
        return; /* no leader known yet: housekeeping tries again */
    s->ri_round = round;
    s->ri_term = rn_leader_term(s->node);
    s->ri_started = ev_now(s->loop);
    s->ri_round_count = 0;
    for (struct px_req *r = s->ri_head; r; r = r->wnext) {
        r->wait = PX_W_ROUND_SENT;
        r->round = round;
        s->ri_round_count++;
    }
}

void px_on_read_index(struct px_server *s, uint64_t round, uint64_t index)
{
    if (round != s->ri_round)
        return;
    s->ri_round = 0;
    if (index == 0) {
        /* Leadership changed under the round: the reads wait for the next one. */
        for (struct px_req *r = s->ri_head; r; r = r->wnext)
            if (r->wait == PX_W_ROUND_SENT) {
                r->wait = PX_W_ROUND;
                spec_forget(s, r);
            }
        ri_kick(s);
        return;
    }
    /* The reads of this round are at the head of the queue, in order. */
    while (s->ri_head && s->ri_head->wait == PX_W_ROUND_SENT && s->ri_head->round == round) {
        struct px_req *r = q_pop(&s->ri_head, &s->ri_tail);
        if (r->spec != SPEC_NONE && r->spec_term != s->ri_term)
            spec_forget(s, r);
        if (r->spec != SPEC_NONE)
            read_release(s, r, NULL);
        else
            wait_for_index(s, r, index);
    }
    ri_kick(s);
    px_process_waiting_reads(s);
}

void px_route_read(struct px_server *s, struct px_req *r)
{
    if (!s->backend_ready) {
        px_reply_err(r, "%s", px_backend_unavailable(s));
        r->state = REQ_DONE;
        return;
    }
    if ((s->busy_err[0] || be_apply_poisoned(s->apply, NULL, NULL) != 0) &&
        !strcmp(r->def->name, "info")) {
        /* Redis answers nothing but BUSY now, or reads would wait for an apply path that is
         * stopped: INFO gives redraft's own section (local_redis:busy, poison_entry), so
         * monitoring keeps seeing the node. */
        redisReply none = {.type = REDIS_REPLY_STRING, .str = "", .len = 0};
        if (encode_info(s, r, &none, &r->reply) != 0)
            px_reply_err(r, "ERR out of memory");
        r->state = REQ_DONE;
        return;
    }
    r->state = REQ_WAIT_INDEX;
    r->c->reads_waiting++;
    r->deadline = ev_now(s->loop) + s->cfg->read_timeout_ms / 1000.0;
    r->need_retry = 0;
    if (s->retries_pending > 0 && r->c->consistency != PX_CONSISTENCY_EVENTUAL)
        r->need_retry = s->retry_seq;
    /* A node joining a cluster (RAFT.CLUSTER JOIN or cluster-join, before the leader has sent
     * it a log) has an empty Redis: its linearizable reads wait for a read index like those of
     * a member, which they get once the log arrives (or TRYAGAIN after read-timeout). Only a
     * node that belongs to no cluster and is not joining one serves them from its Redis. */
    int member = rn_in_cluster(s->node) || rn_joining(s->node) || s->join != NULL;
    if (r->c->consistency == PX_CONSISTENCY_LINEARIZABLE && member) {
        r->wait = PX_W_ROUND;
        q_push(&s->ri_head, &s->ri_tail, r);
        spec_send(s, r);
        ri_kick(s);
        return;
    }
    /* EVENTUAL and SESSION read what this node has; after a restart SESSION still waits for
     * what was committed before it (the client may have seen it on this node). */
    uint64_t need = r->c->consistency == PX_CONSISTENCY_EVENTUAL ? 0 : s->restart_commit;
    if (s->wait_head == NULL && be_apply_sent(s->apply) >= need && !retry_ahead(s, r)) {
        r->c->reads_waiting--;
        read_send(s, r);
        return;
    }
    wait_for_index(s, r, need);
}

/* ---- writes ---- */

static int write_try(struct px_server *s, struct px_req *r);

static void write_wait_leader(struct px_server *s, struct px_req *r)
{
    if (r->wait == PX_W_COMMIT)
        pend_del(s, r);
    r->wait = PX_W_LEADER;
    r->prop_index = r->prop_term = r->fwd_term = 0;
    q_push(&s->lw_head, &s->lw_tail, r);
}

/* A write judged not applied (its index applied with another entry, its forward never proposed,
 * or refused) goes back to wait for a leader, unless the local Redis jumped ahead while it was
 * pending: then its entry may be inside the data that arrived without replies (a snapshot), and
 * proposing it again could apply it twice. Its outcome is unknown, and the client is told so. */
static void write_not_applied(struct px_server *s, struct px_req *r)
{
    if (r->maybe_applied) {
        inflight_fail(s, r,
                      "TIMEOUT the local redis was loaded from a snapshot while the write was "
                      "pending: it may or may not have been applied");
        return;
    }
    write_wait_leader(s, r);
}

static void write_pending(struct px_server *s, struct px_req *r, uint64_t index, uint64_t term)
{
    if (r->wait != PX_W_COMMIT)
        pend_add(s, r);
    r->wait = PX_W_COMMIT;
    r->prop_index = index;
    r->prop_term = term;
    if (index && (s->min_prop_index == 0 || index < s->min_prop_index))
        s->min_prop_index = index;
}

/* Proposes r (again). Returns 1 when r got its final reply instead: the caller finishes it,
 * which px_route_write leaves to the dispatch loop it runs in (px_req_done there would free r
 * under that loop, and dispatch the client's next requests inside it). */
static int write_try(struct px_server *s, struct px_req *r)
{
    uint64_t index = 0, term = 0;
    int rc = rn_propose(s->node, r->id, r->entry.data, r->entry.len, r->guard_len, &index, &term);
    switch (rc) {
    case RN_OK:
        write_pending(s, r, index, term);
        if (index <= s->last_applied && s->last_applied > 0)
            px_on_applied_check(s);
        return 0;
    case RN_FORWARDED:
        write_pending(s, r, 0, 0);
        r->fwd_term = term;
        return 0;
    case RN_ENOLEADER:
    case RN_ETRANSFER:
        write_wait_leader(s, r);
        return 0;
    case RN_ENOCLUSTER:
        inflight_end(s, r,
                     "CLUSTERDOWN this node is not part of a cluster yet "
                     "(RAFT.CLUSTER INIT or RAFT.CLUSTER JOIN)");
        return 1;
    case RN_EFULL:
        inflight_end(s, r, "TRYAGAIN too many writes waiting for commit; retry shortly");
        return 1;
    case RN_ETOOBIG:
        inflight_end(s, r, "ERR command too large for the log");
        return 1;
    case RN_EWATCH:
        inflight_end(s, r, NULL);
        return 1;
    default:
        inflight_end(s, r, "ERR redraft cannot write its log; writes are refused");
        return 1;
    }
}

int px_route_write(struct px_server *s, struct px_req *r)
{
    return px_route_write_argv(s, r, 0, NULL, NULL);
}

int px_route_write_argv(struct px_server *s, struct px_req *r, int argc, const char **argv,
                        const size_t *argvlen)
{
    struct be_entry_hdr h = {
        .flags = 0,
        .origin = rn_id(s->node),
        .reqid = r->id,
        .db = (uint64_t)r->db,
        .time_ms = (uint64_t)(ev_now(s->loop) * 1000.0),
        .ncmds = 1,
    };
    /* The seed only needs to differ from command to command; it is recorded in the entry. */
    uint64_t seed = r->id * 0x9e3779b97f4a7c15ULL ^ h.time_ms;
    int exec = px_req_is_exec(r);
    if (exec) {
        h.flags = BE_ENTRY_F_MULTI;
        h.ncmds = (uint32_t)r->nm;
    }
    /* After the watch guard, if the EXEC has one (multi.c put it there). */
    int bad = be_entry_put_hdr(&r->entry, &h) != 0;
    if (argv != NULL)
        bad = bad || be_entry_put_cmd(&r->entry, argc, argv, argvlen) != 0;
    for (size_t i = 0; !bad && argv == NULL && i < (exec ? r->nm : 1); i++) {
        const struct px_cmd *cmd = exec ? &r->mcmds[i] : &r->cmd;
        const struct px_cmddef *def = exec ? r->mdefs[i] : r->def;
        bad =
            px_rewrite(def, cmd, h.time_ms, seed + i, &s->rewrite) != 0 ||
            be_entry_put_cmd(&r->entry, s->rewrite.argc, s->rewrite.argv, s->rewrite.argvlen) != 0;
    }
    if (bad || rd_map_put(&s->inflight, r->id, r) != 0) {
        px_reply_err(r, "ERR out of memory");
        r->state = REQ_DONE;
        return -1;
    }
    double now = ev_now(s->loop);
    r->deadline = now + s->cfg->write_timeout_ms / 1000.0;
    r->leader_deadline = now + s->cfg->leader_wait_ms / 1000.0;
    r->state = REQ_INFLIGHT;
    r->c->inflight++;
    r->c->writes_pending++;
    s->total_writes++;
    if (write_try(s, r)) {
        r->state = REQ_DONE;
        return -1;
    }
    return 0;
}

/* The leader's answers to a forward. A write is forwarded again when its forward is known not
 * to have been proposed (a NACK, or a newer term began without it); the answer to an earlier
 * forward can still arrive after that, from the old leader over another connection. Taken for
 * an answer to the current forward, it made the write forwarded once more (a NACK) or judged
 * lost when its old index was applied (an ACK): applied twice. The term tells them apart. */
void px_on_proposed(struct px_server *s, uint64_t reqid, uint64_t index, uint64_t term)
{
    struct px_req *r = rd_map_get(&s->inflight, reqid);
    if (r == NULL || r->wait != PX_W_COMMIT || term != r->fwd_term)
        return;
    write_pending(s, r, index, term);
    if (index <= s->last_applied)
        px_on_applied_check(s);
}

void px_on_propose_failed(struct px_server *s, uint64_t reqid, int code, uint64_t term)
{
    struct px_req *r = rd_map_get(&s->inflight, reqid);
    if (r == NULL || r->wait != PX_W_COMMIT || (term != 0 && term != r->fwd_term))
        return;
    if (code == RN_EWATCH) {
        inflight_fail(s, r, NULL); /* a watched key was touched: EXEC answers nil */
        return;
    }
    /* The leader did not propose it: waiting for a leader again is safe. */
    write_not_applied(s, r);
}

/* Writes whose index was applied with another entry were lost with a leader change: they
 * will never be applied, so they go back to wait for a leader. */
/* Writes forwarded in an older term, never acknowledged, are lost once this node has applied the
 * first entry of a newer term (rn_term_start): proposed again. */
static void check_unacked_forwards(struct px_server *s)
{
    uint64_t cterm, cidx;
    rn_term_start(s->node, &cterm, &cidx);
    if (cidx == 0 || s->last_applied < cidx || cterm <= s->unacked_checked_term)
        return;
    s->unacked_checked_term = cterm;
    struct px_req *r = s->pend_head;
    while (r) {
        struct px_req *next = r->pnext;
        if (r->wait == PX_W_COMMIT && r->prop_index == 0 && r->fwd_term != 0 &&
            r->fwd_term < cterm) {
            rd_verbose("write %llu forwarded in term %llu was never proposed (term %llu began "
                       "at %llu); forwarding it again",
                       (unsigned long long)r->id, (unsigned long long)r->fwd_term,
                       (unsigned long long)cterm, (unsigned long long)cidx);
            write_not_applied(s, r);
        }
        r = next;
    }
}

void px_on_applied_check(struct px_server *s)
{
    check_unacked_forwards(s);
    if (s->min_prop_index == 0 || s->min_prop_index > s->last_applied) {
        px_kick_leader_waiters(s);
        return;
    }
    uint64_t min = 0;
    struct px_req *r = s->pend_head;
    while (r) {
        struct px_req *next = r->pnext;
        if (r->wait == PX_W_COMMIT && r->prop_index != 0) {
            if (r->prop_index <= s->last_applied) {
                rd_verbose("write %llu proposed at %llu (term %llu) was lost with a leader "
                           "change; proposing it again",
                           (unsigned long long)r->id, (unsigned long long)r->prop_index,
                           (unsigned long long)r->prop_term);
                write_not_applied(s, r);
            } else if (min == 0 || r->prop_index < min) {
                min = r->prop_index;
            }
        }
        r = next;
    }
    s->min_prop_index = min;
    px_kick_leader_waiters(s);
}

void px_kick_leader_waiters(struct px_server *s)
{
    if (s->lw_head == NULL || rn_leader(s->node) == 0)
        return;
    struct px_req *head = s->lw_head;
    s->lw_head = s->lw_tail = NULL;
    while (head) {
        struct px_req *r = head;
        head = r->wnext;
        r->wnext = NULL;
        r->wait = PX_W_NONE;
        if (write_try(s, r))
            px_req_done(r);
    }
}

/* ---- asynchronous cluster commands ---- */

int px_async_start(struct px_server *s, struct px_req *r)
{
    if (rd_map_put(&s->inflight, r->id, r) != 0)
        return -1;
    r->state = REQ_INFLIGHT;
    r->wait = PX_W_ADMIN;
    r->deadline = ev_now(s->loop) + s->cfg->write_timeout_ms / 1000.0;
    r->c->inflight++;
    pend_add(s, r);
    return 0;
}

void px_async_done(struct px_server *s, uint64_t reqid, const char *resp, size_t len)
{
    struct px_req *r = rd_map_get(&s->inflight, reqid);
    if (r == NULL || r->wait != PX_W_ADMIN)
        return;
    rd_map_del(&s->inflight, reqid);
    pend_del(s, r);
    r->wait = PX_W_NONE;
    r->c->inflight--;
    if (rd_buf_append(&r->reply, resp, len) != 0)
        px_reply_err(r, "ERR out of memory");
    px_req_done(r);
}

void px_server_on_admin_reply(struct px_server *s, uint64_t reqid, const char *resp, size_t len)
{
    if (px_block_on_admin_reply(s, reqid, resp, len))
        return;
    px_async_done(s, reqid, resp, len);
}

/* ---- time ---- */

static void expire_reads(struct px_server *s, double now)
{
    /* Reads that could not get a read index in time (no leader, partitioned). */
    struct px_req **pp = &s->ri_head;
    s->ri_tail = NULL;
    while (*pp) {
        struct px_req *r = *pp;
        if (r->deadline <= now && r->wait == PX_W_ROUND) {
            *pp = r->wnext;
            read_release(s, r,
                         "TRYAGAIN no read index: this node cannot reach the leader "
                         "(use CLIENT CONSISTENCY EVENTUAL for a possibly stale read)");
            continue;
        }
        s->ri_tail = r;
        pp = &r->wnext;
    }
    /* A round whose answer never came (a lost message) is started again. */
    if (s->ri_round != 0 && now - s->ri_started > s->cfg->election_timeout_ms / 1000.0) {
        s->ri_round = 0;
        for (struct px_req *r = s->ri_head; r; r = r->wnext)
            r->wait = PX_W_ROUND;
    }
    ri_kick(s);
}

static void expire_writes(struct px_server *s, double now)
{
    struct px_req **pp = &s->lw_head;
    s->lw_tail = NULL;
    while (*pp) {
        struct px_req *r = *pp;
        if (r->leader_deadline <= now || r->deadline <= now) {
            *pp = r->wnext;
            r->wait = PX_W_NONE;
            inflight_fail(s, r, "CLUSTERDOWN no leader; the write was not applied");
            continue;
        }
        s->lw_tail = r;
        pp = &r->wnext;
    }
    struct px_req *r = s->pend_head;
    while (r) {
        struct px_req *next = r->pnext;
        if (r->deadline <= now) {
            if (r->wait == PX_W_ADMIN)
                inflight_fail(s, r, "TIMEOUT the cluster command got no answer in time");
            else
                inflight_fail(s, r,
                              "TIMEOUT the write was not confirmed in time (leader lost?): it "
                              "may or may not have been applied");
        }
        r = next;
    }
}

/* CONFIG GET slowlog-*: the settings every node's CONFIG SET reaches through the log. */
static void slowlog_settings_cb(struct be_link *bl, void *reply, void *privdata)
{
    struct px_server *s = privdata;
    const redisReply *r = reply;
    /* Asked before a CONFIG SET through this node changed them: older than what is known. */
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements > 8 ||
        s->slowlog_set_at >= s->slowlog_asked)
        return;
    const char *argv[8];
    size_t lens[8];
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return;
        argv[i] = r->element[i]->str;
        lens[i] = r->element[i]->len;
    }
    px_slowlog_settings(&s->slowlog, (int)r->elements, argv, lens, 0);
}

#define SLOWLOG_ASK_S 2.0

static void housekeeping_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct px_server *s = w->data;
    double now = ev_now(loop);
    if (s->backend_ready && now - s->slowlog_asked >= SLOWLOG_ASK_S) {
        static const char *argv[] = {"CONFIG", "GET", "slowlog-*"};
        static const size_t lens[] = {6, 3, 9};
        s->slowlog_asked = now;
        be_link_send_argv(s->link, 3, argv, lens, slowlog_settings_cb, s);
    }
    px_kick_leader_waiters(s);
    expire_writes(s, now);
    expire_reads(s, now);
    px_process_waiting_reads(s); /* a retry that timed out no longer holds reads back */
    px_block_tick(s);
}

void px_route_init(struct px_server *s)
{
    ev_timer_init(&s->housekeeping, housekeeping_cb, HOUSEKEEPING_MS / 1000.0,
                  HOUSEKEEPING_MS / 1000.0);
    s->housekeeping.data = s;
    ev_timer_start(s->loop, &s->housekeeping);
}

void px_route_stop(struct px_server *s)
{
    ev_timer_stop(s->loop, &s->housekeeping);
}

/* ---- events from the node and the backend ---- */

void px_server_on_role(struct px_server *s, int role, uint64_t term, uint64_t leader)
{
    px_kick_leader_waiters(s);
    ri_kick(s);
}

/* May the keys a Redis holds without an applied index become the cluster's starting state?
 * Only while nothing else can have been built on the log: no snapshot yet, no client write
 * in it, and no other member (a node that joined has applied the log without those keys). */
static int adoptable_log(struct px_server *s)
{
    if (!rn_in_cluster(s->node))
        return 1;
    if (rn_first_index(s->node) != 1 || rn_member_count(s->node) != 1)
        return 0;
    uint64_t last = rn_last_index(s->node);
    if (last > 64)
        return 0;
    for (uint64_t i = 1; i <= last; i++)
        if (rn_is_client_entry(s->node, i))
            return 0;
    return 1;
}

const char *px_backend_unavailable(const struct px_server *s)
{
    return s->loading ? "TRYAGAIN loading a snapshot into the local redis; retry shortly"
                      : "TRYAGAIN local redis unavailable";
}

void px_server_set_snap(struct px_server *s, struct px_snap *snap)
{
    s->snap = snap;
}

void px_server_set_loading(struct px_server *s, int on)
{
    s->loading = on;
    if (on)
        px_server_on_backend_down(s, "loading a snapshot");
}

void px_server_on_backend_ready(struct px_server *s, const struct be_link_info *info)
{
    if (s->loading)
        return; /* a reconnect in the middle of a load: the loader resets the link after it */
    uint64_t last = rn_last_index(s->node);
    uint64_t first = rn_first_index(s->node);
    uint64_t applied = info->applied;
    s->hidden_db = info->hidden_db;
    snprintf(s->backend_version, sizeof(s->backend_version), "%s", info->version);
    s->backend_err[0] = '\0';

    s->foreign_keys = info->applied_present ? 0 : info->visible_keys;
    int adoptable = !info->applied_present && info->visible_keys > 0 && adoptable_log(s);
    if (!info->applied_present && info->visible_keys > 0 && !adoptable) {
        snprintf(s->backend_err, sizeof(s->backend_err),
                 "local redis holds %lld keys that redraft did not write (no applied index), "
                 "while redraft's log has %llu entries; refusing to serve until this is resolved",
                 info->visible_keys, (unsigned long long)last);
    } else if (applied > last && !(s->snap && first > 1 && applied <= px_snap_max_index(s->snap))) {
        snprintf(s->backend_err, sizeof(s->backend_err),
                 "local redis has applied index %llu, beyond redraft's log (last index %llu): "
                 "wrong redis or lost log; refusing to serve",
                 (unsigned long long)applied, (unsigned long long)last);
    } else if (applied + 1 < first) {
        snprintf(s->backend_err, sizeof(s->backend_err),
                 "TRYAGAIN local redis is at index %llu but the log starts at %llu; it is being "
                 "refilled from the latest snapshot",
                 (unsigned long long)applied, (unsigned long long)first);
        if (s->snap == NULL || px_snap_restore_local(s->snap) != 0)
            snprintf(s->backend_err, sizeof(s->backend_err),
                     "local redis is at index %llu but the log starts at %llu and there is no "
                     "snapshot to refill it from",
                     (unsigned long long)applied, (unsigned long long)first);
    }
    if (s->backend_err[0]) {
        rd_warning("%s", s->backend_err);
        return;
    }
    if (adoptable) {
        rd_notice("local redis holds %lld keys and redraft's log holds no writes: adopting the "
                  "existing dataset as the starting state",
                  info->visible_keys);
        if (rn_in_cluster(s->node) && s->snap)
            px_snap_adopt(s->snap);
    }
    if (applied < s->last_applied)
        rd_warning("local redis came back at applied index %llu, behind the %llu it had "
                   "confirmed (it lost data: restarted without persistence?); replaying the log "
                   "from %llu",
                   (unsigned long long)applied, (unsigned long long)s->last_applied,
                   (unsigned long long)applied + 1);
    else if (s->run_id[0] && strcmp(s->run_id, info->run_id) != 0)
        rd_notice("local redis restarted (run id %s, was %s) with its data at index %llu",
                  info->run_id, s->run_id, (unsigned long long)applied);
    uint64_t commit = rn_commit_index(s->node);
    if (applied < commit)
        rd_notice("applying log entries %llu..%llu to the local redis",
                  (unsigned long long)applied + 1, (unsigned long long)commit);
    snprintf(s->run_id, sizeof(s->run_id), "%s", info->run_id);
    /* Reads must not see a Redis behind what it had already shown (or what was committed
     * before this process started). */
    if (s->last_applied > s->restart_commit)
        s->restart_commit = s->last_applied;
    /* Entries the apply path never applied (a snapshot's): writes pending now get no reply for
     * them, and must not be taken for lost (write_not_applied). */
    if (applied > s->last_applied)
        for (struct px_req *r = s->pend_head; r != NULL; r = r->pnext)
            if (r->wait == PX_W_COMMIT)
                r->maybe_applied = 1;
    s->last_applied = applied;
    s->backend_ready = 1;
    be_apply_start(s->apply, applied);
    be_apply_commit(s->apply, commit);
    px_process_waiting_reads(s);
    /* Redis came back, maybe reloaded from a snapshot: writes it got that way were never seen
     * by the apply path, so every parked command looks again. */
    px_block_wake_all(s);
}

void px_server_on_backend_down(struct px_server *s, const char *why)
{
    s->backend_ready = 0;
    be_apply_link_down(s->apply, why);
    /* Reads waiting for an index cannot be served now. */
    while (s->wait_head) {
        struct px_req *r = q_pop(&s->wait_head, &s->wait_tail);
        read_release(s, r, px_backend_unavailable(s));
    }
}

void px_server_on_write_reply(struct px_server *s, uint64_t reqid, const char *resp, size_t len)
{
    struct px_req *r = rd_map_get(&s->inflight, reqid);
    if (r == NULL || r->def == NULL || (r->def->route != PX_ROUTE_WRITE && !px_req_is_exec(r)))
        return; /* its client is gone, or it came in before this node restarted */
    rd_map_del(&s->inflight, reqid);
    if (r->wait == PX_W_COMMIT)
        pend_del(s, r);
    else if (r->wait == PX_W_LEADER) {
        /* Applied although we thought it lost: take it out of the leader-wait queue. */
        struct px_req **pp = &s->lw_head;
        s->lw_tail = NULL;
        while (*pp) {
            if (*pp == r)
                *pp = r->wnext;
            else {
                s->lw_tail = *pp;
                pp = &(*pp)->wnext;
            }
        }
    }
    r->wait = PX_W_NONE;
    r->c->inflight--;
    r->c->writes_pending--;
    /* WAIT counts the nodes holding this index (the last write's, or one after it). */
    uint64_t index = r->prop_index != 0 ? r->prop_index : rn_commit_index(s->node);
    if (index > r->c->last_write_index)
        r->c->last_write_index = index;
    if (r->blk != NULL) {
        if (px_blk_is_null(resp, len) && px_block_on_null(s, r))
            return; /* nothing to pop yet: parked */
        if (len > 1 && resp[0] == '-' && px_block_on_retry_error(s, r, resp + 1, len - 1))
            return;
        if (r->c->closed)
            px_block_on_orphan(s, r, resp, len);
    }
    if (rd_buf_append(&r->reply, resp, len) != 0)
        px_reply_err(r, "ERR out of memory");
    px_req_done(r);
}

void px_server_on_applied(struct px_server *s, uint64_t index)
{
    if (s->busy_err[0] && s->ctl != NULL)
        be_ctl_not_busy(s->ctl); /* the batch came back: no script runs for it any more */
    if (index > s->last_applied)
        s->last_applied = index;
    px_on_applied_check(s);
    px_process_waiting_reads(s);
    px_block_after_apply(s);
}

void px_server_on_applied_cmd(struct px_server *s, uint64_t db, int argc, const char *const *argv,
                              const size_t *argvlen, int null_or_error)
{
    px_block_on_applied_cmd(s, db, argc, argv, argvlen, null_or_error);
}

void px_server_on_committed(struct px_server *s, uint64_t commit)
{
    be_apply_commit(s->apply, commit);
    px_process_waiting_reads(s);
    px_block_tick(s); /* WAIT on the leader: match indexes moved */
}
