/* keys.h: which keys a command names, for the proxy's own bookkeeping.
 *
 * Two parts of the proxy ask "which keys may this command touch?": WATCH (was any watched key
 * written between the WATCH and the EXEC?) and blocking commands (which parked clients should
 * retry after this write was applied?). Both must never miss a key; both can afford to be told
 * "maybe every key" now and then (a spurious abort or a spurious retry). So the answer is either
 * a list of (db, key) pairs or a whole database or two, or every database.
 *
 * Key positions come from the command table (Redis's own COMMAND: first, last, step); the
 * commands whose keys move (movablekeys) are read argument by argument where redraft knows them
 * (numkeys forms, SORT/GEORADIUS ... STORE, XREAD/XREADGROUP ... STREAMS, MOVE/COPY ... DB) and
 * are "every database" otherwise. Scripts and functions are "every database": a script may write
 * keys it did not declare, in databases it SELECTs.
 */
#ifndef REDRAFT_KEYS_H
#define REDRAFT_KEYS_H

#include <stddef.h>
#include <stdint.h>

struct px_cmddef;

enum px_keys_scope {
    PX_KEYS_LISTED = 0, /* exactly the keys passed to the callback (maybe none) */
    PX_KEYS_DBS,        /* the listed keys, and also any key of the databases in dbs[] */
    PX_KEYS_EVERY,      /* any key of any database */
};

struct px_keys_span {
    enum px_keys_scope scope;
    int ndbs;
    int64_t dbs[2];
};

typedef void (*px_key_fn)(void *ctx, int64_t db, const char *key, size_t len);

/* Calls fn for each key that argv (a command of d, arity already checked) names, run in database
 * db, and describes in *span what else it may touch. A key of another database (MOVE's target,
 * COPY ... DB n's destination) is passed with that database. Malformed numbers (a numkeys that is
 * not one) give PX_KEYS_EVERY: the caller must then assume the worst. */
void px_cmd_keys(const struct px_cmddef *d, int argc, const char *const *argv,
                 const size_t *argvlen, int64_t db, px_key_fn fn, void *ctx,
                 struct px_keys_span *span);

#endif
