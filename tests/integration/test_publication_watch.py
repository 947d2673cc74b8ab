"""Regression (found by the fault suite, docs/reliability.md): with the outbox
table removed from the publication while the relay streams, pgoutput stops
sending its inserts without a word, and the relay used to confirm keepalive
positions past them and run on: a silent loss."""

from __future__ import annotations

import subprocess
import time

import pytest

from harness import _psql_bin
from stack import Stack, lsn_int


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    s = Stack(migrated_pg, kafka, spawn)
    s.start_api()
    return s


@pytest.mark.timeout(150)
def test_table_removed_from_publication_stops_the_relay_without_confirming_past_it(stack):
    relay = stack.start_relay()
    assert stack.post_order("before")[0] == 201
    assert len(stack.events(count=1, timeout=60)) == 1
    stack.wait_until(lambda: stack.confirmed_flush() > 0, 15, "a first confirmation")
    stack.pg.psql(f"ALTER PUBLICATION {stack.publication} DROP TABLE outbox", url=stack.url)
    changed_at = stack.current_lsn()
    assert stack.post_order("after")[0] == 201
    assert relay.wait(60) == 1, relay.log_tail()
    assert "is no longer in publication" in relay.log_text()
    # The order written after the change never reached Kafka, so the slot
    # must not have been told it did.
    assert len(stack.events()) == 1
    assert stack.confirmed_flush() <= changed_at


def _check_backends(stack) -> list[tuple[int, str]]:
    out = stack.pg.psql(
        "SELECT pid, coalesce(wait_event_type, '') FROM pg_stat_activity"
        " WHERE application_name = 'cdc-relay-check'",
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
