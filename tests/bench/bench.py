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

Docs: docs/benchmarks.md ("How the numbers are taken").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import HarnessError, Kafka, Postgres, _psql_bin  # noqa: E402

# Run in this order: poll last, because its UPDATEs of published_at are WAL
# that the others' walsenders would otherwise have to decode through.
SYSTEMS = ["pg_recvlogical", "cdc-relay", "debezium", "poll"]
PARTS = ["catchup", "latency", "api"]
TOPIC_TAG = {"cdc-relay": "relay", "debezium": "dbz", "poll": "poll"}
DEBEZIUM_VERSION = "3.6.1.Final"
CACHE = Path(os.environ.get("ORDERS_CDC_CACHE") or Path.home() / ".cache" / "orders-cdc")
DEBEZIUM_LIBS = CACHE / f"debezium-{DEBEZIUM_VERSION}" / "libs"
PG_BIN = Path(_psql_bin()).parent
# The load statement of the catch-up part: outbox rows only, as the api writes them.
CATCHUP_SQL = (
    "INSERT INTO outbox SELECT gen_random_uuid(), 'orders', gen_random_uuid()::text, "
    "'OrderCreated', jsonb_build_object('id', gen_random_uuid(), 'item', 'book', "
    "'quantity', 2, 'status', 'created', 'created_at', now()) FROM generate_series(1, {size});\n"
)


class BenchError(Exception):
    """One measurement failed; the message says why (the run goes on)."""


def why(e: Exception) -> str:
    """The message of a failed measurement; the exception's type unless it is
    one of the bench's own, which already say what failed."""
    return str(e) if isinstance(e, (BenchError, HarnessError)) else f"{type(e).__name__}: {e}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# processes and /proc
# ---------------------------------------------------------------------------
def proc_usage(pid: int) -> tuple[float, int]:
    """(utime+stime seconds, VmHWM KiB) of a live process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, hwm


def rss_now(pid: int) -> int:
    """VmRSS KiB of a live process: its memory now, at steady state, where
    VmHWM would still hold the start-up and warm-up peak."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds_by_role(roles: dict[int, str]) -> dict[str, float]:
    """CPU seconds used so far: by the processes in roles (pid -> role), by
    the broker, by every Postgres process, by the load generator (pgbench or
    wrk), and the whole machine's busy time (/proc/stat). Only processes
    alive at both ends of a window count, so snapshot while the load's
    connections are open."""
    tck = os.sysconf("SC_CLK_TCK")
    out = {r: 0.0 for r in [*roles.values(), "broker", "postgres", "load"]}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        secs = (int(fields[11]) + int(fields[12])) / tck
        comm = st[st.index("(") + 1:st.rindex(")")]
        if int(d) in roles:
            role = roles[int(d)]
        elif b"kafka.Kafka" in cmd:
            role = "broker"
        elif comm in ("pgbench", "wrk"):
            role = "load"
        elif comm == "postgres" or cmd.startswith(b"postgres"):
            role = "postgres"
        else:
            continue
        out[role] += secs
        out["wait:" + role] = out.get("wait:" + role, 0.0) + run_queue_seconds(d)
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    out["machine"] = (sum(v) - v[3] - v[4]) / tck
    # time the hypervisor ran someone else on our CPUs (counted in machine)
    out["steal"] = v[7] / tck
    out["cpu_pressure"] = cpu_pressure_seconds()
    out["_wall"] = time.monotonic()
    return out


def run_queue_seconds(pid: str) -> float:
    """Seconds the process's threads have spent runnable but waiting for a
    CPU (the second field of each thread's schedstat; 0 where the kernel
    does not keep it)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    except OSError:
        return 0.0
    return total / 1e9


def cpu_pressure_seconds() -> float | None:
    """Seconds in which at least one task waited for a CPU (PSI's cpu
    "some" total), or None without /proc/pressure."""
    try:
        with open("/proc/pressure/cpu") as f:
            return int(re.search(r"total=(\d+)", f.readline()).group(1)) / 1e6
    except (OSError, AttributeError):
        return None


class CpuWindow:
    """Per-role CPU, in % of one CPU, over a step of a known length: a thread
    snapshots 1 s after the start and 1 s before the end, so start-up and the
    closing of connections (whose processes then vanish) stay outside."""

    def __init__(self, roles: dict[int, str], secs: float):
        self.roles, self.secs, self.pct = roles, secs, None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        if self.secs < 4:
            return
        time.sleep(1)
        a = cpu_seconds_by_role(self.roles)
        time.sleep(self.secs - 2)
        b = cpu_seconds_by_role(self.roles)
        wall = b["_wall"] - a["_wall"]
        # pct: % of one CPU; wait:ROLE: % of the window the role's threads
        # together spent waiting for a CPU; cpu_pressure: % of the window in
        # which any task waited
        self.pct = {k: round(100 * (b[k] - a[k]) / wall, 1) for k in a
                    if k != "_wall" and a[k] is not None and b.get(k) is not None}

    def result(self) -> dict | None:
        self.t.join(5)
        return self.pct


class Renicer:
    """An experiment, not a setting (--pipeline-nice): every 0.5 s, give each
    thread of the pipeline (the system under test, this run's broker and the
    walsenders of this run's Postgres) the nice value N, so that they wait
    less behind Postgres's backends and the load generator for a CPU. New
    threads are caught on the next turn. Other servers on the machine are
    left alone."""

    def __init__(self, nice: int, pids: list[int], postmaster_pid: int):
        self.nice, self.pids, self.postmaster_pid = nice, pids, postmaster_pid
        self.done = threading.Event()
        self.renice_once()  # a PermissionError here, in the caller
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def pipeline_pids(self) -> list[int]:
        out = list(self.pids)
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    walsender = f.read().startswith(b"postgres: walsender")
            except (OSError, ValueError, IndexError):
                continue
            if walsender and ppid == self.postmaster_pid:
                out.append(int(d))
        return out

    def renice_once(self) -> None:
        for pid in self.pipeline_pids():
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:
                continue
            for tid in tids:
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, self.nice)
                except ProcessLookupError:
                    continue

    def _run(self) -> None:
        while not self.done.wait(0.5):
            try:
                self.renice_once()
            except OSError:
                return

    def stop(self) -> None:
        """Back to nice 0: the broker outlives this system's steps."""
        self.done.set()
        self.t.join(5)
        self.nice = 0
        self.renice_once()


def wait_usage(p: subprocess.Popen, timeout: float) -> tuple[int, float, int]:
    """Wait for p (bounded); (exit code, CPU s, peak RSS KiB) from wait4, the
    same counters /proc shows while it runs."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru.ru_utime + ru.ru_stime, ru.ru_maxrss
        if time.monotonic() > deadline:
            p.kill()
            p.wait()
            raise BenchError(f"{Path(p.args[0]).name} did not finish within {timeout:.0f} s")
        time.sleep(0.02)


def stop(p: subprocess.Popen | None, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL after timeout. Only processes this run started."""
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def wait_log(p: subprocess.Popen, logpath: Path, pattern: str, what: str, timeout: float = 60) -> str:
    """The first group of pattern once it appears in the process's log."""
    deadline = time.monotonic() + timeout
    while not (m := re.search(pattern, tail(logpath, 50))):
        if p.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"{what}:\n{tail(logpath)}")
        time.sleep(0.1)
    return m.group(1)


def run(cmd: list[str], timeout: float, env: dict | None = None, what: str = "") -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what or cmd[0]} did not finish within {timeout:.0f} s") from None
    if r.returncode != 0:
        raise BenchError(f"{what or shlex.join(cmd)} exited {r.returncode}: {r.stderr.strip()[-1500:]}")
    return r.stdout


# ---------------------------------------------------------------------------
# Kafka topics, read with kcat; the broker stamps LogAppendTime
# ---------------------------------------------------------------------------
def kcat(args: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["kcat", *args], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BenchError(f"kcat {shlex.join(args)} did not finish in 60 s") from None


PARTITIONS = 3  # every topic of the run is created with 3, as auto-creation would


def topic_ends(brokers: str, topic: str) -> tuple[int, int]:
    """(messages in the topic, LogAppendTime ms of the newest): end offsets
    from a query (kcat -Q: no consuming, so it also answers while a system is
    still writing), then the last message of each partition; (0, 0) while the
    topic does not exist."""
    r = kcat(["-Q", "-b", brokers] + [a for p in range(PARTITIONS) for a in ("-t", f"{topic}:{p}:-1")])
    ends = {int(p): int(o) for p, o in re.findall(r"\[(\d+)\]\s+offset\s+(-?\d+)", r.stdout)}
    n = sum(o for o in ends.values() if o > 0)
    newest = 0
    for p, o in ends.items():
        if o > 0:
            last = kcat(["-b", brokers, "-C", "-t", topic, "-p", str(p), "-o", str(o - 1), "-c", "1", "-e",
                         "-q", "-f", "%T\n"])
            newest = max([newest] + [int(x) for x in last.stdout.split()])
    return n, newest


def topic_first_ms(brokers: str, topic: str) -> int:
    """LogAppendTime ms of the oldest message (first of each partition)."""
    first = []
    for p in range(PARTITIONS):
        r = kcat(["-b", brokers, "-C", "-t", topic, "-p", str(p), "-o", "beginning", "-c", "1", "-e",
                  "-q", "-f", "%T\n"])
        first += [int(x) for x in r.stdout.split()]
    return min(first) if first else 0


def wait_topic(brokers: str, topic: str, n: int, timeout: float, proc: subprocess.Popen,
               logpath: Path) -> int:
    """Wait until topic holds n messages; the newest one's append time (ms)."""
    deadline = time.monotonic() + timeout
    while True:
        have, newest = topic_ends(brokers, topic)
        if have >= n:
            return newest
        if proc.poll() is not None:
            raise BenchError(f"exited {proc.returncode} with {have}/{n} events in {topic}; "
                             f"last lines of {logpath}:\n{tail(logpath)}")
        # a Kafka Connect worker outlives its failed task: read its log
        text = logpath.read_text(errors="replace") if logpath.exists() else ""
        if "Task threw an uncaught" in text:
            cause = TASK_DEAD.search(text)
            raise BenchError(f"the Debezium task failed ({have}/{n} events in {topic}): "
                             f"{cause.group(1) if cause else '?'} (log: {logpath})")
        if time.monotonic() > deadline:
            raise BenchError(f"{have}/{n} events in {topic} after {timeout:.0f} s; "
                             f"last lines of {logpath}:\n{tail(logpath)}")
        time.sleep(0.25)


TASK_DEAD = re.compile(r"ERROR .*\n(\S*(?:Exception|Error): [^\n]*)")


class Consumer:
    """kcat reading a topic from the start; each line is stamped with this
    host's clock as it arrives (kcat -u: unbuffered, one line per message).
    A thread of its own, so the stamps do not wait for anything else."""

    def __init__(self, brokers: str, topic: str, logpath: Path):
        self.lines: list[tuple[float, str]] = []
        self.err = open(logpath, "ab")
        self.p = subprocess.Popen(
            ["kcat", "-b", brokers, "-C", "-u", "-q", "-t", topic, "-o", "beginning",
             "-f", "%T\t%h\n"], stdout=subprocess.PIPE, stderr=self.err, stdin=subprocess.DEVNULL,
            start_new_session=True)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self) -> None:
        for raw in self.p.stdout:
            self.lines.append((time.time(), raw.decode("utf-8", "replace").rstrip("\n")))

    def wait_count(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n:
            if time.monotonic() > deadline:
                raise BenchError(f"the consumer read {len(self.lines)}/{n} events in {timeout:.0f} s")
            time.sleep(0.1)

    def close(self) -> None:
        stop(self.p, 5)
        self.t.join(5)
        self.err.close()


def headers(h: str) -> dict[str, str]:
    out = {}
    for kv in h.split(","):
        if "=" in kv:
            k, v = kv.split("=", 1)
            out[k] = v
    return out


# ---------------------------------------------------------------------------
# the bench
# ---------------------------------------------------------------------------
class Bench:
    def __init__(self, args, run_dir: Path):
        self.a = args
        self.dir = run_dir
        self.pg = Postgres(run_dir / "pg")
        self.kafka = Kafka(run_dir / "kafka")
        self.bin = REPO / args.bin_dir
        self.procs: list[subprocess.Popen] = []
        self.results: dict = {"catchup": [], "latency": [], "api": [], "errors": [], "commands": []}
        self.help = self.relay_help()
        self.poll_mode = re.search(r"--mode\b[^\n]*\n?[^\n]*\bpoll\b", self.help) is not None

    # -- set-up --------------------------------------------------------------
    def relay_help(self) -> str:
        try:
            return subprocess.run([str(self.bin / "cdc-relay"), "--help"], capture_output=True,
                                  text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""

    def start(self) -> None:
        # max_connections: pgbench and the api at 128 connections, plus slots.
        # track_commit_timestamp: commit times of Debezium's events (its messages
        # carry none), the same value pgoutput sends and cdc-relay's commit_ts has.
        log("starting Postgres and Kafka")
        self.pg.start(max_connections="300", shared_buffers="512MB", max_wal_size="8GB",
                      track_commit_timestamp="on", synchronous_commit="on")
        os.environ.setdefault("KAFKA_JVM_OPTS", "")  # full JIT, not the tests' C1-only
        self.kafka.start("log.message.timestamp.type=LogAppendTime", *self.a.broker_settings)
        run([str(self.bin / "orders-api"), "--migrate"], 120, env={"DATABASE_URL": self.pg.url},
            what="orders-api --migrate")
        # cdc-relay's and pg_recvlogical's publication, and Debezium's own
        self.psql("CREATE PUBLICATION bench_pub FOR TABLE outbox WITH (publish = 'insert')")
        self.psql("CREATE PUBLICATION bench_dbz_pub FOR TABLE outbox WITH (publish = 'insert')")

    def close(self) -> None:
        for p in self.procs:
            stop(p, 20)
        if self.pg.env:
            try:
                for slot in self.psql("SELECT slot_name FROM pg_replication_slots "
                                      "WHERE slot_name LIKE 'bench%'", check=False).split():
                    self.drop_slot(slot)
            except Exception as e:  # the servers are stopped below anyway
                log(f"cleanup: dropping slots: {e}")
        try:
            self.kafka.stop()
        finally:
            self.pg.stop()

    def psql(self, sql: str, check: bool = True, timeout: float = 600) -> str:
        r = self.pg.psql_result(sql, timeout=timeout)
        if r.returncode != 0:
            if check:
                raise BenchError(f"psql: {sql[:200]}: {r.stderr.strip()}")
            return ""
        return r.stdout.rstrip("\n")

    def drop_slot(self, slot: str) -> None:
        # a walsender takes a moment to go after its client exits
        for _ in range(60):
            r = self.pg.psql_result(f"SELECT pg_drop_replication_slot('{slot}') "
                                    f"FROM pg_replication_slots WHERE slot_name = '{slot}'")
            if r.returncode == 0:
                return
            time.sleep(0.5)
        self.results["errors"].append(f"could not drop slot {slot}")

    def note_cmd(self, cmd: list[str], env: dict | None = None) -> None:
        """Keep each distinct command line for the docs, without this
        machine's paths, ports or database URL."""
        text = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()) + " " * bool(env)
        text += shlex.join(cmd)
        for old, new in ((str(DEBEZIUM_LIBS), "$ORDERS_CDC_CACHE/debezium-3.6.1.Final/libs"),
                         (str(self.dir), "$RUN"), (str(REPO) + "/", ""), (str(PG_BIN) + "/", ""),
                         (self.pg.env.get("DATABASE_URL", "\0"), "$DATABASE_URL"),
                         (self.kafka.env.get("KAFKA_BROKERS", "\0"), "$KAFKA_BROKERS")):
            text = text.replace(old, new)
        text = re.sub(r"-p '?\d+'? -U", "-p $PGPORT -U", text)
        text = re.sub(r"127\.0\.0\.1:\d+/orders", "127.0.0.1:$PORT/orders", text)
        if text not in self.results["commands"]:
            self.results["commands"].append(text)

    def spawn(self, name: str, cmd: list[str], env: dict | None = None, cwd: Path | None = None):
        self.note_cmd(cmd, env)
        logpath = self.dir / f"{name}.log"
        with open(logpath, "ab") as f:
            f.write(f"==== {time.strftime('%H:%M:%S')} {shlex.join(cmd)}\n".encode())
            f.flush()
            p = subprocess.Popen(cmd, stdout=f, stderr=f, stdin=subprocess.DEVNULL, cwd=cwd,
                                 env={**os.environ, **(env or {})}, start_new_session=True)
        self.procs.append(p)
        return p, logpath

    def pgbench(self, script: Path, *args: str, timeout: float, env: dict | None = None) -> str:
        self.note_cmd(["pgbench", "-n", "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres",
                       "-f", str(script), *args, "orders"], env)
        return run(["pgbench", "-n", "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres",
                    "-f", str(script), *args, "orders"], timeout, env=env, what="pgbench")

    # -- systems ---------------------------------------------------------------
    def relay_cmd(self, slot: str, template: str, *extra: str) -> list[str]:
        return [str(self.bin / "cdc-relay"), "--no-state-file", "--slot", slot, "--publication",
                "bench_pub", "--topic-template", template, *extra]

    def relay_env(self) -> dict:
        return {"DATABASE_URL": self.pg.url, "KAFKA_BROKERS": self.kafka.brokers}

    def debezium_cmd(self, tag: str, slot: str, topic_prefix: str) -> tuple[list[str], Path]:
        d = self.dir / f"debezium-{tag}"
        d.mkdir(exist_ok=True)
        (d / "worker.properties").write_text(
            f"bootstrap.servers={self.kafka.brokers}\n"
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
            f"database.hostname=127.0.0.1\ndatabase.port={self.pg.port}\n"
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
            + (f"poll.interval.ms={self.a.debezium_poll_ms}\n" if self.a.debezium_poll_ms else ""))
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

    def available(self, system: str) -> str | None:
        """None when the system can run here, else why not."""
        if system == "poll" and not self.poll_mode:
            return "not available in this build (cdc-relay --help has no --mode poll)"
        if system == "debezium" and not (DEBEZIUM_LIBS / f"debezium-connector-postgres-{DEBEZIUM_VERSION}.jar").exists():
            return f"jars missing in {DEBEZIUM_LIBS} (run tests/bench/setup.sh)"
        return None

    # -- 1. catch-up -------------------------------------------------------------
    def warm_broker(self, rows: int) -> None:
        """Unmeasured: rows single-row transactions relayed by cdc-relay to a
        scratch topic. The broker is a fresh JVM whose JIT compiler otherwise
        runs through the first measured catch-up, and cdc-relay's 1-row run
        comes first after pg_recvlogical's, which does not use the broker."""
        slot, topic = "bench_warmup", "warmup.orders.events"
        log(f"catch-up: warming the broker with {rows} events (not measured)")
        self.psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
        self.kafka.create_topic(topic, PARTITIONS)
        end = self.commit_backlog("warmup", 1, max(4, rows), 4)
        try:
            p, logpath = self.spawn("cdc-relay-warmup", self.relay_cmd(slot, "warmup.${aggregate_type}.events",
                                                                       "--end-lsn", end), env=self.relay_env())
            rc, _, _ = wait_usage(p, self.timeout(rows))
            if rc != 0:
                raise BenchError(f"cdc-relay (broker warm-up) exited {rc}:\n{tail(logpath)}")
        finally:
            self.drop_slot(slot)
        self.psql("TRUNCATE outbox")
        self.checkpoint()

    def commit_backlog(self, tag: str, size: int, rows: int, clients: int) -> str:
        """Commits rows outbox rows in transactions of size from clients
        pgbench clients; returns the end position every reader can reach."""
        script = self.dir / f"load_{tag}.sql"
        script.write_text(CATCHUP_SQL.format(size=size))
        # synchronous_commit=off for the load only: the same WAL, written faster
        self.pgbench(script, "-c", str(clients), "-j", str(min(clients, 2)),
                     "-t", str(rows // size // clients), timeout=3600,
                     env={"PGOPTIONS": "-c synchronous_commit=off"})
        # The insert position: with asynchronous commit the last commits may
        # not be written yet (pg_current_wal_lsn); a synchronous commit after
        # them flushes them, so every reader can reach the end position.
        end = self.psql("SELECT pg_current_wal_insert_lsn()")
        self.psql("SELECT txid_current()")
        return end

    def catchup(self) -> None:
        if "cdc-relay" in self.a.systems or "debezium" in self.a.systems:
            self.warm_broker(max(1000, self.a.rows // 4))
        for size in self.a.sizes:
            txns = max(1, self.a.rows // size)
            clients = 4 if txns >= 4 else 1
            n = (txns // clients) * clients * size
            systems = [s for s in SYSTEMS if s in self.a.systems]
            slots = {}
            for s in systems:
                if self.available(s) is None and s != "poll":
                    slots[s] = f"bench_{s.replace('-', '_')}_{size}"
                    self.psql(f"SELECT pg_create_logical_replication_slot('{slots[s]}', 'pgoutput')")
            # Topics exist before the start (as in production): topic creation
            # and its metadata round trips are not part of anyone's catch-up.
            for s in systems:
                if s in TOPIC_TAG and self.available(s) is None:
                    self.kafka.create_topic(f"catchup{size}.{TOPIC_TAG[s]}.orders.events", PARTITIONS)
            self.psql("TRUNCATE outbox")
            log(f"catch-up: committing {n} rows in transactions of {size}")
            t0 = time.monotonic()
            end = self.commit_backlog(str(size), size, n, clients)
            load_s = time.monotonic() - t0
            wal = int(self.psql(f"SELECT pg_wal_lsn_diff('{end}', '{self.psql('SELECT min(restart_lsn) FROM pg_replication_slots')}')") or 0)
            for s in systems:
                row = {"system": s, "size": size, "rows": n, "load_s": load_s, "wal_bytes": wal}
                missing = self.available(s)
                if missing:
                    row["error"] = missing
                else:
                    log(f"catch-up: {s}, {n} events in transactions of {size}")
                    try:
                        row.update(getattr(self, "catchup_" + s.replace("-", "_"))(size, n, slots.get(s), end))
                    except Exception as e:  # noqa: BLE001 (one row fails, the run goes on)
                        msg = why(e)
                        row["error"] = msg
                        self.results["errors"].append(f"catch-up {s} size {size}: {msg}")
                        log(f"catch-up {s} size {size} FAILED: {msg}")
                self.results["catchup"].append(row)
                if "wall_s" in row:
                    log(f"  {s}: {row['wall_s']:.2f} s, {n / row['wall_s']:.0f} events/s, "
                        f"CPU {row['cpu_s']:.2f} s, peak RSS {row['rss_kib'] / 1024:.0f} MiB")
                if s in slots:
                    self.drop_slot(slots[s])
        self.psql("TRUNCATE outbox")

    def timeout(self, n: int) -> float:
        return 120 + n / 2000  # 1M events: 10 min; far beyond any system's time here

    def catchup_pg_recvlogical(self, size: int, n: int, slot: str, end: str) -> dict:
        cmd = [str(PG_BIN / "pg_recvlogical"), "-d", self.pg.url, "--slot", slot, "--start", "-o",
               "proto_version=1", "-o", "publication_names=bench_pub", "-E", end, "-f", "/dev/null"]
        t0 = time.time()
        p, logpath = self.spawn("pg_recvlogical", cmd)
        rc, cpu, rss = wait_usage(p, self.timeout(n))
        wall = time.time() - t0
        if rc != 0:
            raise BenchError(f"pg_recvlogical exited {rc}:\n{tail(logpath)}")
        return {"wall_s": wall, "cpu_s": cpu, "rss_kib": rss, "done": "exit at end LSN"}

    def catchup_cdc_relay(self, size: int, n: int, slot: str, end: str) -> dict:
        topic = f"catchup{size}.relay.orders.events"
        cmd = self.relay_cmd(slot, f"catchup{size}.relay.${{aggregate_type}}.events", "--end-lsn", end)
        t0 = time.time()
        p, logpath = self.spawn("cdc-relay", cmd, env=self.relay_env())
        rc, cpu, rss = wait_usage(p, self.timeout(n))
        exit_s = time.time() - t0
        if rc != 0:
            raise BenchError(f"cdc-relay exited {rc}:\n{tail(logpath)}")
        have, newest = topic_ends(self.kafka.brokers, topic)
        if have < n:
            raise BenchError(f"cdc-relay exited 0 but {topic} holds {have}/{n} events")
        first = topic_first_ms(self.kafka.brokers, topic)
        return {"wall_s": newest / 1000 - t0, "exit_s": exit_s, "stream_s": (newest - first) / 1000,
                "cpu_s": cpu, "rss_kib": rss, "in_topic": have,
                "done": "last event appended (LogAppendTime); exit_s: exited after confirming the end LSN"}

    def catchup_debezium(self, size: int, n: int, slot: str, end: str) -> dict:
        topic = f"catchup{size}.dbz.orders.events"
        cmd, d = self.debezium_cmd(f"catchup{size}", slot, f"catchup{size}.dbz.")
        t0 = time.time()
        p, logpath = self.spawn(f"debezium-catchup{size}", cmd, cwd=d)
        try:
            newest = wait_topic(self.kafka.brokers, topic, n, self.timeout(n) + 60, p, logpath)
            cpu, rss = proc_usage(p.pid)
        finally:
            stop(p, 30)
        have, _ = topic_ends(self.kafka.brokers, topic)
        first = topic_first_ms(self.kafka.brokers, topic)
        return {"wall_s": newest / 1000 - t0, "stream_s": (newest - first) / 1000, "cpu_s": cpu,
                "rss_kib": rss, "in_topic": have,
                "done": "last event appended (LogAppendTime); CPU/RSS of the JVM at that point"}

    def catchup_poll(self, size: int, n: int, slot: str | None, end: str) -> dict:
        """cdc-relay --mode poll with its defaults (batch, interval). With
        --until-empty it exits once every row is published, like --end-lsn."""
        topic = f"catchup{size}.poll.orders.events"
        until_empty = "--until-empty" in self.help
        # The partial index a poll-mode deployment creates (docs/relay.md,
        # "Polling mode"); built before the clock starts, dropped after, so
        # the other systems' inserts never pay for it.
        self.psql("CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON outbox (created_at, id) "
                  "WHERE published_at IS NULL")
        cmd = [str(self.bin / "cdc-relay"), "--mode", "poll", "--topic-template",
               f"catchup{size}.poll.${{aggregate_type}}.events"] + (["--until-empty"] if until_empty else [])
        t0 = time.time()
        p, logpath = self.spawn("cdc-relay-poll", cmd, env=self.relay_env())
        try:
            if until_empty:
                rc, cpu, rss = wait_usage(p, self.timeout(n))
                if rc != 0:
                    raise BenchError(f"cdc-relay --mode poll exited {rc}:\n{tail(logpath)}")
                have, newest = topic_ends(self.kafka.brokers, topic)
                if have < n:
                    raise BenchError(f"cdc-relay --mode poll exited 0 but {topic} holds {have}/{n} events")
            else:
                newest = wait_topic(self.kafka.brokers, topic, n, self.timeout(n), p, logpath)
                cpu, rss = proc_usage(p.pid)
        finally:
            stop(p, 30)
            self.psql("DROP INDEX IF EXISTS outbox_unpublished_idx")
        first = topic_first_ms(self.kafka.brokers, topic)
        return {"wall_s": newest / 1000 - t0, "exit_s": time.time() - t0 if until_empty else None,
                "stream_s": (newest - first) / 1000, "cpu_s": cpu, "rss_kib": rss,
                "done": "last event appended (LogAppendTime)"}

    # -- 2. latency --------------------------------------------------------------
    def saturation(self) -> float:
        secs = self.a.latency_seconds
        log(f"latency: saturating run, {secs} s, 8 clients")
        out = self.pgbench(REPO / "tests/bench/order.sql", "-M", "prepared", "-c", "8", "-j", "2",
                           "-T", str(secs), timeout=secs + 120)
        m = re.search(r"tps = ([\d.]+)", out)
        if not m:
            raise BenchError(f"no tps in pgbench output:\n{out}")
        return float(m.group(1))

    def latency(self) -> None:
        systems = [s for s in ("cdc-relay", "debezium") if s in self.a.systems]
        if not systems:
            return
        self.psql("TRUNCATE outbox")
        self.checkpoint()
        max_tps = self.saturation()
        self.results["latency_max_tps"] = max_tps
        log(f"latency: Postgres sustains {max_tps:.0f} single-order transactions/s")
        for s in systems:
            missing = self.available(s)
            if missing:
                self.results["latency"].append({"system": s, "error": missing})
                continue
            try:
                self.latency_system(s, max_tps)
            except Exception as e:  # noqa: BLE001 (one row fails, the run goes on)
                msg = why(e)
                self.results["errors"].append(f"latency {s}: {msg}")
                self.results["latency"].append({"system": s, "error": msg})
                log(f"latency {s} FAILED: {msg}")

    def postmaster_pid(self) -> int:
        """This run's Postgres (the first line of its postmaster.pid)."""
        return int((self.pg.dir / "data" / "postmaster.pid").read_text().split()[0])

    def broker_pid(self) -> int:
        """This run's broker (tests/harness/kafka.sh keeps its pid)."""
        return int((self.kafka.dir / "kafka.pid").read_text().split()[0])

    def checkpoint(self) -> None:
        """Write out what earlier parts left dirty now, so the next system's
        steps do not pay for it: after the catch-up part the checkpointer and
        the kernel's writeback otherwise ran through the first system's
        latency steps (and only through those)."""
        self.psql("CHECKPOINT")
        run(["sync"], 300, what="sync")

    def latency_system(self, system: str, max_tps: float) -> None:
        slot = f"bench_lat_{system.replace('-', '_')}"
        # every system starts from the same empty tables, not from the rows
        # of the saturating run and of the systems before it
        self.psql("TRUNCATE orders, outbox")
        self.checkpoint()
        tag = "relay" if system == "cdc-relay" else "dbz"
        topic = f"latency.{tag}.orders.events"
        self.psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
        self.kafka.create_topic(topic, PARTITIONS)
        metrics = None  # cdc-relay's /metrics: its stage histograms around each step
        if system == "cdc-relay":
            p, logpath = self.spawn("cdc-relay-latency", self.relay_cmd(
                slot, f"latency.{tag}.${{aggregate_type}}.events", "--metrics-listen", "127.0.0.1:0"),
                env=self.relay_env())
            metrics = "http://" + wait_log(p, logpath, r"metrics listening addr=(\S+)",
                                           "cdc-relay did not start its metrics listener")
        else:
            cmd, d = self.debezium_cmd("latency", slot, f"latency.{tag}.")
            p, logpath = self.spawn("debezium-latency", cmd, cwd=d)
        consumer = renicer = None
        try:
            if self.a.pipeline_nice is not None:
                try:
                    renicer = Renicer(self.a.pipeline_nice, [p.pid, self.broker_pid()], self.postmaster_pid())
                except PermissionError:
                    raise BenchError(f"--pipeline-nice {self.a.pipeline_nice}: a negative nice needs root "
                                     "(CAP_SYS_NICE)") from None
                self.results["latency_pipeline_nice"] = self.a.pipeline_nice
            # a first event: the system streams, the topic exists, the consumer reads it
            self.psql("INSERT INTO outbox VALUES (gen_random_uuid(), 'orders', 'warm-up', 'WarmUp', '{}')")
            wait_topic(self.kafka.brokers, topic, 1, 180, p, logpath)
            consumer = Consumer(self.kafka.brokers, topic, self.dir / "kcat.log")
            consumer.wait_count(1, 60)
            seen = 1
            # Unmeasured warm-up at the first step's rate: JIT compilers, batch
            # sizes and connections settle before anything counts.
            if self.a.rates:  # fixed rates; pct only says where they sit
                steps = [(round(100 * r / max_tps), r) for r in self.a.rates]
            else:
                steps = [(pct, max(1, int(max_tps * pct / 100))) for pct in self.a.load_pcts]
            for pct, rate in [min(steps, key=lambda st: st[1])] + steps:
                warm = seen == 1
                secs = self.a.warmup_seconds if warm else self.a.latency_seconds
                log(f"latency: {system} at {pct}% = {rate} orders/s for {secs} s (open loop)"
                    + (", warm-up, not counted" if warm else ""))
                before = int(self.psql("SELECT count(*) FROM outbox"))
                hist_before = scrape_metrics(metrics) if metrics and not warm else None
                step_start = time.time()
                cpu = None if warm else CpuWindow(
                    {p.pid: "system", consumer.p.pid: "consumer", os.getpid(): "bench"}, secs)
                out = self.pgbench(REPO / "tests/bench/order.sql", "-M", "prepared", "-c", "8", "-j", "2",
                                   "-R", str(rate), "-T", str(secs), timeout=secs + 120)
                sent = int(self.psql("SELECT count(*) FROM outbox")) - before
                rss_kib = rss_now(p.pid)  # at the end of the steady step
                consumer.wait_count(seen + sent, 120)
                time.sleep(0.5)
                lines = consumer.lines[seen:seen + sent]
                seen += sent
                if warm:
                    continue
                ids = [headers(h).get("id") for _, line in lines for h in [line.split("\t", 1)[-1]]]
                # every row of this step (created_at is its transaction's start)
                commit = dict((k, float(v)) for k, v in (
                    row.split("|") for row in self.psql(
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
                row = {"system": system, "pct": pct, "rate": rate, "events": len(lines),
                       "achieved_tps": float(tps.group(1)) if tps else None,
                       "sched_lag_max_ms": float(lag.group(2)) if lag else None,
                       "ack": pcts(ack), "receipt": pcts(recv), "rss_mib": rss_kib / 1024,
                       # % of one CPU during the step; machine: both CPUs busy = 200
                       "cpu_pct": cpu.result(),
                       # largest |commit_ts header - pg_xact_commit_timestamp|: 0 when they agree
                       "commit_ts_header_vs_sql_s": skew if system == "cdc-relay" else None,
                       # cdc-relay's own split of commit -> last delivery report
                       "stages": stage_quantiles(hist_before, scrape_metrics(metrics)) if hist_before else None}
                self.results["latency"].append(row)
                log(f"  commit->ack p50 {row['ack']['p50'] * 1e3:.1f} ms p99 {row['ack']['p99'] * 1e3:.1f} ms; "
                    f"commit->receipt p50 {row['receipt']['p50'] * 1e3:.1f} ms p99 {row['receipt']['p99'] * 1e3:.1f} ms")
        finally:
            if renicer:
                renicer.stop()
            if consumer:
                consumer.close()
            stop(p, 30)
            self.drop_slot(slot)

    # -- 3. api --------------------------------------------------------------------
    def api(self) -> None:
        secs = self.a.api_seconds
        for conns in self.a.connections:
            pool = min(conns, 128)
            row = {"connections": conns, "pool_size": pool, "seconds": secs}
            try:
                self.checkpoint()
                log(f"api: wrk {conns} connections, {secs} s (orders-api --pool-size {pool})")
                p, logpath = self.spawn(f"orders-api-c{conns}", [str(self.bin / "orders-api"), "--pool-size", str(pool),
                                                       "--listen", "127.0.0.1:0"],
                                        env={"DATABASE_URL": self.pg.url})
                try:
                    addr = wait_log(p, logpath, r"listening addr=(\S+)", "orders-api did not start")
                    wrk = ["wrk", "-t", "2", "-c", str(conns), "-d", f"{secs}s", "--latency", "--timeout", "10s",
                           "-s", str(REPO / "tests/bench/post.lua"), f"http://{addr}/orders"]
                    self.note_cmd(wrk[:-1] + ["http://$API/orders"])
                    cpu = CpuWindow({p.pid: "api"}, secs)
                    out = run(wrk, secs + 120, what="wrk")
                    row["wrk_cpu_pct"] = cpu.result()
                finally:
                    stop(p, 20)
                row["wrk"] = parse_wrk(out)
                self.checkpoint()
                log(f"api: pgbench {conns} clients, {secs} s, the same statement")
                pre = self.dir / f"pgbench_c{conns}"
                cpu = CpuWindow({}, secs)
                out = self.pgbench(REPO / "tests/bench/order.sql", "-M", "prepared", "-c", str(conns), "-j", "2",
                                   "-T", str(secs), "-l", "--log-prefix", str(pre), timeout=secs + 120)
                row["pgbench"] = parse_pgbench(out, self.dir, pre.name)
                row["pgbench_cpu_pct"] = cpu.result()
                log(f"  api {row['wrk']['rps']:.0f} req/s p99 {row['wrk']['p99_ms']:.1f} ms; pgbench "
                    f"{row['pgbench']['tps']:.0f} tps p99 {row['pgbench']['p99_ms']:.1f} ms")
            except Exception as e:  # noqa: BLE001 (one row fails, the run goes on)
                msg = why(e)
                row["error"] = msg
                self.results["errors"].append(f"api {conns}: {msg}")
                log(f"api {conns} FAILED: {msg}")
            self.results["api"].append(row)
            self.psql("TRUNCATE orders, outbox")


def parse_ts(text: str) -> float:
    """2026-11-27T01:02:03.123456Z -> epoch seconds."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", text)
    if not m:
        raise BenchError(f"bad commit_ts header {text!r}")
    import calendar
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac


# -- cdc-relay's cdc_relay_transaction_latency_seconds{stage} and
# cdc_relay_end_to_end_latency_seconds, read here as stage "total" (docs/observability.md)
STAGES = ("wal", "receive", "produce", "deliver", "total")
STAGE_METRIC = "cdc_relay_transaction_latency_seconds"
TOTAL_METRIC = "cdc_relay_end_to_end_latency_seconds"


def scrape_metrics(base: str) -> str:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        return r.read().decode()


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


# ---------------------------------------------------------------------------
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
    ap.add_argument("--pipeline-nice", type=int, metavar="N",
                    help="experiment: run the walsender, the system under test and the broker at nice N "
                         "during the latency part (negative N needs root; default: leave priorities alone)")
    ap.add_argument("--broker-setting", action="append", default=[], dest="broker_settings", metavar="NAME=VALUE",
                    help="experiment: an extra Kafka broker property for the run (repeatable)")
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
    a.rows = a.rows or (50_000 if a.quick else 1_000_000)
    a.latency_seconds = a.latency_seconds or (10 if a.quick else 30)
    a.api_seconds = a.api_seconds or (5 if a.quick else 15)
    a.warmup_seconds = a.warmup_seconds or (10 if a.quick else 60)
    a.sizes = [int(x) for x in a.sizes.split(",")]
    a.systems = [x.strip() for x in a.systems.split(",")]
    a.parts = [x.strip() for x in a.parts.split(",")]
    a.load_pcts = [int(x) for x in a.load.split(",")]
    a.rates = [int(x) for x in a.rates.split(",")] if a.rates else []
    a.connections = [int(x) for x in a.connections.split(",")]
    for kv in a.broker_settings:
        if not re.fullmatch(r"[a-z][a-z0-9._-]*=\S+", kv):
            ap.error(f"--broker-setting {kv!r}: expected NAME=VALUE, e.g. num.io.threads=2")
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
    import report

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
    b = Bench(a, run_dir)
    t0 = time.monotonic()
    try:
        b.start()
        pg_version = b.psql("SHOW server_version")
        b.results["machine"] = report.machine(pg_version, "4.1.1", DEBEZIUM_VERSION)
        b.results["machine"]["broker_settings"] = a.broker_settings
        for part in PARTS:
            if part in a.parts:
                getattr(b, part)()
    except (BenchError, HarnessError) as e:
        log(f"bench FAILED: {e}")
        b.results["errors"].append(str(e))
        return_code = 1
    except Exception as e:  # noqa: BLE001 (a bug here: still stop the servers, keep the logs)
        import traceback
        traceback.print_exc()
        b.results["errors"].append(f"{type(e).__name__}: {e}")
        return_code = 1
    except KeyboardInterrupt:
        log("interrupted")
        return_code = 130
    else:
        return_code = 0
    finally:
        try:
            b.close()
        except Exception as e:  # noqa: BLE001
            log(f"cleanup: {e}")
    if return_code == 130:
        return return_code
    b.results["seconds"] = time.monotonic() - t0
    out = REPO / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(b.results, indent=1))
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if "machine" in b.results:
        pngs = [] if a.no_doc else report.plots(b.results, REPO / "docs" / "bench")
        gen = report.sections(b.results, b.results["machine"], command, pngs, date)
        for name in report.SECTIONS:
            if name == "machine" or name in a.parts:
                print(f"\n## {name}\n\n{gen[name]}")
        if not a.no_doc:
            report.update_doc(REPO / a.doc, gen, a.parts)
            log(f"wrote {a.doc} and docs/bench/*.png")
    log(f"done in {b.results['seconds']:.0f} s; results in build/bench/results.json")
    if b.results["errors"]:
        log(f"{len(b.results['errors'])} measurement(s) failed; logs in {run_dir}")
        return 1
    if not a.keep:
        subprocess.run(["rm", "-rf", str(run_dir)])
    return return_code


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main(sys.argv[1:]))
