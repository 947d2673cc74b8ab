"""Kafka faults injected with librdkafka's mock cluster (rdkafka_mock.h),
run in its own process (build/tools/kafka_mock) so the relay talks to it over
TCP like to a real broker. Real Postgres; the mock holds data in memory and
is the only way to inject protocol-level errors."""

from __future__ import annotations

import collections
import json
import subprocess
import time

import pytest

from harness import REPO, HarnessError
from stack import Stack


class MockKafka:
    def __init__(self):
        path = REPO / "build" / "tools" / "kafka_mock"
        if not path.exists():
            raise HarnessError(f"{path} is missing: make build/tools/kafka_mock")
        self.proc = subprocess.Popen(
            [str(path), "1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        assert line.startswith("bootstrap="), line
        self.brokers = line.split("=", 1)[1]

    def command(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer == "ok", f"{text}: {answer}"

    def consume(self, topic: str, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run(
                ["kcat", "-C", "-b", self.brokers, "-t", topic, "-o", "beginning", "-e", "-J", "-q", "-m", "5"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            msgs = []
            for line in r.stdout.splitlines():
                if line.startswith("{"):
                    m = json.loads(line)
                    raw = m.get("headers") or []
                    m["headers"] = dict(zip(raw[0::2], raw[1::2]))
                    msgs.append(m)
            if len(msgs) >= count or time.monotonic() > deadline:
                return msgs
            time.sleep(0.3)

    def close(self):
        try:
            self.command("quit")
        except Exception:
            pass
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def mock():
    m = MockKafka()
    yield m
    m.close()


@pytest.fixture
def stack(migrated_pg, kafka, spawn, mock):
    s = Stack(migrated_pg, kafka, spawn)
    s.kafka_brokers = mock.brokers
    s.start_api()
    mock.command(f"topic {s.topic} 3")
    return s


def start_relay(stack, mock, *extra, wait=True):
    # One request in flight: the 2.0.2 mock can lose pipelined batches that
    # librdkafka reports delivered (tests/faults/suite.py, docs/reliability.md).
    return stack.spawn(
        "cdc-relay",
        *stack.relay_args("-X", "max.in.flight.requests.per.connection=1", *extra),
        env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": mock.brokers},
        wait_for=r"streaming slot" if wait else None,
    )


def ids(stack):
    return stack.outbox_ids()


@pytest.mark.timeout(180)
def test_retriable_produce_errors_are_retried_without_loss_or_duplicates(stack, mock):
    relay = start_relay(stack, mock)
    assert all(r[0] == 201 for r in stack.post_many(20, clients=4))
    assert len(mock.consume(stack.topic, 20)) == 20
    # NOT_ENOUGH_REPLICAS (19) is retriable and says the batch was not
    # written. (A timeout, 7, is "possibly persisted", which trips librdkafka
    # 2.0.2's idempotence bug, docs/protocol.md#k4: the relay then rewinds and
    # duplicates are expected; test_disconnects_mid_produce covers that path.)
    mock.command("produce-errors 19 19 19 19 19")
    assert all(r[0] == 201 for r in stack.post_many(30, clients=4))
    events = mock.consume(stack.topic, 50)
    counts = collections.Counter(e["headers"]["id"] for e in events)
    assert set(counts) == ids(stack)
    assert max(counts.values()) == 1, "idempotent producer: retries make no duplicates"
    assert relay.alive


@pytest.mark.timeout(180)
def test_broker_down_pauses_and_confirms_nothing_then_drains(stack, mock):
    relay = start_relay(stack, mock)
    assert stack.post_order()[0] == 201
    assert len(mock.consume(stack.topic, 1)) == 1
    mock.command("down -1")
    before = stack.current_lsn()
    assert all(r[0] == 201 for r in stack.post_many(30, clients=4))
    time.sleep(4)
    assert stack.confirmed_flush() <= before
    assert relay.alive
    mock.command("up -1")
    events = mock.consume(stack.topic, 31, timeout=90)
    assert {e["headers"]["id"] for e in events} == ids(stack)
    stack.wait_until(lambda: stack.confirmed_flush() > before, 30, "slot moves after recovery")


@pytest.mark.timeout(180)
def test_disconnects_mid_produce_lose_nothing(stack, mock):
    relay = start_relay(stack, mock)
    # -195 = local transport error: the mock drops the connection. With
    # librdkafka 2.0.2 this may also trip its idempotence bug
    # (docs/protocol.md#k4): then the relay rewinds with a new producer.
    mock.command("produce-errors -195 -195 -195")
    assert all(r[0] == 201 for r in stack.post_many(40, clients=4))
    events = mock.consume(stack.topic, 40, timeout=90)
    assert set(e["headers"]["id"] for e in events) == ids(stack)
    assert relay.alive


@pytest.mark.timeout(180)
def test_permanent_produce_error_stops_without_confirming(stack, mock):
    relay = start_relay(stack, mock)
    assert stack.post_order()[0] == 201
    assert len(mock.consume(stack.topic, 1)) == 1
    before = stack.current_lsn()
    # TOPIC_AUTHORIZATION_FAILED (29) is not retriable.
    mock.command("produce-errors 29")
    assert stack.post_order("doomed")[0] == 201
    assert relay.wait(60) == 1
    assert "failed permanently" in relay.log_text()
    assert stack.confirmed_flush() <= before


@pytest.mark.timeout(180)
def test_authorization_failure_goes_to_the_dead_letter_topic(stack, mock):
    dlq = stack.topic + ".dlq"
    mock.command(f"topic {dlq} 1")
    relay = start_relay(stack, mock, "--dead-letter-topic", dlq)
    assert stack.post_order("first")[0] == 201
    assert len(mock.consume(stack.topic, 1)) == 1
    # TOPIC_AUTHORIZATION_FAILED (29) on the next Produce request only: the
    # event's; its dead-letter copy goes out in a later request.
    mock.command("produce-errors 29")
    status, _, body = stack.post_order("doomed")
    assert status == 201
    dead = mock.consume(dlq, 1)
    assert len(dead) == 1, relay.log_tail()
    h = dead[0]["headers"]
    assert "authorization" in h["dl_error"].lower() and h["dl_original_topic"] == stack.topic, h
    assert json.loads(dead[0]["payload"])["item"] == "doomed"
    assert h["dl_event_id"] == h["id"] and h["dl_lsn"] == h["lsn"]
    assert stack.post_order("after")[0] == 201
    after = stack.current_lsn()
    items = [json.loads(m["payload"])["item"] for m in mock.consume(stack.topic, 2)]
    assert sorted(items) == ["after", "first"], items
    stack.wait_until(lambda: stack.confirmed_flush() >= after, timeout=60, what="slot advanced")
    assert relay.alive
