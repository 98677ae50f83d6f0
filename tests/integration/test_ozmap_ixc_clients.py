"""Seed 002 IXC → OZmap client features, end to end: creation, activation, withdrawal and cancellation, status
and power, client name.

Each test builds the world of :mod:`.clients_world` with the logins its feature reads, runs the feature's
entities against the sandboxes and checks the plan and the OZmap records afterwards, including each negative
condition the seed names (not fiber, inactive login, contract not active, box not linked, no port).
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import config as config_mod
from reconciler.engine import Engine, IntegrationRun
from reconciler.model import Create, Delete, EntityPlan, Link, Operate, Skip, Update

from .clients_world import (
    B1,
    B2,
    BUILDING,
    IXC_B1,
    IXC_B2,
    IXC_CONDO1,
    IXC_LEGACY,
    S1,
    S2A,
    S2B,
    SB1,
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


def clients_by_code(sb: Sandboxes) -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in sb.ozmap.all("ftth-clients")}


def outputs(sb: Sandboxes, splitter: str) -> list[Any]:
    row = sb.ozmap.get("splitters", splitter)
    assert row is not None
    return list(row["connectables"]["output"])


# ------------------------------------------------------------------------------------------------ creation


def creation_world() -> World:
    world = World()
    world.client(1, "ana.f", splitter=S1, port=1)  # has an OZmap client: linked, never created again
    world.login(1, "ana.f", box=IXC_B1, port="1")
    world.login(20, "new.port", box=IXC_B1, port="4", name="Nina Porta", lat="-27.5911", lng="-48.5511")
    world.login(21, "new.two", box=IXC_B2, port="12", name="Otto Dois")  # CTO-2 splitter 2, port 4
    world.login(22, "new.condo", box=IXC_CONDO1, port="2", name="Paula Condo")  # the building's splitter 1
    world.login(23, "new.noport", box=IXC_B2, port="0")
    world.login(24, "new.legacy", box=IXC_LEGACY, port="1")  # IXC-only box: not linked
    world.login(25, "new.radio", box=IXC_B1, port="5", tipo="58")
    world.login(26, "new.off", box=IXC_B1, port="6", ativo="N", contract="P")
    return world


async def test_fiber_logins_without_ozmap_client_are_created_in_the_erp_box(sandboxes: Sandboxes) -> None:
    creation_world().load(sandboxes)
    cfg = sandboxes.config(entities=(*NETWORK, "client-creation"))
    result = await run(cfg, apply=True)
    assert result.failures == 0
    actions = by_label(entity(result, "client-creation"))
    assert isinstance(actions["ana.f"], Link) and not actions["ana.f"].changes
    assert {label for label, a in actions.items() if isinstance(a, Create)} == {
        "new.port",
        "new.two",
        "new.condo",
    }

    clients = clients_by_code(sandboxes)
    props = {p["client"]: p for p in sandboxes.ozmap.all("properties") if p.get("client")}
    new = clients["new.port"]
    assert (new["name"], new["implanted"]) == ("Nina Porta", False)  # a reservation, not implanted
    prop = props[new["id"]]
    assert (prop["box"], prop["connections"][0]["id"], prop["connections"][0]["port"]) == (B1, S1, 4)
    assert (prop["lat"], prop["lng"]) == (-27.5911, -48.5511)
    assert prop["drop"] and outputs(sandboxes, S1)[3] is not None  # the drop occupies the port
    two = props[clients["new.two"]["id"]]
    assert (two["box"], two["connections"][0]["id"], two["connections"][0]["port"]) == (B2, S2B, 4)
    condo = props[clients["new.condo"]["id"]]
    assert (condo["box"], condo["connections"][0]["id"], condo["connections"][0]["port"]) == (
        BUILDING,
        SB1,
        2,
    )
    assert (await run(cfg)).plan.changes == 0


async def test_creation_negative_conditions(sandboxes: Sandboxes) -> None:
    creation_world().load(sandboxes)
    cfg = sandboxes.config(entities=(*NETWORK, "client-creation"))
    result = await run(cfg, apply=True)
    actions = by_label(entity(result, "client-creation"))
    no_port, legacy = actions["new.noport"], actions["new.legacy"]
    assert isinstance(no_port, Skip)
    assert no_port.reason == (
        "the ERP has no port for login new.noport and option first_free_port_when_erp_has_none is off"
    )
    assert isinstance(legacy, Skip)
    assert legacy.reason == f"IXC box {IXC_LEGACY} is not linked to an OZmap box or building splitter"
    assert "new.radio" not in actions and "new.off" not in actions  # only fiber, active logins
    assert set(clients_by_code(sandboxes)) == {"ana.f", "new.port", "new.two", "new.condo"}


async def test_first_free_port_option(sandboxes: Sandboxes) -> None:
    creation_world().load(sandboxes)
    cfg = sandboxes.config(entities=(*NETWORK, "client-creation"), first_free_port_when_erp_has_none=True)
    result = await run(cfg, apply=True)
    assert result.failures == 0
    create = by_label(entity(result, "client-creation"))["new.noport"]
    assert isinstance(create, Create) and create.fields["port"] == 0
    client = clients_by_code(sandboxes)["new.noport"]
    (prop,) = [p for p in sandboxes.ozmap.all("properties") if p.get("client") == client["id"]]
    assert (prop["box"], prop["connections"][0]["id"], prop["connections"][0]["port"]) == (B2, S2A, 1)


async def test_reservation_created_then_moved_port_flows_back_to_ixc(sandboxes: Sandboxes) -> None:
    """All entities in one sync: the first free port OZmap chose becomes the login's port in IXC."""
    creation_world().load(sandboxes)
    cfg = sandboxes.config(entities=None, first_free_port_when_erp_has_none=True)
    assert (await run(cfg, apply=True)).failures == 0
    login = next(r for r in sandboxes.ixc.all("radusuarios") if r["login"] == "new.noport")
    assert (login["id_caixa_ftth"], login["ftth_porta"]) == (IXC_B2, "1")
    assert (await run(cfg)).plan.changes == 0


# ------------------------------------------------------------------------------------------------ activation


async def test_active_contract_makes_the_client_implanted(sandboxes: Sandboxes) -> None:
    world = World()
    world.client(1, "ana.res", port=1, implanted=False)
    world.login(1, "ana.res", box=IXC_B1, port="1", contract="A")
    world.client(2, "bia.pending", port=2, implanted=False)
    world.login(2, "bia.pending", box=IXC_B1, port="2", contract="P")
    world.client(3, "caio.radio", port=3, implanted=False)
    world.login(3, "caio.radio", tipo="58", contract="A")
    world.client(4, "duda.nocontract", port=4, implanted=False)
    world.login(4, "duda.nocontract", box=IXC_B1, port="4", contract=None)
    world.login(5, "edu.noclient", box=IXC_B1, port="5", contract="A")
    world.load(sandboxes)
    cfg = sandboxes.config(entities=("activation",))
    result = await run(cfg, apply=True)
    assert result.failures == 0
    actions = by_label(entity(result, "activation"))
    assert set(actions) == {"ana.res"}  # no client for edu.noclient: nothing to activate (creation's job)
    assert [(c.field, c.before, c.after) for c in actions["ana.res"].changes] == [("implanted", False, True)]
    clients = clients_by_code(sandboxes)
    assert clients["ana.res"]["implanted"] is True
    assert not any(clients[c]["implanted"] for c in ("bia.pending", "caio.radio", "duda.nocontract"))
    assert (await run(cfg)).plan.changes == 0


# ------------------------------------------------------------------------------------------------ cancellation


def cancellation_world() -> World:
    world = World()
    world.client(1, "wd.res", splitter=S1, port=1, implanted=False)
    world.login(1, "wd.res", ativo="N", contract="D")
    world.client(2, "wd.live", splitter=S1, port=2, implanted=True)  # implanted: not a reservation
    world.login(2, "wd.live", ativo="N", contract="D")
    world.client(3, "cx.nocontract", splitter=S1, port=3)
    world.login(3, "cx.nocontract", ativo="N", contract=None)
    world.client(4, "cx.cancelled", splitter=S2A, port=1)
    world.login(4, "cx.cancelled", ativo="N", contract="I")
    world.client(5, "cx.activecontract", splitter=S1, port=5)
    world.login(5, "cx.activecontract", ativo="N", contract="A")
    world.client(6, "cx.activelogin", splitter=S1, port=6)
    world.login(6, "cx.activelogin", ativo="S", contract=None)
    return world


async def test_withdrawal_removes_the_reservation(sandboxes: Sandboxes) -> None:
    cancellation_world().load(sandboxes)
    cfg = sandboxes.config(entities=("withdrawal",))
    result = await run(cfg, apply=True)
    assert result.failures == 0
    (delete,) = entity(result, "withdrawal").actions
    assert isinstance(delete, Delete) and (delete.label, delete.target_id) == ("wd.res", oid(5001))
    assert sandboxes.ozmap.get("properties", oid(5001)) is None or sandboxes.ozmap.get(
        "properties", oid(5001)
    ).get("deletedAt")
    assert "wd.res" not in clients_by_code(sandboxes)  # client and drop removed with the property
    assert outputs(sandboxes, S1)[0] is None  # the port is free again
    assert "wd.live" in clients_by_code(sandboxes)  # implanted: not a reservation, left alone
    assert (await run(cfg)).plan.changes == 0


async def test_cancellation_detaches_the_client_and_keeps_the_property(sandboxes: Sandboxes) -> None:
    cancellation_world().load(sandboxes)
    cfg = sandboxes.config(entities=("cancellation",))
    result = await run(cfg, apply=True)
    assert result.failures == 0
    actions = by_label(entity(result, "cancellation"))
    assert set(actions) == {"cx.nocontract", "cx.cancelled"}  # no contract, or a cancelled one (status I)
    operate = actions["cx.nocontract"]
    assert isinstance(operate, Operate) and operate.operation == "cancel"
    assert operate.args["disconnect_drop"] is True
    prop = sandboxes.ozmap.get("properties", oid(5003))
    assert prop is not None and prop.get("client") is None and not prop.get("deletedAt")
    assert (
        "client cx.nocontract cancelled; last connection: splitter Splitter 1 port 3" in prop["observation"]
    )
    assert outputs(sandboxes, S1)[2] is None  # drop unplugged from the port
    assert prop["drop"] and not sandboxes.ozmap.get("cables", prop["drop"]).get("deletedAt")  # the drop stays
    assert outputs(sandboxes, S2A)[0] is None
    clients = clients_by_code(sandboxes)
    assert (
        "cx.nocontract" not in clients and "cx.cancelled" not in clients
    )  # removed; the code is in the note
    assert outputs(sandboxes, S1)[4] is not None and outputs(sandboxes, S1)[5] is not None  # not cancelled
    assert clients["cx.activecontract"]["id"] == sandboxes.ozmap.get("properties", oid(5005))["client"]
    assert (await run(cfg)).plan.changes == 0


async def test_cancellation_can_keep_the_drop_connected(sandboxes: Sandboxes) -> None:
    cancellation_world().load(sandboxes)
    cfg = sandboxes.config(entities=("cancellation",), disconnect_drop_on_cancellation=False)
    assert (await run(cfg, apply=True)).failures == 0
    prop = sandboxes.ozmap.get("properties", oid(5003))
    assert prop is not None and prop.get("client") is None
    assert outputs(sandboxes, S1)[2] == "f-drop-3"  # still plugged in
    assert prop["connections"][0]["port"] == 3


# ------------------------------------------------------------------------------------------------ status, power


async def test_status_and_power_follow_active_fiber_logins(sandboxes: Sandboxes) -> None:
    world = World()
    world.client(1, "ana.on", port=1, status=1, potency=-30.0)
    world.login(1, "ana.on", online="S", signal="-21.35")
    world.client(2, "bia.down", port=2, status=0, potency=-19.0)
    world.login(2, "bia.down", online="N", signal="0.00")  # no reading: power kept
    world.client(3, "caio.unknown", port=3, status=1)
    world.login(3, "caio.unknown", online="SS")  # unknown: status kept
    world.client(4, "duda.pending", port=4, status=0, potency=-18.0)
    world.login(4, "duda.pending", online="N", contract="P", signal="-25.00")
    world.client(5, "edu.off", port=5, status=0, potency=-18.0)
    world.login(5, "edu.off", online="N", ativo="N", signal="-25.00")
    world.client(6, "fabi.radio", port=6, status=0, potency=-18.0)
    world.login(6, "fabi.radio", online="N", tipo="58", signal="-25.00")
    world.load(sandboxes)
    cfg = sandboxes.config(entities=("client-status", "client-power"))
    result = await run(cfg, apply=True)
    assert result.failures == 0
    status = by_label(entity(result, "client-status"))
    assert {k: [(c.before, c.after) for c in a.changes] for k, a in status.items() if a.changes} == {
        "ana.on": [(1, 0)],
        "bia.down": [(0, 1)],
    }
    power = by_label(entity(result, "client-power"))
    assert {k: [(c.before, c.after) for c in a.changes] for k, a in power.items() if a.changes} == {
        "ana.on": [(-30.0, -21.35)]
    }
    clients = clients_by_code(sandboxes)
    assert [clients[c]["status"] for c in ("ana.on", "bia.down", "caio.unknown")] == [0, 1, 1]
    assert [clients[c]["status"] for c in ("duda.pending", "edu.off", "fabi.radio")] == [0, 0, 0]
    powers = {p["id"]: p["potencyRead"] for p in sandboxes.ozmap.all("properties")}
    assert [powers[oid(5000 + n)] for n in range(1, 7)] == [-21.35, -19.0, None, -18.0, -18.0, -18.0]
    assert (await run(cfg)).plan.changes == 0


# ------------------------------------------------------------------------------------------------ client name


async def test_the_erp_name_wins_over_edits_made_in_ozmap(sandboxes: Sandboxes) -> None:
    world = World()
    world.client(1, "ana.f", port=1, name="Ana F.")
    world.login(1, "ana.f", name="Ana Ferreira")
    world.client(2, "bia.same", port=2, name="Bia Souza")
    world.login(2, "bia.same", name="Bia Souza")
    world.load(sandboxes)
    cfg = sandboxes.config(entities=("client-names",))
    result = await run(cfg, apply=True)
    actions = by_label(entity(result, "client-names"))
    assert [(c.before, c.after) for c in actions["ana.f"].changes] == [("Ana F.", "Ana Ferreira")]
    assert not actions["bia.same"].changes
    clients = clients_by_code(sandboxes)
    assert clients["ana.f"]["name"] == "Ana Ferreira"

    # someone renames the client in OZmap: the next cycle puts the ERP's name back
    await sandboxes.control(
        "ozmap", "PATCH", f"store/ftth-clients/{clients['bia.same']['id']}", {"name": "B."}
    )
    (update,) = entity(await run(cfg, apply=True), "client-names").actions
    assert isinstance(update, Update) and [(c.before, c.after) for c in update.changes] == [
        ("B.", "Bia Souza")
    ]
    assert clients_by_code(sandboxes)["bia.same"]["name"] == "Bia Souza"
    assert (await run(cfg)).plan.changes == 0


async def test_a_cancelled_login_reactivated_later_gets_a_new_reservation(sandboxes: Sandboxes) -> None:
    world = World()
    world.client(3, "cx.back", splitter=S1, port=3)
    world.login(3, "cx.back", box=IXC_B1, port="3", ativo="N", contract=None)
    world.load(sandboxes)
    cfg = sandboxes.config(entities=None)
    assert (await run(cfg, apply=True)).failures == 0
    assert "cx.back" not in clients_by_code(sandboxes)
    sandboxes.ixc.load("cliente_contrato", [{"id": "3", "id_cliente": "3", "status": "A", "tipo": "I"}])
    await sandboxes.control("ixc", "PATCH", "store/radusuarios/3", {"ativo": "S", "id_contrato": "3"})
    result = await run(cfg, apply=True)
    assert result.failures == 0
    assert isinstance(by_label(entity(result, "client-creation"))["cx.back"], Create)
    client = clients_by_code(sandboxes)["cx.back"]
    assert client["implanted"] is True  # created as a reservation, implanted by its active contract
    (prop,) = [p for p in sandboxes.ozmap.all("properties") if p.get("client") == client["id"]]
    assert (prop["connections"][0]["id"], prop["connections"][0]["port"]) == (
        S1,
        3,
    )  # the port freed on cancel
    assert (await run(cfg)).plan.changes == 0
