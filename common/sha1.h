/* sha1.h: SHA-1 (FIPS 180-4 section 6.1), for naming scripts the way Redis does.
 *
 * Why: Redis names a script by the SHA-1 of its body (EVALSHA, SCRIPT LOAD, SCRIPT EXISTS), and
 * redraft runs scripts wrapped in a prelude (backend/script.h), so it must compute both the
 * client's name and the wrapped script's. Not for security: SHA-1 is broken for that. Our own,
 * like sha256.c, so redraft still links no crypto library. Checked against the FIPS examples
 * and Redis's own digests in tests/unit/test_sha256.c. Nothing here allocates or fails.
 */
#ifndef REDRAFT_SHA1_H
#define REDRAFT_SHA1_H

#include <stddef.h>
#include <stdint.h>

#include "common/md.h"

#define RD_SHA1_LEN 20 /* bytes of a digest */
#define RD_SHA1_HEX 40 /* characters of its lower-case hex form */

struct rd_sha1 {
    struct rd_md md; /* the partial block and the length (common/md.h) */
    uint32_t h[5];
};

void rd_sha1_init(struct rd_sha1 *c);
void rd_sha1_update(struct rd_sha1 *c, const void *p, size_t n);
void rd_sha1_final(struct rd_sha1 *c, uint8_t out[RD_SHA1_LEN]);
/* The lower-case hex digest of p[0, n) into out (RD_SHA1_HEX characters, no NUL). */
void rd_sha1_hex(const void *p, size_t n, char out[RD_SHA1_HEX]);

#endif
