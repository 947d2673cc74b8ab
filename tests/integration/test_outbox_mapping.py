"""The outbox column mapping (docs/relay.md, "The outbox table and its
columns"): a Debezium outbox table as it is, configured only through the
relay's options (flags, environment, config file); a bytea payload that
arrives byte for byte; extra columns as headers, NULL ones included; the
same messages from stream and poll mode."""

from __future__ import annotations

import json
import struct
import subprocess
import time
import uuid

import pytest

from harness import unique_name
from stack import TS_RE, Stack, java_partition

# Debezium's default outbox table, as its documentation shows it
# (outbox-event-router.adoc, "Basic outbox table").
DEBEZIUM_TABLE = """CREATE TABLE {name} (
    id            uuid NOT NULL PRIMARY KEY,
    aggregatetype varchar(255) NOT NULL,
    aggregateid   varchar(255) NOT NULL,
    type          varchar(255) NOT NULL,
    payload       jsonb
)"""


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    return Stack(migrated_pg, kafka, spawn)


def read_meta(kafka, topic: str) -> list[dict]:
    """Key, headers and position of every message (kcat -J), read as bytes:
    the harness's text consumer would choke on binary payloads."""
    r = subprocess.run(
        ["kcat", "-C", "-b", kafka.brokers, "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
        capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    msgs = []
    for line in r.stdout.decode("utf-8", "surrogateescape").splitlines():
        if line.startswith("{"):
            m = json.loads(line)
            raw = m.get("headers") or []
            m["header_list"] = list(zip(raw[0::2], raw[1::2]))
            m["headers"] = dict(m["header_list"])
            msgs.append(m)
    return sorted(msgs, key=lambda m: (m["partition"], m["offset"]))


def read_raw(kafka, topic: str, count: int, timeout: float = 60) -> list[bytes | None]:
    """The values of the first `count` messages as bytes (kcat's %R%s: a
    big-endian length, -1 for a null value, then the bytes), sorted by
    (partition, offset) as kcat reads them partition by partition."""
    values: list[bytes | None] = []
    for _ in range(int(timeout / 0.5)):
        r = subprocess.run(
            ["kcat", "-C", "-b", kafka.brokers, "-t", topic, "-o", "beginning", "-e", "-q",
             "-f", "%p %o %R%s"],
            capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        out, msgs = r.stdout, []
        while out:
            part, off, rest = out.split(b" ", 2)
            (n,) = struct.unpack(">i", rest[:4])
            value = None if n < 0 else rest[4:4 + n]
            msgs.append(((int(part), int(off)), value))
            out = rest[4 + max(n, 0):]
        values = [v for _, v in sorted(msgs)]
        if len(values) >= count:
            break
        time.sleep(0.5)
    return values


@pytest.mark.timeout(180)
def test_debezium_outbox_table_works_by_configuration_alone(stack, run_dir):
    table = unique_name("outboxevent")
    stack.pg.psql(DEBEZIUM_TABLE.format(name=table), url=stack.url)
    prefix = unique_name("dbz")
    # The mapping in a config file and the environment, as a deployment
    # would carry it; nothing on the command line but the test's names.
    conf = run_dir / f"{table}.conf"
    conf.write_text(
        f"table = public.{table}\n"
        "route-column = aggregatetype\n"
        "key-column = aggregateid\n"
        # Debezium's route.topic.replacement default, under the test's prefix
        f"topic-template = {prefix}.outbox.event.${{routedByValue}}\n")
    relay = stack.spawn(
        "cdc-relay",
        "--slot", stack.slot, "--publication", stack.publication, "--status-interval", "1",
        "--state-file", stack.state_file,
        env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers,
             "CDC_CONFIG": str(conf), "CDC_TYPE_COLUMN": "type"},
        wait_for=r"streaming slot")
    rows = [(str(uuid.uuid4()), "Order", str(i), "OrderCreated", {"id": i, "item": f"b{i}"})
            for i in range(1, 6)]
    rows.append((str(uuid.uuid4()), "Customer", "c1", "CustomerCreated", None))
    values = ", ".join(
        f"('{i}', '{t}', '{k}', '{e}', " + (f"'{json.dumps(p)}'" if p else "NULL") + ")"
        for i, t, k, e, p in rows)
    stack.pg.psql(f"INSERT INTO {table} VALUES {values}", url=stack.url)

    orders = stack.kafka.consume(f"{prefix}.outbox.event.Order", count=5, timeout=60)
    customers = stack.kafka.consume(f"{prefix}.outbox.event.Customer", count=1, timeout=60)
    assert len(orders) == 5 and len(customers) == 1
    stored = dict(
        line.split("|", 1)
        for line in stack.pg.psql(f"SELECT id, payload::text FROM {table}", url=stack.url).split("\n"))
    partitions = len(stack.kafka.partitions(f"{prefix}.outbox.event.Order"))
    for e in orders + customers:
        event_id = e["headers"]["id"]
        i, t, k, et, p = next(r for r in rows if r[0] == event_id)
        assert e["key"] == k
        assert e["payload"] == (stored[event_id] or None)  # jsonb's text, as stored
        assert [h for h, _ in e["header_list"]] == ["id", "event_type", "aggregate_type", "lsn",
                                                     "commit_ts"]
        assert e["headers"]["event_type"] == et and e["headers"]["aggregate_type"] == t
        assert TS_RE.match(e["headers"]["commit_ts"])
        if e in orders:
            assert e["partition"] == java_partition(k, partitions)
    assert customers[0]["payload"] is None  # a NULL payload: a null value (tombstone)
    assert f'table public.{table} has no column "traceparent"' in relay.wait_for_log(
        r"trace context: .*", 30).group(0)
    assert relay.alive


BIN_TABLE = """CREATE TABLE {name} (
    id                 uuid NOT NULL PRIMARY KEY,
    aggregatetype      varchar(255) NOT NULL,
    aggregateid        varchar(255) NOT NULL,
    type               varchar(255) NOT NULL,
    payload            bytea,
    "timestamp"        bigint NOT NULL DEFAULT (extract(epoch FROM now()) * 1000)::bigint,
    tenant             text,
    schema_version     int,
    tracingspancontext text,
    sent               timestamptz
)"""

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

# Bytes no text column could carry: NUL, 0xff, invalid UTF-8, a backslash.
BLOBS = [bytes(range(256)), b"", b"\x00", b"\xff\xfe\\x41", b"{\"json\": true}"]


# pgoutput's Relation and text forms of bytea, varchar and bigint columns:
# on every PostgreSQL version.
@pytest.mark.matrix
@pytest.mark.timeout(240)
def test_bytea_payload_and_header_columns_in_stream_and_poll_mode(stack):
    table = unique_name("outbox_bin")
    stack.pg.psql(BIN_TABLE.format(name=table), url=stack.url)
    prefix = unique_name("bin")
    mapping = [
        "--table", table, "--route-column", "aggregatetype", "--key-column", "aggregateid",
        "--type-column", "type", "--timestamp-column", "timestamp", "--published-column", "sent",
        "--traceparent-column", "tracingspancontext",
        "--header-columns", "tenant=x-tenant, schema_version",
    ]
    stream_tmpl = f"{prefix}.s.${{aggregate_type}}"
    stack.spawn("cdc-relay", *stack.relay_args(*mapping, "--topic-template", stream_tmpl),
                env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers},
                wait_for=r"streaming slot")
    ids = [str(uuid.uuid4()) for _ in BLOBS]
    tracing = [
        None,
        # Debezium's outbox extension: a serialized java.util.Properties
        f"#Mon Jan 01 00:00:00 UTC 2024\ntraceparent={TRACEPARENT}\n",
        TRACEPARENT,
        None,
        None,
    ]
    for n, (i, blob, tp) in enumerate(zip(ids, BLOBS, tracing)):
        tenant = "NULL" if n % 2 else f"'tenant-{n}'"
        tpv = "NULL" if tp is None else "'" + tp.replace("'", "''") + "'"
        stack.pg.psql(
            f"INSERT INTO {table} (id, aggregatetype, aggregateid, type, payload, tenant,"
            f" schema_version, tracingspancontext) VALUES ('{i}', 'Blob', 'k{n}', 'BlobStored',"
            f" '\\x{blob.hex()}'::bytea, {tenant}, {n}, {tpv})",
            url=stack.url)
    stack.pg.psql(f"INSERT INTO {table} (id, aggregatetype, aggregateid, type, payload)"
                  f" VALUES ('{uuid.uuid4()}', 'Blob', 'knull', 'BlobStored', NULL)", url=stack.url)
    ids.append(None)

    poller = stack.spawn(
        "cdc-relay", "--mode", "poll", *mapping, "--topic-template", f"{prefix}.p.${{aggregate_type}}",
        "--poll-interval", "0.2", "--until-empty",
        # the escape format of bytea output, which the relay decodes too
        env={"DATABASE_URL": stack.url + "?options=-c%20bytea_output%3Descape",
             "KAFKA_BROKERS": stack.kafka.brokers})
    assert poller.wait(90) == 0, poller.log_tail()

    for mode in ("s", "p"):
        topic = f"{prefix}.{mode}.Blob"
        raw = read_raw(stack.kafka, topic, len(ids))
        events = read_meta(stack.kafka, topic)
        assert len(events) == len(ids) == len(raw), (mode, len(events), len(raw))
        by_key = {}
        for e, value in zip(events, raw):
            by_key[e["key"]] = (e, value)
        for n, blob in enumerate(BLOBS):
            e, value = by_key[f"k{n}"]
            assert value == blob, (mode, n, value, blob)  # byte for byte
            h = e["headers"]
            assert h["id"] == ids[n] and h["event_type"] == "BlobStored"
            assert h["aggregate_type"] == "Blob"
            assert h["schema_version"] == str(n)
            # A NULL header column is a header with a null value.
            assert "x-tenant" in h and h["x-tenant"] == (None if n % 2 else f"tenant-{n}")
            if tracing[n] is None:
                assert "traceparent" not in h
            else:
                assert h["traceparent"] == TRACEPARENT
            names = [k for k, _ in e["header_list"]]
            want = ["id", "event_type", "aggregate_type"] + (["lsn"] if mode == "s" else [])
            want += ["commit_ts"] + (["traceparent"] if tracing[n] else []) + ["x-tenant",
                                                                               "schema_version"]
            assert names == want, (mode, names)
        e, value = by_key["knull"]
        assert value is None
        assert e["headers"]["x-tenant"] is None and e["headers"]["schema_version"] is None


@pytest.mark.timeout(120)
def test_a_mapped_column_the_table_lacks_is_a_clear_error(stack):
    # The mapping is checked against the table's first Relation message, so
    # the insert comes after the slot exists (streaming).
    relay = stack.start_relay("--key-column", "aggregateid")
    stack.pg.psql("INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)"
                  " VALUES (gen_random_uuid(), 'orders', 'k', 'E', '{}')", url=stack.url)
    assert relay.wait(60) == 1
    assert 'has no column "aggregateid"' in relay.log_text()
    assert "--key-column" in relay.log_text()
    # A traceparent column named explicitly must exist; the default one may not.
    poller = stack.spawn(
        "cdc-relay", "--mode", "poll", "--traceparent-column", "trace_ctx", "--until-empty",
        env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers})
    assert poller.wait(60) == 1
    assert 'has no column "trace_ctx"' in poller.log_text()
    poller = stack.spawn(
        "cdc-relay", "--mode", "poll", "--header-columns", "tenant", "--until-empty",
        env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers})
    assert poller.wait(60) == 1
    assert 'has no column "tenant"' in poller.log_text()
