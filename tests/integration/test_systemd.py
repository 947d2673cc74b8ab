"""What systemd and journald see of both binaries, without a systemd: the
priority prefix each log line gets when stderr is the journal
(JOURNAL_STREAM), and one log format for both binaries.

The machines this suite runs on have no systemd as PID 1, so journald is
played by a file: JOURNAL_STREAM set to that file's device:inode is exactly
what systemd sets for a service whose stderr is a journal stream.
"""

from __future__ import annotations

import json
import os
import re
import signal
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

    # cdc-relay: an invalid URL is fatal (error); a warning from librdkafka
    # (no broker on 9092... or not) may come too: every line has a prefix,
    # and the prefix matches the line's level.
    log = tmp_path / "relay.err"
    rc = run_with_stderr_file(log, "cdc-relay", "--log-format", fmt,
                              env={"DATABASE_URL": CLOSED_URL + "?sslmode=bogus",
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
