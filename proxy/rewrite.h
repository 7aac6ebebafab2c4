/* rewrite.h: making writes deterministic before they are proposed.
 *
 * Every replica applies the same entry, possibly much later (a restart replays the log, a
 * lagging node catches up). A command whose effect depends on the clock or on chance would do
 * something different each time, so it is rewritten on the node that proposes it:
 *   - relative expiries become absolute, from the time carried in the entry:
 *     EXPIRE/PEXPIRE -> PEXPIREAT, SETEX/PSETEX -> SET .. PXAT, SET .. EX/PX -> SET .. PXAT,
 *     GETEX .. EX/PX -> GETEX .. PXAT, RESTORE with a relative TTL -> RESTORE .. ABSTTL;
 *   - SPOP becomes a short Lua script that picks members from the sorted set contents with a
 *     seed chosen now and carried in the entry, so every replica pops the same members;
 *   - XADD with `*` becomes a Lua script that gives the new entry the id <entry time>-0, or the
 *     stream's last id + 1 when that is later, so every replica makes the same id.
 * A command whose arguments are invalid is left as it is: Redis rejects it the same way on
 * every replica, with its own error text.
 *
 * The result borrows the command's arguments and the rewrite struct's own storage: it is valid
 * while both live. px_rewrite_free releases the storage.
 */
#ifndef REDRAFT_REWRITE_H
#define REDRAFT_REWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/cmdtable.h"
#include "proxy/resp.h"

#define PX_REWRITE_NUMS 4

struct px_rewrite {
    int argc;
    const char **argv;
    size_t *argvlen;
    size_t cap;
    char nums[PX_REWRITE_NUMS][24]; /* numbers made by the rewrite */
    int nnums;
};

/* Fills rw with the argument vector to propose for cmd (the command itself when nothing needs
 * rewriting). Returns 0, or -1 when out of memory. */
int px_rewrite(const struct px_cmddef *def, const struct px_cmd *cmd, uint64_t now_ms,
               uint64_t seed, struct px_rewrite *rw);
void px_rewrite_free(struct px_rewrite *rw);

#endif
