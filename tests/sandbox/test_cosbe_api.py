"""COS BE sandbox over real HTTP: auth, Object/List paging and filters, Get, Create, Update, lists, limits, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from reconciler.sandbox.cosbe import DEFAULT_ENVIRONMENT
from reconciler.sandbox.faults import FaultRule
from tests.sandbox.test_cosbe_support import (
    BARRE,
    HEADERS,
    OTHER_ENV_KEY,
    READ_ONLY,
    Sandbox,
    create_body,
    make_store,
    obj,
    oid,
    serve,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api() -> AsyncIterator[Sandbox]:
    async with serve() as sandbox:
        yield sandbox


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def is_problem(body: Any, status: int) -> bool:
    return isinstance(body, dict) and body["status"] == status and {"type", "title", "traceId"} <= set(body)


# -- auth ----------------------------------------------------------------------------------------------------


async def test_auth_needs_key_and_matching_environment(api: Sandbox) -> None:
    for headers in ({}, {"BusinessEngine": DEFAULT_ENVIRONMENT}, {**HEADERS, "Authorization": "wrong"}):
        status, body = await api.call("GET", "/v1/Object/List", headers=headers)
        assert status == 401 and is_problem(body, 401)
    status, body = await api.call("GET", "/v1/Object/List", headers={**HEADERS, "Authorization": "Bearer x"})
    assert status == 401
    for headers in ({"Authorization": HEADERS["Authorization"]}, {**HEADERS, "BusinessEngine": "acme-prod"}):
        status, body = await api.call("GET", "/v1/Object/List", headers=headers)
        assert status == 403 and is_problem(body, 403)
    assert (
        await api.call(
            "GET", "/v1/Object/List", headers={"Authorization": OTHER_ENV_KEY, "BusinessEngine": "acme-prod"}
        )
    )[0] == 200
    async with api.http.get("/v1/Object/List") as response:
        assert response.content_type == "application/problem+json"
    assert all("authorization" not in e.headers for e in api.faults.log)


async def test_ip_allow_list_and_read_only_keys(api: Sandbox) -> None:
    api.store.knobs.allowed_ips = ["10.0.0.1"]
    status, body = await api.call("GET", "/v1/Object/List")
    assert status == 403 and "allow-listed" in body["detail"]
    api.store.knobs.allowed_ips = ["127.0.0.1"]
    assert (await api.call("GET", "/v1/Object/List"))[0] == 200
    read_only = {**HEADERS, "Authorization": READ_ONLY}
    assert (await api.call("GET", f"/v1/Object/Get/{oid(1)}", headers=read_only))[0] == 200
    status, _ = await api.call("POST", "/v1/Object/Update", json={"id": oid(1)}, headers=read_only)
    assert status == 403


# -- Object/List ---------------------------------------------------------------------------------------------


async def test_list_orders_by_updated_at_then_id_with_paging_and_total(api: Sandbox) -> None:
    api.store.load("objects", [obj(n, updatedAt="2025-05-03T10:00:00Z") for n in (9, 8)])
    page = await api.ok("GET", "/v1/Object/List?pageSize=3")
    assert ids(page) == [oid(1), oid(2), oid(8)]
    assert (page["pageIndex"], page["pageSize"], page["totalCount"]) == (0, 3, 7)
    second = await api.ok("GET", "/v1/object/list?pageIndex=2&pageSize=3")  # case-insensitive path
    assert ids(second) == [oid(5)]
    assert (await api.ok("GET", "/v1/Object/List?pageSize=5000"))["pageSize"] == 1000
    assert ids(await api.ok("GET", "/v1/Object/List"))[-1] == oid(5)
    for bad in ("pageIndex=-1", "pageSize=0", "pageSize=x", "modifiedSince=yesterday", f"afterId={oid(1)}"):
        status, body = await api.call("GET", f"/v1/Object/List?{bad}")
        assert status == 400 and is_problem(body, 400) and body["errors"]


async def test_modified_since_is_inclusive_and_after_id_is_keyset(api: Sandbox) -> None:
    api.store.load("objects", [obj(n, updatedAt="2025-05-04T10:00:00Z") for n in (6, 7)])
    since = await api.ok("GET", "/v1/Object/List?modifiedSince=2025-05-04T10:00:00Z")
    assert ids(since) == [oid(3), oid(6), oid(7), oid(4), oid(5)] and since["totalCount"] == 5
    keyset = await api.ok("GET", f"/v1/Object/List?modifiedSince=2025-05-04T10:00:00Z&afterId={oid(6)}")
    assert ids(keyset) == [oid(7), oid(4), oid(5)]
    offset = await api.ok("GET", "/v1/Object/List?modifiedSince=2025-05-04T12:00:00%2B02:00&pageSize=2")
    assert ids(offset) == [oid(3), oid(6)]


async def test_list_filters_combine_with_and(api: Sandbox) -> None:
    api.store.load("objects", [obj(9, status="Deliverable", group={"id": BARRE, "name": "Barre Phase 1"})])
    assert ids(await api.ok("GET", "/v1/Object/List?status=Deliverable")) == [oid(9)]
    assert ids(await api.ok("GET", f"/v1/Object/List?groupId={BARRE}&status=Deliverable")) == [oid(9)]
    assert ids(await api.ok("GET", "/v1/Object/List?externalServiceLocationId=SL-0002")) == [oid(2)]
    eid = "00000000-0000-4000-8000-000000000004"
    assert ids(await api.ok("GET", f"/v1/Object/List?externalIdentification={eid}")) == [oid(4)]
    only = await api.ok("GET", "/v1/Object/List?objectNumber=10003")
    assert ids(only) == [oid(3)] and only["totalCount"] == 1
    assert (await api.call("GET", "/v1/Object/List?status=Deliverabel"))[0] == 400


async def test_drift_knob_moves_objects_past_the_keyset_cursor(api: Sandbox) -> None:
    api.store.knobs.drift_touch = 1
    first = await api.ok("GET", "/v1/Object/List?pageSize=2&modifiedSince=1970-01-01T00:00:00Z")
    last = first["items"][-1]
    rest = await api.ok(
        "GET", f"/v1/Object/List?modifiedSince={last['updatedAt']}&afterId={last['id']}&pageSize=10"
    )
    assert ids(first) == [oid(1), oid(2)]
    assert ids(rest) == [oid(3), oid(4), oid(5), oid(1)]  # oid(1) changed after it was read: seen again


# -- Get / Create / Update ---------------------------------------------------------------------------------------


async def test_get_object_and_404_problem(api: Sandbox) -> None:
    one = await api.ok("GET", f"/v1/Object/Get/{oid(2)}")
    assert one["objectNumber"] == 10_002 and one["group"]["name"] == "Montpelier Phase 2"
    status, body = await api.call("GET", f"/v1/Object/Get/{oid(404)}")
    assert status == 404 and is_problem(body, 404)
    assert (await api.call("GET", "/v1/Nothing/Here"))[0] == 404
    assert (await api.call("DELETE", "/v1/Object/List"))[0] == 405


async def test_create_assigns_server_fields(api: Sandbox) -> None:
    created = await api.ok("POST", "/v1/Object/Create", json=create_body(id="ignored", version=9), status=201)
    assert created["id"] != "ignored" and created["objectNumber"] == 10_006 and created["version"] == 1
    assert created["serviceStatus"] == "Inactive" and created["reachable"] is False
    assert created["group"] == {"id": BARRE, "name": "Barre Phase 1"}
    assert created["address"]["country"] == "US" and created["address"]["unit"] is None
    assert created["adminUrl"].endswith(f"/admin/objects/{created['id']}")
    assert created["createdAt"] == created["updatedAt"] == "2025-06-03T14:00:00Z"
    assert created["metadata"] == [{"name": "Survey Done", "value": "true"}]
    assert (await api.ok("GET", f"/v1/Object/Get/{created['id']}")) == created
    twin = await api.ok("POST", "/v1/Object/Create", json=create_body(), status=201)
    assert twin["externalIdentification"] == created["externalIdentification"]  # no uniqueness (cosbe.md 2.3)


async def test_create_validation_and_body_errors(api: Sandbox) -> None:
    status, body = await api.call("POST", "/v1/Object/Create", json=create_body(serviceStatus="Active"))
    assert status == 400 and "serviceStatus" in body["errors"]
    status, body = await api.call(
        "POST", "/v1/Object/Create", json=create_body(address={"street": "1 Main St"}, group={"id": "x"})
    )
    assert status == 400 and {"address.city", "address.state", "address.postalCode", "group.id"} <= set(
        body["errors"]
    )
    status, body = await api.call(
        "POST", "/v1/Object/Create", data=b"{", headers={**HEADERS, "Content-Type": "application/json"}
    )
    assert status == 400 and "$" in body["errors"]
    assert (
        await api.call(
            "POST", "/v1/Object/Create", data="x=1", headers={**HEADERS, "Content-Type": "text/plain"}
        )
    )[0] == 415
    assert len(api.store.objects) == 5


async def test_update_is_partial_merges_metadata_and_replaces_address(api: Sandbox) -> None:
    change = {
        "id": oid(1),
        "status": "Deliverable",
        "metadata": [{"name": "Drop Type", "value": "Buried"}, {"name": "Survey Done", "value": "false"}],
        "address": {"street": "3 Elm St", "city": "Montpelier", "state": "VT", "postalCode": "05602"},
    }
    updated = await api.ok("POST", "/v1/Object/Update", json=change)
    assert updated["status"] == "Deliverable" and updated["reachable"] is True and updated["version"] == 4
    assert updated["metadata"] == [
        {"name": "Drop Type", "value": "Buried"},
        {"name": "Survey Done", "value": "false"},
    ]
    assert updated["address"]["latitude"] is None and updated["address"]["street"] == "3 Elm St"
    assert updated["updatedAt"] == "2025-06-03T14:00:00Z"
    cleared = await api.ok(
        "POST",
        "/v1/Object/Update",
        json={
            "id": oid(1),
            "metadata": [{"name": "Drop Type", "value": None}],
            "externalIdentification": None,
        },
    )
    assert (
        cleared["metadata"] == [{"name": "Survey Done", "value": "false"}]
        and cleared["externalIdentification"] is None
    )
    status, body = await api.call(
        "POST", "/v1/Object/Update", json={"id": oid(1), "version": 4, "reachable": False}
    )
    assert status == 409 and is_problem(body, 409)
    assert (await api.ok("POST", "/v1/Object/Update", json={"id": oid(1), "version": 5, "reachable": False}))[
        "version"
    ] == 6
    assert (await api.call("POST", "/v1/Object/Update", json={"id": oid(404)}))[0] == 404
    assert (await api.call("POST", "/v1/Object/Update", json={"id": oid(1), "serviceStatus": "Active"}))[
        0
    ] == 400
    assert (await api.call("POST", "/v1/Object/Update", json={"reachable": True}))[0] == 400


async def test_group_and_metadata_lists(api: Sandbox) -> None:
    groups = await api.ok("GET", "/v1/ObjectGroup/List")
    assert [g["name"] for g in groups["items"]] == ["Barre Phase 1", "Montpelier Phase 2"]
    assert groups["totalCount"] == 2
    assert len((await api.ok("GET", "/v1/ObjectGroup/List?pageSize=1&pageIndex=1"))["items"]) == 1
    definitions = (await api.ok("GET", "/v1/Metadata/List?entity=Object"))["items"]
    kinds = {d["name"]: d["type"] for d in definitions}
    assert kinds == {
        "Drop Type": "Dropdown",
        "Install Notes": "TextArea",
        "Splice Tray": "Textbox",
        "Survey Done": "Checkbox",
    }
    assert (await api.ok("GET", "/v1/Metadata/List?entity=Order"))["items"] == []


# -- limits and faults ---------------------------------------------------------------------------------------


async def test_native_rate_limit_429_with_retry_after() -> None:
    store = make_store()
    store.knobs.rate_limit = 0.01
    store.knobs.rate_burst = 1
    async with serve(store) as api:
        assert (await api.call("GET", "/v1/ObjectGroup/List"))[0] == 200
        async with api.http.get("/v1/ObjectGroup/List", headers=HEADERS) as response:
            assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
            assert response.content_type == "application/problem+json"


async def test_injected_429_and_html_faults(api: Sandbox) -> None:
    api.faults.add(FaultRule(kind="429", seconds=2, count=1))
    async with api.http.get("/v1/Object/List", headers=HEADERS) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "2"
    api.faults.add(FaultRule(kind="error", status=502, count=1))
    status, body = await api.call("GET", "/v1/Object/List")
    assert status == 502 and "502" in body
    assert [e.status for e in api.faults.log] == [429, 502]
