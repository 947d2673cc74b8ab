"""cdc-relay audit (docs/operations.md, "Auditing a time range") against a
real Postgres and Kafka: rows the relay never delivered are reported missing
(exit 4), a message no row explains is unexpected (exit 5), a clean range is
exit 0, a dead-lettered event is reported as such."""

from __future__ import annotations

import datetime
import re
import signal
import time
import uuid

import pytest

from harness import run_bin, unique_name
from stack import Stack


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    return Stack(migrated_pg, kafka, spawn)


def insert_rows(stack: Stack, n: int, tag: str) -> list[str]:
    out = stack.pg.psql(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)"
        f" SELECT gen_random_uuid(), 'orders', '{tag}-' || g, 'OrderCreated',"
        f" jsonb_build_object('n', g) FROM generate_series(1, {n}) g RETURNING id",
        url=stack.url)
    return UUID_RE.findall(out)  # psql adds the "INSERT 0 n" tag


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit(stack: Stack, *args: str):
    return run_bin("cdc-relay", "audit", "--topic-template", stack.template, *args,
                   env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers},
                   timeout=120)


def lines(out: str, kind: str) -> list[str]:
    return [l for l in out.splitlines() if l.startswith(kind + " ")]


@pytest.mark.timeout(240)
def test_audit_reports_missing_and_unexpected_events(stack):
    since = now_iso()
    relay = stack.start_relay()
    delivered = insert_rows(stack, 200, "a")
    assert len(stack.events(count=200, timeout=60)) == 200
    relay.signal(signal.SIGTERM)
    assert relay.wait(60) == 0
    # Committed while no relay runs: in the table, not in Kafka.
    undelivered = insert_rows(stack, 30, "b")
    # A message no outbox row stands for, with a commit time in the range.
    stray = str(uuid.uuid4())
    stack.kafka.produce(stack.topic, '{"stray": true}', key="x",
                        headers={"id": stray, "event_type": "E", "aggregate_type": "orders",
                                 "commit_ts": now_iso()})
    stack.kafka.produce(stack.topic, '{"no": "id"}', key="y")  # no id header at all
    time.sleep(0.01)

    r = audit(stack, "--since", since, "--until", "now")
    assert r.returncode == 4, r.stdout + r.stderr
    missing = lines(r.stdout, "missing")
    assert sorted(re.search(r"id=(\S+)", l).group(1) for l in missing) == sorted(undelivered)
    assert all(f"topic={stack.topic}" in l for l in missing)
    unexpected = lines(r.stdout, "unexpected")
    assert len(unexpected) == 2, r.stdout
    assert any(f"id={stray} " in l and "reason=no-such-row" in l for l in unexpected)
    assert any("reason=no-id-header" in l for l in unexpected)
    summary = r.stdout.splitlines()[-1]
    assert "230 rows" in summary and "200 found, 30 missing" in summary, summary
    assert "2 unexpected" in summary

    # The relay delivers the rest: nothing missing, the strays remain.
    relay = stack.start_relay()
    assert len(stack.events(count=232, timeout=60)) == 232
    r = audit(stack, "--since", since, "--until", "now")
    assert r.returncode == 5, r.stdout + r.stderr
    assert not lines(r.stdout, "missing") and len(lines(r.stdout, "unexpected")) == 2
    # The same with the topic given instead of derived from the template.
    r = run_bin("cdc-relay", "audit", "--since", since, "--topics", stack.topic,
                env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers}, timeout=120)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "230 found, 0 missing" in r.stdout

    # A later range with every event delivered: exit 0. The earlier rows'
    # messages are read too (the clock-skew margin) and are not unexpected,
    # since their rows exist; the strays' commit times are outside it.
    time.sleep(0.05)
    since2 = now_iso()
    later = insert_rows(stack, 50, "c")
    assert len(stack.events(count=282, timeout=60)) == 282
    r = audit(stack, "--since", since2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(later)} rows" in r.stdout and "50 found, 0 missing" in r.stdout
    assert "0 unexpected" in r.stdout
    assert relay.alive


@pytest.mark.timeout(180)
def test_audit_counts_dead_lettered_events_and_checks_its_arguments(stack):
    dl = unique_name("dl")
    since = now_iso()
    stack.start_relay("--dead-letter-topic", dl)
    ok = insert_rows(stack, 3, "ok")
    big = UUID_RE.findall(stack.pg.psql(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES"
        " (gen_random_uuid(), 'orders', 'big', 'E', jsonb_build_object('big', repeat('x', 2000000)))"
        " RETURNING id", url=stack.url))[0]
    assert len(stack.events(count=3, timeout=60)) == 3
    assert len(stack.kafka.consume(dl, count=1, timeout=60)) == 1
    r = audit(stack, "--since", since, "--dead-letter-topic", dl)
    assert r.returncode == 0, r.stdout + r.stderr
    assert lines(r.stdout, "dead-lettered") == [f"dead-lettered id={big} topic={stack.topic}"]
    assert "3 found, 0 missing, 1 dead-lettered" in r.stdout
    # Without the dead-letter topic the event is missing from its topic.
    r = audit(stack, "--since", since)
    assert r.returncode == 4 and lines(r.stdout, "missing") == [f"missing id={big} topic={stack.topic}"]
    assert len(ok) == 3

    for args, msg in [
        ((), "audit needs --since"),
        (("--since", "yesterday-ish"), "--since: \"yesterday-ish\" is not a time"),
        (("--since", "1h", "--until", "2h"), "--until is not after --since"),
        (("--since", "2026-02-30"), "is not a time"),
        (("--since", "1h", "--mode", "poll"), "--mode poll"),
    ]:
        r = audit(stack, *args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    r = run_bin("cdc-relay", "--since", "1h", env={"DATABASE_URL": stack.url})
    assert r.returncode == 2 and "for the audit command" in r.stderr
