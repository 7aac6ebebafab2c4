/* script.h: scripts and functions made deterministic, and the script registry.
 *
 * Every replica runs every script itself, so whatever a script reads from the replica's clock
 * or chance must come from the log entry instead. At apply time each script body (EVAL, SCRIPT
 * LOAD) and each function library (FUNCTION LOAD) is sent to Redis with a constant prelude in
 * front, on the body's first line (after a `#!` line, on the second) with no newline, so Redis's
 * line numbers stay the user's. The prelude shadows `redis` and `math` with wrappers; EVAL and
 * FCALL get two more arguments, the entry's time (ms) and a seed made from the log index, which
 * the prelude pops before the user's code sees ARGV. docs/scripts.md says what the wrappers do
 * and which calls are refused.
 *
 * The registry maps the client's SHA-1 of a body to that body. Redis caches the wrapped text,
 * under another SHA-1, so EVALSHA <client sha> is turned into EVAL <wrapped body> from the
 * registry: whether it runs depends only on the log (every node applies every EVAL, SCRIPT LOAD
 * and SCRIPT FLUSH in the same order), never on what one Redis happens to have cached. The
 * registry is kept in the hidden database (BE_SCRIPTS_KEY, a hash sha -> body), written in the
 * same MULTI/EXEC as the entries that change it, and read back on every (re)connect, so it
 * survives a restart of redraft or of Redis, and travels in snapshots.
 *
 * One registry per node; the apply path (backend/apply.c) owns it and is the only one that
 * changes it; the proxy's read path only looks things up (EVAL_RO, EVALSHA_RO, FCALL_RO, SCRIPT
 * EXISTS). Nothing here does I/O.
 */
#ifndef REDRAFT_SCRIPT_H
#define REDRAFT_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "backend/entry.h"
#include "backend/link.h"
#include "common/buf.h"
#include "common/sha1.h"

struct redisReply;

#define BE_SCRIPTS_KEY BE_LINK_SCRIPTS_KEY

/* Redis's error texts name the script Redis ran (the wrapped one): the client must see its own. */
struct be_script_swap {
    char from[RD_SHA1_HEX]; /* from[0] == 0: nothing to swap */
    char to[RD_SHA1_HEX];
};

enum be_script_mode {
    BE_SCRIPT_APPLY = 0, /* a committed command: deterministic, may change the registry */
    BE_SCRIPT_READ = 1,  /* a read served by this node alone (the _RO forms): Redis's own */
};

struct be_scripts;

struct be_scripts *be_scripts_new(void);
void be_scripts_free(struct be_scripts *sc);

/* The calls a script or function run through the log is refused, with the error
 * "ERR <NAME> is not allowed in scripts and functions run through redraft: its result would
 * differ between replicas" (docs/commands.md lists them from here); NULL-terminated. */
extern const char *const be_scripts_refused[];

/* The prelude put in front of a script (fn 0) or a library's code (fn 1); for tests. */
const char *be_scripts_prelude(const struct be_scripts *sc, int fn, size_t *len);

/* Replaces the registry with an HGETALL reply of BE_SCRIPTS_KEY (a nil or empty one empties
 * it). 0, or -1 when the reply is not a flat array of pairs or memory is out. */
int be_scripts_load(struct be_scripts *sc, const struct redisReply *r);
size_t be_scripts_count(const struct be_scripts *sc);
/* 1 when a body with this SHA-1 (40 hex digits, any case) is registered. */
int be_scripts_known(const struct be_scripts *sc, const char *sha, size_t len);

/* When c is a command this module rewrites, appends the RESP command to send instead to out and
 * returns 1 (*swap says what to replace in its reply); 0 when c goes as it is; -1 when memory
 * is out. In BE_SCRIPT_APPLY mode the registry follows EVAL, SCRIPT LOAD, SCRIPT FLUSH and
 * FLUSHALL (which empties the hidden database, so the registry is written again). seed is
 * ignored in BE_SCRIPT_READ mode. */
int be_scripts_cmd(struct be_scripts *sc, enum be_script_mode mode, const struct be_cmd *c,
                   uint64_t time_ms, uint64_t seed, struct rd_buf *out,
                   struct be_script_swap *swap);
/* After a batch's commands, in the hidden database: appends the next command that brings
 * BE_SCRIPTS_KEY up to date to out and returns 1, or returns 0 when it is. */
int be_scripts_persist_next(struct be_scripts *sc, struct rd_buf *out);

/* Writes every script again with the next batch (its last batch was not applied). */
void be_scripts_rewrite_all(struct be_scripts *sc);
/* At the start of a batch, after the registry was loaded or a batch failed: SCRIPT LOAD of
 * every script (so Redis caches whatever the registry names, e.g. after Redis restarted), each
 * appended to out and handed to sent(ctx), which sends it and returns 0 (else this stops with
 * -1). Returns 0 or -1. */
int be_scripts_preload(struct be_scripts *sc, struct rd_buf *out, int (*sent)(void *ctx),
                       void *ctx);

/* A FUNCTION RESTORE payload may go through the log: 1, or 0 with what is wrong in why when a
 * library in it lacks the prelude (dumped from a Redis without redraft), which would not run
 * identically on every replica. A payload it cannot read is 1: Redis refuses it. */
int be_scripts_restore_ok(const struct be_scripts *sc, const void *payload, size_t len, char *why,
                          size_t whylen);

/* Replaces every swap->from in p[0, n) by swap->to (same length: RESP stays valid). */
void be_scripts_swap(const struct be_script_swap *swap, char *p, size_t n);
/* Removes the prelude from every library_code of a FUNCTION LIST reply (in place). */
void be_scripts_strip_reply(const struct be_scripts *sc, struct redisReply *r);
/* How many libraries of a FUNCTION LIST WITHCODE reply lack the prelude (loaded into this Redis
 * before it was behind redraft): their FCALLs get two arguments they do not expect and run
 * as Redis would, not identically. Their names, comma-separated, into names (cut at len). */
int be_scripts_unwrapped(const struct be_scripts *sc, const struct redisReply *r, char *names,
                         size_t len);
/* SCRIPT EXISTS sha... answered from the registry: appends the RESP array to out. 0 or -1. */
int be_scripts_exists_reply(const struct be_scripts *sc, int argc, const char *const *argv,
                            const size_t *argvlen, struct rd_buf *out);

#endif
