"""Premises, clients, drops and splitter ports of the OZmap sandbox, plus feasibility by radius.

Owns contract items 9–12 and 14 (flows F1–F10): ``POST /properties`` side effects (inline FTTH client, ``Drop``
cable box → premises with one fibre, port occupancy, ``connections``, ``history.clients``), port rules (occupied,
blocked or non-service splitter → 400 unless ``force``; ``auto_connect``), property moves, client detach and
delete, drop disconnect/delete, ``GET /properties/client/{code}`` and ``GET /ftth-viability/radius``.

TOPOLOGY CONVENTION [assume] (the engine derives the "transmitter" — the OLT feeding a box's first service
splitter — from it): fibres are plain id strings. A PON's ``connectables`` lists the fibre ids it launches into.
A splitter's ``connectables.input[0]`` is the fibre feeding it; a network splitter's (``isDrop`` false)
``connectables.output[i]`` are fibres to downstream splitters; a service splitter's (``isDrop`` true)
``output[i]`` is the drop fibre of the client on port ``i + 1`` (non-null = occupied). Tracing input fibre →
(PON whose ``connectables`` holds it) or (splitter whose ``output`` holds it, recursively) reaches the PON, its
``parent`` slot, that slot's ``parent`` OLT and its ``ip``. ``ports[i]`` (``index`` = i, 0-based) carries the
``blocked`` flag of port ``i + 1``.

Other [assume] decisions: ``auto_connect`` takes the first free, unblocked port of the box's service splitters in
``_id`` order (the first splitter first); ``force`` overrides the occupied/blocked/non-service/other-box checks
(an evicted occupant's property loses that connection); a detached client's history entry keeps the connections
it had; disconnect clears the property's ``connections`` but keeps ``box`` and ``drop``; deleting a client
detaches it from its properties; "in project" boxes (``implanted`` false) are never feasible.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from reconciler.sandbox.ozmap_geo import haversine_m, point_of
from reconciler.sandbox.ozmap_store import OzmapStore
from reconciler.sandbox.ozmap_values import ApiError, Record, bad_request

ONU_KEYS: Final = ("user_PPPoE", "serial_number", "mac_address")
CLIENT_DEFAULTS: Final[dict[str, Any]] = {
    "name": "",
    "observation": "",
    "implanted": False,
    "certified": False,
    "status": 0,
    "tags": [],
    "onu": {"user_PPPoE": "", "serial_number": "", "mac_address": ""},
}
PROPERTY_DEFAULTS: Final[dict[str, Any]] = {
    "drop": None,
    "pole": None,
    "address": None,
    "observation": None,
    "potencyRead": None,
    "connections": [],
    "history": {"clients": []},
    "tags": [],
    "cables": [],
}
_CONTAINERS: Final = ("boxes", "buildings")


# -- clients -------------------------------------------------------------------------------------------------


def validate_client(store: OzmapStore, fields: dict[str, Any], *, current_id: str | None) -> None:
    """FTTH client field rules shared by create, PATCH and batch-update; 400 on the first violation."""
    if "code" in fields:
        code = fields["code"]
        if not isinstance(code, str) or not code.strip():
            raise bad_request("code must be a non-empty string")
        if any(other["id"] != current_id for other in store.lookup("ftth-clients", "code", code)):
            raise bad_request(f"a client with code {code!r} already exists")
    if "status" in fields and (type(fields["status"]) is not int or fields["status"] not in (0, 1)):
        raise bad_request("status must be 0 (OK) or 1 (ERROR)")
    if "onu" in fields:
        onu = fields["onu"]
        if not isinstance(onu, dict) or any(not isinstance(onu.get(key), str) for key in ONU_KEYS):
            raise bad_request(f"onu must be an object with string fields {', '.join(ONU_KEYS)}")
    for flag in ("implanted", "certified"):
        if flag in fields and not isinstance(fields[flag], bool):
            raise bad_request(f"{flag} must be a boolean")
    for text in ("name", "observation"):
        if fields.get(text) is not None and not isinstance(fields[text], str):
            raise bad_request(f"{text} must be a string")


def _client_input(store: OzmapStore, value: Any) -> Record | None:
    """Validate a property's ``client`` input without writing: an object to create, an existing id, or null."""
    if value is None:
        return None
    if isinstance(value, dict):
        fields = {k: v for k, v in value.items() if k not in ("id", "_id", "kind", "createdAt", "updatedAt")}
        if not fields.get("code"):
            raise bad_request("client.code is required")
        validate_client(store, fields, current_id=None)
        return fields
    client = store.live("ftth-clients", value)
    if client is None:
        raise bad_request(f"client {value!r} not found")
    return client


def _materialise_client(store: OzmapStore, client: Record | None, creator: Record) -> Record | None:
    if client is None or "id" in client:
        return client
    record = copy.deepcopy(CLIENT_DEFAULTS)
    record.update(client)
    record["creatorData"] = creator
    return store.insert("ftth-clients", record)


def _history(record: Record) -> dict[str, Any]:
    history = copy.deepcopy(record.get("history")) or {}
    history.setdefault("clients", [])
    return history


def _close_entry(history: dict[str, Any], client_id: str, connections: list[Any], when: str) -> None:
    for entry in reversed(history["clients"]):
        if entry.get("id") == client_id and entry.get("exit_date") is None:
            entry["exit_date"] = when
            entry["connections"] = copy.deepcopy(connections)
            return


def _open_entry(history: dict[str, Any], client: Record, when: str) -> None:
    history["clients"].append(
        {"id": client["id"], "code": client.get("code"), "enter_date": when, "exit_date": None}
    )


def detach_client_everywhere(store: OzmapStore, client_id: str) -> None:
    """A deleted client leaves its properties (history ``exit_date`` set), which stay with their connections."""
    for prop in store.lookup("properties", "client", client_id):
        history = _history(prop)
        _close_entry(history, client_id, prop.get("connections") or [], store.stamp())
        store.update("properties", prop["id"], {"client": None, "history": history})


# -- ports ---------------------------------------------------------------------------------------------------


def _outputs(splitter: Record) -> list[Any]:
    outputs = (splitter.get("connectables") or {}).get("output") or []
    return outputs if isinstance(outputs, list) else []


def _blocked(splitter: Record, port: int) -> bool:
    ports = splitter.get("ports") or []
    return port <= len(ports) and isinstance(ports[port - 1], dict) and bool(ports[port - 1].get("blocked"))


def free_ports(splitter: Record) -> list[int]:
    """1-based ports with no fibre and not blocked."""
    return [
        i + 1 for i, fibre in enumerate(_outputs(splitter)) if fibre is None and not _blocked(splitter, i + 1)
    ]


def service_splitters(store: OzmapStore, box_id: str) -> list[Record]:
    """The box's service (``isDrop``) splitters in ``_id`` order."""
    return [s for s in store.lookup("splitters", "parent", box_id) if s.get("isDrop") is True]


def _check_port(splitter: Record, port: Any, *, force: bool, fibre: str | None) -> int:
    outputs = _outputs(splitter)
    if type(port) is not int or not 1 <= port <= len(outputs):
        raise bad_request(f"port must be an integer between 1 and {len(outputs)}")
    name = splitter.get("name") or splitter["id"]
    if force:
        return port
    if splitter.get("isDrop") is not True:
        raise bad_request(f"splitter {name} is not a service (drop) splitter")
    if _blocked(splitter, port):
        raise bad_request(f"port {port} of splitter {name} is blocked")
    occupant = outputs[port - 1]
    if occupant is not None and occupant != fibre:
        raise bad_request(f"port {port} of splitter {name} is occupied")
    return port


def _target(
    store: OzmapStore,
    box_id: str | None,
    connector: Any,
    port: Any,
    *,
    auto: bool,
    force: bool,
    fibre: str | None,
) -> tuple[Record, int] | None:
    """Validate where a property connects (no writes): (splitter, port), or None when it does not connect."""
    if connector is not None:
        splitter = store.live("splitters", connector)
        if splitter is None:
            raise bad_request(f"connector {connector!r} not found")
        if box_id is not None and splitter.get("parent") != box_id and not force:
            raise bad_request(f"splitter {splitter.get('name')} is not in box {box_id}")
        if port is None:
            if not auto:
                raise bad_request("port is required when connector is given")
            ports = free_ports(splitter)
            if not ports:
                raise bad_request(f"splitter {splitter.get('name')} has no free port")
            port = ports[0]
        return splitter, _check_port(splitter, port, force=force, fibre=fibre)
    if port is not None:
        raise bad_request("port needs a connector (splitter id)")
    if not auto:
        return None
    if box_id is None:
        raise bad_request("auto_connect needs a box")
    for splitter in service_splitters(store, box_id):
        ports = free_ports(splitter)
        if ports:
            return splitter, ports[0]
    raise bad_request(f"no free port in box {box_id}")


def _occupy(store: OzmapStore, splitter_id: str, port: int, fibre: str) -> None:
    splitter = store.live("splitters", splitter_id)
    assert splitter is not None
    connectables = copy.deepcopy(splitter["connectables"])
    previous = connectables["output"][port - 1]
    if previous is not None and previous != fibre:  # forced over an occupant: it loses the connection
        for prop in store.lookup("properties", "connections.fiber", previous):
            kept = [c for c in prop.get("connections") or [] if c.get("fiber") != previous]
            store.update("properties", prop["id"], {"connections": kept})
    connectables["output"][port - 1] = fibre
    store.update("splitters", splitter_id, {"connectables": connectables})


def _release(store: OzmapStore, connection: Any) -> None:
    if not isinstance(connection, dict):
        return
    splitter = store.live("splitters", connection.get("id"))
    port = connection.get("port")
    if splitter is None or type(port) is not int:
        return
    outputs = _outputs(splitter)
    if (
        1 <= port <= len(outputs)
        and outputs[port - 1] is not None
        and outputs[port - 1] == connection.get("fiber")
    ):
        connectables = copy.deepcopy(splitter["connectables"])
        connectables["output"][port - 1] = None
        store.update("splitters", splitter["id"], {"connectables": connectables})


def _connection(splitter: Record, port: int, fibre: str, implanted: bool) -> Record:
    return {
        "id": splitter["id"],
        "kind": "Splitter",
        "name": splitter.get("name"),
        "port": port,
        "implanted": implanted,
        "fiber": fibre,
    }


# -- drops ---------------------------------------------------------------------------------------------------


def _container(store: OzmapStore, box_id: Any) -> tuple[str, Record] | None:
    for collection in _CONTAINERS:
        record = store.live(collection, box_id)
        if record is not None:
            return collection, record
    return None


def _set_box_cable(store: OzmapStore, box_id: Any, cable_id: str, *, present: bool) -> None:
    found = _container(store, box_id)
    if found is None:
        return
    collection, box = found
    cables = [c for c in box.get("cables") or [] if c != cable_id]
    if present:
        cables.append(cable_id)
    store.update(collection, box["id"], {"cables": cables})


def _new_drop(store: OzmapStore, prop: Record, box_id: str, poles: Any, creator: Record) -> Record:
    drop_id = store.new_id()
    drop = {
        "id": drop_id,
        "kind": "Drop",
        "project": prop["project"],
        "name": f"Drop {store.next_counter('drops')}",
        "boxA": box_id,
        "boxB": prop["id"],
        "fiberNumber": 1,
        "looseNumber": 1,
        "fibers": [store.new_id()],
        "poles": [{"id": p, "reserve": 0} for p in poles] if isinstance(poles, list) else [],
        "implanted": True,
        "tags": [],
        "creatorData": creator,
    }
    stored = store.insert("cables", drop)
    _set_box_cable(store, box_id, drop_id, present=True)
    return stored


def _drop_fibre(store: OzmapStore, prop: Record) -> str | None:
    drop = store.live("cables", prop.get("drop"))
    fibres = drop.get("fibers") if drop is not None else None
    return fibres[0] if isinstance(fibres, list) and fibres else None


# -- properties ----------------------------------------------------------------------------------------------


def create_property(store: OzmapStore, fields: dict[str, Any], creator: Record) -> Record:
    """``POST /properties`` (F2): validates everything first, then creates client, drop, port and property."""
    if store.live("projects", fields.get("project")) is None:
        raise bad_request(f"project {fields.get('project')!r} not found")
    box_id = fields.pop("box", None)
    if box_id is not None and _container(store, box_id) is None:
        raise bad_request(f"box {box_id!r} not found")
    connector, port = fields.pop("connector", None), fields.pop("port", None)
    auto, force = bool(fields.pop("auto_connect", False)), bool(fields.pop("force", False))
    poles = fields.pop("drop_poles", None)
    target = _target(store, box_id, connector, port, auto=auto, force=force, fibre=None)
    if target is not None and box_id is None:
        box_id = target[0].get("parent")
    client = _materialise_client(store, _client_input(store, fields.pop("client", None)), creator)
    prop: Record = {"id": store.new_id(), "kind": "Property", "project": fields.pop("project"), "box": box_id}
    prop.update(copy.deepcopy(PROPERTY_DEFAULTS))
    prop.update(fields)
    prop["client"] = None if client is None else client["id"]
    prop["creatorData"] = creator
    if box_id is not None:
        drop = _new_drop(store, prop, box_id, poles, creator)
        prop["drop"], prop["cables"] = drop["id"], [drop["id"]]
        if target is not None:
            splitter, port_number = target
            fibre = drop["fibers"][0]
            _occupy(store, splitter["id"], port_number, fibre)
            implanted = bool(client.get("implanted")) if client is not None else False
            prop["connections"] = [_connection(splitter, port_number, fibre, implanted)]
    if client is not None:
        _open_entry(prop["history"], client, store.stamp())
    return store.insert("properties", prop)


def patch_property(store: OzmapStore, prop: Record, changes: dict[str, Any]) -> None:
    """``PATCH /properties/{id}``: data fields, box/connector/port moves (F6), client detach/attach (F4/F5)."""
    force, auto = bool(changes.pop("force", False)), bool(changes.pop("auto_connect", False))
    reconnect = auto or "connector" in changes or "port" in changes
    connector, port = changes.pop("connector", None), changes.pop("port", None)
    changes.pop("drop_poles", None)
    explicit_box = changes.get("box")
    if explicit_box is not None and _container(store, explicit_box) is None:
        raise bad_request(f"box {explicit_box!r} not found")
    current = [c for c in prop.get("connections") or [] if isinstance(c, dict)]
    fibre = _drop_fibre(store, prop)
    target = None
    if reconnect:
        if connector is None and current and port is not None:
            connector = current[0].get("id")
        box_for_target = explicit_box if "box" in changes else (None if connector else prop.get("box"))
        target = _target(store, box_for_target, connector, port, auto=auto, force=force, fibre=fibre)
    client_change = "client" in changes
    client = _client_input(store, changes.pop("client", None)) if client_change else None
    _move(store, prop, changes, target, current, fibre)  # all validated: write
    if client_change:
        _change_client(store, prop, changes, client)
    store.update("properties", prop["id"], changes)


def _move(
    store: OzmapStore,
    prop: Record,
    changes: dict[str, Any],
    target: tuple[Record, int] | None,
    current: list[Record],
    fibre: str | None,
) -> None:
    """Apply a validated box/splitter/port change: release, re-home the drop, occupy the new port."""
    new_box = changes.get("box", prop.get("box"))
    if target is not None and "box" not in changes:
        new_box = changes["box"] = target[0].get("parent")
    if target is not None or new_box != prop.get("box"):
        for connection in current:
            _release(store, connection)
        changes["connections"] = []
    drop = store.live("cables", prop.get("drop"))
    if drop is not None and new_box != prop.get("box"):
        store.update("cables", drop["id"], {"boxA": new_box})
        _set_box_cable(store, prop.get("box"), drop["id"], present=False)
        _set_box_cable(store, new_box, drop["id"], present=True)
    if target is not None:
        if fibre is None and new_box is not None:
            drop = _new_drop(store, prop, new_box, None, prop.get("creatorData") or {})
            fibre = drop["fibers"][0]
            changes["drop"], changes["cables"] = drop["id"], [*(prop.get("cables") or []), drop["id"]]
        if fibre is not None:
            splitter, port_number = target
            _occupy(store, splitter["id"], port_number, fibre)
            implanted = bool(current[0].get("implanted")) if current else False
            changes["connections"] = [_connection(splitter, port_number, fibre, implanted)]


def _change_client(store: OzmapStore, prop: Record, changes: dict[str, Any], client: Record | None) -> None:
    history = _history(prop)
    now = store.stamp()
    previous = prop.get("client")
    client = _materialise_client(store, client, prop.get("creatorData") or {})
    if client is not None and client["id"] == previous:
        changes["client"] = previous
        return
    if isinstance(previous, str):
        _close_entry(history, previous, prop.get("connections") or [], now)
    if client is not None:
        _open_entry(history, client, now)
    changes["client"] = None if client is None else client["id"]
    changes["history"] = history


def delete_property(store: OzmapStore, prop: Record) -> None:
    """``DELETE /properties/{id}`` (F4 withdrawal): frees the port, deletes the client and the drop."""
    for connection in prop.get("connections") or []:
        _release(store, connection)
    client = store.live("ftth-clients", prop.get("client"))
    if client is not None:
        store.soft_delete("ftth-clients", client["id"])
    drop = store.live("cables", prop.get("drop"))
    if drop is not None:
        _set_box_cable(store, drop.get("boxA"), drop["id"], present=False)
        store.soft_delete("cables", drop["id"])
    store.soft_delete("properties", prop["id"])


def disconnect_drop(store: OzmapStore, drop_id: str) -> None:
    """``POST /cables/{dropId}/fibers/disconnect``: unplug the drop's fibre from its port; drop and box stay."""
    drop = store.live("cables", drop_id)
    if drop is None:
        raise ApiError(404, f"cable {drop_id} not found")
    if drop.get("kind") != "Drop":
        raise bad_request(f"cable {drop_id} is not a drop")
    fibres = set(drop.get("fibers") or [])
    for prop in store.lookup("properties", "drop", drop_id):
        connections = [c for c in prop.get("connections") or [] if isinstance(c, dict)]
        released = [c for c in connections if not fibres or c.get("fiber") in fibres]
        for connection in released:
            _release(store, connection)
        if released:
            kept = [c for c in connections if c not in released]
            store.update("properties", prop["id"], {"connections": kept})


def delete_drop(store: OzmapStore, drop: Record) -> None:
    """``DELETE /cables/{dropId}``: disconnect, detach from property and box, soft delete."""
    disconnect_drop(store, drop["id"])
    for prop in store.lookup("properties", "drop", drop["id"]):
        cables = [c for c in prop.get("cables") or [] if c != drop["id"]]
        store.update("properties", prop["id"], {"drop": None, "cables": cables})
    _set_box_cable(store, drop.get("boxA"), drop["id"], present=False)
    store.soft_delete("cables", drop["id"])


def properties_by_client_code(store: OzmapStore, code: str) -> list[Record]:
    """``GET /properties/client/{code}``: live properties of live clients with that code, client populated."""
    found: list[Record] = []
    for client in store.lookup("ftth-clients", "code", code):
        for prop in store.lookup("properties", "client", client["id"]):
            found.append({**prop, "client": client})
    return sorted(found, key=lambda p: str(p["id"]))


# -- feasibility ---------------------------------------------------------------------------------------------


def viability(store: OzmapStore, lat: float, lng: float, radius: float) -> Record:
    """``GET /ftth-viability/radius`` (F1, shape [assume]): boxes in range, nearest first, split by feasibility."""
    flt = [{"property": "coords", "operator": "near", "value": {"lat": lat, "lng": lng, "radius": radius}}]
    viable: list[Record] = []
    unviable: list[Record] = []
    for box_id in store.query("boxes", flt, None):
        box = store.row("boxes", box_id)
        assert box is not None
        point = point_of(box.get("coords"))
        distance = round(haversine_m(lat, lng, *point), 1) if point is not None else None
        entry: Record = {
            "id": box_id,
            "name": box.get("name"),
            "distance": distance,
            "coords": box.get("coords"),
        }
        if box.get("implanted") is False:
            unviable.append({**entry, "reason": "in project"})
            continue
        splitters = service_splitters(store, box_id)
        if not splitters:
            unviable.append({**entry, "reason": "no service splitter"})
            continue
        listed = [{"id": s["id"], "name": s.get("name"), "freePorts": free_ports(s)} for s in splitters]
        if any(s["freePorts"] for s in listed):
            viable.append({**entry, "splitters": [s for s in listed if s["freePorts"]]})
        else:
            unviable.append({**entry, "reason": "no free ports"})
    return {
        "viable": bool(viable),
        "lat": lat,
        "lng": lng,
        "radius": radius,
        "viableBoxes": viable,
        "unviableBoxes": unviable,
    }
