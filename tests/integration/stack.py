"""A running system for one test: its own database, api and relay.

Each test gets a fresh database (slots are per database), its own slot and
publication names, and by default its own topic template, so tests never see
each other's events even though they share one Postgres and one Kafka.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from harness import HarnessError, run_bin, unique_name

LSN_RE = re.compile(r"^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def lsn_int(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def murmur2(data: bytes) -> int:
    """Kafka's Java DefaultPartitioner hash (Utils.murmur2), seed 0x9747b28c."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    tail = data[length - rest :]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key: str, partitions: int) -> int:
    """The partition a Java producer picks for a non-null key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class Stack:
    def __init__(self, pg, kafka, spawn, topic_prefix: str | None = "auto"):
        self.pg = pg
        self.kafka = kafka
        self.spawn = spawn
        self.url = pg.new_database()
        self.slot = unique_name("slot")
        self.publication = unique_name("pub")
        if topic_prefix == "auto":
            topic_prefix = unique_name("it")
        self.template = (
            f"{topic_prefix}.${{aggregate_type}}.events" if topic_prefix else "${aggregate_type}.events"
        )
        self.topic = self.template.replace("${aggregate_type}", "orders")
        # The relay's saved position, beside the servers of this run.
        self.state_file = str(pg.dir.parent / f"{self.slot}.state")
        self.api = None
        self.api_base = None
        self.relay = None
        r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": self.url}, timeout=120)
        if r.returncode != 0:
            raise HarnessError(f"migrate failed: {r.stderr}")

    # processes -----------------------------------------------------------
    def start_api(self, pool_size: int = 8, extra_args: tuple[str, ...] = ()):
        """extra_args: more orders-api flags, e.g. ("--outbox-mode", "message")."""
        self.api = self.spawn(
            "orders-api",
            "--pool-size",
            str(pool_size),
            *extra_args,
            env={"DATABASE_URL": self.url, "LISTEN_ADDR": "127.0.0.1:0"},
            wait_for=r"listening addr=\S+",
        )
        addr = re.search(r"listening addr=(\S+)", self.api.log_text()).group(1)
        self.api_base = f"http://{addr}"
        return self.api

    def relay_args(self, *extra: str) -> list[str]:
        return [
            "--slot",
            self.slot,
            "--publication",
            self.publication,
            "--topic-template",
            self.template,
            "--status-interval",
            "1",
            "--state-file",
            self.state_file,
            *extra,
        ]

    def start_relay(self, *extra: str, wait: bool = True):
        self.relay = self.spawn(
            "cdc-relay",
            *self.relay_args(*extra),
            env={"DATABASE_URL": self.url, "KAFKA_BROKERS": self.kafka.brokers},
            wait_for=r"streaming slot" if wait else None,
        )
        return self.relay

    # http ------------------------------------------------------------------
    def post_order(self, item: str = "book", quantity: int = 1, timeout: float = 30):
        body = json.dumps({"item": item, "quantity": quantity}).encode()
        req = urllib.request.Request(
            self.api_base + "/orders",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def post_many(self, n: int, clients: int = 16):
        """POST n orders from `clients` threads; returns [(status, headers, body)]."""
        with ThreadPoolExecutor(max_workers=clients) as pool:
            return list(pool.map(lambda i: self.post_order(f"item-{i}", 1 + i % 5), range(n)))

    # database ----------------------------------------------------------------
    def confirmed_flush(self) -> int:
        out = self.pg.psql(
            f"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{self.slot}'",
            url=self.url,
        )
        return lsn_int(out) if out else 0

    def current_lsn(self) -> int:
        return lsn_int(self.pg.psql("SELECT pg_current_wal_lsn()", url=self.url))

    def outbox_ids(self) -> set[str]:
        out = self.pg.psql("SELECT id FROM outbox", url=self.url)
        return set(out.split()) if out else set()

    # kafka -------------------------------------------------------------------
    def events(self, count: int | None = None, timeout: float = 60):
        return self.kafka.consume(self.topic, count=count, timeout=timeout)

    def events_covering(self, ids: set[str], timeout: float = 120) -> list[dict]:
        """The topic once every id in `ids` is in it (by the `id` header), or
        what is there after `timeout`. A count of messages is not enough after
        a crash: duplicates reach the count while later events are still on
        their way."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.kafka.consume(self.topic)
            if ids <= {e["headers"].get("id") for e in events} or time.monotonic() >= deadline:
                return events
            time.sleep(0.5)

    def wait_until(self, predicate, timeout: float = 30, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached within {timeout} s")
            time.sleep(0.2)
