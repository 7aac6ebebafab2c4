/* netaddr.h: what redraft decides from a peer's socket address.
 *
 * Protected mode (clients and cluster bus) admits only local peers; "local" is Redis's rule
 * (networking.c, islocalClient): 127.0.0.1 or ::1 exactly, not the rest of 127.0.0.0/8. A
 * dual-stack listener sees an IPv4 peer as ::ffff:a.b.c.d, so ::ffff:127.0.0.1 is local too.
 * It also holds the one non-blocking connect to a "host:port" or unix socket address that the
 * backend link, the snapshot's SYNC link and the pub/sub links share.
 */
#ifndef REDRAFT_NETADDR_H
#define REDRAFT_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* 1 when sa (an AF_INET or AF_INET6 address) is 127.0.0.1, ::1 or ::ffff:127.0.0.1, else 0. */
int rd_sockaddr_is_loopback(const struct sockaddr_storage *sa);

/* Starts a non-blocking connect to "host:port" or to a unix socket path (an address with a '/'
 * or without a ':'); TCP gets TCP_NODELAY. The fd (the connect may still be in progress: wait
 * for it to be writable, then read SO_ERROR), or -1 with why set. */
int rd_connect_addr(const char *addr, char *why, size_t whylen);

#endif
