"""The integration tests on several PostgreSQL versions at once.

tests/run_integration.sh runs this when $PG_MATRIX is set and $PG_VERSION is
not (`make test` does). PG_MATRIX is a list of VERSION[:matrix][/PROCESSES]:

  15/2        every test on PostgreSQL 15, shared by 2 pytest processes
  16:matrix   the tests marked @pytest.mark.matrix on 16, in one process

Each process is `tests/run_integration.sh` with PG_VERSION (and, when a
version has several, ORDERS_CDC_WORK_QUEUE naming a directory they share:
each takes the next test nobody took, see conftest.py), so each has its own
run directory, Postgres and Kafka on free loopback ports. All of them run at
the same time because the suite mostly waits (on servers, timeouts and
Kafka). Extra arguments go to every process's pytest (-k, -x, test files).

Output: one line per process as it ends (pytest's summary, its wall time, and its
log when it failed), then the combined line, last:
  integration: N passed, N failed, N skipped (...) in N s
Exit status 0 when every process passed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC_RE = re.compile(r"^(1[5-8])(:matrix)?(?:/([1-9]))?$")
COUNT_RE = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)\b")
SUMMARY_RE = re.compile(r"^=+ .*\b(passed|failed|errors?|skipped|deselected|no tests ran)\b.* =+$")


@dataclass
class Job:
    version: str
    subset: bool
    part: int
    parts: int
    log: Path
    queue: Path | None
    proc: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    rc: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    summary: str = ""

    @property
    def ok(self) -> bool:
        # 5: pytest collected nothing (a narrow -k); main() fails an empty total
        return self.rc == 0 or (self.rc == 5 and not self.counts.get("error"))

    @property
    def name(self) -> str:
        what = "matrix" if self.subset else "all"
        part = f" {self.part}/{self.parts}" if self.parts > 1 else ""
        return f"pg{self.version} {what}{part}"


def parse_jobs(spec: str, logdir: Path) -> list[Job]:
    jobs = []
    for word in spec.split():
        m = SPEC_RE.match(word)
        if not m:
            sys.exit(f"PG_MATRIX: {word!r} is not VERSION[:matrix][/PROCESSES] (versions 15-18)")
        parts = int(m.group(3) or 1)
        stem = f"pg{m.group(1)}{'-matrix' if m.group(2) else ''}"
        queue = logdir / f"{stem}.queue" if parts > 1 else None
        if queue:
            queue.mkdir()
        for k in range(1, parts + 1):
            log = logdir / f"{stem}-{k}of{parts}.log"
            jobs.append(Job(m.group(1), bool(m.group(2)), k, parts, log, queue))
    if not jobs:
        sys.exit("PG_MATRIX is empty")
    return jobs


def start(job: Job, args: list[str]) -> None:
    env = dict(os.environ, PG_VERSION=job.version)
    env.pop("PG_MATRIX", None)
    if job.queue:
        env["ORDERS_CDC_WORK_QUEUE"] = str(job.queue)
    extra = ["-m", "matrix"] if job.subset else []
    job.started = time.monotonic()
    with open(job.log, "wb") as out:
        job.proc = subprocess.Popen(
            ["sh", str(REPO / "tests" / "run_integration.sh"), *extra, *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def finish(job: Job) -> None:
    job.seconds = time.monotonic() - job.started
    text = job.log.read_text(errors="replace")
    lines = [l for l in text.splitlines() if SUMMARY_RE.match(l)]
    job.summary = lines[-1].strip("= ") if lines else "(no pytest summary)"
    for n, what in COUNT_RE.findall(job.summary):
        what = "error" if what.startswith("error") else what
        job.counts[what] = job.counts.get(what, 0) + int(n)


def report(job: Job) -> None:
    print(f"[{job.name}] {job.summary} ({job.seconds:.0f} s, exit {job.rc})", flush=True)
    if not job.ok:
        text = job.log.read_text(errors="replace")
        first = text.find("= FAILURES =")
        first = first if first >= 0 else text.find("= ERRORS =")
        tail = text[text.rfind("\n", 0, first) + 1 :] if first >= 0 else text[-6000:]
        print(f"---- {job.name}: {job.log} ----\n{tail.rstrip()}\n----", flush=True)


def main() -> int:
    args = sys.argv[1:]
    logdir = Path(tempfile.mkdtemp(prefix="orders-cdc-matrix.", dir="/tmp"))
    jobs = parse_jobs(os.environ.get("PG_MATRIX", ""), logdir)
    print(
        f"integration: {len(jobs)} pytest processes at once ({', '.join(j.name for j in jobs)}); "
        f"their output in {logdir}",
        flush=True,
    )
    t0 = time.monotonic()
    interrupted = False

    def on_signal(signum, frame):
        nonlocal interrupted
        interrupted = True
        for j in jobs:
            if j.proc and j.proc.poll() is None:
                j.proc.send_signal(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for j in jobs:
        start(j, args)
    running = list(jobs)
    while running:
        time.sleep(0.5)
        for j in list(running):
            rc = j.proc.poll()
            if rc is None:
                continue
            j.rc = rc
            running.remove(j)
            finish(j)
            report(j)

    total: dict[str, int] = {}
    for j in jobs:
        for k, v in j.counts.items():
            total[k] = total.get(k, 0) + v
    bad = [j for j in jobs if not j.ok]
    passed = total.get("passed", 0)
    failed = total.get("failed", 0) + total.get("error", 0)
    # a process that ended badly without counting a failure (crashed, killed)
    failed += sum(1 for j in bad if not (j.counts.get("failed") or j.counts.get("error")))
    if passed + failed == 0:
        failed = 1  # nothing ran anywhere: a typo in -k must not pass
    by_version = ", ".join(
        f"{v} {'matrix' if s else 'all'}" for v, s in dict.fromkeys((j.version, j.subset) for j in jobs)
    )
    if not bad and failed == 0:
        shutil.rmtree(logdir, ignore_errors=True)
    print(
        f"integration: {passed} passed, {failed} failed, {total.get('skipped', 0)} skipped "
        f"(PostgreSQL {by_version}) in {time.monotonic() - t0:.0f} s",
        flush=True,
    )
    if interrupted:
        return 130
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
