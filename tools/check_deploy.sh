#!/bin/sh
# Static checks of deploy/ (run by `make lint`; no Docker engine, no network).
# The general checks come from real parsers; this file keeps only what they
# cannot know, the project's cross-checks:
#
#   parsers  PyYAML reads the compose files; `docker compose config` validates
#            both variants (registry, and + docker-compose.offline.yml)
#            wherever the compose binary is (tests/harness/docker.sh caches
#            it); `systemd-analyze verify` and `security --offline` read the
#            units.
#   Dockerfiles  the build stage COPYs every directory `make all` compiles
#            from and installs the -dev package of each module in the
#            Makefile's PKGS; the api and relay images install the runtime
#            packages of those modules (and, when bin/ is built, of the
#            binaries' DT_NEEDED) and no build tools, run as non-root, with a
#            HEALTHCHECK; COPY sources exist, are not in .dockerignore, and
#            scripts they install are executable; build arguments the compose
#            files pass are declared.
#   compose  no two services build the same image tag; build targets are
#            stages; a service waited for as healthy has a healthcheck; the
#            variables given to the api and relay are ones their --help
#            names; the ports they listen on (LISTEN_ADDR, CDC_METRICS_LISTEN)
#            are the ones published and checked; stop_grace_period outlasts
#            their shutdown waits; Postgres has logical WAL; api and relay
#            wait for the migrator; `it` is under the test profile and every
#            variable it gets is read by deploy/it/run.sh or the tests; the
#            offline file only overrides services of the main file.
#   systemd  env names in the units and the sample are known to the binaries;
#            TimeoutStopSec outlasts the shutdown waits; ExecStart runs the
#            binary; Type=notify with NotifyAccess=main (both send READY=1);
#            the relay has its StateDirectory.
#   Prometheus  `promtool check rules` on deploy/prometheus/alerts.yml and
#            `promtool test rules` on alerts_test.yml (promtool is required).
#
# "Known to the binaries": the names `orders-api --help` / `cdc-relay --help`
# print, from bin/ when it is newer than its sources, else from the string
# literals of the sources (lint runs before any build in CI).
# Exit 1 with one "lint: deploy: ..." line per problem; -v prints notes.
cd "$(dirname "$0")/.." || exit 1
if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "lint: deploy: python3 with PyYAML is required (sh tests/harness/deps.sh installs python3-yaml)"
    exit 1
fi

status=0
python3 - "$@" <<'PY' || status=1
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import yaml

REPO = Path.cwd()
COMPOSE = REPO / "deploy/docker-compose.yml"
OFFLINE = REPO / "deploy/docker-compose.offline.yml"
DOCKERFILES = {
    "deploy/Dockerfile": REPO / "deploy/Dockerfile",
    "deploy/offline/postgres.Dockerfile": REPO / "deploy/offline/postgres.Dockerfile",
    "deploy/offline/kafka.Dockerfile": REPO / "deploy/offline/kafka.Dockerfile",
}
UNITS = REPO / "deploy/systemd"
IT_RUN = REPO / "deploy/it/run.sh"
# pkg-config module (Makefile PKGS) -> (Debian -dev package, runtime package)
PKG_MAP = {
    "libpq": ("libpq-dev", "libpq5"),
    "rdkafka": ("librdkafka-dev", "librdkafka1"),
    "jansson": ("libjansson-dev", "libjansson4"),
    "libmicrohttpd": ("libmicrohttpd-dev", "libmicrohttpd12"),
}
BINARY_OF_TARGET = {"api": "orders-api", "relay": "cdc-relay"}
API_DRAIN = 10  # docs/api.md: orders-api waits up to 10 s for requests in progress

errors, notes = [], []


def err(where, msg):
    errors.append(f"lint: deploy: {where}: {msg}")


# ---- what the binaries' --help names ----------------------------------------
def help_text(binary, srcdir):
    sources = [p for d in (srcdir, "common") for p in (REPO / d).glob("*.[ch]")]
    binp = REPO / "bin" / binary
    if binp.exists() and binp.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        r = subprocess.run([str(binp), "--help"], capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        if r.returncode == 0:
            return r.stdout
    return "\n".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"',
                                "".join(p.read_text() for p in (REPO / srcdir).glob("*.c"))))


HELP = {"orders-api": help_text("orders-api", "api"), "cdc-relay": help_text("cdc-relay", "cdc")}
KNOWN_VARS = {b: set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", t)) for b, t in HELP.items()}
m = re.search(r"shutdown-timeout.*?default (\d+)", re.sub(r"(\\n|\s)+", " ", HELP["cdc-relay"]))
RELAY_SHUTDOWN = int(m.group(1)) if m else 30
notes.append(f"cdc-relay --shutdown-timeout default {RELAY_SHUTDOWN} s")


def unknown_vars(names, binaries):
    """names no binary's --help names. cdc-relay takes any librdkafka property
    as CDC_KAFKA_<NAME>[_FILE] (its --help says so); the relay checks the
    property's spelling itself."""
    out = set(names) - set().union(*(KNOWN_VARS[b] for b in binaries))
    if any("CDC_KAFKA_<NAME>" in HELP[b] for b in binaries):
        out = {n for n in out if not re.fullmatch(r"CDC_KAFKA_[A-Z0-9_]+", n)}
    return out


def check_vars(where, names, binary):
    for n in sorted(unknown_vars(names, [binary])):
        err(where, f"{n} is not a variable `{binary} --help` names")


def seconds(v, unit_re=r"(h|ms|us|m|s)"):
    total, pos, s = 0.0, 0, str(v).strip()
    scale = {"h": 3600, "m": 60, "min": 60, "s": 1, "sec": 1, "ms": 1e-3, "us": 1e-6}
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    for m in re.finditer(r"\s*(\d+(?:\.\d+)?)\s*" + unit_re, s):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * scale[m.group(2)]
        pos = m.end()
    return total if pos == len(s) and pos else None


# ---- Dockerfiles ------------------------------------------------------------
def instructions(path):
    """(line, INSTRUCTION, args) with continuations joined, comments dropped."""
    out, buf, start = [], "", 0
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        start = start if buf else n
        buf += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            cmd, _, args = buf.partition(" ")
            out.append((start, cmd.upper(), args.strip()))
            buf = ""
    return out


def stages_of(path):
    stages, cur, args = {}, None, {}
    for n, cmd, a in instructions(path):
        if cmd == "ARG":
            k, _, v = a.partition("=")
            args[k] = v
        if cmd == "FROM":
            w = a.split()
            base = w[0]
            name = w[2] if len(w) >= 3 and w[1].lower() == "as" else f"#{len(stages)}"
            parent = stages.get(base)
            cur = {"name": name, "base": base, "line": n, "instr": [], "parent": parent,
                   "user": parent and parent["user"], "health": parent and parent["health"],
                   "entrypoint": parent and parent["entrypoint"]}
            stages[name] = cur
        elif cur is not None:
            cur["instr"].append((n, cmd, a))
            if cmd == "USER":
                cur["user"] = a.split(":")[0]
            elif cmd == "HEALTHCHECK":
                cur["health"] = None if a.upper() == "NONE" else a
            elif cmd == "ENTRYPOINT":
                cur["entrypoint"] = a
    return stages, args


def chain(stage):
    while stage:
        yield stage
        stage = stage["parent"]


def apt_packages(stage):
    pkgs = set()
    for _, cmd, a in stage["instr"]:
        for seg in re.split(r"&&|;|\|\|", a) if cmd == "RUN" else []:
            w = seg.split()
            if len(w) > 2 and w[0] in ("apt-get", "apt") and "install" in w:
                pkgs |= {x for x in w[w.index("install") + 1:] if not x.startswith("-")}
    return pkgs


def words(a):
    try:
        v = json.loads(a)
        return [str(x) for x in v] if isinstance(v, list) else shlex.split(a)
    except ValueError:
        return shlex.split(a)


IGNORE = [l.strip().rstrip("/") for l in (REPO / ".dockerignore").read_text().splitlines()
          if l.strip() and not l.startswith("#")]


def ignored(p):
    parts = p.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch(x, pat) or (pat.startswith("**/") and fnmatch(x.split("/")[-1], pat[3:]))
               for pat in IGNORE for x in prefixes)


def check_copies(where, stages, repo_context=True):
    for st in stages.values():
        for n, cmd, a in st["instr"]:
            if cmd not in ("COPY", "ADD") or "--from=" in a:
                continue
            w = [x for x in words(a) if not x.startswith("--")]
            for src, dst in [(s, w[-1]) for s in w[:-1]]:
                p = src.rstrip("/").removeprefix("./") or "."
                if not repo_context and not p.startswith("deploy/"):
                    continue  # the Kafka image's jars: not in the repository
                if not (REPO / p).exists():
                    err(where, f"line {n}: COPY source {src} does not exist")
                elif ignored(p):
                    err(where, f"line {n}: COPY source {src} is excluded by .dockerignore")
                elif dst.startswith(("/usr/local/bin/", "/etc/kafka/docker/", "/opt/kafka/bin/")) \
                        and not os.access(REPO / p, os.X_OK):
                    err(where, f"line {n}: {src} is installed as a program but not executable")


def makefile_inputs():
    mk = (REPO / "Makefile").read_text()
    need = {"Makefile"}
    for line in mk.splitlines():
        if re.match(r"^\s*(SUPPORT_SRC|UNIT_SRC|C_FILES|UNIT_BINS)\b", line):
            continue  # test-only variables
        need |= {d for d in re.findall(r"\$\(wildcard ([A-Za-z0-9_]+)/", line) if d != "tests"}
        need |= set(re.findall(r"\b(tools)/[A-Za-z0-9_.-]+", line))
    return need, re.search(r"^PKGS\s*:?=\s*(.*)$", mk, re.M).group(1).split()


def check_needed(where, target, binary, runtime):
    binp = REPO / "bin" / binary
    if not binp.exists() or not all(shutil.which(t) for t in ("readelf", "ldd", "dpkg")):
        return
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        subprocess.run(["readelf", "-d", str(binp)], capture_output=True, text=True).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(["ldd", str(binp)], capture_output=True,
                                                                     text=True).stdout, re.M))
    for lib in needed:
        if re.match(r"^(libc|libm|libpthread|libdl|librt|ld-linux.*)\.so", lib) or lib not in paths:
            continue
        real = os.path.realpath(paths[lib])
        for cand in {paths[lib], real, real.replace("/usr/lib/", "/lib/", 1)}:
            d = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if d.returncode == 0:
                pkg = d.stdout.split(":")[0]
                if pkg not in runtime:
                    err(where, f"target {target}: bin/{binary} needs {lib} from {pkg}, not installed there")
                break
    notes.append(f"DT_NEEDED of bin/{binary} checked")


def check_main_dockerfile():
    where = "deploy/Dockerfile"
    stages, args = stages_of(DOCKERFILES[where])
    for st in stages.values():
        if st["parent"] is None and not st["base"].startswith("${") and st["base"] not in stages:
            err(where, f"line {st['line']}: stage {st['name']} is FROM {st['base']}, not a build argument")
    check_copies(where, stages)
    build = next((s for s in stages.values()
                  if any(c == "RUN" and re.search(r"\bmake\b[^&;|]*\ball\b", a) for _, c, a in s["instr"])), None)
    if not build:
        err(where, "no stage runs `make ... all`")
        return stages, args
    copied = {words(a)[0].rstrip("/").split("/")[0] for _, c, a in build["instr"] if c == "COPY"}
    need, pkgs = makefile_inputs()
    for p in sorted(need - copied):
        err(where, f"stage {build['name']} does not COPY {p}, which `make all` reads")
    dev = apt_packages(build)
    for mod in pkgs:
        if mod not in PKG_MAP:
            err(where, f"Makefile PKGS has {mod}: add its Debian packages here and to PKG_MAP in tools/check_deploy.sh")
        elif PKG_MAP[mod][0] not in dev:
            err(where, f"stage {build['name']} does not install {PKG_MAP[mod][0]} (Makefile PKGS has {mod})")
    for target, binary in BINARY_OF_TARGET.items():
        st = stages.get(target)
        if not st:
            err(where, f"no stage {target}")
            continue
        runtime = set().union(*(apt_packages(s) for s in chain(st)))
        for mod in pkgs:
            if mod in PKG_MAP and PKG_MAP[mod][1] not in runtime:
                err(where, f"target {target} does not install {PKG_MAP[mod][1]} (runtime of {mod})")
        if any(p.endswith("-dev") or p in ("build-essential", "gcc", "make") for p in runtime):
            err(where, f"target {target} installs build tools or -dev packages")
        if st["user"] in (None, "", "root", "0"):
            err(where, f"target {target} runs as root")
        if not st["entrypoint"] or binary not in st["entrypoint"]:
            err(where, f"target {target}: ENTRYPOINT does not run {binary}")
        if not st["health"]:
            err(where, f"target {target} has no HEALTHCHECK")
        check_needed(where, target, binary, runtime)
    return stages, args


# ---- compose ---------------------------------------------------------------
def env_of(svc):
    e = svc.get("environment") or {}
    return {str(k): str(v) for k, v in e.items()} if isinstance(e, dict) else \
        dict(str(x).partition("=")[::2] for x in e)


def port_of(addr):
    return addr.rsplit(":", 1)[-1] if addr else None


def check_compose(stages, dockerfile_args):
    where = "deploy/docker-compose.yml"
    doc = yaml.safe_load(COMPOSE.read_text())
    offline = yaml.safe_load(OFFLINE.read_text())
    services = doc.get("services") or {}
    images = {}
    target_of = {}
    for name, svc in services.items():
        w = f"{where}: service {name}"
        b = svc.get("build")
        if b:
            img = svc.get("image", name)
            if img in images:
                err(w, f"builds {img}, which service {images[img]} builds too (parallel builds of one tag collide)")
            images[img] = name
            if b.get("dockerfile") == "deploy/Dockerfile":
                if b.get("target") not in stages:
                    err(w, f"build target {b.get('target')!r} is not a stage of deploy/Dockerfile")
                target_of[name] = b.get("target")
        for dep, spec in (svc.get("depends_on") or {}).items():
            if dep not in services:
                err(w, f"depends_on {dep}, which is not a service")
            elif (spec or {}).get("condition") == "service_healthy":
                d = services[dep]
                t = (d.get("build") or {}).get("target")
                if not (d.get("healthcheck") or {}).get("test") and not (t in stages and stages[t]["health"]):
                    err(w, f"waits for {dep} to be healthy; {dep} has no healthcheck")
        if "restart" in svc and not isinstance(svc["restart"], str):
            err(w, "restart is not a string (quote \"no\": YAML reads no as false)")
    # services of no build that use a built image: not pulled
    for name, svc in services.items():
        if "build" not in svc and svc.get("image") in images and svc.get("pull_policy") != "never":
            err(f"{where}: service {name}", f"uses {svc['image']} built by {images[svc['image']]}: pull_policy: never")
    cmd = " ".join(services.get("postgres", {}).get("command") or [])
    for s in ("wal_level=logical", "max_replication_slots=", "max_wal_senders=", "wal_sender_timeout="):
        if s not in cmd:
            err(f"{where}: service postgres", f"command does not set {s.rstrip('=')}")
    migrators = [n for n, t in target_of.items() if t == "api" and "--migrate" in str(services[n].get("command"))]
    migrators += [n for n, s in services.items()
                  if s.get("image") == "orders-cdc/orders-api:dev" and "--migrate" in str(s.get("command"))]
    if not migrators:
        err(where, "no service runs orders-api --migrate")
    for name, svc in services.items():
        w = f"{where}: service {name}"
        img = svc.get("image", "")
        t = target_of.get(name) or {"orders-cdc/orders-api:dev": "api"}.get(img)
        binary = BINARY_OF_TARGET.get(t)
        if not binary or name in migrators:
            continue
        env = env_of(svc)
        check_vars(w, env, binary)
        for need in ("DATABASE_URL",) + (("KAFKA_BROKERS",) if binary == "cdc-relay" else ()):
            if need not in env:
                err(w, f"sets no {need}")
        if not any((svc.get("depends_on") or {}).get(m, {}).get("condition") == "service_completed_successfully"
                   for m in migrators):
            err(w, "does not wait for the migrator to complete")
        grace = seconds(svc.get("stop_grace_period", "10s"))
        floor = RELAY_SHUTDOWN if binary == "cdc-relay" else API_DRAIN
        if grace is None or grace <= floor:
            err(w, f"stop_grace_period {svc.get('stop_grace_period', '10s')} does not outlast its {floor} s shutdown wait")
        addr_var = "CDC_METRICS_LISTEN" if binary == "cdc-relay" else "LISTEN_ADDR"
        addr = env.get(addr_var)
        if not addr or addr.startswith("127."):
            err(w, f"{addr_var} must listen beyond loopback (other containers and the healthcheck)")
            continue
        published = {str(p).rsplit(":", 1)[-1] for p in svc.get("ports") or []}
        if port_of(addr) not in published:
            err(w, f"{addr_var} port {port_of(addr)} is not the published one ({', '.join(sorted(published))})")
        test = (svc.get("healthcheck") or {}).get("test") or []
        if addr_var not in test:
            err(w, f"healthcheck does not ask the address in {addr_var}")
    for name, t in target_of.items():
        if t != "it":
            continue
        svc = services[name]
        w = f"{where}: service {name}"
        if "test" not in (svc.get("profiles") or []):
            err(w, "is not under the test profile (it would run on every up)")
        readers = IT_RUN.read_text() + "".join(p.read_text() for p in (REPO / "tests").rglob("*.py"))
        for var in env_of(svc):
            if not re.search(r"\b" + re.escape(var) + r"\b", readers):
                err(w, f"sets {var}, which neither deploy/it/run.sh nor the tests read")
    # the offline file: overrides only; its build arguments are declared
    for name, svc in (offline.get("services") or {}).items():
        w = f"deploy/docker-compose.offline.yml: service {name}"
        if name not in services:
            err(w, "is not a service of deploy/docker-compose.yml")
        b = svc.get("build") or {}
        dfile = b.get("dockerfile") or (services.get(name, {}).get("build") or {}).get("dockerfile")
        declared = dockerfile_args.get(dfile, {})
        for arg in b.get("args") or {}:
            if arg not in declared:
                err(w, f"build argument {arg} is not declared by {dfile}")


def compose_config():
    """`docker compose config` of both variants, where the binary is."""
    cands = sorted((Path.home() / ".cache/orders-cdc").glob("compose-*/docker-compose"))
    cmd = [str(cands[-1])] if cands else (["docker", "compose"] if shutil.which("docker") else None)
    if not cmd or subprocess.run([*cmd, "version"], capture_output=True).returncode != 0:
        notes.append("docker compose config: no compose binary here, skipped")
        return
    for files in (["deploy/docker-compose.yml"], ["deploy/docker-compose.yml", "deploy/docker-compose.offline.yml"]):
        args = [x for f in files for x in ("-f", f)]
        r = subprocess.run([*cmd, *args, "--profile", "test", "config", "--quiet"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            err(" + ".join(files), f"docker compose config: {r.stderr.strip()}")
    notes.append("docker compose config: both variants")


# ---- systemd ------------------------------------------------------------------
def check_units():
    for unit, binary in (("orders-api.service", "orders-api"), ("cdc-relay.service", "cdc-relay")):
        where = f"deploy/systemd/{unit}"
        kv = {}
        for line in (UNITS / unit).read_text().splitlines():
            if "=" in line and not line.startswith(("#", ";", "[")):
                k, _, v = line.partition("=")
                kv.setdefault(k.strip(), []).append(v.strip())
        if not re.match(r"^[-@:+!]*/\S*/" + re.escape(binary) + r"(\s|$)", kv.get("ExecStart", [""])[-1]):
            err(where, f"ExecStart does not run {binary}")
        # both binaries send READY=1 (common/notify.c): systemd must wait for it
        for key, want in (("Type", "notify"), ("NotifyAccess", "main")):
            if kv.get(key, [""])[-1] != want:
                err(where, f"{key}={want} missing (readiness: docs/deployment.md)")
        stop = seconds(kv.get("TimeoutStopSec", ["90"])[-1], r"(min|sec|ms|us|h|m|s)")
        floor = RELAY_SHUTDOWN if binary == "cdc-relay" else API_DRAIN
        if stop is None or stop <= floor:
            err(where, f"TimeoutStopSec does not outlast {binary}'s {floor} s shutdown wait")
        if binary == "cdc-relay" and "cdc-relay" not in kv.get("StateDirectory", [""])[-1].split():
            err(where, "StateDirectory=cdc-relay missing (the state file)")
        check_vars(where, {a.split("=", 1)[0] for v in kv.get("Environment", []) for a in shlex.split(v)}, binary)
    sample = UNITS / "orders-cdc.env.sample"
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", sample.read_text(), re.M))
    unknown = unknown_vars(names, ["orders-api", "cdc-relay"])
    for n in sorted(unknown):
        err("deploy/systemd/orders-cdc.env.sample", f"{n} is not a variable either binary's --help names")


stages, _ = check_main_dockerfile()
dockerfile_args = {"deploy/Dockerfile": stages_of(DOCKERFILES["deploy/Dockerfile"])[1]}
for name in ("deploy/offline/postgres.Dockerfile", "deploy/offline/kafka.Dockerfile"):
    st, dargs = stages_of(DOCKERFILES[name])
    dockerfile_args[name] = dargs
    check_copies(name, st, repo_context=name.endswith("postgres.Dockerfile"))
check_compose(stages, dockerfile_args)
compose_config()
check_units()
if "-v" in sys.argv[1:]:
    for n in notes:
        print("lint: deploy: note:", n)
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY

# ---- systemd-analyze, on copies whose ExecStart is /bin/true (verify wants
# the binary to exist; it is not installed here) -----------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
    tmp=$(mktemp -d /tmp/check-deploy.XXXXXX) || exit 1
    for u in deploy/systemd/*.service; do
        sed 's#^\(ExecStart=[-@:+!]*\)/[^ ]*#\1/bin/true#' "$u" >"$tmp/$(basename "$u")"
    done
    if ! out=$(cd "$tmp" && systemd-analyze verify --man=no ./*.service 2>&1) || [ -n "$out" ]; then
        echo "lint: deploy: systemd-analyze verify deploy/systemd/*.service:"
        printf '%s\n' "$out" | sed "s#$tmp/#deploy/systemd/#g; s/^/    /"
        status=1
    fi
    # exposure score (0 best .. 10 worst), offline: fail above 2.5
    for u in "$tmp"/*.service; do
        if ! line=$(systemd-analyze security --offline=yes --threshold=25 "$u" 2>&1); then
            echo "lint: deploy: deploy/systemd/$(basename "$u"): $(printf '%s\n' "$line" |
                sed -n 's/^→ *//; /Overall exposure/p'), above 2.5: sandboxing was loosened"
            status=1
        fi
    done
    rm -rf "$tmp"
else
    echo "lint: deploy: note: systemd-analyze not found; unit files checked by tools/check_deploy.sh only"
fi

# ---- Prometheus alerting rules (promtool: Debian's prometheus package) -------
if command -v promtool >/dev/null 2>&1; then
    for cmd in "check rules deploy/prometheus/alerts.yml" "test rules deploy/prometheus/alerts_test.yml"; do
        # shellcheck disable=SC2086 # the words of $cmd are promtool's arguments
        if ! out=$(promtool $cmd 2>&1); then
            echo "lint: deploy: promtool $cmd:"
            printf '%s\n' "$out" | sed 's/^/    /'
            status=1
        fi
    done
else
    echo "lint: deploy: promtool not found (alert rules unchecked); sh tests/harness/deps.sh installs it"
    status=1
fi

[ $status -eq 0 ] && echo "lint: deploy files ok"
exit $status
