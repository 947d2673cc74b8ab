"""docs/openapi.yaml against a running orders-api (real Postgres).

The spec is read with PyYAML and checked against the OpenAPI 3.0 schema by
openapi-spec-validator (pinned in tests/harness/requirements.txt, in the venv
tests/harness/deps.sh makes). Then: every documented operation is sent
requests that produce each documented status, on a normal api, an api whose
database is down (503) and an api whose database role has no privileges
(500); each answer's status must be documented and its headers and body must
validate against the documented schemas (jsonschema, draft 4 as OpenAPI 3.0
uses it, plus the spec's x-maxBytes). The body limits are checked both ways
(the schema accepts exactly what the api accepts), and a probe of paths and
methods shows that everything the api answers with other than 404/405 is
documented, and that 405's Allow lists exactly the documented methods."""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness import unique_name
from stack import Stack

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "head", "post", "put", "delete", "patch", "options")
JSON = {"Content-Type": "application/json"}
UUID0 = "00000000-0000-4000-8000-000000000000"


# ---- the spec, and a validator for the schemas in it -------------------------
def load_spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


SPEC = load_spec()


def resolve(node):
    """Follows local $refs (#/components/...)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = SPEC
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
        assert seen < 10, "reference loop"
    return node


def inline(node):
    """The schema with every local $ref replaced by what it names (the spec's
    schemas are not recursive), so a validator needs no resolver."""
    node = resolve(node)
    if isinstance(node, dict):
        return {k: inline(v) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v) for v in node]
    return node


# Keywords a response schema may use: those draft 4 validation enforces, the
# spec's own x-maxBytes, and annotations that assert nothing. Anything else
# OpenAPI allows (nullable, discriminator, readOnly, ...) would mean more
# than this test checks, so the spec may not use it.
CHECKED_KEYWORDS = set(jsonschema.Draft4Validator.VALIDATORS) | {"x-maxBytes"}
ANNOTATIONS = {"description", "example", "title", "format"}


def _max_bytes(validator, limit, instance, schema):
    if isinstance(instance, str) and len(instance.encode("utf-8", "surrogatepass")) > limit:
        yield jsonschema.ValidationError(f"longer than {limit} UTF-8 bytes")


FORMATS = jsonschema.FormatChecker(formats=())
for _name, _pattern in (
    ("uuid", r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    ("date-time", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"),
):
    FORMATS.checks(_name)(lambda v, p=re.compile(_pattern): not isinstance(v, str) or bool(p.fullmatch(v)))
Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {"x-maxBytes": _max_bytes})


def validate(schema, value, where: str = "$") -> list[str]:
    """Errors of value against schema (empty when valid)."""
    v = Validator(inline(schema), format_checker=FORMATS)
    return [f"{where}{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}" for e in v.iter_errors(value)]


def schema_keywords(node, out: set) -> set:
    """Every keyword used in the spec's schemas (property names excluded)."""
    node = resolve(node)
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            if k == "properties":
                for prop in v.values():
                    schema_keywords(prop, out)
            elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
                schema_keywords(v, out)
            elif k in ("allOf", "anyOf", "oneOf"):
                for s in v:
                    schema_keywords(s, out)
    return out


def spec_schemas():
    """Every schema object the spec uses: components, bodies, headers, parameters."""
    yield from SPEC["components"]["schemas"].values()
    for r in SPEC["components"].get("responses", {}).values():
        for h in r.get("headers", {}).values():
            yield resolve(h)["schema"]
        for c in r.get("content", {}).values():
            yield c["schema"]
    for _, _, op in operations():
        for c in op.get("requestBody", {}).get("content", {}).values():
            yield c["schema"]
        for r in op["responses"].values():
            r = resolve(r)
            for h in r.get("headers", {}).values():
                yield resolve(h)["schema"]
            for c in r.get("content", {}).values():
                yield c["schema"]


def spec_validator(path: Path) -> subprocess.CompletedProcess:
    """openapi-spec-validator from tests/harness/requirements.txt's venv (the
    name tests/harness/common.sh gives it)."""
    req = ROOT / "tests" / "harness" / "requirements.txt"
    cache = Path(os.environ.get("ORDERS_CDC_CACHE") or Path.home() / ".cache" / "orders-cdc")
    venv = cache / f"venv-{hashlib.sha256(req.read_bytes()).hexdigest()[:12]}"
    python = venv / "bin" / "python"
    assert (venv / "complete").exists(), f"{venv} missing: run sh tests/harness/deps.sh"
    return subprocess.run([str(python), "-m", "openapi_spec_validator", str(path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def operations():
    """(path template, method, operation) for every documented operation."""
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def documented_statuses() -> set[tuple[str, str, str]]:
    return {(p, m, s) for p, m, op in operations() for s in op["responses"]}


def template_of(path: str) -> str | None:
    for template in SPEC["paths"]:
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
            return template
    return None


# ---- HTTP -------------------------------------------------------------------
def request(base: str, method: str, path: str, body=None, headers=None):
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method.upper(), path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def check_response(template, method, status, headers, body) -> None:
    """The answer is documented for the operation and matches the documented
    headers, media type and schema."""
    op = SPEC["paths"][template].get(method)
    assert op is not None, f"{method.upper()} {template} is not documented"
    responses = op["responses"]
    assert str(status) in responses, f"{method.upper()} {template}: {status} is not documented"
    check_documented_response(resolve(responses[str(status)]), f"{method.upper()} {template} {status}", method, headers, body)


def check_documented_response(doc, what, method, headers, body) -> None:
    for name, h in doc.get("headers", {}).items():
        h = resolve(h)
        value = headers.get(name)
        if value is None:
            assert not h.get("required"), f"{what}: header {name} missing"
            continue
        errors = validate(h["schema"], value, name)
        assert not errors, f"{what}: {errors}"
    if method == "head":
        assert body == b"", f"{what}: HEAD answered with a body"
        return
    content = doc.get("content")
    if content is None:
        assert body == b"", f"{what}: undocumented body {body[:200]!r}"
        return
    ctype = headers.get("Content-Type")
    assert ctype in content, f"{what}: Content-Type {ctype!r} is not one of {sorted(content)}"
    if ctype == "application/json":
        value = json.loads(body)
    else:
        value = body.decode("utf-8")
    errors = validate(content[ctype]["schema"], value)
    assert not errors, f"{what}: {errors}\n{body[:500]!r}"


# ---- servers -----------------------------------------------------------------
@pytest.fixture
def api(migrated_pg, kafka, spawn):
    stack = Stack(migrated_pg, kafka, spawn)
    stack.start_api()
    return stack


def spawn_api(spawn, url: str) -> str:
    proc = spawn(
        "orders-api",
        env={"DATABASE_URL": url, "LISTEN_ADDR": "127.0.0.1:0"},
        wait_for=r"listening addr=\S+",
    )
    return "http://" + re.search(r"listening addr=(\S+)", proc.log_text()).group(1)


def dead_database_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"postgresql://postgres@127.0.0.1:{port}/orders"


# ---- cases: a request for every documented (path, method, status) ----------
# (template, method, status, server, path, body, headers); server is "api" (a
# working api), "dead" (its database is down) or "noprivs" (its database role
# may not read or write the tables). {order} is an existing order's id, {key}
# a fresh Idempotency-Key used once before with {"item": "book", "quantity": 1}.
ORDER = '{"item": "book", "quantity": 1}'
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CASES = [
    ("/orders", "post", 201, "api", "/orders", '{"item": "lamp", "quantity": 3}', JSON),
    ("/orders", "post", 201, "api", "/orders", ORDER, {**JSON, "Idempotency-Key": "{key}"}),
    ("/orders", "post", 201, "api", "/orders", ORDER, {**JSON, "traceparent": TRACEPARENT}),
    ("/orders", "post", 201, "api", "/orders", ORDER, {**JSON, "traceparent": "garbage"}),
    ("/orders", "post", 400, "api", "/orders", '{"item": "lamp", "quantity": 0}', JSON),
    ("/orders", "post", 400, "api", "/orders", ORDER, {**JSON, "Idempotency-Key": ""}),
    ("/orders", "post", 413, "api", "/orders", "x" * (16 * 1024 + 1), JSON),
    ("/orders", "post", 415, "api", "/orders", ORDER, {"Content-Type": "text/plain"}),
    ("/orders", "post", 422, "api", "/orders", '{"item": "book", "quantity": 2}', {**JSON, "Idempotency-Key": "{key}"}),
    ("/orders", "post", 500, "noprivs", "/orders", ORDER, JSON),
    ("/orders", "post", 503, "dead", "/orders", ORDER, JSON),
    ("/orders/{id}", "get", 200, "api", "/orders/{order}", None, {}),
    ("/orders/{id}", "get", 400, "api", "/orders/not-a-uuid", None, {}),
    ("/orders/{id}", "get", 404, "api", f"/orders/{UUID0}", None, {}),
    ("/orders/{id}", "get", 500, "noprivs", f"/orders/{UUID0}", None, {}),
    ("/orders/{id}", "get", 503, "dead", f"/orders/{UUID0}", None, {}),
    ("/orders/{id}", "head", 200, "api", "/orders/{order}", None, {}),
    ("/orders/{id}", "head", 400, "api", "/orders/not-a-uuid", None, {}),
    ("/orders/{id}", "head", 404, "api", f"/orders/{UUID0}", None, {}),
    ("/orders/{id}", "head", 500, "noprivs", f"/orders/{UUID0}", None, {}),
    ("/orders/{id}", "head", 503, "dead", f"/orders/{UUID0}", None, {}),
    ("/healthz", "get", 200, "api", "/healthz", None, {}),
    ("/healthz", "head", 200, "api", "/healthz", None, {}),
    ("/readyz", "get", 200, "api", "/readyz", None, {}),
    ("/readyz", "get", 503, "dead", "/readyz", None, {}),
    ("/readyz", "head", 200, "api", "/readyz", None, {}),
    ("/readyz", "head", 503, "dead", "/readyz", None, {}),
    ("/metrics", "get", 200, "api", "/metrics", None, {}),
    ("/metrics", "head", 200, "api", "/metrics", None, {}),
]


def run_cases(base: str, server: str, fill: dict) -> None:
    for template, method, status, where, path, body, headers in CASES:
        if where != server:
            continue
        path = path.replace("{order}", fill.get("order", ""))
        headers = {k: v.replace("{key}", fill.get("key", "")) for k, v in headers.items()}
        got, resp_headers, data = request(base, method, path, body, headers)
        what = f"{method.upper()} {path} on the {server} api"
        assert got == status, f"{what}: {got}, expected {status}: {data[:300]!r}"
        check_response(template, method, got, resp_headers, data)
        if "Idempotency-Key" in headers and got == 201:
            assert resp_headers.get("Idempotent-Replayed") == "true", what
            assert resp_headers.get("traceparent") is None, what  # a replay stored none
        elif template == "/orders" and got == 201:
            tp = resp_headers.get("traceparent")
            assert tp is not None, what
            if headers.get("traceparent") == TRACEPARENT:
                assert tp == TRACEPARENT, what
            else:
                assert tp != headers.get("traceparent"), what


# ---- the tests -----------------------------------------------------------------
def test_spec_is_valid_openapi_3_0(tmp_path):
    r = spec_validator(SPEC_PATH)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
    # the validator can fail: a misspelt schema keyword is refused
    bad = tmp_path / "openapi.yaml"
    bad.write_text(SPEC_PATH.read_text().replace("maxLength:", "maxLenght:", 1))
    assert "maxLenght" in bad.read_text()
    r = spec_validator(bad)
    assert r.returncode != 0 and "maxLenght" in r.stdout, r.stdout + r.stderr


def test_spec_is_consistent():
    assert re.fullmatch(r"3\.0\.\d+", SPEC["openapi"])
    assert SPEC["info"]["title"] == "orders-api"
    # docs/api.md points here
    assert "openapi.yaml" in (ROOT / "docs" / "api.md").read_text()
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids))
    # every schema asserts only what the validator checks
    used = set()
    for schema in spec_schemas():
        schema_keywords(schema, used)
    assert used - CHECKED_KEYWORDS - ANNOTATIONS == set()
    formats = {s.get("format") for s in (resolve(x) for x in spec_schemas())}
    for schema in SPEC["components"]["schemas"].values():
        formats |= {resolve(p).get("format") for p in schema.get("properties", {}).values()}
    assert formats - {None} <= set(FORMATS.checkers), formats


def test_every_documented_status_has_a_case():
    assert {(t, m, str(s)) for t, m, s, *_ in CASES} == documented_statuses()


def test_validator_catches_what_the_schemas_forbid():
    order = {"id": UUID0, "item": "book", "quantity": 2, "status": "created",
             "created_at": "2026-11-26T23:07:57.125993+00:00"}  # fmt: skip
    schema = {"$ref": "#/components/schemas/Order"}
    assert validate(schema, order) == []
    for bad in (
        {**order, "id": "nope"},
        {**order, "quantity": 2.0},
        {**order, "quantity": True},
        {**order, "quantity": 10001},
        {**order, "status": "shipped"},
        {**order, "created_at": "yesterday"},
        {**order, "color": "red"},
        {k: v for k, v in order.items() if k != "item"},
        {**order, "item": "é" * 101},
        [order],
    ):
        assert validate(schema, bad) != [], bad


def test_every_documented_response_on_a_working_api(api):
    s, h, b = request(api.api_base, "post", "/orders", ORDER, JSON)
    assert s == 201
    order = json.loads(b)["id"]
    key = unique_name("key")
    s, h, b = request(api.api_base, "post", "/orders", ORDER, {**JSON, "Idempotency-Key": key})
    assert s == 201 and "Idempotent-Replayed" not in h
    check_response("/orders", "post", s, h, b)
    run_cases(api.api_base, "api", {"order": order, "key": key})


def test_documented_503_with_the_database_down(spawn):
    run_cases(spawn_api(spawn, dead_database_url()), "dead", {})


def test_documented_500_with_a_role_without_privileges(api, spawn):
    role = unique_name("noprivs")
    # A password for servers that ask for one (compose's); loopback trust ignores it.
    password = uuid.uuid4().hex
    api.pg.psql(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'", url=api.url)
    try:
        parts = urllib.parse.urlsplit(api.url)
        url = urllib.parse.urlunsplit(
            parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}")
        )
        run_cases(spawn_api(spawn, url), "noprivs", {})
    finally:
        api.pg.psql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'",
            url=api.url,
        )
        api.pg.psql(f'DROP ROLE IF EXISTS "{role}"', url=api.url)


# Bodies around every documented limit of OrderRequest; the api must accept
# exactly those the schema accepts.
BODIES = [
    {"item": "b", "quantity": 1},
    {"item": "x" * 200, "quantity": 10000},
    {"item": "x" * 201, "quantity": 1},
    {"item": "é" * 100, "quantity": 1},
    {"item": "é" * 101, "quantity": 1},
    {"item": "", "quantity": 1},
    {"item": " \t\r\n\v\f", "quantity": 1},
    {"item": " a ", "quantity": 1},
    {"item": "\u00a0", "quantity": 1},
    {"item": "a\u0000b", "quantity": 1},
    {"item": "book", "quantity": 0},
    {"item": "book", "quantity": -1},
    {"item": "book", "quantity": 10001},
    {"item": "book", "quantity": 2.5},
    {"item": "book", "quantity": "2"},
    {"item": "book", "quantity": True},
    {"item": "book", "quantity": None},
    {"item": 5, "quantity": 1},
    {"item": "book"},
    {"quantity": 1},
    {"item": "book", "quantity": 1, "color": "red"},
    {},
    [],
]


def test_request_schema_accepts_exactly_what_the_api_accepts(api):
    schema = SPEC["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    disagree = []
    for body in BODIES:
        errors = validate(schema, body)
        status, headers, data = request(api.api_base, "post", "/orders", json.dumps(body), JSON)
        assert status in (201, 400), (body, data)
        check_response("/orders", "post", status, headers, data)
        if (status == 201) != (errors == []):
            disagree.append((body, status, data, errors))
    assert disagree == []


PROBE_PATHS = [
    "/orders", f"/orders/{UUID0}", f"/orders/{UUID0.upper()}", "/orders/not-a-uuid",
    "/orders/", f"/orders/{UUID0}/", f"/orders/{UUID0}/items", "/orders//x", "/Orders",
    "/ordersx", "/orders?x=1", "/healthz", "/healthz/", "/readyz", "/metrics", "/metrics/",
    "/", "/nope", "/openapi.yaml", "/docs", "/api/orders",
]  # fmt: skip


def test_everything_the_api_answers_is_documented(api):
    for path in PROBE_PATHS:
        template = template_of(path.split("?")[0])
        for method in METHODS:
            status, headers, data = request(api.api_base, method, path)
            what = f"{method.upper()} {path}: {status}"
            if template is None:
                assert status == 404, what
                check_documented_response(resolve(SPEC["components"]["responses"]["NotFound"]), what, method, headers, data)
            elif method not in SPEC["paths"][template]:
                assert status == 405, what
                documented = {m.upper() for m in METHODS if m in SPEC["paths"][template]}
                assert set(headers["Allow"].split(", ")) == documented, what
                check_documented_response(resolve(SPEC["components"]["responses"]["MethodNotAllowed"]), what, method, headers, data)
            else:
                check_response(template, method, status, headers, data)
