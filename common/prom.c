/*
 * One writer for both binaries' /metrics. Counts are printed as integers,
 * seconds from microseconds exactly (no floating point), so a value read
 * back equals what was counted.
 */
#include "prom.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "xmem.h"

void prom_init(struct prom_buf *b)
{
    b->cap = 4096;
    b->len = 0;
    b->p = xmalloc(b->cap);
    b->p[0] = '\0';
}

char *prom_take(struct prom_buf *b)
{
    char *p = b->p;

    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

static void vappend(struct prom_buf *b, const char *fmt, va_list ap) PRINTF_FMT(2, 0);

static void vappend(struct prom_buf *b, const char *fmt, va_list ap)
{
    for (;;) {
        va_list aq;
        int n;

        va_copy(aq, ap);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, aq);
        va_end(aq);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n;
        b->p = xrealloc(b->p, b->cap);
    }
}

void prom_printf(struct prom_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vappend(b, fmt, ap);
    va_end(ap);
}

void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
    prom_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_label_value(struct prom_buf *b, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\')
            prom_printf(b, "\\\\");
        else if (*v == '"')
            prom_printf(b, "\\\"");
        else if (*v == '\n')
            prom_printf(b, "\\n");
        else
            prom_printf(b, "%c", *v);
    }
}

static void sample_name(struct prom_buf *b, const char *name, const char *labels)
{
    if (labels != NULL && labels[0] != '\0')
        prom_printf(b, "%s{%s} ", name, labels);
    else
        prom_printf(b, "%s ", name);
}

void prom_u64(struct prom_buf *b, const char *name, const char *labels, uint64_t v)
{
    sample_name(b, name, labels);
    prom_printf(b, "%" PRIu64 "\n", v);
}

void prom_i64(struct prom_buf *b, const char *name, const char *labels, int64_t v)
{
    sample_name(b, name, labels);
    prom_printf(b, "%" PRId64 "\n", v);
}

void prom_double(struct prom_buf *b, const char *name, const char *labels, double v)
{
    sample_name(b, name, labels);
    prom_printf(b, "%.6f\n", v);
}

static void seconds_text(struct prom_buf *b, int64_t us)
{
    uint64_t u = us > 0 ? (uint64_t)us : 0;

    prom_printf(b, "%" PRIu64 ".%06" PRIu64, u / 1000000, u % 1000000);
}

void prom_seconds(struct prom_buf *b, const char *name, const char *labels, int64_t us)
{
    sample_name(b, name, labels);
    seconds_text(b, us);
    prom_printf(b, "\n");
}

void prom_metric_u64(struct prom_buf *b, const char *name, const char *type, const char *help,
                     uint64_t v)
{
    prom_family(b, name, type, help);
    prom_u64(b, name, NULL, v);
}

int prom_bucket_index(const struct prom_buckets *bk, int64_t us)
{
    int i = 0;

    /* `le` is inclusive: an observation equal to a bound belongs to that bucket. */
    while (i < bk->n && us > bk->le_us[i])
        i++;
    return i;
}

void prom_hist_observe(struct prom_hist *h, const struct prom_buckets *bk, int64_t us)
{
    if (us < 0)
        us = 0;
    h->bucket[prom_bucket_index(bk, us)]++;
    h->sum_us += (uint64_t)us;
}

uint64_t prom_hist_count(const struct prom_hist *h, const struct prom_buckets *bk)
{
    uint64_t n = 0;

    for (int i = 0; i <= bk->n; i++)
        n += h->bucket[i];
    return n;
}

char *prom_le_text(int64_t us, char *buf, size_t len)
{
    char frac[8];
    int n;

    snprintf(frac, sizeof(frac), "%06lld", (long long)(us % 1000000));
    for (n = 6; n > 0 && frac[n - 1] == '0'; n--)
        frac[n - 1] = '\0';
    if (n == 0)
        snprintf(buf, len, "%lld", (long long)(us / 1000000));
    else
        snprintf(buf, len, "%lld.%s", (long long)(us / 1000000), frac);
    return buf;
}

void prom_histogram(struct prom_buf *b, const char *name, const char *labels,
                    const struct prom_buckets *bk, const struct prom_hist *h)
{
    const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
    uint64_t cum = 0;
    char le[32];

    if (labels == NULL)
        labels = "";
    for (int i = 0; i <= bk->n; i++) {
        cum += h->bucket[i];
        prom_printf(b, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep,
                    i < bk->n ? prom_le_text(bk->le_us[i], le, sizeof(le)) : "+Inf", cum);
    }
    prom_printf(b, "%s_sum", name);
    if (labels[0] != '\0')
        prom_printf(b, "{%s}", labels);
    prom_printf(b, " ");
    seconds_text(b, (int64_t)h->sum_us);
    prom_printf(b, "\n%s_count", name);
    if (labels[0] != '\0')
        prom_printf(b, "{%s}", labels);
    prom_printf(b, " %" PRIu64 "\n", cum);
}

/* ---- process_* ---------------------------------------------------------- */

/* Reads the next space-separated unsigned field at *p. */
static bool next_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    while (*s == ' ')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t digit = (uint64_t)(*s - '0');

        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = v;
    *p = s;
    return true;
}

/* Skips one space-separated field (of any text) at *p. */
static bool skip_field(const char **p)
{
    const char *s = *p;

    while (*s == ' ')
        s++;
    if (*s == '\0' || *s == '\n')
        return false;
    while (*s != ' ' && *s != '\0' && *s != '\n')
        s++;
    *p = s;
    return true;
}

bool prom_parse_proc_stat(const char *text, struct prom_proc_stat *out)
{
    /* proc(5): pid (comm) state ppid ... field 14 utime, 15 stime, 22
     * starttime, 23 vsize, 24 rss. comm may hold anything but is at most 16
     * bytes, and the last ')' ends it. */
    const char *p = strrchr(text, ')');
    uint64_t v;

    if (p == NULL)
        return false;
    p++;
    for (int field = 3; field <= 24; field++) {
        if (field == 14 || field == 15 || field >= 22) {
            if (!next_u64(&p, &v))
                return false;
            if (field == 14)
                out->utime = v;
            else if (field == 15)
                out->stime = v;
            else if (field == 22)
                out->starttime = v;
            else if (field == 23)
                out->vsize = v;
            else
                out->rss = v;
        } else if (!skip_field(&p)) {
            return false;
        }
    }
    return true;
}

bool prom_parse_btime(const char *text, uint64_t *out)
{
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');

        if (strncmp(line, "btime ", 6) == 0) {
            const char *p = line + 6;

            return next_u64(&p, out) && (*p == '\n' || *p == '\0');
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

/* Reads a small /proc file whole into buf (NUL-terminated); false on error. */
static bool read_small(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return false;
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

static int64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    const struct dirent *e;
    int64_t n = 0;

    if (d == NULL)
        return -1;
    /* The directory's own descriptor is counted, as the client libraries
     * count it (they read the same directory the same way). */
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

void prom_process_read(struct prom_process *out, int64_t fallback_start_us)
{
    char stat[1024], sys[8192];
    struct prom_proc_stat ps;
    struct rlimit rl;
    uint64_t btime;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);

    memset(out, 0, sizeof(*out));
    out->open_fds = -1;
    out->max_fds = -1;
    out->start_time_s = (double)fallback_start_us / 1e6;
    if (tick <= 0 || page <= 0 || !read_small("/proc/self/stat", stat, sizeof(stat)) ||
        !prom_parse_proc_stat(stat, &ps))
        return;
    out->known = true;
    out->cpu_seconds = (double)(ps.utime + ps.stime) / (double)tick;
    out->virtual_bytes = ps.vsize;
    out->resident_bytes = ps.rss * (uint64_t)page;
    if (read_small("/proc/stat", sys, sizeof(sys)) && prom_parse_btime(sys, &btime))
        out->start_time_s = (double)btime + (double)ps.starttime / (double)tick;
    out->open_fds = count_fds();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        out->max_fds = (int64_t)rl.rlim_cur;
}

void prom_process(struct prom_buf *b, const struct prom_process *p)
{
    /* Names, types and help as client_golang's and client_python's process collector. */
    if (p->known) {
        prom_family(b, "process_cpu_seconds_total", "counter",
                    "Total user and system CPU time spent in seconds.");
        prom_double(b, "process_cpu_seconds_total", NULL, p->cpu_seconds);
        if (p->open_fds >= 0) {
            prom_family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
            prom_i64(b, "process_open_fds", NULL, p->open_fds);
        }
        if (p->max_fds >= 0) {
            prom_family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
            prom_i64(b, "process_max_fds", NULL, p->max_fds);
        }
        prom_metric_u64(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                        p->virtual_bytes);
        prom_metric_u64(b, "process_resident_memory_bytes", "gauge",
                        "Resident memory size in bytes.", p->resident_bytes);
    }
    prom_family(b, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.");
    prom_double(b, "process_start_time_seconds", NULL, p->start_time_s);
}
