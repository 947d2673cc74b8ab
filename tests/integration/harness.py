"""Real servers and processes for the integration tests (stdlib only).

Postgres and Kafka are started by tests/harness/pg.sh and kafka.sh, on
127.0.0.1 and free ports, in a per-run directory; the fixtures in conftest.py
wrap the classes below. Everything here raises HarnessError when a server
or a tool misbehaves, with the server's log tail in the message.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

# cdc-relay serves /metrics on 127.0.0.1:8491 unless told otherwise. Every
# relay the tests start takes a free port instead: other relays (of other
# tests, or of other checkouts on a shared machine) may hold 8491. A test that
# checks the default removes the variable for its relay.
os.environ.setdefault("CDC_METRICS_LISTEN", "127.0.0.1:0")

REPO = Path(__file__).resolve().parents[2]
HARNESS_DIR = REPO / "tests" / "harness"

# The PostgreSQL major version tests/harness/pg.sh starts: 15 (Debian's
# package) unless $PG_VERSION names one of the builds of tests/harness/pgdist.sh.
PG_VERSIONS = ("15", "16", "17", "18")
PG_VERSION = os.environ.get("PG_VERSION") or "15"

# What a sanitizer prints when it finds something (ASan, LSan, UBSan, TSan).
SANITIZER_RE = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer)"
    r"|runtime error: |WARNING: ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer"
)


class HarnessError(Exception):
    """A server or tool of the harness failed; the message says why."""


def unique_name(prefix: str = "t") -> str:
    """A name no other test of this run uses: prefix_<12 hex digits>."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _script(name: str, *args: str, timeout: float = 120) -> str:
    """Run tests/harness/<name> and return its stdout; HarnessError on failure."""
    cmd = ["bash", str(HARNESS_DIR / name), *args]
    try:
        r = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"{shlex.join(cmd)} did not finish in {timeout} s") from e
    if r.returncode != 0:
        raise HarnessError(
            f"{shlex.join(cmd)} failed with exit {r.returncode}:\n{r.stderr.strip()}\n{r.stdout.strip()}"
        )
    return r.stdout


def _parse_env(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


def _settings(args, kw) -> list[str]:
    out = [str(a) for a in args]
    out += [f"{k}={v}" for k, v in kw.items()]
    for s in out:
        if "=" not in s:
            raise ValueError(f"setting {s!r} is not name=value")
    return out


def _psql_bin() -> str:
    p = shutil.which("psql")
    if p:
        return p
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "psql").exists():
            return str(d / "psql")
    raise HarnessError("psql not found; run: sh tests/harness/deps.sh")


# --------------------------------------------------------------------------
# Postgres
# --------------------------------------------------------------------------
class Postgres:
    """A PostgreSQL cluster in DIR (tests/harness/pg.sh).

    url     DATABASE_URL of database "orders" (postgresql://postgres@127.0.0.1:PORT/orders)
    port    its TCP port (the same for the life of DIR)
    dir     the state directory; log at dir/postgres.log
    """

    def __init__(self, dir: str | os.PathLike):
        self.dir = Path(dir)
        self.env: dict[str, str] = {}
        self.state = "new"  # new | running | stopped
        self.settings: list[str] = []  # extra settings of the last start

    # life cycle ------------------------------------------------------------
    def start(self, *settings: str, **kw) -> "Postgres":
        """Start (initdb on first use). settings: "name=value" strings or
        name=value keywords, for this start only (a running server is stopped
        first when settings are given)."""
        extra = _settings(settings, kw)
        if extra and self.state == "running":
            self.stop()  # settings apply at server start
        out = _script("pg.sh", "start", str(self.dir), *extra, timeout=150)
        self.env = _parse_env(out)
        self.settings = extra
        if "DATABASE_URL" not in self.env:
            raise HarnessError(f"pg.sh start printed no DATABASE_URL:\n{out}")
        self.state = "running"
        return self

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m mode (fast | immediate | smart); no-op when stopped."""
        _script("pg.sh", "stop", str(self.dir), mode, timeout=90)
        self.state = "stopped"

    def restart(self, mode: str = "fast") -> None:
        """pg_ctl restart -m mode (fast | immediate): same port, same data;
        immediate means crash recovery on the way up."""
        self.env = _parse_env(_script("pg.sh", "restart", str(self.dir), mode, timeout=150))
        self.state = "running"

    def running(self) -> bool:
        r = subprocess.run(
            ["bash", str(HARNESS_DIR / "pg.sh"), "status", str(self.dir)],
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        return r.returncode == 0

    # addresses -------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def port(self) -> int:
        return int(self.env["PGPORT"])

    def url_for(self, dbname: str) -> str:
        """The URL of another database in the same cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self, name: str | None = None) -> str:
        """CREATE DATABASE (a unique name by default) and return its URL.
        Replication slots are per database but their names are cluster-wide."""
        name = name or unique_name("db")
        self.psql(f'CREATE DATABASE "{name}"', dbname="postgres")
        return self.url_for(name)

    # queries ---------------------------------------------------------------
    def psql_result(
        self, sql: str, dbname: str | None = None, url: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """psql -X -At -v ON_ERROR_STOP=1 -d URL -c SQL; returns the
        CompletedProcess whatever the exit code (for tests that expect errors)."""
        target = url or (self.url_for(dbname) if dbname else self.url)
        cmd = [_psql_bin(), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", target, "-c", sql]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def psql(
        self, sql: str, dbname: str | None = None, url: str | None = None, timeout: float = 60
    ) -> str:
        """Run SQL, return psql's unaligned tuples-only output without the final
        newline (rows on lines, columns separated by '|'). HarnessError on error."""
        r = self.psql_result(sql, dbname=dbname, url=url, timeout=timeout)
        if r.returncode != 0:
            raise HarnessError(f"psql failed (exit {r.returncode}) on: {sql}\n{r.stderr.strip()}")
        return r.stdout.rstrip("\n")

    def server_version_num(self) -> int:
        """The running server's version, e.g. 180003 for 18.3."""
        return int(self.psql("SHOW server_version_num", dbname="postgres"))

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.dir / "postgres.log", lines)


# --------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------
class Kafka:
    """A single-node Kafka broker in DIR (tests/harness/kafka.sh).

    brokers  "127.0.0.1:PORT" (the same for the life of DIR)
    dir      the state directory; log at dir/broker.log
    Topic auto-creation is on: a topic first produced to gets 3 partitions.
    """

    def __init__(self, dir: str | os.PathLike, tls_dir: str | os.PathLike | None = None,
                 sasl: tuple[str, str] | None = None):
        """tls_dir: a TLS broker (kafka.sh --tls) with the certificates there.
        sasl: (user, password): a broker that wants SASL PLAIN (kafka.sh --sasl)."""
        self.dir = Path(dir)
        self.tls_dir = Path(tls_dir) if tls_dir else None
        self.sasl = sasl
        self.env: dict[str, str] = {}
        self.state = "new"  # new | running | stopped | paused
        self.settings: list[str] = []  # extra settings of the last start

    # life cycle ------------------------------------------------------------
    def start(self, *settings: str) -> "Kafka":
        """Start (format on first use) and wait until it serves metadata.
        settings: "name=value" broker properties for this start only."""
        extra = _settings(settings, {})
        if extra and self.state in ("running", "paused"):
            self.stop()  # settings apply at broker start
        tls = ["--tls", str(self.tls_dir)] if self.tls_dir else []
        if self.sasl:
            tls += ["--sasl", f"{self.sasl[0]}:{self.sasl[1]}"]
        out = _script("kafka.sh", "start", str(self.dir), *tls, *extra, timeout=150)
        self.env = _parse_env(out)
        self.settings = extra
        if "KAFKA_BROKERS" not in self.env:
            raise HarnessError(f"kafka.sh start printed no KAFKA_BROKERS:\n{out}")
        self.state = "running"
        return self

    def stop(self) -> None:
        """SIGTERM (clean shutdown), SIGKILL after 20 s."""
        _script("kafka.sh", "stop", str(self.dir), timeout=60)
        self.state = "stopped"

    def kill(self) -> None:
        """SIGKILL: no clean shutdown."""
        _script("kafka.sh", "kill", str(self.dir), timeout=30)
        self.state = "stopped"

    def pause(self) -> None:
        """SIGSTOP: the broker hangs with its connections open."""
        _script("kafka.sh", "pause", str(self.dir), timeout=30)
        self.state = "paused"

    def resume(self) -> None:
        """SIGCONT after pause()."""
        _script("kafka.sh", "resume", str(self.dir), timeout=30)
        self.state = "running"

    def running(self) -> bool:
        r = subprocess.run(
            ["bash", str(HARNESS_DIR / "kafka.sh"), "status", str(self.dir)],
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        return r.returncode == 0

    @property
    def brokers(self) -> str:
        return self.env["KAFKA_BROKERS"]

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.dir / "broker.log", lines)

    # topics ----------------------------------------------------------------
    def topics_tool(self, *args: str, timeout: float = 60) -> str:
        """Run kafka-topics (org.apache.kafka.tools.TopicCommand) with
        --bootstrap-server set; returns stdout."""
        return _script("kafka.sh", "topics", str(self.dir), *args, timeout=timeout)

    def create_topic(
        self, name: str, partitions: int = 3, config: dict[str, str] | None = None
    ) -> None:
        """Create a topic (no-op if it exists) and wait until every partition
        has a leader. Uses Kafka's own TopicCommand (a JVM, ~2 s)."""
        args = ["--create", "--if-not-exists", "--topic", name, "--partitions", str(partitions)]
        args += ["--replication-factor", "1"]
        for k, v in (config or {}).items():
            args += ["--config", f"{k}={v}"]
        self.topics_tool(*args)
        deadline = time.monotonic() + 30
        while True:
            parts = self.partitions(name)
            if parts and len(parts) >= partitions and all(p["leader"] >= 0 for p in parts):
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"topic {name} has no leaders 30 s after creation: {parts}")
            time.sleep(0.1)

    def delete_topic(self, name: str) -> None:
        self.topics_tool("--delete", "--if-exists", "--topic", name)

    def metadata(self, topic: str | None = None, timeout: float = 10) -> dict:
        """kcat -L -J (for one topic, or all)."""
        cmd = ["kcat", "-b", self.brokers, "-L", "-J", "-m", str(int(timeout))]
        if topic:
            cmd += ["-t", topic]
        r = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout + 5, stdin=subprocess.DEVNULL
        )
        if r.returncode != 0:
            raise HarnessError(f"kcat -L failed: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def topics(self) -> list[str]:
        return sorted(
            t["topic"] for t in self.metadata()["topics"] if not t["topic"].startswith("__")
        )

    def partitions(self, topic: str) -> list[dict]:
        """[{"partition": n, "leader": id}, ...]; [] when the topic is unknown."""
        for t in self.metadata(topic).get("topics", []):
            if t["topic"] == topic and not t.get("error"):
                return [
                    {"partition": p["partition"], "leader": p.get("leader", -1)}
                    for p in t.get("partitions", [])
                ]
        return []

    # messages --------------------------------------------------------------
    def produce(
        self,
        topic: str,
        value: str,
        key: str | None = None,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        partition: int | None = None,
        timeout: float = 30,
    ) -> None:
        """Produce one message with kcat -P (value must not contain a newline)."""
        if "\n" in value:
            raise ValueError("produce(): value must be one line")
        cmd = ["kcat", "-P", "-b", self.brokers, "-t", topic, "-X", "acks=all"]
        if key is not None:
            cmd += ["-k", key]
        if partition is not None:
            cmd += ["-p", str(partition)]
        pairs = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in pairs:
            cmd += ["-H", f"{k}={v}"]
        r = subprocess.run(cmd, input=value + "\n", capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise HarnessError(f"kcat -P to {topic} failed: {r.stderr.strip()}")

    def client_args(self) -> list[str]:
        """kcat/librdkafka -X flags a client of this broker needs (TLS, SASL)."""
        args = []
        if self.tls_dir:
            args += ["-X", "security.protocol=ssl", "-X",
                     f"ssl.ca.location={self.tls_dir / 'ca.pem'}"]
        if self.sasl:
            args += ["-X", f"security.protocol=sasl_{'ssl' if self.tls_dir else 'plaintext'}",
                     "-X", "sasl.mechanisms=PLAIN", "-X", f"sasl.username={self.sasl[0]}",
                     "-X", f"sasl.password={self.sasl[1]}"]
        return args

    def read_all(self, topic: str, extra_args: list[str] | tuple = (), timeout: float = 20) -> list[dict]:
        """Everything in the topic right now (one kcat -C -o beginning -e run);
        [] when the topic does not exist or the broker does not answer.
        kcat's output is decoded as UTF-8 with surrogateescape: a key or value
        that is not UTF-8 keeps its bytes (s.encode("utf-8", "surrogateescape"))
        and never equals the text a test expects."""
        cmd = ["kcat", "-C", "-b", self.brokers, "-t", topic, "-o", "beginning", "-e", "-J", "-q"]
        cmd += ["-m", "5", *self.client_args(), *extra_args]
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return []
        msgs = []
        for line in r.stdout.decode("utf-8", "surrogateescape").splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                m = json.loads(line)
            except json.JSONDecodeError:
                continue
            raw = m.get("headers") or []
            pairs = list(zip(raw[0::2], raw[1::2]))
            msgs.append(
                {
                    "topic": m.get("topic", topic),
                    "partition": m["partition"],
                    "offset": m["offset"],
                    "key": m.get("key"),
                    "payload": m.get("payload"),
                    "headers": dict(pairs),
                    "header_list": pairs,
                    "ts": m.get("ts"),
                }
            )
        msgs.sort(key=lambda x: (x["partition"], x["offset"]))
        return msgs

    def consume(
        self,
        topic: str,
        count: int | None = None,
        timeout: float = 30,
        extra_args: list[str] | tuple = (),
    ) -> list[dict]:
        """Read the topic from the beginning with kcat -C -e -J.

        count=None: one read of what is there now. count=N: re-read every
        0.25 s until at least N messages are there or `timeout` seconds pass,
        then return what there is (maybe fewer: assert on len()).
        Each message: {"topic", "partition", "offset", "key", "payload",
        "headers": {name: value}, "header_list": [(name, value), ...], "ts"};
        key/payload are str or None; sorted by (partition, offset).
        kcat's consumer is read_committed (librdkafka's default): messages
        of open or aborted transactions are not returned.
        extra_args: more kcat flags, e.g. ["-X", "isolation.level=read_uncommitted"].
        """
        deadline = time.monotonic() + timeout
        while True:
            left = max(1.0, deadline - time.monotonic())
            msgs = self.read_all(topic, extra_args, timeout=min(20.0, left + 5))
            if count is None or len(msgs) >= count or time.monotonic() >= deadline:
                return msgs
            time.sleep(0.25)


# --------------------------------------------------------------------------
# Prometheus's own checker
# --------------------------------------------------------------------------
# The process collector's families, as both binaries serve them (common/prom.c).
PROCESS_FAMILIES = {
    "process_cpu_seconds_total": "counter",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
}


def promtool_check_metrics(text: str) -> None:
    """`promtool check metrics` (Debian's prometheus package, installed by
    tests/harness/deps.sh) on an exposition: a parse error or any lint
    finding (names, units, suffixes, help) fails the caller."""
    tool = shutil.which("promtool")
    if tool is None:
        raise HarnessError("promtool not found: sh tests/harness/deps.sh installs it "
                           "(Debian package prometheus)")
    r = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), (
        f"promtool check metrics: rc {r.returncode}\n{r.stdout}{r.stderr}")


# --------------------------------------------------------------------------
# project binaries
# --------------------------------------------------------------------------
def bin_path(name: str, bin_dir: str | os.PathLike | None = None) -> Path:
    """bin_dir (default $BIN_DIR, else "bin"; relative to the repo) / name."""
    d = Path(bin_dir or os.environ.get("BIN_DIR") or "bin")
    if not d.is_absolute():
        d = REPO / d
    return d / name


def _merge_env(env: dict | None) -> dict:
    out = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = str(v)
    return out


def run_bin(
    name: str,
    *args: str,
    env: dict | None = None,
    timeout: float = 60,
    bin_dir: str | os.PathLike | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a project binary to completion (e.g. orders-api --migrate);
    returns the CompletedProcess (text stdout/stderr) whatever its exit code."""
    path = bin_path(name, bin_dir)
    if not path.exists():
        raise HarnessError(f"{path} does not exist (build it: make all, or make asan)")
    return subprocess.run(
        [str(path), *map(str, args)],
        env=_merge_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


class Proc:
    """A project binary running in the background.

    stdout and stderr go to one log file (log_path). env: extra variables on
    top of the test process's environment (None removes one). The process gets
    its own session, so a signal to pytest does not reach it.
    """

    def __init__(
        self,
        name: str,
        *args: str,
        env: dict | None = None,
        log_path: str | os.PathLike,
        bin_dir: str | os.PathLike | None = None,
    ):
        self.name = name
        self.path = bin_path(name, bin_dir)
        self.args = [str(a) for a in args]
        self.env = env or {}
        self.log_path = Path(log_path)
        self.popen: subprocess.Popen | None = None
        self.start_offset = 0  # where this run's output begins in a shared log

    def start(self) -> "Proc":
        if not self.path.exists():
            raise HarnessError(f"{self.path} does not exist (build it: make all, or make asan)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.start_offset = self.mark()
        with open(self.log_path, "ab") as log:
            log.write(
                f"==== {time.strftime('%H:%M:%S')} start: {shlex.join([str(self.path), *self.args])}"
                f" env: {' '.join(f'{k}={v}' for k, v in self.env.items())}\n".encode()
            )
            log.flush()
            self.popen = subprocess.Popen(
                [str(self.path), *self.args],
                env=_merge_env(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return self

    # state -------------------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.popen is not None, "not started"
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """None while running; negative -N when killed by signal N."""
        return None if self.popen is None else self.popen.poll()

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    # log -----------------------------------------------------------------------
    def log_text(self, since: int | None = None) -> str:
        """This run's output (from `since`, default the start of this run)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.start_offset if since is None else since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark(self) -> int:
        """The log's current size: pass as `since` to look only at later output."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def wait_for_log(self, pattern: str, timeout: float = 30, since: int | None = None) -> re.Match:
        """Wait until a log line matches the regex (re.search, multiline);
        returns the match. HarnessError with the log tail on timeout or when
        the process exits first."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text(since))
            if m:
                return m
            if not self.alive:
                m = rx.search(self.log_text(since))  # written just before exiting
                if m:
                    return m
                raise HarnessError(
                    f"{self.name} exited with {self.returncode} before logging /{pattern}/; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"{self.name} did not log /{pattern}/ within {timeout} s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def sanitizer_report(self) -> str | None:
        """The log from the first sanitizer report on, or None."""
        text = self.log_text()
        m = SANITIZER_RE.search(text)
        if not m:
            return None
        start = text.rfind("\n", 0, m.start()) + 1
        return text[start : start + 6000]

    # signals ---------------------------------------------------------------------
    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.alive:
            self.popen.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        """Wait for exit; returns the exit code. HarnessError on timeout."""
        assert self.popen is not None, "not started"
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(
                f"{self.name} still running after {timeout} s; last lines:\n{self.log_tail()}"
            ) from None

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM and wait; SIGKILL if it is still there after `timeout`
        (then the result is -9). Returns the exit code."""
        if self.popen is None:
            return 0
        if self.alive:
            self.popen.send_signal(signal.SIGCONT)  # in case a test stopped it
            self.popen.terminate()
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with open(self.log_path, "ab") as log:
                    log.write(f"==== harness: no exit {timeout} s after SIGTERM; SIGKILL\n".encode())
                self.popen.kill()
        return self.popen.wait()

    def kill(self) -> int:
        """SIGKILL and wait; returns the exit code (-9)."""
        if self.alive:
            self.popen.kill()
        return self.popen.wait() if self.popen else 0

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited {self.returncode}"
        return f"<Proc {self.name} pid={self.popen.pid if self.popen else None} {state}>"
