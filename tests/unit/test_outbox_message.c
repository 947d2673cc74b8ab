/* Message-mode envelope parsing. */
#include "cdc/outbox_message.h"
#include "unit/check.h"

static bool parse(const char *s, struct outbox_message *m, const char **why)
{
    return outbox_message_parse((const uint8_t *)s, strlen(s), m, why);
}

static void test_valid_envelopes(void)
{
    struct outbox_message m;
    const char *why = NULL;

    CHECK(parse("{\"id\": \"e1\", \"aggregate_type\": \"orders\", \"aggregate_id\": \"o1\", "
                "\"event_type\": \"OrderCreated\", \"payload\": {\"id\": \"o1\", \"item\": "
                "\"book\", \"quantity\": 2}}",
                &m, &why));
    CHECK_VIEW(m.ev.id.ptr, m.ev.id.len, "e1");
    CHECK_VIEW(m.ev.aggregate_type.ptr, m.ev.aggregate_type.len, "orders");
    CHECK_VIEW(m.ev.aggregate_id.ptr, m.ev.aggregate_id.len, "o1");
    CHECK_VIEW(m.ev.event_type.ptr, m.ev.event_type.len, "OrderCreated");
    /* jsonb's text style: ", " and ": " separators, keys in their order */
    CHECK_VIEW(m.ev.payload.ptr, m.ev.payload.len,
               "{\"id\": \"o1\", \"item\": \"book\", \"quantity\": 2}");
    outbox_message_free(&m);

    CHECK(parse("{\"id\": \"e1\", \"aggregate_type\": \"a\", \"aggregate_id\": \"o1\", "
                "\"event_type\": \"E\", \"payload\": null}",
                &m, &why));
    CHECK(m.ev.payload.ptr == NULL);
    CHECK(m.ev.traceparent.ptr == NULL);
    outbox_message_free(&m);

    /* orders-api writes a traceparent (or null) beside the five */
    CHECK(parse(
        "{\"id\": \"e1\", \"payload\": {}, \"event_type\": \"E\", \"aggregate_id\": "
        "\"o1\", \"traceparent\": \"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\", "
        "\"aggregate_type\": \"a\"}",
        &m, &why));
    CHECK_VIEW(m.ev.traceparent.ptr, m.ev.traceparent.len,
               "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    outbox_message_free(&m);
    CHECK(parse("{\"id\": \"e1\", \"payload\": {}, \"event_type\": \"E\", \"aggregate_id\": "
                "\"o1\", \"traceparent\": null, \"aggregate_type\": \"a\"}",
                &m, &why));
    CHECK(m.ev.traceparent.ptr == NULL);
    outbox_message_free(&m);
}

static void test_rejects(void)
{
    struct outbox_message m;
    const char *why = NULL;
    const char *bad[] = {
        "",
        "nope",
        "[1]",
        "{\"id\": \"e1\"}",
        "{\"id\": \"\", \"aggregate_type\": \"a\", \"aggregate_id\": \"o\", \"event_type\": \"E\", "
        "\"payload\": 1}",
        "{\"id\": 5, \"aggregate_type\": \"a\", \"aggregate_id\": \"o\", \"event_type\": \"E\", "
        "\"payload\": 1}",
        "{\"id\": \"e\", \"aggregate_type\": \"a\", \"aggregate_id\": \"o\", \"event_type\": "
        "\"E\"}",
        "{\"id\": \"e\", \"aggregate_type\": \"a\", \"aggregate_id\": \"o\", \"event_type\": "
        "\"E\", "
        "\"payload\": 1, \"extra\": 2}",
        "{\"id\": \"e\", \"id\": \"f\", \"aggregate_type\": \"a\", \"aggregate_id\": \"o\", "
        "\"event_type\": \"E\", \"payload\": 1}",
        "{\"id\": \"e\", \"aggregate_type\": \"a\", \"aggregate_id\": \"o\", \"event_type\": "
        "\"E\", \"payload\": 1, \"traceparent\": 7}",
        "{\"id\": \"e\", \"aggregate_type\": \"a\", \"aggregate_id\": \"o\", \"event_type\": "
        "\"E\", \"payload\": 1, \"traceparent\": null, \"extra\": 2}",
        NULL,
    };
    for (int i = 0; bad[i] != NULL; i++) {
        why = NULL;
        CHECK(!parse(bad[i], &m, &why));
        CHECK(why != NULL);
        CHECK(m.root == NULL);
    }
    outbox_message_free(NULL);
}

int main(void)
{
    RUN(test_valid_envelopes);
    RUN(test_rejects);
    return check_summary();
}
