#include "proxy/rewrite.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Members are sorted first, so the choice depends only on the set's contents and the seed.
 * Errors (WRONGTYPE) come back as Redis's own through pcall. Large pops are removed in chunks
 * to stay within Lua's stack. */
static const char spop_script[] =
    "--redraft: spop\n" /* ours: backend/apply.c tells it from a client's script */
    "local key = KEYS[1]\n"
    "local n = redis.pcall('SCARD', key)\n"
    "if type(n) == 'table' then return n end\n"
    "local hascount = #ARGV > 1\n"
    "local count = hascount and tonumber(ARGV[2]) or 1\n"
    "if n == 0 or count == 0 then if hascount then return {} else return false end end\n"
    "local m = redis.call('SMEMBERS', key)\n"
    "table.sort(m)\n"
    "local out = {}\n"
    "if count >= n then\n"
    "  out = m\n"
    "  redis.call('DEL', key)\n"
    "else\n"
    "  math.randomseed(tonumber(ARGV[1]))\n"
    "  for i = 1, count do\n"
    "    local j = math.random(i, n)\n"
    "    m[i], m[j] = m[j], m[i]\n"
    "    out[i] = m[i]\n"
    "  end\n"
    "  for i = 1, #out, 1000 do\n"
    "    redis.call('SREM', key, unpack(out, i, math.min(i + 999, #out)))\n"
    "  end\n"
    "end\n"
    "if hascount then return out else return out[1] end\n";

/* XADD with an automatic id: every replica must pick the same one. The id's milliseconds come
 * from the entry's time (ARGV[1]), but never go below the stream's last id, as Redis's own `*`
 * does: when the stream is ahead (a proposer's clock behind another's, or an explicit id in the
 * future), its last milliseconds with Redis's own next sequence (`ms-*`), or the next
 * millisecond when the sequence is used up. The sequence stays a string: Lua's numbers are
 * doubles, exact only up to 2^53. ARGV[2] is where the id goes among the XADD arguments that
 * follow. */
static const char xadd_script[] =
    "--redraft: xadd\n"
    "local ms = tonumber(ARGV[1])\n"
    "local pos = tonumber(ARGV[2])\n"
    "local args = {}\n"
    "for i = 3, #ARGV do args[#args + 1] = ARGV[i] end\n"
    "local last_ms, last_ms_s, last_seq_s = -1, nil, nil\n"
    "local info = redis.pcall('XINFO', 'STREAM', KEYS[1])\n"
    "if type(info) == 'table' and not info.err then\n"
    "  for i = 1, #info - 1, 2 do\n"
    "    if info[i] == 'last-generated-id' then\n"
    "      last_ms_s, last_seq_s = string.match(info[i + 1], '^(%d+)-(%d+)$')\n"
    "      last_ms = tonumber(last_ms_s)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if last_ms >= ms and last_seq_s == '18446744073709551615' then\n"
    "  args[pos] = string.format('%.0f-0', last_ms + 1)\n"
    "elseif last_ms >= ms then\n"
    "  args[pos] = last_ms_s .. '-*'\n"
    "else\n"
    "  args[pos] = string.format('%.0f-0', ms)\n"
    "end\n"
    "return redis.pcall('XADD', unpack(args))\n";

static int rw_reserve(struct px_rewrite *rw, size_t n)
{
    if (n <= rw->cap)
        return 0;
    size_t cap = rw->cap ? rw->cap : 8;
    while (cap < n)
        cap *= 2;
    const char **a = realloc(rw->argv, cap * sizeof(*a));
    if (a == NULL)
        return -1;
    rw->argv = a;
    size_t *l = realloc(rw->argvlen, cap * sizeof(*l));
    if (l == NULL)
        return -1;
    rw->argvlen = l;
    rw->cap = cap;
    return 0;
}

static void rw_push(struct px_rewrite *rw, const char *s, size_t len)
{
    rw->argv[rw->argc] = s;
    rw->argvlen[rw->argc] = len;
    rw->argc++;
}

static void rw_push_str(struct px_rewrite *rw, const char *s)
{
    rw_push(rw, s, strlen(s));
}

static void rw_push_num(struct px_rewrite *rw, long long v)
{
    char *buf = rw->nums[rw->nnums++];
    int n = snprintf(buf, sizeof(rw->nums[0]), "%lld", v);
    rw_push(rw, buf, (size_t)n);
}

static void rw_copy(struct px_rewrite *rw, const struct px_cmd *cmd, int from, int to)
{
    for (int i = from; i < to; i++)
        rw_push(rw, cmd->argv[i], cmd->argvlen[i]);
}

static int parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* *when = now + amount * unit, in ms. Returns -1 when amount is not an integer (or, unless
 * allow_le0, not positive) or the result would overflow: such commands are left for Redis to
 * reject, the same way on every replica. */
static int absolute_ms(const char *amount, long long unit_ms, uint64_t now_ms, int allow_le0,
                       long long *when)
{
    long long v;
    if (parse_ll(amount, &v) != 0 || (!allow_le0 && v <= 0))
        return -1;
    if (v > LLONG_MAX / unit_ms || v < LLONG_MIN / unit_ms)
        return -1;
    v *= unit_ms;
    if (v > 0 && (long long)now_ms > LLONG_MAX - v)
        return -1;
    *when = (long long)now_ms + v;
    return 0;
}

static int is(const struct px_cmd *cmd, int i, const char *s)
{
    return i < cmd->argc && strcasecmp(cmd->argv[i], s) == 0;
}

/* EXPIRE/PEXPIRE key amount [NX|XX|GT|LT] -> PEXPIREAT key abs [...] */
static int rw_expire(const struct px_cmd *cmd, long long unit, uint64_t now, struct px_rewrite *rw)
{
    long long when;
    if (absolute_ms(cmd->argv[2], unit, now, 1, &when) != 0)
        return 0;
    rw->argc = 0;
    rw_push_str(rw, "PEXPIREAT");
    rw_push(rw, cmd->argv[1], cmd->argvlen[1]);
    rw_push_num(rw, when);
    rw_copy(rw, cmd, 3, cmd->argc);
    return 1;
}

/* SETEX/PSETEX key amount value -> SET key value PXAT abs */
static int rw_setex(const struct px_cmd *cmd, long long unit, uint64_t now, struct px_rewrite *rw)
{
    long long when;
    if (absolute_ms(cmd->argv[2], unit, now, 0, &when) != 0)
        return 0;
    rw->argc = 0;
    rw_push_str(rw, "SET");
    rw_push(rw, cmd->argv[1], cmd->argvlen[1]);
    rw_push(rw, cmd->argv[3], cmd->argvlen[3]);
    rw_push_str(rw, "PXAT");
    rw_push_num(rw, when);
    return 1;
}

/* SET key value [... EX s | PX ms ...] and GETEX key [EX s | PX ms]: the option becomes PXAT. */
static int rw_option_ttl(const struct px_cmd *cmd, int from, uint64_t now, struct px_rewrite *rw)
{
    int at = -1;
    long long unit = 0;
    for (int i = from; i < cmd->argc; i++) {
        if (is(cmd, i, "EX") || is(cmd, i, "PX")) {
            if (at >= 0)
                return 0; /* twice: Redis says syntax error */
            at = i;
            unit = is(cmd, i, "EX") ? 1000 : 1;
            i++;
        }
    }
    if (at < 0 || at + 1 >= cmd->argc)
        return 0;
    long long when;
    if (absolute_ms(cmd->argv[at + 1], unit, now, 0, &when) != 0)
        return 0;
    rw->argc = 0;
    rw_copy(rw, cmd, 0, at);
    rw_push_str(rw, "PXAT");
    rw_push_num(rw, when);
    rw_copy(rw, cmd, at + 2, cmd->argc);
    return 1;
}

/* RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]: a relative ttl > 0
 * becomes absolute. */
static int rw_restore(const struct px_cmd *cmd, uint64_t now, struct px_rewrite *rw)
{
    for (int i = 4; i < cmd->argc; i++)
        if (is(cmd, i, "ABSTTL"))
            return 0;
    long long when;
    if (absolute_ms(cmd->argv[2], 1, now, 0, &when) != 0)
        return 0;
    rw->argc = 0;
    rw_copy(rw, cmd, 0, 2);
    rw_push_num(rw, when);
    rw_copy(rw, cmd, 3, cmd->argc);
    rw_push_str(rw, "ABSTTL");
    return 1;
}

/* SPOP key [count] -> EVAL <script> 1 key seed [count] */
static int rw_spop(const struct px_cmd *cmd, uint64_t seed, struct px_rewrite *rw)
{
    long long count;
    if (cmd->argc > 3 || (cmd->argc == 3 && (parse_ll(cmd->argv[2], &count) != 0 || count < 0)))
        return 0;
    rw->argc = 0;
    rw_push_str(rw, "EVAL");
    rw_push(rw, spop_script, sizeof(spop_script) - 1);
    rw_push_str(rw, "1");
    rw_push(rw, cmd->argv[1], cmd->argvlen[1]);
    /* Lua numbers are doubles: keep the seed exact. */
    rw_push_num(rw, (long long)(seed & ((1ULL << 52) - 1)));
    if (cmd->argc == 3)
        rw_push(rw, cmd->argv[2], cmd->argvlen[2]);
    return 1;
}

/* The index of XADD's id argument (after NOMKSTREAM and MAXLEN|MINID [=|~] n [LIMIT c]). */
static int xadd_id_pos(const struct px_cmd *cmd)
{
    int i = 2;
    while (i < cmd->argc) {
        if (is(cmd, i, "NOMKSTREAM")) {
            i++;
        } else if (is(cmd, i, "MAXLEN") || is(cmd, i, "MINID")) {
            i++;
            if (is(cmd, i, "=") || is(cmd, i, "~"))
                i++;
            i++;
            if (is(cmd, i, "LIMIT"))
                i += 2;
        } else {
            break;
        }
    }
    return i < cmd->argc ? i : -1;
}

/* XADD key ... * field value ... -> EVAL <script> 1 key ms pos XADD-args */
static int rw_xadd(const struct px_cmd *cmd, uint64_t now_ms, struct px_rewrite *rw)
{
    int pos = xadd_id_pos(cmd);
    if (pos < 0 || cmd->argvlen[pos] != 1 || cmd->argv[pos][0] != '*')
        return 0; /* an explicit id (or a syntax error) is deterministic already */
    if (rw_reserve(rw, (size_t)cmd->argc + 8) != 0)
        return 0;
    rw->argc = 0;
    rw_push_str(rw, "EVAL");
    rw_push(rw, xadd_script, sizeof(xadd_script) - 1);
    rw_push_str(rw, "1");
    rw_push(rw, cmd->argv[1], cmd->argvlen[1]);
    rw_push_num(rw, (long long)now_ms);
    rw_push_num(rw, pos); /* 1-based among the arguments after XADD: argv[pos] is the id */
    rw_copy(rw, cmd, 1, cmd->argc);
    return 1;
}

int px_rewrite(const struct px_cmddef *def, const struct px_cmd *cmd, uint64_t now_ms,
               uint64_t seed, struct px_rewrite *rw)
{
    rw->nnums = 0;
    rw->argc = 0;
    if (rw_reserve(rw, (size_t)cmd->argc + 8) != 0)
        return -1;
    const char *n = def->name;
    int done = 0;
    if (!strcmp(n, "expire") && cmd->argc >= 3)
        done = rw_expire(cmd, 1000, now_ms, rw);
    else if (!strcmp(n, "pexpire") && cmd->argc >= 3)
        done = rw_expire(cmd, 1, now_ms, rw);
    else if (!strcmp(n, "setex") && cmd->argc == 4)
        done = rw_setex(cmd, 1000, now_ms, rw);
    else if (!strcmp(n, "psetex") && cmd->argc == 4)
        done = rw_setex(cmd, 1, now_ms, rw);
    else if (!strcmp(n, "set") && cmd->argc > 3)
        done = rw_option_ttl(cmd, 3, now_ms, rw);
    else if (!strcmp(n, "getex") && cmd->argc > 2)
        done = rw_option_ttl(cmd, 2, now_ms, rw);
    else if (!strcmp(n, "restore") && cmd->argc >= 4)
        done = rw_restore(cmd, now_ms, rw);
    else if (!strcmp(n, "spop") && cmd->argc >= 2)
        done = rw_spop(cmd, seed, rw);
    else if (!strcmp(n, "xadd") && cmd->argc >= 5)
        done = rw_xadd(cmd, now_ms, rw);
    if (!done) {
        rw->argc = 0;
        rw->nnums = 0;
        rw_copy(rw, cmd, 0, cmd->argc);
    }
    return 0;
}

void px_rewrite_free(struct px_rewrite *rw)
{
    free(rw->argv);
    free(rw->argvlen);
    memset(rw, 0, sizeof(*rw));
}
