/* lincheck.h: a linearizability checker for the history of one key.
 *
 * A history is a set of operations, each with the time its client invoked it and the time the
 * answer came back. It is linearizable if the operations can be put in one sequence that keeps
 * real-time order (an operation that completed before another was invoked comes first) and in
 * which every result is what the key's sequential model would have answered. Histories are
 * checked one key at a time: a history is linearizable iff each key's sub-history is (the
 * locality of linearizability, Herlihy & Wing), so the caller splits by key.
 *
 * Models, chosen by the operations a key has:
 *   scalar (register and counter): READ (result: the value or LIN_NIL), WRITE a,
 *     CAS a -> b (done: result 1 swapped, 0 not swapped), INCR (result: the new value; a
 *     missing value counts as 0). The value before any operation is lin_config.initial.
 *   list: APPEND a, READLIST (result: the whole list, in order). The list starts empty.
 * A key with both scalar and list operations is bad input.
 *
 * An operation whose outcome is unknown (done == 0: a timeout, a lost connection) may have
 * taken effect at any point after its invocation, or never; its result is ignored. Reads of
 * unknown outcome say nothing and are dropped. Operations that definitely failed must not be
 * passed at all.
 *
 * The search is Wing & Gong's: extend a sequential prefix one operation at a time, backtrack
 * on a dead end, with Lowe's memo of visited (set of linearized operations, model state) pairs,
 * so no configuration is explored twice. The set is stored compactly: the completed operations
 * sorted by invocation are linearized up to a point, and beyond it only a window of operations
 * concurrent with the first one left can be; the key holds that point and the window's bits.
 * Other reductions, each of which keeps the answer exact, are described in lincheck.c.
 *
 * The search can be cut short by a step bound or a memory cap; the verdict is then LIN_UNKNOWN,
 * never LIN_OK.
 *
 * Ownership: lin_check borrows ops (and READLIST lists) for the call and does not change them.
 * It fills a lin_result that the caller releases with lin_result_free. libc only: the Raft
 * simulator links this file without anything else of the project.
 */
#ifndef REDRAFT_LINCHECK_H
#define REDRAFT_LINCHECK_H

#include <stddef.h>
#include <stdint.h>

/* The scalar "no value" (a missing key). It is not a value an operation may write or read. */
#define LIN_NIL INT64_MIN

enum lin_f { LIN_READ = 0, LIN_WRITE, LIN_INCR, LIN_CAS, LIN_APPEND, LIN_READLIST };

struct lin_op {
    int f;               /* enum lin_f */
    int done;            /* 1: completed with the result below; 0: outcome unknown */
    int64_t a, b;        /* WRITE a; CAS a -> b; APPEND a */
    int64_t result;      /* READ: value or LIN_NIL; INCR: new value; CAS: 1 swapped, 0 not */
    const int64_t *list; /* READLIST: the list read (borrowed), list_len values */
    size_t list_len;
    uint64_t invoke;   /* when the client sent it */
    uint64_t complete; /* when the answer arrived (ignored when !done); > invoke */
    int64_t process;   /* for reports only: the client */
    size_t line;       /* for reports only: where it came from (0: nowhere) */
};

/* Verdicts; the numbers are build/lincheck's exit statuses. */
enum { LIN_OK = 0, LIN_VIOLATION = 1, LIN_UNKNOWN = 2, LIN_BADINPUT = 3 };

struct lin_config {
    int64_t initial;      /* scalar keys: the value before any operation (LIN_NIL: missing) */
    uint64_t steps_max;   /* search nodes to visit at most; 0: no bound */
    size_t mem_bytes_max; /* memory the search may hold; 0: no cap */
};

struct lin_result {
    int verdict;
    char why[320]; /* one sentence: the stuck operation, what cut the search, or the bad input */
    /* The longest partial linearization found (by completed operations placed), as indices
     * into ops, and the model state after it. On LIN_OK it is a whole linearization. */
    size_t *order;
    size_t order_len;
    int is_list;
    int64_t state;       /* scalar keys */
    int64_t *state_list; /* list keys: state_list_len values */
    size_t state_list_len;
    /* LIN_VIOLATION: the first operation that cannot be linearized (an index into ops): the one
     * that can never be placed after the longest partial linearization, where the search could
     * tell (a read of a list or counter value already passed), else of the completed operations
     * left out of it the one that completed first, so everything invoked after it had to wait
     * for it. SIZE_MAX: none. */
    size_t stuck;
    size_t n_checked;      /* operations the search used (after the drops described above) */
    uint64_t steps;        /* search nodes visited */
    size_t mem_bytes_peak; /* the most memory the search held */
};

/* Checks ops[0..n) and fills *res (always; release it with lin_result_free). Returns
 * res->verdict. */
int lin_check(const struct lin_op *ops, size_t n, const struct lin_config *cfg,
              struct lin_result *res);
void lin_result_free(struct lin_result *res);

/* One line about op: "process 3: read -> 5 [1200, 1500] (line 17)". Always NUL-terminates;
 * long lists are shortened in the middle. */
void lin_op_format(const struct lin_op *op, char *buf, size_t len);

/* A list as "[1,2,3]", shortened in the middle when long. Always NUL-terminates. */
void lin_list_format(const int64_t *list, size_t n, char *buf, size_t len);

/* The name of an operation, as the history file spells it ("read", "write", ...). */
const char *lin_f_name(int f);

#endif
