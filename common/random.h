/* random.h: 64 random bits from the kernel, for ids and nonces (not for cryptography: the bus
 * draws its handshake nonces itself). */
#ifndef REDRAFT_RANDOM_H
#define REDRAFT_RANDOM_H

#include <stdint.h>

/* From /dev/urandom; if that fails, mixed from the clock and the pid. Never 0. */
uint64_t rd_random_u64(void);

#endif
