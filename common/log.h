/* log.h: logging in Redis's style, shared by every module.
 *
 * A line looks like Redis's: "<pid>:<role> <dd Mon yyyy HH:MM:SS.mmm> <mark> <message>", with the
 * mark '.' debug, '-' verbose, '*' notice, '#' warning. The role char is set by whoever knows the
 * node's Raft role (N not in a cluster yet, L leader, F follower, C candidate).
 * One process-wide logger: it is configured once at start (rd_log_open) and may be called from
 * anywhere after that; before it, lines go to stderr at notice level.
 */
#ifndef REDRAFT_LOG_H
#define REDRAFT_LOG_H

enum { RD_LL_DEBUG = 0, RD_LL_VERBOSE, RD_LL_NOTICE, RD_LL_WARNING };

/* logfile NULL or "" means standard output. Returns 0 or -1 (file could not be opened). */
int rd_log_open(const char *logfile, int level);
void rd_log_set_role(char role);
int rd_log_level(void);
/* Parses "debug|verbose|notice|warning"; returns the level or -1. */
int rd_log_level_parse(const char *name);
void rd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rd_log_close(void);

#define rd_debug(...)   rd_log(RD_LL_DEBUG, __VA_ARGS__)
#define rd_verbose(...) rd_log(RD_LL_VERBOSE, __VA_ARGS__)
#define rd_notice(...)  rd_log(RD_LL_NOTICE, __VA_ARGS__)
#define rd_warning(...) rd_log(RD_LL_WARNING, __VA_ARGS__)

#endif
