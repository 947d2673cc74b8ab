/*
 * Library versions come from the libraries' own run-time calls (each in its
 * module: PQlibVersion, rd_kafka_version_str, jansson_version_str,
 * MHD_get_version), so they say what is loaded after an upgrade of the
 * packages, not what the binary was built against.
 */
#include "version.h"

struct lib {
    const char *name;
    const char *version;
};

static int libs_of(const struct version_libs *libs, struct lib out[4])
{
    const struct lib all[4] = {
        {"libpq", libs->libpq},
        {"librdkafka", libs->librdkafka},
        {"jansson", libs->jansson},
        {"libmicrohttpd", libs->libmicrohttpd},
    };
    int n = 0;

    for (int i = 0; i < 4; i++)
        if (all[i].version != NULL)
            out[n++] = all[i];
    return n;
}

void version_print(FILE *f, const char *prog, const struct version_libs *libs)
{
    struct lib l[4];
    int n = libs_of(libs, l);

    fprintf(f, "%s %s\n", prog, ORDERS_CDC_VERSION);
    for (int i = 0; i < n; i++)
        fprintf(f, "  %s %s\n", l[i].name, l[i].version);
}

void version_build_info(struct prom_buf *b, const char *name, const char *help,
                        const struct version_libs *libs)
{
    struct lib l[4];
    int n = libs_of(libs, l);

    prom_family(b, name, "gauge", help);
    prom_printf(b, "%s{version=\"", name);
    prom_label_value(b, ORDERS_CDC_VERSION);
    for (int i = 0; i < n; i++) {
        prom_printf(b, "\",%s=\"", l[i].name);
        prom_label_value(b, l[i].version);
    }
    prom_printf(b, "\"} 1\n");
}

const char *version_format_pg(int v, char *buf, size_t len)
{
    /* Since PostgreSQL 10 the number is major * 10000 + minor. */
    if (v >= 100000)
        snprintf(buf, len, "%d.%d", v / 10000, v % 10000);
    else
        snprintf(buf, len, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    return buf;
}
