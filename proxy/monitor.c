/* monitor.c: MONITOR, the commands this redraft receives, as Redis shows the commands it runs.
 *
 * A monitoring client gets one status line per command any client of this node ran, in Redis's
 * format: `+<sec>.<usec> [<db> <ip:port>] "cmd" "arg" ...` with each argument quoted and escaped
 * as Redis's sdscatrepr does. As in Redis 7.0, a line is written once the command was dispatched
 * (commands refused before that, unknown ones, arity errors, NOAUTH, are not shown), commands
 * flagged `admin` are never shown, passwords are shown as "(redacted)" (AUTH, HELLO ... AUTH,
 * CONFIG SET of requirepass/masterauth), and a transaction shows "multi", then its commands as
 * EXEC runs them, then "exec".
 *
 * The difference from Redis: a node shows what its own clients sent, not what other nodes'
 * clients wrote (those reach its Redis through the log, which MONITOR of the local Redis would
 * show, batched), nor the commands scripts run inside Redis.
 */
#include "proxy/monitor.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "proxy/client.h"

static void put_repr(struct rd_buf *b, const char *s, size_t n)
{
    static const char special[] = "\\\"\n\r\t\a\b", shown[] = "\\\"nrtab";
    rd_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *sp = ch != '\0' ? strchr(special, ch) : NULL;
        if (sp != NULL)
            rd_buf_printf(b, "\\%c", shown[sp - special]);
        else if (isprint(ch))
            rd_buf_append(b, &s[i], 1);
        else
            rd_buf_printf(b, "\\x%02x", ch);
    }
    rd_buf_append(b, "\"", 1);
}

static int arg_is(const struct px_cmd *cmd, int i, const char *word)
{
    return i < cmd->argc && cmd->argvlen[i] == strlen(word) &&
           strncasecmp(cmd->argv[i], word, cmd->argvlen[i]) == 0;
}

int px_arg_redacted(const struct px_cmd *cmd, int i)
{
    if (arg_is(cmd, 0, "auth"))
        return i >= 1;
    if (arg_is(cmd, 0, "hello")) {
        for (int j = 2; j < cmd->argc && j < i; j++)
            if (arg_is(cmd, j, "auth") && (i == j + 1 || i == j + 2))
                return 1;
        return 0;
    }
    if (arg_is(cmd, 0, "config") && arg_is(cmd, 1, "set") && i >= 3 && (i - 3) % 2 == 0)
        return arg_is(cmd, i - 1, "requirepass") || arg_is(cmd, i - 1, "masterauth");
    return 0;
}

static void put_line(struct rd_buf *b, const struct px_client *c, int db, const struct px_cmd *cmd)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    rd_buf_printf(b, "+%ld.%06ld [%d %s] ", (long)tv.tv_sec, (long)tv.tv_usec, db, c->addr);
    for (int i = 0; i < cmd->argc; i++) {
        if (i > 0)
            rd_buf_append(b, " ", 1);
        if (px_arg_redacted(cmd, i))
            rd_buf_append(b, "\"(redacted)\"", 12);
        else
            put_repr(b, cmd->argv[i], cmd->argvlen[i]);
    }
    rd_buf_append(b, "\r\n", 2);
}

void px_monitor_start(struct px_client *c)
{
    if (c->in_monitor)
        return;
    c->in_monitor = 1;
    c->s->nmonitors++;
}

void px_monitor_stop(struct px_client *c)
{
    if (!c->in_monitor)
        return;
    c->in_monitor = 0;
    c->s->nmonitors--;
}

void px_monitor_feed(struct px_client *c, const struct px_req *r)
{
    struct px_server *s = c->s;
    if (s->nmonitors == 0 || !r->admitted || (r->def->flags & PX_CF_ADMIN))
        return;
    /* A command queued by MULTI is shown when EXEC runs it. */
    if (c->in_multi && r->nm == 0 && r->def->local != PX_L_MULTI)
        return;
    struct rd_buf line;
    rd_buf_init(&line);
    for (size_t i = 0; i < r->nm; i++)
        if (r->mdefs == NULL || r->mdefs[i] == NULL || !(r->mdefs[i]->flags & PX_CF_ADMIN))
            put_line(&line, c, r->db, &r->mcmds[i]);
    put_line(&line, c, c->db, &r->cmd);
    for (struct px_client *m = s->clients, *next; m != NULL; m = next) {
        next = m->next;
        if (!m->in_monitor || m->closed)
            continue;
        if (rd_buf_append(&m->out, line.data, line.len) != 0)
            px_client_close(m, "out of memory");
        else
            px_client_push(m);
    }
    rd_buf_free(&line);
}
