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

import pytest

from stack import Stack

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
    log = relay.log_text()
    assert "is no longer in publication" in log or "does not exist" in log, relay.log_tail()
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
