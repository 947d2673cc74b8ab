/*
 * One-line stderr logging: "2026-11-26T23:00:00.123Z level msg key=value ...".
 * Thread-safe (each line is written with a single write). Never call from a
 * signal handler.
 */
#ifndef ORDERS_COMMON_LOG_H
#define ORDERS_COMMON_LOG_H

#include <stdbool.h>

#include "compiler.h"

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Process-wide threshold; set once at startup before threads start. */
extern enum log_level log_threshold;

/* Parses "error", "warn", "info", "debug". Returns false on anything else. */
bool log_level_parse(const char *s, enum log_level *out);

void log_write(enum log_level level, const char *fmt, ...) PRINTF_FMT(2, 3);

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_threshold >= LOG_LEVEL_DEBUG)                                                      \
            log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);                                               \
    } while (0)

#endif
