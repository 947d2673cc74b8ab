/*
 * orders-api entry point: parses the configuration, then either applies the
 * schema migrations (--migrate) or serves HTTP until SIGTERM/SIGINT, draining
 * requests in progress before it exits. Exit codes: 0 clean, 1 error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/config.h"
#include "api/http.h"
#include "api/migrations.h"
#include "api/orders.h"
#include "api/migrate_pg.h"
#include "api/store_pg.h"
#include "log.h"
#include "notify.h"
#include "version.h"

#define DRAIN_TIMEOUT_MS 10000 /* bounded wait for requests in progress at shutdown */

static volatile sig_atomic_t stop_signal;
static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    int saved = errno;

    if (stop_signal != 0)
        _exit(1); /* second signal: the operator does not want to wait */
    stop_signal = sig;
    /* Wakes the main loop; a full pipe already means "wake up". */
    if (write(stop_pipe[1], "x", 1) < 0) {
        /* nothing to do in a handler */
    }
    errno = saved;
}

/* Self-pipe plus handlers. Returns 0 or -1 with errno set. */
static int signals_setup(void)
{
    struct sigaction sa;

    if (pipe(stop_pipe) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(stop_pipe[i], F_GETFL);

        if (fl < 0 || fcntl(stop_pipe[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(stop_pipe[i], F_SETFD, FD_CLOEXEC) != 0)
            return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = on_stop_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* Blocks (block=true) or unblocks SIGTERM/SIGINT in the calling thread. */
static void stop_signals_mask(bool block)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static int run_migrate(const struct config *cfg)
{
    char err[STORE_ERR_MAX];
    int applied = 0, version = 0;

    if (migrate_pg_run(cfg->database_url, cfg->db_timeout_ms, migrations, migrations_count,
                       &applied, &version, err, sizeof(err)) != 0) {
        log_fields(LOG_LEVEL_ERROR, "migrate failed", LOG_STR("error", err));
        return 1;
    }
    if (applied == 0)
        log_fields(LOG_LEVEL_INFO, "schema up to date", LOG_INT("version", version));
    else
        log_fields(LOG_LEVEL_INFO, "migrations done", LOG_INT("applied", applied),
                   LOG_INT("version", version));
    return 0;
}

/* Sleeps until a stop signal arrives. */
static void wait_for_stop(void)
{
    struct pollfd pfd = {.fd = stop_pipe[0], .events = POLLIN};

    while (stop_signal == 0) {
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            log_fields(LOG_LEVEL_ERROR, "poll failed", LOG_STR("error", strerror(errno)));
            return;
        }
    }
}

/* The libraries as loaded (orders_api_build_info, --version). */
static const struct version_libs *api_libs(void)
{
    static char libpq[16];
    static struct version_libs libs;

    libs.libpq = version_format_pg(store_pg_libpq_version(), libpq, sizeof(libpq));
    libs.jansson = orders_jansson_version();
    libs.libmicrohttpd = http_mhd_version();
    return &libs;
}

/* start_unix_us: when main() began, for process_start_time_seconds. */
static int run_server(const struct config *cfg, int64_t start_unix_us)
{
    struct store_pg_options sopt = {
        .database_url = cfg->database_url,
        .pool_size = cfg->pool_size,
        .timeout_ms = cfg->db_timeout_ms,
        .outbox_mode = cfg->outbox_mode,
    };
    struct http_options hopt = {
        .addr = (const struct sockaddr *)&cfg->listen_addr,
        .addr_len = cfg->listen_addr_len,
        .threads = cfg->pool_size,
        .ops = &store_pg_ops,
        .start_unix_us = start_unix_us,
        .libs = api_libs(),
    };
    struct store_pg *store;
    struct http_server *srv;
    char err[STORE_ERR_MAX], addr[HTTP_ADDR_STR_MAX], status[HTTP_ADDR_STR_MAX + 32];
    int connected = 0;

    store = store_pg_open(&sopt, &connected, err, sizeof(err));
    if (store == NULL) {
        log_fields(LOG_LEVEL_ERROR, "database url invalid", LOG_STR("error", err));
        return 1;
    }
    if (connected < cfg->pool_size)
        log_fields(LOG_LEVEL_WARN, "database not fully reachable at startup, will retry",
                   LOG_INT("connected", connected), LOG_INT("pool_size", cfg->pool_size),
                   LOG_STR("error", err));
    hopt.store = store;
    /* Worker threads inherit this mask, so only the main thread takes the signals. */
    stop_signals_mask(true);
    srv = http_server_start(&hopt, err, sizeof(err));
    stop_signals_mask(false);
    if (srv == NULL) {
        log_fields(LOG_LEVEL_ERROR, "http server failed to start", LOG_STR("listen", cfg->listen),
                   LOG_STR("error", err));
        store_pg_close(store);
        return 1;
    }
    http_server_addr(srv, addr, sizeof(addr));
    /* Listening: from here a request is answered (/readyz tells whether the
     * database is up), which is what systemd's Type=notify waits for. */
    log_fields(
        LOG_LEVEL_INFO, "listening", LOG_STR("addr", addr), LOG_INT("pool_size", cfg->pool_size),
        LOG_STR("outbox_mode", cfg->outbox_mode == STORE_OUTBOX_MESSAGE ? "message" : "table"),
        LOG_STR("version", ORDERS_CDC_VERSION));
    /* After the log line, so whoever sees READY=1 finds the address logged. */
    snprintf(status, sizeof(status), "listening on %s", addr);
    notify_ready(status);

    wait_for_stop();
    notify_send("STOPPING=1\nSTATUS=draining requests");

    log_fields(LOG_LEVEL_INFO, "shutting down",
               LOG_STR("signal", stop_signal == SIGINT ? "SIGINT" : "SIGTERM"),
               LOG_INT("in_flight", http_server_inflight(srv)));
    http_server_quiesce(srv);
    if (!http_server_drain(srv, DRAIN_TIMEOUT_MS))
        log_fields(LOG_LEVEL_WARN, "requests still in progress after drain timeout",
                   LOG_INT("timeout_ms", DRAIN_TIMEOUT_MS),
                   LOG_INT("in_flight", http_server_inflight(srv)));
    http_server_stop(srv);
    store_pg_close(store);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX], desc[512];
    struct timespec start;
    int rc;

    clock_gettime(CLOCK_REALTIME, &start);
    log_detect_journal();
    notify_init();
    if (config_parse(&cfg, argc, argv, getenv, err, sizeof(err)) != 0) {
        fprintf(stderr, "orders-api: %s\nTry 'orders-api --help'.\n", err);
        config_fini(&cfg);
        return 2;
    }
    switch (cfg.action) {
    case CONFIG_ACTION_HELP:
        config_usage(stdout, "orders-api");
        return 0;
    case CONFIG_ACTION_VERSION:
        version_print(stdout, "orders-api", api_libs());
        return 0;
    case CONFIG_ACTION_SERVE:
    case CONFIG_ACTION_MIGRATE:
        break;
    }
    if (cfg.print_config) {
        /* Before the DATABASE_URL check: an incomplete configuration is worth seeing. */
        config_print(stdout, &cfg);
        config_fini(&cfg);
        return 0;
    }
    if (cfg.database_url == NULL) {
        fprintf(stderr, "orders-api: no database: set DATABASE_URL or pass --database-url\n"
                        "Try 'orders-api --help'.\n");
        rc = 2;
    } else if (store_pg_describe(cfg.database_url, desc, sizeof(desc), err, sizeof(err)) != 0) {
        fprintf(stderr, "orders-api: --database-url/DATABASE_URL: %s\n", err);
        rc = 2;
    } else if (log_threshold = cfg.log_level, log_output = cfg.log_format,
               log_add_dsn_secrets(cfg.database_url), signals_setup() != 0) {
        /* log_add_dsn_secrets: libpq's messages may quote the connection string,
         * never its password. */
        log_fields(LOG_LEVEL_ERROR, "signal setup failed", LOG_STR("error", strerror(errno)));
        rc = 1;
    } else {
        log_fields(LOG_LEVEL_INFO, "starting", LOG_STR("version", ORDERS_CDC_VERSION),
                   LOG_STR("mode", cfg.action == CONFIG_ACTION_MIGRATE ? "migrate" : "serve"),
                   LOG_STR("database", desc));
        if (cfg.action == CONFIG_ACTION_MIGRATE)
            rc = run_migrate(&cfg);
        else
            rc = run_server(&cfg, (int64_t)start.tv_sec * 1000000 + start.tv_nsec / 1000);
    }
    config_fini(&cfg);
    return rc;
}
