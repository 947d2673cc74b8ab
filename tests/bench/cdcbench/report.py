"""Tables, plots and the generated sections of docs/benchmarks.md, from the
results tests/bench/bench.py collected (build/bench/results.json has the same data).

Generated sections sit between `<!-- bench:begin NAME -->` and
`<!-- bench:end NAME -->` lines; everything outside them is hand-written
and kept as it is.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

SECTIONS = ("machine", "catchup", "latency", "api")


def _cmd(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine(pg_version: str, kafka_version: str, debezium_version: str) -> dict:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = _cmd(["java", "-version"]).splitlines()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "postgres": pg_version,
        "kafka": kafka_version,
        "librdkafka": _cmd(["pkg-config", "--modversion", "rdkafka"]),
        "debezium": debezium_version,
        "java": java[0] if java else "?",
        "pgbench": _cmd(["pgbench", "--version"]),
        "wrk": _cmd(["wrk", "-v"]).splitlines()[0] if _cmd(["wrk", "-v"]) else "?",
        "load": open("/proc/loadavg").read().split()[:3],
    }


def _f(x, fmt="{:.0f}"):
    return "–" if x is None else fmt.format(x)


def catchup_table(res: dict) -> list[str]:
    rows = res["catchup"]
    limit = {(r["size"]): r["wall_s"] for r in rows if r["system"] == "pg_recvlogical" and "wall_s" in r}
    out = ["| rows per transaction | system | events | time s | events/s | of the pg_recvlogical limit "
           "| first→last event in Kafka s | events/s first→last | CPU s per 100k events | peak RSS MiB |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "wall_s" not in r:
            out.append(f"| {r['size']} | {r['system']} | {r['rows']} | {_short(r.get('error'))} | | | | | | |")
            continue
        n = r["rows"]
        share = f"{100 * limit[r['size']] / r['wall_s']:.0f}%" if r["size"] in limit else "–"
        out.append(
            f"| {r['size']} | {r['system']} | {n} | {r['wall_s']:.2f} | {n / r['wall_s']:.0f} | {share} "
            f"| {_f(r.get('stream_s'), '{:.2f}')} | {_f(n / r['stream_s'] if r.get('stream_s') else None)} "
            f"| {r['cpu_s'] / n * 1e5:.2f} | {r['rss_kib'] / 1024:.0f} |")
    return out


def latency_table(res: dict) -> list[str]:
    out = []
    if "latency_max_tps" in res:
        out.append(f"Saturating rate (pgbench, 8 clients, the api's insert, no reader): "
                   f"{res['latency_max_tps']:.0f} transactions/s.")
        out.append("")
    out += ["| system | load | target orders/s | achieved tps | events | commit→ack p50 / p99 / max ms "
            "| commit→receipt p50 / p99 / max ms | pgbench schedule lag max ms | RSS at steady state MiB |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in res["latency"]:
        if "ack" not in r:
            out.append(f"| {r['system']} | {_short(r.get('error'))} | | | | | | | |")
            continue
        a, c = r["ack"], r["receipt"]
        out.append(
            f"| {r['system']} | {r['pct']}% | {r['rate']} | {_f(r['achieved_tps'])} | {r['events']} "
            f"| {a['p50'] * 1e3:.1f} / {a['p99'] * 1e3:.1f} / {a['max'] * 1e3:.1f} "
            f"| {c['p50'] * 1e3:.1f} / {c['p99'] * 1e3:.1f} / {c['max'] * 1e3:.1f} | {_f(r['sched_lag_max_ms'], '{:.1f}')} "
            f"| {_f(r.get('rss_mib'), '{:.0f}')} |")
    return out


def latency_cpu_table(res: dict) -> list[str]:
    """Who used the two CPUs during each latency step (% of one CPU)."""
    rows = [r for r in res["latency"] if r.get("cpu_pct")]
    if not rows:
        return []
    out = ["CPU during each step, in % of one CPU (the machine has 2: 200% is all of it), "
           "from /proc between 1 s after the step's start and 1 s before its end:", "",
           "| system | load | machine busy | of which stolen by the hypervisor | system under test | broker "
           "| Postgres (all processes) | pgbench | consumer (kcat + reader) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["cpu_pct"]
        out.append(f"| {r['system']} | {r['pct']}% | {c['machine']:.0f} | {_f(c.get('steal'), '{:.1f}')} "
                   f"| {c['system']:.0f} | {c['broker']:.0f} "
                   f"| {c['postgres']:.0f} | {c['load']:.0f} | {c['consumer'] + c['bench']:.0f} |")
    return out


STAGE_COLUMNS = ("wal", "receive", "produce", "deliver", "total")


def latency_stage_table(res: dict) -> list[str]:
    """cdc-relay's own split of each transaction's commit -> last delivery report."""
    rows = [r for r in res["latency"] if r.get("stages")]
    if not rows:
        return []
    out = ["Where cdc-relay's time went, from its `cdc_relay_transaction_latency_seconds` histograms "
           "read before and after each step (p50 / p99 ms, interpolated within a bucket as "
           "`histogram_quantile` does; docs/observability.md): `wal` commit → the walsender sends it, "
           "`receive` → the relay reads it, `produce` → every event handed to librdkafka, "
           "`deliver` → the last delivery report handled; `total` is commit → that report "
           "(`cdc_relay_end_to_end_latency_seconds`). "
           "Percentiles of stages do not add up; the means do.", "",
           "| load | transactions | " + " | ".join(STAGE_COLUMNS) + " | mean of each stage ms |",
           "|---|---|" + "---|" * len(STAGE_COLUMNS) + "---|"]
    for r in rows:
        st = r["stages"]
        cells = []
        for name in STAGE_COLUMNS:
            q = st.get(name, {})
            cells.append(f"{_ms(q.get('p50'))} / {_ms(q.get('p99'))}")
        means = " + ".join(_ms(st[n].get("mean"), "{:.2f}") for n in STAGE_COLUMNS[:-1])
        out.append(f"| {r['pct']}% | {st['total']['count']:.0f} | " + " | ".join(cells)
                   + f" | {means} = {_ms(st['total'].get('mean'), '{:.2f}')} |")
    return out


def _ms(seconds: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if seconds is None else fmt.format(seconds * 1e3)


def api_cpu_table(res: dict) -> list[str]:
    """CPU microseconds per order on each side, from the same windows."""
    rows = [r for r in res["api"] if r.get("wrk_cpu_pct") and r.get("pgbench_cpu_pct")]
    if not rows:
        return []
    out = ["CPU per order in µs (CPU % during the run ÷ orders/s), from /proc between 1 s after "
           "each run's start and 1 s before its end:", "",
           "| connections | api: whole machine | orders-api | wrk | Postgres | pgbench: whole machine "
           "| pgbench | Postgres | best api / pgbench on this CPU |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        w, p = r["wrk_cpu_pct"], r["pgbench_cpu_pct"]
        rps, tps = r["wrk"]["rps"], r["pgbench"]["tps"]
        out.append(f"| {r['connections']} | {_us(w['machine'], rps)} | {_us(w['api'], rps)} "
                   f"| {_us(w['load'], rps)} | {_us(w['postgres'], rps)} | {_us(p['machine'], tps)} "
                   f"| {_us(p['load'], tps)} | {_us(p['postgres'], tps)} "
                   f"| {_bound(p['machine'] / tps, w['load'] / rps):.0f}% |")
    return out


def _us(cpu_pct: float, per_s: float) -> str:
    """% of one CPU at per_s orders/s, as µs of CPU per order."""
    return f"{cpu_pct * 1e4 / per_s:.0f}"


def _bound(pgbench_per_tx: float, wrk_per_req: float) -> float:
    """The api's best ratio to pgbench on a CPU-bound machine: an api costing
    no more CPU than pgbench's own client still adds wrk's CPU per order to
    everything pgbench's transaction costs."""
    return 100 * pgbench_per_tx / (pgbench_per_tx + wrk_per_req)


def api_table(res: dict) -> list[str]:
    out = ["| connections | orders-api req/s | api p50 / p99 ms | api non-2xx | pgbench tps | pgbench p50 / p99 ms "
           "| api / pgbench |", "|---|---|---|---|---|---|---|"]
    for r in res["api"]:
        if "pgbench" not in r:
            out.append(f"| {r['connections']} | {_short(r.get('error'))} | | | | | |")
            continue
        w, p = r["wrk"], r["pgbench"]
        out.append(f"| {r['connections']} | {w['rps']:.0f} | {_f(w['p50_ms'], '{:.1f}')} / {w['p99_ms']:.1f} "
                   f"| {w['non_2xx']} | {p['tps']:.0f} | {p['p50_ms']:.1f} / {p['p99_ms']:.1f} "
                   f"| {100 * w['rps'] / p['tps']:.0f}% |")
    return out


def _then(lines: list[str]) -> list[str]:
    """A following table, after a blank line, if there is one."""
    return [""] + lines if lines else []


def _short(err: str | None) -> str:
    if not err:
        return "failed"
    return "failed: " + err.splitlines()[0][:120].replace("|", "/")


def plots(res: dict, outdir: Path) -> list[str]:
    """PNG files written (names relative to docs/). Empty without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    outdir.mkdir(parents=True, exist_ok=True)
    made = []

    def save(fig, ax, name: str, title: str, xlabel: str, ylabel: str, **legend) -> None:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(**legend)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(outdir / name, dpi=100)
        plt.close(fig)
        made.append(name)

    ok = [r for r in res["catchup"] if "wall_s" in r]
    if ok:
        sizes = sorted({r["size"] for r in ok})
        systems = [s for s in ("pg_recvlogical", "cdc-relay", "poll", "debezium") if any(r["system"] == s for r in ok)]
        fig, ax = plt.subplots(figsize=(7, 4))
        w = 0.8 / max(1, len(systems))
        for i, s in enumerate(systems):
            ys = [next((r["rows"] / r["wall_s"] for r in ok if r["system"] == s and r["size"] == z), 0) for z in sizes]
            ax.bar([j + i * w for j in range(len(sizes))], ys, w, label=s)
        ax.set_xticks([j + w * (len(systems) - 1) / 2 for j in range(len(sizes))], [str(z) for z in sizes])
        save(fig, ax, "catchup.png", "Catch-up throughput", "rows per transaction", "events/s (catch-up)")
    lat = [r for r in res["latency"] if "ack" in r]
    if lat:
        fig, ax = plt.subplots(figsize=(10, 4))
        for s in sorted({r["system"] for r in lat}):
            rs = [r for r in lat if r["system"] == s]
            x = [r["pct"] for r in rs]
            for key, style in (("receipt", "-o"), ("ack", "--x")):
                ax.plot(x, [r[key]["p50"] * 1e3 for r in rs], style, label=f"{s} commit→{key} p50")
                ax.plot(x, [r[key]["p99"] * 1e3 for r in rs], style, alpha=0.5, label=f"{s} commit→{key} p99")
        ax.set_yscale("log")
        save(fig, ax, "latency.png", "End-to-end latency under steady load", "load, % of the saturating rate",
             "ms (log scale)", fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    api = [r for r in res["api"] if "pgbench" in r]
    if api:
        fig, ax = plt.subplots(figsize=(7, 4))
        x = [r["connections"] for r in api]
        ax.plot(x, [r["wrk"]["rps"] for r in api], "-o", label="orders-api (wrk) req/s")
        ax.plot(x, [r["pgbench"]["tps"] for r in api], "-o", label="pgbench, same statement, tps")
        ax.set_xscale("log", base=2)
        save(fig, ax, "api.png", "orders-api against pgbench", "connections", "per second")
    return made


def sections(res: dict, m: dict, command: str, pngs: list[str], date: str) -> dict[str, str]:
    s = {}
    s["machine"] = "\n".join([
        f"Run {date} with `{command}`.",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gib']} GiB; {m['kernel']}; "
        f"load average at the start {' '.join(m['load'])}",
        f"- PostgreSQL {m['postgres']}; Apache Kafka {m['kafka']} (KRaft, one broker, "
        f"`log.message.timestamp.type=LogAppendTime`); librdkafka {m['librdkafka']}; "
        f"Debezium {m['debezium']} on Kafka Connect {m['kafka']} standalone; {m['java']}",
        f"- {m['pgbench']}; {m['wrk']}",
        "",
        "<details><summary>Every command the run started (paths relative to the repository; "
        "$RUN is the run directory)</summary>",
        "",
        "```sh",
        *res.get("commands", []),
        "```",
        "",
        "</details>",
    ])
    img = lambda name, alt: f"\n\n![{alt}](bench/{name})" if name in pngs else ""  # noqa: E731
    s["catchup"] = "\n".join(catchup_table(res)) + img("catchup.png", "catch-up events/s")
    s["latency"] = "\n".join(latency_table(res) + _then(latency_cpu_table(res))
                              + _then(latency_stage_table(res))) + img(
        "latency.png", "latency percentiles")
    s["api"] = "\n".join(api_table(res) + _then(api_cpu_table(res))) + img("api.png", "api against pgbench")
    if res["errors"]:
        s["catchup"] += "\n\nFailures in this run: " + "; ".join(e.splitlines()[0][:200] for e in res["errors"])
    return s


def update_doc(path: Path, gen: dict[str, str], parts: list[str]) -> None:
    """Replace the generated sections of the parts that ran; keep the rest."""
    text = path.read_text()
    for name, body in gen.items():
        if name != "machine" and name not in parts:
            continue
        rx = re.compile(rf"(<!-- bench:begin {name} -->\n).*?(<!-- bench:end {name} -->)", re.S)
        if not rx.search(text):
            raise SystemExit(f"{path} has no '<!-- bench:begin {name} -->' section")
        text = rx.sub(lambda mt: mt.group(1) + body + "\n" + mt.group(2), text)
    path.write_text(text)
