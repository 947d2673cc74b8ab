"""The publication the relay reads through, changed or dropped behind its back.

Regression (found by the fault suite, docs/reliability.md): with the outbox
table removed from the publication while the relay streams, pgoutput stops
sending its inserts without a word, and the relay used to confirm keepalive
positions past them and run on: a silent loss.

A dropped publication is where PostgreSQL versions differ
(docs/protocol.md#p9): up to 17 pgoutput raises `publication "x" does not
exist` at the next decoded change, 18 logs `skipped loading publication` and
sends nothing for it. These tests run on every version (`matrix`)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from harness import _psql_bin
from stack import Stack, lsn_int

pytestmark = pytest.mark.matrix


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    s = Stack(migrated_pg, kafka, spawn)
    s.start_api()
    return s


def streaming_after_one_event(stack):
    """A relay that has delivered and confirmed one order."""
    relay = stack.start_relay()
    assert stack.post_order("before")[0] == 201
    assert len(stack.events(count=1, timeout=60)) == 1
    stack.wait_until(lambda: stack.confirmed_flush() > 0, 15, "a first confirmation")
    return relay


def stopped_after_one_event(stack):
    relay = streaming_after_one_event(stack)
    relay.signal(signal.SIGTERM)
    assert relay.wait(40) == 0, relay.log_tail()


@pytest.mark.timeout(150)
def test_table_removed_from_publication_stops_the_relay_without_confirming_past_it(stack):
    relay = streaming_after_one_event(stack)
    stack.pg.psql(f"ALTER PUBLICATION {stack.publication} DROP TABLE outbox", url=stack.url)
    changed_at = stack.current_lsn()
    assert stack.post_order("after")[0] == 201
    assert relay.wait(60) == 1, relay.log_tail()
    assert "is no longer in publication" in relay.log_text()
    # The order written after the change never reached Kafka, so the slot
    # must not have been told it did.
    assert len(stack.events()) == 1
    assert stack.confirmed_flush() <= changed_at


@pytest.mark.timeout(150)
def test_publication_dropped_while_streaming_stops_the_relay_without_confirming_past_it(stack):
    relay = streaming_after_one_event(stack)
    stack.pg.psql(f"DROP PUBLICATION {stack.publication}", url=stack.url)
    dropped_at = stack.current_lsn()
    assert stack.post_order("after")[0] == 201
    assert relay.wait(60) == 1, relay.log_tail()
    # Up to 17 pgoutput's own error ends the stream; on 18 it sends nothing
    # and the relay's check before confirming finds the publication gone.
    # Whichever comes first, the error names the publication.
    log = relay.log_text()
    assert f'publication "{stack.publication}" does not exist' in log, relay.log_tail()
    assert len(stack.events()) == 1
    assert stack.confirmed_flush() <= dropped_at


@pytest.mark.timeout(150)
def test_publication_dropped_while_stopped_is_not_recreated_behind_the_slot(stack):
    """A publication created after the slot does not cover the WAL before it:
    the orders written while it was missing must not be skipped."""
    stopped_after_one_event(stack)
    stack.pg.psql(f"DROP PUBLICATION {stack.publication}", url=stack.url)
    confirmed = stack.confirmed_flush()
    assert stack.post_order("while missing")[0] == 201
    relay = stack.start_relay(wait=False)
    assert relay.wait(60) == 1, relay.log_tail()
    assert f'publication "{stack.publication}" does not exist' in relay.log_text()
    assert len(stack.events()) == 1
    assert stack.confirmed_flush() == confirmed


@pytest.mark.timeout(120)
def test_missing_publication_with_no_create_publication_is_refused(stack):
    relay = stack.start_relay("--no-create-publication", wait=False)
    assert relay.wait(60) == 1, relay.log_tail()
    assert f'publication "{stack.publication}" does not exist' in relay.log_text()
    assert stack.pg.psql(
        f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{stack.slot}'", url=stack.url
    ) == "0"


@pytest.mark.timeout(120)
def test_publication_without_the_table_or_inserts_is_refused_at_start(stack):
    stack.pg.psql(f"CREATE PUBLICATION {stack.publication}", url=stack.url)
    relay = stack.start_relay(wait=False)
    assert relay.wait(60) == 1, relay.log_tail()
    assert "does not include table public.outbox" in relay.log_text()
    stack.pg.psql(
        f"ALTER PUBLICATION {stack.publication} ADD TABLE outbox;"
        f" ALTER PUBLICATION {stack.publication} SET (publish = 'update')",
        url=stack.url,
    )
    relay = stack.start_relay(wait=False)
    assert relay.wait(60) == 1, relay.log_tail()
    assert "does not publish inserts" in relay.log_text()


def _check_backends(stack) -> list[tuple[int, str]]:
    out = stack.pg.psql(
        "SELECT pid, coalesce(wait_event_type, '') FROM pg_stat_activity"
        " WHERE application_name = 'cdc-relay-check' AND datname = current_database()",
        url=stack.url,
    )
    return [(int(p), w) for p, w in (line.split("|") for line in out.splitlines() if line)]


@pytest.mark.timeout(180)
def test_a_stalled_publication_check_leaves_the_stream_running(stack):
    """The check runs on a connection of its own that the loop never waits
    for (docs/relay.md): while its query waits for a lock, the orders made in
    the meantime still reach Kafka and the server keeps getting answers, but
    nothing received after the stalled check started is confirmed until it
    answers. The connection stays open from one check to the next."""
    relay = stack.start_relay("--status-interval", "1")
    assert stack.post_order("first")[0] == 201
    assert len(stack.events(count=1, timeout=60)) == 1
    stack.wait_until(lambda: stack.confirmed_flush() > 0, 15, "a first confirmation")
    stack.wait_until(lambda: len(_check_backends(stack)) == 1, 15, "the check's connection")
    (check_pid, _), = _check_backends(stack)
    blocker = subprocess.Popen(
        [_psql_bin(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", stack.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # pg_publication_tables reads pg_publication_rel: the next check waits.
        blocker.stdin.write(
            "BEGIN;\nLOCK TABLE pg_catalog.pg_publication_rel IN ACCESS EXCLUSIVE MODE;\nSELECT 1;\n"
        )
        blocker.stdin.flush()
        stack.wait_until(
            lambda: stack.pg.psql(
                "SELECT count(*) FROM pg_locks WHERE granted AND mode = 'AccessExclusiveLock'"
                " AND relation = 'pg_catalog.pg_publication_rel'::regclass",
                url=stack.url,
            ) == "1",
            15,
            "the lock",
        )
        locked_at = stack.current_lsn()
        assert stack.post_order("during")[0] == 201
        stack.wait_until(
            lambda: any(w == "Lock" for _, w in _check_backends(stack)), 30, "a check waiting for the lock"
        )
        for i in range(3):
            assert stack.post_order(f"while stalled {i}")[0] == 201
        assert len(stack.events(count=5, timeout=30)) == 5
        time.sleep(2)
        assert relay.alive
        assert stack.confirmed_flush() <= locked_at
    finally:
        blocker.stdin.write("ROLLBACK;\n")
        blocker.stdin.close()
        blocker.wait(30)
    last = max(lsn_int(e["headers"]["lsn"]) for e in stack.events(count=5))
    stack.wait_until(lambda: stack.confirmed_flush() > last, 30, "confirmation once the check answered")
    assert [pid for pid, _ in _check_backends(stack)] == [check_pid]
    assert relay.alive
