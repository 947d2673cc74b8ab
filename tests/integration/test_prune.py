"""cdc-relay prune (docs/operations.md, "Pruning the outbox") against a real
Postgres and Kafka: it removes old rows only once their events are in Kafka,
never a row the relay has not delivered, also while orders keep arriving and
the relay stops mid-run; a partitioned outbox streams through the relay and
is pruned by whole partitions."""

from __future__ import annotations

import datetime
import re
import signal
import threading
import time

import pytest

from harness import run_bin
from stack import Stack

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    return Stack(migrated_pg, kafka, spawn)


def insert_old(stack: Stack, n: int, tag: str, age: str = "2 days", table: str = "outbox") -> list[str]:
    """n rows whose created_at is `age` ago (old enough to prune)."""
    out = stack.pg.psql(
        f"INSERT INTO {table} (id, aggregate_type, aggregate_id, event_type, payload, created_at)"
        f" SELECT gen_random_uuid(), 'orders', '{tag}-' || g, 'OrderCreated',"
        f" jsonb_build_object('n', g), now() - interval '{age}'"
        f" FROM generate_series(1, {n}) g RETURNING id",
        url=stack.url)
    return UUID_RE.findall(out)


def prune_args(stack: Stack, *args: str) -> list[str]:
    return ["prune", "--slot", stack.slot, "--state-file", stack.state_file, *args]


def prune(stack: Stack, *args: str, timeout: float = 120):
    return run_bin("cdc-relay", *prune_args(stack, *args), env={"DATABASE_URL": stack.url},
                   timeout=timeout)


def ids_in_table(stack: Stack, table: str = "outbox") -> set[str]:
    out = stack.pg.psql(f"SELECT id FROM {table}", url=stack.url)
    return set(out.split()) if out else set()


def ids_in_topic(stack: Stack) -> set[str]:
    return {m["headers"].get("id") for m in stack.events()}


class Loader(threading.Thread):
    """Inserts old-dated rows in small transactions until stopped (bounded:
    at most `limit` transactions); remembers when each one was sent."""

    def __init__(self, stack: Stack, limit: int = 3000):
        super().__init__(daemon=True)
        self.stack, self.limit = stack, limit
        self.batches: list[tuple[float, list[str]]] = []  # (started, ids)
        self.stop = threading.Event()

    def run(self):
        for i in range(self.limit):
            if self.stop.is_set():
                return
            started = time.monotonic()
            self.batches.append((started, insert_old(self.stack, 20, f"load{i}")))

    def ids(self, started_after: float = 0.0) -> set[str]:
        return {i for t, ids in self.batches if t > started_after for i in ids}


@pytest.mark.timeout(300)
def test_prune_never_removes_an_undelivered_row_under_load(stack):
    stack.start_relay()
    delivered = insert_old(stack, 300, "a")
    insert_old(stack, 100, "recent", age="1 hour")  # too young for --older-than 1d
    assert len(stack.events(count=400, timeout=60)) == 400

    # The relay stopped, rows it never sent: prune waits for the slot in
    # vain, says so, and deletes nothing (exit 5).
    stack.relay.signal(signal.SIGTERM)
    assert stack.relay.wait(60) == 0
    undelivered = insert_old(stack, 50, "b")
    before = ids_in_table(stack)
    r = prune(stack, "--older-than", "1d", "--confirm-timeout", "2s")
    assert r.returncode == 5, r.stdout + r.stderr
    assert "did not reach" in r.stderr and "--replay-window" in r.stderr
    assert ids_in_table(stack) == before

    # Running again, under load: old-dated rows keep arriving while prune
    # deletes in small, slow batches; midway the relay is frozen, so rows
    # committed from then on are not delivered.
    stack.start_relay()
    loader = Loader(stack)
    loader.start()
    try:
        time.sleep(1.0)
        p = stack.spawn("cdc-relay", *prune_args(stack, "--older-than", "1d", "--batch-size", "20",
                                                 "--batch-pause", "100ms", "--confirm-timeout", "60s"),
                        env={"DATABASE_URL": stack.url}, wait_for=r"prune: delivered up to",
                        timeout=90)
        time.sleep(0.5)
        stack.relay.signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        in_kafka = ids_in_topic(stack)  # everything the frozen relay got acknowledged, and more
        time.sleep(3.0)  # prune goes on deleting while rows keep arriving
        loader.stop.set()
        loader.join(60)
        assert p.wait(120) == 0, p.log_tail()
    finally:
        loader.stop.set()
        stack.relay.signal(signal.SIGCONT)
    remaining = ids_in_table(stack)
    inserted = set(delivered) | set(undelivered) | loader.ids()
    deleted = inserted - remaining
    assert deleted, p.log_tail()
    assert deleted <= in_kafka, f"{len(deleted - in_kafka)} rows deleted before delivery"
    # Every row written after the freeze is still there, and the young ones too.
    assert loader.ids(started_after=frozen_at) <= remaining
    assert len([i for i in remaining if i not in inserted]) == 100
    summary = p.log_text().splitlines()
    assert any(re.search(r"prune: public\.outbox before .*: \d+ rows deleted in \d+ batches", l)
               for l in summary), p.log_tail()

    # Once the relay caught up, a second run takes the rest of the old rows.
    total = len(inserted) + 100
    assert len(stack.events(count=total, timeout=90)) >= total
    r = prune(stack, "--older-than", "1d", "--confirm-timeout", "60s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ids_in_table(stack) == remaining - inserted  # the 100 young rows
    assert stack.relay.alive


@pytest.mark.matrix
@pytest.mark.timeout(120)
def test_prune_dry_run_slot_checks_and_poll_mode(stack):
    # No slot: nothing is known delivered (exit 4).
    r = prune(stack, "--older-than", "1d")
    assert r.returncode == 4 and "does not exist" in r.stderr, r.stderr
    stack.start_relay()
    insert_old(stack, 10, "x")
    assert len(stack.events(count=10, timeout=60)) == 10
    r = prune(stack, "--older-than", "1d", "--dry-run")
    assert r.returncode == 0 and "10 rows would be deleted" in r.stdout, r.stdout + r.stderr
    assert len(ids_in_table(stack)) == 10
    r = prune(stack, "--older-than", "3d")
    assert r.returncode == 0 and " 0 rows deleted" in r.stdout, r.stdout + r.stderr

    # Poll mode: delivered means published_at is set.
    stack.pg.psql("UPDATE outbox SET published_at = now() WHERE aggregate_id IN ('x-1', 'x-2')",
                  url=stack.url)
    r = run_bin("cdc-relay", "prune", "--mode", "poll", "--older-than", "1d",
                env={"DATABASE_URL": stack.url})
    assert r.returncode == 0 and " 2 rows deleted" in r.stdout, r.stdout + r.stderr
    assert len(ids_in_table(stack)) == 8

    for args, msg in [
        ((), "prune needs --older-than"),
        (("--older-than", "soon"), "is not a duration"),
        (("--older-than", "1d", "--batch-size", "0"), "--batch-size"),
    ]:
        r = run_bin("cdc-relay", "prune", *args, env={"DATABASE_URL": stack.url})
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    r = run_bin("cdc-relay", "--older-than", "1d", env={"DATABASE_URL": stack.url})
    assert r.returncode == 2 and "for the prune command" in r.stderr


def day(offset: int) -> str:
    d = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=offset)
    return d.isoformat() + " 00:00:00+00"


PARTITIONED = """
CREATE TABLE outbox_p (
    id uuid NOT NULL, aggregate_type text NOT NULL, aggregate_id text NOT NULL,
    event_type text NOT NULL, payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (created_at);
CREATE TABLE outbox_p_d5 PARTITION OF outbox_p FOR VALUES FROM ('{d5}') TO ('{d4}');
CREATE TABLE outbox_p_d4 PARTITION OF outbox_p FOR VALUES FROM ('{d4}') TO ('{d3}');
CREATE TABLE outbox_p_now PARTITION OF outbox_p FOR VALUES FROM ('{d3}') TO ('{d2}');
"""


@pytest.mark.matrix
@pytest.mark.timeout(240)
def test_partitioned_outbox_streams_and_prunes_by_partition(stack):
    stack.pg.psql(PARTITIONED.format(d5=day(-5), d4=day(-4), d3=day(-3), d2=day(2)),
                  url=stack.url)
    # A publication without publish_via_partition_root is refused, with the fix.
    stack.pg.psql(f"CREATE PUBLICATION {stack.publication} FOR TABLE outbox_p"
                  " WITH (publish = 'insert')", url=stack.url)
    relay = stack.start_relay("--table", "public.outbox_p", wait=False)
    assert relay.wait(60) == 1
    assert "publish_via_partition_root = true" in relay.log_text()
    stack.pg.psql(f"DROP PUBLICATION {stack.publication}", url=stack.url)
    stack.pg.psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                  f" WHERE slot_name = '{stack.slot}'", url=stack.url)

    # The relay's own publication: partition inserts arrive as outbox_p.
    stack.start_relay("--table", "public.outbox_p")
    assert stack.pg.psql(f"SELECT pubviaroot FROM pg_publication WHERE pubname ="
                         f" '{stack.publication}'", url=stack.url) == "t"
    d5 = insert_old(stack, 30, "d5", age="5 days - 1 hour", table="outbox_p")
    d4 = insert_old(stack, 40, "d4", age="4 days - 1 hour", table="outbox_p")
    now = insert_old(stack, 20, "now", age="1 hour", table="outbox_p")
    events = stack.events(count=90, timeout=60)
    assert {m["headers"]["id"] for m in events} == set(d5) | set(d4) | set(now)
    assert stack.pg.psql("SELECT count(*) FROM outbox_p_d5", url=stack.url) == "30"

    r = prune(stack, "--table", "public.outbox_p", "--older-than", "36h", "--dry-run")
    assert r.returncode == 0 and "2 partitions would be removed (70 rows)" in r.stdout, \
        r.stdout + r.stderr
    r = prune(stack, "--table", "public.outbox_p", "--older-than", "36h", "--keep-detached")
    assert r.returncode == 0 and "2 partitions detached (70 rows)" in r.stdout, r.stdout + r.stderr
    parts = stack.pg.psql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                          " WHERE i.inhparent = 'outbox_p'::regclass", url=stack.url)
    assert parts.split() == ["outbox_p_now"]
    assert stack.pg.psql("SELECT count(*) FROM outbox_p_d5", url=stack.url) == "30"  # kept

    # An old partition with a row the stopped relay never sent stays.
    stack.pg.psql(f"CREATE TABLE outbox_p_d4b PARTITION OF outbox_p FOR VALUES"
                  f" FROM ('{day(-4)}') TO ('{day(-3)}')", url=stack.url)
    stack.relay.signal(signal.SIGTERM)
    assert stack.relay.wait(60) == 0
    late = insert_old(stack, 5, "late", age="4 days - 1 hour", table="outbox_p")
    r = prune(stack, "--table", "public.outbox_p", "--older-than", "36h", "--confirm-timeout", "1s")
    assert r.returncode == 5, r.stdout + r.stderr
    stack.start_relay("--table", "public.outbox_p")
    assert len(stack.events(count=95, timeout=60)) == 95
    r = prune(stack, "--table", "public.outbox_p", "--older-than", "36h")
    assert r.returncode == 0 and "1 partitions dropped (5 rows)" in r.stdout, r.stdout + r.stderr
    assert ids_in_table(stack, "outbox_p") == set(now)
    assert late


@pytest.mark.timeout(180)
def test_replay_window_holds_the_slot_back_and_the_state_file_does_not(stack):
    stack.start_relay("--replay-window", "1h")
    rows = insert_old(stack, 40, "w")
    assert len(stack.events(count=40, timeout=60)) == 40
    # The slot stays an hour behind: by it alone nothing is known delivered.
    r = run_bin("cdc-relay", "prune", "--slot", stack.slot, "--no-state-file", "--older-than", "1d",
                "--confirm-timeout", "3s", env={"DATABASE_URL": stack.url})
    assert r.returncode == 5 and "--replay-window" in r.stderr, r.stdout + r.stderr
    assert ids_in_table(stack) == set(rows)
    # The relay's state file has the delivered position: prune goes by it.
    r = prune(stack, "--older-than", "1d", "--confirm-timeout", "60s")
    assert r.returncode == 0 and " 40 rows deleted" in r.stdout, r.stdout + r.stderr
    assert "or the state file" in r.stderr
    assert ids_in_table(stack) == set()
    # A state file of another slot is not taken for this one's.
    other = stack.state_file + ".other"
    with open(stack.state_file) as f, open(other, "w") as g:
        g.write(f.read().replace(f"slot={stack.slot}", "slot=someone_else"))
    r = run_bin("cdc-relay", "prune", "--slot", stack.slot, "--state-file", other, "--older-than",
                "1d", "--confirm-timeout", "1s", env={"DATABASE_URL": stack.url})
    assert r.returncode == 5 and "going by the slot alone" in r.stderr, r.stdout + r.stderr
