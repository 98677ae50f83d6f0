"""Narrow msgspec views of ArchOLT API payloads and their mapping into flat records (archolt.md 2 and 4).

- Views name only what the connector reads; msgspec skips the rest while decoding. One decoder per view, built
  once at import.
- Timestamps arrive with the server's local offset (``2025-06-03T11:22:31-03:00``) or, on installs that do it,
  naive local time (``2025-06-03 11:22:31``, archolt.md 2 ``naive_local_timestamps``). Records carry them
  normalised to UTC ``YYYY-MM-DDTHH:MM:SSZ`` with the configured zone (:func:`utc_text`), so ``updated_at``
  sorts correctly as a string and round-trips as ``updated_since``.
- The ONU's id is the OZmap client code (archolt.md A2, [seed] "ID da ONU como código"): records keep it both as
  the record id (string) and as ``onu_id`` (integer); ``pppoe_user`` is the contract's ``login``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, Generic, TypeVar

import msgspec

from reconciler.model import Fields, Record

T = TypeVar("T")


class Meta(msgspec.Struct):
    total: int
    page: int = 1
    per_page: int = 0


class Page(msgspec.Struct, Generic[T]):
    """A list answer ``{"data": [...], "meta": {page, per_page, total}}``."""

    meta: Meta
    data: list[T] = []


class PonPort(msgspec.Struct):
    slot: int
    pon: int
    onu_count: int = 0
    max_onus: int = 0


class OltView(msgspec.Struct):
    id: int
    name: str = ""
    ip: str = ""
    vendor: str = ""
    model: str = ""
    pon_type: str = ""
    ozmap_olt_id: str | None = None
    require_cto_on_activation: bool = False
    pon_ports: list[PonPort] = []
    created_at: str | None = None
    updated_at: str = ""


class CtoLink(msgspec.Struct):
    id: int
    name: str = ""
    ozmap_box_id: str = ""


class CtoView(msgspec.Struct):
    id: int
    ozmap_box_id: str
    name: str = ""
    olt_id: int | None = None
    ozmap_olt_id: str | None = None
    project: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    ports_total: int = 0
    ports_free: int | None = None
    active: bool = True
    synced_at: str | None = None
    updated_at: str = ""


class OnuView(msgspec.Struct):
    id: int
    olt_id: int
    serial: str = ""
    slot: int = 0
    pon: int = 0
    onu_index: int = 0
    model: str = ""
    vlan: int | None = None
    description: str = ""
    login: str | None = None
    status: str = "provisioned"
    cto: CtoLink | None = None
    oper_state: str = "unknown"
    rx_power_dbm: float | None = None
    tx_power_dbm: float | None = None
    provisioned_at: str | None = None
    deprovisioned_at: str | None = None
    updated_at: str = ""


class EventView(msgspec.Struct):
    seq: int
    type: str
    at: str = ""
    olt_id: int | None = None
    onu_id: int | None = None
    cto_id: int | None = None
    data: dict[str, Any] = {}


class EventPage(msgspec.Struct):
    """A change-feed answer ``{"data": [...], "next_after": n}``."""

    next_after: int
    data: list[EventView] = []


class ErrorDetail(msgspec.Struct):
    code: str = ""
    message: str = ""
    details: dict[str, Any] = {}


class ErrorBody(msgspec.Struct):
    """``{"error": {"code", "message", "details"}}`` (archolt.md 2)."""

    error: ErrorDetail | None = None


OLTS = msgspec.json.Decoder(Page[OltView])
CTOS = msgspec.json.Decoder(Page[CtoView])
ONUS = msgspec.json.Decoder(Page[OnuView])
OLT = msgspec.json.Decoder(OltView)
CTO = msgspec.json.Decoder(CtoView)
ONU = msgspec.json.Decoder(OnuView)
EVENTS = msgspec.json.Decoder(EventPage)
ERROR = msgspec.json.Decoder(ErrorBody)

#: Fields of a CTO upsert body (archolt.md 4.2: every field but id, olt_id, synced_at, updated_at).
CTO_BODY_FIELDS = (
    "ozmap_box_id", "name", "ozmap_olt_id", "project", "latitude", "longitude", "ports_total", "ports_free",
    "active",
)  # fmt: skip


def utc_text(value: str | None, zone: tzinfo) -> str | None:
    """A server timestamp as UTC ``YYYY-MM-DDTHH:MM:SSZ``; naive ones are read in ``zone``; unreadable kept."""
    if not value:
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def olt_record(olt: OltView, zone: tzinfo) -> Record:
    """An OLT with its OZmap mapping (``mapped`` = ``ozmap_olt_id`` is set) and PON ports."""
    updated = utc_text(olt.updated_at, zone) or ""
    fields: Fields = {
        "id": str(olt.id),
        "name": olt.name,
        "ip": olt.ip,
        "vendor": olt.vendor,
        "model": olt.model,
        "pon_type": olt.pon_type,
        "ozmap_olt_id": olt.ozmap_olt_id,
        "mapped": olt.ozmap_olt_id is not None,
        "require_cto_on_activation": olt.require_cto_on_activation,
        "pon_ports": [msgspec.to_builtins(p) for p in olt.pon_ports],
        "pon_count": len(olt.pon_ports),
        "onu_count": sum(p.onu_count for p in olt.pon_ports),
        "created_at": utc_text(olt.created_at, zone),
        "updated_at": updated,
    }
    return Record(id=str(olt.id), fields=fields, updated_at=updated)


def cto_record(cto: CtoView, zone: tzinfo) -> Record:
    """A CTO mirror; its record id is the ``ozmap_box_id`` every write addresses (ArchOLT's id is ``cto_id``)."""
    updated = utc_text(cto.updated_at, zone) or ""
    fields: Fields = {
        "id": cto.ozmap_box_id,
        "cto_id": cto.id,
        "ozmap_box_id": cto.ozmap_box_id,
        "name": cto.name,
        "olt_id": cto.olt_id,
        "ozmap_olt_id": cto.ozmap_olt_id,
        "project": cto.project,
        "latitude": cto.latitude,
        "longitude": cto.longitude,
        "ports_total": cto.ports_total,
        "ports_free": cto.ports_free,
        "active": cto.active,
        "synced_at": utc_text(cto.synced_at, zone),
        "updated_at": updated,
    }
    return Record(id=cto.ozmap_box_id, fields=fields, updated_at=updated)


def cto_body(view: CtoView) -> dict[str, Any]:
    """The upsert body that reproduces ``view`` (used to overlay changes on the current mirror)."""
    return {name: getattr(view, name) for name in CTO_BODY_FIELDS}


def onu_record(onu: OnuView, olts: Mapping[int, OltView], zone: tzinfo, *, deleted: bool = False) -> Record:
    """An ONU flattened with its CTO link and its OLT (name, ip, mapping, "require CTO on activation")."""
    olt = olts.get(onu.olt_id)
    cto = onu.cto
    updated = utc_text(onu.updated_at, zone) or ""
    fields: Fields = {
        "id": str(onu.id),
        "onu_id": onu.id,
        "serial": onu.serial,
        "olt_id": onu.olt_id,
        "olt_name": None if olt is None else olt.name,
        "olt_ip": None if olt is None else olt.ip,
        "ozmap_olt_id": None if olt is None else olt.ozmap_olt_id,
        "require_cto": None if olt is None else olt.require_cto_on_activation,
        "slot": onu.slot,
        "pon": onu.pon,
        "onu_index": onu.onu_index,
        "model": onu.model,
        "vlan": onu.vlan,
        "description": onu.description,
        "pppoe_user": onu.login,
        "state": onu.status,
        "has_cto": cto is not None,
        "cto_id": None if cto is None else cto.id,
        "cto_name": None if cto is None else cto.name,
        "cto_ozmap_box_id": None if cto is None else cto.ozmap_box_id,
        "oper_state": onu.oper_state,
        "rx_power_dbm": onu.rx_power_dbm,
        "tx_power_dbm": onu.tx_power_dbm,
        "provisioned_at": utc_text(onu.provisioned_at, zone),
        "deprovisioned_at": utc_text(onu.deprovisioned_at, zone),
        "updated_at": updated,
    }
    return Record(id=str(onu.id), fields=fields, updated_at=updated, deleted=deleted)


def event_cursor(seq: int) -> str:
    """An event's position as a record ``updated_at``: zero-padded so it sorts as a string."""
    return f"{seq:015d}"


def event_record(event: EventView, zone: tzinfo) -> Record:
    """One change-feed event; ``updated_at`` is :func:`event_cursor` of its ``seq``."""
    fields: Fields = {
        "id": str(event.seq),
        "seq": event.seq,
        "type": event.type,
        "at": utc_text(event.at, zone),
        "olt_id": event.olt_id,
        "onu_id": event.onu_id,
        "cto_id": event.cto_id,
        "data": event.data,
    }
    return Record(id=str(event.seq), fields=fields, updated_at=event_cursor(event.seq))


OLT_FIELDS = frozenset(olt_record(OltView(id=0), UTC).fields)
CTO_FIELDS = frozenset(cto_record(CtoView(id=0, ozmap_box_id=""), UTC).fields)
ONU_FIELDS = frozenset(onu_record(OnuView(id=0, olt_id=0), {}, UTC).fields)
EVENT_FIELDS = frozenset(event_record(EventView(seq=0, type=""), UTC).fields)
