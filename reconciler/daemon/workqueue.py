"""The daemon's immediate work, per entity: record ids to sync now, retries waiting for their time, requests.

A record id is queued at most once (a webhook repeated while the id waits is *deduplicated*: counted, not
queued again), in arrival order, and taken in batches: one batch becomes one targeted cycle. A record whose
action failed waits in the *delayed* set until its backoff is over, then joins the queue again; a fresh webhook
for it moves it to the queue at once (new information beats the backoff). An on-demand cycle request is one
pending :class:`CycleRequest` per entity; requests merge (full absorbs incremental, an operator's removal-guard
override sticks).

Synchronous and I/O-free; the runner wakes the entity's worker after adding work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NamedTuple

from reconciler.daemon.scheduling import EntityKey

__all__ = ["CycleRequest", "QueueStats", "RequestMode", "WorkQueue"]

RequestMode = Literal["full", "incremental"]


class CycleRequest(NamedTuple):
    """An on-demand cycle: ``full`` or ``incremental``, and whether the operator overrides the removal guard."""

    mode: RequestMode
    allow_mass_removal: bool = False


class QueueStats(NamedTuple):
    """Counters since start and current sizes, over every entity."""

    depth: int
    delayed: int
    requests: int
    added: int
    deduplicated: int
    retried: int


class WorkQueue:
    """Ids per entity: ready (deduplicated, FIFO), delayed (id → due time), plus on-demand cycle requests."""

    def __init__(self) -> None:
        self._ready: dict[EntityKey, dict[str, None]] = {}
        self._delayed: dict[EntityKey, dict[str, float]] = {}
        self._requests: dict[EntityKey, CycleRequest] = {}
        self.added = 0
        self.deduplicated = 0
        self.retried = 0

    def add(self, key: EntityKey, source_ids: Iterable[str]) -> tuple[int, int]:
        """Queue ids for an immediate targeted cycle; returns ``(queued, deduplicated)``."""
        ready = self._ready.setdefault(key, {})
        delayed = self._delayed.get(key, {})
        queued = duplicates = 0
        for source_id in source_ids:
            if source_id in ready:
                duplicates += 1
                continue
            ready[source_id] = None
            delayed.pop(source_id, None)
            queued += 1
        self.added += queued
        self.deduplicated += duplicates
        return queued, duplicates

    def add_after(self, key: EntityKey, source_id: str, due: float) -> None:
        """Queue ``source_id`` again at ``due`` (a retry after a failure); no-op when it is queued already."""
        if source_id not in self._ready.get(key, {}):
            self._delayed.setdefault(key, {})[source_id] = due

    def forget(self, key: EntityKey, source_ids: Iterable[str]) -> None:
        """Drop pending retries of these ids (they succeeded meanwhile)."""
        delayed = self._delayed.get(key)
        if delayed:
            for source_id in source_ids:
                delayed.pop(source_id, None)

    def promote(self, key: EntityKey, now: float) -> int:
        """Move the retries due at ``now`` into the queue; returns how many moved."""
        delayed = self._delayed.get(key)
        if not delayed:
            return 0
        due = [sid for sid, at in delayed.items() if at <= now]
        ready = self._ready.setdefault(key, {})
        for source_id in due:
            del delayed[source_id]
            ready.setdefault(source_id, None)
        self.retried += len(due)
        return len(due)

    def next_delayed(self, key: EntityKey) -> float | None:
        """When the earliest retry of ``key`` is due; None when none waits."""
        delayed = self._delayed.get(key)
        return min(delayed.values()) if delayed else None

    def take(self, key: EntityKey, limit: int) -> list[str]:
        """Remove and return up to ``limit`` queued ids of ``key``, oldest first."""
        ready = self._ready.get(key)
        if not ready:
            return []
        batch = [sid for sid, _ in zip(ready, range(limit), strict=False)]
        for source_id in batch:
            del ready[source_id]
        return batch

    def request(self, key: EntityKey, mode: RequestMode, *, allow_mass_removal: bool = False) -> bool:
        """Ask for an on-demand cycle; False when the pending one already covers it (full covers incremental,
        an override covers none)."""
        pending = self._requests.get(key)
        wanted = CycleRequest(mode, allow_mass_removal)
        if pending is not None:
            wanted = CycleRequest(
                "full" if "full" in (pending.mode, mode) else "incremental",
                pending.allow_mass_removal or allow_mass_removal,
            )
            if wanted == pending:
                self.deduplicated += 1
                return False
        self._requests[key] = wanted
        return True

    def take_request(self, key: EntityKey) -> CycleRequest | None:
        """Remove and return the pending on-demand request of ``key``."""
        return self._requests.pop(key, None)

    def depth(self, key: EntityKey) -> int:
        """Ids of ``key`` queued now."""
        return len(self._ready.get(key, {}))

    def delayed(self, key: EntityKey) -> int:
        """Ids of ``key`` waiting for a retry."""
        return len(self._delayed.get(key, {}))

    def requested(self, key: EntityKey) -> bool:
        """Whether an on-demand cycle of ``key`` is pending."""
        return key in self._requests

    def statistics(self) -> QueueStats:
        return QueueStats(
            depth=sum(len(v) for v in self._ready.values()),
            delayed=sum(len(v) for v in self._delayed.values()),
            requests=len(self._requests),
            added=self.added,
            deduplicated=self.deduplicated,
            retried=self.retried,
        )
