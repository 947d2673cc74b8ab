/* --exactly-once pieces that need no broker: the checkpoint record's JSON,
 * the batch-closing rule, the producer properties and their override order,
 * and the tracker hold that keeps an uncommitted batch unconfirmable. */
#include <stdint.h>
#include <string.h>

#include "cdc/eos.h"
#include "cdc/eos_kafka.h"
#include "cdc/tracker.h"
#include "unit/check.h"

static void checkpoint_json(void)
{
    struct sink_checkpoint cp = {.slot = "cdc_outbox_slot", .systemid = "7441", .end_lsn = 0};
    struct sink_checkpoint back;
    char buf[256];
    size_t n;

    cp.end_lsn = ((uint64_t)0x16 << 32) | 0xB374D848;
    n = sink_checkpoint_format(&cp, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(n, strlen(buf));
    CHECK_STR(buf,
              "{\"slot\":\"cdc_outbox_slot\",\"end_lsn\":\"16/B374D848\",\"systemid\":\"7441\"}");
    memset(&back, 0, sizeof(back));
    CHECK(sink_checkpoint_parse(buf, n, &back));
    CHECK_STR(back.slot, "cdc_outbox_slot");
    CHECK_STR(back.systemid, "7441");
    CHECK_EQ_U64(back.end_lsn, cp.end_lsn);
    CHECK_EQ_INT(sink_checkpoint_format(&cp, buf, 10), 0); /* does not fit */

    back.end_lsn = 42;
    CHECK(!sink_checkpoint_parse("{\"slot\":\"s\",\"end_lsn\":\"nope\",\"systemid\":\"1\"}", 44,
                                 &back));
    CHECK(!sink_checkpoint_parse("{\"slot\":\"s\",\"systemid\":\"1\"}", 28, &back));
    CHECK(!sink_checkpoint_parse("not json", 8, &back));
    CHECK(!sink_checkpoint_parse("[1]", 3, &back));
    CHECK_EQ_U64(back.end_lsn, 42); /* untouched on failure */
}

static void batch_rule(void)
{
    struct eos_batch b = {.open = false, .events = 500, .opened_us = 0};

    CHECK(!eos_batch_due(&b, 100, 100, 10000000)); /* nothing open, nothing due */
    b.open = true;
    b.events = 99;
    b.opened_us = 1000000;
    CHECK(!eos_batch_due(&b, 100, 100, 1000000 + 99999));
    CHECK(eos_batch_due(&b, 100, 100, 1000000 + 100000)); /* age */
    b.events = 100;
    CHECK(eos_batch_due(&b, 100, 100, 1000000)); /* size */
}

static void producer_props(void)
{
    struct sink_prop user[] = {{"transactional.id", "mine"}, {"linger.ms", "20"}};
    struct eos_config cfg = {
        .slot = "s1", .checkpoint_topic = "t", .max_events = 10, .max_ms = 100};
    const struct sink_prop *p;
    size_t n = 0;
    struct eos *e = eos_new(&cfg);

    p = eos_producer_props(e, &n);
    CHECK_EQ_INT(n, 3);
    CHECK_STR(p[0].name, "transactional.id");
    CHECK_STR(p[0].value, "cdc-relay-s1");
    CHECK_STR(eos_transactional_id(e), "cdc-relay-s1");
    CHECK(!eos_open(e));
    CHECK(!eos_attached(e));
    CHECK_EQ_INT(eos_wait_us(e, 0), INT64_MAX);
    eos_free(e);

    /* -X comes after the defaults, so it wins. */
    cfg.props = user;
    cfg.nprops = 2;
    e = eos_new(&cfg);
    p = eos_producer_props(e, &n);
    CHECK_EQ_INT(n, 5);
    CHECK_STR(p[3].value, "mine");
    CHECK_STR(eos_transactional_id(e), "mine");
    eos_free(e);
}

/* The hold eos_before_produce puts on a batch's first transaction: while it
 * is there, neither delivery reports nor a keepalive move the safe LSN. */
static void tracker_hold(void)
{
    struct tracker *t = tracker_new(100);
    uint64_t a = tracker_begin(t);

    tracker_add_event(t, a);
    tracker_add_event(t, a); /* the hold */
    CHECK(tracker_commit(t, a, 200));
    CHECK(tracker_ack(t, a, true)); /* the event's report */
    CHECK_EQ_U64(tracker_safe_lsn(t), 100);
    tracker_note_server_position(t, 300);
    CHECK_EQ_U64(tracker_safe_lsn(t), 100);
    CHECK(tracker_ack(t, a, true)); /* the commit releases it */
    CHECK_EQ_U64(tracker_safe_lsn(t), 200);
    tracker_free(t);
}

int main(void)
{
    RUN(checkpoint_json);
    RUN(batch_rule);
    RUN(producer_props);
    RUN(tracker_hold);
    return check_summary();
}
