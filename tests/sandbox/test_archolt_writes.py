"""ArchOLT sandbox writes over real HTTP: provisioning rules, "Alterar CTO", deprovisioning, CTO mirror upserts and
removals, the OLT "OZMAP" tab — with their events and ``updated_at`` semantics."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.test_archolt_support import BOX_12, BOX_20N, BOX_30, OZ_OLT_2, Clock, running, seeded_store

pytestmark = pytest.mark.anyio


def onu_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "olt_id": 2,
        "slot": 1,
        "pon": 1,
        "serial": "ZTEGAABBCCDD",
        "model": "F670L",
        "vlan": 100,
    }
    body.update(extra)
    return body


def box_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "CTO-40", "ozmap_olt_id": OZ_OLT_2, "project": "Norte", "latitude": -23.5, "longitude": -46.6,
        "ports_total": 16, "ports_free": 5, "active": True,
    }  # fmt: skip
    body.update(extra)
    return body


# -- POST onus -----------------------------------------------------------------------------------------------------


async def test_provision_takes_the_lowest_free_index_and_writes_an_event() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as api:
        created = await api.ok("POST", "/api/v1/onus", 201, json=onu_body(serial="ztegaabbccdd"))
        events = api.store.all("events")
    assert created["serial"] == "ZTEGAABBCCDD"  # stored upper-case
    assert created["onu_index"] == 1  # 0 is 5813's; 1 was 5814's, freed by its deprovisioning
    assert created["status"] == "provisioned" and created["cto"] is None and created["login"] is None
    assert created["provisioned_at"] == created["updated_at"] == "2025-06-03T12:00:00-03:00"
    assert created["id"] == 5816
    assert [(e["type"], e["onu_id"], e["olt_id"], e["cto_id"]) for e in events] == [
        ("onu.provisioned", 5816, 2, None)
    ]


async def test_deprovisioned_positions_are_free_again() -> None:
    async with running() as api:
        first = await api.ok("POST", "/api/v1/onus", 201, json=onu_body(serial="ZTEG00000011"))
        await api.ok("POST", f"/api/v1/onus/{first['id']}/deprovision")
        again = await api.ok("POST", "/api/v1/onus", 201, json=onu_body(serial="ZTEG00000012"))
        chosen = await api.ok("POST", "/api/v1/onus", 201, json=onu_body(serial="ZTEG00000013", onu_index=5))
        taken = await api.call("POST", "/api/v1/onus", json=onu_body(serial="ZTEG00000014", onu_index=0))
        outside = await api.call("POST", "/api/v1/onus", json=onu_body(serial="ZTEG00000015", onu_index=128))
    assert first["onu_index"] == again["onu_index"] == 1
    assert chosen["onu_index"] == 5
    assert taken.status == 400 and taken.code == "invalid_parameter"
    assert outside.status == 400 and outside.code == "invalid_parameter"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (onu_body(serial="ZTEG123"), 422, "invalid_serial"),
        (onu_body(serial="1234ABCDEF00"), 422, "invalid_serial"),
        (onu_body(serial="ZTEGC8A1B2C3"), 409, "serial_already_provisioned"),
        (onu_body(olt_id=1, cto_id=None), 422, "cto_required"),
        (onu_body(olt_id=1), 422, "cto_required"),
        (onu_body(cto_name="CTO-99"), 404, "cto_not_found"),
        (onu_body(cto_name="CTO-OLD"), 404, "cto_not_found"),
        (onu_body(cto_id=11), 404, "cto_not_found"),
        (onu_body(cto_name="CTO-20"), 409, "cto_name_ambiguous"),
        (onu_body(cto_name="CTO-12"), 422, "cto_wrong_olt"),
        (onu_body(olt_id=99), 404, "olt_not_found"),
        (onu_body(pon=9), 400, "invalid_parameter"),
        (onu_body(slot="1"), 400, "invalid_parameter"),
        (onu_body(colour="red"), 400, "invalid_parameter"),
        (onu_body(cto_id=7, cto_name="CTO-12"), 400, "invalid_parameter"),
        ({"olt_id": 2}, 400, "invalid_parameter"),
    ],
)
async def test_provisioning_refusals(body: dict[str, Any], status: int, code: str) -> None:
    async with running() as api:
        reply = await api.call("POST", "/api/v1/onus", json=body)
        assert api.store.last_seq == 0  # no event without a change
    assert (reply.status, reply.code) == (status, code)


async def test_refusal_details_and_portuguese_message() -> None:
    async with running() as api:
        ambiguous = (await api.call("POST", "/api/v1/onus", json=onu_body(cto_name="CTO-20"))).json()["error"]
        required = (await api.call("POST", "/api/v1/onus", json=onu_body(olt_id=1))).json()["error"]
        dup = (await api.call("POST", "/api/v1/onus", json=onu_body(serial="ZTEGC8A1B2C3"))).json()["error"]
    assert ambiguous["message"] == "Existe mais de uma CTO com o nome CTO-20"
    assert [c["project"] for c in ambiguous["details"]["candidates"]] == ["Norte", "Sul"]
    assert required == {
        "code": "cto_required",
        "message": "A OLT exige CTO na ativação do cliente",
        "details": {"olt_id": 1},
    }
    assert dup["details"] == {"serial": "ZTEGC8A1B2C3", "onu_id": 5812}


async def test_invalid_json_and_non_object_bodies() -> None:
    async with running() as api:
        broken = await api.call(
            "POST", "/api/v1/onus", data=b"{", headers={"Content-Type": "application/json"}
        )
        array = await api.call("POST", "/api/v1/onus", json=[1])
    assert broken.status == 400 and broken.code == "invalid_json"
    assert array.status == 400 and array.code == "invalid_json"


async def test_pon_full() -> None:
    async with running() as api:
        for serial in ("HWTC000000A1", "HWTC000000A2"):
            await api.ok("POST", "/api/v1/onus", 201, json=onu_body(olt_id=1, pon=2, serial=serial, cto_id=7))
        full = await api.call(
            "POST", "/api/v1/onus", json=onu_body(olt_id=1, pon=2, serial="HWTC000000A3", cto_id=7)
        )
    assert full.status == 422 and full.code == "pon_full"


async def test_provision_with_cto_by_name_and_cto_without_olt() -> None:
    async with running() as api:
        named = await api.ok("POST", "/api/v1/onus", 201, json=onu_body(olt_id=1, cto_name="CTO-12"))
        anywhere = await api.ok("POST", "/api/v1/onus", 201, json=onu_body(serial="ZTEG0000FFFF", cto_id=10))
    assert named["cto"] == {"id": 7, "name": "CTO-12", "ozmap_box_id": BOX_12}
    assert anywhere["cto"]["ozmap_box_id"] == BOX_30
    assert api.store.all("events")[0]["cto_id"] == 7


async def test_reprovisioning_a_serial_creates_a_new_record() -> None:
    async with running() as api:
        await api.ok("POST", "/api/v1/onus/5813/deprovision")
        again = await api.ok("POST", "/api/v1/onus", 201, json=onu_body(serial="HWTC00000001"))
        old = await api.ok("GET", "/api/v1/onus/5813")
        also_old = await api.ok("POST", "/api/v1/onus", 201, json=onu_body(serial="HWTC00000002"))
    assert again["id"] not in (5813, 5814) and old["status"] == "deprovisioned"
    assert also_old["id"] == again["id"] + 1


# -- PUT onus/{id}/cto and deprovisioning ------------------------------------------------------------------------


async def test_change_cto_bumps_and_writes_from_to() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as api:
        clock.tick(60)
        moved = await api.ok("PUT", "/api/v1/onus/5813/cto", json={"cto_name": "CTO-30"})
        clock.tick(60)
        same = await api.ok("PUT", "/api/v1/onus/5813/cto", json={"cto_id": 10})
        unlinked = await api.ok("PUT", "/api/v1/onus/5813/cto", json={"cto_id": None})
    assert moved["cto"]["id"] == 10 and moved["updated_at"] == "2025-06-03T12:01:00-03:00"
    assert same == moved  # unchanged: no bump
    assert unlinked["cto"] is None and unlinked["updated_at"] == "2025-06-03T12:02:00-03:00"
    assert [e["data"] for e in api.store.all("events")] == [
        {"from_cto_id": None, "to_cto_id": 10},
        {"from_cto_id": 10, "to_cto_id": None},
    ]


@pytest.mark.parametrize(
    ("onu", "body", "status", "code"),
    [
        (5814, {"cto_id": 10}, 409, "onu_deprovisioned"),
        (5812, {"cto_id": None}, 422, "cto_required"),
        (5812, {"cto_id": 8}, 422, "cto_wrong_olt"),
        (5812, {}, 400, "invalid_parameter"),
        (5813, {"cto_name": "CTO-20"}, 409, "cto_name_ambiguous"),
        (9999, {"cto_id": 10}, 404, "onu_not_found"),
    ],
)
async def test_change_cto_refusals(onu: int, body: dict[str, Any], status: int, code: str) -> None:
    async with running() as api:
        reply = await api.call("PUT", f"/api/v1/onus/{onu}/cto", json=body)
    assert (reply.status, reply.code) == (status, code)


async def test_deprovision_is_idempotent() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as api:
        first = await api.ok("POST", "/api/v1/onus/5812/deprovision")
        clock.tick(30)
        second = await api.ok("POST", "/api/v1/onus/5812/deprovision")
        missing = await api.call("POST", "/api/v1/onus/1/deprovision")
    assert first == second
    assert first["status"] == "deprovisioned" and first["deprovisioned_at"] == "2025-06-03T12:00:00-03:00"
    assert first["cto"]["id"] == 7  # the tombstone keeps its CTO
    assert [(e["type"], e["cto_id"]) for e in api.store.all("events")] == [("onu.deprovisioned", 7)]
    assert missing.code == "onu_not_found"


async def test_monitoring_poll_never_bumps_updated_at() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as api:
        before = await api.ok("GET", "/api/v1/onus/5813")
        clock.tick(600)
        status, answer = await api.control("POST", "poll")
        after = await api.ok("GET", "/api/v1/onus/5813")
    assert status == 200 and answer == {"polled": 3}
    assert after["updated_at"] == before["updated_at"]
    assert before["oper_state"] == "unknown"
    assert after["oper_state"] in ("online", "offline", "los", "dying_gasp")
    assert api.store.last_seq == 0


# -- CTO mirrors -------------------------------------------------------------------------------------------------


async def test_upsert_creates_then_is_idempotent_then_updates() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as api:
        created = await api.call("PUT", "/api/v1/ctos/ozmap/box-40", json=box_body())
        clock.tick(60)
        same = await api.call("PUT", "/api/v1/ctos/ozmap/box-40/", json=box_body(ozmap_box_id="box-40"))
        changed = await api.call("PUT", "/api/v1/ctos/ozmap/box-40", json=box_body(ports_free=4))
    assert created.status == 201 and same.status == 200 and changed.status == 200
    row = created.json()
    assert row["id"] == 12 and row["olt_id"] == 2 and row["synced_at"] == row["updated_at"]
    assert same.json() == row
    assert changed.json()["ports_free"] == 4 and changed.json()["updated_at"] == "2025-06-03T12:01:00-03:00"
    assert [(e["type"], e["data"]) for e in api.store.all("events")] == [
        ("cto.upserted", {"created": True}),
        ("cto.upserted", {"created": False}),
    ]


async def test_upsert_replaces_and_rederives_the_olt() -> None:
    async with running() as api:
        moved = await api.ok(
            "PUT", f"/api/v1/ctos/ozmap/{BOX_20N}", json=box_body(name="CTO-20", ozmap_olt_id=None)
        )
        remapped = await api.ok("PATCH", "/api/v1/olts/3", json={"ozmap_olt_id": "new-oz-olt"})
        again = await api.ok("PUT", f"/api/v1/ctos/ozmap/{BOX_20N}", json=box_body(ozmap_olt_id="new-oz-olt"))
    assert moved["olt_id"] is None and moved["project"] == "Norte"
    assert remapped["ozmap_olt_id"] == "new-oz-olt"
    assert again["olt_id"] == 3


@pytest.mark.parametrize(
    "body",
    [
        box_body(latitude=None),
        box_body(latitude=123.0),
        box_body(longitude=-200.0),
        box_body(name=""),
        box_body(ports_total="16"),
        box_body(ports_free=40),
        box_body(id=5),
        box_body(olt_id=2),
        box_body(ozmap_box_id="other"),
        box_body(active="yes"),
    ],
)
async def test_upsert_validation(body: dict[str, Any]) -> None:
    async with running() as api:
        reply = await api.call("PUT", "/api/v1/ctos/ozmap/box-40", json=body)
    assert reply.status == 400 and reply.code == "invalid_parameter"
    assert api.store.cto_by_box("box-40") is None


async def test_delete_in_use_deactivate_and_remove() -> None:
    async with running() as api:
        in_use = await api.call("DELETE", f"/api/v1/ctos/ozmap/{BOX_12}")
        deactivated = await api.ok("DELETE", f"/api/v1/ctos/ozmap/{BOX_12}", params={"deactivate": "true"})
        twice = await api.ok("DELETE", f"/api/v1/ctos/ozmap/{BOX_12}", params={"deactivate": "true"})
        removed = await api.call("DELETE", f"/api/v1/ctos/ozmap/{BOX_20N}")  # only a tombstone uses it
        gone = await api.call("DELETE", f"/api/v1/ctos/ozmap/{BOX_20N}")
        tomb = await api.ok("GET", "/api/v1/onus/5814")
    assert in_use.status == 409 and in_use.code == "cto_in_use"
    assert in_use.json()["error"]["details"] == {"cto_id": 7, "onu_ids": [5812], "count": 1}
    assert deactivated["active"] is False and twice == deactivated
    assert removed.status == 204 and gone.code == "cto_not_found"
    assert tomb["cto"] == {"id": 8, "name": "CTO-20", "ozmap_box_id": BOX_20N}  # snapshot survives
    assert [(e["type"], e["cto_id"]) for e in api.store.all("events")] == [
        ("cto.upserted", 7),
        ("cto.deleted", 8),
    ]


async def test_renamed_mirror_shows_in_linked_onus() -> None:
    async with running() as api:
        await api.ok("PUT", f"/api/v1/ctos/ozmap/{BOX_12}", json=box_body(name="CTO-12A", ozmap_olt_id=None))
        onu = await api.ok("GET", "/api/v1/onus/5812")
    assert onu["cto"]["name"] == "CTO-12A"


# -- OLT "OZMAP" tab ----------------------------------------------------------------------------------------------


async def test_patch_olt_mapping_and_require_cto() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as api:
        changed = await api.ok("PATCH", "/api/v1/olts/2", json={"require_cto_on_activation": True})
        same = await api.ok("PATCH", "/api/v1/olts/2", json={"require_cto_on_activation": True})
        bad = await api.call("PATCH", "/api/v1/olts/2", json={"name": "x"})
        bad_type = await api.call("PATCH", "/api/v1/olts/2", json={"require_cto_on_activation": "yes"})
        missing = await api.call("PATCH", "/api/v1/olts/9", json={})
        now_required = await api.call("POST", "/api/v1/onus", json=onu_body())
    assert (
        changed["require_cto_on_activation"] is True and changed["updated_at"] == "2025-06-03T12:00:00-03:00"
    )
    assert same == changed
    assert bad.code == "invalid_parameter" and bad_type.code == "invalid_parameter"
    assert missing.code == "olt_not_found"
    assert now_required.code == "cto_required"
    assert [(e["type"], e["olt_id"], e["data"]) for e in api.store.all("events")] == [
        ("olt.updated", 2, {"require_cto_on_activation": True})
    ]
