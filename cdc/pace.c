#include "pace.h"

#include <poll.h>
#include <stdlib.h>
#include <time.h>

int64_t pace_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pace_monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void pace_sleep_ms(int ms, const struct relay_config *cfg)
{
    struct pollfd pfd = {.fd = cfg->stop_fd, .events = POLLIN};

    if (cfg->stop != NULL && *cfg->stop)
        return;
    if (cfg->stop_fd >= 0)
        (void)poll(&pfd, 1, ms);
    else
        (void)poll(NULL, 0, ms);
}

int pace_backoff_next(int current_ms, int max_ms)
{
    int next = current_ms == 0 ? 100 : current_ms * 2;

    if (next > max_ms)
        next = max_ms;
    if (next < 100)
        next = 100;
    return next / 2 + (int)(random() % (next / 2 + 1));
}
