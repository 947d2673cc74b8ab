#!/usr/bin/env python3
"""Container faults against the running compose stack (make compose-test).

Each fault is injected while orders are posted to the compose api from this
machine (its published port); then, once the load has stopped, the orders in
Postgres are compared with the events in Kafka until every order has its
event (or a time limit passes):

  relay-sigkill   `kill -s KILL` the relay container mid-stream, start it again
  pg-restart      restart the Postgres container under load
  kafka-pause     pause the broker container 30 s, unpause it
  relay-netcut    disconnect the relay from the network for longer than the
                  server's wal_sender_timeout (10 s in the stack: the server
                  must drop the walsender, checked), reconnect it

Per fault: orders created during it (rows in Postgres), lost (an order with no
event: must be 0), invented (an event whose key is no order: must be 0),
duplicates (extra copies of events, counted since the previous fault: at most
the fault's orders, the unconfirmed window a rewind or reconnect resends; the
most copies of one of its events is shown too), and
every order the api answered 201 for is in Postgres. The relay must be
running and healthy again afterwards (its restart policy is "no", so a relay
that exited fails the fault). Ends with "N passed, N failed"; exit 1 on any
failure.

Postgres and Kafka are read from a probe container on the compose network
(the `it` image: psql, kcat), so this machine needs only python3 and docker.

  python3 tests/compose/faults.py --api http://127.0.0.1:PORT -- COMPOSE_CMD...
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.parse

PG_URL = "postgresql://postgres:orders@postgres:5432/orders"
KAFKA = "kafka:9092"
TOPIC = "orders.events"


def log(msg: str) -> None:
    print(f"faults: {msg}", flush=True)


class Stack:
    def __init__(self, compose: list[str], api: str):
        self.compose_cmd = compose
        self.api = urllib.parse.urlsplit(api)
        self.probe = None

    def compose(self, *args: str, timeout: float = 300) -> str:
        r = subprocess.run([*self.compose_cmd, *args], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"compose {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def container(self, service: str) -> str:
        cid = self.compose("ps", "-a", "-q", service).strip()
        if not cid:
            raise RuntimeError(f"no container for service {service}")
        return cid.splitlines()[0]

    def start_probe(self) -> None:
        out = self.compose("run", "-d", "--no-deps", "--entrypoint", "sleep", "it", "3600")
        self.probe = out.strip().splitlines()[-1]

    def stop_probe(self) -> None:
        if self.probe:
            self.docker("rm", "-f", self.probe, check=False)

    def probe_run(self, *cmd: str, timeout: float = 120) -> str:
        return self.docker("exec", self.probe, *cmd, timeout=timeout)

    def pg_ids(self) -> set[str] | None:
        try:
            out = self.probe_run("psql", "-X", "-At", "-d", PG_URL, "-c", "SELECT id FROM orders")
        except RuntimeError:
            return None  # e.g. Postgres restarting
        return {line for line in out.splitlines() if line}

    def kafka_keys(self) -> list[str] | None:
        try:
            out = self.probe_run("kcat", "-C", "-b", KAFKA, "-t", TOPIC, "-o", "beginning", "-e", "-q",
                                 "-f", "%k\\n", timeout=180)
        except RuntimeError:
            return None
        return [line for line in out.splitlines() if line]

    def relay_state(self) -> tuple[str, str, str]:
        """(status, health, exit code) of the relay container."""
        out = self.docker("inspect", "-f",
                          "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} "
                          "{{.State.ExitCode}}", self.container("relay"))
        status, health, code = out.split()
        return status, health, code

    def wait_relay_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, health, _ = self.relay_state()
            if status == "running" and health == "healthy":
                return True
            if status == "exited":
                return False
            time.sleep(1)
        return False

    def walsenders(self) -> int | None:
        try:
            out = self.probe_run("psql", "-X", "-At", "-d", PG_URL, "-c",
                                 "SELECT count(*) FROM pg_replication_slots "
                                 "WHERE active AND database = current_database()")
            return int(out.strip())
        except (RuntimeError, ValueError):
            return None


class Load:
    """Threads posting orders to the api; counts 201s (their ids) and errors."""

    def __init__(self, api: urllib.parse.SplitResult, threads: int = 4, pause: float = 0.02):
        self.api = api
        self.n = threads
        self.pause = pause
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.acked: list[str] = []
        self.errors = 0
        self.threads: list[threading.Thread] = []

    def _worker(self, k: int) -> None:
        conn = None
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            body = json.dumps({"item": f"fault-{k}-{i}", "quantity": 1})
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.api.hostname, self.api.port, timeout=10)
                conn.request("POST", "/orders", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.status == 201:
                    with self.lock:
                        self.acked.append(json.loads(data)["id"])
                else:
                    with self.lock:
                        self.errors += 1
                    time.sleep(0.2)
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                with self.lock:
                    self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.2)
            time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def start(self) -> None:
        for k in range(self.n):
            t = threading.Thread(target=self._worker, args=(k,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)


def count(stack: Stack, converge_timeout: float):
    """Wait until every order has its event; return (ids, keys) as last read."""
    deadline = time.monotonic() + converge_timeout
    ids, keys = None, None
    while True:
        ids = stack.pg_ids()
        keys = stack.kafka_keys()
        if ids is not None and keys is not None and not (ids - set(keys)):
            return ids, keys
        if time.monotonic() > deadline:
            return ids or set(), keys or []
        time.sleep(2)


class Result:
    def __init__(self, name: str):
        self.name = name
        self.orders = 0
        self.lost = 0
        self.invented = 0
        self.dups = 0
        self.max_copies = 0
        self.bound = 0
        self.unacked = 0
        self.http_errors = 0
        self.seconds = 0.0
        self.problems: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.problems


def run_fault(stack: Stack, name: str, inject, before: float, after: float,
              converge: float, prev: dict) -> Result:
    res = Result(name)
    t0 = time.monotonic()
    ids_before = prev["ids"]
    load = Load(stack.api)
    load.start()
    log(f"{name}: load running")
    time.sleep(before)
    try:
        inject(res)
    except Exception as e:  # noqa: BLE001 - reported as the fault's failure
        res.problems.append(f"injecting the fault failed: {e}")
    time.sleep(after)
    load.stop()
    log(f"{name}: load stopped ({len(load.acked)} orders acknowledged, {load.errors} failed requests)")
    ids, keys = count(stack, converge)
    res.seconds = time.monotonic() - t0
    res.orders = len(ids - ids_before)
    res.http_errors = load.errors
    keyset = set(keys)
    res.lost = len(ids - keyset)
    res.invented = len(keyset - ids)
    dups_total = len(keys) - len(keyset)
    res.dups = dups_total - prev["dups"]
    copies = collections.Counter(keys)
    res.max_copies = max((copies[i] for i in ids - ids_before), default=0)
    res.bound = res.orders
    res.unacked = len(set(load.acked) - ids)
    if res.lost:
        res.problems.append(f"{res.lost} orders have no event on {TOPIC} "
                            f"(e.g. {sorted(ids - keyset)[:3]})")
    if res.invented:
        res.problems.append(f"{res.invented} events whose key is no order")
    if res.dups > res.bound:
        res.problems.append(f"{res.dups} duplicates, more than the {res.bound} orders of this fault")
    if res.unacked:
        res.problems.append(f"{res.unacked} orders answered 201 are not in Postgres")
    if res.orders == 0:
        res.problems.append("no order was created during the fault (the load did not run)")
    if not stack.wait_relay_healthy(120):
        status, health, code = stack.relay_state()
        res.problems.append(f"relay not healthy afterwards: {status} ({health}), exit code {code}")
    prev["ids"] = ids
    prev["dups"] = dups_total
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", required=True, help="the api's published URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--converge", type=float, default=180, help="seconds to wait for every event (180)")
    ap.add_argument("--only", default="", help="comma-separated fault names to run")
    ap.add_argument("compose", nargs=argparse.REMAINDER, help="-- the compose command and its global flags")
    args = ap.parse_args()
    cmd = args.compose[1:] if args.compose[:1] == ["--"] else args.compose
    if not cmd:
        ap.error("give the compose command after --")
    stack = Stack(cmd, args.api)
    stack.start_probe()
    results: list[Result] = []
    try:
        ids, keys = count(stack, args.converge)
        prev = {"ids": ids, "dups": len(keys) - len(set(keys))}
        log(f"before the faults: {len(ids)} orders, {len(keys)} events")
        relay = stack.container("relay")
        network = stack.docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
                               relay).split()[0]

        def relay_sigkill(res):
            stack.compose("kill", "-s", "KILL", "relay")
            time.sleep(3)
            stack.compose("start", "relay")

        def pg_restart(res):
            stack.compose("restart", "postgres", timeout=180)

        def kafka_pause(res):
            stack.compose("pause", "kafka")
            time.sleep(30)
            stack.compose("unpause", "kafka")

        def relay_netcut(res):
            # wal_sender_timeout is 10 s in the stack: the server must drop
            # the walsender while the relay is cut off
            stack.docker("network", "disconnect", network, relay)
            t_cut = time.monotonic()
            dropped = False
            while time.monotonic() - t_cut < 60:
                if stack.walsenders() == 0:
                    dropped = True
                    break
                time.sleep(1)
            held = time.monotonic() - t_cut
            log(f"relay-netcut: walsender {'gone' if dropped else 'still there'} after {held:.0f} s")
            if not dropped:
                res.problems.append("the server kept the walsender of the cut-off relay for 60 s")
            # a little longer, so the relay also sees its own silence
            time.sleep(max(0.0, 25 - held))
            stack.docker("network", "connect", "--alias", "relay", network, relay)

        faults = [
            ("relay-sigkill", relay_sigkill, 5, 10),
            ("pg-restart", pg_restart, 5, 10),
            ("kafka-pause", kafka_pause, 5, 10),
            ("relay-netcut", relay_netcut, 5, 10),
        ]
        only = {x for x in args.only.split(",") if x}
        for name, inject, before, after in faults:
            if only and name not in only:
                continue
            res = run_fault(stack, name, inject, before, after, args.converge, prev)
            log(f"{name}: {'ok' if res.ok else 'FAILED: ' + '; '.join(res.problems)}")
            results.append(res)
    finally:
        stack.stop_probe()

    print()
    print(f"{'fault':<15} {'orders':>7} {'lost':>5} {'invented':>8} {'duplicates':>10} "
          f"{'(bound)':>8} {'max copies':>10} {'http errors':>11} {'seconds':>8}  result")
    for r in results:
        print(f"{r.name:<15} {r.orders:>7} {r.lost:>5} {r.invented:>8} {r.dups:>10} "
              f"{r.bound:>8} {r.max_copies:>10} {r.http_errors:>11} {r.seconds:>8.0f}  "
              f"{'ok' if r.ok else 'FAILED'}")
    passed = sum(r.ok for r in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) and results else 1


if __name__ == "__main__":
    sys.exit(main())
