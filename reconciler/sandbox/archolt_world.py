"""A small deterministic ArchOLT world mirroring an OZmap world (archolt.md 6.10).

:func:`archolt_rows` builds rows for :meth:`ArcholtStore.load <reconciler.sandbox.archolt_store.ArcholtStore.load>`:

- **OLTs**: one per given OZmap OLT (same ``name`` and ``ip``; ``ozmap_olt_id`` = the OZmap id: the "Mapeamento
  da OLT" link [seed]); vendors differ; the first mapped OLT has ``require_cto_on_activation`` ("Exigir CTO na
  ativação do CLIENTE" [seed]). Exactly one OLT is left unmapped: the last mirrored one when at least three OZmap
  OLTs are given, otherwise a synthetic ``OLT-SUL-nn`` added to reach three OLTs (a missing mapped OLT is then
  synthetic too, with a made-up OZmap id). Each OLT gets enough PON ports for its ONUs.
- **CTO mirrors**: from ``ozmap_boxes`` when given (only boxes whose ``ozmap_olt_id`` is a mapped OLT, archolt.md
  A9, and that have coordinates), else synthetic ones on the mapped OLTs, two of them sharing one name in
  different projects (OZmap box names repeat across projects).
- **ONUs** (``max(12, scale)`` of them): one of every case first — provisioned with a CTO on the require-CTO OLT
  and on another mapped OLT, provisioned without a CTO, deprovisioned (tombstone, within the 30 days), a serial
  deprovisioned and provisioned again (new id), an ONU on the unmapped OLT, an ONU linked to a CTO whose name is
  ambiguous — then a seeded mix.

Same ``(seed, scale, ozmap_olts, ozmap_boxes, now)`` → same rows. Pass the serving store's "now" (or set the
store's clock to :data:`DEFAULT_NOW`): tombstones and events older than the retention windows expire on the
first request otherwise. Imports only the stdlib and the sandbox.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from reconciler.sandbox.archolt_values import VENDORS, format_time, to_epoch

__all__ = ["DEFAULT_NOW", "archolt_rows"]

DEFAULT_NOW: Final = datetime(2025, 6, 3, 12, 0, 0, tzinfo=timezone(timedelta(hours=-3)))
"""The world's "now" when none is given: every generated timestamp is at or before it."""

SERIAL_PREFIX: Final = {
    "Huawei": "HWTC", "ZTE": "ZTEG", "Fiberhome": "FHTT", "Nokia": "ALCL", "Parks": "PRKS", "Datacom": "DACM",
    "VSOL": "VSOL",
}  # fmt: skip
OLT_MODELS: Final = {
    "Huawei": "MA5800-X7", "ZTE": "C650", "Fiberhome": "AN5516-06", "Nokia": "ISAM FX-8", "Parks": "OLT 7216",
    "Datacom": "DM4610", "VSOL": "V1600G2",
}  # fmt: skip
ONU_MODELS: Final = {
    "Huawei": "EG8145V5", "ZTE": "F670L", "Fiberhome": "AN5506-04-FA", "Nokia": "G-140W-C", "Parks": "Fiberlink 411",
    "Datacom": "DM985-424", "VSOL": "V2802GWT",
}  # fmt: skip
PROJECTS: Final = ("Centro", "Norte", "Sul", "Leste", "Oeste")
STREETS: Final = ("Rua das Flores", "Av. Paulista", "Rua Augusta", "Rua da Consolação", "Rua Vergueiro")
DAY: Final = 86400

Row = dict[str, Any]


def archolt_rows(
    seed: int,
    scale: int,
    ozmap_olts: list[dict[str, Any]],
    *,
    ozmap_boxes: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Rows per collection (``olts``, ``ctos``, ``onus``, ``events``) in API shape, ready for ``store.load``.

    ``ozmap_olts``: OZmap OLT records (``id``, ``name``, ``ip``). ``ozmap_boxes``: optional OZmap boxes to mirror,
    each with ``id``, ``name``, ``ozmap_olt_id`` (the OZmap OLT feeding it), ``lat``/``lng`` and optionally
    ``project`` (name), ``ports_total``, ``ports_free``.
    """
    rng = random.Random(f"archolt-world:{seed}:{scale}")
    clock = to_epoch(now or DEFAULT_NOW)
    olts = _olts(rng, seed, ozmap_olts, clock)
    n_onus = max(12, scale)
    _add_ports(olts, n_onus)
    ctos = (
        _mirrors(olts, ozmap_boxes, clock)
        if ozmap_boxes is not None
        else _synthetic_ctos(rng, olts, n_onus, clock)
    )
    onus = _Onus(rng, olts, ctos, clock).build(n_onus)
    stamp = _Stamper()
    return {
        "olts": [stamp.olt(o) for o in olts],
        "ctos": [stamp.cto(c) for c in ctos],
        "onus": [stamp.onu(o) for o in onus],
        "events": [],
    }


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


def _olts(rng: random.Random, seed: int, ozmap_olts: list[dict[str, Any]], clock: int) -> list[Row]:
    given = [(str(o["name"]), str(o["ip"]), str(o["id"])) for o in ozmap_olts]
    specs: list[tuple[str, str, str | None]] = []
    if len(given) >= 3:
        specs = [(name, ip, oid) for name, ip, oid in given[:-1]] + [(given[-1][0], given[-1][1], None)]
    else:
        specs = list(given)
        used_ips = {ip for _, ip, _ in given}
        k = 0
        while len(specs) < 2:
            k += 1
            specs.append((f"OLT-LESTE-{k:02d}", _free_ip(used_ips, 200 + k), _hex_id(rng)))
        specs.append((f"OLT-SUL-{len(specs) + 1:02d}", _free_ip(used_ips, 250), None))
    rows: list[Row] = []
    first_mapped = next(i for i, (_, _, oid) in enumerate(specs) if oid is not None)
    for i, (name, ip, oid) in enumerate(specs):
        vendor = VENDORS[(i + seed) % len(VENDORS)]
        created = clock - (400 + 17 * i) * DAY
        rows.append(
            {
                "id": i + 1,
                "name": name,
                "ip": ip,
                "vendor": vendor,
                "model": OLT_MODELS[vendor],
                "pon_type": "XGS-PON" if i % 4 == 3 else "GPON",
                "ozmap_olt_id": oid,
                "require_cto_on_activation": i == first_mapped,
                "pon_ports": [],
                "created_at": created,
                "updated_at": clock - (3 + i) * DAY,
            }
        )
    return rows


def _free_ip(used: set[str], start: int) -> str:
    host = start
    while f"10.20.0.{host}" in used:
        host = host % 254 + 1
    used.add(f"10.20.0.{host}")
    return f"10.20.0.{host}"


def _add_ports(olts: list[Row], n_onus: int) -> None:
    per_olt = math.ceil(n_onus / len(olts)) + 4
    pons = max(2, math.ceil(per_olt / 96))
    for olt in olts:
        olt["pon_ports"] = [{"slot": 1 + k // 16, "pon": 1 + k % 16, "max_onus": 128} for k in range(pons)]


def _mirrors(olts: list[Row], boxes: list[dict[str, Any]], clock: int) -> list[Row]:
    mapped = {o["ozmap_olt_id"]: o["id"] for o in olts if o["ozmap_olt_id"] is not None}
    rows: list[Row] = []
    for box in boxes:
        olt_ref = box.get("ozmap_olt_id")
        if olt_ref not in mapped or box.get("lat") is None or box.get("lng") is None:
            continue
        ports_total = int(box.get("ports_total") or 16)
        rows.append(
            {
                "id": len(rows) + 1,
                "ozmap_box_id": str(box["id"]),
                "name": str(box.get("name") or ""),
                "olt_id": mapped[olt_ref],
                "ozmap_olt_id": olt_ref,
                "project": box.get("project"),
                "latitude": float(box["lat"]),
                "longitude": float(box["lng"]),
                "ports_total": ports_total,
                "ports_free": box.get("ports_free"),
                "active": True,
                "synced_at": clock - 2 * DAY,
                "updated_at": clock - 2 * DAY,
            }
        )
    return rows


def _synthetic_ctos(rng: random.Random, olts: list[Row], n_onus: int, clock: int) -> list[Row]:
    mapped = [o for o in olts if o["ozmap_olt_id"] is not None]
    per_olt = max(3, math.ceil(n_onus / len(olts) / 8))
    rows: list[Row] = []
    for o_index, olt in enumerate(mapped):
        for k in range(per_olt):
            number = 100 * (o_index + 1) + k + 1
            stamp = clock - (2 + (len(rows) % 5)) * DAY
            rows.append(
                {
                    "id": len(rows) + 1,
                    "ozmap_box_id": _hex_id(rng),
                    "name": f"CTO-{number}",
                    "olt_id": olt["id"],
                    "ozmap_olt_id": olt["ozmap_olt_id"],
                    "project": PROJECTS[(o_index + k) % len(PROJECTS)],
                    "latitude": round(-23.55 + rng.uniform(-0.05, 0.05), 6),
                    "longitude": round(-46.63 + rng.uniform(-0.05, 0.05), 6),
                    "ports_total": 16 if k % 2 == 0 else 8,
                    "ports_free": rng.randint(0, 8),
                    "active": True,
                    "synced_at": stamp,
                    "updated_at": stamp,
                }
            )
    # two OZmap boxes with the same name in different projects (archolt.md 6.10)
    first, twin = rows[0], rows[1]
    twin["name"] = first["name"]
    if twin["project"] == first["project"]:
        twin["project"] = PROJECTS[(PROJECTS.index(first["project"]) + 1) % len(PROJECTS)]
    return rows


class _Onus:
    """Builds the ONU rows: the guaranteed cases, then a seeded mix."""

    def __init__(self, rng: random.Random, olts: list[Row], ctos: list[Row], clock: int) -> None:
        self.rng, self.olts, self.clock = rng, olts, clock
        self.ctos_of = {o["id"]: [c for c in ctos if c["olt_id"] == o["id"]] for o in olts}
        self.require = next(o for o in olts if o["require_cto_on_activation"])
        self.unmapped = next(o for o in olts if o["ozmap_olt_id"] is None)
        others = [o for o in olts if o["ozmap_olt_id"] is not None and o is not self.require]
        self.other = others[0] if others else self.require
        names = [c["name"] for c in ctos]
        self.ambiguous = [c for c in ctos if names.count(c["name"]) > 1]
        self.rows: list[Row] = []
        self.serials: set[str] = set()
        self.next_index: dict[tuple[int, int, int], int] = {}

    def build(self, total: int) -> list[Row]:
        self.add(self.require, "cto")
        self.add(self.other, "cto")
        self.add(self.other if self.other is not self.require else self.unmapped, "none")
        self.add(self.other, "gone")
        old = self.add(self.other, "gone")
        self.add(self.other, "cto", serial=old["serial"], after=old["deprovisioned_at"])
        self.add(self.unmapped, "none")
        if self.ambiguous and self.ambiguous[0]["olt_id"] is not None:
            self.add(self.ambiguous[0]["olt_id"], "cto", cto=self.ambiguous[0])
        while len(self.rows) < total:
            olt = self.olts[len(self.rows) % len(self.olts)]
            draw = self.rng.random()
            if olt is self.unmapped:
                case = "none" if draw < 0.75 else "gone"
            elif olt is self.require:
                case = "cto" if draw < 0.85 else "gone"
            else:
                case = "cto" if draw < 0.6 else "none" if draw < 0.8 else "gone"
            self.add(olt, case)
        return self.rows

    def add(
        self,
        olt_ref: Row | int,
        case: str,
        *,
        cto: Row | None = None,
        serial: str | None = None,
        after: int | None = None,
    ) -> Row:
        rng, clock = self.rng, self.clock
        olt = olt_ref if isinstance(olt_ref, dict) else next(o for o in self.olts if o["id"] == olt_ref)
        choices = self.ctos_of[olt["id"]]
        if case == "cto" and cto is None and choices:
            cto = choices[rng.randrange(len(choices))]
        if case == "gone" and choices and rng.random() < 0.5:
            cto = choices[rng.randrange(len(choices))]
        if case == "none":
            cto = None
        vendor = olt["vendor"]
        if serial is None:
            serial = self._serial(vendor)
        slot, pon, index = self._position(olt)
        provisioned = clock - rng.randint(20, 180) * DAY - rng.randint(0, DAY)
        if after is not None:
            provisioned = min(after + rng.randint(60, DAY), clock)
        gone = case == "gone"
        deprovisioned = clock - rng.randint(1, 20) * DAY + rng.randint(0, DAY - 1) if gone else None
        if deprovisioned is not None:
            provisioned = min(provisioned, deprovisioned - DAY)
        updated = (
            deprovisioned
            if deprovisioned is not None
            else provisioned + (rng.randint(60, 7200) if cto else 0)
        )
        online = not gone and rng.random() < 0.85
        number = len(self.rows) + 1
        row = {
            "id": 5000 + number,
            "serial": serial,
            "olt_id": olt["id"],
            "slot": slot,
            "pon": pon,
            "onu_index": index,
            "model": ONU_MODELS[vendor],
            "vlan": 100 + olt["id"],
            "description": f"{STREETS[number % len(STREETS)]}, {10 + (number * 7) % 990}",
            "login": None if number % 10 == 9 else f"cliente{number:05d}",
            "status": "deprovisioned" if gone else "provisioned",
            "cto": None
            if cto is None
            else {"id": cto["id"], "name": cto["name"], "ozmap_box_id": cto["ozmap_box_id"]},
            "oper_state": "online" if online else ("unknown" if gone else "offline"),
            "rx_power_dbm": round(-17.0 - rng.random() * 9, 2) if online else None,
            "tx_power_dbm": round(1.5 + rng.random() * 1.5, 2) if online else None,
            "provisioned_at": provisioned,
            "deprovisioned_at": deprovisioned,
            "updated_at": min(updated, clock),
        }
        self.rows.append(row)
        return row

    def _serial(self, vendor: str) -> str:
        while True:
            serial = f"{SERIAL_PREFIX[vendor]}{self.rng.getrandbits(32):08X}"
            if serial not in self.serials:
                self.serials.add(serial)
                return serial

    def _position(self, olt: Row) -> tuple[int, int, int]:
        ports = olt["pon_ports"]
        for k in range(len(ports)):
            port = ports[(len(self.rows) + k) % len(ports)]
            key = (olt["id"], port["slot"], port["pon"])
            index = self.next_index.get(key, 0)
            if index < port["max_onus"]:
                self.next_index[key] = index + 1
                return port["slot"], port["pon"], index
        raise ValueError(f"OLT {olt['name']} has no free PON position")


class _Stamper:
    """Epoch stamps → API strings (ISO 8601 with the server's local offset)."""

    def _times(self, row: Row, *names: str) -> Row:
        return {**row, **{n: format_time(row[n]) for n in names}}

    def olt(self, row: Row) -> Row:
        return self._times(row, "created_at", "updated_at")

    def cto(self, row: Row) -> Row:
        return self._times(row, "synced_at", "updated_at")

    def onu(self, row: Row) -> Row:
        return self._times(row, "provisioned_at", "deprovisioned_at", "updated_at")
