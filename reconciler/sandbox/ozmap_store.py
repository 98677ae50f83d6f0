"""In-memory record store of the OZmap sandbox: collections, ids, the clock, indexes and cached list queries.

Records are stored exactly in API shape (plain dicts, ``id`` + ``_id``, ISO-ms-Z timestamps, computed
``lat``/``lng``) so a page is encoded without per-row work. The store is copy-on-write: a write builds a new dict
(callers never mutate a stored record or its nested values in place), so pages being encoded and populated
references stay consistent.

Performance model (1M+ rows):

* ``load`` takes ownership of the given dicts, fills only what is missing, then ``gc.freeze()``-s big loads;
* every write bumps a per-collection ``version``; list queries are cached per (collection, canonical filter,
  canonical sort) and reused while the version is unchanged, so paging costs O(N) once, then O(page) per page;
* indexes are built lazily on first use and maintained incrementally on writes: hash indexes for ``=``/``in`` on
  the reference-like paths of :data:`INDEXED_PATHS` (plus ``id``), an ``updatedAt`` order for ``updatedAt > / >=``
  (O(changes)), the set of soft-deleted ids for ``deletedAt`` filters, and a 0.01° grid for ``near`` with a radius.

Timestamps come from a monotonic helper: every write gets a stamp strictly greater than the previous one (and than
any loaded ``updatedAt``), even within one millisecond, so ``updatedAt > cursor`` never misses a write.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import gc
import hashlib
import math
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from reconciler.sandbox.ozmap_geo import point_of
from reconciler.sandbox.ozmap_index import Table, bucket_ids, grid_cell
from reconciler.sandbox.ozmap_query import CompiledFilter, Condition, compile_filter, compile_sort, sort_key
from reconciler.sandbox.ozmap_values import ApiError, Record, format_ms, parse_ms

DEFAULT_API_KEY: Final = "ozmap-sandbox-api-key"
INDEXED_PATHS: Final = frozenset(
    {
        "parent",
        "project",
        "box",
        "client",
        "code",
        "drop",
        "boxA",
        "boxB",
        "olt",
        "slot",
        "external_id",
        "onu.serial_number",
        "connections.id",
        "connections.fiber",
        "connectables",  # PON fibres, slot PONs, OLT slots: the topology traced by incremental box reads
        "connectables.output",  # a network splitter's output fibres
    }
)
#: The indexes the engine's queries use, by collection (``updatedAt`` = the change order), which
#: :meth:`OzmapStore.build_query_indexes` builds before serving, like a database that has them before its first
#: query — otherwise the first incremental read of a large world pays for sorting and hashing whole collections.
QUERIED_INDEXES: Final[dict[str, tuple[str, ...]]] = {
    "boxes": ("updatedAt",),
    "buildings": ("updatedAt",),
    "splitters": ("parent", "connectables.output", "updatedAt"),
    "pons": ("connectables",),
    "slots": ("connectables",),
    "olts": ("connectables",),
    "properties": ("updatedAt", "client", "box"),
    "ftth-clients": ("updatedAt", "code"),
}
POINT_LIKE: Final = frozenset(
    {
        "boxes",
        "buildings",
        "properties",
        "poles",
        "pops",
        "pendencies",
        "prospects",
        "points",
        "junction-boxes",
    }
)
DEFAULT_KINDS: Final = {
    "boxes": "Box",
    "buildings": "Building",
    "splitters": "Splitter",
    "properties": "Property",
    "ftth-clients": "ftth",
    "cables": "Cable",
    "olts": "OLT",
    "slots": "Slot",
    "pons": "PON",
    "pops": "Pop",
    "poles": "Pole",
}
POLYGON_MODELS: Final = {
    "project": "projects",
    "region": "regions",
    "horizontalCondominium": "horizontal-condominiums",
}
CACHE_ENTRIES: Final = 16
CACHE_MIN_ROWS: Final = 256
FREEZE_MIN_ROWS: Final = 50_000
MAX_GRID_CELLS: Final = 4096


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OzmapStore:
    """The sandbox's data: API-shaped records per collection (collection = API path name, e.g. ``"boxes"``).

    ``api_keys`` maps key → user name (``creatorData``; default: one key :data:`DEFAULT_API_KEY` for ``"api"``);
    ``logins`` maps login → password for ``POST /users/login``, which answers the key of the user named like the
    login, else the first key. ``default_radius`` (metres) serves ``ftth-viability/radius``. ``clock`` returns an
    aware UTC datetime (None: the real clock); ``advance_clock`` shifts it.
    """

    def __init__(
        self,
        *,
        api_keys: dict[str, str] | None = None,
        logins: dict[str, str] | None = None,
        default_radius: float = 200.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.api_keys = dict(api_keys) if api_keys is not None else {DEFAULT_API_KEY: "api"}
        self.logins = dict(logins or {})
        self.default_radius = default_radius
        self._clock = clock or _utcnow
        self._offset_ms = 0
        self._last_ms = 0
        self._last_oid = 0
        self._collections: dict[str, Table] = {}
        self._counters: collections.Counter[str] = collections.Counter()

    # -- identity, clock, ids --------------------------------------------------------------------------------

    def creator(self, user_name: str) -> Record:
        """``creatorData`` of a user: id of the ``users`` record with that username/name if any, else derived."""
        users = self._collections.get("users")
        if users is not None:
            for user in users.rows.values():
                if user.get("username") == user_name or user.get("name") == user_name:
                    return {"id": user["id"], "name": user.get("name", user_name), "username": user_name}
        derived = hashlib.sha1(user_name.encode()).hexdigest()[:24]
        return {"id": derived, "name": user_name, "username": user_name}

    def user_for_key(self, key: str) -> Record | None:
        name = self.api_keys.get(key)
        return None if name is None else self.creator(name)

    def login(self, login: str, password: str) -> str | None:
        """The API key ``POST /users/login`` answers, or None for wrong credentials."""
        if not self.api_keys or self.logins.get(login) != password:
            return None
        for key, name in self.api_keys.items():
            if name == login:
                return key
        return next(iter(self.api_keys))

    def now_ms(self) -> int:
        """Current clock reading in epoch ms (no monotonic bump)."""
        return int(self._clock().timestamp() * 1000) + self._offset_ms

    def stamp(self) -> str:
        """A write timestamp, strictly greater than every earlier stamp and loaded ``updatedAt``."""
        self._last_ms = max(self.now_ms(), self._last_ms + 1)
        return format_ms(self._last_ms)

    def advance_clock(self, seconds: float) -> str:
        """Move the clock forward (tests of incremental cursors); returns the new time."""
        self._offset_ms += int(seconds * 1000)
        return format_ms(self.now_ms())

    def new_id(self) -> str:
        """A fresh 24-hex ObjectId, increasing (timestamp seconds in the top 4 bytes, then a counter)."""
        self._last_oid = max((self.now_ms() // 1000) << 64, self._last_oid + 1)
        return f"{self._last_oid:024x}"

    def next_counter(self, name: str) -> int:
        self._counters[name] += 1
        return self._counters[name]

    # -- reads -----------------------------------------------------------------------------------------------

    def build_indexes(self, collection: str, *paths: str) -> None:
        """Build these indexes now instead of on first use, as a database has its indexes before the first
        query (``updatedAt`` = the change order; other paths must be in :data:`INDEXED_PATHS`)."""
        coll = self._coll(collection)
        for path in paths:
            if path == "updatedAt":
                coll.updated_order()
            elif path in INDEXED_PATHS:
                coll.hash_index(path)
            else:
                raise ValueError(f"{collection}: no index on {path!r}")

    def build_query_indexes(self) -> None:
        """:data:`QUERIED_INDEXES` of the collections loaded so far, built now (see :meth:`build_indexes`)."""
        for name, paths in QUERIED_INDEXES.items():
            if name in self._collections:
                self.build_indexes(name, *paths)

    def collection_names(self) -> list[str]:
        return sorted(self._collections)

    def has_collection(self, collection: str) -> bool:
        return collection in self._collections

    def version(self, collection: str) -> int:
        coll = self._collections.get(collection)
        return 0 if coll is None else coll.version

    def all(self, collection: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every record (API shape, ``_id`` order) as shallow copies: nested values are shared, do not mutate."""
        coll = self._collections.get(collection)
        if coll is None:
            return []
        rows, deleted = coll.rows, coll.deleted
        return [dict(rows[i]) for i in coll.ordered_ids() if include_deleted or i not in deleted]

    def get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        """A deep copy of one record, soft-deleted ones included (check ``deletedAt``), or None."""
        record = self.row(collection, record_id)
        return None if record is None else copy.deepcopy(record)

    def row(self, collection: str, record_id: str) -> Record | None:
        """The stored record itself (read-only), deleted ones included."""
        coll = self._collections.get(collection)
        return None if coll is None else coll.rows.get(record_id)

    def table(self, collection: str) -> dict[str, Record]:
        """The collection's stored records by id (read-only view for fast page rendering)."""
        return self._coll(collection).rows

    def live(self, collection: str, record_id: Any) -> Record | None:
        """The stored record if it exists and is not soft-deleted."""
        if not isinstance(record_id, str):
            return None
        record = self.row(collection, record_id)
        return None if record is None or record.get("deletedAt") is not None else record

    def lookup(self, collection: str, path: str, value: Any) -> list[Record]:
        """Live records whose ``path`` equals ``value`` (index-backed), in ``_id`` order."""
        flt = [{"property": path, "operator": "=", "value": value}]
        coll = self._coll(collection)
        return [coll.rows[i] for i in self._run(coll, flt, None)[0]]

    def count(self, collection: str) -> int:
        coll = self._collections.get(collection)
        return 0 if coll is None else len(coll.rows) - len(coll.deleted)

    # -- writes ----------------------------------------------------------------------------------------------

    def load(self, collection: str, rows: Iterable[dict[str, Any]]) -> None:
        """Bulk-load API-shaped records (the store takes ownership of the dicts); fills ``_id``, ``kind``,
        ``lat``/``lng`` and missing timestamps. Existing ids are replaced."""
        coll = self._coll(collection)
        data, deleted = coll.rows, coll.deleted
        kind = DEFAULT_KINDS.get(collection)
        point_like = collection in POINT_LIKE
        max_id = max_updated = ""
        enabled = gc.isenabled()
        gc.disable()
        before = len(data)
        try:
            for row in rows:
                rid = row.get("id") or row.get("_id")
                if rid is None:
                    rid = row["id"] = self.new_id()
                elif "id" not in row:
                    row["id"] = rid
                if "_id" not in row:
                    row["_id"] = rid
                if kind is not None and "kind" not in row:
                    row["kind"] = kind
                if point_like and "lat" not in row:
                    coords = row.get("coords")
                    if type(coords) is list and len(coords) == 2:
                        row["lng"], row["lat"] = coords
                    else:
                        row["lat"] = row["lng"] = None
                updated = row.get("updatedAt")
                if updated is None or "createdAt" not in row:
                    now = self.stamp()
                    row.setdefault("createdAt", now)
                    updated = row.setdefault("updatedAt", now)
                if updated > max_updated:
                    max_updated = updated
                if rid > max_id:
                    max_id = rid
                if row.get("deletedAt") is not None:
                    deleted.add(rid)
                elif deleted:
                    deleted.discard(rid)
                data[rid] = row
        finally:
            if enabled:
                gc.enable()
        self._after_load(coll, max_id, max_updated)
        if len(data) - before >= FREEZE_MIN_ROWS:
            gc.freeze()  # big, long-lived data: keep it out of every later GC pass

    def _after_load(self, coll: Table, max_id: str, max_updated: str) -> None:
        """Drop the indexes (rebuilt lazily) and keep stamps and new ids above everything loaded."""
        coll.sorted_dirty = True
        coll.hash.clear()
        coll.updated = coll.geo = None
        coll.version += 1
        coll.cache.clear()
        if max_updated:
            with contextlib.suppress(ValueError):
                self._last_ms = max(self._last_ms, parse_ms(max_updated))
        if len(max_id) == 24:
            with contextlib.suppress(ValueError):
                self._last_oid = max(self._last_oid, int(max_id, 16))

    def insert(self, collection: str, record: Record) -> Record:
        """Store a new record as given, filling ``id``/``_id``, timestamps, ``kind`` and ``lat``/``lng``."""
        coll = self._coll(collection)
        rid = record.get("id") or record.get("_id") or self.new_id()
        if rid in coll.rows:
            raise ApiError(400, f"duplicate id {rid}")
        now = self.stamp()
        stored: Record = {"id": rid, "_id": rid}
        kind = DEFAULT_KINDS.get(collection)
        if kind is not None:
            stored["kind"] = kind
        stored.update(record)
        stored["id"] = stored["_id"] = rid
        stored.setdefault("createdAt", now)
        stored.setdefault("updatedAt", now)
        if collection in POINT_LIKE or "coords" in stored:
            point = point_of(stored.get("coords"))
            stored["lat"], stored["lng"] = point if point is not None else (None, None)
        coll.rows[rid] = stored
        coll.add_to_indexes(stored)
        coll.version += 1
        return stored

    def update(
        self, collection: str, record_id: str, changes: dict[str, Any], *, bump: bool = True
    ) -> Record:
        """Replace top-level fields (copy-on-write), recompute ``lat``/``lng``, bump ``updatedAt``."""
        coll = self._coll(collection)
        old = coll.rows.get(record_id)
        if old is None:
            raise ApiError(404, f"{collection} {record_id} not found")
        new = dict(old)
        new.update(changes)
        new["id"] = new["_id"] = record_id
        if "coords" in changes:
            point = point_of(new.get("coords"))
            new["lat"], new["lng"] = point if point is not None else (None, None)
        if bump:
            new["updatedAt"] = self.stamp()
        coll.remove_from_indexes(old)
        coll.rows[record_id] = new
        coll.add_to_indexes(new)
        coll.version += 1
        return new

    def soft_delete(self, collection: str, record_id: str) -> Record:
        """Set ``deletedAt`` (= the new ``updatedAt``); the record leaves lists unless a filter names deletedAt."""
        now = self.stamp()
        return self.update(collection, record_id, {"deletedAt": now, "updatedAt": now}, bump=False)

    # -- queries ---------------------------------------------------------------------------------------------

    def query(self, collection: str, flt: Any, sort: Any) -> list[str]:
        """Ids matching ``flt`` in ``sort`` order (default ``_id`` asc; ``near`` without sort: nearest first).

        Soft-deleted records are excluded unless the filter names ``deletedAt``. Results of scans and large
        results are cached until the next write to the collection; treat the list as read-only. Raises
        ApiError(400) on a bad filter or sort.
        """
        coll = self._coll(collection)
        try:
            key = msgspec.json.encode([flt, sort], order="sorted")
        except (TypeError, msgspec.EncodeError) as exc:
            raise ApiError(400, f"invalid filter: {exc}") from None
        cached = coll.cache.get(key)
        if cached is not None and cached[0] == coll.version:
            coll.cache.move_to_end(key)
            return cached[1]
        ids, scanned = self._run(coll, flt, sort)
        if scanned or len(ids) > CACHE_MIN_ROWS:
            coll.cache[key] = (coll.version, ids)
            while len(coll.cache) > CACHE_ENTRIES:
                coll.cache.popitem(last=False)
        return ids

    def _run(self, coll: Table, flt: Any, sort: Any) -> tuple[list[str], bool]:
        compiled = compile_filter(flt, self._polygon)
        spec = compile_sort(sort)
        ids, scanned = self._execute(coll, compiled)
        rows = coll.rows
        if spec:
            for getter, descending in reversed(spec):
                ids.sort(key=lambda i: sort_key(getter(rows[i])), reverse=descending)
        elif compiled.near is not None and compiled.near_getter is not None:
            near, get = compiled.near, compiled.near_getter

            def distance(rid: str) -> float:
                found = near.distance(get(rows[rid]))
                return math.inf if found is None else found

            ids.sort(key=distance)
        return ids, scanned

    def _execute(self, coll: Table, compiled: CompiledFilter) -> tuple[list[str], bool]:
        rows, predicate = coll.rows, compiled.predicate
        hide_deleted = bool(coll.deleted) and not compiled.names_deleted
        candidates = self._candidates(coll, compiled)
        if candidates is None:
            ordered = coll.ordered_ids()
            if predicate is None:
                if not hide_deleted:
                    return list(ordered), True
                deleted = coll.deleted
                return [i for i in ordered if i not in deleted], True
            scan: Iterable[str] = ordered
        else:
            scan = sorted(candidates)
        scanned = candidates is None
        if hide_deleted:
            if predicate is None:
                return [i for i in scan if rows[i].get("deletedAt") is None], scanned
            return [i for i in scan if (r := rows[i]).get("deletedAt") is None and predicate(r)], scanned
        if predicate is None:
            return list(scan), scanned
        return [i for i in scan if predicate(rows[i])], scanned

    def _candidates(self, coll: Table, compiled: CompiledFilter) -> Collection[str] | None:
        best: Collection[str] | None = None
        for condition in compiled.conditions:
            found = self._candidates_for(coll, condition)
            if found is not None and (best is None or len(found) < len(best)):
                best = found
        if best is not None and len(best) > len(coll.rows) // 2:
            return None  # a scan in id order is cheaper than sorting most of the collection
        return best

    def _candidates_for(self, coll: Table, condition: Condition) -> Collection[str] | None:
        path, op = condition.path, condition.op
        if op in ("=", "in") and condition.targets is not None:
            if path in ("id", "_id"):
                return {t for t in condition.targets if type(t) is str and t in coll.rows}
            if path in INDEXED_PATHS:
                index = coll.hash_index(path)
                found: set[str] = set()
                for target in condition.targets:
                    found.update(bucket_ids(index.get(target)))
                return found
        if path == "deletedAt" and (op in (">", ">=") or (op == "exists" and condition.operand is True)):
            return set(coll.deleted)
        if path == "updatedAt" and op in (">", ">=") and condition.date_text is not None:
            bound, strict = condition.date_text, op == ">"
            newer: list[str] = []
            for rid, stamp in reversed(coll.updated_order().items()):
                if stamp < bound or (strict and stamp == bound):
                    break
                newer.append(rid)
            return newer
        if path == "coords" and condition.near is not None and condition.near.radius is not None:
            return self._near_cells(coll, condition.near.lat, condition.near.lng, condition.near.radius)
        return None

    def _near_cells(self, coll: Table, lat: float, lng: float, radius: float) -> set[str] | None:
        dlat = radius / 111_000.0 + 0.001
        dlng = radius / (111_000.0 * max(0.01, math.cos(math.radians(min(89.0, abs(lat)))))) + 0.001
        lat0, lng0 = grid_cell(lat - dlat, lng - dlng)
        lat1, lng1 = grid_cell(lat + dlat, lng + dlng)
        if (lat1 - lat0 + 1) * (lng1 - lng0 + 1) > MAX_GRID_CELLS:
            return None
        grid = coll.geo_index()
        found: set[str] = set()
        for a in range(lat0, lat1 + 1):
            for b in range(lng0, lng1 + 1):
                found.update(bucket_ids(grid.get((a, b))))
        return found

    def _polygon(self, model: str, record_id: str) -> Any:
        record = self.live(POLYGON_MODELS.get(model, model), record_id)
        if record is None:
            return None
        for key in ("area", "polygon", "geometry", "coordinates"):
            if record.get(key):
                return record[key]
        return None

    def _coll(self, collection: str) -> Table:
        coll = self._collections.get(collection)
        if coll is None:
            coll = self._collections[collection] = Table(collection)
        return coll
