"""The fault suite's oracle on hand-made inputs: the decoder against bytes
built here from the documented layouts, and check() against topics with a
missing event, a phantom, a duplicate, a reordered key and an early
confirmation, so that each verdict is shown to fire. No servers."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402
from pgoutput import DecodeError, decode_rows  # noqa: E402

import suite  # noqa: E402

COLS = ["id", "aggregate_type", "aggregate_id", "event_type", "payload", "created_at"]


def relation() -> bytes:
    body = struct.pack(">I", 16384) + b"public\0outbox\0" + b"d" + struct.pack(">H", len(COLS))
    for c in COLS:
        body += b"\0" + c.encode() + b"\0" + struct.pack(">Ii", 25, -1)
    return b"R" + body


def insert(values) -> bytes:
    body = struct.pack(">I", 16384) + b"N" + struct.pack(">H", len(values))
    for v in values:
        if v is None:
            body += b"n"
        else:
            body += b"t" + struct.pack(">I", len(v)) + v.encode()
    return b"I" + body


def begin(xid: int) -> bytes:
    return b"B" + struct.pack(">QqI", 0, 0, xid)


def commit(commit_lsn: int, end_lsn: int, ts: int = 0) -> bytes:
    return b"C" + struct.pack(">BQQq", 0, commit_lsn, end_lsn, ts)


def row(i: str, key: str):
    return [i, "orders", key, "E", '{"n": 1}', None]


def txns(*specs):
    """specs: (xid, commit_lsn, end_lsn, [(id, key), ...]) -> hex rows."""
    out = [relation()]
    for xid, c, e, rows in specs:
        out.append(begin(xid))
        out += [insert(row(i, k)) for i, k in rows]
        out.append(commit(c, e, 1000))
    return [m.hex() for m in out]


def test_decoder_keeps_commit_order_lsns_and_columns():
    d = decode_rows(txns((7, 0x100, 0x110, [("a", "k"), ("b", "j")]), (8, 0x200, 0x210, [("c", "k")])))
    assert [e.row["id"] for e in d.events] == ["a", "b", "c"]
    assert [(e.commit_lsn, e.end_lsn, e.xid) for e in d.events] == [
        (0x100, 0x110, 7),
        (0x100, 0x110, 7),
        (0x200, 0x210, 8),
    ]
    assert d.events[0].row["aggregate_id"] == "k" and d.events[0].row["created_at"] is None


def test_decoder_refuses_what_it_does_not_know():
    with pytest.raises(DecodeError):
        decode_rows([b"U".hex()])
    with pytest.raises(DecodeError):
        decode_rows([insert(row("a", "k")).hex()])  # outside a transaction


def msg(i, key, offset, ts, commit_lsn=0x100):
    return {
        "partition": 0,
        "offset": offset,
        "key": key,
        "payload": '{"n": 1}',
        "ts": ts,
        "headers": {"id": i, "event_type": "E", "lsn": f"0/{commit_lsn:X}", "commit_ts": suite.pg_ts(1000)},
    }


EVENTS = decode_rows(
    txns((1, 0x100, 0x110, [("a", "k")]), (2, 0x200, 0x210, [("b", "k")]), (3, 0x300, 0x310, [("c", "j")]))
).events


def test_clean_run_passes():
    msgs = [msg("a", "k", 0, 10, 0x100), msg("b", "k", 1, 20, 0x200), msg("c", "j", 2, 30, 0x300)]
    res = suite.check(EVENTS, msgs, [(40.0, 0x310)], sharp=True, expect_all=True)
    assert suite.verdict(res) == []
    assert (res["committed"], res["delivered"], res["dups"]) == (3, 3, 0)


def test_each_violation_is_counted():
    msgs = [
        msg("b", "k", 0, 20, 0x200),  # k out of commit order: b before a
        msg("a", "k", 1, 25, 0x100),
        msg("a", "k", 2, 26, 0x100),  # duplicate
        msg("zz", "k", 3, 27),  # phantom
    ]  # c missing
    res = suite.check(EVENTS, msgs, [(21.0, 0x310)], sharp=True, expect_all=True)
    assert res["lost"] == 1 and res["dups"] == 1 and res["phantom"] == 1 and res["order_bad"] == 1
    # confirmed 0x310 at t=21: a (appended at 25) and c (never) were not in Kafka yet
    assert res["past"] == 2
    assert len(suite.verdict(res)) == 4  # duplicates are allowed (at-least-once)


def test_wrong_contents_are_counted():
    m = msg("a", "k", 0, 10, 0x100)
    m["headers"]["commit_ts"] = "2000-01-01T00:00:00.000000Z"
    res = suite.check(EVENTS[:1], [m], [], sharp=True, expect_all=True)
    assert res["content_bad"] == 1
