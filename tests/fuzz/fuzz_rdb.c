/* fuzz_rdb.c: the RDB stream framing of snapshot capture (backend/snapshot.c, be_capture): what
 * a local Redis answers to SYNC, or whatever sits at the address redraft believes is its Redis.
 *
 * One capture per input, against a unix socket the harness listens on. Byte 0: bit 0 gives the
 * capture a password (so an AUTH answer comes first); the rest is what the "Redis" sends before
 * closing the connection. The RDB goes to a file in /dev/shm (or /tmp).
 *
 * Invariants checked:
 *  - the capture sends exactly [AUTH <password>] SYNC, as RESP;
 *  - it finishes exactly once, and succeeds exactly when the stream is well framed: optional
 *    keep-alive newlines, "+..." for AUTH, then "$<len>" with at least len bytes after it, or
 *    "$EOF:<40 bytes>" with the RDB ending in that same mark when the connection's bytes end
 *    (Redis sends nothing after the mark until the replica acknowledges, which capture never
 *    does);
 *  - on success the file holds exactly the RDB: len bytes, or everything before the mark.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend/snapshot.h"
#include "common/log.h"
#include "tests/fuzz/fuzz.h"

#define PASSWORD "fuzz-pw"
#define MARK_LEN 40
#define LINE_MAX 512

static struct ev_loop *loop;
static int lfd = -1;
static char sock_path[108];
static char rdb_path[128];
static int done_calls, done_ok;

static void cleanup(void)
{
    unlink(sock_path);
    unlink(rdb_path);
}

static void setup(void)
{
    rd_log_open("", RD_LL_WARNING + 1);
    signal(SIGPIPE, SIG_IGN);
    loop = ev_loop_new(EVFLAG_AUTO);
    snprintf(sock_path, sizeof(sock_path), "/tmp/redraft-fuzz-rdb-%d.sock", (int)getpid());
    struct stat st;
    const char *dir = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(rdb_path, sizeof(rdb_path), "%s/redraft-fuzz-rdb-%d.rdb", dir, (int)getpid());
    unlink(sock_path);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                   listen(lfd, 16) == 0,
               "cannot listen on %s: %s", sock_path, strerror(errno));
    atexit(cleanup);
}

static void on_done(void *ctx, int ok, const char *why)
{
    done_calls++;
    done_ok = ok;
}

/* What the capture should make of the stream: 1 with the RDB's place in it, or 0. */
static int reference(const uint8_t *s, size_t n, int auth, size_t *rdb_off, size_t *rdb_len)
{
    size_t i = 0;
    int need_auth = auth;
    for (;;) {
        /* one line; bare newlines before it are keep-alives */
        while (i < n && s[i] == '\n')
            i++;
        size_t start = i;
        while (i < n && s[i] != '\n') {
            if (i - start + 1 >= LINE_MAX)
                return 0;
            i++;
        }
        if (i >= n)
            return 0; /* closed inside a line */
        size_t len = i - start;
        i++;
        if (len > 0 && s[start + len - 1] == '\r')
            len--;
        /* the capture reads it as a C string: a NUL ends it */
        const void *nul = memchr(s + start, '\0', len);
        if (nul != NULL)
            len = (size_t)((const uint8_t *)nul - (s + start));
        if (len > 0 && s[start] == '-')
            return 0;
        if (need_auth) {
            if (len == 0 || s[start] != '+')
                return 0;
            need_auth = 0;
            continue;
        }
        if (len == 0 || s[start] != '$')
            return 0;
        if (len >= 5 && memcmp(s + start, "$EOF:", 5) == 0) {
            if (len - 5 != MARK_LEN || n - i < MARK_LEN ||
                memcmp(s + n - MARK_LEN, s + start + 5, MARK_LEN) != 0)
                return 0;
            *rdb_off = i;
            *rdb_len = n - i - MARK_LEN;
            return 1;
        }
        char num[LINE_MAX];
        memcpy(num, s + start + 1, len - 1);
        num[len - 1] = '\0';
        char *end;
        errno = 0;
        unsigned long long v = strtoull(num, &end, 10);
        if (errno || *end || end == num || v > n - i)
            return 0;
        *rdb_off = i;
        *rdb_len = (size_t)v;
        return 1;
    }
}

static void run_until_done(void)
{
    for (int i = 0; i < 1000 && done_calls == 0; i++)
        ev_run(loop, EVRUN_NOWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (lfd < 0)
        setup();
    if (size < 1)
        return 0;
    int auth = data[0] & 1;
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    done_calls = done_ok = 0;
    char why[256];
    struct be_capture *c = be_capture_start(loop, sock_path, auth ? PASSWORD : NULL, rdb_path,
                                            on_done, NULL, why, sizeof(why));
    FUZZ_CHECK(c != NULL, "be_capture_start: %s", why);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "accept: %s", strerror(errno));

    /* The request, all of it, before anything is answered. */
    static const char want_auth[] = "*2\r\n$4\r\nAUTH\r\n$7\r\n" PASSWORD "\r\n";
    static const char want_sync[] = "*1\r\n$4\r\nSYNC\r\n";
    char req[128];
    size_t want = (auth ? sizeof(want_auth) - 1 : 0) + sizeof(want_sync) - 1, got = 0;
    for (int i = 0; i < 100 && got < want; i++) {
        ev_run(loop, EVRUN_NOWAIT);
        ssize_t r = recv(fd, req + got, sizeof(req) - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
    }
    FUZZ_CHECK(got == want, "%zu bytes of request, %zu expected", got, want);
    FUZZ_CHECK((!auth || memcmp(req, want_auth, sizeof(want_auth) - 1) == 0) &&
                   memcmp(req + want - (sizeof(want_sync) - 1), want_sync, sizeof(want_sync) - 1) ==
                       0,
               "the request is not [AUTH] SYNC");

    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the capture gave up and closed: fine, the reference says whether right */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    run_until_done();
    close(fd);
    FUZZ_CHECK(done_calls == 1, "the capture finished %d times", done_calls);

    size_t rdb_off = 0, rdb_len = 0;
    int expect = reference(s, n, auth, &rdb_off, &rdb_len);
    FUZZ_CHECK(done_ok == expect, "capture says %d, the framing says %d", done_ok, expect);
    if (expect) {
        int f = open(rdb_path, O_RDONLY | O_CLOEXEC);
        FUZZ_CHECK(f >= 0, "no snapshot file");
        uint8_t *file = malloc(rdb_len + 1);
        ssize_t r = read(f, file, rdb_len + 1);
        close(f);
        FUZZ_CHECK(r == (ssize_t)rdb_len && memcmp(file, s + rdb_off, rdb_len) == 0,
                   "the file holds %zd bytes, the RDB is %zu", r, rdb_len);
        free(file);
    }
    be_capture_free(c);
    return 0;
}
