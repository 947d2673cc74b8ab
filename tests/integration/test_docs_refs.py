"""The repository explains itself (no servers): nothing cites a file outside
it, and every `docs/<name>.md#<anchor>` that code, comments or docs cite, and
every relative Markdown link between the docs, leads to a file and a heading
(or `<a id>`) that exist. Anchors are GitHub's: a heading lowercased,
punctuation dropped, spaces as hyphens, repeats numbered -1, -2, ..."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Spelled in pieces so that this file does not cite them itself.
OUTSIDE = re.compile(r"\b(?:PROTO" r"COL|DES" r"IGN|STY" r"LE)\.md\b|\.\./sha" r"red\b")
# docs/protocol.md#r9, also "docs/protocol.md#r1 to #r3" and "#r9, #p8"
CITED = re.compile(r"\bdocs/([\w.-]+\.md)#([\w-]+)((?:(?:,| to| and) #[\w-]+)*)")
LINK = re.compile(r"\]\(([\w./-]+\.md)?#([^)\s]+)\)")


# What .gitignore leaves out, for a tree without git (a release tarball, the
# fresh-machine check's `git archive` copy).
UNTRACKED_DIRS = {".git", "bin", "build", ".cache", "__pycache__", ".run", ".pytest_cache"}


def source_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
        return [ROOT / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        return [path for path in ROOT.rglob("*") if not ignored(path.relative_to(ROOT).parts)]


def ignored(parts: tuple[str, ...]) -> bool:
    return bool(UNTRACKED_DIRS.intersection(parts)) or any(p.startswith("corpus-") for p in parts)


def tracked_text_files() -> list[Path]:
    files = []
    for path in source_files():
        if path.is_file() and not path.is_symlink() and not path.name.endswith((".o", ".a", ".state")):
            data = path.read_bytes()
            if b"\0" not in data[:8192]:
                files.append(path)
    return files


def slug(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in md.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        found.update(re.findall(r'<a id="([\w-]+)"></a>', line))
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            found.add(s if n == 0 else f"{s}-{n}")
    return found


def test_nothing_cites_a_file_outside_the_repository():
    hits = []
    for path in tracked_text_files():
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert hits == [], "\n".join(hits)


def test_every_cited_docs_anchor_exists():
    cache: dict[Path, set[str]] = {}
    bad, cited = [], 0
    for path in tracked_text_files():
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for name, first, more in CITED.findall(line):
                doc = ROOT / "docs" / name
                if not doc.exists():
                    bad.append(f"{path.relative_to(ROOT)}:{i}: docs/{name} does not exist")
                    continue
                for anchor in [first, *re.findall(r"#([\w-]+)", more)]:
                    cited += 1
                    if anchor not in cache.setdefault(doc, anchors(doc)):
                        bad.append(f"{path.relative_to(ROOT)}:{i}: no #{anchor} in docs/{name}")
    assert bad == [], "\n".join(bad)
    assert cited > 20  # the code does cite protocol.md: the check looked at something


def test_every_link_between_the_docs_resolves():
    cache: dict[Path, set[str]] = {}
    bad = []
    for md in sorted(ROOT.glob("*.md")) + sorted((ROOT / "docs").glob("*.md")):
        for i, line in enumerate(md.read_text().splitlines(), 1):
            for target, anchor in LINK.findall(line):
                doc = (md.parent / target).resolve() if target else md
                if not doc.exists():
                    bad.append(f"{md.relative_to(ROOT)}:{i}: {target} does not exist")
                elif anchor not in cache.setdefault(doc, anchors(doc)):
                    bad.append(f"{md.relative_to(ROOT)}:{i}: no #{anchor} in {doc.relative_to(ROOT)}")
    assert bad == [], "\n".join(bad)


def test_slugs_follow_github():
    assert slug("Exactly-once (`--exactly-once`)") == "exactly-once---exactly-once"
    assert slug("librdkafka 2.0.2 quirks") == "librdkafka-202-quirks"
    assert slug("The relay's rules") == "the-relays-rules"
    assert slug("Migrations (`orders-api --migrate`)") == "migrations-orders-api---migrate"


def test_protocol_md_names_functions_and_tests_that_exist():
    """docs/protocol.md says, for each rule, pitfall and quirk, which function
    implements it and which test covers it: those names must exist in the
    sources (a renamed or moved function shows up here, not in a reader's
    search)."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    sources = [p for d in ("cdc", "common", "api", "tests") for p in (ROOT / d).rglob("*")
               if p.suffix in (".c", ".h", ".py")]  # fmt: skip
    words = set(re.findall(r"\b\w+\b", "\n".join(p.read_text(errors="replace") for p in sources)))
    blocks = re.findall(r"(?:Where|Tests?):(.*?)(?=\n- |\n\n|\Z)", text, re.S)
    names = {t for b in blocks for t in re.findall(r"`([a-z_][a-z0-9_]*)`", b) if "_" in t}
    assert len(names) > 40
    assert sorted(n for n in names if n not in words) == []
    paths = {p for b in blocks for p in re.findall(r"`((?:cdc|common|api|tests)/[\w./-]+)`", b)}
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []
