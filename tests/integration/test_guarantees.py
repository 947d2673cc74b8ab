"""Saved position, replay window, and the refusals that keep a gap from
passing silently (issue: no event lost, none invented)."""

from __future__ import annotations

import collections
import json
import signal
import time

import pytest

from stack import Stack, lsn_int

pytestmark = pytest.mark.matrix  # every test here runs on every PostgreSQL version


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    s = Stack(migrated_pg, kafka, spawn)
    s.start_api()
    return s


def fmt(v: int) -> str:
    return f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"


def saved_lsn(stack) -> int:
    text = open(stack.state_file).read()
    return lsn_int(dict(l.split("=", 1) for l in text.split())["lsn"])


def stop(relay):
    relay.signal(signal.SIGTERM)
    assert relay.wait(40) == 0, relay.log_tail()


@pytest.mark.timeout(120)
def test_state_file_is_written_before_the_slot_moves(stack):
    relay = stack.start_relay()
    assert all(r[0] == 201 for r in stack.post_many(20, clients=4))
    events = stack.events(count=20, timeout=60)
    last = max(lsn_int(e["headers"]["lsn"]) for e in events)
    stack.wait_until(lambda: stack.confirmed_flush() > last, 15, "slot confirmed past the events")
    # The slot first, then the file: both only move forward, the file first,
    # so the file read second is at least the slot read first. (The other
    # order races on a server with other WAL, the compose stack's: the
    # relay confirms the keepalive positions of quiet stretches.)
    confirmed = stack.confirmed_flush()
    assert saved_lsn(stack) >= confirmed
    stop(relay)
    confirmed = stack.confirmed_flush()
    assert saved_lsn(stack) >= confirmed > last


@pytest.mark.timeout(120)
def test_slot_dropped_between_runs_is_refused(stack):
    relay = stack.start_relay()
    assert stack.post_order()[0] == 201
    assert len(stack.events(count=1, timeout=60)) == 1
    stop(relay)
    stack.pg.psql(f"SELECT pg_drop_replication_slot('{stack.slot}')", url=stack.url)
    relay = stack.start_relay(wait=False)
    assert relay.wait(60) == 1
    assert "did not exist" in relay.log_text()
    # The refused start created the slot to look, and drops it again: nothing
    # is left to hold WAL until someone notices.
    assert "dropped replication slot" in relay.log_text()
    # Slots of this test's database only: a shared server (the compose stack)
    # holds other relays' slots.
    left = stack.pg.psql(
        "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()", url=stack.url
    )
    assert left == "0"


@pytest.mark.timeout(120)
def test_slot_advanced_past_the_saved_position_is_refused(stack):
    relay = stack.start_relay()
    assert stack.post_order()[0] == 201
    assert len(stack.events(count=1, timeout=60)) == 1
    stop(relay)
    assert stack.post_order("never relayed")[0] == 201
    stack.pg.psql(
        f"SELECT pg_replication_slot_advance('{stack.slot}', pg_current_wal_lsn())", url=stack.url
    )
    relay = stack.start_relay(wait=False)
    assert relay.wait(60) == 1
    assert "ahead of the position this relay saved" in relay.log_text()


@pytest.mark.timeout(180)
def test_replay_window_keeps_wal_for_a_replay_and_restarts_without_duplicates(stack):
    relay = stack.start_relay("--replay-window", "1h")
    created_at = stack.confirmed_flush()
    assert all(r[0] == 201 for r in stack.post_many(10, clients=2))
    events = stack.events(count=10, timeout=60)
    first = min(lsn_int(e["headers"]["lsn"]) for e in events)
    last = max(lsn_int(e["headers"]["lsn"]) for e in events)
    stack.wait_until(lambda: saved_lsn(stack) > last, 15, "state file past the events")
    time.sleep(2)  # several status updates
    assert stack.confirmed_flush() == created_at, "the window must hold the slot back"
    stop(relay)

    # A normal restart resumes from the state file: no duplicates.
    relay = stack.start_relay("--replay-window", "1h")
    assert stack.post_order("after restart")[0] == 201
    assert len(stack.events(count=11, timeout=60)) == 11
    time.sleep(2)
    assert len(stack.events()) == 11
    stop(relay)

    # The window still holds the first ten: replay them.
    relay = stack.start_relay(
        "--start-lsn", fmt(first), "--end-lsn", fmt(last), wait=False
    )
    assert relay.wait(60) == 0, relay.log_tail()
    events = stack.events(count=21, timeout=60)
    counts = collections.Counter(e["headers"]["id"] for e in events)
    assert len(events) == 21
    assert sorted(counts.values()) == [1] + [2] * 10


@pytest.mark.timeout(120)
def test_message_mode_relays_committed_messages_only(stack):
    relay = stack.start_relay("--source", "messages")

    def emit(event_id, transactional=True):
        content = json.dumps(
            {
                "id": event_id,
                "aggregate_type": "orders",
                "aggregate_id": f"agg-{event_id}",
                "event_type": "OrderCreated",
                "payload": {"id": f"agg-{event_id}", "quantity": 2},
            }
        )
        return f"SELECT pg_logical_emit_message({str(transactional).lower()}, 'outbox', '{content}')"

    stack.pg.psql(f"BEGIN; {emit('m1')}; COMMIT;", url=stack.url)
    stack.pg.psql(f"BEGIN; {emit('m2')}; ROLLBACK;", url=stack.url)
    stack.pg.psql(emit("m3", transactional=False), url=stack.url)
    stack.pg.psql(f"BEGIN; {emit('m4')}; {emit('m5')}; COMMIT;", url=stack.url)
    events = stack.events(count=3, timeout=60)
    time.sleep(1)
    events = stack.events()
    assert [e["headers"]["id"] for e in events if e["partition"] is not None]
    assert sorted(e["headers"]["id"] for e in events) == ["m1", "m4", "m5"]
    m1 = next(e for e in events if e["headers"]["id"] == "m1")
    assert m1["key"] == "agg-m1"
    assert m1["payload"] == '{"id": "agg-m1", "quantity": 2}'
    assert m1["headers"]["event_type"] == "OrderCreated"
    assert "non-transactional message" in relay.log_text()
    # Orders through the table still flow in message mode.
    assert stack.post_order()[0] == 201
    assert len(stack.events(count=4, timeout=60)) == 4


@pytest.mark.timeout(120)
def test_heartbeat_writes_wal_the_slot_confirms(stack):
    relay = stack.start_relay("--heartbeat-interval", "0.5")
    time.sleep(1)
    c0 = stack.confirmed_flush()
    beats = lambda: int(
        stack.pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cdc-relay-heartbeat'",
            url=stack.url,
        )
    )
    assert beats() == 1
    stack.wait_until(lambda: stack.confirmed_flush() > c0, 15, "slot advanced by heartbeats")
    assert relay.alive


@pytest.mark.timeout(300)
def test_big_transaction_arrives_only_after_commit_and_aborted_work_never(stack):
    import subprocess

    from harness import _psql_bin

    relay = stack.start_relay()
    rows = 100_000
    session = subprocess.Popen(
        [_psql_bin(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", stack.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    session.stdin.write(
        "BEGIN;\n"
        "INSERT INTO outbox SELECT gen_random_uuid(), 'orders', 'k' || (g % 100), 'Big',"
        f" jsonb_build_object('n', g) FROM generate_series(1, {rows}) g;\n"
        "SELECT pg_sleep(0);\n"
    )
    session.stdin.flush()
    stack.wait_until(
        lambda: int(stack.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'", url=stack.url)) >= 1,
        60,
        "the big transaction to be open",
    )
    time.sleep(2)
    assert stack.events() == [], "nothing may be produced before the commit"
    # The slot may move into the open transaction's WAL (R3: its restart_lsn
    # stays behind it), never past where it will commit.
    confirmed_before_commit = stack.confirmed_flush()
    session.stdin.write("COMMIT;\n")
    session.stdin.close()
    assert session.wait(120) == 0, session.stdout.read()

    stack.pg.psql(
        "BEGIN; INSERT INTO outbox SELECT gen_random_uuid(), 'orders', 'x', 'Aborted', '{}'"
        " FROM generate_series(1, 1000); ROLLBACK;",
        url=stack.url,
    )
    assert stack.post_order("after")[0] == 201
    events = stack.events(count=rows + 1, timeout=180)
    time.sleep(1)
    events = stack.events(timeout=60)
    types = collections.Counter(e["headers"]["event_type"] for e in events)
    assert types == {"Big": rows, "OrderCreated": 1}, types
    assert len({e["headers"]["id"] for e in events}) == rows + 1
    big_commit = {lsn_int(e["headers"]["lsn"]) for e in events if e["headers"]["event_type"] == "Big"}
    assert len(big_commit) == 1 and confirmed_before_commit <= big_commit.pop()
    # Per key, the big transaction's events keep their insert order.
    per_key = collections.defaultdict(list)
    for e in events:
        if e["headers"]["event_type"] == "Big":
            per_key[e["key"]].append(json.loads(e["payload"])["n"])
    assert all(v == sorted(v) for v in per_key.values())
    assert relay.alive
