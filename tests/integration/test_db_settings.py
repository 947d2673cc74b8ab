"""The same behaviour whatever the database's and the role's settings
(docs/security.md, "Session settings"; docs/relay.md, "Exit status"):

- client_encoding LATIN1 on the database and on the role: accents, a check
  mark, emoji and a 4-byte character in the key reach Kafka byte for byte as
  stored, in stream and poll mode; orders-api stores what it answers; a
  SQL_ASCII database is refused;
- search_path with decoy tables and look-alike functions and views in
  earlier schemas: orders-api, its migrations, the relay's start-up checks,
  publication check and heartbeat, poll mode (with the column options) and
  `cdc-relay audit` never touch them;
- a translated lc_messages (German) gives the same exits as English for the
  login errors, in stream and poll mode (a cluster of this module, with
  password authentication);
- orders-api recovers by itself when default_transaction_read_only is removed.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import signal
import subprocess
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import REPO, Postgres, _psql_bin, run_bin, unique_name

# (aggregate_id, event_type, payload) as a UTF-8 client writes them. The
# payload is written as jsonb's own text form, so its stored text is itself.
ROWS = [
    ("clé-Ñandú", "Créé", '{"n": 1, "name": "héllo Ñandú"}'),
    ("check-✓", "Geprüft ✓", '{"mark": "✓", "note": "naïve café"}'),
    ("emoji-😀", "Emoji 🎉", '{"flag": "🇩🇪", "emoji": "😀🎉"}'),
    ("𝄞-clef", "Clef 𝄞", '{"cjk": "漢字", "clef": "𝄞"}'),
]
ITEM = "héllo ✓ 😀 𝄞"


def psql_utf8(url: str, sql: str, check: bool = True) -> str:
    """psql as a UTF-8 client that sees public first, whatever the database's
    or role's defaults (PGOPTIONS and PGCLIENTENCODING beat them)."""
    env = dict(os.environ, PGCLIENTENCODING="UTF8", PGOPTIONS="-c search_path=pg_catalog,public")
    r = subprocess.run(
        [_psql_bin(), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    if check and r.returncode != 0:
        raise AssertionError(f"psql failed on {sql}: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode("utf-8").rstrip("\n")


def utf8(s: str) -> bytes:
    """The bytes of a str the harness read from Kafka (surrogateescape keeps
    bytes that are not UTF-8 as they were)."""
    return s.encode("utf-8", "surrogateescape")


ROLE_PW = "Enc-3f9a51c2"


def role_url(pg: Postgres, role: str, db: str) -> str:
    """db as role, on whichever server pg is (the compose server asks for a
    password where the harness's own trusts loopback)."""
    url = urllib.parse.urlsplit(pg.url_for(db))
    return urllib.parse.urlunsplit(url._replace(netloc=f"{role}:{ROLE_PW}@{url.hostname}:{url.port}"))


def api_request(base: str, method: str, path: str, body: bytes | None = None):
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def start_api(spawn, url: str, pool: int = 2):
    proc = spawn("orders-api", "--pool-size", str(pool),
                 env={"DATABASE_URL": url, "LISTEN_ADDR": "127.0.0.1:0"},
                 wait_for=r"listening addr=\S+")  # fmt: skip
    return proc, "http://" + re.search(r"listening addr=(\S+)", proc.log_text()).group(1)


# ---- decoy schemas ---------------------------------------------------------

# Functions and views an unqualified name could reach before pg_catalog's;
# each raises, naming itself, so a call fails loudly and leaves a line in the
# server log.
LOOKALIKE_FUNCTIONS = [
    ("now()", "timestamptz"),
    ("gen_random_uuid()", "uuid"),
    ("pg_logical_emit_message(boolean, text, text)", "pg_lsn"),
    ("to_regclass(text)", "regclass"),
    ("format(text, text, text)", "text"),
    ("current_setting(text)", "text"),
    ("has_table_privilege(oid, text)", "boolean"),
    ("pg_xact_commit_timestamp(xid)", "timestamptz"),
    ("pg_backend_pid()", "integer"),
    ("host(inet)", "text"),
    ("pg_try_advisory_lock(bigint)", "boolean"),
    ("pg_advisory_lock(bigint)", "void"),
    ("pg_advisory_unlock(bigint)", "boolean"),
    ("to_timestamp(double precision)", "timestamptz"),
    ("div(numeric, numeric)", "numeric"),
    ("unnest(text[])", "SETOF text"),
]
LOOKALIKE_VIEWS = [
    "pg_replication_slots", "pg_publication_tables", "pg_publication", "pg_class",
    "pg_namespace", "pg_attribute", "pg_stat_activity", "pg_stat_replication",
]  # fmt: skip
SEARCH_PATH = "decoy, shadowfn, pg_catalog, public"


def decoy_sql(mark: str) -> str:
    out = [
        "CREATE SCHEMA decoy",
        "CREATE SCHEMA shadowfn",
        # Tables an unqualified INSERT, SELECT or CREATE TABLE would reach first.
        "CREATE TABLE decoy.orders (id uuid, item text, quantity int, status text,"
        " created_at timestamptz)",
        "CREATE TABLE decoy.outbox (id uuid, aggregate_type text, aggregate_id text,"
        " event_type text, payload jsonb, created_at timestamptz DEFAULT pg_catalog.now(),"
        " published_at timestamptz)",
        "CREATE TABLE decoy.idempotency_keys (key text, request_hash text, status int, body text,"
        " location text, created_at timestamptz)",
        # A migrator reading this one would think every migration applied.
        "CREATE TABLE decoy.schema_migrations (version int, name text, applied_at timestamptz)",
        "INSERT INTO decoy.schema_migrations SELECT g, 'decoy', pg_catalog.now()"
        " FROM pg_catalog.generate_series(1, 99) g",
        "GRANT USAGE ON SCHEMA decoy, shadowfn TO PUBLIC",
        "GRANT ALL ON ALL TABLES IN SCHEMA decoy TO PUBLIC",
    ]
    for sig, ret in LOOKALIKE_FUNCTIONS:
        out.append(
            f"CREATE FUNCTION shadowfn.{sig} RETURNS {ret} LANGUAGE plpgsql AS "
            f"$$BEGIN RAISE EXCEPTION 'decoy touched {mark}: {sig}'; END$$"
        )
    for view in LOOKALIKE_VIEWS:
        # A view's columns cannot be of a pseudo-type (pg_attribute's
        # attmissingval is anyarray): that one gets the columns in use.
        rows = (
            "TABLE (attrelid oid, attname name, attnum smallint, attisdropped boolean)"
            if view == "pg_attribute"
            else f"SETOF pg_catalog.{view}"
        )
        out.append(
            f"CREATE FUNCTION shadowfn.boom_{view}() RETURNS {rows} LANGUAGE plpgsql"
            f" AS $$BEGIN RAISE EXCEPTION 'decoy touched {mark}: {view}'; END$$"
        )
        out.append(f"CREATE VIEW shadowfn.{view} AS SELECT * FROM shadowfn.boom_{view}()")
    return ";\n".join(out) + ";"


def decoy_rows(url: str) -> str:
    return psql_utf8(
        url,
        "SELECT (SELECT count(*) FROM decoy.orders) || ' ' || (SELECT count(*) FROM decoy.outbox)"
        " || ' ' || (SELECT count(*) FROM decoy.idempotency_keys)"
        " || ' ' || (SELECT count(*) FROM decoy.schema_migrations)",
    )


def hex_of(url: str, expr: str, where: str) -> bytes:
    """expr's text as the server stores it (its UTF-8 bytes, client-independent)."""
    out = psql_utf8(url, f"SELECT encode(convert_to(({expr})::text, 'UTF8'), 'hex') FROM {where}")
    return bytes.fromhex(out)


def check_events(msgs: list[dict], url: str, api_order_id: str, who: str) -> None:
    by_id = {m["headers"]["id"]: m for m in msgs}
    stored = psql_utf8(url, "SELECT id, aggregate_id FROM public.outbox ORDER BY created_at, id")
    assert len(by_id) == len(ROWS) + 1 == len(stored.splitlines()), (who, msgs)
    for line in stored.splitlines():
        event_id, _ = line.split("|", 1)
        m = by_id[event_id]
        where = f"public.outbox WHERE id = '{event_id}'"
        assert utf8(m["key"]) == hex_of(url, "aggregate_id", where), (who, m["key"])
        assert utf8(m["payload"]) == hex_of(url, "payload", where), (who, m["payload"])
        assert utf8(m["headers"]["event_type"]) == hex_of(url, "event_type", where), who
    for key, event_type, payload in ROWS:
        m = next(m for m in msgs if m["key"] == key)
        assert (m["headers"]["event_type"], m["payload"]) == (event_type, payload), (who, m)
    order = next(m for m in msgs if m["key"] == api_order_id)
    assert json.loads(order["payload"])["item"] == ITEM, who


@pytest.mark.timeout(240)
def test_encodings_and_search_paths_change_nothing(pg, kafka, spawn):
    """A database with client_encoding LATIN1 and a decoy search_path, and a
    role with the same of its own: the api, its migrations and both relay
    modes (as that role, and as a superuser that only has the database's
    settings) keep text byte for byte and never touch a decoy."""
    mark = uuid.uuid4().hex[:10]
    url = pg.new_database()
    db = url.rsplit("/", 1)[1]
    role = unique_name("enc")
    pg.psql(f"CREATE ROLE \"{role}\" LOGIN SUPERUSER REPLICATION PASSWORD '{ROLE_PW}'", dbname="postgres")
    psql_utf8(url, decoy_sql(mark))
    pg.psql(
        f"ALTER DATABASE \"{db}\" SET client_encoding = 'LATIN1';"
        f"ALTER DATABASE \"{db}\" SET search_path = {SEARCH_PATH};"
        f"ALTER ROLE \"{role}\" SET client_encoding = 'LATIN1';"
        f"ALTER ROLE \"{role}\" SET search_path = {SEARCH_PATH};",
        dbname="postgres",
    )
    as_role = role_url(pg, role, db)
    # Migrations as the role: the tables go to public, not decoy.
    r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": as_role}, timeout=120)
    assert r.returncode == 0, r.stderr
    migrations = len(list((REPO / "sql").glob("[0-9][0-9][0-9][0-9]_*.sql")))
    assert psql_utf8(url, "SELECT count(*) FROM public.schema_migrations") == str(migrations)
    assert decoy_rows(url) == "0 0 0 99"

    topics = {who: unique_name(f"enc-{who}") for who in ("role", "db", "poll-role", "poll-db")}
    slots = {who: unique_name("slot") for who in ("role", "db")}
    publication = unique_name("pub")
    relays = {}
    for who, relay_url in (("role", as_role), ("db", url)):
        relays[who] = spawn(
            "cdc-relay", "--slot", slots[who], "--publication", publication,
            "--topic-template", topics[who], "--status-interval", "1",
            "--heartbeat-interval", "0.5", "--no-state-file",
            env={"DATABASE_URL": relay_url, "KAFKA_BROKERS": kafka.brokers},
            wait_for=r"streaming slot",
        )  # fmt: skip

    # The api, as the role: what it answers is what it stores.
    _, base = start_api(spawn, as_role)
    status, body = api_request(base, "POST", "/orders", json.dumps({"item": ITEM, "quantity": 1}).encode())
    assert status == 201, body
    order = json.loads(body)
    assert order["item"] == ITEM
    assert hex_of(url, "item", f"public.orders WHERE id = '{order['id']}'") == utf8(ITEM)
    status, body = api_request(base, "GET", f"/orders/{order['id']}")
    assert status == 200 and json.loads(body)["item"] == ITEM
    # Rows from a UTF-8 client, straight into the outbox.
    values = ", ".join(
        f"(gen_random_uuid(), 'orders', '{k}', '{e}', '{p}'::jsonb)" for k, e, p in ROWS
    )
    psql_utf8(
        url,
        "INSERT INTO public.outbox (id, aggregate_type, aggregate_id, event_type, payload)"
        f" VALUES {values}",
    )
    for key, _, payload in ROWS:  # jsonb keeps these as written
        assert hex_of(url, "payload", f"public.outbox WHERE aggregate_id = '{key}'") == utf8(payload)

    for who in ("role", "db"):
        check_events(kafka.consume(topics[who], count=len(ROWS) + 1), url, order["id"], who)
    # Positions were confirmed: the publication check passed (no confirmation
    # goes past a check that did not), and the heartbeat ran.
    last = psql_utf8(url, "SELECT pg_current_wal_lsn()")
    for who in ("role", "db"):
        deadline = time.monotonic() + 30
        while psql_utf8(
            url,
            f"SELECT confirmed_flush_lsn >= '{last}' FROM pg_replication_slots"
            f" WHERE slot_name = '{slots[who]}'",
        ) != "t":
            assert time.monotonic() < deadline, f"slot of the {who} relay not confirmed past {last}"
            time.sleep(0.2)
    assert psql_utf8(url, "SELECT count(*) > 0 FROM pg_stat_activity"
                          " WHERE application_name = 'cdc-relay-heartbeat'") == "t"

    # Poll mode, as the role and as the superuser, over the same rows; the
    # role's run names every column itself and adds a header column.
    columns = ["--id-column", "id", "--route-column", "aggregate_type",
               "--key-column", "aggregate_id", "--type-column", "event_type",
               "--payload-column", "payload", "--timestamp-column", "created_at",
               "--published-column", "published_at", "--traceparent-column", "traceparent",
               "--header-columns", "event_type=type-copy"]  # fmt: skip
    for who, relay_url, extra in (("poll-role", as_role, columns), ("poll-db", url, [])):
        psql_utf8(url, "UPDATE public.outbox SET published_at = NULL")
        p = spawn("cdc-relay", "--mode", "poll", "--until-empty", "--topic-template", topics[who],
                  *extra, env={"DATABASE_URL": relay_url, "KAFKA_BROKERS": kafka.brokers})  # fmt: skip
        assert p.wait(60) == 0, p.log_tail()
        msgs = kafka.consume(topics[who], count=len(ROWS) + 1)
        check_events(msgs, url, order["id"], who)
        if extra:
            assert all(m["headers"]["type-copy"] == m["headers"]["event_type"] for m in msgs), msgs
    assert psql_utf8(url, "SELECT count(*) FROM public.outbox WHERE published_at IS NULL") == "0"

    for who, relay in relays.items():
        assert relay.alive, relay.log_tail()
        relay.signal(signal.SIGTERM)
        assert relay.wait(40) == 0, relay.log_tail()

    # cdc-relay audit as the role: every row's event found. One row moved an
    # hour back is out of the range while its message is in it, so the id
    # lookup runs too (and finds the row: not unexpected).
    psql_utf8(url, "UPDATE public.outbox SET created_at = created_at - interval '1 hour'"
                   f" WHERE aggregate_id = '{ROWS[0][0]}'")  # fmt: skip
    r = run_bin("cdc-relay", "audit", "--since", "10m", "--topic-template", topics["role"],
                env={"DATABASE_URL": as_role, "KAFKA_BROKERS": kafka.brokers}, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(ROWS)} rows" in r.stdout and f"{len(ROWS)} found, 0 missing" in r.stdout, r.stdout
    assert "0 unexpected" in r.stdout, r.stdout
    assert decoy_rows(url) == "0 0 0 99"
    touched = [l for l in pg.log_tail(100000).splitlines() if f"decoy touched {mark}" in l]
    assert not touched, "\n".join(touched[:10])
    for relay in relays.values():
        assert "decoy touched" not in relay.log_text()


@pytest.mark.timeout(120)
def test_sql_ascii_database_is_refused(pg, kafka, spawn):
    """SQL_ASCII stores bytes without saying their encoding: both modes
    refuse it at start (exit 1) instead of passing on bytes of unknown meaning."""
    db = unique_name("ascii")
    pg.psql(
        f"CREATE DATABASE \"{db}\" ENCODING 'SQL_ASCII' TEMPLATE template0"
        " LC_COLLATE 'C' LC_CTYPE 'C'",
        dbname="postgres",
    )
    url = pg.url_for(db)
    r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": url}, timeout=120)
    assert r.returncode == 0, r.stderr
    for mode in ("stream", "poll"):
        r = run_bin("cdc-relay", "--mode", mode, "--slot", unique_name("slot"), "--no-state-file",
                    env={"DATABASE_URL": url, "KAFKA_BROKERS": kafka.brokers}, timeout=60)  # fmt: skip
        assert r.returncode == 1, (mode, r.stderr)
        assert "SQL_ASCII" in r.stderr, r.stderr
    assert pg.psql(f"SELECT count(*) FROM pg_replication_slots WHERE database = '{db}'", dbname="postgres") == "0"


# ---- translated server messages ---------------------------------------------

PW = "Pw-5e1c0a77"


@pytest.fixture(scope="module")
def auth_pg(run_dir):
    """A cluster of this module: trust for the harness's superuser and for
    one role name that does not exist, scram-sha-256 for every other role;
    max_wal_senders = 1, so one idle replication connection makes the next
    meet a transient error (53300, as when every walsender is busy)."""
    d = run_dir / "pg_i18n"
    server = Postgres(d)
    try:
        server.start("max_wal_senders=1")  # initdb on first use
        hba = d / "data" / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host replication postgres 127.0.0.1/32 trust\n"
            "host all ghost_trust 127.0.0.1/32 trust\n"
            "host replication ghost_trust 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host replication all 127.0.0.1/32 scram-sha-256\n"
        )
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(hba, pw.pw_uid, pw.pw_gid)
        server.psql("SELECT pg_reload_conf()", dbname="postgres")
        server.psql(
            f"CREATE ROLE norepl LOGIN PASSWORD '{PW}';"
            f"CREATE ROLE repl LOGIN REPLICATION PASSWORD '{PW}';"
            f"CREATE ROLE limited LOGIN REPLICATION CONNECTION LIMIT 0 PASSWORD '{PW}';",
            dbname="postgres",
        )
        r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": server.url}, timeout=120)
        assert r.returncode == 0, r.stderr
    except Exception as e:  # noqa: BLE001 - any failure to start is the message
        server.stop()
        pytest.fail(f"PostgreSQL with password authentication could not start: {e}", pytrace=False)
    yield server
    server.stop()


def set_lc_messages(server: Postgres, value: str) -> None:
    r = server.psql_result(f"ALTER SYSTEM SET lc_messages = '{value}'", dbname="postgres")
    assert r.returncode == 0, (
        f"lc_messages = {value} refused ({r.stderr.strip()}): the locale must be installed"
        " (tests/harness/deps.sh installs locales-all)"
    )
    server.psql("SELECT pg_reload_conf()", dbname="postgres")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("language", ["de_DE.UTF-8", "C"])
def test_login_errors_exit_the_same_in_any_language(auth_pg, kafka, spawn, language):
    """Unknown database, unknown role (no such role under trust, and under
    scram), a role without REPLICATION, a wrong password, no password: exit 1
    at once in stream and poll mode, whatever lc_messages; a transient server
    error (too many connections) is retried in both."""
    set_lc_messages(auth_pg, language)
    if language.startswith("de"):
        # Maven Central's PostgreSQL builds (16-18 here) carry no message
        # catalogs: there the German run would repeat the English one.
        probe = auth_pg.psql_result("SELECT 1/0", dbname="postgres")
        if "division durch null" not in probe.stderr.lower():
            pytest.skip(f"PostgreSQL {auth_pg.server_version_num() // 10000} here has no German messages "
                        f"(built without NLS): {probe.stderr.strip()}")
    base = f"127.0.0.1:{auth_pg.port}/orders"
    fatal = {
        "unknown database": f"postgresql://postgres@127.0.0.1:{auth_pg.port}/no_such_db",
        "unknown role (trust)": f"postgresql://ghost_trust@{base}",
        "unknown role (scram)": f"postgresql://ghost:{PW}@{base}",
        "role without REPLICATION": f"postgresql://norepl:{PW}@{base}",
        "wrong password": f"postgresql://repl:wrong-{PW}@{base}",
        "no password": f"postgresql://repl@{base}",
    }
    env = {"KAFKA_BROKERS": kafka.brokers, "PGPASSFILE": "/dev/null"}
    texts = []
    for mode in ("stream", "poll"):
        for what, url in fatal.items():
            r = run_bin("cdc-relay", "--mode", mode, "--no-state-file",
                        env={**env, "DATABASE_URL": url}, timeout=15)  # fmt: skip
            assert r.returncode == 1, f"{what}, {mode} mode, lc_messages {language}: {r.stderr}"
            texts.append(r.stderr)
    # The translation was on: the server's words differ, the exits did not.
    joined = "\n".join(texts)
    if language.startswith("de"):
        assert "existiert nicht" in joined and "Passwort-Authentifizierung" in joined, joined
    else:
        assert "does not exist" in joined and "password authentication failed" in joined, joined
    # Too many connections (53300: the one walsender taken by an idle
    # replication connection; the role's connection limit): a state that
    # passes, retried.
    blocker = subprocess.Popen(
        [_psql_bin(), "-X", "-q", "-d", f"postgresql://postgres@{base}?replication=database"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while auth_pg.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'",
                           dbname="postgres") != "1":  # fmt: skip
            assert time.monotonic() < deadline, "the idle replication connection did not come up"
            time.sleep(0.1)
        retried = [
            spawn("cdc-relay", "--mode", mode, "--no-state-file", "--reconnect-max", "1",
                  env={**env, "DATABASE_URL": f"postgresql://{role}:{PW}@{base}"})
            for mode, role in (("stream", "repl"), ("poll", "limited"))
        ]  # fmt: skip
        for p in retried:
            p.wait_for_log(r"cannot connect to Postgres: .*53300", timeout=30)
        time.sleep(2)
        for p in retried:
            assert p.alive, p.log_tail()
            assert len(re.findall(r"53300", p.log_text())) >= 2, p.log_tail()
            p.signal(signal.SIGTERM)
            assert p.wait(30) == 0, p.log_tail()
    finally:
        blocker.kill()
        blocker.wait()


# ---- read-only sessions ------------------------------------------------------


@pytest.mark.timeout(120)
def test_api_recovers_by_itself_when_read_only_is_removed(migrated_pg, spawn):
    pg = migrated_pg
    url = pg.new_database()
    db = url.rsplit("/", 1)[1]
    r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": url}, timeout=120)
    assert r.returncode == 0, r.stderr
    _, base = start_api(spawn, url, pool=3)
    order = json.dumps({"item": "book", "quantity": 1}).encode()
    assert api_request(base, "POST", "/orders", order)[0] == 201
    # New sessions take the setting at their start: end the api's, it reconnects.
    pg.psql(f"ALTER DATABASE \"{db}\" SET default_transaction_read_only = on", dbname="postgres")
    pg.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE datname = '{db}' AND application_name = 'orders-api'",
        dbname="postgres",
    )
    deadline = time.monotonic() + 20
    while api_request(base, "POST", "/orders", order)[0] != 503:
        assert time.monotonic() < deadline, "the api never met the read-only database"
        time.sleep(0.2)
    assert api_request(base, "GET", "/healthz")[0] == 200
    pg.psql(f"ALTER DATABASE \"{db}\" RESET default_transaction_read_only", dbname="postgres")
    # No session is ended by hand this time: the api must replace its own.
    # Three at a time, so every pooled session is used, until two rounds in
    # a row are all 201.
    statuses = []
    deadline = time.monotonic() + 15
    with ThreadPoolExecutor(max_workers=3) as pool:
        while statuses[-6:] != [201] * 6:
            assert time.monotonic() < deadline, f"still refused after the setting went: {statuses}"
            statuses += pool.map(lambda _: api_request(base, "POST", "/orders", order)[0], range(3))
            time.sleep(0.1)
    assert set(statuses) <= {201, 503}, statuses
    count = pg.psql("SELECT count(*) FROM public.orders", url=url)
    assert int(count) == statuses.count(201) + 1
