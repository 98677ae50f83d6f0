"""A full cycle's unlinked target records, packed until a source record asks for one by its natural key.

A full cycle streams the target collection before the source, so it cannot yet tell which unlinked targets a
first-sight match will need. Most are never needed: at 1M boxes ~170k IXC boxes have no link and no source that
names them, and held as records they cost ~340 bytes each. Here each is msgpack bytes in one growing buffer
(~100 bytes), filed under the hash of each of its natural keys; once the sources are read, :meth:`take` decodes
the few whose key some unlinked source has.

A key is matched by its 64-bit hash, so a collision only decodes a record the planner then finds does not match:
the planner compares the keys themselves. Pure: no I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np

from reconciler.model import Desired, Fields, Record
from reconciler.planning import natural_key, target_key

_Packed = tuple[str, Fields, str, bool, str]
"""A record as packed: id, fields, updated_at, deleted, problem."""


class Candidates:
    """Unlinked target records, packed, filed by natural key (one key per name list in ``keys``)."""

    def __init__(self, keys: Sequence[Sequence[str]]) -> None:
        """``keys``: the rule's first-sight key names, then its fallback key names (an empty list is skipped)."""
        self._keys = [tuple(names) for names in keys if names]
        self._buffer = bytearray()
        self._ends = array("q")
        self._hashes = [array("q") for _ in self._keys]
        self._encode_into = msgspec.msgpack.Encoder().encode_into
        self._decode = msgspec.msgpack.Decoder(_Packed).decode

    def __len__(self) -> int:
        return len(self._ends)

    def add(self, records: Iterable[Record]) -> None:
        """Pack ``records`` (unlinked targets the rule's filter admitted)."""
        buffer, ends, encode_into = self._buffer, self._ends, self._encode_into
        for record in records:
            packed: _Packed = (record.id, record.fields, record.updated_at, record.deleted, record.problem)
            encode_into(packed, buffer, -1)
            ends.append(len(buffer))
            for names, hashes in zip(self._keys, self._hashes, strict=True):
                key = target_key(record, names)
                hashes.append(0 if "" in key else hash(key))  # an empty part matches nothing

    def take(self, wanted: Iterable[Desired]) -> list[Record]:
        """The packed records that share a natural key (any of ``keys``) with one of ``wanted``, decoded.

        Every record some ``wanted`` may match is returned, so the planner's first-sight match over them is the
        same as over all; a record whose key has an empty part is returned at most by a hash collision.
        """
        if not self._ends:
            return []
        wanted = list(wanted)
        hit = np.zeros(len(self._ends), np.bool_)
        for names, hashes in zip(self._keys, self._hashes, strict=True):
            keys = (natural_key(d.fields, names) for d in wanted)
            asked = np.fromiter((hash(k) for k in keys if "" not in k), np.int64)
            if len(asked):
                hit |= np.isin(np.frombuffer(hashes, np.int64), asked)
        ends = self._ends
        view = memoryview(self._buffer)
        out: list[Record] = []
        for position in np.flatnonzero(hit).tolist():
            start = ends[position - 1] if position else 0
            rid, fields, updated_at, deleted, problem = self._decode(view[start : ends[position]])
            out.append(Record(rid, fields, updated_at, deleted, problem))
        return out
