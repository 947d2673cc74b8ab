"""orders-api against a real Postgres: statuses, validation, atomicity,
migrations, shutdown."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time

import pytest

from harness import run_bin
from stack import Stack


@pytest.fixture
def api(migrated_pg, kafka, spawn):
    stack = Stack(migrated_pg, kafka, spawn)
    stack.start_api()
    return stack


def request(stack, method, path, body=None, headers=None):
    host, port = stack.api_base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read().decode()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


def counts(stack):
    return stack.pg.psql(
        "SELECT (SELECT count(*) FROM orders) || ' ' || (SELECT count(*) FROM outbox)", url=stack.url
    )


JSON = {"Content-Type": "application/json"}


@pytest.mark.matrix
def test_create_and_get(api):
    status, headers, body = request(api, "POST", "/orders", '{"item": "book", "quantity": 2}', JSON)
    assert status == 201
    order = json.loads(body)
    assert order["item"] == "book" and order["quantity"] == 2 and order["status"] == "created"
    assert headers["Location"] == f"/orders/{order['id']}"
    assert headers["Content-Type"].startswith("application/json")
    status, _, body = request(api, "GET", headers["Location"])
    assert status == 200 and json.loads(body) == order
    # The outbox row carries the same order as its payload, in the same transaction.
    row = api.pg.psql(
        "SELECT aggregate_type || '|' || aggregate_id || '|' || event_type || '|' || payload::text "
        f"FROM outbox WHERE aggregate_id = '{order['id']}'",
        url=api.url,
    )
    agg_type, agg_id, event_type, payload = row.split("|", 3)
    assert (agg_type, agg_id, event_type) == ("orders", order["id"], "OrderCreated")
    assert json.loads(payload) == order


@pytest.mark.parametrize(
    "method,path,body,headers,want",
    [
        ("GET", "/orders/00000000-0000-4000-8000-000000000000", None, {}, 404),
        ("GET", "/orders/not-a-uuid", None, {}, 400),
        ("GET", "/nope", None, {}, 404),
        ("DELETE", "/orders", None, {}, 405),
        ("PUT", "/orders/00000000-0000-4000-8000-000000000000", "{}", JSON, 405),
        ("POST", "/orders", '{"item": "book", "quantity": 2}', {"Content-Type": "text/plain"}, 415),
        ("POST", "/orders", '{"item": "book", "quantity": 2}', {}, 415),
        ("POST", "/orders", '{"item": "book", "quantity": 2', JSON, 400),
        ("POST", "/orders", '{"item": "", "quantity": 2}', JSON, 400),
        ("POST", "/orders", '{"item": "   ", "quantity": 2}', JSON, 400),
        ("POST", "/orders", '{"item": "' + "x" * 201 + '", "quantity": 2}', JSON, 400),
        ("POST", "/orders", '{"item": "book", "quantity": 0}', JSON, 400),
        ("POST", "/orders", '{"item": "book", "quantity": -1}', JSON, 400),
        ("POST", "/orders", '{"item": "book", "quantity": 10001}', JSON, 400),
        ("POST", "/orders", '{"item": "book", "quantity": 2.0}', JSON, 400),
        ("POST", "/orders", '{"item": "book", "quantity": "2"}', JSON, 400),
        ("POST", "/orders", '{"item": "book", "quantity": 99999999999999999999}', JSON, 400),
        ("POST", "/orders", '{"item": "book"}', JSON, 400),
        ("POST", "/orders", '{"item": "book", "quantity": 2, "color": "red"}', JSON, 400),
        ("POST", "/orders", '[1, 2]', JSON, 400),
        ("POST", "/orders", '{"item": "a\\u0000b", "quantity": 1}', JSON, 400),
        ("POST", "/orders", b'{"item": "\xff\xfe", "quantity": 1}', JSON, 400),
        ("POST", "/orders", "x" * (17 * 1024), JSON, 413),
    ],
)
def test_bad_requests_get_the_right_status_and_write_nothing(api, method, path, body, headers, want):
    before = counts(api)
    status, hdrs, data = request(api, method, path, body, headers)
    assert status == want, data
    assert "error" in json.loads(data)
    if want == 405:
        assert "Allow" in hdrs
    assert counts(api) == before


def test_item_boundary_200_bytes_accepted(api):
    status, _, _ = request(api, "POST", "/orders", json.dumps({"item": "é" * 100, "quantity": 10000}), JSON)
    assert status == 201


def test_health_and_readiness(api):
    assert request(api, "GET", "/healthz")[0] == 200
    assert request(api, "GET", "/readyz")[0] == 200


def test_readyz_503_without_database(migrated_pg, spawn):
    # A port nothing listens on.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = spawn(
        "orders-api",
        env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/orders", "LISTEN_ADDR": "127.0.0.1:0"},
        wait_for=r"listening addr=\S+",
    )
    import re

    addr = re.search(r"listening addr=(\S+)", proc.log_text()).group(1)
    host, p = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(p), timeout=30)
    conn.request("GET", "/readyz")
    assert conn.getresponse().status == 503
    conn.close()
    conn = http.client.HTTPConnection(host, int(p), timeout=30)
    conn.request("POST", "/orders", '{"item": "book", "quantity": 1}', JSON)
    assert conn.getresponse().status == 503
    conn.close()


def test_migrate_twice_changes_nothing(migrated_pg):
    url = migrated_pg.new_database()
    first = run_bin("orders-api", "--migrate", env={"DATABASE_URL": url})
    assert first.returncode == 0, first.stderr
    versions = migrated_pg.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations", url=url)
    second = run_bin("orders-api", "--migrate", env={"DATABASE_URL": url})
    assert second.returncode == 0
    assert "up to date" in second.stderr + second.stdout
    assert migrated_pg.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations", url=url) == versions


def test_sigterm_exits_zero(api):
    assert request(api, "POST", "/orders", '{"item": "book", "quantity": 1}', JSON)[0] == 201
    api.api.signal(signal.SIGTERM)
    assert api.api.wait(20) == 0


def test_api_help_and_bad_usage():
    r = run_bin("orders-api", "--help")
    assert r.returncode == 0
    for opt in ("--database-url", "--listen", "--pool-size", "--migrate", "DATABASE_URL", "LISTEN_ADDR"):
        assert opt in r.stdout
    r = run_bin("orders-api", "--pool-size", "0", env={"DATABASE_URL": "postgresql:///x"})
    assert r.returncode == 2 and "--pool-size" in r.stderr
