"""The OZmap connector: the collections of :mod:`.catalog` over API v2.

Every collection streams incrementally on ``updatedAt >= since`` (sorted ``updatedAt``, then ``id``) and lists
soft-deleted records with ``deletedAt >= since``. Joined views add what their records are made of:

- ``connections`` also re-reads the properties of clients updated since (a client edit bumps the client, not its
  property; a record's ``updated_at`` is the later of the two), and reports as removed the properties deleted
  since *and* those updated since that no longer have a client (cancelled or detached);
- ``building-splitters`` reads the buildings changed since plus the buildings of service splitters changed
  since, and reports as removed the splitters deleted since and those of buildings deleted since;
- ``splitters`` and ``pons`` stream through :mod:`.field_sync`.

Writes: create = POST (not retried after it may have reached the server), update = PATCH of the changed fields
only, delete = DELETE; ``reservations`` create and delete and the ``cancel`` operation are in :mod:`.operations`.
"""

from __future__ import annotations

import operator
import random
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import ClassVar
from urllib.parse import quote

import aiohttp
import anyio

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors import paging
from reconciler.connectors.base import Catalog
from reconciler.connectors.ozmap import field_sync, joins, mapping, operations, views
from reconciler.connectors.ozmap.catalog import CATALOG, SPECS, Spec
from reconciler.connectors.ozmap.client import Filter, OzmapClient, Sort, batches, cond, sort_by
from reconciler.model import Fields, Record, Value

__all__ = ["CATALOG", "OzmapConnector"]

_record_id = operator.attrgetter("id")
_SINCE = sort_by("updatedAt", "id")


class OzmapConnector:
    """OZmap API v2. ``rng`` seeds the retry jitter (None for a fresh one; pass one in tests)."""

    CATALOG: ClassVar[Catalog] = CATALOG

    def __init__(
        self, config: SystemConfig, session: aiohttp.ClientSession, *, rng: random.Random | None = None
    ) -> None:
        self.system = config.name
        self._client = OzmapClient(config, session, rng=rng)

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
        # a hint that only connections take (``select``, and no splitter listing unless box_port is read): the
        # other collections' records carry every field, and reading them whole costs no request
        fields: Collection[str] | None = None,
    ) -> AsyncIterator[Sequence[Record]]:
        if collection == "building-splitters":
            return self._building_splitters(since, deleted=deleted)
        if collection in field_sync.COLLECTIONS:  # splitters, pons
            return field_sync.stream(self._client, collection, since, deleted=deleted)
        spec = self._spec(collection)
        projection = self._projection(spec, fields)
        if deleted:
            window: Filter = [cond("deletedAt", ">=", since) if since else cond("deletedAt", "exists", True)]
            gone = self._records(spec, window, sort_by("deletedAt", "id"), deleted=True)
            return self._detached(gone, since) if spec.join == "connections" else gone
        if since:
            lazy = joins.Shared(
                self._client, lazy=True
            )  # a few changes: trace their OLTs, do not list them all
            since_stream = self._records(
                spec, [cond("updatedAt", ">=", since)], _SINCE, shared=lazy, projection=projection
            )
            if spec.join == "connections":
                return self._with_clients(since_stream, since, projection)
            return since_stream
        return self._records(spec, None, None, projection=projection)

    async def fetch_by_ids(
        self, collection: str, ids: Sequence[str], *, fields: Collection[str] | None = None
    ) -> list[Record]:
        if collection in field_sync.COLLECTIONS:
            return await field_sync.fetch_by_ids(self._client, collection, ids)
        chunks = batches(list(dict.fromkeys(ids)))
        found: list[list[Record]] = [[] for _ in chunks]
        failures: list[Exception] = []
        shared = joins.Shared(self._client, lazy=True)  # project names once; only these records' OLTs traced
        spec = None if collection == "building-splitters" else self._spec(collection)
        projection = self._projection(spec, fields) if spec is not None else None

        async def one(n: int, batch: Sequence[str]) -> None:
            try:
                if spec is None:
                    found[n] = await self._splitters_by_id(list(batch))
                    return
                condition = [cond("id", "in", list(batch))]
                async for page in self._records(spec, condition, None, shared=shared, projection=projection):
                    found[n].extend(page)
            except Exception as exc:  # raised once the group is done, as the sequential loop would
                failures.append(exc)

        # batches run side by side; the transport's gate keeps the requests in flight at `concurrency`
        async with anyio.create_task_group() as tg:
            for n, batch in enumerate(chunks):
                tg.start_soon(one, n, batch)
        if failures:
            raise failures[0]
        return [record for rows in found for record in rows]

    async def find(self, collection: str, match: Mapping[str, Value]) -> list[Record]:
        unknown = set(match) - self.CATALOG[collection].fields if collection in self.CATALOG else set()
        if unknown:
            raise errors.ConfigError(f"{self.system} {collection}: no field(s) {', '.join(sorted(unknown))}")
        if collection == "building-splitters":
            found = [r async for page in self._building_splitters(None) for r in page]
        elif collection in field_sync.COLLECTIONS:
            found = await field_sync.find(self._client, collection, match)
        elif collection == "connections" and isinstance(match.get("code"), str):
            found = await self._connections_of(str(match["code"]))
        else:
            spec = self._spec(collection)
            server = [cond(spec.filters[k], "=", v) for k, v in match.items() if k in spec.filters]
            found = [r async for page in self._records(spec, server or None, None) for r in page]
        return [r for r in found if all(_same(r.fields.get(k), v) for k, v in match.items())]

    async def create(self, collection: str, fields: Fields) -> str:
        spec = self._writable(collection, fields)
        if collection == "reservations":
            return await operations.create_reservation(self._client, fields)
        assert spec.body is not None
        return await self._client.create(spec.resource, spec.body(fields, None))

    async def update(self, collection: str, record_id: str, changes: Fields) -> None:
        spec = self._writable(collection, changes)
        if not changes:
            return
        if collection == "reservations":  # the client behind the reservation
            extra = set(changes) - set(mapping.CLIENT_PLAIN) - set(mapping.CLIENT_ONU)
            if extra:
                raise errors.ConfigError(
                    f"{self.system} reservations: not updatable: {', '.join(sorted(extra))}"
                )
            spec = SPECS["clients"]
        assert spec.body is not None
        current: Mapping[str, Value] | None = None
        if spec.needs_current & changes.keys() and spec.one is not None:
            view = await self._client.get(spec.resource, record_id, spec.one)
            current = spec.to_record(view).fields
        await self._client.patch(spec.resource, record_id, spec.body(changes, current))

    async def delete(self, collection: str, record_id: str) -> None:
        spec = self._writable(collection, {})
        if collection == "reservations":  # the client's property, client and drop
            await operations.delete_reservation(self._client, record_id)
            return
        await self._client.delete(spec.resource, record_id)

    async def operate(self, collection: str, record_id: str, operation: str, args: Fields) -> None:
        known = self.CATALOG.get(collection)
        if known is None or operation not in known.operations:
            raise errors.ConfigError(f"{self.system} {collection} has no operation {operation!r}")
        await operations.cancel(self._client, record_id, args)

    # -- internals ------------------------------------------------------------------------------------------

    def _spec(self, collection: str) -> Spec:
        spec = SPECS.get(collection)
        if spec is None:
            known = ", ".join(sorted(self.CATALOG))
            raise errors.ConfigError(f"{self.system}: unknown collection {collection!r} (known: {known})")
        return spec

    def _writable(self, collection: str, fields: Mapping[str, Value]) -> Spec:
        spec = self._spec(collection)
        schema = self.CATALOG[collection]
        if not schema.writable:
            raise errors.ConfigError(f"{self.system} {collection} is read-only")
        extra = set(fields) - schema.writable
        if extra:
            raise errors.ConfigError(f"{self.system} {collection}: not writable: {', '.join(sorted(extra))}")
        return SPECS[spec.writes] if spec.writes else spec

    @staticmethod
    def _projection(spec: Spec, fields: Collection[str] | None) -> mapping.ConnectionProjection | None:
        """What a read of ``fields`` selects and builds (connections only: see :meth:`stream`)."""
        if fields is None or spec.join != "connections":
            return None
        return mapping.ConnectionProjection(fields)

    def _records(
        self,
        spec: Spec,
        filter: Filter | None,
        sort: Sort | None,
        *,
        deleted: bool = False,
        shared: joins.Shared | None = None,
        projection: mapping.ConnectionProjection | None = None,
    ) -> AsyncIterator[list[Record]]:
        """``projection`` (connections): the fields the records get, and the ``select`` that reads them."""
        client = self._client
        join: joins.BoxJoin | joins.ConnectionJoin | None = None
        select = None
        if not deleted and spec.join == "boxes":
            join = joins.BoxJoin(client, shared)
        elif not deleted and spec.join == "connections":
            join = joins.ConnectionJoin(client, projection)
            select = projection.select if projection is not None else None
        conditions = [*spec.base, *(filter or [])] if not deleted else filter
        populate = spec.populate if join is not None else None

        async def fetch(request: paging.PageRequest) -> tuple[int, list[Record]]:
            problems: dict[str, str] = {}  # rows with bad data: quarantined by the rules, not a failed page
            page = await client.page(
                spec.resource,
                spec.decoder,
                request,
                filter=conditions or None,
                sort=sort,
                populate=populate,
                select=select,
                problems=problems,
            )
            if join is not None:
                return page.total, await join.records(page.rows, problems)
            records = [spec.to_record(row, deleted=deleted) for row in page.rows]
            return page.total, mapping.with_problems(records, problems)

        plan = paging.OffsetPaging(client.page_size, what=f"{self.system} {spec.resource}")
        return paging.stream_pages(plan, fetch, key=_record_id, window=client.window)

    async def _with_clients(
        self,
        changed: AsyncIterator[list[Record]],
        since: str,
        projection: mapping.ConnectionProjection | None,
    ) -> AsyncIterator[list[Record]]:
        """Connections changed since: properties updated since, then those of clients updated since."""
        seen: set[str] = set()
        async for page in changed:
            seen.update(r.id for r in page)
            yield page
        clients = await self._client.collect(
            "ftth-clients", views.CLIENTS, filter=[cond("updatedAt", ">=", since)], sort=_SINCE, problems={}
        )  # only their ids matter here: a client with bad data is quarantined through its connection
        for batch in batches([c.id for c in clients]):
            in_batch = [cond("client", "in", list(batch))]
            async for page in self._records(SPECS["connections"], in_batch, None, projection=projection):
                fresh = [r for r in page if r.id not in seen]
                seen.update(r.id for r in fresh)
                if fresh:
                    yield fresh

    async def _detached(
        self, gone: AsyncIterator[list[Record]], since: str | None
    ) -> AsyncIterator[list[Record]]:
        """Connections removed since: properties deleted, then properties updated since without a client."""
        async for page in gone:
            yield page
        if since is None:
            return
        without_client = [cond("client", "=", None), cond("updatedAt", ">=", since)]
        async for page in self._records(SPECS["properties"], without_client, _SINCE):
            yield [mapping.gone_record(r.id, r.updated_at) for r in page]

    async def _connections_of(self, code: str) -> list[Record]:
        """``GET /properties/client/<code>`` (ozmap.md F7): the client's properties, joined."""
        try:
            rows = await self._client.read(
                f"/properties/client/{quote(code, safe='')}", views.CONNECTION_LIST
            )
        except errors.NotFound:
            return []
        return await joins.ConnectionJoin(self._client).records(rows)

    async def _building_splitters(
        self, since: str | None, *, deleted: bool = False
    ) -> AsyncIterator[list[Record]]:
        client = self._client
        join = joins.BuildingJoin(client, joins.Shared(client, lazy=since is not None))
        if deleted:
            async for page in self._gone_building_splitters(since):
                yield page
            return
        problems: dict[str, str] = {}  # building id → bad data, carried onto each of its splitters
        if since is None:
            async for buildings in client.pages("buildings", views.BUILDINGS, problems=problems):
                yield await join.records(buildings, problems)
            return
        changed = await client.collect(
            "buildings", views.BUILDINGS, filter=[cond("updatedAt", ">=", since)], problems=problems
        )
        splitters = await client.collect(
            "splitters",
            views.SERVICE_SPLITTERS,
            filter=[cond("updatedAt", ">=", since), cond("isDrop", "=", True)],
        )
        known = {b.id for b in changed}
        parents = sorted({s.parent for s in splitters if s.parent and s.parent not in known})
        for batch in batches(parents):
            changed += await client.collect(
                "buildings", views.BUILDINGS, filter=[cond("id", "in", list(batch))], problems=problems
            )
        for start in range(0, len(changed), 50):
            yield await join.records(changed[start : start + 50], problems)

    async def _gone_building_splitters(self, since: str | None) -> AsyncIterator[list[Record]]:
        client = self._client
        window = cond("deletedAt", ">=", since) if since else cond("deletedAt", "exists", True)
        splitters = await client.collect("splitters", views.SERVICE_SPLITTERS, filter=[window])
        yield [mapping.gone_record(s.id, s.deleted_at or s.updated_at) for s in splitters if s.is_drop]
        buildings = await client.collect("buildings", views.BUILDINGS, filter=[window])
        of_building = await joins.service_splitters(client, [b.id for b in buildings])
        marker = {b.id: b.deleted_at or b.updated_at for b in buildings}
        yield [mapping.gone_record(s.id, marker[p]) for p, items in of_building.items() for s in items]

    async def _splitters_by_id(self, ids: list[str]) -> list[Record]:
        client = self._client
        splitters = await client.collect("splitters", views.SERVICE_SPLITTERS, filter=[cond("id", "in", ids)])
        parents = sorted({s.parent for s in splitters if s.parent and s.is_drop})
        if not parents:
            return []
        problems: dict[str, str] = {}
        buildings = await client.collect(
            "buildings", views.BUILDINGS, filter=[cond("id", "in", parents)], problems=problems
        )
        wanted = set(ids)
        join = joins.BuildingJoin(client, joins.Shared(client, lazy=True))
        return [r for r in await join.records(buildings, problems) if r.id in wanted]


def _same(actual: Value, wanted: Value) -> bool:
    """Exact equality (case-sensitive; ``True`` is not ``1``)."""
    return actual == wanted and isinstance(actual, bool) == isinstance(wanted, bool)
