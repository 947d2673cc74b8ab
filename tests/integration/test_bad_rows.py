"""Outbox rows that cannot become Kafka messages: the documented policy is a
clear error naming the event and its LSN, exit 1, nothing confirmed past it;
never a crash, never a silent drop."""

from __future__ import annotations

import json
import time

import pytest

from stack import Stack, lsn_int


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    s = Stack(migrated_pg, kafka, spawn)
    # A table without the NOT NULL constraints the migrations add, so bad
    # rows can exist at all.
    s.pg.psql(
        "CREATE TABLE loose_outbox (id uuid PRIMARY KEY, aggregate_type text, aggregate_id text,"
        " event_type text, payload jsonb, created_at timestamptz DEFAULT now())",
        url=s.url,
    )
    return s


def insert(stack, event_id, aggregate_type, aggregate_id, payload="'{}'"):
    stack.pg.psql(
        f"INSERT INTO loose_outbox VALUES ('{event_id}', {aggregate_type}, {aggregate_id},"
        f" 'E', {payload})",
        url=stack.url,
    )


GOOD = "00000000-0000-4000-8000-000000000001"
BAD = "00000000-0000-4000-8000-0000000000bd"


def slot_still_sends(stack, event_id) -> bool:
    """Nothing past the row was confirmed: the slot, read from its confirmed
    position (peeked, not consumed), still has the row's insert to send.
    (Comparing confirmed_flush_lsn with pg_current_wal_lsn() taken before the
    insert was racy: WAL the cluster writes in between, autovacuum say, lets
    the relay rightly confirm past that mark.)"""
    sql = (
        f"SELECT count(*) FROM pg_logical_slot_peek_binary_changes('{stack.slot}', NULL, NULL,"
        f" 'proto_version', '1', 'publication_names', '{stack.publication}')"
        f" WHERE get_byte(data, 0) = ascii('I')"
        f" AND position(convert_to('{event_id}', 'UTF8') IN data) > 0"
    )
    deadline = time.monotonic() + 30
    while True:  # the exited relay's walsender may hold the slot a moment
        r = stack.pg.psql_result(sql, url=stack.url)
        if r.returncode == 0 or "is active for PID" not in r.stderr or time.monotonic() > deadline:
            assert r.returncode == 0, r.stderr
            return r.stdout.strip() == "1"
        time.sleep(0.2)


@pytest.mark.parametrize(
    "aggregate_type,aggregate_id,payload,expect",
    [
        ("'orders'", "NULL", "'{}'", "is null"),
        ("'orders'", "''", "'{}'", None),  # empty key is legal in Kafka: relayed
        ("'bad type/x'", "'k'", "'{}'", "does not make a valid Kafka topic name"),
        ("'orders'", "'k'", "jsonb_build_object('big', repeat('x', 2000000))", "cannot produce event"),
    ],
    ids=["null-aggregate-id", "empty-aggregate-id", "invalid-topic", "payload-too-large"],
)
@pytest.mark.timeout(120)
def test_bad_row_policy(stack, aggregate_type, aggregate_id, payload, expect):
    relay = stack.start_relay("--table", "public.loose_outbox")
    insert(stack, GOOD, "'orders'", "'k'")
    assert len(stack.events(count=1, timeout=60)) == 1
    insert(stack, BAD, aggregate_type, aggregate_id, payload)
    if expect is None:
        assert len(stack.events(count=2, timeout=60)) == 2
        assert relay.alive
        return
    assert relay.wait(60) == 1
    log = relay.log_text()
    assert expect in log, log
    line = next(l for l in log.splitlines() if expect in l)
    assert BAD in line and "lsn" in line, line
    # Nothing past the bad row was confirmed: a restart meets it again.
    assert slot_still_sends(stack, BAD)
    assert not slot_still_sends(stack, GOOD)  # delivered, so confirmed
    assert [e["headers"]["id"] for e in stack.events()] == [GOOD]
    relay = stack.start_relay("--table", "public.loose_outbox", wait=False)
    assert relay.wait(60) == 1
    assert expect in relay.log_text()


# --- --dead-letter-topic ------------------------------------------------------------------

# Kafka 4.1's default broker limit (message.max.bytes) is 1048588 bytes; the
# relay's client limit is raised above it so that a 1.5 MB record is refused
# by the broker (a failed delivery report), while 4 MB is refused by the
# client before it is queued (a failed produce): both paths are exercised.
CLIENT_MAX = "3000000"
BROKER_REFUSED = "jsonb_build_object('big', repeat('x', 1500000))"
CLIENT_REFUSED = "jsonb_build_object('big', repeat('x', 4000000))"


def metric(base: str, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def gid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def bid(n: int) -> str:
    return f"00000000-0000-4000-8000-0000000bad{n:02d}"


@pytest.mark.timeout(240)
def test_dead_letter_topic_takes_every_bad_kind_and_the_slot_advances(stack):
    dlq = stack.template.replace("${aggregate_type}", "dlq")
    relay = stack.start_relay(
        "--table", "public.loose_outbox", "--dead-letter-topic", dlq,
        "-X", f"message.max.bytes={CLIENT_MAX}", "--metrics-listen", "127.0.0.1:0",
    )
    base = "http://" + relay.wait_for_log(r"metrics listening addr=([0-9.]+:\d+)").group(1)
    bad = [  # (id, aggregate_type, aggregate_id, payload, expected dl_error text, value kept)
        (bid(1), "'orders'", "NULL", "'{\"n\": 1}'", "is null", True),
        (bid(2), "'bad type/x'", "'k2'", "'{\"n\": 2}'", "does not make a valid Kafka topic name", True),
        (bid(3), "'orders'", "'k3'", BROKER_REFUSED, "too large", False),
        (bid(4), "'orders'", "'k4'", CLIENT_REFUSED, "too large", False),
    ]
    insert(stack, gid(1), "'orders'", "'k'")
    for i, (event_id, at, aid, payload, _, _) in enumerate(bad):
        insert(stack, event_id, at, aid, payload)
        insert(stack, gid(i + 2), "'orders'", "'k'")
    after_last = stack.current_lsn()

    good = stack.events(count=5, timeout=90)
    # Same key, one partition: the good rows around the bad ones arrive in commit order.
    assert [e["headers"]["id"] for e in good] == [gid(i) for i in range(1, 6)]
    dead = stack.kafka.consume(dlq, count=4, timeout=90)
    assert sorted(e["headers"]["dl_event_id"] for e in dead) == [b[0] for b in bad]
    by_id = {e["headers"]["dl_event_id"]: e for e in dead}
    for event_id, at, aid, payload, why, kept in bad:
        e = by_id[event_id]
        h = e["headers"]
        assert h["id"] == event_id and h["event_type"] == "E"
        assert why in h["dl_error"], h
        assert lsn_int(h["dl_lsn"]) > 0 and h["dl_lsn"] == h["lsn"]
        assert h["aggregate_type"] == at.strip("'")
        assert e["key"] == (None if aid == "NULL" else aid.strip("'"))
        if kept:
            assert json.loads(e["payload"]) == json.loads(payload.strip("'")), e
            assert "dl_value_dropped" not in h
        else:
            assert e["payload"] is None and h["dl_value_dropped"] == "true", h
            assert h["dl_original_topic"] == stack.topic
    assert by_id[bid(2)]["headers"]["dl_original_topic"] == stack.template.replace(
        "${aggregate_type}", "bad type/x"
    )
    assert by_id[bid(1)]["headers"]["dl_original_topic"] == ""
    # Each bad event is logged with its id and LSN.
    log = relay.log_text()
    for event_id, *_ in bad:
        assert any(event_id in l and "lsn" in l and "dead-letter" in l for l in log.splitlines()), log
    # The position passes them: nothing holds the slot back, the relay runs on.
    stack.wait_until(lambda: stack.confirmed_flush() >= after_last, timeout=60, what="slot advanced")
    assert relay.alive
    stack.wait_until(lambda: metric(base, "cdc_relay_events_dead_lettered_total") == 4, 30, "metric")
    assert metric(base, "cdc_relay_events_delivered_total") == 9
    assert metric(base, "cdc_relay_events_failed_total") == 0


@pytest.mark.timeout(180)
def test_dead_letter_copy_that_fails_stops_the_relay(stack):
    """A copy the dead-letter topic refuses is not retried or dropped: the
    relay stops with the clear error and confirms nothing past the event."""
    dlq = stack.template.replace("${aggregate_type}", "dlq")
    args = ("--table", "public.loose_outbox", "--dead-letter-topic", dlq,
            "-X", f"message.max.bytes={CLIENT_MAX}")
    relay = stack.start_relay(*args)
    insert(stack, GOOD, "'orders'", "'k'")
    assert len(stack.events(count=1, timeout=60)) == 1
    # Invalid topic keeps the value, which the broker then refuses for size.
    insert(stack, BAD, "'bad type/x'", "'k'", BROKER_REFUSED)
    assert relay.wait(90) == 1
    line = next(l for l in relay.log_text().splitlines() if "dead-letter delivery failed" in l)
    assert BAD in line and "lsn" in line, line
    assert slot_still_sends(stack, BAD)
    assert [e["headers"]["id"] for e in stack.events()] == [GOOD]
    relay = stack.start_relay(*args, wait=False)
    assert relay.wait(90) == 1
    assert "dead-letter delivery failed" in relay.log_text()


@pytest.fixture(scope="module")
def kafka_no_autocreate(run_dir):
    """A broker of this module that does not create topics on first use."""
    from harness import Kafka

    server = Kafka(run_dir / "kafka_noauto")
    try:
        server.start("auto.create.topics.enable=false")
    except Exception as e:  # noqa: BLE001 - any failure to start is the message
        server.stop()
        pytest.fail(f"Kafka (no auto-create) could not start: {e}", pytrace=False)
    yield server
    server.stop()


@pytest.mark.timeout(240)
def test_dead_letter_topic_takes_unknown_topic(migrated_pg, kafka_no_autocreate, spawn):
    """An event for a topic that does not exist, on a broker that does not
    create topics, fails with librdkafka's __UNKNOWN_TOPIC once the topic's
    metadata says so: permanent, so it goes to the dead-letter topic."""
    k = kafka_no_autocreate
    s = Stack(migrated_pg, k, spawn)
    s.pg.psql(
        "CREATE TABLE loose_outbox (id uuid PRIMARY KEY, aggregate_type text, aggregate_id text,"
        " event_type text, payload jsonb, created_at timestamptz DEFAULT now())",
        url=s.url,
    )
    dlq = s.template.replace("${aggregate_type}", "dlq")
    for t in (s.topic, dlq):
        k.topics_tool("--create", "--topic", t, "--partitions", "1")
    # how long librdkafka waits for a topic to appear before failing its messages
    wait_topic = ("-X", "topic.metadata.propagation.max.ms=3000")
    # Default policy: stop, naming the event (it used to rewind forever).
    relay = s.start_relay("--table", "public.loose_outbox", *wait_topic)
    insert(s, gid(1), "'orders'", "'k'")
    insert(s, bid(9), "'missing'", "'k'")
    insert(s, gid(2), "'orders'", "'k'")
    after_last = s.current_lsn()
    assert relay.wait(90) == 1, relay.log_tail()
    line = next(l for l in relay.log_text().splitlines() if "failed permanently" in l)
    assert bid(9) in line and "lsn" in line and "Unknown topic" in line, line
    assert s.confirmed_flush() < after_last
    # With a dead-letter topic it goes there and the relay goes on.
    relay = s.start_relay("--table", "public.loose_outbox", "--dead-letter-topic", dlq, *wait_topic)
    dead = k.consume(dlq, count=1, timeout=90)
    assert len(dead) == 1, relay.log_tail()
    h = dead[0]["headers"]
    assert h["dl_event_id"] == bid(9) and h["id"] == bid(9)
    assert "Unknown topic" in h["dl_error"], h
    assert h["dl_original_topic"] == s.template.replace("${aggregate_type}", "missing")
    assert json.loads(dead[0]["payload"]) == {}
    # gid(2) was delivered by the first run past the stuck event, which was
    # not confirmed: the second run sends it again (at-least-once).
    got = [e["headers"]["id"] for e in s.events(count=3, timeout=60)]
    assert list(dict.fromkeys(got)) == [gid(1), gid(2)], got
    s.wait_until(lambda: s.confirmed_flush() >= after_last, timeout=60, what="slot advanced")
    assert relay.alive
