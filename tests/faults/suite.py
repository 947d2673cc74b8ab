#!/usr/bin/env python3
"""Fault suite: inject faults into a relay under load and check the outcome
against an oracle that does not trust the relay (docs/reliability.md).

  BIN_DIR=bin python3 tests/faults/suite.py [--only a,b] [--list] [--seed N]
      [--budget SEC]

Starts its own Postgres 15 (max_prepared_transactions, a short
wal_sender_timeout) and Kafka (LogAppendTime timestamps) on loopback with
tests/harness/*.sh. Each scenario run gets its own database, relay slot,
publication, topic, orders-api and relay; a second "shadow" pgoutput slot
on its own publication of the outbox table is created before the relay's,
and is read at the end with pg_logical_slot_peek_binary_changes and decoded
by tests/faults/pgoutput.py: the list of committed events and their commit
LSNs. Prints one table, then `N passed, N failed` (scenarios); exit 1 on
any violation or error.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import datetime
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from harness import REPO, HarnessError, Kafka, Postgres, Proc, _psql_bin, run_bin, unique_name  # noqa: E402
from pgoutput import decode_rows  # noqa: E402

PG_SETTINGS = [
    "max_prepared_transactions=16",
    # low, so that a stopped relay's walsender times out within the run
    "wal_sender_timeout=4s",
]
KAFKA_SETTINGS = ["log.message.timestamp.type=LogAppendTime"]
KEYS = [f"k{i}" for i in range(5)]
SAMPLE_S = 0.25
PG_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)


def lsn_int(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def now_ms() -> float:
    return time.time() * 1000.0


def wait_exit(proc: Proc, timeout: float):
    """The exit code, or None if still running after timeout."""
    try:
        return proc.wait(timeout)
    except HarnessError:
        return None


class ScenarioFailure(Exception):
    pass


def expect(cond, what: str):
    if not cond:
        raise ScenarioFailure(what)


# ---------------------------------------------------------------------------
# servers and processes shared by the whole suite
# ---------------------------------------------------------------------------
class World:
    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.pg = Postgres(run_dir / "pg")
        self.kafka = Kafka(run_dir / "kafka")
        self.counter = 0

    def start(self):
        self.pg.start(*PG_SETTINGS)
        self.kafka.start(*KAFKA_SETTINGS)

    def stop(self):
        for fn in (self.kafka.stop, lambda: self.pg.stop("fast")):
            try:
                fn()
            except HarnessError as e:
                print(f"teardown: {e}")

    def ensure_up(self):
        if self.kafka.state == "paused":
            self.kafka.resume()
        if not self.kafka.running():
            self.kafka.start(*KAFKA_SETTINGS)
        if not self.pg.running():
            self.pg.start(*PG_SETTINGS)

    def spawn(self, tag: str, name: str, *args, env=None, wait_for=None, timeout=60) -> Proc:
        self.counter += 1
        p = Proc(name, *args, env=env, log_path=self.dir / "logs" / f"{tag}.{name}.{self.counter}.log")
        p.start()
        if wait_for:
            p.wait_for_log(wait_for, timeout)
        return p

    def psql(self, sql: str | list[str], url: str, timeout: float = 60) -> str:
        """One statement, or a list run one by one (each in its own transaction)."""
        if isinstance(sql, list):
            return "\n".join(self.pg.psql(q, url=url, timeout=timeout) for q in sql)
        return self.pg.psql(sql, url=url, timeout=timeout)

    def drop_all_slots(self):
        self.pg.psql(
            """DO $$ BEGIN
              FOR i IN 1..500 LOOP
                PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots
                  WHERE active_pid IS NOT NULL;
                BEGIN
                  PERFORM pg_drop_replication_slot(slot_name) FROM pg_replication_slots;
                  RETURN;
                EXCEPTION WHEN object_in_use OR undefined_object THEN PERFORM pg_sleep(0.01);
                END;
              END LOOP;
            END $$""",
            dbname="postgres",
        )


# ---------------------------------------------------------------------------
# load: api clients at a fixed rate, plus keyed SQL transactions
# ---------------------------------------------------------------------------
class SqlSession:
    """A psql reading statements from a pipe; restarted when it dies (a
    Postgres restart). Whether a line committed is the oracle's business."""

    def __init__(self, url: str):
        self.url = url
        self.proc = None

    def send(self, line: str):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [_psql_bin(), "-X", "-q", "-d", self.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.proc = None

    def close(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.proc = None


def outbox_insert(key: str, event_type: str, n: int) -> str:
    return (
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES "
        f"(gen_random_uuid(), 'orders', '{key}', '{event_type}', '{{\"n\": {n}}}');"
    )


class Load:
    def __init__(self, api_base: str, url: str, clients: int, rate: float, keyed_rate: float):
        self.api_base = api_base
        self.url = url
        self.clients = clients
        self.rate = rate  # orders/s in total
        self.keyed_rate = keyed_rate  # keyed transactions/s
        self.stop_ev = threading.Event()
        self.threads: list[threading.Thread] = []
        self.ok = 0
        self.errors = 0
        self.lock = threading.Lock()
        self.n = 0

    def start(self):
        for c in range(self.clients):
            t = threading.Thread(target=self._client, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)
        t = threading.Thread(target=self._keyed, daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60)

    def _client(self, c: int):
        period = self.clients / self.rate
        nxt = time.monotonic()
        while not self.stop_ev.is_set():
            body = f'{{"item": "f{c}", "quantity": {1 + c % 5}}}'.encode()
            req = urllib.request.Request(
                self.api_base + "/orders",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    ok = resp.status == 201
            except (urllib.error.URLError, OSError, TimeoutError):
                ok = False
            with self.lock:
                if ok:
                    self.ok += 1
                else:
                    self.errors += 1
            nxt += period
            self.stop_ev.wait(max(0.0, nxt - time.monotonic()))

    def _keyed(self):
        s = SqlSession(self.url)
        rnd = random.Random(self.n)
        period = 1.0 / self.keyed_rate
        while not self.stop_ev.is_set():
            rows = " ".join(
                outbox_insert(rnd.choice(KEYS), "Keyed", self._next()) for _ in range(rnd.randint(1, 3))
            )
            s.send(f"BEGIN; {rows} COMMIT;")
            self.stop_ev.wait(period)
        s.close()

    def _next(self) -> int:
        with self.lock:
            self.n += 1
            return self.n


class Sampler:
    """confirmed_flush_lsn of the relay's slot every SAMPLE_S seconds, with the
    wall-clock time taken after the answer arrived (so the value was in
    force before it)."""

    def __init__(self, world: World, url: str, slot: str):
        self.world, self.url, self.slot = world, url, slot
        self.samples: list[tuple[float, int]] = []  # (ms, lsn)
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.t.start()

    def stop(self):
        self.stop_ev.set()
        self.t.join(30)

    def _loop(self):
        q = f"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{self.slot}'"
        while not self.stop_ev.is_set():
            r = self.world.pg.psql_result(q, url=self.url, timeout=10)
            t = now_ms()
            out = r.stdout.strip()
            if r.returncode == 0 and out:
                self.samples.append((t, lsn_int(out)))
            self.stop_ev.wait(SAMPLE_S)


# ---------------------------------------------------------------------------
# one scenario run
# ---------------------------------------------------------------------------
class Run:
    def __init__(self, world: World, tag: str, rate: float = 24.0, keyed_rate: float = 4.0):
        self.w = world
        self.tag = tag
        self.url = world.pg.new_database(unique_name("f"))
        r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": self.url}, timeout=120)
        if r.returncode != 0:
            raise HarnessError(f"migrate failed: {r.stderr}")
        self.slot = unique_name("slot")
        self.pub = unique_name("pub")
        self.shadow = unique_name("shadow")
        self.shadow_pub = unique_name("shadowpub")
        self.topic = f"{unique_name('fault')}.orders.events"
        self.template = self.topic.replace(".orders.", ".${aggregate_type}.")
        self.state_file = str(world.dir / f"{self.slot}.state")
        self.brokers = world.kafka.brokers
        self.rate, self.keyed_rate = rate, keyed_rate
        self.relay: Proc | None = None
        self.relays: list[Proc] = []
        self.api: Proc | None = None
        self.load: Load | None = None
        self.sampler: Sampler | None = None
        self.notes: list[str] = []
        self.problems: list[str] = []  # scenario checks after finish(): recorded, figures kept
        self.consume = lambda: self.w.kafka.read_all(self.topic, timeout=60)
        self.sharp_confirm_check = True  # Kafka timestamps are broker append times
        # The oracle's own publication, so that altering the relay's leaves it intact.
        world.psql(
            [
                f"CREATE PUBLICATION {self.shadow_pub} FOR TABLE outbox WITH (publish = 'insert')",
                f"SELECT pg_create_logical_replication_slot('{self.shadow}', 'pgoutput')",
            ],
            self.url,
        )

    def expect(self, cond, what: str):
        if not cond:
            self.problems.append(what)

    def relay_args(self, *extra: str) -> list[str]:
        return [
            "--slot", self.slot,
            "--publication", self.pub,
            "--topic-template", self.template,
            "--status-interval", "1",
            "--reconnect-max", "2",
            "--state-file", self.state_file,
            *extra,
        ]  # fmt: skip

    def start_relay(self, *extra: str, env=None, wait=True, slot_wait=60) -> Proc:
        e = {"DATABASE_URL": self.url, "KAFKA_BROKERS": self.brokers, **(env or {})}
        p = self.w.spawn(
            self.tag, "cdc-relay", *self.relay_args(*extra), env=e,
            wait_for=r"streaming slot" if wait else None, timeout=slot_wait,
        )  # fmt: skip
        self.relays.append(p)
        self.relay = p
        return p

    def start(self, *relay_extra: str):
        """Relay first (its slot exists before any event), then api, load, sampler."""
        self.start_relay(*relay_extra)
        self.api = self.w.spawn(
            self.tag, "orders-api", "--pool-size", "4",
            env={"DATABASE_URL": self.url, "LISTEN_ADDR": "127.0.0.1:0"},
            wait_for=r"listening addr=\S+",
        )  # fmt: skip
        addr = re.search(r"listening addr=(\S+)", self.api.log_text()).group(1)
        self.sampler = Sampler(self.w, self.url, self.slot)
        self.sampler.start()
        self.load = Load(f"http://{addr}", self.url, 3, self.rate, self.keyed_rate)
        self.load.start()

    def stop_load(self):
        if self.load:
            self.load.stop()

    def shadow_events(self):
        out = self.w.psql(
            f"SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('{self.shadow}',"
            f" NULL, NULL, 'proto_version', '1', 'publication_names', '{self.shadow_pub}')",
            self.url,
            timeout=120,
        )
        return decode_rows(out.split()).events

    def finish(self, expect_all: bool = True, drain_timeout: float = 90) -> dict:
        """Stop the load, wait for Kafka to have every committed event (when
        expected), stop the sampler, and check."""
        self.stop_load()
        events = self.shadow_events()
        want = {e.row["id"] for e in events}
        deadline = time.monotonic() + (drain_timeout if expect_all else 3)
        while True:
            msgs = self.consume()
            have = {m["headers"].get("id") for m in msgs}
            if want <= have or time.monotonic() > deadline:
                break
            time.sleep(1)
        time.sleep(1.5)  # a last status update reaches the slot
        self.sampler.stop()
        msgs = self.consume()
        return check(events, msgs, self.sampler.samples, self.sharp_confirm_check, expect_all)

    def close(self):
        self.stop_load()
        if self.sampler:
            self.sampler.stop_ev.set()
        for p in self.relays + ([self.api] if self.api else []):
            p.terminate(20)


def pg_ts(us: int) -> str:
    return (PG_EPOCH + datetime.timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check(events, msgs, samples, sharp: bool, expect_all: bool) -> dict:
    """The oracle's verdict. events: shadow-slot events in commit order;
    msgs: the topic, sorted by (partition, offset); samples: (ms, confirmed)."""
    by_id = {e.row["id"]: e for e in events}
    copies = collections.Counter(m["headers"].get("id") for m in msgs)
    first_ts: dict[str, float] = {}
    first_msg: dict[str, dict] = {}
    for m in msgs:
        i = m["headers"].get("id")
        ts = m.get("ts") or 0
        if i not in first_ts or ts < first_ts[i]:
            first_ts[i] = ts
        first_msg.setdefault(i, m)
    delivered = sum(1 for i in by_id if i in copies)
    phantom = [i for i in copies if i not in by_id]
    dups = sum(c - 1 for c in copies.values())

    # Per key, the order of first occurrences equals commit order.
    kafka_order = collections.defaultdict(list)
    seen = set()
    for m in msgs:
        i = m["headers"].get("id")
        if i in by_id and i not in seen:
            seen.add(i)
            kafka_order[m["key"]].append(i)
    commit_order = collections.defaultdict(list)
    for e in events:
        if e.row["id"] in seen:
            commit_order[e.row["aggregate_id"]].append(e.row["id"])
    order_bad = [k for k in commit_order if commit_order[k] != kafka_order.get(k)]

    # Contents: what the relay emitted equals what was committed.
    content_bad = []
    for i, m in first_msg.items():
        e = by_id.get(i)
        if e is None:
            continue
        h = m["headers"]
        if (
            m["key"] != e.row["aggregate_id"]
            or m["payload"] != e.row["payload"]
            or h.get("event_type") != e.row["event_type"]
            or h.get("lsn") != f"{e.commit_lsn >> 32:X}/{e.commit_lsn & 0xFFFFFFFF:X}"
            or h.get("commit_ts") != pg_ts(e.commit_ts)
        ):
            content_bad.append(i)

    # Confirmed past undelivered: for each event, the first moment a sample
    # showed the slot confirmed at or past its commit end; Kafka must have
    # had it by then (append time), or at least by now.
    times, running = [], []
    best = 0
    for t, c in samples:
        best = max(best, c)
        times.append(t)
        running.append(best)
    past = []
    for e in events:
        k = bisect.bisect_left(running, e.end_lsn)
        if k == len(running):
            continue
        i = e.row["id"]
        if i not in first_ts or (sharp and first_ts[i] > times[k] + 2):
            past.append(i)
    return {
        "committed": len(events),
        "delivered": delivered,
        "lost": len(events) - delivered,
        "dups": dups,
        "past": len(past),
        "phantom": len(phantom),
        "order_bad": len(order_bad),
        "content_bad": len(content_bad),
        "expect_all": expect_all,
        "samples": len(samples),
        "msgs": msgs,
        "events": events,
        "max_confirmed": running[-1] if running else 0,
    }


def verdict(res: dict) -> list[str]:
    bad = []
    if res["expect_all"] and res["lost"]:
        bad.append(f"{res['lost']} lost")
    for k, what in (("past", "confirmed past undelivered"), ("phantom", "phantom"),
                    ("order_bad", "keys out of commit order"), ("content_bad", "events with wrong contents")):  # fmt: skip
        if res[k]:
            bad.append(f"{res[k]} {what}")
    if res["samples"] == 0:
        bad.append("no confirmed_flush_lsn sample")
    if res["committed"] == 0:
        bad.append("no event committed")
    return bad


# ---------------------------------------------------------------------------
# scenarios: each returns the check() result (after its own assertions)
# ---------------------------------------------------------------------------
LOAD_S = 8.0


def sc_relay_sigkill(run: Run, rnd: random.Random, kills_per_run: int = 5):
    run.start()
    kill_ms = []
    ages = []  # seconds the killed relay had been streaming
    started = time.monotonic()
    for _ in range(kills_per_run):
        time.sleep(rnd.uniform(0.3, 2.0))
        run.relay.kill()
        kill_ms.append(now_ms())
        ages.append(time.monotonic() - started)
        run.start_relay()
        started = time.monotonic()
    time.sleep(2)
    res = run.finish()
    # Duplicates per kill: each repeated copy belongs to the kill before its append time.
    per = [0] * len(kill_ms)
    seen = set()
    for m in sorted(res["msgs"], key=lambda m: m.get("ts") or 0):
        i = m["headers"].get("id")
        if i in seen:
            k = bisect.bisect_right(kill_ms, m.get("ts") or 0) - 1
            per[max(k, 0)] += 1
        seen.add(i)
    res["per_kill"] = per
    res["kill_ages"] = ages
    run.notes.append("dups/kill " + "+".join(f"{d}@{a:.1f}s" for d, a in zip(per, ages)))
    return res


def sc_interleaved(run: Run, rnd: random.Random):
    run.start()
    longs = [SqlSession(run.url) for _ in range(2)]
    n = 0
    for rep in range(3):
        for j, s in enumerate(longs):
            n += 1
            k = KEYS[(rep + j) % len(KEYS)]
            s.send(f"BEGIN; {outbox_insert(k, 'Long', 100000 + n)} SELECT pg_sleep({1.0 + j});"
                   f" {outbox_insert(KEYS[(rep + j + 1) % len(KEYS)], 'Long', 200000 + n)} COMMIT;")  # fmt: skip
        time.sleep(2.5)
    for s in longs:
        s.close()
    res = run.finish()
    longs_seen = sum(1 for e in res["events"] if e.row["event_type"] == "Long")
    run.expect(longs_seen == 12, f"{longs_seen} of 12 long-transaction events committed")
    return res


def sc_rollbacks(run: Run, rnd: random.Random):
    run.start()
    s = SqlSession(run.url)
    for i in range(6):
        k = rnd.choice(KEYS)
        s.send(f"BEGIN; {outbox_insert(k, 'Aborted', i)} ROLLBACK;")
        s.send(f"BEGIN; {outbox_insert(k, 'Kept', i)} SAVEPOINT a; {outbox_insert(k, 'Aborted', i)}"
               f" ROLLBACK TO SAVEPOINT a; {outbox_insert(k, 'Kept', 100 + i)} COMMIT;")  # fmt: skip
        gid = f"{run.slot}_{i}"
        s.send(f"BEGIN; {outbox_insert(k, 'Prepared' if i % 2 else 'Aborted', i)}"
               f" PREPARE TRANSACTION '{gid}';")  # fmt: skip
        time.sleep(0.5)
        s.send(f"{'COMMIT' if i % 2 else 'ROLLBACK'} PREPARED '{gid}';")
        time.sleep(0.5)
    s.close()
    res = run.finish()
    types = collections.Counter(e.row["event_type"] for e in res["events"])
    run.expect(types["Aborted"] == 0, f"oracle saw {types['Aborted']} aborted events")
    run.expect(types["Kept"] == 12 and types["Prepared"] == 3, f"committed special events: {dict(types)}")
    ktypes = collections.Counter(m["headers"].get("event_type") for m in res["msgs"])
    run.expect(ktypes["Aborted"] == 0, f"{ktypes['Aborted']} rolled-back events in Kafka")
    return res


def sc_failpoint(run: Run, rnd: random.Random):
    run.start()
    hits = 0
    for _ in range(3):
        time.sleep(rnd.uniform(0.5, 1.5))
        run.relay.terminate(20)
        p = run.start_relay(env={"CDC_TEST_FAILPOINT": "after-delivery-before-status"}, wait=False)
        code = p.wait(60)
        expect(code == 70, f"relay with the failpoint exited {code}, not 70")
        hits += 1
        run.start_relay()
    time.sleep(2)
    res = run.finish()
    # The event acknowledged just before each _exit was never confirmed, so it
    # must come again: at least one duplicate per hit shows the failpoint bit.
    run.expect(res["dups"] >= hits, f"{res['dups']} duplicates after {hits} failpoint exits")
    return res


def sc_relay_sigstop(run: Run, rnd: random.Random):
    run.start()
    for _ in range(2):
        time.sleep(rnd.uniform(0.5, 1.5))
        mark = run.relay.mark()
        run.relay.signal(signal.SIGSTOP)
        time.sleep(7)  # > wal_sender_timeout (4 s)
        run.relay.signal(signal.SIGCONT)
        run.relay.wait_for_log(r"streaming slot", 60, since=mark)
    time.sleep(2)
    res = run.finish()
    run.expect("terminating walsender process due to replication timeout" in run.w.pg.log_tail(4000),
           "the walsender did not time out while the relay was stopped")  # fmt: skip
    run.expect(run.relay.alive, "relay exited")
    return res


def sc_broker_kill(run: Run, rnd: random.Random):
    run.start()
    time.sleep(rnd.uniform(1, 3))
    run.w.kafka.kill()
    time.sleep(3)
    run.w.kafka.start(*KAFKA_SETTINGS)
    time.sleep(3)
    res = run.finish(drain_timeout=150)
    run.expect(run.relay.alive, "relay exited")
    return res


def sc_broker_pause(run: Run, rnd: random.Random):
    run.start()
    time.sleep(rnd.uniform(1, 3))
    run.w.kafka.pause()
    time.sleep(6)
    run.w.kafka.resume()
    time.sleep(3)
    res = run.finish(drain_timeout=150)
    run.expect(run.relay.alive, "relay exited")
    return res


PG_STOP_TIMES: dict[str, list[float]] = collections.defaultdict(list)


def _pg_restart(run: Run, rnd: random.Random, mode: str):
    run.start()
    time.sleep(rnd.uniform(1, 3))
    t0 = time.monotonic()
    run.w.pg.stop(mode)
    stopped = time.monotonic() - t0
    PG_STOP_TIMES[mode].append(stopped)
    run.w.pg.start(*PG_SETTINGS)
    time.sleep(4)
    res = run.finish(drain_timeout=120)
    run.expect(stopped < 10, f"pg_ctl stop -m {mode} took {stopped:.1f} s with the relay connected")
    run.expect(run.relay.alive, "relay exited")
    run.notes.append(f"stop {stopped:.1f} s")
    return res


def sc_pg_fast(run, rnd):
    return _pg_restart(run, rnd, "fast")


def sc_pg_immediate(run, rnd):
    return _pg_restart(run, rnd, "immediate")


def sc_walsender_kill(run: Run, rnd: random.Random):
    run.start()
    for _ in range(3):
        time.sleep(rnd.uniform(0.5, 2))
        out = run.w.psql(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
            f" WHERE slot_name = '{run.slot}' AND active_pid IS NOT NULL",
            run.url,
        )
        expect(out == "t", f"no walsender to terminate ({out!r})")
    time.sleep(3)
    res = run.finish()
    run.expect(run.relay.alive, "relay exited")
    return res


def sc_second_relay(run: Run, rnd: random.Random):
    run.start()
    time.sleep(1)
    first = run.relay
    second = run.w.spawn(
        run.tag, "cdc-relay",
        *run.relay_args()[:-2], "--state-file", run.state_file + ".second",
        env={"DATABASE_URL": run.url, "KAFKA_BROKERS": run.brokers},
    )  # fmt: skip
    code = wait_exit(second, 60)
    run.relay = first
    text = second.log_text()
    # 4: temporary, a supervisor may start it again (docs/relay.md, "Exit status")
    run.expect(code == 4, f"second relay exited {code}, not 4")
    run.expect("is active for PID" in text and "another relay" in text, "second relay's error is unclear")
    time.sleep(2)
    res = run.finish()
    run.expect(first.alive, "the first relay exited")
    return res


def sc_timezone(run: Run, rnd: random.Random):
    db = run.url.rsplit("/", 1)[1]
    run.w.psql(
        [
            f"ALTER DATABASE \"{db}\" SET TimeZone TO 'Pacific/Chatham'",
            f"ALTER DATABASE \"{db}\" SET DateStyle TO 'SQL, DMY'",
            f"ALTER DATABASE \"{db}\" SET IntervalStyle TO 'sql_standard'",
        ],
        run.url,
    )
    run.start()
    time.sleep(LOAD_S)
    return run.finish()  # the commit_ts and lsn headers are compared with the oracle's


# 19 = NOT_ENOUGH_REPLICAS (retriable, not persisted); -195: the mock drops the
# connection instead of answering (possibly persisted); then all brokers down.
MOCK_RELAY_ARGS = ("-X", "max.in.flight.requests.per.connection=1")
MOCK_FAULTS = ("produce-errors 19 19 19 19 19", "produce-errors -195 -195", "down -1")


def sc_mock_kafka(run: Run, rnd: random.Random, faults=MOCK_FAULTS):
    path = REPO / "build" / "tools" / "kafka_mock"
    expect(path.exists(), f"{path} is missing (make build/tools/kafka_mock)")
    mock = subprocess.Popen([str(path), "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        line = mock.stdout.readline().strip()
        expect(line.startswith("bootstrap="), f"kafka_mock said {line!r}")
        brokers = line.split("=", 1)[1]

        def cmd(text):
            mock.stdin.write(text + "\n")
            mock.stdin.flush()
            answer = mock.stdout.readline().strip()
            expect(answer == "ok", f"kafka_mock {text}: {answer}")

        cmd(f"topic {run.topic} 3")
        run.brokers = brokers
        run.sharp_confirm_check = False  # the mock stamps create times only

        def consume():
            r = subprocess.run(
                ["kcat", "-C", "-b", brokers, "-t", run.topic, "-o", "beginning", "-e", "-J", "-q"],
                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            msgs = []
            for ln in r.stdout.splitlines():
                if ln.startswith("{"):
                    m = json.loads(ln)
                    raw = m.get("headers") or []
                    m["headers"] = dict(zip(raw[0::2], raw[1::2]))
                    msgs.append(m)
            msgs.sort(key=lambda x: (x["partition"], x["offset"]))
            return msgs

        run.consume = consume
        # One request in flight on the mock. With the default 5, events that
        # librdkafka 2.0.2 reported delivered were missing from the mock in 2
        # of 4 runs (0 of 4 with 1; docs/reliability.md). Suspected, not
        # proven: the mock appends a pipelined batch after failing the one
        # before it, which a real broker refuses (OUT_OF_ORDER_SEQUENCE_NUMBER),
        # and then takes that batch's retry for a duplicate. The real-broker
        # scenarios keep the default 5 and lose nothing.
        run.start(*MOCK_RELAY_ARGS)
        for fault in faults:
            time.sleep(1.5)
            cmd(fault)
            if fault.startswith("down"):
                time.sleep(3)
                cmd("up" + fault[4:])
        time.sleep(2)
        res = run.finish(drain_timeout=120)
        run.expect(run.relay.alive, "relay exited")
        return res
    finally:
        run.close()  # the relay before its broker
        mock.kill()
        mock.wait()


def sc_slot_dropped(run: Run, rnd: random.Random):
    run.start()
    time.sleep(rnd.uniform(1, 3))
    run.w.psql(
        f"""DO $$ BEGIN
          FOR i IN 1..500 LOOP
            PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots
              WHERE slot_name = '{run.slot}' AND active_pid IS NOT NULL;
            BEGIN
              PERFORM pg_drop_replication_slot('{run.slot}');
              RETURN;
            EXCEPTION WHEN object_in_use THEN PERFORM pg_sleep(0.01);
            END;
          END LOOP;
        END $$""",
        run.url,
    )
    code = wait_exit(run.relay, 60)
    run.expect(code == 1, f"relay exited {code} after its slot was dropped, not 1")
    run.expect("does not exist" in run.relay.log_text(), "relay's error does not name the missing slot")
    time.sleep(1)
    return run.finish(expect_all=False)


def sc_publication_dropped(run: Run, rnd: random.Random):
    run.start()
    time.sleep(rnd.uniform(1, 3))
    run.w.psql(f"DROP PUBLICATION {run.pub}", run.url)
    code = wait_exit(run.relay, 60)
    run.expect(code == 1, f"relay exited {code} after its publication was dropped, not 1")
    run.expect(f'publication "{run.pub}" does not exist' in run.relay.log_text(),
           "relay's error does not name the missing publication")  # fmt: skip
    return run.finish(expect_all=False)


def sc_publication_altered(run: Run, rnd: random.Random):
    run.start()
    time.sleep(rnd.uniform(1, 3))
    run.w.psql(f"ALTER PUBLICATION {run.pub} DROP TABLE outbox", run.url)
    # pgoutput stops streaming the table's inserts without a word; the relay
    # must notice before confirming past them (regression: it used to
    # confirm keepalive positions past every later event and run on).
    code = wait_exit(run.relay, 60)
    run.expect(code == 1, f"relay exited {code} with the outbox table out of its publication, not 1")
    run.expect("is no longer in publication" in run.relay.log_text(),
           "relay's error does not say the table left the publication")  # fmt: skip
    return run.finish(expect_all=False)


def sc_table_altered(run: Run, rnd: random.Random):
    run.start()
    time.sleep(rnd.uniform(1, 3))
    run.w.psql("ALTER TABLE outbox ADD COLUMN trace_id text", run.url)
    time.sleep(2)
    run.w.psql(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, trace_id)"
        " VALUES (gen_random_uuid(), 'orders', 'k0', 'Traced', '{}', 't1')",
        run.url,
    )
    time.sleep(3)
    res = run.finish()
    run.expect(run.relay.alive, "relay exited")
    return res


def sc_slot_invalidated(run: Run, rnd: random.Random):
    run.start()
    time.sleep(2)
    run.stop_load()
    run.relay.signal(signal.SIGSTOP)
    try:
        run.w.psql(["ALTER SYSTEM SET max_slot_wal_keep_size = '32MB'", "SELECT pg_reload_conf()"], run.url)
        run.w.psql(
            [
                "CREATE TABLE filler (v text)",
                "INSERT INTO filler SELECT repeat(md5(g::text), 8) FROM generate_series(1, 300000) g",
                "SELECT pg_switch_wal()",
                "CHECKPOINT",
            ],
            run.url,
            timeout=180,
        )
        status = run.w.psql(
            f"SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{run.slot}'", run.url
        )
        expect(status == "lost", f"slot wal_status {status!r}, not lost")
    finally:
        run.w.psql(["ALTER SYSTEM RESET max_slot_wal_keep_size", "SELECT pg_reload_conf()"], run.url)
        run.relay.signal(signal.SIGCONT)
    mark = run.relay.mark()
    code = run.relay.wait(60)
    text = run.relay.log_text(since=mark)
    attempts = text.count("reconnecting in")
    run.notes.append(f"{attempts} reconnects")
    expect(code == 1, f"relay exited {code} with its slot invalidated, not 1")
    expect("can no longer get changes" in text or "invalidated" in text,
           "relay's error does not say the slot was invalidated")  # fmt: skip
    expect(attempts <= 3, f"{attempts} reconnect attempts to an invalidated slot")
    # The shadow slot was invalidated too: the outbox table is the oracle here.
    run.sampler.stop()
    ids = set(run.w.psql("SELECT id FROM outbox", run.url).split())
    msgs = run.consume()
    got = {m["headers"].get("id") for m in msgs}
    return {
        "committed": len(ids), "delivered": len(ids & got), "lost": len(ids - got),
        "dups": len(msgs) - len(got), "past": 0, "phantom": len(got - ids), "order_bad": 0,
        "content_bad": 0, "expect_all": True, "samples": len(run.sampler.samples), "msgs": msgs,
        "events": [],
    }  # fmt: skip


# (name, function, runs, what)
SCENARIOS = [
    ("relay-sigkill", sc_relay_sigkill, 4, "relay SIGKILL at random moments, 5 per run"),
    ("interleaved-txns", sc_interleaved, 2, "long transactions interleaved with short ones"),
    ("rollbacks-2pc", sc_rollbacks, 2, "rollbacks, savepoints rolled back, prepared transactions"),
    ("failpoint", sc_failpoint, 2, "_exit between delivery report and status update, 3 per run"),
    ("relay-sigstop", sc_relay_sigstop, 1, "relay SIGSTOP 7 s > wal_sender_timeout 4 s, twice"),
    ("broker-kill", sc_broker_kill, 2, "broker SIGKILL, restart after 3 s"),
    ("broker-pause", sc_broker_pause, 2, "broker SIGSTOP 6 s, SIGCONT"),
    ("pg-fast-restart", sc_pg_fast, 2, "pg_ctl stop -m fast, start"),
    ("pg-immediate-restart", sc_pg_immediate, 2, "pg_ctl stop -m immediate (crash), start"),
    ("walsender-terminated", sc_walsender_kill, 1, "pg_terminate_backend(walsender), 3 times"),
    ("slot-invalidated", sc_slot_invalidated, 1, "max_slot_wal_keep_size exceeded while stopped"),
    ("second-relay", sc_second_relay, 1, "a second relay on the same slot"),
    ("timezone-datestyle", sc_timezone, 1, "database TimeZone Pacific/Chatham, DateStyle SQL,DMY"),
    ("mock-produce-errors", sc_mock_kafka, 1, "mock cluster: produce errors, disconnects, broker down"),
    ("slot-dropped", sc_slot_dropped, 1, "relay's slot dropped while it streams"),
    ("publication-dropped", sc_publication_dropped, 1, "relay's publication dropped while it streams"),
    ("publication-altered", sc_publication_altered, 1, "outbox table removed from the publication"),
    ("table-altered", sc_table_altered, 1, "ALTER TABLE outbox ADD COLUMN while streaming"),
]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    ap.add_argument("--budget", type=float, default=900, help="seconds; scenarios not started by then fail")
    args = ap.parse_args()
    if args.list:
        for name, _fn, runs, what in SCENARIOS:
            print(f"{name:<22} {runs} run(s)  {what}")
        return 0
    chosen = SCENARIOS
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - {s[0] for s in SCENARIOS}
        if unknown:
            print(f"unknown scenario(s): {', '.join(sorted(unknown))}")
            return 2
        chosen = [s for s in SCENARIOS if s[0] in names]
    seed = args.seed if args.seed is not None else int(time.time())
    rnd = random.Random(seed)
    t_start = time.monotonic()

    run_dir = Path(tempfile.mkdtemp(prefix="orders-cdc-faults-", dir="/tmp"))
    os.chmod(run_dir, 0o755)
    print(f"faults: seed {seed}, BIN_DIR={os.environ.get('BIN_DIR', 'bin')}, servers and logs in {run_dir}",
          flush=True)  # fmt: skip
    world = World(run_dir)
    rows = []
    kills: list[int] = []
    failed_any = False
    try:
        world.start()
        for name, fn, runs, _what in chosen:
            agg = collections.Counter()
            problems: list[str] = []
            notes: list[str] = []
            for i in range(runs):
                if time.monotonic() - t_start > args.budget:
                    problems.append(f"run {i + 1}: not started, --budget {args.budget:.0f} s spent")
                    break
                t0 = time.monotonic()
                run = None
                try:
                    world.ensure_up()
                    run = Run(world, f"{name}.{i + 1}")
                    res = fn(run, rnd)
                    bad = verdict(res) + run.problems
                    for k in ("committed", "delivered", "lost", "dups", "past"):
                        agg[k] += res[k]
                    agg["fatal"] += not res["expect_all"]
                    agg["runs"] += 1
                    kills += res.get("per_kill", [])
                    notes += run.notes
                    problems += [f"run {i + 1}: {b}" for b in bad]
                    status = "ok" if not bad else "FAIL " + "; ".join(bad)
                except ScenarioFailure as e:
                    problems.append(f"run {i + 1}: {e}")
                    status = f"FAIL {e}"
                    agg["runs"] += 1
                except Exception as e:  # noqa: BLE001 - reported, counted, suite goes on
                    problems.append(f"run {i + 1}: error {e.__class__.__name__}: {e}")
                    status = f"ERROR {e.__class__.__name__}: {str(e)[:2000]}"
                    traceback.print_exc()
                    agg["runs"] += 1
                finally:
                    if run:
                        run.close()
                    try:
                        world.ensure_up()
                        world.drop_all_slots()
                    except HarnessError as e:
                        print(f"cleanup: {e}")
                print(f"  {name} run {i + 1}/{runs}: {status} ({time.monotonic() - t0:.0f} s)", flush=True)
            rows.append((name, agg, problems, notes))
            failed_any |= bool(problems)
    finally:
        world.stop()

    print()
    print(f"{'scenario':<22} {'runs':>4} {'committed':>9} {'delivered':>9} {'lost':>5} {'dups':>6} "
          f"{'confirmed-past':>14}  result")  # fmt: skip
    passed = failed = 0
    for name, agg, problems, notes in rows:
        ok = not problems
        passed += ok
        failed += not ok
        extra = f" ({', '.join(notes)})" if notes else ""
        lost = "n/a" if agg["fatal"] else agg["lost"]
        print(f"{name:<22} {agg['runs']:>4} {agg['committed']:>9} {agg['delivered']:>9} {lost:>5} "
              f"{agg['dups']:>6} {agg['past']:>14}  {'pass' if ok else 'FAIL'}{extra}")  # fmt: skip
        for p in problems:
            print(f"    {p}")
    if any(agg["fatal"] for _n, agg, _p, _no in rows):
        print("lost n/a: the scenario ends the relay on purpose (exit 1), so later events stay "
              "undelivered; confirmed-past is the check there")
    if kills:
        print(f"relay SIGKILL: {len(kills)} kills, duplicates per kill: min {min(kills)}, median "
              f"{statistics.median(kills):g}, mean {statistics.mean(kills):.1f}, max {max(kills)}")  # fmt: skip
    for mode, ts in PG_STOP_TIMES.items():
        print(f"pg_ctl stop -m {mode} with the relay connected: {', '.join(f'{t:.1f}' for t in ts)} s")
    print(f"total {time.monotonic() - t_start:.0f} s")
    if not failed_any and not os.environ.get("ORDERS_CDC_KEEP"):
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        print(f"logs kept in {run_dir}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
