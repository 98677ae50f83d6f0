"""Indexes of one OZmap sandbox collection: rows by id, ``_id`` order, hash/``updatedAt``/geo indexes, query cache.

Every index is built lazily on first use and then maintained incrementally by :meth:`Table.add_to_indexes`
and :meth:`Table.remove_from_indexes`, which the store calls around every write (records are replaced, never
mutated). Hash-index buckets are a bare id string while a key has one record and a set beyond, which keeps a
1M-row reference index small.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Hashable, Iterable
from typing import Final

from reconciler.sandbox.ozmap_geo import point_of
from reconciler.sandbox.ozmap_values import Getter, Record, index_keys, make_getter

GRID_CELLS_PER_DEGREE: Final = 100
Bucket = str | set[str]


def bucket_add(index: dict[Hashable, Bucket], key: Hashable, rid: str) -> None:
    current = index.get(key)
    if current is None:
        index[key] = rid
    elif type(current) is str:
        if current != rid:
            index[key] = {current, rid}
    else:
        current.add(rid)  # type: ignore[union-attr]


def bucket_remove(index: dict[Hashable, Bucket], key: Hashable, rid: str) -> None:
    current = index.get(key)
    if current is None:
        return
    if type(current) is str:
        if current == rid:
            del index[key]
        return
    assert isinstance(current, set)
    current.discard(rid)
    if len(current) == 1:
        index[key] = next(iter(current))
    elif not current:
        del index[key]


def bucket_ids(bucket: Bucket | None) -> Iterable[str]:
    if bucket is None:
        return ()
    return (bucket,) if type(bucket) is str else bucket


def grid_cell(lat: float, lng: float) -> tuple[int, int]:
    return math.floor(lat * GRID_CELLS_PER_DEGREE), math.floor(lng * GRID_CELLS_PER_DEGREE)


class Table:
    """One collection: rows by id plus lazily built, incrementally maintained indexes and the query cache."""

    __slots__ = (
        "cache",
        "deleted",
        "geo",
        "hash",
        "name",
        "rows",
        "sorted_dirty",
        "sorted_ids",
        "updated",
        "version",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: dict[str, Record] = {}
        self.version = 0
        self.sorted_ids: list[str] = []
        self.sorted_dirty = False
        self.hash: dict[str, tuple[Getter, dict[Hashable, Bucket]]] = {}
        self.updated: dict[str, str] | None = None  # id -> updatedAt, ascending
        self.geo: dict[Hashable, Bucket] | None = None
        self.deleted: set[str] = set()
        self.cache: collections.OrderedDict[bytes, tuple[int, list[str]]] = collections.OrderedDict()

    def ordered_ids(self) -> list[str]:
        if self.sorted_dirty:
            self.sorted_ids = sorted(self.rows)
            self.sorted_dirty = False
        return self.sorted_ids

    def add_to_indexes(self, record: Record) -> None:
        rid = record["id"]
        if not self.sorted_dirty:
            ids = self.sorted_ids
            if not ids or rid > ids[-1]:
                ids.append(rid)
            else:
                position = bisect.bisect_left(ids, rid)
                if position == len(ids) or ids[position] != rid:
                    ids.insert(position, rid)
        for getter, index in self.hash.values():
            for key in index_keys(getter(record)):
                bucket_add(index, key, rid)
        if self.updated is not None:
            stamp = record.get("updatedAt") or ""
            if self.updated and stamp < next(reversed(self.updated.values())):
                self.updated = None  # out of order (explicit old stamp): rebuild lazily
            else:
                self.updated[rid] = stamp
        if self.geo is not None and (point := point_of(record.get("coords"))) is not None:
            bucket_add(self.geo, grid_cell(*point), rid)
        if record.get("deletedAt") is not None:
            self.deleted.add(rid)
        else:
            self.deleted.discard(rid)

    def remove_from_indexes(self, record: Record) -> None:
        rid = record["id"]
        for getter, index in self.hash.values():
            for key in index_keys(getter(record)):
                bucket_remove(index, key, rid)
        if self.updated is not None:
            self.updated.pop(rid, None)
        if self.geo is not None and (point := point_of(record.get("coords"))) is not None:
            bucket_remove(self.geo, grid_cell(*point), rid)

    def hash_index(self, path: str) -> dict[Hashable, Bucket]:
        entry = self.hash.get(path)
        if entry is None:
            getter = make_getter(path)
            index: dict[Hashable, Bucket] = {}
            for rid, record in self.rows.items():
                for key in index_keys(getter(record)):
                    bucket_add(index, key, rid)
            entry = self.hash[path] = (getter, index)
        return entry[1]

    def updated_order(self) -> dict[str, str]:
        if self.updated is None:
            pairs = sorted((record.get("updatedAt") or "", rid) for rid, record in self.rows.items())
            self.updated = {rid: stamp for stamp, rid in pairs}
        return self.updated

    def geo_index(self) -> dict[Hashable, Bucket]:
        if self.geo is None:
            self.geo = {}
            for rid, record in self.rows.items():
                if (point := point_of(record.get("coords"))) is not None:
                    bucket_add(self.geo, grid_cell(*point), rid)
        return self.geo
