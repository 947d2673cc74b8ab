"""orders-api against a real Postgres: Idempotency-Key on POST /orders (replay,
races, reuse with another body, bad keys, failures not remembered) and
--outbox-mode message (the event as a transactional logical decoding message,
no outbox row), checked through logical slots created before the requests."""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import run_bin, unique_name
from stack import Stack

JSON = {"Content-Type": "application/json"}
MISMATCH = {"error": "Idempotency-Key reused with a different request"}
BAD_KEY = {"error": "Idempotency-Key must be 1 to 255 printable ASCII characters"}


# ---- helpers -----------------------------------------------------------------
def start(migrated_pg, kafka, spawn, mode="table", pool_size=8) -> Stack:
    stack = Stack(migrated_pg, kafka, spawn)
    stack.start_api(pool_size=pool_size, extra_args=("--outbox-mode", mode))
    assert f"outbox_mode={mode}" in stack.api.log_text()
    return stack


@pytest.fixture
def api(migrated_pg, kafka, spawn):
    return start(migrated_pg, kafka, spawn)


@pytest.fixture
def api_message(migrated_pg, kafka, spawn):
    return start(migrated_pg, kafka, spawn, mode="message")


def post(stack, body, key=None, headers=None):
    """POST /orders; key (str or bytes) goes in Idempotency-Key. Returns
    (status, headers, body text). headers: extra (name, value) pairs, sent as
    given (repeats allowed)."""
    host, port = stack.api_base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        data = body.encode() if isinstance(body, str) else body
        conn.putrequest("POST", "/orders")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(data)))
        if key is not None:
            conn.putheader("Idempotency-Key", key)
        for name, value in headers or ():
            conn.putheader(name, value)
        conn.endheaders(data)
        resp = conn.getresponse()
        text = resp.read().decode()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text
    finally:
        conn.close()


def counts(stack) -> tuple[int, int, int]:
    """(orders, outbox rows, idempotency keys)."""
    out = stack.pg.psql(
        "SELECT (SELECT count(*) FROM orders) || ' ' || (SELECT count(*) FROM outbox)"
        " || ' ' || (SELECT count(*) FROM idempotency_keys)",
        url=stack.url,
    )
    return tuple(int(x) for x in out.split())


def request_hash(item: str, quantity: int) -> str:
    """What the api stores: sha256(item bytes, NUL, decimal quantity), hex."""
    return hashlib.sha256(item.encode() + b"\0" + str(quantity).encode()).hexdigest()


def decoding_slot(stack) -> str:
    """A test_decoding slot created now: it sees only what commits later."""
    slot = unique_name("td")
    stack.pg.psql(
        f"SELECT 1 FROM pg_create_logical_replication_slot('{slot}', 'test_decoding')",
        url=stack.url,
    )
    return slot


def decoded(stack, slot) -> list[str]:
    out = stack.pg.psql(
        f"SELECT data FROM pg_logical_slot_peek_changes('{slot}', NULL, NULL)", url=stack.url
    )
    return out.splitlines() if out else []


def outbox_messages(lines: list[str]) -> list[str]:
    """The content of each transactional 'outbox' message test_decoding printed."""
    prefix = "message: transactional: 1 prefix: outbox, sz: "
    out = []
    for line in lines:
        if line.startswith(prefix):
            size, content = line[len(prefix) :].split(" content:", 1)
            assert len(content.encode()) == int(size), line
            out.append(content)
    return out


def drop_slot(stack, slot):
    stack.pg.psql(f"SELECT pg_drop_replication_slot('{slot}')", url=stack.url)


def slow_order_inserts(stack, seconds: float):
    """A trigger that makes every order insert take `seconds`: the request that
    won the key holds it uncommitted that long, so the others queue on it."""
    stack.pg.psql(
        "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$;"
        " CREATE TRIGGER slow_insert BEFORE INSERT ON orders"
        " FOR EACH ROW EXECUTE FUNCTION slow_insert()",
        url=stack.url,
    )


def fail_order_inserts_while_flagged(stack):
    """A trigger that fails every order insert while table fail_flag has a row.
    It names its table with the schema: it runs in the api's session, whose
    search_path is pg_catalog (docs/security.md)."""
    stack.pg.psql(
        "CREATE TABLE fail_flag (x int);"
        " CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF EXISTS (SELECT 1 FROM public.fail_flag) THEN RAISE EXCEPTION 'injected failure';"
        " END IF; RETURN NEW; END $$;"
        " CREATE TRIGGER fail_insert AFTER INSERT ON orders"
        " FOR EACH ROW EXECUTE FUNCTION fail_insert()",
        url=stack.url,
    )


def post_concurrently(stack, n, body, key):
    """n threads POST the same body and key, released together by a barrier."""
    barrier = threading.Barrier(n)

    def one(_):
        barrier.wait(timeout=30)
        return post(stack, body, key)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


# ---- Idempotency-Key ---------------------------------------------------------
def test_same_key_twice_replays_the_first_answer(api):
    key = "retry-" + unique_name()
    s1, h1, b1 = post(api, '{"item": "book", "quantity": 2}', key)
    assert s1 == 201, b1
    assert "idempotent-replayed" not in h1
    order = json.loads(b1)
    assert h1["location"] == f"/orders/{order['id']}"

    # The same request (spelled differently: member order, spaces, an escape).
    s2, h2, b2 = post(api, '{ "quantity" : 2, "item" : "b\\u006fok" }', key)
    assert s2 == 201
    assert b2 == b1  # byte for byte
    assert h2["location"] == h1["location"]
    assert h2["idempotent-replayed"] == "true"
    assert h2["content-type"].startswith("application/json")
    assert counts(api) == (1, 1, 1)

    row = api.pg.psql(
        "SELECT request_hash || '|' || status || '|' || location || '|' || body"
        f" FROM idempotency_keys WHERE key = '{key}'",
        url=api.url,
    )
    stored_hash, status, location, body = row.split("|", 3)
    assert (stored_hash, status, location, body) == (
        request_hash("book", 2),
        "201",
        h1["location"],
        b1,
    )
    # The outbox payload is the same bytes as both answers.
    payload = api.pg.psql("SELECT payload::text FROM outbox", url=api.url)
    assert payload == b1

    # Another key is another order; no key is the unchanged fast path.
    assert post(api, '{"item": "book", "quantity": 2}', key + "-2")[0] == 201
    s3, h3, _ = post(api, '{"item": "book", "quantity": 2}')
    assert s3 == 201 and "idempotent-replayed" not in h3
    assert counts(api) == (3, 3, 2)


def test_keys_are_case_sensitive_and_255_bytes_is_the_limit(api):
    body = '{"item": "pen", "quantity": 1}'
    assert post(api, body, "abc")[0] == 201
    assert post(api, body, "ABC")[0] == 201
    long_key = "k" * 255
    assert post(api, body, long_key)[0] == 201
    s, h, _ = post(api, body, long_key)
    assert s == 201 and h["idempotent-replayed"] == "true"
    assert counts(api) == (3, 3, 3)


@pytest.mark.parametrize("slow", [False, True], ids=["plain", "winner-holds-key-1s"])
def test_twenty_concurrent_requests_with_one_key_create_one_order(migrated_pg, kafka, spawn, slow):
    stack = start(migrated_pg, kafka, spawn, pool_size=20)
    if slow:
        slow_order_inserts(stack, 1.0)
    key = unique_name("race")
    t0 = time.monotonic()
    answers = post_concurrently(stack, 20, '{"item": "race", "quantity": 3}', key)
    elapsed = time.monotonic() - t0

    statuses = [s for s, _, _ in answers]
    assert statuses == [201] * 20, answers
    assert len({b for _, _, b in answers}) == 1, "all 20 bodies must be identical"
    assert len({h["location"] for _, h, _ in answers}) == 1
    replayed = [h.get("idempotent-replayed") for _, h, _ in answers]
    assert replayed.count(None) == 1 and replayed.count("true") == 19
    assert counts(stack) == (1, 1, 1)
    order = json.loads(answers[0][2])
    assert stack.pg.psql("SELECT aggregate_id FROM outbox", url=stack.url) == order["id"]
    if slow:
        # The 19 waited for the one insert; none ran its own (20 x 1 s).
        assert elapsed < 10, elapsed


def test_same_key_different_request_is_422_and_writes_nothing(api):
    key = unique_name("reuse")
    s1, _, b1 = post(api, '{"item": "book", "quantity": 2}', key)
    assert s1 == 201
    for other in ('{"item": "book", "quantity": 3}', '{"item": "Book", "quantity": 2}'):
        s, h, b = post(api, other, key)
        assert s == 422, b
        assert json.loads(b) == MISMATCH
        assert "location" not in h and "idempotent-replayed" not in h
    assert counts(api) == (1, 1, 1)
    # The original request still replays.
    s, h, b = post(api, '{"item": "book", "quantity": 2}', key)
    assert (s, b, h["idempotent-replayed"]) == (201, b1, "true")
    # An invalid body is a 400 whatever the key (validation comes first).
    s, _, b = post(api, '{"item": "book", "quantity": 0}', key)
    assert s == 400 and "quantity" in json.loads(b)["error"]
    assert counts(api) == (1, 1, 1)


@pytest.mark.parametrize(
    "key,extra",
    [
        ("", ()),
        ("k" * 256, ()),
        (b"caf\xc3\xa9", ()),  # UTF-8 is not ASCII
        (b"a\x7fb", ()),
        ("a\tb", ()),
        ("one", (("Idempotency-Key", "two"),)),  # sent twice
        ("same", (("idempotency-key", "same"),)),  # twice, any case
    ],
    ids=["empty", "256-bytes", "non-ascii", "del", "tab", "repeated", "repeated-same"],
)
def test_bad_key_is_400_and_writes_nothing(api, key, extra):
    s, h, b = post(api, '{"item": "book", "quantity": 2}', key, headers=extra)
    assert s == 400, b
    error = json.loads(b)["error"]
    assert error.startswith("Idempotency-Key must be")
    if not extra:
        assert json.loads(b) == BAD_KEY
    assert counts(api) == (0, 0, 0)


def test_bad_key_after_content_type_check(api):
    host, port = api.api_base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "text/plain", "Idempotency-Key": ""}
    conn.request("POST", "/orders", '{"item": "book", "quantity": 2}', headers)
    assert conn.getresponse().status == 415
    conn.close()


def test_failed_request_is_not_remembered(api):
    """Only committed answers are stored: a retry after a 5xx runs again."""
    fail_order_inserts_while_flagged(api)
    api.pg.psql("INSERT INTO fail_flag VALUES (1)", url=api.url)
    key = unique_name("fail")
    s, _, b = post(api, '{"item": "book", "quantity": 2}', key)
    assert s == 500, b
    assert counts(api) == (0, 0, 0)
    api.pg.psql("DELETE FROM fail_flag", url=api.url)
    s, h, b = post(api, '{"item": "book", "quantity": 2}', key)
    assert s == 201 and "idempotent-replayed" not in h
    assert counts(api) == (1, 1, 1)


def _hold_key(stack, key, sql_after_insert, hold_s, item="book", quantity=2, body="{}"):
    """In another session: insert the key row, sleep hold_s with it
    uncommitted, then run sql_after_insert (COMMIT or ROLLBACK)."""
    h = request_hash(item, quantity)
    stack.pg.psql(
        "BEGIN; INSERT INTO idempotency_keys (key, request_hash, status, body, location)"
        f" VALUES ('{key}', '{h}', 201, '{body}', '/orders/held');"
        f" SELECT pg_sleep({hold_s}); {sql_after_insert};",
        url=stack.url,
    )


def _wait_for_sleeper(stack):
    stack.wait_until(
        lambda: stack.pg.psql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event = 'PgSleep'",
            url=stack.url,
        )
        == "1",
        timeout=10,
        what="holder session sleeping",
    )


def _lock_waiters(stack) -> int:
    """Sessions of this database waiting for another transaction's row lock."""
    return int(
        stack.pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND wait_event = 'transactionid'",
            url=stack.url,
        )
    )


@pytest.mark.parametrize("outcome", ["ROLLBACK", "COMMIT"])
def test_request_waits_for_an_uncommitted_holder_of_its_key(api, outcome):
    """The key row inserted (uncommitted) by another transaction blocks our
    request; if that transaction rolls back we create the order, if it commits
    we answer with what it stored."""
    key = unique_name("held")
    stored = '{"id": "held", "note": "stored by the other transaction"}'
    holder = threading.Thread(
        target=_hold_key, args=(api, key, outcome, 3), kwargs={"body": stored}
    )
    holder.start()
    answer = []
    try:
        _wait_for_sleeper(api)
        request = threading.Thread(
            target=lambda: answer.append(post(api, '{"item": "book", "quantity": 2}', key))
        )
        request.start()
        # Seen in the server, not timed: a loaded machine stretches any delay.
        waited = False
        while request.is_alive() and holder.is_alive() and not waited:
            waited = _lock_waiters(api) > 0
            time.sleep(0.05)
        request.join(30)
    finally:
        holder.join(30)
    assert waited, "the request should have waited for the holder's lock"
    s, h, b = answer[0]
    assert s == 201, b
    if outcome == "ROLLBACK":
        assert "idempotent-replayed" not in h
        assert counts(api) == (1, 1, 1)
        assert h["location"] == f"/orders/{json.loads(b)['id']}"
    else:
        assert h["idempotent-replayed"] == "true"
        assert b == stored and h["location"] == "/orders/held"
        assert counts(api) == (0, 0, 1)


def test_retention_prune_statement(api):
    """The documented prune statement removes old keys; a pruned key is new again."""
    key = unique_name("old")
    assert post(api, '{"item": "book", "quantity": 2}', key)[0] == 201
    api.pg.psql(
        f"UPDATE idempotency_keys SET created_at = now() - interval '2 days' WHERE key = '{key}'",
        url=api.url,
    )
    api.pg.psql(
        "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'", url=api.url
    )
    s, h, _ = post(api, '{"item": "book", "quantity": 2}', key)
    assert s == 201 and "idempotent-replayed" not in h
    assert counts(api) == (2, 2, 1)


# ---- --outbox-mode message ----------------------------------------------------
def test_message_mode_emits_a_transactional_message_and_no_outbox_row(api_message):
    api = api_message
    slot = decoding_slot(api)
    # A pgoutput slot too, read the way the relay reads it (messages 'true').
    pub = unique_name("pub")
    pslot = unique_name("po")
    api.pg.psql(f"CREATE PUBLICATION {pub} FOR TABLE outbox WITH (publish = 'insert')", url=api.url)
    api.pg.psql(
        f"SELECT 1 FROM pg_create_logical_replication_slot('{pslot}', 'pgoutput')", url=api.url
    )
    try:
        s, h, body = post(api, '{"item": "lamp", "quantity": 3}')
        assert s == 201, body
        order = json.loads(body)
        assert h["location"] == f"/orders/{order['id']}"
        assert counts(api) == (1, 0, 0)

        lines = decoded(api, slot)
        messages = outbox_messages(lines)
        assert len(messages) == 1, lines
        content = messages[0]
        event = json.loads(content)
        assert list(event) == ["id", "payload", "event_type", "traceparent", "aggregate_id",
                               "aggregate_type"]  # jsonb's order: by length, then bytes
        assert event["traceparent"] == h["traceparent"]  # the trace context the api answered
        assert event["aggregate_type"] == "orders"
        assert event["aggregate_id"] == order["id"]
        assert event["event_type"] == "OrderCreated"
        assert event["payload"] == order
        assert len(event["id"]) == 36 and event["id"] != order["id"]
        # jsonb's text: the payload inside is the response body, byte for byte.
        assert f'"payload": {body}, ' in content
        # In the order's transaction, after its insert, before its commit.
        # (test_decoding also prints the empty transaction of CREATE PUBLICATION.)
        i = next(i for i, x in enumerate(lines) if x.startswith("message: "))
        assert lines[i - 2].startswith("BEGIN")
        assert lines[i - 1].startswith("table public.orders: INSERT:")
        assert lines[i + 1].startswith("COMMIT")

        # pgoutput with messages on: one Message ('M') record.
        n = api.pg.psql(
            "SELECT count(*) FROM pg_logical_slot_peek_binary_changes("
            f"'{pslot}', NULL, NULL, 'proto_version', '1', 'publication_names', '{pub}',"
            " 'messages', 'true') WHERE get_byte(data, 0) = 77",
            url=api.url,
        )
        assert n == "1"
    finally:
        drop_slot(api, slot)
        drop_slot(api, pslot)


def test_message_mode_with_idempotency_key(api_message):
    api = api_message
    slot = decoding_slot(api)
    try:
        key = unique_name("msg")
        s1, h1, b1 = post(api, '{"item": "lamp", "quantity": 3}', key)
        s2, h2, b2 = post(api, '{"item": "lamp", "quantity": 3}', key)
        assert (s1, s2) == (201, 201) and b1 == b2
        assert "idempotent-replayed" not in h1 and h2["idempotent-replayed"] == "true"
        s3, _, b3 = post(api, '{"item": "lamp", "quantity": 4}', key)
        assert s3 == 422 and json.loads(b3) == MISMATCH
        assert counts(api) == (1, 0, 1)
        messages = outbox_messages(decoded(api, slot))
        assert len(messages) == 1
        assert json.loads(messages[0])["payload"] == json.loads(b1)
        assert f'"payload": {b1}, ' in messages[0]
    finally:
        drop_slot(api, slot)


def test_message_mode_race_emits_one_message(migrated_pg, kafka, spawn):
    stack = start(migrated_pg, kafka, spawn, mode="message", pool_size=20)
    slot = decoding_slot(stack)
    try:
        slow_order_inserts(stack, 0.5)
        answers = post_concurrently(stack, 20, '{"item": "race", "quantity": 1}', unique_name("mr"))
        assert [s for s, _, _ in answers] == [201] * 20
        assert len({b for _, _, b in answers}) == 1
        assert counts(stack) == (1, 0, 1)
        assert len(outbox_messages(decoded(stack, slot))) == 1
    finally:
        drop_slot(stack, slot)


def test_message_mode_failed_transaction_emits_nothing(api_message):
    api = api_message
    fail_order_inserts_while_flagged(api)
    slot = decoding_slot(api)
    try:
        api.pg.psql("INSERT INTO fail_flag VALUES (1)", url=api.url)
        assert post(api, '{"item": "boom", "quantity": 1}')[0] == 500
        assert post(api, '{"item": "boom", "quantity": 1}', unique_name("f"))[0] == 500
        api.pg.psql("DELETE FROM fail_flag", url=api.url)
        s, _, body = post(api, '{"item": "ok", "quantity": 1}')
        assert s == 201
        messages = outbox_messages(decoded(api, slot))
        assert [json.loads(m)["payload"]["item"] for m in messages] == ["ok"]
        assert counts(api) == (1, 0, 0)
    finally:
        drop_slot(api, slot)


def test_outbox_mode_usage():
    r = run_bin("orders-api", "--help")
    assert r.returncode == 0
    assert "--outbox-mode MODE" in r.stdout and "OUTBOX_MODE" in r.stdout
    assert "Idempotency-Key" in r.stdout
    r = run_bin("orders-api", "--outbox-mode", "kafka", env={"DATABASE_URL": "postgresql:///x"})
    assert r.returncode == 2 and "--outbox-mode" in r.stderr
    r = run_bin("orders-api", env={"DATABASE_URL": "postgresql:///x", "OUTBOX_MODE": "tables"})
    assert r.returncode == 2 and "OUTBOX_MODE" in r.stderr
