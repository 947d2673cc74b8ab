"""Bad requests to orders-api (docs/security.md, "Bad input"): malformed
bodies, wrong types, huge numbers, invalid UTF-8, NUL bytes, 10 MB bodies,
SQL-looking strings, chunked bodies that never end, slow clients that never
finish, and a burst of 2,000 concurrent connections. Requests go out as raw
bytes on sockets (no HTTP library in between to fix them up).

Every kind is counted: requests, status codes received, rows written. The
orders and outbox counts must both equal the number of 201s (nothing
half-written), the api must keep answering others throughout and be alive at
the end. The table is written to <run dir>/api_abuse_table.md and printed.
"""

from __future__ import annotations

import collections
import json
import resource
import selectors
import socket
import threading
import time

import pytest

from stack import Stack

CONN_TIMEOUT_S = 30  # HTTP_CONN_TIMEOUT_S in api/http.h (idle connections)
REQUEST_DEADLINE_S = 30  # HTTP_REQUEST_DEADLINE_S (whole request, however it trickles)


def raw_request(addr, data: bytes, timeout: float = 20, read: bool = True) -> str:
    """Sends data, returns the status code as text, or 'closed' (EOF/reset
    before any status line) or 'timeout'."""
    host, port = addr
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered early and closed: read what it said
            if not read:
                return "sent"
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except socket.timeout:
        return "timeout"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    if not buf.startswith(b"HTTP/1."):
        return "closed"
    return buf.split(b" ", 2)[1].decode()


def post(body: bytes, extra_headers: str = "", content_type: str = "application/json") -> bytes:
    head = (
        "POST /orders HTTP/1.1\r\nHost: api\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra_headers}\r\n"
    )
    return head.encode() + body


def obj(item, quantity) -> bytes:
    return json.dumps({"item": item, "quantity": quantity}).encode()


SQLISH = [
    "'; DROP TABLE orders; --",
    "Robert'); DELETE FROM outbox; --",
    "1 OR 1=1",
    "$1::text); TRUNCATE orders; --",
    "\\x00' || pg_sleep(10) || '",
]

# kind -> list of raw requests; expected: the status codes allowed for the kind
CASES = {
    "malformed JSON": [
        post(b"{"), post(b"not json"), post(b"{item: book}"), post(b'{"item": "book",}'),
        post(b'{"item":"book","quantity":2}}'), post(b""), post(b"[]"), post(b"null"),
        post(b'{"item": "book", "item": "pen", "quantity": 1}'),
    ],
    "truncated JSON": [
        post(b'{"item": "book", "quantity": 2'), post(b'{"item": "bo'), post(b'{"item"'),
    ],
    "wrong types": [
        post(obj(5, 2)), post(obj("book", "2")), post(obj("book", 2.0)), post(obj("book", True)),
        post(obj("book", None)), post(obj(["book"], 1)), post(obj({"a": 1}, 1)),
        post(b'{"item": "book"}'), post(b'{"quantity": 1}'), post(obj("", 1)),
        post(obj("book", 1), content_type="text/plain"),
    ],
    "huge numbers": [
        post(b'{"item": "book", "quantity": 1e400}'),
        post(b'{"item": "book", "quantity": 99999999999999999999999999}'),
        post(obj("book", 2**31)), post(obj("book", -(2**31) - 1)), post(obj("book", 2**63)),
        post(b'{"item": "book", "quantity": 1e2}'), post(obj("book", 10001)),
        post(obj("x" * 201, 1)),  # item over 200 bytes
    ],
    "largest valid quantity (10000)": [post(obj("book", 10000))],
    "zero and negative quantity": [
        post(obj("book", 0)), post(obj("book", -1)), post(obj("book", -(2**31))),
    ],
    "invalid UTF-8": [
        post(b'{"item": "\xff\xfe", "quantity": 1}'),
        post(b'{"item": "\xc0\xaf", "quantity": 1}'),  # overlong '/'
        post(b'{"item": "\xed\xa0\x80", "quantity": 1}'),  # UTF-8 encoded surrogate
        post(b'{"item": "\\ud800", "quantity": 1}'),  # lone surrogate escape
        post(b'{"item": "abc\xe2\x82", "quantity": 1}'),  # cut sequence
    ],
    "NUL bytes": [
        post(b'{"item": "a\x00b", "quantity": 1}'),
        post(b'{"item": "a\\u0000b", "quantity": 1}'),
        post(b'{"item": "book", "quantity": 1}\x00'),
        post(b'\x00{"item": "book", "quantity": 1}'),
    ],
    "SQL-looking strings": [post(obj(s, 1)) for s in SQLISH],
}
EXPECTED = {
    "largest valid quantity (10000)": {"201"},
    "SQL-looking strings": {"201"},
}
DEFAULT_EXPECTED = {"400", "415", "422"}


def count_rows(stack) -> tuple[int, int]:
    orders = int(stack.pg.psql("SELECT count(*) FROM orders", url=stack.url))
    outbox = int(stack.pg.psql("SELECT count(*) FROM outbox", url=stack.url))
    return orders, outbox


def served(addr) -> bool:
    """A normal request answered 201 within 5 s."""
    return raw_request(addr, post(obj("canary", 1)), timeout=5) == "201"


def burst(addr, n: int, deadline_s: float) -> collections.Counter:
    """n connections opened at once, each sending a valid POST; one thread,
    non-blocking sockets. Outcome per connection: status code, 'refused'
    (connect failed), 'closed' (EOF or reset before a status line) or
    'timeout' (nothing by the deadline)."""
    sel = selectors.DefaultSelector()
    out: collections.Counter = collections.Counter()
    req = post(obj("burst", 1))
    state = {}
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(addr)
        if err not in (0, 115):  # EINPROGRESS
            out["refused"] += 1
            s.close()
            continue
        state[s] = [req, b""]
        sel.register(s, selectors.EVENT_WRITE)
    end = time.monotonic() + deadline_s
    while state and time.monotonic() < end:
        for key, mask in sel.select(timeout=0.5):
            s = key.fileobj
            pending, buf = state[s]
            try:
                if mask & selectors.EVENT_WRITE:
                    sent = s.send(pending)
                    pending = pending[sent:]
                    state[s][0] = pending
                    if not pending:
                        sel.modify(s, selectors.EVENT_READ)
                    continue
                chunk = s.recv(4096)
            except (ConnectionResetError, BrokenPipeError, ConnectionRefusedError):
                chunk = b""
            if chunk:
                buf += chunk
                state[s][1] = buf
                if b"\r\n" not in buf:
                    continue
            status = buf.split(b" ", 2)[1].decode() if buf.startswith(b"HTTP/1.") else "closed"
            out[status] += 1
            sel.unregister(s)
            s.close()
            del state[s]
    for s in state:
        out["timeout"] += 1
        sel.unregister(s)
        s.close()
    return out


@pytest.mark.timeout(600)
def test_api_survives_bad_input(migrated_pg, spawn, run_dir):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 2500, "need 2,500 descriptors"

    stack = Stack(migrated_pg, None, spawn)
    api = stack.start_api()
    host, port = stack.api_base.removeprefix("http://").rsplit(":", 1)
    addr = (host, int(port))
    table = []  # (kind, requests, statuses Counter)
    created = 0

    def record(kind, outcomes):
        nonlocal created
        c = collections.Counter(outcomes)
        table.append((kind, sum(c.values()), c))
        created += c.get("201", 0)
        return c

    # 1. one-shot bad bodies
    for kind, reqs in CASES.items():
        c = record(kind, [raw_request(addr, r) for r in reqs])
        allowed = EXPECTED.get(kind, DEFAULT_EXPECTED)
        assert set(c) <= allowed, (kind, c)
    # SQL-looking strings are data: stored verbatim, nothing else touched.
    items = stack.pg.psql("SELECT item FROM orders ORDER BY item", url=stack.url).split("\n")
    for s in SQLISH:
        assert s in items, (s, items)
    assert count_rows(stack) == (created, created)

    # 2. 10 MB bodies: declared (413 before the body is read) and chunked
    # (connection dropped at 16 KiB: MHD cannot answer mid-body).
    ten_mb = b"{" + b" " * (10 * 1024 * 1024) + b"}"
    c = record("10 MB body, Content-Length", [raw_request(addr, post(ten_mb)) for _ in range(3)])
    assert set(c) <= {"413"}, c
    chunked = (
        b"POST /orders HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"100000\r\n" + b" " * 0x100000 + b"\r\n" for _ in range(10))
        + b"0\r\n\r\n"
    )
    c = record("10 MB body, chunked", [raw_request(addr, chunked) for _ in range(3)])
    assert set(c) <= {"413", "closed"}, c
    assert served(addr)

    # 3. clients that never finish: a chunked body with no end, headers that
    # stop half-way, a body shorter than its Content-Length, and a slowloris
    # that trickles header bytes. The api must serve others meanwhile and
    # drop the stalled ones after its idle timeout.
    stalled_kinds = {
        "chunked body with no end": b"POST /orders HTTP/1.1\r\nHost: api\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"ite\r\n",
        "headers never finished": b"POST /orders HTTP/1.1\r\nHost: api\r\nContent-Ty",
        "body shorter than Content-Length": post(b'{"item": "book"')[:-2].replace(
            b"Content-Length: 15", b"Content-Length: 1000"),
    }
    per_kind = 50
    stalled = {}
    for kind, data in stalled_kinds.items():
        socks = []
        for _ in range(per_kind):
            s = socket.create_connection(addr, timeout=5)
            s.sendall(data)
            socks.append(s)
        stalled[kind] = socks
    slow = []
    stop_trickle = threading.Event()
    trickle_closed = collections.Counter()

    def trickle():
        for _ in range(per_kind):
            s = socket.create_connection(addr, timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            slow.append(s)
        i = 0
        while not stop_trickle.wait(2):
            for s in list(slow):
                try:
                    s.sendall(f"X-Slow-{i}: y\r\n".encode())
                except OSError:
                    trickle_closed["closed"] += 1
                    slow.remove(s)
            i += 1

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    # Others are served while 200 connections hang.
    t0 = time.monotonic()
    latencies = []
    while time.monotonic() - t0 < max(CONN_TIMEOUT_S, REQUEST_DEADLINE_S) + 15:
        a = time.monotonic()
        assert served(addr), "api stopped serving while slow clients hung"
        latencies.append(time.monotonic() - a)
        time.sleep(1)
    # The stalled ones were dropped by the idle timeout.
    for kind, socks in stalled.items():
        outcomes = []
        for s in socks:
            s.settimeout(5)
            try:
                data = s.recv(4096)
                outcomes.append(
                    data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.") else "closed")
            except socket.timeout:
                outcomes.append("still open")
            except ConnectionResetError:
                outcomes.append("closed")
            s.close()
        c = record(kind, outcomes)
        assert "still open" not in c, (kind, c)
        assert set(c) <= {"closed", "400", "408", "413"}, (kind, c)
    stop_trickle.set()
    t.join(10)
    # Trickling clients are never idle: the request deadline ends them.
    c = record("slowloris (a header line every 2 s)",
               ["closed"] * trickle_closed["closed"] + ["still open"] * len(slow))
    assert c == {"closed": per_kind}, c
    assert "request not received within the deadline" in api.log_text()
    for s in slow:
        s.close()
    assert served(addr)

    # 4. 2,000 connections at once.
    c = record("burst of 2,000 concurrent POSTs", burst(addr, 2000, 120))
    assert sum(c.values()) == 2000
    assert set(c) <= {"201", "503", "closed", "refused"}, c
    assert c.get("201", 0) > 0 and "timeout" not in c, c
    time.sleep(1)
    assert served(addr), "api not serving after the burst"
    assert api.alive, api.log_tail()

    # Rows: every 201 and nothing else (the canaries from served() included).
    canaries = int(stack.pg.psql("SELECT count(*) FROM orders WHERE item = 'canary'", url=stack.url))
    orders, outbox = count_rows(stack)
    created_total = sum(n.get("201", 0) for _, _, n in table) + canaries
    assert orders == created_total and outbox == created_total, (orders, outbox, created_total)
    # No order without its event and no event without its order.
    orphans = stack.pg.psql(
        "SELECT count(*) FROM orders o LEFT JOIN outbox e ON e.aggregate_id = o.id::text"
        " WHERE e.id IS NULL", url=stack.url)
    assert orphans == "0"

    lines = [
        "| kind | requests | status codes received | rows written |",
        "|---|---:|---|---:|",
    ]
    for kind, n, statuses in table:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
        lines.append(f"| {kind} | {n} | {codes} | {statuses.get('201', 0)} |")
    lines.append(f"| canary POSTs while the above ran | {canaries} | 201: {canaries} | {canaries} |")
    lines.append(f"| **total** | | orders rows {orders}, outbox rows {outbox} | {created_total} |")
    lines.append("")
    lines.append(
        f"Canary latency while 200 connections hung ({len(latencies)} s): max {max(latencies) * 1000:.0f} ms, "
        f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms over {len(latencies)} requests."
    )
    text = "\n".join(lines)
    (run_dir / "api_abuse_table.md").write_text(text + "\n")
    print("\n" + text)
