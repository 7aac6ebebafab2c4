/* replay.c: main() for a fuzz target built without libFuzzer (any C compiler, no clang needed).
 *
 * Runs LLVMFuzzerTestOneInput once on every file given, or on every file of the directories
 * given, or by default of FUZZ_CORPUS (the target's committed corpus, relative to the source
 * tree). `make test` runs it so that every seed, and every input that once broke something,
 * is replayed under the build's own flags (ASan and UBSan with SANITIZE=1). The whole replay
 * counts as one test: the last line is "1 passed, 0 failed"; a broken invariant or a crash names
 * the file and exits non-zero.
 */
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_CORPUS
#define FUZZ_CORPUS "."
#endif

static const char *current = "";

static void on_fatal(int sig)
{
    static const char msg[] = "\nreplay: this input broke the target: ";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    ignored = write(2, current, strlen(current));
    ignored = write(2, "\n", 1);
    (void)ignored;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf == NULL) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return -1;
    }
    /* An exact-size copy, as libFuzzer hands over: a read past the end is caught by ASan. */
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    current = path;
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int run_path(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: no such file or directory: %s\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        ++*count;
        return run_file(path);
    }
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.' && rc == 0) {
            char file[4096];
            snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
            rc = run_path(file, count);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGABRT, on_fatal);
    signal(SIGSEGV, on_fatal);
    signal(SIGBUS, on_fatal);
    signal(SIGFPE, on_fatal);
    int count = 0, rc = 0;
    if (argc < 2)
        rc = run_path(FUZZ_CORPUS, &count);
    for (int i = 1; i < argc && rc == 0; i++)
        rc = run_path(argv[i], &count);
    if (rc != 0 || count == 0) {
        if (count == 0)
            fprintf(stderr, "replay: no input found\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("%s: replayed %d inputs\n1 passed, 0 failed\n", argv[0], count);
    return 0;
}
