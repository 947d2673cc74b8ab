"""cdc-relay --mode poll, the polling outbox, against a real Postgres and a
real Kafka broker: SELECT ... FOR UPDATE SKIP LOCKED, produce, wait for every
delivery report, UPDATE published_at, COMMIT (docs/relay.md, "Polling mode")."""

from __future__ import annotations

import collections
import json
import re
import signal
import time

import pytest

from harness import run_bin, unique_name
from stack import TS_RE, Stack, java_partition


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    return Stack(migrated_pg, kafka, spawn)


def poll_template(stack: Stack) -> str:
    """A topic template of the test's own, beside the stream relay's."""
    return stack.template.replace("${aggregate_type}", "poll.${aggregate_type}")


def start_poller(stack: Stack, *extra: str, template: str | None = None, wait: bool = True):
    return stack.spawn(
        "cdc-relay",
        "--mode",
        "poll",
        "--topic-template",
        template or poll_template(stack),
        "--poll-interval",
        "0.2",
        *extra,
        env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers},
        wait_for=r"polling table" if wait else None,
    )


def poll_topic(stack: Stack) -> str:
    return poll_template(stack).replace("${aggregate_type}", "orders")


def by_id(events):
    return collections.Counter(e["headers"].get("id") for e in events)


def insert_rows(stack: Stack, n: int, prefix: str = "k") -> None:
    """n outbox rows in one transaction, written straight into the table."""
    stack.pg.psql(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)"
        f" SELECT gen_random_uuid(), 'orders', '{prefix}' || g, 'OrderCreated',"
        f" jsonb_build_object('n', g) FROM generate_series(1, {n}) g",
        url=stack.url,
    )


def unpublished(stack: Stack) -> int:
    return int(stack.pg.psql("SELECT count(*) FROM outbox WHERE published_at IS NULL", url=stack.url))


def produced_count(proc) -> int:
    m = re.search(r"relay stopped: (\d+) events produced", proc.log_text())
    assert m, proc.log_tail()
    return int(m.group(1))


@pytest.mark.timeout(400)
@pytest.mark.matrix
def test_thousand_orders_arrive_once_with_the_same_messages_as_stream_mode(migrated_pg, kafka, spawn):
    # Commit timestamps tracked: poll mode's commit_ts is then the very
    # commit time pgoutput reports to stream mode.
    migrated_pg.start("track_commit_timestamp=on")
    stack = Stack(migrated_pg, kafka, spawn)
    stack.start_api(pool_size=16)
    stack.start_relay()  # stream mode, into stack.topic
    poller = start_poller(stack)
    assert "commit_ts from commit timestamps" in poller.log_text()

    results = stack.post_many(1000, clients=16)
    assert [r[0] for r in results].count(201) == 1000
    orders = {json.loads(body)["id"]: json.loads(body) for _, _, body in results}

    streamed = stack.events(count=1000, timeout=120)
    polled = stack.kafka.consume(poll_topic(stack), count=1000, timeout=120)
    stack.wait_until(lambda: unpublished(stack) == 0, 60, "every row marked published")
    time.sleep(2)  # duplicates, or UPDATEs leaking into the stream, get time to show up
    streamed = stack.events()
    polled = stack.kafka.consume(poll_topic(stack))

    s_counts, p_counts = by_id(streamed), by_id(polled)
    assert len(polled) == 1000 and max(p_counts.values()) == 1, f"{len(polled)} polled events"
    # The publication publishes inserts only: marking rows is not streamed.
    assert len(streamed) == 1000 and max(s_counts.values()) == 1, f"{len(streamed)} streamed events"
    assert set(p_counts) == set(s_counts) == stack.outbox_ids()

    partitions = len(kafka.partitions(poll_topic(stack)))
    stream_by_id = {e["headers"]["id"]: e for e in streamed}
    for e in polled:
        s = stream_by_id[e["headers"]["id"]]
        assert e["key"] == s["key"] and e["key"] in orders
        assert e["payload"] == s["payload"]  # byte for byte
        assert json.loads(e["payload"]) == orders[e["key"]]
        h, sh = e["headers"], s["headers"]
        # Poll mode has no commit LSN: no lsn header, everything else equal.
        assert set(h) == {"id", "event_type", "aggregate_type", "commit_ts", "traceparent"}
        assert {k: v for k, v in sh.items() if k != "lsn"} == h
        assert TS_RE.match(h["commit_ts"])
        assert e["partition"] == java_partition(e["key"], partitions)


@pytest.mark.timeout(300)
def test_commit_ts_is_created_at_without_commit_timestamps(stack):
    poller = start_poller(stack)
    assert "commit_ts from created_at" in poller.log_text()
    insert_rows(stack, 3)
    events = stack.kafka.consume(poll_topic(stack), count=3, timeout=60)
    assert len(events) == 3
    created = stack.pg.psql(
        "SELECT DISTINCT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        " FROM outbox",
        url=stack.url,
    )
    assert {e["headers"]["commit_ts"] for e in events} == {created}


@pytest.mark.timeout(300)
def test_broker_down_nothing_marked_published_then_drains(stack, kafka):
    stack.start_api()
    # A short batch timeout: the outage spans several rolled-back batches.
    poller = start_poller(stack, "--poll-batch-timeout", "2", "--reconnect-max", "2")
    assert stack.post_order("warm-up")[0] == 201
    assert len(stack.kafka.consume(poll_topic(stack), count=1, timeout=60)) == 1
    stack.wait_until(lambda: unpublished(stack) == 0, 30, "warm-up marked published")

    kafka.stop()
    results = [stack.post_order(f"while-down-{i}") for i in range(50)]
    assert [r[0] for r in results] == [201] * 50
    down_keys = {json.loads(r[2])["id"] for r in results}
    time.sleep(8)
    assert poller.alive
    assert unpublished(stack) == 50, "rows marked published while the broker was down"
    assert "rolling it back" in poller.log_text()
    # No transaction of the relay stays open through the outage.
    open_for = stack.pg.psql(
        "SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) FROM pg_stat_activity"
        " WHERE application_name = 'cdc-relay-poll' AND xact_start IS NOT NULL",
        url=stack.url,
    )
    assert float(open_for) < 6, f"poll transaction open for {open_for} s"

    kafka.start()
    stack.wait_until(lambda: unpublished(stack) == 0, 120, "outbox drained after the broker came back")
    events = stack.kafka.consume(poll_topic(stack), count=51, timeout=60)
    counts = by_id(events)
    assert down_keys <= {e["key"] for e in events}
    assert set(counts) == stack.outbox_ids()
    dups = sum(c - 1 for c in counts.values())
    print(f"\nbroker down: {len(counts)} events, {dups} duplicates")
    assert poller.alive


@pytest.mark.timeout(300)
def test_sigkill_mid_batch_loses_nothing(stack):
    total = 30000
    insert_rows(stack, total)
    poller = start_poller(stack, "--poll-batch", "1000")
    # Watched in the table (cheap), so the kill lands while most is left.
    stack.wait_until(lambda: unpublished(stack) <= total - 1000, 120, "1000 rows published")
    poller.kill()
    published_at_kill = total - unpublished(stack)
    assert published_at_kill < total, "the relay finished before it was killed"
    start_poller(stack, "--poll-batch", "1000")
    stack.wait_until(lambda: unpublished(stack) == 0, 180, "outbox drained after the restart")
    events = stack.kafka.consume(poll_topic(stack), count=total, timeout=90)
    counts = by_id(events)
    assert set(counts) == stack.outbox_ids(), "events lost across SIGKILL"
    dups = sum(c - 1 for c in counts.values())
    print(f"\nSIGKILL mid-batch: {len(counts)} events, {dups} duplicates, {published_at_kill} rows "
          "marked at the kill")
    # Duplicates come only from the batch in flight at the kill.
    assert dups <= 1000


@pytest.mark.timeout(300)
def test_two_poll_relays_share_the_work_without_duplicates(stack):
    insert_rows(stack, 10000)
    a = start_poller(stack, "--poll-batch", "50", wait=False)
    b = start_poller(stack, "--poll-batch", "50", wait=False)
    stack.wait_until(lambda: unpublished(stack) == 0, 180, "outbox drained by two relays")
    for p in (a, b):
        p.signal(signal.SIGTERM)
        assert p.wait(60) == 0, p.log_tail()
    events = stack.kafka.consume(poll_topic(stack), count=10000, timeout=60)
    time.sleep(1)
    events = stack.kafka.consume(poll_topic(stack))
    counts = by_id(events)
    assert len(events) == 10000 and max(counts.values()) == 1, f"{len(events)} events"
    na, nb = produced_count(a), produced_count(b)
    print(f"\ntwo relays: {na} + {nb} events")
    assert na + nb == 10000
    assert na > 0 and nb > 0, "one relay did all the work: SKIP LOCKED not exercised"


@pytest.mark.timeout(300)
def test_sigterm_finishes_the_batch_then_restart_sends_no_duplicates(stack):
    total = 30000
    insert_rows(stack, total)
    poller = start_poller(stack, "--poll-batch", "500")
    stack.wait_until(lambda: unpublished(stack) <= total - 1000, 120, "1000 rows published")
    poller.signal(signal.SIGTERM)
    assert poller.wait(60) == 0, poller.log_tail()
    # The batch in flight was finished and committed: Kafka has exactly the
    # rows marked published.
    published = set(
        stack.pg.psql("SELECT id FROM outbox WHERE published_at IS NOT NULL", url=stack.url).split()
    )
    assert 0 < len(published) < total, "stopped too late to show anything"
    time.sleep(1)
    assert set(by_id(stack.kafka.consume(poll_topic(stack)))) == published

    start_poller(stack, "--poll-batch", "500")
    stack.wait_until(lambda: unpublished(stack) == 0, 180, "outbox drained after the restart")
    events = stack.kafka.consume(poll_topic(stack), count=total, timeout=90)
    time.sleep(1)
    events = stack.kafka.consume(poll_topic(stack))
    counts = by_id(events)
    assert len(events) == total and max(counts.values()) == 1, f"{len(events)} events"


@pytest.mark.timeout(180)
def test_connection_terminated_reconnects_and_loses_nothing(stack):
    poller = start_poller(stack)
    insert_rows(stack, 100, prefix="a")
    stack.wait_until(lambda: unpublished(stack) == 0, 60, "first rows published")
    mark = poller.mark()
    stack.pg.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cdc-relay-poll'",
        url=stack.url,
    )
    poller.wait_for_log(r"polling table", timeout=60, since=mark)
    assert "retrying in" in poller.log_text(since=mark)
    insert_rows(stack, 100, prefix="b")
    stack.wait_until(lambda: unpublished(stack) == 0, 60, "rows after the reconnect published")
    events = stack.kafka.consume(poll_topic(stack), count=200, timeout=60)
    assert set(by_id(events)) == stack.outbox_ids()
    assert poller.alive


@pytest.mark.timeout(120)
def test_until_empty_drains_and_exits_zero(stack):
    insert_rows(stack, 1200)
    poller = start_poller(stack, "--until-empty", wait=False)
    assert poller.wait(90) == 0, poller.log_tail()
    assert "outbox drained" in poller.log_text()
    assert unpublished(stack) == 0
    assert len(stack.kafka.consume(poll_topic(stack), count=1200, timeout=60)) == 1200


@pytest.mark.timeout(120)
def test_table_without_published_at_is_a_clear_error(migrated_pg, spawn, kafka):
    url = migrated_pg.new_database()
    migrated_pg.psql(
        "CREATE TABLE outbox (id uuid PRIMARY KEY, aggregate_type text, aggregate_id text,"
        " event_type text, payload jsonb, created_at timestamptz DEFAULT now())",
        url=url,
    )
    r = run_bin("cdc-relay", "--mode", "poll", env={"DATABASE_URL": url, "KAFKA_BROKERS": kafka.brokers})
    assert r.returncode == 1
    assert "no published_at column" in r.stderr and "0004" in r.stderr
    r = run_bin(
        "cdc-relay", "--mode", "poll", "--table", "public.nope",
        env={"DATABASE_URL": url, "KAFKA_BROKERS": kafka.brokers},
    )
    assert r.returncode == 1 and "does not exist" in r.stderr


@pytest.mark.timeout(120)
def test_quoted_table_name(migrated_pg, spawn, kafka):
    """--table is quoted as an identifier, as stream mode matches it: a
    mixed-case name with a quote in it works and injects nothing."""
    url = migrated_pg.new_database()
    name = 'Out"Box'
    q = '"Out""Box"'
    migrated_pg.psql(
        f"CREATE TABLE {q} (id uuid PRIMARY KEY, aggregate_type text NOT NULL, aggregate_id text"
        " NOT NULL, event_type text NOT NULL, payload jsonb, created_at timestamptz NOT NULL"
        f" DEFAULT now(), published_at timestamptz);"
        f" INSERT INTO {q} (id, aggregate_type, aggregate_id, event_type, payload)"
        " SELECT gen_random_uuid(), 'orders', 'q' || g, 'E', '{}' FROM generate_series(1, 5) g",
        url=url,
    )
    topic = unique_name("it") + ".${aggregate_type}"
    r = run_bin(
        "cdc-relay", "--mode", "poll", "--until-empty", "--table", f"public.{name}",
        "--topic-template", topic,
        env={"DATABASE_URL": url, "KAFKA_BROKERS": kafka.brokers}, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert migrated_pg.psql(f"SELECT count(*) FROM {q} WHERE published_at IS NULL", url=url) == "0"
    assert len(kafka.consume(topic.replace("${aggregate_type}", "orders"), count=5, timeout=30)) == 5


def test_poll_mode_usage():
    r = run_bin("cdc-relay", "--help")
    assert r.returncode == 0
    for opt in ("--mode", "CDC_MODE", "--poll-interval", "--poll-batch", "--poll-batch-timeout",
                "--until-empty"):
        assert opt in r.stdout
    env = {"DATABASE_URL": "postgresql:///x"}
    for args, why in (
        (("--mode", "bogus"), "--mode"),
        (("--mode", "poll", "--start-lsn", "0/1"), "--mode stream"),
        (("--mode", "poll", "--source", "messages"), "--mode stream"),
        (("--until-empty",), "--mode poll"),
        (("--mode", "poll", "--poll-batch", "0"), "--poll-batch"),
        (("--mode", "poll", "--poll-interval", "x"), "--poll-interval"),
    ):
        r = run_bin("cdc-relay", *args, env=env)
        assert r.returncode == 2 and why in r.stderr, (args, r.stderr)
    r = run_bin("cdc-relay", env={**env, "CDC_MODE": "poll", "CDC_POLL_BATCH": "-1"})
    assert r.returncode == 2 and "CDC_POLL_BATCH" in r.stderr
