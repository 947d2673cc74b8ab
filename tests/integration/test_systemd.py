"""What systemd and journald see of both binaries, without a systemd: the
readiness notifications of Type=notify (READY=1 only once the service can
do its work, STOPPING=1), the priority prefix each log line gets when stderr
is the journal (JOURNAL_STREAM), and one log format for both binaries.

The machines this suite runs on have no systemd as PID 1, so the tests play
its part: a datagram socket bound where $NOTIFY_SOCKET points receives what
the service sends, and a file whose device:inode is in JOURNAL_STREAM is
the journal stream, exactly what systemd sets for a service.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness import bin_path, _merge_env
from stack import Stack

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
CLOSED_URL = "postgresql://u:secretpw@127.0.0.1:1/x"  # port 1: connection refused


def run_with_stderr_file(path: Path, name: str, *args: str, env: dict, journal: str | None,
                         timeout: float = 30, stop_after: float | None = None) -> int:
    """Runs a binary with stderr appended to path; JOURNAL_STREAM is `journal`
    ("match": path's own device:inode). stop_after: SIGTERM after that many
    seconds (the relay retries for ever)."""
    path.touch()
    st = path.stat()
    js = f"{st.st_dev}:{st.st_ino}" if journal == "match" else journal
    with open(path, "ab") as err:
        p = subprocess.Popen([str(bin_path(name)), *args], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err,
                             env=_merge_env({**env, "JOURNAL_STREAM": js}))
        try:
            if stop_after is not None:
                time.sleep(stop_after)
                p.send_signal(signal.SIGTERM)
            return p.wait(timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_journald_priority_prefix_only_when_stderr_is_the_journal(tmp_path, fmt):
    # orders-api: "starting" (info) then "migrate failed" (error), exit 1.
    log = tmp_path / "api.err"
    rc = run_with_stderr_file(log, "orders-api", "--migrate", "--log-format", fmt,
                              env={"DATABASE_URL": CLOSED_URL, "LOG_FORMAT": None},
                              journal="match")
    assert rc == 1
    lines = log.read_text().splitlines()
    assert [l[:3] for l in lines] == ["<6>", "<3>"], lines
    body = lines[1][3:]
    if fmt == "json":
        assert json.loads(body)["level"] == "error"
    else:
        assert re.match(TS + " error migrate failed error=", body), body
    assert "secretpw" not in log.read_text()

    # cdc-relay: a URL libpq cannot parse is fatal (error); a warning from librdkafka
    # (no broker on 9092... or not) may come too: every line has a prefix,
    # and the prefix matches the line's level.
    log = tmp_path / "relay.err"
    rc = run_with_stderr_file(log, "cdc-relay", "--log-format", fmt,
                              env={"DATABASE_URL": CLOSED_URL + "?no_such_option=1",
                                   "KAFKA_BROKERS": "127.0.0.1:1", "LOG_FORMAT": None},
                              journal="match")
    assert rc == 1
    prio = {"error": "<3>", "warn": "<4>", "info": "<6>", "debug": "<7>"}
    lines = log.read_text().splitlines()
    assert lines and any(l.startswith("<3>") for l in lines), lines
    for line in lines:
        body = line[3:]
        level = json.loads(body)["level"] if fmt == "json" else body.split(" ")[1]
        assert line[:3] == prio[level], line

    # A stderr that is not the journal stream keeps the variable (inherited)
    # but gets no prefix; and no variable, no prefix.
    for journal in ("1:1", None):
        log = tmp_path / f"plain-{journal}.err"
        run_with_stderr_file(log, "orders-api", "--migrate", "--log-format", fmt,
                             env={"DATABASE_URL": CLOSED_URL}, journal=journal)
        text = log.read_text()
        assert text and not re.search(r"^<\d>", text, re.M), text


def test_api_json_logs_have_the_relays_shape(migrated_pg, kafka, spawn):
    """orders-api --log-format json: ts, level, msg, then the line's fields,
    the same shape and field names as cdc-relay's; the text form is
    `TS LEVEL msg key=value`, also the relay's."""
    stack = Stack(migrated_pg, kafka, spawn)
    api = spawn("orders-api", "--log-format", "json", "--log-level", "debug",
                env={"DATABASE_URL": stack.url, "LISTEN_ADDR": "127.0.0.1:0"},
                wait_for=r'"msg":"listening"')
    lines = [json.loads(l) for l in api.log_text().splitlines() if l.startswith("{")]
    listening = next(l for l in lines if l["msg"] == "listening")
    assert list(listening)[:3] == ["ts", "level", "msg"]
    assert re.fullmatch(TS, listening["ts"]) and listening["level"] == "info"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", listening["addr"])
    assert listening["pool_size"] == "8" and listening["outbox_mode"] == "table"
    start = next(l for l in lines if l["msg"] == "starting")
    assert start["mode"] == "serve" and start["version"] == listening["version"]
    with urllib.request.urlopen(f"http://{listening['addr']}/healthz", timeout=10) as r:
        assert r.status == 200
    req = api.wait_for_log(r'\{[^\n]*"msg":"request"[^\n]*\}')
    fields = json.loads(req.group(0))
    assert fields["method"] == "GET" and fields["path"] == "/healthz" and fields["status"] == "200"
    # Every line is one JSON object (the harness's "====" banner aside).
    for line in api.log_text().splitlines():
        if not line.startswith("===="):
            json.loads(line)

    text = spawn("orders-api", env={"DATABASE_URL": stack.url, "LISTEN_ADDR": "127.0.0.1:0",
                                    "LOG_FORMAT": "text"},
                 wait_for=r"listening addr=\S+")
    line = re.search(r"^.* listening addr=.*$", text.log_text(), re.M).group(0)
    assert re.fullmatch(TS + r" info listening addr=127\.0\.0\.1:\d+ pool_size=8 outbox_mode=table"
                        r" version=\S+", line), line


# --- readiness: systemd's notification socket, played by the test --------------
class NotifySocket:
    """A datagram socket where systemd would listen: what a Type=notify
    service sends to $NOTIFY_SOCKET arrives here. abstract=True binds an
    abstract name (NOTIFY_SOCKET="@name"), as systemd does for user managers."""

    def __init__(self, tmp_path: Path, abstract: bool = False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"orders-cdc-test-notify-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = tmp_path / "notify"
            self.sock.bind(str(path))
            self.env = str(path)

    def recv(self, timeout: float) -> str | None:
        """The next datagram, or None if none came within timeout."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def wait_for(self, key: str, timeout: float, until=None) -> tuple[str, list[str]]:
        """Receives until a datagram has the line `key`; returns it and the
        ones before. `until()` is checked between datagrams (and fails the
        wait when false): the process must still be running."""
        seen, deadline = [], time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key} within {timeout} s; got {seen}")
            msg = self.recv(min(left, 0.5))
            if msg is not None:
                if key in msg.split("\n"):
                    return msg, seen
                seen.append(msg)
            elif until is not None:
                assert until(), f"process gone before {key}; got {seen}"

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(tmp_path)
    yield n
    n.close()


def http_ok(addr: str, path: str) -> int:
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as r:
        return r.status


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_api_ready_only_once_listening_stopping_on_sigterm(migrated_pg, kafka, spawn, tmp_path,
                                                           abstract):
    """orders-api with NOTIFY_SOCKET: READY=1 (with the address in STATUS)
    arrives once it accepts requests: at that moment /healthz answers and the
    log has its listening line; STOPPING=1 comes on SIGTERM, before exit."""
    n = NotifySocket(tmp_path, abstract=abstract)
    try:
        stack = Stack(migrated_pg, kafka, spawn)
        api = spawn("orders-api", env={"DATABASE_URL": stack.url, "LISTEN_ADDR": "127.0.0.1:0",
                                        "NOTIFY_SOCKET": n.env})
        msg, before = n.wait_for("READY=1", 30, until=lambda: api.alive)
        assert before == [], before  # nothing claims readiness earlier
        status = re.search(r"^STATUS=listening on (127\.0\.0\.1:\d+)$", msg, re.M)
        assert status, msg
        assert http_ok(status.group(1), "/healthz") == 200  # at once: it can do its work
        assert http_ok(status.group(1), "/readyz") == 200
        assert f"listening addr={status.group(1)}" in api.log_text()
        api.signal(signal.SIGTERM)
        msg, _ = n.wait_for("STOPPING=1", 15)
        assert api.wait(20) == 0
        assert n.recv(0.3) is None  # nothing after it
    finally:
        n.close()


@pytest.mark.timeout(180)
def test_relay_ready_only_once_it_streams(migrated_pg, kafka, spawn, notify):
    """cdc-relay with NOTIFY_SOCKET: while Postgres cannot be reached it says
    what it does (STATUS) and never READY; against the real server READY=1
    comes once the slot streams: at that moment the slot is active, and an
    order committed right after reaches Kafka. STOPPING=1 on SIGTERM."""
    stack = Stack(migrated_pg, kafka, spawn)
    blocked = spawn("cdc-relay", *stack.relay_args(),
                    env={"DATABASE_URL": "postgresql://u@127.0.0.1:1/x", "KAFKA_BROKERS": kafka.brokers,
                         "NOTIFY_SOCKET": notify.env})
    msg = notify.recv(10)
    assert msg == "STATUS=connecting to Postgres and the slot", msg
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # it retries; nothing it sends says READY
        msg = notify.recv(0.5)
        assert msg is None or "READY=1" not in msg.split("\n"), msg
    assert blocked.alive
    blocked.terminate()
    assert "STOPPING=1" in (notify.recv(5) or "")

    stack.start_api()
    relay = spawn("cdc-relay", *stack.relay_args(),
                  env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": kafka.brokers,
                       "NOTIFY_SOCKET": notify.env})
    msg, before = notify.wait_for("READY=1", 60, until=lambda: relay.alive)
    assert f"STATUS=streaming slot {stack.slot}" in msg.split("\n"), msg
    assert all("READY=1" not in m for m in before), before
    active = stack.pg.psql(
        f"SELECT active FROM pg_replication_slots WHERE slot_name = '{stack.slot}'")
    assert active == "t", "READY=1 before the slot was streaming"
    assert stack.post_order("after-ready", 1)[0] == 201
    events = stack.events(count=1, timeout=60)
    assert [e["key"] for e in events] and len(events) == 1
    relay.signal(signal.SIGTERM)
    notify.wait_for("STOPPING=1", 15)
    assert relay.wait(45) == 0


def test_relay_poll_mode_ready_once_connected(migrated_pg, kafka, spawn, notify):
    """--mode poll: READY=1 once it reached the table (it can poll then)."""
    stack = Stack(migrated_pg, kafka, spawn)
    relay = spawn("cdc-relay", "--mode", "poll", "--topic-template", stack.template,
                  env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": kafka.brokers,
                       "NOTIFY_SOCKET": notify.env})
    msg, _ = notify.wait_for("READY=1", 60, until=lambda: relay.alive)
    assert "STATUS=polling the outbox table" in msg.split("\n"), msg
    assert "polling table" in relay.log_text()
