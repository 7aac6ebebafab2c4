/* keys.c: which keys a command names (see keys.h). */
#include "proxy/keys.h"

#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "proxy/cmdtable.h"

static int is_word(const char *arg, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(arg, word, len) == 0;
}

static void span_db(struct px_keys_span *span, int64_t db)
{
    if (span->scope == PX_KEYS_EVERY)
        return;
    for (int i = 0; i < span->ndbs; i++)
        if (span->dbs[i] == db)
            return;
    if (span->ndbs == 2) {
        span->scope = PX_KEYS_EVERY;
        return;
    }
    span->dbs[span->ndbs++] = db;
    span->scope = PX_KEYS_DBS;
}

/* argv[at] as a number in [min, max]; -1 when it is not. */
static int arg_num(int argc, const char *const *argv, const size_t *argvlen, int at, long long min,
                   long long max, long long *out)
{
    if (at >= argc || rd_parse_ll(argv[at], argvlen[at], out) != 0 || *out < min || *out > max)
        return -1;
    return 0;
}

/* numkeys at argv[at], the keys right after it. 0, or -1 when numkeys is not usable. */
static int numkeys_form(int argc, const char *const *argv, const size_t *argvlen, int at,
                        int64_t db, px_key_fn fn, void *ctx)
{
    long long n;
    if (arg_num(argc, argv, argvlen, at, 0, argc, &n) != 0 || at + 1 + n > argc)
        return -1;
    for (long long i = 0; i < n; i++)
        fn(ctx, db, argv[at + 1 + i], argvlen[at + 1 + i]);
    return 0;
}

/* The argument after the keyword (STORE, STOREDIST) wherever it appears from argv[from] on. */
static void keyword_keys(int argc, const char *const *argv, const size_t *argvlen, int from,
                         const char *const *words, int64_t db, px_key_fn fn, void *ctx)
{
    for (int i = from; i + 1 < argc; i++)
        for (const char *const *w = words; *w != NULL; w++)
            if (is_word(argv[i], argvlen[i], *w)) {
                fn(ctx, db, argv[i + 1], argvlen[i + 1]);
                i++;
                break;
            }
}

/* XREAD/XREADGROUP: ... STREAMS key [key ...] id [id ...]. */
static int streams_form(int argc, const char *const *argv, const size_t *argvlen, int64_t db,
                        px_key_fn fn, void *ctx)
{
    for (int i = 1; i < argc; i++) {
        if (!is_word(argv[i], argvlen[i], "streams"))
            continue;
        int rest = argc - i - 1;
        if (rest <= 0 || rest % 2 != 0)
            return -1;
        for (int k = 0; k < rest / 2; k++)
            fn(ctx, db, argv[i + 1 + k], argvlen[i + 1 + k]);
        return 0;
    }
    return -1;
}

static void fixed_keys(const struct px_cmddef *d, int argc, const char *const *argv,
                       const size_t *argvlen, int64_t db, px_key_fn fn, void *ctx)
{
    if (d->first_key <= 0 || d->key_step <= 0)
        return;
    int last = d->last_key < 0 ? argc + d->last_key : d->last_key;
    for (int i = d->first_key; i <= last && i < argc; i += d->key_step)
        fn(ctx, db, argv[i], argvlen[i]);
}

void px_cmd_keys(const struct px_cmddef *d, int argc, const char *const *argv,
                 const size_t *argvlen, int64_t db, px_key_fn fn, void *ctx,
                 struct px_keys_span *span)
{
    static const char *const store_words[] = {"store", NULL};
    static const char *const geo_words[] = {"store", "storedist", NULL};
    const char *n = d->name;
    long long a, b;

    memset(span, 0, sizeof(*span));
    span->scope = PX_KEYS_LISTED;

    if (!strcmp(n, "flushall") || !strcmp(n, "eval") || !strcmp(n, "evalsha") ||
        !strcmp(n, "eval_ro") || !strcmp(n, "evalsha_ro") || !strcmp(n, "fcall") ||
        !strcmp(n, "fcall_ro")) {
        span->scope = PX_KEYS_EVERY;
    } else if (!strcmp(n, "flushdb")) {
        span_db(span, db);
    } else if (!strcmp(n, "swapdb")) {
        if (arg_num(argc, argv, argvlen, 1, 0, INT32_MAX, &a) != 0 ||
            arg_num(argc, argv, argvlen, 2, 0, INT32_MAX, &b) != 0) {
            span->scope = PX_KEYS_EVERY;
            return;
        }
        span_db(span, a);
        span_db(span, b);
    } else if (!strcmp(n, "move")) {
        fixed_keys(d, argc, argv, argvlen, db, fn, ctx);
        if (arg_num(argc, argv, argvlen, 2, 0, INT32_MAX, &a) != 0)
            span->scope = PX_KEYS_EVERY;
        else
            fn(ctx, a, argv[1], argvlen[1]);
    } else if (!strcmp(n, "copy")) {
        int64_t to = db;
        for (int i = 3; i + 1 < argc; i++)
            if (is_word(argv[i], argvlen[i], "db")) {
                if (arg_num(argc, argv, argvlen, i + 1, 0, INT32_MAX, &a) != 0) {
                    span->scope = PX_KEYS_EVERY;
                    return;
                }
                to = a;
                i++;
            }
        fn(ctx, db, argv[1], argvlen[1]);
        fn(ctx, to, argv[2], argvlen[2]);
    } else if (!strcmp(n, "sort")) {
        fn(ctx, db, argv[1], argvlen[1]);
        keyword_keys(argc, argv, argvlen, 2, store_words, db, fn, ctx);
    } else if (!strcmp(n, "sort_ro")) {
        fn(ctx, db, argv[1], argvlen[1]);
    } else if (!strcmp(n, "georadius") || !strcmp(n, "georadiusbymember")) {
        fn(ctx, db, argv[1], argvlen[1]);
        keyword_keys(argc, argv, argvlen, 2, geo_words, db, fn, ctx);
    } else if (!strcmp(n, "zunionstore") || !strcmp(n, "zinterstore") || !strcmp(n, "zdiffstore")) {
        fn(ctx, db, argv[1], argvlen[1]);
        if (numkeys_form(argc, argv, argvlen, 2, db, fn, ctx) != 0)
            span->scope = PX_KEYS_EVERY;
    } else if (!strcmp(n, "zunion") || !strcmp(n, "zinter") || !strcmp(n, "zdiff") ||
               !strcmp(n, "zintercard") || !strcmp(n, "sintercard") || !strcmp(n, "lmpop") ||
               !strcmp(n, "zmpop")) {
        if (numkeys_form(argc, argv, argvlen, 1, db, fn, ctx) != 0)
            span->scope = PX_KEYS_EVERY;
    } else if (!strcmp(n, "blmpop") || !strcmp(n, "bzmpop")) {
        if (numkeys_form(argc, argv, argvlen, 2, db, fn, ctx) != 0)
            span->scope = PX_KEYS_EVERY;
    } else if (!strcmp(n, "xread") || !strcmp(n, "xreadgroup")) {
        if (streams_form(argc, argv, argvlen, db, fn, ctx) != 0)
            span->scope = PX_KEYS_EVERY;
    } else if (d->flags & PX_CF_MOVABLEKEYS) {
        span->scope = PX_KEYS_EVERY; /* keys redraft cannot find: assume the worst */
    } else {
        fixed_keys(d, argc, argv, argvlen, db, fn, ctx);
    }
}
