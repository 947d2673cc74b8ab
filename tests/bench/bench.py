#!/usr/bin/env python3
"""make bench: cdc-relay side by side with pg_recvlogical, Debezium and the
polling outbox, against a real Postgres and a real Kafka broker started for
the run (tests/harness). Prints tables, writes the generated sections of
docs/benchmarks.md, PNG plots in docs/bench/ and build/bench/results.json.

Parts (--parts, default all):
  catchup  after an unmeasured broker warm-up (N/4 events), N outbox rows
           committed while nothing reads, in transactions of each --sizes;
           then each system drains its own slot, one at a time
  latency  the rate Postgres sustains for the api's insert, then an
           open-loop load (pgbench --rate) at 25/50/90 % of it; commit ->
           broker append (LogAppendTime) and commit -> consumer receipt, and
           cdc-relay's own stage histograms (its /metrics) around each step
  api      wrk POST /orders against pgbench running the same statement

    python3 tests/bench/bench.py [--quick] [--rows N] [--sizes 1,100,10000]
        [--systems pg_recvlogical,cdc-relay,debezium,poll] [--parts ...]

The code is the package tests/bench/cdcbench (servers, loads, systems,
report). Docs: docs/benchmarks.md ("How the numbers are taken").
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cdcbench import report  # noqa: E402
from cdcbench.loads import POST_LUA, ORDER_SQL, commit_backlog, parse_pgbench, parse_wrk, pgbench, saturation  # noqa: E402
from cdcbench.servers import (PARTITIONS, REPO, BenchError, CpuWindow, HarnessError, Run, log, run,  # noqa: E402
                              stop, tail, wait_log, wait_usage, why)
from cdcbench.systems import (CATCHUP, DEBEZIUM_VERSION, SYSTEMS, TOPIC_TAG, available, latency_system,  # noqa: E402
                              relay_cmd, relay_env)

PARTS = ["catchup", "latency", "api"]


# -- 1. catch-up ------------------------------------------------------------------
def warm_broker(r: Run, rows: int) -> None:
    """Unmeasured: rows single-row transactions relayed by cdc-relay to a
    scratch topic. The broker is a fresh JVM whose JIT compiler otherwise
    runs through the first measured catch-up, and cdc-relay's 1-row run
    comes first after pg_recvlogical's, which does not use the broker."""
    slot, topic = "bench_warmup", "warmup.orders.events"
    log(f"catch-up: warming the broker with {rows} events (not measured)")
    r.psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    r.kafka.create_topic(topic, PARTITIONS)
    end = commit_backlog(r, "warmup", 1, max(4, rows), 4)
    try:
        p, logpath = r.spawn("cdc-relay-warmup", relay_cmd(r, slot, "warmup.${aggregate_type}.events",
                                                           "--end-lsn", end), env=relay_env(r))
        rc, _, _ = wait_usage(p, r.timeout(rows))
        if rc != 0:
            raise BenchError(f"cdc-relay (broker warm-up) exited {rc}:\n{tail(logpath)}")
    finally:
        r.drop_slot(slot)
    r.psql("TRUNCATE outbox")
    r.checkpoint()


def catchup(r: Run) -> None:
    if "cdc-relay" in r.a.systems or "debezium" in r.a.systems:
        warm_broker(r, max(1000, r.a.rows // 4))
    systems = [s for s in SYSTEMS if s in r.a.systems]
    missing = {s: available(r, s) for s in systems}
    for size in r.a.sizes:
        txns = max(1, r.a.rows // size)
        clients = 4 if txns >= 4 else 1
        n = (txns // clients) * clients * size
        slots = {}
        for s in systems:
            if missing[s] is None and s != "poll":
                slots[s] = f"bench_{s.replace('-', '_')}_{size}"
                r.psql(f"SELECT pg_create_logical_replication_slot('{slots[s]}', 'pgoutput')")
            # Topics exist before the start (as in production): topic creation
            # and its metadata round trips are not part of anyone's catch-up.
            if s in TOPIC_TAG and missing[s] is None:
                r.kafka.create_topic(f"catchup{size}.{TOPIC_TAG[s]}.orders.events", PARTITIONS)
        r.psql("TRUNCATE outbox")
        log(f"catch-up: committing {n} rows in transactions of {size}")
        t0 = time.monotonic()
        end = commit_backlog(r, str(size), size, n, clients)
        load_s = time.monotonic() - t0
        oldest = r.psql("SELECT min(restart_lsn) FROM pg_replication_slots")
        wal = int(r.psql(f"SELECT pg_wal_lsn_diff('{end}', '{oldest}')") or 0)
        for s in systems:
            row = {"system": s, "size": size, "rows": n, "load_s": load_s, "wal_bytes": wal}
            if missing[s]:
                row["error"] = missing[s]
            else:
                log(f"catch-up: {s}, {n} events in transactions of {size}")
                try:
                    row.update(CATCHUP[s](r, size, n, slots.get(s), end))
                except Exception as e:  # noqa: BLE001 (one row fails, the run goes on)
                    row["error"] = why(e)
                    r.results["errors"].append(f"catch-up {s} size {size}: {row['error']}")
                    log(f"catch-up {s} size {size} FAILED: {row['error']}")
            r.results["catchup"].append(row)
            if "wall_s" in row:
                log(f"  {s}: {row['wall_s']:.2f} s, {n / row['wall_s']:.0f} events/s, "
                    f"CPU {row['cpu_s']:.2f} s, peak RSS {row['rss_kib'] / 1024:.0f} MiB")
            if s in slots:
                r.drop_slot(slots[s])
    r.psql("TRUNCATE outbox")


# -- 2. latency -------------------------------------------------------------------
def latency(r: Run) -> None:
    systems = [s for s in ("cdc-relay", "debezium") if s in r.a.systems]
    if not systems:
        return
    r.psql("TRUNCATE outbox")
    r.checkpoint()
    log(f"latency: saturating run, {r.a.latency_seconds} s, 8 clients")
    max_tps = saturation(r, r.a.latency_seconds)
    r.results["latency_max_tps"] = max_tps
    log(f"latency: Postgres sustains {max_tps:.0f} single-order transactions/s")
    for s in systems:
        missing = available(r, s)
        if missing:
            r.results["latency"].append({"system": s, "error": missing})
            continue
        try:
            latency_system(r, s, max_tps)
        except Exception as e:  # noqa: BLE001 (one row fails, the run goes on)
            r.results["errors"].append(f"latency {s}: {why(e)}")
            r.results["latency"].append({"system": s, "error": why(e)})
            log(f"latency {s} FAILED: {why(e)}")


# -- 3. api -----------------------------------------------------------------------
def api(r: Run) -> None:
    secs = r.a.api_seconds
    for conns in r.a.connections:
        pool = min(conns, 128)
        row = {"connections": conns, "pool_size": pool, "seconds": secs}
        try:
            r.checkpoint()
            log(f"api: wrk {conns} connections, {secs} s (orders-api --pool-size {pool})")
            p, logpath = r.spawn(f"orders-api-c{conns}", [str(r.bin / "orders-api"), "--pool-size", str(pool),
                                                           "--listen", "127.0.0.1:0"],
                                 env={"DATABASE_URL": r.pg.url})
            try:
                addr = wait_log(p, logpath, r"listening addr=(\S+)", "orders-api did not start")
                wrk = ["wrk", "-t", "2", "-c", str(conns), "-d", f"{secs}s", "--latency", "--timeout", "10s",
                       "-s", str(POST_LUA), f"http://{addr}/orders"]
                r.note_cmd(wrk[:-1] + ["http://$API/orders"])
                cpu = CpuWindow({p.pid: "api"}, secs)
                out = run(wrk, secs + 120, what="wrk")
                row["wrk_cpu_pct"] = cpu.result()
            finally:
                stop(p, 20)
            row["wrk"] = parse_wrk(out)
            r.checkpoint()
            log(f"api: pgbench {conns} clients, {secs} s, the same statement")
            pre = r.dir / f"pgbench_c{conns}"
            cpu = CpuWindow({}, secs)
            out = pgbench(r, ORDER_SQL, "-M", "prepared", "-c", str(conns), "-j", "2", "-T", str(secs), "-l",
                          "--log-prefix", str(pre), timeout=secs + 120)
            row["pgbench"] = parse_pgbench(out, r.dir, pre.name)
            row["pgbench_cpu_pct"] = cpu.result()
            log(f"  api {row['wrk']['rps']:.0f} req/s p99 {row['wrk']['p99_ms']:.1f} ms; pgbench "
                f"{row['pgbench']['tps']:.0f} tps p99 {row['pgbench']['p99_ms']:.1f} ms")
        except Exception as e:  # noqa: BLE001 (one row fails, the run goes on)
            row["error"] = why(e)
            r.results["errors"].append(f"api {conns}: {row['error']}")
            log(f"api {conns} FAILED: {row['error']}")
        r.results["api"].append(row)
        r.psql("TRUNCATE orders, outbox")


# ---------------------------------------------------------------------------------
def parse_args(argv: list[str]):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="a few minutes: 50,000 rows, 10 s per latency step, 5 s per api step")
    ap.add_argument("--rows", type=int, help="catch-up rows per transaction size (default 1000000; quick 50000)")
    ap.add_argument("--sizes", default="1,100,10000", help="rows per transaction (default 1,100,10000)")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help=f"subset of {','.join(SYSTEMS)} (default all)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)} (default all)")
    ap.add_argument("--latency-seconds", type=int, help="length of each latency step (default 30; quick 10)")
    ap.add_argument("--load", default="25,50,90", help="latency steps, %% of the saturating rate")
    ap.add_argument("--warmup-seconds", type=int,
                    help="unmeasured first step at the lowest rate, for the broker's and the JVM "
                         "systems' JIT compilers (default 60; quick 10)")
    ap.add_argument("--rates", help="latency steps at these orders/s instead of --load's percentages")
    ap.add_argument("--api-seconds", type=int, help="length of each wrk and pgbench run (default 15; quick 5)")
    ap.add_argument("--connections", default="8,32,128", help="api concurrency steps (default 8,32,128)")
    ap.add_argument("--debezium-poll-ms", type=int,
                    help="set Debezium's poll.interval.ms (default: unset, Debezium's 500 ms)")
    ap.add_argument("--bin-dir", default="bin", help="where cdc-relay and orders-api are (default bin)")
    ap.add_argument("--doc", default="docs/benchmarks.md",
                    help="Markdown file whose generated sections are rewritten (default docs/benchmarks.md)")
    ap.add_argument("--no-doc", action="store_true", help="print only; leave docs/ alone")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs) after a good run")
    a = ap.parse_args(argv)
    for name, quick, full in (("rows", 50_000, 1_000_000), ("latency_seconds", 10, 30),
                              ("api_seconds", 5, 15), ("warmup_seconds", 10, 60)):
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    a.sizes = [int(x) for x in a.sizes.split(",")]
    a.systems = [x.strip() for x in a.systems.split(",")]
    a.parts = [x.strip() for x in a.parts.split(",")]
    a.load_pcts = [int(x) for x in a.load.split(",")]
    a.rates = [int(x) for x in a.rates.split(",")] if a.rates else []
    a.connections = [int(x) for x in a.connections.split(",")]
    for s in a.systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s!r}; known: {', '.join(SYSTEMS)}")
    for p in a.parts:
        if p not in PARTS:
            ap.error(f"unknown part {p!r}; known: {', '.join(PARTS)}")
    if a.rows < 1 or min(a.sizes) < 1 or min(a.connections) < 1:
        ap.error("--rows, --sizes and --connections must be positive")
    return a


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    for tool in ("kcat", "pgbench", "wrk"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            print(f"bench: {tool} not found; run: sh tests/bench/setup.sh", file=sys.stderr)
            return 1
    for b in ("cdc-relay", "orders-api"):
        if not (REPO / a.bin_dir / b).exists():
            print(f"bench: {a.bin_dir}/{b} missing; run: make", file=sys.stderr)
            return 1
    command = "python3 tests/bench/bench.py " + shlex.join(argv) if argv else "make bench"
    run_dir = Path(tempfile.mkdtemp(prefix="orders-cdc-bench."))
    os.chmod(run_dir, 0o755)  # the postgres OS user must reach its data directory
    log(f"servers and logs in {run_dir} (kept if something fails)")
    # SIGTERM like Ctrl-C: the finally below stops servers and drops slots
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    r = Run(a, run_dir)
    t0 = time.monotonic()
    parts = {"catchup": catchup, "latency": latency, "api": api}
    try:
        r.start()
        r.results["machine"] = report.machine(r.psql("SHOW server_version"), "4.1.1", DEBEZIUM_VERSION)
        for part in PARTS:
            if part in a.parts:
                parts[part](r)
    except (BenchError, HarnessError) as e:
        log(f"bench FAILED: {e}")
        r.results["errors"].append(str(e))
        return_code = 1
    except Exception as e:  # noqa: BLE001 (a bug here: still stop the servers, keep the logs)
        import traceback
        traceback.print_exc()
        r.results["errors"].append(f"{type(e).__name__}: {e}")
        return_code = 1
    except KeyboardInterrupt:
        log("interrupted")
        return_code = 130
    else:
        return_code = 0
    finally:
        try:
            r.close()
        except Exception as e:  # noqa: BLE001
            log(f"cleanup: {e}")
    if return_code == 130:
        return return_code
    r.results["seconds"] = time.monotonic() - t0
    out = REPO / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(r.results, indent=1))
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if "machine" in r.results:
        pngs = [] if a.no_doc else report.plots(r.results, REPO / "docs" / "bench")
        gen = report.sections(r.results, r.results["machine"], command, pngs, date)
        for name in report.SECTIONS:
            if name == "machine" or name in a.parts:
                print(f"\n## {name}\n\n{gen[name]}")
        if not a.no_doc:
            report.update_doc(REPO / a.doc, gen, a.parts)
            log(f"wrote {a.doc} and docs/bench/*.png")
    log(f"done in {r.results['seconds']:.0f} s; results in build/bench/results.json")
    if r.results["errors"]:
        log(f"{len(r.results['errors'])} measurement(s) failed; logs in {run_dir}")
        return 1
    if not a.keep:
        subprocess.run(["rm", "-rf", str(run_dir)])
    return return_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
