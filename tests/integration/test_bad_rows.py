"""Outbox rows that cannot become Kafka messages: the documented policy is a
clear error naming the event and its LSN, exit 1, nothing confirmed past it;
never a crash, never a silent drop."""

from __future__ import annotations

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
    before_bad = stack.current_lsn()
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
    assert stack.confirmed_flush() <= before_bad
    assert [e["headers"]["id"] for e in stack.events()] == [GOOD]
    relay = stack.start_relay("--table", "public.loose_outbox", wait=False)
    assert relay.wait(60) == 1
    assert expect in relay.log_text()
