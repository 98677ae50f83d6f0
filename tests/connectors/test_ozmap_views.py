"""OZmap's client-side views against the OZmap sandbox: ``connections`` (with its writes, delete and ``cancel``
operation), ``building-splitters`` and ``reservations``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler import errors
from reconciler.connectors.ozmap.connector import OzmapConnector
from reconciler.model import Record
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ozmap import DEFAULT_API_KEY, OzmapStore, create_app
from tests.connectors.conftest import api_requests, system, url_of

pytestmark = pytest.mark.anyio


def oid(n: int) -> str:
    return f"{n:024x}"


P1, OLT, SLOT, PON = oid(1), oid(11), oid(21), oid(31)
BOX, BUILDING = oid(41), oid(42)
S1, S2, SB1, SB_NET = oid(51), oid(52), oid(53), oid(54)
T0 = "2025-03-01T10:00:00.000Z"


def splitter(
    sid: str, parent: str, name: str, outputs: list[str | None], *, drop: bool = True
) -> dict[str, Any]:
    return {
        "id": sid, "parent": parent, "project": P1, "name": name, "isDrop": drop,
        "ratio": {"input": 1, "output": len(outputs)}, "connectables": {"input": ["f-pon"], "output": outputs},
        "ports": [{"index": i, "id": f"{sid}-{i}", "blocked": False} for i in range(len(outputs))],
        "createdAt": T0, "updatedAt": T0,
    }  # fmt: skip


def client_on(n: int, code: str, container: str, sid: str, port: int, *, building: bool = False) -> list[Any]:
    """(property, client, drop) rows of a client on ``sid`` port ``port``."""
    prop, client, drop = oid(100 + n), oid(200 + n), oid(300 + n)
    return [
        {"id": prop, "project": P1, "box": container, "parent": container if building else None, "client": client,
         "drop": drop, "coords": [-48.5, -27.5], "observation": "", "potencyRead": -20.0,
         "connections": [{"id": sid, "name": "Splitter 2" if sid == S2 else "Splitter 1", "port": port,
                          "fiber": f"fd-{n}"}],
         "createdAt": T0, "updatedAt": T0},
        {"id": client, "code": code, "name": code.title(), "implanted": True, "status": 0, "createdAt": T0,
         "updatedAt": T0},
        {"id": drop, "kind": "Drop", "project": P1, "boxA": container, "boxB": prop, "fibers": [f"fd-{n}"],
         "createdAt": T0, "updatedAt": T0},
    ]  # fmt: skip


def load(store: OzmapStore) -> None:
    store.load("projects", [{"id": P1, "name": "Centro", "createdAt": T0, "updatedAt": T0}])
    store.load("olts", [{"id": OLT, "name": "OLT-1", "ip": "10.0.0.7", "connectables": [SLOT]}])
    store.load("slots", [{"id": SLOT, "parent": OLT, "connectables": [PON]}])
    store.load("pons", [{"id": PON, "parent": SLOT, "connectables": ["f-pon"]}])
    store.load("boxes", [{"id": BOX, "name": "CTO-1", "project": P1, "implanted": True, "coords": [-48.5, -27.5],
                          "hierarchyLevel": 3, "createdAt": T0, "updatedAt": T0}])  # fmt: skip
    store.load("buildings", [{"id": BUILDING, "name": "Edifício Sol", "project": P1, "coords": [-48.6, -27.6],
                              "createdAt": T0, "updatedAt": T0}])  # fmt: skip
    rows = [client_on(1, "ana", BOX, S1, 3), client_on(2, "bia", BOX, S2, 2), client_on(3, "caio", BUILDING, SB1, 4,
                                                                                        building=True)]  # fmt: skip
    out1: list[str | None] = [None, None, "fd-1", None, None, None, None, None]
    out2: list[str | None] = [None, "fd-2", None, None]
    outb: list[str | None] = [None, None, None, "fd-3", None, None, None, None]
    store.load("splitters", [splitter(S1, BOX, "Splitter 1", out1), splitter(S2, BOX, "Splitter 2", out2),
                             splitter(SB1, BUILDING, "Splitter 1", outb),
                             splitter(SB_NET, BUILDING, "Splitter 0", [None, None], drop=False)])  # fmt: skip
    store.load("properties", [r[0] for r in rows] + [{"id": oid(199), "project": P1, "box": BOX, "client": None,
                                                       "createdAt": T0, "updatedAt": T0}])  # fmt: skip
    store.load("ftth-clients", [r[1] for r in rows])
    store.load("cables", [r[2] for r in rows])


class Env(NamedTuple):
    store: OzmapStore
    faults: Faults
    connector: OzmapConnector


@pytest.fixture
async def env(session: aiohttp.ClientSession) -> AsyncIterator[Env]:
    store = OzmapStore()
    load(store)
    faults = Faults()
    async with TestServer(create_app(store, faults=faults), host="127.0.0.1") as server:
        yield Env(store, faults, OzmapConnector(system("ozmap", url_of(server), DEFAULT_API_KEY), session))


async def collect(env: Env, collection: str, **kwargs: Any) -> dict[str, Record]:
    out: dict[str, Record] = {}
    async for page in env.connector.stream(collection, **kwargs):
        out.update((r.id, r) for r in page)
    return out


# -- connections --------------------------------------------------------------------------------------------------


async def test_connections_are_properties_with_a_client_and_their_box_port(env: Env) -> None:
    records = await collect(env, "connections")
    assert set(records) == {oid(101), oid(102), oid(103)}  # the property without a client is not one
    ana, bia, caio = (records[oid(100 + n)].fields for n in (1, 2, 3))
    assert (ana["code"], ana["client_name"], ana["implanted"], ana["status"]) == ("ana", "Ana", True, 0)
    assert (ana["box_id"], ana["building_id"], ana["splitter_id"], ana["port"], ana["box_port"]) == (
        BOX, None, S1, 3, 3,
    )  # fmt: skip
    assert (bia["splitter_id"], bia["port"], bia["box_port"]) == (S2, 2, 10)  # after Splitter 1's 8 ports
    assert (caio["building_id"], caio["box_port"]) == (BUILDING, 4)  # in a building each splitter is a box
    assert (ana["lat"], ana["lng"], ana["potency_read"], ana["drop_id"]) == (-27.5, -48.5, -20.0, oid(301))


async def test_connections_read_for_a_few_fields_select_just_those_and_list_no_splitter(env: Env) -> None:
    whole = await collect(env, "connections")
    env.faults.log.clear()
    records = await collect(env, "connections", fields=["code", "lat", "lng"])
    assert set(records) == set(whole)
    for record_id, record in records.items():
        assert record.fields == {k: whole[record_id].fields[k] for k in ("id", "code", "lat", "lng")}
        assert record.updated_at == whole[record_id].updated_at  # still the later of property and client
    (listing,) = api_requests(env.faults, "GET", "/properties")
    assert listing.query["select"] == "client coords updatedAt" and listing.query["populate"] == "client"
    assert api_requests(env.faults, "GET", "/splitters") == []  # no box port read: no splitter listed


async def test_connections_read_for_their_box_port_still_count_it_across_the_box(env: Env) -> None:
    whole = await collect(env, "connections")
    env.faults.log.clear()
    records = await collect(env, "connections", fields=["box_port", "observation"])
    assert {k: r.fields for k, r in records.items()} == {
        k: {f: r.fields[f] for f in ("id", "box_port", "observation")} for k, r in whole.items()
    }
    assert records[oid(102)].fields["box_port"] == 10
    (listing,) = api_requests(env.faults, "GET", "/properties")
    assert listing.query["select"] == "box client connections observation parent updatedAt"
    assert api_requests(env.faults, "GET", "/splitters")


async def test_connections_read_for_a_field_the_view_lacks_are_read_whole(env: Env) -> None:
    whole = await collect(env, "connections")
    env.faults.log.clear()
    records = await collect(env, "connections", fields=["code", "no_such_field"])
    assert records == whole
    (listing,) = api_requests(env.faults, "GET", "/properties")
    assert "select" not in listing.query


async def test_connections_changed_since_take_the_fields_hint_too(env: Env) -> None:
    since = env.store.stamp()
    env.store.update("ftth-clients", oid(202), {"name": "Beatriz"})
    env.store.update("properties", oid(101), {"observation": "moved"})
    env.faults.log.clear()
    changed = await collect(env, "connections", since=since, fields=["client_name"])
    assert {k: r.fields for k, r in changed.items()} == {
        oid(101): {"id": oid(101), "client_name": "Ana"},
        oid(102): {"id": oid(102), "client_name": "Beatriz"},
    }
    listings = api_requests(env.faults, "GET", "/properties")
    assert listings and all(r.query["select"] == "client updatedAt" for r in listings)


async def test_a_client_edit_brings_its_connection_into_the_incremental_read(env: Env) -> None:
    since = env.store.stamp()
    env.store.update("ftth-clients", oid(202), {"name": "Beatriz"})
    changed = await collect(env, "connections", since=since)
    assert list(changed) == [oid(102)] and changed[oid(102)].fields["client_name"] == "Beatriz"
    assert changed[oid(102)].updated_at > T0


async def test_deleted_and_detached_properties_are_reported_gone(env: Env) -> None:
    since = env.store.stamp()
    await env.connector.delete("connections", oid(101))
    await env.connector.operate("connections", oid(103), "cancel", {"disconnect_drop": False})
    gone = await collect(env, "connections", since=since, deleted=True)
    assert set(gone) == {oid(101), oid(103)} and all(r.deleted for r in gone.values())
    assert env.store.live("ftth-clients", oid(201)) is None  # withdrawal took the client and the drop too
    assert env.store.live("cables", oid(301)) is None


async def test_find_connections_by_client_code(env: Env) -> None:
    (found,) = await env.connector.find("connections", {"code": "bia"})
    assert found.id == oid(102) and found.fields["box_port"] == 10
    assert api_requests(env.faults, "GET", "/properties/client/bia")
    assert await env.connector.find("connections", {"code": "nobody"}) == []


async def test_cancel_notes_the_last_connection_unplugs_and_detaches(env: Env) -> None:
    await env.connector.operate("connections", oid(101), "cancel", {"disconnect_drop": True, "code": "ana"})
    prop = env.store.live("properties", oid(101))
    assert prop is not None and prop["client"] is None and prop["connections"] == []
    assert prop["observation"] == "client ana cancelled; last connection: splitter Splitter 1 port 3"
    splitter_row = env.store.live("splitters", S1)
    assert splitter_row is not None and splitter_row["connectables"]["output"][2] is None
    assert env.store.live("cables", oid(301)) is not None  # the drop stays
    assert env.store.live("ftth-clients", oid(201)) is None  # the client is removed, its code noted
    await env.connector.operate("connections", oid(101), "cancel", {"disconnect_drop": True})  # idempotent
    with pytest.raises(errors.ConfigError, match="no operation 'explode'"):
        await env.connector.operate("connections", oid(101), "explode", {})


async def test_power_and_port_writes_patch_the_property(env: Env) -> None:
    await env.connector.update("connections", oid(102), {"potency_read": -18.5})
    await env.connector.update("connections", oid(101), {"splitter_id": S1, "port": 5})
    records = await collect(env, "connections")
    assert records[oid(102)].fields["potency_read"] == -18.5
    assert (records[oid(101)].fields["port"], records[oid(101)].fields["box_port"]) == (5, 5)
    with pytest.raises(errors.ConfigError, match="not writable: code"):
        await env.connector.update("connections", oid(101), {"code": "x"})


# -- building splitters --------------------------------------------------------------------------------------------


async def test_building_splitters_are_named_after_their_building(env: Env) -> None:
    records = await collect(env, "building-splitters")
    (only,) = records.values()  # the network splitter is not a box
    assert only.id == SB1
    assert only.fields == {
        "id": SB1, "name": "Edifício Sol - Splitter 1", "splitter_name": "Splitter 1", "building_id": BUILDING,
        "building_name": "Edifício Sol", "project_id": P1, "project_name": "Centro", "capacity": 8,
        "lat": -27.6, "lng": -48.6, "olt_ip": "10.0.0.7", "olt_name": "OLT-1",
    }  # fmt: skip
    assert [r.id for r in await env.connector.fetch_by_ids("building-splitters", [SB1, S1])] == [SB1]


async def test_building_splitters_incremental_and_deleted(env: Env) -> None:
    since = env.store.stamp()
    assert await collect(env, "building-splitters", since=since) == {}
    env.store.update("buildings", BUILDING, {"name": "Edifício Lua"})
    changed = await collect(env, "building-splitters", since=since)
    assert changed[SB1].fields["name"] == "Edifício Lua - Splitter 1"
    later = env.store.stamp()
    env.store.soft_delete("splitters", SB1)
    gone = await collect(env, "building-splitters", since=later, deleted=True)
    assert list(gone) == [SB1] and gone[SB1].deleted


# -- reservations ----------------------------------------------------------------------------------------------------


async def test_a_reservation_counts_ports_across_the_box_splitters(env: Env) -> None:
    client_id = await env.connector.create(
        "reservations", {"code": "new", "name": "Nova", "implanted": False, "box_id": BOX, "port": 11}
    )
    client = env.store.live("ftth-clients", client_id)
    assert client is not None and (client["code"], client["implanted"]) == ("new", False)
    (prop,) = [p for p in env.store.all("properties") if p.get("client") == client_id]
    assert (prop["box"], prop["connections"][0]["id"], prop["connections"][0]["port"]) == (BOX, S2, 3)
    assert prop["coords"] == [-48.5, -27.5]  # the box's position when the login has none
    (found,) = await env.connector.find("reservations", {"code": "new"})
    assert found.id == client_id
    with pytest.raises(errors.TerminalRemoteError, match="has 12 service ports"):
        await env.connector.create("reservations", {"code": "far", "box_id": BOX, "port": 13})


async def test_a_reservation_without_port_takes_the_first_free_one(env: Env) -> None:
    on_box = await env.connector.create("reservations", {"code": "auto", "box_id": BOX, "port": 0})
    on_splitter = await env.connector.create(
        "reservations", {"code": "condo", "splitter_id": SB1, "box_id": "", "lat": -27.61, "lng": -48.61}
    )
    props = {p["client"]: p for p in env.store.all("properties") if p.get("client")}
    assert (props[on_box]["connections"][0]["id"], props[on_box]["connections"][0]["port"]) == (S1, 1)
    condo = props[on_splitter]
    assert (condo["box"], condo["connections"][0]["id"], condo["connections"][0]["port"]) == (
        BUILDING,
        SB1,
        1,
    )
    assert condo["coords"] == [-48.61, -27.61]
    posts = api_requests(env.faults, "POST", "/properties")
    assert posts[0].body["auto_connect"] is True and "port" not in posts[0].body
