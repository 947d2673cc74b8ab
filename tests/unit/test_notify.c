/*
 * common/notify.c: $NOTIFY_SOCKET parsing (paths, abstract names, what is
 * refused), and what reaches a listening datagram socket: READY=1 once,
 * STATUS every time, one line per assignment.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "unit/check.h"

#include "notify.h"

static void test_parse(void)
{
    struct sockaddr_un a;
    socklen_t len = 0;
    char long_path[200];

    CHECK(notify_parse_addr("/run/systemd/notify", &a, &len));
    CHECK_STR(a.sun_path, "/run/systemd/notify");
    CHECK_EQ_INT(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
    CHECK(notify_parse_addr("@/org/freedesktop/systemd1/notify/42", &a, &len));
    CHECK_EQ_INT(a.sun_path[0], '\0'); /* abstract: a leading NUL, no trailing one counted */
    CHECK(memcmp(a.sun_path + 1, "/org/freedesktop/systemd1/notify/42", 35) == 0);
    CHECK_EQ_INT(len, offsetof(struct sockaddr_un, sun_path) + 36);
    CHECK(!notify_parse_addr(NULL, &a, &len));
    CHECK(!notify_parse_addr("", &a, &len));
    CHECK(!notify_parse_addr("@", &a, &len));
    CHECK(!notify_parse_addr("relative/path", &a, &len));
    CHECK(!notify_parse_addr("vsock:2:1234", &a, &len));
    memset(long_path, 'x', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    CHECK(!notify_parse_addr(long_path, &a, &len)); /* longer than sun_path */
}

/* Receives one datagram (1 s at most); "" when none came. */
static void recv_one(int fd, char *buf, size_t len)
{
    ssize_t n = recv(fd, buf, len - 1, 0);

    buf[n > 0 ? n : 0] = '\0';
}

static void test_messages(void)
{
    char dir[] = "/tmp/test_notify.XXXXXX", path[64], buf[600], status[700];
    struct sockaddr_un a;
    struct timeval tv = {1, 0};
    socklen_t len;
    int fd;

    CHECK(notify_init() == false);  /* no NOTIFY_SOCKET in a test run */
    notify_ready("nobody listens"); /* no-ops */
    notify_send("STOPPING=1");
    if (mkdtemp(dir) == NULL)
        return;
    snprintf(path, sizeof(path), "%s/notify", dir);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(notify_parse_addr(path, &a, &len));
    CHECK(bind(fd, (struct sockaddr *)&a, len) == 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setenv("NOTIFY_SOCKET", path, 1);
    CHECK(notify_init());

    notify_status("connecting");
    recv_one(fd, buf, sizeof(buf));
    CHECK_STR(buf, "STATUS=connecting");
    notify_ready("streaming slot s");
    recv_one(fd, buf, sizeof(buf));
    CHECK_STR(buf, "READY=1\nSTATUS=streaming slot s");
    notify_ready("streaming slot s again"); /* after a reconnect: not READY twice */
    recv_one(fd, buf, sizeof(buf));
    CHECK_STR(buf, "STATUS=streaming slot s again");
    notify_status("line one\nREADY=0\rx"); /* a status cannot smuggle an assignment */
    recv_one(fd, buf, sizeof(buf));
    CHECK_STR(buf, "STATUS=line one READY=0 x");
    memset(status, 'y', sizeof(status) - 1); /* cut, still one datagram */
    status[sizeof(status) - 1] = '\0';
    notify_status(status);
    recv_one(fd, buf, sizeof(buf));
    CHECK_EQ_INT(strlen(buf), 511);
    CHECK(strncmp(buf, "STATUS=yyy", 10) == 0);
    notify_send("STOPPING=1");
    recv_one(fd, buf, sizeof(buf));
    CHECK_STR(buf, "STOPPING=1");
    close(fd);
    unlink(path);
    rmdir(dir);
    /* The manager gone: sending fails quietly. */
    notify_send("STOPPING=1");
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    RUN(test_parse);
    RUN(test_messages);
    return check_summary();
}
