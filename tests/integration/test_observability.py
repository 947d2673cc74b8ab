"""Observability of cdc-relay against a real Postgres and Kafka: /metrics in
the Prometheus text format (read with a parser, never string equality),
/healthz and /readyz, JSON logs carrying the LSN and event id, catch-up
progress after downtime (docs/observability.md). Every wait is bounded."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from harness import PROCESS_FAMILIES, promtool_check_metrics, run_bin
from stack import Stack, lsn_int

# --- a Prometheus text-format (0.0.4) parser ---------------------------------
FLOAT = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|Inf)|NaN"
SAMPLE_RE = re.compile(rf"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{(.*)\}})? ({FLOAT})(?: -?\d+)?$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_prometheus(text: str):
    """-> (types {family: type}, helps {family: text}, samples {(name, labels): value}).
    Raises AssertionError on anything the exposition format does not allow."""
    types, helps, samples = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert name not in types and kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
        elif line.startswith("#") or not line.strip():
            continue
        else:
            m = SAMPLE_RE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, label_text, value = m.groups()
            labels, pos = {}, 0
            while label_text and pos < len(label_text):
                lm = LABEL_RE.match(label_text, pos)
                assert lm, f"bad labels: {line!r}"
                labels[lm.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), lm.group(2))
                pos = lm.end()
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            assert family in types, f"sample before its # TYPE: {line!r}"
            key = (name, frozenset(labels.items()))
            assert key not in samples, f"duplicate sample: {line!r}"
            samples[key] = float(value)
    return types, helps, samples


class Scrape:
    def __init__(self, text: str):
        self.text = text
        self.types, self.helps, self.samples = parse_prometheus(text)

    def value(self, name: str, **labels) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def labelled(self, name: str) -> dict:
        """{frozenset(labels): value} of every sample of name."""
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}


# --- HTTP -------------------------------------------------------------------------
def get(base: str, path: str, timeout: float = 5):
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def metrics_base(relay) -> str:
    m = relay.wait_for_log(r"metrics listening addr=([0-9.]+:\d+)", timeout=30)
    return f"http://{m.group(1)}"


def scrape(base: str) -> Scrape:
    status, headers, body = get(base, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(body)


def wait_for(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.2)


EXPECTED = {
    "cdc_relay_events_received_total": "counter",
    "cdc_relay_events_produced_total": "counter",
    "cdc_relay_events_delivered_total": "counter",
    "cdc_relay_events_failed_total": "counter",
    "cdc_relay_events_in_flight": "gauge",
    "cdc_relay_received_lsn_bytes": "gauge",
    "cdc_relay_delivered_lsn_bytes": "gauge",
    "cdc_relay_confirmed_lsn_bytes": "gauge",
    "cdc_relay_server_wal_end_lsn_bytes": "gauge",
    "cdc_relay_lag_bytes": "gauge",
    "cdc_relay_lag_seconds": "gauge",
    "cdc_relay_transaction_latency_seconds": "histogram",
    "cdc_relay_end_to_end_latency_seconds": "histogram",
    "cdc_relay_reconnects_total": "counter",
    "cdc_relay_broker_up": "gauge",
    "cdc_relay_broker_rtt_seconds": "gauge",
    "cdc_relay_streaming": "gauge",
    "cdc_relay_catching_up": "gauge",
    "cdc_relay_ready": "gauge",
    **PROCESS_FAMILIES,
    "cdc_relay_build_info": "gauge",
}


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    relays = []

    def spawn_tracked(name, *args, **kw):
        p = spawn(name, *args, **kw)
        if name == "cdc-relay":
            relays.append(p)
        return p

    s = Stack(migrated_pg, kafka, spawn_tracked)
    s.start_api()
    yield s
    # Leave no slot behind: the harness's server has 10 for the whole run.
    for p in relays:
        p.terminate()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        active = s.pg.psql(f"SELECT active FROM pg_replication_slots WHERE slot_name = '{s.slot}'")
        if active == "":
            break
        if active == "f":  # a walsender may linger a moment after the relay exits
            s.pg.psql_result(f"SELECT pg_drop_replication_slot('{s.slot}')")
        time.sleep(0.2)


def test_parser_rejects_what_prometheus_would():
    Scrape("# HELP a x\n# TYPE a gauge\na{b=\"q\\\"\"} 1.5\n")
    for bad in ("a 1\n", "# TYPE a gauge\na{b=\"x} 1\n", "# TYPE a gauge\na one\n",
                "# TYPE a gauge\n# TYPE a gauge\n", "# TYPE a gauge\na 1\na 2\n"):
        with pytest.raises(AssertionError):
            parse_prometheus(bad)


STAGES = ("wal", "receive", "produce", "deliver")
LATENCY = "cdc_relay_transaction_latency_seconds"
E2E = "cdc_relay_end_to_end_latency_seconds"


def check_latency_histograms(base: str, before: Scrape, n: int) -> None:
    """Each of the n one-event transactions counted once in every stage and
    once in the end-to-end histogram, the stages adding up to it (and no
    stage="total" series to double count), buckets cumulative up to +Inf =
    count."""
    def count(s, st):
        return s.value(f"{E2E}_count") if st is None else s.value(f"{LATENCY}_count", stage=st)

    def total(s, st):
        return s.value(f"{E2E}_sum") if st is None else s.value(f"{LATENCY}_sum", stage=st)

    def counted():
        s = scrape(base)
        return s if all(count(s, st) >= count(before, st) + n for st in (*STAGES, None)) else None

    s = wait_for(counted, 30, "n transactions in every stage histogram")
    delta = {st: count(s, st) - count(before, st) for st in (*STAGES, None)}
    assert set(delta.values()) == {n}, delta  # one transaction per order, nothing else ran
    assert {dict(k)["stage"] for k in s.labelled(f"{LATENCY}_count")} == set(STAGES)
    sums = {st: total(s, st) - total(before, st) for st in (*STAGES, None)}
    # server and relay share this host's clock: no stage clamped, the parts add up
    assert abs(sum(sums[st] for st in STAGES) - sums[None]) < 1e-3 * n, sums
    assert 0 < sums[None] / n < 30, sums  # a mean commit -> ack that is plausible
    for st in (*STAGES, None):
        name = E2E if st is None else LATENCY
        buckets = sorted(((float(dict(k)["le"]), v) for k, v in s.labelled(f"{name}_bucket").items()
                          if dict(k).get("stage") == st), key=lambda b: b[0])
        assert buckets[-1][0] == float("inf") and len(buckets) == 23, st
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), st
        assert buckets[-1][1] == count(s, st), st


def broker_seen(base):
    """A scrape once librdkafka's statistics (1 s interval) show a broker up
    with a round-trip time, else None."""
    s = scrape(base)
    up = [v for v in s.labelled("cdc_relay_broker_up").values()]
    rtt = [v for v in s.labelled("cdc_relay_broker_rtt_seconds").values()]
    return s if (1 in up and rtt and all(0 < v < 5 for v in rtt)) else None


@pytest.mark.timeout(180)
def test_metrics_track_events(stack):
    relay = stack.start_relay("--metrics-listen", "127.0.0.1:0")
    base = metrics_base(relay)

    assert get(base, "/healthz")[0] == 200
    wait_for(lambda: get(base, "/readyz")[0] == 200, 30, "/readyz 200 while streaming")
    status, headers, body = get(base, "/readyz")
    assert json.loads(body)["status"] == "ready"
    assert get(base, "/nope")[0] == 404

    before = scrape(base)
    for name, kind in EXPECTED.items():
        assert before.types.get(name) == kind, name
        assert before.helps.get(name), name
    assert before.value("cdc_relay_streaming") == 1
    assert before.value("cdc_relay_reconnects_total", cause="postgres") == 0

    n = 20
    assert all(r[0] == 201 for r in stack.post_many(n, clients=4))
    events = stack.events(count=n, timeout=60)
    assert len(events) == n
    last_commit = max(lsn_int(e["headers"]["lsn"]) for e in events)

    def settled():
        s = scrape(base)
        return s if (
            s.value("cdc_relay_events_delivered_total") >= before.value("cdc_relay_events_delivered_total") + n
            and s.value("cdc_relay_events_in_flight") == 0
        ) else None

    after = wait_for(settled, 30, "delivered counter up by n and nothing in flight")
    for c in ("received", "produced", "delivered"):
        name = f"cdc_relay_events_{c}_total"
        assert after.value(name) >= before.value(name) + n, name
    assert after.value("cdc_relay_events_failed_total") == 0
    assert after.value("cdc_relay_lag_seconds") == 0  # nothing in flight
    assert after.value("cdc_relay_received_lsn_bytes") >= last_commit
    assert after.value("cdc_relay_delivered_lsn_bytes") > last_commit
    check_latency_histograms(base, before, n)
    # Prometheus's own checker on the live text, and the process and build families.
    promtool_check_metrics(after.text)
    assert 0 < time.time() - after.value("process_start_time_seconds") < 600
    assert after.value("process_resident_memory_bytes") > 1 << 20
    assert 0 < after.value("process_open_fds") < after.value("process_max_fds")
    assert after.value("process_cpu_seconds_total") > 0
    (build,) = after.labelled("cdc_relay_build_info")
    assert dict(build)["librdkafka"] == "2.0.2" and set(dict(build)) == {
        "version", "libpq", "librdkafka", "jansson", "libmicrohttpd"}

    # The confirmed LSN metric is what the slot says, within a tolerance
    # (a status update may be on its way).
    def confirmed_matches_slot():
        s = scrape(base)
        metric = s.value("cdc_relay_confirmed_lsn_bytes")
        slot = stack.confirmed_flush()
        return metric > last_commit and abs(metric - slot) <= 64 * 1024 and s
    s = wait_for(confirmed_matches_slot, 30, "confirmed LSN metric = slot confirmed_flush_lsn")
    assert s.value("cdc_relay_server_wal_end_lsn_bytes") >= s.value("cdc_relay_confirmed_lsn_bytes") - 64 * 1024
    assert s.value("cdc_relay_lag_bytes") == max(
        0, s.value("cdc_relay_server_wal_end_lsn_bytes") - s.value("cdc_relay_confirmed_lsn_bytes")
    )

    wait_for(lambda: broker_seen(base), 30, "a broker up with a round-trip time")
    assert relay.alive


@pytest.mark.timeout(180)
def test_readyz_follows_the_broker(stack, kafka):
    # (a short shutdown timeout: the relay is stopped with Kafka down)
    relay = stack.start_relay("--metrics-listen", "127.0.0.1:0", "--shutdown-timeout", "2")
    base = metrics_base(relay)
    wait_for(lambda: get(base, "/readyz")[0] == 200, 30, "/readyz 200 while streaming")
    wait_for(lambda: broker_seen(base), 30, "a broker up with a round-trip time")

    # Broker gone: not ready (with a reason), still alive.
    kafka.stop()
    wait_for(lambda: get(base, "/readyz")[0] == 503, 60, "/readyz 503 once the broker is down")
    status, _, body = get(base, "/readyz")
    assert status == 503
    assert json.loads(body) == {"status": "not ready", "reason": "no kafka broker up"}
    assert get(base, "/healthz")[0] == 200
    s = scrape(base)
    assert s.value("cdc_relay_ready") == 0
    assert all(v == 0 for v in s.labelled("cdc_relay_broker_up").values())
    delivered = s.value("cdc_relay_events_delivered_total")

    # An order while the broker is down: in flight, and its age is the lag.
    assert stack.post_order("while-down")[0] == 201
    s = wait_for(
        lambda: (s := scrape(base)).value("cdc_relay_events_in_flight") >= 1
        and s.value("cdc_relay_lag_seconds") >= 1.5 and s,
        30,
        "an undelivered event ageing in cdc_relay_lag_seconds",
    )
    assert s.value("cdc_relay_lag_seconds") < 60
    assert s.value("cdc_relay_events_delivered_total") == delivered
    assert relay.alive


@pytest.mark.timeout(180)
def test_reconnect_is_counted_and_readiness_comes_back(stack):
    relay = stack.start_relay("--metrics-listen", "127.0.0.1:0")
    base = metrics_base(relay)
    wait_for(lambda: get(base, "/readyz")[0] == 200, 30, "/readyz 200")
    mark = relay.mark()
    stack.pg.psql(
        f"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{stack.slot}'",
        url=stack.url,
    )
    relay.wait_for_log(r"streaming slot", timeout=60, since=mark)
    s = wait_for(
        lambda: (s := scrape(base)).value("cdc_relay_reconnects_total", cause="postgres") >= 1 and s,
        30,
        "reconnect counted",
    )
    assert s.value("cdc_relay_reconnects_total", cause="kafka") == 0
    wait_for(lambda: get(base, "/readyz")[0] == 200, 30, "/readyz 200 again after the reconnect")
    assert stack.post_order()[0] == 201
    assert len(stack.events(count=1, timeout=60)) == 1


def json_lines(relay) -> list[dict]:
    out = []
    for line in relay.log_text().splitlines():
        if line.startswith("==== "):  # the harness's own header line
            continue
        obj = json.loads(line)  # every line the relay writes is one JSON object
        assert isinstance(obj, dict) and {"ts", "level", "msg"} <= obj.keys(), line
        out.append(obj)
    return out


@pytest.mark.timeout(180)
def test_json_logs_carry_lsn_and_event_id_and_hide_the_password(stack):
    secret = "pw-never-in-logs-7f3a"
    # a role of its own whose password is the secret: the password really
    # logs in, on a trust server (the harness's) as on a scram one (compose)
    role = f"logs_{uuid.uuid4().hex[:8]}"
    stack.pg.psql(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{secret}'", url=stack.url)
    parts = urllib.parse.urlsplit(stack.url)
    url = parts._replace(netloc=f"{role}:{secret}@{parts.hostname}:{parts.port}").geturl()
    relay = None
    try:
        relay = stack.spawn(
            "cdc-relay",
            *stack.relay_args("--log-format", "json", "--log-level", "debug", "--metrics-listen", "127.0.0.1:0"),
            env={"DATABASE_URL": url, "KAFKA_BROKERS": stack.kafka.brokers},
            wait_for=r"streaming slot",
        )
        _json_logs_hide_the_password(stack, relay, role, secret)
    finally:
        if relay is not None:
            relay.terminate()
        stack.pg.psql(f"REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}", url=stack.url)
        stack.pg.psql(f"DROP ROLE {role}", url=stack.url)


def _json_logs_hide_the_password(stack, relay, role, secret):
    assert all(r[0] == 201 for r in stack.post_many(3, clients=1))
    events = stack.events(count=3, timeout=60)
    assert len(events) == 3
    wait_for(
        lambda: sum(1 for l in json_lines(relay) if l["msg"].startswith("event produced")) >= 3,
        30,
        "three 'event produced' lines",
    )
    lines = json_lines(relay)
    # (the harness's "==== start" line shows the environment it passed)
    assert not [l for l in relay.log_text().splitlines() if secret in l and not l.startswith("==== ")]
    start = next(l for l in lines if l["msg"] == "starting")
    assert f"{role}:***@" in start["database"] and start["mode"] == "stream"
    assert start["slot"] == stack.slot and re.fullmatch(r"\d+\.\d+\.\d+", start["version"])
    listen = next(l for l in lines if l["msg"] == "metrics listening")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", listen["addr"])
    assert {l["level"] for l in lines} <= {"error", "warn", "info", "debug"}
    produced = {l["event_id"]: l["lsn"] for l in lines if l["msg"].startswith("event produced")}
    assert produced == {e["headers"]["id"]: e["headers"]["lsn"] for e in events}


@pytest.mark.timeout(240)
def test_catch_up_progress_after_downtime_then_quiet(stack):
    relay = stack.start_relay("--metrics-listen", "127.0.0.1:0")
    assert stack.post_order("before")[0] == 201
    assert len(stack.events(count=1, timeout=60)) == 1
    relay.signal(signal.SIGTERM)
    assert relay.wait(40) == 0, relay.log_tail()

    # Downtime: 40 MiB of unrelated WAL, then a few orders behind it.
    start = stack.current_lsn()
    stack.pg.psql(
        "CREATE TABLE filler AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 40000) g",
        url=stack.url,
    )
    assert all(r[0] == 201 for r in stack.post_many(5, clients=1))
    assert stack.current_lsn() - start > 24 << 20, "not enough WAL for a catch-up"

    relay = stack.start_relay("--metrics-listen", "127.0.0.1:0")
    m = relay.wait_for_log(r"catch-up: ([0-9.]+) MiB of WAL behind", timeout=30)
    assert float(m.group(1)) > 16
    relay.wait_for_log(r"catch-up: done, \d+ events", timeout=120)
    assert len(stack.events(count=6, timeout=60)) == 6
    base = metrics_base(relay)
    assert scrape(base).value("cdc_relay_catching_up") == 0
    # Quiet once caught up: nothing more for longer than the report interval.
    mark = relay.mark()
    time.sleep(6)
    assert "catch-up" not in relay.log_text(since=mark)


def test_metrics_listener_on_by_default_none_turns_it_off_and_a_taken_port_is_clear(spawn):
    """No --metrics-listen: the relay serves on 127.0.0.1:8491 (before it
    has a database: the relay retries, the listener is up). A second relay
    with the default finds the port taken and stops at once (exit 1) with a
    message naming the way out; --metrics-listen none starts no listener.
    (The database is unreachable on purpose: nothing here needs one.)"""
    env = {"CDC_METRICS_LISTEN": None, "DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
           "KAFKA_BROKERS": "127.0.0.1:1"}
    # Probed as the relay binds (SO_REUSEADDR): the previous run's TIME_WAIT
    # connections must not count as taken, only a listener.
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", 8491))
        probe.listen()
        free = True
    except OSError:
        free = False  # something else on this machine has it: the clear error is still checked
    finally:
        probe.close()
    if free:
        first = spawn("cdc-relay", "--no-state-file", env=env,
                      wait_for=r"metrics listening addr=127\.0\.0\.1:8491\b")
        assert get("http://127.0.0.1:8491", "/healthz")[0] == 200
        status, _, body = get("http://127.0.0.1:8491", "/metrics")
        assert status == 200 and "cdc_relay_build_info{" in body
        assert get("http://127.0.0.1:8491", "/readyz")[0] == 503  # no database
        assert first.alive
    r = run_bin("cdc-relay", "--no-state-file", env=env, timeout=30)
    assert r.returncode == 1, r.stderr
    assert ("--metrics-listen 127.0.0.1:8491: the port is already in use" in r.stderr
            and "--metrics-listen none" in r.stderr), r.stderr
    off = spawn("cdc-relay", "--no-state-file", "--metrics-listen", "none", env=env,
                wait_for=r"info starting ")
    time.sleep(1)
    assert off.alive and "metrics listening" not in off.log_text()
