"""docs/configuration.md against the binaries, and --print-config end to end.

No servers: --help and --print-config never connect. Each binary's --help is
parsed into (flag, env, default); docs/configuration.md's table for that
binary must list exactly the same options with the same variables and
defaults, and --print-config with nothing set must show those defaults. Then
precedence (flag > env > file > default), the sources shown, secret masking
and config-file errors, through the real binaries.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import pytest

from harness import REPO, run_bin

DOC = REPO / "docs" / "configuration.md"

# Every variable either binary reads, cleared so the caller's environment
# cannot leak into "defaults": this list, plus whatever --help names (so an
# option added later is covered too).
KNOWN_VARS = [
    "CDC_CONFIG", "API_CONFIG", "DATABASE_URL", "KAFKA_BROKERS", "CDC_SLOT",
    "CDC_PUBLICATION", "CDC_TABLE", "CDC_TOPIC_TEMPLATE", "CDC_SOURCE",
    "CDC_MESSAGE_PREFIX", "CDC_HEARTBEAT_INTERVAL", "CDC_NO_CREATE_SLOT",
    "CDC_NO_CREATE_PUBLICATION", "CDC_STATUS_INTERVAL", "CDC_SERVER_TIMEOUT",
    "CDC_SHUTDOWN_TIMEOUT", "CDC_RECONNECT_MAX", "CDC_STATE_FILE",
    "CDC_NO_STATE_FILE", "CDC_REPLAY_WINDOW", "LOG_LEVEL", "LOG_FORMAT",
    "CDC_METRICS_LISTEN", "LISTEN_ADDR", "DB_POOL_SIZE", "DB_TIMEOUT_MS",
    "OUTBOX_MODE", "CDC_KAFKA_CONFIG",
]


@functools.lru_cache(maxsize=None)
def all_vars() -> tuple[str, ...]:
    names = set(KNOWN_VARS)
    for binary in ("cdc-relay", "orders-api"):
        r = run_bin(binary, "--help", timeout=30)
        names |= set(re.findall(r"\benv ([A-Z][A-Z0-9_]+),", r.stdout))
    return tuple(sorted(names))


def clean_env(**extra: str) -> dict:
    env = {k: None for k in all_vars()}
    env.update(extra)
    return env


def run(binary: str, *args: str, **env: str):
    return run_bin(binary, *args, env=clean_env(**env), timeout=30)


HELP_OPT = re.compile(r"^  (?:-(\w), )?(--[a-z][a-z-]*|-X)(?: (\S+))?(?:\s|$)")
HELP_ENV = re.compile(r"^\s+env (\S+), default (.+?)(?: \(not in the config file\))?$")


def help_options(binary: str) -> dict[str, dict]:
    """--help -> {flag: {"env": str|None, "default": str|None, "cli_only": bool}}."""
    r = run(binary, "--help")
    assert r.returncode == 0, r.stderr
    opts: dict[str, dict] = {}
    cur = None
    for line in r.stdout.splitlines():
        m = HELP_OPT.match(line)
        if m:
            cur = m.group(2)
            opts[cur] = {"env": None, "default": None, "cli_only": False, "short": m.group(1)}
            continue
        if cur is None:
            continue
        m = HELP_ENV.match(line)
        if m:
            opts[cur]["env"] = None if m.group(1) == "-" else m.group(1)
            opts[cur]["default"] = m.group(2)
        elif line.strip() == "command line only":
            opts[cur]["cli_only"] = True
    assert len(opts) >= 10, f"--help of {binary} parsed to only {sorted(opts)}"
    return opts


def doc_table(binary: str) -> dict[str, dict]:
    """The table under '## <binary>' -> {flag: {"env", "file", "default"}}."""
    text = DOC.read_text()
    section = text.split(f"\n## {binary}\n", 1)
    assert len(section) == 2, f"no '## {binary}' section in {DOC}"
    rows: dict[str, dict] = {}
    for line in section[1].split("\n## ", 1)[0].splitlines():
        if not line.startswith("| `-"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        flags = re.findall(r"`(--?[A-Za-z][a-z-]*)", cells[0])
        flag = [f for f in flags if f.startswith("--") or f == "-X"][-1]
        code = lambda c: (re.fullmatch(r"`([^`]*)`", c) or [None, None])[1]
        rows[flag] = {"env": code(cells[1]), "file": code(cells[2]),
                      "default": code(cells[3]) or (cells[3] or None), "raw": cells}
    return rows


@pytest.mark.parametrize("binary", ["cdc-relay", "orders-api"])
def test_doc_lists_every_option_with_its_env_and_default(binary):
    helped = help_options(binary)
    documented = doc_table(binary)
    assert sorted(helped) == sorted(documented), (
        f"options in --help but not in {DOC.name}: {sorted(set(helped) - set(documented))}; "
        f"in {DOC.name} but not in --help: {sorted(set(documented) - set(helped))}")
    for flag, h in helped.items():
        d = documented[flag]
        assert d["env"] == h["env"], f"{binary} {flag}: env {d['env']} in doc, {h['env']} in --help"
        if h["default"] is not None:
            assert d["default"] == h["default"], (
                f"{binary} {flag}: default {d['default']!r} in doc, {h['default']!r} in --help")
        if flag == "-X":
            assert d["file"] == "kafka.NAME"
        elif h["cli_only"] or flag in ("--config", "--help", "--version"):
            assert d["file"] is None, f"{binary} {flag} is not a file key"
        else:
            assert d["file"] == flag[2:], f"{binary} {flag}: file key {d['file']}"


PRINT_LINE = re.compile(r"^(\S+) = (.*?)  \[(default|file|env|flag)(?: (.+))?\]$")


def print_config(binary: str, *args: str, **env: str) -> dict[str, tuple[str, str, str]]:
    r = run(binary, "--print-config", *args, **env)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        m = PRINT_LINE.match(line)
        assert m, f"unexpected --print-config line: {line!r}"
        out.setdefault(m.group(1), (m.group(2), m.group(3), m.group(4)))
        if m.group(1).startswith("kafka."):
            out[m.group(1)] = (m.group(2), m.group(3), m.group(4))  # the last one wins
    return out


@pytest.mark.parametrize("binary", ["cdc-relay", "orders-api"])
def test_print_config_defaults_match_the_doc(binary):
    shown = print_config(binary)
    documented = doc_table(binary)
    settings = {f: d for f, d in documented.items()
                if f != "-X" and not d["raw"][3] == "" and f not in ("--help", "--version")}
    assert sorted(shown) == sorted(f[2:] for f in settings), "print-config rows != doc rows"
    slot = shown.get("slot", ("", "", ""))[0]
    for flag, d in settings.items():
        value, source, _ = shown[flag[2:]]
        assert source == "default", f"{flag}: {source} with a clean environment"
        want = "<unset>" if d["default"] == "none" else d["default"].replace("<slot>", slot)
        assert value == want, f"{binary} {flag}: --print-config {value!r}, doc {want!r}"


def test_relay_precedence_sources_and_masking(tmp_path: Path):
    conf = tmp_path / "relay.conf"
    conf.write_text(
        "# relay\n"
        "database-url = postgresql://relay:filepw@db.example/orders?sslpassword=sslpw\n"
        "slot = s_file\n"
        "publication = p_file\n"
        "brokers = b_file:9092\n"
        "no-create-slot = true\n"
        "kafka.sasl.password = kafkapw\n"
        "kafka.linger.ms = 50\n"
        "kafka.acks = 1\n"
    )
    shown = print_config("cdc-relay", "--slot", "s_flag", "-X", "acks=all",
                         "-X", "ssl.key.pem=-----BEGIN PRIVATE KEY-----",
                         CDC_CONFIG=str(conf), CDC_SLOT="s_env", CDC_PUBLICATION="p_env",
                         LOG_LEVEL="")
    assert shown["slot"] == ("s_flag", "flag", "--slot")
    assert shown["publication"] == ("p_env", "env", "CDC_PUBLICATION")
    assert shown["brokers"] == ("b_file:9092", "file", f"{conf}:5")
    assert shown["no-create-slot"] == ("true", "file", f"{conf}:6")
    assert shown["log-level"] == ("info", "default", None)  # empty variable: unset
    assert shown["state-file"] == ("cdc-relay.s_flag.state", "default", None)
    assert shown["config"] == (str(conf), "env", "CDC_CONFIG")
    assert shown["database-url"][0] == "postgresql://relay:***@db.example/orders?sslpassword=***"
    assert shown["kafka.sasl.password"] == ("***", "file", f"{conf}:7")
    assert shown["kafka.ssl.key.pem"] == ("***", "flag", "-X")
    assert shown["kafka.linger.ms"] == ("50", "file", f"{conf}:8")
    assert shown["kafka.acks"] == ("all", "flag", "-X")

    r = run("cdc-relay", "--print-config", CDC_CONFIG=str(conf),
            DATABASE_URL="host=db user=relay password='env pw' sslpassword=x2")
    assert r.returncode == 0, r.stderr
    for secret in ("filepw", "sslpw", "kafkapw", "env pw", "x2"):
        assert secret not in r.stdout + r.stderr
    assert "database-url = host=db user=relay password='***' sslpassword=***  [env DATABASE_URL]" \
        in r.stdout

    # --config beats CDC_CONFIG.
    other = tmp_path / "other.conf"
    other.write_text("slot = s_other\n")
    assert print_config("cdc-relay", "--config", str(other), CDC_CONFIG=str(conf))["slot"] == (
        "s_other", "file", f"{other}:1")


def test_api_precedence_sources_and_masking(tmp_path: Path):
    conf = tmp_path / "api.conf"
    conf.write_text("database-url = postgresql://api:apipw@db/orders\npool-size = 4\n"
                    "listen = 127.0.0.1:9001\noutbox-mode = message\n")
    shown = print_config("orders-api", "--pool-size=5", API_CONFIG=str(conf),
                         LISTEN_ADDR="127.0.0.1:9002")
    assert shown["pool-size"] == ("5", "flag", "--pool-size")
    assert shown["listen"] == ("127.0.0.1:9002", "env", "LISTEN_ADDR")
    assert shown["outbox-mode"] == ("message", "file", f"{conf}:4")
    assert shown["db-timeout-ms"] == ("5s", "default", None)
    assert shown["database-url"] == ("postgresql://api:***@db/orders", "file", f"{conf}:1")


@pytest.mark.parametrize(
    "binary,var,text,needle",
    [
        ("cdc-relay", "CDC_CONFIG", "slot = a\nslots = b\n", ':2: unknown option "slots"'),
        ("cdc-relay", "CDC_CONFIG", "status-interval = soon\n",
         ':1: status-interval: "soon" is not a duration in [1ms, 1d]'),
        ("cdc-relay", "CDC_CONFIG", "start-lsn = 0/1\n", ':1: "start-lsn" cannot be set'),
        ("cdc-relay", "CDC_CONFIG", "slot\n", ':1: expected "name = value"'),
        ("orders-api", "API_CONFIG", "\n\npool-size = 0\n",
         ':3: pool-size: "0" is not an integer between 1 and 128'),
        ("orders-api", "API_CONFIG", "migrate = true\n", ':1: "migrate" cannot be set'),
    ],
)
def test_config_file_errors_name_file_and_line(tmp_path: Path, binary, var, text, needle):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    r = run(binary, "--print-config", **{var: str(conf)})
    assert r.returncode == 2, r.stdout
    assert f"{conf}{needle}" in r.stderr


@pytest.mark.parametrize("binary", ["cdc-relay", "orders-api"])
def test_unknown_flag_env_value_and_missing_file_exit_2(binary):
    r = run(binary, "--no-such-option")
    assert r.returncode == 2 and '"--no-such-option"' in r.stderr
    r = run(binary, "--config", "/nonexistent/orders-cdc.conf")
    assert r.returncode == 2 and "--config: cannot open config file" in r.stderr
    r = run(binary, "--print-config", LOG_LEVEL="loud")
    assert r.returncode == 2 and "LOG_LEVEL" in r.stderr and "loud" in r.stderr


UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def durations_table() -> dict[str, dict]:
    """The table under '## Durations' -> {flag: {"env", "bare_ms", "max_ms", "default"}}."""
    text = DOC.read_text().split("\n## Durations\n", 1)
    assert len(text) == 2, f"no '## Durations' section in {DOC}"
    rows = {}
    for line in text[1].split("\n## ", 1)[0].splitlines():
        if line.startswith("| `--"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            flag = re.match(r"`(--[a-z-]+)`", cells[0]).group(1)
            hi = re.search(r"\.\.(\d+)(ms|s|m|h|d)\b", cells[3])
            assert hi, f"Durations table {flag}: no range like 1ms..1d in {cells[3]!r}"
            rows[flag] = {"env": cells[1].strip("`"),
                          "bare_ms": {"seconds": 1000, "milliseconds": 1}[cells[2]],
                          "max_ms": int(hi.group(1)) * UNIT_MS[hi.group(2)],
                          "default": cells[4].strip("`")}
    return rows


def test_every_time_option_is_in_the_durations_table_and_takes_units():
    """Each option whose --help metavar is DUR has one row in the Durations
    table with its variable and default; its variable takes units; and a bare
    number is in the unit the table says: the documented maximum written bare
    is accepted, one more is refused."""
    table = durations_table()
    seen = set()
    for binary in ("cdc-relay", "orders-api"):
        r = run(binary, "--help")
        helped = help_options(binary)
        for flag in re.findall(r"^  (--[a-z-]+) DUR\b", r.stdout, re.M):
            seen.add(flag)
            assert flag in table, f"{binary} {flag} takes a duration but is not in the Durations table"
            row, env = table[flag], helped[flag]["env"]
            assert row["env"] == env and row["default"] == helped[flag]["default"], (flag, row)
            assert print_config(binary, **{env: "1m30s"})[flag[2:]] == ("1m30s", "env", env)
            top = row["max_ms"] // row["bare_ms"]
            ok = run(binary, "--print-config", **{env: str(top)})
            assert ok.returncode == 0, ok.stderr
            over = run(binary, "--print-config", **{env: str(top + 1)})
            assert over.returncode == 2 and f'{env}: "{top + 1}" is not' in over.stderr, over.stderr
    assert sorted(seen) == sorted(table), (
        f"Durations table rows without a DUR option: {sorted(set(table) - seen)}")
    # The issue's own example.
    assert print_config("cdc-relay", CDC_STATUS_INTERVAL="10s")["status-interval"] == (
        "10s", "env", "CDC_STATUS_INTERVAL")


def test_relay_kafka_properties_kcat_forms_and_checks(tmp_path: Path):
    """-Xname=value, -X file=PATH, --kafka-config: applied in order, shown by
    --print-config with their sources; every property checked by librdkafka
    (the real one) with exit 2, at --print-config and at start."""
    props = tmp_path / "kafka.properties"
    props.write_text("# kcat format\nlinger.ms = 40\nsasl.password=propspw\ncompression.type=lz4\n")
    shown = print_config("cdc-relay", "-Xlinger.ms=50", "-X", f"file={props}",
                         CDC_KAFKA_CONFIG=str(props))
    assert shown["kafka-config"] == (str(props), "env", "CDC_KAFKA_CONFIG")
    assert shown["kafka.compression.type"] == ("lz4", "file", f"{props}:4")
    assert shown["kafka.sasl.password"] == ("***", "file", f"{props}:3")
    assert shown["kafka.linger.ms"] == ("50", "flag", "-X")  # the last one printed: the flag

    for args, env, needle in [
        (["-X", "bogus.prop=1"], {}, '-X: kafka property bogus.prop=1: No such configuration property'),
        (["-Xacks=banana"], {}, "-X: kafka property acks=banana: Invalid value"),
        ([], {"CDC_KAFKA_CONFIG": str(props)}, None),
    ]:
        r = run("cdc-relay", "--print-config", *args, **env)
        if needle is None:
            assert r.returncode == 0, r.stderr
        else:
            assert r.returncode == 2 and needle in r.stderr, r.stderr
    bad = tmp_path / "bad.properties"
    bad.write_text("linger.ms=1\nsasl.jaas.config=org.apache.kafka...PlainLoginModule required "
                   "username=\"u\" password=\"jaaspw\";\n")
    r = run("cdc-relay", "--print-config", "-X", f"file={bad}")
    assert r.returncode == 2 and f"{bad}:2: kafka property sasl.jaas.config (value not shown)" in r.stderr
    assert "jaaspw" not in r.stderr + r.stdout
    # At start too: exit 2 before connecting to anything (the database URL
    # points nowhere; a connection attempt would take seconds and exit 1).
    r = run("cdc-relay", "-X", "bogus.prop=1", DATABASE_URL="postgresql://u@127.0.0.1:1/x",
            CDC_METRICS_LISTEN="127.0.0.1:0")
    assert r.returncode == 2 and "bogus.prop" in r.stderr and "starting" not in r.stderr
    r = run("cdc-relay", "--print-config", "-X", "file=/nonexistent/k.properties")
    assert r.returncode == 2 and '-X file=: cannot open Kafka properties file "/nonexistent' in r.stderr


@pytest.mark.parametrize("binary,libs", [
    ("cdc-relay", ["libpq", "librdkafka", "jansson", "libmicrohttpd"]),
    ("orders-api", ["libpq", "jansson", "libmicrohttpd"]),
])
def test_version_names_the_libraries_as_loaded(binary, libs):
    """-V and --version: "NAME VERSION" first (what scripts read), then one
    line per library with the version the loaded library reports."""
    for flag in ("-V", "--version"):
        r = run(binary, flag)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert re.fullmatch(rf"{binary} \d+\.\d+\.\d+", lines[0]), lines
        assert [l.split()[0] for l in lines[1:]] == libs, lines
        for line in lines[1:]:
            assert re.fullmatch(r"  [a-z]+ \d+(\.\d+)+", line), line
    if binary == "cdc-relay":
        kcat = subprocess.run(["kcat", "-V"], capture_output=True, text=True)
        # kcat prints the librdkafka it runs with; both use Debian's package
        m = re.search(r"librdkafka (\d+\.\d+\.\d+)", kcat.stdout + kcat.stderr)
        assert m, kcat.stdout + kcat.stderr
        assert f"  librdkafka {m.group(1)}" in r.stdout
