/* fuzz.h: what the fuzz targets in tests/fuzz/ share.
 *
 * Each target is one file defining LLVMFuzzerTestOneInput. It is built two ways: by `make fuzz`
 * with clang and libFuzzer (coverage-guided, ASan + UBSan), and by the normal build with the
 * project's compiler and replay.c as main, which runs it once over every file of its committed
 * corpus (tests/fuzz/corpus/<target>/) as part of `make test`.
 *
 * A target checks invariants as well as surviving the input; FUZZ_CHECK reports a broken one
 * and aborts, which libFuzzer records as a crash (with the input saved) and the replay driver
 * reports with the file's name.
 */
#ifndef REDRAFT_FUZZ_H
#define REDRAFT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant broken at %s:%d (%s): ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A small deterministic generator for choices derived from the input (chunk sizes). */
static inline uint32_t fuzz_next(uint32_t *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 16;
}

#endif
