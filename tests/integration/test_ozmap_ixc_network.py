"""Seed 002 OZmap → IXC client features, end to end: condominiums, port/box update, client coordinates.

Each test builds the world of :mod:`.clients_world`, runs the entities the feature needs against the OZmap and
IXC sandboxes, and checks both the plan and what the sandboxes hold afterwards; every negative condition the
seed names (radio login, inactive login, destination box not linked, no coordinates) has its own assertion.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import config as config_mod
from reconciler.engine import Engine, IntegrationRun
from reconciler.model import Create, EntityPlan, Inactivate, Link, Quarantine, Skip, Update

from .clients_world import (
    B2,
    BUILDING,
    IXC_B1,
    IXC_B2,
    IXC_CONDO1,
    S1,
    S2B,
    S3,
    SB2,
    World,
)
from .conftest import Sandboxes, oid

pytestmark = pytest.mark.anyio

NETWORK = ("boxes", "condo-splitters")


async def run(cfg: config_mod.Config, **kwargs: Any) -> IntegrationRun:
    async with Engine.open(cfg) as engine:
        return await engine.run("ozmap-ixc", **kwargs)


def entity(result: IntegrationRun, name: str) -> EntityPlan:
    return next(e for e in result.plan.entities if e.entity == name)


def by_label(plan: EntityPlan) -> dict[str, Any]:
    return {a.label: a for a in plan.actions}


# ---------------------------------------------------------------------------------------------- condominiums


async def test_condominium_splitters_become_ixc_boxes_matched_by_name(sandboxes: Sandboxes) -> None:
    World().load(sandboxes)
    cfg = sandboxes.config(entities=NETWORK)
    planned = entity(await run(cfg), "condo-splitters")
    actions = by_label(planned)
    # only service splitters: the building's network splitter is not a box
    assert set(actions) == {"Edifício Aurora - Splitter 1", "Edifício Aurora - Splitter 2"}
    link = actions["Edifício Aurora - Splitter 1"]
    # matched by name alone although IXC has it in another project and elsewhere (not by position)
    assert isinstance(link, Link) and link.target_id == IXC_CONDO1
    assert {c.field: c.after for c in link.changes} == {
        "id_projeto": "3",
        "latitude": "-27.6",
        "longitude": "-48.56",
    }
    create = actions["Edifício Aurora - Splitter 2"]
    assert isinstance(create, Create)
    assert (create.fields["capacidade"], create.fields["id_projeto"], create.fields["id_transmissor"]) == (
        "8",
        "3",
        "2",
    )

    synced = await run(cfg, apply=True)
    assert synced.failures == 0
    boxes = {r["descricao"]: r for r in sandboxes.ixc.all("rad_caixa_ftth")}
    assert boxes["Edifício Aurora - Splitter 1"]["id"] == IXC_CONDO1
    assert boxes["Edifício Aurora - Splitter 1"]["id_projeto"] == "3"
    assert boxes["Edifício Aurora - Splitter 2"]["capacidade"] == "8"
    assert (await run(cfg)).plan.changes == 0
    assert (await run(cfg, mode="full")).plan.changes == 0


async def test_condominium_splitter_renamed_updates_and_removed_inactivates(sandboxes: Sandboxes) -> None:
    World().load(sandboxes)
    cfg = sandboxes.config(entities=NETWORK)
    await run(cfg, apply=True)
    await sandboxes.control("ozmap", "PATCH", f"store/buildings/{BUILDING}", {"name": "Edifício Boreal"})
    planned = entity(await run(cfg), "condo-splitters")
    assert planned.mode == "incremental"
    renames = {a.target_id: a for a in planned.actions if isinstance(a, Update)}
    assert {c.after for a in renames.values() for c in a.changes} == {
        "Edifício Boreal - Splitter 1",
        "Edifício Boreal - Splitter 2",
    }
    await run(cfg, apply=True)
    assert sandboxes.ixc.get("rad_caixa_ftth", IXC_CONDO1)["descricao"] == "Edifício Boreal - Splitter 1"

    await sandboxes.control("ozmap", "DELETE", f"store/splitters/{SB2}")
    planned = entity(await run(cfg), "condo-splitters")
    (removal,) = planned.actions
    assert isinstance(removal, Inactivate) and removal.value == "I"
    await run(cfg, apply=True, allow_mass_removal=True)
    assert {r["status"] for r in sandboxes.ixc.all("rad_caixa_ftth") if "Splitter 2" in r["descricao"]} == {
        "I"
    }


# ----------------------------------------------------------------------------------------------- port/box update


def port_world() -> World:
    world = World()
    world.client(1, "ana.f", splitter=S1, port=2)  # same box, other port
    world.login(1, "ana.f", box=IXC_B1, port="5")
    world.client(2, "bia.f", splitter=S2B, port=3)  # moved to CTO-2's second splitter: port 11 of the box
    world.login(2, "bia.f", box=IXC_B1, port="1")
    world.client(3, "caio.radio", splitter=S1, port=3)  # radio login: never moved
    world.login(3, "caio.radio", box=IXC_B1, port="7", tipo="58")
    world.client(4, "duda.off", splitter=S1, port=4)  # inactive login: never moved
    world.login(4, "duda.off", box=IXC_B1, port="8", ativo="N")
    world.client(5, "edu.unlinked", splitter=S3, port=1)  # CTO-3 is not linked: skipped with the reason
    world.login(5, "edu.unlinked", box=IXC_B1, port="6")
    world.client(6, "fabi.condo", splitter=SB2, port=3)  # in a building: the splitter is the IXC box
    world.login(6, "fabi.condo", box="0", port="0")
    world.client(7, "gil.same", splitter=S1, port=6)  # already agrees
    world.login(7, "gil.same", box=IXC_B1, port="6")
    world.client(8, "hugo.nologin", splitter=S3, port=2)  # no IXC login and an unlinked box: nothing at all
    return world


async def test_clients_moved_in_ozmap_are_moved_in_ixc(sandboxes: Sandboxes) -> None:
    port_world().load(sandboxes)
    cfg = sandboxes.config(entities=(*NETWORK, "client-ports"))
    result = await run(cfg, apply=True)
    assert result.failures == 0
    actions = by_label(entity(result, "client-ports"))
    assert {c.field: c.after for c in actions["ana.f"].changes} == {"ftth_porta": "2"}
    assert {c.field: c.after for c in actions["bia.f"].changes} == {
        "id_caixa_ftth": IXC_B2,
        "ftth_porta": "11",
    }
    assert isinstance(actions["gil.same"], Link) and not actions["gil.same"].changes
    logins = {r["login"]: r for r in sandboxes.ixc.all("radusuarios")}
    assert (logins["ana.f"]["id_caixa_ftth"], logins["ana.f"]["ftth_porta"]) == (IXC_B1, "2")
    assert (logins["bia.f"]["id_caixa_ftth"], logins["bia.f"]["ftth_porta"]) == (IXC_B2, "11")
    assert logins["bia.f"]["senha"] == "s3cret"  # full-record PUT keeps what the view never read
    condo = next(r for r in sandboxes.ixc.all("rad_caixa_ftth") if r["descricao"].endswith("Splitter 2"))
    assert (logins["fabi.condo"]["id_caixa_ftth"], logins["fabi.condo"]["ftth_porta"]) == (condo["id"], "3")
    assert (await run(cfg)).plan.changes == 0


async def test_port_update_negative_conditions(sandboxes: Sandboxes) -> None:
    port_world().load(sandboxes)
    cfg = sandboxes.config(entities=(*NETWORK, "client-ports"))
    result = await run(cfg, apply=True)
    actions = by_label(entity(result, "client-ports"))
    assert "caio.radio" not in actions and "duda.off" not in actions and "hugo.nologin" not in actions
    skip = actions["edu.unlinked"]
    assert isinstance(skip, Skip)
    assert skip.reason.startswith("destination box is not linked to IXC (OZmap box 0000")
    logins = {r["login"]: r for r in sandboxes.ixc.all("radusuarios")}
    assert logins["caio.radio"]["ftth_porta"] == "7"
    assert logins["duda.off"]["ftth_porta"] == "8"
    assert logins["edu.unlinked"]["ftth_porta"] == "6"


async def test_a_move_made_later_in_ozmap_is_read_incrementally(sandboxes: Sandboxes) -> None:
    port_world().load(sandboxes)
    cfg = sandboxes.config(entities=(*NETWORK, "client-ports"))
    await run(cfg, apply=True)
    await sandboxes.control(
        "ozmap",
        "PATCH",
        f"store/properties/{oid(5001)}",  # ana.f
        {"box": B2, "connections": [{"id": S2B, "port": 8, "name": "Splitter 2", "fiber": "f-drop-1"}]},
    )
    planned = entity(await run(cfg), "client-ports")
    assert planned.mode == "incremental"
    (update,) = [a for a in planned.actions if isinstance(a, Update)]
    assert {c.field: c.after for c in update.changes} == {"id_caixa_ftth": IXC_B2, "ftth_porta": "16"}


# ---------------------------------------------------------------------------------------------- coordinates


async def test_login_coordinates_follow_the_ozmap_property(sandboxes: Sandboxes) -> None:
    world = World()
    world.client(1, "ana.f", lat=-27.5901, lng=-48.5502)
    world.login(1, "ana.f", box=IXC_B1, port="1", lat="-27.0", lng="-48.0")
    world.client(2, "bia.same", port=2, lat=-27.5, lng=-48.5)
    world.login(2, "bia.same", box=IXC_B1, port="2", lat="-27.50000", lng="-48.5")
    world.client(3, "caio.radio", port=3, lat=-27.7, lng=-48.7)
    world.login(3, "caio.radio", tipo="58", lat="-27.0", lng="-48.0")
    world.client(4, "duda.off", port=4, lat=-27.7, lng=-48.7)
    world.login(4, "duda.off", ativo="N", lat="-27.0", lng="-48.0")
    world.client(5, "edu.nocoords", port=5, lat=None, lng=None)
    world.login(5, "edu.nocoords", box=IXC_B1, port="5", lat="-27.3", lng="-48.3")
    world.load(sandboxes)
    cfg = sandboxes.config(entities=("client-coordinates",))
    result = await run(cfg, apply=True)
    assert result.failures == 0
    actions = by_label(entity(result, "client-coordinates"))
    assert {c.field: c.after for c in actions["ana.f"].changes} == {
        "latitude": "-27.5901",
        "longitude": "-48.5502",
    }
    assert not actions["bia.same"].changes  # "-27.50000" is -27.5: no change
    assert not actions["edu.nocoords"].changes  # no position in OZmap: IXC keeps its own
    assert "caio.radio" not in actions and "duda.off" not in actions
    logins = {r["login"]: r for r in sandboxes.ixc.all("radusuarios")}
    assert (logins["ana.f"]["latitude"], logins["ana.f"]["longitude"]) == ("-27.5901", "-48.5502")
    assert (logins["caio.radio"]["latitude"], logins["duda.off"]["latitude"]) == ("-27.0", "-27.0")
    assert logins["edu.nocoords"]["latitude"] == "-27.3"
    assert (await run(cfg)).plan.changes == 0
    assert (await run(cfg, mode="full")).plan.changes == 0


async def test_bad_data_in_a_field_the_rule_does_not_read_never_holds_the_record_on_any_read(
    sandboxes: Sandboxes,
) -> None:
    # Every source read of a cycle (full stream, incremental stream, read by id) asks for the fields the rule
    # reads, so OZmap's select leaves the bad power reading out of all of them alike: the login's coordinates
    # follow, in every mode, and the record is never quarantined. Bad coordinates (read) hold the record in every
    # mode.
    world = World()
    world.client(1, "ana.badpower", lat=-27.5901, lng=-48.5502)
    world.login(1, "ana.badpower", box=IXC_B1, port="1", lat="-27.0", lng="-48.0")
    world.client(2, "bia.badlat", port=2, lat=-27.5, lng=-48.5)
    world.login(2, "bia.badlat", box=IXC_B1, port="2", lat="-27.0", lng="-48.0")
    world.properties[0]["potencyRead"] = "n/a"
    world.properties[1]["lat"] = "-27,5x"
    world.load(sandboxes)
    cfg = sandboxes.config(entities=("client-coordinates",))
    ana, bia = oid(5001), oid(5002)

    def held(result: IntegrationRun) -> set[str]:
        return {a.label for a in entity(result, "client-coordinates").actions if isinstance(a, Quarantine)}

    def login(code: str) -> tuple[str, str]:
        row = next(r for r in sandboxes.ixc.all("radusuarios") if r["login"] == code)
        return row["latitude"], row["longitude"]

    first = await run(cfg, apply=True, mode="full")
    assert held(first) == {"bia.badlat"} and login("ana.badpower") == ("-27.5901", "-48.5502")
    for n, mode in enumerate(("auto", "targeted", "full"), start=1):
        lat = round(-27.6 + n / 100, 2)
        await sandboxes.control(
            "ozmap", "PATCH", f"store/properties/{ana}", {"lat": lat, "coords": [-48.5, lat]}
        )
        edited = {"lat": "-27,5x", "observation": f"edit {n}"}  # changed, still bad where the rule reads
        await sandboxes.control("ozmap", "PATCH", f"store/properties/{bia}", edited)
        if mode == "targeted":
            result = await run(cfg, apply=True, only={"client-coordinates": [ana, bia]})
        else:
            result = await run(cfg, apply=True, mode=mode)
        assert held(result) == {"bia.badlat"}, (mode, entity(result, "client-coordinates").actions)
        assert login("ana.badpower") == (str(lat), "-48.5"), mode
    async with Engine.open(cfg) as engine:
        kept = {q.source_id for q in await engine.store.quarantined("ozmap-ixc", "client-coordinates")}
    assert kept == {bia}
