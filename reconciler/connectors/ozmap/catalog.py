"""What the OZmap connector serves: each collection's schema (:data:`CATALOG`) and how it maps onto API v2.

Collections:

- ``boxes`` — read-only joined view (ozmap.md F11): each box with its project name, the count and summed outputs
  of its service (``isDrop``) splitters, and the OLT feeding its first service splitter (``olt_id``, ``olt_ip``,
  ``olt_name``).
- ``building-splitters`` — read-only joined view: one record per service splitter of a building (vertical
  condominium), named ``"<building> - <splitter>"``, with the building's project and position, the splitter's
  outputs and the OLT feeding it (seed 002 "Condominiums": each splitter becomes an IXC box).
- ``connections`` — one record per property that has a client (``populate=client``): the client's code, name,
  status and implantation, the box or building, the splitter and port (``box_port``: the port as the box counts
  it), coordinates and read power. Writable: box/splitter/port (F6), coordinates, ``potency_read`` (F9),
  observation; ``delete`` removes property, client and drop (F4 withdrawal); operation ``cancel`` (F4 cancel).
- ``reservations`` — a view over clients: a create reserves a port (F2, :mod:`.operations`; with the ONU data and
  ``auto_connect``), records are the clients, so a reservation is found again by its code; an update changes the
  client's own fields (ONU data included); delete removes the reservation: property, client and drop (F4).
- ``projects``, ``olts`` — plain read views; ``clients`` (``/ftth-clients``), ``properties`` — read/write.
- ``splitters`` (every splitter of a live box/building, for the field-service replica) and ``pons`` (PONs with
  their OLT, slot and PON numbers; ``potency`` writable) — see :mod:`.field_sync`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import msgspec

from reconciler.connectors.base import Catalog, CollectionSchema
from reconciler.connectors.ozmap import field_sync, mapping, operations, views
from reconciler.connectors.ozmap.client import cond
from reconciler.model import Record, Value

BOX_FIELDS = frozenset(
    {
        "id", "name", "project_id", "project_name", "implanted", "draft", "lat", "lng", "observation",
        "address", "service_splitters", "service_ports", "olt_ip", "olt_name", "olt_id",
    }
)  # fmt: skip
BUILDING_SPLITTER_FIELDS = frozenset(
    {
        "id", "name", "splitter_name", "building_id", "building_name", "project_id", "project_name",
        "capacity", "lat", "lng", "olt_ip", "olt_name",
    }
)  # fmt: skip
CONNECTION_FIELDS = frozenset(mapping.CONNECTION_FIELD_SOURCES)
CONNECTION_WRITABLE = frozenset(
    {"box_id", "splitter_id", "port", "lat", "lng", "potency_read", "observation"}
)
CLIENT_WRITABLE = frozenset(mapping.CLIENT_PLAIN) | frozenset(mapping.CLIENT_ONU)
PROPERTY_WRITABLE = frozenset(mapping.PROPERTY_PLAIN) | {"lat", "lng"}

CATALOG: Catalog = {
    "boxes": CollectionSchema(
        fields=BOX_FIELDS,
        incremental=True,
        deletions=True,
        description="Boxes joined with project name, service splitters/ports and the OLT feeding them",
    ),
    "building-splitters": CollectionSchema(
        fields=BUILDING_SPLITTER_FIELDS,
        incremental=True,
        deletions=True,
        description="Service splitters of buildings, each as '<building> - <splitter>' with its OLT",
    ),
    "connections": CollectionSchema(
        fields=CONNECTION_FIELDS,
        writable=CONNECTION_WRITABLE,
        incremental=True,
        deletions=True,
        description="Properties with a client: code, status, box/building, splitter, port, coordinates, power",
        operations={"cancel": operations.CANCEL_ARGS},
    ),
    "reservations": CollectionSchema(
        fields=operations.RESERVATION_FIELDS | {"id", "status", "certified"},
        writable=operations.RESERVATION_FIELDS,
        incremental=True,
        deletions=True,
        description="A client created with its property (POST /properties); delete removes both and the drop",
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
    "splitters": CollectionSchema(
        fields=field_sync.SPLITTER_FIELDS,
        incremental=True,
        deletions=True,
        description="Every splitter of a live box or building: parent, ratio, free/blocked ports, dates",
    ),
    "pons": CollectionSchema(
        fields=field_sync.PON_FIELDS,
        writable=frozenset({"potency"}),
        incremental=True,
        deletions=True,
        description="PONs with their OLT and slot/PON numbers (key 'olt/slot/pon'); potency = launch dBm",
    ),
}


class Spec(NamedTuple):
    """How one collection maps onto the API."""

    resource: str
    decoder: msgspec.json.Decoder[views.Page[Any]]
    to_record: Callable[..., Record]
    filters: Mapping[str, str]  # record field → filterable API property
    body: Callable[[Mapping[str, Value], Mapping[str, Value] | None], dict[str, Any]] | None = None
    one: msgspec.json.Decoder[Any] | None = None  # decoder of GET /resource/id
    needs_current: frozenset[str] = frozenset()  # changed fields that need the current record to be written
    base: tuple[dict[str, Any], ...] = ()  # conditions every listing of the collection carries
    populate: str | None = None
    join: str = ""  # "boxes" | "connections": rows are joined page by page (see .joins)
    writes: str = ""  # the collection whose spec writes (connections → properties)


def _gone_connection(prop: views.ConnectionView, *, deleted: bool = False) -> Record:
    return mapping.gone_record(prop.id, prop.deleted_at or prop.updated_at)


_CLIENT_FILTERS = {"id": "id", **mapping.CLIENT_PLAIN} | {
    f: f"onu.{api}" for f, api in mapping.CLIENT_ONU.items()
}

SPECS: dict[str, Spec] = {
    "boxes": Spec(
        "boxes",
        views.BOXES,
        mapping.bare_box_record,
        {f: f for f in ("id", "name", "implanted", "draft", "observation", "address")}
        | {"project_id": "project"},
        join="boxes",
    ),
    "projects": Spec("projects", views.PROJECTS, mapping.project_record, {"id": "id", "name": "name"}),
    "olts": Spec("olts", views.OLTS, mapping.olt_record, {"id": "id", "name": "name", "ip": "ip"}),
    "clients": Spec(
        "ftth-clients",
        views.CLIENTS,
        mapping.client_record,
        _CLIENT_FILTERS,
        mapping.client_body,
        views.CLIENT,
        frozenset(mapping.CLIENT_ONU),
    ),
    "reservations": Spec("ftth-clients", views.CLIENTS, mapping.client_record, _CLIENT_FILTERS),
    "properties": Spec(
        "properties",
        views.PROPERTIES,
        mapping.property_record,
        {"id": "id", **{k: v for k, v in mapping.PROPERTY_PLAIN.items() if k not in ("splitter_id", "port")}},
        mapping.property_body,
        views.PROPERTY,
        frozenset({"lat", "lng"}),
    ),
    "connections": Spec(
        "properties",
        views.CONNECTIONS,
        _gone_connection,
        {
            "id": "id",
            "client_id": "client",
            "box_id": "box",
            "building_id": "parent",
            "drop_id": "drop",
            "project_id": "project",
            "splitter_id": "connections.id",
        },
        base=(cond("client", "!=", None),),
        populate="client",
        join="connections",
        writes="properties",
    ),
    "pons": Spec("pons", views.PONS, field_sync.bare_pon_record, {"id": "id"}, field_sync.pon_body),
}
