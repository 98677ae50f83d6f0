"""Faithful writes of the ArchOLT sandbox: provisioning rules, "Alterar CTO (OZMAP)", deprovisioning, CTO mirror
upserts/removals and OLT edits (archolt.md 3, 4 and 6; every rule there is [assume]).

Every function validates first and changes the store only when nothing is refused, then writes the matching event
in the same step: no event without a change, no change without an event (archolt.md 6.5). ``updated_at`` bumps on
real edits only; monitoring readings (``oper_state``, powers) never bump it (6.4).

Choices where the contract is silent (documented here, kept small):

- bodies are JSON objects; unknown keys answer 400 ``invalid_parameter`` (a typo is never silently ignored);
- ``vlan`` defaults to 100, ``model``/``description`` to ``""``, ``login`` to null on ``POST onus``;
- a given ``onu_index`` that is out of 0..127 or already taken answers 400 ``invalid_parameter``;
- a PON that the OLT does not have answers 400 ``invalid_parameter``;
- a CTO given by id must exist and be active (like one given by name), else 404 ``cto_not_found``;
- ``PUT onus/{id}/cto`` with ``{"cto_id": null}`` unlinks (refused with ``cto_required`` where the OLT demands one);
- the CTO upsert body requires ``name``, ``latitude``, ``longitude``, ``ports_total``; the others default to null
  (``active`` to true); a PUT replaces the mirror with the body (upsert semantics);
- ``DELETE ctos/ozmap/{id}?deactivate=true`` writes a ``cto.upserted`` event with ``{"active": false}``.
"""

from __future__ import annotations

import re
from typing import Any, Final

from reconciler.sandbox.archolt_store import ArcholtStore, Row
from reconciler.sandbox.archolt_values import (
    MAX_ONU_INDEX,
    OPER_STATES,
    PON_TYPES,
    SERIAL_PATTERN,
    VENDORS,
    ApiError,
    bad_parameter,
)
from reconciler.sandbox.archolt_values import body_bool as _bool
from reconciler.sandbox.archolt_values import body_int as _int
from reconciler.sandbox.archolt_values import body_number as _number
from reconciler.sandbox.archolt_values import body_object as _object
from reconciler.sandbox.archolt_values import body_only as _only
from reconciler.sandbox.archolt_values import body_req_int as _req_int
from reconciler.sandbox.archolt_values import body_str as _str

ONU_POST_KEYS: Final = frozenset(
    {
        "olt_id",
        "slot",
        "pon",
        "serial",
        "model",
        "vlan",
        "description",
        "login",
        "onu_index",
        "cto_id",
        "cto_name",
    }
)
CTO_BODY_KEYS: Final = frozenset(
    {"ozmap_box_id", "name", "ozmap_olt_id", "project", "latitude", "longitude", "ports_total", "ports_free", "active"}
)  # fmt: skip
OLT_API_KEYS: Final = frozenset({"ozmap_olt_id", "require_cto_on_activation"})
OLT_OPERATOR_KEYS: Final = OLT_API_KEYS | {"name", "ip", "vendor", "model", "pon_type", "pon_ports"}
ONU_EDIT_KEYS: Final = frozenset({"model", "vlan", "description", "login"})
ONU_MONITORING_KEYS: Final = frozenset({"oper_state", "rx_power_dbm", "tx_power_dbm"})
_REV: Final = re.compile(r" \(rev \d+\)$")


# -- lookups ----------------------------------------------------------------------------------------------------


def olt_or_404(store: ArcholtStore, olt_id: int) -> Row:
    olt = store.rows["olts"].get(olt_id)
    if olt is None:
        raise ApiError("olt_not_found", {"olt_id": olt_id})
    return olt


def onu_or_404(store: ArcholtStore, onu_id: int) -> Row:
    onu = store.rows["onus"].get(onu_id)
    if onu is None:
        raise ApiError("onu_not_found", {"onu_id": onu_id})
    return onu


def _candidate(cto: Row) -> Row:
    return {
        "id": cto["id"],
        "ozmap_box_id": cto["ozmap_box_id"],
        "project": cto["project"],
        "olt_id": cto["olt_id"],
    }


def resolve_cto(store: ArcholtStore, body: dict[str, Any]) -> tuple[bool, Row | None]:
    """``(given, cto)`` from ``cto_id`` / ``cto_name`` in ``body``; ``cto`` None with ``given`` = unlink."""
    has_id, has_name = "cto_id" in body, body.get("cto_name") is not None
    if has_id and has_name:
        raise bad_parameter("cto_name", reason="give cto_id or cto_name, not both")
    if has_name:
        name = _str(body, "cto_name", required=True)
        matches = [c for c in store.rows["ctos"].values() if c["active"] and c["name"] == name]
        if not matches:
            raise ApiError("cto_not_found", {"name": name})
        if len(matches) > 1:
            candidates = [_candidate(c) for c in sorted(matches, key=lambda c: c["id"])]
            raise ApiError("cto_name_ambiguous", {"name": name, "candidates": candidates})
        return True, matches[0]
    if has_id:
        cto_id = _int(body, "cto_id")
        if cto_id is None:
            return True, None
        cto = store.rows["ctos"].get(cto_id)
        if cto is None or not cto["active"]:
            raise ApiError("cto_not_found", {"cto_id": cto_id})
        return True, cto
    return False, None


def _check_cto_olt(cto: Row, olt: Row) -> None:
    if cto["olt_id"] is not None and cto["olt_id"] != olt["id"]:
        raise ApiError(
            "cto_wrong_olt", {"cto_id": cto["id"], "cto_olt_id": cto["olt_id"], "olt_id": olt["id"]}
        )


def _link(cto: Row | None) -> Row | None:
    return (
        None if cto is None else {"id": cto["id"], "name": cto["name"], "ozmap_box_id": cto["ozmap_box_id"]}
    )


# -- ONUs -------------------------------------------------------------------------------------------------------


def provision(store: ArcholtStore, payload: Any) -> Row:
    """``POST onus``: provision an ONU (the technician's activation); returns the stored row."""
    body = _object(payload)
    _only(body, ONU_POST_KEYS)
    olt_id, slot, pon = _req_int(body, "olt_id"), _req_int(body, "slot"), _req_int(body, "pon")
    serial_text = _str(body, "serial", required=True) or ""
    model = _str(body, "model", default="") or ""
    vlan = _int(body, "vlan", default=100)
    description = _str(body, "description", default="") or ""
    login = _str(body, "login")
    wanted_index = _int(body, "onu_index")
    olt = olt_or_404(store, olt_id)
    port = next((p for p in olt["pon_ports"] if p["slot"] == slot and p["pon"] == pon), None)
    if port is None:
        raise bad_parameter("pon", reason="the OLT has no such slot/pon", olt_id=olt_id, slot=slot, pon=pon)
    serial = serial_text.strip().upper()
    if not SERIAL_PATTERN.match(serial):
        raise ApiError("invalid_serial", {"serial": serial_text})
    holder = next(
        (o for o in store.rows["onus"].values() if o["status"] == "provisioned" and o["serial"] == serial),
        None,
    )
    if holder is not None:
        raise ApiError("serial_already_provisioned", {"serial": serial, "onu_id": holder["id"]})
    _, cto = resolve_cto(store, body)
    if cto is None and olt["require_cto_on_activation"]:
        raise ApiError("cto_required", {"olt_id": olt_id})
    if cto is not None:
        _check_cto_olt(cto, olt)
    taken = {
        o["onu_index"]
        for o in store.rows["onus"].values()
        if o["status"] == "provisioned" and o["olt_id"] == olt_id and o["slot"] == slot and o["pon"] == pon
    }
    limit = min(MAX_ONU_INDEX + 1, port["max_onus"])
    if wanted_index is not None:
        if not 0 <= wanted_index < limit or wanted_index in taken:
            raise bad_parameter("onu_index", reason="out of range or taken", onu_index=wanted_index)
        index = wanted_index
    else:
        free = next((i for i in range(limit) if i not in taken), None)
        if free is None:
            raise ApiError("pon_full", {"olt_id": olt_id, "slot": slot, "pon": pon})
        index = free
    now = store.now()
    row: Row = {
        "id": store.new_id("onus"),
        "serial": serial,
        "olt_id": olt_id,
        "slot": slot,
        "pon": pon,
        "onu_index": index,
        "model": model,
        "vlan": vlan,
        "description": description,
        "login": login,
        "status": "provisioned",
        "cto": _link(cto),
        "oper_state": "unknown",
        "rx_power_dbm": None,
        "tx_power_dbm": None,
        "provisioned_at": now,
        "deprovisioned_at": None,
        "updated_at": now,
    }
    store.put("onus", row)
    store.emit("onu.provisioned", olt_id=olt_id, onu_id=row["id"], cto_id=None if cto is None else cto["id"])
    return row


def change_cto(store: ArcholtStore, onu_id: int, payload: Any) -> Row:
    """``PUT onus/{id}/cto`` ("Alterar CTO (OZMAP)"); unchanged link → no bump, no event."""
    body = _object(payload)
    _only(body, frozenset({"cto_id", "cto_name"}))
    onu = onu_or_404(store, onu_id)
    if onu["status"] != "provisioned":
        raise ApiError("onu_deprovisioned", {"onu_id": onu_id})
    given, cto = resolve_cto(store, body)
    if not given:
        raise bad_parameter("cto_id", reason="required: cto_id or cto_name")
    olt = olt_or_404(store, onu["olt_id"])
    if cto is None and olt["require_cto_on_activation"]:
        raise ApiError("cto_required", {"olt_id": olt["id"]})
    if cto is not None:
        _check_cto_olt(cto, olt)
    before = None if onu["cto"] is None else onu["cto"]["id"]
    after = None if cto is None else cto["id"]
    if before == after:
        return onu
    row = {**onu, "cto": _link(cto), "updated_at": store.now()}
    store.put("onus", row)
    store.emit(
        "onu.cto_changed",
        olt_id=row["olt_id"],
        onu_id=onu_id,
        cto_id=after,
        data={"from_cto_id": before, "to_cto_id": after},
    )
    return row


def deprovision(store: ArcholtStore, onu_id: int) -> Row:
    """``POST onus/{id}/deprovision``; an already deprovisioned ONU answers the same body (idempotent)."""
    onu = onu_or_404(store, onu_id)
    if onu["status"] == "deprovisioned":
        return onu
    now = store.now()
    row = {**onu, "status": "deprovisioned", "deprovisioned_at": now, "updated_at": now}
    store.put("onus", row)
    store.emit(
        "onu.deprovisioned",
        olt_id=row["olt_id"],
        onu_id=onu_id,
        cto_id=None if row["cto"] is None else row["cto"]["id"],
    )
    return row


def edit_onu(store: ArcholtStore, onu_id: int, payload: Any) -> Row:
    """An operator's edit in ArchOLT's UI (control API): plain fields, monitoring readings, CTO, deprovisioning."""
    body = _object(payload)
    _only(body, ONU_EDIT_KEYS | ONU_MONITORING_KEYS | {"cto_id", "cto_name", "status"})
    onu = onu_or_404(store, onu_id)
    status = body.get("status")
    if status is not None and status not in ("provisioned", "deprovisioned"):
        raise bad_parameter("status", reason="provisioned or deprovisioned")
    if status == "provisioned" and onu["status"] == "deprovisioned":
        raise bad_parameter("status", reason="re-provisioning creates a new ONU: POST onus")
    edits: dict[str, Any] = {}
    for key in ("model", "description"):
        if key in body:
            edits[key] = _str(body, key, required=False, default="")
    if "login" in body:
        edits["login"] = _str(body, "login")
    if "vlan" in body:
        edits["vlan"] = _req_int(body, "vlan")
    readings: dict[str, Any] = {}
    if "oper_state" in body:
        if body["oper_state"] not in OPER_STATES:
            raise bad_parameter("oper_state", reason=f"one of {', '.join(OPER_STATES)}")
        readings["oper_state"] = body["oper_state"]
    for key in ("rx_power_dbm", "tx_power_dbm"):
        if key in body:
            readings[key] = _number(body, key)
    changed = sorted(k for k, v in edits.items() if onu[k] != v)
    if changed and onu["status"] == "deprovisioned":
        raise ApiError("onu_deprovisioned", {"onu_id": onu_id})
    row = {**onu, **readings, **edits}
    if changed:
        row["updated_at"] = store.now()
    if changed or readings:
        store.put("onus", row)
    if changed:
        store.emit("onu.updated", olt_id=row["olt_id"], onu_id=onu_id, data={"fields": changed})
    if "cto_id" in body or "cto_name" in body:
        row = change_cto(store, onu_id, {k: body[k] for k in ("cto_id", "cto_name") if k in body})
    if status == "deprovisioned":
        row = deprovision(store, onu_id)
    return row


def touch_onus(store: ArcholtStore, count: int) -> int:
    """The ``mutate_onus_between_pages`` knob: edit the ``count`` least recently updated provisioned ONUs."""
    onus = [o for o in store.rows["onus"].values() if o["status"] == "provisioned"]
    onus.sort(key=lambda o: (o["updated_at"], o["id"]))
    for onu in onus[:count]:
        base = _REV.sub("", onu["description"])
        revision = store.last_seq + 1
        edit_onu(store, onu["id"], {"description": f"{base} (rev {revision})"})
    return min(count, len(onus))


def poll(store: ArcholtStore) -> int:
    """A monitoring poll: new ``oper_state`` and power readings on provisioned ONUs; never bumps ``updated_at``."""
    cycle = store.now()
    polled = 0
    for onu in list(store.rows["onus"].values()):
        if onu["status"] != "provisioned":
            continue
        h = (onu["id"] * 2654435761 + cycle) & 0xFFFFFFFF
        state = "online" if h % 10 < 8 else OPER_STATES[1 + h % 3]
        online = state == "online"
        store.put(
            "onus",
            {
                **onu,
                "oper_state": state,
                "rx_power_dbm": round(-17.0 - (h % 900) / 100, 2) if online else None,
                "tx_power_dbm": round(1.5 + (h % 150) / 100, 2) if online else None,
            },
        )
        polled += 1
    return polled


# -- OLTs -------------------------------------------------------------------------------------------------------


def patch_olt(store: ArcholtStore, olt_id: int, payload: Any, *, operator: bool = False) -> Row:
    """``PATCH olts/{id}`` (the "OZMAP" tab); ``operator`` also allows the OLT's own settings (control API)."""
    body = _object(payload)
    _only(body, OLT_OPERATOR_KEYS if operator else OLT_API_KEYS)
    olt = olt_or_404(store, olt_id)
    edits: dict[str, Any] = {}
    if "ozmap_olt_id" in body:
        edits["ozmap_olt_id"] = _str(body, "ozmap_olt_id")
    if "require_cto_on_activation" in body:
        edits["require_cto_on_activation"] = _bool(body, "require_cto_on_activation", False)
    for key in ("name", "ip", "model"):
        if key in body:
            edits[key] = _str(body, key, required=True)
    if "vendor" in body:
        if body["vendor"] not in VENDORS:
            raise bad_parameter("vendor", reason=f"one of {', '.join(VENDORS)}")
        edits["vendor"] = body["vendor"]
    if "pon_type" in body:
        if body["pon_type"] not in PON_TYPES:
            raise bad_parameter("pon_type", reason=f"one of {', '.join(PON_TYPES)}")
        edits["pon_type"] = body["pon_type"]
    if "pon_ports" in body:
        edits["pon_ports"] = _pon_ports(body["pon_ports"])
    changed = sorted(k for k, v in edits.items() if olt[k] != v)
    if not changed:
        return olt
    row = {**olt, **edits, "updated_at": store.now()}
    store.put("olts", row)
    store.emit("olt.updated", olt_id=olt_id, data={k: row[k] for k in changed if k != "pon_ports"})
    return row


def _pon_ports(value: Any) -> list[Row]:
    if not isinstance(value, list):
        raise bad_parameter("pon_ports", reason="list expected")
    ports: list[Row] = []
    for item in value:
        if not isinstance(item, dict):
            raise bad_parameter("pon_ports", reason="list of objects expected")
        power = item.get("tx_power_dbm")
        if power is not None and (isinstance(power, bool) or not isinstance(power, int | float)):
            raise bad_parameter("pon_ports", reason="tx_power_dbm must be a number or null")
        ports.append(
            {
                "slot": _req_int(item, "slot"),
                "pon": _req_int(item, "pon"),
                "max_onus": _int(item, "max_onus", default=128),
                "tx_power_dbm": None if power is None else float(power),
            }
        )
    return ports


# -- CTO mirrors ------------------------------------------------------------------------------------------------


def upsert_cto(store: ArcholtStore, ozmap_box_id: str, payload: Any) -> tuple[Row, int]:
    """``PUT ctos/ozmap/{ozmap_box_id}`` → (row, 201 created | 200 updated or unchanged).

    Idempotent: a body equal to the stored mirror (``olt_id`` derived again included) changes nothing, bumps
    nothing and writes no event.
    """
    body = _object(payload)
    _only(body, CTO_BODY_KEYS)
    if "ozmap_box_id" in body and body["ozmap_box_id"] != ozmap_box_id:
        raise bad_parameter("ozmap_box_id", reason="differs from the path")
    latitude = _number(body, "latitude", required=True)
    longitude = _number(body, "longitude", required=True)
    assert latitude is not None and longitude is not None
    if not (-90.0 <= latitude <= 90.0):
        raise bad_parameter("latitude", reason="out of range")
    if not (-180.0 <= longitude <= 180.0):
        raise bad_parameter("longitude", reason="out of range")
    ports_total = _req_int(body, "ports_total")
    ports_free = _int(body, "ports_free")
    if ports_total < 0 or (ports_free is not None and not 0 <= ports_free <= max(ports_total, 0)):
        raise bad_parameter("ports_free" if ports_total >= 0 else "ports_total", reason="out of range")
    ozmap_olt_id = _str(body, "ozmap_olt_id")
    values: Row = {
        "ozmap_box_id": ozmap_box_id,
        "name": _str(body, "name", required=True),
        "olt_id": store.olt_for_ozmap(ozmap_olt_id),
        "ozmap_olt_id": ozmap_olt_id,
        "project": _str(body, "project"),
        "latitude": latitude,
        "longitude": longitude,
        "ports_total": ports_total,
        "ports_free": ports_free,
        "active": _bool(body, "active", True),
    }
    current = store.cto_by_box(ozmap_box_id)
    if current is not None and all(current[k] == v for k, v in values.items()):
        return current, 200
    now = store.now()
    created = current is None
    cto_id = store.new_id("ctos") if current is None else current["id"]
    row: Row = {"id": cto_id, **values, "synced_at": now, "updated_at": now}
    store.put("ctos", row)
    store.emit("cto.upserted", olt_id=row["olt_id"], cto_id=row["id"], data={"created": created})
    return row, 201 if created else 200


def delete_cto(store: ArcholtStore, ozmap_box_id: str, *, deactivate: bool = False) -> Row | None:
    """``DELETE ctos/ozmap/{id}`` → None (removed); with ``deactivate`` → the row with ``active=false``."""
    cto = store.cto_by_box(ozmap_box_id)
    if cto is None:
        raise ApiError("cto_not_found", {"ozmap_box_id": ozmap_box_id})
    if deactivate:
        if not cto["active"]:
            return cto
        row = {**cto, "active": False, "updated_at": store.now()}
        store.put("ctos", row)
        store.emit("cto.upserted", olt_id=row["olt_id"], cto_id=row["id"], data={"active": False})
        return row
    users = sorted(
        o["id"]
        for o in store.rows["onus"].values()
        if o["status"] == "provisioned" and o["cto"] is not None and o["cto"]["id"] == cto["id"]
    )
    if users:
        raise ApiError("cto_in_use", {"cto_id": cto["id"], "onu_ids": users[:20], "count": len(users)})
    store.remove("ctos", cto["id"])
    store.emit("cto.deleted", olt_id=cto["olt_id"], cto_id=cto["id"], data={"ozmap_box_id": ozmap_box_id})
    return None


def edit_cto(store: ArcholtStore, cto_id: int, payload: Any) -> Row:
    """An operator's edit of a mirror (control API): merged into the stored one and upserted with its rules."""
    body = _object(payload)
    _only(body, CTO_BODY_KEYS - {"ozmap_box_id"})
    cto = store.rows["ctos"].get(cto_id)
    if cto is None:
        raise ApiError("cto_not_found", {"cto_id": cto_id})
    merged = {k: cto[k] for k in CTO_BODY_KEYS if k != "ozmap_box_id"} | body
    row, _ = upsert_cto(store, cto["ozmap_box_id"], merged)
    return row
