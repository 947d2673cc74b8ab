"""Security basics (docs/security.md) against real servers:

- least-privilege roles from sql/roles.sql: the api and the relay work end to
  end with them, and cannot do what they have no business doing;
- TLS to Postgres (sslmode=verify-full, scram-sha-256 over hostssl only) and
  to Kafka (an SSL listener, -X security.protocol=ssl), each with a throwaway
  CA made by openssl here;
- secrets never printed: both binaries run with passwords in the DSN and
  secret librdkafka properties, and their output is searched for them;
- secrets off the command line: the database URLs and a SASL password from
  files (DATABASE_URL_FILE, CDC_KAFKA_SASL_PASSWORD_FILE), against a broker
  that wants SASL PLAIN.

The TLS Postgres cluster and the TLS Kafka broker are separate servers of
this module (the session ones stay plaintext for everyone else).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness import Kafka, Postgres, run_bin, unique_name
from stack import Stack
from tls import make_ca, make_server_cert

REPO = Path(__file__).resolve().parents[2]
API_PW = "ApiPw-7c1f93e0"
RELAY_PW = "RelayPw-2b8e44d1"


def _own_by_postgres(*paths: Path) -> None:
    """As root the cluster runs as OS user postgres, which must own its key."""
    if os.geteuid() != 0:
        return
    pg = pwd.getpwnam("postgres")
    for p in paths:
        os.chown(p, pg.pw_uid, pg.pw_gid)


@pytest.fixture(scope="module")
def certs(run_dir):
    d = run_dir / "tls"
    make_ca(d)
    make_server_cert(d)
    make_ca(d, "other-ca")  # a CA that signed nothing of ours
    d.chmod(0o755)
    return d


@pytest.fixture(scope="module")
def tls_pg(run_dir, certs):
    d = run_dir / "pg_tls"
    server = Postgres(d)
    try:
        server.start()  # initdb on first use
        keydir = d / "server-tls"
        keydir.mkdir(exist_ok=True)
        cert = keydir / "server.pem"
        key = keydir / "server.key"
        shutil.copy(certs / "server.pem", cert)
        shutil.copy(certs / "server.key", key)
        key.chmod(0o600)
        _own_by_postgres(keydir, cert, key)
        hba = d / "data" / "pg_hba.conf"
        # The harness's superuser keeps trust (it is the admin of this test);
        # every other role: scram over TLS only.
        hba.write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host replication postgres 127.0.0.1/32 trust\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n"
            "hostssl replication all 127.0.0.1/32 scram-sha-256\n"
        )
        _own_by_postgres(hba)
        server.start("ssl=on", f"ssl_cert_file={cert}", f"ssl_key_file={key}")
    except Exception as e:  # noqa: BLE001 - any failure to start is the message
        server.stop()
        pytest.fail(f"TLS PostgreSQL could not start: {e}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_kafka(run_dir, certs):
    server = Kafka(run_dir / "kafka_tls", tls_dir=certs)
    try:
        server.start()
    except Exception as e:  # noqa: BLE001
        server.stop()
        pytest.fail(f"TLS Kafka could not start: {e}", pytrace=False)
    yield server
    server.stop()


def apply_roles(pg: Postgres, url: str, publication: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"api_password={API_PW}",
         "-v", f"relay_password={RELAY_PW}", "-v", f"publication={publication}",
         "-d", url, "-f", str(REPO / "sql" / "roles.sql")],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )


def role_url(pg: Postgres, db: str, role: str, pw: str, host: str = "localhost", **params) -> str:
    q = {"sslmode": "verify-full", "sslrootcert": str(pg.dir.parent / "tls" / "ca.pem")}
    q.update(params)
    query = "&".join(f"{k}={v}" for k, v in q.items())
    return f"postgresql://{role}:{pw}@{host}:{pg.port}/{db}?{query}"


def psql_as(url: str, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30,
    )


class SecureStack:
    """A migrated database on the TLS cluster with the roles applied."""

    def __init__(self, pg: Postgres):
        self.pg = pg
        self.db = unique_name("db")
        pg.psql(f'CREATE DATABASE "{self.db}"', dbname="postgres")
        self.admin_url = pg.url_for(self.db)
        self.publication = unique_name("pub")
        self.slot = unique_name("slot")
        r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": self.admin_url}, timeout=120)
        assert r.returncode == 0, r.stderr
        r = apply_roles(pg, self.admin_url, self.publication)
        assert r.returncode == 0, r.stderr
        self.api_url = role_url(pg, self.db, "orders_api", API_PW)
        self.relay_url = role_url(pg, self.db, "cdc_relay", RELAY_PW, host="127.0.0.1")


@pytest.mark.timeout(240)
def test_least_privilege_roles_end_to_end_over_tls(tls_pg, kafka, spawn, run_dir):
    s = SecureStack(tls_pg)
    # Applying the script again changes nothing and does not fail.
    r = apply_roles(tls_pg, s.admin_url, s.publication)
    assert r.returncode == 0, r.stderr

    api = spawn("orders-api", env={"DATABASE_URL": s.api_url, "LISTEN_ADDR": "127.0.0.1:0"},
                wait_for=r"listening addr=\S+")
    base = "http://" + re.search(r"listening addr=(\S+)", api.log_text()).group(1)
    topic_prefix = unique_name("sec")
    relay = spawn(
        "cdc-relay", "--slot", s.slot, "--publication", s.publication, "--no-create-publication",
        "--topic-template", f"{topic_prefix}.${{aggregate_type}}.events", "--status-interval", "1",
        "--state-file", str(run_dir / f"{s.slot}.state"),
        env={"DATABASE_URL": s.relay_url, "KAFKA_BROKERS": kafka.brokers},
        wait_for=r"streaming slot",
    )
    import urllib.request

    req = urllib.request.Request(base + "/orders", data=b'{"item": "book", "quantity": 2}',
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
        location = resp.headers["Location"]
    with urllib.request.urlopen(base + location, timeout=30) as resp:
        assert resp.status == 200
    events = kafka.consume(f"{topic_prefix}.orders.events", count=1, timeout=60)
    assert len(events) == 1 and events[0]["key"] == location.rsplit("/", 1)[1]
    assert relay.alive and "created publication" not in relay.log_text()

    # --outbox-mode message works with the same role (pg_logical_emit_message).
    api2 = spawn("orders-api", "--outbox-mode", "message",
                 env={"DATABASE_URL": s.api_url, "LISTEN_ADDR": "127.0.0.1:0"},
                 wait_for=r"listening addr=\S+")
    base2 = "http://" + re.search(r"listening addr=(\S+)", api2.log_text()).group(1)
    req = urllib.request.Request(base2 + "/orders", data=b'{"item": "pen", "quantity": 1}',
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
    api2.terminate()

    # Both binaries' sessions are encrypted, with the least-privilege roles.
    sessions = tls_pg.psql(
        "SELECT a.usename, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
        " WHERE a.usename IN ('orders_api', 'cdc_relay') ORDER BY 1", dbname="postgres")
    rows = {tuple(l.split("|")) for l in sessions.splitlines()}
    assert ("orders_api", "t") in rows and ("cdc_relay", "t") in rows, sessions
    assert all(ssl == "t" for _, ssl in rows), sessions

    # What the api role must not do.
    api_denied = [
        "DELETE FROM outbox",
        "UPDATE outbox SET payload = '{}'",
        "UPDATE orders SET status = 'x'",
        "DELETE FROM orders",
        "TRUNCATE outbox",
        "DELETE FROM idempotency_keys",
        "SELECT rolpassword FROM pg_authid",
        "CREATE TABLE sneaky (x int)",
        "ALTER TABLE outbox ADD COLUMN x int",
        "DROP PUBLICATION " + s.publication,
        "SELECT * FROM schema_migrations",
    ]
    for sql in api_denied:
        r = psql_as(s.api_url, sql)
        denied = "permission denied" in r.stderr or "must be owner" in r.stderr
        assert r.returncode != 0 and denied, (sql, r.stdout, r.stderr)
    # What the relay role must not do.
    relay_denied = [
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type)"
        " VALUES (gen_random_uuid(), 'orders', 'x', 'E')",
        "DELETE FROM outbox",
        "SELECT * FROM orders",
        "SELECT * FROM idempotency_keys",
        "SELECT rolpassword FROM pg_authid",
        "CREATE TABLE sneaky (x int)",
    ]
    for sql in relay_denied:
        r = psql_as(s.relay_url, sql)
        assert r.returncode != 0 and "permission denied" in r.stderr, (sql, r.stdout, r.stderr)
    # What they may do (so the denials above are not a broken connection).
    assert psql_as(s.api_url, "SELECT count(*) FROM orders").stdout.strip() == "2"
    assert psql_as(s.api_url, "SELECT count(*) FROM outbox").stdout.strip() == "1"
    assert psql_as(s.relay_url, "SELECT count(*) FROM outbox").stdout.strip() == "1"
    assert psql_as(s.api_url, "SELECT current_user").stdout.strip() == "orders_api"


@pytest.mark.matrix
@pytest.mark.timeout(120)
def test_roles_sql_grants_emit_message_on_every_version(migrated_pg):
    """pg_logical_emit_message gained a `flush` argument in PostgreSQL 17, so
    a GRANT naming the 15/16 signature fails there: roles.sql grants the
    roles whichever one the server has, and they can call it with PUBLIC's
    right revoked. (Found by the version matrix: roles.sql failed on 17+.)"""
    pg = migrated_pg
    url = pg.new_database()
    r = run_bin("orders-api", "--migrate", env={"DATABASE_URL": url}, timeout=120)
    assert r.returncode == 0, r.stderr
    r = apply_roles(pg, url, unique_name("pub"))
    assert r.returncode == 0, r.stderr
    outsider = unique_name("nobody")
    pg.psql(
        f"""CREATE ROLE {outsider};
        DO $$ DECLARE f regprocedure; BEGIN
          FOR f IN SELECT oid::regprocedure FROM pg_proc
                    WHERE proname = 'pg_logical_emit_message' LOOP
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
          END LOOP;
        END $$""",
        url=url,
    )
    call = "SELECT pg_logical_emit_message(false, 'roles-test', 'x') IS NOT NULL"
    for role in ("orders_api", "cdc_relay"):
        assert pg.psql(f"SET ROLE {role}; {call}", url=url).splitlines()[-1] == "t", role
    denied = pg.psql_result(f"SET ROLE {outsider}; {call}", url=url)
    assert denied.returncode != 0 and "permission denied" in denied.stderr, denied


@pytest.mark.timeout(120)
def test_postgres_tls_is_verified_and_required(tls_pg):
    s = SecureStack(tls_pg)
    ok = psql_as(s.api_url, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert ok.returncode == 0 and ok.stdout.strip() == "t", ok.stderr
    # verify-full: by IP SAN as well as by name.
    ip = role_url(tls_pg, s.db, "orders_api", API_PW, host="127.0.0.1")
    assert psql_as(ip, "SELECT 1").returncode == 0
    # A server certificate from a CA we do not trust is refused.
    other = role_url(tls_pg, s.db, "orders_api", API_PW,
                     sslrootcert=str(tls_pg.dir.parent / "tls" / "other-ca.pem"))
    r = psql_as(other, "SELECT 1")
    assert r.returncode != 0 and "certificate verify failed" in r.stderr, r.stderr
    # No TLS, no entry: the roles cannot connect in clear text.
    plain = role_url(tls_pg, s.db, "orders_api", API_PW, sslmode="disable")
    r = psql_as(plain, "SELECT 1")
    assert r.returncode != 0 and "no pg_hba.conf entry" in r.stderr, r.stderr
    # And a wrong password is refused (scram, not trust).
    r = psql_as(role_url(tls_pg, s.db, "orders_api", "wrong-password"), "SELECT 1")
    assert r.returncode != 0 and "password authentication failed" in r.stderr, r.stderr


@pytest.mark.timeout(240)
def test_kafka_tls_listener(migrated_pg, tls_kafka, certs, spawn):
    stack = Stack(migrated_pg, tls_kafka, spawn)
    ssl = ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={certs / 'ca.pem'}"]
    stack.start_api()
    relay = stack.start_relay(*ssl, "--metrics-listen", "127.0.0.1:0")
    status, headers, body = stack.post_order("tls-book", 1)
    assert status == 201, body
    events = stack.events(count=1, timeout=60)  # read back over TLS too
    assert len(events) == 1 and events[0]["headers"]["event_type"] == "OrderCreated"
    relay.terminate()

    # A relay that does not trust the broker's CA delivers nothing and says why.
    bad = stack.start_relay(
        "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={certs / 'other-ca.pem'}",
        "--shutdown-timeout", "2")
    stack.post_order("untrusted", 1)
    bad.wait_for_log(r"certificate verify failed", timeout=60)
    assert len(stack.events(timeout=5)) == 1
    bad.terminate()
    # Plaintext against the TLS listener gets nowhere either.
    plain = stack.start_relay("--shutdown-timeout", "2")
    time.sleep(5)
    assert len(stack.events(timeout=5)) == 1
    plain.terminate()


SECRETS = {
    "pg_api": API_PW,
    "pg_relay": RELAY_PW,
    "pg_wrong": "WrongPw-93ad1f",
    "sasl": "SaslPw-4e7b20c9",
    "sslkey": "KeyPw-5d1a77f3",
    "keystore": "StorePw-0c9e31b8",
    "oauth": "OauthSecret-6f2d90",
}


def binary_output(proc) -> str:
    """What the binary wrote (the harness's own '====' start line, which
    records the command and environment for debugging, left out)."""
    return "\n".join(l for l in proc.log_text().splitlines() if not l.startswith("==== "))


@pytest.mark.timeout(300)
def test_secrets_are_never_printed(tls_pg, tls_kafka, certs, spawn, run_dir):
    s = SecureStack(tls_pg)
    kafka_secret_args = [
        "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={certs / 'ca.pem'}",
        "-X", f"sasl.password={SECRETS['sasl']}", "-X", "sasl.username=relay",
        "-X", f"ssl.key.password={SECRETS['sslkey']}",
        "-X", f"ssl.keystore.password={SECRETS['keystore']}",
        "-X", f"sasl.oauthbearer.config=principal=relay scope={SECRETS['oauth']}",
        "-X", "debug=conf,security,broker,generic",
    ]
    relay_args = ["--slot", s.slot, "--publication", s.publication, "--no-create-publication",
                  "--status-interval", "1", "--state-file", str(run_dir / f"{s.slot}.state"),
                  "--log-level", "debug", "--shutdown-timeout", "2"]
    procs = []
    # Working settings: both binaries run and serve, at debug level.
    api = spawn("orders-api", "--log-level", "debug",
                env={"DATABASE_URL": s.api_url, "LISTEN_ADDR": "127.0.0.1:0"},
                wait_for=r"listening addr=\S+")
    procs.append(api)
    relay = spawn("cdc-relay", *relay_args, *kafka_secret_args,
                  env={"DATABASE_URL": s.relay_url, "KAFKA_BROKERS": tls_kafka.brokers},
                  wait_for=r"streaming slot")
    procs.append(relay)
    relay.wait_for_log(r"Client configuration", timeout=30)  # librdkafka dumped its config
    api.terminate()
    relay.terminate()
    # A wrong password: authentication errors from libpq.
    wrong_api = role_url(tls_pg, s.db, "orders_api", SECRETS["pg_wrong"])
    wrong_relay = role_url(tls_pg, s.db, "cdc_relay", SECRETS["pg_wrong"])
    p = spawn("orders-api", "--log-level", "debug",
              env={"DATABASE_URL": wrong_api, "LISTEN_ADDR": "127.0.0.1:0"},
              wait_for=r"password authentication failed|listening addr")
    procs.append(p)
    p = spawn("cdc-relay", *relay_args, *kafka_secret_args,
              env={"DATABASE_URL": wrong_relay, "KAFKA_BROKERS": tls_kafka.brokers},
              wait_for=r"password authentication failed")
    procs.append(p)
    # Connection strings libpq rejects while quoting them back (the URI, or
    # the bad percent-escape inside the password).
    for bad_url in (
        f"postgresql://cdc_relay:{SECRETS['pg_relay']}@[::1:{tls_pg.port}/{s.db}",
        f"postgresql://cdc_relay:{SECRETS['pg_relay']}%zz@127.0.0.1:{tls_pg.port}/{s.db}",
        f"host=127.0.0.1 port={tls_pg.port} dbname={s.db} password='{SECRETS['pg_relay']}' x=y",
    ):
        p = spawn("cdc-relay", *relay_args, *kafka_secret_args,
                  env={"DATABASE_URL": bad_url, "KAFKA_BROKERS": tls_kafka.brokers},
                  wait_for=r"cannot connect to Postgres|invalid connection option")
        procs.append(p)
        p = spawn("orders-api", env={"DATABASE_URL": bad_url, "LISTEN_ADDR": "127.0.0.1:0"})
        p.wait(30)
        procs.append(p)
    # A typo in a secret property's name: the error must not echo the value.
    p = spawn("cdc-relay", *relay_args, "-X", f"sasl.pasword={SECRETS['sasl']}",
              env={"DATABASE_URL": s.relay_url, "KAFKA_BROKERS": tls_kafka.brokers})
    assert p.wait(30) != 0
    procs.append(p)
    for p in procs:
        p.terminate()

    outputs = [binary_output(p) for p in procs]
    everything = "\n".join(outputs)
    # The runs said something about each secret's setting (so the search below
    # looks at real output): redacted DSNs, librdkafka's redacted config dump.
    assert "cdc_relay:***@" in everything
    assert "ssl.key.password = [redacted]" in everything
    assert "password authentication failed" in everything
    assert "sasl.pasword (value not shown)" in everything
    for name, secret in SECRETS.items():
        for p, out in zip(procs, outputs):
            assert secret not in out, f"{name} secret printed by {p!r}:\n" + "\n".join(
                l for l in out.splitlines() if secret in l)


SASL_USER, SASL_PW = "relay", "SaslFilePw-8a61e0d2"


@pytest.fixture(scope="module")
def sasl_kafka(run_dir):
    server = Kafka(run_dir / "kafka_sasl", sasl=(SASL_USER, SASL_PW))
    try:
        server.start()
    except Exception as e:  # noqa: BLE001
        server.stop()
        pytest.fail(f"SASL Kafka could not start: {e}", pytrace=False)
    yield server
    server.stop()


def secret_file(dir: Path, name: str, text: str) -> Path:
    p = dir / name
    p.write_text(text)
    p.chmod(0o600)
    return p


@pytest.mark.timeout(300)
def test_secrets_from_files_reach_postgres_and_a_sasl_broker(tls_pg, sasl_kafka, spawn, run_dir):
    """The systemd-credential path (docs/security.md): the database URLs and
    the SASL password only in files named by DATABASE_URL_FILE and
    CDC_KAFKA_SASL_PASSWORD_FILE, the rest of the SASL settings as
    CDC_KAFKA_* variables. The broker refuses anyone without the password, so
    an event arriving proves the file's value was used; no secret is in the
    processes' command lines, environments or output."""
    s = SecureStack(tls_pg)
    creds = run_dir / unique_name("credentials")
    creds.mkdir(mode=0o700)
    # written as `echo` and systemd-creds write them: a trailing newline
    api_file = secret_file(creds, "api-database-url", s.api_url + "\n")
    relay_file = secret_file(creds, "relay-database-url", s.relay_url + "\n")
    pw_file = secret_file(creds, "kafka-sasl-password", SASL_PW + "\n")
    api = spawn("orders-api", env={"DATABASE_URL_FILE": str(api_file),
                                   "LISTEN_ADDR": "127.0.0.1:0", "DATABASE_URL": None},
                wait_for=r"listening addr=\S+")
    base = "http://" + re.search(r"listening addr=(\S+)", api.log_text()).group(1)
    topic_prefix = unique_name("sasl")
    relay_args = ["--slot", s.slot, "--publication", s.publication, "--no-create-publication",
                  "--topic-template", f"{topic_prefix}.${{aggregate_type}}",
                  "--state-file", str(run_dir / f"{s.slot}.state"), "--shutdown-timeout", "2"]

    def relay_env(password_file: Path) -> dict:
        return {"DATABASE_URL_FILE": str(relay_file), "DATABASE_URL": None,
                "KAFKA_BROKERS": sasl_kafka.brokers,
                "CDC_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
                "CDC_KAFKA_SASL_MECHANISMS": "PLAIN", "CDC_KAFKA_SASL_USERNAME": SASL_USER,
                "CDC_KAFKA_SASL_PASSWORD_FILE": str(password_file)}

    relay = spawn("cdc-relay", *relay_args, env=relay_env(pw_file), wait_for=r"streaming slot")
    req = urllib.request.Request(base + "/orders", data=b'{"item": "cred", "quantity": 1}',
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
    events = sasl_kafka.consume(f"{topic_prefix}.orders", count=1, timeout=60)
    assert len(events) == 1 and events[0]["headers"]["event_type"] == "OrderCreated"

    printed = run_bin("cdc-relay", "--print-config", env={
        "DATABASE_URL_FILE": str(relay_file), "DATABASE_URL": None,
        "CDC_KAFKA_SASL_PASSWORD_FILE": str(pw_file)}).stdout
    assert f"kafka.sasl.password = ***  [env CDC_KAFKA_SASL_PASSWORD_FILE <- {pw_file}]" in printed
    assert f"cdc_relay:***@" in printed and f"[env DATABASE_URL_FILE <- {relay_file}]" in printed

    for p in (api, relay):
        pid = p.popen.pid
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        for secret in (API_PW, RELAY_PW, SASL_PW):
            assert secret.encode() not in cmdline and secret.encode() not in environ, (p, secret)
            assert secret not in binary_output(p) and secret not in printed, (p, secret)

    # A wrong password in the file: the broker refuses, nothing is delivered.
    wrong = secret_file(creds, "wrong-password", "not-" + SASL_PW)
    relay.terminate()
    bad = spawn("cdc-relay", *relay_args, env=relay_env(wrong), wait_for=r"streaming slot")
    with urllib.request.urlopen(urllib.request.Request(
            base + "/orders", data=b'{"item": "cred2", "quantity": 1}', method="POST",
            headers={"Content-Type": "application/json"}), timeout=30) as resp:
        assert resp.status == 201
    bad.wait_for_log(r"(?i)authentication failed|SASL authentication error", timeout=60)
    assert len(sasl_kafka.consume(f"{topic_prefix}.orders", timeout=5)) == 1
    assert "not-" + SASL_PW not in binary_output(bad)
