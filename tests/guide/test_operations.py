"""Every network operation of the Integrator's Guide end to end against the OZmap sandbox (seed 001, F1–F7).

Each test calls the operation, then checks what OZmap holds afterwards (ports occupied or freed, clients and
properties created, moved or removed), the way the OZmap UI would show it.
"""

from __future__ import annotations

import pytest

from reconciler import errors
from reconciler.guide import models
from reconciler.guide.validation import Conflict, Missing

from .conftest import Env
from .world import BUILDING, BUILDING2, CTO1, CTO2, CTO3, FAR, LAT, LNG, S1, SB1

pytestmark = pytest.mark.anyio


def query(radius: float | None = 200.0) -> models.FeasibilityQuery:
    return models.FeasibilityQuery(lat=LAT, lng=LNG, radius=radius)


async def test_feasibility_by_radius_and_condominium(env: Env) -> None:
    found = await env.services.guide.feasibility(query())
    assert found.viable
    assert [b.id for b in found.boxes] == [CTO1]
    cto1 = found.boxes[0]
    assert (cto1.kind, cto1.distance_m, cto1.free_ports) == ("box", 0.0, 4)  # ports 4-7 (8 is blocked)
    assert cto1.splitters[0].free_ports == [4, 5, 6, 7]
    assert [b.id for b in found.buildings] == [BUILDING]
    assert found.buildings[0].splitters[0].free_ports == [2, 3, 4]
    assert 70 < (found.buildings[0].distance_m or 0) < 90
    reasons = {u.id: u.reason for u in found.unviable}
    assert reasons == {CTO2: "no free ports", CTO3: "in project", BUILDING2: "no service splitter"}
    assert FAR not in reasons  # 2 km away: outside the radius


async def test_feasibility_far_away_is_not_viable(env: Env) -> None:
    found = await env.services.guide.feasibility(models.FeasibilityQuery(lat=-23.0, lng=-46.0, radius=500))
    assert (found.viable, found.boxes, found.buildings, found.unviable) == (False, [], [], [])


async def test_box_splitters_with_free_ports(env: Env) -> None:
    free = await env.services.guide.box_splitters(CTO1)
    assert [(s.id, s.free_ports, s.blocked_ports) for s in free] == [(S1, [4, 5, 6, 7], [8])]
    assert await env.services.guide.box_splitters(CTO2) == []
    every = await env.services.guide.box_splitters(CTO2, free_only=False)
    assert len(every) == 1 and every[0].free_ports == []
    with pytest.raises(Missing, match="no box or building"):
        await env.services.guide.box_splitters("0" * 24)


async def test_reservation_on_the_nearest_feasible_box(env: Env) -> None:
    request = models.ReservationRequest(code="novo1", name="Nina", lat=LAT, lng=LNG, address="Rua Nova, 1")
    reserved = await env.services.guide.reserve(request)
    assert (reserved.box_id, reserved.splitter_id, reserved.port, reserved.implanted) == (CTO1, S1, 4, False)
    client = env.client("novo1")
    assert (client["name"], client["implanted"]) == ("Nina", False)
    (prop,) = env.properties_of("novo1")
    assert prop["id"] == reserved.property_id and prop["address"] == "Rua Nova, 1"
    assert env.outputs(S1)[3] is not None  # the port is taken by the new drop


async def test_reservation_on_a_chosen_building_port_and_refusals(env: Env) -> None:
    guide = env.services.guide
    request = models.ReservationRequest(
        code="condo", lat=LAT, lng=LNG, box_id=BUILDING, splitter_id=SB1, port=3
    )
    reserved = await guide.reserve(request)
    assert (reserved.box_id, reserved.splitter_id, reserved.port) == (BUILDING, SB1, 3)
    assert env.properties_of("condo")[0]["parent"] == BUILDING
    with pytest.raises(Conflict, match="already exists"):
        await guide.reserve(models.ReservationRequest(code="ana", lat=LAT, lng=LNG))
    taken = models.ReservationRequest(code="other", lat=LAT, lng=LNG, splitter_id=SB1, port=3)
    with pytest.raises(errors.TerminalRemoteError, match="occupied"):
        await guide.reserve(taken)
    with pytest.raises(Conflict, match="no box or building with a free port within 300 m"):
        await guide.reserve(models.ReservationRequest(code="far", lat=-23.0, lng=-46.0, radius=300))


async def test_reservation_by_box_port_counts_across_service_splitters(env: Env) -> None:
    reserved = await env.services.guide.reserve(
        models.ReservationRequest(code="porta5", lat=LAT, lng=LNG, box_id=CTO1, port=5)
    )
    assert (reserved.splitter_id, reserved.port) == (S1, 5)


async def test_implantation(env: Env) -> None:
    state = await env.services.guide.implant("caio")
    assert state.implanted and env.client("caio")["implanted"] is True
    with pytest.raises(Missing, match="no client with code 'nobody'"):
        await env.services.guide.implant("nobody")


async def test_removal_of_a_reservation_frees_the_port(env: Env) -> None:
    removed = await env.services.guide.remove("caio")
    assert removed.mode == "property" and len(removed.properties_deleted) == 1
    assert env.outputs(S1)[2] is None  # port 3 free again
    assert all(c["code"] != "caio" for c in env.store.all("ftth-clients"))
    assert all(p["id"] != removed.properties_deleted[0] for p in env.store.all("properties"))


async def test_removal_of_a_client_keeps_the_premises(env: Env) -> None:
    prop_id = env.properties_of("ana")[0]["id"]
    removed = await env.services.guide.remove("ana", mode="client")
    assert (removed.mode, removed.properties_deleted, removed.client_deleted) == ("client", [], True)
    prop = env.store.get("properties", prop_id)
    assert prop is not None and prop["client"] is None and not prop.get("deletedAt")
    assert env.outputs(S1)[0] is None  # the drop was unplugged


async def test_address_change_reserves_then_moves(env: Env) -> None:
    guide = env.services.guide
    old_id = env.properties_of("ana")[0]["id"]
    step1 = await guide.change_address(
        "ana", models.AddressChangeRequest(lat=-27.5907, lng=LNG, address="Av. Nova, 9", box_id=BUILDING)
    )
    assert (step1.stage, step1.old_property_id, step1.box_id, step1.splitter_id) == (
        "reserved",
        old_id,
        BUILDING,
        SB1,
    )
    assert env.outputs(SB1)[1] is not None  # reserved at the new address
    assert env.properties_of("ana")[0]["id"] == old_id  # still served at the old one

    done = await guide.complete_address_change(
        "ana", models.AddressChangeCompletion(new_property_id=step1.new_property_id)
    )
    assert (done.stage, done.old_property_id, done.new_property_id) == (
        "completed",
        old_id,
        step1.new_property_id,
    )
    (prop,) = env.properties_of("ana")
    assert prop["id"] == step1.new_property_id and prop["address"] == "Av. Nova, 9"
    assert env.client("ana")["implanted"] is True
    assert env.outputs(S1)[0] is None  # the old port is free
    old = env.store.get("properties", old_id)
    assert old is not None and old.get("deletedAt")
    again = await guide.complete_address_change(
        "ana", models.AddressChangeCompletion(new_property_id=prop["id"])
    )
    assert again.old_property_id is None  # repeating step 2 is harmless


async def test_update_box_moves_the_client_port(env: Env) -> None:
    moved = await env.services.guide.update_box("bia", models.BoxUpdateRequest(box_id=BUILDING))
    assert (moved.box and moved.box.id, moved.splitter_id, moved.port) == (BUILDING, SB1, 2)
    assert env.outputs(S1)[1] is None and env.outputs(SB1)[1] is not None
    exact = await env.services.guide.update_box(
        "bia", models.BoxUpdateRequest(box_id=CTO1, splitter_id=S1, port=6)
    )
    assert (exact.splitter_id, exact.port) == (S1, 6)


async def test_lookup_of_box_splitter_and_port(env: Env) -> None:
    found = await env.services.guide.connection("bia")
    assert (found.client_name, found.implanted, found.status) == ("Bia", True, "OK")
    assert found.box is not None and (found.box.id, found.box.name, found.box.kind) == (CTO1, "CTO-1", "Box")
    assert (found.splitter_id, found.splitter_name, found.port, found.potency_read) == (
        S1,
        "Splitter 1",
        2,
        -30.0,
    )


async def test_update_of_client_and_premises_data(env: Env) -> None:
    request = models.ClientUpdateRequest(
        name="Ana Souza",
        observation="VIP",
        address="Rua Um, 10",
        lat=-27.591,
        lng=-48.551,
        property_observation="x",
    )
    updated = await env.services.guide.update_client("ana", request)
    assert (updated.client_name, updated.address, updated.lat, updated.lng) == (
        "Ana Souza",
        "Rua Um, 10",
        -27.591,
        -48.551,
    )
    assert env.client("ana")["observation"] == "VIP"
    assert env.properties_of("ana")[0]["observation"] == "x"
    with pytest.raises(Conflict, match="nothing to update"):
        await env.services.guide.update_client("ana", models.ClientUpdateRequest())
