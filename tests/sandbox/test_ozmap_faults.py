"""OZmap sandbox fault injection, request log and control API (``/_sandbox/``) over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ozmap import FAULTS_KEY, STORE_KEY, create_app
from tests.sandbox.test_ozmap_support import KEY, T0, Sandbox, W, make_store, oid, serve

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api() -> AsyncIterator[Sandbox]:
    async with serve(faults=Faults(seed=1)) as sandbox:
        yield sandbox


async def add_fault(api: Sandbox, **rule: Any) -> dict[str, Any]:
    body = await api.ok("POST", "/_sandbox/faults", 201, json=rule)
    assert isinstance(body, dict)
    return body


# -- fault kinds -----------------------------------------------------------------------------------------------


async def test_latency_delays_then_serves(api: Sandbox) -> None:
    await add_fault(api, kind="latency", seconds=0.2, route="^/api/v2/boxes$")
    started = time.perf_counter()
    assert (await api.ok("GET", "/api/v2/boxes"))["total"] == 5
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    await api.ok("GET", "/api/v2/olts")
    assert time.perf_counter() - started < 0.2


@pytest.mark.parametrize(("status", "expected"), [(None, 503), (502, 502), (401, 401)])
async def test_error_answers_the_gateway_page(api: Sandbox, status: int | None, expected: int) -> None:
    await add_fault(api, kind="error", status=status, count=1)
    async with api.http.get("/api/v2/boxes") as response:
        assert response.status == expected and response.content_type == "text/html"
        assert "<html>" in await response.text()
    assert (await api.ok("GET", "/api/v2/boxes"))["total"] == 5  # count=1: the retry works


async def test_429_carries_retry_after(api: Sandbox) -> None:
    await add_fault(api, kind="429", seconds=2, method="GET")
    async with api.http.get("/api/v2/boxes") as response:
        assert response.status == 429 and response.headers["Retry-After"] == "2"
        assert "message" in await response.json()
    await api.ok("POST", "/api/v2/tags", 201, json={"name": "unaffected"})


async def test_timeout_outlasts_the_client_timeout(api: Sandbox) -> None:
    await add_fault(api, kind="timeout", seconds=0.5, count=1)
    with pytest.raises(TimeoutError):
        async with api.http.get("/api/v2/boxes", timeout=aiohttp.ClientTimeout(total=0.1)) as response:
            await response.read()
    assert (await api.ok("GET", "/api/v2/boxes"))["total"] == 5


async def test_reset_drops_the_connection(api: Sandbox) -> None:
    # no count: aiohttp retries an idempotent request once when a reused connection drops
    await add_fault(api, kind="reset")
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        async with api.http.get("/api/v2/boxes") as response:
            await response.read()
    await api.ok("DELETE", "/_sandbox/faults", 204)
    assert (await api.ok("GET", "/api/v2/boxes"))["total"] == 5
    assert (await api.ok("GET", "/_sandbox/stats"))["injected"]["reset"] >= 1


async def test_malformed_answers_truncated_json(api: Sandbox) -> None:
    await add_fault(api, kind="malformed")
    async with api.http.get("/api/v2/boxes") as response:
        assert response.status == 200 and response.content_type == "application/json"
        with pytest.raises(json.JSONDecodeError):
            json.loads(await response.text())


@pytest.mark.parametrize(("status", "expected"), [(None, 500), (502, 502)])
async def test_html_answers_the_error_page(api: Sandbox, status: int | None, expected: int) -> None:
    await add_fault(api, kind="html", status=status)
    status_got, body = await api.call("GET", "/api/v2/boxes")
    assert status_got == expected and "Internal Server Error" in body


async def test_lost_answer_after_a_real_write(api: Sandbox) -> None:
    await add_fault(api, kind="lost", method="POST", route="/api/v2/tags", count=1)
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        async with api.http.post("/api/v2/tags", json={"name": "written"}) as response:
            await response.read()
    assert [t["name"] for t in api.store.all("tags")] == ["outage", "written"]


async def test_rules_route_method_count_and_removal(api: Sandbox) -> None:
    rule = await add_fault(api, kind="error", route="/api/v2/olts", method="GET")
    assert (await api.call("GET", "/api/v2/olts"))[0] == 503
    assert (await api.call("GET", "/api/v2/boxes"))[0] == 200
    assert [r["id"] for r in await api.ok("GET", "/_sandbox/faults")] == [rule["id"]]
    assert (await api.call("DELETE", f"/_sandbox/faults/{rule['id']}"))[0] == 204
    assert (await api.call("DELETE", f"/_sandbox/faults/{rule['id']}"))[0] == 404
    assert (await api.call("GET", "/api/v2/olts"))[0] == 200
    await add_fault(api, kind="error", rate=0.0)
    assert (await api.call("GET", "/api/v2/olts"))[0] == 200
    await api.ok("DELETE", "/_sandbox/faults", 204)
    assert await api.ok("GET", "/_sandbox/faults") == []
    assert (await api.call("POST", "/_sandbox/faults", json={"kind": "nope"}))[0] == 400
    stats = await api.ok("GET", "/_sandbox/stats")
    assert stats == {"served": 4, "injected": {"error": 1}}


async def test_control_routes_are_never_faulted_and_need_no_key(api: Sandbox) -> None:
    await add_fault(api, kind="reset")
    async with aiohttp.ClientSession(base_url=api.url) as anonymous:
        async with anonymous.get("/_sandbox/store/boxes") as response:
            assert response.status == 200 and len(await response.json()) == 5
        async with anonymous.get("/_sandbox/clock") as response:
            assert (await response.json())["now"].startswith("2025-06-01T12:00:00")


async def test_request_log_never_holds_the_authorization_header(api: Sandbox) -> None:
    await api.ok("DELETE", "/_sandbox/requests", 204)
    await add_fault(api, kind="429", count=1)
    flt = [{"property": "name", "operator": "=", "value": "CTO-1"}]
    await api.call("GET", "/api/v2/boxes", json={"filter": flt})
    await api.ok("GET", "/api/v2/boxes", headers={"Authorization": f"Bearer {KEY}", "X-Trace": "t1"})
    log = await api.ok("GET", "/_sandbox/requests")
    assert [(e["method"], e["path"], e["status"], e["fault"]) for e in log] == [
        ("GET", "/api/v2/boxes", 429, "429"),
        ("GET", "/api/v2/boxes", 200, ""),
    ]
    assert log[0]["body"] == {"filter": flt} and log[1]["headers"]["x-trace"] == "t1"
    assert all("authorization" not in e["headers"] for e in log)
    assert KEY not in json.dumps(log)
    assert len(await api.ok("GET", f"/_sandbox/requests?since={log[0]['seq']}")) == 1


# -- control API -----------------------------------------------------------------------------------------------


async def test_control_store_reads_and_inserts(api: Sandbox) -> None:
    await api.ok("DELETE", f"/api/v2/boxes/{W.box3}", 204)
    assert len(await api.ok("GET", "/_sandbox/store/boxes")) == 4
    everything = await api.ok("GET", "/_sandbox/store/boxes?include_deleted=1")
    assert [b["id"] for b in everything] == sorted(b["id"] for b in everything) and len(everything) == 5
    deleted = await api.ok("GET", f"/_sandbox/store/boxes/{W.box3}")
    assert deleted["deletedAt"]
    assert (await api.call("GET", f"/_sandbox/store/boxes/{oid(999)}"))[0] == 404
    made = await api.ok(
        "POST", "/_sandbox/store/boxes", 201, json={"name": "UI box", "coords": [-48.5, -27.5]}
    )
    assert len(made["id"]) == 24 and made["createdAt"] == made["updatedAt"] and made["lat"] == -27.5
    many = await api.ok("POST", "/_sandbox/store/tags", 201, json=[{"name": "a"}, {"id": "t-b", "name": "b"}])
    assert [t["id"] for t in many][1] == "t-b" and (await api.ok("GET", "/api/v2/tags/t-b"))["name"] == "b"
    assert (await api.call("POST", "/_sandbox/store/tags", json="x"))[0] == 400
    assert (await api.call("POST", "/_sandbox/store/tags", json={"id": "t-b"}))[0] == 400


async def test_control_edit_and_delete_act_like_a_user(api: Sandbox) -> None:
    edited = await api.ok("PATCH", f"/_sandbox/store/boxes/{W.box1}", json={"name": "CTO-1 renamed"})
    assert edited["updatedAt"] > T0 and edited["name"] == "CTO-1 renamed"
    since = [{"property": "updatedAt", "operator": ">", "value": T0}]
    assert [b["id"] for b in (await api.ok("GET", "/api/v2/boxes", json={"filter": since}))["rows"]] == [
        W.box1
    ]
    assert (await api.call("PATCH", f"/_sandbox/store/boxes/{oid(999)}", json={"name": "x"}))[0] == 404
    assert (await api.call("PATCH", f"/_sandbox/store/boxes/{W.box1}", json=[1]))[0] == 400
    prop = await api.ok(
        "POST",
        "/api/v2/properties",
        201,
        json={"project": W.project, "box": W.box1, "client": {"code": "ui"}, "connector": W.svc1, "port": 1},
    )
    await api.ok("DELETE", f"/_sandbox/store/properties/{prop['id']}", 204)
    assert (await api.ok("GET", f"/api/v2/splitters/{W.svc1}"))["connectables"]["output"][0] is None
    assert (await api.call("DELETE", f"/_sandbox/store/properties/{prop['id']}"))[0] == 404


async def test_control_clock(api: Sandbox) -> None:
    assert (await api.ok("POST", "/_sandbox/clock", json={"advance_seconds": 90}))[
        "now"
    ] == "2025-06-01T12:01:30.000Z"
    made = await api.ok("POST", "/api/v2/tags", 201, json={"name": "later"})
    assert made["createdAt"] >= "2025-06-01T12:01:30.000Z"
    for bad in ({"advance_seconds": -1}, {"advance_seconds": "x"}, [1]):
        assert (await api.call("POST", "/_sandbox/clock", json=bad))[0] == 400


async def test_app_keeps_store_and_faults_under_app_keys() -> None:
    store, faults = make_store(), Faults()
    app = create_app(store, faults=faults)
    assert app[STORE_KEY] is store and app[FAULTS_KEY] is faults
    assert isinstance(create_app(store)[FAULTS_KEY], Faults)
