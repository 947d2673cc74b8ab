"""The run's servers and processes: Postgres and Kafka (tests/harness) started
for the run, the processes it spawns (logged, stopped at the end), CPU and
memory from /proc, and topics read with kcat (the broker stamps
LogAppendTime)."""

from __future__ import annotations

import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import HarnessError, Kafka, Postgres, _psql_bin  # noqa: E402

PG_BIN = Path(_psql_bin()).parent
CACHE = Path(os.environ.get("ORDERS_CDC_CACHE") or Path.home() / ".cache" / "orders-cdc")
PARTITIONS = 3  # every topic of the run is created with 3, as auto-creation would


class BenchError(Exception):
    """One measurement failed; the message says why (the run goes on)."""


def why(e: Exception) -> str:
    """The message of a failed measurement; the exception's type unless it is
    one of the bench's own, which already say what failed."""
    return str(e) if isinstance(e, (BenchError, HarnessError)) else f"{type(e).__name__}: {e}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine_line() -> str:
    """One line about this machine, for the hand-run benchmark scripts."""
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
        out[role] += (int(fields[11]) + int(fields[12])) / tck
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    out["machine"] = (sum(v) - v[3] - v[4]) / tck
    # time the hypervisor ran someone else on our CPUs (counted in machine)
    out["steal"] = v[7] / tck
    out["_wall"] = time.monotonic()
    return out


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
        self.pct = {k: round(100 * (b[k] - a[k]) / wall, 1) for k in a if k != "_wall" and k in b}

    def result(self) -> dict | None:
        self.t.join(5)
        return self.pct


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


def timed(cmd: list[str], env: dict | None = None, timeout: float = 3600) -> dict:
    """Run cmd to completion; wall seconds, CPU seconds and peak RSS (KiB) of
    that process alone (wait4), and its stderr (small: lines of note)."""
    errpath = Path(os.environ.get("TMPDIR", "/tmp")) / f"orders-cdc-bench-timed.{os.getpid()}"
    with open(errpath, "w+") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                             stderr=err, stdin=subprocess.DEVNULL)
        rc, cpu, rss = wait_usage(p, timeout)
        wall = time.monotonic() - t0
        err.seek(0)
        stderr = err.read()
    errpath.unlink()
    if rc != 0:
        raise BenchError(f"{cmd[0]} exited {rc}:\n{stderr[-3000:]}")
    return {"wall": wall, "cpu": cpu, "rss_kib": rss, "stderr": stderr}


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


def _first_append_ms(brokers: str, topic: str, partition: int, offset: str) -> list[int]:
    r = kcat(["-b", brokers, "-C", "-t", topic, "-p", str(partition), "-o", offset, "-c", "1", "-e",
              "-q", "-f", "%T\n"])
    return [int(x) for x in r.stdout.split()]


def topic_ends(brokers: str, topic: str) -> tuple[int, int]:
    """(messages in the topic, LogAppendTime ms of the newest): end offsets
    from a query (kcat -Q: no consuming, so it also answers while a system is
    still writing), then the last message of each partition; (0, 0) while the
    topic does not exist."""
    r = kcat(["-Q", "-b", brokers] + [a for p in range(PARTITIONS) for a in ("-t", f"{topic}:{p}:-1")])
    ends = {int(p): int(o) for p, o in re.findall(r"\[(\d+)\]\s+offset\s+(-?\d+)", r.stdout)}
    newest = [0] + [t for p, o in ends.items() if o > 0 for t in _first_append_ms(brokers, topic, p, str(o - 1))]
    return sum(o for o in ends.values() if o > 0), max(newest)


def topic_first_ms(brokers: str, topic: str) -> int:
    """LogAppendTime ms of the oldest message (first of each partition)."""
    first = [t for p in range(PARTITIONS) for t in _first_append_ms(brokers, topic, p, "beginning")]
    return min(first) if first else 0


TASK_DEAD = re.compile(r"ERROR .*\n(\S*(?:Exception|Error): [^\n]*)")


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


@contextmanager
def bench_servers(run_dir: Path):
    """For the hand-run scripts: Postgres and Kafka started in run_dir, the
    schema migrated and the publication bench_pub made; yields (pg, kafka,
    env with DATABASE_URL and KAFKA_BROKERS); stops both at the end."""
    pg, kafka = Postgres(run_dir / "pg"), Kafka(run_dir / "kafka")
    try:
        pg.start()
        kafka.start()
        env = {"DATABASE_URL": pg.url, "KAFKA_BROKERS": kafka.brokers}
        run([str(REPO / "bin" / "orders-api"), "--migrate"], 120, env=env, what="orders-api --migrate")
        pg.psql("CREATE PUBLICATION bench_pub FOR TABLE outbox WITH (publish = 'insert')")
        yield pg, kafka, env
    finally:
        try:
            kafka.stop()
        finally:
            pg.stop()


# ---------------------------------------------------------------------------
# the run: its directory, servers, processes and the commands it started
# ---------------------------------------------------------------------------
class Run:
    def __init__(self, args, run_dir: Path):
        self.a = args
        self.dir = run_dir
        self.pg = Postgres(run_dir / "pg")
        self.kafka = Kafka(run_dir / "kafka")
        self.bin = REPO / args.bin_dir
        self.procs: list[subprocess.Popen] = []
        self.results: dict = {"catchup": [], "latency": [], "api": [], "errors": [], "commands": []}

    def start(self) -> None:
        # max_connections: pgbench and the api at 128 connections, plus slots.
        # track_commit_timestamp: commit times of Debezium's events (its messages
        # carry none), the same value pgoutput sends and cdc-relay's commit_ts has.
        log("starting Postgres and Kafka")
        self.pg.start(max_connections="300", shared_buffers="512MB", max_wal_size="8GB",
                      track_commit_timestamp="on", synchronous_commit="on")
        os.environ.setdefault("KAFKA_JVM_OPTS", "")  # full JIT, not the tests' C1-only
        self.kafka.start("log.message.timestamp.type=LogAppendTime")
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

    def checkpoint(self) -> None:
        """Write out what earlier parts left dirty now, so the next system's
        steps do not pay for it: after the catch-up part the checkpointer and
        the kernel's writeback otherwise ran through the first system's
        latency steps (and only through those)."""
        self.psql("CHECKPOINT")
        run(["sync"], 300, what="sync")

    def note_cmd(self, cmd: list[str], env: dict | None = None) -> None:
        """Keep each distinct command line for the docs, without this
        machine's paths, ports or database URL."""
        from .systems import DEBEZIUM_LIBS, DEBEZIUM_VERSION

        text = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()) + " " * bool(env)
        text += shlex.join(cmd)
        for old, new in ((str(DEBEZIUM_LIBS), f"$ORDERS_CDC_CACHE/debezium-{DEBEZIUM_VERSION}/libs"),
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

    def timeout(self, n: int) -> float:
        return 120 + n / 2000  # 1M events: 10 min; far beyond any system's time here
