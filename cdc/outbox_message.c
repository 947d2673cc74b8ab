/*
 * JSON envelope of message-mode events. Strict: every field present, the
 * four identifying ones non-empty strings, nothing else in the object, so a
 * malformed event stops the relay instead of reaching Kafka half-formed.
 */
#include "outbox_message.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static bool take_string(json_t *root, const char *name, struct pgout_str *out)
{
    json_t *v = json_object_get(root, name);

    if (!json_is_string(v) || json_string_length(v) == 0)
        return false;
    out->ptr = json_string_value(v);
    out->len = json_string_length(v);
    return true;
}

bool outbox_message_parse(const uint8_t *content, size_t len, struct outbox_message *out,
                          const char **why)
{
    json_error_t jerr;
    json_t *root, *payload, *extra;

    memset(out, 0, sizeof(*out));
    root = json_loadb((const char *)content, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        *why = "content is not valid JSON";
        return false;
    }
    if (!json_is_object(root)) {
        *why = "content is not a JSON object";
        goto fail;
    }
    if (!take_string(root, "id", &out->ev.id) ||
        !take_string(root, "aggregate_type", &out->ev.aggregate_type) ||
        !take_string(root, "aggregate_id", &out->ev.aggregate_id) ||
        !take_string(root, "event_type", &out->ev.event_type)) {
        *why = "id, aggregate_type, aggregate_id and event_type must be non-empty strings";
        goto fail;
    }
    payload = json_object_get(root, "payload");
    if (payload == NULL) {
        *why = "payload is missing";
        goto fail;
    }
    /* traceparent: optional (orders-api writes it; older writers did not),
     * a string or null. */
    extra = json_object_get(root, "traceparent");
    if (extra != NULL && !json_is_null(extra)) {
        if (!json_is_string(extra)) {
            *why = "traceparent must be a string or null";
            goto fail;
        }
        out->ev.traceparent = outbox_traceparent_extract(
            (struct pgout_str){json_string_value(extra), json_string_length(extra)});
    }
    if (json_object_size(root) != 5 + (extra != NULL ? 1 : 0)) {
        *why = "unexpected fields besides id, aggregate_type, aggregate_id, event_type, payload, "
               "traceparent";
        goto fail;
    }
    if (!json_is_null(payload)) {
        out->payload_text = json_dumps(payload, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (out->payload_text == NULL) {
            *why = "payload cannot be serialized";
            goto fail;
        }
        out->ev.payload.ptr = out->payload_text;
        out->ev.payload.len = strlen(out->payload_text);
    }
    out->root = root;
    return true;
fail:
    json_decref(root);
    memset(out, 0, sizeof(*out));
    return false;
}

void outbox_message_free(struct outbox_message *m)
{
    if (m == NULL)
        return;
    free(m->payload_text);
    json_decref((json_t *)m->root);
    memset(m, 0, sizeof(*m));
}
