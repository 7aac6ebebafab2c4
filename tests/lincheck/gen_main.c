/* build/lincheck-gen: prints a seeded test history (see gen.h) on stdout.
 *
 *   lincheck-gen [--seed N] [--ops N] [--procs N] [--keys N]
 *                [--model register|counter|list|mixed] [--info-pm N] [--fail-pm N]
 *                [--values N] [--latency-ns N] [--bug NAME] [--shuffle]
 *
 * Without --bug the history is linearizable; with one (stale-read, lost-write, dup-append,
 * double-incr, double-cas, unwritten-read) it is certainly not. Exit status 0, or 2 with a
 * sentence on stderr (bad options, or no certain place for the bug in this history).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lincheck/gen.h"
#include "tests/lincheck/history.h"

static int num(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    *out = strtoull(s, &end, 10);
    return *end || *out > max ? -1 : 0;
}

static int model_by_name(const char *s)
{
    static const char *const names[] = {"register", "counter", "list"};
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i;
    return s && strcmp(s, "mixed") == 0 ? LIN_GEN_MIXED : -2;
}

static int parse(int argc, char **argv, struct lin_gen_config *c)
{
    lin_gen_defaults(c);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long n = 0;
        int rc = 0;
        if (strcmp(o, "--shuffle") == 0) {
            c->shuffle = 1;
            continue;
        }
        i++;
        if (strcmp(o, "--seed") == 0)
            rc = num(v, UINT64_MAX, &n), c->seed = n;
        else if (strcmp(o, "--ops") == 0)
            rc = num(v, 100000000, &n), c->ops = (size_t)n;
        else if (strcmp(o, "--procs") == 0)
            rc = num(v, 10000, &n), c->procs = (unsigned)n;
        else if (strcmp(o, "--keys") == 0)
            rc = num(v, 1000000, &n), c->keys = (unsigned)n;
        else if (strcmp(o, "--info-pm") == 0)
            rc = num(v, 1000, &n), c->info_pm = (unsigned)n;
        else if (strcmp(o, "--fail-pm") == 0)
            rc = num(v, 1000, &n), c->fail_pm = (unsigned)n;
        else if (strcmp(o, "--values") == 0)
            rc = num(v, 1000000000, &n), c->values = (unsigned)n;
        else if (strcmp(o, "--latency-ns") == 0)
            rc = num(v, 1000000000000ULL, &n), c->latency_ns_max = n;
        else if (strcmp(o, "--model") == 0)
            rc = (c->model = model_by_name(v)) == -2 ? -1 : 0;
        else if (strcmp(o, "--bug") == 0)
            rc = (c->bug = v ? lin_gen_bug_by_name(v) : -1) < 0 ? -1 : 0;
        else
            rc = -1;
        if (rc != 0) {
            fprintf(stderr, "lincheck-gen: bad option %s %s\n", o, v ? v : "");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct lin_gen_config c;
    if (parse(argc, argv, &c) != 0) {
        fprintf(stderr, "usage: lincheck-gen [--seed N] [--ops N] [--procs N] [--keys N]\n"
                        "         [--model register|counter|list|mixed] [--info-pm N]\n"
                        "         [--fail-pm N] [--values N] [--latency-ns N] [--bug NAME]\n"
                        "         [--shuffle]\n"
                        "bugs: stale-read lost-write dup-append double-incr double-cas "
                        "unwritten-read\n");
        return 2;
    }
    char err[200];
    size_t len;
    char *text = lin_gen(&c, &len, err, sizeof(err));
    if (!text) {
        fprintf(stderr, "lincheck-gen: %s\n", err);
        return 2;
    }
    int rc = fwrite(text, 1, len, stdout) == len ? 0 : 2;
    free(text);
    return rc;
}
