"""Pure scheduling decisions of the daemon: which cycle an entity runs next, when, and which records wait.

Nothing here sleeps, reads a clock or does I/O: every method takes ``now`` (seconds on a monotonic clock), so
tests drive it with plain numbers. The runner owns the clock and the waiting.

Per entity, :class:`EntitySchedule` decides between four kinds of cycle, in this order of precedence:

1. ``targeted`` — records queued by webhooks (or due for a retry): served ahead of everything scheduled;
2. ``requested`` — an on-demand cycle (``POST /sync/...``);
3. ``full`` — the full resync, every ``full_seconds``;
4. ``incremental`` — every ``incremental_seconds``; the first one runs at start (the engine makes it full when
   the entity has no cursor yet).

Targeted cycles run in their own lane, beside the scheduled ones (see :mod:`reconciler.daemon.gating`): a long
full sync never holds back immediate work.

A cycle that raises (a system down, a guard tripped) makes its lane wait ``retry_delay`` before it runs
anything again — 1 s, 2 s, 4 s … capped at the entity's incremental interval — and the scheduled work it was
doing stays due, so it runs again once the wait is over. Each lane backs off on its own failures; readiness
counts the consecutive failures of either (:attr:`EntitySchedule.consecutive_failures`).

:class:`RecordBackoff` is the per-record half, like a controller's rate-limited work queue: a record whose
action failed waits ``base · 2^(failures-1)`` seconds (capped) before it is acted on again; meanwhile scheduled
cycles *hold* it (its actions become skips with a readable reason), so one bad record never blocks the rest or
the cursor. A success forgets it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from reconciler.model import Outcome

__all__ = [
    "CYCLE_RETRY_BASE",
    "EntityKey",
    "EntitySchedule",
    "JobKind",
    "RecordBackoff",
    "backoff_delay",
]

JobKind = Literal["targeted", "requested", "full", "incremental"]

#: First wait after a failed cycle, in seconds; doubles per consecutive failure up to the incremental interval.
CYCLE_RETRY_BASE = 1.0
#: Seconds an idle immediate lane sleeps when nothing is queued or delayed (new work wakes it at once).
IDLE_WAIT = 3600.0
#: Outcome kinds that are not attempts at changing the target (a held record's skip is one of them).
NOT_ATTEMPTS = frozenset({"skip", "quarantine"})


class EntityKey(NamedTuple):
    """One entity of one integration; ``str()`` is ``integration/entity``."""

    integration: str
    entity: str

    def __str__(self) -> str:
        return f"{self.integration}/{self.entity}"


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """``base · 2^(failures-1)``, at most ``cap``; 0 for no failure."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 62)))


@dataclass
class EntitySchedule:
    """When one entity's next cycles are due, and how its last cycles went."""

    incremental_seconds: float
    full_seconds: float
    next_incremental: float
    next_full: float
    failures: int = 0
    """Consecutive failed scheduled cycles (0 after a success)."""
    retry_at: float = 0.0
    """After a failed scheduled cycle, no scheduled cycle starts before this time."""
    immediate_failures: int = 0
    """Consecutive failed targeted cycles."""
    immediate_retry_at: float = 0.0
    """After a failed targeted cycle, no targeted cycle starts before this time."""

    @classmethod
    def starting(cls, *, incremental_seconds: float, full_seconds: float, now: float) -> EntitySchedule:
        """A schedule whose first (incremental, possibly promoted to full by the engine) cycle is due now."""
        return cls(
            incremental_seconds=incremental_seconds,
            full_seconds=full_seconds,
            next_incremental=now,
            next_full=now + full_seconds,
        )

    @property
    def consecutive_failures(self) -> int:
        """The longer run of consecutive failures of the two lanes (what readiness reports)."""
        return max(self.failures, self.immediate_failures)

    def next_job(self, now: float, *, queued: bool, requested: bool) -> JobKind | None:
        """The cycle to run now, or None when nothing is due (or its lane is backing off). Queued records
        (``targeted``) come first; the immediate lane asks with ``requested=False``, the scheduled one with
        ``queued=False``."""
        if queued and now >= self.immediate_retry_at:
            return "targeted"
        if now < self.retry_at:
            return None
        if requested:
            return "requested"
        if now >= self.next_full:
            return "full"
        if now >= self.next_incremental:
            return "incremental"
        return None

    def wait_seconds(self, now: float, *, queued: bool, requested: bool, delayed_at: float | None) -> float:
        """Seconds until something may be due, assuming no new work arrives (0 = run now).

        ``delayed_at`` is when the first record waiting for a retry becomes due (None: no such record).
        """
        if self.next_job(now, queued=queued, requested=requested) is not None:
            return 0.0
        if now < self.retry_at and (queued or requested):
            return self.retry_at - now
        due = min(self.next_full, self.next_incremental)
        if delayed_at is not None:
            due = min(due, delayed_at)
        return max(0.0, max(due, self.retry_at) - now)

    def immediate_wait(self, now: float, *, queued: bool, delayed_at: float | None) -> float:
        """Seconds until the immediate lane may have work, assuming none arrives (0 = run now)."""
        if queued:
            return max(0.0, self.immediate_retry_at - now)
        if delayed_at is None:
            return IDLE_WAIT
        return max(0.0, max(delayed_at, self.immediate_retry_at) - now)

    def finished(self, kind: JobKind, now: float, *, ok: bool) -> None:
        """Record the end of a cycle. Pass ``full`` for any cycle that read everything (a first incremental
        cycle without a cursor, a requested full one): it resets both intervals."""
        if kind == "targeted":
            self.immediate_failures = 0 if ok else self.immediate_failures + 1
            self.immediate_retry_at = now + self.immediate_retry_delay() if not ok else 0.0
            return
        if not ok:
            self.failures += 1
            self.retry_at = now + self.retry_delay()
            return
        self.failures = 0
        self.retry_at = 0.0
        if kind == "full":
            self.next_full = now + self.full_seconds
            self.next_incremental = now + self.incremental_seconds
        elif kind in ("incremental", "requested"):
            self.next_incremental = now + self.incremental_seconds

    def retry_delay(self) -> float:
        """The scheduled lane's wait after its current run of consecutive failures."""
        cap = max(CYCLE_RETRY_BASE, self.incremental_seconds)
        return backoff_delay(self.failures, CYCLE_RETRY_BASE, cap)

    def immediate_retry_delay(self) -> float:
        """The immediate lane's wait after its current run of consecutive failures."""
        cap = max(CYCLE_RETRY_BASE, self.incremental_seconds)
        return backoff_delay(self.immediate_failures, CYCLE_RETRY_BASE, cap)


@dataclass
class _Failing:
    failures: int
    due: float


class RecordBackoff:
    """Per-record failure counts and next-attempt times, fed from cycle outcomes.

    ``base``/``cap``: seconds of the first wait and the longest one. Entries live until the record succeeds.
    """

    def __init__(self, *, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self._failing: dict[EntityKey, dict[str, _Failing]] = {}

    def record(self, key: EntityKey, outcomes: Iterable[Outcome], now: float) -> list[tuple[str, float]]:
        """Count failures and forget successes; returns ``(source id, due time)`` of each record that failed."""
        failing = self._failing.setdefault(key, {})
        failed: list[tuple[str, float]] = []
        for outcome in outcomes:
            if outcome.kind in NOT_ATTEMPTS:
                continue
            if outcome.ok:
                failing.pop(outcome.source_id, None)
                continue
            entry = failing.get(outcome.source_id) or _Failing(0, now)
            entry.failures += 1
            entry.due = now + backoff_delay(entry.failures, self.base, self.cap)
            failing[outcome.source_id] = entry
            failed.append((outcome.source_id, entry.due))
        return failed

    def holds(self, key: EntityKey, now: float, *, wall_now: float) -> dict[str, str]:
        """Source id → reason, for the records of ``key`` still waiting; ``wall_now`` is ``now`` as epoch time."""
        reasons: dict[str, str] = {}
        for source_id, entry in self._failing.get(key, {}).items():
            if entry.due > now:
                until = time.strftime("%H:%M:%S", time.gmtime(wall_now + entry.due - now))
                plural = "s" if entry.failures != 1 else ""
                reasons[source_id] = f"backing off after {entry.failures} failure{plural} until {until} UTC"
        return reasons

    def expired(self, key: EntityKey, now: float) -> list[str]:
        """The failing records of ``key`` whose wait is over (due a retry, not yet succeeded)."""
        return [source_id for source_id, entry in self._failing.get(key, {}).items() if entry.due <= now]

    def failures(self, key: EntityKey, source_id: str) -> int:
        """Consecutive failures of one record (0 when it is not failing)."""
        entry = self._failing.get(key, {}).get(source_id)
        return entry.failures if entry is not None else 0

    def waiting(self, key: EntityKey, now: float) -> int:
        """How many records of ``key`` are backing off right now."""
        return sum(1 for entry in self._failing.get(key, {}).values() if entry.due > now)
