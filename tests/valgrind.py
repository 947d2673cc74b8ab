#!/usr/bin/env python3
"""valgrind memcheck of orders-api and cdc-relay through one integration
scenario: real Postgres and Kafka (tests/harness), 200 orders posted (half
with a traceparent header) and relayed with a header column, a relay
restart, both /metrics scraped (process_* from /proc), the systemd
notifications sent to a socket of ours, `cdc-relay audit` over the orders'
range and `cdc-relay prune` of their rows while the relay runs, then
SIGTERM for both. Fails unless every run reports 0 errors and 0 bytes
definitely lost. `make valgrind`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Kafka, Postgres  # noqa: E402

VALGRIND = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--error-exitcode=99", "--track-fds=no", "--num-callers=30"]


def start(name: str, args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(VALGRIND + [f"--log-file={log}.vg", str(REPO / "bin" / name), *args],
                            env={**os.environ, **env}, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wait_log(log: Path, pattern: str, timeout: float = 120) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text(errors="replace"))
        if m:
            return m
        time.sleep(0.2)
    raise SystemExit(f"valgrind: {log.name} did not log /{pattern}/ in {timeout} s:\n{log.read_text()[-2000:]}")


def verdict(name: str, proc: subprocess.Popen, log: Path) -> bool:
    rc = proc.wait(120)
    report = Path(f"{log}.vg").read_text(errors="replace")
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    lost = re.search(r"definitely lost: ([\d,]+) bytes", report)
    lost_bytes = int(lost.group(1).replace(",", "")) if lost else 0
    ok = rc == 0 and errors is not None and errors.group(1) == "0" and lost_bytes == 0
    print(f"valgrind {name}: exit {rc}, {errors.group(1) if errors else '?'} errors, "
          f"{lost_bytes} bytes definitely lost -> {'ok' if ok else 'FAIL'}")
    if not ok:
        print(report[-6000:])
    return ok


def main() -> int:
    run = Path(tempfile.mkdtemp(prefix="orders-cdc-vg-"))
    os.chmod(run, 0o755)
    pg, kafka = Postgres(run / "pg"), Kafka(run / "kafka")
    ok = True
    try:
        pg.start()
        kafka.start()
        # systemd's notification socket, played here: READY=1/STOPPING=1 are sent
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(run / "notify"))
        env = {"DATABASE_URL": pg.url, "KAFKA_BROKERS": kafka.brokers,
               "NOTIFY_SOCKET": str(run / "notify")}
        subprocess.run([str(REPO / "bin" / "orders-api"), "--migrate"], env={**os.environ, **env},
                       check=True, capture_output=True)
        api_log, relay_log = run / "api.log", run / "relay.log"
        api = start("orders-api", ["--listen", "127.0.0.1:0", "--pool-size", "4"], env, api_log)
        addr = wait_log(api_log, r"listening addr=(\S+)").group(1)
        relay_args = ["--state-file", str(run / "relay.state"), "--status-interval", "1",
                      "--header-columns", "created_at=row-created"]
        relay = start("cdc-relay", relay_args, env, relay_log)
        wait_log(relay_log, "streaming slot")
        for i in range(200):
            headers = {"Content-Type": "application/json"}
            if i % 2:
                headers["traceparent"] = f"00-{i:032x}-{i:016x}-01"
            req = urllib.request.Request(f"http://{addr}/orders", method="POST",
                                         data=json.dumps({"item": f"vg-{i}", "quantity": 1}).encode(),
                                         headers=headers)
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.status == 201
            if i == 100:
                # Restart the relay mid-run: the shutdown path, then a resume.
                relay.send_signal(signal.SIGTERM)
                ok &= verdict("cdc-relay (first run)", relay, relay_log)
                relay_log = run / "relay2.log"
                relay = start("cdc-relay", relay_args, env, relay_log)
                wait_log(relay_log, "streaming slot")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            out = subprocess.run(["kcat", "-C", "-b", kafka.brokers, "-t", "orders.events", "-e", "-q",
                                  "-o", "beginning", "-f", "%k\n"], capture_output=True, text=True).stdout
            if len(set(out.split())) >= 200:
                break
            time.sleep(1)
        else:
            print("valgrind: not every order reached Kafka")
            ok = False
        # cdc-relay reemit: the command, and the running relay serving its
        # request (reading the rows, producing them with the replayed header).
        reemit_log = run / "reemit.log"
        reemit = start("cdc-relay", ["reemit", "--since", "1h", "--wait", "--wait-timeout", "110"],
                       env, reemit_log)
        ok &= verdict("cdc-relay reemit", reemit, reemit_log)
        if "delivered: 200 rows" not in reemit_log.read_text():
            print(f"valgrind: the re-emit was not delivered:\n{reemit_log.read_text()[-2000:]}")
            ok = False
        relay_metrics = wait_log(relay_log, r"metrics listening addr=(\S+)").group(1)
        for base in (addr, relay_metrics):
            with urllib.request.urlopen(f"http://{base}/metrics", timeout=30) as resp:
                assert b"process_resident_memory_bytes" in resp.read()
        # The audit command: every order's event found, exit 0.
        audit_log = run / "audit.log"
        audit = start("cdc-relay", ["audit", "--since", "1h"], env, audit_log)
        ok &= verdict("cdc-relay audit", audit, audit_log)
        if "200 found, 0 missing" not in audit_log.read_text():
            print(f"valgrind: the audit did not find the 200 events:\n{audit_log.read_text()[-2000:]}")
            ok = False
        # The prune command, the relay still running to confirm: all 200 rows
        # delivered, deleted in batches.
        prune_log = run / "prune.log"
        prune = start("cdc-relay", ["prune", "--older-than", "0", "--batch-size", "50",
                                    "--state-file", str(run / "relay.state")], env, prune_log)
        ok &= verdict("cdc-relay prune", prune, prune_log)
        if "200 rows deleted" not in prune_log.read_text():
            print(f"valgrind: prune did not delete the 200 rows:\n{prune_log.read_text()[-2000:]}")
            ok = False
        api.send_signal(signal.SIGTERM)
        relay.send_signal(signal.SIGTERM)
        ok &= verdict("orders-api", api, api_log)
        ok &= verdict("cdc-relay", relay, relay_log)
    finally:
        try:
            kafka.stop()
        finally:
            pg.stop()
    print(f"valgrind: {'1 passed, 0 failed' if ok else '0 passed, 1 failed'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
