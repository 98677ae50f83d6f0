"""Two more OZmap collections: ``splitters`` (the field-service replica, seed 001) and ``pons`` (PON power, F9).

- ``splitters`` — every splitter (service and network) of a live box or building, flat: parent, ratio, free /
  blocked port counts and the free port numbers, splitter type, ``created_at``/``updated_at``. Incremental on
  ``updatedAt`` (a port taken or freed bumps the splitter, so availability stays current); its deletions are
  the splitters deleted since the cursor **and** those whose box or building was deleted since — OZmap keeps a
  deleted box's splitters [assume: the sandbox does not cascade], and a replica must not keep them. For the same
  reason the live streams leave out splitters whose parent is gone.
- ``pons`` — one record per PON with its place in the OLT chain: ``olt_id``/``olt_name``/``olt_ip``, ``slot`` and
  ``pon`` numbers and ``key`` = ``"<olt id>/<slot>/<pon>"``, the natural key a monitoring source matches on.
  Numbering [assume]: the slot number is the slot's position in ``OLT.connectables`` (1-based) and the PON number
  is the slot's ``starting_pon_number`` (default 1) plus the PON's position in ``Slot.connectables``. Writable:
  ``potency`` (the launch power in dBm, ``PATCH /pons/{id}``).

Both are plain listings joined page by page; nothing here writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

import msgspec

from reconciler.connectors.ozmap import mapping, views
from reconciler.connectors.ozmap.client import Filter, OzmapClient, batches, cond, sort_by
from reconciler.model import Fields, Record, Value

__all__ = ["COLLECTIONS", "PON_FIELDS", "SPLITTER_FIELDS", "PonIndex", "fetch_by_ids", "find", "stream"]

SPLITTER_FIELDS = frozenset(
    {
        "id", "name", "parent_id", "parent_kind", "project_id", "is_drop", "implanted", "ratio_input",
        "ratio_output", "ports_free", "ports_blocked", "free_ports", "splitter_type_id", "created_at",
        "updated_at",
    }
)  # fmt: skip
PON_FIELDS = frozenset(
    {"id", "name", "potency", "olt_id", "olt_name", "olt_ip", "slot_id", "slot", "pon", "key", "updated_at"}
)
COLLECTIONS = frozenset({"splitters", "pons"})
_SINCE = sort_by("updatedAt", "id")


class _Flag(msgspec.Struct):
    blocked: bool = False


class _Splitter(msgspec.Struct):
    id: str
    name: str | None = None
    parent: str | None = None
    project: str | None = None
    is_drop: bool = msgspec.field(default=False, name="isDrop")
    implanted: bool = True
    ratio: views.Ratio | None = None
    connectables: views.Connectables | None = None
    ports: list[_Flag | None] = msgspec.field(default_factory=list)
    splitter_type: str | None = msgspec.field(default=None, name="splitterType")
    created_at: str = msgspec.field(default="", name="createdAt")
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


class _Parent(msgspec.Struct):
    id: str
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")
    updated_at: str = msgspec.field(default="", name="updatedAt")


class _Slot(msgspec.Struct):
    id: str
    label: str | None = None
    starting_pon_number: int | None = None
    parent: str | None = None
    olt: str | None = None
    connectables: list[str | None] = msgspec.field(default_factory=list)


class _Pon(msgspec.Struct):
    id: str
    name: str | None = None
    potency: float | None = None
    parent: str | None = None
    slot: str | None = None
    updated_at: str = msgspec.field(default="", name="updatedAt")
    deleted_at: str | None = msgspec.field(default=None, name="deletedAt")


_SPLITTERS = msgspec.json.Decoder(views.Page[_Splitter])
_PARENTS = msgspec.json.Decoder(views.Page[_Parent])
_SLOTS = msgspec.json.Decoder(views.Page[_Slot])
_PONS = msgspec.json.Decoder(views.Page[_Pon])


# -- splitters -----------------------------------------------------------------------------------------------


def splitter_record(splitter: _Splitter, parent_kind: str | None) -> Record:
    outputs = splitter.connectables.output if splitter.connectables is not None else []
    ports = splitter.ports

    def blocked(i: int) -> bool:
        flag = ports[i] if i < len(ports) else None
        return flag is not None and flag.blocked

    free = [i + 1 for i, fibre in enumerate(outputs) if fibre is None and not blocked(i)]
    fields: Fields = {
        "id": splitter.id,
        "name": splitter.name,
        "parent_id": splitter.parent,
        "parent_kind": parent_kind,
        "project_id": splitter.project,
        "is_drop": splitter.is_drop,
        "implanted": splitter.implanted,
        "ratio_input": splitter.ratio.input if splitter.ratio is not None else None,
        "ratio_output": splitter.ratio.output if splitter.ratio is not None else len(outputs),
        "ports_free": len(free),
        "ports_blocked": sum(1 for i in range(len(outputs)) if blocked(i)),
        "free_ports": free,
        "splitter_type_id": splitter.splitter_type,
        "created_at": splitter.created_at or None,
        "updated_at": splitter.updated_at or None,
    }
    return Record(id=splitter.id, fields=fields, updated_at=splitter.updated_at)


async def _live_parents(client: OzmapClient, parents: Sequence[str]) -> dict[str, str]:
    """Live parent id → ``"Box"`` / ``"Building"``."""
    kinds: dict[str, str] = {}
    for resource, kind in (("boxes", "Box"), ("buildings", "Building")):
        wanted = [p for p in parents if p not in kinds]
        for batch in batches(sorted(set(wanted))):
            rows = await client.collect(resource, _PARENTS, filter=[cond("id", "in", list(batch))])
            kinds.update((r.id, kind) for r in rows if r.deleted_at is None)
    return kinds


async def _joined(client: OzmapClient, rows: Sequence[_Splitter]) -> list[Record]:
    kinds = await _live_parents(client, [s.parent for s in rows if s.parent])
    return [splitter_record(s, kinds[s.parent]) for s in rows if s.parent in kinds]


async def _splitters(client: OzmapClient, where: Filter | None, sort: Any) -> AsyncIterator[list[Record]]:
    problems: dict[
        str, str
    ] = {}  # splitters with bad data: their records carry it (quarantined by the rules)
    async for rows in client.pages("splitters", _SPLITTERS, filter=where, sort=sort, problems=problems):
        joined = mapping.with_problems(await _joined(client, rows), problems)
        if joined:
            yield joined


async def _gone_splitters(client: OzmapClient, since: str | None) -> AsyncIterator[list[Record]]:
    window = cond("deletedAt", ">=", since) if since else cond("deletedAt", "exists", True)
    async for rows in client.pages("splitters", _SPLITTERS, filter=[window], sort=sort_by("deletedAt", "id")):
        yield [mapping.gone_record(s.id, s.deleted_at or s.updated_at) for s in rows]
    for resource in ("boxes", "buildings"):
        parents = await client.collect(resource, _PARENTS, filter=[window])
        marker = {p.id: p.deleted_at or p.updated_at for p in parents}
        for batch in batches(sorted(marker)):
            inside = await client.collect("splitters", _SPLITTERS, filter=[cond("parent", "in", list(batch))])
            gone = [mapping.gone_record(s.id, marker[s.parent]) for s in inside if s.parent in marker]
            if gone:
                yield gone


# -- pons ----------------------------------------------------------------------------------------------------


class OltLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def ip(self) -> str | None: ...
    @property
    def connectables(self) -> list[str | None]: ...


class SlotLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def label(self) -> str | None: ...
    @property
    def starting_pon_number(self) -> int | None: ...
    @property
    def parent(self) -> str | None: ...
    @property
    def olt(self) -> str | None: ...
    @property
    def connectables(self) -> list[str | None]: ...


class PonIndex:
    """The OLT → slot → PON chain: each PON's OLT and its (slot, pon) numbers; built from full listings."""

    def __init__(self, olts: Sequence[OltLike], slots: Sequence[SlotLike]) -> None:
        self.olts = {o.id: o for o in olts}
        self._place: dict[str, tuple[str, str, int, int]] = {}  # pon id → (olt id, slot id, slot n, pon n)
        slot_number: dict[str, tuple[str, int]] = {}
        for olt in olts:
            for n, slot_id in enumerate(olt.connectables, start=1):
                if slot_id:
                    slot_number.setdefault(slot_id, (olt.id, n))
        for slot in slots:
            owner = slot_number.get(slot.id)
            if owner is None:
                olt_id = slot.olt or slot.parent
                label = slot.label or ""
                if not olt_id or olt_id not in self.olts or not label.isdigit():
                    continue
                owner = (olt_id, int(label))
            first = slot.starting_pon_number if slot.starting_pon_number is not None else 1
            for k, pon_id in enumerate(slot.connectables):
                if pon_id:
                    self._place[pon_id] = (owner[0], slot.id, owner[1], first + k)

    @classmethod
    async def load(cls, client: OzmapClient) -> PonIndex:
        olts = await client.collect("olts", views.OLTS)
        slots = await client.collect("slots", _SLOTS)
        return cls(olts, slots)

    def place(self, pon_id: str) -> tuple[OltLike | None, str | None, int | None, int | None]:
        """(OLT, slot id, slot number, PON number) of a PON; Nones when it hangs from no known OLT."""
        found = self._place.get(pon_id)
        if found is None:
            return None, None, None, None
        olt_id, slot_id, slot_n, pon_n = found
        return self.olts.get(olt_id), slot_id, slot_n, pon_n

    def record(self, pon: _Pon) -> Record:
        olt, slot_id, slot_n, pon_n = self.place(pon.id)
        fields: Fields = {
            "id": pon.id,
            "name": pon.name,
            "potency": pon.potency,
            "olt_id": olt.id if olt is not None else None,
            "olt_name": olt.name if olt is not None else None,
            "olt_ip": olt.ip if olt is not None else None,
            "slot_id": slot_id,
            "slot": slot_n,
            "pon": pon_n,
            "key": f"{olt.id}/{slot_n}/{pon_n}" if olt is not None else None,
            "updated_at": pon.updated_at or None,
        }
        return Record(id=pon.id, fields=fields, updated_at=pon.updated_at)


async def _pons(client: OzmapClient, where: Filter | None, sort: Any) -> AsyncIterator[list[Record]]:
    index: PonIndex | None = None
    problems: dict[str, str] = {}  # PONs with bad data: their records carry it (quarantined by the rules)
    async for rows in client.pages("pons", _PONS, filter=where, sort=sort, problems=problems):
        index = index or await PonIndex.load(client)
        yield mapping.with_problems([index.record(p) for p in rows], problems)


async def _gone_pons(client: OzmapClient, since: str | None) -> AsyncIterator[list[Record]]:
    window = cond("deletedAt", ">=", since) if since else cond("deletedAt", "exists", True)
    async for rows in client.pages("pons", _PONS, filter=[window], sort=sort_by("deletedAt", "id")):
        yield [mapping.gone_record(p.id, p.deleted_at or p.updated_at) for p in rows]


def bare_pon_record(pon: views.PonView, *, deleted: bool = False) -> Record:
    """A PON without its OLT chain (the generic spec's reader; the collection streams through :func:`stream`)."""
    return Record(id=pon.id, fields={"id": pon.id}, deleted=deleted)


def pon_body(fields: Mapping[str, Value], current: Mapping[str, Value] | None = None) -> dict[str, Any]:
    """PATCH body of a PON: only its launch power."""
    return {"potency": fields["potency"]} if "potency" in fields else {}


# -- the connector's entry points -----------------------------------------------------------------------------


def stream(
    client: OzmapClient, collection: str, since: str | None, *, deleted: bool
) -> AsyncIterator[list[Record]]:
    """``Connector.stream`` of ``splitters`` / ``pons``."""
    if collection == "splitters":
        if deleted:
            return _gone_splitters(client, since)
        return _splitters(
            client, [cond("updatedAt", ">=", since)] if since else None, _SINCE if since else None
        )
    if deleted:
        return _gone_pons(client, since)
    return _pons(client, [cond("updatedAt", ">=", since)] if since else None, _SINCE if since else None)


async def fetch_by_ids(client: OzmapClient, collection: str, ids: Sequence[str]) -> list[Record]:
    out: list[Record] = []
    for batch in batches(list(dict.fromkeys(ids))):
        where = [cond("id", "in", list(batch))]
        async for page in stream_where(client, collection, where):
            out.extend(page)
    return out


def stream_where(client: OzmapClient, collection: str, where: Filter) -> AsyncIterator[list[Record]]:
    return _splitters(client, where, None) if collection == "splitters" else _pons(client, where, None)


async def find(client: OzmapClient, collection: str, match: Mapping[str, Value]) -> list[Record]:
    """Records equal to ``match``: ``id``/``parent_id`` narrow the listing on the server, the rest is compared here."""
    server: Filter = []
    if isinstance(match.get("id"), str):
        server.append(cond("id", "=", match["id"]))
    if collection == "splitters" and isinstance(match.get("parent_id"), str):
        server.append(cond("parent", "=", match["parent_id"]))
    found = [r async for page in stream_where(client, collection, server) for r in page]
    return [r for r in found if all(r.fields.get(k) == v for k, v in match.items())]
