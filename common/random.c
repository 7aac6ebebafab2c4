#include "common/random.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

uint64_t rd_random_u64(void)
{
    uint64_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
            v = 0;
        close(fd);
    }
    if (v == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 6364136223846793005ULL ^ (uint64_t)getpid() ^
            (uint64_t)ts.tv_sec;
    }
    return v ? v : 1;
}
