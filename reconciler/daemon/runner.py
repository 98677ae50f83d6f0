"""The daemon's work loop: per entity, a single-flight scheduled lane and an immediate lane beside it.

Each enabled entity gets two worker tasks. The *scheduled* worker runs its on-demand requests, full resyncs and
incremental cycles, one at a time; only its first cycle follows the integration's dependency order (``[entity]
after``, ``links`` lookups). The *immediate* worker runs the records webhooks queued (one batch = one targeted
``engine.run(only=...)``) as soon as they arrive — also while a full sync of the same entity runs, so immediate
work is never starved. The two lanes are serialized per record by :class:`~reconciler.daemon.gating.RecordGate`
(a full sync never overwrites a record a targeted cycle synced after it read it). Different entities run side
by side; the engine's per-system limiters and the transports bound the requests in flight. Each worker asks
:class:`~reconciler.daemon.scheduling.EntitySchedule` what is due, runs it, feeds the outcomes to the per-record
backoff (failed records are held in later cycles and queued again when their wait is over), and sleeps until
the next due time or until new work wakes it.

Stopping (:meth:`Daemon.shutdown`): no new cycle starts, webhooks are refused, running cycles get
``shutdown_timeout`` seconds to finish — their actions are journaled and committed as usual — and only then are
they cancelled. A cancelled cycle leaves ``pending`` journal rows that the next start settles (see
``applying.resolve_pending``), so even that path makes no duplicate. Queued ids are not persisted: the cursor
brings any edit they stood for into the next incremental cycle after a restart.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from reconciler.applying import Gate
from reconciler.cycle import CycleResult, Mode
from reconciler.daemon import reporting
from reconciler.daemon.gating import RecordGate
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.scheduling import EntityKey, EntitySchedule, JobKind, RecordBackoff
from reconciler.daemon.settings import DaemonSettings
from reconciler.daemon.workqueue import WorkQueue
from reconciler.engine import Engine
from reconciler.errors import GuardTripped, ReconcilerError
from reconciler.rules.compiling import CompiledRule

__all__ = ["TARGETED_BATCH", "Clock", "Daemon", "Job", "SystemClock"]

log = logging.getLogger("reconciler.daemon")

#: Most record ids one targeted cycle takes from the queue.
TARGETED_BATCH = 500
#: Seconds /readyz waits for the state store to answer before calling it busy (still ready).
STORE_PROBE_SECONDS = 2.0


class Clock(Protocol):
    """Where the daemon reads time: ``monotonic()`` for scheduling, ``time()`` (Unix) for what people read."""

    def monotonic(self) -> float: ...
    def time(self) -> float: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


@dataclass(frozen=True)
class Job:
    """One cycle to run: its kind, the engine mode, and the record ids of a targeted cycle."""

    kind: JobKind
    mode: Mode
    ids: tuple[str, ...] = ()
    allow_mass_removal: bool = False


@dataclass
class EntityState:
    """One entity's rule, schedule and latest result, as the worker and /readyz see them."""

    key: EntityKey
    rule: CompiledRule
    schedule: EntitySchedule
    gate: RecordGate
    wake: anyio.Event = field(default_factory=anyio.Event)
    """Wakes the scheduled lane (an on-demand request, stopping)."""
    immediate_wake: anyio.Event = field(default_factory=anyio.Event)
    """Wakes the immediate lane (records queued, stopping)."""
    first_cycle: anyio.Event = field(default_factory=anyio.Event)
    """Set once the entity's first cycle ended (whatever its status), or when the daemon stops."""
    running_cycles: int = 0
    """Cycles of the entity in flight: 0, 1, or 2 (a targeted one beside a scheduled one)."""
    last_status: str = "pending"
    last_error: str = ""
    last_success: float | None = None

    @property
    def running(self) -> bool:
        return self.running_cycles > 0


class Daemon:
    """Workers, the immediate queue, the backoff and the metrics of one running daemon.

    ``clock``: None for the system clocks (tests of the decisions use the pure modules with plain numbers).
    """

    def __init__(self, *, engine: Engine, settings: DaemonSettings, clock: Clock | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.entities = self._entities()
        self.metrics = Metrics(self.entities)
        self.queue = WorkQueue()
        self.backoff = RecordBackoff(base=settings.record_backoff, cap=settings.record_backoff_max)
        self.stopping = False
        self._finished = anyio.Event()
        self._scope: anyio.CancelScope | None = None

    def _entities(self) -> dict[EntityKey, EntityState]:
        now = self.clock.monotonic()
        states: dict[EntityKey, EntityState] = {}
        for integration in sorted(self.engine.config.integrations):
            for rule in self.engine.rules(integration):
                key = EntityKey(integration, rule.entity)
                every = self.settings.schedule(
                    str(key), incremental=rule.incremental_seconds, full=rule.full_seconds
                )
                schedule = EntitySchedule.starting(
                    incremental_seconds=every.incremental, full_seconds=every.full, now=now
                )
                gate = RecordGate(on_veto=functools.partial(self._requeue, key))
                states[key] = EntityState(key, rule, schedule, gate)
        self.settings.check_schedules([str(k) for k in states], str(self.engine.config.path))
        return states

    # ------------------------------------------------------------------ called by the HTTP server

    def entity(self, integration: str, entity: str) -> EntityKey | None:
        """The key of an enabled entity, or None."""
        key = EntityKey(integration, entity)
        return key if key in self.entities else None

    def webhook_secrets(self, key: EntityKey) -> list[str]:
        """Secrets a webhook for ``key`` may prove: the daemon's, and the entity's source system's."""
        cfg = self.engine.config
        secrets = [cfg.webhook_secret] if cfg.webhook_secret is not None else []
        source = cfg.systems.get(self.entities[key].rule.source_system)
        if source is not None and source.webhook_secret is not None:
            secrets.append(source.webhook_secret)
        return [s.reveal() for s in secrets]

    def submit(self, key: EntityKey, source_ids: Sequence[str]) -> tuple[int, int]:
        """Queue records for an immediate targeted cycle; returns ``(queued, deduplicated)``."""
        queued, duplicates = self.queue.add(key, source_ids)
        self.metrics.queue_added.inc(queued)
        self.metrics.queue_deduplicated.inc(duplicates)
        self._queue_gauges(key)
        self.entities[key].immediate_wake.set()
        return queued, duplicates

    def _requeue(self, key: EntityKey, source_id: str) -> None:
        """A scheduled action vetoed by the record gate: one more targeted cycle settles the record."""
        self.queue.add(key, [source_id])
        self._queue_gauges(key)
        self.entities[key].immediate_wake.set()

    def request_cycle(self, key: EntityKey, *, full: bool, allow_mass_removal: bool = False) -> bool:
        """Ask for an on-demand cycle; False when an equivalent one is pending already.

        ``allow_mass_removal`` is the operator's override of the removal guard for that one cycle (the CLI's
        ``sync --allow-mass-removal`` cannot run beside the daemon: the store has a single writer)."""
        accepted = self.queue.request(
            key, "full" if full else "incremental", allow_mass_removal=allow_mass_removal
        )
        if not accepted:
            self.metrics.queue_deduplicated.inc()
        self.entities[key].wake.set()
        return accepted

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether every entity is below the failure threshold (and the daemon is not stopping), and why."""
        threshold = self.settings.readiness_failures
        entities = {str(k): reporting.entity_status(s, threshold) for k, s in self.entities.items()}
        failing = any(s.schedule.consecutive_failures >= threshold for s in self.entities.values())
        ready = not failing and not self.stopping
        return ready, {"ready": ready, "stopping": self.stopping, "entities": entities}

    def statistics(self) -> dict[str, Any]:
        """Queue counters and, per entity, its schedule state (for debugging and tests)."""
        now = self.clock.monotonic()
        return {
            "queue": self.queue.statistics()._asdict(),
            "entities": {
                str(k): {
                    "running": s.running_cycles,
                    "failures": s.schedule.consecutive_failures,
                    "next_incremental_in": max(0.0, s.schedule.next_incremental - now),
                    "next_full_in": max(0.0, s.schedule.next_full - now),
                    "backing_off": self.backoff.waiting(k, now),
                }
                for k, s in self.entities.items()
            },
        }

    async def check_store(self) -> str | None:
        """None when the state store answers (or is busy writing); otherwise the problem."""
        with anyio.move_on_after(STORE_PROBE_SECONDS):
            try:
                await self.engine.store.schema_version()
            except ReconcilerError as exc:
                return str(exc)
        return None

    # ------------------------------------------------------------------ life cycle

    async def run(self) -> None:
        """Run every entity's worker until :meth:`stop` (and the running cycles end) or cancellation."""
        try:
            async with anyio.create_task_group() as group:
                self._scope = group.cancel_scope
                for state in self.entities.values():
                    group.start_soon(self._worker, state, name=f"worker {state.key}")
                    group.start_soon(self._immediate_worker, state, name=f"immediate worker {state.key}")
        finally:
            self._finished.set()

    def stop(self) -> None:
        """Start no new cycle; each worker returns when its running cycle (if any) ends."""
        if not self.stopping:
            self.stopping = True
            for state in self.entities.values():
                state.wake.set()
                state.immediate_wake.set()
                state.first_cycle.set()

    async def shutdown(self, grace: float) -> bool:
        """Stop, wait up to ``grace`` seconds for running cycles, then cancel them; True when none was cut."""
        self.stop()
        running = [str(s.key) for s in self.entities.values() if s.running]
        if running:
            log.info(
                "waiting up to %g s for running cycles: %s",
                grace,
                ", ".join(running),
                extra={"event": "draining", "running": running},
            )
        with anyio.move_on_after(grace):
            await self._finished.wait()
        if self._finished.is_set():
            return True
        log.warning(
            "shutdown timeout (%g s) reached: cancelling running cycles; their pending actions are settled "
            "at the next start",
            grace,
            extra={"event": "shutdown_timeout"},
        )
        self.abort()
        await self._finished.wait()
        return False

    def abort(self) -> None:
        """Cancel every worker now (a second signal, or the shutdown timeout)."""
        self.stop()
        if self._scope is not None:
            self._scope.cancel()

    # ------------------------------------------------------------------ workers

    def dependencies(self, state: EntityState) -> list[EntityState]:
        """The entities that must run before ``state``'s first cycle: ``[entity] after`` and ``links`` lookups."""
        names = set(state.rule.after)
        names.update(spec.links_entity for spec in state.rule.lookups.values() if spec.kind == "links")
        keys = (EntityKey(state.key.integration, name) for name in sorted(names - {state.key.entity}))
        return [self.entities[k] for k in keys if k in self.entities]

    async def _worker(self, state: EntityState) -> None:
        """The scheduled lane: on-demand, full and incremental cycles."""
        key = state.key
        for dependency in self.dependencies(state):  # first cycles in dependency order, then each on its own
            await dependency.first_cycle.wait()
        while not self.stopping:
            now = self.clock.monotonic()
            job = self._next_job(state, now)
            if job is not None:
                await self._run_job(state, job)
                continue
            delay = state.schedule.wait_seconds(
                now, queued=False, requested=self.queue.requested(key), delayed_at=None
            )
            with anyio.move_on_after(delay):
                await state.wake.wait()
            if state.wake.is_set():
                state.wake = anyio.Event()

    async def _immediate_worker(self, state: EntityState) -> None:
        """The immediate lane: targeted cycles of the queued records (and of retries that fell due)."""
        key = state.key
        while not self.stopping:
            now = self.clock.monotonic()
            self.queue.promote(key, now)
            queued = self.queue.depth(key) > 0
            if state.schedule.next_job(now, queued=queued, requested=False) == "targeted":
                await self._run_job(
                    state, Job("targeted", "auto", tuple(self.queue.take(key, TARGETED_BATCH)))
                )
                continue
            delay = state.schedule.immediate_wait(now, queued=queued, delayed_at=self.queue.next_delayed(key))
            self._queue_gauges(key)
            with anyio.move_on_after(delay):
                await state.immediate_wake.wait()
            if state.immediate_wake.is_set():
                state.immediate_wake = anyio.Event()

    def _next_job(self, state: EntityState, now: float) -> Job | None:
        """The scheduled lane's next cycle, if one is due."""
        key = state.key
        kind = state.schedule.next_job(now, queued=False, requested=self.queue.requested(key))
        if kind == "requested":
            request = self.queue.take_request(key)
            assert request is not None
            return Job(
                kind,
                "full" if request.mode == "full" else "auto",
                allow_mass_removal=request.allow_mass_removal,
            )
        if kind == "full":
            return Job(kind, "full")
        if kind == "incremental":
            return Job(kind, "auto")
        return None

    async def _run_job(self, state: EntityState, job: Job) -> None:
        key = state.key
        started = (
            self.clock.monotonic()
        )  # one instant for both: a record is either still waiting or due again
        hold = self.backoff.holds(key, started, wall_now=self.clock.time())
        # held for their backoff until now: re-read as soon as it is over, not HELD_RECHECK_AFTER later
        recheck = self.backoff.expired(key, started)
        for source_id in job.ids:
            hold.pop(source_id, None)  # queued again on purpose: a webhook or a due retry
        state.running_cycles += 1
        self.metrics.in_progress.labels(*key).set(state.running_cycles)
        self._queue_gauges(key)
        result: CycleResult | None = None
        error: BaseException | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                gate: Gate | None = None
                if job.kind == "targeted":
                    await stack.enter_async_context(state.gate.holding(job.ids))
                else:
                    gate = await stack.enter_async_context(state.gate.scheduled())
                run = await self.engine.run(
                    key.integration,
                    entities=[key.entity],
                    mode=job.mode,
                    apply=True,
                    allow_mass_removal=job.allow_mass_removal,
                    only={key.entity: list(job.ids)} if job.kind == "targeted" else None,
                    hold={key.entity: hold} if hold else None,
                    recheck={key.entity: recheck} if recheck else None,
                    gate=gate,
                )
            result = run.results[0]
        except Exception as exc:  # a daemon outlives any one cycle; the error is logged and counted
            error = exc
        finally:
            state.running_cycles -= 1
            self.metrics.in_progress.labels(*key).set(state.running_cycles)
        self._finish(state, job, result, error, self.clock.monotonic() - started)

    def _finish(
        self,
        state: EntityState,
        job: Job,
        result: CycleResult | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        key, now = state.key, self.clock.monotonic()
        status = reporting.status_of(result, error)
        mode = reporting.mode_of(job, result)
        ok = status in ("ok", "partial")
        state.schedule.finished("full" if mode == "full" else job.kind, now, ok=ok)
        state.last_status = status
        if job.kind != "targeted":  # dependants wait for the entity's first scheduled cycle, not a webhook's
            state.first_cycle.set()
        state.last_error = reporting.error_text(result, error)
        if ok:
            state.last_success = self.clock.time()
        self.metrics.observe_cycle(
            key, mode=mode, status=status, seconds=seconds, finished_at=self.clock.time()
        )
        self.metrics.consecutive_failures.labels(*key).set(state.schedule.consecutive_failures)
        if error is not None and not isinstance(error, GuardTripped):
            self.metrics.observe_error(reporting.system_of(error), reporting.leaf(error))
        if result is not None:
            self._settle_records(state, result, now)
        elif job.ids and status != "guard":
            self.queue.add(key, job.ids)  # the cycle failed as a whole: its records wait for the retry
        self.metrics.backing_off.labels(*key).set(self.backoff.waiting(key, now))
        self._queue_gauges(key)
        retry = (
            state.schedule.immediate_retry_delay() if job.kind == "targeted" else state.schedule.retry_delay()
        )
        reporting.log_cycle(log, key, mode, status, result, error, seconds, retry=retry)

    def _settle_records(self, state: EntityState, result: CycleResult, now: float) -> None:
        """Backoff bookkeeping: failed records wait and come back through the queue; successes are forgotten."""
        key = state.key
        self.metrics.observe_outcomes(key, result.outcomes, target_system=state.rule.target_system)
        for source_id, due in self.backoff.record(key, result.outcomes, now):
            self.queue.add_after(key, source_id, due)
        self.queue.forget(key, [o.source_id for o in result.outcomes if o.ok])

    def _queue_gauges(self, key: EntityKey) -> None:
        self.metrics.queue_depth.labels(*key).set(self.queue.depth(key))
        self.metrics.queue_delayed.labels(*key).set(self.queue.delayed(key))
