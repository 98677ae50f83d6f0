"""Seed 003 (ArchOLT ↔ OZmap) client features end to end: creation from provisioned ONUs and cancellation.

The network of :mod:`.archolt_ozmap_world` is synced first (OLT mapping, box mirrors), then ONUs are provisioned
in ArchOLT like a technician does and the ``clients`` entity runs against both sandboxes: creation in the CTO's
box (code = ONU id, name = serial, ONU data, implanted), "already exists" (linked, never duplicated), ONU without
CTO (per the OLT's "require CTO on activation"), unmapped OLT, and deprovisioning (client and property removed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.model import Create, Delete, Link, Skip

from .archolt_ozmap_world import (
    ARCH_A,
    ARCH_B,
    ARCH_SUL,
    CENTRO,
    CTO_A1,
    CTO_B1,
    S_A1,
    Env,
    by_label,
    entity,
    serving,
)
from .conftest import OZMAP_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with serving(tmp_path) as value:
        assert (await value.run(value.config(entities=("olt-map", "boxes")), apply=True)).failures == 0
        yield value


def label(onu: int, serial: str) -> str:
    return f"ONU {onu} ({serial})"


async def ozmap_client_in_box(env: Env, code: str, box: str, **client: Any) -> str:
    """A client someone registered in OZmap by hand (``POST /properties``); returns its id."""
    body = {"project": CENTRO, "box": box, "client": {"code": code, "name": "Maria Souza", **client}}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{env.ozmap_url}/api/v2/properties", json=body, headers={"Authorization": OZMAP_KEY}
        ) as resp:
            assert resp.status == 201, await resp.text()
            created = await resp.json()
    return str(created["client"])


async def test_provisioned_onus_with_a_cto_become_implanted_clients_in_its_box(env: Env) -> None:
    first = await env.provision(ARCH_A, "ZTEGC8A1B2C3", cto="CTO-A1", login="joao.silva")
    second = await env.provision(ARCH_B, "HWTC0000B101", cto="CTO-B1")
    cfg = env.config()
    plan = entity(await env.run(cfg), "clients")
    create = by_label(plan)[label(first, "ZTEGC8A1B2C3")]
    assert isinstance(create, Create)
    assert create.fields == {
        "code": str(first), "name": "ZTEGC8A1B2C3", "implanted": True, "onu_serial_number": "ZTEGC8A1B2C3",
        "onu_user_pppoe": "joao.silva", "box_id": CTO_A1, "auto_connect": False,
    }  # fmt: skip
    assert env.clients() == {}  # a plan writes nothing

    result = await env.run(cfg, apply=True)
    assert result.failures == 0 and entity(result, "clients").count("create") == 2
    clients = env.clients()
    client = clients[str(first)]
    assert (client["name"], client["implanted"]) == ("ZTEGC8A1B2C3", True)
    assert client["onu"] == {"serial_number": "ZTEGC8A1B2C3", "user_PPPoE": "joao.silva", "mac_address": ""}
    prop = env.property_of(client["id"])
    assert prop["box"] == CTO_A1 and prop["connections"] == [] and prop["drop"]  # in the box, no port taken
    assert (prop["lat"], prop["lng"]) == (env.ozmap.get("boxes", CTO_A1)["lat"], -46.6333)  # type: ignore[index]
    assert env.property_of(clients[str(second)]["id"])["box"] == CTO_B1
    assert (await env.run(cfg)).plan.changes == 0
    assert (await env.run(cfg, mode="full")).plan.changes == 0


async def test_first_free_port_option_connects_the_new_client(env: Env) -> None:
    onu = await env.provision(ARCH_A, "ZTEGC8A1B2C3", cto="CTO-A1")
    assert (await env.run(env.config(first_free_port=True), apply=True)).failures == 0
    prop = env.property_of(env.clients()[str(onu)]["id"])
    assert [(c["id"], c["port"]) for c in prop["connections"]] == [(S_A1, 1)]


async def test_a_client_that_already_exists_is_linked_not_duplicated(env: Env) -> None:
    onu = await env.provision(ARCH_B, "HWTC0000B102", cto="CTO-B1", login="maria.souza")
    existing = await ozmap_client_in_box(env, str(onu), CTO_B1, implanted=False)
    cfg = env.config()
    result = await env.run(cfg, apply=True)
    assert result.failures == 0
    link = by_label(entity(result, "clients"))[label(onu, "HWTC0000B102")]
    assert isinstance(link, Link) and link.target_id == existing
    assert [(c.field, c.before, c.after) for c in link.changes] == [
        ("implanted", False, True),
        ("onu_serial_number", "", "HWTC0000B102"),
        ("onu_user_pppoe", "", "maria.souza"),
    ]
    same_code = [c for c in env.ozmap.all("ftth-clients") if c["code"] == str(onu)]
    assert [c["id"] for c in same_code] == [existing]
    assert same_code[0]["name"] == "Maria Souza"  # the name is OZmap's once the client exists
    assert (await env.run(cfg)).plan.changes == 0

    # un-implanted by hand in OZmap: a provisioned ONU's client is implanted again
    await env.ozmap_control("PATCH", f"store/ftth-clients/{existing}", {"implanted": False})
    fix = by_label(entity(await env.run(cfg, mode="full", apply=True), "clients"))[label(onu, "HWTC0000B102")]
    assert [(c.field, c.before, c.after) for c in fix.changes] == [("implanted", False, True)]


async def test_onu_without_cto_is_skipped_until_a_cto_is_chosen(env: Env) -> None:
    onu = await env.provision(ARCH_B, "HWTC0000B103")
    cfg = env.config()
    result = await env.run(cfg, apply=True)
    skip = by_label(entity(result, "clients"))[label(onu, "HWTC0000B103")]
    assert (
        isinstance(skip, Skip)
        and skip.reason == "ONU HWTC0000B103 has no CTO yet (ArchOLT: Alterar CTO (OZMAP))"
    )

    await env.archolt_api("PATCH", f"olts/{ARCH_B}", {"require_cto_on_activation": True})
    skip = by_label(entity(await env.run(cfg), "clients"))[label(onu, "HWTC0000B103")]
    assert isinstance(skip, Skip)
    assert skip.reason == "OLT OLT-B requires a CTO on activation, but ONU HWTC0000B103 has none"
    assert env.clients() == {}

    await env.archolt_api("PUT", f"onus/{onu}/cto", {"cto_name": "CTO-B1"})  # "Alterar CTO (OZMAP)"
    result = await env.run(cfg, apply=True)
    plan = entity(result, "clients")
    assert plan.mode == "incremental" and isinstance(by_label(plan)[label(onu, "HWTC0000B103")], Create)
    assert env.property_of(env.clients()[str(onu)]["id"])["box"] == CTO_B1


async def test_onus_of_an_unmapped_olt_are_reported_not_created(env: Env) -> None:
    onu = await env.provision(ARCH_SUL, "VSOL0000C301")
    result = await env.run(env.config(), apply=True)
    skip = by_label(entity(result, "clients"))[label(onu, "VSOL0000C301")]
    assert isinstance(skip, Skip) and skip.reason == "OLT OLT-SUL (10.0.0.3) is not mapped to an OZmap OLT"
    assert env.clients() == {}


async def test_a_cto_that_is_no_synced_box_is_skipped(env: Env) -> None:
    await env.archolt_api(
        "PUT",
        "ctos/ozmap/ffffffffffffffffffffffff",
        {"name": "CTO-MANUAL", "ozmap_olt_id": None, "latitude": -23.5, "longitude": -46.6, "ports_total": 8},
    )
    onu = await env.provision(ARCH_B, "HWTC0000B104", cto="CTO-MANUAL")
    skip = by_label(entity(await env.run(env.config(), apply=True), "clients"))[label(onu, "HWTC0000B104")]
    assert isinstance(skip, Skip) and skip.reason == (
        "CTO CTO-MANUAL is not linked to an OZmap box by the boxes entity (OZmap box ffffffffffffffffffffffff)"
    )


async def test_deprovisioning_removes_the_client_and_its_property(env: Env) -> None:
    first = await env.provision(ARCH_A, "ZTEGC8A1B2C3", cto="CTO-A1")
    second = await env.provision(ARCH_B, "HWTC0000B105", cto="CTO-B1")
    kept = [await env.provision(ARCH_B, f"HWTC0000B2{n:02d}", cto="CTO-B1") for n in range(20)]
    cfg = env.config()
    assert (await env.run(cfg, apply=True)).failures == 0
    clients = env.clients()
    gone_client, gone_prop = clients[str(first)]["id"], env.property_of(clients[str(first)]["id"])

    await env.archolt_api("POST", f"onus/{first}/deprovision")
    result = await env.run(cfg, apply=True)  # incremental: ArchOLT lists the tombstone as removed
    assert result.failures == 0
    plan = entity(result, "clients")
    assert plan.mode == "incremental"
    (delete,) = [a for a in plan.actions if isinstance(a, Delete)]
    assert (delete.source_id, delete.target_id) == (str(first), gone_client)
    assert str(first) not in env.clients()
    assert env.ozmap.live("properties", gone_prop["id"]) is None  # the property goes with it (seed)
    assert env.ozmap.live("cables", gone_prop["drop"]) is None
    assert (await env.run(cfg)).plan.changes == 0

    # re-provisioning the same serial is a new ONU (new id): a new client; the full pass finds the next removal
    again = await env.provision(ARCH_A, "ZTEGC8A1B2C3", cto="CTO-A1")
    await env.archolt_api("POST", f"onus/{second}/deprovision")
    result = await env.run(cfg, mode="full", apply=True)
    plan = entity(result, "clients")
    assert {(type(a).__name__, a.source_id) for a in plan.actions} == {
        ("Create", str(again)),
        ("Delete", str(second)),
    }
    assert set(env.clients()) == {str(again), *(str(k) for k in kept)}
    assert (await env.run(cfg, mode="full")).plan.changes == 0
