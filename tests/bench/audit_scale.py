#!/usr/bin/env python3
"""Time of `cdc-relay audit` on a large outbox (docs/benchmarks.md, "Audit of a
1,000,000-row outbox").

ROWS outbox rows are committed (100,000 per transaction, as the api would
write them, created_at spread over the range), relayed to a real Kafka 4.1.1
broker by cdc-relay (stream mode, --end-lsn), then MISSING more rows are
committed that no relay reads. `cdc-relay audit` over the range must report
exactly those as missing (exit 4); its wall time, CPU and peak RSS are
printed, --repeat times. Real Postgres and Kafka (tests/harness), started for
the run; nothing else is loaded.

    python3 tests/bench/audit_scale.py [--rows 1000000] [--missing 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bench"))

from cdcbench.servers import BenchError, bench_servers, machine_line, timed, wait_usage  # noqa: E402

CHUNK = 100_000


def insert(pg, n: int, tag: str) -> None:
    for start in range(0, n, CHUNK):
        k = min(CHUNK, n - start)
        pg.psql(
            "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)"
            f" SELECT gen_random_uuid(), 'orders', '{tag}' || g, 'OrderCreated',"
            " jsonb_build_object('id', gen_random_uuid(), 'item', 'book', 'quantity', 2,"
            f" 'status', 'created', 'created_at', now()) FROM generate_series(1, {k}) g",
            timeout=600)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--missing", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    relay = str(REPO / "bin" / "cdc-relay")
    run = Path(tempfile.mkdtemp(prefix="orders-cdc-bench-"))
    os.chmod(run, 0o755)
    results = []
    with bench_servers(run) as (pg, kafka, env):
        pg.psql("SELECT pg_create_logical_replication_slot('bench_audit', 'pgoutput')")
        since = pg.psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        t0 = time.monotonic()
        insert(pg, args.rows, "k")
        print(f"{args.rows} rows committed in {time.monotonic() - t0:.1f} s", flush=True)
        end = pg.psql("SELECT pg_current_wal_lsn()")
        r = timed([relay, "--no-state-file", "--slot", "bench_audit", "--publication", "bench_pub",
                   "--topic-template", "bench.audit.${aggregate_type}", "--end-lsn", end,
                   "--metrics-listen", "none"], env=env)
        print(f"relayed in {r['wall']:.1f} s", flush=True)
        insert(pg, args.missing, "never-relayed-")
        pg.psql("VACUUM ANALYZE outbox")
        cmd = [relay, "audit", "--since", since, "--until", "now",
               "--topic-template", "bench.audit.${aggregate_type}"]
        for i in range(1, args.repeat + 1):
            out = run / f"audit{i}.out"
            with open(out, "w") as f, open(run / f"audit{i}.err", "w") as err:
                t0 = time.monotonic()
                p = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=f, stderr=err,
                                     stdin=subprocess.DEVNULL)
                rc, cpu, rss = wait_usage(p, 3600)  # wait4: this process's CPU and peak RSS
                wall = time.monotonic() - t0
            lines = out.read_text().splitlines()
            missing = [l for l in lines if l.startswith("missing ")]
            if rc != 4 or len(missing) != args.missing:
                raise BenchError(f"audit exited {rc} with {len(missing)} missing:\n"
                                 f"{lines[-5:]}\n{(run / f'audit{i}.err').read_text()[-2000:]}")
            results.append((i, wall, cpu, rss, lines[-1]))
            print(f"run {i}: {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {rss / 1024:.0f} MiB; {lines[-1]}",
                  flush=True)
    shutil.rmtree(run, ignore_errors=True)
    print(f"\nMachine: {machine_line()}. Command: `python3 tests/bench/audit_scale.py --rows {args.rows} "
          f"--missing {args.missing} --repeat {args.repeat}` ({time.strftime('%Y-%m-%d')}).")
    print("| run | wall s | CPU s | peak RSS MiB | the audit's summary line |")
    print("|---|---|---|---|---|")
    for i, wall, cpu, rss, summary in results:
        print(f"| {i} | {wall:.2f} | {cpu:.2f} | {rss / 1024:.0f} | `{summary}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
