"""docs/openapi.yaml against a running orders-api (real Postgres).

The spec is read with the small YAML-subset loader below (stdlib only; when
PyYAML happens to be installed, the two must agree). Then: every documented
operation is sent requests that produce each documented status, on a normal
api, an api whose database is down (503) and an api whose database role has
no privileges (500); each answer's status must be documented and its headers
and body must validate against the documented schemas (a tiny validator for
the JSON Schema subset the spec uses). The body limits are checked both ways
(the schema accepts exactly what the api accepts), and a probe of paths and
methods shows that everything the api answers with other than 404/405 is
documented, and that 405's Allow lists exactly the documented methods."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import urllib.parse
from pathlib import Path

import pytest

from harness import unique_name
from stack import Stack

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "head", "post", "put", "delete", "patch", "options")
JSON = {"Content-Type": "application/json"}
UUID0 = "00000000-0000-4000-8000-000000000000"
EXTERNAL_PG_URL = os.environ.get("ORDERS_CDC_EXTERNAL_PG_URL") or None


# ---- a loader for the YAML subset docs/openapi.yaml is written in -----------
class YamlSubsetError(ValueError):
    pass


# Plain scalars YAML 1.1 (PyYAML) would read as something other than a string
# or a decimal integer: the loader refuses them, so they must be quoted.
_AMBIGUOUS = re.compile(
    r"(?i:y|n|yes|no|on|off|\.inf|[-+]\.inf|\.nan|=|<<)"
    r"|[-+]?(\.[0-9]|[0-9])[0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?"
    r"|[-+]?0[0-9xXoObB_].*"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*"
)


def _scalar(text: str, lineno: int):
    def fail(why):
        raise YamlSubsetError(f"line {lineno}: {why}: {text!r}")

    if text.startswith('"'):
        try:
            value, end = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError:
            fail("bad double-quoted scalar (JSON escapes only)")
        if end != len(text) or not isinstance(value, str):
            fail("text after a double-quoted scalar")
        return value
    if text.startswith("'"):
        m = re.fullmatch(r"'((?:[^']|'')*)'", text)
        if not m:
            fail("bad single-quoted scalar")
        return m.group(1).replace("''", "'")
    if text.startswith("["):
        if not text.endswith("]"):
            fail("flow sequence not closed on its line")
        inner = text[1:-1].strip()
        if not inner:
            return []
        items = re.findall(r"""\s*('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^,'"\[\]{}]+)\s*(?:,|$)""", inner)
        if ",".join(i.strip() for i in items) != ",".join(p.strip() for p in _split_flow(inner)):
            fail("flow sequence outside the subset")
        return [_scalar(i.strip(), lineno) for i in items]
    if text == "{}":
        return {}
    if text in ("~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", text):
        return int(text)
    if _AMBIGUOUS.fullmatch(text):
        fail("plain scalar YAML would not read as a string; quote it")
    if text[0] in "[]{}#&*!|>'\"%@`,?:-" and not (text[0] == "-" and text[1:2] not in ("", " ")):
        fail("plain scalar starting with an indicator; quote it")
    if ": " in text or " #" in text or text.endswith(":"):
        fail("': ' or ' #' in a plain scalar; quote it")
    return text


def _split_flow(inner: str) -> list[str]:
    out, cur, quote = [], "", None
    for ch in inner:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            cur += ch
        elif ch == ",":
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


class _Loader:
    def __init__(self, text: str):
        if "\t" in text:
            raise YamlSubsetError("tab characters are outside the subset")
        self.lines = text.split("\n")
        self.i = 0

    def peek(self):
        """(indent, content, lineno) of the next meaningful line, or None."""
        while self.i < len(self.lines):
            s = self.lines[self.i]
            if s.strip() and not s.lstrip().startswith("#"):
                s = s.rstrip()
                return len(s) - len(s.lstrip(" ")), s.lstrip(" "), self.i + 1
            self.i += 1
        return None

    def node(self, indent: int):
        _, content, _ = self.peek()
        if content == "-" or content.startswith("- "):
            return self.sequence(indent)
        return self.mapping(indent)

    def mapping(self, indent: int) -> dict:
        out: dict = {}
        while (p := self.peek()) and p[0] >= indent:
            ind, content, lineno = p
            if ind > indent:
                raise YamlSubsetError(f"line {lineno}: unexpected indentation")
            if content == "-" or content.startswith("- "):
                raise YamlSubsetError(f"line {lineno}: sequence item inside a mapping")
            key, rest = self.split_key(content, lineno)
            if key in out:
                raise YamlSubsetError(f"line {lineno}: duplicate key {key!r}")
            self.i += 1
            out[key] = self.value(rest, indent, lineno)
        return out

    def sequence(self, indent: int) -> list:
        out: list = []
        while (p := self.peek()) and p[0] >= indent:
            ind, content, lineno = p
            if ind > indent or not (content == "-" or content.startswith("- ")):
                raise YamlSubsetError(f"line {lineno}: expected a sequence item")
            item = content[1:].strip()
            if item == "":
                self.i += 1
                out.append(self.value("", indent, lineno))
            elif self.is_key(item):
                # "- key: value": a mapping whose keys sit two columns right of the dash
                self.lines[self.i] = " " * (indent + 2) + item
                out.append(self.mapping(indent + 2))
            else:
                self.i += 1
                out.append(_scalar(item, lineno))
        return out

    @staticmethod
    def is_key(content: str) -> bool:
        if content[0] in "'\"":
            m = re.match(r"""('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"):( |$)""", content)
            return m is not None
        return ": " in content or content.endswith(":")

    def split_key(self, content: str, lineno: int):
        if content[0] in "'\"":
            m = re.match(r"""('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"):( |$)""", content)
            if not m:
                raise YamlSubsetError(f"line {lineno}: bad quoted key")
            return _scalar(m.group(1), lineno), content[m.end() :].strip()
        idx = content.find(": ")
        if idx < 0:
            if not content.endswith(":"):
                raise YamlSubsetError(f"line {lineno}: expected 'key: value'")
            idx = len(content) - 1
        key = content[:idx]
        if key.startswith(("[", "{", "?", "&", "*", "!", "|", ">", "%", "@", "`", "-")):
            raise YamlSubsetError(f"line {lineno}: key outside the subset")
        return _scalar(key, lineno), content[idx + 1 :].strip()

    def value(self, rest: str, indent: int, lineno: int):
        if rest in ("|", "|-"):
            return self.literal(indent, keep_newline=rest == "|")
        if rest.startswith(("|", ">", "&", "*", "!")):
            raise YamlSubsetError(f"line {lineno}: {rest[0]} outside the subset")
        if rest:
            return _scalar(rest, lineno)
        p = self.peek()
        if p and p[0] > indent:
            return self.node(p[0])
        if p and p[0] == indent and (p[1] == "-" or p[1].startswith("- ")):
            raise YamlSubsetError(f"line {p[2]}: indent a key's sequence under the key")
        return None

    def literal(self, indent: int, keep_newline: bool) -> str:
        body: list[str] = []
        block_indent = None
        while self.i < len(self.lines):
            s = self.lines[self.i]
            if s.strip() == "":
                body.append("")
            else:
                ind = len(s) - len(s.lstrip(" "))
                if ind <= indent:
                    break
                if block_indent is None:
                    block_indent = ind
                if ind < block_indent:
                    raise YamlSubsetError(f"line {self.i + 1}: literal block dedented")
                body.append(s[block_indent:].rstrip("\n"))
            self.i += 1
        while body and body[-1] == "":
            body.pop()
        text = "\n".join(body)
        return text + "\n" if keep_newline and body else text


def load_yaml_subset(text: str):
    loader = _Loader(text)
    p = loader.peek()
    if p is None:
        return None
    if p[0] != 0:
        raise YamlSubsetError(f"line {p[2]}: the document must start at column 0")
    doc = loader.node(0)
    if loader.peek() is not None:
        raise YamlSubsetError(f"line {loader.peek()[2]}: text after the document")
    return doc


# ---- the spec, and a validator for the JSON Schema subset it uses -----------
def load_spec() -> dict:
    return load_yaml_subset(SPEC_PATH.read_text())


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


SCHEMA_KEYWORDS = {
    "type", "required", "properties", "additionalProperties", "minLength", "maxLength",
    "minimum", "maximum", "enum", "pattern", "format", "description", "x-maxBytes", "items",
}  # fmt: skip
FORMATS = {
    "uuid": re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    "date-time": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"),
}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def validate(schema, value, where: str = "$") -> list[str]:
    """Errors of value against schema (empty when valid). A keyword outside the
    supported subset is an error, so the spec cannot say more than is checked."""
    schema = resolve(schema)
    unknown = set(schema) - SCHEMA_KEYWORDS
    if unknown:
        return [f"{where}: schema keywords outside the validator's subset: {sorted(unknown)}"]
    t = schema.get("type")
    if t is not None and not TYPES[t](value):
        return [f"{where}: expected {t}, got {type(value).__name__}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']} characters")
        if "x-maxBytes" in schema and len(value.encode("utf-8", "surrogatepass")) > schema["x-maxBytes"]:
            errors.append(f"{where}: longer than {schema['x-maxBytes']} UTF-8 bytes")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: does not match {schema['pattern']!r}")
        if "format" in schema and not FORMATS[schema["format"]].fullmatch(value):
            errors.append(f"{where}: not a {schema['format']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: above {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: {name} is required")
        for name, v in value.items():
            if name in props:
                errors += validate(props[name], v, f"{where}.{name}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{where}: unexpected member {name!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += validate(schema["additionalProperties"], v, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errors += validate(schema["items"], v, f"{where}[{i}]")
    return errors


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
CASES = [
    ("/orders", "post", 201, "api", "/orders", '{"item": "lamp", "quantity": 3}', JSON),
    ("/orders", "post", 201, "api", "/orders", ORDER, {**JSON, "Idempotency-Key": "{key}"}),
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


# ---- the tests -----------------------------------------------------------------
def test_spec_loads_and_is_consistent():
    text = SPEC_PATH.read_text()
    try:
        import yaml  # optional: only to check that the subset loader reads YAML as YAML does
    except ImportError:
        yaml = None
    if yaml is not None:
        assert load_yaml_subset(text) == yaml.safe_load(text)
    assert re.fullmatch(r"3\.0\.\d+", SPEC["openapi"])
    assert SPEC["info"]["title"] == "orders-api"
    # docs/api.md points here
    assert "openapi.yaml" in (ROOT / "docs" / "api.md").read_text()
    # every $ref resolves, every operation is complete, ids are unique
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node
            for v in node.values():
                yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for r in refs(SPEC):
        assert resolve(r) is not None, r
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids))
    for path, method, op in operations():
        assert op["responses"], (path, method)
        for status, resp in op["responses"].items():
            assert re.fullmatch(r"[1-5][0-9][0-9]", status), (path, method, status)
            assert resolve(resp)["description"], (path, method, status)
        for name in re.findall(r"\{([^}]+)\}", path):
            params = SPEC["paths"][path].get("parameters", []) + op.get("parameters", [])
            assert any(resolve(p)["name"] == name and resolve(p)["in"] == "path" for p in params)
    # every schema the spec defines stays inside the validator's subset
    for name, schema in SPEC["components"]["schemas"].items():
        for prop in schema.get("properties", {}).values():
            assert not set(resolve(prop)) - SCHEMA_KEYWORDS, (name, prop)
        assert not set(schema) - SCHEMA_KEYWORDS, name


def test_every_documented_status_has_a_case():
    assert {(t, m, str(s)) for t, m, s, *_ in CASES} == documented_statuses()


@pytest.mark.parametrize(
    "text,why",
    [
        ("a: yes\n", "YAML 1.1 boolean"),
        ("a: 1.5\n", "float"),
        ("a: 2026-11-26\n", "date"),
        ("a: 010\n", "octal"),
        ("a: b: c\n", "': ' in a plain scalar"),
        ("a: b #c\n", "comment after a value"),
        ("a: >\n  folded\n", "folded block"),
        ("a:\n- b\n", "unindented sequence"),
        ("a: 1\na: 2\n", "duplicate key"),
        ("a: &x 1\n", "anchor"),
        ("a:\n\tb: 1\n", "tab"),
    ],
)
def test_yaml_loader_refuses_what_it_does_not_read_like_yaml(text, why):
    with pytest.raises(YamlSubsetError):
        load_yaml_subset(text)


def test_yaml_loader_reads_the_subset():
    text = (
        "# comment\nk: v\nq: 'it''s: x'\nd: \"a\\u00e9\\n\"\nnum: -3\nt: true\nz: ~\ne: {}\n"
        "f: [a, 'b, c', \"d\"]\nm:\n  x: 1\n  ys:\n    - 1\n    - k: v\n      w: [ ]\n"
        "    -\n      deep: x\nl: |\n  one\n\n  two # not a comment\nl2: |-\n  x\n"
        "'201': s\nurl: http://h:1/p\n"
    )
    want = {
        "k": "v", "q": "it's: x", "d": "a\u00e9\n", "num": -3, "t": True, "z": None, "e": {},
        "f": ["a", "b, c", "d"], "m": {"x": 1, "ys": [1, {"k": "v", "w": []}, {"deep": "x"}]},
        "l": "one\n\ntwo # not a comment\n", "l2": "x", "201": "s", "url": "http://h:1/p",
    }  # fmt: skip
    assert load_yaml_subset(text) == want


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
    assert validate({"type": "string", "uniqueItems": True}, "x") != []


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
    if EXTERNAL_PG_URL:
        pytest.skip("external servers: needs a login role with trust authentication")
    role = unique_name("noprivs")
    api.pg.psql(f'CREATE ROLE "{role}" LOGIN', url=api.url)
    try:
        parts = urllib.parse.urlsplit(api.url)
        url = urllib.parse.urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
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
