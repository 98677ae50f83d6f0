"""The replica connector: rule targets written into a local SQLite file that a field-service tool reads.

Seed 001 "Element Synchronization": the integrator keeps a replica of OZmap boxes and splitters in its own
database, creating, updating and deleting rows by the elements' creation, update and deletion dates. The engine
already does exactly that for any source → target pair (incremental reads by ``updatedAt``, deletions by
``deletedAt``, ``[removal] action = "delete"``), so the replica is simply a *target system*:

.. code-block:: toml

    [systems.replica]
    kind = "replica"
    url = "sqlite:///var/lib/reconciler/replica.db"   # sqlite:///abs/path.db, sqlite:rel/path.db or a bare path

No ``secret``. Tables and columns are :data:`~.tables.TABLES` (created on first use, WAL journal, file mode
0640 [assume: readable by the field tool's group]); a row's primary key is the OZmap id the rule maps into ``id``,
so a create is an idempotent upsert (a journaled create replayed after a crash never duplicates) and a link
"by natural key" finds rows already there. ``synced_at`` is set on every write.

I/O: one ``sqlite3`` connection per connector, used from worker threads (``anyio.to_thread``) one call at a
time (an ``anyio.Lock``); each write is its own transaction. No thread outlives a call, so nothing needs closing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiohttp
import anyio
import msgspec

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors.base import Catalog, CollectionSchema
from reconciler.connectors.replica.tables import TABLES, ColumnType, ddl
from reconciler.model import Fields, Record, Value

__all__ = ["CATALOG", "ReplicaConnector", "replica_path"]

T = TypeVar("T")

PAGE = 1000
_IN_BATCH = 500

CATALOG: Catalog = {
    table: CollectionSchema(
        fields=frozenset(columns),
        writable=frozenset(columns) - {"synced_at"},
        description=f"Replica table {table!r} (SQLite), one row per OZmap record",
    )
    for table, columns in TABLES.items()
}


def replica_path(url: str) -> Path:
    """``sqlite:///abs/file.db`` → ``/abs/file.db``; ``sqlite:rel.db`` / ``sqlite://rel.db`` / ``rel.db`` → ``rel.db``."""
    text = url.strip()
    for prefix in ("sqlite://", "sqlite:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if not text:
        raise errors.ConfigError(
            f"replica url {url!r} names no file (e.g. sqlite:///var/lib/reconciler/replica.db)"
        )
    return Path(text)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _to_sql(kind: ColumnType, value: Value) -> Any:
    if value is None:
        return None
    if kind == "JSON":
        return msgspec.json.encode(value).decode()
    if kind == "BOOLEAN":
        return 1 if value else 0
    if isinstance(value, list | dict):
        raise ValueError(f"a {kind} column cannot hold {value!r}")
    return value


def _from_sql(kind: ColumnType, value: Any) -> Value:
    if value is None:
        return None
    if kind == "JSON":
        decoded: Value = msgspec.json.decode(value)
        return decoded
    if kind == "BOOLEAN":
        return bool(value)
    result: Value = value
    return result


class ReplicaConnector:
    """A SQLite replica at the system's ``url``; ``session`` is accepted for the registry and not used."""

    CATALOG: ClassVar[Catalog] = CATALOG

    def __init__(self, config: SystemConfig, session: aiohttp.ClientSession | None = None) -> None:
        self.system = config.name
        self.path = replica_path(config.url)
        self._db: sqlite3.Connection | None = None
        self._lock = anyio.Lock()
        self._counters = {"reads": 0, "writes": 0}

    @classmethod
    def catalog(cls) -> Catalog:
        return cls.CATALOG

    def statistics(self) -> Mapping[str, int]:
        return dict(self._counters)

    # -- reads -------------------------------------------------------------------------------------------------

    async def stream(
        self,
        collection: str,
        *,
        since: str | None = None,
        deleted: bool = False,
        # a hint this connector ignores: its records carry every field, and reading them whole costs no request
        fields: Collection[str] | None = None,
    ) -> AsyncIterator[Sequence[Record]]:
        """Every row, in id order, :data:`PAGE` at a time (``since`` compares ``synced_at``; no deletions)."""
        columns = self._columns(collection)
        if deleted:
            raise errors.ConfigError(f"{self.system}: the replica does not list deleted rows")
        after = ""
        while True:
            where, args = 'WHERE "id" > ?', [after]
            if since is not None:
                where += ' AND "synced_at" >= ?'
                args.append(since)
            rows = await self._query(f'SELECT * FROM "{collection}" {where} ORDER BY "id" LIMIT {PAGE}', args)
            if rows:
                yield [self._record(collection, columns, row) for row in rows]
            if len(rows) < PAGE:
                return
            after = rows[-1]["id"]

    async def fetch_by_ids(
        self,
        collection: str,
        ids: Sequence[str],
        *,
        # a hint this connector ignores, as in ``stream``
        fields: Collection[str] | None = None,
    ) -> list[Record]:
        columns = self._columns(collection)
        unique = list(dict.fromkeys(ids))
        found: list[Record] = []
        for start in range(0, len(unique), _IN_BATCH):
            batch = unique[start : start + _IN_BATCH]
            rows = await self._select(collection, batch)
            found.extend(self._record(collection, columns, row) for row in rows)
        return found

    async def find(self, collection: str, match: Mapping[str, Value]) -> list[Record]:
        columns = self._columns(collection)
        unknown = set(match) - set(columns)
        if unknown:
            raise errors.ConfigError(f"{self.system} {collection}: no field(s) {', '.join(sorted(unknown))}")
        scalar = {k: v for k, v in match.items() if columns[k] != "JSON" and v is not None}
        where = " AND ".join(f'"{k}" = ?' for k in scalar) or "1"
        args = [_to_sql(columns[k], v) for k, v in scalar.items()]
        rows = await self._query(f'SELECT * FROM "{collection}" WHERE {where} ORDER BY "id"', args)
        records = [self._record(collection, columns, row) for row in rows]
        return [r for r in records if all(r.fields.get(k) == v for k, v in match.items())]

    # -- writes ------------------------------------------------------------------------------------------------

    async def create(self, collection: str, fields: Fields) -> str:
        """Insert the row whose primary key is ``fields["id"]`` (an upsert: safe to replay)."""
        columns = self._writable(collection, fields)
        row_id = fields.get("id")
        if not isinstance(row_id, str) or not row_id:
            raise errors.ConfigError(f"{self.system} {collection}: a create needs the OZmap id in field 'id'")
        values = self._values(columns, {**fields, "synced_at": _now()})
        names = ", ".join(f'"{k}"' for k in values)
        updates = ", ".join(f'"{k}" = excluded."{k}"' for k in values if k != "id")
        sql = (
            f'INSERT INTO "{collection}" ({names}) VALUES ({", ".join("?" * len(values))}) '
            f'ON CONFLICT("id") DO UPDATE SET {updates}'
        )
        await self._write(sql, list(values.values()))
        return row_id

    async def update(self, collection: str, record_id: str, changes: Fields) -> None:
        columns = self._writable(collection, changes)
        if changes.get("id", record_id) != record_id:
            raise errors.ConfigError(f"{self.system} {collection}: id is the primary key and cannot change")
        values = self._values(columns, {**changes, "synced_at": _now()})
        values.pop("id", None)
        assignments = ", ".join(f'"{k}" = ?' for k in values)
        sql = f'UPDATE "{collection}" SET {assignments} WHERE "id" = ?'
        if await self._write(sql, [*values.values(), record_id]) == 0:
            raise errors.NotFound(self.system, f"{collection} {record_id}: no such row in the replica")

    async def delete(self, collection: str, record_id: str) -> None:
        self._columns(collection)
        if await self._write(f'DELETE FROM "{collection}" WHERE "id" = ?', [record_id]) == 0:
            raise errors.NotFound(self.system, f"{collection} {record_id}: no such row in the replica")

    async def operate(self, collection: str, record_id: str, operation: str, args: Fields) -> None:
        self._columns(collection)
        raise errors.ConfigError(f"{self.system} {collection} has no operation {operation!r}")

    # -- internals ---------------------------------------------------------------------------------------------

    def _columns(self, collection: str) -> dict[str, ColumnType]:
        columns = TABLES.get(collection)
        if columns is None:
            known = ", ".join(sorted(TABLES))
            raise errors.ConfigError(f"{self.system}: unknown collection {collection!r} (known: {known})")
        return columns

    def _writable(self, collection: str, fields: Mapping[str, Value]) -> dict[str, ColumnType]:
        columns = self._columns(collection)
        extra = set(fields) - CATALOG[collection].writable
        if extra:
            raise errors.ConfigError(f"{self.system} {collection}: not writable: {', '.join(sorted(extra))}")
        return columns

    def _values(self, columns: Mapping[str, ColumnType], fields: Mapping[str, Value]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in fields.items():
            try:
                out[name] = _to_sql(columns[name], value)
            except ValueError as exc:
                raise errors.TerminalRemoteError(self.system, f"column {name}: {exc}") from None
        return out

    def _record(self, collection: str, columns: Mapping[str, ColumnType], row: sqlite3.Row) -> Record:
        fields: Fields = {name: _from_sql(kind, row[name]) for name, kind in columns.items()}
        marker = fields.get("synced_at")
        return Record(id=str(row["id"]), fields=fields, updated_at=marker if isinstance(marker, str) else "")

    async def _select(self, collection: str, ids: Sequence[str]) -> list[sqlite3.Row]:
        return await self._query(
            f'SELECT * FROM "{collection}" WHERE "id" IN ({", ".join("?" * len(ids))})', ids
        )

    async def _query(self, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        rows: list[sqlite3.Row] = await self._run(lambda db: db.execute(sql, args).fetchall())
        return rows

    async def _write(self, sql: str, args: Sequence[Any]) -> int:
        def write(db: sqlite3.Connection) -> int:
            with db:
                return db.execute(sql, args).rowcount

        self._counters["writes"] += 1
        return await self._run(write, count=False)

    async def _run(self, call: Callable[[sqlite3.Connection], T], *, count: bool = True) -> T:
        async with self._lock:
            if count:
                self._counters["reads"] += 1
            try:
                return await anyio.to_thread.run_sync(self._call, call)
            except sqlite3.Error as exc:
                raise errors.TransientRemoteError(self.system, f"replica {self.path}: {exc}") from exc

    def _call(self, call: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            self._db = self._open()
        return call(self._db)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        with db:
            db.execute("BEGIN")
            for statement in ddl():
                db.execute(statement)
        if fresh:
            os.chmod(self.path, 0o640)
        return db
