/*
 * The audit's consumer, after sink_checkpoint_read: partitions assigned by
 * hand (no group, nothing committed), each from rd_kafka_offsets_for_times
 * to the high watermark queried at the start, read_committed so an aborted
 * or open transaction's messages (--exactly-once) never count.
 */
#include "kafka_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Where each partition stops: the high watermark (read_committed: the last
 * stable offset) when the scan started. */
struct part_end {
    size_t topic;
    int32_t partition;
    int64_t end;
    bool done;
};

static int set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err, size_t errlen)
{
    char why[512];

    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return 0;
    if (sink_prop_is_secret(name))
        snprintf(err, errlen, "kafka property %s (value not shown): %s", name, why);
    else
        snprintf(err, errlen, "kafka property %s=%s: %s", name, value, why);
    return -1;
}

static rd_kafka_t *consumer_new(const char *brokers, const struct sink_prop *props, size_t nprops,
                                char *err, size_t errlen)
{
    static const struct sink_prop defaults[] = {
        {"isolation.level", "read_committed"},
        /* The end may be a transaction marker no message stands on: EOF says
         * the partition was read to where it ends for read_committed. */
        {"enable.partition.eof", "true"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"group.id", "cdc-relay-audit"}, /* required by librdkafka; never joined */
        {"client.id", "cdc-relay-audit"},
        {"fetch.max.bytes", "52428800"},
        {"queued.max.messages.kbytes", "65536"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char why[512];

    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (set(conf, defaults[i].name, defaults[i].value, err, errlen) != 0)
            goto fail;
    if (brokers != NULL && set(conf, "bootstrap.servers", brokers, err, errlen) != 0)
        goto fail;
    /* The relay's producer properties that make no sense for a consumer are
     * still accepted by rd_kafka_conf_set (with a warning from librdkafka). */
    for (size_t i = 0; i < nprops; i++)
        if (set(conf, props[i].name, props[i].value, err, errlen) != 0)
            goto fail;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (rk == NULL) {
        snprintf(err, errlen, "cannot create Kafka consumer: %s", why);
        goto fail;
    }
    return rk;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Adds every partition of the known topics to parts (offset = from_ms for
 * offsets_for_times) and ends. */
static int list_partitions(rd_kafka_t *rk, const char *const *topics, size_t ntopics,
                           int64_t from_ms, rd_kafka_topic_partition_list_t *parts,
                           struct part_end **ends, size_t *nends, struct kafka_scan_stats *stats,
                           int timeout_ms, char *err, size_t errlen)
{
    for (size_t t = 0; t < ntopics; t++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[t], NULL);
        rd_kafka_resp_err_t rerr = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);

        rd_kafka_topic_destroy(rkt);
        if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
            snprintf(err, errlen, "topic %s: no metadata: %s", topics[t], rd_kafka_err2str(rerr));
            if (md != NULL)
                rd_kafka_metadata_destroy(md);
            return -1;
        }
        if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            md->topics[0].partition_cnt == 0) {
            stats->missing_topics++;
        } else if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "topic %s: %s", topics[t], rd_kafka_err2str(md->topics[0].err));
            rd_kafka_metadata_destroy(md);
            return -1;
        } else {
            struct part_end *grown =
                realloc(*ends, sizeof(**ends) * (*nends + (size_t)md->topics[0].partition_cnt));

            if (grown == NULL) {
                snprintf(err, errlen, "out of memory");
                rd_kafka_metadata_destroy(md);
                return -1;
            }
            *ends = grown;
            for (int p = 0; p < md->topics[0].partition_cnt; p++) {
                int32_t id = md->topics[0].partitions[p].id;

                rd_kafka_topic_partition_list_add(parts, topics[t], id)->offset = from_ms;
                (*ends)[*nends] = (struct part_end){.topic = t, .partition = id};
                (*nends)++;
            }
        }
        rd_kafka_metadata_destroy(md);
    }
    return 0;
}

static struct part_end *find_end(struct part_end *ends, size_t nends, size_t topic,
                                 int32_t partition)
{
    for (size_t i = 0; i < nends; i++)
        if (ends[i].topic == topic && ends[i].partition == partition)
            return &ends[i];
    return NULL;
}

static size_t topic_index(const char *const *topics, size_t ntopics, const char *name)
{
    for (size_t t = 0; t < ntopics; t++)
        if (strcmp(topics[t], name) == 0)
            return t;
    return ntopics;
}

int kafka_scan(const char *brokers, const struct sink_prop *props, size_t nprops,
               const char *const *topics, size_t ntopics, int64_t from_ms,
               const char *const *headers, size_t nheaders, int idle_timeout_ms, kafka_scan_fn fn,
               void *arg, struct kafka_scan_stats *stats, char *err, size_t errlen)
{
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts = NULL;
    struct part_end *ends = NULL;
    size_t nends = 0, left = 0;
    int rc = -1;
    int64_t last_progress;

    memset(stats, 0, sizeof(*stats));
    if (nheaders > KAFKA_SCAN_MAX_HEADERS) {
        snprintf(err, errlen, "more than %d headers asked for", KAFKA_SCAN_MAX_HEADERS);
        return -1;
    }
    rk = consumer_new(brokers, props, nprops, err, errlen);
    if (rk == NULL)
        return -1;
    parts = rd_kafka_topic_partition_list_new((int)(ntopics > 0 ? ntopics : 1));
    if (list_partitions(rk, topics, ntopics, from_ms, parts, &ends, &nends, stats, idle_timeout_ms,
                        err, errlen) != 0)
        goto out;
    if (parts->cnt == 0) {
        rc = 0;
        goto out;
    }
    /* The start: the first offset whose timestamp is at or after from_ms
     * (the end when there is none, which reads nothing). */
    {
        rd_kafka_resp_err_t rerr = rd_kafka_offsets_for_times(rk, parts, idle_timeout_ms);

        if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "offsets for the start time: %s", rd_kafka_err2str(rerr));
            goto out;
        }
    }
    /* The end of each partition now: later messages are not the audit's. */
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct part_end *e =
            find_end(ends, nends, topic_index(topics, ntopics, tp->topic), tp->partition);
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t rerr = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition,
                                                                    &lo, &hi, idle_timeout_ms);

        if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR && tp->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            rerr = tp->err;
        if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "topic %s partition %d: %s", tp->topic, (int)tp->partition,
                     rd_kafka_err2str(rerr));
            goto out;
        }
        if (tp->offset < 0) /* no message at or after from_ms */
            tp->offset = hi;
        e->end = hi;
        e->done = tp->offset >= hi;
        if (!e->done)
            left++;
        stats->partitions++;
    }
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "cannot assign the partitions");
        goto out;
    }
    last_progress = mono_ms();
    while (left > 0) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
        struct kafka_scan_msg m;
        struct part_end *e;
        rd_kafka_headers_t *hdrs = NULL;

        if (rkm == NULL) {
            if (mono_ms() - last_progress > idle_timeout_ms) {
                snprintf(err, errlen,
                         "no message for %d ms with %zu partitions not read to their end (an "
                         "open transaction holds the last stable offset back?)",
                         idle_timeout_ms, left);
                goto out;
            }
            continue;
        }
        last_progress = mono_ms();
        if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                e = find_end(ends, nends,
                             topic_index(topics, ntopics, rd_kafka_topic_name(rkm->rkt)),
                             rkm->partition);
                /* read_committed: the end is the last stable offset, which
                 * an aborted transaction's markers may leave below hi */
                if (e != NULL && !e->done) {
                    e->done = true;
                    left--;
                }
                rd_kafka_message_destroy(rkm);
                continue;
            }
            snprintf(err, errlen, "reading %s: %s",
                     rkm->rkt != NULL ? rd_kafka_topic_name(rkm->rkt) : "?",
                     rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            goto out;
        }
        memset(&m, 0, sizeof(m));
        m.topic = topic_index(topics, ntopics, rd_kafka_topic_name(rkm->rkt));
        m.partition = rkm->partition;
        m.offset = rkm->offset;
        m.timestamp_ms = rd_kafka_message_timestamp(rkm, NULL);
        e = find_end(ends, nends, m.topic, m.partition);
        if (e == NULL || e->done || m.offset >= e->end) {
            /* past the end the scan started with: written after it began */
            if (e != NULL && !e->done) {
                e->done = true;
                left--;
            }
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (size_t h = 0; h < nheaders; h++) {
                const void *v = NULL;
                size_t len = 0;

                if (rd_kafka_header_get_last(hdrs, headers[h], &v, &len) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR &&
                    v != NULL) {
                    m.header[h] = v;
                    m.header_len[h] = len;
                }
            }
        }
        fn(arg, &m);
        stats->messages++;
        if (m.offset + 1 >= e->end) {
            e->done = true;
            left--;
        }
        rd_kafka_message_destroy(rkm);
    }
    rc = 0;
out:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    free(ends);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
