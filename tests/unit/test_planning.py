"""Pure tests of diff + plan: tables of small cases, then hypothesis properties."""

from __future__ import annotations

import random

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import planning
from reconciler.model import (
    Create,
    Desired,
    Filtered,
    Inactivate,
    Link,
    Quarantine,
    Quarantined,
    Record,
    Skip,
    Skipped,
    Update,
    content_hash,
)

SPEC = planning.PlanSpec(
    integration="ozmap-ixc",
    entity="boxes",
    source="ozmap.boxes",
    target="ixc.rad_caixa_ftth",
    first_sight=("descricao", "id_projeto"),
    updatable=frozenset({"descricao", "id_projeto", "capacidade", "status", "latitude"}),
    removal=planning.Removal(action="inactivate", field="status", value="I"),
    max_inactivate_share=0.5,
)


def desired(sid: str, name: str, project: str = "3", capacity: str = "16", lat: str = "-27.5") -> Desired:
    fields = {
        "descricao": name,
        "id_projeto": project,
        "capacidade": capacity,
        "status": "A",
        "latitude": lat,
    }
    return Desired(
        source_id=sid,
        fields=fields,
        natural_key={"descricao": name, "id_projeto": project},
        content_hash=content_hash(fields),
        label=name,
    )


def target(tid: str, **fields: str) -> Record:
    base = {"descricao": "", "id_projeto": "0", "capacidade": "0", "status": "A", "latitude": ""}
    base.update(fields)
    return Record(id=tid, fields=base)


def run(normalized, *, links=None, targets=(), mode="full", gone=(), claimed=None):  # type: ignore[no-untyped-def]
    links = links or {}
    return planning.plan(
        SPEC,
        planning.PlanInput(
            mode=mode,
            normalized=normalized,
            links=links,
            targets={t.id: t for t in targets},
            claimed_targets=frozenset(
                claimed if claimed is not None else (link.target_id for link in links.values())
            ),
            gone=gone,
            linked_total=sum(1 for link in links.values() if link.active),
            force_compare=mode == "full",
        ),
    )


def test_new_record_is_created() -> None:
    plan = run([desired("b1", "CTO-1")])
    assert [type(a) for a in plan.actions] == [Create]
    assert plan.actions[0].fields["descricao"] == "CTO-1"


def test_first_sight_links_by_name_and_project_and_updates_only_differences() -> None:
    plan = run(
        [desired("b1", "CTO-1", capacity="16")],
        targets=[target("45", descricao="CTO-1", id_projeto="3", capacidade="8", latitude="-27.50000")],
    )
    (action,) = plan.actions
    assert isinstance(action, Link)
    assert action.target_id == "45"
    assert [(c.field, c.before, c.after) for c in action.changes] == [("capacidade", "8", "16")]


def test_name_match_is_case_sensitive_and_project_must_match() -> None:
    plan = run(
        [desired("b1", "CTO-1", project="3")],
        targets=[
            target("45", descricao="cto-1", id_projeto="3"),
            target("46", descricao="CTO-1", id_projeto="4"),
        ],
    )
    assert [type(a) for a in plan.actions] == [Create]


def test_ambiguous_first_sight_is_skipped_with_reason() -> None:
    plan = run(
        [desired("b1", "CTO-1")],
        targets=[
            target("45", descricao="CTO-1", id_projeto="3"),
            target("46", descricao="CTO-1", id_projeto="3"),
        ],
    )
    (action,) = plan.actions
    assert isinstance(action, Skip)
    assert "ambiguous: 2" in action.reason and "45, 46" in action.reason


def test_target_claimed_by_another_link_is_not_linked_twice() -> None:
    links = {"other": planning.LinkState("45", "h")}
    plan = run(
        [desired("b1", "CTO-1"), desired("other", "CTO-1")],
        links=links,
        targets=[target("45", descricao="CTO-1", id_projeto="3", capacidade="16", latitude="-27.5")],
    )
    kinds = {a.source_id: type(a) for a in plan.actions}
    assert kinds == {"b1": Create}


def test_linked_record_updates_only_changed_owned_fields() -> None:
    d = desired("b1", "CTO-1", capacity="16", lat="-27.6")
    links = {"b1": planning.LinkState("45", "old")}
    plan = run(
        [d],
        links=links,
        targets=[target("45", descricao="CTO-1", id_projeto="3", capacidade="16", latitude="-27.5")],
    )
    (action,) = plan.actions
    assert isinstance(action, Update)
    assert [(c.field, c.before, c.after) for c in action.changes] == [("latitude", "-27.5", "-27.6")]


def test_create_only_fields_are_never_updated() -> None:
    d = desired("b1", "CTO-1")
    d = msgspec.structs.replace(d, create_only=frozenset({"capacidade"}))
    links = {"b1": planning.LinkState("45", "old")}
    plan = run(
        [d],
        links=links,
        targets=[target("45", descricao="CTO-1", id_projeto="3", capacidade="99", latitude="-27.5")],
    )
    assert plan.actions == ()
    assert plan.unchanged == 1


def test_unchanged_hash_in_incremental_needs_no_target_read() -> None:
    d = desired("b1", "CTO-1")
    plan = run([d], links={"b1": planning.LinkState("45", d.content_hash)}, mode="incremental")
    assert plan.actions == () and plan.unchanged == 1


def test_linked_target_removed_behind_our_back_is_recreated_with_reason() -> None:
    d = desired("b1", "CTO-1")
    plan = run([d], links={"b1": planning.LinkState("45", "old")}, mode="full")
    (action,) = plan.actions
    assert isinstance(action, Create) and "no longer exists" in action.reason


def test_removed_source_inactivates_target_once() -> None:
    links = {
        "b1": planning.LinkState("45", "h"),
        "b2": planning.LinkState("46", "h"),
        "b3": planning.LinkState("47", "h"),
    }
    targets = [target("45", status="A"), target("46", status="A"), target("47", status="A")]
    plan = run([], links=links, targets=targets, mode="incremental", gone=["b1"])
    (action,) = plan.actions
    assert isinstance(action, Inactivate)
    assert (action.target_id, action.field, action.before, action.value) == ("45", "status", "A", "I")
    already = run([], links=links, targets=[target("45", status="I")], mode="incremental", gone=["b1"])
    assert already.actions == ()


def test_full_snapshot_absence_means_gone() -> None:
    links = {
        "b1": planning.LinkState("45", "h"),
        "b2": planning.LinkState("46", "h"),
        "b3": planning.LinkState("47", "h"),
    }
    d2, d3 = desired("b2", "CTO-2"), desired("b3", "CTO-3")
    targets = [
        target("45"),
        target("46", descricao="CTO-2", id_projeto="3", capacidade="16", latitude="-27.5"),
        target("47", descricao="CTO-3", id_projeto="3", capacidade="16", latitude="-27.5"),
    ]
    plan = run([d2, d3], links=links, targets=targets)
    assert [(type(a), a.source_id) for a in plan.actions] == [(Inactivate, "b1")]
    assert plan.guard == ""


def test_guard_trips_on_mass_inactivation() -> None:
    links = {f"b{i}": planning.LinkState(str(i), "h") for i in range(10)}
    targets = [target(str(i)) for i in range(10)]
    keep = [desired("b0", "CTO-0"), desired("b1", "CTO-1")]
    plan = run(keep, links=links, targets=targets)
    assert plan.count("inactivate") == 8
    assert "would remove 8 of 10" in plan.guard


def test_guard_trips_on_empty_full_snapshot() -> None:
    links = {"b1": planning.LinkState("45", "h")}
    plan = run([], links=links, targets=[target("45")])
    assert "snapshot of ozmap.boxes is empty" in plan.guard


def test_settled_records_count_unchanged_and_are_not_taken_for_gone() -> None:
    # 3 linked; b1 and b2 were settled by the cycle (their links left out), b3 is gone.
    data = planning.PlanInput(
        mode="full",
        normalized=[],
        links={"b3": planning.LinkState("47", "h")},
        targets={"47": target("47")},
        claimed_targets=frozenset({"45", "46", "47"}),
        linked_total=3,
        force_compare=True,
        settled=2,
    )
    plan = planning.plan(SPEC, data)
    assert [(type(a), a.source_id) for a in plan.actions] == [(Inactivate, "b3")]
    assert plan.unchanged == 2
    assert plan.guard == ""  # not an empty snapshot: two records were read, only not normalised


def test_filtered_records_counted_without_objects_join_the_count_and_are_not_an_empty_snapshot() -> None:
    # A full cycle counts unlinked, unheld filtered records instead of listing them; b3 (linked) is gone.
    data = planning.PlanInput(
        mode="full",
        normalized=[Filtered("b9")],
        links={"b3": planning.LinkState("47", "h")},
        targets={"47": target("47")},
        linked_total=1,
        force_compare=True,
        filtered=5,
    )
    plan = planning.plan(SPEC, data)
    assert plan.filtered == 6
    assert [(type(a), a.source_id) for a in plan.actions] == [(Inactivate, "b3")]
    assert "is empty" not in plan.guard  # records were read: this is a removal, judged by its share


def test_skips_quarantines_and_filtered_pass_through() -> None:
    plan = run(
        [
            Skipped("b1", "OLT 10.0.0.7 not found in IXC", "CTO-1"),
            Quarantined("b2", "latitude None is missing or out of range", "CTO-2"),
            Filtered("b3"),
        ]
    )
    assert [(type(a), a.reason) for a in plan.actions] == [
        (Skip, "OLT 10.0.0.7 not found in IXC"),
        (Quarantine, "latitude None is missing or out of range"),
    ]
    assert plan.filtered == 1 and plan.changes == 0


def test_filtered_linked_record_is_not_inactivated() -> None:
    links = {"b1": planning.LinkState("45", "h")}
    plan = run([Filtered("b1")], links=links, targets=[target("45")])
    assert plan.actions == ()


def test_same_value_rules() -> None:
    assert planning.same_value("-27.59690", "-27.5969")
    assert not planning.same_value("012", "12")
    assert planning.same_value(None, "")
    assert not planning.same_value("CTO-1", "cto-1")
    assert planning.same_value(3, 3.0)


# ---------------------------------------------------------------- properties

NAMES = st.sampled_from([f"CTO-{i}" for i in range(6)])
PROJECTS = st.sampled_from(["3", "4"])
CAPS = st.sampled_from(["8", "16"])


@st.composite
def worlds(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    sources = draw(
        st.dictionaries(st.sampled_from([f"s{i}" for i in range(8)]), st.tuples(NAMES, PROJECTS, CAPS))
    )
    targets = draw(
        st.dictionaries(st.sampled_from([str(i) for i in range(8)]), st.tuples(NAMES, PROJECTS, CAPS))
    )
    link_pairs = draw(
        st.lists(
            st.tuples(st.sampled_from([f"s{i}" for i in range(10)]), st.sampled_from(list(targets) or ["x"])),
            max_size=6,
        )
    )
    links: dict[str, planning.LinkState] = {}
    used: set[str] = set()
    for sid, tid in link_pairs:
        if sid not in links and tid not in used and tid in targets:
            links[sid] = planning.LinkState(tid, "h")
            used.add(tid)
    return sources, targets, links


def _simulate(plan, targets: dict[str, Record], links: dict[str, planning.LinkState]):  # type: ignore[no-untyped-def]
    """Apply a plan to an in-memory copy of the target system and the links (what applying would do)."""
    targets, links = dict(targets), dict(links)
    counter = 1000
    for a in plan.actions:
        if isinstance(a, Create):
            counter += 1
            targets[str(counter)] = Record(str(counter), dict(a.fields))
            links[a.source_id] = planning.LinkState(str(counter), a.content_hash)
        elif isinstance(a, Update | Link):
            fields = dict(targets[a.target_id].fields)
            fields.update({c.field: c.after for c in a.changes})
            targets[a.target_id] = Record(a.target_id, fields)
            links[a.source_id] = planning.LinkState(a.target_id, a.content_hash)
        elif isinstance(a, Inactivate):
            fields = dict(targets[a.target_id].fields)
            fields[a.field] = a.value
            targets[a.target_id] = Record(a.target_id, fields)
            links[a.source_id] = planning.LinkState(
                a.target_id, links[a.source_id].content_hash, active=False
            )
    return targets, links


def _normalized(sources):  # type: ignore[no-untyped-def]
    return [desired(sid, name, project, cap) for sid, (name, project, cap) in sorted(sources.items())]


def _plan(sources, targets, links):  # type: ignore[no-untyped-def]
    spec = msgspec.structs.replace(SPEC, max_inactivate_share=1.0)
    return planning.plan(
        spec,
        planning.PlanInput(
            mode="full",
            normalized=_normalized(sources),
            links=links,
            targets=targets,
            claimed_targets=frozenset(link.target_id for link in links.values()),
            linked_total=sum(1 for link in links.values() if link.active),
            force_compare=True,
        ),
    )


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_applying_a_plan_then_replanning_gives_no_changes(world) -> None:  # type: ignore[no-untyped-def]
    sources, target_specs, links = world
    targets = {
        tid: target(tid, descricao=n, id_projeto=p, capacidade=c, latitude="-27.5")
        for tid, (n, p, c) in target_specs.items()
    }
    first = _plan(sources, targets, links)
    after_targets, after_links = _simulate(first, targets, links)
    second = _plan(sources, after_targets, after_links)
    assert second.changes == 0, second.actions


@settings(max_examples=200, deadline=None)
@given(worlds(), st.randoms(use_true_random=False))
def test_plans_are_deterministic_and_never_remove_present_sources(world, rnd: random.Random) -> None:  # type: ignore[no-untyped-def]
    sources, target_specs, links = world
    targets = {
        tid: target(tid, descricao=n, id_projeto=p, capacidade=c) for tid, (n, p, c) in target_specs.items()
    }
    a = _plan(sources, targets, links)
    shuffled_targets = dict(rnd.sample(list(targets.items()), len(targets)))
    b = _plan(sources, shuffled_targets, links)
    assert msgspec.json.encode(a) == msgspec.json.encode(b)
    removed = {x.source_id for x in a.actions if isinstance(x, Inactivate)}
    assert not removed & set(sources)


def test_held_records_become_skips_and_held_removals_do_not_trip_the_guard() -> None:
    links = {f"b{i}": planning.LinkState(str(i), "h") for i in range(4)}
    targets = [target(str(i)) for i in range(4)]
    hold = {"b0": "backing off after 3 failures until 12:03:10 UTC", "new": "backing off after 1 failures"}
    data = planning.PlanInput(
        mode="incremental",
        normalized=[desired("new", "CTO-9")],
        links=links,
        targets={t.id: t for t in targets},
        claimed_targets=frozenset(link.target_id for link in links.values()),
        gone=["b0"],
        linked_total=4,
        hold=hold,
    )
    plan = planning.plan(msgspec.structs.replace(SPEC, max_inactivate_share=0.1), data)
    assert [(type(a), a.source_id, a.reason) for a in plan.actions] == [
        (Skip, "b0", hold["b0"]),
        (Skip, "new", hold["new"]),
    ]
    assert plan.guard == ""  # 1 of 4 would be 25% > 10%, but the held removal does not run
    unheld = planning.plan(
        msgspec.structs.replace(SPEC, max_inactivate_share=0.1), msgspec.structs.replace(data, hold={})
    )
    assert "would remove 1 of 4" in unheld.guard
