"""Seed 002 "Boxes" (OZmap → IXC), end to end against the OZmap and IXC sandboxes.

Every bullet of the seed's Boxes section has a test here: creation with project and transmitter lookup, the
OLT-not-found skip and its config override, the initial name + project link, the update of the seven fields,
removal → status "I", incremental reads by last update; plus the guard, quarantine, crash-safe creates and the
CLI exit codes.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import anyio
import msgspec
import pytest

from reconciler import config as config_mod
from reconciler import cycle
from reconciler.engine import Engine, IntegrationRun
from reconciler.errors import GuardTripped
from reconciler.model import Create, Inactivate, Link, Quarantine, Skip, Update
from reconciler.state.store import JournalEntry

from .conftest import TS, Sandboxes, ixc_box, oid, ozmap_box, ozmap_splitter

pytestmark = pytest.mark.anyio

CHICAGO, CURITIBA = oid(1), oid(2)
B1, B2, B3, B4, B5, B6, B7 = (oid(n) for n in (101, 102, 103, 104, 100, 106, 107))


def build_world(sb: Sandboxes) -> None:
    """A small network with one record per case of the seed's Boxes section."""
    oz = sb.ozmap
    oz.load(
        "projects",
        [
            {"id": CHICAGO, "_id": CHICAGO, "name": "Chicago", "createdAt": TS, "updatedAt": TS},
            {"id": CURITIBA, "_id": CURITIBA, "name": "Curitiba", "createdAt": TS, "updatedAt": TS},
        ],
    )
    oz.load(
        "olts",
        [
            {
                "id": oid(10),
                "_id": oid(10),
                "kind": "OLT",
                "name": "OLT-Fiberhome-1",
                "ip": "10.0.0.1",
                "project": CHICAGO,
                "connectables": [oid(20)],
                "createdAt": TS,
                "updatedAt": TS,
            },
            {
                "id": oid(11),
                "_id": oid(11),
                "kind": "OLT",
                "name": "OLT-Huawei-2",
                "ip": "10.0.0.7",
                "project": CHICAGO,
                "connectables": [oid(21)],
                "createdAt": TS,
                "updatedAt": TS,
            },
        ],
    )
    oz.load(
        "slots",
        [
            {
                "id": oid(20),
                "_id": oid(20),
                "kind": "Slot",
                "parent": oid(10),
                "project": CHICAGO,
                "connectables": [oid(30)],
                "createdAt": TS,
                "updatedAt": TS,
            },
            {
                "id": oid(21),
                "_id": oid(21),
                "kind": "Slot",
                "parent": oid(11),
                "project": CHICAGO,
                "connectables": [oid(31)],
                "createdAt": TS,
                "updatedAt": TS,
            },
        ],
    )
    oz.load(
        "pons",
        [
            {
                "id": oid(30),
                "_id": oid(30),
                "kind": "PON",
                "parent": oid(20),
                "project": CHICAGO,
                "potency": 3,
                "connectables": ["f-pon-1"],
                "createdAt": TS,
                "updatedAt": TS,
            },
            {
                "id": oid(31),
                "_id": oid(31),
                "kind": "PON",
                "parent": oid(21),
                "project": CHICAGO,
                "potency": 3,
                "connectables": ["f-pon-2"],
                "createdAt": TS,
                "updatedAt": TS,
            },
        ],
    )
    oz.load(
        "boxes",
        [
            ozmap_box(100, "CE-1", CHICAGO),  # only a network splitter: not a service box
            ozmap_box(101, "CTO-1", CHICAGO, observation="corner of 5th"),
            ozmap_box(102, "CTO-2", CHICAGO, lat=-27.61, observation="pre-existing"),
            ozmap_box(103, "CTO-3", CHICAGO),  # fed by an OLT that IXC does not know
            ozmap_box(104, "CTO-4", CHICAGO, implanted=False),  # "in project"
            ozmap_box(106, "CTO-6", CURITIBA),  # project missing in IXC
            ozmap_box(107, "CTO-7", CHICAGO, lat=None, lng=None),  # bad coordinates
        ],
    )
    oz.load(
        "splitters",
        [
            ozmap_splitter(
                200,
                oid(100),
                CHICAGO,
                is_drop=False,
                inputs=["f-pon-1"],
                outputs=["f-a", "f-b", "f-c", "f-d", "f-e", None, None, None],
            ),
            ozmap_splitter(201, B1, CHICAGO, is_drop=True, inputs=["f-a"], outputs=[None] * 8),
            ozmap_splitter(202, B2, CHICAGO, is_drop=True, inputs=["f-b"], outputs=[None] * 16),
            ozmap_splitter(203, B3, CHICAGO, is_drop=True, inputs=["f-pon-2"], outputs=[None] * 8),
            ozmap_splitter(204, B4, CHICAGO, is_drop=True, inputs=["f-c"], outputs=[None] * 8),
            ozmap_splitter(206, B6, CURITIBA, is_drop=True, inputs=["f-d"], outputs=[None] * 8),
            ozmap_splitter(207, B7, CHICAGO, is_drop=True, inputs=["f-e"], outputs=[None] * 8),
        ],
    )
    ixc = sb.ixc
    ixc.load(
        "df_projeto",
        [
            {
                "id": "3",
                "nome": "Chicago",
                "latitude": "-27.6",
                "longitude": "-48.5",
                "zoom": "14",
                "status": "A",
            }
        ],
    )
    ixc.load("radpop", [{"id": "1", "pop": "POP Centro"}])
    ixc.load(
        "radpop_radio",
        [{"id": "2", "descricao": "OLT-Fiberhome-1", "ip": "10.0.0.1", "id_pop": "1", "ativo": "S"}],
    )
    ixc.load(
        "rad_caixa_ftth",
        [
            ixc_box("45", "CTO-2", "3", capacidade="8", latitude="-27.00", obs_caixa_ftth="old"),
            ixc_box("46", "cto-1", "3"),  # different case: must not be matched to CTO-1
        ],
    )


async def plan(cfg: config_mod.Config, **kwargs: Any) -> IntegrationRun:
    async with Engine.open(cfg) as engine:
        return await engine.run("ozmap-ixc", **kwargs)


async def sync(cfg: config_mod.Config, **kwargs: Any) -> IntegrationRun:
    return await plan(cfg, apply=True, **kwargs)


def by_label(run: IntegrationRun) -> dict[str, Any]:
    (entity,) = run.plan.entities
    return {a.label.split(" (")[0]: a for a in entity.actions}


async def test_first_plan_covers_every_case_of_the_seed(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    run = await plan(sandboxes.config())
    actions = by_label(run)
    assert set(actions) == {"CTO-1", "CTO-2", "CTO-3", "CTO-6", "CTO-7"}
    create = actions["CTO-1"]
    assert isinstance(create, Create)
    assert create.fields["descricao"] == "CTO-1"
    assert create.fields["id_projeto"] == "3"  # project looked up by name
    assert create.fields["id_transmissor"] == "2"  # OLT looked up by the IP of the OLT feeding the splitter
    assert create.fields["capacidade"] == "8"
    assert create.fields["obs_caixa_ftth"] == "corner of 5th"
    assert create.fields["status"] == "A"
    link = actions["CTO-2"]
    assert isinstance(link, Link) and link.target_id == "45"
    assert {c.field: (c.before, c.after) for c in link.changes} == {
        "capacidade": ("8", "16"),
        "latitude": ("-27.00", "-27.61"),
        "obs_caixa_ftth": ("old", "pre-existing"),
    }
    assert isinstance(actions["CTO-3"], Skip)
    assert actions["CTO-3"].reason == "OLT 10.0.0.7 not found in IXC (option create_box_without_olt is off)"
    assert isinstance(actions["CTO-6"], Skip) and "Curitiba" in actions["CTO-6"].reason
    assert isinstance(actions["CTO-7"], Quarantine) and "latitude" in actions["CTO-7"].reason
    (entity,) = run.plan.entities
    assert entity.filtered == 2  # CE-1 (no service splitter) and CTO-4 (in project)
    assert sandboxes.ixc.get("rad_caixa_ftth", "45")["capacidade"] == "8"  # a plan changes nothing


async def test_sync_creates_links_updates_and_then_plans_nothing(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    run = await sync(cfg)
    assert run.failures == 0
    boxes = {r["descricao"]: r for r in sandboxes.ixc.all("rad_caixa_ftth")}
    assert set(boxes) == {"CTO-1", "CTO-2", "cto-1"}
    created = boxes["CTO-1"]
    assert (created["id_projeto"], created["id_transmissor"], created["capacidade"], created["status"]) == (
        "3",
        "2",
        "8",
        "A",
    )
    assert (created["latitude"], created["longitude"]) == ("-27.59", "-48.55")
    assert boxes["CTO-2"]["id"] == "45" and boxes["CTO-2"]["capacidade"] == "16"
    assert boxes["CTO-2"]["obs_caixa_ftth"] == "pre-existing"
    async with Engine.open(cfg) as engine:
        links = await engine.store.links("ozmap-ixc", "boxes")
    assert {sid: row.target_id for sid, row in links.items()} == {B1: created["id"], B2: "45"}
    assert (await plan(cfg)).plan.changes == 0
    assert (await plan(cfg, mode="full")).plan.changes == 0


async def test_create_box_without_olt_option(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    run = await sync(sandboxes.config(create_box_without_olt=True))
    assert run.failures == 0
    boxes = {r["descricao"]: r for r in sandboxes.ixc.all("rad_caixa_ftth")}
    assert boxes["CTO-3"]["id_transmissor"] == "0"


async def test_update_of_the_seven_fields_after_an_edit_in_ozmap(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)
    await sandboxes.control(
        "ozmap",
        "PATCH",
        f"store/boxes/{B1}",
        {
            "name": "CTO-1A",
            "observation": "moved",
            "coords": [-48.56, -27.58],
            "lat": -27.58,
            "lng": -48.56,
        },
    )
    await sandboxes.control(
        "ozmap",
        "PATCH",
        f"store/splitters/{oid(201)}",
        {
            "ratio": {"input": 1, "output": 16},
            "connectables": {"input": ["f-b"], "output": [None] * 16},
        },
    )
    await sandboxes.control(
        "ozmap", "PATCH", f"store/boxes/{B1}", {"project": CHICAGO}
    )  # bump updatedAt after the splitter edit
    run = await plan(cfg)
    (entity,) = run.plan.entities
    assert entity.mode == "incremental"
    (update,) = [a for a in entity.actions if isinstance(a, Update)]
    assert {c.field: c.after for c in update.changes} == {
        "descricao": "CTO-1A",
        "latitude": "-27.58",
        "longitude": "-48.56",
        "obs_caixa_ftth": "moved",
        "capacidade": "16",
    }
    await sandboxes.control("ixc", "DELETE", "requests")
    await sync(cfg)
    box = sandboxes.ixc.get("rad_caixa_ftth", update.target_id)
    assert box["descricao"] == "CTO-1A" and box["capacidade"] == "16"
    puts = [r for r in await sandboxes.control("ixc", "GET", "requests") if r["method"] == "PUT"]
    assert len(puts) == 1
    assert {"descricao", "id_projeto", "codigo_estilo_caixa", "tipo", "status"} <= set(
        puts[0]["body"]
    )  # full record
    assert (await plan(cfg)).plan.changes == 0


async def test_project_and_transmitter_follow_ozmap(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)
    sandboxes.ixc.load(
        "df_projeto",
        [
            {
                "id": "4",
                "nome": "Curitiba",
                "latitude": "-25.4",
                "longitude": "-49.2",
                "zoom": "14",
                "status": "A",
            }
        ],
    )
    await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B2}", {"project": CURITIBA})
    run = await plan(cfg)
    (update,) = [a for a in run.plan.entities[0].actions if isinstance(a, Update)]
    assert {c.field: (c.before, c.after) for c in update.changes} == {"id_projeto": ("3", "4")}


async def test_removed_box_becomes_inactive(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg, allow_mass_removal=False)
    await sandboxes.control("ozmap", "DELETE", f"store/boxes/{B1}")
    run = await plan(cfg)
    (entity,) = run.plan.entities
    (inactivate,) = [a for a in entity.actions if isinstance(a, Inactivate)]
    assert (inactivate.field, inactivate.before, inactivate.value) == ("status", "A", "I")
    # 1 of 2 linked boxes is 50% > the 10% guard: the operator confirms this one.
    with pytest.raises(GuardTripped):
        await sync(cfg)
    assert sandboxes.ixc.get("rad_caixa_ftth", inactivate.target_id)["status"] == "A"
    await sync(cfg, allow_mass_removal=True)
    assert sandboxes.ixc.get("rad_caixa_ftth", inactivate.target_id)["status"] == "I"
    assert (await plan(cfg)).plan.changes == 0


async def test_incremental_cycle_reads_only_boxes_updated_since_the_cursor(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)
    await sandboxes.control("ozmap", "DELETE", "requests")
    run = await plan(cfg)
    (entity,) = run.plan.entities
    assert entity.mode == "incremental"
    box_lists = [
        r
        for r in await sandboxes.control("ozmap", "GET", "requests")
        if r["path"].rstrip("/").endswith("/boxes")
    ]
    assert box_lists, "the incremental cycle must list boxes"
    filters = [
        msgspec.json.encode(r["query"]).decode() + msgspec.json.encode(r["body"]).decode() for r in box_lists
    ]
    since = [f for f in filters if "updatedAt" in f or "deletedAt" in f]
    by_id = [f for f in filters if f not in since and '\\"operator\\":\\"in\\"' in f]
    assert since, filters  # changed and deleted since the cursor
    assert len(since) + len(by_id) == len(filters), filters  # plus skipped/quarantined boxes re-read by id
    assert entity.changes == 0


async def test_guard_stops_mass_inactivation_and_empty_source(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)
    for box in (B1, B2):
        await sandboxes.control("ozmap", "DELETE", f"store/boxes/{box}")
    run = await plan(cfg, mode="full")
    assert run.plan.guard_tripped
    with pytest.raises(GuardTripped):
        await sync(cfg, mode="full")
    assert {r["status"] for r in sandboxes.ixc.all("rad_caixa_ftth")} == {"A"}


async def test_lost_create_answer_makes_no_duplicate(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    await sandboxes.control(
        "ixc", "POST", "faults", {"kind": "lost", "route": "rad_caixa_ftth", "method": "POST", "count": 1}
    )
    run = await sync(cfg)
    assert run.failures == 0
    names = [r["descricao"] for r in sandboxes.ixc.all("rad_caixa_ftth")]
    assert names.count("CTO-1") == 1
    assert (await plan(cfg)).plan.changes == 0


async def test_pending_create_left_by_a_crash_is_adopted_not_duplicated(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    # The crashed run had journaled the create and the POST had reached IXC, but it died before committing.
    landed = ixc_box("", "CTO-1", "3", capacidade="8")
    del landed["id"]
    await sandboxes.control("ixc", "POST", "store/rad_caixa_ftth", landed)
    async with Engine.open(cfg) as engine:
        await engine.store.journal_begin(
            [
                JournalEntry(
                    run_id="crashed",
                    action_id="crashed:boxes:0",
                    integration="ozmap-ixc",
                    entity="boxes",
                    kind="create",
                    source_id=B1,
                    natural_key='{"descricao":"CTO-1","id_projeto":"3"}',
                    at=TS,
                )
            ]
        )
    run = await sync(cfg)
    assert run.failures == 0
    assert [r["descricao"] for r in sandboxes.ixc.all("rad_caixa_ftth")].count("CTO-1") == 1
    async with Engine.open(cfg) as engine:
        assert await engine.store.journal_unresolved("ozmap-ixc", "boxes") == []
        assert B1 in await engine.store.links("ozmap-ixc", "boxes")


async def test_cli_exit_codes(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    base = [sys.executable, "-m", "reconciler"]
    planned = await anyio.run_process(
        [*base, "plan", "--config", str(cfg.path), "--json", str(sandboxes.tmp / "p.json")], check=False
    )
    assert planned.returncode == 2, planned.stderr.decode()
    text = planned.stdout.decode()
    assert "CREATE" in text and "CTO-1" in text and "OLT 10.0.0.7 not found in IXC" in text
    assert (
        msgspec.json.decode((sandboxes.tmp / "p.json").read_bytes())["plan"]["entities"][0]["entity"]
        == "boxes"
    )
    synced = await anyio.run_process([*base, "sync", "--config", str(cfg.path), "--once"], check=False)
    assert synced.returncode == 2, synced.stderr.decode()
    clean = await anyio.run_process([*base, "plan", "--config", str(cfg.path)], check=False)
    assert clean.returncode == 0, clean.stdout.decode() + clean.stderr.decode()
    assert "in sync: nothing to do" in clean.stdout.decode()
    for box in (B1, B2):
        await sandboxes.control("ozmap", "DELETE", f"store/boxes/{box}")
    guarded = await anyio.run_process([*base, "sync", "--config", str(cfg.path), "--once"], check=False)
    assert guarded.returncode == 3, guarded.stdout.decode() + guarded.stderr.decode()
    bad = await anyio.run_process(
        [*base, "plan", "--config", str(sandboxes.tmp / "missing.toml")], check=False
    )
    assert bad.returncode == 1 and "cannot read config file" in bad.stderr.decode()


async def test_many_unlinked_records_in_an_incremental_cycle_read_the_whole_target(
    sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_world(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)
    async with Engine.open(cfg) as engine:
        await engine.store.unlink("ozmap-ixc", "boxes", [B2])  # an operator forgot the pair
    await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B2}", {"observation": "re-read"})
    monkeypatch.setattr(cycle, "FIND_ONE_BY_ONE_MAX", 0)  # one unlinked record is already "many"
    await sandboxes.control("ozmap", "DELETE", "requests")
    await sandboxes.control("ixc", "DELETE", "requests")
    run = await plan(cfg)
    (entity,) = run.plan.entities
    assert entity.mode == "incremental"
    (link,) = [a for a in entity.actions if isinstance(a, Link)]
    assert (link.source_id, link.target_id) == (B2, "45")  # matched by name + project in the full listing
    assert {c.field: c.after for c in link.changes} == {"obs_caixa_ftth": "re-read"}
    listings = [r for r in await sandboxes.control("ixc", "GET", "requests") if "rad_caixa_ftth" in r["path"]]
    assert listings  # the whole collection listed, not one natural-key search per unlinked record:
    assert not [r for r in listings if "descricao" in str(r["body"].get("qtype", ""))]


async def test_apply_runs_its_actions_on_as_many_tasks_as_the_concurrency_not_one_each(
    sandboxes: Sandboxes,
) -> None:
    # 200 creates: a task per action would park 200 tasks on the limiter (~6 KB each: 6.5 GB at an initial load
    # of 1M records); the applier runs them on `concurrency` workers instead
    build_world(sandboxes)
    many = 200
    sandboxes.ozmap.load("boxes", [ozmap_box(1000 + k, f"CTO-{1000 + k}", CHICAGO) for k in range(many)])
    sandboxes.ozmap.load(
        "splitters",
        [
            ozmap_splitter(3000 + k, oid(1000 + k), CHICAGO, is_drop=True, inputs=["f-a"], outputs=[None] * 8)
            for k in range(many)
        ],
    )
    cfg = sandboxes.config()
    most = 0

    async def count_tasks() -> None:
        nonlocal most
        while True:
            most = max(most, len(asyncio.all_tasks()))
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as group:
        group.start_soon(count_tasks)
        run = await sync(cfg)
        group.cancel_scope.cancel()
    assert run.failures == 0
    (entity,) = run.plan.entities
    assert sum(isinstance(a, Create) for a in entity.actions) == many + 1  # and CTO-1
    assert len(sandboxes.ixc.all("rad_caixa_ftth")) == many + 3
    # workers (8 per system by default), the sandboxes' request handlers and the test's own tasks
    assert most < 60, most


async def test_a_full_cycle_with_links_still_matches_new_boxes_to_unlinked_ixc_boxes_by_name(
    sandboxes: Sandboxes,
) -> None:
    # A full cycle packs the IXC boxes no link names while it reads them, and unpacks only those a source asks
    # for by name + project: the first-sight match must come out as if every one had been kept
    build_world(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)
    sandboxes.ozmap.load("boxes", [ozmap_box(108, "CTO-8", CHICAGO), ozmap_box(109, "CTO-9", CHICAGO)])
    sandboxes.ozmap.load(
        "splitters",
        [
            ozmap_splitter(208, oid(108), CHICAGO, is_drop=True, inputs=["f-a"], outputs=[None] * 8),
            ozmap_splitter(209, oid(109), CHICAGO, is_drop=True, inputs=["f-a"], outputs=[None] * 8),
        ],
    )
    sandboxes.ixc.load(
        "rad_caixa_ftth",
        [
            ixc_box("147", "CTO-8", "3", capacidade="16"),
            ixc_box("148", "CTO-9", "3"),
            ixc_box("149", "CTO-9", "3"),
            ixc_box("150", "CTO-10", "3"),  # no source names it: left alone
        ],
    )
    run = await plan(cfg, mode="full")
    (entity,) = run.plan.entities
    assert entity.mode == "full"
    actions = by_label(run)
    assert set(actions) == {"CTO-3", "CTO-6", "CTO-7", "CTO-8", "CTO-9"}
    link = actions["CTO-8"]
    assert isinstance(link, Link) and link.target_id == "147"
    assert {c.field: (c.before, c.after) for c in link.changes} == {"capacidade": ("16", "8")}
    ambiguous = actions["CTO-9"]
    assert isinstance(ambiguous, Skip) and "ambiguous" in ambiguous.reason and "148, 149" in ambiguous.reason
    await sync(cfg, mode="full")
    assert (await plan(cfg, mode="full")).plan.changes == 0
