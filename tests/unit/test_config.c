/* Unit tests for proxy/config.c: `redraft [config-file] [--name value ...]`.
 *
 * Config files are written to mkstemp files under /tmp and removed after each test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "proxy/config.h"

/* ---- helpers ---------------------------------------------------------------------------- */

struct fixture {
    char path[64];
    int have_file;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->have_file)
        unlink(f->path);
    free(f);
    return 0;
}

static const char *write_conf(struct fixture *f, const char *text, size_t len)
{
    if (f->have_file)
        unlink(f->path);
    strcpy(f->path, "/tmp/redraft-conf-XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    f->have_file = 1;
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return f->path;
}
#define WRITE_CONF(f, lit) write_conf((f), (lit), sizeof(lit) - 1)

/* px_config_load on a NULL-terminated list of arguments (after the program name). */
static int load_args(struct px_config *c, char *err, size_t errlen, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "redraft";
    va_list ap;
    va_start(ap, errlen);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL) {
        assert_true(argc < 31);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    return px_config_load(c, argc, argv, err, errlen);
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("'%s' does not contain '%s'", (hay), (needle));                               \
    } while (0)

/* ---- tests -------------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct px_config c;
    memset(&c, 0x5a, sizeof(c));
    px_config_init(&c);
    assert_string_equal(c.bind, "127.0.0.1");
    assert_int_equal(c.port, 7379);
    assert_string_equal(c.redis, "127.0.0.1:6379");
    assert_string_equal(c.dir, "./redraft-data");
    assert_int_equal(c.loglevel, RD_LL_NOTICE);
    assert_string_equal(c.logfile, "");
    assert_int_equal(c.maxclients, 10000);
    assert_string_equal(c.requirepass, "");
    assert_int_equal(c.protected_mode, 1); /* as Redis: on unless turned off */
    assert_string_equal(c.redis_password, "");
    assert_true(c.proto_max_bulk_len == 512LL * 1024 * 1024);
    assert_true(c.client_query_buffer_limit == 1024LL * 1024 * 1024);
    assert_true(c.client_output_buffer_limit == 256LL * 1024 * 1024);
    assert_int_equal(c.apply_batch_max, 1024);
    assert_true(c.node_id == 0); /* chosen at first start */
    assert_int_equal(c.consistency, PX_CONSISTENCY_LINEARIZABLE);
    assert_int_equal(c.cluster_init, 0);
    assert_int_equal(c.election_timeout_ms, 1000);

    /* no arguments at all: the defaults stand */
    struct px_config d;
    px_config_init(&d);
    char err[512];
    assert_int_equal(load_args(&d, err, sizeof(err), NULL), 0);
    assert_memory_equal(&c, &d, sizeof(c));
}

static void test_command_line(void **state)
{
    (void)state;
    struct px_config c;
    px_config_init(&c);
    char err[512];
    assert_int_equal(load_args(&c, err, sizeof(err), "--port", "1234", "--bind", "0.0.0.0", NULL),
                     0);
    assert_int_equal(c.port, 1234);
    assert_int_equal(load_args(&c, err, sizeof(err), "--protected-mode", "no", NULL), 0);
    assert_int_equal(c.protected_mode, 0);
    assert_int_equal(load_args(&c, err, sizeof(err), "--protected-mode", "maybe", NULL), -1);
    assert_string_equal(c.bind, "0.0.0.0");
    /* names are case-insensitive; values with spaces, quotes and backslashes survive */
    assert_int_equal(load_args(&c, err, sizeof(err), "--REQUIREPASS", "a \"b\" \\c 'd'", "--redis",
                               "/tmp/redis.sock", "--loglevel", "debug", NULL),
                     0);
    assert_string_equal(c.requirepass, "a \"b\" \\c 'd'");
    assert_string_equal(c.redis, "/tmp/redis.sock");
    assert_int_equal(c.loglevel, RD_LL_DEBUG);
    /* an empty value */
    assert_int_equal(load_args(&c, err, sizeof(err), "--requirepass", "", NULL), 0);
    assert_string_equal(c.requirepass, "");
    /* the last one wins */
    assert_int_equal(load_args(&c, err, sizeof(err), "--port", "1", "--port", "2", NULL), 0);
    assert_int_equal(c.port, 2);
}

static void test_command_line_errors(void **state)
{
    (void)state;
    struct px_config c;
    char err[512];
    px_config_init(&c);
    /* two values for one option */
    assert_int_equal(load_args(&c, err, sizeof(err), "--port", "1234", "5678", NULL), -1);
    assert_contains(err, "'port' takes exactly one argument");
    /* no value */
    px_config_init(&c);
    assert_int_equal(load_args(&c, err, sizeof(err), "--port", NULL), -1);
    assert_contains(err, "'port' takes exactly one argument");
    /* unknown option */
    assert_int_equal(load_args(&c, err, sizeof(err), "--no-such-thing", "1", NULL), -1);
    assert_contains(err, "unknown option 'no-such-thing'");
    assert_contains(err, "command line");
    /* a bare "--" */
    assert_int_equal(load_args(&c, err, sizeof(err), "--port", "1", "--", NULL), -1);
    assert_contains(err, "expected --option");
    /* a word after an option's value is another value of it, not a file */
    px_config_init(&c);
    assert_int_equal(load_args(&c, err, sizeof(err), "--port", "1234", "redraft.conf", NULL), -1);
    assert_contains(err, "'port' takes exactly one argument");
    /* only options, no file */
    char *argv[] = {"redraft", "--port", "1", NULL};
    px_config_init(&c);
    assert_int_equal(px_config_load(&c, 3, argv, err, sizeof(err)), 0);
    assert_int_equal(c.port, 1);
}

/* A value holding a newline: redis-server escapes command-line values (sdscatrepr) before
 * parsing them as config lines, so `--requirepass "a<LF>b"` sets a password with a newline. */
static void test_command_line_newline_value(void **state)
{
    (void)state;
    /* Regression: proxy/config.c px_config_load quotes a command-line value by escaping only '"'
     * and
     * '\\', then load_text splits the text at '\n': the value "a\nb" becomes the line
     * `requirepass "a` and fails with "unbalanced quotes". Expected: requirepass = "a\nb".
     * */
    struct px_config c;
    px_config_init(&c);
    char err[512];
    assert_int_equal(load_args(&c, err, sizeof(err), "--requirepass", "a\nb", NULL), 0);
    assert_string_equal(c.requirepass, "a\nb");
}

static void test_file(void **state)
{
    struct fixture *f = *state;
    const char *path = WRITE_CONF(f, "# redraft test config\n"
                                     "\n"
                                     "   # indented comment\n"
                                     "port 6000\n"
                                     "bind \"0.0.0.0\"\n"
                                     "\tdir   '/var/lib/redraft data'   \n"
                                     "requirepass \"p a\\\"ss\\x21\"\r\n"
                                     "LOGLEVEL warning\r\n"
                                     "logfile ''\n"
                                     "maxclients 50\n"
                                     "node-id 9007199254740992\n"
                                     "cluster-init yes\n"
                                     "cluster-join a:1 b:2\n"
                                     "consistency session\n"
                                     "apply-batch-max 7\n"
                                     "redis-password secret\n"
                                     "redis 10.0.0.1:6380"); /* no final newline */
    struct px_config c;
    px_config_init(&c);
    char err[512];
    assert_int_equal(load_args(&c, err, sizeof(err), path, NULL), 0);
    assert_int_equal(c.port, 6000);
    assert_string_equal(c.bind, "0.0.0.0");
    assert_string_equal(c.dir, "/var/lib/redraft data");
    assert_string_equal(c.requirepass, "p a\"ss!");
    assert_int_equal(c.loglevel, RD_LL_WARNING);
    assert_string_equal(c.logfile, "");
    assert_int_equal(c.maxclients, 50);
    assert_true(c.node_id == 9007199254740992LL);
    assert_int_equal(c.cluster_init, 1);
    assert_string_equal(c.cluster_join, "a:1 b:2");
    assert_int_equal(c.consistency, PX_CONSISTENCY_SESSION);
    assert_int_equal(c.apply_batch_max, 7);
    assert_string_equal(c.redis_password, "secret");
    assert_string_equal(c.redis, "10.0.0.1:6380");
}

static void test_file_then_command_line(void **state)
{
    struct fixture *f = *state;
    const char *path = WRITE_CONF(f, "port 6000\nbind 10.1.1.1\n");
    struct px_config c;
    px_config_init(&c);
    char err[512];
    assert_int_equal(load_args(&c, err, sizeof(err), path, "--port", "7000", NULL), 0);
    assert_int_equal(c.port, 7000); /* the command line comes after the file */
    assert_string_equal(c.bind, "10.1.1.1");
}

static void test_file_empty(void **state)
{
    struct fixture *f = *state;
    const char *path = WRITE_CONF(f, "");
    struct px_config c, d;
    px_config_init(&c);
    px_config_init(&d);
    char err[512];
    assert_int_equal(load_args(&c, err, sizeof(err), path, NULL), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    path = WRITE_CONF(f, "\n\n# only comments\n   \n\t\n");
    assert_int_equal(load_args(&c, err, sizeof(err), path, NULL), 0);
    assert_memory_equal(&c, &d, sizeof(c));
}

static void test_file_unknown_option(void **state)
{
    struct fixture *f = *state;
    const char *path = WRITE_CONF(f, "# comment\nport 6000\nfrobnicate yes please\nbind x\n");
    struct px_config c;
    px_config_init(&c);
    char err[512];
    assert_int_equal(load_args(&c, err, sizeof(err), path, NULL), -1);
    assert_contains(err, path);
    assert_contains(err, "line 3");
    assert_contains(err, "frobnicate yes please");
    assert_contains(err, "unknown option 'frobnicate'");
}

static void test_file_errors_name_the_line(void **state)
{
    struct fixture *f = *state;
    struct px_config c;
    char err[512];
    static const struct {
        const char *text;
        const char *line;
        const char *why;
    } cases[] = {
        {"port 12x\n", "line 1", "argument must be a number"},
        {"port\n", "line 1", "takes exactly one argument"},
        {"\n\nport 1 2\n", "line 3", "takes exactly one argument"},
        {"port \"\"\n", "line 1", "argument must be a number"},
        {"port 0\n", "line 1", "between 1 and 65535"},
        {"port 65536\n", "line 1", "between 1 and 65535"},
        {"port -1\n", "line 1", "between 1 and 65535"},
        {"port 99999999999999999999\n", "line 1", "argument must be a number"},
        {"maxclients 0\n", "line 1", "between"},
        {"node-id -1\n", "line 1", "between"},
        {"node-id 9007199254740993\n", "line 1", "between"},
        {"cluster-init maybe\n", "line 1", "'yes' or 'no'"},
        {"consistency strong\n", "line 1", "linearizable, session or eventual"},
        {"apply-batch-max 100001\n", "line 1", "between"},
        {"loglevel loud\n", "line 1", "loglevel must be one of"},
        {"#x\nbind \"0.0.0.0\n", "line 2", "unbalanced quotes"},
        {"bind 'a'b\n", "line 1", "unbalanced quotes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_conf(f, cases[i].text, strlen(cases[i].text));
        px_config_init(&c);
        if (load_args(&c, err, sizeof(err), path, NULL) != -1)
            fail_msg("'%s' was accepted", cases[i].text);
        assert_contains(err, cases[i].line);
        assert_contains(err, cases[i].why);
    }
}

static void test_memory_units(void **state)
{
    (void)state;
    struct px_config c;
    char err[512];
    static const struct {
        const char *val;
        long long want;
    } ok[] = {
        {"1gb", 1024LL * 1024 * 1024},  {"1GB", 1024LL * 1024 * 1024},
        {"512mb", 512LL * 1024 * 1024}, {"2048kb", 2048LL * 1024},
        {"2000k", 2000LL * 1000},       {"3m", 3LL * 1000 * 1000},
        {"1g", 1000LL * 1000 * 1000},   {"1048576", 1048576},
        {"1099511627776", 1LL << 40},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        px_config_init(&c);
        if (load_args(&c, err, sizeof(err), "--client-query-buffer-limit", ok[i].val, NULL) != 0)
            fail_msg("'%s' refused: %s", ok[i].val, err);
        assert_true(c.client_query_buffer_limit == ok[i].want);
    }
    px_config_init(&c);
    assert_int_equal(load_args(&c, err, sizeof(err), "--proto-max-bulk-len", "64mb",
                               "--client-output-buffer-limit", "1gb", NULL),
                     0);
    assert_true(c.proto_max_bulk_len == 64LL * 1024 * 1024);
    assert_true(c.client_output_buffer_limit == 1024LL * 1024 * 1024);

    static const char *bad[] = {"12xb",
                                "mb",
                                "",
                                "-1mb",
                                "1.5gb",
                                "1 gb",
                                "1gbb",
                                "99999999999999gb",
                                "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        px_config_init(&c);
        if (load_args(&c, err, sizeof(err), "--proto-max-bulk-len", bad[i], NULL) != -1)
            fail_msg("'%s' accepted", bad[i]);
        assert_contains(err, "memory value");
    }
    /* below and above the limits */
    px_config_init(&c);
    assert_int_equal(load_args(&c, err, sizeof(err), "--proto-max-bulk-len", "1kb", NULL), -1);
    assert_contains(err, "between");
    assert_int_equal(load_args(&c, err, sizeof(err), "--proto-max-bulk-len", "1025gb", NULL), -1);
    assert_contains(err, "between");
}

static void test_loglevels(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int level;
    } lv[] = {{"debug", RD_LL_DEBUG},     {"verbose", RD_LL_VERBOSE}, {"notice", RD_LL_NOTICE},
              {"warning", RD_LL_WARNING}, {"WARNING", RD_LL_WARNING}, {"Debug", RD_LL_DEBUG}};
    for (size_t i = 0; i < sizeof(lv) / sizeof(lv[0]); i++) {
        struct px_config c;
        px_config_init(&c);
        c.loglevel = -1;
        char err[512];
        assert_int_equal(load_args(&c, err, sizeof(err), "--loglevel", lv[i].name, NULL), 0);
        assert_int_equal(c.loglevel, lv[i].level);
    }
    struct px_config c;
    px_config_init(&c);
    char err[512];
    assert_int_equal(load_args(&c, err, sizeof(err), "--loglevel", "nothing", NULL), -1);
    assert_contains(err, "loglevel must be one of debug, verbose, notice, warning");
}

static void test_string_too_long(void **state)
{
    (void)state;
    struct px_config c;
    px_config_init(&c);
    char err[512];
    char big[300];
    memset(big, 'h', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(load_args(&c, err, sizeof(err), "--bind", big, NULL), -1);
    assert_contains(err, "value is too long (at most 255 bytes)");
    assert_string_equal(c.bind, "127.0.0.1"); /* unchanged */
    big[255] = '\0';
    assert_int_equal(load_args(&c, err, sizeof(err), "--bind", big, NULL), 0);
    assert_int_equal(strlen(c.bind), 255);
}

static void test_file_long_line(void **state)
{
    struct fixture *f = *state;
    size_t n = 10000;
    char *text = malloc(n + 32);
    assert_non_null(text);
    strcpy(text, "port 1\nrequirepass ");
    size_t off = strlen(text);
    memset(text + off, 'p', n);
    strcpy(text + off + n, "\n");
    const char *path = write_conf(f, text, strlen(text));
    free(text);
    struct px_config c;
    px_config_init(&c);
    char err[512];
    assert_int_equal(load_args(&c, err, sizeof(err), path, NULL), -1);
    assert_contains(err, "line 2");
}

static void test_missing_file(void **state)
{
    (void)state;
    struct px_config c;
    px_config_init(&c);
    char err[512];
    assert_int_equal(load_args(&c, err, sizeof(err), "/nonexistent/redraft.conf", NULL), -1);
    assert_contains(err, "cannot open config file '/nonexistent/redraft.conf'");
    assert_contains(err, "No such file or directory");
}

/* A path that opens but cannot be read (a directory) is an error, not an empty config. */
static void test_unreadable_file(void **state)
{
    (void)state;
    /* Regression: proxy/config.c load_file does not check ferror() after the fread loop:
     * fopen("/tmp") succeeds on Linux, fread fails with EISDIR, and the directory loads as an empty
     * config (px_config_load returns 0). Expected: -1 with a message naming the path.
     */
    struct px_config c;
    px_config_init(&c);
    char err[512] = "";
    assert_int_equal(load_args(&c, err, sizeof(err), "/tmp", NULL), -1);
    assert_contains(err, "/tmp");
}

/* A small error buffer gets a truncated, terminated message. */
static void test_small_err_buffer(void **state)
{
    (void)state;
    struct px_config c;
    px_config_init(&c);
    char err[16];
    memset(err, 'Z', sizeof(err));
    assert_int_equal(load_args(&c, err, sizeof(err), "--no-such-option-at-all", "1", NULL), -1);
    assert_true(memchr(err, '\0', sizeof(err)) != NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_command_line_errors),
        cmocka_unit_test(test_command_line_newline_value),
        cmocka_unit_test_setup_teardown(test_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_then_command_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_unknown_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors_name_the_line, setup, teardown),
        cmocka_unit_test(test_memory_units),
        cmocka_unit_test(test_loglevels),
        cmocka_unit_test(test_string_too_long),
        cmocka_unit_test_setup_teardown(test_file_long_line, setup, teardown),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_small_err_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
