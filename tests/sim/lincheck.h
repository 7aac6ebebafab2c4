/* lincheck.h: a linearizability checker for one register (one key of the simulated store).
 *
 * The history of one key is a set of operations with invocation and completion times. An
 * operation that timed out (done == 0) may have taken effect at any time after its invocation,
 * or never, and its result is unknown. The checker searches for a sequential order consistent
 * with real time and with the register's rules (Wing & Gong's search, with Lowe's memo of
 * visited {linearized set, value} states). Histories are per key, so the search stays small
 * (P-compositionality: a history is linearizable iff each key's sub-history is).
 */
#ifndef REDRAFT_SIM_LINCHECK_H
#define REDRAFT_SIM_LINCHECK_H

#include <stddef.h>
#include <stdint.h>

enum lin_op_type { LIN_READ = 0, LIN_SET, LIN_INC, LIN_CAS };

struct lin_op {
    int type;
    int64_t a, b;      /* SET a; CAS a -> b */
    uint64_t invoke;   /* time the client sent it */
    uint64_t complete; /* time the client got the answer; UINT64_MAX if it timed out */
    int64_t result;    /* READ: value; INC: new value; CAS: 1 swapped / 0 not */
    int done;          /* 0: timed out, outcome unknown */
};

enum { LIN_OK = 0, LIN_VIOLATION = 1, LIN_INCONCLUSIVE = 2 };

/* Checks ops (reordered in place by invocation time) against a register starting at 0.
 * steps_max bounds the search. On violation, why gets a sentence. */
int lin_check(struct lin_op *ops, size_t n, uint64_t steps_max, char *why, size_t why_len);

#endif
