"""Offset paging with an announced total: the rules (sans-I/O) and one async driver shared by connectors.

Both OZmap (``page``/``limit`` → ``total``/``rows``) and IXC (``page``/``rp`` → ``total``/``registros``) page by
number and announce the total row count on every page. :class:`OffsetPaging` holds the rules and does no I/O, so
they are unit-tested without a network:

- page 1 is fetched alone; its ``total`` tells how many pages follow, which may then be fetched concurrently;
- a server that caps the page size below what we asked (fewer rows than asked on page 1 though more exist) is
  followed: the remaining pages are asked with the size it actually served;
- a server that serves *more* rows than asked (IXC ``rp`` overflow) is tolerated: pages overlap and the driver
  drops rows whose id it has already yielded;
- the snapshot is complete only when the distinct rows received equal the announced total and every page
  announced the same total; anything else raises :class:`~reconciler.errors.SnapshotIncomplete`. Paging never
  stops on ``len(rows) < size`` alone.

The ids already yielded are remembered compactly (:class:`SeenKeys`): a million-row listing would otherwise keep
a million id strings alive until its last page.

:func:`stream_pages` drives the rules: it keeps up to ``window`` page requests in flight and yields pages in
order. It runs the page fetches as plain asyncio tasks because an async generator cannot hold an anyio task group
open across ``yield``; its ``finally`` cancels and awaits whatever is still in flight when the consumer stops.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from reconciler import errors

Item = TypeVar("Item")

__all__ = ["OffsetPaging", "PageRequest", "PageResult", "SeenKeys", "stream_pages"]

_Hashes = npt.NDArray[np.int64]
#: Below this many hashes still probing, :class:`SeenKeys` finishes them one by one rather than in vector rounds.
_STRAGGLERS = 32


class PageRequest(NamedTuple):
    """Ask for page ``number`` (1-based) of ``size`` rows."""

    number: int
    size: int


class PageResult(NamedTuple):
    """What one page answered: the announced ``total`` and the ``rows`` in it (before de-duplication)."""

    number: int
    total: int
    rows: int


class OffsetPaging:
    """The paging rules of one listing. ``what`` names it in error messages (``"ozmap boxes"``)."""

    def __init__(self, size: int, *, what: str) -> None:
        if size < 1:
            raise ValueError("page size must be >= 1")
        self.size = size
        self.what = what
        self.total: int | None = None
        self.pages = 0
        self._pending: set[int] = set()

    def first(self) -> PageRequest:
        """The opening request."""
        self._pending.add(1)
        return PageRequest(1, self.size)

    def receive(self, result: PageResult) -> list[PageRequest]:
        """Account for one answered page; return the requests it makes known (only page 1 makes any)."""
        if result.number not in self._pending:
            raise ValueError(f"page {result.number} was not requested")
        self._pending.discard(result.number)
        if self.total is None:
            return self._plan(result)
        if result.total != self.total:
            raise errors.SnapshotIncomplete(
                f"{self.what}: the total changed from {self.total} to {result.total} while paging"
            )
        if result.rows == 0 and self.total > 0:
            raise errors.SnapshotIncomplete(
                f"{self.what}: page {result.number} of {self.pages} came back empty ({self.total} rows announced)"
            )
        return []

    @property
    def done(self) -> bool:
        """Every requested page has been answered."""
        return self.total is not None and not self._pending

    def finish(self, distinct_rows: int) -> None:
        """Check completeness once every page is in: ``distinct_rows`` must equal the announced total."""
        if self.total is None or self._pending:
            raise errors.SnapshotIncomplete(f"{self.what}: paging stopped before the last page")
        if distinct_rows != self.total:
            raise errors.SnapshotIncomplete(
                f"{self.what}: received {distinct_rows} distinct rows, the server announced {self.total}"
            )

    def _plan(self, first: PageResult) -> list[PageRequest]:
        total = first.total
        if total < 0:
            raise errors.SnapshotIncomplete(f"{self.what}: the server announced a negative total ({total})")
        self.total = total
        if total > 0 and first.rows == 0:
            raise errors.SnapshotIncomplete(f"{self.what}: page 1 came back empty ({total} rows announced)")
        if 0 < first.rows < min(self.size, total):
            self.size = first.rows  # the server caps the page size: follow it
        self.pages = max(1, math.ceil(total / self.size))
        follow = [PageRequest(n, self.size) for n in range(2, self.pages + 1)]
        self._pending.update(r.number for r in follow)
        return follow


async def stream_pages(
    paging: OffsetPaging,
    fetch: Callable[[PageRequest], Awaitable[tuple[int, Sequence[Item]]]],
    *,
    key: Callable[[Item], str],
    window: int,
) -> AsyncGenerator[list[Item], None]:
    """Yield the listing's items page by page, in order, de-duplicated by ``key``, up to ``window`` in flight.

    ``fetch`` answers one page request with (announced total, the page's items before de-duplication).

    A failure on page 1 propagates as is; a transient failure on a later page (after retries) becomes
    :class:`~reconciler.errors.SnapshotIncomplete`, because the consumer already holds part of the snapshot.
    """
    seen = SeenKeys()
    total, rows = await fetch(paging.first())
    follow = collections.deque(paging.receive(PageResult(1, total, len(rows))))
    seen.reserve(total)
    first = _fresh(rows, seen, key)
    if not follow:
        paging.finish(seen.count)
    inflight: collections.deque[tuple[PageRequest, asyncio.Future[tuple[int, Sequence[Item]]]]]
    inflight = collections.deque()

    def launch() -> None:
        while follow and len(inflight) < max(1, window):
            request = follow.popleft()
            inflight.append((request, asyncio.ensure_future(fetch(request))))

    try:
        launch()  # the next pages travel while the consumer works on this one
        if first:
            yield first
        while inflight:
            request, task = inflight.popleft()
            try:
                total, rows = await task
            except errors.RemoteError as exc:
                if not errors.is_transient(exc):
                    raise
                raise errors.SnapshotIncomplete(
                    f"{paging.what}: page {request.number} failed: {exc}"
                ) from exc
            launch()
            paging.receive(PageResult(request.number, total, len(rows)))
            page = _fresh(rows, seen, key)
            if not inflight:
                paging.finish(seen.count)
            if page:
                yield page
    finally:
        for _, task in inflight:
            task.cancel()
        if inflight:
            await asyncio.gather(*(task for _, task in inflight), return_exceptions=True)


def _fresh(rows: Sequence[Item], seen: SeenKeys, key: Callable[[Item], str]) -> list[Item]:
    """The rows whose key was not yielded before (keeps their order); records them as seen."""
    fresh = seen.add([key(row) for row in rows])
    return list(rows) if len(fresh) == len(rows) else [rows[i] for i in fresh]


#: Most a :class:`SeenKeys` table is filled before it doubles: 3/4 (a million keys fit 2^21 slots, 16 MB; linear
#: probing then averages ~2.5 probes a key already seen and ~8.5 a new one, a few vectorised rounds a page).
_MAX_LOAD_NUM, _MAX_LOAD_DEN = 3, 4
#: Keys a table is sized for up front at most (a listing announcing more grows as its rows come; zeroed pages of a
#: table sized for a total that never arrives cost no memory until written).
_RESERVE_MAX = 1 << 24
#: Slots of the old table rehashed per round when a table grows.
_REHASH_SLICE = 1 << 16


class SeenKeys:
    """The keys a listing yielded so far, in ~16 bytes each instead of the ~100 of a set of strings.

    Each key is kept as its 64-bit hash (Python's keyed string hash, fixed for the life of the process, which is all
    a listing lives) in an open-addressing numpy table, probed a page at a time. Two distinct keys share a hash
    about once in 10^7 listings of a million rows; the second would then be taken for a repeat and dropped, but
    never silently: the listing's distinct count falls short of the announced total and :func:`stream_pages`
    raises :class:`~reconciler.errors.SnapshotIncomplete` (:meth:`OffsetPaging.finish`).
    """

    _EMPTY: int = 0

    def __init__(self) -> None:
        self._table = np.zeros(1 << 12, np.int64)
        self.count = 0
        """Distinct keys added."""

    def add(self, keys: Sequence[str]) -> list[int]:
        """Record ``keys``; return the positions of those not seen before (a key repeated within ``keys`` counts
        once, at its first position)."""
        n = len(keys)
        if not n:
            return []
        hashes = np.fromiter(map(hash, keys), np.int64, n)
        hashes[hashes == self._EMPTY] = 1  # 0 marks an empty slot
        if len(set(keys)) == n:  # the normal case: no key twice in the page
            unique, first = hashes, np.arange(n)
        else:
            unique, first = np.unique(hashes, return_index=True)
        if _MAX_LOAD_DEN * (self.count + len(unique)) > _MAX_LOAD_NUM * len(self._table):
            self._grow(self.count + len(unique))
        placed = self._insert(unique)
        fresh: list[int] = np.sort(first[placed]).tolist()
        self.count += len(fresh)
        return fresh

    def _insert(self, hashes: _Hashes) -> npt.NDArray[np.bool_]:
        """Put distinct ``hashes`` into the table (linear probing); True where one was new.

        Whole rounds of vector operations while many hashes are in flight, the few stragglers of long probe
        sequences one by one."""
        table, mask = self._table, len(self._table) - 1
        new = np.zeros(len(hashes), np.bool_)
        pending = np.arange(len(hashes))
        slots = hashes & mask
        while len(pending) > _STRAGGLERS:
            wanted = hashes[pending]
            current = table[slots]
            done = current == wanted
            empty = np.flatnonzero(current == self._EMPTY)
            if len(empty):
                # several may aim at one empty slot: all write, the one whose value stayed took it
                table[slots[empty]] = wanted[empty]
                took = empty[table[slots[empty]] == wanted[empty]]
                new[pending[took]] = True
                done[took] = True
            keep = ~done
            pending = pending[keep]
            slots = (slots[keep] + 1) & mask
        for i, slot in zip(pending.tolist(), slots.tolist(), strict=True):
            value = int(hashes[i])
            while (current := int(table[slot])) != self._EMPTY and current != value:
                slot = (slot + 1) & mask
            if current == self._EMPTY:
                table[slot] = value
                new[i] = True
        return new

    def reserve(self, expected: int) -> None:
        """Size the table for ``expected`` keys in all (a listing's announced total; at most
        :data:`_RESERVE_MAX`), so it is not grown, and rehashed, as they come."""
        if expected > self.count:
            self._grow(min(expected, _RESERVE_MAX))

    def _grow(self, needed: int) -> None:
        """Move to a table big enough for ``needed`` keys, rehashing a slice of the old one at a time (the
        temporary arrays of one vector round over every key would cost several times the table)."""
        size = len(self._table)
        while _MAX_LOAD_DEN * needed > _MAX_LOAD_NUM * size:
            size *= 2
        if size == len(self._table):
            return
        old, self._table = self._table, np.zeros(size, np.int64)
        for start in range(0, len(old), _REHASH_SLICE):
            chunk = old[start : start + _REHASH_SLICE]
            self._insert(chunk[chunk != self._EMPTY])
