"""--exactly-once against the real broker (the librdkafka mock ignores
read_committed and writes no transaction markers): a read_committed consumer
sees every outbox event once across crashes, and never half of a source
transaction."""

from __future__ import annotations

import collections
import random
import re
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from harness import HarnessError, unique_name
from stack import Stack, lsn_int

COMMITTED = ["-X", "isolation.level=read_committed"]
UNCOMMITTED = ["-X", "isolation.level=read_uncommitted"]


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    s = Stack(migrated_pg, kafka, spawn)
    s.checkpoint_topic = unique_name("ckpt")
    return s


def eos_args(stack, *extra):
    return ("--exactly-once", "--checkpoint-topic", stack.checkpoint_topic, *extra)


def committed(stack, count=None, timeout=60):
    return stack.kafka.consume(stack.topic, count=count, timeout=timeout, extra_args=COMMITTED)


def ids(events):
    return collections.Counter(e["headers"]["id"] for e in events)


def metric(relay, name) -> float:
    addr = re.search(r"metrics listening addr=(\S+)", relay.log_text()).group(1)
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


@pytest.mark.timeout(900)
@pytest.mark.matrix
def test_each_event_once_across_20_sigkills_under_load(stack):
    """Orders flow in from the api all along; the relay is SIGKILLed 20
    times at random moments and restarted. A read_committed consumer must
    end up with exactly the outbox: no duplicate, no loss."""
    stack.start_api(pool_size=4)
    relay = stack.start_relay(*eos_args(stack))
    stop = threading.Event()
    posted = collections.Counter()

    def load():
        while not stop.is_set():
            status = stack.post_order("eos", 1)[0]
            posted[status] += 1

    workers = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for w in workers:
        w.start()
    rng = random.Random()
    try:
        for _ in range(20):
            time.sleep(rng.uniform(0.2, 2.5))
            relay.kill()
            relay = stack.start_relay(*eos_args(stack))
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    assert posted[201] > 200, posted
    outbox = stack.outbox_ids()
    events = committed(stack, count=len(outbox), timeout=240)
    time.sleep(2)  # anything late (a second copy) would show now
    events = committed(stack, timeout=120)
    counts = ids(events)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    missing = outbox - set(counts)
    extra = set(counts) - outbox
    # What the aborted transactions left in the log (read_uncommitted sees them).
    raw = len(stack.kafka.read_all(stack.topic, UNCOMMITTED, timeout=120))
    print(
        f"exactly-once, 20 SIGKILLs: {len(outbox)} outbox rows, {len(events)} committed events, "
        f"{duplicates} duplicates, {len(missing)} missing; {raw - len(events)} aborted records "
        f"in the log"
    )
    assert duplicates == 0 and not missing and not extra, (duplicates, len(missing), len(extra))
    assert relay.alive


@pytest.mark.timeout(600)
def test_big_transaction_killed_mid_produce_is_all_or_nothing(stack):
    """One 200,000-row source transaction is one Kafka transaction: killed
    half way, a read_committed consumer sees none of it; after the restart,
    all of it, once."""
    rows = 200_000
    relay = stack.start_relay(*eos_args(stack, "--metrics-listen", "127.0.0.1:0"))
    stack.pg.psql(
        "INSERT INTO outbox SELECT gen_random_uuid(), 'orders', 'k' || (g % 100), 'Big',"
        f" jsonb_build_object('n', g) FROM generate_series(1, {rows}) g",
        url=stack.url,
        timeout=300,
    )
    stack.wait_until(
        lambda: metric(relay, "cdc_relay_events_produced_total") >= 60_000,
        120,
        "the relay half way through the transaction",
    )
    relay.kill()
    partial = stack.kafka.read_all(stack.topic, UNCOMMITTED, timeout=120)
    assert 0 < len(partial) < rows, "the kill must land inside the Kafka transaction"
    assert committed(stack) == [], "a read_committed consumer must see none of it"

    relay = stack.start_relay(*eos_args(stack))
    events = committed(stack, count=rows, timeout=300)
    time.sleep(2)
    events = committed(stack, timeout=120)
    counts = ids(events)
    assert len(events) == rows and len(counts) == rows
    assert {e["headers"]["event_type"] for e in events} == {"Big"}
    assert len({e["headers"]["lsn"] for e in events}) == 1


@pytest.mark.timeout(300)
@pytest.mark.matrix
def test_server_resending_committed_transactions_sends_no_second_copy(stack):
    """The server re-sends every transaction after the slot's
    confirmed_flush_lsn, which a Postgres crash can move back
    (docs/protocol.md#what-the-server-does-with-a-confirmed-position). Here
    --replay-window holds it back and --no-state-file makes the relay resume
    from the slot, so the whole history comes again on restart:
    the Kafka checkpoint must skip all of it."""
    stack.start_api(pool_size=2)
    args = eos_args(stack, "--no-state-file", "--replay-window", "1h")
    relay = stack.start_relay(*args)
    assert all(r[0] == 201 for r in stack.post_many(20, clients=2))
    events = committed(stack, count=20, timeout=60)
    first = min(lsn_int(e["headers"]["lsn"]) for e in events)
    relay.kill()
    assert stack.confirmed_flush() <= first, "the server must re-send the 20 for this test"

    relay = stack.start_relay(*args)
    assert stack.post_order("after the restart")[0] == 201
    events = committed(stack, count=21, timeout=60)
    time.sleep(2)
    events = committed(stack)
    assert len(events) == 21 and len(ids(events)) == 21
    assert re.search(r"checkpoint of slot \S+ in \S+ at [0-9A-F]+/[0-9A-F]+", relay.log_text())


@pytest.mark.timeout(300)
def test_a_second_relay_with_the_same_transactional_id_fences_the_first(
    migrated_pg, kafka, spawn
):
    txn_id = unique_name("txn")
    a = Stack(migrated_pg, kafka, spawn)
    b = Stack(migrated_pg, kafka, spawn)
    a.checkpoint_topic = b.checkpoint_topic = unique_name("ckpt")
    a.start_api(pool_size=2)
    relay_a = a.start_relay(*eos_args(a, "-X", f"transactional.id={txn_id}"))
    assert a.post_order()[0] == 201
    assert len(committed(a, count=1)) == 1
    relay_b = b.start_relay(*eos_args(b, "-X", f"transactional.id={txn_id}"))
    assert a.post_order("after b")[0] == 201
    assert relay_a.wait(90) == 3
    assert "fenced" in relay_a.log_text()
    assert len(committed(a)) == 1, "the fenced relay's transaction must not be visible"
    assert relay_b.alive


@pytest.mark.timeout(120)
def test_clean_stop_commits_and_help_documents_the_mode(stack):
    stack.start_api(pool_size=2)
    relay = stack.start_relay(*eos_args(stack, "--txn-max-ms", "60000"))
    assert all(r[0] == 201 for r in stack.post_many(5, clients=1))
    time.sleep(1)
    assert committed(stack) == [], "the batch is open for 60 s: nothing committed yet"
    relay.signal(signal.SIGTERM)
    assert relay.wait(60) == 0, relay.log_tail()
    assert len(committed(stack)) == 5
    help_text = subprocess.run(
        [str(relay.path), "--help"], capture_output=True, text=True, timeout=10
    ).stdout
    for word in ("--exactly-once", "CDC_EXACTLY_ONCE", "--checkpoint-topic", "--txn-max-ms"):
        assert word in help_text


@pytest.mark.timeout(600)
def test_broker_restart_under_load_each_event_once(stack):
    """The broker is stopped and started again while orders flow: whatever
    the producer meets (retries, an aborted transaction and a rewind, a
    fatal error and a new producer), a read_committed consumer sees each
    event once. The relay must survive it: systemd does not restart exit 1."""
    stack.start_api(pool_size=4)
    relay = stack.start_relay(*eos_args(stack))
    stop = threading.Event()

    def load():
        while not stop.is_set():
            stack.post_order("eos", 1)

    workers = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        time.sleep(2)
        stack.kafka.stop()
        time.sleep(3)
        stack.kafka.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert relay.alive, relay.log_tail()
            time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    outbox = stack.outbox_ids()
    events = committed(stack, count=len(outbox), timeout=240)
    time.sleep(2)
    events = committed(stack, timeout=120)
    counts = ids(events)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    print(
        f"exactly-once, broker restart: {len(outbox)} outbox rows, {duplicates} duplicates, "
        f"{len(outbox - set(counts))} missing, "
        f"{relay.log_text().count('rewinding to ')} rewinds"
    )
    assert duplicates == 0 and set(counts) == outbox


@pytest.mark.timeout(600)
def test_failed_deliveries_abort_and_rewind_to_the_checkpoint(stack):
    """Deliveries that fail (the broker hangs longer than message.timeout.ms)
    make the relay abort the open Kafka transaction and rewind to the last
    checkpoint with a new producer: no duplicate, no loss."""
    stack.start_api(pool_size=4)
    # socket.timeout.ms below the pause: a request already sent when the broker
    # hangs fails too. Without it, a pause that caught every message in flight
    # timed nothing out, and nothing rewound.
    args = eos_args(
        stack, "-X", "message.timeout.ms=2000", "-X", "socket.timeout.ms=4000",
        "-X", "transaction.timeout.ms=60000",
    )  # fmt: skip
    relay = stack.start_relay(*args)
    stop = threading.Event()

    def load():
        while not stop.is_set():
            stack.post_order("eos", 1)

    workers = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        # The pause must catch the relay producing. (Not read with kcat: under
        # load a transaction is always open, and a read_committed kcat -e
        # never reaches the end of a partition.)
        stack.wait_until(lambda: metric(relay, "cdc_relay_events_delivered_total") > 0, 60, "a delivery")
        # A pause that lands on a commit whose events are all delivered fails
        # nothing: librdkafka retries the EndTxn after the broker is back and
        # the commit succeeds, which is right. Pause again, up to five times,
        # until one catches deliveries.
        for pauses in range(1, 6):
            time.sleep(1)
            since = relay.mark()
            stack.kafka.pause()
            time.sleep(6)
            stack.kafka.resume()
            try:
                relay.wait_for_log(r"rewinding to the last checkpoint", 30, since=since)
                break
            except HarnessError:
                assert relay.alive, relay.log_tail()
        else:
            raise AssertionError(f"{pauses} broker pauses of 6 s and no rewind:\n{relay.log_tail()}")
        print(f"rewound after {pauses} broker pause(s)")
        relay.wait_for_log(r"rewinding to .* with a new producer(.*\n)*.*streaming slot", 90, since=since)
        time.sleep(3)
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    outbox = stack.outbox_ids()
    events = committed(stack, count=len(outbox), timeout=240)
    time.sleep(2)
    events = committed(stack, timeout=120)
    counts = ids(events)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    assert duplicates == 0 and set(counts) == outbox, (duplicates, len(outbox - set(counts)))
    assert relay.alive
