/*
 * systemd's service notification protocol (sd_notify(3)), without
 * libsystemd: a datagram of "KEY=VALUE\n" lines to the AF_UNIX socket named
 * by $NOTIFY_SOCKET (a path, or an abstract name written with a leading
 * '@'). A unit with Type=notify is "started" once READY=1 arrives. Without
 * the variable every call does nothing. libc only.
 */
#ifndef ORDERS_COMMON_NOTIFY_H
#define ORDERS_COMMON_NOTIFY_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

/*
 * $NOTIFY_SOCKET's value as a socket address (pure): "/path" or "@abstract"
 * ('@' becomes the leading NUL of Linux's abstract namespace). false for
 * anything else (systemd's vsock: addresses included) or a name too long.
 */
bool notify_parse_addr(const char *value, struct sockaddr_un *addr, socklen_t *len);

/*
 * Reads $NOTIFY_SOCKET and opens the socket the messages go through, once,
 * at startup (before threads and signal handlers). @returns true when there
 * is somewhere to notify; false when the variable is unset or unusable (then
 * the other calls do nothing).
 */
bool notify_init(void);

/* Sends msg (one datagram, e.g. "STOPPING=1"). Async-signal-safe: a
 * handler may call it. Failures are ignored: systemd not listening is no
 * reason to stop. */
void notify_send(const char *msg);

/* READY=1 the first time (later calls only update STATUS), with
 * STATUS=status: the service can do its work now. Not from a handler. */
void notify_ready(const char *status);

/* STATUS=status alone: what `systemctl status` shows. Not from a handler. */
void notify_status(const char *status);

#endif
