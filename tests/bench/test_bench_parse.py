"""The parts of make bench that run without servers: reading wrk's and
pgbench's output, kcat's header lines, commit_ts, percentiles, and rewriting
only the generated sections of a Markdown page.

    python3 -m pytest tests/bench/test_bench_parse.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402
from cdcbench import loads, report, servers, systems  # noqa: E402

WRK_OUT = """Running 5s test @ http://127.0.0.1:40000/orders
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.01ms   20.11ms 230.20ms   91.00%
    Req/Sec   336.50     80.12   500.00     70.00%
  Latency Distribution
     50%   45.40ms
     75%   60.00ms
     90%  100.00ms
     99%    1.25s
  3351 requests in 5.01s, 1.20MB read
  Non-2xx or 3xx responses: 7
Requests/sec:    669.12
Transfer/sec:    245.00KB
"""


def test_wrk_percentiles_in_any_unit():
    w = loads.parse_wrk(WRK_OUT)
    assert w["rps"] == pytest.approx(669.12)
    assert w["p50_ms"] == pytest.approx(45.4)
    assert w["p99_ms"] == pytest.approx(1250.0)  # "1.25s"
    assert w["requests"] == 3351
    assert w["non_2xx"] == 7


def test_wrk_without_latency_is_an_error():
    with pytest.raises(servers.BenchError):
        loads.parse_wrk("Requests/sec: 10.0\n")


def test_pgbench_tps_and_log_percentiles(tmp_path):
    # pgbench -l: client_id transaction_no time(us) script_no epoch epoch_us
    lines = [f"0 {i} {1000 * (i + 1)} 0 1795744254 {i}" for i in range(100)]
    (tmp_path / "pgb.123").write_text("\n".join(lines) + "\n")
    out = "tps = 1234.5 (without initial connection time)\nnumber of failed transactions: 0 (0.000%)\n"
    p = loads.parse_pgbench(out, tmp_path, "pgb")
    assert p["tps"] == pytest.approx(1234.5)
    assert p["transactions"] == 100
    assert p["p50_ms"] == pytest.approx(51.0)
    assert p["p99_ms"] == pytest.approx(100.0)
    assert not list(tmp_path.glob("pgb.*")), "the per-transaction log is removed after reading"


def test_kcat_headers_and_commit_ts():
    h = loads.headers("id=7f0c,event_type=OrderCreated,lsn=0/1A2B,commit_ts=2026-11-27T01:02:03.250000Z")
    assert h["id"] == "7f0c" and h["lsn"] == "0/1A2B"
    assert loads.parse_ts(h["commit_ts"]) == pytest.approx(1795741323.25)
    with pytest.raises(servers.BenchError):
        loads.parse_ts("yesterday")


def test_percentiles():
    p = loads.pcts([float(x) for x in range(1, 101)])
    assert (p["p50"], p["p99"], p["max"]) == (51.0, 100.0, 100.0)
    with pytest.raises(servers.BenchError):
        loads.pcts([])


def test_catchup_share_is_against_pg_recvlogical_of_the_same_size():
    res = {"catchup": [
        {"system": "pg_recvlogical", "size": 1, "rows": 1000, "wall_s": 1.0, "cpu_s": 0.1, "rss_kib": 1024},
        {"system": "cdc-relay", "size": 1, "rows": 1000, "wall_s": 4.0, "stream_s": 2.0, "cpu_s": 0.2,
         "rss_kib": 2048},
        {"system": "poll", "size": 1, "rows": 1000, "error": "not available in this build"},
    ]}
    table = report.catchup_table(res)
    relay = next(r for r in table if "| cdc-relay |" in r)
    assert "| 25% |" in relay and "| 250 |" in relay and "| 500 |" in relay
    assert any("not available in this build" in r for r in table)


def test_update_doc_rewrites_only_generated_sections(tmp_path):
    doc = tmp_path / "b.md"
    doc.write_text("hand 1\n<!-- bench:begin api -->\nold\n<!-- bench:end api -->\nhand 2\n"
                   "<!-- bench:begin machine -->\n<!-- bench:end machine -->\n")
    report.update_doc(doc, {"machine": "M", "api": "NEW", "catchup": "C"}, ["api"])
    text = doc.read_text()
    assert "hand 1\n" in text and "hand 2\n" in text and "old" not in text
    assert "<!-- bench:begin api -->\nNEW\n<!-- bench:end api -->" in text
    assert "<!-- bench:begin machine -->\nM\n" in text
    with pytest.raises(SystemExit):
        report.update_doc(doc, {"catchup": "C"}, ["catchup"])  # no such section


def test_api_cpu_is_microseconds_per_order():
    # 150% of one CPU at 7,500 orders/s is 200 µs per order; 25% at 10,000/s is 25 µs
    res = {"api": [
        {"connections": 8, "wrk": {"rps": 7500.0}, "pgbench": {"tps": 10000.0},
         "wrk_cpu_pct": {"machine": 150.0, "api": 30.0, "load": 15.0, "postgres": 97.5, "broker": 0.0},
         "pgbench_cpu_pct": {"machine": 190.0, "load": 25.0, "postgres": 160.0, "broker": 0.0}},
        {"connections": 32, "error": "wrk failed"},
    ]}
    table = report.api_cpu_table(res)
    # bound: 190 µs per transaction / (190 + 20 µs of wrk per order) = 90%
    assert "| 8 | 200 | 40 | 20 | 130 | 190 | 25 | 160 | 90% |" in table
    assert not any(r.startswith("| 32 ") for r in table)
    assert report.api_cpu_table({"api": [{"connections": 8, "error": "x"}]}) == []


def test_latency_cpu_table_adds_consumer_and_reader():
    res = {"latency": [{"system": "cdc-relay", "pct": 50, "cpu_pct": {
        "machine": 180.0, "system": 30.0, "broker": 55.0, "postgres": 75.0, "load": 9.0,
        "consumer": 5.0, "bench": 2.4}}, {"system": "debezium", "error": "x"}]}
    table = report.latency_cpu_table(res)
    assert "| cdc-relay | 50% | 180 | – | 30 | 55 | 75 | 9 | 7 |" in table  # a run from before steal was read
    res["latency"][0]["cpu_pct"]["steal"] = 12.34
    assert "| cdc-relay | 50% | 180 | 12.3 | 30 | 55 | 75 | 9 | 7 |" in report.latency_cpu_table(res)
    assert len([r for r in table if r.startswith("| cdc-relay")]) == 1


def test_cpu_seconds_by_role_counts_this_process():
    snap = servers.cpu_seconds_by_role({servers.os.getpid(): "me"})
    assert snap["me"] > 0 and snap["machine"] > 0
    assert {"broker", "postgres", "load", "steal", "_wall"} <= set(snap)


def _stage_metrics(counts: dict[str, list[int]], sums: dict[str, float]) -> str:
    """cdc-relay's histogram families as it renders them, with made-up buckets:
    the stages, then the end-to-end total as its own family."""
    les = ["0.001", "0.005", "0.01", "0.05", "+Inf"]
    lines = ["# HELP cdc_relay_transaction_latency_seconds x",
             "# TYPE cdc_relay_transaction_latency_seconds histogram"]
    for st in systems.STAGES:
        name, lab = "cdc_relay_transaction_latency_seconds", f'stage="{st}",'
        if st == "total":
            name, lab = "cdc_relay_end_to_end_latency_seconds", ""
            lines += [f"# HELP {name} x", f"# TYPE {name} histogram"]
        cum = 0
        for le, n in zip(les, counts.get(st, [0] * 5)):
            cum += n
            lines.append(f'{name}_bucket{{{lab}le="{le}"}} {cum}')
        braces = f"{{{lab.rstrip(',')}}}" if lab else ""
        lines.append(f'{name}_sum{braces} {sums.get(st, 0):.6f}')
        lines.append(f'{name}_count{braces} {cum}')
    return "\n".join(lines) + "\ncdc_relay_ready 1\n"


def test_stage_quantiles_are_of_the_step_only():
    before = _stage_metrics({"deliver": [0, 0, 0, 0, 1000]}, {"deliver": 500.0})  # an earlier slow step
    after = _stage_metrics({"deliver": [0, 100, 0, 0, 1000], "total": [0, 50, 50, 0, 0]},
                           {"deliver": 500.3, "total": 0.75})
    q = systems.stage_quantiles(before, after)
    d = q["deliver"]
    assert d["count"] == 100 and abs(d["mean"] - 0.003) < 1e-9
    # all 100 in (1 ms, 5 ms]: the median interpolates to the middle, p99 near the top
    assert abs(d["p50"] - 0.003) < 1e-9 and abs(d["p99"] - 0.00496) < 1e-9
    t = q["total"]
    assert abs(t["p50"] - 0.005) < 1e-9 and abs(t["p99"] - 0.0099) < 1e-9
    assert q["wal"]["count"] == 0 and q["wal"]["p99"] is None and q["wal"]["mean"] is None


def test_histogram_quantile_in_the_inf_bucket_answers_the_last_bound():
    assert systems.histogram_quantile(0.99, [(0.01, 10), (0.05, 20), (float("inf"), 100)]) == 0.05
    assert systems.histogram_quantile(0.5, [(0.01, 0), (float("inf"), 0)]) is None


def test_latency_stage_table():
    stages = {st: {"count": 100, "p50": 0.001, "p99": 0.004, "mean": 0.002} for st in systems.STAGES}
    stages["total"] = {"count": 100, "p50": 0.004, "p99": 0.030, "mean": 0.008}
    res = {"latency": [{"system": "cdc-relay", "pct": 50, "stages": stages},
                       {"system": "debezium", "pct": 50, "stages": None}]}
    table = report.latency_stage_table(res)
    assert "| 50% | 100 | 1.0 / 4.0 | 1.0 / 4.0 | 1.0 / 4.0 | 1.0 / 4.0 | 4.0 / 30.0 " \
           "| 2.00 + 2.00 + 2.00 + 2.00 = 8.00 |" in table
    assert len([r for r in table if r.startswith("| 50%")]) == 1
    assert report.latency_stage_table({"latency": [{"system": "debezium", "error": "x"}]}) == []


def test_machine_line_names_the_broker_and_librdkafka():
    m = {"cpu": "x", "cores": 2, "ram_gib": 1, "kernel": "k", "load": ["1", "2", "3"], "postgres": "15",
         "kafka": "4.1.1", "librdkafka": "2.0.2", "debezium": "3.6.1", "java": "j", "pgbench": "p", "wrk": "w"}
    res = {"catchup": [], "latency": [], "api": [], "errors": [], "commands": ["bin/cdc-relay --x"]}
    text = report.sections(res, m, "make bench", [], "now")["machine"]
    assert "one broker, `log.message.timestamp.type=LogAppendTime`); librdkafka 2.0.2" in text
    assert "bin/cdc-relay --x" in text


def test_quick_defaults_and_bad_arguments():
    a = bench.parse_args(["--quick"])
    assert (a.rows, a.latency_seconds, a.api_seconds, a.warmup_seconds) == (50_000, 10, 5, 10)
    assert a.systems == systems.SYSTEMS and a.parts == bench.PARTS
    for bad in (["--systems", "kafka-connect"], ["--parts", "soak"], ["--rows", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_outbox_rows_sql_writes_size_rows_per_transaction():
    sql = loads.outbox_rows_sql(100)
    assert sql.startswith("INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)")
    assert "generate_series(1, 100)" in sql and sql.count(";") == 1
