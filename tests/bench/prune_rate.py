#!/usr/bin/env python3
"""Rate of `cdc-relay prune` (docs/benchmarks.md, "Pruning the outbox").

ROWS old outbox rows (created_at 10 days ago, 100,000 per transaction) are
streamed to a real Kafka 4.1.1 broker by cdc-relay, which keeps running.
Then `cdc-relay prune --older-than 7d` runs, while a writer (WRITE_RATE rows/s
in 50-row transactions, young rows, 0 for none) inserts and the relay
streams them: the load it runs under. Then the same number of rows in
PARTITIONS daily partitions of a partitioned outbox, pruned by partition.
Wall time, CPU and the summary lines are printed; real Postgres and Kafka
(tests/harness), started for the run.

    python3 tests/bench/prune_rate.py [--rows 500000] [--write-rate 500] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bench"))

from cdcbench.servers import BenchError, bench_servers, machine_line, wait_usage  # noqa: E402

CHUNK = 100_000


def insert(pg, table: str, n: int, age: str, tag: str) -> None:
    for start in range(0, n, CHUNK):
        k = min(CHUNK, n - start)
        pg.psql(
            f"INSERT INTO {table} (id, aggregate_type, aggregate_id, event_type, payload, created_at)"
            f" SELECT gen_random_uuid(), 'orders', '{tag}' || g, 'OrderCreated',"
            " jsonb_build_object('item', 'book', 'quantity', 2, 'status', 'created'),"
            f" now() - interval '{age}' - g * interval '1 ms' FROM generate_series(1, {k}) g",
            timeout=600)


class Writer(threading.Thread):
    """Young rows at about `rate` rows/s in 50-row transactions until stopped."""

    def __init__(self, pg, table: str, rate: int):
        super().__init__(daemon=True)
        self.pg, self.table, self.rate = pg, table, rate
        self.stop, self.rows = threading.Event(), 0

    def run(self):
        t0 = time.monotonic()
        while self.rate > 0 and not self.stop.is_set():
            insert(self.pg, self.table, 50, "1 second", "w")
            self.rows += 50
            ahead = self.rows / self.rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)


def relay(env, run: Path, table: str, slot: str, pub: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(REPO / "bin" / "cdc-relay"), "--no-state-file", "--slot", slot, "--publication", pub,
         "--table", table, "--topic-template", "bench.prune.${aggregate_type}",
         "--status-interval", "1s", "--metrics-listen", "none"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL,
        stderr=open(run / f"relay-{slot}.log", "w"), stdin=subprocess.DEVNULL)


def prune(env, run: Path, name: str, args: list[str]) -> tuple[float, float, str]:
    cmd = [str(REPO / "bin" / "cdc-relay"), "prune", "--no-state-file", *args]
    with open(run / f"{name}.out", "w") as out, open(run / f"{name}.err", "w") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL)
        rc, cpu, _ = wait_usage(p, 3600)
        wall = time.monotonic() - t0
    summary = (run / f"{name}.out").read_text().strip()
    if rc != 0:
        raise BenchError(f"prune exited {rc}: {summary}\n{(run / f'{name}.err').read_text()[-2000:]}")
    return wall, cpu, summary


def wait_streamed(pg, slot: str, timeout: float = 900) -> None:
    """Until the slot has confirmed everything written so far."""
    target = pg.psql("SELECT pg_current_wal_insert_lsn()")
    deadline = time.monotonic() + timeout
    while pg.psql(f"SELECT confirmed_flush_lsn >= '{target}' FROM pg_replication_slots"
                  f" WHERE slot_name = '{slot}'") != "t":
        if time.monotonic() > deadline:
            raise BenchError(f"slot {slot} did not reach {target}")
        time.sleep(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--write-rate", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=5)
    args = ap.parse_args()
    run = Path(tempfile.mkdtemp(prefix="orders-cdc-bench-"))
    os.chmod(run, 0o755)
    results = []
    with bench_servers(run) as (pg, kafka, env):
        r1 = relay(env, run, "public.outbox", "bench_prune", "bench_pub")
        time.sleep(3)
        t0 = time.monotonic()
        insert(pg, "outbox", args.rows, "10 days", "k")
        wait_streamed(pg, "bench_prune")
        print(f"{args.rows} rows committed and relayed in {time.monotonic() - t0:.1f} s", flush=True)
        pg.psql("VACUUM ANALYZE outbox")
        writer = Writer(pg, "outbox", args.write_rate)
        writer.start()
        wall, cpu, summary = prune(env, run, "rows", ["--slot", "bench_prune", "--older-than", "7d",
                                                      "--batch-size", str(args.batch_size)])
        writer.stop.set()
        writer.join(60)
        left = int(pg.psql("SELECT count(*) FROM outbox WHERE created_at < now() - interval '7 days'"))
        if left != 0:
            raise BenchError(f"{left} old rows left after prune")
        results.append(("rows", wall, cpu, summary, writer.rows))
        print(f"rows: {wall:.2f} s, CPU {cpu:.2f} s; {summary}; writer {writer.rows} rows", flush=True)
        r1.terminate()
        r1.wait(60)

        # The same rows in daily partitions.
        days = args.partitions
        pg.psql("CREATE TABLE outbox_p (id uuid NOT NULL, aggregate_type text NOT NULL,"
                " aggregate_id text NOT NULL, event_type text NOT NULL, payload jsonb NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now()) PARTITION BY RANGE (created_at)")
        for d in range(days + 10, -2, -1):
            pg.psql(f"CREATE TABLE outbox_p_{d + 1} PARTITION OF outbox_p FOR VALUES"
                    f" FROM (date_trunc('day', now()) - interval '{d} days')"
                    f" TO (date_trunc('day', now()) - interval '{d - 1} days')")
        r2 = relay(env, run, "public.outbox_p", "bench_prune_p", "bench_pub_p")
        time.sleep(3)
        per = args.rows // days
        for d in range(days):
            insert(pg, "outbox_p", per, f"{d + 9} days", f"p{d}")
        wait_streamed(pg, "bench_prune_p")
        writer = Writer(pg, "outbox_p", args.write_rate)
        writer.start()
        wall, cpu, summary = prune(env, run, "parts", ["--slot", "bench_prune_p", "--table",
                                                       "public.outbox_p", "--older-than", "7d"])
        writer.stop.set()
        writer.join(60)
        results.append(("partitions", wall, cpu, summary, writer.rows))
        print(f"partitions: {wall:.2f} s, CPU {cpu:.2f} s; {summary}; writer {writer.rows} rows",
              flush=True)
        r2.terminate()
        r2.wait(60)
    shutil.rmtree(run, ignore_errors=True)
    print(f"\nMachine: {machine_line()}. Command: `python3 tests/bench/prune_rate.py --rows {args.rows} "
          f"--write-rate {args.write_rate} --batch-size {args.batch_size} --partitions "
          f"{args.partitions}` ({time.strftime('%Y-%m-%d')}).")
    print("| outbox | prune wall s | prune CPU s | rows written meanwhile | prune's summary line |")
    print("|---|---|---|---|---|")
    for kind, wall, cpu, summary, written in results:
        print(f"| {kind} | {wall:.2f} | {cpu:.2f} | {written} | `{summary}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
