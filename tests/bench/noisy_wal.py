#!/usr/bin/env python3
"""WAL retained by the relay's slot when the outbox is idle but the cluster is busy.

Not part of `make test`. Starts its own Postgres and Kafka on loopback
(tests/harness/*.sh), two databases each with the schema and one relay:
  quiet  relay without --heartbeat-interval
  beat   relay with --heartbeat-interval (default 5 s)
No outbox row is ever written. For --minutes, writer sessions update a
`noise` table in both databases and in a third database (`other`), and every
--sample seconds the script reads, per relay slot,
  retained  = pg_current_wal_lsn() - restart_lsn          (WAL the slot pins)
  unconf    = pg_current_wal_lsn() - confirmed_flush_lsn  (not yet confirmed)
and prints the max and final figures. Each relay's heartbeat writes WAL only
into its own database, so the two relays do not help each other.

  BIN_DIR=bin python3 tests/bench/noisy_wal.py [--minutes 10] [--sample 5]
      [--heartbeat 5] [--writers 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from harness import Kafka, Postgres, Proc, _psql_bin, run_bin, unique_name  # noqa: E402


def noise_sql(deadline_epoch: float) -> list[str]:
    # One transaction per loop turn (COMMIT inside DO, so each statement goes
    # in its own -c), ~100 row updates each: steady WAL, bounded table size.
    return [
        "CREATE TABLE IF NOT EXISTS noise (id int PRIMARY KEY, v text, n bigint)",
        "INSERT INTO noise SELECT g, repeat('x', 200), 0 FROM generate_series(1, 5000) g"
        " ON CONFLICT DO NOTHING",
        f"""DO $$
DECLARE i bigint := 0;
BEGIN
  WHILE extract(epoch FROM clock_timestamp()) < {deadline_epoch} LOOP
    UPDATE noise SET n = n + 1, v = md5(random()::text) || repeat('y', 150)
      WHERE id BETWEEN (i * 100) % 5000 + 1 AND (i * 100) % 5000 + 100;
    COMMIT;
    i := i + 1;
    IF i % 5 = 0 THEN PERFORM pg_sleep(0.02); END IF;
  END LOOP;
END $$""",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the noisy phase")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--heartbeat", type=float, default=5.0, help="--heartbeat-interval of 'beat'")
    ap.add_argument("--writers", type=int, default=2, help="writer sessions per database")
    args = ap.parse_args()

    run = Path(tempfile.mkdtemp(prefix="orders-cdc-noisy-", dir="/tmp"))
    os.chmod(run, 0o755)
    pg = Postgres(run / "pg")
    kafka = Kafka(run / "kafka")
    procs: list[Proc] = []
    writers: list[subprocess.Popen] = []
    try:
        pg.start()
        kafka.start()
        urls = {}
        for name in ("quiet", "beat", "other"):
            urls[name] = pg.new_database(unique_name(name))
        slots = {}
        for name in ("quiet", "beat"):
            r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": urls[name]}, timeout=120)
            if r.returncode != 0:
                raise SystemExit(f"migrate failed: {r.stderr}")
            slots[name] = unique_name(name)
            extra = ["--heartbeat-interval", str(args.heartbeat)] if name == "beat" else []
            p = Proc(
                "cdc-relay",
                "--slot", slots[name],
                "--publication", unique_name("pub"),
                "--state-file", str(run / f"{name}.state"),
                *extra,
                env={"DATABASE_URL": urls[name], "KAFKA_BROKERS": kafka.brokers},
                log_path=run / f"relay-{name}.log",
            )
            p.start()
            p.wait_for_log(r"streaming slot", 60)
            procs.append(p)

        deadline = time.time() + args.minutes * 60
        for name in ("quiet", "beat", "other"):
            for _ in range(args.writers):
                writers.append(
                    subprocess.Popen(
                        [_psql_bin(), "-X", "-q", "-d", urls[name]]
                        + [a for sql in noise_sql(deadline) for a in ("-c", sql)],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                )
                time.sleep(0.5)  # the first one creates the table

        q = (
            "SELECT slot_name, pg_current_wal_lsn() - restart_lsn,"
            " pg_current_wal_lsn() - confirmed_flush_lsn, pg_current_wal_lsn() - '0/0'"
            " FROM pg_replication_slots ORDER BY slot_name"
        )
        stats = {s: {"max_ret": 0, "max_unc": 0, "ret": 0, "unc": 0} for s in slots.values()}
        wal0 = None
        wal = 0
        n = 0
        print(f"noisy_wal: {args.minutes} min, {3 * args.writers} writer sessions, sample "
              f"every {args.sample} s; run dir {run}", flush=True)
        while time.time() < deadline:
            time.sleep(args.sample)
            for line in pg.psql(q, dbname="postgres").splitlines():
                slot, ret, unc, wal_s = line.split("|")
                wal = int(wal_s)
                wal0 = wal if wal0 is None else wal0
                if slot in stats:
                    st = stats[slot]
                    st["ret"], st["unc"] = int(ret), int(unc)
                    st["max_ret"] = max(st["max_ret"], st["ret"])
                    st["max_unc"] = max(st["max_unc"], st["unc"])
            n += 1
            for p in procs:
                if not p.alive:
                    raise SystemExit(f"relay exited {p.returncode}: {p.log_tail()}")
        for w in writers:
            w.wait(120)
            if w.returncode != 0:
                raise SystemExit(f"writer failed: {w.stderr.read().decode()}")
        mib = 1024 * 1024
        elapsed = args.minutes * 60
        print(f"WAL written during the run: {(wal - wal0) / mib:.0f} MiB "
              f"({(wal - wal0) / mib / elapsed * 60:.1f} MiB/min), {n} samples")
        print(f"{'relay':<34} {'max retained':>13} {'final retained':>15} "
              f"{'max unconfirmed':>16} {'final unconfirmed':>18}")
        for name, slot in slots.items():
            st = stats[slot]
            label = name if name == "quiet" else f"beat (--heartbeat-interval {args.heartbeat})"
            print(f"{label:<34} {st['max_ret'] / mib:>10.1f} MiB {st['ret'] / mib:>11.1f} MiB "
                  f"{st['max_unc'] / mib:>12.1f} MiB {st['unc'] / mib:>14.1f} MiB")
        return 0
    finally:
        for w in writers:
            if w.poll() is None:
                w.terminate()
        for p in procs:
            p.terminate()
        try:
            kafka.stop()
        except Exception as e:  # noqa: BLE001
            print(f"kafka stop: {e}")
        try:
            pg.stop("fast")
        except Exception as e:  # noqa: BLE001
            print(f"pg stop: {e}")


if __name__ == "__main__":
    sys.exit(main())
