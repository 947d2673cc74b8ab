"""The whole path against a real Postgres and a real Kafka broker:
POST /orders -> orders + outbox in one transaction -> pgoutput slot ->
cdc-relay -> Kafka, with the delivery semantics of docs/guarantees.md."""

from __future__ import annotations

import collections
import json
import re
import signal
import threading
import time

import pytest

from harness import run_bin
from stack import LSN_RE, TS_RE, Stack, java_partition, lsn_int


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    return Stack(migrated_pg, kafka, spawn)


def by_id(events):
    return collections.Counter(e["headers"].get("id") for e in events)


@pytest.mark.timeout(300)
@pytest.mark.matrix
def test_thousand_orders_from_16_clients_arrive_once_each(migrated_pg, kafka, spawn):
    # The default template: orders must land on orders.events (docs/architecture.md#fixed-interfaces).
    stack = Stack(migrated_pg, kafka, spawn, topic_prefix=None)
    assert stack.topic == "orders.events"
    stack.start_api(pool_size=16)
    stack.start_relay()

    t0 = time.monotonic()
    results = stack.post_many(1000, clients=16)
    post_secs = time.monotonic() - t0
    assert [r[0] for r in results].count(201) == 1000, collections.Counter(r[0] for r in results)
    orders = {}
    for status, headers, body in results:
        order = json.loads(body)
        assert headers["Location"] == f"/orders/{order['id']}"
        orders[order["id"]] = order

    events = stack.events(count=1000, timeout=120)
    deliver_secs = time.monotonic() - t0
    print(
        f"\n1000 orders: POST {1000 / post_secs:.0f} orders/s (16 clients); "
        f"all in Kafka {deliver_secs:.2f} s after the first POST"
    )
    counts = by_id(events)
    assert len(events) == 1000, f"{len(events)} events, duplicates: {[k for k, c in counts.items() if c > 1][:5]}"
    assert max(counts.values()) == 1
    partitions = len(kafka.partitions(stack.topic))
    outbox_ids = stack.outbox_ids()
    assert set(counts) == outbox_ids
    for e in events:
        key = e["key"]
        assert key in orders, f"event for unknown order {key}"
        assert json.loads(e["payload"]) == orders[key]
        h = e["headers"]
        assert set(h) == {"id", "event_type", "aggregate_type", "lsn", "commit_ts", "traceparent"}
        # the api made a trace context for each request (none was sent)
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", h["traceparent"]), h["traceparent"]
        assert h["event_type"] == "OrderCreated"
        assert h["aggregate_type"] == "orders"
        assert LSN_RE.match(h["lsn"]), h["lsn"]
        assert TS_RE.match(h["commit_ts"]), h["commit_ts"]
        # murmur2_random: the partition a Java producer (or Debezium) picks
        assert e["partition"] == java_partition(key, partitions)
    # Commit order within each partition: lsn headers never go backwards.
    by_partition = collections.defaultdict(list)
    for e in events:
        by_partition[e["partition"]].append(lsn_int(e["headers"]["lsn"]))
    for lsns in by_partition.values():
        assert lsns == sorted(lsns)

    # Everything delivered: the slot catches up past every commit.
    last = max(lsn_int(e["headers"]["lsn"]) for e in events)
    stack.wait_until(lambda: stack.confirmed_flush() > last, 15, "confirmed_flush past last commit")


@pytest.mark.timeout(300)
def test_broker_down_orders_accepted_nothing_confirmed_then_all_arrive(stack, kafka):
    stack.start_api()
    relay = stack.start_relay()
    status, _, body = stack.post_order("warm-up")
    assert status == 201
    assert len(stack.events(count=1, timeout=60)) == 1

    kafka.stop()
    before = stack.current_lsn()
    results = [stack.post_order(f"while-down-{i}") for i in range(50)]
    assert [r[0] for r in results] == [201] * 50
    down_ids = {json.loads(r[2])["id"] for r in results}
    # Several status intervals (1 s) and keepalives pass while the broker is down.
    time.sleep(6)
    assert relay.alive
    assert stack.confirmed_flush() <= before, "slot confirmed past undelivered events"
    # Unrelated writes keep the walsender sending keepalives; still no confirm past them.
    stack.pg.psql("CREATE TABLE IF NOT EXISTS noise(x int); INSERT INTO noise SELECT generate_series(1, 1000)", url=stack.url)
    time.sleep(3)
    assert stack.confirmed_flush() <= before

    kafka.start()
    events = stack.events(count=51, timeout=120)
    keys = {e["key"] for e in events}
    assert down_ids <= keys, f"missing after broker came back: {len(down_ids - keys)}"
    stack.wait_until(lambda: stack.confirmed_flush() > before, 30, "confirmed_flush moves after recovery")
    assert relay.alive


@pytest.mark.timeout(300)
@pytest.mark.matrix
def test_relay_sigkill_mid_stream_loses_nothing(stack):
    stack.start_api()
    relay = stack.start_relay()
    posted = []
    done = threading.Event()

    def load():
        for i in range(600):
            status, _, body = stack.post_order(f"kill-{i}")
            assert status == 201
            posted.append(json.loads(body)["id"])
        done.set()

    writer = threading.Thread(target=load)
    writer.start()
    stack.wait_until(lambda: len(stack.events()) >= 100, 60, "100 events before the kill")
    relay.kill()
    time.sleep(0.5)
    stack.start_relay()
    writer.join(120)
    assert done.is_set()
    events = stack.events(count=600, timeout=120)
    counts = by_id(events)
    assert set(counts) >= stack.outbox_ids(), "events lost across SIGKILL"
    dups = sum(c - 1 for c in counts.values())
    print(f"\nSIGKILL mid-stream: {len(counts)} events, {dups} duplicates")
    # Per key, first occurrences are in commit order; nothing phantom.
    assert set(counts) == stack.outbox_ids()


@pytest.mark.timeout(180)
@pytest.mark.matrix
def test_sigterm_then_restart_sends_no_duplicates(stack):
    stack.start_api()
    relay = stack.start_relay()
    first = stack.post_many(100, clients=8)
    assert all(r[0] == 201 for r in first)
    assert len(stack.events(count=100, timeout=60)) == 100
    relay.signal(signal.SIGTERM)
    assert relay.wait(40) == 0
    assert "confirmed position" in relay.log_text()

    second = stack.post_many(50, clients=4)
    assert all(r[0] == 201 for r in second)
    stack.start_relay()
    events = stack.events(count=150, timeout=60)
    time.sleep(2)  # would-be duplicates get time to show up
    events = stack.events()
    counts = by_id(events)
    assert len(events) == 150 and max(counts.values()) == 1, f"{len(events)} events"


@pytest.mark.timeout(120)
@pytest.mark.matrix
def test_idle_outbox_does_not_hold_wal(stack):
    stack.start_relay()
    stack.pg.psql(
        "CREATE TABLE busy(x int); INSERT INTO busy SELECT generate_series(1, 20000)", url=stack.url
    )
    target = stack.current_lsn()
    stack.wait_until(lambda: stack.confirmed_flush() >= target, 30, "slot follows unrelated WAL")


@pytest.mark.timeout(180)
@pytest.mark.matrix
def test_start_and_end_lsn_replay_a_window(stack):
    stack.start_api()
    # A first run creates the publication and the slot, then stops.
    relay = stack.start_relay()
    relay.signal(signal.SIGTERM)
    assert relay.wait(30) == 0
    for i in range(3):
        assert stack.post_order(f"a-{i}")[0] == 201
    middle = stack.current_lsn()
    b_ids = set()
    for i in range(3):
        status, _, body = stack.post_order(f"b-{i}")
        assert status == 201
        b_ids.add(json.loads(body)["id"])
    end = stack.current_lsn()
    for i in range(3):
        assert stack.post_order(f"c-{i}")[0] == 201

    fmt = lambda v: f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"
    relay = stack.start_relay("--start-lsn", fmt(middle), "--end-lsn", fmt(end), wait=False)
    assert relay.wait(60) == 0, relay.log_tail()
    assert "reached end position" in relay.log_text()
    events = stack.events(count=3, timeout=30)
    time.sleep(1)
    events = stack.events()
    assert {e["key"] for e in events} == b_ids
    assert all(lsn_int(e["headers"]["lsn"]) >= middle for e in events)

    # The slot has moved past the a-orders: replaying them is refused loudly.
    relay = stack.start_relay("--start-lsn", "0/1", wait=False)
    assert relay.wait(60) == 1
    assert "older than slot" in relay.log_text()


def test_relay_help_and_bad_usage():
    r = run_bin("cdc-relay", "--help")
    assert r.returncode == 0
    for opt in ("--database-url", "--brokers", "--slot", "--publication", "--start-lsn",
                "--end-lsn", "-X", "DATABASE_URL", "KAFKA_BROKERS"):
        assert opt in r.stdout
    r = run_bin("cdc-relay", "--bogus", env={"DATABASE_URL": "postgresql:///x"})
    assert r.returncode == 2 and "--bogus" in r.stderr
    r = run_bin("cdc-relay", "--start-lsn", "nope", env={"DATABASE_URL": "postgresql:///x"})
    assert r.returncode == 2 and "--start-lsn" in r.stderr
    r = run_bin("cdc-relay", env={"DATABASE_URL": None})
    assert r.returncode == 2 and "DATABASE_URL" in r.stderr


@pytest.mark.timeout(180)
@pytest.mark.matrix
def test_walsender_terminated_relay_reconnects_and_loses_nothing(stack):
    stack.start_api()
    relay = stack.start_relay()
    first = stack.post_many(50, clients=4)
    assert len(stack.events(count=50, timeout=60)) == 50
    mark = relay.mark()
    stack.pg.psql(
        f"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{stack.slot}'",
        url=stack.url,
    )
    relay.wait_for_log(r"streaming slot", timeout=30, since=mark)
    second = stack.post_many(50, clients=4)
    assert all(r[0] == 201 for r in first + second)
    events = stack.events(count=100, timeout=60)
    assert set(by_id(events)) == stack.outbox_ids()
    assert relay.alive


@pytest.mark.timeout(180)
@pytest.mark.matrix
def test_slot_dropped_while_running_is_fatal_not_recreated(stack):
    relay = stack.start_relay()
    stack.pg.psql(
        f"""DO $$ BEGIN
          FOR i IN 1..500 LOOP
            PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots
              WHERE slot_name = '{stack.slot}' AND active;
            BEGIN
              PERFORM pg_drop_replication_slot('{stack.slot}');
              RETURN;
            EXCEPTION WHEN object_in_use THEN PERFORM pg_sleep(0.01);
            END;
          END LOOP;
          RAISE 'slot stayed active';
        END $$""",
        url=stack.url,
    )
    assert relay.wait(60) == 1
    assert "does not exist" in relay.log_text()
    assert stack.pg.psql(
        f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{stack.slot}'", url=stack.url
    ) == "0"
