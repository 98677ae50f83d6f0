"""ArcholtConnector against the ArchOLT sandbox over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler import errors
from reconciler.connectors import registry
from reconciler.connectors.archolt.client import CursorExpired, KeysetWalk, Refused, api_base
from reconciler.connectors.archolt.connector import ArcholtConnector
from reconciler.connectors.archolt.views import event_cursor, utc_text
from reconciler.connectors.base import Connector
from reconciler.model import Record
from reconciler.sandbox import archolt_domain
from reconciler.sandbox.archolt import ArcholtStore, create_app
from reconciler.sandbox.faults import Faults
from tests.connectors.conftest import add_fault, api_requests, system, url_of
from tests.sandbox.test_archolt_support import BOX_12, BOX_20N, BOX_30, OZ_OLT_2, RO, RW, Clock, seeded_store

pytestmark = pytest.mark.anyio


class Env(NamedTuple):
    store: ArcholtStore
    faults: Faults
    url: str
    connector: ArcholtConnector
    clock: Clock


async def _env(
    session: aiohttp.ClientSession, *, token: str = RW, faults: Faults | None = None, **http: Any
) -> AsyncIterator[Env]:
    clock = Clock()
    store = seeded_store(clock)
    faults = faults if faults is not None else Faults(seed=1)
    async with TestServer(create_app(store, faults=faults), host="127.0.0.1") as server:
        url = url_of(server)
        yield Env(store, faults, url, ArcholtConnector(system("archolt", url, token, **http), session), clock)


@pytest.fixture
async def env(session: aiohttp.ClientSession) -> AsyncIterator[Env]:
    async for value in _env(session, page_size=2):
        yield value


async def collect(env: Env, collection: str, **kwargs: Any) -> list[Record]:
    return [r async for page in env.connector.stream(collection, **kwargs) for r in page]


def box_fields(**extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ozmap_box_id": "box-40", "name": "CTO-40", "ozmap_olt_id": OZ_OLT_2, "project": "Norte",
        "latitude": -23.5, "longitude": -46.6, "ports_total": 16, "ports_free": 5, "active": True,
    }  # fmt: skip
    fields.update(extra)
    return fields


def _conforms(connector: ArcholtConnector) -> Connector:
    """Never run: mypy checks here that the class implements the Connector Protocol."""
    return connector


# -- streams -----------------------------------------------------------------------------------------------------


async def test_onus_stream_is_provisioned_onus_flattened_by_keyset(env: Env) -> None:
    records = await collect(env, "onus")
    assert [r.id for r in records] == ["5815", "5813", "5812"]  # updated_at order
    onu = records[2]
    assert onu.updated_at == "2025-06-03T13:07:40Z" and not onu.deleted
    assert onu.fields == {
        "id": "5812", "onu_id": 5812, "serial": "ZTEGC8A1B2C3", "olt_id": 1, "olt_name": "OLT-CENTRO-01",
        "olt_ip": "10.20.0.2", "ozmap_olt_id": "64b7f0c2a1e5d93b7c0e4a11", "require_cto": True, "slot": 1,
        "pon": 1, "onu_index": 0, "model": "F670L", "vlan": 100, "description": "Rua das Flores, 120",
        "pppoe_user": "joao.silva", "state": "provisioned", "has_cto": True, "cto_id": 7, "cto_name": "CTO-12",
        "cto_ozmap_box_id": BOX_12, "oper_state": "online", "rx_power_dbm": -19.42, "tx_power_dbm": 2.31,
        "provisioned_at": "2025-06-03T13:05:12Z", "deprovisioned_at": None, "updated_at": "2025-06-03T13:07:40Z",
    }  # fmt: skip
    assert set(onu.fields) == ArcholtConnector.CATALOG["onus"].fields
    unmapped = records[0].fields
    assert unmapped["ozmap_olt_id"] is None and unmapped["cto_id"] is None and unmapped["has_cto"] is False
    lists = api_requests(env.faults, "GET", "/onus")
    assert [e.query.get("after_id") for e in lists] == [None, "5813"]
    assert all(e.query["status"] == "provisioned" and e.query["per_page"] == "2" for e in lists)
    assert lists[1].query["updated_since"] == "2025-06-02T10:00:00-03:00"  # the server's own spelling


async def test_incremental_stream_is_inclusive_and_deleted_lists_tombstones(env: Env) -> None:
    since = "2025-06-02T13:00:00Z"  # 10:00 in São Paulo: 5813's updated_at exactly
    records = await collect(env, "onus", since=since)
    assert [r.id for r in records] == ["5813", "5812"]
    assert api_requests(env.faults, "GET", "/onus")[0].query["updated_since"] == since
    tombs = await collect(env, "onus", since="2025-05-01T00:00:00Z", deleted=True)
    assert [(r.id, r.deleted, r.fields["state"]) for r in tombs] == [("5814", True, "deprovisioned")]
    assert tombs[0].fields["cto_ozmap_box_id"] == BOX_20N
    assert await collect(env, "onus", since="2025-06-01T00:00:00Z", deleted=True) == []


async def test_deprovisioned_onu_leaves_the_stream_and_joins_the_deletions(env: Env) -> None:
    before = [r.id for r in await collect(env, "onus")]
    env.clock.tick(60)
    archolt_domain.deprovision(env.store, 5813)
    after = [r.id for r in await collect(env, "onus")]
    gone = await collect(env, "onus", since="2025-06-03T15:00:00Z", deleted=True)
    assert "5813" in before and "5813" not in after
    assert [(r.id, r.updated_at) for r in gone] == [("5813", "2025-06-03T15:01:00Z")]


async def test_naive_local_timestamps_give_the_same_records(env: Env) -> None:
    offset = await collect(env, "onus")
    env.store.knobs.naive_local_timestamps = True
    naive = await collect(env, "onus")
    assert naive == offset
    assert api_requests(env.faults, "GET", "/onus")[-1].query["updated_since"] == "2025-06-02 10:00:00"


async def test_keyset_walk_survives_edits_between_pages(session: aiohttp.ClientSession) -> None:
    async for env in _env(session, page_size=5):
        env.store.load(
            "onus",
            [{"id": 100 + i, "serial": f"ZTEG{i:08X}", "olt_id": 2, "onu_index": i % 100,
              "updated_at": "2025-06-01T00:00:00-03:00"} for i in range(40)],
        )  # fmt: skip
        env.store.knobs.mutate_onus_between_pages = 2
        records = await collect(env, "onus")
        ids = {r.id for r in records}
        assert ids == {str(i) for i in range(100, 140)} | {"5812", "5813", "5815"}
        edited = [r for r in records if "(rev" in str(r.fields["description"])]
        assert edited  # re-read with their new content


async def test_olts_and_ctos_streams(env: Env) -> None:
    olts = await collect(env, "olts")
    assert [r.id for r in olts] == ["2", "3", "1"]
    sul = olts[1].fields
    assert sul["mapped"] is False and sul["ozmap_olt_id"] is None
    centro = olts[2].fields
    assert (
        centro["require_cto_on_activation"] is True and centro["onu_count"] == 1 and centro["pon_count"] == 2
    )
    assert centro["pon_ports"] == [
        {"slot": 1, "pon": 1, "onu_count": 1, "max_onus": 128},
        {"slot": 1, "pon": 2, "onu_count": 0, "max_onus": 2},
    ]
    recent = await collect(env, "olts", since="2025-05-30T00:00:00Z")
    assert [r.id for r in recent] == ["1"]
    ctos = await collect(env, "ctos")
    assert [r.id for r in ctos][:2] == [BOX_12, BOX_20N]
    first = ctos[0]
    assert (
        first.fields["cto_id"] == 7 and first.fields["olt_id"] == 1 and first.fields["ozmap_box_id"] == BOX_12
    )
    assert first.updated_at == "2025-06-01T12:00:00Z"
    assert [r.fields["cto_id"] for r in await collect(env, "ctos", since="2025-06-02T00:00:00Z")] == [9]


async def test_events_stream_from_a_position(env: Env) -> None:
    for onu in (5812, 5813, 5815):
        env.store.load("events", [{"type": "onu.updated", "onu_id": onu}])
    everything = await collect(env, "events")
    assert [r.id for r in everything] == ["1", "2", "3"]
    assert everything[0].updated_at == event_cursor(1) and everything[0].fields["onu_id"] == 5812
    assert everything[0].fields["at"] == "2025-06-03T15:00:00Z"
    later = await collect(env, "events", since=event_cursor(2))
    assert [r.id for r in later] == ["2", "3"]
    assert api_requests(env.faults, "GET", "/events")[-1].query == {"limit": "1000", "after": "1"}
    with pytest.raises(errors.ConfigError):
        await collect(env, "events", since="2025-06-01T00:00:00Z")


async def test_expired_feed_position_raises_cursor_expired(env: Env) -> None:
    env.store.load("events", [{"type": "onu.updated", "onu_id": 5812}])
    env.clock.tick(8 * 86400)
    env.store.load("events", [{"type": "onu.updated", "onu_id": 5813}])
    with pytest.raises(CursorExpired) as caught:
        await collect(env, "events", since=event_cursor(1))
    assert caught.value.code == "cursor_expired" and caught.value.details["oldest_seq"] == 2
    assert [r.id for r in await collect(env, "events")] == ["2"]


async def test_events_feed_follows_next_after_across_full_pages(env: Env) -> None:
    env.store.load("events", [{"type": "onu.updated", "onu_id": 5812} for _ in range(1500)])
    records = await collect(env, "events")
    assert len(records) == 1500 and records[-1].id == "1500"
    assert [e.query.get("after") for e in api_requests(env.faults, "GET", "/events")] == [None, "1000"]


async def test_unknown_collection_and_unsupported_streams_fail_without_a_request(env: Env) -> None:
    with pytest.raises(errors.ConfigError, match="known: "):
        env.connector.stream("boxes")
    for collection in ("olts", "ctos", "events"):
        with pytest.raises(errors.ConfigError):
            env.connector.stream(collection, since="2025-01-01T00:00:00Z", deleted=True)
    assert not api_requests(env.faults)


# -- lookups -------------------------------------------------------------------------------------------------------


async def test_fetch_by_ids(env: Env) -> None:
    onus = await env.connector.fetch_by_ids("onus", ["5813", "5814", "1", "x", "5812", "5813"])
    assert [r.id for r in onus] == ["5813", "5812"]  # the tombstone 5814 counts as gone
    assert onus[1].fields["olt_name"] == "OLT-CENTRO-01"
    olts = await env.connector.fetch_by_ids("olts", ["3", "9"])
    assert [r.id for r in olts] == ["3"]
    ctos = await env.connector.fetch_by_ids("ctos", [BOX_30, "nope"])
    assert [r.fields["cto_id"] for r in ctos] == [10]
    with pytest.raises(errors.ConfigError):
        await env.connector.fetch_by_ids("events", ["1"])


async def test_find_filters_on_the_server_and_rechecks_exactly(env: Env) -> None:
    by_serial = await env.connector.find("onus", {"serial": "ZTEGC8A1B2C3"})
    assert [r.id for r in by_serial] == ["5812"]
    assert api_requests(env.faults, "GET", "/onus")[-1].query["serial"] == "ZTEGC8A1B2C3"
    assert [r.id for r in await env.connector.find("onus", {"olt_id": 2})] == ["5813"]
    assert [r.id for r in await env.connector.find("onus", {"cto_name": "CTO-12"})] == ["5812"]
    assert [r.id for r in await env.connector.find("onus", {"has_cto": False, "olt_id": 3})] == ["5815"]
    assert await env.connector.find("onus", {"olt_id": "2"}) == []
    assert [r.id for r in await env.connector.find("onus", {"id": "5812", "serial": "ZTEGC8A1B2C3"})] == [
        "5812"
    ]
    twins = await env.connector.find("ctos", {"name": "CTO-20"})
    assert sorted(str(r.fields["project"]) for r in twins) == ["Norte", "Sul"]
    assert [r.id for r in await env.connector.find("olts", {"ip": "10.20.0.9"})] == ["3"]
    with pytest.raises(errors.ConfigError):
        await env.connector.find("onus", {"colour": "red"})
    with pytest.raises(errors.ConfigError):
        await env.connector.find("events", {"seq": 1})


# -- writes --------------------------------------------------------------------------------------------------------


async def test_create_upserts_a_mirror_and_is_retried_after_a_503(env: Env) -> None:
    add_fault(env.faults, "error", route="/ctos/ozmap/", count=1)
    new_id = await env.connector.create("ctos", box_fields())
    assert new_id == "box-40"
    mirror = env.store.cto_by_box("box-40")
    assert mirror is not None and mirror["olt_id"] == 2 and mirror["name"] == "CTO-40"
    puts = api_requests(env.faults, "PUT", "/ctos/ozmap/box-40")
    assert len(puts) == 2 and "ozmap_box_id" not in puts[1].body
    assert env.connector.statistics()["retries"] == 1
    assert [e["type"] for e in env.store.all("events")] == ["cto.upserted"]


async def test_update_overlays_changes_on_the_current_mirror(env: Env) -> None:
    env.clock.tick(60)
    await env.connector.update("ctos", BOX_30, {"ports_free": 1, "name": "CTO-30B"})
    row = env.store.cto_by_box(BOX_30)
    assert row is not None
    assert (row["ports_free"], row["name"], row["project"], row["ports_total"]) == (
        1,
        "CTO-30B",
        "Centro",
        16,
    )
    put = api_requests(env.faults, "PUT")[-1].body
    assert put["ports_free"] == 1 and put["latitude"] == -23.55052 and "ozmap_box_id" not in put
    await env.connector.update("ctos", BOX_30, {})
    assert len(api_requests(env.faults, "PUT")) == 1
    with pytest.raises(errors.NotFound):
        await env.connector.update("ctos", "nope", {"ports_free": 1})
    with pytest.raises(errors.ConfigError):
        await env.connector.update("ctos", BOX_30, {"ozmap_box_id": "other"})


async def test_delete_removes_or_deactivates_when_in_use(env: Env) -> None:
    await env.connector.delete("ctos", BOX_30)
    assert env.store.cto_by_box(BOX_30) is None
    await env.connector.delete("ctos", BOX_12)  # ONU 5812 uses it
    row = env.store.cto_by_box(BOX_12)
    assert row is not None and row["active"] is False
    deletes = api_requests(env.faults, "DELETE", f"/ctos/ozmap/{BOX_12}")
    assert [e.query for e in deletes] == [{}, {"deactivate": "true"}]
    with pytest.raises(errors.NotFound):
        await env.connector.delete("ctos", "nope")


async def test_write_guards(env: Env) -> None:
    with pytest.raises(errors.ConfigError, match="read-only"):
        await env.connector.create("onus", {"serial": "X"})
    with pytest.raises(errors.ConfigError, match="read-only"):
        await env.connector.delete("olts", "1")
    with pytest.raises(errors.ConfigError, match="not writable"):
        await env.connector.update("ctos", BOX_30, {"olt_id": 2})
    with pytest.raises(errors.ConfigError, match="ozmap_box_id"):
        await env.connector.create("ctos", {"name": "x"})
    with pytest.raises(errors.ConfigError, match="no operation"):
        await env.connector.operate("ctos", BOX_30, "cancel", {})
    assert not api_requests(env.faults)


async def test_refusals_keep_code_and_details(env: Env) -> None:
    with pytest.raises(Refused) as caught:
        await env.connector.create("ctos", box_fields(latitude=123.0))
    refusal = caught.value
    assert refusal.code == "invalid_parameter" and refusal.status == 400
    assert refusal.details["parameter"] == "latitude"
    assert not errors.is_transient(refusal)
    assert len(api_requests(env.faults, "PUT")) == 1  # never retried


# -- errors, retries, secrets --------------------------------------------------------------------------------------


async def test_wrong_token_is_auth_error_without_the_token(session: aiohttp.ClientSession) -> None:
    async for env in _env(session, token="wrong-secret-token"):
        with pytest.raises(errors.AuthError) as caught:
            await collect(env, "olts")
        assert caught.value.status == 401 and "wrong-secret-token" not in str(caught.value)
        assert "unauthenticated" in str(caught.value)


async def test_read_token_cannot_write(session: aiohttp.ClientSession) -> None:
    async for env in _env(session, token=RO):
        assert len(await collect(env, "olts")) == 3
        with pytest.raises(errors.AuthError) as caught:
            await env.connector.create("ctos", box_fields())
        assert caught.value.status == 403 and RO not in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("error", {"status": 503}),
        ("error", {"status": 502}),
        ("html", {"status": 502}),
        ("429", {"seconds": 0}),
        ("malformed", {}),
        ("reset", {"count": 2}),  # aiohttp itself resends once when a reused connection drops
        ("timeout", {"seconds": 2}),
    ],
)
async def test_transient_faults_are_retried(session: aiohttp.ClientSession, kind: str, options: Any) -> None:
    async for env in _env(session, page_size=2, timeout=0.5):
        add_fault(env.faults, kind, route="/api/v1/onus", **{"count": 1, **options})
        records = await collect(env, "onus")
        assert [r.id for r in records] == ["5815", "5813", "5812"]
        assert env.connector.statistics()["retries"] >= 1


async def test_exhausted_retries_on_the_first_page_raise_transient(env: Env) -> None:
    add_fault(env.faults, "error", status=503, route="/api/v1/olts")
    with pytest.raises(errors.TransientRemoteError):
        await collect(env, "olts")
    assert len(api_requests(env.faults, "GET", "/olts")) == 4  # 1 + 3 retries


async def test_concurrent_lookups_raise_a_plain_remote_error(env: Env) -> None:
    add_fault(env.faults, "error", status=503, route="/api/v1/olts/")
    with pytest.raises(errors.TransientRemoteError):
        await env.connector.fetch_by_ids("olts", ["1", "2", "3"])


async def test_failure_mid_walk_is_snapshot_incomplete(env: Env) -> None:
    seen: list[str] = []
    with pytest.raises(errors.SnapshotIncomplete):
        async for page in env.connector.stream("onus"):
            seen.extend(r.id for r in page)
            add_fault(env.faults, "error", status=503, route="/api/v1/onus")
    assert seen == ["5815", "5813"]


async def test_server_rate_limit_is_honoured(session: aiohttp.ClientSession) -> None:
    async for env in _env(session, backoff_max=0.2):
        env.store.monotonic = time.monotonic
        env.store.knobs.rate_limit, env.store.knobs.rate_burst = 20.0, 1
        records = await env.connector.fetch_by_ids("olts", ["1", "2", "3"])
        assert sorted(r.id for r in records) == ["1", "2", "3"]
        assert env.connector.statistics().get("errors.rate_limited", 0) >= 1


async def test_secrets_are_scrubbed_from_error_bodies(session: aiohttp.ClientSession) -> None:
    leaky = Faults(html_page=f"<html>debug: token={RW}</html>", html_status=500)
    async for env in _env(session, faults=leaky):
        add_fault(env.faults, "html", route="/api/v1/olts")
        with pytest.raises(errors.TransientRemoteError) as caught:
            await collect(env, "olts")
        assert RW not in str(caught.value) and "***" in str(caught.value)


# -- pieces ----------------------------------------------------------------------------------------------------


def test_api_base_and_time_normalisation() -> None:
    assert api_base("https://olt.example/") == "https://olt.example/api/v1"
    assert api_base("https://olt.example/api/v1/") == "https://olt.example/api/v1"
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Sao_Paulo")
    assert utc_text("2025-06-03T11:22:31-03:00", zone) == "2025-06-03T14:22:31Z"
    assert utc_text("2025-06-03 11:22:31", zone) == "2025-06-03T14:22:31Z"
    assert utc_text("garbage", zone) == "garbage" and utc_text(None, zone) is None


def test_keyset_walk_rules() -> None:
    walk = KeysetWalk(2, what="t onus", since="S")
    assert walk.params() == {"page": "1", "per_page": "2", "updated_since": "S"}
    walk.receive(5, ("T1", 4), 2)
    assert walk.params()["after_id"] == "4" and not walk.done
    with pytest.raises(errors.SnapshotIncomplete):
        KeysetWalk(2, what="t").receive(3, None, 0)
    with pytest.raises(errors.SnapshotIncomplete):
        KeysetWalk(2, what="t").receive(1, ("T", 1), 2)
    stuck = KeysetWalk(2, what="t")
    stuck.receive(5, ("T", 1), 2)
    with pytest.raises(errors.SnapshotIncomplete):
        stuck.receive(5, ("T", 1), 2)
    done = KeysetWalk(2, what="t")
    done.receive(0, None, 0)
    assert done.done


async def test_registry_knows_the_kind(session: aiohttp.ClientSession) -> None:
    connector = registry.create(system("archolt", "http://192.0.2.9", RW), session)
    assert isinstance(connector, ArcholtConnector) and connector.system == "archolt"
    catalog = registry.catalogs({"olt": system("archolt", "http://192.0.2.9", RW)})["olt"]
    assert catalog["ctos"].writable and not catalog["onus"].writable
    assert catalog["onus"].incremental and catalog["onus"].deletions
    assert {"onu_id", "serial", "pppoe_user", "olt_name", "cto_name", "state", "require_cto"} <= catalog[
        "onus"
    ].fields
