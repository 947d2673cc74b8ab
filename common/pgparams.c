/* See pgparams.h. */
#include "pgparams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

void pgparams_init(struct pgparams *p)
{
    memset(p, 0, sizeof(*p));
    p->cap = 16;
    p->keys = xcalloc((size_t)p->cap + 1, sizeof(*p->keys));
    p->vals = xcalloc((size_t)p->cap + 1, sizeof(*p->vals));
}

void pgparams_fini(struct pgparams *p)
{
    for (int i = 0; i < p->n; i++) {
        free((char *)p->keys[i]);
        free((char *)p->vals[i]);
    }
    free(p->keys);
    free(p->vals);
    memset(p, 0, sizeof(*p));
}

static int find(const struct pgparams *p, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->keys[i], key) == 0)
            return i;
    return -1;
}

void pgparams_set(struct pgparams *p, const char *key, const char *val)
{
    int i = find(p, key);

    if (i >= 0) {
        free((char *)p->vals[i]);
        p->vals[i] = xstrdup(val);
        return;
    }
    if (p->n == p->cap) {
        p->cap *= 2;
        p->keys = xrealloc(p->keys, ((size_t)p->cap + 1) * sizeof(*p->keys));
        p->vals = xrealloc(p->vals, ((size_t)p->cap + 1) * sizeof(*p->vals));
    }
    p->keys[p->n] = xstrdup(key);
    p->vals[p->n] = xstrdup(val);
    p->n++;
    p->keys[p->n] = NULL;
    p->vals[p->n] = NULL;
}

void pgparams_default(struct pgparams *p, const char *key, const char *val)
{
    if (find(p, key) < 0)
        pgparams_set(p, key, val);
}

const char *pgparams_get(const struct pgparams *p, const char *key)
{
    int i = find(p, key);

    return i >= 0 ? p->vals[i] : NULL;
}

void pgparams_pin_session(struct pgparams *p, const char *search_path, const char *before,
                          const char *after)
{
    const char *user = pgparams_get(p, "options");
    size_t len;
    char *options;

    if (search_path == NULL)
        search_path = PGPARAMS_SEARCH_PATH;
    len = (before ? strlen(before) : 0) + (user ? strlen(user) : 0) + strlen(search_path) +
          (after ? strlen(after) : 0) + 32;
    options = xmalloc(len);
    snprintf(options, len, "%s%s%s%s-c search_path=%s%s%s", before ? before : "", before ? " " : "",
             user ? user : "", user ? " " : "", search_path, after ? " " : "", after ? after : "");
    pgparams_set(p, "options", options);
    free(options);
    /* A keyword, not an option: libpq then knows the encoding it escapes for. */
    pgparams_set(p, "client_encoding", PGPARAMS_CLIENT_ENCODING);
}
