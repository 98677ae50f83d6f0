"""Pure translations between OZmap views and flat records, and from record fields back to request bodies.

Record field names are snake_case and flat (``project_id``, ``onu_serial_number``); the API's nested shapes
(``coords`` as ``[lng, lat]``, the three-part ``onu`` object, ``connections[0]``) are flattened on read and
rebuilt on write. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def connection_record(prop: views.ConnectionView, offsets: Mapping[str, int]) -> Record:
    """One row of ``connections``: a property with its client, box (or building), splitter and port.

    ``box_port`` numbers the port as the box counts it: ports run on across the box's service splitters in
    (name, id) order (``offsets``: splitter id → ports before it); in a building each splitter is its own box.
    """
    client = (
        prop.client
        if isinstance(prop.client, views.PopulatedClient)
        else views.PopulatedClient(id=prop.client)
    )
    connection = prop.connections[0] if prop.connections else views.Connection()
    building = views.ref_id(prop.parent)
    port = connection.port
    box_port = port
    if port is not None and building is None:
        offset = offsets.get(connection.id or "")
        box_port = None if offset is None else offset + port
    fields: Fields = {
        "id": prop.id,
        "code": client.code,
        "client_id": client.key,
        "client_name": client.name,
        "implanted": client.implanted,
        "status": client.status,
        "project_id": prop.project,
        "box_id": views.ref_id(prop.box),
        "building_id": building,
        "splitter_id": connection.id,
        "splitter_name": connection.name,
        "port": port,
        "box_port": box_port,
        "drop_id": views.ref_id(prop.drop),
        "address": prop.address,
        "observation": prop.observation,
        "lat": prop.lat,
        "lng": prop.lng,
        "potency_read": prop.potency_read,
    }
    return Record(id=prop.id, fields=fields, updated_at=max(prop.updated_at, client.updated_at))


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
