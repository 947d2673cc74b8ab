"""cdc-relay reemit (docs/operations.md, "Re-emitting events") against a real
Postgres and Kafka: an id range and a time range re-sent while orders keep
arriving come back with their identity and a replayed header, in per-key
order with the live stream; a relay SIGKILLed in the middle of a large
re-emit serves the request again after a restart."""

from __future__ import annotations

import re
import signal
import threading
import time

import pytest

from harness import run_bin
from stack import Stack, lsn_int

KEYS = 20


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    return Stack(migrated_pg, kafka, spawn)


def insert_round(stack: Stack, tag: str) -> None:
    """One transaction: one event for each of KEYS keys, so a key's events
    are in separate transactions whose created_at grows with commit order."""
    stack.pg.psql(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)"
        f" SELECT gen_random_uuid(), 'orders', 'k' || g, 'OrderCreated',"
        f" jsonb_build_object('round', '{tag}', 'k', g) FROM generate_series(1, {KEYS}) g",
        url=stack.url)


def reemit(stack: Stack, *args: str, timeout: float = 180):
    return run_bin("cdc-relay", "reemit", "--slot", stack.slot, *args,
                   env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers},
                   timeout=timeout)


def request_of(out: str) -> tuple[str, int, int]:
    """(request LSN, rows, done position) from the command's output."""
    m = re.search(r"^request (\S+) for slot \S+: (\d+) rows", out, re.M)
    d = re.search(r"delivered up to (\S+)", out)
    assert m and d, out
    return m.group(1), int(m.group(2)), lsn_int(d.group(1))


class Inserter:
    """Keeps committing rounds from a thread until stopped."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.rounds = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            insert_round(self.stack, f"live{self.rounds}")
            self.rounds += 1
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def check_request(msgs: list[dict], request: str, done_lsn: int, expected: set[str],
                  maybe: set[str]) -> list[dict]:
    """The properties of one served request over the topic's messages:
    - identity: every expected row's event appears again (and only rows of
      the range: expected plus maybe, rows committed while the command ran),
      with the id, key, payload and headers of its live message, no lsn
      header, commit_ts set, replayed: true, replay_request: the request;
    - per-key order: for each key, the request's re-sent messages are one
      unbroken run among the key's messages (no live message between two of
      them), in the order of their live originals; every live message
      before the run committed before the request was written (its lsn
      header is below the write position after the request's commit), and
      every live message after it committed after the request (lsn header
      above the request's own position)."""
    live = {m["headers"]["id"]: m for m in msgs if "replayed" not in m["headers"]}
    replayed = [m for m in msgs if m["headers"].get("replay_request") == request]
    ids = [m["headers"]["id"] for m in replayed]
    assert len(ids) == len(set(ids)), "a row re-sent twice by one serving"
    assert expected <= set(ids) <= expected | maybe, (
        f"missing {len(expected - set(ids))}, extra {len(set(ids) - expected - maybe)}")
    for m in replayed:
        orig = live[m["headers"]["id"]]
        assert m["headers"]["replayed"] == "true"
        assert "lsn" not in m["headers"] and m["headers"]["commit_ts"]
        assert (m["key"], m["payload"], m["partition"]) == (orig["key"], orig["payload"],
                                                           orig["partition"])
        for h in ("event_type", "aggregate_type"):
            assert m["headers"][h] == orig["headers"][h]
    request_lsn = lsn_int(request)
    by_key: dict[str, list[dict]] = {}
    for m in msgs:  # sorted by (partition, offset): a key's messages in order
        by_key.setdefault(m["key"], []).append(m)
    for key, seq in by_key.items():
        pos = [i for i, m in enumerate(seq) if m["headers"].get("replay_request") == request]
        if not pos:
            continue
        assert pos == list(range(pos[0], pos[-1] + 1)), f"key {key}: re-sent run broken"
        originals = [seq.index(live[seq[i]["headers"]["id"]]) for i in pos]
        assert originals == sorted(originals), f"key {key}: re-sent out of order"
        for m in seq[:pos[0]]:
            if "replayed" not in m["headers"]:
                assert lsn_int(m["headers"]["lsn"]) < done_lsn, f"key {key}: later event before"
        for m in seq[pos[-1] + 1:]:
            if "replayed" not in m["headers"]:
                assert lsn_int(m["headers"]["lsn"]) > request_lsn, f"key {key}: earlier event after"
    return replayed


def rows(stack: Stack, where: str) -> set[str]:
    out = stack.pg.psql(f"SELECT id FROM outbox WHERE {where}", url=stack.url)
    return set(out.split()) if out else set()


def db_now(stack: Stack) -> str:
    return stack.pg.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC',"
                         " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", url=stack.url)


# The request and its query use pg_current_snapshot, pg_visible_in_snapshot and
# xid8: on every PostgreSQL version.
@pytest.mark.matrix
@pytest.mark.timeout(300)
def test_reemit_id_and_time_ranges_while_orders_arrive(stack):
    relay = stack.start_relay()
    for i in range(5):
        insert_round(stack, f"a{i}")
    since = db_now(stack)
    for i in range(5):
        insert_round(stack, f"b{i}")
    until = db_now(stack)
    for i in range(5):
        insert_round(stack, f"c{i}")
    assert len(stack.events(count=15 * KEYS, timeout=60)) == 15 * KEYS

    ordered = sorted(rows(stack, "true"))
    first, last = ordered[40], ordered[200]
    in_ids = f"id BETWEEN '{first}' AND '{last}'"
    in_time = f"created_at >= '{since}' AND created_at < '{until}'"
    with Inserter(stack) as ins:
        while ins.rounds < 3:
            time.sleep(0.05)
        before_ids = rows(stack, in_ids)
        r = reemit(stack, "--ids", f"{first}..{last}", "--wait", "--wait-timeout", "120")
        assert r.returncode == 0, r.stdout + r.stderr
        after_ids = rows(stack, in_ids)
        id_request, id_rows, id_done = request_of(r.stdout)
        assert len(before_ids) <= id_rows <= len(after_ids)
        assert re.search(r"^delivered: \d+ rows in", r.stdout, re.M), r.stdout

        expect_time = rows(stack, in_time)
        r = reemit(stack, "--since", since, "--until", until, "--wait")
        assert r.returncode == 0, r.stdout + r.stderr
        time_request, time_rows, time_done = request_of(r.stdout)
        assert time_rows == len(expect_time) == 5 * KEYS
        rounds_at_end = ins.rounds
        while ins.rounds < rounds_at_end + 3:  # live events after both requests
            time.sleep(0.05)
    total = len(rows(stack, "true"))
    msgs = stack.events(count=total + id_rows + time_rows, timeout=90)
    assert len(msgs) == total + id_rows + time_rows
    got = check_request(msgs, id_request, id_done, before_ids, after_ids - before_ids)
    assert len(got) == id_rows
    got = check_request(msgs, time_request, time_done, expect_time, set())
    assert len(got) == time_rows
    # commit_ts of a re-sent event is its row's created_at
    sample = got[0]
    created = stack.pg.psql(
        "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        f" FROM outbox WHERE id = '{sample['headers']['id']}'", url=stack.url)
    assert sample["headers"]["commit_ts"] == created
    assert relay.alive
    log = relay.log_text()
    assert f"re-emit request {id_request}: {id_rows} events produced" in log
    # A request for another slot is left to that slot's relay.
    other = run_bin("cdc-relay", "reemit", "--slot", "nobody", "--ids", f"{first}..{last}",
                    env={"DATABASE_URL": stack.url})
    assert other.returncode == 1 and 'no slot "nobody"' in other.stderr


@pytest.mark.timeout(600)
def test_reemit_survives_sigkill_of_the_relay(stack):
    n = 100000
    relay = stack.start_relay()
    since = db_now(stack)
    stack.pg.psql(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)"
        " SELECT gen_random_uuid(), 'orders', 'k' || (g % 1000), 'OrderCreated',"
        f" jsonb_build_object('n', g) FROM generate_series(1, {n}) g", url=stack.url)
    stack.wait_until(lambda: stack.confirmed_flush() >= stack.current_lsn() - 1, timeout=180,
                     what="live events delivered")
    mark = relay.mark()
    r = reemit(stack, "--since", since)
    assert r.returncode == 0, r.stdout + r.stderr
    request, count, done = request_of(r.stdout)
    assert count == n
    relay.wait_for_log(rf"re-emit request {re.escape(request)}: rows", timeout=60, since=mark)
    time.sleep(0.5)
    relay.kill()
    served_before_kill = f"re-emit request {request}: {n} events produced" in relay.log_text(mark)
    assert not served_before_kill, "the re-emit finished before the kill: make it larger"

    relay = stack.start_relay()
    t0 = time.monotonic()
    stack.wait_until(lambda: stack.confirmed_flush() >= done, timeout=300,
                     what="the request confirmed after the restart")
    rate = n / (time.monotonic() - t0)
    print(f"re-emit after restart: {n} rows delivered in {time.monotonic() - t0:.1f} s "
          f"({rate:.0f} rows/s)")
    msgs = stack.events(count=2 * n, timeout=120)
    resent = {m["headers"]["id"] for m in msgs if m["headers"].get("replay_request") == request}
    assert resent == rows(stack, "true")
    assert relay.alive

    # The rate of a request served by a running relay, as the command reports it.
    r = reemit(stack, "--since", since, "--wait", "--wait-timeout", "300", timeout=330)
    assert r.returncode == 0, r.stdout + r.stderr
    delivered = re.search(r"^delivered: (\d+) rows in .*$", r.stdout, re.M)
    assert delivered and int(delivered.group(1)) == n, r.stdout
    print(f"cdc-relay reemit --since ... --wait: {delivered.group(0)}")


def test_reemit_checks_its_arguments(stack):
    stack.start_relay()
    for args, msg in [
        ((), "reemit needs one range"),
        (("--ids", "a..b", "--since", "1h"), "reemit needs one range"),
        (("--ids", "..b"), "is not A..B"),
        (("--lsn", "0/1..0/2"), "--start-lsn"),
        (("--since", "1h", "--mode", "poll"), "--mode poll"),
        (("--until", "1h", "--ids", "a"), "--until goes with --since"),
    ]:
        r = reemit(stack, *args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    r = run_bin("cdc-relay", "--wait", env={"DATABASE_URL": stack.url})
    assert r.returncode == 2 and "for the reemit command" in r.stderr
    # A bound the id column cannot take is refused before anything is written.
    r = reemit(stack, "--ids", "not-a-uuid")
    assert r.returncode == 1 and "uuid" in r.stderr, r.stderr
