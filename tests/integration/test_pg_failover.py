"""Postgres failover under load (docs/operations.md, "Failover to a
standby"): a primary and a physical standby of its own (a cold copy of the
data directory: the Maven Central builds have no pg_basebackup), with a
synchronous standby so that what the api acknowledged is on both. The relay
and the api reach them through one multi-host URL (target_session_attrs=
read-write). Under load the primary is stopped (fast, then in the next run
immediate) and the standby promoted.

PostgreSQL 17+: the relay created its slot with FAILOVER, the standby keeps
a synced copy (sync_replication_slots, hot_standby_feedback, a physical slot,
synchronized_standby_slots on the primary): the relay reconnects to the new
primary and continues; nothing acknowledged is lost. PostgreSQL 15 and 16:
the promoted standby has no slot; the relay stops with exit 1 saying so
(the documented re-emit procedure follows).

FAILOVER_RUNS=N repeats it (fast and immediate stops alternate) and prints
the figures of each run (FAILOVER lines); tests/failover/runs.sh N pg does
that and sums them up."""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from harness import Postgres
from stack import Stack
from test_standby_relay import Load

RUNS = int(os.environ.get("FAILOVER_RUNS", "1"))
PHYSICAL_SLOT = "standby1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pair(base, run: int):
    """A primary (synchronous standby, failover-slot settings on 17+) and a
    streaming standby copied from it while stopped."""
    primary = Postgres(base / f"fo{run}-primary").start()
    version = primary.server_version_num()
    primary.psql(f"SELECT pg_create_physical_replication_slot('{PHYSICAL_SLOT}', true)", dbname="postgres")
    primary.stop()
    sdir = base / f"fo{run}-standby"
    sdir.mkdir()
    subprocess.run(["cp", "-a", str(primary.dir / "data"), str(sdir / "data")], check=True)
    shutil.copy(primary.dir / "bindir", sdir / "bindir")
    (sdir / "port").write_text(f"{free_port()}\n")
    (sdir / "data" / "standby.signal").write_text("")
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:", str(sdir)], check=True)
    on_primary = ["synchronous_standby_names=*"]
    on_standby = [
        f"primary_conninfo=host=127.0.0.1 port={primary.port} user=postgres dbname=postgres "
        "application_name=standby1",
        f"primary_slot_name={PHYSICAL_SLOT}",
        "hot_standby_feedback=on",
    ]
    if version >= 170000:
        on_primary.append(f"synchronized_standby_slots={PHYSICAL_SLOT}")
        on_standby.append("sync_replication_slots=on")
    primary.start(*on_primary)
    standby = Postgres(sdir).start(*on_standby)
    return primary, standby, version


def multi_host_url(primary, standby, db: str) -> str:
    return (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{db}"
        "?target_session_attrs=read-write&connect_timeout=2"
    )


def one_run(base, kafka, spawn, run: int) -> dict:
    mode = "fast" if run % 2 == 1 else "immediate"
    primary, standby, version = make_pair(base, run)
    try:
        stack = Stack(primary, kafka, spawn)  # database and schema on the primary
        db = stack.url.rsplit("/", 1)[1]
        stack.url = multi_host_url(primary, standby, db)
        stack.start_api(pool_size=4)
        relay = stack.start_relay("--reconnect-max", "1s")
        slot_on_standby = (
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
            f"'{stack.slot}' AND {'synced AND NOT temporary' if version >= 170000 else 'true'}"
        )
        figures = {"run": run, "stop": mode, "version": version}
        with Load(stack, clients=4) as load:
            load.wait_for(200)
            stack.events(count=100, timeout=60)  # the relay delivers and confirms
            if version >= 170000:
                # The standby's copy is kept (not temporary) once the slot on
                # the primary moved past where the copy was made.
                stack.wait_until(
                    lambda: standby.psql(slot_on_standby, dbname="postgres") == "1", 60,
                    "the slot synced to the standby",
                )  # fmt: skip
            load.wait_for(len(load.acked) + 200)
            since = relay.mark()
            began = time.monotonic()
            primary.stop(mode)
            acked_by_old = set(load.acked)
            standby.psql("SELECT pg_promote()", dbname="postgres")
            if version < 170000:
                assert relay.wait(60) == 1, relay.log_tail()
                log = relay.log_text(since)
                assert "does not exist" in log and "a standby was promoted" in log, relay.log_tail()
                figures["failed_over"] = False
                print(
                    f"\nFAILOVER run {run}/{RUNS} (PostgreSQL {version}, stop -m {mode}): no "
                    "failover slots before 17; the relay exited 1 (slot missing on the promoted "
                    "standby)",
                    flush=True,
                )
                return figures
            relay.wait_for_log(r"standby was promoted", timeout=90, since=since)
            relay.wait_for_log(r"streaming slot", timeout=90, since=since)
            figures["takeover_s"] = time.monotonic() - began
            load.wait_for(len(load.acked) + 200, timeout=90)
        acked = set(load.acked)
        stack.events(count=len(acked), timeout=120)
        time.sleep(2)
        final = stack.events()
        counts = collections.Counter(e["headers"].get("id") for e in final)
        keys = {e["key"] for e in final}
        figures.update(
            failed_over=True,
            acked=len(acked),
            acked_by_old_primary=len(acked_by_old),
            events=sum(counts.values()),
            lost=len(acked - keys),
            lost_of_old_primary=len(acked_by_old - keys),
            duplicates=sum(c - 1 for c in counts.values()),
            http_failures=load.failed,
        )
        print(
            f"\nFAILOVER run {run}/{RUNS} (PostgreSQL {version}, stop -m {mode}): "
            f"{figures['acked']} acknowledged ({figures['acked_by_old_primary']} by the old "
            f"primary), lost {figures['lost']}, duplicates {figures['duplicates']}, relay "
            f"streaming from the new primary {figures['takeover_s']:.2f} s after the stop",
            flush=True,
        )
        print("FAILOVER-JSON " + json.dumps(figures), flush=True)
        assert not (acked - keys), f"{len(acked - keys)} acknowledged orders never reached Kafka"
        # nothing phantom: every event is an outbox row of the new primary
        assert set(counts) <= stack.outbox_ids()
        assert relay.alive, relay.log_tail()
        relay.signal(15)
        assert relay.wait(40) == 0, relay.log_tail()
        return figures
    finally:
        for p in (primary, standby):
            try:
                p.stop("immediate")
            except Exception:
                pass


@pytest.mark.timeout(180 + 150 * RUNS)
@pytest.mark.matrix
def test_primary_stopped_under_load_standby_promoted(run_dir, kafka, spawn):
    """17+: the relay continues on the promoted standby from its synced slot,
    nothing acknowledged is lost; 15/16: a loud exit 1 (no slot there)."""
    for run in range(1, RUNS + 1):
        one_run(run_dir, kafka, spawn, run)


@pytest.mark.timeout(120)
def test_failover_readiness_is_warned_or_refused(migrated_pg, kafka, spawn):
    """17+: the suite's server has no standby, so the failover slot the relay
    creates could not survive a promotion: a warning naming what is missing,
    or with --require-failover-ready exit 1 (and no slot left behind).
    Before 17 there are no failover slots: neither says anything."""
    stack = Stack(migrated_pg, kafka, spawn)
    version = migrated_pg.server_version_num()
    relay = stack.start_relay()
    text = relay.log_text()
    if version < 170000:
        assert "failover" not in text, text
    else:
        assert re.search(r"created replication slot \"[^\"]+\" \(pgoutput, failover\)", text), text
        assert "synchronized_standby_slots is empty on the primary" in text, text
        assert "no standby streams through a physical slot" in text, text
        flag = stack.pg.psql(
            f"SELECT failover FROM pg_replication_slots WHERE slot_name = '{stack.slot}'", url=stack.url
        )
        assert flag == "t", flag
    relay.signal(15)
    assert relay.wait(40) == 0, relay.log_tail()
    other = Stack(migrated_pg, kafka, spawn)
    strict = spawn(
        "cdc-relay", *other.relay_args("--require-failover-ready"),
        env={"DATABASE_URL": other.url, "KAFKA_BROKERS": kafka.brokers},
    )  # fmt: skip
    if version < 170000:
        strict.wait_for_log(r"streaming slot", timeout=60)
        strict.signal(15)
        assert strict.wait(40) == 0, strict.log_tail()
    else:
        assert strict.wait(60) == 1, strict.log_tail()
        assert "a standby's copy may not survive a promotion" in strict.log_text()
        left = other.pg.psql(
            f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{other.slot}'", url=other.url
        )
        assert left == "0", "the refused start left its slot behind"
