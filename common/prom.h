/*
 * The Prometheus text exposition format (0.0.4) for both binaries: one
 * growing-buffer writer, one fixed-bucket histogram type, and the process_*
 * families. Rendering is a pure function of what it is given; only
 * prom_process_read does I/O (/proc). libc only.
 */
#ifndef ORDERS_COMMON_PROM_H
#define ORDERS_COMMON_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* Content-Type of the exposition. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Most finite buckets a histogram has (+Inf comes on top). */
#define PROM_HIST_MAX_BUCKETS 24

/* A text being written: prom_init, appends, prom_take. */
struct prom_buf {
    char *p;
    size_t len, cap;
};

/* Starts an empty text (heap; xmalloc aborts on OOM). */
void prom_init(struct prom_buf *b);

/* The text written so far, NUL-terminated; returns new (free()), b is empty after. */
char *prom_take(struct prom_buf *b);

/* Appends formatted text. */
void prom_printf(struct prom_buf *b, const char *fmt, ...) PRINTF_FMT(2, 3);

/* "# HELP name help\n# TYPE name type\n". help must not hold '\\' or a newline. */
void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help);

/* Appends v as a label value: backslash, double quote and newline escaped. */
void prom_label_value(struct prom_buf *b, const char *v);

/*
 * One sample "name{labels} value\n". labels is NULL or the inside of the
 * braces, already escaped ("route=\"healthz\"").
 */
void prom_u64(struct prom_buf *b, const char *name, const char *labels, uint64_t v);
void prom_i64(struct prom_buf *b, const char *name, const char *labels, int64_t v);
void prom_double(struct prom_buf *b, const char *name, const char *labels, double v);
/* us microseconds as seconds, exactly ("1.000250"). */
void prom_seconds(struct prom_buf *b, const char *name, const char *labels, int64_t us);

/* A family with one unlabelled sample. */
void prom_metric_u64(struct prom_buf *b, const char *name, const char *type, const char *help,
                     uint64_t v);

/* Upper bounds of a histogram's finite buckets, microseconds, increasing. */
struct prom_buckets {
    const int64_t *le_us;
    int n; /* <= PROM_HIST_MAX_BUCKETS */
};

/*
 * A histogram as plain counts: bucket[i] counts observations in
 * (le[i-1], le[i]] (not cumulative: the rendering adds them up), bucket[n]
 * those above the last bound. The count is the sum of the buckets, so the
 * +Inf bucket always equals _count. Callers that need atomics keep their
 * own array and copy it into one of these to render.
 */
struct prom_hist {
    uint64_t bucket[PROM_HIST_MAX_BUCKETS + 1];
    uint64_t sum_us;
};

/* The bucket an observation of us falls in (`le` is inclusive); n for +Inf. */
int prom_bucket_index(const struct prom_buckets *bk, int64_t us);

/* Adds one observation (negative counts as 0). Not thread-safe. */
void prom_hist_observe(struct prom_hist *h, const struct prom_buckets *bk, int64_t us);

/* The number of observations. */
uint64_t prom_hist_count(const struct prom_hist *h, const struct prom_buckets *bk);

/*
 * The samples of one histogram series: name_bucket{labels,le="..."}
 * (cumulative, le in seconds: "0.0025", "1", "+Inf"), name_sum, name_count.
 * labels as for prom_u64. The family line is the caller's.
 */
void prom_histogram(struct prom_buf *b, const char *name, const char *labels,
                    const struct prom_buckets *bk, const struct prom_hist *h);

/* Writes us as seconds without trailing zeros ("0.0001", "2.5", "10"). Returns buf. */
char *prom_le_text(int64_t us, char *buf, size_t len);

/* What the process_* families show, as the Prometheus client libraries'
 * process collector reports it (from /proc/self). */
struct prom_process {
    bool known;         /* /proc/self/stat was read; false: only start time */
    double cpu_seconds; /* user + system */
    uint64_t resident_bytes;
    uint64_t virtual_bytes;
    int64_t open_fds;    /* entries of /proc/self/fd; -1 unknown */
    int64_t max_fds;     /* RLIMIT_NOFILE soft limit; -1 unknown or unlimited */
    double start_time_s; /* Unix seconds */
};

/*
 * Fields of /proc/self/stat's text (pure): utime and stime in clock ticks,
 * starttime in ticks since boot, vsize in bytes, rss in pages. The command
 * name (field 2) may hold spaces and parentheses: fields are counted from
 * the last ')'. @returns false on anything malformed.
 */
struct prom_proc_stat {
    uint64_t utime, stime, starttime, vsize, rss;
};
bool prom_parse_proc_stat(const char *text, struct prom_proc_stat *out);

/* /proc/stat's "btime N" line (pure): boot time, Unix seconds. */
bool prom_parse_btime(const char *text, uint64_t *out);

/*
 * Reads /proc/self/stat, /proc/stat, /proc/self/fd and RLIMIT_NOFILE into
 * *out. fallback_start_us (Unix µs, e.g. taken at the start of main) is the
 * start time when /proc cannot be read (out->known false then).
 * Thread-safe.
 */
void prom_process_read(struct prom_process *out, int64_t fallback_start_us);

/* The process_* families: process_cpu_seconds_total, process_open_fds,
 * process_max_fds, process_virtual_memory_bytes,
 * process_resident_memory_bytes, process_start_time_seconds (only the last
 * when !p->known; process_max_fds left out when unknown). */
void prom_process(struct prom_buf *b, const struct prom_process *p);

#endif
