/* stats.h: INFO commandstats for redraft's clients (see stats.c). */
#ifndef REDRAFT_STATS_H
#define REDRAFT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/map.h"

struct px_cmddef;

#define PX_STATS_BUCKETS 40 /* latency buckets: < 1 us, < 2 us, < 4 us, ... (2^39 us) */

struct px_cmdstat {
    const struct px_cmddef *def;
    uint64_t calls, usec, rejected, failed;
    uint64_t hist[PX_STATS_BUCKETS]; /* calls by latency, bucket k: below 2^k microseconds */
};

struct px_stats {
    struct rd_map by_def; /* def pointer -> struct px_cmdstat */
    struct px_cmdstat **all;
    size_t n, cap;
};

void px_stats_init(struct px_stats *st);
void px_stats_free(struct px_stats *st);
/* One command of d answered: usec from its start to its reply; failed: it answered an error;
 * rejected: it was refused before it ran (NOAUTH, a wrong context). */
void px_stats_count(struct px_stats *st, const struct px_cmddef *d, uint64_t usec, int failed,
                    int rejected);
/* CONFIG RESETSTAT. */
void px_stats_reset(struct px_stats *st);
/* The lines of INFO's "# Commandstats" section (without its header), by command name. */
void px_stats_info(const struct px_stats *st, struct rd_buf *out);
/* LATENCY HISTOGRAM [command ...] as Redis 7.0 answers it in RESP2: per command with calls,
 * "calls" n "histogram_usec" [upper bound in us, calls up to it (cumulative), ...]. A container
 * name (CLIENT) stands for its subcommands; unknown names are left out. */
void px_stats_latency_histogram(const struct px_stats *st, int argc, char *const *argv,
                                struct rd_buf *out);

#endif
