"""ArchOLT sandbox: shared fault kinds and request log, the ``/_sandbox/`` control API, and the world builder."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from reconciler.sandbox.archolt import DEFAULT_READ_TOKEN, DEFAULT_TOKEN, ArcholtStore, create_app
from reconciler.sandbox.archolt_world import archolt_rows
from reconciler.sandbox.faults import Faults
from tests.sandbox.test_archolt_support import RW, Clock, running, seeded_store

pytestmark = pytest.mark.anyio

OZ_OLTS = [
    {"id": "65f1c0de0000000000000001", "name": "OLT-Huawei-1", "ip": "10.0.0.1"},
    {"id": "65f1c0de0000000000000002", "name": "OLT-ZTE-2", "ip": "10.0.0.2"},
    {"id": "65f1c0de0000000000000003", "name": "OLT-Nokia-3", "ip": "10.0.0.3"},
    {"id": "65f1c0de0000000000000004", "name": "OLT-Parks-4", "ip": "10.0.0.4"},
]


async def add_fault(api: Any, **rule: Any) -> dict[str, Any]:
    status, body = await api.control("POST", "faults", rule)
    assert status == 201, body
    assert isinstance(body, dict)
    return body


# -- fault kinds ---------------------------------------------------------------------------------------------------


async def test_latency() -> None:
    async with running() as api:
        await add_fault(api, kind="latency", seconds=0.2, route="^/api/v1/olts$")
        started = time.perf_counter()
        assert (await api.get("olts")).status == 200
        assert time.perf_counter() - started >= 0.2


async def test_error_is_an_html_gateway_page_and_count_limits_it() -> None:
    async with running() as api:
        await add_fault(api, kind="error", status=502, count=1)
        failed = await api.get("olts")
        fine = await api.get("olts")
    assert failed.status == 502 and failed.content_type == "text/html" and "502" in failed.text
    assert fine.status == 200


async def test_default_app_faults_use_an_nginx_502_page() -> None:
    store = seeded_store()
    app = create_app(store)
    from reconciler.sandbox.archolt import FAULTS_KEY

    faults = app[FAULTS_KEY]
    assert faults.html_status == 502 and "nginx" in faults.html_page


async def test_429_fault_carries_retry_after() -> None:
    async with running() as api:
        await add_fault(api, kind="429", seconds=2, method="GET")
        limited = await api.get("onus")
        write = await api.call("POST", "/api/v1/onus/5813/deprovision")
    assert limited.status == 429 and limited.headers["Retry-After"] == "2"
    assert write.status == 200


async def test_timeout_and_reset() -> None:
    async with running() as api:
        await add_fault(api, kind="timeout", seconds=0.5, count=1)
        with pytest.raises(TimeoutError):
            await api.call("GET", "/api/v1/olts", wait=0.1)
        await add_fault(api, kind="reset")
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await api.get("olts")
        await api.control("DELETE", "faults")
        assert (await api.get("olts")).status == 200
        status, stats = await api.control("GET", "stats")
    assert status == 200 and stats["injected"]["reset"] >= 1 and stats["injected"]["timeout"] == 1


async def test_malformed_and_html() -> None:
    async with running(faults=Faults(html_page="<html>ArchOLT indisponível</html>", html_status=503)) as api:
        await add_fault(api, kind="malformed", count=1)
        malformed = await api.get("olts")
        await add_fault(api, kind="html", count=1)
        html = await api.get("olts")
    assert malformed.status == 200
    with pytest.raises(ValueError):
        malformed.json()
    assert html.status == 503 and "indisponível" in html.text


async def test_lost_answer_still_writes() -> None:
    async with running() as api:
        await add_fault(api, kind="lost", method="POST", count=1)
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await api.call("POST", "/api/v1/onus/5813/deprovision")
    assert api.store.rows["onus"][5813]["status"] == "deprovisioned"
    assert [e["type"] for e in api.store.all("events")] == ["onu.deprovisioned"]


async def test_request_log_never_keeps_the_token() -> None:
    async with running() as api:
        await api.call("PUT", "/api/v1/onus/5813/cto", json={"cto_id": 10})
        status, log = await api.control("GET", "requests")
    assert status == 200
    [entry] = log
    assert entry["method"] == "PUT" and entry["path"] == "/api/v1/onus/5813/cto"
    assert entry["body"] == {"cto_id": 10} and entry["status"] == 200
    assert "authorization" not in entry["headers"]
    assert RW not in str(log)


async def test_put_faults_replaces_the_rules() -> None:
    async with running() as api:
        await add_fault(api, kind="latency", seconds=1)
        status, rules = await api.control("PUT", "faults", [{"kind": "error", "status": 500, "count": 1}])
        bad_status, _ = await api.control("PUT", "faults", [{"kind": "boom"}])
        failed = await api.get("olts")
    assert status == 200 and [r["kind"] for r in rules] == ["error"]
    assert bad_status == 400 and [r.kind for r in api.faults.rules] == ["error"]  # a bad list changes nothing
    assert failed.status == 500


# -- control API ---------------------------------------------------------------------------------------------------


async def test_knobs() -> None:
    async with running() as api:
        status, knobs = await api.control("GET", "knobs")
        changed = await api.control("POST", "knobs", {"naive_local_timestamps": True})
        bad = await api.control("POST", "knobs", {"nope": 1})
        onu = (await api.get("onus/5812")).json()
    assert status == 200 and knobs["rate_limit"] == 0
    assert changed[1]["naive_local_timestamps"] is True
    assert bad[0] == 400
    assert onu["updated_at"] == "2025-06-03 10:07:40"


async def test_store_reads_and_raw_inserts() -> None:
    async with running() as api:
        listed = await api.control("GET", "store/ctos")
        one = await api.control("GET", "store/onus/5812")
        absent = await api.control("GET", "store/onus/1")
        unknown = await api.control("GET", "store/boxes")
        inserted = await api.control("POST", "store/olts", {"name": "OLT-X", "ip": "10.9.9.9"})
        bulk = await api.control(
            "POST", "store/ctos", [{"ozmap_box_id": "b1", "name": "N1"}, {"ozmap_box_id": "b2"}]
        )
        bad = await api.control("POST", "store/ctos", {"name": "no box"})
        not_rows = await api.control("POST", "store/ctos", [1, 2])
        event = await api.control("POST", "store/events", {"type": "onu.updated", "onu_id": 5812})
    assert listed[0] == 200 and [c["id"] for c in listed[1]] == [7, 8, 9, 10, 11]
    assert one[1]["serial"] == "ZTEGC8A1B2C3"
    assert absent[0] == 404 and unknown[0] == 404
    assert inserted[0] == 201 and inserted[1]["id"] == 4 and inserted[1]["pon_ports"] == []
    assert bulk == (201, {"loaded": 2})
    assert bad[0] == 400 and not_rows[0] == 400
    assert event[0] == 201 and event[1]["seq"] == 1
    assert api.store.last_seq == 1  # raw inserts write no event of their own


async def test_operator_edits_apply_the_rules_and_write_events() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as api:
        clock.tick(60)
        edited = await api.control(
            "PATCH", "store/onus/5813", {"description": "Av. Brasil, 7", "rx_power_dbm": -20.5}
        )
        linked = await api.control("PATCH", "store/onus/5813", {"cto_name": "CTO-30"})
        refused = await api.control("PATCH", "store/onus/5812", {"cto_id": None})
        reading = await api.control("PATCH", "store/onus/5812", {"oper_state": "los"})
        gone = await api.control("PATCH", "store/onus/5813", {"status": "deprovisioned"})
        revive = await api.control("PATCH", "store/onus/5813", {"status": "provisioned"})
        olt = await api.control("PATCH", "store/olts/3", {"name": "OLT-SUL-03B", "ozmap_olt_id": "oz-3"})
        mirror = await api.control("PATCH", "store/ctos/10", {"ports_free": 1})
        events_patch = await api.control("PATCH", "store/events/1", {})
    assert edited[0] == 200 and edited[1]["updated_at"] == "2025-06-03T12:01:00-03:00"
    assert edited[1]["rx_power_dbm"] == -20.5
    assert linked[1]["cto"]["id"] == 10
    assert refused[0] == 422 and refused[1]["error"]["code"] == "cto_required"
    assert reading[1]["oper_state"] == "los" and reading[1]["updated_at"] == "2025-06-03T10:07:40-03:00"
    assert gone[1]["status"] == "deprovisioned"
    assert revive[0] == 400
    assert olt[1]["name"] == "OLT-SUL-03B"
    assert mirror[1]["ports_free"] == 1
    assert events_patch[0] == 400
    assert [e["type"] for e in api.store.all("events")] == [
        "onu.updated", "onu.cto_changed", "onu.deprovisioned", "olt.updated", "cto.upserted",
    ]  # fmt: skip


async def test_operator_provision_deprovision_and_purge() -> None:
    async with running() as api:
        created = await api.control(
            "POST", "provision", {"olt_id": 2, "slot": 1, "pon": 1, "serial": "ZTEG0000ABCD"}
        )
        refused = await api.control(
            "POST", "provision", {"olt_id": 1, "slot": 1, "pon": 1, "serial": "ZTEG0000ABCE"}
        )
        deprovisioned = await api.control("DELETE", "store/onus/5813")
        purged = await api.control("DELETE", "store/onus/5814?purge=true")
        removed_cto = await api.control("DELETE", "store/ctos/8")
        missing = await api.control("DELETE", "store/ctos/80")
    assert created[0] == 201 and created[1]["onu_index"] == 1
    assert refused[0] == 422 and refused[1]["error"]["code"] == "cto_required"
    assert deprovisioned[1]["status"] == "deprovisioned"
    assert purged[0] == 204 and 5814 not in api.store.rows["onus"]
    assert removed_cto[0] == 204 and missing[0] == 404
    assert [e["type"] for e in api.store.all("events")] == ["onu.provisioned", "onu.deprovisioned"]


async def test_clock_get_set_and_advance() -> None:
    async with running() as api:
        now = await api.control("GET", "clock")
        moved = await api.control("PUT", "clock", {"advance_seconds": 3600})
        posted = await api.control("POST", "clock", {"advance_seconds": 60})
        set_to = await api.control("PUT", "clock", {"now": "2025-07-01T08:00:00-03:00"})
        bad = await api.control("PUT", "clock", {"advance_seconds": -1})
        bad_now = await api.control("PUT", "clock", {"now": "soon"})
    assert now == (200, {"now": "2025-06-03T12:00:00-03:00", "epoch": 1748962800})
    assert moved[1]["now"] == "2025-06-03T13:00:00-03:00"
    assert posted[1]["now"] == "2025-06-03T13:01:00-03:00"
    assert set_to[1]["now"] == "2025-07-01T08:00:00-03:00"
    assert bad[0] == 400 and bad_now[0] == 400


async def test_reset_and_seed() -> None:
    async with running() as api:
        await api.get("olts")
        await add_fault(api, kind="latency", seconds=0.01)
        reset = await api.control("POST", "reset")
        empty = await api.get("olts")
        seeded = await api.control("POST", "seed", {"seed": 3, "scale": 40, "ozmap_olts": OZ_OLTS})
        bad = await api.control("POST", "seed", {"seed": "x"})
        olts = await api.get("olts")
    assert reset[0] == 204 and empty.json()["meta"]["total"] == 0 and not api.faults.rules
    assert seeded[0] == 201 and seeded[1]["loaded"]["olts"] == 4 and seeded[1]["loaded"]["onus"] == 40
    assert bad[0] == 400
    assert {o["ip"] for o in olts.data} == {o["ip"] for o in OZ_OLTS}


async def test_seed_stamps_the_world_at_the_server_clock() -> None:
    clock = Clock(datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    async with running(seeded_store(clock)) as api:
        await api.control("POST", "seed", {"seed": 5, "scale": 30})
        tombs = await api.get("onus", status="deprovisioned")
    assert tombs.data  # within the 30 days of the server's now, so not purged on the first request
    assert all(o["updated_at"] <= "2026-01-15T09:00:00-03:00" for o in tombs.data)


async def test_store_rejects_unknown_scopes_and_has_default_tokens() -> None:
    with pytest.raises(ValueError):
        ArcholtStore(tokens={"t": "admin"})
    store = ArcholtStore()
    assert store.tokens == {DEFAULT_TOKEN: "read_write", DEFAULT_READ_TOKEN: "read"}


# -- world builder -------------------------------------------------------------------------------------------------


def test_world_is_deterministic_and_covers_every_case() -> None:
    rows = archolt_rows(42, 60, OZ_OLTS)
    assert rows == archolt_rows(42, 60, OZ_OLTS)
    assert rows != archolt_rows(43, 60, OZ_OLTS)
    olts, ctos, onus = rows["olts"], rows["ctos"], rows["onus"]
    assert [(o["name"], o["ip"]) for o in olts] == [(o["name"], o["ip"]) for o in OZ_OLTS]
    assert [o["ozmap_olt_id"] for o in olts] == [o["id"] for o in OZ_OLTS[:3]] + [None]
    assert len({o["vendor"] for o in olts}) == 4
    assert [o["require_cto_on_activation"] for o in olts] == [True, False, False, False]
    names = [c["name"] for c in ctos]
    twins = [c for c in ctos if names.count(c["name"]) > 1]
    assert len(twins) == 2 and twins[0]["project"] != twins[1]["project"]
    assert len(onus) == 60 and len({o["id"] for o in onus}) == 60
    required = [o for o in onus if o["olt_id"] == 1 and o["status"] == "provisioned"]
    assert required and all(o["cto"] is not None for o in required)
    provisioned = [o for o in onus if o["status"] == "provisioned"]
    assert any(o["cto"] is None and o["olt_id"] in (2, 3) for o in provisioned)
    assert any(o["olt_id"] == 4 for o in provisioned)
    assert any(o["status"] == "deprovisioned" for o in onus)
    assert any(o["cto"] is not None and o["cto"]["name"] == twins[0]["name"] for o in provisioned)
    serials = [o["serial"] for o in onus]
    [again] = [s for s in set(serials) if serials.count(s) > 1]
    states = sorted(o["status"] for o in onus if o["serial"] == again)
    assert states == ["deprovisioned", "provisioned"]
    live = [(o["olt_id"], o["slot"], o["pon"], o["onu_index"]) for o in provisioned]
    assert len(live) == len(set(live))


def test_world_loads_and_serves_consistently() -> None:
    rows = archolt_rows(7, 12, OZ_OLTS[:1])
    store = ArcholtStore(clock=Clock())
    for name, items in rows.items():
        store.load(name, items)
    olts = store.all("olts")
    assert len(olts) == 3 and sum(o["ozmap_olt_id"] is None for o in olts) == 1
    assert olts[0]["ozmap_olt_id"] == OZ_OLTS[0]["id"]
    assert store.all("onus") == rows["onus"] and store.all("ctos") == rows["ctos"]
    for onu in rows["onus"]:
        assert onu["updated_at"] <= "2025-06-03T12:00:00-03:00"


def test_world_mirrors_given_boxes_of_mapped_olts_only() -> None:
    boxes: list[dict[str, Any]] = [
        {"id": "b1", "name": "CTO-000001", "ozmap_olt_id": OZ_OLTS[0]["id"], "lat": -27.5, "lng": -48.5,
         "project": "Centro", "ports_total": 8},
        {"id": "b2", "name": "CTO-000002", "ozmap_olt_id": OZ_OLTS[3]["id"], "lat": -27.5, "lng": -48.5},
        {"id": "b3", "name": "CTO-000003", "ozmap_olt_id": None, "lat": -27.5, "lng": -48.5},
        {"id": "b4", "name": "CTO-000004", "ozmap_olt_id": OZ_OLTS[1]["id"], "lat": None, "lng": None},
    ]  # fmt: skip
    rows = archolt_rows(1, 20, OZ_OLTS, ozmap_boxes=boxes)
    [mirror] = rows["ctos"]
    assert mirror["ozmap_box_id"] == "b1" and mirror["olt_id"] == 1 and mirror["ports_total"] == 8
    assert all(o["cto"] is None or o["cto"]["ozmap_box_id"] == "b1" for o in rows["onus"])
