"""OzmapConnector against the OZmap sandbox over real HTTP (one fake server of our own for a lying total)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from reconciler import errors
from reconciler.connectors.ozmap.connector import OzmapConnector
from reconciler.model import Record
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ozmap import DEFAULT_API_KEY, OzmapStore, create_app
from tests.connectors.conftest import add_fault, api_requests, system, url_of

pytestmark = pytest.mark.anyio


def oid(n: int) -> str:
    return f"{n:024x}"


P1, P2 = oid(1), oid(2)
OLT1, OLT2, SLOT1, SLOT2, PON1, PON2 = oid(11), oid(12), oid(21), oid(22), oid(31), oid(32)
BOX_A, BOX_B, BOX_C, BOX_D, BOX_E, BOX_CE = oid(41), oid(42), oid(43), oid(44), oid(45), oid(46)


def box(rid: str, name: str, project: str, day: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": rid, "kind": "Box", "name": name, "project": project, "implanted": True, "draft": False,
        "coords": [-48.55, -27.59], "observation": f"obs {name}", "address": f"Rua {name}",
        "createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": f"2025-03-0{day}T10:00:00.000Z", **extra,
    }  # fmt: skip


def splitter(rid: int, parent: str, name: str, *, drop: bool, out: int, inputs: list[str | None],
             outputs: list[str | None] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": oid(rid), "kind": "Splitter", "parent": parent, "name": name, "isDrop": drop,
        "ratio": {"input": 1, "output": out},
        "connectables": {"input": inputs, "output": outputs if outputs is not None else [None] * out},
    }  # fmt: skip


def load(store: OzmapStore) -> None:
    store.load("projects", [{"id": P1, "name": "Centro"}, {"id": P2, "name": "Trindade"}])
    store.load("olts", [
        {"id": OLT1, "name": "OLT-FH-3", "ip": "10.0.0.7", "connectables": [SLOT1]},
        {"id": OLT2, "name": "OLT-HW-1", "ip": "10.0.0.8", "connectables": []},
    ])  # fmt: skip
    store.load("slots", [
        {"id": SLOT1, "parent": OLT1, "connectables": [PON1]},
        {"id": SLOT2, "parent": OLT2, "olt": OLT2, "connectables": [PON2]},  # OLT2 lists no slots: parent wins
    ])  # fmt: skip
    store.load("pons", [
        {"id": PON1, "parent": SLOT1, "connectables": ["fib-pon1"], "potency": 3},
        {"id": PON2, "connectables": ["fib-pon2"], "potency": 3},  # no parent: found through slot connectables
    ])  # fmt: skip
    store.load("boxes", [
        box(BOX_CE, "CE-01", P1, 1),
        box(BOX_A, "CTO-A", P1, 2),
        box(BOX_B, "CTO-B", P2, 3),
        box(BOX_C, "CTO-C", P2, 4),
        box(BOX_D, "CTO-D", P1, 5, implanted=False),
        box(BOX_E, "CTO-E", P1, 5, deletedAt="2025-03-06T08:00:00.000Z"),
    ])  # fmt: skip
    store.load("splitters", [
        # network splitter in the CE, fed by PON1
        splitter(51, BOX_CE, "Splitter CE", drop=False, out=2, inputs=["fib-pon1"], outputs=["fib-n1", "fib-n2"]),
        # box A: "Splitter 1" sorts first and is fed through the network splitter; "Splitter 2" is not traceable
        splitter(52, BOX_A, "Splitter 2", drop=True, out=8, inputs=["fib-unknown"]),
        splitter(53, BOX_A, "Splitter 1", drop=True, out=16, inputs=["fib-n1"]),
        # box B: straight from PON2
        splitter(54, BOX_B, "Splitter 1", drop=True, out=8, inputs=["fib-pon2"]),
        # box D: only a network splitter, so no service capacity
        splitter(55, BOX_D, "Splitter N", drop=False, out=2, inputs=[None]),
    ])  # fmt: skip


class Ozmap(NamedTuple):
    store: OzmapStore
    faults: Faults
    url: str
    connector: OzmapConnector


async def _ozmap(session: aiohttp.ClientSession, *, key: str = DEFAULT_API_KEY, suffix: str = "",
                 **http: Any) -> AsyncIterator[Ozmap]:  # fmt: skip
    store = OzmapStore()
    load(store)
    faults = Faults()
    async with TestServer(create_app(store, faults=faults), host="127.0.0.1") as server:
        url = url_of(server)
        yield Ozmap(store, faults, url, OzmapConnector(system("ozmap", url + suffix, key, **http), session))


@pytest.fixture
async def oz(session: aiohttp.ClientSession) -> AsyncIterator[Ozmap]:
    async for env in _ozmap(session, page_size=2):
        yield env


async def collect(oz: Ozmap, collection: str, **kwargs: Any) -> list[Record]:
    return [r async for page in oz.connector.stream(collection, **kwargs) for r in page]


def by_id(records: list[Record]) -> dict[str, Record]:
    return {r.id: r for r in records}


# -- the joined boxes view ------------------------------------------------------------------------------------


async def test_boxes_view_joins_projects_service_splitters_and_the_feeding_olt(oz: Ozmap) -> None:
    records = by_id(await collect(oz, "boxes"))
    assert set(records) == {BOX_CE, BOX_A, BOX_B, BOX_C, BOX_D}  # the soft-deleted box is not listed
    assert records[BOX_A].fields == {
        "id": BOX_A, "name": "CTO-A", "project_id": P1, "project_name": "Centro", "implanted": True,
        "draft": False, "lat": -27.59, "lng": -48.55, "observation": "obs CTO-A", "address": "Rua CTO-A",
        "service_splitters": 2, "service_ports": 24, "olt_ip": "10.0.0.7", "olt_name": "OLT-FH-3",
        "olt_id": OLT1,
    }  # fmt: skip
    assert records[BOX_A].updated_at == "2025-03-02T10:00:00.000Z" and not records[BOX_A].deleted
    b = records[BOX_B].fields
    assert (b["project_name"], b["service_splitters"], b["service_ports"], b["olt_ip"], b["olt_name"]) == (
        "Trindade",
        1,
        8,
        "10.0.0.8",
        "OLT-HW-1",
    )
    for plain in (BOX_C, BOX_D, BOX_CE):
        f = records[plain].fields
        assert (f["service_splitters"], f["service_ports"], f["olt_ip"], f["olt_name"]) == (0, 0, None, None)
    assert records[BOX_D].fields["implanted"] is False


async def test_boxes_pages_use_page_and_limit_and_never_follow_next_url(oz: Ozmap) -> None:
    await collect(oz, "boxes")
    pages = api_requests(oz.faults, "GET", "/api/v2/boxes")
    assert sorted(e.query["page"] for e in pages) == ["1", "2", "3"]
    assert all(e.query["limit"] == "2" and "start" not in e.query for e in pages)
    splitter_calls = api_requests(oz.faults, "GET", "/api/v2/splitters")
    service = [e for e in splitter_calls if '"parent"' in e.query.get("filter", "")]
    assert len([e for e in service if e.query["page"] == "1"]) == 3  # one listing per page of boxes
    assert all('"isDrop","operator":"=","value":true' in e.query["filter"] for e in service)
    for name in ("projects", "pons", "slots", "olts"):  # listed once per stream, not once per page
        assert len(api_requests(oz.faults, "GET", f"/api/v2/{name}")) == 1


async def test_incremental_boxes_since_cursor_sorted_by_update(oz: Ozmap) -> None:
    records = await collect(oz, "boxes", since="2025-03-03T00:00:00.000Z")
    assert [r.id for r in records] == [BOX_B, BOX_C, BOX_D]
    first = api_requests(oz.faults, "GET", "/api/v2/boxes")[0].query
    assert msgspec.json.decode(first["filter"]) == [
        {"property": "updatedAt", "operator": ">=", "value": "2025-03-03T00:00:00.000Z"}
    ]
    assert msgspec.json.decode(first["sort"]) == [
        {"property": "updatedAt", "direction": 1}, {"property": "id", "direction": 1}
    ]  # fmt: skip


async def test_edited_box_shows_up_in_the_next_incremental_read(oz: Ozmap) -> None:
    cursor = max(r.updated_at for r in await collect(oz, "boxes"))
    oz.store.update("boxes", BOX_C, {"name": "CTO-C2"})
    changed = await collect(oz, "boxes", since=cursor)
    assert [(r.id, r.fields["name"]) for r in changed if r.updated_at > cursor] == [(BOX_C, "CTO-C2")]


async def test_deleted_boxes_since_cursor(oz: Ozmap) -> None:
    [gone] = await collect(oz, "boxes", since="2025-03-01T00:00:00.000Z", deleted=True)
    assert (gone.id, gone.deleted, gone.updated_at) == (BOX_E, True, "2025-03-06T08:00:00.000Z")
    assert gone.fields["name"] == "CTO-E"
    assert await collect(oz, "boxes", since="2025-03-07T00:00:00.000Z", deleted=True) == []
    assert [r.id for r in await collect(oz, "boxes", deleted=True)] == [BOX_E]  # no cursor: every deleted box
    assert not api_requests(oz.faults, "GET", "/api/v2/splitters")  # no join for deleted boxes


async def test_fetch_by_ids_and_find_go_through_the_join(oz: Ozmap) -> None:
    found = by_id(await oz.connector.fetch_by_ids("boxes", [BOX_A, BOX_C, oid(999)]))
    assert set(found) == {BOX_A, BOX_C} and found[BOX_A].fields["olt_ip"] == "10.0.0.7"
    oz.store.load("boxes", [box(oid(47), "cto-a", P1, 5)])
    [exact] = await oz.connector.find("boxes", {"name": "CTO-A", "project_name": "Centro"})
    assert exact.id == BOX_A
    assert await oz.connector.find("boxes", {"name": "CTO-A", "project_name": "Trindade"}) == []
    with pytest.raises(errors.ConfigError):
        await oz.connector.find("boxes", {"colour": "red"})


async def test_base_url_with_api_prefix_is_accepted(session: aiohttp.ClientSession) -> None:
    async for env in _ozmap(session, suffix="/api/v2/"):
        assert {r.fields["name"] for r in await collect(env, "projects")} == {"Centro", "Trindade"}
        assert all(e.path == "/api/v2/projects" for e in api_requests(env.faults))


async def test_plain_views(oz: Ozmap) -> None:
    olts = by_id(await collect(oz, "olts"))
    assert olts[OLT1].fields == {"id": OLT1, "name": "OLT-FH-3", "ip": "10.0.0.7"}
    assert {r.fields["name"] for r in await collect(oz, "projects")} == {"Centro", "Trindade"}


async def test_boxes_are_read_only(oz: Ozmap) -> None:
    with pytest.raises(errors.ConfigError, match="read-only"):
        await oz.connector.create("boxes", {"name": "X"})
    assert oz.connector.catalog()["boxes"].writable == frozenset()


# -- writes (clients) ------------------------------------------------------------------------------------------


async def test_client_create_patch_and_delete(oz: Ozmap) -> None:
    new_id = await oz.connector.create("clients", {"code": "ixc-4711", "name": "Joana", "implanted": False})
    assert oz.store.get("ftth-clients", new_id) is not None
    await oz.connector.update("clients", new_id, {"onu_serial_number": "ZTEGC0FFEE01", "implanted": True})
    [patch] = api_requests(oz.faults, "PATCH")
    assert patch.body == {
        "implanted": True,
        "onu": {"serial_number": "ZTEGC0FFEE01", "mac_address": "", "user_PPPoE": ""},
    }
    [client] = await oz.connector.find("clients", {"code": "ixc-4711"})
    assert client.fields["onu_serial_number"] == "ZTEGC0FFEE01" and client.fields["implanted"] is True
    await oz.connector.delete("clients", new_id)
    [gone] = await collect(oz, "clients", since="2000-01-01T00:00:00.000Z", deleted=True)
    assert gone.id == new_id and gone.deleted


async def test_create_refusal_is_terminal(oz: Ozmap) -> None:
    with pytest.raises(errors.TerminalRemoteError) as caught:
        await oz.connector.create("clients", {"name": "no code"})
    assert caught.value.status == 400 and "POST /api/v2/ftth-clients → 400" in str(caught.value)


async def test_create_is_not_retried_after_a_reset(oz: Ozmap) -> None:
    add_fault(oz.faults, "reset", method="POST", count=1)
    with pytest.raises(errors.TransientRemoteError, match="connection reset"):
        await oz.connector.create("clients", {"code": "ixc-1"})
    assert len(api_requests(oz.faults, "POST")) == 1


# -- failures ---------------------------------------------------------------------------------------------------


async def test_list_retries_on_503_and_429(oz: Ozmap) -> None:
    add_fault(oz.faults, "error", status=503, route="/api/v2/projects", count=1)
    add_fault(oz.faults, "429", seconds=0, route="/api/v2/projects", count=1)
    assert len(await collect(oz, "projects")) == 2
    assert [e.status for e in api_requests(oz.faults)] == [503, 429, 200]


async def test_failure_mid_stream_is_snapshot_incomplete(oz: Ozmap) -> None:
    stream = oz.connector.stream("boxes")
    first = await stream.__anext__()
    assert len(first) == 2
    add_fault(oz.faults, "error", status=503, route="/api/v2/boxes")  # every later page fails, retries too
    with pytest.raises(errors.SnapshotIncomplete, match="page 2 failed"):
        async for _ in stream:
            pass


async def test_bad_key_is_an_auth_error_without_the_key(session: aiohttp.ClientSession) -> None:
    key = "eyJhbGciOiJIUzI1NiJ9.not-a-valid-key.sig"
    async for env in _ozmap(session, key=key):
        with pytest.raises(errors.AuthError) as caught:
            await collect(env, "projects")
        assert key not in str(caught.value) and caught.value.status == 401
        assert len(api_requests(env.faults)) == 1


async def test_server_announcing_more_rows_than_it_serves(session: aiohttp.ClientSession) -> None:
    rows = [{"id": oid(i), "name": f"P{i}"} for i in range(3)]

    async def projects(request: web.Request) -> web.Response:  # a server whose total lies
        page, limit = int(request.query["page"]), int(request.query["limit"])
        chunk = rows[(page - 1) * limit : page * limit]
        return web.json_response({"total": 5, "count": len(chunk), "rows": chunk})

    app = web.Application()
    app.router.add_get("/api/v2/projects", projects)
    async with TestServer(app, host="127.0.0.1") as server:
        connector = OzmapConnector(system("ozmap", url_of(server), "k", page_size=2), session)
        with pytest.raises(errors.SnapshotIncomplete):
            await collect(Ozmap(OzmapStore(), Faults(), "", connector), "projects")
