"""Pure translations between OZmap views and flat records, and from record fields back to request bodies.

Record field names are snake_case and flat (``project_id``, ``onu_serial_number``); the API's nested shapes
(``coords`` as ``[lng, lat]``, the three-part ``onu`` object, ``connections[0]``) are flattened on read and
rebuilt on write. Nothing here does I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any

import msgspec

from reconciler.connectors.ozmap import views
from reconciler.connectors.ozmap.topology import ServiceSummary
from reconciler.model import Fields, Record, Value

EMPTY_SUMMARY = ServiceSummary()


def box_record(
    box: views.BoxView,
    project_names: Mapping[str, str | None],
    summary: ServiceSummary,
    olt: views.OltView | None,
) -> Record:
    """One row of the joined ``boxes`` view."""
    project = box.project
    return Record(
        id=box.id,
        fields={
            "id": box.id,
            "name": box.name,
            "project_id": project,
            "project_name": project_names.get(project) if project else None,
            "implanted": box.implanted,
            "draft": box.draft,
            "lat": box.lat,
            "lng": box.lng,
            "observation": box.observation,
            "address": box.address,
            "service_splitters": summary.count,
            "service_ports": summary.ports,
            "olt_ip": olt.ip if olt is not None else None,
            "olt_name": olt.name if olt is not None else None,
            "olt_id": olt.id if olt is not None else None,
        },
        updated_at=box.updated_at,
    )


def bare_box_record(box: views.BoxView, *, deleted: bool = False) -> Record:
    """A box without the join (used for soft-deleted boxes, whose splitters are gone with them)."""
    record = box_record(box, {}, EMPTY_SUMMARY, None)
    if not deleted:
        return record
    return Record(
        id=record.id, fields=record.fields, updated_at=box.deleted_at or box.updated_at, deleted=True
    )


def project_record(project: views.ProjectView, *, deleted: bool = False) -> Record:
    marker = (project.deleted_at or project.updated_at) if deleted else project.updated_at
    return Record(
        id=project.id, fields={"id": project.id, "name": project.name}, updated_at=marker, deleted=deleted
    )


def olt_record(olt: views.OltView, *, deleted: bool = False) -> Record:
    marker = (olt.deleted_at or olt.updated_at) if deleted else olt.updated_at
    fields: Fields = {"id": olt.id, "name": olt.name, "ip": olt.ip}
    return Record(id=olt.id, fields=fields, updated_at=marker, deleted=deleted)


def client_record(client: views.ClientView, *, deleted: bool = False) -> Record:
    onu = client.onu or views.Onu()
    marker = (client.deleted_at or client.updated_at) if deleted else client.updated_at
    fields: Fields = {
        "id": client.id,
        "code": client.code,
        "name": client.name,
        "observation": client.observation,
        "implanted": client.implanted,
        "certified": client.certified,
        "status": client.status,
        "onu_serial_number": onu.serial_number,
        "onu_mac_address": onu.mac_address,
        "onu_user_pppoe": onu.user_pppoe,
    }
    return Record(id=client.id, fields=fields, updated_at=marker, deleted=deleted)


def property_record(prop: views.PropertyView, *, deleted: bool = False) -> Record:
    connection = prop.connections[0] if prop.connections else views.Connection()
    marker = (prop.deleted_at or prop.updated_at) if deleted else prop.updated_at
    fields: Fields = {
        "id": prop.id,
        "project_id": prop.project,
        "box_id": views.ref_id(prop.box),
        "client_id": views.ref_id(prop.client),
        "drop_id": views.ref_id(prop.drop),
        "address": prop.address,
        "observation": prop.observation,
        "lat": prop.lat,
        "lng": prop.lng,
        "potency_read": prop.potency_read,
        "splitter_id": connection.id,
        "port": connection.port,
    }
    return Record(id=prop.id, fields=fields, updated_at=marker, deleted=deleted)


def building_splitter_record(
    building: views.BuildingView,
    splitter: views.ServiceSplitterView,
    project_names: Mapping[str, str | None],
    olt: views.OltView | None,
) -> Record:
    """One row of ``building-splitters``: a service splitter of a building, named ``"<building> - <splitter>"``."""
    project = building.project or splitter.project
    fields: Fields = {
        "id": splitter.id,
        "name": f"{building.name or building.id} - {splitter.name or splitter.id}",
        "splitter_name": splitter.name,
        "building_id": building.id,
        "building_name": building.name,
        "project_id": project,
        "project_name": project_names.get(project) if project else None,
        "capacity": splitter.ratio.output if splitter.ratio is not None else 0,
        "lat": building.lat,
        "lng": building.lng,
        "olt_ip": olt.ip if olt is not None else None,
        "olt_name": olt.name if olt is not None else None,
    }
    return Record(id=splitter.id, fields=fields, updated_at=max(building.updated_at, splitter.updated_at))


def _box_port(
    prop: views.ConnectionView, port_of: views.Connection, offsets: Mapping[str, int]
) -> int | None:
    port = port_of.port
    if port is None or views.ref_id(prop.parent) is not None:  # in a building each splitter is its own box
        return port
    offset = offsets.get(port_of.id or "")
    return None if offset is None else offset + port


#: connections: record field → (how it is read from ``prop`` (client populated as ``client``, its first connection
#: as ``port_of``, the box port ``offsets``), the property's API fields it needs (``select``; ozmap.md 2.3))
CONNECTION_FIELD_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "id": ("prop.id", ()),
    "code": ("client.code", ("client",)),
    "client_id": ("client.key", ("client",)),
    "client_name": ("client.name", ("client",)),
    "implanted": ("client.implanted", ("client",)),
    "status": ("client.status", ("client",)),
    "project_id": ("prop.project", ("project",)),
    "box_id": ("ref_id(prop.box)", ("box",)),
    "building_id": ("ref_id(prop.parent)", ("parent",)),
    "splitter_id": ("port_of.id", ("connections",)),
    "splitter_name": ("port_of.name", ("connections",)),
    "port": ("port_of.port", ("connections",)),
    "box_port": ("box_port(prop, port_of, offsets)", ("connections", "parent", "box")),
    "drop_id": ("ref_id(prop.drop)", ("drop",)),
    "address": ("prop.address", ("address",)),
    "observation": ("prop.observation", ("observation",)),
    "lat": ("prop.lat", ("coords",)),
    "lng": ("prop.lng", ("coords",)),
    "potency_read": ("prop.potency_read", ("potencyRead",)),
}
#: API fields every projected listing of connections selects: the client (the view lists properties that have
#: one, and a record's ``updated_at`` is the later of the two) and the property's own change date
_CONNECTION_ALWAYS = ("client", "updatedAt")
_FieldsOf = Callable[
    [views.ConnectionView, views.PopulatedClient, views.Connection, Mapping[str, int]], Fields
]


class ConnectionProjection:
    """The fields a stream of ``connections`` builds, and the API ``select`` that reads just what they need.

    ``fields`` None, or naming a field the view does not have, builds every field from whole properties.
    """

    def __init__(self, fields: Collection[str] | None = None) -> None:
        whole = fields is None or not set(fields) <= CONNECTION_FIELD_SOURCES.keys()
        names = list(CONNECTION_FIELD_SOURCES) if whole else ["id", *sorted(set(fields or ()) - {"id"})]
        self._fields_of = _fields_builder(tuple(names))
        self.select: str | None = None
        """The ``select`` query parameter (None: whole properties)."""
        if not whole:
            wanted = {api for name in names for api in CONNECTION_FIELD_SOURCES[name][1]}
            self.select = " ".join(sorted(wanted.union(_CONNECTION_ALWAYS)))
        self.box_ports = "box_port" in names
        """Whether the records number ports as their box counts them (the join then lists the boxes' service
        splitters)."""

    def record(self, prop: views.ConnectionView, offsets: Mapping[str, int]) -> Record:
        """One row of ``connections``: a property with its client, box (or building), splitter and port.

        ``box_port`` numbers the port as the box counts it: ports run on across the box's service splitters in
        (name, id) order (``offsets``: splitter id → ports before it); in a building each splitter is its own box.
        """
        client = (
            prop.client
            if isinstance(prop.client, views.PopulatedClient)
            else views.PopulatedClient(id=prop.client)
        )
        port_of = prop.connections[0] if prop.connections else _NO_CONNECTION
        fields = self._fields_of(prop, client, port_of, offsets)
        return Record(id=prop.id, fields=fields, updated_at=max(prop.updated_at, client.updated_at))


@functools.cache
def _fields_builder(names: tuple[str, ...]) -> _FieldsOf:
    """A function building the fields ``names`` of a connection as one dict display (generated once per field
    set, like a dataclass's ``__init__``: a display is twice as fast as a loop over per-field getters)."""
    items = ", ".join(f"{name!r}: {CONNECTION_FIELD_SOURCES[name][0]}" for name in names)
    namespace: dict[str, Any] = {"ref_id": views.ref_id, "box_port": _box_port}
    exec(f"def fields_of(prop, client, port_of, offsets):\n    return {{{items}}}\n", namespace)
    built: _FieldsOf = namespace["fields_of"]
    return built


_NO_CONNECTION = views.Connection()
WHOLE_CONNECTIONS = ConnectionProjection()


def with_problems(records: list[Record], problems: Mapping[str, str], key: str | None = None) -> list[Record]:
    """``records`` with the problem of the row each was read from (by id, or by the row id in field ``key``)."""
    if not problems:
        return records
    out: list[Record] = []
    for record in records:
        row = record.id if key is None else record.fields.get(key)
        problem = problems.get(row) if isinstance(row, str) else None
        out.append(record if problem is None else msgspec.structs.replace(record, problem=problem))
    return out


def gone_record(record_id: str, marker: str) -> Record:
    """A record reported as removed (soft-deleted, or no longer part of a view)."""
    return Record(id=record_id, fields={"id": record_id}, updated_at=marker, deleted=True)


#: clients: record field → API property
CLIENT_PLAIN = {f: f for f in ("code", "name", "observation", "implanted", "certified", "status")}
CLIENT_ONU = {
    "onu_serial_number": "serial_number",
    "onu_mac_address": "mac_address",
    "onu_user_pppoe": "user_PPPoE",
}

#: properties: record field → API property (lat/lng travel together as ``coords``)
PROPERTY_PLAIN = {
    "project_id": "project",
    "box_id": "box",
    "client_id": "client",
    "address": "address",
    "observation": "observation",
    "potency_read": "potencyRead",
    "splitter_id": "connector",
    "port": "port",
}


def client_body(fields: Mapping[str, Value], current: Mapping[str, Value] | None = None) -> dict[str, Any]:
    """A create/PATCH body; ``onu`` must carry all three parts, so missing ones come from ``current``."""
    body: dict[str, Any] = {CLIENT_PLAIN[k]: v for k, v in fields.items() if k in CLIENT_PLAIN}
    if any(k in fields for k in CLIENT_ONU):
        merged = {**(current or {}), **fields}
        body["onu"] = {api: _text(merged.get(field)) for field, api in CLIENT_ONU.items()}
    return body


def property_body(fields: Mapping[str, Value], current: Mapping[str, Value] | None = None) -> dict[str, Any]:
    """A create/PATCH body; ``lat``/``lng`` become ``coords: [lng, lat]`` (the other half from ``current``)."""
    body: dict[str, Any] = {PROPERTY_PLAIN[k]: v for k, v in fields.items() if k in PROPERTY_PLAIN}
    if "lat" in fields or "lng" in fields:
        merged = {**(current or {}), **fields}
        body["coords"] = [merged.get("lng"), merged.get("lat")]
    return body


def _text(value: Value) -> str:
    return "" if value is None else str(value)
