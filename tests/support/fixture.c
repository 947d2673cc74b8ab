#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "lsn.h"
#include "xmem.h"

const char *fixture_dir(void)
{
    const char *dir = getenv("FIXTURES_DIR");

    return dir != NULL && dir[0] != '\0' ? dir : "tests/fixtures";
}

/* Parses one "<lsn> <hex>" line into m (data allocated). */
static bool parse_line(char *line, struct fixture_msg *m)
{
    char *hex = strchr(line, ' ');
    size_t nhex;

    if (hex == NULL)
        return false;
    *hex++ = '\0';
    if (!lsn_parse(line, &m->lsn))
        return false;
    nhex = strcspn(hex, "\r\n");
    if (nhex == 0 || nhex % 2 != 0)
        return false;
    m->len = nhex / 2;
    m->data = xmalloc(m->len);
    for (size_t i = 0; i < m->len; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            free(m->data);
            return false;
        }
        m->data[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

bool fixture_load(const char *name, struct fixture *fx)
{
    char path[1024];
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    bool streamed = false, ok = true;
    FILE *f;

    fx->msgs = NULL;
    fx->n = 0;
    snprintf(path, sizeof(path), "%s/%s", fixture_dir(), name);
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open fixture %s (run from the repo root or set FIXTURES_DIR)\n",
                path);
        return false;
    }
    while (getline(&line, &cap, f) > 0) {
        struct fixture_msg *m;

        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (fx->n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            fx->msgs = xrealloc(fx->msgs, alloc * sizeof(*fx->msgs));
        }
        m = &fx->msgs[fx->n];
        if (!parse_line(line, m)) {
            fprintf(stderr, "%s: bad line %zu\n", path, fx->n + 1);
            ok = false;
            break;
        }
        if (m->data[0] == 'E') /* Stream Stop */
            streamed = false;
        m->streamed = streamed;
        if (m->data[0] == 'S') /* Stream Start */
            streamed = true;
        fx->n++;
    }
    free(line);
    fclose(f);
    if (ok && fx->n == 0)
        fprintf(stderr, "%s: no message\n", path);
    if (!ok || fx->n == 0) {
        fixture_free(fx);
        return false;
    }
    return true;
}

void fixture_free(struct fixture *fx)
{
    for (size_t i = 0; i < fx->n; i++)
        free(fx->msgs[i].data);
    free(fx->msgs);
    fx->msgs = NULL;
    fx->n = 0;
}
