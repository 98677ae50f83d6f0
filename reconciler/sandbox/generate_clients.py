"""OZmap client-side rows of a sandbox world: properties, ftth-clients and drop cables.

An OZmap client sits on a service splitter port and owns a property, an ftth-client and a drop cable; its IXC
twin (:mod:`~reconciler.sandbox.generate_logins`) is built from the same :class:`Client`, so the strings both
systems carry (login code, name, address, ids, MAC, timestamps) are the *same* string objects — at a million
clients that sharing is a large part of the memory budget. Property, client and drop are created together and
share their timestamps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from reconciler.sandbox import generate_base as gb
from reconciler.sandbox import generate_ozmap as oz
from reconciler.sandbox.generate_layout import SERVICE_PORTS, Layout

Row = dict[str, Any]

OZMAP_COLLECTIONS = ("properties", "ftth-clients", "cables")


class Spot(NamedTuple):
    """What every client of one service splitter shares (computed once per splitter)."""

    s: int
    container: int
    box: str  # box or building id
    project: int
    building: bool
    micro: tuple[int, int]  # the container's (lat, lng) in micro-degrees
    splitter: str  # splitter id
    splitter_name: str
    olt: int
    street: str  # the building's address ("" for a CTO)


class Client(NamedTuple):
    """One OZmap client and the values both systems hold for it."""

    c: int
    ix: str  # the 10-hex-digit index every OZmap id of this client ends with
    port: int
    spot: Spot
    facts: gb.ClientFacts
    code: str  # OZmap code = IXC login
    name: str  # OZmap name
    address: str
    lat: float
    lng: float
    mac: str  # the ONU's MAC
    created: int  # pool index of the creation time
    updated: int  # pool index of the last update


def _spot(lay: Layout, s: int) -> Spot:
    container = lay.ss_container[s]
    building = lay.cont_kind[container] == gb.C_BUILDING
    return Spot(
        s,
        container,
        lay.container_id(container),
        lay.container_project(container),
        building,
        lay.container_micro(container),
        lay.oid(gb.K_SPLITTER, s),
        f"Splitter {lay.splitter_position(s) + 1}",
        lay.service_olt(s),
        oz.building_address(lay, container) if building else "",
    )


def clients(lay: Layout) -> Iterator[Client]:
    """Every OZmap client in id order (along service splitters and their ports)."""
    streets, n_streets = gb.STREETS, len(gb.STREETS)
    client_facts, client_login, client_name, mac = lay.client_facts, gb.client_login, gb.client_name, gb.mac
    pair = gb.TimePools.pair
    for s in range(lay.n_service):
        occupied = lay.ss_occupied[s]
        if not occupied:
            continue
        c = lay.ss_client_base[s]
        spot = _spot(lay, s)
        lat0, lng0 = spot.micro
        for i in range(SERVICE_PORTS):
            if not occupied >> i & 1:
                continue
            facts = client_facts(c)
            h = facts.h
            if spot.building:
                address = f"{spot.street} - Apto {(h >> 30) % 20 + 1}{(h >> 35) % 4 + 1:02d}"
                lat, lng = lat0 / 1e6, lng0 / 1e6
            else:
                address = f"{streets[(h >> 44) % n_streets]}, {(h >> 50) % 3000 + 1}"
                lat, lng = (lat0 + (h >> 8) % 3001 - 1500) / 1e6, (lng0 + (h >> 24) % 3001 - 1500) / 1e6
            created, updated = pair(h >> 3)
            yield Client(
                c, f"{c:010x}", i + 1, spot, facts, client_login(facts, c), client_name(facts), address, lat, lng,
                mac(h), created, updated,
            )  # fmt: skip
            c += 1


def onu_reading(facts: gb.ClientFacts) -> float:
    """The ONU's received power in dBm (IXC ``sinal_rx`` when it has a reading)."""
    return round(-14.0 - facts.power / 100, 2)


def onu_serial(facts: gb.ClientFacts, vendor: int) -> str:
    """The ONU serial: the OLT vendor's prefix + 8 hex digits."""
    return f"{gb.VENDORS[vendor][2]}{facts.h & 0xFFFFFFFF:08X}"


def property_row(lay: Layout, pools: gb.TimePools, cl: Client) -> Row:
    """The client's premises: box, drop, client id, splitter/port connection, coords, power read."""
    facts, spot, kp, ix = cl.facts, cl.spot, lay.kind_prefix, cl.ix
    pid = kp[gb.K_PROPERTY] + ix
    cid = kp[gb.K_CLIENT] + ix
    created = pools.iso[cl.created]
    implanted = facts.category not in gb.RESERVATIONS
    potency = None
    if implanted and facts.oz_power != 2:
        potency = onu_reading(facts) + (0.0 if facts.oz_power == 0 else 1.5)
    connection = {
        "id": spot.splitter,
        "kind": "Splitter",
        "name": spot.splitter_name,
        "port": cl.port,
        "implanted": implanted,
        "fiber": kp[gb.K_FIBER_DROP] + ix,
    }
    return {
        "id": pid,
        "_id": pid,
        "kind": "Property",
        "project": lay.project_ids[spot.project],
        "box": spot.box,
        "pole": None,
        "drop": kp[gb.K_CABLE] + ix,
        "client": cid,
        "parent": spot.box if spot.building else None,
        "address": cl.address,
        "observation": "",
        "coords": [cl.lng, cl.lat],
        "lat": cl.lat,
        "lng": cl.lng,
        "potencyRead": potency,
        "connections": [connection],
        "history": {"clients": [{"id": cid, "code": cl.code, "enter_date": created, "exit_date": None}]},
        "createdAt": created,
        "updatedAt": pools.iso[cl.updated],
    }


def ftth_client_row(lay: Layout, pools: gb.TimePools, cl: Client) -> Row:
    """The client: ``code`` (= IXC login), name, implanted (false = reservation), status, ONU."""
    facts = cl.facts
    cid = lay.kind_prefix[gb.K_CLIENT] + cl.ix
    implanted = facts.category not in gb.RESERVATIONS
    if implanted:
        serial = onu_serial(facts, lay.olt_vendor[cl.spot.olt])
        onu = {"user_PPPoE": cl.code, "serial_number": serial, "mac_address": cl.mac}
    else:
        onu = {"user_PPPoE": "", "serial_number": "", "mac_address": ""}
    return {
        "id": cid,
        "_id": cid,
        "kind": "ftth",
        "code": cl.code,
        "name": cl.name,
        "observation": "",
        "implanted": implanted,
        "certified": False,
        "status": facts.oz_status,
        "onu": onu,
        "createdAt": pools.iso[cl.created],
        "updatedAt": pools.iso[cl.updated],
    }


def drop_row(lay: Layout, pools: gb.TimePools, cl: Client) -> Row:
    """The client's drop cable (kind ``Drop``): ``boxA`` = box or building, ``boxB`` = property."""
    kp = lay.kind_prefix
    did = kp[gb.K_CABLE] + cl.ix
    return {
        "id": did,
        "_id": did,
        "kind": "Drop",
        "name": f"Drop {cl.c + 1}",
        "project": lay.project_ids[cl.spot.project],
        "cableType": lay.drop_type,
        "boxA": cl.spot.box,
        "boxB": kp[gb.K_PROPERTY] + cl.ix,
        "poles": [],
        "fiberNumber": 1,
        "looseNumber": 1,
        "hierarchyLevel": 4,
        "implanted": True,
        "length": float(20 + (cl.facts.h >> 32) % 280),
        "createdAt": pools.iso[cl.created],
        "updatedAt": pools.iso[cl.updated],
    }


ROW_BUILDERS = {"properties": property_row, "ftth-clients": ftth_client_row, "cables": drop_row}


def ozmap_rows(lay: Layout, pools: gb.TimePools, collection: str) -> Iterator[Row]:
    """One client-side OZmap collection, in id order."""
    build = ROW_BUILDERS[collection]
    for cl in clients(lay):
        yield build(lay, pools, cl)
