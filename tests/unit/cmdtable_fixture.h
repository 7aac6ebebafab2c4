/* cmdtable_fixture.h: the command table of redis-server 7.0.15, for unit tests (included by
 * each test file that needs it; everything here is static).
 *
 * tests/unit/data/command-7.0.15.resp is the raw RESP reply of `COMMAND` from redis-server 7.0.15,
 * captured by sending "*1\r\n$7\r\nCOMMAND\r\n" over a socket. setup parses it with hiredis's
 * redisReader, as the proxy gets it, and builds the table; call parse_args from main first so
 * that the file is found from the repository root, from $REDRAFT_TEST_DATA or next to the binary.
 * Include it after <cmocka.h>.
 */
#ifndef REDRAFT_CMDTABLE_FIXTURE_H
#define REDRAFT_CMDTABLE_FIXTURE_H

#include <hiredis/hiredis.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>

#include "proxy/cmdtable.h"

#define DATA_FILE "command-7.0.15.resp"

static char data_dir[1024] = "tests/unit/data";

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    size_t cap = 1 << 17, n = 0, k;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((k = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += k;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(fp);
    *len = n;
    return buf;
}

struct fixture {
    redisReply *reply;
    struct px_cmdtable *t;
};

static int setup(void **state)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", data_dir, DATA_FILE);
    size_t len = 0;
    char *bytes = read_all(path, &len);
    if (bytes == NULL) {
        fprintf(stderr, "cannot read %s (run from the repository root)\n", path);
        return -1;
    }
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    /* the whole file is exactly one reply */
    redisReader *rd = redisReaderCreate();
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, bytes, len), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    assert_non_null(reply);
    void *more = NULL;
    assert_int_equal(redisReaderGetReply(rd, &more), REDIS_OK);
    assert_null(more);
    redisReaderFree(rd);
    free(bytes);
    f->reply = reply;
    char err[256] = "";
    if (px_cmdtable_build(f->reply, &f->t, err, sizeof(err)) != 0) {
        fprintf(stderr, "px_cmdtable_build: %s\n", err);
        freeReplyObject(f->reply);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    px_cmdtable_free(f->t);
    freeReplyObject(f->reply);
    free(f);
    return 0;
}

static int parse_args(int argc, char **argv)
{
    /* the data directory: $REDRAFT_TEST_DATA, else tests/unit/data from the repository root,
     * else next to the binary's source tree (build/tests/.. /../tests/unit/data) */
    const char *env = getenv("REDRAFT_TEST_DATA");
    if (env != NULL) {
        snprintf(data_dir, sizeof(data_dir), "%s", env);
        return 0;
    }
    char probe[1200];
    snprintf(probe, sizeof(probe), "%s/%s", data_dir, DATA_FILE);
    FILE *fp = fopen(probe, "rb");
    if (fp != NULL) {
        fclose(fp);
        return 0;
    }
    if (argc > 0) {
        char self[1024];
        snprintf(self, sizeof(self), "%s", argv[0]);
        snprintf(data_dir, sizeof(data_dir), "%s/../../tests/unit/data", dirname(self));
    }
    return 0;
}

#endif
