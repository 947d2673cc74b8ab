/*
 * The project's version and the libraries each binary runs with, for
 * --version (as kcat -V prints its librdkafka) and the *_build_info metric.
 * One release ships both binaries, so they share ORDERS_CDC_VERSION.
 */
#ifndef ORDERS_COMMON_VERSION_H
#define ORDERS_COMMON_VERSION_H

#include <stdio.h>

#include "prom.h"

#define ORDERS_CDC_VERSION "0.1.0"

/* Versions of the shared libraries loaded at run time (not the headers the
 * build saw); NULL for one the binary does not use. Borrowed strings. */
struct version_libs {
    const char *libpq;
    const char *librdkafka;
    const char *jansson;
    const char *libmicrohttpd;
};

/* PQlibVersion()'s number as text: 150013 -> "15.13", 90624 -> "9.6.24". Returns buf. */
const char *version_format_pg(int v, char *buf, size_t len);

/* --version: "PROG VERSION" on the first line (scripts read it), then one
 * "  LIBRARY VERSION" line per library. */
void version_print(FILE *f, const char *prog, const struct version_libs *libs);

/* The NAME gauge, always 1, with labels version and one per library:
 * NAME{version="0.1.0",libpq="15.13",...} 1, with HELP and TYPE. */
void version_build_info(struct prom_buf *b, const char *name, const char *help,
                        const struct version_libs *libs);

#endif
