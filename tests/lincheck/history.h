/* history.h: the text format of a history, parsed into one list of operations per key.
 *
 * One event per line, lines in any order; blank lines and lines starting with '#' are skipped:
 *
 *     <process> <type> <f> <key> <value> <time_ns>
 *
 *   process  an integer client id; a process has at most one operation open at a time
 *   type     invoke | ok | fail | info   (info: outcome unknown, e.g. a timeout)
 *   f        read | write | cas | incr | append | readlist
 *   key      a token without spaces
 *   value    invoke: write/append an integer, cas "old:new", read/incr/readlist "_";
 *            ok: read an integer or "nil", incr the new integer value, readlist the list as
 *            comma-separated integers in order or "[]" when empty or missing, write/append/cas
 *            "_" or the invoke's value again;
 *            fail/info: "_" or the invoke's value again
 *   time_ns  a monotonic timestamp in nanoseconds (an unsigned integer)
 *
 * Each completion (ok/fail/info) belongs to the latest open invoke of its process, which must
 * have the same f and key and an earlier time. An invoke left open at the end counts as info.
 * A fail op definitely did not take effect and is dropped; a cas that did not swap is a fail.
 * Values are 64-bit integers other than the smallest one (-9223372036854775808), which stands
 * for nil inside the checker. Appended values should be unique per key.
 *
 * A key's model follows from its operations: append/readlist make a list (starts empty); any
 * write or cas makes a register (starts nil; incr counts nil as 0); incr without write or cas
 * makes a counter (starts at 0, and a read of nil reads 0). A key mixing list and other
 * operations is bad input.
 *
 * Ownership: the history owns its keys, their operations and the lists they point into, until
 * lin_history_free. libc only.
 */
#ifndef REDRAFT_LINCHECK_HISTORY_H
#define REDRAFT_LINCHECK_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tests/lincheck/lincheck.h"

enum { LIN_MODEL_REGISTER = 0, LIN_MODEL_COUNTER, LIN_MODEL_LIST };

struct lin_key {
    char *name;
    int model;
    struct lin_op *ops; /* ok and info ops, in no particular order */
    size_t n, cap;
    size_t n_info;   /* of n, ops of unknown outcome (open invokes included) */
    size_t n_failed; /* fail ops, dropped */
};

struct lin_history {
    struct lin_key *keys; /* in the order of their first line */
    size_t n_keys;
    size_t n_lines; /* events read */
    int64_t *vals;  /* the readlist values the ops point into */
};

/* Parses text[0..len). Returns 0, or -1 with a sentence naming the line in err. */
int lin_history_parse(struct lin_history *h, const char *text, size_t len, char *err,
                      size_t err_len);
/* Reads all of f and parses it. */
int lin_history_read(struct lin_history *h, FILE *f, char *err, size_t err_len);
void lin_history_free(struct lin_history *h);

/* lin_check on key k, starting from its model's initial value. */
int lin_history_check(const struct lin_history *h, size_t k, const struct lin_config *cfg,
                      struct lin_result *res);

const char *lin_model_name(int model);

#endif
