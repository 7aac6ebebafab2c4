/* config.h: redraft's configuration, read like redis.conf.
 *
 * `redraft [file] [--name value ...]`: the file is read first, then the command-line options, each
 * of which is a "name value" line of its own (as in redis-server). Every option is declared once in
 * the table in config.c with its type and limits; an unknown name or a malformed value stops
 * start-up with a message naming the line. The struct is filled once at start and read-only after.
 */
#ifndef REDRAFT_CONFIG_H
#define REDRAFT_CONFIG_H

#include <stddef.h>

struct px_config {
    char bind[256];
    int port;
    char redis[512]; /* host:port or a unix socket path */
    char dir[1024];
    int loglevel;
    char logfile[1024];
    int maxclients;
    char requirepass[512];
    int protected_mode; /* without requirepass, only loopback peers may connect (as Redis) */
    char redis_password[512];
    long long proto_max_bulk_len;
    long long client_query_buffer_limit;
    long long client_output_buffer_limit; /* bytes of unsent replies before a client is closed */
    int apply_batch_max;                  /* entries per MULTI/EXEC batch */
    long long node_id; /* 0: chosen at random on first start and kept in the log */
    /* cluster */
    int cluster_port; /* 0: port + 10000 */
    char cluster_secret[256];
    int cluster_init;           /* form a new cluster on first start */
    char cluster_join[1024];    /* "host:port ..." of members to join on first start */
    char cluster_announce[256]; /* bus address given to the others ("" = bind:cluster-port) */
    int consistency;            /* PX_CONSISTENCY_*: default for new clients */
    int election_timeout_ms;
    int heartbeat_ms;
    int leader_wait_ms;   /* a write with no leader waits this long, then CLUSTERDOWN */
    int write_timeout_ms; /* a proposed write not applied by then: outcome unknown */
    int read_timeout_ms;  /* a linearizable read without a read index by then: TRYAGAIN */
    /* snapshots: taken when the log since the last one holds this many entries or bytes */
    long long snapshot_log_entries; /* 0: never by count */
    long long snapshot_log_bytes;   /* 0: never by size */
    long long snapshot_fetch_rate;  /* bytes/s a follower pulls a snapshot at; 0: no limit */
};

enum { PX_CONSISTENCY_LINEARIZABLE = 0, PX_CONSISTENCY_SESSION, PX_CONSISTENCY_EVENTUAL };
const char *px_consistency_name(int level);
int px_consistency_parse(const char *name); /* -1 when unknown */

/* Sets the defaults. */
void px_config_init(struct px_config *c);
/* Parses argv (argv[0] is the program). Returns 0, or -1 with a message in err. */
int px_config_load(struct px_config *c, int argc, char **argv, char *err, size_t errlen);

#endif
