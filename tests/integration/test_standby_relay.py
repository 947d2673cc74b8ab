"""A pair of relays on one slot (--standby, docs/operations.md "A standby
relay"): the second waits for the slot as long as the first holds it, says
so in its log and in cdc_relay_standby_waiting, and takes over within
seconds when the first is killed or stopped, under load, losing nothing the
api acknowledged.

STANDBY_RUNS=N repeats the whole exchange N times (one fresh database each)
and prints the figures of each run (STANDBY lines); tests/failover/runs.sh
does that and sums them up."""

from __future__ import annotations

import collections
import json
import os
import signal
import threading
import time
import urllib.request

import pytest

from stack import Stack

RUNS = int(os.environ.get("STANDBY_RUNS", "1"))


def metric(relay, name: str) -> float:
    m = relay.wait_for_log(r"metrics listening addr=([0-9.]+:\d+)", timeout=30)
    with urllib.request.urlopen(f"http://{m.group(1)}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


class Load:
    """Orders posted from a few client threads until stopped; the ids the api
    acknowledged (201) are the events that must reach Kafka."""

    def __init__(self, stack: Stack, clients: int = 6):
        self.stack = stack
        self.acked: list[str] = []
        self.failed = 0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(c,)) for c in range(clients)]

    def _client(self, c: int) -> None:
        i = 0
        while not self.stopping.is_set():
            status, _, body = self.stack.post_order(f"standby-{c}-{i}", timeout=10)
            i += 1
            if status == 201:
                self.acked.append(json.loads(body)["id"])
            else:
                self.failed += 1

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(30)

    def wait_for(self, n: int, timeout: float = 60) -> None:
        self.stack.wait_until(lambda: len(self.acked) >= n, timeout, f"{n} acknowledged orders")


def start_pair_member(stack: Stack, spawn, name: str, wait_for: str):
    return spawn(
        "cdc-relay", *stack.relay_args("--standby", "--state-file", f"{stack.state_file}.{name}"),
        env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers},
        wait_for=wait_for,
    )  # fmt: skip


def takeover_s(relay, since: int, began: float) -> float:
    relay.wait_for_log(r"standby: taking over slot", timeout=60, since=since)
    relay.wait_for_log(r"streaming slot", timeout=30, since=since)
    return time.monotonic() - began


def one_run(stack: Stack, spawn, run: int) -> dict:
    stack.start_api(pool_size=6)
    a = start_pair_member(stack, spawn, "a", r"streaming slot")
    b = start_pair_member(stack, spawn, "b", r"standby: .*waiting for it to be free")
    assert "retrying" not in b.log_text()
    assert metric(b, "cdc_relay_standby_waiting") == 1
    assert metric(b, "cdc_relay_ready") == 0
    assert metric(a, "cdc_relay_standby_waiting") == 0
    figures = {}
    with Load(stack) as load:
        # The active relay dies (SIGKILL: its socket closes, its walsender
        # ends): the standby takes over from the slot.
        load.wait_for(300)
        since = b.mark()
        began = time.monotonic()
        a.kill()
        figures["kill_takeover_s"] = takeover_s(b, since, began)
        assert metric(b, "cdc_relay_standby_waiting") == 0
        # The killed one comes back as the standby, then the active one is
        # stopped (SIGTERM: it confirms what Kafka acknowledged and exits 0).
        a = start_pair_member(stack, spawn, "a2", r"standby: .*waiting for it to be free")
        load.wait_for(len(load.acked) + 300)
        since = a.mark()
        began = time.monotonic()
        b.signal(signal.SIGTERM)
        figures["stop_takeover_s"] = takeover_s(a, since, began)
        assert b.wait(40) == 0, b.log_tail()
        load.wait_for(len(load.acked) + 200)
    acked = set(load.acked)
    events = stack.events(count=len(acked), timeout=120)
    time.sleep(2)  # would-be late duplicates get time to show up
    final = stack.events()
    counts = collections.Counter(e["headers"].get("id") for e in final)
    lost = acked - {e["key"] for e in final}  # the key is the order's id
    figures.update(
        run=run,
        acked=len(acked),
        events=sum(counts.values()),
        lost=len(lost),
        duplicates=sum(c - 1 for c in counts.values()),
        http_failures=load.failed,
    )
    print(
        f"\nSTANDBY run {run}/{RUNS}: {figures['acked']} acknowledged, {figures['events']} events, "
        f"lost {figures['lost']}, duplicates {figures['duplicates']}, takeover after SIGKILL "
        f"{figures['kill_takeover_s']:.2f} s, after SIGTERM {figures['stop_takeover_s']:.2f} s",
        flush=True,
    )
    print("STANDBY-JSON " + json.dumps(figures), flush=True)
    assert not lost, f"{len(lost)} acknowledged orders never reached Kafka"
    assert set(counts) == stack.outbox_ids(), "events that are not outbox rows"
    assert events, "nothing consumed"
    assert a.alive, a.log_tail()
    a.signal(signal.SIGTERM)
    assert a.wait(40) == 0, a.log_tail()
    stack.api.terminate()
    return figures


@pytest.mark.timeout(120 + 120 * RUNS)
def test_standby_relay_takes_over_when_the_active_one_is_killed_or_stopped(migrated_pg, kafka, spawn):
    """Two relays with --standby on one slot under api load: the second waits
    (log line, gauge 1, not ready), takes over within seconds when the first
    is SIGKILLed; the first, started again, waits in turn and takes over when
    the second is stopped with SIGTERM. Nothing acknowledged is lost; the
    duplicates are the killed relay's delivered but unconfirmed events."""
    results = [one_run(Stack(migrated_pg, kafka, spawn), spawn, run) for run in range(1, RUNS + 1)]
    for r in results:
        # "within seconds": the standby looks every second; a killed relay's
        # walsender ends as soon as the server sees the closed socket.
        assert r["kill_takeover_s"] < 15 and r["stop_takeover_s"] < 15, r


@pytest.mark.timeout(60)
def test_standby_needs_stream_mode():
    from harness import run_bin

    r = run_bin("cdc-relay", "--standby", "--mode", "poll", env={"DATABASE_URL": "postgresql:///x"})
    assert r.returncode == 2 and "--standby needs --mode stream" in r.stderr, r.stderr
