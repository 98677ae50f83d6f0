"""The ArchOLT ``pon-ports`` collection: one record per PON port of every OLT, with its launch power.

Seed 001 "PON port power update for OLTs": the monitoring side reports each PON's output power so OZmap's
calculated power is right. archolt.md 4.1 lists ``pon_ports`` as ``{slot, pon, onu_count, max_onus}``; [assume]
a port also carries ``tx_power_dbm`` (the PON's launch power, null or absent when not read), which the sandbox
keeps and shows when set. Records: id ``"<olt id>/<slot>/<pon>"``, the OLT's name, IP and OZmap mapping
(``ozmap_olt_id``, ``mapped``), ``slot``, ``pon``, ``tx_power_dbm``, ``onu_count``, ``max_onus``; ``updated_at``
is the OLT's. Read-only, incremental on the OLTs' ``updated_at``, no deletions (a port removed from an OLT is
just no longer listed).
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, tzinfo

import msgspec

from reconciler import errors
from reconciler.connectors.archolt import views
from reconciler.connectors.archolt.client import ArcholtClient
from reconciler.connectors.base import CollectionSchema
from reconciler.model import Fields, Record

__all__ = ["COLLECTION", "SCHEMA", "fetch_by_ids", "records", "stream"]

COLLECTION = "pon-ports"


class _Port(msgspec.Struct):
    slot: int
    pon: int
    onu_count: int = 0
    max_onus: int = 0
    tx_power_dbm: float | None = None


class _Olt(msgspec.Struct):
    id: int
    name: str = ""
    ip: str = ""
    ozmap_olt_id: str | None = None
    pon_ports: list[_Port] = []
    updated_at: str = ""


_OLTS = msgspec.json.Decoder(views.Page[_Olt])
_OLT = msgspec.json.Decoder(_Olt)
_keyset = operator.attrgetter("updated_at", "id")


def records(olt: _Olt, zone: tzinfo) -> list[Record]:
    """The OLT's ports as records."""
    updated = views.utc_text(olt.updated_at, zone) or ""
    out: list[Record] = []
    for port in olt.pon_ports:
        record_id = f"{olt.id}/{port.slot}/{port.pon}"
        fields: Fields = {
            "id": record_id,
            "olt_id": olt.id,
            "olt_name": olt.name,
            "olt_ip": olt.ip,
            "ozmap_olt_id": olt.ozmap_olt_id,
            "mapped": olt.ozmap_olt_id is not None,
            "slot": port.slot,
            "pon": port.pon,
            "tx_power_dbm": port.tx_power_dbm,
            "onu_count": port.onu_count,
            "max_onus": port.max_onus,
            "updated_at": updated,
        }
        out.append(Record(id=record_id, fields=fields, updated_at=updated))
    return out


SCHEMA = CollectionSchema(
    fields=frozenset(records(_Olt(id=0, pon_ports=[_Port(slot=1, pon=1)]), UTC)[0].fields),
    incremental=True,
    description="PON ports of every OLT ('<olt>/<slot>/<pon>') with their launch power and OZmap OLT mapping",
)


async def stream(client: ArcholtClient, zone: tzinfo, since: str | None) -> AsyncIterator[list[Record]]:
    async for olts in client.walk("olts", _OLTS, _keyset, since=since):
        rows = [r for olt in olts for r in records(olt, zone)]
        if rows:
            yield rows


async def fetch_by_ids(client: ArcholtClient, zone: tzinfo, ids: Sequence[str]) -> list[Record]:
    """Ports by record id; ids of unknown OLTs or ports are simply absent."""
    wanted = list(dict.fromkeys(ids))
    olt_ids = sorted({i.split("/", 1)[0] for i in wanted if i.split("/", 1)[0].isdigit()})
    found: dict[str, Record] = {}
    for olt_id in olt_ids:
        try:
            olt = await client.get(f"/olts/{olt_id}", _OLT)
        except errors.NotFound:
            continue
        found.update((r.id, r) for r in records(olt, zone))
    return [found[i] for i in wanted if i in found]
