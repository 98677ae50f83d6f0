"""The OZmap connector: collections over API v2, including the joined ``boxes`` view.

Collections (see :data:`CATALOG`):

- ``boxes`` — read-only joined view (ozmap.md F11): each box with its project name, the count and summed outputs
  of its service (``isDrop``) splitters, and the OLT feeding its first service splitter (traced by
  :mod:`.topology`). Projects and the topology are listed once per stream, lazily; service splitters are
  listed per page of boxes with ``parent in [≤200 ids]``.
- ``projects``, ``olts`` — plain read views.
- ``clients`` (``/ftth-clients``) and ``properties`` — read/write, prepared for the client integrations.

Every collection streams incrementally on ``updatedAt >= since`` (sorted ``updatedAt``, then ``id``) and lists
soft-deleted records with ``deletedAt >= since``. Writes: create = POST (not retried after it may have reached the
server), update = PATCH of the changed fields only, delete = DELETE.
"""

from __future__ import annotations

import collections
import operator
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import aiohttp
import anyio
import msgspec

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors import paging
from reconciler.connectors.base import Catalog, CollectionSchema
from reconciler.connectors.ozmap import mapping, views
from reconciler.connectors.ozmap.client import Filter, OzmapClient, Sort, batches, cond, sort_by
from reconciler.connectors.ozmap.topology import Topology, summarize
from reconciler.model import Fields, Record, Value

_record_id = operator.attrgetter("id")

BOX_FIELDS = frozenset(
    {
        "id", "name", "project_id", "project_name", "implanted", "draft", "lat", "lng", "observation",
        "address", "service_splitters", "service_ports", "olt_ip", "olt_name",
    }
)  # fmt: skip
CLIENT_WRITABLE = frozenset(mapping.CLIENT_PLAIN) | frozenset(mapping.CLIENT_ONU)
PROPERTY_WRITABLE = frozenset(mapping.PROPERTY_PLAIN) | {"lat", "lng"}

CATALOG: Catalog = {
    "boxes": CollectionSchema(
        fields=BOX_FIELDS,
        incremental=True,
        deletions=True,
        description="Boxes joined with project name, service splitters/ports and the OLT feeding them",
    ),
    "projects": CollectionSchema(
        fields=frozenset({"id", "name"}), incremental=True, deletions=True, description="Projects"
    ),
    "olts": CollectionSchema(
        fields=frozenset({"id", "name", "ip"}), incremental=True, deletions=True, description="OLT chassis"
    ),
    "clients": CollectionSchema(
        fields=CLIENT_WRITABLE | {"id"},
        writable=CLIENT_WRITABLE,
        incremental=True,
        deletions=True,
        description="FTTH clients (/ftth-clients); onu_* travel as one onu object",
    ),
    "properties": CollectionSchema(
        fields=PROPERTY_WRITABLE | {"id", "drop_id"},
        writable=PROPERTY_WRITABLE,
        incremental=True,
        deletions=True,
        description="Client premises with box, splitter (connections[0]) and port",
    ),
}


class _Spec(NamedTuple):
    """How one collection maps onto the API."""

    resource: str
    decoder: msgspec.json.Decoder[views.Page[Any]]
    to_record: Callable[..., Record]
    filters: Mapping[str, str]  # record field → filterable API property
    body: Callable[[Mapping[str, Value], Mapping[str, Value] | None], dict[str, Any]] | None = None
    one: msgspec.json.Decoder[Any] | None = None  # decoder of GET /resource/id
    needs_current: frozenset[str] = frozenset()  # changed fields that need the current record to be written


_SPECS: dict[str, _Spec] = {
    "boxes": _Spec(
        "boxes",
        views.BOXES,
        mapping.bare_box_record,
        {f: f for f in ("id", "name", "implanted", "draft", "observation", "address")}
        | {"project_id": "project"},
    ),
    "projects": _Spec("projects", views.PROJECTS, mapping.project_record, {"id": "id", "name": "name"}),
    "olts": _Spec("olts", views.OLTS, mapping.olt_record, {"id": "id", "name": "name", "ip": "ip"}),
    "clients": _Spec(
        "ftth-clients",
        views.CLIENTS,
        mapping.client_record,
        {"id": "id", **mapping.CLIENT_PLAIN} | {f: f"onu.{api}" for f, api in mapping.CLIENT_ONU.items()},
        mapping.client_body,
        views.CLIENT,
        frozenset(mapping.CLIENT_ONU),
    ),
    "properties": _Spec(
        "properties",
        views.PROPERTIES,
        mapping.property_record,
        {"id": "id", **{k: v for k, v in mapping.PROPERTY_PLAIN.items() if k not in ("splitter_id", "port")}},
        mapping.property_body,
        views.PROPERTY,
        frozenset({"lat", "lng"}),
    ),
}


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
        self, collection: str, *, since: str | None = None, deleted: bool = False
    ) -> AsyncIterator[Sequence[Record]]:
        spec = self._spec(collection)
        if deleted:
            window: Filter = [cond("deletedAt", ">=", since) if since else cond("deletedAt", "exists", True)]
            return self._records(spec, window, sort_by("deletedAt", "id"), deleted=True)
        if since:
            return self._records(spec, [cond("updatedAt", ">=", since)], sort_by("updatedAt", "id"))
        return self._records(spec, None, None)

    async def fetch_by_ids(self, collection: str, ids: Sequence[str]) -> list[Record]:
        spec = self._spec(collection)
        out: list[Record] = []
        for batch in batches(list(dict.fromkeys(ids))):
            async for page in self._records(spec, [cond("id", "in", list(batch))], None):
                out.extend(page)
        return out

    async def find(self, collection: str, match: Mapping[str, Value]) -> list[Record]:
        spec = self._spec(collection)
        unknown = set(match) - self.CATALOG[collection].fields
        if unknown:
            raise errors.ConfigError(f"{self.system} {collection}: no field(s) {', '.join(sorted(unknown))}")
        server = [cond(spec.filters[k], "=", v) for k, v in match.items() if k in spec.filters]
        out: list[Record] = []
        async for page in self._records(spec, server or None, None):
            out.extend(r for r in page if all(_same(r.fields.get(k), v) for k, v in match.items()))
        return out

    async def create(self, collection: str, fields: Fields) -> str:
        spec = self._writable(collection, fields)
        assert spec.body is not None
        return await self._client.create(spec.resource, spec.body(fields, None))

    async def update(self, collection: str, record_id: str, changes: Fields) -> None:
        spec = self._writable(collection, changes)
        assert spec.body is not None
        if not changes:
            return
        current: Mapping[str, Value] | None = None
        if spec.needs_current & changes.keys() and spec.one is not None:
            view = await self._client.get(spec.resource, record_id, spec.one)
            current = spec.to_record(view).fields
        await self._client.patch(spec.resource, record_id, spec.body(changes, current))

    async def delete(self, collection: str, record_id: str) -> None:
        spec = self._spec(collection)
        if spec.body is None:
            raise errors.ConfigError(f"{self.system} {collection} is read-only")
        await self._client.delete(spec.resource, record_id)

    # -- internals ------------------------------------------------------------------------------------------

    def _spec(self, collection: str) -> _Spec:
        spec = _SPECS.get(collection)
        if spec is None:
            known = ", ".join(sorted(_SPECS))
            raise errors.ConfigError(f"{self.system}: unknown collection {collection!r} (known: {known})")
        return spec

    def _writable(self, collection: str, fields: Mapping[str, Value]) -> _Spec:
        spec = self._spec(collection)
        schema = self.CATALOG[collection]
        if spec.body is None:
            raise errors.ConfigError(f"{self.system} {collection} is read-only")
        extra = set(fields) - schema.writable
        if extra:
            raise errors.ConfigError(f"{self.system} {collection}: not writable: {', '.join(sorted(extra))}")
        return spec

    def _records(
        self, spec: _Spec, filter: Filter | None, sort: Sort | None, *, deleted: bool = False
    ) -> AsyncIterator[list[Record]]:
        client = self._client
        join = _BoxJoin(client) if spec.resource == "boxes" and not deleted else None

        async def fetch(request: paging.PageRequest) -> tuple[int, list[Record]]:
            page = await client.page(spec.resource, spec.decoder, request, filter=filter, sort=sort)
            if join is not None:
                return page.total, await join.records(page.rows)
            return page.total, [spec.to_record(row, deleted=deleted) for row in page.rows]

        plan = paging.OffsetPaging(client.page_size, what=f"{self.system} {spec.resource}")
        return paging.stream_pages(plan, fetch, key=_record_id, window=client.window)


class _BoxJoin:
    """Per-stream join state: project names and the topology index, each listed at most once, lazily."""

    def __init__(self, client: OzmapClient) -> None:
        self._client = client
        self._lock = anyio.Lock()
        self._projects: dict[str, str | None] | None = None
        self._topology: Topology | None = None

    async def records(self, boxes: Sequence[views.BoxView]) -> list[Record]:
        splitters_of = (await self._service_splitters([b.id for b in boxes])).get
        projects = await self._project_names() if any(b.project for b in boxes) else {}
        topology = await self._topology_index()
        record, empty = mapping.box_record, mapping.EMPTY_SUMMARY
        out: list[Record] = []
        for box in boxes:  # hot loop: one iteration per box of the stream
            items = splitters_of(box.id)
            if items is None:
                out.append(record(box, projects, empty, None))
            else:
                summary = summarize(items)
                out.append(record(box, projects, summary, topology.olt_for(summary.first)))
        return out

    async def _service_splitters(self, box_ids: Sequence[str]) -> dict[str, list[views.ServiceSplitterView]]:
        found: list[list[views.ServiceSplitterView]] = []

        async def one(batch: Sequence[str]) -> None:
            only_service = [cond("parent", "in", list(batch)), cond("isDrop", "=", True)]
            found.append(
                await self._client.collect("splitters", views.SERVICE_SPLITTERS, filter=only_service)
            )

        async with anyio.create_task_group() as tg:
            for batch in batches(box_ids):
                tg.start_soon(one, batch)
        by_box: dict[str, list[views.ServiceSplitterView]] = collections.defaultdict(list)
        for rows in found:
            for splitter in rows:
                if splitter.is_drop and splitter.parent is not None:
                    by_box[splitter.parent].append(splitter)
        return by_box

    async def _project_names(self) -> dict[str, str | None]:
        async with self._lock:
            if self._projects is None:
                rows = await self._client.collect("projects", views.PROJECTS)
                self._projects = {p.id: p.name for p in rows}
            return self._projects

    async def _topology_index(self) -> Topology:
        async with self._lock:
            if self._topology is None:
                self._topology = await self._load_topology()
            return self._topology

    async def _load_topology(self) -> Topology:
        client = self._client
        pons: list[views.PonView] = []
        slots: list[views.SlotView] = []
        olts: list[views.OltView] = []
        network: list[views.SplitterView] = []

        async def load_pons() -> None:
            pons.extend(await client.collect("pons", views.PONS))

        async def load_slots() -> None:
            slots.extend(await client.collect("slots", views.SLOTS))

        async def load_olts() -> None:
            olts.extend(await client.collect("olts", views.OLTS))

        async def load_network() -> None:
            network.extend(
                await client.collect("splitters", views.SPLITTERS, filter=[cond("isDrop", "=", False)])
            )

        async with anyio.create_task_group() as tg:
            for load in (load_pons, load_slots, load_olts, load_network):
                tg.start_soon(load)
        return Topology(pons=pons, slots=slots, olts=olts, network_splitters=network)


def _same(actual: Value, wanted: Value) -> bool:
    """Exact equality (case-sensitive; ``True`` is not ``1``)."""
    return actual == wanted and isinstance(actual, bool) == isinstance(wanted, bool)
