"""Per-record serialization of an entity's two lanes: targeted cycles run beside its scheduled cycle.

Each entity has a *scheduled* lane (incremental, full and on-demand cycles, one at a time) and an *immediate*
lane (targeted cycles of the ids webhooks queued, one at a time). The lanes run side by side, so a change
reaches the target within a second even while a full sync of the same entity runs for minutes. What must not
happen is the full sync writing, after the targeted cycle, a record it read *before* the change — an older
state overwriting a newer one. :class:`RecordGate` prevents it:

* a targeted cycle holds the locks of its record ids for its whole run (taken in sorted order, so two holders
  never deadlock) and, while a scheduled cycle runs, marks those ids *touched*;
* the scheduled cycle enters :meth:`RecordGate.gate` around each of its actions (see
  ``reconciler.applying.Gate``): it waits for the record's lock, and an action on a touched record is vetoed —
  a targeted cycle synced that record after the scheduled cycle started, from a read at least as fresh — and
  the record is queued again (``on_veto``) so one more targeted cycle settles it from a fresh read in any case.

An action holds one lock at a time and a targeted cycle takes all of its locks before it acts, so a lock is
never held while waiting for another lane's lock: no deadlock. Locks exist only while someone holds or waits
for them.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable

import anyio

from reconciler.applying import Gate

__all__ = ["VETO_REASON", "RecordGate"]

VETO_REASON = "synced meanwhile by an immediate (webhook) cycle; queued again to settle it"


class RecordGate:
    """Record locks and the *touched* set of one entity. ``on_veto(source_id)`` queues a vetoed record again."""

    def __init__(self, *, on_veto: Callable[[str], None]) -> None:
        self._on_veto = on_veto
        self._locks: dict[str, anyio.Lock] = {}
        self._users: collections.Counter[str] = collections.Counter()
        self._touched: set[str] = set()
        self._scheduled = False

    @contextlib.asynccontextmanager
    async def holding(self, source_ids: Iterable[str]) -> AsyncIterator[None]:
        """A targeted cycle's hold on its records, for the whole cycle."""
        ids = sorted(set(source_ids))
        async with contextlib.AsyncExitStack() as stack:
            for source_id in ids:
                await stack.enter_async_context(self._locked(source_id))
            if self._scheduled:
                self._touched.update(ids)
            yield

    @contextlib.asynccontextmanager
    async def scheduled(self) -> AsyncIterator[Gate]:
        """A scheduled cycle's gate: only records touched after this point are vetoed."""
        self._touched = set()
        self._scheduled = True
        try:
            yield self.gate
        finally:
            self._scheduled = False
            self._touched = set()

    @contextlib.asynccontextmanager
    async def gate(self, source_id: str) -> AsyncIterator[str | None]:
        """Around one action of the scheduled cycle: None to go ahead, else the veto's reason."""
        async with self._locked(source_id):
            if source_id in self._touched:
                self._on_veto(source_id)
                yield VETO_REASON
            else:
                yield None

    def statistics(self) -> dict[str, int]:
        """Records locked or waited for, and records touched during the running scheduled cycle."""
        return {"locked": len(self._locks), "touched": len(self._touched)}

    @contextlib.asynccontextmanager
    async def _locked(self, source_id: str) -> AsyncIterator[None]:
        lock = self._locks.get(source_id)
        if lock is None:
            lock = self._locks[source_id] = anyio.Lock()
        self._users[source_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[source_id] -= 1
            if not self._users[source_id]:
                del self._users[source_id]
                del self._locks[source_id]
