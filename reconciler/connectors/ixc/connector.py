"""The IXC connector: every table of :mod:`.tables` as a raw collection of string-valued records.

- ``stream``: the whole table (sorted by id), or rows with ``ultima_atualizacao >= since`` (sorted by it) for
  incremental tables; given ``fields``, only those columns (with ``id`` and ``ultima_atualizacao``) are decoded.
  IXC cannot list deletions (``deleted=True`` → ConfigError; the catalog says so).
- ``fetch_by_ids``: ``<table>.id IN`` batches of at most 200 ids.
- ``find``: exact match; IXC compares text case-insensitively, so results are re-checked here, case-sensitively.
- ``create``: every writable column present (``""`` for unused ones) → the new id.
- ``update``: read the full row, overlay the changes, PUT it all back without ``id`` — never a partial body.
- ``delete``: DELETE.
- ``logins``: a read-only joined view over ``radusuarios`` (see :mod:`.logins`).
- ``operate``: IXC collections have no operations (ConfigError).

Records never carry credentials: ``senha*`` columns everywhere and the device ``login`` of transmitters are
dropped when rows become records. Updates work on the raw row, so a PUT writes credentials back unchanged.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import ClassVar, cast

import aiohttp

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors.base import Catalog
from reconciler.connectors.ixc import logins, tables
from reconciler.connectors.ixc.client import Cond, IxcClient, in_cond
from reconciler.connectors.ixc.views import to_text
from reconciler.model import Fields, Record, Value

#: Longest ``IN`` list per request.
IN_BATCH = 200
#: Joined read-only views, by collection name, and the table each one lists.
VIEWS = {"logins": "radusuarios"}
CATALOG: Catalog = {**tables.CATALOG, "logins": logins.SCHEMA}


class IxcConnector:
    """IXC Provedor webservice v1. ``rng`` seeds the retry jitter (None for a fresh one; pass one in tests)."""

    CATALOG: ClassVar[Catalog] = CATALOG

    def __init__(
        self, config: SystemConfig, session: aiohttp.ClientSession, *, rng: random.Random | None = None
    ) -> None:
        self.system = config.name
        self._client = IxcClient(config, session, rng=rng)
        self._logins = logins.LoginJoin(self._client)

    @classmethod
    def catalog(cls) -> Catalog:
        return cls.CATALOG

    def statistics(self) -> Mapping[str, int]:
        return self._client.transport.statistics()

    def stream(
        self,
        collection: str,
        *,
        since: str | None = None,
        deleted: bool = False,
        fields: Collection[str] | None = None,
    ) -> AsyncIterator[Sequence[Record]]:
        table = self._table(collection)
        view = collection if collection in VIEWS else ""
        if deleted:
            raise errors.ConfigError(f"{self.system}: IXC cannot list deleted {collection} rows")
        columns = _columns(table, fields) if fields is not None and not view else None
        if since is None:
            return self._records(table, [], sortname="id", view=view, columns=columns)
        if not self.CATALOG[collection].incremental:
            raise errors.ConfigError(f"{self.system} {collection} has no ultima_atualizacao to stream since")
        return self._records(
            table, [Cond("ultima_atualizacao", ">=", since)], sortname="ultima_atualizacao", columns=columns
        )

    async def fetch_by_ids(
        self,
        collection: str,
        ids: Sequence[str],
        *,
        # a hint this connector ignores, as in ``stream``
        fields: Collection[str] | None = None,
    ) -> list[Record]:
        table = self._table(collection)
        view = collection if collection in VIEWS else ""
        unique = list(dict.fromkeys(ids))
        out: list[Record] = []
        for start in range(0, len(unique), IN_BATCH):
            batch = unique[start : start + IN_BATCH]
            async for page in self._records(table, [in_cond("id", batch)], view=view):
                out.extend(page)
        return out

    async def find(self, collection: str, match: Mapping[str, Value]) -> list[Record]:
        table = self._table(collection)
        wanted = {column: to_text(value) for column, value in match.items()}
        secret = [c for c in wanted if table.is_secret(c)]
        if secret:
            raise errors.ConfigError(f"{self.system} {collection}: cannot match on {', '.join(secret)}")
        unknown = set(wanted) - self.CATALOG[collection].fields
        if unknown:
            raise errors.ConfigError(f"{self.system} {collection}: no field(s) {', '.join(sorted(unknown))}")
        # joined columns of a view are compared after the join, not sent as filters
        conds = [Cond(column, "=", value) for column, value in wanted.items() if column in table.columns]
        out: list[Record] = []
        async for page in self._records(table, conds, view=collection if collection in VIEWS else ""):
            out.extend(r for r in page if all(r.fields.get(c) == v for c, v in wanted.items()))
        return out

    async def create(self, collection: str, fields: Fields) -> str:
        table = self._writable(collection, fields)
        if not table.insert:
            raise errors.ConfigError(f"{self.system}: creating {collection} rows is not supported")
        body = dict.fromkeys(sorted(table.writable), "")
        body.update((column, to_text(value)) for column, value in fields.items())
        return await self._client.insert(table.name, body)

    async def update(self, collection: str, record_id: str, changes: Fields) -> None:
        table = self._writable(collection, changes)
        if not changes:
            return
        row = await self._client.read(table.name, record_id)
        body = {column: value for column, value in row.items() if column != "id"}
        body.update((column, to_text(value)) for column, value in changes.items())
        await self._client.put(table.name, record_id, body)

    async def delete(self, collection: str, record_id: str) -> None:
        table = self._writable(collection, {})
        await self._client.delete(table.name, record_id)

    async def operate(self, collection: str, record_id: str, operation: str, args: Fields) -> None:
        self._table(collection)
        raise errors.ConfigError(f"{self.system} {collection} has no operation {operation!r}")

    # -- internals ------------------------------------------------------------------------------------------

    def _table(self, collection: str) -> tables.Table:
        table = tables.TABLES.get(VIEWS.get(collection, collection))
        if table is None:
            known = ", ".join(sorted(self.CATALOG))
            raise errors.ConfigError(f"{self.system}: unknown collection {collection!r} (known: {known})")
        return table

    def _writable(self, collection: str, fields: Mapping[str, Value]) -> tables.Table:
        table = self._table(collection)
        if collection in VIEWS:
            raise errors.ConfigError(f"{self.system} {collection} is a read-only view")
        extra = set(fields) - table.writable
        if extra:
            raise errors.ConfigError(f"{self.system} {collection}: not writable: {', '.join(sorted(extra))}")
        return table

    async def _records(
        self,
        table: tables.Table,
        conds: Sequence[Cond],
        *,
        sortname: str = "id",
        view: str = "",
        columns: tuple[str, ...] | None = None,
    ) -> AsyncIterator[list[Record]]:
        async for rows in self._client.pages(table.name, conds, sortname=sortname, columns=columns):
            if view:
                yield await self._logins.records(rows)
            else:
                yield _to_records(table, rows)


def _columns(table: tables.Table, fields: Collection[str]) -> tuple[str, ...]:
    """The columns a stream decodes for ``fields``: those of the table, with the id and the change marker,
    never a credential (sorted: one decoder per set)."""
    wanted = {*fields, "id", "ultima_atualizacao"}
    return tuple(sorted(c for c in wanted if c in table.columns and not table.is_secret(c)))


def _to_records(table: tables.Table, rows: list[dict[str, str]]) -> list[Record]:
    """Rows → records, credentials dropped (the secret columns are found once per page, not per row)."""
    if not rows:
        return []
    width = len(rows[0])
    hidden = _hidden(table, rows[0])
    out: list[Record] = []
    for row in rows:
        for column in hidden if len(row) == width else _hidden(table, row):
            row.pop(column, None)
        out.append(
            Record(
                id=row.get("id", ""), fields=cast(Fields, row), updated_at=row.get("ultima_atualizacao", "")
            )
        )
    return out


def _hidden(table: tables.Table, row: Mapping[str, str]) -> list[str]:
    return [c for c in row if table.is_secret(c)]
