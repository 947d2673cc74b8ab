"""Who holds the slot (docs/relay.md, "Start-up" and "Exit status"): the
relay takes its slot back from its own stalled walsender, and still refuses
a slot held by another relay, with the restartable exit 4."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from stack import Stack


@pytest.fixture
def stack(migrated_pg, kafka, spawn):
    return Stack(migrated_pg, kafka, spawn)


def insert_event(stack, key: str) -> None:
    stack.pg.psql(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)"
        f" VALUES (gen_random_uuid(), 'orders', '{key}', 'Test', '{{}}')",
        url=stack.url,
    )


def walsender_of(stack) -> int:
    out = stack.pg.psql(
        f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{stack.slot}'", url=stack.url
    )
    assert out, "the slot is not active"
    return int(out)


@pytest.mark.timeout(150)
def test_own_stalled_walsender_is_ended_and_another_relay_still_refused(stack, spawn):
    """The walsender is stopped (SIGSTOP, a stuck server process as after a
    paused VM) for longer than --server-timeout: the relay reconnects, finds
    the slot held by its own old walsender, ends it and takes the slot back
    once it is gone, however long that takes. A second relay started meanwhile
    sees the same walsender as someone else's and exits 4 after 15 s."""
    relay = stack.start_relay("--server-timeout", "2")
    insert_event(stack, "before")
    assert len(stack.events(count=1, timeout=60)) == 1
    walsender = walsender_of(stack)
    app = stack.pg.psql(
        f"SELECT application_name FROM pg_stat_replication WHERE pid = {walsender}", url=stack.url
    )
    assert re.fullmatch(rf"cdc-relay/{relay.pid}\.[0-9a-f]{{4}}", app), app
    since = relay.mark()
    # Only the walsender of this test's own cluster, and always continued.
    os.kill(walsender, signal.SIGSTOP)
    try:
        relay.wait_for_log(
            rf"held by this relay's own earlier walsender \(PID {walsender}\b.*asked it to end",
            timeout=30, since=since,
        )  # fmt: skip
        second = spawn(
            "cdc-relay", *stack.relay_args(), "--state-file", stack.state_file + ".second",
            env={"DATABASE_URL": stack.url, "KAFKA_BROKERS": stack.kafka.brokers},
        )  # fmt: skip
        second.wait_for_log(rf"is active for PID {walsender} \(application_name {app}\b", timeout=30)
        # Longer than the 15 s after which a slot held by another session is
        # given up on: the relay keeps waiting for its own.
        assert second.wait(40) == 4, second.log_tail()
        assert "another relay" in second.log_text()
        assert "asked it to end" not in second.log_text()
        assert relay.alive, relay.log_tail()
    finally:
        os.kill(walsender, signal.SIGCONT)
    relay.wait_for_log(r"streaming slot", timeout=30, since=since)  # streaming again
    stack.wait_until(lambda: walsender_of(stack) != walsender, 30, "a new walsender")
    insert_event(stack, "after")
    keys = {e["key"] for e in stack.events(count=2, timeout=60)}
    assert keys == {"before", "after"}, keys
    assert relay.alive
    relay.signal(signal.SIGTERM)
    assert relay.wait(40) == 0, relay.log_tail()
