"""Full cycles settle pairs read exactly as when last found in agreement, and never hide a difference.

Against the OZmap and IXC sandboxes, on the boxes world of ``test_boxes_e2e``: the first full cycle after a sync
compares every pair and stores their fingerprints; the next one settles them without running the rule. Any
change on either side, in the lookup tables, a held record or ``compare_all`` brings the comparison back.
"""

from __future__ import annotations

import pytest

from reconciler.engine import Engine
from reconciler.model import Inactivate, Update

from .conftest import Sandboxes
from .test_boxes_e2e import B1, B2, B7, build_world, plan, sync

pytestmark = pytest.mark.anyio


async def agreed(sandboxes: Sandboxes) -> None:
    """Sync, then a full sync that finds both linked boxes in agreement and stores their fingerprints."""
    build_world(sandboxes)
    cfg = sandboxes.config()
    assert (await sync(cfg)).failures == 0
    first = await sync(cfg, mode="full")
    assert (first.plan.changes, first.results[0].settled) == (0, 0)
    async with Engine.open(cfg) as engine:
        links = await engine.store.links("ozmap-ixc", "boxes")
    assert all(row.source_hash and row.target_hash for row in links.values())


async def test_a_second_full_cycle_settles_pairs_read_as_agreed(sandboxes: Sandboxes) -> None:
    await agreed(sandboxes)
    run = await plan(sandboxes.config(), mode="full")
    (result,) = run.results
    assert (run.plan.changes, result.settled) == (0, 2)
    entity = run.plan.entities[0]
    assert entity.unchanged >= 2  # settled records count unchanged
    assert entity.filtered == 2  # unlinked records still run the rule


async def test_a_target_edited_behind_our_back_is_compared_again(sandboxes: Sandboxes) -> None:
    await agreed(sandboxes)
    box = dict(sandboxes.ixc.get("rad_caixa_ftth", "45") or {})
    sandboxes.ixc.update("rad_caixa_ftth", "45", {**box, "capacidade": "32"})
    run = await plan(sandboxes.config(), mode="full")
    (update,) = [a for a in run.plan.entities[0].actions if isinstance(a, Update)]
    assert update.source_id == B2
    assert {c.field: (c.before, c.after) for c in update.changes} == {"capacidade": ("32", "16")}
    assert run.results[0].settled == 1


async def test_a_source_edit_is_compared_again(sandboxes: Sandboxes) -> None:
    await agreed(sandboxes)
    await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B1}", {"observation": "moved"})
    run = await plan(sandboxes.config(), mode="full")
    (update,) = [a for a in run.plan.entities[0].actions if isinstance(a, Update)]
    assert update.source_id == B1
    assert {c.field: c.after for c in update.changes} == {"obs_caixa_ftth": "moved"}
    assert run.results[0].settled == 1


async def test_a_source_edit_the_rule_does_not_read_keeps_the_pair_settled(sandboxes: Sandboxes) -> None:
    await agreed(sandboxes)
    await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B1}", {"address": "Rua Nova, 10"})
    run = await plan(sandboxes.config(), mode="full")  # the boxes rule maps no address
    assert (run.plan.changes, run.results[0].settled) == (0, 2)


async def test_changed_lookup_tables_or_compare_all_settle_nothing(sandboxes: Sandboxes) -> None:
    await agreed(sandboxes)
    cfg = sandboxes.config()
    assert (await plan(cfg, mode="full", compare_all=True)).results[0].settled == 0
    project = {"id": "9", "nome": "Joinville", "latitude": "-26.3", "longitude": "-48.8", "zoom": "14"}
    sandboxes.ixc.load("df_projeto", [{**project, "status": "A"}])  # a lookup table changed
    run = await plan(cfg, mode="full")
    assert (run.plan.changes, run.results[0].settled) == (0, 0)


async def test_a_held_record_is_never_settled(sandboxes: Sandboxes) -> None:
    await agreed(sandboxes)
    cfg = sandboxes.config()
    await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B2}", {"lat": 99.0})
    assert (await sync(cfg, mode="full")).plan.entities[0].count("quarantine") == 2  # CTO-7 and CTO-2
    original = {"lat": -27.61}
    await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B2}", original)
    run = await sync(cfg, mode="full")
    assert run.results[0].settled == 1  # B1 only: B2 is held, so it is compared and released
    async with Engine.open(cfg) as engine:
        held = {q.source_id for q in await engine.store.quarantined("ozmap-ixc", "boxes")}
    assert B2 not in held


async def test_a_removed_source_of_a_settled_pair_is_inactivated_from_a_fresh_read(
    sandboxes: Sandboxes,
) -> None:
    await agreed(sandboxes)
    await sandboxes.control("ozmap", "DELETE", f"store/boxes/{B1}")
    run = await plan(sandboxes.config(), mode="full")
    (inactivate,) = [a for a in run.plan.entities[0].actions if isinstance(a, Inactivate)]
    assert (inactivate.source_id, inactivate.before, inactivate.value) == (B1, "A", "I")
    assert inactivate.label == "CTO-1 / 3"
    assert run.results[0].settled == 1


async def test_a_held_record_filtered_out_is_still_seen_and_released(sandboxes: Sandboxes) -> None:
    # Filtered records are only counted, unless linked or held: CTO-7 (bad coordinates) is held, then taken
    # out of service. The full cycle must still see it to release its quarantine.
    await agreed(sandboxes)
    cfg = sandboxes.config()
    async with Engine.open(cfg) as engine:
        assert B7 in {q.source_id for q in await engine.store.quarantined("ozmap-ixc", "boxes")}
    await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B7}", {"implanted": False})
    run = await sync(cfg, mode="full")
    entity = run.plan.entities[0]
    assert entity.filtered == 3  # the two unlinked ones counted without objects, and CTO-7
    assert entity.count("quarantine") == 0
    async with Engine.open(cfg) as engine:
        assert B7 not in {q.source_id for q in await engine.store.quarantined("ozmap-ixc", "boxes")}
