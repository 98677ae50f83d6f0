"""A hand-built OZmap network for the guide operations, served by the real OZmap sandbox on loopback.

Around the point ``(LAT, LNG)`` (radius 200 m)::

    OLT-1 (10.0.0.1) ─ slot 1 ─ PON 1/1 (3.0 dBm) ─ f-pon1 ─ CE-1 network 1x8 (type loss 10.5 dB, 555 m away)
                      │          PON 1/2 (2.5 dBm)              ├─ f-a ─ CTO-1 service 1x8 S1 (own loss 14 dB) ← here
                      └ slot 2 ─ PON 2/1                        ├─ f-b ─ CTO-2 service S2, every port taken (100 m)
                                                                └─ f-c ─ Edifício Aurora service SB1 (78 m)
    CTO-3 "in project" (45 m), Edifício Sem Splitter (145 m, no service splitter), CTO-FAR (2.2 km).

Clients on S1: ``ana`` port 1 (read −22.0 dBm, implanted), ``bia`` port 2 (read −30.0 dBm), ``caio`` port 3 (no
reading, not implanted). Calculated power at S1: 3.0 − 10.5 − 14.0 = −21.5 dBm, so ``bia`` is 8.5 dB worse.
Tag "queda-massiva" is on CTO-1; pendency type "Rede"; no prospects.
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox.ozmap import OzmapStore
from tests.integration.conftest import TS, oid, ozmap_box, ozmap_splitter

LAT, LNG = -27.5900, -48.5500
PROJECT = oid(1)
OLT, SLOT1, SLOT2, PON1, PON2, PON3 = oid(10), oid(20), oid(21), oid(30), oid(31), oid(32)
CE1, CTO1, CTO2, CTO3, FAR = oid(100), oid(101), oid(102), oid(103), oid(104)
BUILDING, BUILDING2 = oid(300), oid(301)
NET, S1, S2, SB1 = oid(200), oid(201), oid(202), oid(401)
TYPE8, PENDENCY_TYPE, OUTAGE_TAG = oid(9001), oid(9100), oid(9200)
CALCULATED_S1 = -21.5


def _client(
    n: int, code: str, port: int, *, potency: float | None, implanted: bool
) -> tuple[dict[str, Any], ...]:
    prop_id, client_id, drop_id, fibre = oid(5000 + n), oid(6000 + n), oid(7000 + n), f"f-drop-{n}"
    prop = {
        "id": prop_id, "kind": "Property", "project": PROJECT, "box": CTO1, "drop": drop_id, "client": client_id,
        "address": f"Rua {n}", "observation": "", "coords": [LNG, LAT], "potencyRead": potency,
        "connections": [{"id": S1, "kind": "Splitter", "name": "Splitter 1", "port": port, "implanted": implanted,
                         "fiber": fibre}],
        "history": {"clients": [{"id": client_id, "code": code, "enter_date": TS, "exit_date": None}]},
        "tags": [], "cables": [drop_id], "createdAt": TS, "updatedAt": TS,
    }  # fmt: skip
    client = {
        "id": client_id, "kind": "ftth", "code": code, "name": code.title(), "observation": "",
        "implanted": implanted, "certified": False, "status": 0, "tags": [],
        "onu": {"user_PPPoE": f"{code}.pppoe", "serial_number": "", "mac_address": ""},
        "createdAt": TS, "updatedAt": TS,
    }  # fmt: skip
    drop = {
        "id": drop_id, "kind": "Drop", "project": PROJECT, "boxA": CTO1, "boxB": prop_id, "fibers": [fibre],
        "fiberNumber": 1, "looseNumber": 1, "implanted": True, "tags": [], "createdAt": TS, "updatedAt": TS,
    }  # fmt: skip
    return prop, client, drop


def load(store: OzmapStore) -> None:
    """The network above, into ``store``."""
    store.load("projects", [{"id": PROJECT, "name": "Chicago", "createdAt": TS, "updatedAt": TS}])
    store.load(
        "olts",
        [{"id": OLT, "kind": "OLT", "name": "OLT-1", "ip": "10.0.0.1", "connectables": [SLOT1, SLOT2]}],
    )
    store.load(
        "slots",
        [
            {"id": SLOT1, "parent": OLT, "starting_pon_number": 1, "connectables": [PON1, PON2]},
            {"id": SLOT2, "parent": OLT, "starting_pon_number": 1, "connectables": [PON3]},
        ],
    )
    store.load(
        "pons",
        [
            {"id": PON1, "name": "PON 1", "parent": SLOT1, "potency": 3.0, "connectables": ["f-pon1"]},
            {"id": PON2, "name": "PON 2", "parent": SLOT1, "potency": 2.5, "connectables": []},
            {"id": PON3, "name": "PON 1", "parent": SLOT2, "potency": 0, "connectables": []},
        ],
    )
    store.load("splitter-types", [{"id": TYPE8, "name": "1x8", "ratio": {"input": 1, "output": 8},
                                   "attenuation": [10.5] * 8}])  # fmt: skip
    store.load("pendency-types", [{"id": PENDENCY_TYPE, "name": "Rede"}])
    store.load("tags", [{"id": OUTAGE_TAG, "name": "queda-massiva", "allowedTypes": ["box"]}])
    boxes = [
        ozmap_box(100, "CE-1", PROJECT, lat=-27.5950, lng=LNG),
        ozmap_box(101, "CTO-1", PROJECT, lat=LAT, lng=LNG),
        ozmap_box(102, "CTO-2", PROJECT, lat=-27.5909, lng=LNG),
        ozmap_box(103, "CTO-3", PROJECT, lat=-27.5904, lng=LNG, implanted=False),
        ozmap_box(104, "CTO-FAR", PROJECT, lat=-27.6100, lng=LNG),
    ]
    boxes[1]["tags"] = [OUTAGE_TAG]
    store.load("boxes", boxes)
    store.load(
        "buildings",
        [
            {"id": BUILDING, "kind": "Building", "name": "Edifício Aurora", "project": PROJECT,
             "coords": [LNG, -27.5907], "implanted": True, "tags": [], "createdAt": TS, "updatedAt": TS},
            {"id": BUILDING2, "kind": "Building", "name": "Edifício Sem Splitter", "project": PROJECT,
             "coords": [LNG, -27.5913], "implanted": True, "tags": [], "createdAt": TS, "updatedAt": TS},
        ],
    )  # fmt: skip
    clients = [
        _client(1, "ana", 1, potency=-22.0, implanted=True),
        _client(2, "bia", 2, potency=-30.0, implanted=True),
        _client(3, "caio", 3, potency=None, implanted=False),
    ]
    s1_outputs: list[str | None] = [f"f-drop-{n}" for n in (1, 2, 3)] + [None] * 5
    network = ozmap_splitter(200, CE1, PROJECT, is_drop=False, inputs=["f-pon1"],
                             outputs=["f-a", "f-b", "f-c", None, None, None, None, None])  # fmt: skip
    network["attenuation"], network["splitterType"] = [], TYPE8
    s1 = ozmap_splitter(201, CTO1, PROJECT, is_drop=True, inputs=["f-a"], outputs=s1_outputs)
    s1["attenuation"] = [14.0] * 8
    s1["ports"][7]["blocked"] = True
    s2 = ozmap_splitter(
        202, CTO2, PROJECT, is_drop=True, inputs=["f-b"], outputs=[f"f-full-{i}" for i in range(8)]
    )
    sb1 = ozmap_splitter(
        401, BUILDING, PROJECT, is_drop=True, inputs=["f-c"], outputs=["f-x", None, None, None]
    )
    store.load("splitters", [network, s1, s2, sb1])
    store.load("properties", [c[0] for c in clients])
    store.load("ftth-clients", [c[1] for c in clients])
    store.load("cables", [c[2] for c in clients])
