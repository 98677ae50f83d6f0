"""Joins behind OZmap's joined views: what each page of a listing needs from other collections.

- :class:`BoxJoin` — a page of boxes + their service splitters (``parent in [≤200 ids]``, ``isDrop``), project
  names and the OLT feeding the first service splitter (``boxes``).
- :class:`BuildingJoin` — a page of buildings + their service splitters, each splitter one record named
  ``"<building> - <splitter>"`` (ixc.md X17) with the building's project and position (``building-splitters``).
- :class:`ConnectionJoin` — a page of properties (client populated) + the service splitters of their boxes, to
  number a client's port the way a box counts it (``connections``).

Project names and the topology index are listed once per stream, lazily, and shared by the joins of that stream
(:class:`Shared`). A full stream lists the whole topology (PONs, slots, OLTs, network splitters) once, each page
folded into the index (:class:`~.topology.TopologyBuilder`) as it arrives. An incremental stream or a read by id
(a few hundred changed boxes of a million) instead *traces* only the chains of its own splitters, hop by hop,
with ``in`` filters on the fibre arrays — so its cost follows the changes, not the size of the network.
[assume: ``in`` on an array field matches when any element is in the list, as in the MongoDB behind the API;
the sandbox implements it so.] Past :data:`TRACE_MAX` fibres a stream lists the whole topology after all.
Nothing here decides what a record means: :mod:`.mapping` builds the records.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import msgspec

from reconciler.connectors.ozmap import mapping, views
from reconciler.connectors.ozmap.client import OzmapClient, batches, cond
from reconciler.connectors.ozmap.topology import (
    MAX_DEPTH,
    Topology,
    TopologyBuilder,
    first_input,
    splitter_order,
    summarize,
    topology,
)
from reconciler.model import Record


async def service_splitters(
    client: OzmapClient, parent_ids: Iterable[str]
) -> dict[str, list[views.ServiceSplitterView]]:
    """The service (``isDrop``) splitters of these boxes or buildings, by parent, in (name, id) order."""
    (rows,) = await _gather(
        client,
        [
            ("splitters", views.SERVICE_SPLITTERS, [cond("parent", "in", list(b)), cond("isDrop", "=", True)])
            for b in batches(sorted(set(parent_ids)))
        ],
    )
    by_parent: dict[str, list[views.ServiceSplitterView]] = collections.defaultdict(list)
    for splitter in rows:
        if splitter.is_drop and splitter.parent is not None:
            by_parent[splitter.parent].append(splitter)
    for items in by_parent.values():
        items.sort(key=splitter_order)
    return by_parent


#: One listing: resource, page decoder, filter (None: the whole collection).
Query = tuple[str, "msgspec.json.Decoder[views.Page[Any]]", list[dict[str, Any]] | None]


async def _gather(client: OzmapClient, *groups: Sequence[Query]) -> list[list[Any]]:
    """Every listing of every group side by side; the rows of each group, concatenated."""
    found: list[list[Any]] = [[] for _ in groups]

    async def one(
        n: int,
        resource: str,
        decoder: msgspec.json.Decoder[views.Page[Any]],
        where: list[dict[str, Any]] | None,
    ) -> None:
        found[n].extend(await client.collect(resource, decoder, filter=where))

    async with anyio.create_task_group() as tg:
        for n, group in enumerate(groups):
            for resource, decoder, where in group:
                tg.start_soon(one, n, resource, decoder, where)
    return found


#: Fibres a lazy stream traces before it lists the whole topology instead (one listing is then cheaper).
TRACE_MAX = 20_000


class Shared:
    """Per-stream lookups listed at most once, on first use: project names and the topology index.

    ``lazy``: trace only the fibres the stream's splitters need (:meth:`topology_for`) instead of listing the
    whole topology.
    """

    def __init__(self, client: OzmapClient, *, lazy: bool = False) -> None:
        self._client = client
        self._lock = anyio.Lock()
        self._projects: dict[str, str | None] | None = None
        self._topology: Topology | None = None
        self._lazy = lazy
        self._traced: set[str] = set()
        self._pons: dict[str, views.PonView] = {}
        self._slots: dict[str, views.SlotView] = {}
        self._olts: dict[str, views.OltView] = {}
        self._network: dict[str, views.NetworkSplitterView] = {}

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

    async def topology_for(self, splitters: Iterable[views.ServiceSplitterView | None]) -> Topology:
        """A topology that answers :meth:`Topology.olt_for` for every one of ``splitters``."""
        if not self._lazy:
            return await self.topology()
        async with self._lock:
            fibres = {f for s in splitters if s is not None and (f := first_input(s)) is not None}
            fibres -= self._traced
            if len(self._traced) + len(fibres) > TRACE_MAX:
                self._lazy = False  # from now on the whole topology, listed once
                self._topology = await self._load_topology()
                self._forget_traced()
            elif fibres or self._topology is None:
                await self._trace(fibres)
                self._topology = topology(
                    pons=self._pons.values(),
                    slots=self._slots.values(),
                    olts=self._olts.values(),
                    network_splitters=self._network.values(),
                )
            return self._topology

    async def _trace(self, fibres: set[str]) -> None:
        """Fetch the PONs, network splitters, slots and OLTs on the chains leading up from ``fibres``."""
        client = self._client
        pons: list[views.PonView] = []
        frontier = set(fibres)
        for _ in range(MAX_DEPTH + 1):
            frontier -= self._traced
            if not frontier:
                break
            self._traced |= frontier
            chunks = batches(sorted(frontier))
            found_pons, found_splitters = await _gather(
                client,
                [("pons", views.PONS, [cond("connectables", "in", list(b))]) for b in chunks],
                [
                    (
                        "splitters",
                        views.NETWORK_SPLITTERS,
                        [cond("isDrop", "=", False), cond("connectables.output", "in", list(b))],
                    )
                    for b in chunks
                ],
            )
            pons.extend(found_pons)
            self._pons.update((p.id, p) for p in found_pons)
            self._network.update((s.id, s) for s in found_splitters)
            frontier = {f for s in found_splitters if (f := first_input(s)) is not None}
        if not pons:
            return
        slot_ids = sorted({ref for p in pons if (ref := p.slot or p.parent)} - set(self._slots))
        pon_ids = sorted({p.id for p in pons})
        by_id, by_pon = await _gather(
            client,
            [("slots", views.SLOTS, [cond("id", "in", list(b))]) for b in batches(slot_ids)],
            [("slots", views.SLOTS, [cond("connectables", "in", list(b))]) for b in batches(pon_ids)],
        )
        slots = [*by_id, *by_pon]
        self._slots.update((s.id, s) for s in slots)
        olt_ids = sorted({ref for s in slots if (ref := s.olt or s.parent)} - set(self._olts))
        slot_ids = sorted({s.id for s in slots} | set(slot_ids))
        by_id_olts, by_slot = await _gather(
            client,
            [("olts", views.OLTS, [cond("id", "in", list(b))]) for b in batches(olt_ids)],
            [("olts", views.OLTS, [cond("connectables", "in", list(b))]) for b in batches(slot_ids)],
        )
        self._olts.update((o.id, o) for o in [*by_id_olts, *by_slot])

    def _forget_traced(self) -> None:
        """Drop what lazy tracing gathered, once the whole topology replaced it."""
        self._traced = set()
        self._pons, self._slots, self._olts, self._network = {}, {}, {}, {}

    async def _load_topology(self) -> Topology:
        """The whole topology, the four listings side by side, each page folded into the index as it arrives."""
        builder, client = TopologyBuilder(), self._client
        network = [cond("isDrop", "=", False)]
        async with anyio.create_task_group() as tg:
            tg.start_soon(_feed, client, "pons", views.PONS, None, builder.add_pons)
            tg.start_soon(_feed, client, "slots", views.SLOTS, None, builder.add_slots)
            tg.start_soon(_feed, client, "olts", views.OLTS, None, builder.add_olts)
            tg.start_soon(
                _feed, client, "splitters", views.NETWORK_SPLITTERS, network, builder.add_network_splitters
            )
        return builder.build()


Row = TypeVar("Row")


async def _feed(
    client: OzmapClient,
    resource: str,
    decoder: msgspec.json.Decoder[views.Page[Row]],
    where: list[dict[str, Any]] | None,
    add: Callable[[list[Row]], None],
) -> None:
    """Every page of one listing handed to ``add`` as it arrives (the listing is never held whole)."""
    async for rows in client.pages(resource, decoder, filter=where):
        add(rows)


class BoxJoin:
    """``boxes``: each box with its project name, service splitters/ports and feeding OLT."""

    def __init__(self, client: OzmapClient, shared: Shared | None = None) -> None:
        self._client = client
        self._shared = shared or Shared(client)

    async def records(
        self, boxes: Sequence[views.BoxView], problems: Mapping[str, str] | None = None
    ) -> list[Record]:
        """One record per box; ``problems`` (box id → what was wrong, :mod:`.lenient`) go onto the records."""
        if not boxes:  # an empty page (nothing changed since the cursor) needs no topology
            return []
        projects = await self._shared.project_names() if any(b.project for b in boxes) else {}
        by_box = await service_splitters(self._client, [b.id for b in boxes])
        summaries = {box_id: summarize(items) for box_id, items in by_box.items()}
        firsts = [summary.first for summary in summaries.values()]
        topology = await self._shared.topology_for(firsts)
        found = dict(
            zip(summaries, zip(summaries.values(), topology.olts_for(firsts), strict=True), strict=True)
        )
        record, nothing = mapping.box_record, (mapping.EMPTY_SUMMARY, None)
        out: list[Record] = []
        for box in boxes:  # hot loop: one iteration per box of the stream
            summary, olt = found.get(box.id, nothing)
            out.append(record(box, projects, summary, olt))
        return mapping.with_problems(out, problems) if problems else out


class BuildingJoin:
    """``building-splitters``: one record per service splitter of each building."""

    def __init__(self, client: OzmapClient, shared: Shared | None = None) -> None:
        self._client = client
        self._shared = shared or Shared(client)

    async def records(
        self, buildings: Sequence[views.BuildingView], problems: Mapping[str, str] | None = None
    ) -> list[Record]:
        """One record per service splitter; a building's problem (:mod:`.lenient`) goes onto each of them."""
        if not buildings:
            return []
        splitters_of = await service_splitters(self._client, [b.id for b in buildings])
        projects = await self._shared.project_names()
        splitters = [s for items in splitters_of.values() for s in items]
        topology = await self._shared.topology_for(splitters)
        olt_of = dict(zip(map(id, splitters), topology.olts_for(splitters), strict=True))
        out: list[Record] = []
        for building in buildings:
            for splitter in splitters_of.get(building.id, ()):
                olt = olt_of[id(splitter)]
                out.append(mapping.building_splitter_record(building, splitter, projects, olt))
        return mapping.with_problems(out, problems, key="building_id") if problems else out


class ConnectionJoin:
    """``connections``: properties with a client, their box port counted across the box's service splitters."""

    def __init__(self, client: OzmapClient, projection: mapping.ConnectionProjection | None = None) -> None:
        """``projection``: the fields the records get (default: all); without ``box_port`` no splitter is listed."""
        self._client = client
        self._projection = projection or mapping.WHOLE_CONNECTIONS

    async def records(
        self, properties: Sequence[views.ConnectionView], problems: Mapping[str, str] | None = None
    ) -> list[Record]:
        """``problems``: rows read with bad data (:mod:`.lenient`); such a row stays in the view even when its
        client could not be read (the server listed it as having one), so that it is quarantined, not removed."""
        bad = problems or {}
        with_client = [p for p in properties if p.client is not None or p.id in bad]
        offsets: dict[str, int] = {}
        if self._projection.box_ports:
            boxes = {views.ref_id(p.box) for p in with_client if p.parent is None}
            splitters_of = await service_splitters(self._client, [b for b in boxes if b])
            for items in splitters_of.values():
                offset = 0
                for splitter in items:
                    offsets[splitter.id] = offset
                    offset += splitter.ratio.output if splitter.ratio is not None else 0
        record = self._projection.record
        records = [record(p, offsets) for p in with_client]
        return mapping.with_problems(records, bad) if bad else records
