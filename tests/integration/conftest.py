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
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from harness import HarnessError, Kafka, Postgres, Proc, run_bin

DEFAULT_TEST_TIMEOUT = int(os.environ.get("ORDERS_CDC_TEST_TIMEOUT", "300"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "timeout(seconds): fail the test when it runs longer (default 300)"
    )


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


@pytest.fixture(scope="session")
def pg(run_dir):
    server = Postgres(run_dir / "pg")
    atexit.register(_stop_pg, server)  # if pytest dies before teardown
    error = _try(server.start)
    if error:
        _stop_pg(server)
        pytest.fail(f"PostgreSQL could not start:\n{error}", pytrace=False)
    yield server
    _stop_pg(server)
    atexit.unregister(_stop_pg)


@pytest.fixture(scope="session")
def kafka(run_dir):
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
