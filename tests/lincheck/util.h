/* util.h: small helpers the files of tests/lincheck share. libc only; everything is inline. */
#ifndef REDRAFT_LINCHECK_UTIL_H
#define REDRAFT_LINCHECK_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* -1, 0 or 1 as a is below, equal to or above b (for qsort comparators). */
static inline int lin_order(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static inline int lin_order_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* Makes the array *p of *cap elements of size bytes hold at least need, doubling. Returns 0,
 * or -1 when out of memory (then *p and *cap are unchanged). */
static inline int lin_grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    if (c > SIZE_MAX / size)
        return -1;
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

#endif
