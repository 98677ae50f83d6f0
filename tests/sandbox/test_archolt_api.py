"""ArchOLT sandbox over real HTTP: auth, rate limit, reads, filters, paging/keyset, timestamps, the change feed."""

from __future__ import annotations

import pytest

from reconciler.sandbox.archolt import ArcholtStore
from reconciler.sandbox.archolt_values import format_time
from tests.sandbox.test_archolt_support import (
    BOX_12,
    OZ_OLT_1,
    RO,
    RW,
    Clock,
    Ticker,
    running,
    seeded_store,
)

pytestmark = pytest.mark.anyio


# -- auth and rate limit -------------------------------------------------------------------------------------------


async def test_missing_unknown_or_non_bearer_token_is_401() -> None:
    async with running() as api:
        missing = await api.call("GET", "/api/v1/olts", token=None)
        unknown = await api.call("GET", "/api/v1/olts", token="nope")
        basic = await api.call("GET", "/api/v1/olts", token=None, headers={"Authorization": f"Basic {RW}"})
        lower = await api.call("GET", "/api/v1/olts", token=None, headers={"Authorization": f"bearer {RW}"})
    for reply in (missing, unknown, basic):
        assert reply.status == 401 and reply.code == "unauthenticated"
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert reply.json()["error"]["message"] == "Token de acesso ausente ou inválido"
    assert lower.status == 200


async def test_read_token_reads_but_cannot_write() -> None:
    async with running() as api:
        read = await api.call("GET", "/api/v1/onus", token=RO)
        write = await api.call("POST", "/api/v1/onus/5812/deprovision", token=RO)
    assert read.status == 200
    assert write.status == 403 and write.code == "forbidden"
    assert api.store.rows["onus"][5812]["status"] == "provisioned"


async def test_rate_limit_per_token_with_retry_after() -> None:
    ticker = Ticker()
    store = seeded_store(ticker=ticker)
    store.knobs.rate_limit, store.knobs.rate_burst = 10.0, 3
    async with running(store) as api:
        answers = [(await api.get("olts")).status for _ in range(3)]
        limited = await api.get("olts")
        other = await api.call("GET", "/api/v1/olts", token=RO)
        ticker.value += 0.1
        again = await api.get("olts")
    assert answers == [200, 200, 200]
    assert limited.status == 429 and limited.code == "rate_limited"
    assert limited.headers["Retry-After"] == "1"
    assert other.status == 200  # buckets are per token
    assert again.status == 200


async def test_default_knobs_are_the_contract_limits() -> None:
    store = ArcholtStore()
    assert (store.knobs.rate_limit, store.knobs.rate_burst) == (10.0, 20)
    assert store.knobs.naive_local_timestamps is False


# -- OLTs --------------------------------------------------------------------------------------------------------


async def test_olts_list_with_mapping_ports_and_local_offset() -> None:
    async with running() as api:
        reply = await api.get("olts")
    assert reply.status == 200 and reply.content_type == "application/json"
    body = reply.json()
    assert body["meta"] == {"page": 1, "per_page": 100, "total": 3}
    # default order: updated_at, then id
    assert [o["id"] for o in body["data"]] == [2, 3, 1]
    olt = body["data"][2]
    assert olt["ozmap_olt_id"] == OZ_OLT_1 and olt["require_cto_on_activation"] is True
    assert olt["pon_ports"] == [
        {"slot": 1, "pon": 1, "onu_count": 1, "max_onus": 128},
        {"slot": 1, "pon": 2, "onu_count": 0, "max_onus": 2},
    ]
    assert olt["updated_at"] == "2025-05-30T16:41:09-03:00"
    assert body["data"][1]["ozmap_olt_id"] is None


async def test_one_olt_and_404s() -> None:
    async with running() as api:
        one = await api.get("olts/3")
        missing = await api.get("olts/99")
        junk = await api.get("olts/abc")
    assert one.json()["name"] == "OLT-SUL-03"
    assert missing.status == 404 and missing.code == "olt_not_found"
    assert missing.json()["error"]["details"] == {"olt_id": 99}
    assert junk.status == 404 and junk.code == "olt_not_found"


async def test_naive_local_timestamps_knob() -> None:
    async with running() as api:
        api.store.knobs.naive_local_timestamps = True
        onu = (await api.get("onus/5812")).json()
        since = await api.get("onus", updated_since="2025-06-03 10:07:40")
    assert onu["updated_at"] == "2025-06-03 10:07:40"
    assert onu["provisioned_at"] == "2025-06-03 10:05:12"
    assert [o["id"] for o in since.data] == [5812]


# -- CTOs and ONUs: filters ------------------------------------------------------------------------------------------


async def test_cto_filters_and_derived_olt() -> None:
    async with running() as api:
        everything = await api.get("ctos")
        by_olt = await api.get("ctos", olt_id=2)
        by_box = await api.get("ctos", ozmap_box_id=BOX_12)
        by_name = await api.get("ctos", name="CTO-20")
        inactive = await api.get("ctos", active="false")
        bad = await api.get("ctos", active="maybe")
    assert everything.json()["meta"]["total"] == 5
    assert {c["id"] for c in by_olt.data} == {8, 9}
    [mirror] = by_box.data
    assert mirror["olt_id"] == 1 and mirror["synced_at"] == "2025-06-01T09:00:00-03:00"
    assert {(c["id"], c["project"]) for c in by_name.data} == {(8, "Norte"), (9, "Sul")}
    assert [c["id"] for c in inactive.data] == [11]
    assert bad.status == 400 and bad.code == "invalid_parameter"
    assert bad.json()["error"]["details"]["parameter"] == "active"


async def test_onu_filters() -> None:
    async with running() as api:
        every = await api.get("onus")
        provisioned = await api.get("onus", status="provisioned")
        gone = await api.get("onus", status="deprovisioned")
        olt2 = await api.get("onus", olt_id=2)
        cto7 = await api.get("onus", cto_id=7)
        without = await api.get("onus", has_cto="false", status="provisioned")
        serial = await api.get("onus", serial="zteGC8A1B2C3")
        bad = await api.get("onus", status="maybe")
        bad_int = await api.get("onus", olt_id="x")
    assert {o["id"] for o in every.data} == {5812, 5813, 5814, 5815}
    assert {o["id"] for o in provisioned.data} == {5812, 5813, 5815}
    [tomb] = gone.data
    assert tomb["id"] == 5814 and tomb["deprovisioned_at"] == "2025-05-29T10:00:00-03:00"
    assert tomb["cto"] == {"id": 8, "name": "CTO-20", "ozmap_box_id": "64c1a9e0b2f4d8a1c3e5f702"}
    assert {o["id"] for o in olt2.data} == {5813, 5814}
    assert [o["id"] for o in cto7.data] == [5812]
    assert {o["id"] for o in without.data} == {5813, 5815}
    assert [o["id"] for o in serial.data] == [5812]
    assert bad.status == 400 and bad_int.status == 400


async def test_one_onu_shape_and_404() -> None:
    async with running() as api:
        onu = (await api.get("onus/5812")).json()
        missing = await api.get("onus/1")
    assert onu == {
        "id": 5812, "serial": "ZTEGC8A1B2C3", "olt_id": 1, "slot": 1, "pon": 1, "onu_index": 0, "model": "F670L",
        "vlan": 100, "description": "Rua das Flores, 120", "login": "joao.silva", "status": "provisioned",
        "cto": {"id": 7, "name": "CTO-12", "ozmap_box_id": BOX_12}, "oper_state": "online",
        "rx_power_dbm": -19.42, "tx_power_dbm": 2.31, "provisioned_at": "2025-06-03T10:05:12-03:00",
        "deprovisioned_at": None, "updated_at": "2025-06-03T10:07:40-03:00",
    }  # fmt: skip
    assert missing.status == 404 and missing.code == "onu_not_found"


# -- paging ------------------------------------------------------------------------------------------------------


def many_onus(store: ArcholtStore, count: int, stamp: str = "2025-06-01T00:00:00-03:00") -> None:
    store.load(
        "onus",
        [
            {"id": 100 + i, "serial": f"ZTEG{i:08X}", "olt_id": 2, "slot": 1, "pon": 1, "onu_index": i % 128,
             "updated_at": stamp if i % 2 else "2025-06-01T00:00:01-03:00"}
            for i in range(count)
        ],
    )  # fmt: skip


async def test_page_and_per_page_with_clamp() -> None:
    store = seeded_store()
    many_onus(store, 600)
    async with running(store) as api:
        first = await api.get("onus", per_page=2, status="provisioned")
        second = await api.get("onus", per_page=2, page=2, status="provisioned")
        clamped = await api.get("onus", per_page=10_000)
        zero = await api.get("onus", per_page=0)
        page0 = await api.get("onus", page=0)
    assert first.json()["meta"] == {"page": 1, "per_page": 2, "total": 603}
    assert [o["id"] for o in first.data] == [101, 103]  # same updated_at: id order
    assert [o["id"] for o in second.data] == [105, 107]
    assert clamped.json()["meta"]["per_page"] == 500 and len(clamped.data) == 500
    assert zero.code == "invalid_parameter" and page0.code == "invalid_parameter"


async def test_updated_since_is_inclusive_and_keyset_after_id_is_exclusive() -> None:
    store = seeded_store()
    many_onus(store, 6)
    async with running(store) as api:
        since = await api.get("onus", updated_since="2025-06-01T00:00:01-03:00")
        utc = await api.get("onus", updated_since="2025-06-01T03:00:01Z")
        keyset = await api.get("onus", updated_since="2025-06-01T00:00:01-03:00", after_id=102)
        lonely = await api.get("onus", after_id=102)
        bad = await api.get("onus", updated_since="yesterday")
    assert [o["id"] for o in since.data][:3] == [100, 102, 104]
    assert since.json()["meta"]["total"] == 6  # 100, 102, 104 + the three seeded ONUs updated later
    assert [o["id"] for o in utc.data] == [o["id"] for o in since.data]
    assert [o["id"] for o in keyset.data][:1] == [104]
    assert keyset.json()["meta"]["total"] == 4
    assert lonely.code == "invalid_parameter" and bad.code == "invalid_parameter"


async def test_keyset_walk_neither_skips_nor_loops_with_shared_stamps() -> None:
    store = seeded_store()
    many_onus(store, 250)
    async with running(store) as api:
        seen: list[int] = []
        params: dict[str, object] = {"per_page": 7}
        while True:
            reply = await api.get("onus", **params)
            rows = reply.data
            seen.extend(o["id"] for o in rows)
            if len(rows) == reply.json()["meta"]["total"]:
                break
            params = {"per_page": 7, "updated_since": rows[-1]["updated_at"], "after_id": rows[-1]["id"]}
    assert len(seen) == len(set(seen)) == 254


async def test_mutation_knob_edits_onus_between_pages() -> None:
    store = seeded_store()
    store.knobs.mutate_onus_between_pages = 2
    async with running(store) as api:
        first = await api.get("onus", per_page=2)
        seq_before = api.store.last_seq
        second = await api.get("onus", per_page=2, page=2)
    assert seq_before == 0  # a walk's first page changes nothing
    assert api.store.last_seq == 2
    touched = [e["onu_id"] for e in api.store.all("events")]
    assert [o["id"] for o in first.data] == [5814, 5815]
    assert touched == [5815, 5813]  # the least recently updated provisioned ONUs
    assert all(e["type"] == "onu.updated" for e in api.store.all("events"))
    assert second.status == 200
    assert api.store.rows["onus"][touched[0]]["description"].endswith("(rev 1)")


# -- change feed ------------------------------------------------------------------------------------------------


async def test_events_are_strictly_increasing_with_next_after_and_limit() -> None:
    async with running() as api:
        await api.ok("POST", "/api/v1/onus/5813/deprovision")
        await api.ok("PUT", "/api/v1/onus/5812/cto", json={"cto_id": 10})
        await api.ok("PATCH", "/api/v1/olts/3", json={"ozmap_olt_id": "64b7f0c2a1e5d93b7c0e4c33"})
        everything = (await api.get("events")).json()
        first = (await api.get("events", after=0, limit=2)).json()
        rest = (await api.get("events", after=first["next_after"], limit=2)).json()
        empty = (await api.get("events", after=rest["next_after"])).json()
        bad = await api.get("events", limit=0)
    assert [e["seq"] for e in everything["data"]] == [1, 2, 3]
    assert [e["type"] for e in everything["data"]] == ["onu.deprovisioned", "onu.cto_changed", "olt.updated"]
    changed = everything["data"][1]
    assert changed["onu_id"] == 5812 and changed["cto_id"] == 10
    assert changed["data"] == {"from_cto_id": 7, "to_cto_id": 10}
    assert changed["at"] == format_time(api.store.now())
    assert ([e["seq"] for e in first["data"]], first["next_after"]) == ([1, 2], 2)
    assert ([e["seq"] for e in rest["data"]], rest["next_after"]) == ([3], 3)
    assert empty == {"data": [], "next_after": 3}
    assert bad.code == "invalid_parameter"


async def test_event_limit_is_clamped_to_1000() -> None:
    store = seeded_store()
    store.load("events", [{"type": "onu.updated", "onu_id": 5812} for _ in range(1200)])
    async with running(store) as api:
        reply = (await api.get("events", after=0, limit=5000)).json()
        default = (await api.get("events", after=0)).json()
    assert len(reply["data"]) == 1000 and reply["next_after"] == 1000
    assert len(default["data"]) == 100


async def test_retention_answers_410_cursor_expired() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as api:
        await api.ok("POST", "/api/v1/onus/5813/deprovision")
        clock.tick(8 * 86400)
        await api.ok("POST", "/api/v1/onus/5815/deprovision")
        expired = await api.get("events", after=0)
        oldest = (await api.get("events")).json()
        fine = (await api.get("events", after=1)).json()
    assert expired.status == 410 and expired.code == "cursor_expired"
    assert expired.json()["error"]["details"] == {"after": 0, "oldest_seq": 2}
    assert [e["seq"] for e in oldest["data"]] == [2]
    assert [e["seq"] for e in fine["data"]] == [2]


async def test_tombstones_are_kept_30_days() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as api:
        clock.tick(20 * 86400)
        kept = await api.get("onus/5814")
        clock.tick(11 * 86400)
        purged = await api.get("onus/5814")
        listed = await api.get("onus", status="deprovisioned")
    assert kept.status == 200
    assert purged.status == 404 and listed.data == []


async def test_trailing_slash_and_unknown_route() -> None:
    async with running() as api:
        slash = await api.call("GET", "/api/v1/olts/")
        unknown = await api.call("GET", "/api/v1/nothing")
    assert slash.status == 200
    assert unknown.status == 404
