"""The systems under test and how each is started and measured:
pg_recvlogical (the physical limit: pgoutput to /dev/null), cdc-relay,
Debezium (Kafka Connect standalone with the outbox EventRouter) and
cdc-relay --mode poll; and cdc-relay's own stage histograms from /metrics."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from .loads import ORDER_SQL, headers, parse_ts, pcts, pgbench
from .servers import (CACHE, PARTITIONS, PG_BIN, BenchError, Consumer, CpuWindow, Run, log, proc_usage,
                      rss_now, stop, tail, topic_ends, topic_first_ms, wait_log, wait_topic, wait_usage)

# Run in this order: poll last, because its UPDATEs of published_at are WAL
# that the others' walsenders would otherwise have to decode through.
SYSTEMS = ["pg_recvlogical", "cdc-relay", "debezium", "poll"]
TOPIC_TAG = {"cdc-relay": "relay", "debezium": "dbz", "poll": "poll"}
DEBEZIUM_VERSION = "3.6.1.Final"
DEBEZIUM_LIBS = CACHE / f"debezium-{DEBEZIUM_VERSION}" / "libs"


def relay_help(r: Run) -> str:
    try:
        return subprocess.run([str(r.bin / "cdc-relay"), "--help"], capture_output=True,
                              text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def available(r: Run, system: str) -> str | None:
    """None when the system can run here, else why not."""
    if system == "poll" and not re.search(r"--mode\b[^\n]*\n?[^\n]*\bpoll\b", relay_help(r)):
        return "not available in this build (cdc-relay --help has no --mode poll)"
    if system == "debezium" and not (DEBEZIUM_LIBS / f"debezium-connector-postgres-{DEBEZIUM_VERSION}.jar").exists():
        return f"jars missing in {DEBEZIUM_LIBS} (run tests/bench/setup.sh)"
    return None


def relay_cmd(r: Run, slot: str, template: str, *extra: str) -> list[str]:
    return [str(r.bin / "cdc-relay"), "--no-state-file", "--slot", slot, "--publication", "bench_pub",
            "--topic-template", template, *extra]


def relay_env(r: Run) -> dict:
    return {"DATABASE_URL": r.pg.url, "KAFKA_BROKERS": r.kafka.brokers}


def debezium_cmd(r: Run, tag: str, slot: str, topic_prefix: str) -> tuple[list[str], Path]:
    d = r.dir / f"debezium-{tag}"
    d.mkdir(exist_ok=True)
    (d / "worker.properties").write_text(
        f"bootstrap.servers={r.kafka.brokers}\n"
        "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
        "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
        f"offset.storage.file.filename={d}/offsets\n"
        "offset.flush.interval.ms=1000\n"
        "producer.acks=all\n"
        "producer.enable.idempotence=true\n"
        "listeners=http://127.0.0.1:0\n"
        # every plugin has a ServiceLoader manifest: skips a reflection scan
        # of the whole classpath (~20 s here) at start-up
        "plugin.discovery=service_load\n")
    (d / "connector.properties").write_text(
        "name=bench-debezium\n"
        "connector.class=io.debezium.connector.postgresql.PostgresConnector\n"
        "tasks.max=1\n"
        f"database.hostname=127.0.0.1\ndatabase.port={r.pg.port}\n"
        "database.user=postgres\ndatabase.password=unused\ndatabase.dbname=orders\n"
        "topic.prefix=bench\n"
        "plugin.name=pgoutput\n"
        f"slot.name={slot}\n"
        "publication.name=bench_dbz_pub\n"
        "publication.autocreate.mode=disabled\n"
        "table.include.list=public.outbox\n"
        "snapshot.mode=no_data\n"
        "tombstones.on.delete=false\n"
        "transforms=outbox\n"
        "transforms.outbox.type=io.debezium.transforms.outbox.EventRouter\n"
        "transforms.outbox.route.by.field=aggregate_type\n"
        f"transforms.outbox.route.topic.replacement={topic_prefix}${{routedByValue}}.events\n"
        "transforms.outbox.table.field.event.key=aggregate_id\n"
        + (f"poll.interval.ms={r.a.debezium_poll_ms}\n" if r.a.debezium_poll_ms else ""))
    (d / "log4j2.properties").write_text(
        "status = warn\nappender.out.type = Console\nappender.out.name = OUT\n"
        "appender.out.target = SYSTEM_OUT\nappender.out.layout.type = PatternLayout\n"
        "appender.out.layout.pattern = [%d] %p %m (%c)%n\nrootLogger.level = INFO\n"
        "rootLogger.appenderRef.out.ref = OUT\n")
    cmd = ["java", "-Xmx1g", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
           f"-Dlog4j2.configurationFile={d}/log4j2.properties", "-cp", f"{DEBEZIUM_LIBS}/*",
           "org.apache.kafka.connect.cli.ConnectStandalone", str(d / "worker.properties"),
           str(d / "connector.properties")]
    return cmd, d


# ---------------------------------------------------------------------------
# catch-up: each system drains its own slot (or the table) to the end
# ---------------------------------------------------------------------------
def _appended(r: Run, topic: str, newest_ms: int, t0: float) -> dict:
    """Wall time to the last append, and first -> last append, of topic."""
    first = topic_first_ms(r.kafka.brokers, topic)
    return {"wall_s": newest_ms / 1000 - t0, "stream_s": (newest_ms - first) / 1000}


def catchup_pg_recvlogical(r: Run, size: int, n: int, slot: str, end: str) -> dict:
    cmd = [str(PG_BIN / "pg_recvlogical"), "-d", r.pg.url, "--slot", slot, "--start", "-o",
           "proto_version=1", "-o", "publication_names=bench_pub", "-E", end, "-f", "/dev/null"]
    t0 = time.time()
    p, logpath = r.spawn("pg_recvlogical", cmd)
    rc, cpu, rss = wait_usage(p, r.timeout(n))
    wall = time.time() - t0
    if rc != 0:
        raise BenchError(f"pg_recvlogical exited {rc}:\n{tail(logpath)}")
    return {"wall_s": wall, "cpu_s": cpu, "rss_kib": rss, "done": "exit at end LSN"}


def catchup_cdc_relay(r: Run, size: int, n: int, slot: str, end: str) -> dict:
    topic = f"catchup{size}.relay.orders.events"
    cmd = relay_cmd(r, slot, f"catchup{size}.relay.${{aggregate_type}}.events", "--end-lsn", end)
    t0 = time.time()
    p, logpath = r.spawn("cdc-relay", cmd, env=relay_env(r))
    rc, cpu, rss = wait_usage(p, r.timeout(n))
    exit_s = time.time() - t0
    if rc != 0:
        raise BenchError(f"cdc-relay exited {rc}:\n{tail(logpath)}")
    have, newest = topic_ends(r.kafka.brokers, topic)
    if have < n:
        raise BenchError(f"cdc-relay exited 0 but {topic} holds {have}/{n} events")
    return {**_appended(r, topic, newest, t0), "exit_s": exit_s, "cpu_s": cpu, "rss_kib": rss, "in_topic": have,
            "done": "last event appended (LogAppendTime); exit_s: exited after confirming the end LSN"}


def catchup_debezium(r: Run, size: int, n: int, slot: str, end: str) -> dict:
    topic = f"catchup{size}.dbz.orders.events"
    cmd, d = debezium_cmd(r, f"catchup{size}", slot, f"catchup{size}.dbz.")
    t0 = time.time()
    p, logpath = r.spawn(f"debezium-catchup{size}", cmd, cwd=d)
    try:
        newest = wait_topic(r.kafka.brokers, topic, n, r.timeout(n) + 60, p, logpath)
        cpu, rss = proc_usage(p.pid)
    finally:
        stop(p, 30)
    have, _ = topic_ends(r.kafka.brokers, topic)
    return {**_appended(r, topic, newest, t0), "cpu_s": cpu, "rss_kib": rss, "in_topic": have,
            "done": "last event appended (LogAppendTime); CPU/RSS of the JVM at that point"}


def catchup_poll(r: Run, size: int, n: int, slot: str | None, end: str) -> dict:
    """cdc-relay --mode poll with its defaults (batch, interval). With
    --until-empty it exits once every row is published, like --end-lsn."""
    topic = f"catchup{size}.poll.orders.events"
    until_empty = "--until-empty" in relay_help(r)
    # The partial index a poll-mode deployment creates (docs/relay.md,
    # "Polling mode"); built before the clock starts, dropped after, so the
    # other systems' inserts never pay for it.
    r.psql("CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON outbox (created_at, id) "
           "WHERE published_at IS NULL")
    cmd = [str(r.bin / "cdc-relay"), "--mode", "poll", "--topic-template",
           f"catchup{size}.poll.${{aggregate_type}}.events"] + (["--until-empty"] if until_empty else [])
    t0 = time.time()
    p, logpath = r.spawn("cdc-relay-poll", cmd, env=relay_env(r))
    try:
        if until_empty:
            rc, cpu, rss = wait_usage(p, r.timeout(n))
            if rc != 0:
                raise BenchError(f"cdc-relay --mode poll exited {rc}:\n{tail(logpath)}")
            have, newest = topic_ends(r.kafka.brokers, topic)
            if have < n:
                raise BenchError(f"cdc-relay --mode poll exited 0 but {topic} holds {have}/{n} events")
        else:
            newest = wait_topic(r.kafka.brokers, topic, n, r.timeout(n), p, logpath)
            cpu, rss = proc_usage(p.pid)
    finally:
        stop(p, 30)
        r.psql("DROP INDEX IF EXISTS outbox_unpublished_idx")
    return {**_appended(r, topic, newest, t0), "exit_s": time.time() - t0 if until_empty else None,
            "cpu_s": cpu, "rss_kib": rss, "done": "last event appended (LogAppendTime)"}


CATCHUP = {"pg_recvlogical": catchup_pg_recvlogical, "cdc-relay": catchup_cdc_relay,
           "debezium": catchup_debezium, "poll": catchup_poll}


# ---------------------------------------------------------------------------
# latency: open-loop steps of the api's insert, each event timed
# ---------------------------------------------------------------------------
def latency_system(r: Run, system: str, max_tps: float) -> None:
    slot = f"bench_lat_{system.replace('-', '_')}"
    # every system starts from the same empty tables, not from the rows of
    # the saturating run and of the systems before it
    r.psql("TRUNCATE orders, outbox")
    r.checkpoint()
    tag = TOPIC_TAG[system]
    topic = f"latency.{tag}.orders.events"
    r.psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    r.kafka.create_topic(topic, PARTITIONS)
    metrics = None  # cdc-relay's /metrics: its stage histograms around each step
    if system == "cdc-relay":
        p, logpath = r.spawn("cdc-relay-latency", relay_cmd(
            r, slot, f"latency.{tag}.${{aggregate_type}}.events", "--metrics-listen", "127.0.0.1:0"),
            env=relay_env(r))
        metrics = "http://" + wait_log(p, logpath, r"metrics listening addr=(\S+)",
                                       "cdc-relay did not start its metrics listener")
    else:
        cmd, d = debezium_cmd(r, "latency", slot, f"latency.{tag}.")
        p, logpath = r.spawn("debezium-latency", cmd, cwd=d)
    consumer = None
    try:
        # a first event: the system streams, the topic exists, the consumer reads it
        r.psql("INSERT INTO outbox VALUES (gen_random_uuid(), 'orders', 'warm-up', 'WarmUp', '{}')")
        wait_topic(r.kafka.brokers, topic, 1, 180, p, logpath)
        consumer = Consumer(r.kafka.brokers, topic, r.dir / "kcat.log")
        consumer.wait_count(1, 60)
        seen = 1
        # Unmeasured warm-up at the first step's rate: JIT compilers, batch
        # sizes and connections settle before anything counts.
        if r.a.rates:  # fixed rates; pct only says where they sit
            steps = [(round(100 * rate / max_tps), rate) for rate in r.a.rates]
        else:
            steps = [(pct, max(1, int(max_tps * pct / 100))) for pct in r.a.load_pcts]
        for pct, rate in [min(steps, key=lambda st: st[1])] + steps:
            warm = seen == 1
            secs = r.a.warmup_seconds if warm else r.a.latency_seconds
            log(f"latency: {system} at {pct}% = {rate} orders/s for {secs} s (open loop)"
                + (", warm-up, not counted" if warm else ""))
            before = int(r.psql("SELECT count(*) FROM outbox"))
            hist_before = scrape_metrics(metrics) if metrics and not warm else None
            step_start = time.time()
            cpu = None if warm else CpuWindow(
                {p.pid: "system", consumer.p.pid: "consumer", os.getpid(): "bench"}, secs)
            out = pgbench(r, ORDER_SQL, "-M", "prepared", "-c", "8", "-j", "2", "-R", str(rate),
                          "-T", str(secs), timeout=secs + 120)
            sent = int(r.psql("SELECT count(*) FROM outbox")) - before
            rss_kib = rss_now(p.pid)  # at the end of the steady step
            consumer.wait_count(seen + sent, 120)
            time.sleep(0.5)
            lines = consumer.lines[seen:seen + sent]
            seen += sent
            if warm:
                continue
            row = _latency_row(r, system, pct, rate, lines, step_start, out)
            row.update({"rss_mib": rss_kib / 1024,
                        # % of one CPU during the step; machine: both CPUs busy = 200
                        "cpu_pct": cpu.result(),
                        # cdc-relay's own split of commit -> last delivery report
                        "stages": stage_quantiles(hist_before, scrape_metrics(metrics)) if hist_before else None})
            r.results["latency"].append(row)
            log(f"  commit->ack p50 {row['ack']['p50'] * 1e3:.1f} ms p99 {row['ack']['p99'] * 1e3:.1f} ms; "
                f"commit->receipt p50 {row['receipt']['p50'] * 1e3:.1f} ms "
                f"p99 {row['receipt']['p99'] * 1e3:.1f} ms")
    finally:
        if consumer:
            consumer.close()
        stop(p, 30)
        r.drop_slot(slot)


def _latency_row(r: Run, system: str, pct: int, rate: int, lines: list, step_start: float, out: str) -> dict:
    """Commit -> broker append and commit -> receipt of one step's events."""
    ids = [headers(line.split("\t", 1)[-1]).get("id") for _, line in lines]
    # every row of this step (created_at is its transaction's start)
    commit = dict((k, float(v)) for k, v in (
        row.split("|") for row in r.psql(
            "SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM outbox "
            f"WHERE created_at >= to_timestamp({step_start - 5})").split("\n") if row))
    ack, recv, skew = [], [], 0.0
    for (rt, line), eid in zip(lines, ids):
        ts_ms, _, h = line.partition("\t")
        c = commit.get(eid)
        if c is None:
            raise BenchError(f"event {eid} has no commit time in the outbox")
        hdr = headers(h).get("commit_ts")
        if hdr:  # cdc-relay's own header: the same commit record's time
            skew = max(skew, abs(parse_ts(hdr) - c))
            c = parse_ts(hdr)
        ack.append(int(ts_ms) / 1000 - c)
        recv.append(rt - c)
    lag = re.search(r"schedule lag: avg ([\d.]+) \(max ([\d.]+)\)", out)
    tps = re.search(r"tps = ([\d.]+)", out)
    return {"system": system, "pct": pct, "rate": rate, "events": len(lines),
            "achieved_tps": float(tps.group(1)) if tps else None,
            "sched_lag_max_ms": float(lag.group(2)) if lag else None,
            "ack": pcts(ack), "receipt": pcts(recv),
            # largest |commit_ts header - pg_xact_commit_timestamp|: 0 when they agree
            "commit_ts_header_vs_sql_s": skew if system == "cdc-relay" else None}


# ---------------------------------------------------------------------------
# cdc-relay's cdc_relay_transaction_latency_seconds{stage} and
# cdc_relay_end_to_end_latency_seconds, read here as stage "total" (docs/observability.md)
# ---------------------------------------------------------------------------
STAGES = ("wal", "receive", "produce", "deliver", "total")
STAGE_METRIC = "cdc_relay_transaction_latency_seconds"
TOTAL_METRIC = "cdc_relay_end_to_end_latency_seconds"


def scrape_metrics(base: str) -> str:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        return resp.read().decode()


def parse_stage_histograms(text: str) -> dict:
    """{stage: {"buckets": [(le, cumulative)], "count": n, "sum": seconds}}."""
    out = {st: {"buckets": [], "count": 0.0, "sum": 0.0} for st in STAGES}
    pat = re.compile(rf'^{STAGE_METRIC}_(bucket|sum|count)\{{stage="(\w+)"(?:,le="([^"]+)")?\}} (\S+)$')
    total = re.compile(rf'^{TOTAL_METRIC}_(bucket|sum|count)(?:\{{le="([^"]+)"\}})? (\S+)$')
    for line in text.splitlines():
        m = pat.match(line)
        if m and m.group(2) != "total":
            kind, stage, le, value = m.group(1), m.group(2), m.group(3), float(m.group(4))
        elif (m := total.match(line)):
            kind, stage, le, value = m.group(1), "total", m.group(2), float(m.group(3))
        else:
            continue
        if stage not in out:
            continue
        if kind == "bucket":
            out[stage]["buckets"].append((float(le), value))  # float("+Inf") is inf
        else:
            out[stage][kind] = value
    for h in out.values():
        h["buckets"].sort()
    return out


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's estimate: linear within the bucket the rank falls in; a
    rank in +Inf answers the highest finite bound."""
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank, lo, below = q * total, 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * (rank - below) / (cum - below) if cum > below else le
        lo, below = le, cum
    return lo


def stage_quantiles(before: str, after: str) -> dict:
    """p50, p99 and mean per stage over the transactions observed between two scrapes."""
    b, a = parse_stage_histograms(before), parse_stage_histograms(after)
    out = {}
    for st in STAGES:
        prev = dict(b[st]["buckets"])
        delta = [(le, cum - prev.get(le, 0.0)) for le, cum in a[st]["buckets"]]
        n = a[st]["count"] - b[st]["count"]
        out[st] = {"count": n, "p50": histogram_quantile(0.50, delta), "p99": histogram_quantile(0.99, delta),
                   "mean": (a[st]["sum"] - b[st]["sum"]) / n if n > 0 else None}
    return out
