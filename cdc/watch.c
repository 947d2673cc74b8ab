/*
 * The publication check asks on a short-lived connection and blocks for it;
 * the heartbeat keeps its connection and never waits for an answer.
 */
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>

#include "xmem.h"

struct watch {
    const struct repl_opts *opts;
    struct repl_heartbeat *heartbeat;
};

struct watch *watch_new(const struct repl_opts *opts)
{
    struct watch *w = xcalloc(1, sizeof(*w));

    w->opts = opts;
    return w;
}

void watch_free(struct watch *w)
{
    if (w == NULL)
        return;
    repl_heartbeat_close(w->heartbeat);
    free(w);
}

static void check_start(void *arg)
{
    (void)arg;
}

static enum relay_check check_result(void *arg, char *err, size_t errlen)
{
    struct watch *w = arg;

    switch (repl_publication_check(w->opts, err, errlen)) {
    case REPL_OK:
        return RELAY_CHECK_PASSED;
    case REPL_EFATAL:
        return RELAY_CHECK_GONE;
    default:
        return RELAY_CHECK_FAILED;
    }
}

static enum repl_status beat(void *arg, char *err, size_t errlen)
{
    struct watch *w = arg;
    char why[768];

    if (w->heartbeat == NULL) {
        w->heartbeat = repl_heartbeat_open(w->opts, err, errlen);
        if (w->heartbeat == NULL)
            return REPL_ERETRY;
    }
    if (repl_heartbeat_tick(w->heartbeat, why, sizeof(why)) != REPL_OK) {
        snprintf(err, errlen, "%s; reconnecting at the next beat", why);
        repl_heartbeat_close(w->heartbeat);
        w->heartbeat = NULL;
        return REPL_ERETRY;
    }
    return REPL_OK;
}

const struct relay_watch_ops watch_ops = {check_start, check_result, beat};
