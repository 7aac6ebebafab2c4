/* slowlog.h: SLOWLOG for redraft's clients (see slowlog.c). */
#ifndef REDRAFT_SLOWLOG_H
#define REDRAFT_SLOWLOG_H

#include <stddef.h>
#include <stdint.h>

struct px_client;
struct px_cmd;
struct px_req;
struct rd_buf;

struct px_slow_entry;

struct px_slowlog {
    struct px_slow_entry *ring; /* newest at head - 1 */
    size_t cap, n, head;
    uint64_t next_id;
    long long slower_than; /* microseconds; -1: off (Redis's slowlog-log-slower-than) */
    long long max_len;     /* Redis's slowlog-max-len */
};

void px_slowlog_init(struct px_slowlog *sl);
void px_slowlog_free(struct px_slowlog *sl);
/* A command of client c took usec from its start to its reply. */
void px_slowlog_record(struct px_slowlog *sl, const struct px_client *c, const struct px_cmd *cmd,
                       uint64_t usec);
/* SLOWLOG GET [count] | LEN | RESET, answered into r. */
void px_slowlog_cmd(struct px_slowlog *sl, struct px_req *r);
/* The settings, from a CONFIG SET that succeeded or from the local Redis's CONFIG GET: any
 * slowlog-log-slower-than / slowlog-max-len pairs among argv[from..]. */
void px_slowlog_settings(struct px_slowlog *sl, int argc, const char *const *argv,
                         const size_t *argvlen, int from);

#endif
