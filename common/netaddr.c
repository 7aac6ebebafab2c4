#include "common/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

int rd_sockaddr_is_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        static const unsigned char mapped[16] = {0, 0, 0,    0,    0,   0, 0, 0,
                                                 0, 0, 0xff, 0xff, 127, 0, 0, 1};
        return IN6_IS_ADDR_LOOPBACK(a) || memcmp(a->s6_addr, mapped, sizeof(mapped)) == 0;
    }
    return 0;
}

static void why_set(char *why, size_t whylen, const char *f, const char *arg)
{
    if (why && whylen)
        snprintf(why, whylen, f, arg);
}

int rd_connect_addr(const char *addr, char *why, size_t whylen)
{
    int fd = -1;
    if (strchr(addr, '/') || strchr(addr, ':') == NULL) {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        if (strlen(addr) >= sizeof(sa.sun_path)) {
            why_set(why, whylen, "socket path too long: %s", addr);
            return -1;
        }
        strcpy(sa.sun_path, addr);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
                       errno != EINPROGRESS && errno != EAGAIN)) {
            why_set(why, whylen, "cannot connect to redis: %s", strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        return fd;
    }
    char host[256];
    const char *colon = strrchr(addr, ':');
    if ((size_t)(colon - addr) >= sizeof(host)) {
        why_set(why, whylen, "bad redis address: %s", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL) {
        why_set(why, whylen, "cannot resolve redis address %s", addr);
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS)) {
        why_set(why, whylen, "cannot connect to redis: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}
