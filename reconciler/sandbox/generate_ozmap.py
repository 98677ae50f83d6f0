"""OZmap network rows of a sandbox world, shaped as ``GET /api/v2/<collection>`` returns them (ozmap.md 4).

One generator per collection, each walking the :class:`~reconciler.sandbox.generate_layout.Layout` in id order.
References are plain id strings. Client-side collections (properties, ftth-clients, drop cables) live in
:mod:`~reconciler.sandbox.generate_clients`, which builds them together with the IXC login rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from reconciler.sandbox import generate_base as gb
from reconciler.sandbox.generate_layout import SERVICE_PORTS, SPLITTER_OUTPUTS, Layout

Row = dict[str, Any]

BOX_TYPE_CE = 0
BOX_TYPE_CTO = 1
SPLITTER_TYPE_1X8 = 0
SPLITTER_TYPE_1X16 = 1
CABLE_TYPE_DROP = 0
CABLE_TYPE_FEEDER = 1
CATALOGUE_MS = gb.ANCHOR_MS - 2 * gb.YEAR_MS  # types, projects and OLTs predate the year of activity


def _moments(h: int) -> tuple[str, str]:
    """Unique-ish createdAt <= updatedAt within the year before the anchor."""
    created = gb.ANCHOR_MS - h % gb.YEAR_MS
    updated = created + (h >> 36) % (gb.ANCHOR_MS - created + 1)
    return gb.iso_ms(created), gb.iso_ms(updated)


def _stamp(row: Row, n: int) -> Row:
    row["createdAt"] = row["updatedAt"] = gb.iso_ms(CATALOGUE_MS + n * 60_000)
    return row


def projects(lay: Layout) -> Iterator[Row]:
    """Projects named after cities, with drop defaults and hierarchy levels."""
    drop_type = lay.oid(gb.K_CABLE_TYPE, CABLE_TYPE_DROP)
    for p, name in enumerate(lay.project_names):
        pid = lay.project_ids[p]
        lat, lng = lay.project_centers[p]
        yield _stamp(
            {
                "id": pid,
                "_id": pid,
                "name": name,
                "identifier": gb.ascii_lower(name)[:6].upper(),
                "parents": [],
                "lat": lat,
                "lng": lng,
                "defaultPonPotency": 3,
                "defaultDropSize": 150,
                "drop": {"maxSize": 300, "defaults": {"cableType": drop_type}},
                "hierarchyLevels": {"box": {"POP": 1, "CE": 2, "CTO": 3}, "cable": {"Feeder": 1, "Drop": 4}},
            },
            p,
        )


def box_types(lay: Layout) -> Iterator[Row]:
    """Box types CE (level 2) and CTO (level 3)."""
    for n, (code, level, color) in enumerate((("CE", 2, "#1565c0"), ("CTO", 3, "#2e7d32"))):
        tid = lay.oid(gb.K_BOX_TYPE, n)
        yield _stamp(
            {
                "id": tid,
                "_id": tid,
                "code": code,
                "name": code,
                "prefix": f"{code}-",
                "default_level": level,
                "color": color,
                "description": f"Caixa {code}",
            },
            n,
        )


def splitter_types(lay: Layout) -> Iterator[Row]:
    """Splitter types 1x8 (network) and 1x16 (service)."""
    for n, outputs in enumerate((8, 16)):
        tid = lay.oid(gb.K_SPLITTER_TYPE, n)
        loss = {8: 10.5, 16: 13.7}[outputs]
        yield _stamp(
            {
                "id": tid,
                "_id": tid,
                "code": f"1x{outputs}",
                "name": f"Splitter 1x{outputs}",
                "ratio": {"input": 1, "output": outputs},
                "isBalanced": True,
                "attenuation": [loss] * outputs,
            },
            n,
        )


def cable_types(lay: Layout) -> Iterator[Row]:
    """Cable types: a 1-fibre drop and a 12-fibre feeder."""
    for n, (code, fibers, loose) in enumerate((("DROP-1FO", 1, 1), ("AS80-12FO", 12, 1))):
        tid = lay.oid(gb.K_CABLE_TYPE, n)
        yield _stamp(
            {
                "id": tid,
                "_id": tid,
                "code": code,
                "name": code,
                "fiberNumber": fibers,
                "looseNumber": loose,
                "attenuation": 0.35,
            },
            n,
        )


def olts(lay: Layout) -> Iterator[Row]:
    """POP-less OLTs named ``OLT-<vendor>-<n>`` with a ``10.x.y.z`` IP; ``connectables`` = slot ids."""
    for o in range(lay.n_olts):
        oid = lay.oid(gb.K_OLT, o)
        vendor = gb.VENDORS[lay.olt_vendor[o]][0]
        name = f"OLT-{vendor}-{o + 1}"
        yield _stamp(
            {
                "id": oid,
                "_id": oid,
                "kind": "OLT",
                "name": name,
                "label": name,
                "oltType": None,
                "parent": None,
                "project": lay.project_ids[lay.olt_project[o]],
                "shelf": None,
                "ip": lay.olt_ips[o],
                "port": 22,
                "user": "admin",
                "password": "sandbox-olt-password",
                "connectables": [lay.oid(gb.K_SLOT, lay.slot_index(o, i)) for i in range(lay.olt_slots(o))],
                "implanted": True,
                "isDrop": False,
            },
            o,
        )


def slots(lay: Layout) -> Iterator[Row]:
    """OLT slots (``parent`` = OLT); ``connectables`` = PON ids."""
    for o in range(lay.n_olts):
        pons = lay.olt_pons[o]
        for i in range(lay.olt_slots(o)):
            n = lay.slot_index(o, i)
            sid = lay.oid(gb.K_SLOT, n)
            members = pons[i * 16 : (i + 1) * 16]
            yield _stamp(
                {
                    "id": sid,
                    "_id": sid,
                    "kind": "Slot",
                    "name": f"Slot {i + 1}",
                    "label": f"{i + 1}",
                    "starting_pon_number": 1,
                    "connectables": [lay.oid(gb.K_PON, p) for p in members],
                    "parent": lay.oid(gb.K_OLT, o),
                    "project": lay.project_ids[lay.olt_project[o]],
                },
                n,
            )


def pons(lay: Layout) -> Iterator[Row]:
    """PONs (``parent`` = slot); ``connectables`` = the feed fibres of their network splitters."""
    for p in range(lay.n_pons):
        o = lay.pon_olt[p]
        local = lay.pon_local[p]
        pid = lay.oid(gb.K_PON, p)
        groups = range(2 * p, min(2 * p + 2, lay.n_groups))
        yield _stamp(
            {
                "id": pid,
                "_id": pid,
                "kind": "PON",
                "name": f"PON {local % 16 + 1}",
                "connectables": [lay.oid(gb.K_FIBER_FEED, k) for k in groups],
                "potency": round(2.5 + (gb.mix64(lay.client_salt ^ p) % 250) / 100, 2),
                "maximumClients": 128,
                "parent": lay.oid(gb.K_SLOT, lay.slot_index(o, local // 16)),
                "project": lay.project_ids[lay.olt_project[o]],
            },
            p,
        )


def _box(
    lay: Layout,
    n: int,
    name: str,
    project: int,
    level: int,
    box_type: int,
    coords: tuple[float, float] | None,
    implanted: bool,
    h: int,
    cables: list[str],
) -> Row:
    bid = lay.oid(gb.K_BOX, n)
    created, updated = _moments(h)
    return {
        "id": bid,
        "_id": bid,
        "kind": "Box",
        "name": name,
        "project": lay.project_ids[project],
        "coords": [coords[1], coords[0]] if coords else None,
        "lat": coords[0] if coords else None,
        "lng": coords[1] if coords else None,
        "hierarchyLevel": level,
        "boxType": lay.oid(gb.K_BOX_TYPE, box_type),
        "implanted": implanted,
        "pole": None,
        "draft": False,
        "certified": False,
        "shared": False,
        "default_reserve": 0,
        "address": "",
        "observation": gb.OBSERVATIONS[(h >> 50) % len(gb.OBSERVATIONS)],
        "tags": [],
        "cables": cables,
        "createdAt": created,
        "updatedAt": updated,
    }


def drops_of(lay: Layout, c: int) -> list[str]:
    """Ids of the drop cables ending in container ``c`` (one per client of its splitters)."""
    first = lay.cont_first[c]
    start, end = lay.ss_client_base[first], lay.ss_client_base[first + lay.cont_count[c]]
    prefix = lay.kind_prefix[gb.K_CABLE]
    return [f"{prefix}{client:010x}" for client in range(start, end)]


def box_name(lay: Layout, c: int) -> str:
    """OZmap name of CTO container ``c`` (``CTO-000123``)."""
    return f"CTO-{lay.cont_number[c] - lay.n_groups + 1:06d}"


def box_observation(lay: Layout, c: int) -> str:
    """The observation text of CTO container ``c`` (also IXC's ``obs_caixa_ftth`` when in sync)."""
    return gb.OBSERVATIONS[(gb.mix64(lay.container_salt + c) >> 50) % len(gb.OBSERVATIONS)]


def boxes(lay: Layout) -> Iterator[Row]:
    """CE boxes (network splitter only), then CTO boxes (some in project, some without coords)."""
    group_salt = gb.salt(lay.seed, gb.H_GROUP)
    for k in range(lay.n_groups):
        h = gb.mix64(group_salt + k)
        yield _box(
            lay, k, f"CE-{k + 1:05d}", lay.group_project(k), 2, BOX_TYPE_CE, lay.group_coords(k), True, h, []
        )
    for c in lay.box_container:
        h = gb.mix64(lay.container_salt + c)
        category = lay.cont_category[c]
        coords = None if category == gb.B_NO_COORDS else lay.container_coords(c)
        yield _box(
            lay,
            lay.cont_number[c],
            box_name(lay, c),
            lay.container_project(c),
            3,
            BOX_TYPE_CTO,
            coords,
            category != gb.B_IN_PROJECT,
            h,
            drops_of(lay, c),
        )


def building_name(lay: Layout, c: int) -> str:
    """Name of building container ``c`` (unique)."""
    n = lay.cont_number[c]
    return f"{gb.BUILDING_NAMES[n % len(gb.BUILDING_NAMES)]} {n // len(gb.BUILDING_NAMES) + 1}"


def building_address(lay: Layout, c: int) -> str:
    """Street address of building container ``c``."""
    h = gb.mix64(lay.container_salt + c)
    return f"{gb.STREETS[(h >> 40) % len(gb.STREETS)]}, {(h >> 45) % 2000 + 1}"


def buildings(lay: Layout) -> Iterator[Row]:
    """Condominiums holding 1-3 service splitters and their clients' properties."""
    for c in lay.building_container:
        bid = lay.container_id(c)
        lat, lng = lay.container_coords(c)
        created, updated = _moments(gb.mix64(lay.container_salt + c))
        yield {
            "id": bid,
            "_id": bid,
            "kind": "Building",
            "name": building_name(lay, c),
            "address": building_address(lay, c),
            "implanted": True,
            "hasProblem": False,
            "buildingType": None,
            "project": lay.project_ids[lay.container_project(c)],
            "coords": [lng, lat],
            "lat": lat,
            "lng": lng,
            "tags": [],
            "cables": drops_of(lay, c),
            "createdAt": created,
            "updatedAt": updated,
        }


def _splitter(
    sid: str,
    parent: str,
    project: str,
    type_id: str,
    name: str,
    is_drop: bool,
    implanted: bool,
    inputs: list[str | None],
    outputs: list[str | None],
    blocked: int,
    stamps: tuple[str, str],
) -> Row:
    return {
        "id": sid,
        "_id": sid,
        "kind": "Splitter",
        "parent": parent,
        "project": project,
        "splitterType": type_id,
        "name": name,
        "isDrop": is_drop,
        "implanted": implanted,
        "ratio": {"input": 1, "output": len(outputs)},
        "isBalanced": True,
        "label": "",
        "observation": "",
        "connectables": {"input": inputs, "output": outputs},
        "ports": _ports(len(outputs), blocked),
        "createdAt": stamps[0],
        "updatedAt": stamps[1],
    }


_PORTS: dict[tuple[int, int], list[dict[str, Any]]] = {}


def _ports(count: int, blocked: int) -> list[dict[str, Any]]:
    """The ``ports`` list of a splitter (``index`` 0-based, as the OZmap sandbox numbers them), shared between
    splitters with the same blocked ports: the stores are copy-on-write, stored values are never mutated in place."""
    ports = _PORTS.get((count, blocked))
    if ports is None:
        ports = _PORTS[count, blocked] = [
            {"index": i + 1, "blocked": bool(blocked >> i & 1)} for i in range(count)
        ]
    return ports


def splitters(lay: Layout) -> Iterator[Row]:
    """Service splitters (1x16, clients on ports) in container order, then network splitters (1x8)."""
    t16 = lay.oid(gb.K_SPLITTER_TYPE, SPLITTER_TYPE_1X16)
    for c in range(lay.n_containers):
        parent = lay.container_id(c)
        project = lay.project_ids[lay.container_project(c)]
        implanted = lay.cont_category[c] != gb.B_IN_PROJECT
        stamps = _moments(gb.mix64(lay.container_salt + c) ^ 0xA5A5)
        for s in range(lay.cont_first[c], lay.cont_first[c] + lay.cont_count[c]):
            occupied = lay.ss_occupied[s]
            client = lay.ss_client_base[s]
            outputs: list[str | None] = []
            for i in range(SERVICE_PORTS):
                if occupied >> i & 1:
                    outputs.append(lay.oid(gb.K_FIBER_DROP, client))
                    client += 1
                else:
                    outputs.append(None)
            inputs: list[str | None] = [None if lay.untraceable(s) else lay.oid(gb.K_FIBER_DIST, s)]
            name = f"Splitter {s - lay.cont_first[c] + 1}"
            yield _splitter(
                lay.oid(gb.K_SPLITTER, s),
                parent,
                project,
                t16,
                name,
                True,
                implanted,
                inputs,
                outputs,
                lay.ss_blocked[s],
                stamps,
            )
    t8 = lay.oid(gb.K_SPLITTER_TYPE, SPLITTER_TYPE_1X8)
    for k in range(lay.n_groups):
        outs: list[str | None] = []
        for s in range(k * SPLITTER_OUTPUTS, (k + 1) * SPLITTER_OUTPUTS):
            outs.append(lay.oid(gb.K_FIBER_DIST, s) if s < lay.n_service and not lay.untraceable(s) else None)
        stamps = _moments(gb.mix64(gb.salt(lay.seed, gb.H_GROUP) + k) ^ 0x5A5A)
        yield _splitter(
            lay.oid(gb.K_SPLITTER, lay.n_service + k),
            lay.oid(gb.K_BOX, k),
            lay.project_ids[lay.group_project(k)],
            t8,
            "Splitter 1",
            False,
            True,
            [lay.oid(gb.K_FIBER_FEED, k)],
            outs,
            0,
            stamps,
        )


COLLECTIONS: dict[str, Callable[[Layout, gb.TimePools], Iterator[Row]]] = {
    "projects": lambda lay, _pools: projects(lay),
    "box-types": lambda lay, _pools: box_types(lay),
    "splitter-types": lambda lay, _pools: splitter_types(lay),
    "cable-types": lambda lay, _pools: cable_types(lay),
    "olts": lambda lay, _pools: olts(lay),
    "slots": lambda lay, _pools: slots(lay),
    "pons": lambda lay, _pools: pons(lay),
    "boxes": lambda lay, _pools: boxes(lay),
    "buildings": lambda lay, _pools: buildings(lay),
    "splitters": lambda lay, _pools: splitters(lay),
}
"""Network collection name → row generator, in load order (referenced collections first)."""
