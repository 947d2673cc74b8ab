/*
 * Socket address to text for log lines that tests and operators read:
 * "HOST:PORT" for IPv4, "[HOST]:PORT" for IPv6. Pure, libc only.
 */
#ifndef ORDERS_COMMON_NETADDR_H
#define ORDERS_COMMON_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Writes addr's host with the given port (the bound one, which may differ
 * from addr's when port 0 was asked for) into buf. */
void netaddr_format(const struct sockaddr_storage *addr, unsigned port, char *buf, size_t len);

#endif
