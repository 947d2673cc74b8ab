/*
 * Allocation that aborts on out-of-memory, as redis's zmalloc and
 * PostgreSQL's pg_malloc do, so callers never test for NULL.
 */
#ifndef ORDERS_COMMON_XMEM_H
#define ORDERS_COMMON_XMEM_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
