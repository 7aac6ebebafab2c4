/* build/lincheck: checks a history file for linearizability, key by key.
 *
 *   lincheck [--max-mem-mb N] [--max-steps N] [--quiet] history.txt|-
 *
 * The format is in history.h and tests/lincheck/README.md. Prints one line per key (ok,
 * VIOLATION or unknown); for a violation, the first operation that cannot be linearized and
 * the longest partial linearization found. Exit status: 0 every key linearizable, 1 some key
 * is not, 2 some key could not be decided (memory cap or step bound), 3 bad input or usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/lincheck/history.h"

#define MEM_MB_DEFAULT 2048

struct opts {
    size_t mem_mb;
    uint64_t steps_max;
    int quiet;
    const char *path;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: lincheck [--max-mem-mb N] [--max-steps N] [--quiet] history.txt|-\n"
            "  --max-mem-mb N  memory one key's search may hold (default %d); past it\n"
            "                  the key is reported unknown\n"
            "  --max-steps N   search nodes per key (default: no bound); past it, unknown\n"
            "  --quiet         print only keys that are not ok, and the summary\n"
            "exit: 0 linearizable, 1 violation, 2 unknown, 3 bad input\n",
            MEM_MB_DEFAULT);
}

static int parse_num(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.mem_mb = MEM_MB_DEFAULT};
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        if (strcmp(argv[i], "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(argv[i], "--max-mem-mb") == 0) {
            if (parse_num(i + 1 < argc ? argv[++i] : NULL, &v) != 0 || v == 0 || v > SIZE_MAX >> 20)
                return -1;
            o->mem_mb = (size_t)v;
        } else if (strcmp(argv[i], "--max-steps") == 0) {
            if (parse_num(i + 1 < argc ? argv[++i] : NULL, &v) != 0)
                return -1;
            o->steps_max = v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return -1;
        } else if (o->path) {
            return -1;
        } else {
            o->path = argv[i];
        }
    }
    return o->path ? 0 : -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_state(const struct lin_result *r)
{
    char buf[300];
    if (r->is_list)
        lin_list_format(r->state_list, r->state_list_len, buf, sizeof(buf));
    else if (r->state == LIN_NIL)
        snprintf(buf, sizeof(buf), "nil");
    else
        snprintf(buf, sizeof(buf), "%" PRId64, r->state);
    printf("%s", buf);
}

static void print_violation(const struct lin_key *k, const struct lin_result *r)
{
    char buf[400];
    lin_op_format(&k->ops[r->stuck], buf, sizeof(buf));
    printf("  first operation that cannot be linearized: %s\n", buf);
    printf("  longest partial linearization (%zu ops), after which the %s is ", r->order_len,
           lin_model_name(k->model));
    print_state(r);
    printf(":\n");
    for (size_t i = 0; i < r->order_len; i++) {
        lin_op_format(&k->ops[r->order[i]], buf, sizeof(buf));
        printf("    %zu. %s\n", i + 1, buf);
    }
}

/* Checks key i, prints its lines, returns its verdict. */
static int check_key(const struct lin_history *h, size_t i, const struct opts *o)
{
    const struct lin_key *k = &h->keys[i];
    struct lin_config cfg = {.steps_max = o->steps_max, .mem_bytes_max = o->mem_mb << 20};
    struct lin_result r;
    double t0 = now_s();
    int v = lin_history_check(h, i, &cfg, &r);
    double dt = now_s() - t0;
    if (v == LIN_OK && o->quiet) {
        lin_result_free(&r);
        return v;
    }
    const char *word = v == LIN_OK          ? "ok"
                       : v == LIN_VIOLATION ? "VIOLATION"
                       : v == LIN_UNKNOWN   ? "unknown"
                                            : "bad input";
    printf("key %s: %s (%zu ops, %s; %zu of unknown outcome, %zu failed; %.2f s)", k->name, word,
           k->n, lin_model_name(k->model), k->n_info, k->n_failed, dt);
    if (v == LIN_UNKNOWN || v == LIN_BADINPUT)
        printf(": %s", r.why);
    printf("\n");
    if (v == LIN_VIOLATION && !o->quiet)
        print_violation(k, &r);
    lin_result_free(&r);
    return v;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0) {
        usage();
        return LIN_BADINPUT;
    }
    FILE *f = strcmp(o.path, "-") == 0 ? stdin : fopen(o.path, "r");
    if (!f) {
        fprintf(stderr, "lincheck: cannot open %s\n", o.path);
        return LIN_BADINPUT;
    }
    struct lin_history h;
    char err[300];
    int rc = lin_history_read(&h, f, err, sizeof(err));
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        fprintf(stderr, "lincheck: %s: %s\n", o.path, err);
        printf("bad input: %s\n", err);
        return LIN_BADINPUT;
    }
    size_t count[4] = {0};
    double t0 = now_s();
    for (size_t i = 0; i < h.n_keys; i++)
        count[check_key(&h, i, &o)]++;
    printf("%zu keys: %zu ok, %zu not linearizable, %zu unknown, %zu bad (%.2f s)\n", h.n_keys,
           count[LIN_OK], count[LIN_VIOLATION], count[LIN_UNKNOWN], count[LIN_BADINPUT],
           now_s() - t0);
    lin_history_free(&h);
    return count[LIN_BADINPUT]    ? LIN_BADINPUT
           : count[LIN_VIOLATION] ? LIN_VIOLATION
           : count[LIN_UNKNOWN]   ? LIN_UNKNOWN
                                  : LIN_OK;
}
