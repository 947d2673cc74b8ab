#!/usr/bin/env python3
"""--exactly-once against the default (at-least-once) relay, side by side on
one Postgres and one Kafka broker (tests/harness, started fresh):

1. throughput: ROWS outbox rows are committed (in transactions of each
   size) while nothing reads 2*REPEAT fresh slots; then the default relay and
   the --exactly-once relay drain them in turn (alternating which goes
   first), each to the same end LSN, into a topic of its own.
2. crashes: for each mode, orders are inserted continuously (pgbench -R)
   while the relay is SIGKILLed KILLS times at random moments and restarted;
   at the end a read_committed consumer (kcat) is compared with the outbox
   table: duplicates and losses per mode.

    python3 tests/bench/eos.py [--rows 100000] [--sizes 1,100] [--repeat 2] [--kills 20]
                               [--rate 300] [--skip-throughput] [--skip-crashes]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bench"))

from cdcbench.servers import Kafka, Postgres, bench_servers, machine_line, timed  # noqa: E402

RELAY = REPO / "bin" / "cdc-relay"
EOS = ["--exactly-once"]


def read_committed(kafka: Kafka, topic: str) -> collections.Counter:
    msgs = kafka.read_all(topic, ["-X", "isolation.level=read_committed"], timeout=300)
    return collections.Counter(m["headers"].get("id") for m in msgs)


def throughput(pg: Postgres, kafka: Kafka, run: Path, rows: int, size: int,
               repeat: int) -> list[tuple]:
    txns = max(1, rows // size)
    # One slot per run, all made before the load: every run reads the same WAL.
    runs = []
    for rep in range(repeat):
        order = [("default", []), ("exactly-once", EOS)]
        runs += order if rep % 2 == 0 else order[::-1]  # alternate who goes first
    slots = [f"bench_{i}" for i in range(len(runs))]
    for slot in slots:
        pg.psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    script = run / f"load_{size}.sql"
    script.write_text(
        "INSERT INTO outbox SELECT gen_random_uuid(), 'orders', gen_random_uuid()::text, "
        "'OrderCreated', jsonb_build_object('id', gen_random_uuid(), 'item', 'book', "
        f"'quantity', 2) FROM generate_series(1, {size});\n"
    )
    clients = 4 if txns >= 4 else 1
    subprocess.run(
        ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-c",
         str(clients), "-t", str(txns // clients), "-f", str(script), "orders"],
        check=True, capture_output=True,
    )
    n = (txns // clients) * clients * size
    end = pg.psql("SELECT pg_current_wal_lsn()")
    out = []
    for slot, (mode, extra) in zip(slots, runs):
        topic = f"tp{size}{slot}.${{aggregate_type}}"
        r = timed([str(RELAY), "--no-state-file", "--slot", slot, "--publication", "bench_pub",
                   "--topic-template", topic, "--end-lsn", end,
                   "--checkpoint-topic", f"ckpt.{size}.{slot}", *extra],
                  env={"DATABASE_URL": pg.url, "KAFKA_BROKERS": kafka.brokers})
        got = read_committed(kafka, topic.replace("${aggregate_type}", "orders"))
        r["stream"] = streaming_seconds(r["stderr"])
        out.append((size, mode, n, r, sum(got.values())))
        print(f"size {size} {mode}: {n} rows in {r['wall']:.2f} s ({n / r['wall']:.0f}/s), "
              f"streaming {r['stream']:.2f} s ({n / r['stream']:.0f}/s), "
              f"CPU {r['cpu']:.2f} s, {sum(got.values())} read_committed", flush=True)
        pg.psql(f"SELECT pg_drop_replication_slot('{slot}')")
    pg.psql("TRUNCATE outbox")
    return out


def streaming_seconds(log: str) -> float:
    """From the relay's "streaming slot" line to its "relay stopped" line:
    the relaying itself, without start-up (connect, init_transactions,
    checkpoint read)."""
    def at(pattern: str) -> float:
        m = re.search(r"^(\S+)Z \w+ " + pattern, log, re.M)
        if not m:
            raise RuntimeError(f"no /{pattern}/ in the relay's log")
        return datetime.fromisoformat(m.group(1)).timestamp()
    start = at("streaming slot")
    return at("relay stopped") - start


def start_relay(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    f = open(log, "ab")
    mark = log.stat().st_size
    p = subprocess.Popen([str(RELAY), *args], env={**os.environ, **env}, stdout=f, stderr=f,
                         stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with open(log, "rb") as r:
            r.seek(mark)
            if b"streaming slot" in r.read():
                return p
        if p.poll() is not None:
            raise RuntimeError(f"relay exited {p.returncode}; see {log}")
        time.sleep(0.05)
    raise RuntimeError(f"relay did not start streaming in 90 s; see {log}")


def crashes(pg: Postgres, kafka: Kafka, run: Path, mode: str, kills: int, rate: int) -> dict:
    db = f"kill_{mode.replace('-', '_')}"
    pg.psql(f'CREATE DATABASE "{db}"', dbname="postgres")
    url = pg.url_for(db)
    subprocess.run([str(REPO / "bin" / "orders-api"), "--migrate"],
                   env={**os.environ, "DATABASE_URL": url}, check=True, capture_output=True)
    topic = f"kill.{mode}"
    args = ["--slot", f"kill_{db}", "--publication", f"pub_{db}", "--topic-template", topic,
            "--state-file", str(run / f"{db}.state"), "--status-interval", "1",
            "--checkpoint-topic", f"ckpt.{db}"] + (EOS if mode == "exactly-once" else [])
    env = {"DATABASE_URL": url, "KAFKA_BROKERS": kafka.brokers}
    log = run / f"relay-{db}.log"
    log.touch()
    relay = start_relay(args, env, log)
    script = run / "one.sql"
    script.write_text("INSERT INTO outbox VALUES (gen_random_uuid(), 'orders', "
                      "gen_random_uuid()::text, 'OrderCreated', '{\"n\": 1}');\n")
    load = subprocess.Popen(
        ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-c", "2",
         "-R", str(rate), "-T", "3600", "-f", str(script), db],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = random.Random()
    t0 = time.monotonic()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.2, 2.5))
            relay.kill()
            relay.wait()
            relay = start_relay(args, env, log)
    finally:
        load.terminate()
        load.wait()
    elapsed = time.monotonic() - t0
    outbox = set(pg.psql("SELECT id FROM outbox", url=url).split())
    deadline = time.monotonic() + 300
    while True:
        got = read_committed(kafka, topic)
        if set(got) >= outbox or time.monotonic() > deadline:
            break
        time.sleep(1)
    time.sleep(2)
    got = read_committed(kafka, topic)
    relay.terminate()
    relay.wait(60)
    res = {
        "mode": mode, "rows": len(outbox), "seconds": elapsed,
        "duplicates": sum(n - 1 for n in got.values() if n > 1),
        "missing": len(outbox - set(got)),
        "rewinds": len(re.findall(r"rewinding", log.read_text(errors="replace"))),
    }
    print(f"{mode}: {kills} SIGKILLs in {elapsed:.0f} s, {res['rows']} outbox rows, "
          f"{res['duplicates']} duplicates, {res['missing']} missing (read_committed)", flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--sizes", default="1,100")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2, help="throughput runs per mode and size")
    ap.add_argument("--rate", type=int, default=300, help="inserts/s during the kills")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-crashes", action="store_true")
    args = ap.parse_args()
    run = Path(tempfile.mkdtemp(prefix="orders-cdc-bench-eos-"))
    os.chmod(run, 0o755)
    tp, kl = [], []
    with bench_servers(run) as (pg, kafka, _):
        if not args.skip_throughput:
            for size in [int(s) for s in args.sizes.split(",")]:
                tp += throughput(pg, kafka, run, args.rows, size, args.repeat)
        if not args.skip_crashes:
            for mode in ("default", "exactly-once"):
                kl.append(crashes(pg, kafka, run, mode, args.kills, args.rate))
    print(f"\nMachine: {machine_line()}. Command: `python3 {' '.join(sys.argv)}` "
          f"({time.strftime('%Y-%m-%d')}).\n")
    if tp:
        print("| rows per transaction | mode | rows | relay s (start to exit) | streaming s | "
              "rows/s streaming | relay CPU s | read_committed |")
        print("|---|---|---|---|---|---|---|---|")
        for size, mode, n, r, seen in tp:
            print(f"| {size} | {mode} | {n} | {r['wall']:.2f} | {r['stream']:.2f} | "
                  f"{n / r['stream']:.0f} | {r['cpu']:.2f} | {seen} |")
    if kl:
        print("\n| mode | SIGKILLs | outbox rows | duplicates | missing |")
        print("|---|---|---|---|---|")
        for k in kl:
            print(f"| {k['mode']} | {args.kills} | {k['rows']} | {k['duplicates']} | {k['missing']} |")
    print(f"(state and logs in {run})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
