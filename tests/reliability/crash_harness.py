"""Crash safety under ``kill -9``: ``reconciler sync`` killed at random points, restarted, checked.

For every kill point: a fresh generated world is served in this process; ``reconciler sync --once`` runs as a
subprocess against it; the harness watches the sandboxes' request log (and the state store's WAL file) and sends
SIGKILL at the chosen point:

- ``apply``  after the k-th write request the sandboxes received (k drawn over a full first sync's writes, so every
  entity's apply is hit, creates included);
- ``create`` as soon as the sandbox received the k-th create (POST to a collection): the record is created
  while its client dies, so the answer is lost and only the journal knows;
- ``fetch``  after the r-th read request, before any write (listing, lookups, first-sight searches);
- ``commit`` at the first change of the state store's WAL after the k-th write: while links, journal rows or the
  cursor are being committed.

Then ``reconciler sync --once`` is started again (a new process, as an operator or a supervisor would), clean
cycles run until a full plan is empty, and the final state is compared with a run of the same world that was
never killed: duplicates in the target sandbox (records per natural key), links lost, the journal (no ``pending``
row may survive the restart) and every record of both systems.

    python -m tests.reliability.crash_harness --runs 50 [--integration ozmap-ixc] [--seed 7] [--scale 300]

prints one line per kill and the figures (kill points tried, duplicates found, links lost); exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

import anyio
from anyio.abc import Process

from reconciler import config as config_mod
from reconciler.sandbox import runner
from tests.reliability import support
from tests.reliability.support import FinalState, Verdict

MODES = ("apply", "create", "fetch", "commit")
#: Scale of the crash worlds: ~500 writes in a first ozmap-ixc sync.
SCALE = 300
#: Every write request is slowed down this much (seconds), so apply lasts long enough to be hit precisely.
WRITE_LATENCY = 0.01
#: Seconds any subprocess may take before the harness gives up on it.
DEADLINE = 120.0


@dataclass
class Profile:
    """What an uninterrupted first sync of the world looks like: its requests, and the reference final state."""

    integration: str
    reads_before_first_write: int
    writes: int
    creates: int
    state: FinalState


@dataclass
class KillResult:
    """One kill point and what the checks found after the restart."""

    integration: str
    mode: str
    target: int
    """The chosen point: k-th write (apply, commit) or r-th read (fetch)."""
    writes_at_kill: int = 0
    reads_at_kill: int = 0
    last_write: str = ""
    killed: bool = False
    exit_after_restart: int | None = None
    pending_after_kill: int = 0
    pending_after_restart: int = 0
    adopted: int = 0
    """Creates that reached the target before the kill and were adopted, not sent again, by the restart."""
    converged_after: int | None = None
    verdict: Verdict = field(default_factory=Verdict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.killed
            and self.verdict.ok
            and self.converged_after is not None
            and self.pending_after_restart == 0
            and self.exit_after_restart in (0, 2)
        )

    def line(self) -> str:
        point = f"{self.mode} #{self.target}"
        at = (
            f"killed after {self.writes_at_kill} writes / {self.reads_at_kill} reads"
            if self.killed
            else "NOT KILLED"
        )
        where = f" (last write {self.last_write})" if self.last_write else ""
        status = "ok" if self.ok else "FAILED: " + "; ".join(self.verdict.problems[:4])
        return (
            f"{self.integration} {point:<14} {at}{where}; pending after kill {self.pending_after_kill}, "
            f"{self.adopted} landed creates adopted, restart exit {self.exit_after_restart}, converged after {self.converged_after}, "
            f"duplicates {self.verdict.duplicates}, links lost {self.verdict.links_lost}: {status}"
        )


def _is_write(entry: Any) -> bool:
    return bool(entry.method != "GET" and entry.headers.get("ixcsoft", "").lower() != "listar")


def _is_create(entry: Any) -> bool:
    """A POST to a collection (``/api/v2/properties``, ``/webservice/v1/rad_caixa_ftth``), not an action."""
    return _is_write(entry) and entry.method == "POST" and len(entry.path.strip("/").split("/")) == 3


class RequestWatch:
    """Counts the reads and writes the sandboxes served, incrementally."""

    def __init__(self, sandboxes: runner.Sandboxes) -> None:
        self.sandboxes = sandboxes
        self.seen = {system.name: 0 for system in sandboxes}
        self.reads = 0
        self.writes = 0
        self.creates = 0
        self.last_write = ""

    def poll(self) -> None:
        for system in self.sandboxes:
            log = system.faults.log
            for entry in list(log)[self.seen[system.name] :]:
                if _is_write(entry):
                    self.writes += 1
                    self.creates += _is_create(entry)
                    self.last_write = f"{system.name} {entry.method} {entry.path}"
                else:
                    self.reads += 1
            self.seen[system.name] = len(log)


def _command(cfg: config_mod.Config, integration: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reconciler",
        "sync",
        "--once",
        "--config",
        str(cfg.path),
        "--integration",
        integration,
    ]


async def _slow_writes(sandboxes: runner.Sandboxes) -> None:
    for system in sandboxes:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            rule = {"kind": "latency", "seconds": WRITE_LATENCY, "method": method}
            await support.control(system.url, "POST", "faults", rule)


async def profile(integration: str, folder: Path, *, seed: int, scale: int) -> Profile:
    """An uninterrupted first sync (as a subprocess, like the killed ones) and the converged reference state."""
    async with support.world(integration, seed, scale) as sandboxes:
        cfg = config_mod.load(support.write_config(sandboxes, folder))
        await _slow_writes(sandboxes)
        done = await anyio.run_process(_command(cfg, integration), check=False)
        if done.returncode not in (0, 2):
            raise AssertionError(
                f"{integration}: the uninterrupted sync failed: {done.stderr.decode()[-2000:]}"
            )
        reads_before = writes = creates = 0
        for system in sandboxes:
            entries = list(system.faults.log)
            writes += sum(1 for e in entries if _is_write(e))
            creates += sum(1 for e in entries if _is_create(e))
            first = next((i for i, e in enumerate(entries) if _is_write(e)), len(entries))
            reads_before += first
        await support.clear_faults(sandboxes)
        await support.converge(cfg, integration)
        state = await support.final_state(cfg, sandboxes, integration)
    return Profile(integration, max(1, reads_before), writes, creates, state)


def _pending(state_path: Path) -> int:
    """``pending`` journal rows in the state store (read-only; 0 when the store was never created)."""
    if not state_path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM journal WHERE status = 'pending'").fetchone()[0])
        except sqlite3.OperationalError:  # killed before the schema was created
            return 0


def _adopted(state_path: Path) -> int:
    """Creates of a killed run that had reached the target and were adopted by the restart (journal)."""
    with contextlib.closing(sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)) as db:
        query = "SELECT count(*) FROM journal WHERE kind = 'create' AND status = 'resolved' AND error LIKE 'adopted%'"
        return int(db.execute(query).fetchone()[0])


def _wal_mark(state_path: Path) -> tuple[int, int]:
    wal = Path(f"{state_path}-wal")
    try:
        st = wal.stat()
    except FileNotFoundError:
        return (0, 0)
    return (st.st_size, st.st_mtime_ns)


async def _kill_when(process: Process, watch: RequestWatch, mode: str, target: int, state_path: Path) -> bool:
    """Poll until the kill point, then SIGKILL; False when the process ended first."""
    wal_before: tuple[int, int] | None = None
    with anyio.fail_after(DEADLINE):
        while process.returncode is None:
            watch.poll()
            if mode == "fetch":
                reached = watch.reads >= target or watch.writes > 0
            elif mode == "apply":
                reached = watch.writes >= target
            elif mode == "create":  # the create was received: it runs while its client dies
                reached = watch.creates >= target
            else:  # commit: the first WAL change once the target write was seen
                reached = False
                if watch.writes >= target:
                    mark = _wal_mark(state_path)
                    if wal_before is None:
                        wal_before = mark
                    reached = mark != wal_before
            if reached:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGKILL)
                await process.wait()
                return process.returncode == -signal.SIGKILL
            await anyio.sleep(0.001)
    return False


async def kill_once(
    integration: str,
    folder: Path,
    mode: str,
    target: int,
    reference: FinalState,
    *,
    seed: int,
    scale: int,
) -> KillResult:
    """One kill point: run, kill, restart, converge, compare."""
    started = time.perf_counter()
    result = KillResult(integration, mode, target)
    async with support.world(integration, seed, scale) as sandboxes:
        cfg = config_mod.load(support.write_config(sandboxes, folder))
        await _slow_writes(sandboxes)
        watch = RequestWatch(sandboxes)
        process = await anyio.open_process(_command(cfg, integration), stdout=DEVNULL, stderr=DEVNULL)
        try:
            result.killed = await _kill_when(process, watch, mode, target, cfg.state_path)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()
        watch.poll()
        result.writes_at_kill, result.reads_at_kill, result.last_write = (
            watch.writes,
            watch.reads,
            watch.last_write,
        )
        result.pending_after_kill = _pending(cfg.state_path)
        await support.clear_faults(sandboxes)
        restarted = await anyio.run_process(_command(cfg, integration), check=False)
        result.exit_after_restart = restarted.returncode
        result.pending_after_restart = _pending(cfg.state_path)
        result.adopted = _adopted(cfg.state_path)
        problems: list[str] = []
        if restarted.returncode not in (0, 2):
            problems.append(
                f"the restarted sync exited {restarted.returncode}: {restarted.stderr.decode()[-800:]}"
            )
        try:
            result.converged_after = await support.converge(cfg, integration)
        except AssertionError as exc:
            problems.append(str(exc))
        state = await support.final_state(cfg, sandboxes, integration)
    result.verdict = support.compare(state, reference)
    result.verdict.problems[:0] = problems
    if result.pending_after_restart:
        result.verdict.problems.append(
            f"{result.pending_after_restart} journal row(s) still pending after restart"
        )
    result.seconds = time.perf_counter() - started
    return result


def kill_points(profile: Profile, runs: int, rng: random.Random) -> list[tuple[str, int]]:
    """``runs`` kill points, in turn during apply, fetch, a create, a commit, apply again; the points of each
    mode are spread over the whole sync (run n draws inside its own slice of the requests)."""
    points: list[tuple[str, int]] = []
    for n in range(runs):
        mode = ("apply", "fetch", "create", "commit", "apply")[n % 5]
        if mode == "create" and profile.creates == 0:
            mode = "apply"
        total = {"fetch": profile.reads_before_first_write, "create": profile.creates}.get(
            mode, profile.writes
        )
        low = max(1, total * n // runs)
        high = max(low, total * (n + 1) // runs)
        points.append((mode, rng.randint(low, high if mode in ("fetch", "create") else min(high, total - 1))))
    return points


@dataclass
class Summary:
    results: list[KillResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def figures(self) -> str:
        by_mode = {m: sum(1 for r in self.results if r.mode == m and r.killed) for m in MODES}
        killed = sum(1 for r in self.results if r.killed)
        distinct = len(
            {(r.integration, r.mode, r.writes_at_kill, r.reads_at_kill) for r in self.results if r.killed}
        )
        rows = [
            (
                integration,
                sum(1 for r in self.results if r.integration == integration and r.killed),
                sum(r.pending_after_kill for r in self.results if r.integration == integration),
                sum(r.adopted for r in self.results if r.integration == integration),
                sum(r.verdict.duplicates for r in self.results if r.integration == integration),
                sum(r.verdict.links_lost for r in self.results if r.integration == integration),
                sum(r.pending_after_restart for r in self.results if r.integration == integration),
                max((r.converged_after or 0) for r in self.results if r.integration == integration),
                sum(1 for r in self.results if r.integration == integration and not r.ok),
            )
            for integration in dict.fromkeys(r.integration for r in self.results)
        ]
        headers = (
            "integration",
            "kills",
            "pending journal rows left by kills",
            "landed creates adopted",
            "duplicates",
            "links lost",
            "pending after restart",
            "max clean cycles to converge",
            "failed checks",
        )
        return (
            f"kill -9 points tried: {len(self.results)} ({killed} killed; {distinct} distinct points; "
            f"{by_mode['apply']} during apply, {by_mode['create']} while a create was in flight, "
            f"{by_mode['fetch']} during fetch, {by_mode['commit']} during a commit); "
            f"duplicates found: {sum(r.verdict.duplicates for r in self.results)}; "
            f"links lost: {sum(r.verdict.links_lost for r in self.results)}\n" + support.table(headers, rows)
        )


async def run(
    integrations: Sequence[str],
    runs: int,
    folder: Path,
    *,
    seed: int = support.SEED,
    scale: int = SCALE,
    parallel: int = 2,
    report: Any = None,
) -> Summary:
    """``runs`` kill points per integration (``parallel`` worlds at a time); ``report(line)`` after each one."""
    rng = random.Random(seed)
    results: list[KillResult] = []
    gate = anyio.Semaphore(max(1, parallel))

    async def one(integration: str, n: int, mode: str, target: int, reference: FinalState) -> None:
        async with gate:
            where = folder / integration / f"kill-{n}"
            result = await kill_once(integration, where, mode, target, reference, seed=seed, scale=scale)
        results.append(result)
        if report is not None:
            report(result.line())

    for integration in integrations:
        prof = await profile(integration, folder / integration / "profile", seed=seed, scale=scale)
        async with anyio.create_task_group() as group:
            for n, (mode, target) in enumerate(kill_points(prof, runs, rng)):
                group.start_soon(one, integration, n, mode, target, prof.state)
    return Summary(sorted(results, key=lambda r: (r.integration, MODES.index(r.mode), r.target)))


async def _main(args: argparse.Namespace) -> int:
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    chosen = args.integration.split(",") if args.integration else list(support.integrations())
    with tempfile.TemporaryDirectory(prefix="reconciler-crash-") as tmp:
        summary = await run(
            chosen,
            args.runs,
            Path(tmp),
            seed=args.seed,
            scale=args.scale,
            parallel=args.parallel,
            report=lambda line: print(line, file=sys.stderr, flush=True),
        )
    print(summary.figures())
    return 0 if summary.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.crash_harness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--runs", type=int, default=20, help="kill points per integration (default: %(default)s)"
    )
    parser.add_argument("--integration", help="comma-separated integrations (default: every one that exists)")
    parser.add_argument("--seed", type=int, default=support.SEED, help="world and kill-point seed")
    parser.add_argument("--scale", type=int, default=SCALE, help="world scale (default: %(default)s)")
    parser.add_argument(
        "--parallel", type=int, default=2, help="worlds killed at a time (default: %(default)s)"
    )
    return anyio.run(_main, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
