/*
 * common/prom.c, the one Prometheus writer of both binaries: bucket
 * boundaries, cumulative histograms and their +Inf/_count/_sum, exact
 * seconds, label escaping, the /proc parsers (from fixtures, including a
 * command name with spaces and parentheses) and a live read of this
 * process; common/version.c's --version and build_info.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit/check.h"

#include "prom.h"
#include "version.h"

static const int64_t le_us[] = {100, 2500, 1000000, 10000000};
static const struct prom_buckets bk = {le_us, 4};

static void test_le_text(void)
{
    char buf[32];

    CHECK_STR(prom_le_text(100, buf, sizeof(buf)), "0.0001");
    CHECK_STR(prom_le_text(250, buf, sizeof(buf)), "0.00025");
    CHECK_STR(prom_le_text(2500, buf, sizeof(buf)), "0.0025");
    CHECK_STR(prom_le_text(1000000, buf, sizeof(buf)), "1");
    CHECK_STR(prom_le_text(2500000, buf, sizeof(buf)), "2.5");
    CHECK_STR(prom_le_text(30000000, buf, sizeof(buf)), "30");
    CHECK_STR(prom_le_text(1, buf, sizeof(buf)), "0.000001");
}

static void test_histogram(void)
{
    struct prom_hist h;
    struct prom_buf b;
    char *text;

    memset(&h, 0, sizeof(h));
    CHECK_EQ_INT(prom_bucket_index(&bk, 0), 0);
    CHECK_EQ_INT(prom_bucket_index(&bk, 100), 0); /* le is inclusive */
    CHECK_EQ_INT(prom_bucket_index(&bk, 101), 1);
    CHECK_EQ_INT(prom_bucket_index(&bk, 10000000), 3);
    CHECK_EQ_INT(prom_bucket_index(&bk, 10000001), 4); /* +Inf */
    prom_hist_observe(&h, &bk, 100);
    prom_hist_observe(&h, &bk, -7); /* clocks apart: 0 */
    prom_hist_observe(&h, &bk, 2000);
    prom_hist_observe(&h, &bk, 20000000);
    CHECK_EQ_U64(prom_hist_count(&h, &bk), 4);
    CHECK_EQ_U64(h.sum_us, 20002100);

    prom_init(&b);
    prom_family(&b, "x_seconds", "histogram", "help text");
    prom_histogram(&b, "x_seconds", "route=\"a\"", &bk, &h);
    prom_histogram(&b, "x_seconds", NULL, &bk, &h);
    text = prom_take(&b);
    CHECK(b.p == NULL);
    CHECK_STR(text, "# HELP x_seconds help text\n"
                    "# TYPE x_seconds histogram\n"
                    "x_seconds_bucket{route=\"a\",le=\"0.0001\"} 2\n"
                    "x_seconds_bucket{route=\"a\",le=\"0.0025\"} 3\n"
                    "x_seconds_bucket{route=\"a\",le=\"1\"} 3\n"
                    "x_seconds_bucket{route=\"a\",le=\"10\"} 3\n"
                    "x_seconds_bucket{route=\"a\",le=\"+Inf\"} 4\n"
                    "x_seconds_sum{route=\"a\"} 20.002100\n"
                    "x_seconds_count{route=\"a\"} 4\n"
                    "x_seconds_bucket{le=\"0.0001\"} 2\n"
                    "x_seconds_bucket{le=\"0.0025\"} 3\n"
                    "x_seconds_bucket{le=\"1\"} 3\n"
                    "x_seconds_bucket{le=\"10\"} 3\n"
                    "x_seconds_bucket{le=\"+Inf\"} 4\n"
                    "x_seconds_sum 20.002100\n"
                    "x_seconds_count 4\n");
    free(text);
}

static void test_samples_and_escaping(void)
{
    struct prom_buf b;
    char *text;
    char big[6000];

    prom_init(&b);
    prom_u64(&b, "a_total", NULL, UINT64_MAX);
    prom_i64(&b, "b", "k=\"v\"", -3);
    prom_seconds(&b, "c_seconds", "", 1500001);
    prom_seconds(&b, "d_seconds", NULL, -5);
    prom_double(&b, "e", NULL, 0.25);
    prom_printf(&b, "f{x=\"");
    prom_label_value(&b, "a\\b\"c\nd");
    prom_printf(&b, "\"} 1\n");
    /* Grows past the first allocation. */
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    prom_printf(&b, "# %s\n", big);
    text = prom_take(&b);
    CHECK(strncmp(text,
                  "a_total 18446744073709551615\nb{k=\"v\"} -3\nc_seconds 1.500001\n"
                  "d_seconds 0.000000\ne 0.250000\nf{x=\"a\\\\b\\\"c\\nd\"} 1\n# zzz",
                  strlen("a_total 18446744073709551615\nb{k=\"v\"} -3\nc_seconds 1.500001\n"
                         "d_seconds 0.000000\ne 0.250000\nf{x=\"a\\\\b\\\"c\\nd\"} 1\n# zzz")) ==
          0);
    CHECK_EQ_U64(strlen(text), strlen("a_total 18446744073709551615\nb{k=\"v\"} -3\n"
                                      "c_seconds 1.500001\nd_seconds 0.000000\ne 0.250000\n"
                                      "f{x=\"a\\\\b\\\"c\\nd\"} 1\n# \n") +
                                   sizeof(big) - 1);
    free(text);
}

static void test_proc_parsers(void)
{
    /* proc(5) field 2 is the command in parentheses: it may hold spaces and ")". */
    static const char stat[] =
        "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 75 0 0 20 0 5 0 "
        "123456 268435456 8192 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 "
        "0\n";
    static const char sys[] = "cpu  1 2 3\nintr 5\nctxt 6\nbtime 1700000000\nprocesses 9\n";
    struct prom_proc_stat ps;
    uint64_t btime = 0;

    memset(&ps, 0, sizeof(ps));
    CHECK(prom_parse_proc_stat(stat, &ps));
    CHECK_EQ_U64(ps.utime, 250);
    CHECK_EQ_U64(ps.stime, 75);
    CHECK_EQ_U64(ps.starttime, 123456);
    CHECK_EQ_U64(ps.vsize, 268435456);
    CHECK_EQ_U64(ps.rss, 8192);
    CHECK(!prom_parse_proc_stat("4242 (x) S 1 2 3\n", &ps)); /* cut short */
    CHECK(!prom_parse_proc_stat("no parenthesis at all", &ps));
    CHECK(!prom_parse_proc_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 1 0 0 20 0 1 0 1 1 1\n", &ps));
    CHECK(prom_parse_btime(sys, &btime));
    CHECK_EQ_U64(btime, 1700000000);
    CHECK(!prom_parse_btime("cpu 1\nbtime x\n", &btime));
    CHECK(!prom_parse_btime("cpu 1\n", &btime));
    CHECK(!prom_parse_btime("xbtime 5\n", &btime));
}

static void test_process_live(void)
{
    struct prom_process p;
    struct prom_buf b;
    char *text;
    time_t now = time(NULL);

    prom_process_read(&p, 42000000);
    CHECK(p.known); /* Linux: /proc is there */
    CHECK(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes);
    CHECK(p.open_fds >= 3);
    CHECK(p.cpu_seconds >= 0);
    /* From boot time + start ticks: this test started within the last minutes. */
    CHECK(p.start_time_s > (double)now - 600 && p.start_time_s <= (double)now + 1);
    prom_init(&b);
    prom_process(&b, &p);
    text = prom_take(&b);
    CHECK(strstr(text, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ") !=
          NULL);
    CHECK(strstr(text, "\nprocess_open_fds ") != NULL);
    CHECK(strstr(text, "\nprocess_resident_memory_bytes ") != NULL);
    CHECK(strstr(text, "\nprocess_virtual_memory_bytes ") != NULL);
    CHECK(strstr(text, "\nprocess_start_time_seconds ") != NULL);
    free(text);

    /* Without /proc: the start time given, nothing else. */
    memset(&p, 0, sizeof(p));
    p.start_time_s = 42.5;
    p.open_fds = p.max_fds = -1;
    prom_init(&b);
    prom_process(&b, &p);
    text = prom_take(&b);
    CHECK_STR(text, "# HELP process_start_time_seconds Start time of the process since unix epoch "
                    "in seconds.\n# TYPE process_start_time_seconds gauge\n"
                    "process_start_time_seconds 42.500000\n");
    free(text);
}

static void test_versions(void)
{
    static const struct version_libs api = {"15.13", NULL, "2.14", "0.9.75"};
    char buf[32], *text = NULL;
    size_t n = 0;
    FILE *f;
    struct prom_buf b;

    CHECK_STR(version_format_pg(150013, buf, sizeof(buf)), "15.13");
    CHECK_STR(version_format_pg(180000, buf, sizeof(buf)), "18.0");
    CHECK_STR(version_format_pg(90624, buf, sizeof(buf)), "9.6.24");
    f = open_memstream(&text, &n);
    version_print(f, "orders-api", &api);
    fclose(f);
    CHECK_STR(text, "orders-api " ORDERS_CDC_VERSION
                    "\n  libpq 15.13\n  jansson 2.14\n  libmicrohttpd 0.9.75\n");
    free(text);
    prom_init(&b);
    version_build_info(&b, "x_build_info", "Always 1.", &api);
    text = prom_take(&b);
    CHECK_STR(text, "# HELP x_build_info Always 1.\n# TYPE x_build_info gauge\n"
                    "x_build_info{version=\"" ORDERS_CDC_VERSION "\",libpq=\"15.13\","
                    "jansson=\"2.14\",libmicrohttpd=\"0.9.75\"} 1\n");
    free(text);
}

int main(void)
{
    RUN(test_le_text);
    RUN(test_histogram);
    RUN(test_samples_and_escaping);
    RUN(test_proc_parsers);
    RUN(test_process_live);
    RUN(test_versions);
    return check_summary();
}
