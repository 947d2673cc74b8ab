"""Checks of the test harness itself: real Postgres, real Kafka, Proc."""

import signal
import stat
import subprocess

import pytest

from harness import unique_name


@pytest.mark.matrix
def test_pg_select_1(pg):
    assert pg.psql("SELECT 1") == "1"
    assert pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/orders"
    assert pg.psql("SELECT current_database()") == "orders"


@pytest.mark.matrix
def test_pg_is_ready_for_logical_replication(pg):
    assert pg.psql("SHOW wal_level") == "logical"
    assert int(pg.psql("SHOW max_replication_slots")) >= 10
    assert int(pg.psql("SHOW max_wal_senders")) >= 10
    slot = unique_name("probe_slot")
    lsn = pg.psql(f"SELECT lsn FROM pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    assert "/" in lsn
    pg.psql(f"SELECT pg_drop_replication_slot('{slot}')")
    # a replication connection, as the relay makes it (pg_hba allows it)
    r = subprocess.run(
        ["psql", "-X", "-At", "-d", pg.url + "?replication=database", "-c", "IDENTIFY_SYSTEM"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert "|" in r.stdout


@pytest.mark.matrix
def test_pg_restart_keeps_port_and_data(pg):
    table = unique_name("t")
    pg.psql(f"CREATE TABLE {table} (v int); INSERT INTO {table} VALUES (42)")
    url = pg.url
    pg.restart("fast")
    assert pg.url == url
    assert pg.psql(f"SELECT v FROM {table}") == "42"
    pg.psql(f"INSERT INTO {table} VALUES (43)")
    pg.restart("immediate")  # crash-like: recovery replays the WAL
    assert pg.psql(f"SELECT count(*) FROM {table}") == "2"


@pytest.mark.matrix
def test_pg_settings_for_one_start(pg):
    pg.start(wal_sender_timeout="7s")
    assert pg.psql("SHOW wal_sender_timeout") == "7s"
    # the next test gets the defaults back (conftest's _servers_in_default_state)


@pytest.mark.matrix
def test_pg_settings_are_back_to_default(pg):
    assert pg.psql("SHOW wal_sender_timeout") == "1min"


def test_kafka_roundtrip_with_headers(kafka):
    topic = unique_name("harness")
    kafka.produce(
        topic,
        '{"item":"book","quantity":2}',
        key="order-1",
        headers=[("id", "e1"), ("event_type", "OrderCreated"), ("lsn", "0/16B3748")],
    )
    msgs = kafka.consume(topic, count=1, timeout=30)
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["key"] == "order-1"
    assert m["payload"] == '{"item":"book","quantity":2}'
    assert m["headers"] == {"id": "e1", "event_type": "OrderCreated", "lsn": "0/16B3748"}
    assert m["header_list"][0] == ("id", "e1")
    assert m["topic"] == topic and m["offset"] == 0
    assert 0 <= m["partition"] < 3  # auto-created with num.partitions=3


def test_kafka_create_topic(kafka):
    topic = unique_name("six")
    kafka.create_topic(topic, partitions=6)
    assert len(kafka.partitions(topic)) == 6
    assert topic in kafka.topics()
    assert kafka.consume(topic) == []


def test_kafka_stop_start_same_address(kafka):
    topic = unique_name("restart")
    kafka.produce(topic, "before", key="k")
    assert len(kafka.consume(topic, count=1)) == 1
    brokers = kafka.brokers
    kafka.stop()
    assert not kafka.running()
    kafka.start()
    assert kafka.brokers == brokers
    kafka.produce(topic, "after", key="k")
    msgs = kafka.consume(topic, count=2)
    assert [m["payload"] for m in msgs] == ["before", "after"]


def test_kafka_kill_start(kafka):
    topic = unique_name("kill")
    kafka.produce(topic, "before-kill", key="k")
    assert len(kafka.consume(topic, count=1)) == 1
    kafka.kill()
    assert not kafka.running()
    kafka.start()
    kafka.produce(topic, "after-kill", key="k")
    msgs = kafka.consume(topic, count=2)
    assert [m["payload"] for m in msgs] == ["before-kill", "after-kill"]


def test_spawn_proc_helper(spawn, tmp_path):
    """Proc on a stand-in binary: env, log capture, wait_for_log, signals."""
    fake = tmp_path / "fake-daemon"
    fake.write_text(
        "#!/bin/sh\n"
        "trap 'echo \"got TERM, bye\" >&2; exit 0' TERM\n"
        "trap 'echo \"got HUP\" >&2' HUP\n"
        'echo "starting with GREETING=$GREETING args=$*" >&2\n'
        "echo 'to stdout'\n"
        "echo 'ready' >&2\n"
        "while :; do sleep 0.1; done\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    p = spawn("fake-daemon", "-x", "1", env={"GREETING": "hi"}, bin_dir=tmp_path, wait_for=r"^ready$")
    assert p.alive
    assert "GREETING=hi args=-x 1" in p.log_text()
    assert "to stdout" in p.log_text()
    mark = p.mark()
    p.signal(signal.SIGHUP)
    p.wait_for_log("got HUP", timeout=10, since=mark)
    assert p.terminate(timeout=10) == 0
    assert "got TERM, bye" in p.log_text()
    assert p.sanitizer_report() is None
