"""A full cycle's links in a few numpy arrays, instead of one Python object per link.

A full cycle must know, for each of up to a million source records, whether it is linked and whether its pair can
be *settled* (:mod:`reconciler.agreement`). As a ``dict[str, LinkRow]`` that costs ~400 bytes per link (the row,
its id, target id and hash strings, the dict entry); this index holds what settling needs in ~60:

- each link's source id, once, in one string cut by an offsets array (:class:`SourceIds`; when every id is
  lowercase hex of even length, as OZmap's 24-character ObjectIds are, the bytes those digits spell: half the size);
- the links' positions by ``hash(source id)`` and by ``hash(target id)`` (Python's own 64-bit string hash, fixed
  for the life of the process, which is all the index lives), in two :class:`~reconciler.hashtable.KeyTable`,
  looked up a page at a time (the target one only while the target snapshot is read: see
  :meth:`LinkIndex.forget_targets`);
- per link: the stored source and target fingerprints (the target's also only until then), whether the pair may
  be settled at all (*eligible*: active, both fingerprints known, source not held), and two flags filled in as the
  cycle reads — its target read as when last in agreement (*agreed*), its source too (*settled*).

A source id is matched exactly (its string is compared, and the rare ids sharing a hash are resolved one by
one). A target id is matched by hash only, which is safe where it is used: a target is taken as agreed only if
its own 64-bit fingerprint also equals the one stored on the link, and :meth:`LinkIndex.maybe_dropped` is an
over-approximation that costs one extra read at most.

Pure: built from rows a store reads (:meth:`LinkIndexBuilder.add`), no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from reconciler import hashtable
from reconciler.model import Record
from reconciler.state.store import LinkColumns

_I64: Final = np.int64
Int64s = npt.NDArray[np.int64]
Indexes = npt.NDArray[np.int32] | npt.NDArray[np.int64]
"""Positions or offsets: 32-bit while they fit (they always do below two billion links / characters)."""


def _narrow(values: npt.NDArray[Any]) -> Indexes:
    """``values`` (non-negative) as int32 when they fit, halving the index's position and offset arrays."""
    if not len(values) or int(values.max()) < 2**31:
        return values.astype(np.int32)
    return values.astype(np.int64)


Bools = npt.NDArray[np.bool_]
#: Most a link index's key tables are filled (the 806k links of 1M boxes fit 2^20 slots: 12 MB a table).
_LOAD: Final = (7, 8)


class Settling(msgspec.Struct):
    """What :meth:`LinkIndex.settle` made of one slice of the source stream."""

    rest: list[Record]
    """The records to normalise: unlinked, or linked but not settled (in stream order)."""
    fingerprints: dict[str, int]
    """Source id → fingerprint, of the linked records in ``rest``."""
    settled: int = 0
    """How many records were settled."""
    settled_mark: str = ""
    """The newest ``updated_at`` among the settled records."""


class LinkIndexBuilder:
    """Collects links a chunk at a time (as a store streams them) and builds the :class:`LinkIndex`."""

    def __init__(self, held: hashtable.HashedIds | None = None) -> None:
        """``held``: source ids quarantined or skipped; their pairs are never eligible for settling."""
        self._held = held if held is not None else hashtable.HashedIds(())
        self._source_keys: list[Int64s] = []
        self._target_keys: list[Int64s] = []
        self._source_hashes: list[Int64s] = []
        self._target_hashes: list[Int64s] = []
        self._eligible: list[Bools] = []
        self._lengths: list[Int64s] = []
        self._ids: list[str] = []

    def add(self, rows: Sequence[LinkColumns]) -> None:
        """Take one chunk of links."""
        if not rows:
            return
        n = len(rows)
        sids, tids, states, source_hashes, target_hashes = zip(*rows, strict=True)
        source_keys = np.fromiter(map(hash, sids), _I64, n)
        self._source_keys.append(source_keys)
        self._target_keys.append(np.fromiter(map(hash, tids), _I64, n))
        self._source_hashes.append(np.array(source_hashes, dtype=_I64))
        self._target_hashes.append(np.array(target_hashes, dtype=_I64))
        active = np.fromiter((state == "active" for state in states), np.bool_, n)
        known = (self._source_hashes[-1] != 0) & (self._target_hashes[-1] != 0)
        self._eligible.append(active & known & ~self._held.contains_keys(source_keys))
        self._lengths.append(np.fromiter(map(len, sids), _I64, n))
        self._ids.append("".join(sids))

    def build(self) -> LinkIndex:
        """The index of every link added (the builder is left empty)."""

        def take(parts: list[Any], dtype: Any) -> Any:
            joined = np.concatenate(parts) if parts else np.zeros(0, dtype)
            parts.clear()  # each part goes as soon as it is copied: the peak stays near one copy
            return joined

        lengths = take(self._lengths, _I64)
        cumulative = np.zeros(len(lengths) + 1, _I64)
        np.cumsum(lengths, out=cumulative[1:])
        del lengths
        text = "".join(self._ids)
        self._ids.clear()
        ids = SourceIds(text, cumulative)
        del text, cumulative
        return LinkIndex(
            ids=ids,
            source_keys=take(self._source_keys, _I64),
            target_keys=take(self._target_keys, _I64),
            source_hashes=take(self._source_hashes, _I64),
            target_hashes=take(self._target_hashes, _I64),
            eligible=take(self._eligible, np.bool_),
        )


_LOWER_HEX: Final = re.compile("[0-9a-f]*")


class SourceIds:
    """Strings cut from one text by offsets; as the bytes their digits spell when every one is lowercase hex of
    even length (a 24-character ObjectId in 12 bytes), else as the text itself."""

    def __init__(self, text: str, offsets: Int64s) -> None:
        self._packed: bytes | None = None
        self._text = text
        if text and not (offsets & 1).any() and _LOWER_HEX.fullmatch(text):
            self._packed, self._text = bytes.fromhex(text), ""
            offsets = offsets // 2
        self._offsets = _narrow(offsets)

    @property
    def packed(self) -> bool:
        """Whether the ids are held as the bytes their hex digits spell."""
        return self._packed is not None

    def at(self, position: int) -> str:
        """The string at ``position``."""
        return self.many(np.array([position]))[0]

    def many(self, positions: Indexes) -> list[str]:
        """The strings at ``positions``."""
        starts, ends = self._offsets[positions].tolist(), self._offsets[positions + 1].tolist()
        if self._packed is None:
            text = self._text
            return [text[a:b] for a, b in zip(starts, ends, strict=True)]
        packed = self._packed
        return [packed[a:b].hex() for a, b in zip(starts, ends, strict=True)]


class _Keyed:
    """Positions (0..n-1) found by a 64-bit key in a :class:`~reconciler.hashtable.KeyTable`; keys shared by
    several positions listed aside."""

    def __init__(self, keys: Int64s) -> None:
        keys = hashtable.stored(keys)
        unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
        self._table = hashtable.KeyTable(hashtable.slots_for(len(unique), _LOAD), values=np.int32)
        self._table.insert(unique, first)
        self.shared: dict[int, list[int]] = {}
        """Key (as stored: see :meth:`group`) → every position with it, for the keys more than one position has
        (rare)."""
        repeated = unique[counts > 1]
        if len(repeated):
            at = np.flatnonzero(np.isin(keys, repeated))
            for key, position in zip(keys[at].tolist(), at.tolist(), strict=True):
                self.shared.setdefault(key, []).append(position)

    def keys_where(self, flags: Bools) -> Int64s:
        """The keys (as stored), sorted, of which some position is flagged in ``flags``."""
        table = self._table
        assert table.values is not None
        occupied = table.keys != 0
        chosen = np.zeros(len(occupied), np.bool_)  # masks rather than index arrays: the fewest bytes at once
        chosen[occupied] = flags[table.values[occupied]]
        del occupied
        keys = table.keys[chosen]
        del chosen
        # a shared key (rare) is in the table once, with its first position: add it if another one is flagged
        more = [key for key, group in self.shared.items() if not flags[group[0]] and flags[group].any()]
        if more:
            keys = np.concatenate([keys, np.array(more, _I64)])
        keys.sort()  # the table's keys are distinct already
        return keys

    def find(self, keys: Int64s) -> tuple[Bools, Indexes]:
        """Per key: whether some position has it, and the first such position (0 without a hit)."""
        return self._table.find(hashtable.stored(keys))

    def group(self, key: int) -> list[int] | None:
        """Every position with ``key`` when several have it, else None."""
        return self.shared.get(key or 1) if self.shared else None


class LinkIndex:
    """Every link of one entity, compact; built by :class:`LinkIndexBuilder`."""

    def __init__(
        self,
        *,
        ids: SourceIds,
        source_keys: Int64s,
        target_keys: Int64s,
        source_hashes: Int64s,
        target_hashes: Int64s,
        eligible: Bools,
    ) -> None:
        self._ids = ids
        self._sources = _Keyed(source_keys)
        self._target_table: _Keyed | None = _Keyed(target_keys)
        self._dropped = np.zeros(0, _I64)
        """After :meth:`forget_targets`: the keys of the confirmed targets, sorted."""
        self._source_hashes = source_hashes
        self._target_hashes = target_hashes
        self._eligible = eligible
        self._agreed = np.zeros(len(eligible), np.bool_)
        self._settled = np.zeros(len(eligible), np.bool_)

    def __len__(self) -> int:
        return len(self._eligible)

    @property
    def ids(self) -> SourceIds:
        """The links' source ids, by position."""
        return self._ids

    def source_id(self, position: int) -> str:
        """The source id of the link at ``position``."""
        return self._ids.at(position)

    def confirm_targets(
        self, records: Sequence[Record], fingerprint: Callable[[Record], int]
    ) -> list[Record]:
        """Mark the links whose target is among ``records`` and read as stored (``fingerprint(record)`` equals the
        link's target fingerprint) as *agreed*; return the other records, in order.

        Only eligible links are compared, and ``fingerprint`` is only called for a record that has one.
        """
        if not len(self) or not records:
            return list(records)
        hits, at = self._targets.find(_keys(records))
        eligible, stored = self._eligible[at].tolist(), self._target_hashes[at].tolist()
        shared = self._targets.shared
        agreed: list[int] = []
        kept: list[Record] = []
        rows = zip(records, hits.tolist(), at.tolist(), eligible, stored, strict=True)
        for record, hit, position, ok, expected in rows:
            if hit:
                if shared and (group := self._targets.group(hash(record.id))) is not None:
                    found = self._agreeing(group, fingerprint(record)) if self._eligible[group].any() else []
                else:
                    found = [position] if ok and fingerprint(record) == expected else []
                if found:
                    agreed.extend(found)
                    continue
            kept.append(record)
        if agreed:
            self._agreed[agreed] = True
        return kept

    def linked_targets(self, records: Sequence[Record]) -> list[bool]:
        """Per record: whether it may be some link's target (a link's target id has its id's hash; a collision
        reads as linked, so False is certain)."""
        if not len(self) or not records:
            return [False] * len(records)
        linked: list[bool] = self._targets.find(_keys(records))[0].tolist()
        return linked

    def settle(self, records: Sequence[Record], fingerprint: Callable[[Record], int]) -> Settling:
        """Settle the records whose link's target was confirmed and whose own ``fingerprint`` equals the link's
        source fingerprint; the rest go on to be normalised (with the fingerprints of the linked ones)."""
        out = Settling(rest=[], fingerprints={})
        if not len(self) or not records:
            out.rest.extend(records)
            return out
        hits, at = self._sources.find(_keys(records))
        rows = zip(
            records,
            hits.tolist(),
            at.tolist(),
            self._ids.many(at),
            self._agreed[at].tolist(),
            self._source_hashes[at].tolist(),
            strict=True,
        )
        settled: list[int] = []
        for record, hit, position, linked_id, agreed, expected in rows:
            if not hit:
                out.rest.append(record)
                continue
            if linked_id != record.id:  # another id with the same hash, or unlinked
                position = self._shared_source(record.id)
                if position < 0:
                    out.rest.append(record)
                    continue
                agreed, expected = bool(self._agreed[position]), int(self._source_hashes[position])
            value = fingerprint(record)
            if agreed and value == expected:
                settled.append(position)
                if record.updated_at > out.settled_mark:
                    out.settled_mark = record.updated_at
                continue
            out.fingerprints[record.id] = value
            out.rest.append(record)
        if settled:
            self._settled[settled] = True
            out.settled = len(settled)
        return out

    def unsettled_ids(self) -> list[str]:
        """Source ids of the links not settled: read but changed, held, or not read at all."""
        return self._ids.many(np.flatnonzero(~self._settled))

    def unsettled(self) -> int:
        return len(self) - int(np.count_nonzero(self._settled))

    @property
    def _targets(self) -> _Keyed:
        if self._target_table is None:
            raise RuntimeError("the link index's target ids were forgotten: the target snapshot is read")
        return self._target_table

    def forget_targets(self) -> None:
        """Drop the table of target ids and the target fingerprints once the target snapshot is read:
        :meth:`confirm_targets` and :meth:`linked_targets` are done with, and :meth:`maybe_dropped` needs only the
        confirmed ones' keys (sorted: 8 bytes a confirmed link instead of 20 for every link)."""
        if self._target_table is not None:
            self._dropped = self._target_table.keys_where(self._agreed)
            self._target_table = None
            self._target_hashes = np.zeros(0, _I64)  # only confirm_targets compares them

    def maybe_dropped(self, target_ids: Sequence[str]) -> list[bool]:
        """Per target id: whether a link with (a target id of) its hash was confirmed, so the snapshot dropped it
        (a collision only costs one extra read). Asked once the target snapshot is read: the target table is
        forgotten (:meth:`forget_targets`)."""
        self.forget_targets()
        keys = hashtable.stored(np.fromiter(map(hash, target_ids), _I64, len(target_ids)))
        found: list[bool] = hashtable.in_sorted(self._dropped, keys).tolist()
        return found

    def _agreeing(self, group: list[int], value: int) -> list[int]:
        """The eligible positions of ``group`` whose stored target fingerprint is ``value``."""
        return [p for p in group if self._eligible[p] and int(self._target_hashes[p]) == value]

    def _shared_source(self, source_id: str) -> int:
        """The position of ``source_id`` among the links sharing its hash with another, or -1 when unlinked."""
        for candidate in self._sources.group(hash(source_id)) or ():
            if self.source_id(candidate) == source_id:
                return candidate
        return -1


def _keys(records: Sequence[Record]) -> Int64s:
    return np.fromiter((hash(r.id) for r in records), _I64, len(records))
