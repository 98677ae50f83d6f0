"""Fault-injection suite: full and incremental cycles of every integration against misbehaving sandboxes.

One *scenario* = a fresh generated world; faults injected on all of the integration's sandboxes at 10 % of the
requests (one kind, or every kind mixed); a full sync, people editing both systems, two incremental syncs, all
under faults; then the faults stop and clean cycles run until a *full* plan is empty. The final state must match
a reference run of the same world and edits without faults: same links, no duplicates, every record of every
system equal, journal resolved, and (``--cli``) ``reconciler plan`` exiting 0.

Fault kinds: ``5xx`` (502/503 gateway pages), ``429`` (``Retry-After: 1``), ``timeout`` (the server answers
after the client gave up), ``reset`` (TCP RST, no answer), ``malformed`` (truncated JSON with HTTP 200),
``html`` (the system's HTML error page; IXC's comes with HTTP 200), ``ixc-200-error`` (IXC's HTTP-200
``{"type": "error"}`` refusal, on IXC writes) and ``lost`` (the request is served, then the answer is lost).

    python -m tests.reliability.fault_suite [--quick] [--only mixed,5xx,ozmap-ixc] [--cli] [--seed 7]

prints the fault table and exits 1 when a scenario did not converge to its reference. Without ``--quick``: every
integration x (mixed + one scenario per kind) at scale 400 (~5 min); ``--quick`` is the CI set (the pytest
module): every integration mixed at scale 400, plus ozmap-ixc one kind at a time at scale 200 with waits kept
short (the first ten 429s ask for 1 s, later ones for 0 s; the client gives up after 0.5 s).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec

from reconciler import config as config_mod
from reconciler.engine import Engine
from reconciler.sandbox import runner
from tests.reliability import support
from tests.reliability.support import CycleLog, Edit, FinalState, Verdict

KINDS = ("5xx", "429", "timeout", "reset", "malformed", "html", "ixc-200-error", "lost")
#: Share of requests that get a fault.
RATE = 0.10
#: Malformed answers hit OZmap writes too: a 200 with a garbled body is not taken for done (it was BUG-1).
MALFORMED_OZMAP_WRITES = True
IXC_REFUSAL = {"type": "error", "message": "Não foi possível salvar o registro, tente novamente!<br />"}


@dataclass(frozen=True)
class Scenario:
    """Which faults, on which integration's world, how big, and how long the client waits."""

    integration: str
    name: str
    kinds: tuple[str, ...]
    scale: int = support.SCALE
    rate: float = RATE
    client_timeout: float = 1.0
    """The client's timeout while faults run; a ``timeout`` fault stalls 0.5 s longer."""
    quick_429: bool = False
    """Only the first ten 429s ask for ``Retry-After: 1``, later ones for 0 (keeps a 10 % 429 run short)."""

    @property
    def title(self) -> str:
        return f"{self.integration} {self.name}"


def scenarios(*, quick: bool = False, seed_scale: int | None = None) -> list[Scenario]:
    """The integrations that exist now: all kinds mixed, and one scenario per kind (``quick``: ozmap-ixc
    only, on a smaller world with short waits)."""
    out: list[Scenario] = []
    for integration, systems in support.integrations().items():
        kinds = tuple(k for k in KINDS if k != "ixc-200-error" or "ixc" in systems)
        scale = seed_scale or support.SCALE
        out.append(Scenario(integration, "mixed", kinds, scale=scale))
        if not quick:
            out.extend(Scenario(integration, kind, (kind,), scale=scale) for kind in kinds)
        elif integration == "ozmap-ixc":
            small = seed_scale or 200
            out.extend(
                Scenario(integration, kind, (kind,), scale=small, client_timeout=0.5, quick_429=True)
                for kind in kinds
            )
    return out


def fault_rules(scenario: Scenario, kind: str, rate: float, system: str) -> list[tuple[str, dict[str, Any]]]:
    """(control route, rule body) pairs injecting ``kind`` at ``rate`` of ``system``'s requests."""
    if kind == "5xx":
        return [
            ("faults", {"kind": "error", "status": 503, "rate": rate / 2}),
            ("faults", {"kind": "error", "status": 502, "rate": rate / 2}),
        ]
    if kind == "429":
        if scenario.quick_429:
            return [
                ("faults", {"kind": "429", "seconds": 1, "rate": rate, "count": 10}),
                ("faults", {"kind": "429", "seconds": 0, "rate": rate}),
            ]
        return [("faults", {"kind": "429", "seconds": 1, "rate": rate})]
    if kind == "timeout":
        return [("faults", {"kind": "timeout", "seconds": scenario.client_timeout + 0.5, "rate": rate})]
    if kind == "malformed" and system == "ozmap" and not MALFORMED_OZMAP_WRITES:
        return [("faults", {"kind": kind, "rate": rate, "method": "GET"})]
    if kind in ("reset", "malformed", "html", "lost"):
        return [("faults", {"kind": kind, "rate": rate})]
    if kind == "ixc-200-error":
        if system != "ixc":
            return []
        body = {"mode": "canned", "listing": False, "rate": rate, "status": 200, "body": IXC_REFUSAL}
        return [("answers", body)]
    raise ValueError(f"unknown fault kind {kind!r}")


@dataclass
class ScenarioResult:
    """Figures of one scenario (one row of the fault table) and its verdict."""

    scenario: Scenario
    requests: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    faulty: CycleLog = field(default_factory=CycleLog)
    converged_after: int | None = None
    plan_exit: int | None = None
    quarantined: int = 0
    edits: list[Edit] = field(default_factory=list)
    verdict: Verdict = field(default_factory=Verdict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.verdict.ok
            and self.converged_after is not None
            and self.plan_exit in (None, 0)
            and not self.faulty.guards
        )

    def explain(self) -> str:
        lines = [f"{self.scenario.title}: {'ok' if self.ok else 'FAILED'} ({self.seconds:.0f} s)"]
        lines += [f"  problem: {p}" for p in self.verdict.problems]
        lines += [f"  guard tripped under faults: {g}" for g in self.faulty.guards]
        if self.plan_exit not in (None, 0):
            lines.append(f"  `reconciler plan` exited {self.plan_exit}")
        lines += [f"  cycle stopped under faults (allowed): {a[:200]}" for a in self.faulty.aborted]
        lines += [f"  edit: {e.why} ({e.method} {e.path})" for e in self.edits]
        return "\n".join(lines)


async def _install(sandboxes: runner.Sandboxes, scenario: Scenario) -> None:
    for system in sandboxes:
        for kind in scenario.kinds:
            for route, body in fault_rules(scenario, kind, scenario.rate / len(scenario.kinds), system.name):
                await support.control(system.url, "POST", route, body)


async def _injected(sandboxes: runner.Sandboxes) -> tuple[int, dict[str, int]]:
    served, counts = 0, dict.fromkeys(KINDS, 0)
    for system in sandboxes:
        stats = await support.control(system.url, "GET", "stats")
        served += stats["served"]
        for kind, n in stats["injected"].items():
            counts["5xx" if kind == "error" else kind] += n
        for rule in await support.control(system.url, "GET", "answers"):
            if rule["mode"] == "canned":
                counts["ixc-200-error"] += rule["acted"]
    return served, counts


async def run_scenario(
    scenario: Scenario,
    folder: Path,
    *,
    seed: int = support.SEED,
    cli: bool = False,
    references: dict[Any, FinalState] | None = None,
) -> ScenarioResult:
    """Run one scenario in ``folder`` and compare it with its reference (cached in ``references``)."""
    started = time.perf_counter()
    result = ScenarioResult(scenario)
    integration, scale = scenario.integration, scenario.scale
    async with support.world(integration, seed, scale) as sandboxes:
        faulty_http = {**support.FAST_HTTP, "timeout": scenario.client_timeout}
        faulty = config_mod.load(
            support.write_config(sandboxes, folder, name="faulty.toml", http=faulty_http)
        )
        clean = config_mod.load(support.write_config(sandboxes, folder, name="clean.toml"))
        await _install(sandboxes, scenario)
        async with Engine.open(faulty) as engine:
            first = await support.sync_once(engine, integration, result.faulty, mode="full")
            pending = support.unsettled(first)
            result.edits = await support.choose_edits(engine, integration, sandboxes, pending)
            await support.apply_edits(sandboxes, result.edits)  # control routes are never faulted
            await support.sync_once(engine, integration, result.faulty)
            await support.sync_once(engine, integration, result.faulty)
            result.retries = sum(c.statistics().get("retries", 0) for c in engine.connectors.values())
        result.requests, result.injected = await _injected(sandboxes)
        await support.clear_faults(sandboxes)
        try:
            result.converged_after = await support.converge(clean, integration)
        except AssertionError as exc:
            result.verdict.problems.append(str(exc))
        if cli:
            command = [sys.executable, "-m", "reconciler", "plan", "--config", str(clean.path)]
            done = await anyio.run_process([*command, "--integration", integration], check=False)
            result.plan_exit = done.returncode
        state = await support.final_state(clean, sandboxes, integration)
    result.quarantined = state.quarantined
    key = (integration, seed, scale, msgspec.json.encode(result.edits))
    cache = references if references is not None else {}
    if key not in cache:
        cache[key] = await reference(
            folder / "reference", integration, seed=seed, scale=scale, edits=result.edits
        )
    verdict = support.compare(state, cache[key])
    verdict.problems[:0] = result.verdict.problems
    result.verdict = verdict
    result.seconds = time.perf_counter() - started
    return result


async def reference(
    folder: Path, integration: str, *, seed: int, scale: int, edits: Sequence[Edit]
) -> FinalState:
    """The same world and the same edits, without faults."""
    async with support.world(integration, seed, scale) as sandboxes:
        cfg = config_mod.load(support.write_config(sandboxes, folder))
        log = CycleLog()
        async with Engine.open(cfg) as engine:
            await support.sync_once(engine, integration, log, mode="full")
            await support.apply_edits(sandboxes, edits)
            await support.sync_once(engine, integration, log)
            await support.sync_once(engine, integration, log)
        await support.converge(cfg, integration)
        if log.aborted or log.guards or log.failures:
            raise AssertionError(f"{integration}: the reference run itself failed: {log}")
        return await support.final_state(cfg, sandboxes, integration)


HEADERS = (
    "scenario",
    "scale",
    "requests",
    *KINDS,
    "retries",
    "failed actions",
    "aborted cycles",
    "quarantined",
    "converged after",
    "duplicates",
    "links lost",
)


def render(results: Sequence[ScenarioResult]) -> str:
    """The fault table: faults injected by kind, retries, quarantined, clean cycles to converge."""
    rows = [
        (
            r.scenario.title + ("" if r.ok else " (FAILED)"),
            r.scenario.scale,
            r.requests,
            *(r.injected.get(k, 0) for k in KINDS),
            r.retries,
            r.faulty.failures,
            len(r.faulty.aborted),
            r.quarantined,
            r.converged_after if r.converged_after is not None else "never",
            r.verdict.duplicates,
            r.verdict.links_lost,
        )
        for r in results
    ]
    note = (
        f"Faults on {RATE:.0%} of the requests of every sandbox during 3 cycles (full; people edit; incremental "
        "x2). 'failed actions' and 'aborted cycles' happened under faults and were retried later; 'converged "
        "after' = clean cycles until a full plan was empty; duplicates and links lost are counted against a "
        "fault-free run of the same world and edits."
    )
    return support.table(HEADERS, rows) + "\n" + note


async def _main(args: argparse.Namespace) -> int:
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # injected resets log tracebacks
    wanted = set(args.only.split(",")) if args.only else None
    chosen = [
        s
        for s in scenarios(quick=args.quick, seed_scale=args.scale)
        if wanted is None or {s.name, s.integration, s.title} & wanted
    ]
    results: list[ScenarioResult] = []
    references: dict[Any, FinalState] = {}
    with tempfile.TemporaryDirectory(prefix="reconciler-faults-") as tmp:
        for n, scenario in enumerate(chosen):
            folder = Path(tmp) / f"{n}-{scenario.integration}-{scenario.name}"
            result = await run_scenario(scenario, folder, seed=args.seed, cli=args.cli, references=references)
            results.append(result)
            print(result.explain(), file=sys.stderr, flush=True)
    print(render(results))
    return 0 if all(r.ok for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.fault_suite",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="the CI set of scenarios")
    parser.add_argument(
        "--only", help="comma-separated scenario names or integrations (mixed, 5xx, ozmap-ixc…)"
    )
    parser.add_argument("--cli", action="store_true", help="also check that `reconciler plan` exits 0")
    parser.add_argument("--seed", type=int, default=support.SEED, help="world seed (default: %(default)s)")
    parser.add_argument(
        "--scale", type=int, help="world scale of every scenario (default: 400; quick kinds 200)"
    )
    return anyio.run(_main, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
