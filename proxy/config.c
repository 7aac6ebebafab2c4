#include "proxy/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/log.h"
#include "proxy/resp.h"

enum opt_type { OPT_STR, OPT_INT, OPT_MEM, OPT_LOGLEVEL, OPT_BOOL, OPT_CONSISTENCY, OPT_WORDS };

struct opt {
    const char *name;
    enum opt_type type;
    size_t off;
    size_t size; /* for strings: buffer size */
    long long min, max;
};

#define STR(n, f)                                                                                  \
    {                                                                                              \
        n, OPT_STR, offsetof(struct px_config, f), sizeof(((struct px_config *)0)->f), 0, 0        \
    }
#define INT(n, f, lo, hi)                                                                          \
    {                                                                                              \
        n, OPT_INT, offsetof(struct px_config, f), sizeof(((struct px_config *)0)->f), lo, hi      \
    }
#define MEM(n, f, lo, hi)                                                                          \
    {                                                                                              \
        n, OPT_MEM, offsetof(struct px_config, f), sizeof(((struct px_config *)0)->f), lo, hi      \
    }

static const struct opt opts[] = {
    STR("bind", bind),
    INT("port", port, 1, 65535),
    STR("redis", redis),
    STR("dir", dir),
    {"loglevel", OPT_LOGLEVEL, offsetof(struct px_config, loglevel), sizeof(int), 0, 0},
    STR("logfile", logfile),
    INT("maxclients", maxclients, 1, 1000000),
    STR("requirepass", requirepass),
    {"protected-mode", OPT_BOOL, offsetof(struct px_config, protected_mode), sizeof(int), 0, 0},
    STR("redis-password", redis_password),
    MEM("proto-max-bulk-len", proto_max_bulk_len, 1024 * 1024, 1LL << 40),
    MEM("client-query-buffer-limit", client_query_buffer_limit, 1024 * 1024, 1LL << 40),
    MEM("client-output-buffer-limit", client_output_buffer_limit, 1024 * 1024, 1LL << 40),
    INT("apply-batch-max", apply_batch_max, 1, 100000),
    INT("node-id", node_id, 0, (1LL << 53)),
    INT("cluster-port", cluster_port, 0, 65535),
    STR("cluster-secret", cluster_secret),
    {"cluster-init", OPT_BOOL, offsetof(struct px_config, cluster_init), sizeof(int), 0, 0},
    {"cluster-join", OPT_WORDS, offsetof(struct px_config, cluster_join),
     sizeof(((struct px_config *)0)->cluster_join), 0, 0},
    STR("cluster-announce", cluster_announce),
    {"consistency", OPT_CONSISTENCY, offsetof(struct px_config, consistency), sizeof(int), 0, 0},
    INT("election-timeout", election_timeout_ms, 100, 60000),
    INT("heartbeat-interval", heartbeat_ms, 10, 10000),
    INT("leader-wait-timeout", leader_wait_ms, 0, 600000),
    INT("write-timeout", write_timeout_ms, 100, 600000),
    INT("read-timeout", read_timeout_ms, 100, 600000),
    INT("snapshot-log-entries", snapshot_log_entries, 0, 1LL << 40),
    MEM("snapshot-log-bytes", snapshot_log_bytes, 0, 1LL << 50),
    MEM("snapshot-fetch-rate", snapshot_fetch_rate, 0, 1LL << 40),
};

const char *px_consistency_name(int level)
{
    switch (level) {
    case PX_CONSISTENCY_SESSION:
        return "session";
    case PX_CONSISTENCY_EVENTUAL:
        return "eventual";
    default:
        return "linearizable";
    }
}

int px_consistency_parse(const char *name)
{
    if (!strcasecmp(name, "linearizable"))
        return PX_CONSISTENCY_LINEARIZABLE;
    if (!strcasecmp(name, "session"))
        return PX_CONSISTENCY_SESSION;
    if (!strcasecmp(name, "eventual"))
        return PX_CONSISTENCY_EVENTUAL;
    return -1;
}

void px_config_init(struct px_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->bind, sizeof(c->bind), "127.0.0.1");
    c->port = 7379;
    snprintf(c->redis, sizeof(c->redis), "127.0.0.1:6379");
    snprintf(c->dir, sizeof(c->dir), "./redraft-data");
    c->loglevel = RD_LL_NOTICE;
    c->maxclients = 10000;
    c->protected_mode = 1;
    c->proto_max_bulk_len = 512LL * 1024 * 1024;
    c->client_query_buffer_limit = 1024LL * 1024 * 1024;
    c->client_output_buffer_limit = 256LL * 1024 * 1024;
    c->apply_batch_max = 1024;
    c->node_id = 0;
    c->consistency = PX_CONSISTENCY_LINEARIZABLE;
    c->election_timeout_ms = 1000;
    c->heartbeat_ms = 100;
    c->leader_wait_ms = 5000;
    c->write_timeout_ms = 10000;
    c->read_timeout_ms = 5000;
    c->snapshot_log_entries = 100000;
    c->snapshot_log_bytes = 256LL * 1024 * 1024;
}

/* "1gb", "64mb", "100k", "1024": Redis's memory units. */
static int parse_mem(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0)
        return -1;
    long long mul = 1;
    if (*end == '\0')
        mul = 1;
    else if (!strcasecmp(end, "k"))
        mul = 1000;
    else if (!strcasecmp(end, "kb"))
        mul = 1024;
    else if (!strcasecmp(end, "m"))
        mul = 1000 * 1000;
    else if (!strcasecmp(end, "mb"))
        mul = 1024 * 1024;
    else if (!strcasecmp(end, "g"))
        mul = 1000LL * 1000 * 1000;
    else if (!strcasecmp(end, "gb"))
        mul = 1024LL * 1024 * 1024;
    else
        return -1;
    if (v > LLONG_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

static int set_opt(struct px_config *c, const struct opt *o, const char *val, char *err,
                   size_t errlen)
{
    char *field = (char *)c + o->off;
    long long v;
    char *end;
    switch (o->type) {
    case OPT_STR:
    case OPT_WORDS:
        if (strlen(val) >= o->size) {
            snprintf(err, errlen, "value is too long (at most %zu bytes)", o->size - 1);
            return -1;
        }
        memcpy(field, val, strlen(val) + 1);
        return 0;
    case OPT_BOOL:
        if (!strcasecmp(val, "yes"))
            *(int *)field = 1;
        else if (!strcasecmp(val, "no"))
            *(int *)field = 0;
        else {
            snprintf(err, errlen, "argument must be 'yes' or 'no'");
            return -1;
        }
        return 0;
    case OPT_CONSISTENCY:
        v = px_consistency_parse(val);
        if (v < 0) {
            snprintf(err, errlen, "consistency must be linearizable, session or eventual");
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    case OPT_LOGLEVEL:
        v = rd_log_level_parse(val);
        if (v < 0) {
            snprintf(err, errlen, "loglevel must be one of debug, verbose, notice, warning");
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    case OPT_INT:
    case OPT_MEM:
        errno = 0;
        if (o->type == OPT_INT) {
            v = strtoll(val, &end, 10);
            if (errno != 0 || end == val || *end != '\0') {
                snprintf(err, errlen, "argument must be a number");
                return -1;
            }
        } else if (parse_mem(val, &v) != 0) {
            snprintf(err, errlen, "argument must be a memory value (e.g. 512mb)");
            return -1;
        }
        if (v < o->min || v > o->max) {
            snprintf(err, errlen, "argument must be between %lld and %lld", o->min, o->max);
            return -1;
        }
        if (o->size == sizeof(int))
            *(int *)field = (int)v;
        else
            *(long long *)field = v;
        return 0;
    }
    return -1;
}

/* Applies one "name value" line already split into words. */
static int apply_line(struct px_config *c, const struct px_cmd *w, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        if (strcasecmp(w->argv[0], opts[i].name) != 0)
            continue;
        if (opts[i].type == OPT_WORDS && w->argc >= 2) {
            char *field = (char *)c + opts[i].off;
            size_t off = 0;
            field[0] = '\0';
            for (int k = 1; k < w->argc; k++) {
                int n =
                    snprintf(field + off, opts[i].size - off, "%s%s", k > 1 ? " " : "", w->argv[k]);
                if (n < 0 || (size_t)n >= opts[i].size - off) {
                    snprintf(err, errlen, "value is too long");
                    return -1;
                }
                off += (size_t)n;
            }
            return 0;
        }
        if (w->argc != 2) {
            snprintf(err, errlen, "'%s' takes exactly one argument", opts[i].name);
            return -1;
        }
        return set_opt(c, &opts[i], w->argv[1], err, errlen);
    }
    snprintf(err, errlen, "unknown option '%s'", w->argv[0]);
    return -1;
}

static int config_error(char *err, size_t errlen, const char *where, int lineno, const char *line,
                        const char *why)
{
    snprintf(err, errlen, "*** FATAL CONFIG ERROR *** %s, line %d >>> '%s': %s", where, lineno,
             line, why);
    return -1;
}

static int load_text(struct px_config *c, const char *text, const char *where, char *err,
                     size_t errlen)
{
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        char line[4096];
        if (len >= sizeof(line))
            return config_error(err, errlen, where, lineno, "...", "line too long");
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl ? 1 : 0);
        char *s = line;
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        if (*s == '#' || *s == '\0')
            continue;
        struct px_cmd w;
        if (px_split_inline(s, strlen(s), &w) != 0)
            return config_error(err, errlen, where, lineno, s, "unbalanced quotes");
        char why[256];
        int rc = w.argc == 0 ? 0 : apply_line(c, &w, why, sizeof(why));
        px_cmd_free(&w);
        if (rc != 0)
            return config_error(err, errlen, where, lineno, s, why);
    }
    return 0;
}

static int load_file(struct px_config *c, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(err, errlen, "cannot open config file '%s': %s", path, strerror(errno));
        return -1;
    }
    struct rd_buf b;
    rd_buf_init(&b);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        if (rd_buf_append(&b, chunk, n) != 0) {
            rc = -1;
            break;
        }
    int read_err = ferror(fp) ? errno : 0;
    fclose(fp);
    if (read_err != 0)
        snprintf(err, errlen, "cannot read config file '%s': %s", path, strerror(read_err));
    else if (rc == 0 && rd_buf_append(&b, "", 1) == 0)
        rc = load_text(c, b.data, path, err, errlen);
    else
        snprintf(err, errlen, "out of memory reading '%s'", path);
    if (read_err != 0)
        rc = -1;
    rd_buf_free(&b);
    return rc;
}

int px_config_load(struct px_config *c, int argc, char **argv, char *err, size_t errlen)
{
    int i = 1;
    if (i < argc && strncmp(argv[i], "--", 2) != 0) {
        if (load_file(c, argv[i], err, errlen) != 0)
            return -1;
        i++;
    }
    /* Command-line options: "--name value"; each becomes a line of its own. */
    struct rd_buf b;
    rd_buf_init(&b);
    int rc = 0;
    for (; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            snprintf(err, errlen,
                     "*** FATAL CONFIG ERROR *** command line: expected --option, got '%s'",
                     argv[i]);
            rc = -1;
            break;
        }
        rd_buf_append_str(&b, argv[i] + 2);
        /* Values are quoted so that spaces and quotes in them survive the split. */
        for (; i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0; i++) {
            rd_buf_append_str(&b, " \"");
            for (const char *s = argv[i + 1]; *s; s++) {
                if (*s == '"' || *s == '\\') {
                    rd_buf_append(&b, "\\", 1);
                    rd_buf_append(&b, s, 1);
                } else if ((unsigned char)*s < ' ') {
                    /* control bytes (a newline above all) travel as \xHH escapes */
                    rd_buf_printf(&b, "\\x%02x", (unsigned char)*s);
                } else {
                    rd_buf_append(&b, s, 1);
                }
            }
            rd_buf_append(&b, "\"", 1);
        }
        rd_buf_append(&b, "\n", 1);
    }
    if (rc == 0 && b.len > 0 && rd_buf_append(&b, "", 1) == 0)
        rc = load_text(c, b.data, "command line", err, errlen);
    rd_buf_free(&b);
    return rc;
}
