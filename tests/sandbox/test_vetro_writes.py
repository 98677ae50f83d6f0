"""Vetro sandbox writes (create, merge-patch, delete, validation, batches), drift knobs and the control API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.sandbox.test_vetro_support import READ_ONLY, Sandbox, serve, sl, vid

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api() -> AsyncIterator[Sandbox]:
    async with serve() as sandbox:
        yield sandbox


def new_location(n: int, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "x-vetro": {"plan_id": 112, "layer_id": 26, "vetro_id": "ignored", "feature_id": 1},
        "geometry": {"type": "Point", "coordinates": [-72.5761, 44.2598]},
        "properties": {
            "ID": f"SL-NEW-{n}",
            "Street Address": "120 Maple St",
            "Building Type": "MDU",
            **props,
        },
    }


async def test_create_assigns_server_owned_fields_in_request_order(api: Sandbox) -> None:
    created = await api.result("POST", "/v2/features", json={"features": [new_location(1), new_location(2)]})
    assert [f["properties"]["ID"] for f in created] == ["SL-NEW-1", "SL-NEW-2"]
    first, second = (f["x-vetro"] for f in created)
    assert first["vetro_id"] != "ignored" and len(first["vetro_id"]) == 36
    assert second["feature_id"] == first["feature_id"] + 1 > 5000
    assert first["created_time"] == first["last_edited_time"] < second["last_edited_time"]
    assert first["project_id"] == 9
    stored = await api.result("GET", f"/v2/features/{first['vetro_id']}")
    assert stored == [created[0]]


async def test_patch_merges_properties_null_clears_and_bumps_the_time(api: Sandbox) -> None:
    before = (await api.result("GET", f"/v2/features/{vid(1)}"))[0]
    patch = {
        "type": "Feature",
        "x-vetro": {"vetro_id": vid(1), "last_edited_time": "1999-01-01T00:00:00Z"},
        "properties": {"COS Object Status": "In deployment", "COS Drop Installed": "No", "Status": None},
    }
    [after] = await api.result("PATCH", "/v2/features", json={"features": [patch]})
    props = after["properties"]
    assert props["COS Object Status"] == "In deployment" and props["Status"] is None
    assert props["City"] == "Montpelier" and after["geometry"] == before["geometry"]
    assert after["x-vetro"]["last_edited_time"] > before["x-vetro"]["last_edited_time"]
    moved = {"x-vetro": {"vetro_id": vid(1)}, "geometry": {"type": "Point", "coordinates": [-72.1, 44.1]}}
    [again] = await api.result("PATCH", "/v2/features", json={"features": [moved]})
    assert again["geometry"]["coordinates"] == [-72.1, 44.1] and again["properties"] == props


async def test_batches_are_all_or_nothing_with_per_index_errors(api: Sandbox) -> None:
    good = {"x-vetro": {"vetro_id": vid(2)}, "properties": {"COS Reachable": "Yes"}}
    items = [
        good,
        {"x-vetro": {"vetro_id": vid(404)}, "properties": {}},
        {"x-vetro": {"vetro_id": vid(3)}, "properties": {"Building Type": "Castle"}},
        {"x-vetro": {"vetro_id": vid(4)}, "properties": {"Not An Attribute": "x"}},
        {
            "x-vetro": {"vetro_id": vid(5)},
            "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
        },
    ]
    status, body = await api.call("PATCH", "/v2/features", json={"features": items})
    assert status == 400 and body["success"] is False and body["message"] == "validation failed"
    assert [e["index"] for e in body["errors"]] == [1, 2, 3, 4]
    assert "Castle" in body["errors"][1]["message"]
    assert "COS Reachable" not in api.store.features[vid(2)]["properties"]
    bad_creates = [
        new_location(3),
        {**new_location(4), "x-vetro": {"plan_id": 999, "layer_id": 26}},
        {**new_location(5), "x-vetro": {"plan_id": 112, "layer_id": 77}},
        {**new_location(6), "geometry": {"type": "Point", "coordinates": [44.26, -172.57]}},
        {**new_location(7), "geometry": None},
    ]
    status, body = await api.call("POST", "/v2/features", json={"features": bad_creates})
    assert status == 400 and [e["index"] for e in body["errors"]] == [1, 2, 3, 4]
    assert len(api.store.features) == 8


async def test_malformed_and_form_bodies_are_refused(api: Sandbox) -> None:
    assert (
        await api.call("PATCH", "/v2/features", data=b"{nope", headers={"Content-Type": "application/json"})
    )[0] == 400
    assert (await api.call("POST", "/v2/features", data={"features": "x"}))[0] == 400
    assert (await api.call("POST", "/v2/features", json={"items": []}))[0] == 400


async def test_read_only_token_cannot_write(api: Sandbox) -> None:
    patch = {"x-vetro": {"vetro_id": vid(1)}, "properties": {"COS Reachable": "Yes"}}
    status, body = await api.call("PATCH", "/v2/features", json={"features": [patch]}, token=READ_ONLY)
    assert status == 403 and body["success"] is False
    assert (await api.call("POST", "/v2/features/delete", json=[vid(1)], token=READ_ONLY))[0] == 403
    assert (await api.call("GET", f"/v2/features/{vid(1)}", token=READ_ONLY))[0] == 200


async def test_delete_removes_features_from_reads(api: Sandbox) -> None:
    assert await api.result("POST", "/v2/features/delete", json=[vid(1), vid(2)]) is True
    assert (await api.call("GET", f"/v2/features/{vid(1)}"))[0] == 404
    remaining = await api.result("GET", "/v2/features/query?layer_ids=26")
    assert vid(1) not in {f["x-vetro"]["vetro_id"] for f in remaining} and len(remaining) == 5
    assert (await api.call("POST", "/v2/features/delete", json=[vid(1)]))[0] == 404
    assert (await api.call("POST", "/v2/features/delete", json={"ids": [vid(3)]}))[0] == 400


async def test_drift_knobs_make_offset_paging_skip_or_repeat(api: Sandbox) -> None:
    api.store.knobs.drift_delete = 1
    first = await api.result("GET", "/v2/features/query?layer_ids=26&limit=3")
    second = await api.result("GET", "/v2/features/query?layer_ids=26&offset=3&limit=3")
    got = [f["properties"]["ID"] for f in first + second]
    assert got == ["SL-0001", "SL-0002", "SL-0003", "SL-0005", "SL-0006", "SL-0007"]  # SL-0004 skipped
    api.store.knobs.drift_delete = 0
    api.store.load("features", [sl(1), sl(2)])  # the two deleted after each page
    api.store.knobs.drift_touch = 1
    page = await api.result("GET", "/v2/features/query?layer_ids=26&order=last_edited_time:asc&limit=2")
    tail = await api.result("GET", "/v2/features/query?layer_ids=26&order=last_edited_time:asc&offset=2")
    got = [f["properties"]["ID"] for f in page + tail]  # SL-0001 moved to the end: SL-0003 skipped
    assert got == ["SL-0001", "SL-0002", "SL-0004", "SL-0005", "SL-0006", "SL-0007", "SL-0001"]
    api.store.knobs.drift_touch = 0
    api.store.knobs.drift_insert = 2
    await api.result("GET", "/v2/features/query?layer_ids=26&limit=1")
    assert sum(f["properties"]["ID"].startswith("DRIFT-") for f in api.store.all("features")) == 2


# -- control API ---------------------------------------------------------------------------------------------


async def test_control_store_routes_edit_like_a_user(api: Sandbox) -> None:
    listed = await api.ok("GET", "/_sandbox/store/features", token=None)
    assert len(listed) == 8
    edited = await api.ok(
        "PATCH", f"/_sandbox/store/features/{vid(3)}", json={"properties": {"Anything": 1}}, token=None
    )
    assert edited["properties"]["Anything"] == 1
    assert edited["x-vetro"]["last_edited_time"] > listed[2]["x-vetro"]["last_edited_time"]
    assert (await api.call("PATCH", f"/_sandbox/store/features/{vid(3)}", json={"x-vetro": {}}))[0] == 400
    status, created = await api.call("POST", "/_sandbox/store/features", json=new_location(9), token=None)
    assert status == 201 and created["properties"]["ID"] == "SL-NEW-9"
    status, plan = await api.call(
        "POST", "/_sandbox/store/plans", json={"id": 7, "label": "Extra", "project_id": 1}, token=None
    )
    assert status == 201 and plan["label"] == "Extra"
    assert (await api.ok("GET", "/_sandbox/store/plans/7", token=None))["id"] == 7
    assert (await api.call("DELETE", "/_sandbox/store/plans/7"))[0] == 204
    assert (await api.call("GET", "/_sandbox/store/plans/7"))[0] == 404
    assert (await api.call("GET", "/_sandbox/store/poles"))[0] == 404
    assert not [e for e in api.faults.log if e.path.startswith("/_sandbox/")]


async def test_control_knobs_clock_tokens_reset_and_seed(api: Sandbox) -> None:
    knobs = await api.ok("POST", "/_sandbox/knobs", json={"v3_bare": True}, token=None)
    assert knobs["v3_bare"] is True and api.store.knobs.v3_bare
    assert (await api.call("POST", "/_sandbox/knobs", json={"nope": 1}))[0] == 400
    clock = await api.ok("PUT", "/_sandbox/clock", json={"advance_seconds": 3600}, token=None)
    assert clock["now"].startswith("2025-06-03T15:00:00")
    status, _ = await api.call("POST", "/_sandbox/tokens", json={"token": "new", "plans": [120]}, token=None)
    assert status == 201
    assert [p["id"] for p in (await api.ok("GET", "/v3/plans", token="new"))["plans"]] == [120]
    assert (await api.call("DELETE", "/_sandbox/tokens/new"))[0] == 204
    assert (await api.call("GET", "/v2/plans", token="new"))[0] == 401
    assert (await api.call("POST", "/_sandbox/reset"))[0] == 204
    assert api.store.features == {} and not api.faults.log
    status, counts = await api.call("POST", "/_sandbox/seed", json={"seed": 3, "size": 30}, token=None)
    assert status == 201 and counts == {"plans": 3, "layers": 5, "features": 33}


async def test_deep_link_page_is_served(api: Sandbox) -> None:
    async with api.http.get(f"/ui/feature/{vid(5)}") as response:
        assert response.status == 200 and response.content_type == "text/html"
        assert "SL-0005" in await response.text()
    async with api.http.get(f"/ui/feature/{vid(404)}") as response:
        assert response.status == 404
