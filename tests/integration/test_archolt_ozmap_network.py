"""Seed 003 (ArchOLT ↔ OZmap) network features end to end: OLT mapping and box synchronisation.

Against the ArchOLT and OZmap sandboxes (world of :mod:`.archolt_ozmap_world`): mapped OLTs are linked, unmapped
ones reported (never guessed); the initial load mirrors every box fed by a mapped OLT into ArchOLT's CTO list,
then incremental cycles carry edits, additions, removals and a mapping made later. Also the CLI plan and the
sandbox runner's ArchOLT.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from reconciler import config as config_mod
from reconciler.engine import Engine, load_rules
from reconciler.model import Create, Delete, Link, Skip, Update
from reconciler.sandbox import runner

from .archolt_ozmap_world import (
    ARCH_A,
    ARCH_SUL,
    CTO_A1,
    CTO_A2,
    CTO_A3,
    CTO_B1,
    CTO_C1,
    GHOST_OLT,
    INTEGRATION,
    OLT_A,
    OLT_B,
    OLT_C,
    Env,
    add_box,
    by_label,
    entity,
    serving,
)

pytestmark = pytest.mark.anyio

NETWORK = ("olt-map", "boxes")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with serving(tmp_path) as value:
        yield value


async def test_rules_run_in_order_with_the_seed_schedule(env: Env) -> None:
    rules = {r.entity: r for r in load_rules(env.config(), INTEGRATION)}
    assert list(rules) == ["olt-map", "boxes", "clients"]
    assert rules["boxes"].incremental_seconds == 15 * 60  # "de 15 em 15 minutos"


# ------------------------------------------------------------------------------------------------ OLT mapping


async def test_mapped_olts_are_linked_and_unmapped_ones_reported(env: Env) -> None:
    cfg = env.config(entities=("olt-map",))
    result = await env.run(cfg, apply=True)
    assert result.failures == 0
    actions = by_label(entity(result, "olt-map"))
    assert {label: a.target_id for label, a in actions.items() if isinstance(a, Link)} == {
        "OLT-A (10.0.0.1)": OLT_A,
        "OLT-B (10.0.0.2)": OLT_B,
    }
    unmapped, ghost = actions["OLT-SUL (10.0.0.3)"], actions["OLT-NOVA (10.0.0.9)"]
    assert isinstance(unmapped, Skip) and isinstance(ghost, Skip)
    assert unmapped.reason == (
        "OLT OLT-SUL (10.0.0.3) is not mapped to an OZmap OLT (map it in ArchOLT: OLT › OZMAP › Mapeamento da OLT)"
    )
    assert (
        ghost.reason
        == f"OLT OLT-NOVA (10.0.0.9) is mapped to OZmap OLT {GHOST_OLT}, which OZmap does not have"
    )
    again = entity(await env.run(cfg), "olt-map")
    # still reported, nothing guessed (OZmap's OLT-C has OLT-SUL's IP)
    assert again.changes == 0 and again.count("skip") == 2

    # mapped in ArchOLT's OZMAP tab
    await env.archolt_api("PATCH", f"olts/{ARCH_SUL}", {"ozmap_olt_id": OLT_C})
    mapped = by_label(entity(await env.run(cfg, apply=True), "olt-map"))["OLT-SUL (10.0.0.3)"]
    assert isinstance(mapped, Link) and mapped.target_id == OLT_C


# ------------------------------------------------------------------------------------------------ box sync


async def test_initial_load_mirrors_the_boxes_of_mapped_olts(env: Env) -> None:
    cfg = env.config(entities=NETWORK)
    result = await env.run(cfg, apply=True)
    assert result.failures == 0
    boxes = entity(result, "boxes")
    actions = by_label(boxes)
    assert {label for label, a in actions.items() if isinstance(a, Create)} == {
        "CTO-A1 (Centro)",
        "CTO-A2 (Centro)",
        "CTO-B1 (Centro)",
    }
    skipped = actions["CTO-C1 (Centro)"]
    assert isinstance(skipped, Skip)
    assert skipped.reason == "its OLT OLT-C (10.0.0.3) is not mapped to any ArchOLT OLT"
    # CE boxes (no service splitter), the box connected to no OLT and the box in project are not the sync's
    assert boxes.filtered == 5 and len(boxes.actions) == 4

    mirrors = env.mirrors()
    assert set(mirrors) == {CTO_A1, CTO_A2, CTO_B1}
    a1 = mirrors[CTO_A1]
    assert (a1["name"], a1["ozmap_olt_id"], a1["olt_id"], a1["project"], a1["ports_total"], a1["active"]) == (
        "CTO-A1",
        OLT_A,
        ARCH_A,
        "Centro",
        8,
        True,
    )
    assert (a1["latitude"], a1["longitude"]) == (env.ozmap.get("boxes", CTO_A1)["lat"], -46.6333)  # type: ignore[index]
    assert (await env.run(cfg, mode="full")).plan.changes == 0


async def test_every_cycle_after_carries_edits_additions_removals_and_new_mappings(env: Env) -> None:
    cfg = env.config(entities=NETWORK)
    assert (await env.run(cfg, apply=True)).failures == 0
    await env.provision(ARCH_A, "ZTEGC0000A21", cto="CTO-A2")  # a mirror in use is only deactivated
    await env.ozmap_control("PATCH", f"store/boxes/{CTO_A1}", {"name": "CTO-A1 Norte"})
    await env.ozmap_control("DELETE", f"store/boxes/{CTO_A2}")
    await env.ozmap_control("DELETE", f"store/boxes/{CTO_B1}")
    add_box(env.ozmap)
    await env.archolt_api("PATCH", f"olts/{ARCH_SUL}", {"ozmap_olt_id": OLT_C})

    # 2 of 3 mirrors go: above the 10 % guard
    result = await env.run(cfg, apply=True, allow_mass_removal=True)
    assert result.failures == 0
    boxes = entity(result, "boxes")
    assert boxes.mode == "incremental"
    actions = {a.source_id: a for a in boxes.actions}
    renamed = actions[CTO_A1]
    assert isinstance(renamed, Update)
    assert [(c.field, c.before, c.after) for c in renamed.changes] == [("name", "CTO-A1", "CTO-A1 Norte")]
    assert isinstance(actions[CTO_A2], Delete) and isinstance(actions[CTO_B1], Delete)
    assert isinstance(actions[CTO_A3], Create)
    assert isinstance(actions[CTO_C1], Create)  # skipped before, re-read once its OLT got mapped
    mirrors = env.mirrors()
    assert mirrors[CTO_A1]["name"] == "CTO-A1 Norte"
    assert CTO_B1 not in mirrors and mirrors[CTO_A2]["active"] is False
    assert mirrors[CTO_C1]["olt_id"] == ARCH_SUL and mirrors[CTO_A3]["ozmap_olt_id"] == OLT_A
    assert (await env.run(cfg)).plan.changes == 0
    assert (await env.run(cfg, mode="full")).plan.changes == 0


async def test_removing_most_mirrors_at_once_trips_the_guard(env: Env) -> None:
    cfg = env.config(entities=NETWORK)
    assert (await env.run(cfg, apply=True)).failures == 0
    for box in (CTO_A1, CTO_A2):
        await env.ozmap_control("DELETE", f"store/boxes/{box}")
    boxes = entity(await env.run(cfg), "boxes")
    assert boxes.count("delete") == 2 and "would remove 2 of 3 linked records" in boxes.guard
    assert set(env.mirrors()) == {CTO_A1, CTO_A2, CTO_B1}


async def test_cli_plan_shows_readable_actions(env: Env) -> None:
    cfg = env.config()
    base = [sys.executable, "-m", "reconciler"]
    planned = await anyio.run_process(
        [*base, "plan", "--config", str(cfg.path), "--integration", INTEGRATION], check=False
    )
    out = planned.stdout.decode()
    assert planned.returncode == 2, out + planned.stderr.decode()
    assert "== archolt-ozmap/olt-map  (archolt.olts → ozmap.olts, full)" in out
    assert f"LINK       OLT-A (10.0.0.1) ↔ #{OLT_A} (already equal)" in out
    assert "SKIP       ×1 OLT OLT-SUL (10.0.0.3) is not mapped to an OZmap OLT" in out
    assert "== archolt-ozmap/boxes  (ozmap.boxes → archolt.ctos, full)" in out
    assert "CREATE     CTO-A1 (Centro): ozmap_box_id=" in out and "name='CTO-A1'" in out
    assert "SKIP       ×1 its OLT OLT-C (10.0.0.3) is not mapped to any ArchOLT OLT: CTO-C1 (Centro)" in out
    assert "== archolt-ozmap/clients  (archolt.onus → ozmap.reservations, full)" in out


# ------------------------------------------------------------------------------------------------ sandbox runner


async def test_sandbox_runner_serves_an_archolt_built_from_the_ozmap_world(tmp_path: Path) -> None:
    async with runner.running(["ozmap", "archolt"], seed=3, scale=300) as sandboxes:
        assert sandboxes["archolt"].api_url == sandboxes["archolt"].url + "/api/v1"
        assert "[integrations.archolt-ozmap]" in sandboxes.config_text()
        cfg = config_mod.load(sandboxes.write_config(tmp_path / "sandbox.toml", state_path="state.db"))
        async with Engine.open(cfg) as engine:
            result = await engine.run(INTEGRATION, mode="full", apply=True)
            assert result.failures == 0
            olt_map, boxes, clients = result.plan.entities
            assert (olt_map.count("link"), olt_map.count("skip")) == (2, 1)  # the last OZmap OLT is unmapped
            assert boxes.count("create") and boxes.count("link")  # mirrors the ONUs use exist already
            assert clients.count("create")
            assert (await engine.run(INTEGRATION, mode="full")).plan.changes == 0
