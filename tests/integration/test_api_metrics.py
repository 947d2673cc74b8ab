"""orders-api GET /metrics against a real Postgres: the Prometheus text
exposition is parsed (with the small parser below, not compared as text), the
counters move by exactly what the requests sent should add, and the pool
gauges add up to the pool size, also while requests hold connections.

A request is counted when it completes, just after its last byte is sent, so a
client can read an answer a moment before the counters move: the tests poll
/metrics until the counts settle, then compare exactly."""

from __future__ import annotations

import http.client
import json
import math
import re
import subprocess
import threading
import time

import pytest

from harness import PROCESS_FAMILIES, _psql_bin, promtool_check_metrics, unique_name
from stack import Stack

JSON = {"Content-Type": "application/json"}
ROUTES = {"post_orders", "get_order", "healthz", "readyz", "metrics", "unknown"}


# ---- a Prometheus text format 0.0.4 parser -----------------------------------
class ExpositionError(AssertionError):
    pass


METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


class Family:
    def __init__(self, name: str):
        self.name = name
        self.help: str | None = None
        self.type: str | None = None
        self.samples: list[tuple[str, dict[str, str], float]] = []


def _labels(text: str, lineno: int) -> dict[str, str]:
    """'{a="x",b="y"}' (optional trailing comma) -> {"a": "x", "b": "y"}."""
    out: dict[str, str] = {}
    pos = 1
    while text[pos] != "}":
        m = LABEL.match(text, pos)
        if not m:
            raise ExpositionError(f"line {lineno}: bad label at {text[pos:]!r}")
        name, raw = m.group(1), m.group(2)
        if name in out:
            raise ExpositionError(f"line {lineno}: label {name} twice")
        out[name] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), raw)
        pos = m.end()
        if text[pos] == ",":
            pos += 1
        elif text[pos] != "}":
            raise ExpositionError(f"line {lineno}: expected , or }} in labels")
    if pos != len(text) - 1:
        raise ExpositionError(f"line {lineno}: text after the labels")
    return out


def _value(text: str, lineno: int) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf"))
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        raise ExpositionError(f"line {lineno}: bad value {text!r}")
    return float(text)


def parse_exposition(text: str) -> dict[str, Family]:
    """Parses and checks the exposition. Raises ExpositionError on anything the
    format (or Prometheus naming practice) does not allow: samples without
    # HELP and # TYPE, a family's samples split up, a repeated series, a bad
    name, label or value, counters not named *_total, histograms whose buckets
    are not cumulative in ascending le, lack +Inf, or whose +Inf differs from
    _count."""
    if not text.endswith("\n"):
        raise ExpositionError("the text does not end with a newline")
    families: dict[str, Family] = {}
    current: Family | None = None
    seen: set[tuple[str, frozenset]] = set()
    for lineno, line in enumerate(text[:-1].split("\n"), 1):
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
                continue  # a plain comment
            if len(parts) != 4 or not METRIC_NAME.fullmatch(parts[2]):
                raise ExpositionError(f"line {lineno}: bad {parts[1]} line")
            fam = families.setdefault(parts[2], Family(parts[2]))
            if fam.samples or getattr(fam, parts[1].lower()) is not None:
                raise ExpositionError(f"line {lineno}: {parts[1]} repeated or after samples")
            if parts[1] == "TYPE" and parts[3] not in TYPES:
                raise ExpositionError(f"line {lineno}: unknown type {parts[3]}")
            setattr(fam, parts[1].lower(), parts[3])
            current = fam
            continue
        m = re.fullmatch(r"([^{ ]+)(\{.*\})? (\S+)( -?\d+)?", line)
        if not m or not METRIC_NAME.fullmatch(m.group(1)):
            raise ExpositionError(f"line {lineno}: bad sample {line!r}")
        name = m.group(1)
        labels = _labels(m.group(2), lineno) if m.group(2) else {}
        value = _value(m.group(3), lineno)
        fam = families.get(name)
        if fam is None or fam.type == "histogram":
            fam = next(
                (
                    families[name[: -len(s)]]
                    for s in HISTOGRAM_SUFFIXES
                    if name.endswith(s) and families.get(name[: -len(s)], Family("")).type == "histogram"
                ),
                None,
            )
        if fam is None or fam.type is None or fam.help is None:
            raise ExpositionError(f"line {lineno}: {name} has no # HELP and # TYPE")
        if fam is not current:
            raise ExpositionError(f"line {lineno}: {name} away from its family's block")
        key = (name, frozenset(labels.items()))
        if key in seen:
            raise ExpositionError(f"line {lineno}: series {name}{labels} repeated")
        seen.add(key)
        fam.samples.append((name, labels, value))
    for fam in families.values():
        if fam.type == "counter" and not fam.name.endswith("_total"):
            raise ExpositionError(f"counter {fam.name} is not named *_total")
        if fam.type == "histogram":
            _check_histogram(fam)
    return families


def _check_histogram(fam: Family) -> None:
    groups: dict[frozenset, dict] = {}
    for name, labels, value in fam.samples:
        rest = frozenset((k, v) for k, v in labels.items() if k != "le")
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name == fam.name + "_bucket":
            if "le" not in labels:
                raise ExpositionError(f"{name}{labels}: bucket without le")
            g["buckets"].append((_value(labels["le"], 0), value))
        elif name == fam.name + "_sum":
            g["sum"] = value
        elif name == fam.name + "_count":
            g["count"] = value
        else:
            raise ExpositionError(f"{name} in histogram {fam.name}")
    for rest, g in groups.items():
        les = [le for le, _ in g["buckets"]]
        counts = [c for _, c in g["buckets"]]
        where = f"{fam.name}{dict(rest)}"
        if not les or les[-1] != math.inf:
            raise ExpositionError(f"{where}: no +Inf bucket last")
        if les != sorted(set(les)):
            raise ExpositionError(f"{where}: le not strictly ascending")
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise ExpositionError(f"{where}: buckets not cumulative")
        if g["count"] is None or g["sum"] is None:
            raise ExpositionError(f"{where}: _sum or _count missing")
        if counts[-1] != g["count"]:
            raise ExpositionError(f"{where}: +Inf bucket {counts[-1]} != _count {g['count']}")


def series(families: dict[str, Family]) -> dict[tuple[str, frozenset], float]:
    """Every sample as {(name, frozenset(labels)): value}."""
    return {(n, frozenset(l.items())): v for f in families.values() for n, l, v in f.samples}


def key(name: str, **labels: str) -> tuple[str, frozenset]:
    return (name, frozenset(labels.items()))


# ---- helpers ----------------------------------------------------------------
def request(stack, method, path, body=None, headers=None):
    host, port = stack.api_base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    finally:
        conn.close()


def scrape(stack) -> dict[tuple[str, frozenset], float]:
    status, headers, body = request(stack, "GET", "/metrics")
    assert status == 200, body
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return series(parse_exposition(body))


def delta(after, before, name=None):
    """after - before for every series (of one metric name, if given) that moved."""
    out = {}
    for k, v in after.items():
        if (name is None or k[0] == name) and v != before.get(k, 0):
            out[k] = v - before.get(k, 0)
    return out


def poll(stack, predicate, timeout=10.0, what="metrics"):
    """Scrapes until predicate(series) is true; returns that scrape (or the
    last one, for the caller's assertion to show, after the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(stack)
        if predicate(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


REQ = "orders_api_http_requests_total"
DUR = "orders_api_http_request_duration_seconds"
POOL = "orders_api_db_pool_connections"
WAIT = "orders_api_db_pool_wait_seconds"


@pytest.fixture
def api(migrated_pg, kafka, spawn):
    stack = Stack(migrated_pg, kafka, spawn)
    stack.started_at = time.time()
    stack.start_api()
    return stack


# ---- the parser itself ------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "x_total 1\n",
        "# HELP x_total h\n# TYPE x_total counter\nx_total 1",
        "# HELP x h\n# TYPE x counter\nx 1\n",
        "# HELP x_total h\n# TYPE x_total counter\nx_total one\n",
        "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"1\"} 1\nx_total{a=\"1\"} 2\n",
        "# HELP g h\n# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n",
        "# HELP g h\n# TYPE g gauge\ng{a=1} 1\n",
        "# HELP g h\n# TYPE g gauge\n# HELP f h\n# TYPE f gauge\ng 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 2\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n",
    ],
)
def test_parser_rejects_bad_expositions(text):
    with pytest.raises(ExpositionError):
        parse_exposition(text)


def test_parser_reads_escapes_and_histograms():
    fams = parse_exposition(
        "# plain comment\n# HELP h a help\n# TYPE h histogram\n"
        'h_bucket{x="a\\"b\\\\c\\n",le="0.5"} 1\nh_bucket{x="a\\"b\\\\c\\n",le="+Inf"} 3\n'
        'h_sum{x="a\\"b\\\\c\\n"} 1.5\nh_count{x="a\\"b\\\\c\\n"} 3\n'
    )
    assert series(fams)[key("h_count", x='a"b\\c\n')] == 3


# ---- the api's exposition ---------------------------------------------------
def test_exposition_parses_and_has_every_family(api):
    text = request(api, "GET", "/metrics")[2]
    promtool_check_metrics(text)  # Prometheus's own checker: format and naming lint
    fams = parse_exposition(text)
    want = {
        REQ: "counter",
        DUR: "histogram",
        "orders_api_http_requests_in_flight": "gauge",
        "orders_api_orders_created_total": "counter",
        "orders_api_idempotent_replays_total": "counter",
        POOL: "gauge",
        WAIT: "histogram",
        "orders_api_db_pool_timeouts_total": "counter",
        **PROCESS_FAMILIES,
        "orders_api_build_info": "gauge",
    }
    assert {n: f.type for n, f in fams.items()} == want
    for f in fams.values():
        assert f.help, f.name
        for name, labels, value in f.samples:
            assert value >= 0, (name, labels)
            if "route" in labels:
                assert labels["route"] in ROUTES
    m = series(fams)
    # every route has a duration histogram with the documented buckets
    les = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    for route in ROUTES:
        for le in les:
            assert key(DUR + "_bucket", route=route, le=le) in m
    for le in les:
        assert key(WAIT + "_bucket", le=le) in m
    # each endpoint's usual series is there from the start
    assert m[key(REQ, route="post_orders", method="POST", status="201")] == 0
    assert m[key(REQ, route="get_order", method="GET", status="200")] == 0
    # the pool: 8 connections, none busy while nothing runs
    assert m[key(POOL, state="idle")] + m[key(POOL, state="busy")] == 8
    assert m[key(POOL, state="busy")] == 0
    assert m[key("orders_api_http_requests_in_flight")] >= 1  # this scrape
    # From /proc as the client libraries read it: boot time (whole seconds in
    # /proc/stat) plus the start in clock ticks, so up to a second early.
    start = m[key("process_start_time_seconds")]
    assert api.started_at - 2 <= start <= time.time(), start
    assert m[key("process_resident_memory_bytes")] > 1 << 20
    assert 0 < m[key("process_open_fds")] <= m[key("process_max_fds")]
    (build,) = fams["orders_api_build_info"].samples
    assert build[2] == 1 and set(build[1]) == {"version", "libpq", "jansson", "libmicrohttpd"}
    assert re.fullmatch(r"\d+\.\d+", build[1]["libpq"]), build


def test_metrics_endpoint_methods(api):
    status, headers, body = request(api, "HEAD", "/metrics")
    assert status == 200 and body == ""
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    status, headers, body = request(api, "POST", "/metrics", "{}", JSON)
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert json.loads(body) == {"error": "method not allowed"}
    assert request(api, "GET", "/metrics/")[0] == 404


def test_counters_move_by_what_the_requests_add(api):
    before = scrape(api)
    key_ = unique_name("k")
    ids = []
    for i in range(5):
        s, h, b = request(api, "POST", "/orders", json.dumps({"item": f"m{i}", "quantity": 1 + i}), JSON)
        assert s == 201, b
        ids.append(json.loads(b)["id"])
    sent = [
        ("POST", "/orders", '{"item": "", "quantity": 1}', JSON, 400),
        ("POST", "/orders", '{"item": "book", "quantity": 0}', JSON, 400),
        ("POST", "/orders", '{"item": "book", "quantity": 1}', {"Content-Type": "text/plain"}, 415),
        ("POST", "/orders", "x" * (17 * 1024), JSON, 413),
        ("POST", "/orders", '{"item": "book", "quantity": 1}', {**JSON, "Idempotency-Key": key_}, 201),
        ("POST", "/orders", '{"item": "book", "quantity": 1}', {**JSON, "Idempotency-Key": key_}, 201),
        ("POST", "/orders", '{"item": "book", "quantity": 2}', {**JSON, "Idempotency-Key": key_}, 422),
        ("GET", f"/orders/{ids[0]}", None, {}, 200),
        ("HEAD", f"/orders/{ids[1]}", None, {}, 200),
        ("GET", "/orders/not-a-uuid", None, {}, 400),
        ("GET", "/orders/00000000-0000-4000-8000-000000000000", None, {}, 404),
        ("DELETE", "/orders", None, {}, 405),
        ("BREW", "/healthz", None, {}, 405),
        ("GET", "/nope", None, {}, 404),
        ("GET", "/healthz", None, {}, 200),
        ("GET", "/readyz", None, {}, 200),
    ]
    for method, path, body, headers, want in sent:
        assert request(api, method, path, body, headers)[0] == want, (method, path)

    expected_requests = {
        key(REQ, route="post_orders", method="POST", status="201"): 7,
        key(REQ, route="post_orders", method="POST", status="400"): 2,
        key(REQ, route="post_orders", method="POST", status="415"): 1,
        key(REQ, route="post_orders", method="POST", status="413"): 1,
        key(REQ, route="post_orders", method="POST", status="422"): 1,
        key(REQ, route="get_order", method="GET", status="200"): 1,
        key(REQ, route="get_order", method="HEAD", status="200"): 1,
        key(REQ, route="get_order", method="GET", status="400"): 1,
        key(REQ, route="get_order", method="GET", status="404"): 1,
        key(REQ, route="post_orders", method="DELETE", status="405"): 1,
        key(REQ, route="healthz", method="OTHER", status="405"): 1,
        key(REQ, route="unknown", method="GET", status="404"): 1,
        key(REQ, route="healthz", method="GET", status="200"): 1,
        key(REQ, route="readyz", method="GET", status="200"): 1,
    }
    # Requests that took a pooled connection: 7 creates that reached the store
    # (5 + first use + replay), the 422, two order reads, the 404 read, readyz.
    expected_checkouts = 5 + 2 + 1 + 2 + 1 + 1

    def not_metrics(d):
        return {k: v for k, v in d.items() if ("route", "metrics") not in k[1]}

    def durations_by_route(d):
        out = {}
        for (name, labels), v in d.items():
            if name == DUR + "_count" and ("route", "metrics") not in labels:
                out[dict(labels)["route"]] = v
        return out

    want_durations = {}
    for (_, labels), v in expected_requests.items():
        r = dict(labels)["route"]
        want_durations[r] = want_durations.get(r, 0) + v

    def settled(m):
        return (
            not_metrics(delta(m, before, REQ)) == expected_requests
            and durations_by_route(delta(m, before, DUR + "_count")) == want_durations
        )

    after = poll(api, settled)
    assert not_metrics(delta(after, before, REQ)) == expected_requests
    assert durations_by_route(delta(after, before, DUR + "_count")) == want_durations
    # the scrape before the requests is counted too (and every poll since)
    assert delta(after, before, REQ)[key(REQ, route="metrics", method="GET", status="200")] >= 1
    d = delta(after, before)
    assert d.get(key("orders_api_orders_created_total"), 0) == 6
    assert d.get(key("orders_api_idempotent_replays_total"), 0) == 1
    assert d.get(key(WAIT + "_count"), 0) == expected_checkouts
    assert d.get(key("orders_api_db_pool_timeouts_total"), 0) == 0
    # the same requests, by orders in the database
    assert api.pg.psql("SELECT count(*) FROM orders", url=api.url) == "6"
    # a duration sum grows with its count (a request takes > 0 s)
    assert d[key(DUR + "_sum", route="post_orders")] > 0


def _lock_holder(stack):
    """A psql session holding an EXCLUSIVE lock on orders (INSERTs wait) until
    'COMMIT;' is written to its stdin."""
    p = subprocess.Popen(
        [_psql_bin(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", stack.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    p.stdin.write("BEGIN;\nLOCK TABLE orders IN EXCLUSIVE MODE;\n")
    p.stdin.flush()
    stack.wait_until(
        lambda: stack.pg.psql(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = 'orders' AND l.mode = 'ExclusiveLock' AND l.granted",
            url=stack.url,
        )
        == "1",
        what="the lock on orders",
    )
    return p


def test_pool_gauges_add_up_while_requests_hold_connections(migrated_pg, kafka, spawn):
    """Pool of 3 (so 3 HTTP threads): two POSTs blocked on a table lock hold two
    connections; a scrape on the third thread sees busy 2, idle 1."""
    stack = Stack(migrated_pg, kafka, spawn)
    stack.start_api(pool_size=3, extra_args=("--db-timeout-ms", "30000"))

    def pool(m):
        return m[key(POOL, state="idle")], m[key(POOL, state="busy")]

    def blocked():
        return int(
            stack.pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orders-api'"
                " AND state = 'active' AND wait_event_type = 'Lock'",
                url=stack.url,
            )
        )

    before = scrape(stack)
    assert pool(before) == (3, 0)
    holder = _lock_holder(stack)
    results = []
    threads = []
    try:
        # One at a time, watched from the database side: an HTTP thread can
        # accept several connections before it blocks in a handler, so a scrape
        # sent while a POST is on its way could queue behind that POST.
        for n in (1, 2):
            t = threading.Thread(
                target=lambda: results.append(
                    request(stack, "POST", "/orders", '{"item": "held", "quantity": 1}', JSON)[0]
                )
            )
            t.start()
            threads.append(t)
            stack.wait_until(lambda: blocked() == n, what=f"{n} blocked inserts")
        m = scrape(stack)
        assert pool(m) == (1, 2)
        assert m[key("orders_api_http_requests_in_flight")] >= 3  # two POSTs and the scrape
    finally:
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(30)
        for t in threads:
            t.join(30)
    assert results == [201, 201]
    after = poll(stack, lambda m: pool(m) == (3, 0))
    assert pool(after) == (3, 0)
    d = delta(after, before)
    assert d[key("orders_api_orders_created_total")] == 2
    assert d[key(WAIT + "_count")] == 2  # one checkout each, neither waited (a thread per connection)
    assert d.get(key(WAIT + "_sum"), 0) == 0
