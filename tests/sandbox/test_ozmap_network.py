"""OZmap sandbox flows F1–F12 over real HTTP: properties, ports, drops, clients, feasibility, OLT chain, powers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.sandbox.test_ozmap_support import CENTRE, Sandbox, W, oid, serve

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api() -> AsyncIterator[Sandbox]:
    async with serve() as sandbox:
        yield sandbox


def reservation(code: str = "ixc-4711", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project": W.project,
        "box": W.box1,
        "coords": [-48.5502, -27.5901],
        "address": "Rua das Acácias, 120",
        "client": {"code": code, "name": "Joana Prado"},
        "connector": W.svc1,
        "port": 3,
    }
    body.update(extra)
    return body


async def outputs(api: Sandbox, splitter: str) -> list[Any]:
    return list((await api.ok("GET", f"/api/v2/splitters/{splitter}"))["connectables"]["output"])


def cond(path: str, op: str, value: Any) -> dict[str, Any]:
    return {"property": path, "operator": op, "value": value}


# -- F2 port reservation ---------------------------------------------------------------------------------------


async def test_reservation_creates_client_drop_connection_and_occupies_port(api: Sandbox) -> None:
    prop = await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    assert (
        prop["kind"] == "Property"
        and prop["box"] == W.box1
        and (prop["lat"], prop["lng"]) == (-27.5901, -48.5502)
    )
    client = await api.ok("GET", f"/api/v2/ftth-clients/{prop['client']}")
    assert (client["kind"], client["code"], client["implanted"], client["status"]) == (
        "ftth",
        "ixc-4711",
        False,
        0,
    )
    assert client["onu"] == {"user_PPPoE": "", "serial_number": "", "mac_address": ""}
    drop = await api.ok("GET", f"/api/v2/cables/{prop['drop']}")
    assert (drop["kind"], drop["boxA"], drop["boxB"]) == ("Drop", W.box1, prop["id"])
    [connection] = prop["connections"]
    assert connection == {
        "id": W.svc1,
        "kind": "Splitter",
        "name": "SVC-1",
        "port": 3,
        "implanted": False,
        "fiber": drop["fibers"][0],
    }
    assert (await outputs(api, W.svc1))[2] == connection["fiber"]
    [entry] = prop["history"]["clients"]
    assert entry["id"] == client["id"] and entry["code"] == "ixc-4711" and entry["exit_date"] is None
    assert prop["drop"] in (await api.ok("GET", f"/api/v2/boxes/{W.box1}"))["cables"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"port": 2}, "blocked"),
        ({"connector": W.net1, "port": 4}, "not a service"),
        ({"port": 9}, "between 1 and 8"),
        ({"port": "3"}, "integer"),
        ({"connector": W.svc2}, "not in box"),
        ({"connector": oid(999)}, "not found"),
        ({"connector": None}, "needs a connector"),
        ({"box": oid(999)}, "not found"),
        ({"project": oid(999)}, "project"),
        ({"client": {"name": "no code"}}, "code"),
        ({"client": oid(999)}, "not found"),
    ],
)
async def test_reservation_rules_reject_with_400_and_write_nothing(
    api: Sandbox, change: dict[str, Any], message: str
) -> None:
    before = {name: len(api.store.all(name)) for name in ("properties", "ftth-clients", "cables")}
    status, body = await api.call("POST", "/api/v2/properties", json=reservation(**change))
    assert status == 400 and message in body["message"]
    assert before == {name: len(api.store.all(name)) for name in before}
    assert await outputs(api, W.svc1) == [None] * 8


async def test_occupied_port_is_rejected_unless_forced(api: Sandbox) -> None:
    first = await api.ok("POST", "/api/v2/properties", 201, json=reservation("a"))
    status, body = await api.call("POST", "/api/v2/properties", json=reservation("b"))
    assert status == 400 and "occupied" in body["message"]
    forced = await api.ok("POST", "/api/v2/properties", 201, json=reservation("b", force=True))
    assert (await outputs(api, W.svc1))[2] == forced["connections"][0]["fiber"]
    assert (await api.ok("GET", f"/api/v2/properties/{first['id']}"))["connections"] == []
    blocked = await api.ok("POST", "/api/v2/properties", 201, json=reservation("c", port=2, force=True))
    assert blocked["connections"][0]["port"] == 2


async def test_auto_connect_takes_the_first_free_port(api: Sandbox) -> None:
    body = reservation("a", auto_connect=True)
    del body["connector"], body["port"]
    first = await api.ok("POST", "/api/v2/properties", 201, json=body)
    second = await api.ok("POST", "/api/v2/properties", 201, json={**body, "client": {"code": "b"}})
    assert [first["connections"][0]["port"], second["connections"][0]["port"]] == [1, 3]  # port 2 is blocked
    status, error = await api.call(
        "POST", "/api/v2/properties", json={**body, "box": W.box4, "client": {"code": "c"}}
    )
    assert status == 400 and "no free port" in error["message"]
    status, error = await api.call(
        "POST", "/api/v2/properties", json={**body, "box": W.box3, "client": {"code": "d"}}
    )
    assert status == 400
    no_box = {k: v for k, v in body.items() if k != "box"}
    assert (await api.call("POST", "/api/v2/properties", json={**no_box, "client": {"code": "e"}}))[0] == 400
    on_splitter = await api.ok(
        "POST", "/api/v2/properties", 201, json={**no_box, "client": {"code": "f"}, "connector": W.svc1}
    )
    assert on_splitter["box"] == W.box1 and on_splitter["connections"][0]["port"] == 4


async def test_client_first_then_property_and_code_uniqueness(api: Sandbox) -> None:
    client = await api.ok(
        "POST", "/api/v2/ftth-clients", 201, json={"code": "c-1", "name": "Ana", "implanted": True}
    )
    assert client["kind"] == "ftth" and client["implanted"] is True and client["certified"] is False
    prop = await api.ok("POST", "/api/v2/properties", 201, json=reservation(client=client["id"]))
    assert prop["client"] == client["id"] and prop["history"]["clients"][0]["code"] == "c-1"
    for path, body in (
        ("/api/v2/ftth-clients", {"code": "c-1"}),
        ("/api/v2/properties", reservation("c-1", port=4)),
        ("/api/v2/ftth-clients", {"name": "no code"}),
        ("/api/v2/ftth-clients", {"code": "x", "status": 3}),
    ):
        status, error = await api.call("POST", path, json=body)
        assert status == 400 and error["message"], body
    bare = await api.ok("POST", "/api/v2/properties", 201, json={"project": W.project, "address": "Lot 7"})
    assert (bare["box"], bare["drop"], bare["client"], bare["connections"]) == (None, None, None, [])


# -- F3 / F7 / F8 / F10 clients ----------------------------------------------------------------------------------


async def test_implantation_via_client_code_lookup(api: Sandbox) -> None:
    await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    found = await api.ok("GET", "/api/v2/properties/client/ixc-4711")
    assert isinstance(found, list) and len(found) == 1
    client = found[0]["client"]
    assert client["_id"] == client["id"] and client["code"] == "ixc-4711"
    assert (await api.call("PATCH", f"/api/v2/ftth-clients/{client['_id']}", json={"implanted": True})) == (
        204,
        None,
    )
    by_code = await api.ok("GET", "/api/v2/ftth-clients", json={"filter": [cond("code", "=", "ixc-4711")]})
    assert by_code["rows"][0]["implanted"] is True and by_code["rows"][0]["updatedAt"] > client["updatedAt"]
    assert await api.ok("GET", "/api/v2/properties/client/nobody") == []


async def test_lookup_property_by_client_with_populated_box(api: Sandbox) -> None:
    prop = await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    flt = [cond("client", "=", prop["client"])]
    row = (await api.ok("GET", "/api/v2/properties?populate=box", json={"filter": flt}))["rows"][0]
    assert row["box"]["name"] == "CTO-1" and row["connections"][0]["id"] == W.svc1
    assert row["connections"][0]["port"] == 3 and row["client"] == prop["client"]
    row = (await api.ok("GET", "/api/v2/properties", params={"populate": "client drop"}))["rows"][0]
    assert row["client"]["code"] == "ixc-4711" and row["drop"]["kind"] == "Drop"


@pytest.mark.parametrize(
    ("update", "status"),
    [
        ({"status": 1}, 204),
        ({"status": 0}, 204),
        ({"status": 2}, 400),
        ({"status": "OK"}, 400),
        ({"status": True}, 400),
        ({"onu": {"serial_number": "ZTEGC0FFEE01"}}, 400),
        ({"onu": "ZTEGC0FFEE01"}, 400),
        (
            {"onu": {"serial_number": "ZTEGC0FFEE01", "mac_address": "A4:3E:51:00:11:22", "user_PPPoE": "j"}},
            204,
        ),
        ({"implanted": "yes"}, 400),
        ({"code": ""}, 400),
        ({"name": "Joana P.", "observation": "VIP"}, 204),
    ],
)
async def test_client_patch_validation(api: Sandbox, update: dict[str, Any], status: int) -> None:
    prop = await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    got, body = await api.call("PATCH", f"/api/v2/ftth-clients/{prop['client']}", json=update)
    assert got == status, body
    if status == 400:
        assert body["message"]


async def test_onu_lookup_and_duplicate_code_on_patch(api: Sandbox) -> None:
    a = await api.ok("POST", "/api/v2/ftth-clients", 201, json={"code": "a"})
    b = await api.ok("POST", "/api/v2/ftth-clients", 201, json={"code": "b"})
    onu = {"serial_number": "ZTEGC0FFEE01", "mac_address": "m", "user_PPPoE": "p"}
    await api.ok("PATCH", f"/api/v2/ftth-clients/{b['id']}", 204, json={"onu": onu})
    flt = [cond("onu.serial_number", "=", "ZTEGC0FFEE01")]
    assert [r["id"] for r in (await api.ok("GET", "/api/v2/ftth-clients", json={"filter": flt}))["rows"]] == [
        b["id"]
    ]
    status, error = await api.call("PATCH", f"/api/v2/ftth-clients/{b['id']}", json={"code": "a"})
    assert status == 400 and "exists" in error["message"]
    await api.ok("PATCH", f"/api/v2/ftth-clients/{a['id']}", 204, json={"code": "a"})


async def test_batch_updates_of_clients_and_properties(api: Sandbox) -> None:
    one = await api.ok("POST", "/api/v2/properties", 201, json=reservation("a"))
    two = await api.ok("POST", "/api/v2/properties", 201, json=reservation("b", port=4))
    ids = [one["client"], two["client"]]
    flt = [cond("id", "in", ids)]
    await api.ok(
        "POST", "/api/v2/ftth-clients/batch-update", 204, json={"update": {"status": 1}, "filter": flt}
    )
    rows = (await api.ok("GET", "/api/v2/ftth-clients", json={"filter": flt}))["rows"]
    assert [r["status"] for r in rows] == [1, 1]
    bad = {"update": {"status": 5}, "filter": flt}
    assert (await api.call("POST", "/api/v2/ftth-clients/batch-update", json=bad))[0] == 400
    dup = {"update": {"code": "same"}, "filter": flt}
    assert (await api.call("POST", "/api/v2/ftth-clients/batch-update", json=dup))[0] == 400
    power = {"update": {"potencyRead": -21.4}, "filter": [cond("client", "in", ids)]}
    await api.ok("POST", "/api/v2/properties/batch-update", 204, json=power)
    assert [p["potencyRead"] for p in (await api.ok("GET", "/api/v2/properties"))["rows"]] == [-21.4, -21.4]
    await api.ok(
        "PATCH", f"/api/v2/properties/{one['id']}", 204, json={"potencyRead": -19.0, "address": "New 1"}
    )
    read = (await api.ok("GET", "/api/v2/properties/client/a"))[0]
    assert (read["potencyRead"], read["address"]) == (-19.0, "New 1")


# -- F4 removal / F5 / F6 moves ----------------------------------------------------------------------------------


async def test_withdrawal_deletes_property_client_and_drop_and_frees_port(api: Sandbox) -> None:
    prop = await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    assert (await api.call("DELETE", f"/api/v2/properties/{prop['id']}")) == (204, None)
    assert await outputs(api, W.svc1) == [None] * 8
    for path in (f"properties/{prop['id']}", f"ftth-clients/{prop['client']}", f"cables/{prop['drop']}"):
        assert (await api.call("GET", f"/api/v2/{path}"))[0] == 404
    assert prop["drop"] not in (await api.ok("GET", f"/api/v2/boxes/{W.box1}"))["cables"]
    since = [cond("deletedAt", ">=", prop["createdAt"])]
    assert (await api.ok("GET", "/api/v2/ftth-clients", json={"filter": since}))["total"] == 1
    await api.ok(
        "POST", "/api/v2/properties", 201, json=reservation()
    )  # the code and the port are free again


async def test_cancellation_detaches_client_and_keeps_property_and_port(api: Sandbox) -> None:
    prop = await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    await api.ok("PATCH", f"/api/v2/properties/{prop['id']}", 204, json={"client": None})
    kept = await api.ok("GET", f"/api/v2/properties/{prop['id']}")
    assert kept["client"] is None and kept["connections"] == prop["connections"]
    [entry] = kept["history"]["clients"]
    assert entry["code"] == "ixc-4711" and entry["exit_date"] and entry["connections"][0]["port"] == 3
    assert (await outputs(api, W.svc1))[2] is not None
    assert (await api.call("GET", f"/api/v2/ftth-clients/{prop['client']}"))[0] == 200
    assert await api.ok("GET", "/api/v2/properties/client/ixc-4711") == []
    await api.ok("POST", f"/api/v2/cables/{prop['drop']}/fibers/disconnect", 204)
    assert await outputs(api, W.svc1) == [None] * 8
    after = await api.ok("GET", f"/api/v2/properties/{prop['id']}")
    assert after["connections"] == [] and after["drop"] == prop["drop"] and after["box"] == W.box1
    assert (await api.call("GET", f"/api/v2/cables/{prop['drop']}"))[0] == 200
    await api.ok("POST", f"/api/v2/cables/{prop['drop']}/fibers/disconnect/", 204)  # idempotent
    assert (await api.call("POST", f"/api/v2/cables/{oid(999)}/fibers/disconnect"))[0] == 404


async def test_client_delete_leaves_the_property(api: Sandbox) -> None:
    prop = await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    await api.ok("DELETE", f"/api/v2/ftth-clients/{prop['client']}", 204)
    kept = await api.ok("GET", f"/api/v2/properties/{prop['id']}")
    assert kept["client"] is None and kept["history"]["clients"][0]["exit_date"]
    assert (await outputs(api, W.svc1))[2] is not None


async def test_address_change_moves_client_to_new_property(api: Sandbox) -> None:
    old = await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    new = await api.ok("POST", "/api/v2/properties", 201, json=reservation("tmp", port=5, client=None))
    await api.ok("PATCH", f"/api/v2/properties/{old['id']}", 204, json={"client": None})
    await api.ok("PATCH", f"/api/v2/properties/{new['id']}", 204, json={"client": old["client"]})
    [moved] = await api.ok("GET", "/api/v2/properties/client/ixc-4711")
    assert moved["id"] == new["id"] and moved["history"]["clients"][0]["enter_date"]
    await api.ok("PATCH", f"/api/v2/properties/{new['id']}", 204, json={"client": {"code": "inline-2"}})
    assert (await api.ok("GET", "/api/v2/properties/client/inline-2"))[0]["id"] == new["id"]
    history = (await api.ok("GET", f"/api/v2/properties/{new['id']}"))["history"]["clients"]
    assert [h["code"] for h in history] == ["ixc-4711", "inline-2"] and history[0]["exit_date"]


async def test_move_box_splitter_and_port(api: Sandbox) -> None:
    prop = await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    fibre = prop["connections"][0]["fiber"]
    await api.ok("PATCH", f"/api/v2/properties/{prop['id']}", 204, json={"port": 6})
    assert (await outputs(api, W.svc1)).index(fibre) == 5
    move = {"box": W.box2, "connector": W.svc2, "port": 5}
    await api.ok("PATCH", f"/api/v2/properties/{prop['id']}", 204, json=move)
    assert await outputs(api, W.svc1) == [None] * 8 and (await outputs(api, W.svc2))[4] == fibre
    moved = await api.ok("GET", f"/api/v2/properties/{prop['id']}")
    assert moved["box"] == W.box2 and moved["connections"][0]["id"] == W.svc2
    assert (await api.ok("GET", f"/api/v2/cables/{prop['drop']}"))["boxA"] == W.box2
    assert prop["drop"] in (await api.ok("GET", f"/api/v2/boxes/{W.box2}"))["cables"]
    status, body = await api.call(
        "PATCH", f"/api/v2/properties/{prop['id']}", json={"connector": W.svc4, "port": 1}
    )
    assert status == 400 and "occupied" in body["message"]
    await api.ok("PATCH", f"/api/v2/properties/{prop['id']}", 204, json={"drop": "x", "project": "y"})
    assert (await api.ok("GET", f"/api/v2/properties/{prop['id']}"))["drop"] == prop["drop"]


async def test_deleting_a_drop_frees_the_port(api: Sandbox) -> None:
    prop = await api.ok("POST", "/api/v2/properties", 201, json=reservation())
    await api.ok("DELETE", f"/api/v2/cables/{prop['drop']}", 204)
    assert await outputs(api, W.svc1) == [None] * 8
    kept = await api.ok("GET", f"/api/v2/properties/{prop['id']}")
    assert kept["drop"] is None and kept["connections"] == [] and kept["cables"] == []
    cable = {"project": W.project, "cableType": oid(77), "boxA": W.box1, "boxB": W.box3}
    created = await api.ok("POST", "/api/v2/cables", 201, json=cable)
    assert (
        created["kind"] == "Cable"
        and created["id"] in (await api.ok("GET", f"/api/v2/boxes/{W.box3}"))["cables"]
    )
    status, error = await api.call("POST", f"/api/v2/cables/{created['id']}/fibers/disconnect")
    assert status == 400 and "not a drop" in error["message"]


# -- F1 feasibility ----------------------------------------------------------------------------------------------


async def test_viability_by_radius(api: Sandbox) -> None:
    body = await api.ok("GET", "/api/v2/ftth-viability/radius", params={"lat": "-27.59", "lng": "-48.55"})
    assert body["viable"] is True and body["radius"] == 200
    [box] = body["viableBoxes"]
    assert box["id"] == W.box1 and 50 < box["distance"] < 60 and box["coords"] == [-48.55, -27.5905]
    assert box["splitters"] == [{"id": W.svc1, "name": "SVC-1", "freePorts": [1, 3, 4, 5, 6, 7, 8]}]
    reasons = {b["id"]: b["reason"] for b in body["unviableBoxes"]}
    assert reasons == {W.box2: "in project", W.box4: "no free ports", W.box3: "no service splitter"}
    assert [b["id"] for b in body["unviableBoxes"]] == [W.box2, W.box4, W.box3]  # nearest first
    near = await api.ok("GET", "/api/v2/ftth-viability/radius/", params={**CENTRE, "radius": "52"})
    assert near["viable"] is False and [b["id"] for b in near["unviableBoxes"]] == [W.box2]
    for params in ({"lat": "x", "lng": "1"}, {"lat": "-27.59"}, {"lat": "100", "lng": "0"}):
        assert (await api.call("GET", "/api/v2/ftth-viability/radius", params=params))[0] == 400


async def test_viability_follows_port_occupancy(api: Sandbox) -> None:
    for code, port in zip("abcdefg", (1, 3, 4, 5, 6, 7, 8), strict=True):
        await api.ok("POST", "/api/v2/properties", 201, json=reservation(code, port=port))
    body = await api.ok("GET", "/api/v2/ftth-viability/radius", params=CENTRE)
    assert body["viable"] is False
    assert {b["id"]: b["reason"] for b in body["unviableBoxes"]}[W.box1] == "no free ports"


# -- F9 / topology / OLT chain -----------------------------------------------------------------------------------


async def test_olt_slot_pon_chain(api: Sandbox) -> None:
    slot = await api.ok("POST", "/api/v2/slots", 201, json={"olt": W.olt, "label": "2"})
    assert slot["kind"] == "Slot" and slot["parent"] == W.olt and slot["project"] == W.project
    assert (await api.ok("GET", f"/api/v2/olts/{W.olt}"))["connectables"] == [W.slot, slot["id"]]
    pon = await api.ok("POST", "/api/v2/pons", 201, json={"slot": slot["id"], "name": "PON 1"})
    assert pon["kind"] == "PON" and pon["potency"] == 0 and pon["parent"] == slot["id"]
    assert (await api.ok("GET", f"/api/v2/slots/{slot['id']}"))["connectables"] == [pon["id"]]
    await api.ok("PATCH", f"/api/v2/pons/{pon['id']}", 204, json={"potency": 4.5})
    assert (await api.ok("GET", f"/api/v2/pons/{pon['id']}"))["potency"] == 4.5
    assert (await api.call("PATCH", f"/api/v2/pons/{pon['id']}", json={"potency": "high"}))[0] == 400
    assert (await api.call("POST", "/api/v2/slots", json={"label": "orphan"}))[0] == 400
    assert (await api.call("POST", "/api/v2/pons", json={"slot": oid(999)}))[0] == 400
    await api.ok("DELETE", f"/api/v2/pons/{pon['id']}", 204)
    assert (await api.ok("GET", f"/api/v2/slots/{slot['id']}"))["connectables"] == []


async def test_transmitter_trace_follows_the_topology_convention(api: Sandbox) -> None:
    async def one(path: str, flt: list[Any]) -> dict[str, Any]:
        rows = (await api.ok("GET", path, json={"filter": flt}))["rows"]
        assert len(rows) == 1, rows
        return dict(rows[0])

    flt = [cond("parent", "in", [W.box4]), cond("isDrop", "=", True)]
    splitter = await one("/api/v2/splitters", flt)
    fibre = splitter["connectables"]["input"][0]
    for _ in range(10):
        feeders = (await api.ok("GET", "/api/v2/pons", json={"filter": [cond("connectables", "=", fibre)]}))[
            "rows"
        ]
        if feeders:
            break
        upstream = await one("/api/v2/splitters", [cond("connectables.output", "=", fibre)])
        fibre = upstream["connectables"]["input"][0]
    slot = await api.ok("GET", f"/api/v2/slots/{feeders[0]['parent']}")
    olt = await api.ok("GET", f"/api/v2/olts/{slot['parent']}")
    assert olt["ip"] == "10.0.0.7"


async def test_splitter_create_and_power_rule(api: Sandbox) -> None:
    made = await api.ok(
        "POST", "/api/v2/splitters", 201, json={"parent": W.box3, "splitterType": W.splitter_type}
    )
    assert (
        made["ratio"] == {"input": 1, "output": 8}
        and made["project"] == W.project
        and made["name"] == "Splitter 2"
    )
    assert made["connectables"] == {"input": [None], "output": [None] * 8} and len(made["ports"]) == 8
    assert made["isDrop"] is False and made["installPower"] == [None] * 8
    first = [-20.5] + [None] * 7
    await api.ok("PATCH", f"/api/v2/splitters/{W.svc1}", 204, json={"currentPower": first})
    second = [-22.0, -18.0] + [None] * 6
    await api.ok("PATCH", f"/api/v2/splitters/{W.svc1}", 204, json={"currentPower": second})
    powered = await api.ok("GET", f"/api/v2/splitters/{W.svc1}")
    assert powered["currentPower"][:2] == [-22.0, -18.0] and powered["installPower"][:2] == [-20.5, -18.0]
    for bad in ([1.0], ["x"] * 8, "x"):
        assert (await api.call("PATCH", f"/api/v2/splitters/{W.svc1}", json={"currentPower": bad}))[0] == 400
    assert (await api.call("POST", "/api/v2/splitters", json={"parent": oid(999), "splitterType": "t"}))[
        0
    ] == 400
    ports = [dict(p) for p in powered["ports"]]
    ports[0]["blocked"] = True
    await api.ok("PATCH", f"/api/v2/splitters/{W.svc1}", 204, json={"ports": ports})
    status, error = await api.call("POST", "/api/v2/properties", json=reservation(port=1))
    assert status == 400 and "blocked" in error["message"]
