/* bench_reader.c: redraft's reply reader (backend/reader.c) against hiredis 0.14's redisReader on
 * the replies the apply path reads, side by side in one process.
 *
 * The stream is what the link reads from Redis for pipelined apply batches: for each batch,
 * +OK (MULTI), +QUEUED per command, then EXEC's array of the commands' replies (mostly +OK of SET
 * and MSET, :n of INCR and DEL, some bulks of GETSET-like commands, an error now and then), as a
 * redis-server 7.0 sends them. It is fed in 64 KiB reads, as the link does (hiredis's own async
 * reads are 16 KiB; its reader is fed the same pieces here), and every reply is freed.
 * Rounds alternate between the two readers; the best round of each is reported.
 *
 * Usage: bench-reader [batches_per_round (2000)] [commands_per_batch (64)] [rounds (7)]
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/reader.h"
#include "common/buf.h"

#define PIECE (64 * 1024)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void build_stream(struct rd_buf *b, int batches, int cmds, long *replies)
{
    unsigned x = 12345;
    *replies = 0;
    for (int i = 0; i < batches; i++) {
        rd_buf_append_str(b, "+OK\r\n");
        for (int k = 0; k < cmds + 1; k++)
            rd_buf_append_str(b, "+QUEUED\r\n");
        rd_resp_array_len(b, cmds + 1);
        for (int k = 0; k < cmds; k++) {
            x = x * 1103515245u + 12345u;
            unsigned pick = (x >> 16) % 100;
            if (pick < 60) {
                rd_buf_append_str(b, "+OK\r\n");
            } else if (pick < 85) {
                rd_resp_int(b, (long long)(x >> 8) % 100000);
            } else if (pick < 99) {
                char val[128];
                size_t n = 8 + (x >> 20) % 100;
                memset(val, 'v', n);
                rd_resp_bulk(b, val, n);
            } else {
                rd_buf_append_str(b, "-WRONGTYPE Operation against a key holding the wrong "
                                     "kind of value\r\n");
            }
        }
        rd_buf_append_str(b, "+OK\r\n"); /* SET of the applied index */
        *replies += cmds + 3;
    }
}

static long run_redraft(const struct rd_buf *in)
{
    struct be_reader r;
    be_reader_init(&r);
    long n = 0;
    for (size_t at = 0; at < in->len; at += PIECE) {
        size_t len = in->len - at < PIECE ? in->len - at : PIECE;
        if (be_reader_feed(&r, in->data + at, len) != 0)
            abort();
        for (;;) {
            redisReply *rep = NULL;
            if (be_reader_get(&r, &rep) != 0)
                abort();
            if (rep == NULL)
                break;
            be_reply_free(rep);
            n++;
        }
    }
    be_reader_free(&r);
    return n;
}

static long run_hiredis(const struct rd_buf *in)
{
    redisReader *r = redisReaderCreate();
    long n = 0;
    for (size_t at = 0; at < in->len; at += PIECE) {
        size_t len = in->len - at < PIECE ? in->len - at : PIECE;
        if (redisReaderFeed(r, in->data + at, len) != REDIS_OK)
            abort();
        for (;;) {
            void *rep = NULL;
            if (redisReaderGetReply(r, &rep) != REDIS_OK)
                abort();
            if (rep == NULL)
                break;
            freeReplyObject(rep);
            n++;
        }
    }
    redisReaderFree(r);
    return n;
}

int main(int argc, char **argv)
{
    int batches = argc > 1 ? atoi(argv[1]) : 2000;
    int cmds = argc > 2 ? atoi(argv[2]) : 64;
    int rounds = argc > 3 ? atoi(argv[3]) : 7;
    struct rd_buf in;
    rd_buf_init(&in);
    long want;
    build_stream(&in, batches, cmds, &want);
    double best_rd = 1e9, best_hi = 1e9;
    for (int i = 0; i < rounds; i++) {
        double t0 = now_s();
        if (run_hiredis(&in) != want)
            abort();
        double t1 = now_s();
        if (run_redraft(&in) != want)
            abort();
        double t2 = now_s();
        if (t1 - t0 < best_hi)
            best_hi = t1 - t0;
        if (t2 - t1 < best_rd)
            best_rd = t2 - t1;
    }
    double mb = in.len / 1e6;
    printf("stream: %d batches of %d commands, %ld replies, %.1f MB; best of %d rounds\n", batches,
           cmds, want, mb, rounds);
    printf("hiredis 0.14 redisReader: %8.1f ms  %7.1f MB/s  %6.1f ns/reply\n", best_hi * 1e3,
           mb / best_hi, best_hi * 1e9 / want);
    printf("redraft be_reader:        %8.1f ms  %7.1f MB/s  %6.1f ns/reply\n", best_rd * 1e3,
           mb / best_rd, best_rd * 1e9 / want);
    printf("speed-up (hiredis time / redraft time): %.2fx\n", best_hi / best_rd);
    rd_buf_free(&in);
    return 0;
}
