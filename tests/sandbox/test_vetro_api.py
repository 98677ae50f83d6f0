"""Vetro sandbox over real HTTP: auth, envelopes, plans/layers, features/query, features/{ids}, limits, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from reconciler.sandbox.faults import FaultRule
from tests.sandbox.test_vetro_support import PLAN_112_ONLY, Sandbox, make_store, serve, sl, vid

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api() -> AsyncIterator[Sandbox]:
    async with serve() as sandbox:
        yield sandbox


def ids(features: list[dict[str, Any]]) -> list[str]:
    return [f["properties"]["ID"] for f in features]


# -- auth and envelope ---------------------------------------------------------------------------------------


async def test_token_header_is_required_and_case_insensitive(api: Sandbox) -> None:
    for token in (None, "", "wrong"):
        status, body = await api.call("GET", "/v2/plans", token=token)
        assert status == 401 and body["success"] is False and isinstance(body["message"], str)
    status, _ = await api.call(
        "GET", "/v2/plans", token=None, headers={"Token": "vetro-sandbox-token-5b0c6f1e9d2a4c7e8f3b"}
    )
    assert status == 200
    status, _ = await api.call(
        "GET",
        "/v2/plans",
        token=None,
        headers={"Authorization": "Bearer vetro-sandbox-token-5b0c6f1e9d2a4c7e8f3b"},
    )
    assert status == 401
    assert api.faults.log[-1].headers.get("authorization") is None


async def test_plans_and_layers_in_the_envelope_on_v2_and_v3(api: Sandbox) -> None:
    for version in ("v2", "v3"):
        plans = (await api.result("GET", f"/{version}/plans/"))["plans"]
        assert [(p["id"], p["label"], p["project_id"]) for p in plans] == [
            (112, "Montpelier Phase 2", 9),
            (113, "Montpelier Phase 3", 9),
            (120, "Barre Phase 1", 14),
        ]
        layers = (await api.result("GET", f"/{version}/layers"))["layers"]
        service = next(layer for layer in layers if layer["label"] == "Service Location")
        assert service["id"] == 26 and service["geometry_type"] == "Point"
        assert service["available_attributes"]["Building Type"] == {
            "html_input_type": "select",
            "permitted_values": ["Residential", "MDU", "Business"],
            "is_hidden": False,
        }


async def test_v3_bare_knob_answers_bare_bodies_on_v3_only(api: Sandbox) -> None:
    api.store.knobs.v3_bare = True
    assert [p["id"] for p in (await api.ok("GET", "/v3/plans"))["plans"]] == [112, 113, 120]
    assert "layers" in await api.ok("GET", "/v3/layers")
    bare = await api.ok("GET", "/v3/features/query?layer_ids=26&limit=2")
    assert set(bare) == {"features"} and ids(bare["features"]) == ["SL-0001", "SL-0002"]
    assert (await api.ok("GET", "/v2/features/query?layer_ids=26&limit=2"))["success"] is True
    assert await api.ok("POST", "/v3/features/delete", json=[vid(1)]) is True


async def test_token_scope_limits_plans_queries_and_reads(api: Sandbox) -> None:
    plans = (await api.result("GET", "/v2/plans", token=PLAN_112_ONLY))["plans"]
    assert [p["id"] for p in plans] == [112]
    status, body = await api.call("GET", "/v2/features/query?plan_ids=113", token=PLAN_112_ONLY)
    assert status == 403 and body["success"] is False
    scoped = await api.result("GET", "/v2/features/query?layer_ids=26", token=PLAN_112_ONLY)
    assert ids(scoped) == ["SL-0001", "SL-0002", "SL-0004", "SL-0005", "SL-0007"]
    assert (await api.call("GET", f"/v2/features/{vid(3)}", token=PLAN_112_ONLY))[0] == 403


# -- features/query -----------------------------------------------------------------------------------------------


async def test_query_filters_by_plan_forms_and_layer(api: Sandbox) -> None:
    assert ids(await api.result("GET", "/v2/features/query?plan_ids=113")) == ["SL-0003", "SL-0006"]
    both = await api.result("GET", "/v3/features/query?plan_ids[]=113&plan_ids[]=112&layer_ids[]=11")
    assert ids(both) == ["P-1"]
    assert len(await api.result("GET", "/v2/features/query?plan_ids=112,113&layer_ids=26,11")) == 8
    assert (await api.call("GET", "/v2/features/query?plan_ids=abc"))[0] == 400


async def test_query_default_limit_clamp_offset_and_end(api: Sandbox) -> None:
    api.store.load("features", [sl(n) for n in range(100, 230)])
    assert len(await api.result("GET", "/v2/features/query?layer_ids=26")) == 100
    assert len(await api.result("GET", "/v2/features/query?layer_ids=26&limit=999999")) == 137
    page = await api.result("GET", "/v2/features/query?layer_ids=26&offset=5&limit=3")
    assert ids(page) == ["SL-0006", "SL-0007", "SL-0100"]
    assert await api.result("GET", "/v2/features/query?layer_ids=26&offset=500") == []
    for bad in ("offset=-1", "limit=0", "limit=x"):
        assert (await api.call("GET", f"/v2/features/query?{bad}"))[0] == 400


async def test_query_filter_grammar_and_order(api: Sandbox) -> None:
    api.store.user_edit(vid(2), {"properties": {"Address Import": "No"}})  # edited "now": 2025-06-03T14:00
    since = await api.result(
        "GET", '/v2/features/query?layer_ids=26&filter=last_edited_time>="2025-05-05T10:00:00Z"'
    )
    assert ids(since) == ["SL-0002", "SL-0004", "SL-0005", "SL-0006", "SL-0007"]
    combined = await api.result(
        "GET",
        '/v2/features/query?filter=last_edited_time>="2025-06-03T14:00:00Z" AND "Address Import"="No"',
    )
    assert ids(combined) == ["SL-0002"]
    assert ids(await api.result("GET", '/v2/features/query?filter=ID="SL-0005"')) == ["SL-0005"]
    desc = await api.result("GET", "/v2/features/query?layer_ids=26&order=ID:desc&limit=3")
    assert ids(desc) == ["SL-0007", "SL-0006", "SL-0005"]
    by_time = await api.result("GET", "/v2/features/query?layer_ids=26&order=last_edited_time:asc")
    assert ids(by_time) == ["SL-0001", "SL-0003", "SL-0004", "SL-0005", "SL-0006", "SL-0007", "SL-0002"]
    status, body = await api.call("GET", "/v2/features/query?filter=ID=unquoted")
    assert status == 400 and "filter" in body["message"]


async def test_features_by_ids_answers_404_when_any_is_unknown(api: Sandbox) -> None:
    two = await api.result("GET", f"/v2/features/{vid(4)},{vid(2)}")
    assert ids(two) == ["SL-0004", "SL-0002"]
    feature = two[0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
    assert set(feature["x-vetro"]) >= {"vetro_id", "feature_id", "layer_id", "plan_id", "last_edited_time"}
    status, body = await api.call("GET", f"/v2/features/{vid(4)},{vid(404)}")
    assert status == 404 and body == {"success": False, "message": f"feature {vid(404)} not found"}


# -- rate limits and faults ------------------------------------------------------------------------------------


async def test_native_rate_limit_answers_429_with_integer_retry_after() -> None:
    store = make_store()
    store.knobs.rate_limit = 0.01
    store.knobs.rate_burst = 2
    async with serve(store) as api:
        assert (await api.call("GET", "/v2/layers"))[0] == 200
        assert (await api.call("GET", "/v2/layers"))[0] == 200
        async with api.http.get(
            "/v2/layers", headers={"token": "vetro-sandbox-token-5b0c6f1e9d2a4c7e8f3b"}
        ) as r:
            assert r.status == 429
            assert int(r.headers["Retry-After"]) >= 1
            assert await r.json() == {"success": False, "message": "Too many requests"}
        assert (await api.call("GET", "/v2/layers", token=PLAN_112_ONLY))[0] == 200  # buckets are per token


async def test_plans_daily_cap_waits_for_the_next_utc_day(api: Sandbox) -> None:
    api.store.knobs.plans_daily_cap = 2
    for _ in range(2):
        assert (await api.call("GET", "/v2/plans"))[0] == 200
    async with api.http.get("/v2/plans", headers={"token": "vetro-sandbox-token-5b0c6f1e9d2a4c7e8f3b"}) as r:
        assert r.status == 429 and r.headers["Retry-After"] == str(10 * 3600)  # NOW is 14:00 UTC
    assert (await api.call("GET", "/v2/layers"))[0] == 200
    api.store.set_clock(advance_seconds=10 * 3600)
    assert (await api.call("GET", "/v2/plans"))[0] == 200


async def test_injected_faults_429_and_html_proxy_pages(api: Sandbox) -> None:
    api.faults.add(FaultRule(kind="429", seconds=3, count=1))
    async with api.http.get("/v2/layers", headers={"token": "vetro-sandbox-token-5b0c6f1e9d2a4c7e8f3b"}) as r:
        assert r.status == 429 and r.headers["Retry-After"] == "3"
    api.faults.add(FaultRule(kind="html", count=1))
    status, body = await api.call("GET", "/v2/layers")
    assert status == 502 and "Bad Gateway" in body
    assert [e.status for e in api.faults.log] == [429, 502]
    assert api.faults.log[0].headers["token"] == "vetro-sandbox-token-5b0c6f1e9d2a4c7e8f3b"


async def test_unknown_routes_and_methods_answer_the_error_shape(api: Sandbox) -> None:
    status, body = await api.call("GET", "/v2/nothing/here")
    assert status == 404 and body["success"] is False
    status, body = await api.call("DELETE", "/v2/features")
    assert status == 405 and body["success"] is False
