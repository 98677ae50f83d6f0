"""VetroConnector against the Vetro sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler import errors
from reconciler.connectors import registry
from reconciler.connectors.base import Connector
from reconciler.connectors.vetro.connector import VetroConnector
from reconciler.model import Fields, Record
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.vetro import DEFAULT_TOKEN, FAULTS_KEY, VetroStore, create_app
from tests.connectors.conftest import add_fault, api_requests, system, url_of
from tests.sandbox.test_vetro_support import PLAN_112_ONLY, make_store, vid

pytestmark = pytest.mark.anyio


class Vetro(NamedTuple):
    store: VetroStore
    faults: Faults
    url: str
    connector: VetroConnector


async def _vetro(
    session: aiohttp.ClientSession, *, path: str = "/v2", token: str = DEFAULT_TOKEN, **http: Any
) -> AsyncIterator[Vetro]:
    store = make_store()
    app = create_app(store)
    async with TestServer(app, host="127.0.0.1") as server:
        url = url_of(server) + path
        yield Vetro(store, app[FAULTS_KEY], url, VetroConnector(system("vetro", url, token, **http), session))


@pytest.fixture
async def vetro(session: aiohttp.ClientSession) -> AsyncIterator[Vetro]:
    async for env in _vetro(session, page_size=3):
        yield env


def other(env: Vetro, session: aiohttp.ClientSession, url: str | None = None, **http: Any) -> VetroConnector:
    """Another connector on the same sandbox (other URL options or settings)."""
    return VetroConnector(system("vetro", url or env.url, DEFAULT_TOKEN, **{"page_size": 3, **http}), session)


async def collect(
    connector: VetroConnector, collection: str = "service_locations", **kw: Any
) -> list[Record]:
    return [r async for page in connector.stream(collection, **kw) for r in page]


def ids(records: list[Record]) -> list[Any]:
    return [r.fields["properties.ID"] for r in records]


def assert_no_secret(exc: BaseException, secret: str = DEFAULT_TOKEN) -> None:
    assert secret not in str(exc) and secret not in repr(exc.args)


# -- reads -----------------------------------------------------------------------------------------------


async def test_full_stream_pages_to_the_short_page_and_probes_the_end(vetro: Vetro) -> None:
    records = await collect(vetro.connector)
    assert ids(records) == [f"SL-{n:04d}" for n in range(1, 8)]
    first = records[0]
    assert first.id == vid(1) and first.updated_at == "2025-05-02T10:00:00.000Z"
    assert first.fields["lon"] == -72.501 and first.fields["lat"] == 44.26
    assert (first.fields["plan_id"], first.fields["layer_id"], first.fields["feature_id"]) == (112, 26, 1001)
    assert first.fields["properties.Building Type"] == "Residential"
    assert set(first.fields) <= VetroConnector.CATALOG["service_locations"].fields
    queries = api_requests(vetro.faults, "GET", "/features/query")
    assert [(q.query["offset"], q.query["limit"]) for q in queries] == [
        ("0", "3"),
        ("3", "3"),
        ("6", "3"),
        ("6", "1"),
    ]
    assert all(q.query["layer_ids"] == "26" and "plan_ids" not in q.query for q in queries)
    assert all(q.headers["token"] == DEFAULT_TOKEN and q.path.startswith("/v2/") for q in queries)
    await collect(vetro.connector)
    assert len(api_requests(vetro.faults, "GET", "/layers")) == 1  # layers read once per connector


async def test_url_options_select_plans_layer_and_version(
    vetro: Vetro, session: aiohttp.ClientSession
) -> None:
    base = vetro.url.removesuffix("/v2")
    picked = other(vetro, session, f"{base}/?plans=113")
    assert ids(await collect(picked)) == ["SL-0003", "SL-0006"]
    query = api_requests(vetro.faults, "GET", "/features/query")[-1]
    assert query.path.startswith("/v3/") and query.query["plan_ids"] == "113"
    poles = other(vetro, session, f"{base}/v2?layer=Pole")
    assert [r.id for r in await collect(poles)] == [vid(999)]
    with pytest.raises(errors.ConfigError, match="no layer labelled 'Cables'"):
        await collect(other(vetro, session, f"{base}/v2?layer=Cables"))
    with pytest.raises(errors.ConfigError, match="unknown Vetro URL option"):
        other(vetro, session, f"{base}/v2?plan=1")
    vetro.store.knobs.v3_bare = True
    assert len(await collect(other(vetro, session, base))) == 7


async def test_incremental_filter_and_scan_modes(vetro: Vetro, session: aiohttp.ClientSession) -> None:
    records = await collect(vetro.connector, since="2025-05-05T12:00:00+02:00")
    assert ids(records) == ["SL-0004", "SL-0005", "SL-0006", "SL-0007"]
    query = api_requests(vetro.faults, "GET", "/features/query")[0]
    assert query.query["filter"] == 'last_edited_time>="2025-05-05T10:00:00.000Z"'
    scan = other(vetro, session, vetro.url + "?incremental=scan")
    assert ids(await collect(scan, since="2025-05-05T10:00:00Z")) == ids(records)
    assert "filter" not in api_requests(vetro.faults, "GET", "/features/query")[-1].query
    with pytest.raises(errors.ConfigError, match="RFC 3339"):
        vetro.connector.stream("service_locations", since="yesterday")


async def test_deletion_while_paging_makes_the_stream_incomplete(vetro: Vetro) -> None:
    vetro.store.knobs.drift_delete = 1
    with pytest.raises(errors.SnapshotIncomplete, match="offsets shifted"):
        await collect(vetro.connector)


async def test_insertions_while_paging_are_harmless(vetro: Vetro) -> None:
    vetro.store.knobs.drift_insert = 1
    records = await collect(vetro.connector)
    assert ids(records)[:7] == [f"SL-{n:04d}" for n in range(1, 8)]
    assert len({r.id for r in records}) == len(records) > 7


async def test_a_transient_failure_after_the_first_page_is_incomplete(vetro: Vetro) -> None:
    pages = aiter(vetro.connector.stream("service_locations"))
    assert len(await anext(pages)) == 3
    add_fault(vetro.faults, "error", status=500, route="/features/query")
    with pytest.raises(errors.SnapshotIncomplete, match="offset 3"):
        await anext(pages)


async def test_fetch_by_ids_drops_unknown_ids_and_other_layers(vetro: Vetro) -> None:
    records = await vetro.connector.fetch_by_ids(
        "service_locations", [vid(2), vid(404), vid(5), vid(999), vid(2)]
    )
    assert [r.id for r in records] == [vid(2), vid(5)]
    statuses = [e.status for e in api_requests(vetro.faults, "GET", "/features/0")]
    assert statuses[0] == 404 and statuses.count(200) >= 2


async def test_find_sends_attribute_filters_and_rechecks(vetro: Vetro) -> None:
    found = await vetro.connector.find("service_locations", {"properties.ID": "SL-0005", "plan_id": 112})
    assert [r.id for r in found] == [vid(5)]
    query = api_requests(vetro.faults, "GET", "/features/query")[-1].query
    assert query["filter"] == '"ID"="SL-0005"' and query["plan_ids"] == "112"
    assert await vetro.connector.find("service_locations", {"properties.ID": "SL-0005", "plan_id": 113}) == []
    assert [r.id for r in await vetro.connector.find("service_locations", {"id": vid(3)})] == [vid(3)]
    assert len(await vetro.connector.find("service_locations", {"properties.City": "Montpelier"})) == 7
    with pytest.raises(errors.ConfigError, match="no field"):
        await vetro.connector.find("service_locations", {"colour": "red"})
    [plan] = await vetro.connector.find("plans", {"label": "Barre Phase 1"})
    assert plan.id == "120" and plan.fields["project_label"] == "Barre"


async def test_plans_collection_and_refusals(vetro: Vetro) -> None:
    plans = await collect(vetro.connector, "plans")
    assert [(p.id, p.fields["label"]) for p in plans] == [
        ("112", "Montpelier Phase 2"),
        ("113", "Montpelier Phase 3"),
        ("120", "Barre Phase 1"),
    ]
    with pytest.raises(errors.ConfigError):
        vetro.connector.stream("service_locations", deleted=True)
    with pytest.raises(errors.ConfigError):
        vetro.connector.stream("plans", since="2025-01-01T00:00:00Z")
    with pytest.raises(errors.ConfigError, match="known: plans, service_locations"):
        vetro.connector.stream("poles")
    with pytest.raises(errors.ConfigError):
        await vetro.connector.update("plans", "112", {"label": "x"})
    with pytest.raises(errors.ConfigError, match="no operation"):
        await vetro.connector.operate("service_locations", vid(1), "trace", {})


# -- writes ----------------------------------------------------------------------------------------------


async def test_create_posts_one_feature_and_returns_its_vetro_id(vetro: Vetro) -> None:
    fields: dict[str, Any] = {
        "plan_id": 120,
        "lon": -72.5,
        "lat": 44.19,
        "properties.ID": "SL-NEW",
        "properties.City": "Barre",
    }
    new_id = await vetro.connector.create("service_locations", fields)
    [post] = api_requests(vetro.faults, "POST", "/features")
    assert post.body == {
        "features": [
            {
                "type": "Feature",
                "x-vetro": {"plan_id": 120, "layer_id": 26},
                "geometry": {"type": "Point", "coordinates": [-72.5, 44.19]},
                "properties": {"ID": "SL-NEW", "City": "Barre"},
            }
        ]
    }
    assert vetro.store.features[new_id]["properties"]["City"] == "Barre"
    with pytest.raises(errors.ConfigError, match="plan_id"):
        await vetro.connector.create("service_locations", {"lon": 1.0, "lat": 1.0})
    with pytest.raises(errors.ConfigError, match="not writable"):
        await vetro.connector.create("service_locations", {"plan_id": 112, "feature_id": 3})


async def test_create_is_not_resent_after_a_5xx(vetro: Vetro) -> None:
    add_fault(vetro.faults, "error", status=503, method="POST", count=1)
    with pytest.raises(errors.TransientRemoteError):
        await vetro.connector.create("service_locations", {"plan_id": 112, "lon": -72.5, "lat": 44.2})
    assert len(api_requests(vetro.faults, "POST", "/features")) == 1


async def test_update_patches_only_the_changes(vetro: Vetro) -> None:
    await vetro.connector.update(
        "service_locations",
        vid(1),
        {"properties.COS Object Status": "In deployment", "properties.Status": None},
    )
    [patch] = api_requests(vetro.faults, "PATCH", "/features")
    assert patch.body == {
        "features": [
            {
                "type": "Feature",
                "x-vetro": {"vetro_id": vid(1)},
                "properties": {"COS Object Status": "In deployment", "Status": None},
            }
        ]
    }
    props = vetro.store.features[vid(1)]["properties"]
    assert (
        props["COS Object Status"] == "In deployment"
        and props["Status"] is None
        and props["City"] == "Montpelier"
    )
    await vetro.connector.update("service_locations", vid(1), {"lat": 44.3})
    assert vetro.store.features[vid(1)]["geometry"]["coordinates"] == [-72.501, 44.3]
    with pytest.raises(errors.ConfigError, match="plan_id"):
        await vetro.connector.update("service_locations", vid(1), {"plan_id": 113})
    await vetro.connector.update("service_locations", vid(1), {})
    assert len(api_requests(vetro.faults, "PATCH")) == 2


async def test_refusals_are_terminal_with_vetros_message(vetro: Vetro) -> None:
    with pytest.raises(errors.TerminalRemoteError) as caught:
        await vetro.connector.update("service_locations", vid(2), {"properties.Building Type": "Castle"})
    assert (
        caught.value.status == 400
        and "Castle" in str(caught.value)
        and "PATCH /v2/features" in str(caught.value)
    )
    with pytest.raises(errors.TerminalRemoteError):
        await vetro.connector.update("service_locations", vid(2), {"properties.Invented": "x"})
    assert len(api_requests(vetro.faults, "PATCH")) == 2  # 4xx: not retried


async def test_update_many_batches_and_isolates_a_bad_item(
    vetro: Vetro, session: aiohttp.ClientSession
) -> None:
    batched = other(vetro, session, vetro.url + "?batch=3")
    items: list[tuple[str, Fields]] = [(vid(n), {"properties.COS Reachable": "Yes"}) for n in range(1, 8)]
    items[4] = (vid(5), {"properties.COS Reachable": "Maybe"})
    items.append((vid(404), {"properties.COS Reachable": "No"}))
    outcome = await batched.update_many("service_locations", items)
    assert [o is None for o in outcome] == [True, True, True, True, False, True, True, False]
    assert isinstance(outcome[4], errors.TerminalRemoteError) and "Maybe" in str(outcome[4])
    sizes = [len(e.body["features"]) for e in api_requests(vetro.faults, "PATCH")]
    assert sizes == [3, 3, 1, 1, 1, 2, 1, 1]
    reachable = {vid(n): vetro.store.features[vid(n)]["properties"].get("COS Reachable") for n in range(1, 8)}
    assert [reachable[vid(n)] for n in range(1, 8)] == ["Yes", "Yes", "Yes", "Yes", None, "Yes", "Yes"]


# -- transport behaviour ---------------------------------------------------------------------------------


async def test_429_is_retried_after_the_servers_retry_after(session: aiohttp.ClientSession) -> None:
    async for env in _vetro(session, page_size=10, backoff=0.001, backoff_max=0.3):
        add_fault(env.faults, "429", seconds=1, route="/features/query", count=1)
        assert len(await collect(env.connector)) == 7
        queries = api_requests(env.faults, "GET", "/features/query")
        assert [q.status for q in queries[:2]] == [429, 200]
        assert (
            queries[1].at - queries[0].at >= 0.25
        )  # Retry-After 1 s capped by backoff-max 0.3 s, not the 1 ms backoff
        stats = env.connector.statistics()
        assert stats["retries"] == 1 and stats["errors.rate_limited"] == 1


async def test_html_and_malformed_answers_are_retried(vetro: Vetro) -> None:
    add_fault(vetro.faults, "html", route="/layers", count=1)
    add_fault(vetro.faults, "malformed", route="/layers", count=1)
    assert len(await collect(vetro.connector)) == 7
    assert [e.status for e in api_requests(vetro.faults, "GET", "/layers")] == [502, 200, 200]


async def test_auth_errors_are_mapped_and_never_show_the_token(session: aiohttp.ClientSession) -> None:
    async for env in _vetro(session, token="not-the-token-9f8e7d"):
        with pytest.raises(errors.AuthError) as caught:
            await collect(env.connector)
        assert caught.value.status == 401
        assert_no_secret(caught.value, "not-the-token-9f8e7d")
        assert len(api_requests(env.faults)) == 1
    async for env in _vetro(session, token=PLAN_112_ONLY):
        scoped = VetroConnector(system("vetro", env.url + "?plans=113", PLAN_112_ONLY), session)
        with pytest.raises(errors.AuthError) as denied:
            await collect(scoped)
        assert denied.value.status == 403
        assert_no_secret(denied.value, PLAN_112_ONLY)


async def test_registry_knows_the_vetro_kind(session: aiohttp.ClientSession) -> None:
    connector = registry.create(system("vetro", "http://192.0.2.9", "t"), session)
    assert isinstance(connector, VetroConnector)
    catalog = registry.catalogs({"v": system("vetro", "http://192.0.2.9", "t")})["v"]
    schema = catalog["service_locations"]
    assert schema.incremental and not schema.deletions
    assert {"properties.COS Object Status", "properties.COS Link", "lon", "lat"} <= schema.writable
    assert "feature_id" in schema.fields and "feature_id" not in schema.writable


def _conforms(v: VetroConnector) -> Connector:
    """Never run: mypy checks that the class implements the Connector Protocol."""
    return v
