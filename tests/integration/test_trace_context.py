"""W3C trace context end to end (docs/api.md, "Trace context"): the
request's traceparent, or a new one, stored with the event, answered in the
response, and sent by the relay as the Kafka traceparent header."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from stack import Stack

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TP_RE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-00$")  # what the api makes


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    return Stack(migrated_pg, kafka, spawn)


def post(stack: Stack, item: str, headers: dict[str, str] | None = None):
    req = urllib.request.Request(
        stack.api_base + "/orders", data=json.dumps({"item": item, "quantity": 1}).encode(),
        method="POST", headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, resp.headers.get_all("traceparent") or [], json.loads(resp.read())


def sent_and_received(stack: Stack, mode_args: tuple[str, ...] = ()):
    """POSTs with a valid, no, an invalid and two traceparent headers; returns
    [(what was sent, the response header, the Kafka header)]."""
    cases = [
        ("valid", {"traceparent": TP}),
        # a later version: stored in its version-00 form
        ("v01", {"traceparent": "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"}),
        ("none", {}),
        ("invalid", {"traceparent": TP.upper()}),
        ("zero", {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"}),
    ]
    answers = {}
    for name, headers in cases:
        status, tp, order = post(stack, name, headers)
        assert status == 201 and len(tp) == 1, (name, status, tp)
        answers[order["id"]] = (name, tp[0])
    events = stack.events(count=len(cases), timeout=60)
    assert len(events) == len(cases)
    return [(answers[e["key"]][0], answers[e["key"]][1], e["headers"].get("traceparent"))
            for e in events]


@pytest.mark.timeout(180)
def test_traceparent_from_request_to_kafka_header(stack):
    stack.start_api()
    relay = stack.start_relay()
    seen = set()
    for name, answered, kafka_header in sent_and_received(stack):
        assert kafka_header == answered, (name, answered, kafka_header)
        if name in ("valid", "v01"):
            assert answered == TP, name
        else:
            # missing or invalid: a new trace, never a 400
            assert TP_RE.match(answered) and answered != TP, (name, answered)
            assert answered not in seen
            seen.add(answered)
    stored = stack.pg.psql("SELECT count(*) FROM outbox WHERE traceparent IS NOT NULL",
                           url=stack.url)
    assert stored == "5"
    assert 'column "traceparent" of public.outbox becomes the traceparent header' in \
        relay.log_text()

    # A replayed Idempotency-Key answer stored nothing, so it has no traceparent.
    for expect_header in (True, False):
        req = urllib.request.Request(
            stack.api_base + "/orders", data=b'{"item": "k", "quantity": 1}', method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": "trace-key-1",
                     "traceparent": TP})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 201
            assert (resp.headers.get("traceparent") == TP) is expect_header
            assert (resp.headers.get("Idempotent-Replayed") == "true") is not expect_header


@pytest.mark.timeout(180)
def test_traceparent_in_message_mode(stack):
    stack.start_api(extra_args=("--outbox-mode", "message"))
    stack.start_relay("--source", "messages")
    for name, answered, kafka_header in sent_and_received(stack):
        assert kafka_header == answered, (name, answered, kafka_header)
        assert (answered == TP) is (name in ("valid", "v01")), (name, answered)
