/*
 * Why not libsystemd: the protocol is one sendto() of a few lines, documented
 * by systemd as stable for exactly this reimplementation, while libsystemd
 * would be a new build and run-time dependency of both binaries (and of every
 * container image) for that one call. What it would add (vsock addresses,
 * file descriptor passing, the watchdog helpers) neither binary uses.
 */
#include "notify.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Written once by notify_init, before any thread or handler reads them. */
static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
static atomic_bool ready_sent;

bool notify_parse_addr(const char *value, struct sockaddr_un *addr, socklen_t *len)
{
    size_t n;

    if (value == NULL || (value[0] != '/' && value[0] != '@'))
        return false;
    n = strlen(value);
    if (n < 2 || n >= sizeof(addr->sun_path))
        return false;
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, value, n);
    if (value[0] == '@')
        addr->sun_path[0] = '\0';
    /* An abstract name is exactly its bytes: no terminating NUL counted. */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (value[0] == '/'));
    return true;
}

bool notify_init(void)
{
    if (notify_fd >= 0)
        return true;
    if (!notify_parse_addr(getenv("NOTIFY_SOCKET"), &notify_addr, &notify_addr_len))
        return false;
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return notify_fd >= 0;
}

void notify_send(const char *msg)
{
    /* sendto is async-signal-safe; MSG_NOSIGNAL: no SIGPIPE either way. */
    if (notify_fd >= 0 && sendto(notify_fd, msg, strlen(msg), MSG_NOSIGNAL,
                                 (const struct sockaddr *)&notify_addr, notify_addr_len) < 0) {
        /* nothing to do: the service works the same without a manager */
    }
}

static void send_status(const char *prefix, const char *status)
{
    char msg[512];
    size_t n = strlen(prefix);

    snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix, status);
    /* One line: a newline in the status would start a new assignment. */
    for (char *c = msg + n; *c != '\0'; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    notify_send(msg);
}

void notify_ready(const char *status)
{
    bool was;

    if (notify_fd < 0)
        return;
    was = atomic_exchange(&ready_sent, true);

    send_status(was ? "" : "READY=1\n", status);
}

void notify_status(const char *status)
{
    send_status("", status);
}
