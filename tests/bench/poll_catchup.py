#!/usr/bin/env python3
"""Catch-up rate of cdc-relay --mode poll against stream mode, on the same rows
in the same run (docs/benchmarks.md, "Polling mode against stream mode").

ROWS outbox rows are committed in transactions of SIZE rows while nothing
reads (a fresh slot waits for the stream relay); then the stream relay drains
the slot to the end LSN (--end-lsn) and the poll relay drains the table
(--until-empty), once per --batches value, the table's published_at reset and
vacuumed in between. Both into a real Kafka 4.1.1 broker (acks=all,
idempotent). Repeated --repeat times with fresh rows, so the noise of a shared
machine shows. Wall time, rows/s, CPU s per 100k and peak RSS of the relay
process (wait4). Real Postgres and Kafka (tests/harness), started for the run.

    python3 tests/bench/poll_catchup.py [--rows 100000] [--size 100] [--batches 500,5000] [--repeat 2]
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

from cdcbench.loads import outbox_rows_sql  # noqa: E402
from cdcbench.servers import BenchError, bench_servers, machine_line, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=100, help="rows per committed transaction")
    ap.add_argument("--batches", default="500,5000", help="--poll-batch values to run")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    relay = str(REPO / "bin" / "cdc-relay")
    txns = max(1, args.rows // args.size)
    n = txns * args.size

    run = Path(tempfile.mkdtemp(prefix="orders-cdc-bench-"))
    os.chmod(run, 0o755)
    results = []  # (round, system, wall, cpu, rss)
    with bench_servers(run) as (pg, kafka, env):
        # Poll mode reads through this partial index (docs/relay.md, "Polling mode").
        pg.psql("CREATE INDEX outbox_unpublished_idx ON outbox (created_at, id) WHERE published_at IS NULL")
        script = run / "load.sql"
        script.write_text(outbox_rows_sql(args.size))
        for rnd in range(1, args.repeat + 1):
            pg.psql("TRUNCATE outbox")
            pg.psql("SELECT pg_create_logical_replication_slot('bench_stream', 'pgoutput')")
            clients = 4 if txns >= 4 else 1
            subprocess.run(
                ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-c", str(clients),
                 "-t", str(txns // clients), "-f", str(script), "orders"],
                check=True, capture_output=True,
            )
            pg.psql("VACUUM ANALYZE outbox")
            rows = int(pg.psql("SELECT count(*) FROM outbox"))
            end = pg.psql("SELECT pg_current_wal_lsn()")
            r = timed([relay, "--no-state-file", "--slot", "bench_stream", "--publication", "bench_pub",
                       "--topic-template", f"bench.stream{rnd}.${{aggregate_type}}", "--end-lsn", end], env=env)
            results.append((rnd, "stream", rows, r))
            print(f"round {rnd} stream: {rows} rows in {r['wall']:.2f} s ({rows / r['wall']:.0f}/s)", flush=True)
            pg.psql("SELECT pg_drop_replication_slot('bench_stream')")
            for b in batches:
                r = timed([relay, "--mode", "poll", "--until-empty", "--poll-batch", str(b),
                           "--topic-template", f"bench.poll{rnd}b{b}.${{aggregate_type}}"], env=env)
                left = int(pg.psql("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
                if left:
                    raise BenchError(f"poll relay left {left} rows unpublished")
                results.append((rnd, f"poll, batch {b}", rows, r))
                print(f"round {rnd} poll batch {b}: {rows} rows in {r['wall']:.2f} s ({rows / r['wall']:.0f}/s)",
                      flush=True)
                pg.psql("UPDATE outbox SET published_at = NULL")
                pg.psql("VACUUM ANALYZE outbox")
    shutil.rmtree(run, ignore_errors=True)  # kept only when the run failed
    table = [
        f"Machine: {machine_line()}. Command: `python3 tests/bench/poll_catchup.py --rows {args.rows} --size {args.size} "
        f"--batches {args.batches} --repeat {args.repeat}` ({time.strftime('%Y-%m-%d')}).",
        "",
        "| round | relay | rows | s | rows/s | share of stream mode (same round) | CPU s per 100k | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    stream_wall = {rnd: r["wall"] for rnd, system, _, r in results if system == "stream"}
    for rnd, system, rows, r in results:
        table.append(
            f"| {rnd} | {system} | {rows} | {r['wall']:.2f} | {rows / r['wall']:.0f} | "
            f"{100 * stream_wall[rnd] / r['wall']:.0f}% | {r['cpu'] / rows * 1e5:.2f} | {r['rss_kib'] / 1024:.0f} |"
        )
    print("\n".join(table))
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
