/* stats.c: INFO commandstats, counted by redraft for the commands its clients send.
 *
 * Redis's own commandstats describe what reached it: redraft's batched MULTI/MSET/EXEC on the
 * apply link and its reads, never what the clients asked for (and on a follower, nothing of the
 * writes its clients made). So INFO's "# Commandstats" section is replaced by these counters, in
 * Redis's format: calls, rejected_calls (refused before running), failed_calls (answered with
 * an error), and usec: the time from the command's start to its reply, which for a write
 * includes its trip through the log (Redis counts only the execution). A transaction counts
 * MULTI, EXEC and each queued command once; commands a script runs inside Redis are not seen.
 * CONFIG RESETSTAT zeroes them (and Redis's other statistics). LATENCY HISTOGRAM answers from
 * the same counts, with power-of-two microsecond buckets as Redis's.
 */
#include "proxy/stats.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/cmdtable.h"

void px_stats_init(struct px_stats *st)
{
    memset(st, 0, sizeof(*st));
    rd_map_init(&st->by_def);
}

void px_stats_free(struct px_stats *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->all[i]);
    free(st->all);
    rd_map_free(&st->by_def);
    memset(st, 0, sizeof(*st));
}

void px_stats_count(struct px_stats *st, const struct px_cmddef *d, uint64_t usec, int failed,
                    int rejected)
{
    if (d == NULL)
        return;
    struct px_cmdstat *cs = rd_map_get(&st->by_def, (uint64_t)(uintptr_t)d);
    if (cs == NULL) {
        if (st->n == st->cap) {
            size_t cap = st->cap ? st->cap * 2 : 64;
            struct px_cmdstat **all = realloc(st->all, cap * sizeof(*all));
            if (all == NULL)
                return;
            st->all = all;
            st->cap = cap;
        }
        cs = calloc(1, sizeof(*cs));
        if (cs == NULL)
            return;
        if (rd_map_put(&st->by_def, (uint64_t)(uintptr_t)d, cs) != 0) {
            free(cs);
            return;
        }
        cs->def = d;
        st->all[st->n++] = cs;
    }
    if (rejected) {
        cs->rejected++;
        return;
    }
    cs->calls++;
    cs->usec += usec;
    int k = 0;
    while (k < PX_STATS_BUCKETS - 1 && usec >= ((uint64_t)1 << k))
        k++;
    cs->hist[k]++;
    if (failed)
        cs->failed++;
}

void px_stats_reset(struct px_stats *st)
{
    px_stats_free(st);
    px_stats_init(st);
}

static int by_name(const void *a, const void *b)
{
    const struct px_cmdstat *x = *(const struct px_cmdstat *const *)a;
    const struct px_cmdstat *y = *(const struct px_cmdstat *const *)b;
    return strcmp(x->def->name, y->def->name);
}

/* The counts by name, in name order: a command table replaced (a new Redis behind redraft)
 * gives a command a second entry, summed here into one. Returns how many (*out is the caller's
 * to free), or -1 when out of memory. */
static long merged(const struct px_stats *st, struct px_cmdstat **out)
{
    *out = NULL;
    if (st->n == 0)
        return 0;
    struct px_cmdstat **sorted = malloc(st->n * sizeof(*sorted));
    struct px_cmdstat *m = malloc(st->n * sizeof(*m));
    if (sorted == NULL || m == NULL) {
        free(sorted);
        free(m);
        return -1;
    }
    memcpy(sorted, st->all, st->n * sizeof(*sorted));
    qsort(sorted, st->n, sizeof(*sorted), by_name);
    size_t n = 0;
    for (size_t i = 0; i < st->n; i++) {
        const struct px_cmdstat *cs = sorted[i];
        if (n == 0 || strcmp(m[n - 1].def->name, cs->def->name) != 0) {
            m[n++] = *cs;
            continue;
        }
        struct px_cmdstat *sum = &m[n - 1];
        sum->calls += cs->calls;
        sum->usec += cs->usec;
        sum->rejected += cs->rejected;
        sum->failed += cs->failed;
        for (int k = 0; k < PX_STATS_BUCKETS; k++)
            sum->hist[k] += cs->hist[k];
    }
    free(sorted);
    *out = m;
    return (long)n;
}

void px_stats_info(const struct px_stats *st, struct rd_buf *out)
{
    struct px_cmdstat *m;
    long n = merged(st, &m);
    for (long i = 0; i < n; i++)
        rd_buf_printf(out,
                      "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,"
                      "failed_calls=%llu\r\n",
                      m[i].def->name, (unsigned long long)m[i].calls, (unsigned long long)m[i].usec,
                      m[i].calls ? (double)m[i].usec / (double)m[i].calls : 0.0,
                      (unsigned long long)m[i].rejected, (unsigned long long)m[i].failed);
    free(m);
}

static void histogram_entry(const struct px_cmdstat *cs, struct rd_buf *out)
{
    rd_resp_bulk(out, cs->def->name, strlen(cs->def->name));
    rd_resp_array_len(out, 4);
    rd_resp_bulk(out, "calls", 5);
    rd_resp_int(out, (long long)cs->calls);
    rd_resp_bulk(out, "histogram_usec", 14);
    int used = 0;
    for (int k = 0; k < PX_STATS_BUCKETS; k++)
        used += cs->hist[k] > 0;
    rd_resp_array_len(out, 2 * used);
    uint64_t cum = 0;
    for (int k = 0; k < PX_STATS_BUCKETS; k++) {
        if (cs->hist[k] == 0)
            continue;
        cum += cs->hist[k];
        rd_resp_int(out, (long long)((uint64_t)1 << k));
        rd_resp_int(out, (long long)cum);
    }
}

/* Names to report: every counted one (no arguments), or those asked for, a container's
 * subcommands included. */
static int wanted(const char *name, int argc, char *const *argv)
{
    if (argc <= 2)
        return 1;
    for (int i = 2; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (strlen(name) == n && strncasecmp(name, argv[i], n) == 0)
            return 1;
        if (strncasecmp(name, argv[i], n) == 0 && name[n] == '|')
            return 1; /* a subcommand of the container asked for */
    }
    return 0;
}

void px_stats_latency_histogram(const struct px_stats *st, int argc, char *const *argv,
                                struct rd_buf *out)
{
    struct px_cmdstat *m;
    long n = merged(st, &m);
    if (n < 0) {
        rd_resp_simple(out, '-', "ERR out of memory");
        return;
    }
    long shown = 0;
    for (long i = 0; i < n; i++)
        shown += m[i].calls > 0 && wanted(m[i].def->name, argc, argv);
    rd_resp_array_len(out, 2 * shown);
    for (long i = 0; i < n; i++)
        if (m[i].calls > 0 && wanted(m[i].def->name, argc, argv))
            histogram_entry(&m[i], out);
    free(m);
}
