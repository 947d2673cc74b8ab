#!/bin/sh
# Static checks of deploy/ (run by `make lint`). No Docker engine runs on the
# development machines, so the images are never built here: this checks what
# can be checked without one.
#
#   deploy/docker-compose.yml  parses (PyYAML when present, and always a
#       stdlib parser of the plain-YAML subset the file keeps to, so machines
#       without PyYAML check the same thing); services have image or build;
#       build context/dockerfile/target exist; depends_on targets and
#       conditions; healthchecks on postgres, redpanda, api; postgres's
#       logical-WAL settings; named volumes declared; stop_grace_period past
#       the binaries' shutdown waits; env var names known to the binaries.
#   deploy/Dockerfile  debian:bookworm-slim bases; the build stage COPYs what
#       the Makefile compiles from and runs `make ... all`; its -dev packages
#       and the runtime's shared-library packages match the Makefile's
#       pkg-config list (and, when bin/ is built, the binaries' DT_NEEDED);
#       non-root USER in the api and relay targets; HEALTHCHECK in api; COPY
#       sources exist and are not dockerignored.
#   deploy/systemd/*  the required [Service] settings; env var names known
#       to the binaries; `systemd-analyze verify` and `security --offline`
#       when systemd-analyze exists.
#   deploy/prometheus/alerts.yml  `promtool check rules`, and `promtool test
#       rules` on alerts_test.yml (required: tests/harness/deps.sh installs
#       promtool, Debian package prometheus).
#   Optional, when installed: `docker compose config --quiet` (the compose
#       CLI plugin; needs no daemon) and check-jsonschema's compose-spec schema.
#
# "Known to the binaries": the names `orders-api --help` / `cdc-relay --help`
# print, taken from bin/ when the binary is newer than its sources, else
# from the string literals in the sources (lint runs before any build in CI).
# Exit 1 with one "lint: deploy: ..." line per problem.
cd "$(dirname "$0")/.." || exit 1

if ! command -v python3 >/dev/null 2>&1; then
    echo "lint: deploy: python3 is required for tools/check_deploy.sh (sh tests/harness/deps.sh installs it)"
    exit 1
fi

status=0
python3 - "$@" <<'PY' || status=1
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path.cwd()
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
UNITS = DEPLOY / "systemd"
ENV_SAMPLE = UNITS / "orders-cdc.env.sample"
IT_RUN = DEPLOY / "it" / "run.sh"

errors = []
notes = []


def err(where, msg):
    errors.append(f"lint: deploy: {where}: {msg}")


def rel(p):
    try:
        return str(Path(p).resolve().relative_to(REPO))
    except ValueError:
        return str(p)


# ---------------------------------------------------------------------------
# A stdlib parser for the YAML subset deploy/docker-compose.yml keeps to:
# block mappings and sequences, one-line flow sequences of scalars, plain and
# quoted scalars, comments. Anything else (anchors, aliases, tags, flow
# mappings, multi-line scalars, "- key: value" items) is an error, so a
# machine without PyYAML never checks a different document.
# Scalars resolve as PyYAML's YAML 1.1 resolver does for the cases used.
# ---------------------------------------------------------------------------
class SubsetError(Exception):
    pass


_BOOL = {
    "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
    "yes": True, "Yes": True, "YES": True, "no": False, "No": False, "NO": False,
    "on": True, "On": True, "ON": True, "off": False, "Off": False, "OFF": False,
}


def _strip_comment(line):
    out, q, i = [], None, 0
    while i < len(line):
        c = line[i]
        if q:
            out.append(c)
            if q == '"' and c == "\\" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
            elif c == q:
                if q == "'" and line[i + 1:i + 2] == "'":
                    out.append("'")
                    i += 1
                else:
                    q = None
        elif c in "\"'" and (not out or out[-1] in " [,:-") :
            q = c
            out.append(c)
        elif c == "#" and (not out or out[-1] in " \t"):
            break
        else:
            out.append(c)
        i += 1
    if q:
        raise SubsetError("unterminated quoted scalar")
    return "".join(out).rstrip()


def _scalar(tok, lineno):
    tok = tok.strip()
    if tok == "":
        return None
    if tok[0] in "&*!|>{@`%":
        raise SubsetError(f"line {lineno}: {tok[0]!r} (anchors, aliases, tags, block or flow-mapping scalars) is outside the subset")
    if tok[0] == '"':
        if len(tok) < 2 or tok[-1] != '"':
            raise SubsetError(f"line {lineno}: bad double-quoted scalar {tok}")
        try:
            return json.loads(tok)
        except ValueError:
            raise SubsetError(f"line {lineno}: unsupported escape in {tok}") from None
    if tok[0] == "'":
        if len(tok) < 2 or tok[-1] != "'":
            raise SubsetError(f"line {lineno}: bad single-quoted scalar {tok}")
        return tok[1:-1].replace("''", "'")
    if tok[0] == "[":
        if tok[-1] != "]":
            raise SubsetError(f"line {lineno}: flow sequence must end on its line")
        inner = tok[1:-1].strip()
        if not inner:
            return []
        items, cur, q = [], "", None
        for c in inner:
            if q:
                cur += c
                if c == q:
                    q = None
            elif c in "\"'":
                q = c
                cur += c
            elif c == ",":
                items.append(cur)
                cur = ""
            elif c in "[]{}":
                raise SubsetError(f"line {lineno}: nested flow collections are outside the subset")
            else:
                cur += c
        items.append(cur)
        return [_scalar(x, lineno) for x in items]
    if tok in ("~", "null", "Null", "NULL"):
        return None
    if tok in _BOOL:
        return _BOOL[tok]
    if re.fullmatch(r"[-+]?(0|[1-9][0-9_]*)", tok):
        return int(tok.replace("_", ""))
    if re.fullmatch(r"[-+]?([0-9][0-9_]*)?\.[0-9_]+([eE][-+][0-9]+)?", tok):
        return float(tok.replace("_", ""))
    if ": " in tok or tok.endswith(":"):
        raise SubsetError(f"line {lineno}: a mapping inside a scalar position is outside the subset: {tok}")
    return tok


def subset_yaml(text):
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise SubsetError(f"line {n}: tab in indentation")
        s = _strip_comment(raw)
        if s.strip() in ("---",):
            continue
        if s.strip():
            lines.append((n, len(s) - len(s.lstrip(" ")), s.strip()))
    pos = 0

    def parse_block(indent):
        nonlocal pos
        n, ind, s = lines[pos]
        if s.startswith("- ") or s == "-":
            return parse_seq(ind)
        return parse_map(ind)

    def parse_seq(indent):
        nonlocal pos
        out = []
        while pos < len(lines):
            n, ind, s = lines[pos]
            if ind < indent or not (s.startswith("- ") or s == "-"):
                if ind > indent:
                    raise SubsetError(f"line {n}: unexpected indentation")
                break
            if ind > indent:
                raise SubsetError(f"line {n}: unexpected indentation")
            item = s[1:].strip()
            if item == "" or re.match(r"^[^\"'\[]+:( |$)", item) or item.startswith("- "):
                raise SubsetError(f"line {n}: only scalar sequence items are in the subset")
            out.append(_scalar(item, n))
            pos += 1
        return out

    def parse_map(indent):
        nonlocal pos
        out = {}
        while pos < len(lines):
            n, ind, s = lines[pos]
            if ind < indent:
                break
            if ind > indent:
                raise SubsetError(f"line {n}: unexpected indentation")
            if s.startswith("- "):
                break
            m = re.match(r"^([A-Za-z0-9_.$/-]+|\"[^\"]*\"|'[^']*'):(?: (.*))?$", s)
            if not m:
                raise SubsetError(f"line {n}: expected 'key: value', got {s!r}")
            key = _scalar(m.group(1), n)
            if key in out:
                raise SubsetError(f"line {n}: duplicate key {key!r}")
            rest = (m.group(2) or "").strip()
            pos += 1
            if rest:
                out[key] = _scalar(rest, n)
                continue
            if pos < len(lines):
                n2, ind2, s2 = lines[pos]
                if ind2 > ind:
                    out[key] = parse_block(ind2)
                    continue
                if ind2 == ind and (s2.startswith("- ") or s2 == "-"):
                    out[key] = parse_seq(ind2)
                    continue
            out[key] = None
        return out

    if not lines:
        return None
    doc = parse_block(lines[0][1])
    if pos != len(lines):
        n, _, s = lines[pos]
        raise SubsetError(f"line {n}: unexpected {s!r}")
    return doc


def load_compose():
    text = COMPOSE.read_text()
    sub, sub_err = None, None
    try:
        sub = subset_yaml(text)
    except SubsetError as e:
        sub_err = str(e)
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            err(rel(COMPOSE), f"not valid YAML: {e}")
            return None
        if sub_err:
            err(rel(COMPOSE), f"valid YAML, but outside the subset tools/check_deploy.sh parses without PyYAML: {sub_err}")
        elif sub != doc:
            err(rel(COMPOSE), "the stdlib subset parser reads it differently from PyYAML (quote the scalar that YAML 1.1 turns into a bool, int or null)")
        notes.append("compose YAML: PyYAML + subset parser agree")
        return doc
    if sub_err:
        err(rel(COMPOSE), f"cannot parse (no PyYAML; subset parser): {sub_err}")
        return None
    notes.append("compose YAML: subset parser (no PyYAML)")
    return sub


# ---------------------------------------------------------------------------
# What the binaries' --help mentions
# ---------------------------------------------------------------------------
BINARIES = {
    "orders-api": ["api", "common"],
    "cdc-relay": ["cdc", "common"],
}
ENV_NAME_RE = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")


def help_text(name):
    dirs = BINARIES[name]
    sources = [p for d in dirs for p in (REPO / d).glob("*.[ch]")]
    binp = REPO / "bin" / name
    newest_src = max((p.stat().st_mtime for p in sources), default=0)
    if binp.exists() and os.access(binp, os.X_OK) and binp.stat().st_mtime >= newest_src:
        try:
            r = subprocess.run([str(binp), "--help"], capture_output=True, text=True, timeout=10,
                               stdin=subprocess.DEVNULL)
            if r.returncode == 0 and r.stdout:
                return r.stdout, f"bin/{name} --help"
        except (OSError, subprocess.TimeoutExpired):
            pass
    # String literals of the binary's own directory (the help text lives there).
    lits = []
    for p in (REPO / dirs[0]).glob("*.c"):
        lits += re.findall(r'"((?:[^"\\\n]|\\.)*)"', p.read_text(errors="replace"))
    return "\n".join(lits), f"{dirs[0]}/*.c string literals (bin/{name} missing or older than its sources)"


HELP = {}
HELP_VARS = {}
for _b in BINARIES:
    text, src = help_text(_b)
    HELP[_b] = text
    HELP_VARS[_b] = set(ENV_NAME_RE.findall(text))
    notes.append(f"{_b} env names from {src}: {' '.join(sorted(HELP_VARS[_b]))}")


def help_default_seconds(binary, flag, fallback):
    text = re.sub(r"(\\n|\s)+", " ", HELP[binary])
    m = (re.search(re.escape(flag) + r" [^\[]*\[default\s*(\d+)s?\]", text)
         # --help generated from the option table: "--flag DUR ... env NAME, default 30s"
         or re.search(re.escape(flag) + r" .*?env \S+, default (\d+)s?\b", text)
         # the table row's literals: "flag", "ENV", "DUR", "30s"
         or re.search(r"(?<![-\w])" + re.escape(flag[2:]) + r" [A-Z_]+ \S+ (\d+)s?\b", text))
    if not m:
        notes.append(f"{binary} {flag}: default not found in --help, assuming {fallback} s")
    return int(m.group(1)) if m else fallback


RELAY_SHUTDOWN = help_default_seconds("cdc-relay", "--shutdown-timeout", 30)
notes.append(f"cdc-relay --shutdown-timeout default: {RELAY_SHUTDOWN} s")
API_DRAIN = 10  # docs/api.md: waits up to 10 s for requests in progress


def check_env_names(where, names, binaries):
    known = set().union(*(HELP_VARS[b] for b in binaries))
    # cdc-relay takes any librdkafka property as CDC_KAFKA_<NAME>[_FILE]
    # (its --help says so); the name's spelling is checked by the relay.
    kafka_env = any("CDC_KAFKA_<NAME>" in HELP[b] for b in binaries)
    for n in sorted(names):
        if kafka_env and re.fullmatch(r"CDC_KAFKA_[A-Z0-9_]+", n):
            continue
        if n not in known:
            err(where, f"environment variable {n} is not mentioned by {' or '.join(b + ' --help' for b in binaries)}")


def duration_seconds(v):
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip()
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", s):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[m.group(2)]
        pos = m.end()
    return total if pos == len(s) and pos else None


# ---------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------
def dockerfile_instructions(path):
    out, buf, start = [], "", 0
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment lines inside a continuation are dropped
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        cmd, _, args = buf.partition(" ")
        out.append((start, cmd.upper(), args.strip()))
        buf = ""
    if buf:
        err(rel(path), f"line {start}: continuation at end of file")
    return out


def parse_stages(path):
    stages, cur = {}, None
    for n, cmd, args in dockerfile_instructions(path):
        if cmd == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--platform")]
            base = words[0]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else f"#{len(stages)}"
            parent = stages.get(base)
            cur = {
                "name": name, "base": base, "line": n, "parent": parent["name"] if parent else None,
                "user": parent["user"] if parent else None, "instr": [],
                "healthcheck": parent["healthcheck"] if parent else None,
                "entrypoint": parent["entrypoint"] if parent else None,
            }
            stages[name] = cur
            continue
        if cur is None:
            if cmd != "ARG":
                err(rel(path), f"line {n}: {cmd} before the first FROM")
            continue
        cur["instr"].append((n, cmd, args))
        if cmd == "USER":
            cur["user"] = args.split(":")[0]
        elif cmd == "HEALTHCHECK":
            cur["healthcheck"] = None if args.strip().upper() == "NONE" else args
        elif cmd == "ENTRYPOINT":
            cur["entrypoint"] = args
    return stages


def json_or_words(args):
    try:
        v = json.loads(args)
        if isinstance(v, list):
            return [str(x) for x in v]
    except ValueError:
        pass
    return shlex.split(args)


def dockerignore_patterns():
    if not DOCKERIGNORE.exists():
        return []
    pats = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            pats.append(line.rstrip("/"))
    return pats


def ignored(path, pats):
    import fnmatch  # noqa: PLC0415
    p = path.strip("/")
    hit = False
    for pat in pats:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        parts = p.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(x, pat) or (pat.startswith("**/") and fnmatch.fnmatch(x.split("/")[-1], pat[3:]))
               for x in prefixes):
            hit = not neg
    return hit


# pkg-config module (Makefile PKGS) -> (Debian -dev package, runtime package)
PKG_MAP = {
    "libpq": ("libpq-dev", "libpq5"),
    "rdkafka": ("librdkafka-dev", "librdkafka1"),
    "jansson": ("libjansson-dev", "libjansson4"),
    "libmicrohttpd": ("libmicrohttpd-dev", "libmicrohttpd12"),
}


def makefile_inputs():
    """Top-level paths `make all` reads: the Makefile, and every directory
    named by a wildcard or a tools/ script outside the test variables."""
    mk = (REPO / "Makefile").read_text()
    need = {"Makefile"}
    for line in mk.splitlines():
        if re.match(r"^\s*(SUPPORT_SRC|UNIT_SRC|C_FILES|UNIT_BINS)\b", line):
            continue
        for m in re.finditer(r"\$\(wildcard ([A-Za-z0-9_]+)/", line):
            if m.group(1) != "tests":
                need.add(m.group(1))
        for m in re.finditer(r"\b(tools)/[A-Za-z0-9_.-]+", line):
            need.add(m.group(1))
    pkgs = re.search(r"^PKGS\s*:?=\s*(.*)$", mk, re.M)
    return need, (pkgs.group(1).split() if pkgs else [])


def apt_packages(stage):
    pkgs = set()
    for _, cmd, args in stage["instr"]:
        if cmd != "RUN":
            continue
        for seg in re.split(r"&&|;|\|\|", args):
            words = seg.split()
            if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
                pkgs |= {w for w in words[words.index("install") + 1:] if not w.startswith("-")}
    return pkgs


def stage_chain(stages, name):
    chain = []
    while name:
        chain.append(stages[name])
        name = stages[name]["parent"]
    return chain


def check_dockerfile():
    where = rel(DOCKERFILE)
    if not DOCKERFILE.exists():
        err(where, "missing")
        return {}
    stages = parse_stages(DOCKERFILE)
    for st in stages.values():
        if st["parent"] is None and st["base"] != "debian:bookworm-slim":
            err(where, f"line {st['line']}: stage {st['name']} is FROM {st['base']}; the images use debian:bookworm-slim")
    # the build stage: the one that runs make
    builds = [st for st in stages.values()
              if any(c == "RUN" and re.search(r"(^|[\s;&|])make(\s|$)", a) for _, c, a in st["instr"])]
    if not builds:
        err(where, "no stage runs `make` (the images must build with the project's Makefile)")
        return stages
    build = builds[0]
    runs = [a for _, c, a in build["instr"] if c == "RUN" and re.search(r"(^|[\s;&|])make(\s|$)", a)]
    if not any(re.search(r"\bmake\b[^&;|]*\ball\b", a) for a in runs):
        err(where, f"stage {build['name']}: `make` does not build the `all` target")
    copied = set()
    pats = dockerignore_patterns()
    for st in stages.values():
        for n, cmd, args in st["instr"]:
            if cmd not in ("COPY", "ADD"):
                continue
            words = json_or_words(args)
            flags = [w for w in words if w.startswith("--")]
            srcs = [w for w in words if not w.startswith("--")][:-1]
            if any(f.startswith("--from") for f in flags):
                continue
            for s in srcs:
                p = s.rstrip("/").removeprefix("./") or "."
                if not (REPO / p).exists():
                    err(where, f"line {n}: COPY source {s} does not exist in the repository")
                elif ignored(p, pats):
                    err(where, f"line {n}: COPY source {s} is excluded by {rel(DOCKERIGNORE)}")
                if st is build:
                    copied.add(p.split("/")[0])
    need, pkgs = makefile_inputs()
    for p in sorted(need - copied):
        err(where, f"stage {build['name']}: does not COPY {p}, which `make all` needs")
    dev = apt_packages(build)
    for mod in pkgs:
        if mod not in PKG_MAP:
            err(where, f"Makefile PKGS has {mod}: add its -dev and runtime Debian packages to deploy/Dockerfile and to PKG_MAP in tools/check_deploy.sh")
            continue
        if PKG_MAP[mod][0] not in dev:
            err(where, f"stage {build['name']}: does not install {PKG_MAP[mod][0]} (Makefile PKGS has {mod})")
    for need_pkg in ("build-essential", "pkg-config"):
        if need_pkg not in dev:
            err(where, f"stage {build['name']}: does not install {need_pkg}")
    # the runtime targets
    targets = {"api": "orders-api", "relay": "cdc-relay"}
    for target, binary in targets.items():
        if target not in stages:
            err(where, f"no stage named {target}")
            continue
        chain = stage_chain(stages, target)
        runtime_pkgs = set().union(*(apt_packages(s) for s in chain))
        for mod in pkgs:
            if mod in PKG_MAP and PKG_MAP[mod][1] not in runtime_pkgs:
                err(where, f"target {target}: does not install {PKG_MAP[mod][1]} (runtime of {mod})")
        if any(p.endswith("-dev") or p in ("build-essential", "gcc", "make") for p in runtime_pkgs):
            err(where, f"target {target}: installs build tools or -dev packages in the runtime image")
        user = stages[target]["user"]
        if user in (None, "", "root", "0"):
            err(where, f"target {target}: runs as root (add USER with a non-root user)")
        ep = stages[target]["entrypoint"]
        if not ep or binary not in ep:
            err(where, f"target {target}: ENTRYPOINT does not run {binary}")
        if not any(c == "COPY" and "--from=" in a and f"bin/{binary}" in a for s in chain for _, c, a in s["instr"]):
            err(where, f"target {target}: does not COPY bin/{binary} from the build stage")
    if "api" in stages and not stages["api"]["healthcheck"]:
        err(where, "target api: no HEALTHCHECK")
    for n, cmd, args in stages.get("api", {"instr": []})["instr"]:
        if cmd == "COPY" and "healthcheck" in args:
            src = (REPO / json_or_words(args)[0])
            if src.exists() and not os.access(src, os.X_OK):
                err(where, f"line {n}: {rel(src)} is not executable (chmod 755; the HEALTHCHECK execs it)")
    # runtime packages cover the built binaries' DT_NEEDED (when built)
    check_needed(stages)
    return stages


def check_needed(stages):
    if not all(shutil_which(t) for t in ("readelf", "dpkg", "ldd")):
        notes.append("DT_NEEDED check skipped (readelf, dpkg or ldd missing)")
        return
    checked = False
    for target, binary in (("api", "orders-api"), ("relay", "cdc-relay")):
        binp = REPO / "bin" / binary
        if target not in stages or not binp.exists():
            continue
        checked = True
        runtime_pkgs = set().union(*(apt_packages(s) for s in stage_chain(stages, target)))
        out = subprocess.run(["readelf", "-d", str(binp)], capture_output=True, text=True).stdout
        ldd = subprocess.run(["ldd", str(binp)], capture_output=True, text=True).stdout
        where_is = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
        for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
            if re.match(r"^(libc|libm|libpthread|libdl|librt|ld-linux.*)\.so", lib):
                continue  # libc6: in every Debian image
            path = where_is.get(lib)
            if not path:
                err(rel(DOCKERFILE), f"target {target}: bin/{binary} needs {lib}, which is not installed here")
                continue
            cands = [path, os.path.realpath(path)]
            cands += [c.replace("/usr/lib/", "/lib/", 1) for c in cands]
            cands += [c.replace("/lib/", "/usr/lib/", 1) for c in cands if c.startswith("/lib/")]
            pkg = None
            for c in cands:
                d = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
                if d.returncode == 0:
                    pkg = d.stdout.split(":")[0]
                    break
            if pkg and pkg not in runtime_pkgs:
                err(rel(DOCKERFILE), f"target {target}: bin/{binary} needs {lib} from Debian package {pkg}, which the runtime stage does not install")
    if checked:
        notes.append("DT_NEEDED of bin/ checked against the runtime packages")


def shutil_which(t):
    import shutil  # noqa: PLC0415
    return shutil.which(t)


# ---------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------
REQUIRED_HEALTHY = ("postgres", "redpanda", "api")
# Compose Specification keys (a typo is otherwise silently ignored by older
# tools; `docker compose config` and the compose-spec schema, when present,
# check the rest).
SERVICE_KEYS = set("""
annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent command configs
container_name cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period cpu_rt_runtime
cpu_shares cpus cpuset credential_spec depends_on deploy develop device_cgroup_rules devices
dns dns_opt dns_search domainname entrypoint env_file environment expose extends
external_links extra_hosts gpus group_add healthcheck hostname image init ipc isolation
labels label_file links logging mac_address mem_limit mem_reservation mem_swappiness
memswap_limit models network_mode networks oom_kill_disable oom_score_adj pid pids_limit
platform ports post_start pre_stop privileged profiles provider pull_policy
pull_refresh_after read_only restart runtime scale secrets security_opt shm_size stdin_open
stop_grace_period stop_signal storage_opt sysctls tmpfs tty ulimits use_api_socket user
userns_mode uts volumes volumes_from working_dir
""".split())
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
BUILD_KEYS = set("""
context dockerfile dockerfile_inline args ssh labels cache_from cache_to no_cache
additional_contexts network target shm_size extra_hosts isolation privileged secrets tags
ulimits platforms pull entitlements provenance sbom
""".split())
DEPENDS_KEYS = {"condition", "restart", "required"}


def unknown_keys(where, mapping, allowed, what):
    if isinstance(mapping, dict):
        for k in mapping:
            if k not in allowed and not str(k).startswith("x-"):
                err(where, f"{k!r} is not a Compose {what} key")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def env_names(env):
    if env is None:
        return {}
    if isinstance(env, dict):
        return {str(k): v for k, v in env.items()}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    return {}


def check_compose(stages):
    where = rel(COMPOSE)
    if not COMPOSE.exists():
        err(where, "missing")
        return
    doc = load_compose()
    if not isinstance(doc, dict):
        if doc is not None:
            err(where, "top level is not a mapping")
        return
    for k in doc:
        if k not in ("name", "services", "volumes", "networks", "configs", "secrets", "include") and not str(k).startswith("x-"):
            err(where, f"unknown top-level key {k!r}")
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        err(where, "no services")
        return
    volumes = doc.get("volumes") or {}
    builds_by_image = {}
    target_of = {}
    for name, svc in services.items():
        w = f"{where}: service {name}"
        if not isinstance(svc, dict):
            err(w, "is not a mapping")
            continue
        unknown_keys(w, svc, SERVICE_KEYS, "service")
        unknown_keys(w + " healthcheck", svc.get("healthcheck"), HEALTHCHECK_KEYS, "healthcheck")
        unknown_keys(w + " build", svc.get("build"), BUILD_KEYS, "build")
        if isinstance(svc.get("depends_on"), dict):
            for dep, spec in svc["depends_on"].items():
                unknown_keys(f"{w} depends_on {dep}", spec, DEPENDS_KEYS, "depends_on")
        if "image" not in svc and "build" not in svc:
            err(w, "has neither image nor build")
        b = svc.get("build")
        if b is not None:
            if isinstance(b, str):
                b = {"context": b}
            ctx = (COMPOSE.parent / str(b.get("context", "."))).resolve()
            dfile = ctx / str(b.get("dockerfile", "Dockerfile"))
            if not (ctx / "Makefile").exists():
                err(w, f"build context {b.get('context')} is not the repository root (no Makefile there)")
            if not dfile.exists():
                err(w, f"build dockerfile {b.get('dockerfile')} does not exist in the context")
            elif dfile.resolve() == DOCKERFILE.resolve():
                t = b.get("target")
                if not t:
                    err(w, "build has no target (deploy/Dockerfile has several)")
                elif t not in stages:
                    err(w, f"build target {t!r} is not a stage of deploy/Dockerfile")
                else:
                    target_of[name] = t
            key = json.dumps(b, sort_keys=True)
            img = svc.get("image")
            if img:
                if builds_by_image.setdefault(img, key) != key:
                    err(w, f"image {img} is built from a different build section by another service")
        elif svc.get("image") in builds_by_image:
            pass
        # depends_on
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        if not isinstance(deps, dict):
            err(w, "depends_on is neither a list nor a mapping")
            deps = {}
        for dep, spec in deps.items():
            if dep not in services:
                err(w, f"depends_on {dep!r}, which is not a service")
                continue
            cond = (spec or {}).get("condition", "service_started") if isinstance(spec, dict) else "service_started"
            if cond not in CONDITIONS:
                err(w, f"depends_on {dep}: unknown condition {cond!r}")
            if cond == "service_healthy" and not has_healthcheck(services[dep], stages, services):
                err(w, f"depends_on {dep} being healthy, but {dep} has no healthcheck")
            dprof = services[dep].get("profiles") if isinstance(services[dep], dict) else None
            if dprof and not set(dprof) <= set(svc.get("profiles") or []):
                err(w, f"depends_on {dep}, which only runs under profiles {dprof}")
        # volumes
        for v in svc.get("volumes") or []:
            src = str(v).split(":")[0]
            if src and not src.startswith((".", "/", "~", "$")) and src not in volumes:
                err(w, f"named volume {src!r} is not declared under top-level volumes")
        restart = svc.get("restart")
        if restart is not None and not isinstance(restart, str):
            err(w, f"restart: {restart!r} is not a string (quote \"no\": YAML 1.1 reads no as false)")
    for name in REQUIRED_HEALTHY:
        if name not in services:
            err(where, f"no service {name}")
        elif not has_healthcheck(services[name], stages, services):
            err(f"{where}: service {name}", "has no healthcheck")
    # postgres: logical WAL
    pg = services.get("postgres") or {}
    cmd = pg.get("command")
    cmd = " ".join(cmd) if isinstance(cmd, list) else str(cmd or "")
    for setting in ("wal_level=logical", "max_replication_slots=", "max_wal_senders="):
        if setting not in cmd:
            err(f"{where}: service postgres", f"command does not set {setting.rstrip('=')}")
    # the project's services
    for name, t in target_of.items():
        svc = services[name]
        w = f"{where}: service {name}"
        binary = {"api": "orders-api", "relay": "cdc-relay"}.get(t)
        env = env_names(svc.get("environment"))
        if binary:
            check_env_names(w, env, [binary])
            if "DATABASE_URL" not in env:
                err(w, "sets no DATABASE_URL")
        grace = duration_seconds(svc.get("stop_grace_period", "10s"))
        is_migrate = "--migrate" in str(svc.get("command") or "")
        if t == "relay" and (grace is None or grace <= RELAY_SHUTDOWN):
            err(w, f"stop_grace_period {svc.get('stop_grace_period', '10s (default)')} is not longer than the relay's {RELAY_SHUTDOWN} s shutdown timeout")
        if t == "api" and not is_migrate and (grace is None or grace <= API_DRAIN):
            err(w, f"stop_grace_period {svc.get('stop_grace_period', '10s (default)')} is not longer than the api's {API_DRAIN} s drain")
        if t == "api" and not is_migrate and env.get("LISTEN_ADDR", "").startswith("127."):
            err(w, "LISTEN_ADDR on loopback is unreachable from other containers")
    migrators = [n for n, t in target_of.items() if t == "api" and "--migrate" in str(services[n].get("command") or "")]
    if not migrators:
        err(where, "no service runs orders-api --migrate")
    for name, t in target_of.items():
        if t in ("api", "relay") and name not in migrators:
            deps = services[name].get("depends_on") or {}
            if not any(isinstance(deps, dict) and (deps.get(m) or {}).get("condition") == "service_completed_successfully"
                       for m in migrators):
                err(f"{where}: service {name}", f"does not wait for {' or '.join(migrators)} to complete successfully")
    relays = [n for n, t in target_of.items() if t == "relay"]
    for name in relays:
        env = env_names(services[name].get("environment"))
        if "KAFKA_BROKERS" not in env:
            err(f"{where}: service {name}", "sets no KAFKA_BROKERS")
    # the test runner
    its = [n for n, t in target_of.items() if t == "it"]
    if not its:
        err(where, "no service builds the it target (integration tests)")
    for name in its:
        svc = services[name]
        if "test" not in (svc.get("profiles") or []):
            err(f"{where}: service {name}", "is not under the `test` profile (it would run on every `up`)")
        it_text = IT_RUN.read_text() if IT_RUN.exists() else ""
        it_text += "".join(p.read_text(errors="replace") for p in (REPO / "tests").rglob("*.py"))
        it_text += "".join(p.read_text(errors="replace") for p in (DEPLOY / "it").glob("*.patch"))
        for var in env_names(svc.get("environment")):
            if not re.search(r"\b" + re.escape(var) + r"\b", it_text):
                err(f"{where}: service {name}", f"sets {var}, which neither deploy/it/run.sh nor the tests read")


def has_healthcheck(svc, stages, services):
    if not isinstance(svc, dict):
        return False
    hc = svc.get("healthcheck")
    if isinstance(hc, dict):
        if hc.get("disable"):
            return False
        if hc.get("test"):
            return True
    b = svc.get("build")
    t = b.get("target") if isinstance(b, dict) else None
    return bool(t and t in stages and stages[t]["healthcheck"])


# ---------------------------------------------------------------------------
# systemd
# ---------------------------------------------------------------------------
def parse_unit(path):
    sections, cur = {}, None
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line[0] in "#;":
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        if line.startswith("[") and line.endswith("]"):
            cur = sections.setdefault(line[1:-1], [])
            continue
        if cur is None or "=" not in line:
            err(rel(path), f"cannot parse {line!r}")
            continue
        k, _, v = line.partition("=")
        cur.append((k.strip(), v.strip()))
    return sections


def unit_seconds(v):
    v = v.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    total, pos = 0.0, 0
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}
    for m in re.finditer(r"\s*(\d+(?:\.\d+)?)\s*(min|sec|hr|ms|us|s|m|h)", v):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    return total if pos == len(v) and pos else None


SERVICE_REQUIRED = {
    "Type": "notify",  # both binaries send READY=1 (common/notify.c)
    "NotifyAccess": "main",
    "Restart": "on-failure",
    "KillSignal": "SIGTERM",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
}


def check_units():
    units = {"orders-api.service": "orders-api", "cdc-relay.service": "cdc-relay"}
    for unit, binary in units.items():
        path = UNITS / unit
        where = rel(path)
        if not path.exists():
            err(where, "missing")
            continue
        secs = parse_unit(path)
        svc = secs.get("Service", [])
        if "Unit" not in secs or "Install" not in secs or not svc:
            err(where, "needs [Unit], [Service] and [Install] sections")
        kv = {}
        for k, v in svc:
            kv.setdefault(k, []).append(v)
        last = {k: v[-1] for k, v in kv.items()}
        for k, want in SERVICE_REQUIRED.items():
            if last.get(k) != want:
                err(where, f"[Service] {k}={want} missing (found {last.get(k)!r})")
        if last.get("DynamicUser") != "yes" and not last.get("User"):
            err(where, "[Service] needs DynamicUser=yes or a dedicated User=")
        if last.get("User") in ("root", "0"):
            err(where, "[Service] runs as root")
        if "RestartSec" not in last:
            err(where, "[Service] RestartSec missing")
        if "CapabilityBoundingSet" not in kv or kv["CapabilityBoundingSet"][-1] != "":
            err(where, "[Service] CapabilityBoundingSet= (empty) missing")
        fams = set(" ".join(kv.get("RestrictAddressFamilies", [])).split())
        if fams != {"AF_INET", "AF_INET6", "AF_UNIX"}:
            err(where, f"[Service] RestrictAddressFamilies should be AF_INET AF_INET6 AF_UNIX (found {' '.join(sorted(fams)) or 'none'})")
        if "@system-service" not in " ".join(kv.get("SystemCallFilter", [])).split():
            err(where, "[Service] SystemCallFilter=@system-service missing")
        if not kv.get("EnvironmentFile"):
            err(where, "[Service] EnvironmentFile= missing")
        exec_start = last.get("ExecStart", "")
        if not re.match(r"^[-@:+!]*/\S*/" + re.escape(binary) + r"(\s|$)", exec_start):
            err(where, f"[Service] ExecStart does not run {binary} by absolute path")
        stop = unit_seconds(last.get("TimeoutStopSec", "90"))
        floor = RELAY_SHUTDOWN if binary == "cdc-relay" else API_DRAIN
        if stop is None or stop <= floor:
            err(where, f"[Service] TimeoutStopSec={last.get('TimeoutStopSec', '(default)')} is not longer than {binary}'s {floor} s shutdown wait")
        if binary == "cdc-relay" and "cdc-relay" not in last.get("StateDirectory", "").split():
            err(where, "[Service] StateDirectory=cdc-relay missing")
        names = set()
        for v in kv.get("Environment", []):
            for assignment in shlex.split(v):
                names.add(assignment.split("=", 1)[0])
        check_env_names(where, names, [binary])
    where = rel(ENV_SAMPLE)
    if not ENV_SAMPLE.exists():
        err(where, "missing")
        return
    names = set()
    for n, line in enumerate(ENV_SAMPLE.read_text().splitlines(), 1):
        m = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if m:
            names.add(m.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            err(where, f"line {n}: not NAME=value")
        if re.match(r"^\s*export\s", line):
            err(where, f"line {n}: `export` is shell syntax; systemd's EnvironmentFile does not take it")
    check_env_names(where, names, list(BINARIES))


stages = check_dockerfile()
check_compose(stages)
check_units()

if "-v" in sys.argv[1:]:
    for n in notes:
        print("lint: deploy: note:", n)
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY

# ---- systemd-analyze: on copies whose ExecStart is /bin/true (verify
# requires the binary to exist; these are not installed here) ---------------
if command -v systemd-analyze >/dev/null 2>&1; then
    tmp=$(mktemp -d /tmp/check-deploy.XXXXXX) || exit 1
    for u in deploy/systemd/*.service; do
        sed 's#^\(ExecStart=[-@:+!]*\)/[^ ]*#\1/bin/true#' "$u" >"$tmp/$(basename "$u")"
    done
    out=$(cd "$tmp" && systemd-analyze verify --man=no ./*.service 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        echo "lint: deploy: systemd-analyze verify deploy/systemd/*.service (rc $rc):"
        printf '%s\n' "$out" | sed "s#$tmp/#deploy/systemd/#g; s/^/    /"
        status=1
    fi
    # Exposure score (0 best .. 10 worst), offline: fail above 2.5.
    if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
        for u in "$tmp"/*.service; do
            line=$(systemd-analyze security --offline=yes --threshold=25 "$u" 2>&1)
            rc=$?
            if [ $rc -ne 0 ]; then
                echo "lint: deploy: deploy/systemd/$(basename "$u"): $(printf '%s\n' "$line" | grep 'Overall exposure' | sed 's/^→ *//'), above 2.5: sandboxing was loosened"
                status=1
            fi
        done
    fi
    rm -rf "$tmp"
else
    echo "lint: deploy: note: systemd-analyze not found; unit files checked by tools/check_deploy.sh only"
fi

# ---- Prometheus alerting rules ------------------------------------------------
if command -v promtool >/dev/null 2>&1; then
    if ! out=$(promtool check rules deploy/prometheus/alerts.yml 2>&1); then
        echo "lint: deploy: promtool check rules deploy/prometheus/alerts.yml:"
        printf '%s\n' "$out" | sed 's/^/    /'
        status=1
    fi
    if ! out=$(promtool test rules deploy/prometheus/alerts_test.yml 2>&1); then
        echo "lint: deploy: promtool test rules deploy/prometheus/alerts_test.yml:"
        printf '%s\n' "$out" | sed 's/^/    /'
        status=1
    fi
else
    echo "lint: deploy: promtool not found (alert rules unchecked); sh tests/harness/deps.sh installs it"
    status=1
fi

# ---- optional validators, when installed ------------------------------------
if docker compose version >/dev/null 2>&1; then
    if ! out=$(docker compose -f deploy/docker-compose.yml --profile test config --quiet 2>&1); then
        echo "lint: deploy: docker compose config: $out"
        status=1
    fi
fi
if command -v check-jsonschema >/dev/null 2>&1; then
    if ! out=$(check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml 2>&1); then
        echo "lint: deploy: compose-spec schema: $out"
        status=1
    fi
fi

[ $status -eq 0 ] && echo "lint: deploy files ok"
exit $status
