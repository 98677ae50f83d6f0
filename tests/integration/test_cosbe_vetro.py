"""``cosbe-vetro`` end to end (seed 000, issue 7): auto-import, the COS → Vetro push, the link rule, deep links.

The Vetro FiberMap and COS BE sandboxes run on loopback; the engine syncs them through ``rules/cosbe-vetro``.
Everything is observed in the sandboxes' stores and request logs and in the plans the engine returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler import config as config_mod
from reconciler import errors
from reconciler.engine import Engine, IntegrationRun
from reconciler.model import Create, EntityPlan, Link, Skip, Update
from reconciler.sandbox import runner

from .cosbe_vetro_world import (
    GROUP_P2,
    IMPORT,
    INTEGRATION,
    PUSH,
    CosVetro,
    cos_object,
    cv,
    oid,
    sl,
    slid,
    vid,
)

__all__ = ["cv"]

pytestmark = pytest.mark.anyio

#: Service location n → (how it breaks the auto-import conditions, what the skip reason says).
FAILING: dict[int, tuple[dict[str, Any], list[str]]] = {
    2: ({"Address Import": "No"}, ["Address Import is No, not Yes"]),
    3: ({"Status": ...}, ["Status is null, not one of the five COS object statuses"]),
    4: ({"Status": "Surveyed"}, ["Status is Surveyed, not one of the five COS object statuses"]),
    5: ({"Group Name": ...}, ["Group Name is null, not a COS BE object group"]),
    6: (
        {"Group Name": "Montpelier Phase 9"},
        ["Group Name is Montpelier Phase 9, not a COS BE object group"],
    ),
    7: ({"Street Address": ""}, ["the address is incomplete (no Street Address)"]),
    8: ({"City": ...}, ["the address is incomplete (no City)"]),
    9: ({"State": " "}, ["the address is incomplete (no State)"]),
    10: ({"Zip Code": ""}, ["the address is incomplete (no Zip Code)"]),
    11: ({"Building Type": ...}, ["Building Type is null, not Residential, MDU or Business"]),
    12: (
        {"Address Import": "No", "Zip Code": "", "Building Type": "Barn"},
        ["Address Import is No", "no Zip Code", "Building Type is Barn"],
    ),
}


def by_source(plan: EntityPlan) -> dict[str, Any]:
    return {a.source_id: a for a in plan.actions}


async def sync(cv: CosVetro, **kwargs: Any) -> IntegrationRun:
    async with Engine.open(cv.config()) as engine:
        run = await engine.run(INTEGRATION, apply=True, **kwargs)
    assert run.failures == 0, run.outcomes
    return run


async def plan(cv: CosVetro, **kwargs: Any) -> IntegrationRun:
    async with Engine.open(cv.config()) as engine:
        return await engine.run(INTEGRATION, **kwargs)


def plans(run: IntegrationRun) -> dict[str, EntityPlan]:
    return {p.entity: p for p in run.plan.entities}


# -- 2. auto-import --------------------------------------------------------------------------------------------


async def test_auto_import_creates_an_object_only_when_all_five_conditions_hold(cv: CosVetro) -> None:
    cv.load([sl(1), *(sl(n, **props) for n, (props, _) in FAILING.items())], [])
    run = await sync(cv)
    imported = by_source(plans(run)[IMPORT])

    assert isinstance(imported[vid(1)], Create)
    for n, (_, reasons) in FAILING.items():
        action = imported[vid(n)]
        assert isinstance(action, Skip), (n, action)
        assert action.reason.startswith("auto-import: ")
        for reason in reasons:
            assert reason in action.reason, (n, action.reason)
        assert cv.object_of(n) is None
    assert len(cv.cos.objects) == 1

    created = cv.object_of(1)
    assert created is not None
    assert created["address"] | {"latitude": None, "longitude": None} == {
        "street": "1 Maple St",
        "unit": None,
        "city": "Montpelier",
        "state": "VT",
        "postalCode": "05602",
        "country": "US",
        "latitude": None,
        "longitude": None,
    }
    assert (created["address"]["longitude"], created["address"]["latitude"]) == (-72.501, 44.26)
    assert (created["objectType"], created["status"], created["group"]["id"]) == (
        "SingleFamilyHome",
        "InDeployment",
        GROUP_P2,
    )
    assert (created["externalIdentification"], created["externalServiceLocationId"]) == (vid(1), slid(1))
    # ... and in the same run the push writes the object back onto its service location.
    props = cv.properties(1)
    assert props["COS Object ID"] == created["id"]
    assert props["COS Object Number"] == str(created["objectNumber"])
    assert props["COS Object Status"] == "In deployment"
    assert (await plan(cv, mode="full")).plan.changes == 0


async def test_a_refused_api_key_fails_the_cycle_and_imports_nothing(cv: CosVetro) -> None:
    """Condition 1: COS BE must hold a valid Vetro API key; without one nothing is read, nothing created."""
    cv.load([sl(1)], [])
    async with Engine.open(cv.config(vetro_token="revoked-token")) as engine:
        with pytest.raises(errors.AuthError, match="401"):
            await engine.run(INTEGRATION, apply=True, entities=[IMPORT])
    assert cv.cos.objects == {}


async def test_the_conditions_gate_creation_only_a_linked_object_still_follows_vetro(cv: CosVetro) -> None:
    cv.load(
        [
            sl(1, **{"Address Import": "No", "Street Address": "1 Elm St"}),
            sl(2, **{"Street Address": "2 Elm St"}),
        ],
        [cos_object(1), cos_object(2, link="eslid")],
    )
    run = await sync(cv, mode="full")
    imported = by_source(plans(run)[IMPORT])
    assert isinstance(imported[vid(1)], Link)  # matched by External Identification, Address Import or not
    assert {c.field: c.after for c in imported[vid(1)].changes}["address.street"] == "1 Elm St"
    second = imported[vid(2)]  # no External Identification: matched by External Service Location ID
    assert isinstance(second, Link) and second.target_id == oid(2)
    assert second.natural_key == {"externalServiceLocationId": slid(2)}
    obj = cv.cos.objects[oid(2)]
    assert (obj["externalIdentification"], obj["address"]["street"]) == (vid(2), "2 Elm St")
    assert len(cv.cos.objects) == 2


# -- 3. push COS BE → Vetro ------------------------------------------------------------------------------------


async def test_object_status_reachable_service_drop_and_mapped_metadata_reach_vetro(cv: CosVetro) -> None:
    cv.load([sl(1)], [cos_object(1, reachable=False)])
    await sync(cv)
    props = cv.properties(1)
    assert {k: props[k] for k in props if k.startswith("COS ") and k != "COS Link"} == {
        "COS Object ID": oid(1),
        "COS Object Number": "10001",
        "COS Object Status": "In deployment",
        "COS Reachable": "No",
        "COS Service Status": "Awaiting Activation",
        "COS Drop Installed": "No",
    }
    assert props["Survey Done"] == "No"  # the checkbox "false", through metadata_attributes

    statuses = {
        "NotDeliverable": "Not deliverable",
        "ApprovedSurvey": "Approved survey",
        "PendingSignup": "Pending signup",
        "Deliverable": "Deliverable",
    }
    for wire, shown in statuses.items():
        await cv.user("cosbe", "PATCH", f"store/objects/{oid(1)}", {"status": wire, "reachable": True})
        run = await sync(cv)
        assert [type(a) for a in plans(run)[PUSH].actions] == [Update]
        assert (cv.properties(1)["COS Object Status"], cv.properties(1)["COS Reachable"]) == (shown, "Yes")

    for operation, shown in (
        ("Activated", "Active"),
        ("Paused", "Paused"),
        ("Terminated", "Inactive"),
        ("Created", "Awaiting Activation"),
    ):
        await cv.user("cosbe", "POST", f"objects/{oid(1)}/order", {"operation": operation})
        await sync(cv)
        assert cv.properties(1)["COS Service Status"] == shown

    await cv.user("cosbe", "POST", f"objects/{oid(1)}/work-order-completed")
    metadata = [{"name": "Survey Done", "value": "true"}, {"name": "Install Notes", "value": "ONT in garage"}]
    await cv.user("cosbe", "PATCH", f"store/objects/{oid(1)}", {"metadata": metadata})
    await sync(cv)
    props = cv.properties(1)
    assert (props["COS Drop Installed"], props["COS Object Status"]) == ("Yes", "Deliverable")
    assert (props["Survey Done"], props["Install Notes"]) == ("Yes", "ONT in garage")
    assert "Drop Type" not in props  # not mapped: Vetro keeps its own attribute
    assert (await plan(cv, mode="full")).plan.changes == 0


async def test_a_partial_sync_reads_only_what_changed_and_pushes_only_the_changed_fields(
    cv: CosVetro,
) -> None:
    cv.load([sl(n) for n in range(1, 6)], [cos_object(n) for n in range(1, 6)])
    await sync(cv)
    cv.vetro_faults.log.clear()
    await cv.user("cosbe", "PATCH", f"store/objects/{oid(3)}", {"dropInstalled": True})
    run = await sync(cv)
    push = plans(run)[PUSH]
    assert push.mode == "incremental"
    [update] = push.actions
    assert isinstance(update, Update) and update.source_id == oid(3)
    assert [(c.field, c.after) for c in update.changes] == [("properties.COS Drop Installed", "Yes")]
    assert cv.vetro_patches() == [
        {"type": "Feature", "x-vetro": {"vetro_id": vid(3)}, "properties": {"COS Drop Installed": "Yes"}}
    ]


# -- 4. the link rule --------------------------------------------------------------------------------------------


async def test_only_objects_with_a_vetro_identity_sync(cv: CosVetro) -> None:
    cv.load(
        [sl(1), sl(2), sl(3), sl(4, **{"Address Import": "No"})],
        [
            cos_object(1, link="id"),
            cos_object(2, link="eslid"),
            cos_object(3, link="eslid", externalServiceLocationId="SL-9999"),
            cos_object(4, link="none"),
        ],
    )
    run = await sync(cv)
    push = plans(run)[PUSH]
    actions = by_source(push)
    assert isinstance(actions[oid(1)], Link) and actions[oid(1)].target_id == vid(1)  # by vetro_id
    assert isinstance(actions[oid(2)], Link) and actions[oid(2)].target_id == vid(2)  # by the ID attribute
    assert isinstance(actions[oid(3)], Skip)
    assert "no Vetro service location has vetro_id null or ID SL-9999" in actions[oid(3)].reason
    assert oid(4) not in actions and push.filtered == 1  # neither id: not part of the integration
    assert cv.properties(2)["COS Object ID"] == oid(2)
    assert "COS Object ID" not in cv.properties(4)

    await cv.user("cosbe", "PATCH", f"store/objects/{oid(4)}", {"externalServiceLocationId": slid(4)})
    run = await sync(cv)
    assert isinstance(by_source(plans(run)[PUSH])[oid(4)], Link)
    assert cv.properties(4)["COS Object ID"] == oid(4)


# -- 6. deep links -----------------------------------------------------------------------------------------------


async def test_each_linked_record_gets_a_clickable_link_to_the_other_side(cv: CosVetro) -> None:
    cv.load([sl(1), sl(2, plan=113)], [cos_object(2, link="eslid")])
    await sync(cv)
    async with aiohttp.ClientSession() as http:
        for n, plan_id in ((1, 112), (2, 113)):
            obj = cv.object_of(n)
            assert obj is not None
            link = obj["vetroLink"]  # COS BE → Vetro: the service location on the Vetro map
            assert link == f"{cv.vetro_url}/ui/feature/{vid(n)}?plan_id={plan_id}"
            async with http.get(link) as page:
                assert page.status == 200 and slid(n) in await page.text()
            # Vetro → COS BE: the object's admin page, on the service location
            assert (
                cv.properties(n)["COS Link"]
                == obj["adminUrl"]
                == f"https://acme.example-be.net/admin/objects/{obj['id']}"
            )


async def test_the_push_sends_ten_updates_per_request_and_a_refused_one_fails_alone(cv: CosVetro) -> None:
    cv.load(
        [sl(n) for n in range(1, 13)],
        [cos_object(n) for n in range(1, 12)]
        + [cos_object(12, metadata=[{"name": "Survey Done", "value": "maybe"}])],  # not a Vetro Yes/No
    )
    async with Engine.open(cv.config()) as engine:
        run = await engine.run(INTEGRATION, apply=True, entities=[PUSH])
    [failed] = [o for o in run.outcomes[f"{INTEGRATION}/{PUSH}"] if not o.ok]
    assert failed.source_id == oid(12) and "'Survey Done': 'maybe' is not a permitted value" in failed.error
    patches = [e for e in cv.vetro_faults.log if e.method == "PATCH"]
    sizes = sorted(len(e.body["features"]) for e in patches)
    # Two batches (10 + 2); the one Vetro refused is resent item by item, so only object 12 fails.
    assert sizes == [1, 1, 2, 10]
    assert all(cv.properties(n).get("COS Object ID") == oid(n) for n in range(1, 12))
    assert "COS Object ID" not in cv.properties(12)


async def test_the_sandbox_runner_serves_both_systems_with_a_config_that_converges(tmp_path: Path) -> None:
    async with runner.running(["vetro", "cosbe"], seed=3, scale=200) as sandboxes:
        cfg = config_mod.load(sandboxes.write_config(tmp_path / "sandbox.toml", state_path="state.db"))
        assert cfg.systems["cosbe"].webhook_secret is not None
        async with Engine.open(cfg) as engine:
            first = await engine.run(INTEGRATION, apply=True)
            assert first.failures == 0 and first.plan.changes > 0
            skips = [a for a in plans(first)[IMPORT].actions if isinstance(a, Skip)]
            assert skips and all(a.reason.startswith("auto-import: ") for a in skips)
            assert (await engine.run(INTEGRATION, mode="full")).plan.changes == 0
