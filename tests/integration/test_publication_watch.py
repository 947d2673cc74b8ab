"""Regression (found by the fault suite, docs/reliability.md): with the outbox
table removed from the publication while the relay streams, pgoutput stops
sending its inserts without a word, and the relay used to confirm keepalive
positions past them and run on: a silent loss."""

from __future__ import annotations

import pytest

from stack import Stack


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
