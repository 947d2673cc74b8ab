"""The Makefile as a user meets it, no servers: `make install` with PREFIX
and DESTDIR (binaries, units whose paths follow, man pages from --help,
docs, sample config), and the early, named error when pkg-config cannot find
a library's development files.

These run make with their own BUILD directory and never rebuild the
binaries under test: install takes them from $BIN_DIR as they are
(`-o` tells make they are up to date).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO, bin_path


def make(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_make_install_prefix_destdir(tmp_path: Path):
    bindir = bin_path("cdc-relay").parent
    stage, prefix = tmp_path / "stage", "/opt/orders-cdc"
    r = make("install", f"DESTDIR={stage}", f"PREFIX={prefix}", f"BIN={bindir}",
             f"BUILD={tmp_path / 'build'}", "-o", f"{bindir}/cdc-relay", "-o", f"{bindir}/orders-api")
    assert r.returncode == 0, r.stdout + r.stderr
    root = stage / prefix.lstrip("/")
    for name in ("orders-api", "cdc-relay"):
        exe = root / "bin" / name
        assert exe.stat().st_mode & 0o777 == 0o755
        assert exe.read_bytes() == (bindir / name).read_bytes()
        unit = (root / "lib/systemd/system" / f"{name}.service").read_text()
        assert f"\nExecStart={prefix}/bin/{name}\n" in unit, unit
        assert f"Documentation=file://{prefix}/share/doc/orders-cdc/deployment.md" in unit
        assert "/usr/local" not in unit
        assert "\nType=notify\n" in unit
        page = (root / "share/man/man1" / f"{name}.1").read_text()
        assert page.startswith(f".TH {name.upper()} 1 ")
        # the page is the binary's --help: every option of it is on the page
        help_text = subprocess.run([str(exe), "--help"], capture_output=True, text=True).stdout
        for line in help_text.splitlines():
            if line.startswith("  --"):
                assert line.split()[0].replace("-", "\\-") in page, line
        if shutil.which("groff"):
            g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page,
                               capture_output=True, text=True)
            assert g.returncode == 0 and not g.stderr, g.stderr
    assert (stage / "etc/orders-cdc/orders-cdc.env.sample").is_file()
    assert not list((stage / "etc/orders-cdc").glob("*.env"))  # the operator writes that one
    doc = root / "share/doc/orders-cdc"
    assert (doc / "deployment.md").is_file() and (doc / "prometheus/alerts.yml").is_file()

    # The installed units are valid for systemd, the staged binary standing
    # in for the installed one (verify wants ExecStart to exist).
    if shutil.which("systemd-analyze"):
        check = tmp_path / "verify"
        check.mkdir()
        for unit in (root / "lib/systemd/system").iterdir():
            (check / unit.name).write_text(
                unit.read_text().replace("\nExecStart=", f"\nExecStart={stage}"))
        v = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(check.iterdir())],
                           capture_output=True, text=True, cwd=check)
        assert v.returncode == 0 and not v.stdout.strip() and not v.stderr.strip(), v.stdout + v.stderr

    # SYSCONFDIR moves the units' environment files too; uninstall removes it all.
    r = make("install", f"DESTDIR={stage}", f"PREFIX={prefix}", "SYSCONFDIR=/etc/x",
             f"BIN={bindir}", f"BUILD={tmp_path / 'build'}", "-o", f"{bindir}/cdc-relay",
             "-o", f"{bindir}/orders-api")
    assert r.returncode == 0, r.stderr
    unit = (root / "lib/systemd/system/cdc-relay.service").read_text()
    assert "EnvironmentFile=/etc/x/orders-cdc/orders-cdc.env" in unit
    r = make("uninstall", f"DESTDIR={stage}", f"PREFIX={prefix}", "SYSCONFDIR=/etc/x")
    assert r.returncode == 0, r.stderr
    left = [p for p in stage.rglob("*") if p.is_file() and "/etc/orders-cdc/" not in str(p)]
    assert left == [], left


def pc_dir_without(tmp_path: Path, missing: set[str]) -> Path:
    """A pkg-config search path with every .pc file of this machine but some."""
    d = tmp_path / "pkgconfig"
    d.mkdir()
    out = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"],
                         capture_output=True, text=True).stdout.strip()
    for src in out.split(":"):
        for pc in Path(src).glob("*.pc") if Path(src).is_dir() else []:
            if pc.stem not in missing and not (d / pc.name).exists():
                shutil.copy(pc, d / pc.name)
    return d


@pytest.mark.parametrize("missing,named", [
    ({"libpq"}, ["libpq-dev"]),
    ({"libpq", "rdkafka", "jansson", "libmicrohttpd"},
     ["libpq-dev", "librdkafka-dev", "libjansson-dev", "libmicrohttpd-dev"]),
])
def test_missing_library_is_named_before_compiling(tmp_path: Path, missing, named):
    pc = pc_dir_without(tmp_path, missing)
    build = tmp_path / "build"
    r = make("all", f"BUILD={build}", f"BIN={tmp_path / 'bin'}", env={"PKG_CONFIG_LIBDIR": str(pc)})
    assert r.returncode != 0
    assert f"make: missing development files: install {' '.join(named)}" in r.stderr, r.stderr
    assert "not found" in r.stderr  # pkg-config's own words are kept, not discarded
    assert "No such file" not in r.stderr and not list(build.rglob("*.o")), "compiled anyway"


def test_missing_pkg_config(tmp_path: Path):
    r = make("all", "PKG_CONFIG=/nonexistent/pkg-config", f"BUILD={tmp_path / 'b'}",
             f"BIN={tmp_path / 'bin'}")
    assert r.returncode != 0 and "install pkg-config" in r.stderr, r.stderr


def test_werror_only_when_asked(tmp_path: Path):
    """A plain build warns and goes on; WERROR=1 (make test, make asan, CI)
    makes a warning an error; flipping it rebuilds, so no object built
    without -Werror survives into a WERROR=1 build."""
    build = tmp_path / "build"
    # the common library: the same rules as every object, a fraction of the time
    where = [f"BUILD={build}", f"BIN={tmp_path / 'bin'}", f"{build}/libcommon.a"]
    compiles = lambda r: [l for l in r.stdout.splitlines() if " -c " in l]
    plain = make("-n", *where)
    assert compiles(plain) and not any("-Werror" in l for l in compiles(plain))
    strict = make("-n", *where, "WERROR=1")
    assert compiles(strict) and all("-Werror" in l for l in compiles(strict))
    # Built plain: nothing to do plain, everything again with WERROR=1, and
    # then nothing again (make echoes each compile it runs).
    r = make("-j2", *where)
    assert r.returncode == 0 and len(compiles(r)) == len(compiles(plain)), r.stderr
    assert compiles(make("-j2", *where)) == []
    again = make("-j2", *where, "WERROR=1")
    assert again.returncode == 0 and len(compiles(again)) == len(compiles(strict)), (
        "objects built without -Werror kept")
    assert compiles(make("-j2", *where, "WERROR=1")) == []
    helptext = make("help").stdout
    assert "WERROR=1" in helptext and "make install" in helptext
