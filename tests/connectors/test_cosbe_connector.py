"""CosbeConnector against the COS BE sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler import errors
from reconciler.connectors import registry
from reconciler.connectors.base import Connector
from reconciler.connectors.cosbe.connector import CosbeConnector
from reconciler.model import Record
from reconciler.sandbox.cosbe import DEFAULT_API_KEY, DEFAULT_ENVIRONMENT, FAULTS_KEY, CosbeStore, create_app
from reconciler.sandbox.faults import Faults
from tests.connectors.conftest import add_fault, api_requests, system, url_of
from tests.sandbox.test_cosbe_support import BARRE, GROUP, make_store, obj, oid

pytestmark = pytest.mark.anyio

SECRET = f"{DEFAULT_ENVIRONMENT}:{DEFAULT_API_KEY}"


class Cos(NamedTuple):
    store: CosbeStore
    faults: Faults
    url: str
    connector: CosbeConnector


async def _cos(session: aiohttp.ClientSession, *, secret: str = SECRET, **http: Any) -> AsyncIterator[Cos]:
    store = make_store()
    app = create_app(store)
    async with TestServer(app, host="127.0.0.1") as server:
        url = url_of(server)
        yield Cos(store, app[FAULTS_KEY], url, CosbeConnector(system("cosbe", url, secret, **http), session))


@pytest.fixture
async def cos(session: aiohttp.ClientSession) -> AsyncIterator[Cos]:
    async for env in _cos(session, page_size=2):
        yield env


async def collect(connector: CosbeConnector, collection: str = "objects", **kw: Any) -> list[Record]:
    return [r async for page in connector.stream(collection, **kw) for r in page]


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for secret in secrets or (SECRET, DEFAULT_API_KEY):
        assert secret not in str(exc) and secret not in repr(exc.args)


# -- reads -----------------------------------------------------------------------------------------------


async def test_full_stream_uses_keyset_paging_and_flattens_objects(cos: Cos) -> None:
    records = await collect(cos.connector)
    assert [r.id for r in records] == [oid(n) for n in range(1, 6)]
    first = records[0]
    assert first.updated_at == "2025-05-02T10:00:00Z"
    fields = first.fields
    assert (
        fields["objectNumber"] == 10_001
        and fields["status"] == "InDeployment"
        and fields["reachable"] is True
    )
    assert fields["group.id"] == GROUP and fields["group.name"] == "Montpelier Phase 2"
    assert fields["address.city"] == "Montpelier" and fields["address.unit"] is None
    assert fields["externalServiceLocationId"] == "SL-0001" and fields["metadata.Drop Type"] == "Aerial"
    assert str(fields["adminUrl"]).endswith(oid(1))
    assert set(fields) <= CosbeConnector.CATALOG["objects"].fields
    lists = api_requests(cos.faults, "GET", "/v1/Object/List")
    assert [(q.query["pageIndex"], q.query.get("afterId")) for q in lists] == [
        ("0", None),
        ("0", oid(2)),
        ("0", oid(4)),
    ]
    assert lists[0].query["modifiedSince"] == "1970-01-01T00:00:00Z"
    assert lists[1].query["modifiedSince"] == "2025-05-03T10:00:00Z"
    assert all(q.headers["businessengine"] == DEFAULT_ENVIRONMENT for q in lists)


async def test_keyset_paging_survives_thousands_sharing_one_timestamp(session: aiohttp.ClientSession) -> None:
    async for env in _cos(session, page_size=3):
        env.store.load("objects", [obj(n, updatedAt="2025-05-01T00:00:00Z") for n in range(10, 30)])
        records = await collect(env.connector)
        assert len(records) == 25 == len({r.id for r in records})


async def test_incremental_is_inclusive(cos: Cos) -> None:
    records = await collect(cos.connector, since="2025-05-04T10:00:00Z")
    assert [r.id for r in records] == [oid(3), oid(4), oid(5)]
    assert (
        api_requests(cos.faults, "GET", "/v1/Object/List")[0].query["modifiedSince"] == "2025-05-04T10:00:00Z"
    )


async def test_objects_changed_while_streaming_are_yielded_once(cos: Cos) -> None:
    cos.store.knobs.drift_touch = 1
    records = await collect(cos.connector)
    assert sorted(r.id for r in records) == [oid(n) for n in range(1, 6)]


async def test_fetch_by_ids_gets_each_and_drops_unknown(cos: Cos) -> None:
    records = await cos.connector.fetch_by_ids("objects", [oid(3), oid(404), oid(1), oid(3)])
    assert [r.id for r in records] == [oid(3), oid(1)]
    assert len(api_requests(cos.faults, "GET", "/v1/Object/Get/")) == 3


async def test_find_uses_server_filters_and_rechecks(cos: Cos) -> None:
    eid = "00000000-0000-4000-8000-000000000004"
    [found] = await cos.connector.find("objects", {"externalIdentification": eid})
    assert found.id == oid(4)
    query = api_requests(cos.faults, "GET", "/v1/Object/List")[-1].query
    assert query["externalIdentification"] == eid
    assert [r.id for r in await cos.connector.find("objects", {"objectNumber": 10_002})] == [oid(2)]
    assert api_requests(cos.faults, "GET", "/v1/Object/List")[-1].query["objectNumber"] == "10002"
    by_name = await cos.connector.find(
        "objects", {"group.name": "Montpelier Phase 2", "metadata.Drop Type": "Aerial"}
    )
    assert len(by_name) == 5
    assert await cos.connector.find("objects", {"externalServiceLocationId": None}) == []
    with pytest.raises(errors.ConfigError, match="no field"):
        await cos.connector.find("objects", {"colour": "red"})


async def test_groups_and_metadata_fields_collections(cos: Cos) -> None:
    groups = await collect(cos.connector, "groups")
    assert sorted((g.id, g.fields["name"]) for g in groups) == sorted(
        [(GROUP, "Montpelier Phase 2"), (BARRE, "Barre Phase 1")]
    )
    definitions = {d.fields["name"]: d.fields for d in await collect(cos.connector, "metadata_fields")}
    assert definitions["Drop Type"]["type"] == "Dropdown" and definitions["Splice Tray"]["maxLength"] == 20
    lists = api_requests(cos.faults, "GET", "/v1/ObjectGroup/List")
    assert len(lists) == 1 and lists[0].query["pageSize"] == "2"  # totalCount 2 reached on the first page
    await collect(cos.connector, "groups")
    assert len(api_requests(cos.faults, "GET", "/v1/ObjectGroup/List")) == 1  # cached per connector
    assert api_requests(cos.faults, "GET", "/v1/Metadata/List")[0].query["entity"] == "Object"
    [barre] = await cos.connector.find("groups", {"name": "Barre Phase 1"})
    assert barre.id == BARRE


async def test_refusals_without_requests(cos: Cos) -> None:
    with pytest.raises(errors.ConfigError):
        cos.connector.stream("objects", deleted=True)
    with pytest.raises(errors.ConfigError):
        cos.connector.stream("groups", since="2025-01-01T00:00:00Z")
    with pytest.raises(errors.ConfigError, match="known: groups, metadata_fields, objects"):
        cos.connector.stream("orders")
    with pytest.raises(errors.ConfigError, match="no API to delete"):
        await cos.connector.delete("objects", oid(1))
    with pytest.raises(errors.ConfigError, match="not writable: serviceStatus"):
        await cos.connector.update("objects", oid(1), {"serviceStatus": "Active"})
    with pytest.raises(errors.ConfigError, match="no operation"):
        await cos.connector.operate("objects", oid(1), "activate", {})
    assert not api_requests(cos.faults)


# -- writes ----------------------------------------------------------------------------------------------


async def test_create_builds_the_body_and_resolves_the_group_name(cos: Cos) -> None:
    new_id = await cos.connector.create(
        "objects",
        {
            "objectType": "SingleFamilyHome",
            "status": "Deliverable",
            "group.name": "Barre Phase 1",
            "address.street": "120 Maple St",
            "address.city": "Barre",
            "address.state": "VT",
            "address.postalCode": "05641",
            "externalIdentification": "3f2c9a7e-1b4d-4c8e-9f0a-7d6e5c4b3a21",
            "externalServiceLocationId": "SL-0004822",
            "metadata.Survey Done": True,
            "metadata.Install Notes": None,
        },
    )
    [post] = api_requests(cos.faults, "POST", "/v1/Object/Create")
    assert post.body["group"] == {"id": BARRE}
    assert post.body["address"]["street"] == "120 Maple St" and post.body["address"]["unit"] is None
    assert post.body["metadata"] == [{"name": "Survey Done", "value": "true"}]
    created = cos.store.objects[new_id]
    assert created["group"]["name"] == "Barre Phase 1" and created["serviceStatus"] == "Inactive"
    with pytest.raises(errors.TerminalRemoteError, match="no object group named 'Nowhere'"):
        await cos.connector.create("objects", {"group.name": "Nowhere"})


async def test_create_is_not_resent_after_a_5xx(cos: Cos) -> None:
    add_fault(cos.faults, "error", status=503, method="POST", count=1)
    with pytest.raises(errors.TransientRemoteError):
        await cos.connector.create("objects", {"objectType": "Business", "status": "NotDeliverable"})
    assert len(api_requests(cos.faults, "POST", "/v1/Object/Create")) == 1


async def test_update_sends_only_changes_and_a_whole_address(cos: Cos) -> None:
    await cos.connector.update(
        "objects",
        oid(2),
        {
            "status": "Deliverable",
            "dropInstalled": True,
            "address.unit": "Apt 2",
            "metadata.Drop Type": None,
            "metadata.Survey Done": False,
            "vetroLink": "https://fibermap.vetro.io/map?plan_id=112&vetro_id=x",
        },
    )
    [update] = api_requests(cos.faults, "POST", "/v1/Object/Update")
    assert update.body["id"] == oid(2) and "reachable" not in update.body and "group" not in update.body
    assert update.body["address"]["street"] == "2 Maple St" and update.body["address"]["unit"] == "Apt 2"
    assert len(api_requests(cos.faults, "GET", f"/v1/Object/Get/{oid(2)}")) == 1
    stored = cos.store.objects[oid(2)]
    assert stored["status"] == "Deliverable" and stored["dropInstalled"] is True and stored["version"] == 4
    assert stored["metadata"] == [{"name": "Survey Done", "value": "false"}]
    await cos.connector.update("objects", oid(2), {"group.id": BARRE})
    assert cos.store.objects[oid(2)]["group"] == {"id": BARRE, "name": "Barre Phase 1"}
    assert not api_requests(cos.faults, "GET", "/v1/ObjectGroup/List")


async def test_validation_and_unknown_ids_are_terminal(cos: Cos) -> None:
    with pytest.raises(errors.TerminalRemoteError) as caught:
        await cos.connector.update("objects", oid(1), {"metadata.Drop Type": "Teleport"})
    assert caught.value.status == 400 and "Teleport" in str(caught.value)
    with pytest.raises(errors.NotFound):
        await cos.connector.update("objects", oid(404), {"reachable": False})
    assert len(api_requests(cos.faults, "POST", "/v1/Object/Update")) == 2  # 4xx: not retried


# -- transport behaviour ---------------------------------------------------------------------------------


async def test_429_is_retried_after_the_servers_retry_after(session: aiohttp.ClientSession) -> None:
    async for env in _cos(session, backoff=0.001, backoff_max=0.3):
        add_fault(env.faults, "429", seconds=1, route="/Object/List", count=1)
        assert len(await collect(env.connector)) == 5
        lists = api_requests(env.faults, "GET", "/v1/Object/List")
        assert [q.status for q in lists] == [429, 200]
        assert lists[1].at - lists[0].at >= 0.25  # Retry-After (1 s, capped at 0.3 s), not the 1 ms backoff
        assert env.connector.statistics()["errors.rate_limited"] == 1


async def test_native_rate_limit_exhausts_retries_into_rate_limited(session: aiohttp.ClientSession) -> None:
    async for env in _cos(session):
        env.store.knobs.rate_limit = 0.001
        env.store.knobs.rate_burst = 1
        with pytest.raises(errors.RateLimited) as caught:
            await env.connector.fetch_by_ids("objects", [oid(1), oid(2)])
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
        assert [e.status for e in api_requests(env.faults)].count(429) >= 4


async def test_html_gateway_pages_and_truncated_json_are_retried(cos: Cos) -> None:
    add_fault(cos.faults, "error", status=502, route="/Object/List", count=1)
    add_fault(cos.faults, "malformed", route="/Object/List", count=1)
    assert len(await collect(cos.connector)) == 5
    assert [q.status for q in api_requests(cos.faults, "GET", "/v1/Object/List")][:3] == [502, 200, 200]


async def test_auth_errors_are_mapped_and_never_show_the_key(session: aiohttp.ClientSession) -> None:
    wrong_key = f"{DEFAULT_ENVIRONMENT}:not-the-key-1a2b3c"
    async for env in _cos(session, secret=wrong_key):
        with pytest.raises(errors.AuthError) as caught:
            await collect(env.connector)
        assert caught.value.status == 401
        assert_no_secret(caught.value, wrong_key, "not-the-key-1a2b3c")
    wrong_env = f"acme-prod:{DEFAULT_API_KEY}"
    async for env in _cos(session, secret=wrong_env):
        with pytest.raises(errors.AuthError) as denied:
            await collect(env.connector)
        assert denied.value.status == 403
        assert_no_secret(denied.value, wrong_env, DEFAULT_API_KEY)
        assert env.faults.log[-1].headers["businessengine"] == "acme-prod"
    with pytest.raises(errors.ConfigError) as bad:
        CosbeConnector(system("cosbe", "http://192.0.2.1", "just-a-key-123"), session)
    assert_no_secret(bad.value, "just-a-key-123")


async def test_registry_knows_the_cosbe_kind(session: aiohttp.ClientSession) -> None:
    connector = registry.create(system("cosbe", "http://192.0.2.9/v1", "env:key"), session)
    assert isinstance(connector, CosbeConnector)
    schema = registry.catalogs({"c": system("cosbe", "http://192.0.2.9", "env:key")})["c"]["objects"]
    assert schema.incremental and not schema.deletions
    assert {"status", "reachable", "dropInstalled", "group.name", "externalIdentification"} <= schema.writable
    assert "serviceStatus" in schema.fields and "serviceStatus" not in schema.writable


def _conforms(c: CosbeConnector) -> Connector:
    """Never run: mypy checks that the class implements the Connector Protocol."""
    return c
