/* local.c: the commands the proxy answers itself, in Redis's words. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "proxy/block.h"
#include "proxy/client.h"
#include "proxy/monitor.h"
#include "proxy/pause.h"
#include "proxy/snapshot.h"
#include "proxy/pubsub.h"
#include "proxy/watch.h"
#include "raftlog/node.h"
#include "raftlog/raft.h"

static void reply_ok(struct px_req *r)
{
    rd_resp_simple(&r->reply, '+', "OK");
}

static int arg_is(const struct px_req *r, int i, const char *s)
{
    return i < r->cmd.argc && strcasecmp(r->cmd.argv[i], s) == 0;
}

/* Compares in constant time for equal lengths, as a password check should. */
static int password_ok(const char *want, const char *got, size_t gotlen)
{
    size_t wl = strlen(want);
    unsigned char diff = (unsigned char)(wl != gotlen);
    for (size_t i = 0; i < gotlen; i++)
        diff |= (unsigned char)(want[i % (wl ? wl : 1)] ^ got[i]);
    return diff == 0 && wl == gotlen;
}

/* Checks user/password. Returns 0 when accepted; otherwise writes the error. */
static int auth_check(struct px_client *c, struct px_req *r, const char *user, size_t userlen,
                      const char *pass, size_t passlen)
{
    const char *want = c->s->cfg->requirepass;
    if (want[0] == '\0' && user == NULL) {
        px_reply_err(r, "ERR AUTH <password> called without any password configured for the "
                        "default user. Are you sure your configuration is correct?");
        return -1;
    }
    int user_ok = user == NULL || (userlen == 7 && strncmp(user, "default", 7) == 0);
    int pass_ok = want[0] == '\0' ? 1 : password_ok(want, pass, passlen);
    if (!user_ok || !pass_ok) {
        px_reply_err(r, "WRONGPASS invalid username-password pair or user is disabled.");
        return -1;
    }
    c->authed = 1;
    return 0;
}

static int valid_client_name(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '!' || s[i] > '~')
            return 0;
    return 1;
}

static int set_name(struct px_client *c, struct px_req *r, const char *name, size_t len)
{
    if (!valid_client_name(name, len)) {
        px_reply_err(r, "ERR Client names cannot contain spaces, newlines or special characters.");
        return -1;
    }
    if (len > PX_CLIENT_NAME_MAX) {
        px_reply_err(r, "ERR client name is too long");
        return -1;
    }
    free(c->name);
    c->name = NULL;
    if (len > 0) {
        c->name = malloc(len + 1);
        if (c->name == NULL) {
            px_reply_err(r, "ERR out of memory");
            return -1;
        }
        memcpy(c->name, name, len);
        c->name[len] = '\0';
    }
    return 0;
}

static void bulk_str(struct rd_buf *b, const char *s)
{
    rd_resp_bulk(b, s, strlen(s));
}

static void do_hello(struct px_client *c, struct px_req *r)
{
    int i = 1;
    if (r->cmd.argc >= 2) {
        char *end;
        errno = 0;
        long long ver = strtoll(r->cmd.argv[1], &end, 10);
        if (errno || *end != '\0' || end == r->cmd.argv[1]) {
            px_reply_err(r, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            px_reply_err(r, "NOPROTO unsupported protocol version");
            return;
        }
        if (ver == 3) {
            px_reply_err(r, "NOPROTO sorry, this protocol version is not supported by redraft "
                            "(RESP2 only)");
            return;
        }
        i = 2;
    }
    const char *setname = NULL;
    size_t setnamelen = 0;
    for (; i < r->cmd.argc; i++) {
        int more = r->cmd.argc - i - 1;
        if (arg_is(r, i, "AUTH") && more >= 2) {
            if (auth_check(c, r, r->cmd.argv[i + 1], r->cmd.argvlen[i + 1], r->cmd.argv[i + 2],
                           r->cmd.argvlen[i + 2]) != 0)
                return;
            i += 2;
        } else if (arg_is(r, i, "SETNAME") && more >= 1) {
            setname = r->cmd.argv[i + 1];
            setnamelen = r->cmd.argvlen[i + 1];
            i += 1;
        } else {
            px_reply_err(r, "ERR Syntax error in HELLO option '%s'", r->cmd.argv[i]);
            return;
        }
    }
    if (c->s->cfg->requirepass[0] && !c->authed) {
        px_reply_err(r, "NOAUTH HELLO must be called with the client already authenticated, "
                        "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                        "authenticate the client and select the RESP protocol version at the same "
                        "time");
        return;
    }
    if (setname && set_name(c, r, setname, setnamelen) != 0)
        return;
    struct rd_buf *b = &r->reply;
    rd_resp_array_len(b, 14);
    bulk_str(b, "server");
    bulk_str(b, "redis");
    bulk_str(b, "version");
    bulk_str(b, c->s->backend_version[0] ? c->s->backend_version : "7.0.0");
    bulk_str(b, "proto");
    rd_resp_int(b, 2);
    bulk_str(b, "id");
    rd_resp_int(b, (long long)c->id);
    bulk_str(b, "mode");
    bulk_str(b, "standalone");
    bulk_str(b, "role");
    bulk_str(b, "master");
    bulk_str(b, "modules");
    rd_resp_array_len(b, 0);
}

static void do_select(struct px_client *c, struct px_req *r)
{
    char *end;
    errno = 0;
    long long db = strtoll(r->cmd.argv[1], &end, 10);
    if (errno || *end != '\0' || end == r->cmd.argv[1] || db < INT32_MIN || db > INT32_MAX) {
        px_reply_err(r, "ERR value is not an integer or out of range");
        return;
    }
    /* The last database of the backend is redraft's own: clients see one fewer. */
    if (db < 0 || c->s->hidden_db <= 0 || db >= c->s->hidden_db) {
        px_reply_err(r, "ERR DB index is out of range");
        return;
    }
    c->db = (int)db;
    reply_ok(r);
}

/* Bytes of a command in multibulk form: Redis counts the command being run in qbuf. */
static size_t cmd_bytes(const struct px_cmd *cmd)
{
    char tmp[32];
    size_t n = (size_t)snprintf(tmp, sizeof(tmp), "*%d\r\n", cmd->argc);
    for (int i = 0; i < cmd->argc; i++)
        n += (size_t)snprintf(tmp, sizeof(tmp), "$%zu\r\n", cmd->argvlen[i]) + cmd->argvlen[i] + 2;
    return n;
}

/* One client as CLIENT INFO and CLIENT LIST describe it, in Redis's format. cur: the command
 * being run when x is the caller (NULL otherwise). */
static void client_line(struct px_client *c, const struct px_cmd *cur, struct rd_buf *out)
{
    double now = ev_now(c->s->loop);
    char flags[8];
    size_t nf = 0;
    if (c->in_pubsub)
        flags[nf++] = 'P';
    if (c->in_multi)
        flags[nf++] = 'x';
    if (c->in_monitor)
        flags[nf++] = 'O';
    if (px_block_parked(c))
        flags[nf++] = 'b';
    if (nf == 0)
        flags[nf++] = 'N';
    flags[nf] = '\0';
    rd_buf_printf(out,
                  "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d sub=0 "
                  "psub=0 ssub=0 multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=%zu rbs=%zu "
                  "rbp=0 obl=0 oll=0 omem=%zu tot-mem=0 events=r cmd=%s user=default redir=-1 "
                  "resp=2\n",
                  (unsigned long long)c->id, c->addr, c->laddr, c->fd, c->name ? c->name : "",
                  (long long)(now - c->ctime), (long long)(now - c->atime), flags, c->db,
                  c->in_multi ? (int)c->mq_len : -1,
                  rd_buf_unread(&c->in) + (cur ? cmd_bytes(cur) : 0), c->in.cap - c->in.len,
                  c->mq_bytes, c->in.cap, rd_buf_unread(&c->out),
                  c->last_cmd ? c->last_cmd : "NULL");
}

static void do_client_info(struct px_client *c, struct px_req *r)
{
    struct rd_buf line;
    rd_buf_init(&line);
    c->last_cmd = "client|info";
    client_line(c, &r->cmd, &line);
    rd_resp_bulk(&r->reply, line.data ? line.data : "", line.len);
    rd_buf_free(&line);
}

/* CLIENT LIST [TYPE normal|pubsub|master|replica] [ID id ...]: this node's clients. */
static void do_client_list(struct px_client *c, struct px_req *r)
{
    int type = 0; /* 0 any, 1 normal, 2 pubsub, 3 none (master/replica: redraft has none) */
    uint64_t ids[64];
    size_t nids = 0;
    int want_ids = 0;
    for (int i = 2; i < r->cmd.argc; i++) {
        if (!strcasecmp(r->cmd.argv[i], "type") && i + 1 < r->cmd.argc && !want_ids) {
            const char *t = r->cmd.argv[++i];
            if (!strcasecmp(t, "normal"))
                type = 1;
            else if (!strcasecmp(t, "pubsub"))
                type = 2;
            else if (!strcasecmp(t, "master") || !strcasecmp(t, "replica") ||
                     !strcasecmp(t, "slave"))
                type = 3;
            else {
                px_reply_err(r, "ERR Unknown client type '%s'", t);
                return;
            }
        } else if (!strcasecmp(r->cmd.argv[i], "id") && i + 1 < r->cmd.argc) {
            want_ids = 1;
            for (i++; i < r->cmd.argc; i++) {
                char *end;
                unsigned long long v = strtoull(r->cmd.argv[i], &end, 10);
                if (*end || end == r->cmd.argv[i] || v == 0) {
                    px_reply_err(r, "ERR Invalid client ID");
                    return;
                }
                if (nids < sizeof(ids) / sizeof(ids[0]))
                    ids[nids++] = v;
            }
        } else {
            px_reply_err(r, "ERR syntax error");
            return;
        }
    }
    c->last_cmd = "client|list";
    struct rd_buf out;
    rd_buf_init(&out);
    for (struct px_client *x = c->s->clients; x; x = x->next) {
        if (x->closed || type == 3 || (type == 1 && x->in_pubsub) || (type == 2 && !x->in_pubsub))
            continue;
        int match = !want_ids;
        for (size_t k = 0; k < nids && !match; k++)
            match = ids[k] == x->id;
        if (match)
            client_line(x, x == c ? &r->cmd : NULL, &out);
    }
    rd_resp_bulk(&r->reply, out.data ? out.data : "", out.len);
    rd_buf_free(&out);
}

/* CLIENT KILL ip:port (old form: +OK) | CLIENT KILL <filter value> ... (count of killed):
 * ID, ADDR, LADDR, TYPE, USER (default only), SKIPME. */
static void do_client_kill(struct px_client *c, struct px_req *r)
{
    struct px_server *s = c->s;
    int argc = r->cmd.argc;
    char **argv = r->cmd.argv;
    if (argc == 3) {
        for (struct px_client *x = s->clients; x; x = x->next) {
            if (x->closed || strcmp(x->addr, argv[2]) != 0)
                continue;
            if (x == c)
                c->close_after_reply = 1;
            else
                px_client_close(x, "killed by CLIENT KILL");
            reply_ok(r);
            return;
        }
        px_reply_err(r, "ERR No such client");
        return;
    }
    if (argc % 2 != 0) {
        px_reply_err(r, "ERR syntax error");
        return;
    }
    uint64_t id = 0;
    const char *addr = NULL, *laddr = NULL, *user = NULL;
    int type = 0, skipme = 1;
    for (int i = 2; i < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcasecmp(k, "id")) {
            char *end;
            id = strtoull(v, &end, 10);
            if (*end || end == v || id == 0 || v[0] == '-') {
                px_reply_err(r, "ERR client-id should be greater than 0");
                return;
            }
        } else if (!strcasecmp(k, "addr")) {
            addr = v;
        } else if (!strcasecmp(k, "laddr")) {
            laddr = v;
        } else if (!strcasecmp(k, "user")) {
            user = v;
        } else if (!strcasecmp(k, "type")) {
            if (!strcasecmp(v, "normal"))
                type = 1;
            else if (!strcasecmp(v, "pubsub"))
                type = 2;
            else if (!strcasecmp(v, "master") || !strcasecmp(v, "replica") ||
                     !strcasecmp(v, "slave"))
                type = 3;
            else {
                px_reply_err(r, "ERR Unknown client type '%s'", v);
                return;
            }
        } else if (!strcasecmp(k, "skipme")) {
            if (!strcasecmp(v, "yes"))
                skipme = 1;
            else if (!strcasecmp(v, "no"))
                skipme = 0;
            else {
                px_reply_err(r, "ERR syntax error");
                return;
            }
        } else {
            px_reply_err(r, "ERR syntax error");
            return;
        }
    }
    if (user && strcmp(user, "default") != 0) {
        px_reply_err(r, "ERR No such user '%s'", user);
        return;
    }
    long long killed = 0;
    struct px_client *x = s->clients;
    while (x) {
        struct px_client *next = x->next;
        int match = !x->closed && (id == 0 || x->id == id) && (!addr || !strcmp(x->addr, addr)) &&
                    (!laddr || !strcmp(x->laddr, laddr)) && type != 3 &&
                    (type != 1 || !x->in_pubsub) && (type != 2 || x->in_pubsub) &&
                    !(skipme && x == c);
        if (match) {
            killed++;
            if (x == c)
                c->close_after_reply = 1;
            else
                px_client_close(x, "killed by CLIENT KILL");
        }
        x = next;
    }
    rd_resp_int(&r->reply, killed);
}

/* CLIENT REPLY ON|OFF|SKIP (the dispatcher drops replies of requests marked quiet). */
static void do_client_reply(struct px_client *c, struct px_req *r)
{
    const char *m = r->cmd.argv[2];
    if (!strcasecmp(m, "on")) {
        c->reply_off = c->reply_skip = 0;
        r->quiet = 0;
        reply_ok(r);
    } else if (!strcasecmp(m, "off")) {
        c->reply_off = 1;
        r->quiet = 1;
    } else if (!strcasecmp(m, "skip")) {
        if (!c->reply_off)
            c->reply_skip = 1;
        r->quiet = 1;
    } else {
        px_reply_err(r, "ERR syntax error");
    }
}

static void do_consistency(struct px_client *c, struct px_req *r)
{
    if (r->cmd.argc == 2) {
        const char *n = px_consistency_name(c->consistency);
        rd_resp_simple(&r->reply, '+', n);
        return;
    }
    if (r->cmd.argc != 3) {
        px_reply_err(r, "ERR wrong number of arguments for 'client|consistency' command");
        return;
    }
    int level = px_consistency_parse(r->cmd.argv[2]);
    if (level < 0) {
        px_reply_err(r, "ERR consistency must be LINEARIZABLE, SESSION or EVENTUAL");
        return;
    }
    c->consistency = level;
    reply_ok(r);
}

static void do_raft_init(struct px_client *c, struct px_req *r)
{
    char err[256];
    if (rn_bootstrap(c->s->node, c->s->bus_announce, err, sizeof(err)) != 0) {
        rd_resp_simple(&r->reply, '-', err);
        return;
    }
    rd_notice("cluster initialized: this node (%llu) is its first member",
              (unsigned long long)rn_id(c->s->node));
    if (c->s->foreign_keys > 0 && c->s->snap)
        px_snap_adopt(c->s->snap);
    reply_ok(r);
}

/* Returns 1 when the reply comes later. */
static int do_raft_node(struct px_client *c, struct px_req *r)
{
    struct px_server *s = c->s;
    size_t head = r->reply.len;
    int rc = rn_admin(s->node, r->id, r->cmd.argc, (const char **)r->cmd.argv, r->cmd.argvlen,
                      &r->reply);
    if (rc != RN_FORWARDED)
        return 0;
    r->reply.len = head;
    if (px_async_start(s, r) != 0) {
        px_reply_err(r, "ERR out of memory");
        return 0;
    }
    return 1;
}

static void do_raft_transfer(struct px_client *c, struct px_req *r)
{
    struct px_server *s = c->s;
    uint64_t target = 0;
    if (r->cmd.argc > 2) {
        px_reply_err(r, "ERR wrong number of arguments for 'raft.transfer-leader' command");
        return;
    }
    if (r->cmd.argc == 2) {
        char *end;
        target = strtoull(r->cmd.argv[1], &end, 10);
        if (*end != '\0' || target == 0) {
            px_reply_err(r, "ERR invalid node id");
            return;
        }
    }
    if (rn_role(s->node) != RAFT_LEADER) {
        char addr[160];
        px_reply_err(r, "ERR this node is not the leader; the leader is node %llu at %s",
                     (unsigned long long)rn_leader(s->node),
                     rn_member_addr(s->node, rn_leader(s->node), addr, sizeof(addr)));
        return;
    }
    int rc = rn_transfer_leader(s->node, target);
    if (rc != RN_OK) {
        px_reply_err(r, "ERR cannot transfer leadership now");
        return;
    }
    reply_ok(r);
}

int px_local_exec(struct px_client *c, struct px_req *r)
{
    struct rd_buf *b = &r->reply;
    switch (r->def->local) {
    case PX_L_CLIENT_CONSISTENCY:
        do_consistency(c, r);
        break;
    case PX_L_RAFT_INIT:
        do_raft_init(c, r);
        break;
    case PX_L_RAFT_JOIN: {
        char err[256];
        if (px_join_start(c->s, r->id, r->cmd.argc - 2, r->cmd.argv + 2, err, sizeof(err)) != 0) {
            rd_resp_simple(b, '-', err);
            break;
        }
        if (px_async_start(c->s, r) != 0) {
            px_reply_err(r, "ERR out of memory");
            break;
        }
        return 1;
    }
    case PX_L_RAFT_NODE:
        return do_raft_node(c, r);
    case PX_L_RAFT_TRANSFER:
        do_raft_transfer(c, r);
        break;
    case PX_L_RAFT_INFO: {
        struct rd_buf info;
        rd_buf_init(&info);
        rn_info(c->s->node, &info);
        if (c->s->snap)
            px_snap_info(c->s->snap, &info);
        rd_resp_bulk(b, info.data ? info.data : "", info.len);
        rd_buf_free(&info);
        break;
    }
    case PX_L_PING:
        if (r->cmd.argc > 2)
            px_reply_err(r, "ERR wrong number of arguments for 'ping' command");
        else if (r->cmd.argc == 2)
            rd_resp_bulk(b, r->cmd.argv[1], r->cmd.argvlen[1]);
        else
            rd_resp_simple(b, '+', "PONG");
        break;
    case PX_L_ECHO:
        rd_resp_bulk(b, r->cmd.argv[1], r->cmd.argvlen[1]);
        break;
    case PX_L_QUIT:
        reply_ok(r);
        c->close_after_reply = 1;
        break;
    case PX_L_HELLO:
        do_hello(c, r);
        break;
    case PX_L_AUTH:
        if (r->cmd.argc > 3) {
            px_reply_err(r, "ERR syntax error");
            break;
        }
        if (r->cmd.argc == 2 ? auth_check(c, r, NULL, 0, r->cmd.argv[1], r->cmd.argvlen[1]) == 0
                             : auth_check(c, r, r->cmd.argv[1], r->cmd.argvlen[1], r->cmd.argv[2],
                                          r->cmd.argvlen[2]) == 0)
            reply_ok(r);
        break;
    case PX_L_SELECT:
        do_select(c, r);
        break;
    case PX_L_MONITOR:
        px_monitor_start(c);
        reply_ok(r);
        break;
    case PX_L_RESET:
        px_monitor_stop(c);
        px_pubsub_close(c);
        px_watch_clear(c);
        c->db = 0;
        c->reply_off = c->reply_skip = 0;
        c->consistency = c->s->cfg->consistency;
        free(c->name);
        c->name = NULL;
        if (c->s->cfg->requirepass[0])
            c->authed = 0;
        rd_resp_simple(b, '+', "RESET");
        break;
    case PX_L_WATCH:
        px_watch_add(c, r);
        break;
    case PX_L_UNWATCH:
        px_watch_clear(c);
        reply_ok(r);
        break;
    case PX_L_CLIENT_SETNAME:
        if (set_name(c, r, r->cmd.argv[2], r->cmd.argvlen[2]) == 0)
            reply_ok(r);
        break;
    case PX_L_CLIENT_GETNAME:
        if (c->name)
            rd_resp_bulk(b, c->name, strlen(c->name));
        else
            rd_resp_nil(b);
        break;
    case PX_L_CLIENT_ID:
        rd_resp_int(b, (long long)c->id);
        break;
    case PX_L_CLIENT_LIST:
        do_client_list(c, r);
        break;
    case PX_L_CLIENT_KILL:
        do_client_kill(c, r);
        break;
    case PX_L_CLIENT_REPLY:
        do_client_reply(c, r);
        break;
    case PX_L_CLIENT_INFO:
        do_client_info(c, r);
        break;
    case PX_L_WAIT:
        return px_block_wait_cmd(c, r);
    case PX_L_SLOWLOG:
        px_slowlog_cmd(&c->s->slowlog, r);
        break;
    case PX_L_LATENCY_HISTOGRAM:
        px_stats_latency_histogram(&c->s->cmdstats, r->cmd.argc, r->cmd.argv, b);
        break;
    case PX_L_CLIENT_PAUSE:
        if (px_pause_cmd(c, r) == 0)
            reply_ok(r);
        break;
    case PX_L_CLIENT_UNPAUSE:
        px_pause_unpause(c->s);
        reply_ok(r);
        break;
    case PX_L_CLIENT_UNBLOCK:
        return px_block_unblock_cmd(c, r);
    case PX_L_MULTI:
    case PX_L_EXEC:
    case PX_L_DISCARD: /* multi.c answers these before local commands are run */
    case PX_L_PUBSUB:  /* pubsub.c forwards these; inside MULTI they are refused */
    case PX_L_SCRIPT_KILL:
    case PX_L_FUNCTION_KILL: /* dispatched before (server.c); inside MULTI they reach here */
    case PX_L_SHUTDOWN:
    case PX_L_RAFT_SKIP:
    case PX_L_NONE:
        px_reply_err(r, "ERR internal: no local handler");
        rd_warning("no local handler for '%s'", r->def->name);
        break;
    }
    return 0;
}
