"""Minimal pgoutput (protocol version 1) decoder for the fault suite's oracle.

Pure functions over bytes, independent of the relay's C decoder (cdc/pgout.c),
so a bug there cannot hide itself. Handles what a shadow slot on an
insert-only publication produces: Begin, Relation, Type, Origin, Insert,
Commit, and transactional logical Messages (ignored). Anything else raises.
Layouts: PostgreSQL docs, "Logical Replication Message Formats".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


class DecodeError(Exception):
    pass


@dataclass
class Event:
    """One committed outbox insert."""

    row: dict  # column name -> text value (None for NULL)
    commit_lsn: int  # the Commit message's commit LSN (the relay's `lsn` header)
    end_lsn: int  # end of the commit record: what a client confirms
    commit_ts: int  # microseconds since 2000-01-01 UTC
    xid: int
    seq: int  # position in commit order, over all events


@dataclass
class Decoder:
    relations: dict = field(default_factory=dict)  # relid -> (schema, name, [columns])
    events: list = field(default_factory=list)
    _txn: list | None = None
    _xid: int = 0

    def feed(self, data: bytes) -> None:
        """Decode one pgoutput message (one row of peek_binary_changes)."""
        tag = data[:1]
        pos = 1
        if tag == b"B":
            if self._txn is not None:
                raise DecodeError("Begin inside a transaction")
            _final_lsn, _ts, self._xid = struct.unpack_from(">QqI", data, pos)
            self._txn = []
        elif tag == b"C":
            if self._txn is None:
                raise DecodeError("Commit outside a transaction")
            _flags, commit_lsn, end_lsn, ts = struct.unpack_from(">BQQq", data, pos)
            for row in self._txn:
                self.events.append(Event(row, commit_lsn, end_lsn, ts, self._xid, len(self.events)))
            self._txn = None
        elif tag == b"R":
            (relid,) = struct.unpack_from(">I", data, pos)
            pos += 4
            schema, pos = _cstr(data, pos)
            name, pos = _cstr(data, pos)
            pos += 1  # replica identity
            (ncols,) = struct.unpack_from(">H", data, pos)
            pos += 2
            cols = []
            for _ in range(ncols):
                pos += 1  # flags
                col, pos = _cstr(data, pos)
                pos += 8  # type oid, typmod
                cols.append(col)
            self.relations[relid] = (schema, name, cols)
        elif tag == b"I":
            if self._txn is None:
                raise DecodeError("Insert outside a transaction")
            relid, marker = struct.unpack_from(">Ic", data, pos)
            pos += 5
            if marker != b"N":
                raise DecodeError(f"Insert tuple marker {marker!r}")
            if relid not in self.relations:
                raise DecodeError(f"Insert for unknown relation {relid}")
            _schema, _name, cols = self.relations[relid]
            values, pos = _tuple(data, pos)
            if len(values) != len(cols):
                raise DecodeError(f"Insert with {len(values)} values for {len(cols)} columns")
            self._txn.append(dict(zip(cols, values)))
        elif tag in (b"Y", b"O", b"M"):
            pass  # type, origin, logical message: not outbox rows
        else:
            raise DecodeError(f"unexpected pgoutput message {tag!r}")


def _cstr(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\0", pos)
    return data[pos:end].decode(), end + 1


def _tuple(data: bytes, pos: int) -> tuple[list, int]:
    (n,) = struct.unpack_from(">H", data, pos)
    pos += 2
    out = []
    for _ in range(n):
        kind = data[pos : pos + 1]
        pos += 1
        if kind == b"n":
            out.append(None)
        elif kind == b"u":
            raise DecodeError("unchanged TOAST value in an insert")
        elif kind == b"t":
            (length,) = struct.unpack_from(">I", data, pos)
            pos += 4
            out.append(data[pos : pos + length].decode())
            pos += length
        else:
            raise DecodeError(f"column kind {kind!r}")
    return out, pos


def decode_rows(hex_rows: list[str]) -> Decoder:
    """Decode the hex `data` column of pg_logical_slot_peek_binary_changes rows."""
    d = Decoder()
    for h in hex_rows:
        d.feed(bytes.fromhex(h))
    return d
