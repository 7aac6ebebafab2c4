/* gen.h: makes test histories in the format of history.h, from a seed.
 *
 * Clients (processes) run operations against an object that is correct by construction: each
 * operation takes effect at one instant between its invocation and its completion, so the
 * history is linearizable. Some operations fail before taking effect (a fail line) and some time
 * out (an info line) and take effect later, possibly after the timeout, or never.
 *
 * A bug can be injected afterwards. Each one is placed only where it is certain to make the
 * history non-linearizable, with the reasoning next to its code in gen.c; if the history has no
 * such place, lin_gen says so and returns NULL.
 *
 * Used by build/lincheck-gen and the unit tests. libc only.
 */
#ifndef REDRAFT_LINCHECK_GEN_H
#define REDRAFT_LINCHECK_GEN_H

#include <stddef.h>
#include <stdint.h>

enum {
    LIN_BUG_NONE = 0,
    LIN_BUG_STALE_READ,     /* a read returns the initial value after a change completed */
    LIN_BUG_LOST_WRITE,     /* an acknowledged write, increment or append is not applied */
    LIN_BUG_DUP_APPEND,     /* an append is applied twice */
    LIN_BUG_DOUBLE_INCR,    /* an increment is applied twice */
    LIN_BUG_DOUBLE_CAS,     /* two cas succeed from the same old value */
    LIN_BUG_UNWRITTEN_READ, /* a read returns a value nobody wrote */
    LIN_BUG_COUNT
};

#define LIN_GEN_MIXED (-1) /* model: key i gets model i % 3 */

struct lin_gen_config {
    uint64_t seed;
    size_t ops;       /* operations to invoke, in all */
    unsigned procs;   /* concurrent clients (>= 1) */
    unsigned keys;    /* >= 1 */
    int model;        /* LIN_MODEL_* of history.h, or LIN_GEN_MIXED */
    unsigned info_pm; /* per mille of operations that time out */
    unsigned fail_pm; /* per mille that fail without effect */
    unsigned values;  /* register values drawn from [0, values); 0: every write a fresh one */
    uint64_t latency_ns_max; /* an operation takes 2 ns to this (a few take 10 times more) */
    int bug;                 /* LIN_BUG_* */
    int shuffle;             /* print the lines in a random order rather than by time */
};

/* Defaults: 1,000 ops, 5 processes, 1 key, register, 2% info, 2% fail, fresh values, 200 us. */
void lin_gen_defaults(struct lin_gen_config *c);

/* Returns the history text (malloc'ed, NUL-terminated, *len bytes), or NULL with a sentence in
 * err (out of memory, a bad config, or no certain place for the bug). */
char *lin_gen(const struct lin_gen_config *c, size_t *len, char *err, size_t err_len);

/* "stale-read", ...; and back (-1: unknown name). */
const char *lin_gen_bug_name(int bug);
int lin_gen_bug_by_name(const char *name);

#endif
