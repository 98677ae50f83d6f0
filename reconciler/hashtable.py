"""An open-addressing table of 64-bit keys, probed a batch at a time with numpy.

The link index looks up a page of ids (their 64-bit string hashes) at a time in tables of up to a million
entries. A sorted array searched with ``numpy.searchsorted`` costs ~20 dependent memory reads a key
(the last ~8 of them cache misses at a million keys); one-slot-at-a-time linear probing costs a dozen vector
rounds a page. This table probes a *window* of :data:`WINDOW` consecutive slots per key in each vector round
(one or two cache lines), so a page takes one or two rounds and a key about one cache miss.

Linear probing, no deletion. 0 marks an empty slot, so a key 0 is stored as 1 (two keys then share it, which
callers that match by hash already allow for, as the link index's shared keys do). Pure: no I/O.

:class:`~reconciler.connectors.paging.SeenKeys` keeps its own one-slot-a-round table: moved onto this one it ran
15% slower (1M keys in pages of 1000: 0.74-0.76 s vs 0.65-0.67 s), since its table is at most 3/4 full and a
window of 8 slots reads more than a few single-slot rounds there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Int64s = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: Consecutive slots read per key in one vector round (8 int64 = one 64-byte cache line when aligned).
WINDOW: Final = 8
_STEPS: Final = np.arange(WINDOW, dtype=np.int64)
#: Keys inserted or looked up per vector round at most (bounds the round's temporary arrays to a few MB).
_BATCH: Final = 1 << 16
_EMPTY: Final = 0
#: Below this many keys still probing, the rest are probed one by one (cheaper than another vector round).
_STRAGGLERS: Final = 48


def stored(keys: Int64s) -> Int64s:
    """``keys`` as the table stores them (0, the empty mark, becomes 1)."""
    return np.where(keys == _EMPTY, 1, keys)


class KeyTable:
    """Distinct non-zero int64 keys, each with an integer value (of dtype ``values``; None: keys only).

    ``size`` slots are allocated up front (see :func:`slots_for`); :meth:`insert` never grows the table, so a
    caller that adds keys over time grows it itself (:meth:`grown`).
    """

    def __init__(self, size: int, *, values: type[np.integer[Any]] | None = np.int64) -> None:
        if size < WINDOW or size & (size - 1):
            raise ValueError(f"a KeyTable has a power of two slots, at least {WINDOW}, not {size}")
        self.size = size
        self._mask = size - 1
        self.keys: Int64s = np.zeros(self.size, np.int64)
        self.values: npt.NDArray[np.integer[Any]] | None = (
            None if values is None else np.zeros(self.size, values)
        )
        self.count = 0
        """Keys stored."""

    def grown(self, size: int) -> KeyTable:
        """A table of ``size`` slots holding the same keys and values."""
        bigger = KeyTable(size, values=None if self.values is None else self.values.dtype.type)
        full = np.flatnonzero(self.keys != _EMPTY)
        bigger.insert(self.keys[full], None if self.values is None else self.values[full])
        return bigger

    def insert(self, keys: Int64s, values: npt.NDArray[np.integer[Any]] | None = None) -> Bools:
        """Add ``keys`` (distinct, already :func:`stored`), with ``values`` if the table has values; True where a
        key was new. A key already present keeps its value.

        The table must keep an empty slot (a probe stops at one): raises ``ValueError`` when ``keys`` might fill it.
        """
        if self.count + len(keys) >= self.size:
            raise ValueError(
                f"a KeyTable of {self.size} slots holding {self.count} keys cannot take {len(keys)} more"
            )
        new = np.zeros(len(keys), np.bool_)
        for start in range(0, len(keys), _BATCH):
            part = slice(start, start + _BATCH)
            new[part] = self._insert(keys[part], None if values is None else values[part])
        self.count += int(np.count_nonzero(new))
        return new

    def find(self, keys: Int64s) -> tuple[Bools, Int64s]:
        """Per key (already :func:`stored`): whether the table has it, and its value (0 where it has not)."""
        hits = np.zeros(len(keys), np.bool_)
        found = np.zeros(len(keys), np.int64)
        for start in range(0, len(keys), _BATCH):
            part = slice(start, start + _BATCH)
            hits[part], found[part] = self._find(keys[part])
        return hits, found

    def _find(self, keys: Int64s) -> tuple[Bools, Int64s]:
        n = len(keys)
        hits = np.zeros(n, np.bool_)
        found = np.zeros(n, np.int64)
        pending = np.arange(n)
        wanted = keys
        starts = keys & self._mask
        while len(pending) > _STRAGGLERS:
            slots, first, stopped, matched = self._probe(starts, wanted)
            rows = np.flatnonzero(matched)
            hits[pending[rows]] = True
            if self.values is not None:
                found[pending[rows]] = self.values[slots[rows, first[rows]]]
            more = ~stopped
            pending, wanted = pending[more], wanted[more]
            starts = (starts[more] + WINDOW) & self._mask
        for i, key, slot in zip(pending.tolist(), wanted.tolist(), starts.tolist(), strict=True):
            slot = self._scan(key, slot)
            if int(self.keys[slot]) == key:
                hits[i] = True
                if self.values is not None:
                    found[i] = self.values[slot]
        return hits, found

    def _insert(self, keys: Int64s, values: npt.NDArray[np.integer[Any]] | None) -> Bools:
        table = self.keys
        new = np.zeros(len(keys), np.bool_)
        pending = np.arange(len(keys))
        wanted = keys
        starts = keys & self._mask
        while len(pending) > _STRAGGLERS:
            slots, first, stopped, matched = self._probe(starts, wanted)
            claims = np.flatnonzero(stopped & ~matched)  # an empty slot came first: take it
            claimed = slots[claims, first[claims]]
            table[claimed] = wanted[claims]
            # several keys may aim at one empty slot: all write, the one whose value stayed took it
            won = table[claimed] == wanted[claims]
            winners = pending[claims[won]]
            new[winners] = True
            if values is not None and self.values is not None:
                self.values[claimed[won]] = values[winners]
            # the losers probe on from the slot they lost, the keys whose window was full from the next window
            going = np.flatnonzero(~stopped)
            lost = claims[~won]
            pending = np.concatenate((pending[going], pending[lost]))
            wanted = np.concatenate((wanted[going], wanted[lost]))
            starts = np.concatenate(((starts[going] + WINDOW) & self._mask, claimed[~won]))
        for i, key, slot in zip(pending.tolist(), wanted.tolist(), starts.tolist(), strict=True):
            slot = self._scan(key, slot)
            if int(table[slot]) == _EMPTY:
                table[slot] = key
                new[i] = True
                if values is not None and self.values is not None:
                    self.values[slot] = values[i]
        return new

    def _scan(self, key: int, slot: int) -> int:
        """The first slot from ``slot`` on that holds ``key`` or is empty (one at a time: for the stragglers)."""
        table, mask = self.keys, self._mask
        while (current := int(table[slot])) != _EMPTY and current != key:
            slot = (slot + 1) & mask
        return slot

    def _probe(self, starts: Int64s, wanted: Int64s) -> tuple[Int64s, Int64s, Bools, Bools]:
        """One round: each key's window of slots from its start, the first slot in it that holds the key or is
        empty, whether there is one (``stopped``) and whether it holds the key (``matched``)."""
        slots = (starts[:, None] + _STEPS) & self._mask
        window = self.keys.take(slots)
        match = window == wanted[:, None]
        stop = match | (window == _EMPTY)
        first = stop.argmax(axis=1)
        rows = np.arange(len(starts))
        return slots, first, stop[rows, first], match[rows, first]


def slots_for(keys: int, load: tuple[int, int]) -> int:
    """The power of two of slots that holds ``keys`` keys at most ``load`` (numerator, denominator) full."""
    numerator, denominator = load
    size = WINDOW
    while size * numerator < keys * denominator:
        size *= 2
    return size


class HashedIds:
    """A set of string ids held as their sorted 64-bit hashes (8 bytes an id instead of ~70 in a ``frozenset``).

    Membership can answer yes for an id not in the set (when its hash equals a member's: about once in 10^14 at
    100k members) and never no for one that is in it. Only for sets where a false yes is harmless: a cycle's held
    source ids, where it means one pair compared rather than settled, one filtered record kept in the plan's input
    rather than only counted, or one release of a quarantine row that is not there.
    """

    def __init__(self, ids: Iterable[str]) -> None:
        self._hashes: Int64s = np.unique(np.fromiter(map(hash, ids), np.int64))

    def __len__(self) -> int:
        """Distinct hashes held (the distinct ids, but for a shared hash)."""
        return len(self._hashes)

    def __contains__(self, source_id: object) -> bool:
        return isinstance(source_id, str) and bool(self.contains_keys(np.array([hash(source_id)]))[0])

    def contains(self, ids: Sequence[str]) -> list[bool]:
        """Per id: whether it may be in the set."""
        flags: list[bool] = self.contains_keys(np.fromiter(map(hash, ids), np.int64, len(ids))).tolist()
        return flags

    def contains_keys(self, keys: Int64s) -> Bools:
        """Per ``hash(id)``: whether that id may be in the set."""
        return in_sorted(self._hashes, keys)


def in_sorted(values: Int64s, keys: Int64s) -> Bools:
    """Per key: whether it is among ``values`` (sorted ascending), by one ``numpy.searchsorted``."""
    if not len(values):
        return np.zeros(len(keys), np.bool_)
    found: Bools = values[np.minimum(np.searchsorted(values, keys), len(values) - 1)] == keys
    return found
