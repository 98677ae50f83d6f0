"""Joins behind OZmap's joined views: what each page of a listing needs from other collections.

- :class:`BoxJoin` — a page of boxes + their service splitters (``parent in [≤200 ids]``, ``isDrop``), project
  names and the OLT feeding the first service splitter (``boxes``).
- :class:`BuildingJoin` — a page of buildings + their service splitters, each splitter one record named
  ``"<building> - <splitter>"`` (ixc.md X17) with the building's project and position (``building-splitters``).
- :class:`ConnectionJoin` — a page of properties (client populated) + the service splitters of their boxes, to
  number a client's port the way a box counts it (``connections``).

Project names and the topology index are listed once per stream, lazily, and shared by the joins of that stream
(:class:`Shared`). Nothing here decides what a record means: :mod:`.mapping` builds the records.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

import anyio

from reconciler.connectors.ozmap import mapping, views
from reconciler.connectors.ozmap.client import OzmapClient, batches, cond
from reconciler.connectors.ozmap.topology import Topology, splitter_order, summarize
from reconciler.model import Record


async def service_splitters(
    client: OzmapClient, parent_ids: Iterable[str]
) -> dict[str, list[views.ServiceSplitterView]]:
    """The service (``isDrop``) splitters of these boxes or buildings, by parent, in (name, id) order."""
    found: list[list[views.ServiceSplitterView]] = []

    async def one(batch: Sequence[str]) -> None:
        only_service = [cond("parent", "in", list(batch)), cond("isDrop", "=", True)]
        found.append(await client.collect("splitters", views.SERVICE_SPLITTERS, filter=only_service))

    async with anyio.create_task_group() as tg:
        for batch in batches(sorted(set(parent_ids))):
            tg.start_soon(one, batch)
    by_parent: dict[str, list[views.ServiceSplitterView]] = collections.defaultdict(list)
    for rows in found:
        for splitter in rows:
            if splitter.is_drop and splitter.parent is not None:
                by_parent[splitter.parent].append(splitter)
    for items in by_parent.values():
        items.sort(key=splitter_order)
    return by_parent


class Shared:
    """Per-stream lookups listed at most once, on first use: project names and the topology index."""

    def __init__(self, client: OzmapClient) -> None:
        self._client = client
        self._lock = anyio.Lock()
        self._projects: dict[str, str | None] | None = None
        self._topology: Topology | None = None

    async def project_names(self) -> dict[str, str | None]:
        async with self._lock:
            if self._projects is None:
                rows = await self._client.collect("projects", views.PROJECTS)
                self._projects = {p.id: p.name for p in rows}
            return self._projects

    async def topology(self) -> Topology:
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


class BoxJoin:
    """``boxes``: each box with its project name, service splitters/ports and feeding OLT."""

    def __init__(self, client: OzmapClient, shared: Shared | None = None) -> None:
        self._client = client
        self._shared = shared or Shared(client)

    async def records(self, boxes: Sequence[views.BoxView]) -> list[Record]:
        if not boxes:  # an empty page (nothing changed since the cursor) needs no topology
            return []
        splitters_of = (await service_splitters(self._client, [b.id for b in boxes])).get
        projects = await self._shared.project_names() if any(b.project for b in boxes) else {}
        topology = await self._shared.topology()
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


class BuildingJoin:
    """``building-splitters``: one record per service splitter of each building."""

    def __init__(self, client: OzmapClient, shared: Shared | None = None) -> None:
        self._client = client
        self._shared = shared or Shared(client)

    async def records(self, buildings: Sequence[views.BuildingView]) -> list[Record]:
        if not buildings:
            return []
        splitters_of = await service_splitters(self._client, [b.id for b in buildings])
        projects = await self._shared.project_names()
        topology = await self._shared.topology()
        out: list[Record] = []
        for building in buildings:
            for splitter in splitters_of.get(building.id, ()):
                olt = topology.olt_for(splitter)
                out.append(mapping.building_splitter_record(building, splitter, projects, olt))
        return out


class ConnectionJoin:
    """``connections``: properties with a client, their box port counted across the box's service splitters."""

    def __init__(self, client: OzmapClient) -> None:
        self._client = client

    async def records(self, properties: Sequence[views.ConnectionView]) -> list[Record]:
        with_client = [p for p in properties if p.client is not None]
        boxes = {views.ref_id(p.box) for p in with_client if p.parent is None}
        splitters_of = await service_splitters(self._client, [b for b in boxes if b])
        offsets: dict[str, int] = {}
        for items in splitters_of.values():
            offset = 0
            for splitter in items:
                offsets[splitter.id] = offset
                offset += splitter.ratio.output if splitter.ratio is not None else 0
        return [mapping.connection_record(p, offsets) for p in with_client]
