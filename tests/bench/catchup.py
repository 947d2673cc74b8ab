#!/usr/bin/env python3
"""Catch-up throughput: cdc-relay against the physical limit (pg_recvlogical
with pgoutput to /dev/null) on the same WAL, per transaction size.

For each transaction size, ROWS outbox rows are committed while nothing
reads two fresh slots; then pg_recvlogical drains one slot and cdc-relay the
other, each to the same end LSN, one after the other. Reported: wall time,
rows/s, the relay's share of the pg_recvlogical rate, CPU seconds per 100k
events and peak RSS of each process. Real Postgres and a real Kafka broker
(tests/harness), started fresh for the run.

    python3 tests/bench/catchup.py [--rows 1000000] [--sizes 1,100,10000] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Kafka, Postgres, _psql_bin  # noqa: E402


def timed(cmd: list[str], env: dict | None = None) -> dict:
    """Run cmd to completion; wall seconds, CPU seconds and peak RSS (KiB) of
    that process alone (wait4 on its pid)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    # stderr is small (one line per event of note); read it after the exit.
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    stderr = p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {p.returncode}:\n{stderr[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_kib": usage.ru_maxrss,
            "stderr": stderr}


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sizes", default="1,100,10000")
    ap.add_argument("--out", help="append a Markdown table to this file")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    relay = REPO / "bin" / "cdc-relay"
    recvlogical = Path(_psql_bin()).parent / "pg_recvlogical"
    if not recvlogical.exists():
        recvlogical = Path("/usr/lib/postgresql/15/bin/pg_recvlogical")

    run = Path(tempfile.mkdtemp(prefix="orders-cdc-bench-"))
    os.chmod(run, 0o755)
    pg, kafka = Postgres(run / "pg"), Kafka(run / "kafka")
    rows_out = []
    try:
        pg.start()
        kafka.start()
        subprocess.run([str(REPO / "bin" / "orders-api"), "--migrate"], env={**os.environ, "DATABASE_URL": pg.url}, check=True, capture_output=True)
        pg.psql("CREATE PUBLICATION bench_pub FOR TABLE outbox WITH (publish = 'insert')")
        for size in sizes:
            txns = max(1, args.rows // size)
            pg.psql("SELECT pg_create_logical_replication_slot('bench_rl', 'pgoutput')")
            pg.psql("SELECT pg_create_logical_replication_slot('bench_relay', 'pgoutput')")
            script = run / f"load_{size}.sql"
            script.write_text(
                "INSERT INTO outbox SELECT gen_random_uuid(), 'orders', gen_random_uuid()::text, "
                "'OrderCreated', jsonb_build_object('id', gen_random_uuid(), 'item', 'book', "
                f"'quantity', 2, 'status', 'created', 'created_at', now()) FROM generate_series(1, {size});\n"
            )
            clients = 4 if txns >= 4 else 1
            t0 = time.monotonic()
            subprocess.run(
                ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-c", str(clients),
                 "-t", str(txns // clients), "-f", str(script), "orders"],
                check=True, capture_output=True,
            )
            load_s = time.monotonic() - t0
            end = pg.psql("SELECT pg_current_wal_lsn()")
            total = int(pg.psql("SELECT count(*) FROM outbox"))
            rl = timed([str(recvlogical), "-d", pg.url, "--slot", "bench_rl", "--start", "-o", "proto_version=1",
                        "-o", "publication_names=bench_pub", "-E", end, "-f", "/dev/null"])
            rel = timed([str(relay), "--no-state-file", "--slot", "bench_relay", "--publication", "bench_pub",
                         "--topic-template", f"bench{size}.${{aggregate_type}}", "--end-lsn", end],
                        env={"DATABASE_URL": pg.url, "KAFKA_BROKERS": kafka.brokers})
            produced = [l for l in rel["stderr"].splitlines() if "relay stopped" in l]
            n = (txns // clients) * clients * size
            rows_out.append((size, n, load_s, rl, rel, produced[-1] if produced else "?"))
            print(f"size {size}: {n} rows; pg_recvlogical {rl['wall']:.2f} s ({n / rl['wall']:.0f}/s), "
                  f"cdc-relay {rel['wall']:.2f} s ({n / rel['wall']:.0f}/s, {100 * rl['wall'] / rel['wall']:.0f}% of the limit), "
                  f"relay CPU {rel['cpu'] / n * 1e5:.2f} s/100k, relay peak RSS {rel['rss_kib'] / 1024:.0f} MiB",
                  flush=True)
            pg.psql("SELECT pg_drop_replication_slot('bench_rl'); SELECT pg_drop_replication_slot('bench_relay')")
            pg.psql("TRUNCATE outbox")
    finally:
        try:
            kafka.stop()
        finally:
            pg.stop()
    table = [
        f"Machine: {machine()}. Command: `python3 tests/bench/catchup.py --rows {args.rows} --sizes {args.sizes}` "
        f"({time.strftime('%Y-%m-%d')}).",
        "",
        "| rows per transaction | rows | pg_recvlogical s | pg_recvlogical rows/s | cdc-relay s | cdc-relay rows/s | relay / limit | relay CPU s per 100k | relay peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, n, _load, rl, rel, _ in rows_out:
        table.append(
            f"| {size} | {n} | {rl['wall']:.2f} | {n / rl['wall']:.0f} | {rel['wall']:.2f} | {n / rel['wall']:.0f} | "
            f"{100 * rl['wall'] / rel['wall']:.0f}% | {rel['cpu'] / n * 1e5:.2f} | {rel['rss_kib'] / 1024:.0f} |"
        )
    print("\n".join(table))
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n".join(table) + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
