"""pytest fixtures: real Postgres and Kafka on loopback, project binaries.

Session fixtures (one server each per pytest run, stopped at the end even
when tests fail; a server that cannot start FAILS every test that needs it):
  run_dir      Path: per-run directory ($ORDERS_CDC_RUN_DIR, else a new
               /tmp/orders-cdc-it-*; removed after a green run that made it)
  pg           harness.Postgres (url, port, psql(), restart(), ...)
  kafka        harness.Kafka    (brokers, consume(), stop(), start(), ...)
  migrated_pg  pg after `orders-api --migrate` (binary from $BIN_DIR)
Per test:
  spawn        spawn(name, *args, env=None, wait_for=None, timeout=30,
               bin_dir=None) -> harness.Proc; stopped (SIGTERM) after the test;
               a failed test's report gets each process's log tail; a
               sanitizer report in a log makes the test error in teardown.
Before each test that uses pg or kafka, a server a previous test left
stopped, paused or started with extra settings is brought back to default.
Each test has a time limit: @pytest.mark.timeout(SECONDS), default
$ORDERS_CDC_TEST_TIMEOUT or 300.

External servers (the compose `it` service, deploy/docker-compose.yml):
  ORDERS_CDC_EXTERNAL_PG_URL  a superuser URL of a running Postgres with
               wal_level=logical (no query parameters: tests append
               ?replication=database). The session works in a database of its
               own, created here; a database a test made (new_database()) is
               dropped with its replication slots when the test ends, the
               session's at the end of the run.
  ORDERS_CDC_EXTERNAL_KAFKA   bootstrap servers of a running Kafka-protocol broker.
  With either set, that server is not started or stopped by the suite; a test
  that would stop, restart or reconfigure it, or that needs it to itself
  (EXTERNAL_SKIP), is skipped. Kafka's topic tool runs against the external
  broker from the harness's jar cache when java is installed (the `it` image).
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
import uuid
from pathlib import Path

import pytest

from harness import PG_VERSION, PG_VERSIONS, HarnessError, Kafka, Postgres, Proc, run_bin

DEFAULT_TEST_TIMEOUT = int(os.environ.get("ORDERS_CDC_TEST_TIMEOUT", "300"))
EXTERNAL_PG_URL = os.environ.get("ORDERS_CDC_EXTERNAL_PG_URL") or None
EXTERNAL_KAFKA = os.environ.get("ORDERS_CDC_EXTERNAL_KAFKA") or None

# Tests that need a server to themselves although they never stop it.
EXTERNAL_SKIP = {
    "test_harness.py::test_pg_select_1": (
        EXTERNAL_PG_URL,
        "asserts the harness's own loopback URL and database name",
    ),
    "test_harness.py::test_pg_settings_are_back_to_default": (
        EXTERNAL_PG_URL,
        "checks that the harness put its own server's settings back (an external server keeps its own)",
    ),
    "test_end_to_end.py::test_thousand_orders_from_16_clients_arrive_once_each": (
        EXTERNAL_KAFKA,
        "needs orders.events to itself (the stack's relay writes there too)",
    ),
    # These would be skipped anyway when they call kafka.stop(); this saves
    # the work they do before it.
    "test_end_to_end.py::test_broker_down_orders_accepted_nothing_confirmed_then_all_arrive": (
        EXTERNAL_KAFKA,
        "stops and restarts the broker",
    ),
}
# Tests that need this host's source tree, build tools, a server of their
# own or the server's processes; make test runs every one of them. In the
# compose it image (external servers) they cannot run as written.
_NEEDS_HOST = {
    "test_build_install.py::*": "builds the tree: the it image has no compiler or sources",
    "test_docs_refs.py::*": "reads the C sources, which the it image does not hold",
    "test_openapi.py::test_spec_is_valid_openapi_3_0": "needs the pinned validator venv from PyPI",
    "test_slot_holder.py::test_own_stalled_walsender_is_ended_and_another_relay_still_refused": (
        "stops a walsender with SIGSTOP, which needs the server's host; compose's relay-network-cut fault"
        " (tests/compose/faults.py) is the stall there"
    ),
}
if EXTERNAL_PG_URL:
    EXTERNAL_SKIP.update({name: (EXTERNAL_PG_URL, why) for name, why in _NEEDS_HOST.items()})


def pytest_collection_modifyitems(config, items):
    for item in items:
        key = f"{item.path.name}::{item.originalname}"
        when, why = EXTERNAL_SKIP.get(key) or EXTERNAL_SKIP.get(f"{item.path.name}::*", (None, None))
        if when:
            item.add_marker(pytest.mark.skip(reason=f"external servers: {why}"))


# ---- several processes sharing one run's tests (tests/run_matrix.py) -------
# With ORDERS_CDC_WORK_QUEUE=DIR, processes started with the same arguments
# (each with servers of its own) share the selected tests: each runs the next
# test no other has claimed yet (an O_EXCL file in DIR named after it), so
# they finish within about one test of each other whatever the tests cost.
WORK_QUEUE = os.environ.get("ORDERS_CDC_WORK_QUEUE") or None


def _claim(item) -> bool:
    name = hashlib.sha256(item.nodeid.encode()).hexdigest()[:32]
    try:
        os.close(os.open(os.path.join(WORK_QUEUE, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    if not WORK_QUEUE or session.config.option.collectonly:
        return None  # pytest's own loop
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} errors during collection")
    pending = iter(session.items)

    def next_mine():
        return next((it for it in pending if _claim(it)), None)

    # Claimed one ahead: pytest tears down what the next item does not need.
    item = next_mine()
    while item is not None:
        nextitem = next_mine()
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
        item = nextitem
    return True


def _external_skip(what: str):
    pytest.skip(f"external servers: the suite cannot {what} a server it does not run")


class ExternalPostgres(Postgres):
    """A Postgres server the suite does not manage: $ORDERS_CDC_EXTERNAL_PG_URL."""

    def __init__(self, admin_url: str, dir: Path):
        super().__init__(dir)
        self.admin = urllib.parse.urlsplit(admin_url)
        if self.admin.query or self.admin.fragment:
            raise HarnessError("ORDERS_CDC_EXTERNAL_PG_URL: give a URL without ?parameters")
        self.created: list[str] = []
        self.env = {"PGPORT": str(self.admin.port or 5432)}

    def open(self) -> "ExternalPostgres":
        name = f"it_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"', dbname="postgres")
        self.created.append(name)
        self.env["DATABASE_URL"] = self.url_for(name)
        self.state = "running"
        return self

    def url_for(self, dbname: str) -> str:
        return urllib.parse.urlunsplit(self.admin._replace(path="/" + dbname))

    def new_database(self, name: str | None = None) -> str:
        url = super().new_database(name)
        self.created.append(urllib.parse.urlsplit(url).path.lstrip("/"))
        return url

    def drop_created(self, keep: int = 0) -> None:
        """Drop the databases made after the first `keep`, after their slots
        (a database with a logical slot cannot be dropped)."""
        for name in reversed(self.created[keep:]):
            lit = name.replace("'", "''")
            self.psql(
                f"""DO $$ BEGIN
                  FOR i IN 1..500 LOOP
                    PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots
                      WHERE database = '{lit}' AND active_pid IS NOT NULL;
                    BEGIN
                      PERFORM pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                        WHERE database = '{lit}';
                      RETURN;
                    EXCEPTION WHEN object_in_use THEN PERFORM pg_sleep(0.01);
                    END;
                  END LOOP;
                END $$""",
                dbname="postgres",
            )
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dbname="postgres")
        del self.created[keep:]

    def start(self, *settings, **kw):
        _external_skip("restart or reconfigure")

    def stop(self, mode: str = "fast"):
        _external_skip("stop")

    def restart(self, mode: str = "fast"):
        _external_skip("restart")

    def running(self) -> bool:
        return self.psql_result("SELECT 1", dbname="postgres").returncode == 0


class ExternalKafka(Kafka):
    """A Kafka-protocol broker the suite does not manage: $ORDERS_CDC_EXTERNAL_KAFKA."""

    def __init__(self, brokers: str, dir: Path):
        super().__init__(dir)
        self.env = {"KAFKA_BROKERS": brokers}
        self.state = "running"

    def start(self, *settings):
        _external_skip("restart or reconfigure")

    def stop(self):
        _external_skip("stop")

    def kill(self):
        _external_skip("kill")

    def pause(self):
        _external_skip("pause")

    def resume(self):
        _external_skip("resume")

    def topics_tool(self, *args, timeout: float = 60):
        """Kafka's TopicCommand against the external broker, from the
        harness's jar cache (the compose `it` image has Java and the jars)."""
        java = shutil.which("java")
        cache = Path(os.environ.get("ORDERS_CDC_CACHE") or Path.home() / ".cache" / "orders-cdc")
        libs = cache / "kafka-4.1.1" / "libs"
        if not java or not any(libs.glob("kafka-tools-*.jar")):
            _external_skip("run Kafka's own admin tools (no java or no jars in " + str(libs) + ") against")
        cmd = [java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", f"{libs}/*",
               "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", self.brokers, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise HarnessError(f"TopicCommand {' '.join(args)} exited {r.returncode}:\n{r.stderr.strip()}")
        return r.stdout

    def running(self) -> bool:
        try:
            self.metadata()
        except HarnessError:
            return False
        return True


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "timeout(seconds): fail the test when it runs longer (default 300)"
    )
    config.addinivalue_line(
        "markers",
        "matrix: in the subset run on every PostgreSQL version (make test: all tests on 15 "
        "and 18, these on 16 and 17; docs/testing.md#postgresql-versions)",
    )
    if PG_VERSION not in PG_VERSIONS:
        raise pytest.UsageError(f"PG_VERSION={PG_VERSION}: the harness runs {', '.join(PG_VERSIONS)}")


def pytest_report_header(config):
    if EXTERNAL_PG_URL:
        return "postgres: external ($ORDERS_CDC_EXTERNAL_PG_URL)"
    return f"postgres: PG_VERSION={PG_VERSION} (tests/harness/pg.sh)"


# ---- time limit per test (SIGALRM; no plugin needed) ----------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("timeout")
    seconds = int(marker.args[0]) if marker and marker.args else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise TimeoutError(f"test ran longer than {seconds} s (@pytest.mark.timeout)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---- remember each phase's outcome; add process logs to failure reports ----
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed and rep.when in ("setup", "call"):
        for p in getattr(item, "_orders_cdc_procs", []):
            rep.sections.append(
                (f"{p.name} log tail ({p.log_path})", p.log_tail(60) or "(empty)")
            )


# ---- servers ---------------------------------------------------------------
@pytest.fixture(scope="session")
def run_dir(request):
    given = os.environ.get("ORDERS_CDC_RUN_DIR")
    if given:
        d = Path(given)
        d.mkdir(parents=True, exist_ok=True)
    else:
        d = Path(tempfile.mkdtemp(prefix="orders-cdc-it-", dir="/tmp"))
    # as root, Postgres runs as user postgres, which must reach d/pg
    os.chmod(d, 0o755)
    yield d
    if not given and request.session.testsfailed == 0 and not os.environ.get("ORDERS_CDC_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


def _try(fn, *args) -> str | None:
    """Run fn; return the HarnessError's text instead of raising it (so that
    pytest.fail is called outside the except block: no chained traceback)."""
    try:
        fn(*args)
    except HarnessError as e:
        return str(e)
    return None


def _quietly(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - teardown must go on
        print(f"harness teardown: {e}")


def _stop_pg(server: Postgres):
    try:
        server.stop("fast")
    except HarnessError:
        _quietly(server.stop, "immediate")


def _stop_kafka(server: Kafka):
    try:
        server.stop()
    except HarnessError:
        _quietly(server.kill)


def _check_version(server: Postgres) -> None:
    """Every result of the run is reported under PG_VERSION: make sure."""
    major = server.server_version_num() // 10000
    if str(major) != PG_VERSION:
        raise HarnessError(f"PG_VERSION={PG_VERSION} but the server is PostgreSQL {major}")


@pytest.fixture(scope="session")
def pg(run_dir):
    if EXTERNAL_PG_URL:
        ext = ExternalPostgres(EXTERNAL_PG_URL, run_dir / "pg")
        error = _try(ext.open)
        if error:
            pytest.fail(f"external PostgreSQL ($ORDERS_CDC_EXTERNAL_PG_URL):\n{error}", pytrace=False)
        yield ext
        _quietly(ext.drop_created)
        return
    server = Postgres(run_dir / "pg")
    atexit.register(_stop_pg, server)  # if pytest dies before teardown
    error = _try(server.start) or _try(_check_version, server)
    if error:
        _stop_pg(server)
        pytest.fail(f"PostgreSQL could not start:\n{error}", pytrace=False)
    yield server
    _stop_pg(server)
    atexit.unregister(_stop_pg)


@pytest.fixture(scope="session")
def kafka(run_dir):
    if EXTERNAL_KAFKA:
        yield ExternalKafka(EXTERNAL_KAFKA, run_dir / "kafka")
        return
    server = Kafka(run_dir / "kafka")
    atexit.register(_stop_kafka, server)
    error = _try(server.start)
    if error:
        _stop_kafka(server)
        pytest.fail(f"Kafka could not start:\n{error}", pytrace=False)
    yield server
    _stop_kafka(server)
    atexit.unregister(_stop_kafka)


@pytest.fixture(scope="session")
def migrated_pg(pg):
    """pg with the schema applied by `orders-api --migrate`."""
    r = None
    try:
        r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": pg.url}, timeout=120)
    except HarnessError as e:
        error = str(e)
    if r is None:
        pytest.fail(error, pytrace=False)
    if r.returncode != 0:
        pytest.fail(
            f"orders-api --migrate exited {r.returncode}:\n{r.stderr}\n{r.stdout}", pytrace=False
        )
    return pg


@pytest.fixture(autouse=True)
def _servers_in_default_state(request):
    """Undo what an earlier test left: a stopped/paused server, or one
    started with extra settings."""
    for name in ("pg", "kafka"):
        if name not in request.fixturenames:
            continue
        server = request.getfixturevalue(name)
        error = _try(_reset, server)
        if error:
            pytest.fail(f"could not bring {name} back for this test:\n{error}", pytrace=False)
    yield


@pytest.fixture(autouse=True)
def _external_databases_per_test(request):
    """On an external server, drop what a test made (its databases and their
    replication slots) when it ends: the server's max_replication_slots is
    shared with whatever else uses it, and inactive slots would hold WAL."""
    if not EXTERNAL_PG_URL or "pg" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("pg")
    keep = len(server.created)
    yield
    _quietly(server.drop_created, keep)


@pytest.fixture(autouse=True)
def _local_slots_per_test(request):
    """On the harness's own server, drop every replication slot when a test
    ends (its relays are stopped by then): slots are cluster-wide, limited by
    max_replication_slots, and an inactive one holds WAL for ever."""
    if EXTERNAL_PG_URL or "pg" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("pg")
    yield
    if server.state != "running":
        return
    _quietly(
        lambda sql: server.psql(sql, dbname="postgres"),
        """DO $$ BEGIN
          FOR i IN 1..500 LOOP
            PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots
              WHERE active_pid IS NOT NULL;
            BEGIN
              PERFORM pg_drop_replication_slot(slot_name) FROM pg_replication_slots;
              RETURN;
            EXCEPTION WHEN object_in_use OR undefined_object THEN PERFORM pg_sleep(0.01);
            END;
          END LOOP;
        END $$""",
    )


def _reset(server):
    if server.state == "paused":
        server.resume()
    if server.state != "running" or server.settings:
        if server.state == "running":
            server.stop()
        server.start()


# ---- project binaries -------------------------------------------------------
@pytest.fixture
def spawn(request, run_dir):
    procs: list[Proc] = []
    request.node._orders_cdc_procs = procs
    counter = itertools.count(1)
    test_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]

    def _spawn(name, *args, env=None, wait_for=None, timeout=30, bin_dir=None) -> Proc:
        log = run_dir / "logs" / f"{test_id}.{name}.{next(counter)}.log"
        p = Proc(name, *args, env=env, log_path=log, bin_dir=bin_dir)
        error = _try(p.start)
        if not error:
            procs.append(p)
            if wait_for:
                error = _try(p.wait_for_log, wait_for, timeout)
        if error:
            pytest.fail(error, pytrace=False)
        return p

    yield _spawn

    for p in procs:
        p.terminate()
    if os.environ.get("ORDERS_CDC_IGNORE_SANITIZER"):
        return
    bad = [(p, r) for p in procs if (r := p.sanitizer_report())]
    if bad:
        pytest.fail(
            "\n\n".join(f"sanitizer report in {p.log_path}:\n{r}" for p, r in bad), pytrace=False
        )
