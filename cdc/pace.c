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

void pace_sleep_ms(int ms, const struct stop_signal *stop)
{
    struct pollfd pfd = {.fd = stop->fd, .events = POLLIN};

    if (stop->flag != NULL && *stop->flag)
        return;
    if (stop->fd >= 0)
        (void)poll(&pfd, 1, ms);
    else
        (void)poll(NULL, 0, ms);
}

bool pace_stop_requested(const struct stop_signal *stop, int timeout_ms, int64_t now_us,
                         int64_t *deadline_us)
{
    if (stop->flag == NULL || !*stop->flag)
        return false;
    if (*deadline_us == 0)
        *deadline_us = now_us + (int64_t)timeout_ms * 1000;
    return true;
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
