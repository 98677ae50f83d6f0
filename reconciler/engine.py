"""Wiring: config → connectors, rules and state store → entity cycles in order.

The only module (with the CLI and the daemon) that knows the concrete connector registry and the SQLite store.
One :class:`Engine` lives for a whole command or daemon: it owns one HTTP session and one limiter per system,
so the per-system concurrency bound holds across every entity that talks to that system. Targeted cycles (the
daemon's immediate lane) act through a second set of limiters, so a full sync's backlog of actions never queues
them; the transport still bounds the requests in flight per system.
"""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from pathlib import Path

import aiohttp
import anyio
import msgspec

from reconciler import config as config_mod
from reconciler.applying import Gate, now_iso
from reconciler.connectors import registry
from reconciler.connectors.base import Connector
from reconciler.connectors.http import make_session
from reconciler.cycle import CycleResult, Mode, Progress, run_entity
from reconciler.errors import ConfigError
from reconciler.model import Outcome, Plan
from reconciler.rules import compiling, loading
from reconciler.rules.compiling import CompiledRule
from reconciler.state.sqlite import SqliteStateStore
from reconciler.state.store import RunRow

#: Cyclic-GC thresholds while an engine is open (the default is (700, 10, 10)). A cycle allocates millions of
#: long-lived, acyclic objects (records, desired records, links, target snapshots); at the default thresholds
#: the collector keeps re-scanning them — 14% of the CPU of a 100k-record full cycle, more at 1M. Reference
#: cycles are still collected, after 100 000 net allocations instead of 700.
GC_THRESHOLDS = (100_000, 50, 100)


class IntegrationRun(msgspec.Struct):
    """Everything one ``plan``/``sync`` of one integration produced."""

    integration: str
    run_id: str
    results: list[CycleResult]

    @property
    def plan(self) -> Plan:
        return Plan(created_at=now_iso(), entities=tuple(r.plan for r in self.results))

    @property
    def outcomes(self) -> dict[str, list[Outcome]]:
        return {f"{r.plan.integration}/{r.plan.entity}": r.outcomes for r in self.results if r.applied}

    @property
    def failures(self) -> int:
        return sum(r.failures for r in self.results)


class Engine:
    """Connectors, limiters, compiled rules and the state store for one configuration."""

    def __init__(self, cfg: config_mod.Config, store: SqliteStateStore) -> None:
        self.config = cfg
        self.store = store
        self.sessions: list[aiohttp.ClientSession] = []
        self.connectors: dict[str, Connector] = {}
        self.limiters: dict[str, anyio.CapacityLimiter] = {}
        self.targeted_limiters: dict[str, anyio.CapacityLimiter] = {}
        self._rules: dict[str, list[CompiledRule]] = {}
        self._live_runs: set[str] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, cfg: config_mod.Config, *, lock: bool = True) -> AsyncIterator[Engine]:
        """Open the state store (migrating it) and one HTTP session per system.

        While an engine is open the cyclic garbage collector runs less often (:data:`GC_THRESHOLDS`).
        """
        store = SqliteStateStore(cfg.state_path)
        await store.open(lock=lock)
        engine = cls(cfg, store)
        previous_gc = gc.get_threshold()
        gc.set_threshold(*(max(old, new) for old, new in zip(previous_gc, GC_THRESHOLDS, strict=True)))
        try:
            for name, system in cfg.systems.items():
                session = make_session(system.http, limit=system.http.concurrency)
                engine.sessions.append(session)
                engine.connectors[name] = registry.create(system, session)
                engine.limiters[name] = anyio.CapacityLimiter(system.http.concurrency)
                engine.targeted_limiters[name] = anyio.CapacityLimiter(system.http.concurrency)
            yield engine
        finally:
            gc.set_threshold(*previous_gc)
            for session in engine.sessions:
                await session.close()
            await store.close()

    def rules(self, integration: str) -> list[CompiledRule]:
        """The integration's compiled rules in execution order (cached)."""
        if integration not in self._rules:
            self._rules[integration] = load_rules(self.config, integration)
        return self._rules[integration]

    async def run(
        self,
        integration: str,
        *,
        entities: Sequence[str] | None = None,
        mode: Mode = "auto",
        apply: bool = False,
        allow_mass_removal: bool = False,
        progress: Progress | None = None,
        only: Mapping[str, Sequence[str]] | None = None,
        hold: Mapping[str, Mapping[str, str]] | None = None,
        recheck: Mapping[str, Collection[str]] | None = None,
        gate: Gate | None = None,
        compare_all: bool = False,
    ) -> IntegrationRun:
        """Plan (and with ``apply``, sync) the integration's entities in order.

        A guard tripped by one entity stops the run before that entity acts (``GuardTripped`` propagates);
        entities already applied keep their committed state. ``only`` (entity → source ids) makes the named
        entities' cycles targeted at those records (see ``cycle.run_entity``); ``hold`` (entity → source id →
        reason) defers those records' actions; ``recheck`` (entity → source ids) names held records an incremental
        cycle re-reads however recently they were checked. ``gate`` serializes each action with a cycle of the
        same entity running beside this one (see ``applying``). ``compare_all``: full cycles compare every pair,
        even those read exactly as when last found in agreement (see ``reconciler.agreement``).
        """
        rules = self.rules(integration)
        if entities:
            unknown = sorted(set(entities) - {r.entity for r in rules})
            if unknown:
                known = ", ".join(r.entity for r in rules)
                raise ConfigError(f"unknown entity {', '.join(unknown)} for {integration}; known: {known}")
            rules = [r for r in rules if r.entity in entities]
        run_id = f"{now_iso()}-{uuid.uuid4().hex[:6]}"
        await self.store.start_run(
            RunRow(
                run_id=run_id,
                integration=integration,
                mode=("sync" if apply else "plan") + f"/{mode}",
                started_at=now_iso(),
            )
        )
        results: list[CycleResult] = []
        status = "failed"
        self._live_runs.add(run_id)
        try:
            for rule in rules:
                results.append(
                    await run_entity(
                        rule,
                        connectors=self.connectors,
                        store=self.store,
                        limiters=self.limiters if only is None else self.targeted_limiters,
                        run_id=run_id,
                        mode=mode,
                        apply=apply,
                        allow_mass_removal=allow_mass_removal,
                        default_share=self.config.max_inactivate_share,
                        progress=progress,
                        only=(only or {}).get(rule.entity),
                        hold=(hold or {}).get(rule.entity),
                        recheck=(recheck or {}).get(rule.entity, ()),
                        gate=gate,
                        live_runs=frozenset(self._live_runs - {run_id}),
                        compare_all=compare_all,
                    )
                )
            status = "ok"
        except anyio.get_cancelled_exc_class():
            status = "cancelled"
            raise
        finally:
            self._live_runs.discard(run_id)
            summary = msgspec.json.encode(
                {f"{r.plan.entity}": {"changes": r.plan.changes, "failures": r.failures} for r in results}
            ).decode()
            # Shielded: a run cancelled by shutdown must still be recorded as ended, not left "running".
            with anyio.CancelScope(shield=True):
                await self.store.finish_run(run_id, status, summary)
        return IntegrationRun(integration=integration, run_id=run_id, results=results)


def load_rules(cfg: config_mod.Config, integration: str) -> list[CompiledRule]:
    """Load and compile an integration's rule files against the configured systems' catalogues."""
    if integration not in cfg.integrations:
        known = ", ".join(sorted(cfg.integrations)) or "none"
        raise ConfigError(f"{cfg.path}: integration {integration!r} is not configured (configured: {known})")
    section = cfg.integrations[integration]
    folder = section.rules_dir or loading.builtin_rules_dir()
    folder = Path(folder)
    catalogs = registry.catalogs(cfg.systems)
    return compiling.load_integration(
        folder, integration, catalogs=catalogs, options=section.options, entities=section.entities
    )
