"""OZmap sandbox over real HTTP: auth, listing (envelope, paging, filters, select, populate), generic CRUD."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.sandbox.test_ozmap_support import CENTRE, KEY, T0, Sandbox, W, make_store, oid, serve

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api() -> AsyncIterator[Sandbox]:
    async with serve() as sandbox:
        yield sandbox


def names(envelope: dict[str, Any]) -> list[str]:
    return [row["name"] for row in envelope["rows"]]


# -- auth ----------------------------------------------------------------------------------------------------


async def test_auth_accepts_raw_and_bearer_keys_only(api: Sandbox) -> None:
    for headers in ({"Authorization": KEY}, {"authorization": f"Bearer {KEY}"}):
        assert (await api.call("GET", "/api/v2/boxes", headers=headers))[0] == 200
    for headers in ({"Authorization": "wrong"}, {"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        status, body = await api.call("GET", "/api/v2/boxes", headers=headers)
        assert status == 401 and isinstance(body["message"], str)
    async with api.http.get("/api/v2/boxes", headers={"Authorization": "x"}) as response:
        assert response.status == 401 and response.content_type == "application/json"


async def test_login_returns_a_usable_key(api: Sandbox) -> None:
    body = await api.ok("POST", "/api/v2/users/login?type=API", json={"login": "api", "password": "secret"})
    assert body["authorization"] == KEY and body["user"]["id"] == W.user
    assert (await api.call("GET", "/api/v2/authenticated", headers={"Authorization": body["authorization"]}))[
        0
    ] == 200
    for wrong in ({"login": "api", "password": "nope"}, {"apiKey": KEY}, {}):
        status, error = await api.call(
            "POST", "/api/v2/users/login", json=wrong, headers={"Authorization": "true"}
        )
        assert status == 401 and "message" in error
    assert (await api.call("GET", "/api/v2/authenticated", headers={"Authorization": "nope"}))[0] == 401
    assert (await api.ok("GET", "/api/v2/authenticated/"))["user"]["username"] == "api"


# -- envelope and paging -----------------------------------------------------------------------------------------


async def test_envelope_default_limit_and_trailing_slash(api: Sandbox) -> None:
    for i in range(30):
        api.store.insert("poles", {"name": f"P{i:02d}", "project": W.project, "coords": [-48.5, -27.5]})
    body = await api.ok("GET", "/api/v2/poles/", json={})
    assert set(body) == {"total", "count", "start", "limit", "rows", "hasNextPage", "nextUrl"}
    assert (body["total"], body["count"], body["start"], body["limit"], body["hasNextPage"]) == (
        30,
        25,
        0,
        25,
        True,
    )
    assert names(await api.ok("GET", "/api/v2/poles?limit=-1"))[-1] == "P29"
    page3 = await api.ok("GET", "/api/v2/poles?limit=10&page=3")
    assert page3["start"] == 20 and names(page3)[0] == "P20" and page3["hasNextPage"] is False
    assert page3["nextUrl"] is None
    assert names(await api.ok("GET", "/api/v2/poles?limit=5&start=7"))[0] == "P07"
    one = await api.ok("GET", f"/api/v2/boxes/{W.box1}/")
    assert one["id"] == one["_id"] == W.box1 and one["lat"] == -27.5905
    for bad in ("limit=x", "page=0", "start=-1"):
        assert (await api.call("GET", f"/api/v2/poles?{bad}"))[0] == 400


async def test_paging_through_next_url_sdk_style_never_repeats_or_skips(api: Sandbox) -> None:
    for i in range(23):
        api.store.insert("poles", {"name": f"P{i:02d}", "project": W.project, "coords": [-48.5, -27.5]})
    flt = [{"property": "name", "operator": "like", "value": "^P"}]
    seen: list[str] = []
    params: dict[str, str] = {"limit": "5", "page": "1"}
    for _ in range(10):
        body = await api.ok("GET", "/api/v2/poles", params=params, json={"filter": flt})
        seen += [row["id"] for row in body["rows"]]
        assert body["total"] == 23
        if not body["hasNextPage"]:
            break
        # the SDK copies nextUrl's query, then overrides page/limit/select/populate with its own (page unset)
        params = dict(parse_qsl(urlsplit(body["nextUrl"]).query))
        params.pop("page", None)
        params["limit"] = "5"
    assert len(seen) == 23 == len(set(seen)) and seen == sorted(seen)


async def test_next_url_keeps_query_filter(api: Sandbox) -> None:
    flt = json.dumps([{"property": "kind", "operator": "=", "value": "Box"}])
    body = await api.ok("GET", "/api/v2/boxes", params={"filter": flt, "limit": "2"})
    follow = await api.ok("GET", body["nextUrl"])
    assert follow["start"] == 2 and follow["total"] == 5 and follow["count"] == 2
    ids = [r["id"] for r in body["rows"] + follow["rows"]]
    assert ids == sorted(ids) and len(set(ids)) == 4


async def test_filter_from_body_wins_over_query(api: Sandbox) -> None:
    query_filter = json.dumps([{"property": "name", "operator": "=", "value": "CTO-2"}])
    body_filter = [{"property": "name", "operator": "=", "value": "CTO-1"}]
    assert names(await api.ok("GET", "/api/v2/boxes", params={"filter": query_filter})) == ["CTO-2"]
    got = await api.ok("GET", "/api/v2/boxes", params={"filter": query_filter}, json={"filter": body_filter})
    assert names(got) == ["CTO-1"]
    sort = json.dumps([{"property": "name", "direction": -1}])
    assert names(await api.ok("GET", "/api/v2/boxes", params={"sort": sort}))[0] == "CTO-far"
    assert names(await api.ok("GET", "/api/v2/boxes?sort=-name"))[-1] == "CE-3"
    assert (await api.call("GET", "/api/v2/boxes", params={"filter": "[oops"}))[0] == 400
    assert (
        await api.call("GET", "/api/v2/boxes", data=b"{nope", headers={"Content-Type": "application/json"})
    )[0] == 400


# -- operators -------------------------------------------------------------------------------------------------

POLYGON = {
    "type": "Polygon",
    "coordinates": [[[-48.5510, -27.5915], [-48.5495, -27.5915], [-48.5495, -27.5895], [-48.5510, -27.5895]]],
}


ALL = ["CTO-1", "CTO-2", "CE-3", "CTO-4", "CTO-far"]


def cond(path: str, op: str, value: Any) -> dict[str, Any]:
    return {"property": path, "operator": op, "value": value}


OPERATOR_CASES: list[tuple[str, list[Any], list[str]]] = [
    ("eq", [cond("name", "=", "CTO-1")], ["CTO-1"]),
    ("eq id", [cond("id", "=", W.box2)], ["CTO-2"]),
    ("eq cast bool", [cond("implanted", "=", "false")], ["CTO-2"]),
    ("eq cast number", [cond("hierarchyLevel", "=", "3")], ALL),
    ("eq array element", [cond("tags", "=", W.tag)], ["CTO-1"]),
    ("eq null matches missing", [cond("color", "=", None)], ALL),
    ("ne", [cond("implanted", "!=", True)], ["CTO-2"]),
    ("lt", [cond("lat", "<", -27.6)], ["CTO-far"]),
    ("lte", [cond("lat", "<=", -27.591)], ["CTO-4", "CTO-far"]),
    ("gt string", [cond("name", ">", "CTO-3")], ["CTO-4", "CTO-far"]),
    ("gte date any spelling", [cond("createdAt", ">=", "2024-12-31T21:00:00-03:00")], ALL),
    ("gt date", [cond("updatedAt", ">", T0)], []),
    ("in", [cond("id", "in", [W.box1, W.box3, "missing"])], ["CTO-1", "CE-3"]),
    ("notin", [cond("name", "notin", ["CTO-1", "CTO-2", "CTO-far"])], ["CE-3", "CTO-4"]),
    ("like case-insensitive", [cond("name", "like", "cto-f")], ["CTO-far"]),
    ("exists", [cond("color", "exists", False), cond("pole", "exists", True)], ALL),
    ("exists false", [cond("pole", "exists", False)], []),
    ("all", [cond("tags", "all", [W.tag])], ["CTO-1"]),
    ("dotted", [cond("coords.1", "<", -27.6)], ["CTO-far"]),
    ("near sorted by distance", [cond("coords", "near", {**CENTRE, "radius": 120})], ["CTO-2", "CTO-1", "CTO-4"]),
    ("near strings", [cond("coords", "near", {"lat": "-27.59", "lng": "-48.55", "radius": "10"})], []),
    ("near coords form", [cond("coords", "near", {"coords": [-48.55, -27.59], "radius": 60})], ["CTO-2", "CTO-1"]),
    ("within polygon", [cond("coords", "within", POLYGON)], ["CTO-1", "CTO-2", "CTO-4"]),
    ("within project", [cond("coords", "within", {"id": W.project, "model": "project"})], ["CTO-1", "CTO-2", "CE-3", "CTO-4"]),
    ("or group", [[cond("name", "=", "CTO-1"), cond("name", "=", "CE-3")]], ["CTO-1", "CE-3"]),
    ("and + group", [cond("implanted", "=", True), [cond("name", "=", "CTO-2"), cond("name", "=", "CE-3")]], ["CE-3"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "flt", "expected"), OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
async def test_operator(api: Sandbox, case: str, flt: list[Any], expected: list[str]) -> None:
    body = await api.ok("GET", "/api/v2/boxes?limit=-1", json={"filter": flt})
    got = names(body)
    if "near" in case:
        assert got == expected
    else:
        assert sorted(got) == sorted(expected)
        assert [r["id"] for r in body["rows"]] == sorted(r["id"] for r in body["rows"])


async def test_point_intersect_and_unknown_operator(api: Sandbox) -> None:
    inside = [cond("area", "point-intersect", {"lat": -27.59, "lng": -48.55})]
    assert [
        r["name"] for r in (await api.ok("GET", "/api/v2/projects", json={"filter": inside}))["rows"]
    ] == ["Chicago"]
    outside = [cond("area", "point-intersect", {"latitude": -20.0, "longitude": -40.0})]
    assert (await api.ok("GET", "/api/v2/projects", json={"filter": outside}))["total"] == 0
    status, body = await api.call("GET", "/api/v2/boxes", json={"filter": [cond("name", "eq", "CTO-1")]})
    assert status == 400 and "operator" in body["message"]


async def test_dotted_paths_through_arrays_and_objects(api: Sandbox) -> None:
    flt = [cond("connectables.output", "=", "f-n3"), cond("ratio.output", ">=", 4)]
    assert [r["id"] for r in (await api.ok("GET", "/api/v2/splitters", json={"filter": flt}))["rows"]] == [
        W.net1
    ]
    flt = [cond("ports.blocked", "=", True)]
    assert [r["id"] for r in (await api.ok("GET", "/api/v2/splitters", json={"filter": flt}))["rows"]] == [
        W.svc1
    ]


# -- select / populate -------------------------------------------------------------------------------------------


async def test_select_keeps_id_kind_and_nulls_lat_lng(api: Sandbox) -> None:
    row = (await api.ok("GET", "/api/v2/boxes?select=name&limit=1"))["rows"][0]
    assert row == {"id": W.box1, "kind": "Box", "name": "CTO-1", "lat": None, "lng": None}
    row = (await api.ok("GET", "/api/v2/boxes?select=name coords&limit=1"))["rows"][0]
    assert (row["lat"], row["lng"], row["coords"]) == (-27.5905, -48.55, [-48.55, -27.5905])
    row = (await api.ok("GET", "/api/v2/boxes?select=-tags,-cables&limit=1"))["rows"][0]
    assert "tags" not in row and "cables" not in row and row["name"] == "CTO-1"
    one = await api.ok("GET", f"/api/v2/splitters/{W.svc1}?select=name ratio.output")
    assert one == {"id": W.svc1, "kind": "Splitter", "name": "SVC-1", "ratio": {"output": 8}}


async def test_populate_reference_fields(api: Sandbox) -> None:
    row = (await api.ok("GET", "/api/v2/boxes?populate=project&populate[]=tags&limit=1"))["rows"][0]
    assert row["project"]["name"] == "Chicago" and row["tags"][0]["name"] == "outage"
    row = await api.ok("GET", f"/api/v2/splitters/{W.svc1}?populate=parent.project")
    assert row["parent"]["name"] == "CTO-1" and row["parent"]["project"]["id"] == W.project
    row = await api.ok("GET", f"/api/v2/slots/{W.slot}?populate=parent,connectables")
    assert row["parent"]["ip"] == "10.0.0.7" and row["connectables"][0]["id"] == W.pon
    row = (await api.ok("GET", "/api/v2/boxes?limit=1", json={"populate": "boxType"}))["rows"][0]
    assert row["boxType"]["prefix"] == "CTO"


# -- CRUD, incremental sync, deletions ---------------------------------------------------------------------------


async def test_create_returns_201_full_record(api: Sandbox) -> None:
    box = {"project": W.project, "coords": [-48.551, -27.591], "hierarchyLevel": 3, "boxType": W.box_type}
    created = await api.ok("POST", "/api/v2/boxes", 201, json={**box, "implanted": True, "id": "ignored"})
    assert created["id"] == created["_id"] != "ignored" and len(created["id"]) == 24 and created["__v"] == 0
    assert created["kind"] == "Box" and created["name"].startswith("CTO-") and created["draft"] is False
    assert created["creatorData"] == {"id": W.user, "name": "api", "username": "api"}
    assert created["createdAt"] == created["updatedAt"] and created["createdAt"].startswith(
        "2025-06-01T12:00:00."
    )
    assert (created["lat"], created["lng"]) == (-27.591, -48.551)
    assert (await api.ok("GET", f"/api/v2/boxes/{created['id']}"))["name"] == created["name"]
    status, error = await api.call("POST", "/api/v2/boxes", json=box)
    assert status == 400 and "implanted" in error["message"]
    status, error = await api.call(
        "POST", "/api/v2/boxes", json={**box, "implanted": True, "coords": [1, 200]}
    )
    assert status == 400 and "coords" in error["message"]
    assert (await api.call("POST", "/api/v2/boxes", json={**box, "implanted": True, "project": oid(999)}))[
        0
    ] == 400
    assert (await api.call("POST", "/api/v2/boxes", json=[1, 2]))[0] == 400
    status, error = await api.call("GET", "/api/v2/no-such-things")
    assert status == 404 and "message" in error


async def test_patch_is_204_and_bumps_updated_at_for_incremental_sync(api: Sandbox) -> None:
    cursor = (await api.ok("GET", f"/api/v2/boxes/{W.box3}"))["updatedAt"]
    assert (
        await api.call("PATCH", f"/api/v2/boxes/{W.box3}", json={"name": "CE-3b", "project": oid(9)})
    ) == (204, None)
    assert (await api.call("PATCH", f"/api/v2/boxes/{W.box1}", json={"observation": "x"}))[0] == 204
    flt = [cond("updatedAt", ">", cursor)]
    sort = [{"property": "updatedAt", "direction": 1}]
    body = await api.ok("GET", "/api/v2/boxes", json={"filter": flt, "sort": sort})
    assert names(body) == ["CE-3b", "CTO-1"] and body["rows"][0]["project"] == W.project
    assert body["rows"][0]["updatedAt"] < body["rows"][1]["updatedAt"]
    newest = body["rows"][1]["updatedAt"]
    assert (await api.ok("GET", "/api/v2/boxes", json={"filter": [cond("updatedAt", ">", newest)]}))[
        "total"
    ] == 0
    assert (await api.call("PATCH", f"/api/v2/boxes/{oid(999)}", json={"name": "x"}))[0] == 404
    assert (await api.call("PATCH", f"/api/v2/boxes/{W.box1}", json={"coords": "x"}))[0] == 400


async def test_delete_is_soft_and_listed_by_deleted_at(api: Sandbox) -> None:
    before = api.store.stamp()
    assert (await api.call("DELETE", f"/api/v2/boxes/{W.box3}")) == (204, None)
    assert (await api.call("GET", f"/api/v2/boxes/{W.box3}"))[0] == 404
    assert (await api.call("DELETE", f"/api/v2/boxes/{W.box3}"))[0] == 404
    assert "CE-3" not in names(await api.ok("GET", "/api/v2/boxes"))
    gone = await api.ok("GET", "/api/v2/boxes", json={"filter": [cond("deletedAt", ">=", before)]})
    assert names(gone) == ["CE-3"] and gone["rows"][0]["deletedAt"] == gone["rows"][0]["updatedAt"]
    exists = await api.ok("GET", "/api/v2/boxes", json={"filter": [cond("deletedAt", "exists", True)]})
    assert names(exists) == ["CE-3"]
    record = api.store.get("boxes", W.box3)
    assert record is not None and record["deletedAt"] > before


async def test_batch_update_applies_to_every_match(api: Sandbox) -> None:
    flt = [cond("id", "in", [W.box1, W.box2])]
    assert (
        await api.call(
            "POST", "/api/v2/boxes/batch-update", json={"filter": flt, "update": {"certified": True}}
        )
    ) == (
        204,
        None,
    )
    rows = (await api.ok("GET", "/api/v2/boxes", json={"filter": [cond("certified", "=", True)]}))["rows"]
    assert sorted(r["id"] for r in rows) == [W.box1, W.box2] and all(r["updatedAt"] > T0 for r in rows)
    for bad in ({"filter": flt}, {"update": {"x": 1}}, {"filter": [cond("x", "zz", 1)], "update": {"x": 1}}):
        status, error = await api.call("POST", "/api/v2/boxes/batch-update", json=bad)
        assert status == 400 and error["message"]


async def test_tags_pendencies_prospects_crud(api: Sandbox) -> None:
    tag = await api.ok("POST", "/api/v2/tags", 201, json={"name": "maintenance", "allowedTypes": ["box"]})
    assert (await api.call("PATCH", f"/api/v2/tags/{tag['id']}", json={"name": "maint"}))[0] == 204
    assert (await api.ok("GET", f"/api/v2/tags/{tag['id']}"))["name"] == "maint"
    assert (await api.call("DELETE", f"/api/v2/tags/{tag['id']}"))[0] == 204
    pendency = {
        "owner": W.user,
        "project": W.project,
        "pendencyType": W.pendency_type,
        "coords": [-48.55, -27.59],
    }
    created = await api.ok("POST", "/api/v2/pendencies", 201, json={**pendency, "name": "Fix drop"})
    assert created["solved"] is False and created["lat"] == -27.59 and created["responsibles"] == []
    assert (await api.call("POST", "/api/v2/pendencies", json={"name": "no owner"}))[0] == 400
    populated = await api.ok("GET", f"/api/v2/pendencies/{created['id']}?populate=owner pendencyType")
    assert populated["owner"]["username"] == "api" and populated["pendencyType"]["name"] == "Fix"
    prospect = await api.ok("POST", "/api/v2/prospects", 201, json={"name": "Lead", "coords": [-48.5, -27.5]})
    assert (await api.call("PATCH", f"/api/v2/prospects/{prospect['id']}", json={"viable": False}))[0] == 204
    assert (await api.ok("GET", "/api/v2/prospects"))["rows"][0]["viable"] is False
    assert (await api.call("DELETE", f"/api/v2/prospects/{prospect['id']}"))[0] == 204
    assert (await api.ok("GET", "/api/v2/prospects"))["total"] == 0


async def test_store_survives_many_sessions() -> None:
    store = make_store()
    async with serve(store) as first:
        await first.ok("PATCH", f"/api/v2/boxes/{W.box1}", 204, json={"name": "kept"})
    async with serve(store) as second:
        assert (await second.ok("GET", f"/api/v2/boxes/{W.box1}"))["name"] == "kept"
