"""The loads: outbox rows committed with pgbench (the catch-up backlog, the
api's own statement at a fixed rate or flat out), wrk against orders-api,
and reading what those tools and the events report."""

from __future__ import annotations

import calendar
import re
import statistics
from pathlib import Path

from .servers import REPO, BenchError, Run, run

ORDER_SQL = REPO / "tests" / "bench" / "order.sql"  # the api's insert, for pgbench
POST_LUA = REPO / "tests" / "bench" / "post.lua"  # wrk's POST /orders


def outbox_rows_sql(size: int) -> str:
    """One transaction of size outbox rows, as the api writes them."""
    return (
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) "
        "SELECT gen_random_uuid(), 'orders', gen_random_uuid()::text, 'OrderCreated', "
        "jsonb_build_object('id', gen_random_uuid(), 'item', 'book', 'quantity', 2, "
        f"'status', 'created', 'created_at', now()) FROM generate_series(1, {size});\n"
    )


def pgbench(r: Run, script: Path, *args: str, timeout: float, env: dict | None = None) -> str:
    cmd = ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(r.pg.port), "-U", "postgres", "-f", str(script),
           *args, "orders"]
    r.note_cmd(cmd, env)
    return run(cmd, timeout, env=env, what="pgbench")


def commit_backlog(r: Run, tag: str, size: int, rows: int, clients: int) -> str:
    """Commits rows outbox rows in transactions of size from clients pgbench
    clients; returns the end position every reader can reach."""
    script = r.dir / f"load_{tag}.sql"
    script.write_text(outbox_rows_sql(size))
    # synchronous_commit=off for the load only: the same WAL, written faster
    pgbench(r, script, "-c", str(clients), "-j", str(min(clients, 2)), "-t", str(rows // size // clients),
            timeout=3600, env={"PGOPTIONS": "-c synchronous_commit=off"})
    # The insert position: with asynchronous commit the last commits may not
    # be written yet (pg_current_wal_lsn); a synchronous commit after them
    # flushes them, so every reader can reach the end position.
    end = r.psql("SELECT pg_current_wal_insert_lsn()")
    r.psql("SELECT txid_current()")
    return end


def saturation(r: Run, secs: int) -> float:
    """Single-order transactions per second Postgres sustains, nothing reading."""
    out = pgbench(r, ORDER_SQL, "-M", "prepared", "-c", "8", "-j", "2", "-T", str(secs), timeout=secs + 120)
    m = re.search(r"tps = ([\d.]+)", out)
    if not m:
        raise BenchError(f"no tps in pgbench output:\n{out}")
    return float(m.group(1))


def parse_ts(text: str) -> float:
    """2026-11-27T01:02:03.123456Z -> epoch seconds."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", text)
    if not m:
        raise BenchError(f"bad commit_ts header {text!r}")
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac


def headers(h: str) -> dict[str, str]:
    """kcat's %h: k=v,k=v."""
    out = {}
    for kv in h.split(","):
        if "=" in kv:
            k, v = kv.split("=", 1)
            out[k] = v
    return out


def pcts(xs: list[float]) -> dict:
    if not xs:
        raise BenchError("no events measured")
    s = sorted(xs)
    q = lambda p: s[min(len(s) - 1, int(p * len(s)))]  # noqa: E731
    return {"p50": q(0.50), "p99": q(0.99), "max": s[-1], "mean": statistics.fmean(s)}


def parse_wrk(out: str) -> dict:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
    p = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if m:
            p[pct] = float(m.group(1)) * unit[m.group(2)]
    reqs = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    if not rps or "99" not in p:
        raise BenchError(f"cannot read wrk's output:\n{out}")
    return {"rps": float(rps.group(1)), "p50_ms": p.get("50"), "p99_ms": p["99"],
            "requests": int(reqs.group(1)) if reqs else None,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errs.group(1) if errs else ""}


def parse_pgbench(out: str, d: Path, prefix: str) -> dict:
    tps = re.search(r"tps = ([\d.]+)", out)
    if not tps:
        raise BenchError(f"no tps in pgbench output:\n{out}")
    lat = []
    for f in d.glob(prefix + ".*"):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                lat.append(int(parts[2]) / 1000)  # µs -> ms
        f.unlink()
    if not lat:
        raise BenchError("pgbench wrote no transaction log")
    lat.sort()
    failed = re.search(r"number of failed transactions: (\d+)", out)
    return {"tps": float(tps.group(1)), "p50_ms": lat[len(lat) // 2],
            "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))], "transactions": len(lat),
            "failed": int(failed.group(1)) if failed else 0}
