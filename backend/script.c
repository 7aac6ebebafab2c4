/* script.c: scripts and functions made deterministic; the script registry. See script.h and
 * docs/scripts.md. */
#include "backend/script.h"

#include <ctype.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/map.h"

/* The prelude, one line of Lua. It is a function of the real `redis` and `math` tables (read
 * as globals when it runs, so a function library sees the runtime `redis`, not the one of its
 * load) that returns the wrappers user code then knows as `redis` and `math`; given ARGV (EVAL)
 * it starts the run at once, otherwise (a library) each registered callback starts its own.
 * Starting pops time and seed from the arguments; a seed < 0 (a read served by one node) turns
 * the wrappers off. Library code may use no global but `redis` while it loads, so everything
 * that needs others (pairs, setmetatable, table) runs when a call starts. The PRNG is Park and
 * Miller's minimal standard: exact in Lua's doubles. Never change a byte of it lightly: Redis
 * caches wrapped bodies forever and FUNCTION LIST strips it by its exact text. */
static const char prelude_core[] =
    "local redis, math = (function(A) "
    "local st = {t = 0, n = 0, x = 1, on = false, mt = false, resp = 2} "
    "local W, MW = {}, {} "
    "local H = nil "
    "local NAMES = ' SRANDMEMBER SPOP HRANDFIELD ZRANDMEMBER SMEMBERS SINTER SUNION SDIFF KEYS "
    "HKEYS HVALS HGETALL RANDOMKEY SCAN SSCAN HSCAN ZSCAN INFO LASTSAVE OBJECT MEMORY ROLE LATENCY "
    "SLOWLOG TIME TTL PTTL EXPIRE PEXPIRE SETEX PSETEX SET GETEX RESTORE XADD ' "
    "local function rnd() st.x = (st.x * 16807) % 2147483647 return st.x end "
    "local function fail(p, m) if p then return {err = m} end return error({err = m}) end "
    "local function int(v) local s = tostring(v) if string.match(s, '^%-?%d+$') == nil or #s > 16 "
    "then return nil end return tonumber(s) end "
    "local function num(v) return string.format('%.0f', v) end "
    "local function at(n, u) local w = st.t + n * u if w > 9007199254740991 or w < "
    "-9007199254740991 then return nil end return num(w) end "
    "local function bad(p, a) return fail(p, \"ERR invalid expire time in '\" .. "
    "string.lower(a[1]) .. \"' command\") end "
    "local function iserr(r) return type(r) == 'table' and r.err ~= nil end "
    "local function copy(a) local b = {} for i = 1, #a do b[i] = a[i] end return b end "
    "local mkH "
    "local function run(p, ...) "
    "local c = p and redis.pcall or redis.call "
    "if not st.on then return c(...) end "
    "local u = string.upper(tostring((...))) "
    "if not string.find(NAMES, ' ' .. u .. ' ', 1, true) then return c(...) end "
    "if H == nil then H = mkH() end "
    "return H[u](c, p, {...}) "
    "end "
    "W.call = function(...) return run(false, ...) end "
    "W.pcall = function(...) return run(true, ...) end "
    "W.setresp = function(v) st.resp = v return redis.setresp(v) end "
    "W.log = redis.log W.LOG_DEBUG = redis.LOG_DEBUG W.LOG_VERBOSE = redis.LOG_VERBOSE "
    "W.LOG_NOTICE = redis.LOG_NOTICE W.LOG_WARNING = redis.LOG_WARNING W.REDIS_VERSION = "
    "redis.REDIS_VERSION W.REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM "
    "MW.random = function(...) "
    "if not st.on then return math.random(...) end "
    "local k, a, b = select('#', ...), ... "
    "local r = (rnd() - 1) / 2147483646 "
    "if k == 0 then return r end "
    "a = tonumber(a) if a == nil then return math.random(...) end a = math.floor(a) "
    "if k == 1 then if a < 1 then return math.random(...) end return math.floor(r * a) + 1 end "
    "b = tonumber(b) if k > 2 or b == nil or a > math.floor(b) then return math.random(...) end b "
    "= math.floor(b) "
    "return a + math.floor(r * (b - a + 1)) "
    "end "
    "MW.randomseed = function(s) "
    "if not st.on or tonumber(s) == nil then return math.randomseed(s) end "
    "st.x = (math.floor(tonumber(s)) % 2147483646) + 1 rnd() rnd() "
    "end "
    "mkH = function() "
    "local H = {} "
    "local function resp3(p, a) return fail(p, 'ERR ' .. string.upper(a[1]) .. ' under RESP3 in a "
    "script is not supported by redraft') end "
    "local function picks(n, c) "
    "local o = {} "
    "if c < 0 then for i = 1, -c do o[i] = rnd() % n + 1 end return o end "
    "if c > n then c = n end "
    "local ix = {} "
    "for i = 1, n do ix[i] = i end "
    "for i = 1, c do local j = i + rnd() % (n - i + 1) ix[i], ix[j] = ix[j], ix[i] o[i] = ix[i] "
    "end "
    "return o "
    "end "
    "local function rpick(src, step, opt, pop) "
    "return function(c, p, a) "
    "local n = #a "
    "if n < 2 or n > (opt and 4 or 3) then return c(unpack(a)) end "
    "local cnt, wv = nil, false "
    "if n >= 3 then cnt = int(a[3]) if cnt == nil or (pop and cnt < 0) then return c(unpack(a)) "
    "end end "
    "if n == 4 then if string.upper(tostring(a[4])) ~= opt then return c(unpack(a)) end wv = true "
    "end "
    "if st.resp ~= 2 then return resp3(p, a) end "
    "local r = c(unpack(src(a[2]))) "
    "if iserr(r) then return r end "
    "local e = {} "
    "for i = 1, #r, step do e[#e + 1] = {r[i], r[i + 1]} end "
    "table.sort(e, function(x, y) return x[1] < y[1] end) "
    "if cnt == nil then "
    "if #e == 0 then return false end "
    "local x = e[rnd() % #e + 1][1] "
    "if pop then c('SREM', a[2], x) end "
    "return x "
    "end "
    "if cnt == 0 or #e == 0 then return {} end "
    "local o = {} "
    "for _, j in ipairs(picks(#e, cnt)) do o[#o + 1] = e[j][1] if wv then o[#o + 1] = e[j][2] end "
    "end "
    "if pop then for i = 1, #o, 1000 do c('SREM', a[2], unpack(o, i, math.min(i + 999, #o))) end "
    "end "
    "return o "
    "end "
    "end "
    "local function smembers(k) return {'SMEMBERS', k} end "
    "H.SRANDMEMBER = rpick(smembers, 1, nil, false) "
    "H.SPOP = rpick(smembers, 1, nil, true) "
    "H.HRANDFIELD = rpick(function(k) return {'HGETALL', k} end, 2, 'WITHVALUES', false) "
    "H.ZRANDMEMBER = rpick(function(k) return {'ZRANGE', k, 0, -1, 'WITHSCORES'} end, 2, "
    "'WITHSCORES', false) "
    "local function sorted(c, p, a) if st.resp ~= 2 and string.upper(a[1]) ~= 'KEYS' and "
    "string.upper(a[1]) ~= 'HKEYS' and string.upper(a[1]) ~= 'HVALS' then return resp3(p, a) end "
    "local r = c(unpack(a)) if type(r) == 'table' and r.err == nil then table.sort(r) end return r "
    "end "
    "H.HGETALL = function(c, p, a) "
    "if st.resp ~= 2 then return resp3(p, a) end "
    "local r = c(unpack(a)) "
    "if type(r) ~= 'table' or r.err ~= nil or #r == 0 then return r end "
    "local e, o = {}, {} "
    "for i = 1, #r, 2 do e[#e + 1] = {r[i], r[i + 1]} end "
    "table.sort(e, function(x, y) return x[1] < y[1] end) "
    "for _, x in ipairs(e) do o[#o + 1] = x[1] o[#o + 1] = x[2] end "
    "return o "
    "end "
    "local function refuse(c, p, a) return fail(p, 'ERR ' .. string.upper(a[1]) .. ' is not "
    "allowed in scripts and functions run through redraft: its result would differ between "
    "replicas') end "
    "H.TIME = function(c, p, a) "
    "if #a ~= 1 then return c(unpack(a)) end "
    "local us = st.t * 1000 + st.n st.n = st.n + 1 "
    "return {num(math.floor(us / 1000000)), num(us % 1000000)} "
    "end "
    "local function ttl(ms) return function(c, p, a) "
    "if #a ~= 2 then return c(unpack(a)) end "
    "local e = c('PEXPIRETIME', a[2]) "
    "if iserr(e) or e < 0 then return e end "
    "local r = e - st.t if r < 0 then r = 0 end "
    "if ms then return r end return math.floor((r + 500) / 1000) "
    "end end "
    "H.TTL = ttl(false) H.PTTL = ttl(true) "
    "local function ex(u) return function(c, p, a) "
    "local n = int(a[3]) if #a < 3 or n == nil then return c(unpack(a)) end "
    "local w = at(n, u) if w == nil then return bad(p, a) end "
    "local b = {'PEXPIREAT', a[2], w} for i = 4, #a do b[#b + 1] = a[i] end "
    "return c(unpack(b)) "
    "end end "
    "H.EXPIRE = ex(1000) H.PEXPIRE = ex(1) "
    "local function setex(u) return function(c, p, a) "
    "local n = int(a[3]) if #a ~= 4 or n == nil or n <= 0 then return c(unpack(a)) end "
    "local w = at(n, u) if w == nil then return bad(p, a) end "
    "return c('SET', a[2], a[4], 'PXAT', w) "
    "end end "
    "H.SETEX = setex(1000) H.PSETEX = setex(1) "
    "local function opt(from) return function(c, p, a) "
    "local k = nil "
    "for i = from, #a do local u = string.upper(tostring(a[i])) if u == 'EX' or u == 'PX' then if "
    "k ~= nil then return c(unpack(a)) end k = i end end "
    "if k == nil then return c(unpack(a)) end "
    "local n = int(a[k + 1]) if n == nil or n <= 0 then return c(unpack(a)) end "
    "local w = at(n, string.upper(a[k]) == 'EX' and 1000 or 1) if w == nil then return bad(p, a) "
    "end "
    "local b = copy(a) b[k] = 'PXAT' b[k + 1] = w "
    "return c(unpack(b)) "
    "end end "
    "H.SET = opt(4) H.GETEX = opt(3) "
    "H.RESTORE = function(c, p, a) "
    "local n = int(a[3]) if #a < 4 or n == nil or n <= 0 then return c(unpack(a)) end "
    "for i = 5, #a do if string.upper(tostring(a[i])) == 'ABSTTL' then return c(unpack(a)) end end "
    "local w = at(n, 1) if w == nil then return bad(p, a) end "
    "local b = copy(a) b[3] = w b[#b + 1] = 'ABSTTL' "
    "return c(unpack(b)) "
    "end "
    "H.XADD = function(c, p, a) "
    "local i = 3 "
    "while i <= #a do "
    "local u = string.upper(tostring(a[i])) "
    "if u == 'NOMKSTREAM' then i = i + 1 "
    "elseif u == 'MAXLEN' or u == 'MINID' then i = i + 1 if a[i] == '=' or a[i] == '~' then i = i "
    "+ 1 end i = i + 1 if string.upper(tostring(a[i])) == 'LIMIT' then i = i + 2 end "
    "else break end "
    "end "
    "if i > #a or a[i] ~= '*' then return c(unpack(a)) end "
    "local lm, lms, lseq = -1, nil, nil "
    "local info = redis.pcall('XINFO', 'STREAM', a[2]) "
    "if type(info) == 'table' and info.err == nil then for j = 1, #info - 1, 2 do if info[j] == "
    "'last-generated-id' then lms, lseq = string.match(info[j + 1], '^(%d+)-(%d+)$') lm = "
    "tonumber(lms) end end end "
    "local b = copy(a) "
    "if lm >= st.t and lseq == '18446744073709551615' then b[i] = num(lm + 1) .. '-0' elseif lm >= "
    "st.t then b[i] = lms .. '-*' else b[i] = num(st.t) .. '-0' end "
    "return c(unpack(b)) "
    "end "
    "for _, k in ipairs({'SMEMBERS', 'SINTER', 'SUNION', 'SDIFF', 'KEYS', 'HKEYS', 'HVALS'}) do "
    "H[k] = sorted end "
    "for _, k in ipairs({'RANDOMKEY', 'SCAN', 'SSCAN', 'HSCAN', 'ZSCAN', 'INFO', 'LASTSAVE', "
    "'OBJECT', 'MEMORY', 'ROLE', 'LATENCY', 'SLOWLOG'}) do H[k] = refuse end "
    "return H "
    "end "
    "local function ro(t, base) "
    "local f = {} "
    "for k, v in pairs(t) do f[k] = v end "
    "for k in pairs(f) do t[k] = nil end "
    "setmetatable(t, {__index = function(_, k) local v = f[k] if v == nil then v = base[k] end "
    "return v end, __newindex = function() error('Attempt to modify a readonly table', 2) end}) "
    "end "
    "local function begin(a) "
    "if not st.mt then st.mt = true ro(W, redis) ro(MW, math) "
    "end "
    "local s = tonumber(table.remove(a)) local t = tonumber(table.remove(a)) "
    "st.t = t or 0 st.n = 0 st.resp = 2 st.on = s ~= nil and s >= 0 st.x = ((s or 0) % 2147483646) "
    "+ 1 rnd() "
    "end "
    "if redis.register_function ~= nil then "
    "local function wrap(f) return function(k, a) begin(a) return f(k, a) end end "
    "W.register_function = function(...) "
    "local a, b, c = ... "
    "if a == nil or c ~= nil or (b == nil and a.callback == nil) then return "
    "redis.register_function(...) end "
    "if b == nil then a.callback = wrap(a.callback) return redis.register_function(a) end "
    "return redis.register_function(a, wrap(b)) "
    "end "
    "end "
    "if A ~= nil then begin(A) end "
    "return W, MW "
    "end) ";

/* The same list as the prelude's refuse loop (test_script.c checks they agree). */
const char *const be_scripts_refused[] = {
    "RANDOMKEY", "SCAN",   "SSCAN", "HSCAN",   "ZSCAN",   "INFO", "LASTSAVE",
    "OBJECT",    "MEMORY", "ROLE",  "LATENCY", "SLOWLOG", NULL,
};

struct script {
    char sha[RD_SHA1_HEX];   /* of the client's body */
    char sha_w[RD_SHA1_HEX]; /* of the wrapped body Redis runs */
    char *body;              /* the client's body */
    size_t len;
    struct script *next; /* same map key */
    int pending;         /* not yet written to BE_SCRIPTS_KEY */
};

struct be_scripts {
    struct rd_map map; /* first 16 hex digits of sha -> chain of struct script */
    size_t count;
    char *pre_eval, *pre_fn; /* prelude_core + "(ARGV); " / "(); " */
    size_t pre_eval_len, pre_fn_len;
    size_t npending; /* scripts with pending set */
    int flushed;     /* SCRIPT FLUSH in this batch: delete the hash first */
    int reload;      /* Redis may lack some: SCRIPT LOAD every one before the next batch */
    int rewrite_all; /* FLUSHALL in this batch: write every script again */
};

static char *concat(const char *a, const char *b, size_t *len)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 1);
    if (p != NULL) {
        memcpy(p, a, la);
        memcpy(p + la, b, lb + 1);
        *len = la + lb;
    }
    return p;
}

struct be_scripts *be_scripts_new(void)
{
    struct be_scripts *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return NULL;
    rd_map_init(&sc->map);
    /* The ';' ends the statement: a body that starts with '(' must not call its result. */
    sc->pre_eval = concat(prelude_core, "(ARGV); ", &sc->pre_eval_len);
    sc->pre_fn = concat(prelude_core, "(); ", &sc->pre_fn_len);
    if (sc->pre_eval == NULL || sc->pre_fn == NULL) {
        be_scripts_free(sc);
        return NULL;
    }
    return sc;
}

static void clear(struct be_scripts *sc)
{
    for (size_t i = 0; i < sc->map.cap; i++) {
        struct script *s = sc->map.slots[i].key ? sc->map.slots[i].val : NULL;
        while (s != NULL) {
            struct script *next = s->next;
            free(s->body);
            free(s);
            s = next;
        }
    }
    rd_map_free(&sc->map);
    rd_map_init(&sc->map);
    sc->count = 0;
    sc->npending = 0;
}

void be_scripts_free(struct be_scripts *sc)
{
    if (sc == NULL)
        return;
    clear(sc);
    free(sc->pre_eval);
    free(sc->pre_fn);
    free(sc);
}

const char *be_scripts_prelude(const struct be_scripts *sc, int fn, size_t *len)
{
    *len = fn ? sc->pre_fn_len : sc->pre_eval_len;
    return fn ? sc->pre_fn : sc->pre_eval;
}

size_t be_scripts_count(const struct be_scripts *sc)
{
    return sc->count;
}

/* The sha in lower case, or -1 when it is not 40 hex digits. */
static int norm_sha(const char *sha, size_t len, char out[RD_SHA1_HEX])
{
    if (len != RD_SHA1_HEX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)sha[i]))
            return -1;
        out[i] = (char)tolower((unsigned char)sha[i]);
    }
    return 0;
}

static uint64_t map_key(const char sha[RD_SHA1_HEX])
{
    char h[17];
    memcpy(h, sha, 16);
    h[16] = '\0';
    uint64_t k = strtoull(h, NULL, 16);
    return k ? k : 1;
}

static struct script *find(const struct be_scripts *sc, const char sha[RD_SHA1_HEX])
{
    for (struct script *s = rd_map_get(&sc->map, map_key(sha)); s != NULL; s = s->next)
        if (memcmp(s->sha, sha, RD_SHA1_HEX) == 0)
            return s;
    return NULL;
}

int be_scripts_known(const struct be_scripts *sc, const char *sha, size_t len)
{
    char n[RD_SHA1_HEX];
    return norm_sha(sha, len, n) == 0 && find(sc, n) != NULL;
}

/* Where the prelude goes in a body: at its start, or after a `#!` line; -1: nowhere (a `#!`
 * line and nothing after it). */
static long wrap_pos(const char *body, size_t len)
{
    if (len < 2 || body[0] != '#' || body[1] != '!')
        return 0;
    const char *nl = memchr(body, '\n', len);
    return nl != NULL ? (long)(nl - body) + 1 : -1;
}

static void wrapped_sha(const char *pre, size_t plen, const char *body, size_t len, long pos,
                        char out[RD_SHA1_HEX])
{
    uint8_t d[RD_SHA1_LEN];
    struct rd_sha1 c;
    rd_sha1_init(&c);
    rd_sha1_update(&c, body, (size_t)pos);
    rd_sha1_update(&c, pre, plen);
    rd_sha1_update(&c, body + pos, len - (size_t)pos);
    rd_sha1_final(&c, d);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < RD_SHA1_LEN; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
}

/* Registers body (a copy) under sha unless it is there; returns it, or NULL (no memory). */
static struct script *add(struct be_scripts *sc, const char sha[RD_SHA1_HEX], const char *body,
                          size_t len, int pending)
{
    struct script *s = find(sc, sha);
    if (s != NULL)
        return s;
    long pos = wrap_pos(body, len);
    if (pos < 0 || (s = calloc(1, sizeof(*s))) == NULL || (s->body = malloc(len + 1)) == NULL)
        goto fail;
    memcpy(s->body, body, len);
    s->body[len] = '\0';
    s->len = len;
    memcpy(s->sha, sha, RD_SHA1_HEX);
    wrapped_sha(sc->pre_eval, sc->pre_eval_len, body, len, pos, s->sha_w);
    uint64_t k = map_key(sha);
    s->next = rd_map_get(&sc->map, k);
    if (rd_map_put(&sc->map, k, s) != 0)
        goto fail;
    if (pending) {
        s->pending = 1;
        sc->npending++;
    }
    sc->count++;
    return s;
fail:
    if (s != NULL)
        free(s->body);
    free(s);
    return NULL;
}

int be_scripts_load(struct be_scripts *sc, const redisReply *r)
{
    clear(sc);
    if (r == NULL || r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return -1;
    for (size_t i = 0; i < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        char sha[RD_SHA1_HEX];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            norm_sha(k->str, k->len, sha) != 0)
            return -1;
        if (wrap_pos(v->str, v->len) >= 0 && add(sc, sha, v->str, v->len, 0) == NULL)
            return -1;
    }
    sc->reload = sc->count > 0;
    return 0;
}

static int is(const struct be_cmd *c, int i, const char *s)
{
    size_t n = strlen(s);
    return i < c->argc && c->argvlen[i] == n && strncasecmp(c->argv[i], s, n) == 0;
}

/* A bulk string made of body[0, pos), pre, body[pos, len). */
static int bulk_wrapped(struct rd_buf *out, const char *pre, size_t plen, const char *body,
                        size_t len, size_t pos)
{
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "$%zu\r\n", plen + len);
    return rd_buf_append(out, hdr, (size_t)n) || rd_buf_append(out, body, pos) ||
                   rd_buf_append(out, pre, plen) || rd_buf_append(out, body + pos, len - pos) ||
                   rd_buf_append(out, "\r\n", 2)
               ? -1
               : 0;
}

/* numkeys of EVAL-like commands is valid: the added arguments must not become keys. */
static int numkeys_ok(const struct be_cmd *c)
{
    char buf[24];
    if (c->argc < 3 || c->argvlen[2] == 0 || c->argvlen[2] >= sizeof(buf))
        return 0;
    memcpy(buf, c->argv[2], c->argvlen[2]);
    buf[c->argvlen[2]] = '\0';
    char *end;
    long long n = strtoll(buf, &end, 10);
    return *end == '\0' && n >= 0 && n <= c->argc - 3;
}

/* The entry's time and the seed, as the last two arguments the prelude pops. */
static int put_ts(struct rd_buf *out, uint64_t time_ms, long long seed)
{
    char t[24], s[24];
    int tl = snprintf(t, sizeof(t), "%llu", (unsigned long long)time_ms);
    int sl = snprintf(s, sizeof(s), "%lld", seed);
    return rd_resp_bulk(out, t, (size_t)tl) || rd_resp_bulk(out, s, (size_t)sl) ? -1 : 0;
}

/* name [sub], then a wrapped body, then argv[from..], then time and seed (when ts). */
static int put_script_cmd(struct rd_buf *out, const char *name, const char *sub, const char *pre,
                          size_t plen, const char *body, size_t len, const struct be_cmd *c,
                          int from, int ts, uint64_t time_ms, long long seed)
{
    long pos = wrap_pos(body, len);
    int rc = rd_resp_array_len(out, 2 + (sub != NULL) + (c->argc - from) + (ts ? 2 : 0));
    rc = rc || rd_resp_bulk(out, name, strlen(name));
    if (sub != NULL)
        rc = rc || rd_resp_bulk(out, sub, strlen(sub));
    rc = rc || bulk_wrapped(out, pre, plen, body, len, (size_t)pos);
    for (int i = from; i < c->argc; i++)
        rc = rc || rd_resp_bulk(out, c->argv[i], c->argvlen[i]);
    if (ts)
        rc = rc || put_ts(out, time_ms, seed);
    return rc ? -1 : 1;
}

/* c with its first `keep` arguments replaced by argv0, then time and seed when ts: FCALL(_RO)
 * as it is (keep 0), EVALSHA under the wrapped script's name or under none (keep 2). */
static int put_with_ts(struct rd_buf *out, const struct be_cmd *c, int keep,
                       const char *const *argv0, const size_t *len0, int ts, uint64_t time_ms,
                       long long seed)
{
    int rc = rd_resp_array_len(out, c->argc + (ts ? 2 : 0));
    for (int i = 0; i < c->argc; i++)
        rc = rc || (i < keep ? rd_resp_bulk(out, argv0[i], len0[i])
                             : rd_resp_bulk(out, c->argv[i], c->argvlen[i]));
    return rc || (ts && put_ts(out, time_ms, seed)) ? -1 : 1;
}

/* FUNCTION LOAD [REPLACE] code: the prelude on the code's second line, once. */
static int put_function_load(struct be_scripts *sc, const struct be_cmd *c, struct rd_buf *out)
{
    const char *code = c->argv[c->argc - 1];
    size_t len = c->argvlen[c->argc - 1];
    long pos = wrap_pos(code, len);
    if (pos <= 0 || (len - (size_t)pos >= sc->pre_fn_len &&
                     memcmp(code + pos, sc->pre_fn, sc->pre_fn_len) == 0))
        return 0; /* no `#!` line (Redis says so), nothing after it, or wrapped already */
    int rc = rd_resp_array_len(out, c->argc);
    for (int i = 0; i < c->argc - 1; i++)
        rc = rc || rd_resp_bulk(out, c->argv[i], c->argvlen[i]);
    rc = rc || bulk_wrapped(out, sc->pre_fn, sc->pre_fn_len, code, len, (size_t)pos);
    return rc ? -1 : 1;
}

static void set_swap(struct be_script_swap *swap, const struct script *s)
{
    memcpy(swap->from, s->sha_w, RD_SHA1_HEX);
    memcpy(swap->to, s->sha, RD_SHA1_HEX);
}

/* EVAL(_RO) body numkeys ... */
static int put_eval(struct be_scripts *sc, enum be_script_mode mode, const struct be_cmd *c,
                    uint64_t time_ms, long long seed, struct rd_buf *out,
                    struct be_script_swap *swap)
{
    const char *body = c->argv[1];
    size_t len = c->argvlen[1];
    if (!numkeys_ok(c) || wrap_pos(body, len) < 0)
        return 0; /* Redis refuses it before it compiles (or caches) anything */
    char sha[RD_SHA1_HEX];
    rd_sha1_hex(body, len, sha);
    struct script tmp, *s = find(sc, sha);
    if (s == NULL && mode == BE_SCRIPT_APPLY && (s = add(sc, sha, body, len, 1)) == NULL)
        return -1;
    if (s == NULL) { /* a read: registers nothing */
        memcpy(tmp.sha, sha, RD_SHA1_HEX);
        wrapped_sha(sc->pre_eval, sc->pre_eval_len, body, len, wrap_pos(body, len), tmp.sha_w);
        s = &tmp;
    }
    set_swap(swap, s);
    return put_script_cmd(out, mode == BE_SCRIPT_APPLY ? "EVAL" : "EVAL_RO", NULL, sc->pre_eval,
                          sc->pre_eval_len, body, len, c, 2, 1, time_ms, seed);
}

/* EVALSHA(_RO) sha numkeys ...: a registered script by the name Redis caches it under (Redis
 * has every registered script that compiles: be_scripts_preload), or for a read its body. An
 * unknown one goes under a name no script has, so that Redis answers NOSCRIPT (or its numkeys
 * error first, as for the original) on every node, even one whose Redis still caches the body
 * unwrapped (loaded before an upgrade to this version). */
static int put_evalsha(struct be_scripts *sc, enum be_script_mode mode, const struct be_cmd *c,
                       uint64_t time_ms, long long seed, struct rd_buf *out,
                       struct be_script_swap *swap)
{
    char sha[RD_SHA1_HEX];
    struct script *s = NULL;
    if (norm_sha(c->argv[1], c->argvlen[1], sha) == 0)
        s = find(sc, sha);
    if (s == NULL && c->argvlen[1] == RD_SHA1_HEX) {
        static const char none[RD_SHA1_HEX + 1] = "0000000000000000000000000000000000000000";
        const char *argv0[2] = {c->argv[0], none};
        size_t len0[2] = {c->argvlen[0], RD_SHA1_HEX};
        return put_with_ts(out, c, 2, argv0, len0, 0, 0, 0);
    }
    if (s == NULL || !numkeys_ok(c))
        return 0;
    set_swap(swap, s);
    if (mode == BE_SCRIPT_READ)
        return put_script_cmd(out, "EVAL_RO", NULL, sc->pre_eval, sc->pre_eval_len, s->body, s->len,
                              c, 2, 1, time_ms, seed);
    const char *argv0[2] = {"EVALSHA", s->sha_w};
    size_t len0[2] = {7, RD_SHA1_HEX};
    return put_with_ts(out, c, 2, argv0, len0, 1, time_ms, seed);
}

/* SCRIPT LOAD body: Redis caches the wrapped body and answers its sha, swapped for the
 * client's. */
static int put_script_load(struct be_scripts *sc, const struct be_cmd *c, struct rd_buf *out,
                           struct be_script_swap *swap)
{
    const char *body = c->argv[2];
    size_t len = c->argvlen[2];
    if (wrap_pos(body, len) < 0)
        return 0;
    char sha[RD_SHA1_HEX];
    rd_sha1_hex(body, len, sha);
    struct script *s = add(sc, sha, body, len, 1);
    if (s == NULL)
        return -1;
    set_swap(swap, s);
    return put_script_cmd(out, "SCRIPT", "LOAD", sc->pre_eval, sc->pre_eval_len, body, len, c, 3, 0,
                          0, 0);
}

int be_scripts_cmd(struct be_scripts *sc, enum be_script_mode mode, const struct be_cmd *c,
                   uint64_t time_ms, uint64_t seed, struct rd_buf *out, struct be_script_swap *swap)
{
    swap->from[0] = '\0';
    /* Every command of every entry passes here: most leave at the first letter. */
    char first = c->argc > 0 && c->argvlen[0] > 0 ? (char)(c->argv[0][0] | 0x20) : 0;
    if (first != 'e' && first != 'f' && first != 's')
        return 0;
    long long sd = mode == BE_SCRIPT_APPLY ? (long long)(seed & 0x7fffffff) : -1;
    int apply = mode == BE_SCRIPT_APPLY;
    if (c->argc >= 3 && (is(c, 0, "eval") || is(c, 0, "eval_ro")) && apply == is(c, 0, "eval"))
        return put_eval(sc, mode, c, time_ms, sd, out, swap);
    if (c->argc >= 3 && (is(c, 0, "evalsha") || is(c, 0, "evalsha_ro")) &&
        apply == is(c, 0, "evalsha"))
        return put_evalsha(sc, mode, c, time_ms, sd, out, swap);
    if (c->argc >= 3 && (is(c, 0, "fcall") || is(c, 0, "fcall_ro")) && apply == is(c, 0, "fcall"))
        return numkeys_ok(c) ? put_with_ts(out, c, 0, NULL, NULL, 1, time_ms, sd) : 0;
    if (!apply)
        return 0;
    if (c->argc == 3 && is(c, 0, "script") && is(c, 1, "load"))
        return put_script_load(sc, c, out, swap);
    if (c->argc >= 2 && c->argc <= 3 && is(c, 0, "script") && is(c, 1, "flush")) {
        clear(sc);
        sc->flushed = 1;
        sc->rewrite_all = 0;
        return 0;
    }
    if (c->argc >= 3 && c->argc <= 4 && is(c, 0, "function") && is(c, 1, "load"))
        return put_function_load(sc, c, out);
    if (is(c, 0, "flushall"))
        sc->rewrite_all = 1;
    return 0;
}

/* Every script of the registry, through fn; stops when fn returns nonzero. */
static void each(struct be_scripts *sc, void (*fn)(struct script *s, void *ctx), void *ctx)
{
    for (size_t i = 0; i < sc->map.cap; i++) {
        struct script *s = sc->map.slots[i].key ? sc->map.slots[i].val : NULL;
        for (; s != NULL; s = s->next)
            fn(s, ctx);
    }
}

static void mark(struct script *s, void *ctx)
{
    (void)ctx;
    s->pending = 1;
}

static void put_pending(struct script *s, void *ctx)
{
    if (!s->pending)
        return;
    s->pending = 0;
    rd_resp_bulk(ctx, s->sha, RD_SHA1_HEX);
    rd_resp_bulk(ctx, s->body, s->len);
}

void be_scripts_rewrite_all(struct be_scripts *sc)
{
    sc->rewrite_all = 1;
    sc->reload = 1;
}

struct preload {
    struct be_scripts *sc;
    struct rd_buf *out;
    int (*sent)(void *ctx);
    void *ctx;
    int rc;
};

static void preload_one(struct script *s, void *ctx)
{
    struct preload *pl = ctx;
    if (pl->rc != 0)
        return;
    long pos = wrap_pos(s->body, s->len);
    int rc =
        rd_resp_array_len(pl->out, 3) || rd_resp_bulk(pl->out, "SCRIPT", 6) ||
        rd_resp_bulk(pl->out, "LOAD", 4) ||
        bulk_wrapped(pl->out, pl->sc->pre_eval, pl->sc->pre_eval_len, s->body, s->len, (size_t)pos);
    pl->rc = rc ? -1 : pl->sent(pl->ctx);
}

int be_scripts_preload(struct be_scripts *sc, struct rd_buf *out, int (*sent)(void *ctx), void *ctx)
{
    if (!sc->reload)
        return 0;
    struct preload pl = {sc, out, sent, ctx, 0};
    each(sc, preload_one, &pl);
    if (pl.rc == 0)
        sc->reload = 0;
    return pl.rc;
}

int be_scripts_persist_next(struct be_scripts *sc, struct rd_buf *out)
{
    if (sc->flushed) {
        sc->flushed = 0;
        rd_resp_array_len(out, 2);
        rd_resp_bulk(out, "DEL", 3);
        rd_resp_bulk(out, BE_SCRIPTS_KEY, strlen(BE_SCRIPTS_KEY));
        return 1;
    }
    if (sc->rewrite_all) {
        sc->rewrite_all = 0;
        each(sc, mark, NULL);
        sc->npending = sc->count;
    }
    if (sc->npending == 0)
        return 0;
    rd_resp_array_len(out, 2 + 2 * (long long)sc->npending);
    rd_resp_bulk(out, "HSET", 4);
    rd_resp_bulk(out, BE_SCRIPTS_KEY, strlen(BE_SCRIPTS_KEY));
    each(sc, put_pending, out);
    sc->npending = 0;
    return 1;
}

void be_scripts_swap(const struct be_script_swap *swap, char *p, size_t n)
{
    if (swap->from[0] == '\0')
        return;
    char *end = p + n;
    while ((size_t)(end - p) >= RD_SHA1_HEX) {
        char *hit = memmem(p, (size_t)(end - p), swap->from, RD_SHA1_HEX);
        if (hit == NULL)
            break;
        memcpy(hit, swap->to, RD_SHA1_HEX);
        p = hit + RD_SHA1_HEX;
    }
}

/* One library_code string: the function prelude after its first line goes. */
static void strip_code(redisReply *r, const char *pre, size_t plen)
{
    if (r->type != REDIS_REPLY_STRING)
        return;
    long pos = wrap_pos(r->str, r->len);
    if (pos <= 0 || r->len - (size_t)pos < plen || memcmp(r->str + pos, pre, plen) != 0)
        return;
    memmove(r->str + pos, r->str + pos + plen, r->len - (size_t)pos - plen + 1);
    r->len -= plen;
}

void be_scripts_strip_reply(const struct be_scripts *sc, struct redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *lib = r->element[i];
        if (lib->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t k = 0; k + 1 < lib->elements; k += 2) {
            const redisReply *name = lib->element[k];
            if (name->type == REDIS_REPLY_STRING && name->len == 12 &&
                memcmp(name->str, "library_code", 12) == 0)
                strip_code(lib->element[k + 1], sc->pre_fn, sc->pre_fn_len);
        }
    }
}

int be_scripts_unwrapped(const struct be_scripts *sc, const struct redisReply *r, char *names,
                         size_t len)
{
    int n = 0;
    size_t off = 0;
    names[0] = '\0';
    for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *lib = r->element[i], *name = NULL, *code = NULL;
        for (size_t k = 0; lib->type == REDIS_REPLY_ARRAY && k + 1 < lib->elements; k += 2) {
            const redisReply *key = lib->element[k];
            if (key->type != REDIS_REPLY_STRING)
                continue;
            if (!strcmp(key->str, "library_name"))
                name = lib->element[k + 1];
            else if (!strcmp(key->str, "library_code"))
                code = lib->element[k + 1];
        }
        if (name == NULL || code == NULL || name->type != REDIS_REPLY_STRING ||
            code->type != REDIS_REPLY_STRING)
            continue;
        long pos = wrap_pos(code->str, code->len);
        if (pos > 0 && code->len - (size_t)pos >= sc->pre_fn_len &&
            memcmp(code->str + pos, sc->pre_fn, sc->pre_fn_len) == 0)
            continue;
        int w = snprintf(names + off, len - off, "%s%s", n ? ", " : "", name->str);
        if (w > 0 && off + (size_t)w < len)
            off += (size_t)w;
        n++;
    }
    return n;
}

int be_scripts_exists_reply(const struct be_scripts *sc, int argc, const char *const *argv,
                            const size_t *argvlen, struct rd_buf *out)
{
    int rc = rd_resp_array_len(out, argc - 2);
    for (int i = 2; i < argc; i++)
        rc = rc || rd_resp_int(out, be_scripts_known(sc, argv[i], argvlen[i]));
    return rc ? -1 : 0;
}

/* ---- FUNCTION RESTORE: only libraries that carry the prelude ----
 *
 * A FUNCTION DUMP payload (Redis 7.0, functions.c) is, per library, the byte 245 and the code
 * as an RDB string, then 2 bytes of RDB version and 8 of CRC64. A string is a length and raw
 * bytes, an integer, or LZF-compressed. Only what Redis writes is decoded; anything else is
 * left for Redis to refuse, the same way on every replica. */

/* An RDB length at *p (rdb.c rdbLoadLenByRef); *enc set for the special encodings. -1: short. */
static int rdb_len(const uint8_t **p, const uint8_t *end, uint64_t *len, int *enc)
{
    if (*p >= end)
        return -1;
    uint8_t b = *(*p)++;
    *enc = 0;
    switch (b >> 6) {
    case 0:
        *len = b & 0x3f;
        return 0;
    case 1:
        if (*p >= end)
            return -1;
        *len = (uint64_t)(b & 0x3f) << 8 | *(*p)++;
        return 0;
    case 3:
        *enc = 1;
        *len = b & 0x3f;
        return 0;
    }
    size_t n = b == 0x80 ? 4 : b == 0x81 ? 8 : 0;
    if (n == 0 || (size_t)(end - *p) < n)
        return -1;
    *len = 0;
    for (size_t i = 0; i < n; i++)
        *len = *len << 8 | *(*p)++;
    return 0;
}

/* LZF (the format of liblzf's lzf_d.c): a control byte below 32 starts a run of that many + 1
 * literal bytes; otherwise its top 3 bits (7: plus the next byte) + 2 bytes are copied from
 * 1 + its low 5 bits << 8 + the next byte back in the output. 0, or -1 when the input is not
 * exactly out_len bytes of that. */
static int lzf_decode(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    const uint8_t *end = in + in_len;
    size_t o = 0;
    while (in < end) {
        unsigned ctrl = *in++;
        if (ctrl < 32) {
            size_t run = ctrl + 1;
            if ((size_t)(end - in) < run || out_len - o < run)
                return -1;
            memcpy(out + o, in, run);
            in += run;
            o += run;
            continue;
        }
        size_t run = ctrl >> 5;
        if (run == 7) {
            if (in >= end)
                return -1;
            run += *in++;
        }
        run += 2;
        if (in >= end)
            return -1;
        size_t back = ((size_t)(ctrl & 0x1f) << 8) + *in++ + 1;
        if (back > o || out_len - o < run)
            return -1;
        for (size_t i = 0; i < run; i++, o++)
            out[o] = out[o - back];
    }
    return o == out_len ? 0 : -1;
}

/* The library code at *p, malloc'd into *code (NULL for an integer-encoded string, which is no
 * library). 0, or -1 when it cannot be read. */
static int rdb_string(const uint8_t **p, const uint8_t *end, char **code, size_t *len)
{
    uint64_t n;
    int enc;
    *code = NULL;
    if (rdb_len(p, end, &n, &enc) != 0)
        return -1;
    if (enc && n <= 2) { /* an integer: 1, 2 or 4 bytes */
        size_t k = (size_t)1 << n;
        if ((size_t)(end - *p) < k)
            return -1;
        *p += k;
        *len = 0;
        return 0;
    }
    uint64_t clen = n, ulen = n;
    if (enc && (n != 3 || rdb_len(p, end, &clen, &enc) != 0 || enc ||
                rdb_len(p, end, &ulen, &enc) != 0 || enc))
        return -1;
    if (clen > (uint64_t)(end - *p) || ulen > ((uint64_t)1 << 32) ||
        (*code = malloc(ulen + 1)) == NULL)
        return -1;
    int rc = 0;
    if (n == 3 && clen != ulen)
        rc = lzf_decode(*p, clen, (uint8_t *)*code, ulen);
    else if (clen == ulen)
        memcpy(*code, *p, ulen);
    else
        rc = -1;
    *p += clen;
    *len = ulen;
    return rc;
}

int be_scripts_restore_ok(const struct be_scripts *sc, const void *payload, size_t len, char *why,
                          size_t whylen)
{
    const uint8_t *p = payload, *end = p + (len >= 10 ? len - 10 : 0);
    int ok = 1;
    while (ok && p < end) {
        uint8_t type = *p++;
        if (type == 246) { /* the format of 7.0's release candidates: never through redraft */
            snprintf(why, whylen, "a library in the format of Redis 7.0's release candidates");
            return 0;
        }
        char *code = NULL;
        size_t n;
        if (type != 245 || rdb_string(&p, end, &code, &n) != 0) {
            free(code);
            return 1; /* not what Redis dumps: Redis refuses it */
        }
        long pos = code != NULL ? wrap_pos(code, n) : -1;
        if (pos > 0 && (n - (size_t)pos < sc->pre_fn_len ||
                        memcmp(code + pos, sc->pre_fn, sc->pre_fn_len) != 0)) {
            const char *nl = memchr(code, '\n', n);
            snprintf(why, whylen, "library '%.*s'", (int)(nl - code > 80 ? 80 : nl - code), code);
            ok = 0;
        }
        free(code);
    }
    return ok;
}
