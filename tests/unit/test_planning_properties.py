"""Hypothesis properties of diff/plan beyond ``test_planning.py``: every rule shape (removal inactivate/delete/
ignore; on-unmatched create/skip/ignore; apply update/delete/operation), incremental as well as full reads, gone
sets that overlap what was read, targets claimed by other links, skipped/quarantined/filtered/blocked records and
held records.

For random (rule, source, target, state) quadruples:

* applying the plan (simulated on in-memory copies of the target system and the links, the way ``applying``
  writes them) and planning again from the same read gives no changing action (rules that delete or operate on
  what they match: once no target matches any more);
* no record present in the read is ever removed (inactivated, or deleted as a removal);
* no target claimed by another link, and no target twice, is adopted; at most one action per source record;
* skipped, quarantined, filtered and held records get no changing action;
* the guard trips exactly when the removals exceed the share (or a full read is empty while links exist);
* the plan does not depend on the order records were read in.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import planning
from reconciler.model import (
    CHANGING_KINDS,
    Create,
    Delete,
    Desired,
    EntityPlan,
    Filtered,
    Inactivate,
    Link,
    Normalized,
    Operate,
    Quarantined,
    Record,
    Skipped,
    Update,
    action_kind,
    content_hash,
)

SOURCE_IDS = [f"s{i}" for i in range(10)]
TARGET_IDS = [f"t{i}" for i in range(8)]
NAMES = st.sampled_from(["CTO-1", "CTO-2", "CTO-3", ""])
PROJECTS = st.sampled_from(["3", "4"])
CAPACITIES = st.sampled_from(["8", "16"])


@dataclass
class World:
    """One random planning situation."""

    spec: planning.PlanSpec
    mode: Literal["full", "incremental"]
    sources: dict[str, Normalized]
    read: list[str]
    """Source ids in the read, in read order (full: every source)."""
    targets: dict[str, Record]
    links: dict[str, planning.LinkState]
    extra_claimed: frozenset[str]
    """Targets linked by sources outside this read (incremental)."""
    gone: list[str]
    hold: dict[str, str] = field(default_factory=dict)

    def data(
        self,
        *,
        targets: Mapping[str, Record] | None = None,
        links: Mapping[str, planning.LinkState] | None = None,
        read: list[str] | None = None,
    ) -> planning.PlanInput:
        targets = self.targets if targets is None else targets
        links = self.links if links is None else links
        order = self.read if read is None else read
        return planning.PlanInput(
            mode=self.mode,
            normalized=[self.sources[sid] for sid in order],
            links=dict(links),
            targets=dict(targets),
            claimed_targets=frozenset(link.target_id for link in links.values()) | self.extra_claimed,
            gone=list(self.gone),
            linked_total=sum(1 for link in links.values() if link.active),
            force_compare=self.mode == "full",
            hold=dict(self.hold),
        )


def _desired(sid: str, name: str, project: str, capacity: str, blocked: bool) -> Desired:
    fields = {"descricao": name, "id_projeto": project, "capacidade": capacity, "status": "A"}
    return Desired(
        source_id=sid,
        fields=fields,
        natural_key={"descricao": name, "id_projeto": project},
        content_hash=content_hash(fields),
        label=name,
        blocked="the OLT is not in IXC" if blocked else "",
    )


@st.composite
def specs(draw: st.DrawFn) -> planning.PlanSpec:
    apply = draw(st.sampled_from(["update", "update", "delete", "operation"]))
    # A rule that deletes or operates on what it matches never creates (it would recreate what it removed).
    on_unmatched = (
        "ignore" if apply != "update" else draw(st.sampled_from(["create", "create", "skip", "ignore"]))
    )
    removal = draw(
        st.sampled_from(
            [
                planning.Removal(action="inactivate", field="status", value="I"),
                planning.Removal(action="delete"),
                planning.Removal(action="ignore"),
            ]
        )
    )
    return planning.PlanSpec(
        integration="ozmap-ixc",
        entity="boxes",
        source="ozmap.boxes",
        target="ixc.rad_caixa_ftth",
        first_sight=("descricao", "id_projeto"),
        updatable=frozenset({"descricao", "id_projeto", "capacidade", "status"}),
        removal=removal,
        max_inactivate_share=draw(st.sampled_from([0.1, 0.5, 1.0])),
        on_unmatched=on_unmatched,  # type: ignore[arg-type]
        apply=apply,  # type: ignore[arg-type]
        operation="cancel" if apply == "operation" else "",
    )


@st.composite
def worlds(draw: st.DrawFn) -> World:
    spec = draw(specs())
    mode = draw(st.sampled_from(["full", "incremental"]))
    sources: dict[str, Normalized] = {}
    for sid in draw(st.lists(st.sampled_from(SOURCE_IDS), unique=True, max_size=8)):
        kind = draw(st.sampled_from(["desired"] * 6 + ["skipped", "quarantined", "filtered"]))
        if kind == "skipped":
            sources[sid] = Skipped(sid, "OLT 10.0.0.7 not found in IXC", sid)
        elif kind == "quarantined":
            sources[sid] = Quarantined(sid, "latitude None is missing or out of range", sid)
        elif kind == "filtered":
            sources[sid] = Filtered(sid)
        else:
            blocked = draw(st.sampled_from([False, False, False, True]))
            sources[sid] = _desired(sid, draw(NAMES), draw(PROJECTS), draw(CAPACITIES), blocked)
    target_ids = draw(st.lists(st.sampled_from(TARGET_IDS), unique=True, max_size=7))
    targets = {
        tid: Record(
            tid,
            {
                "descricao": draw(NAMES),
                "id_projeto": draw(PROJECTS),
                "capacidade": draw(CAPACITIES),
                "status": draw(st.sampled_from(["A", "A", "I"])),
            },
        )
        for tid in target_ids
    }
    links: dict[str, planning.LinkState] = {}
    used: set[str] = set()
    for sid in draw(st.lists(st.sampled_from(SOURCE_IDS), unique=True, max_size=7)):
        tid = draw(st.sampled_from([*TARGET_IDS, "gone-target"]))  # a linked target may have vanished
        if tid in used:
            continue
        used.add(tid)
        current = sources.get(sid)
        fresh = isinstance(current, Desired) and draw(st.booleans())
        links[sid] = planning.LinkState(
            tid, current.content_hash if fresh else "stale", active=draw(st.sampled_from([True, True, False]))
        )
    ids = sorted(sources)
    read = ids if mode == "full" else sorted(draw(st.sets(st.sampled_from(ids))) if ids else [])
    read = list(draw(st.permutations(read)))
    gone = (
        sorted(draw(st.sets(st.sampled_from(SOURCE_IDS), max_size=4)))
        if mode == "incremental"
        else sorted(draw(st.sets(st.sampled_from(SOURCE_IDS), max_size=2)))
    )
    extra = (
        frozenset(draw(st.sets(st.sampled_from(TARGET_IDS), max_size=2)))
        if mode == "incremental"
        else frozenset()
    )
    hold = {
        sid: "backing off after 3 failures" for sid in draw(st.sets(st.sampled_from(SOURCE_IDS), max_size=2))
    }
    return World(spec, mode, sources, read, targets, links, extra - used, gone, hold)


def simulate(
    plan: EntityPlan, targets: Mapping[str, Record], links: Mapping[str, planning.LinkState]
) -> tuple[dict[str, Record], dict[str, planning.LinkState]]:
    """What applying writes: the target system and the links after the plan's actions succeeded."""
    after_targets, after_links = dict(targets), dict(links)
    for n, action in enumerate(plan.actions):
        match action:
            case Create():
                new = f"new{n}"
                after_targets[new] = Record(new, dict(action.fields))
                after_links[action.source_id] = planning.LinkState(new, action.content_hash)
            case Update() | Link():
                fields = dict(after_targets[action.target_id].fields)
                fields.update({c.field: c.after for c in action.changes})
                after_targets[action.target_id] = Record(action.target_id, fields)
                after_links[action.source_id] = planning.LinkState(action.target_id, action.content_hash)
            case Inactivate():
                if action.target_id in after_targets:
                    fields = dict(after_targets[action.target_id].fields)
                    fields[action.field] = action.value
                    after_targets[action.target_id] = Record(action.target_id, fields)
                old = after_links[action.source_id]
                after_links[action.source_id] = planning.LinkState(
                    action.target_id, old.content_hash, active=False
                )
            case (
                Delete() | Operate()
            ):  # the target is gone, or no longer matches the rule: nothing stays linked
                after_targets.pop(action.target_id, None)
                after_links.pop(action.source_id, None)
            case _:
                pass
    return after_targets, after_links


def changing(plan: EntityPlan) -> list[str]:
    return [f"{action_kind(a)} {a.source_id}" for a in plan.actions if action_kind(a) in CHANGING_KINDS]


@settings(max_examples=250, deadline=None)
@given(worlds())
def test_applying_the_plan_then_planning_the_same_read_again_changes_nothing(world: World) -> None:
    """Update rules settle in one apply. Rules that delete or operate on what they match remove one matching
    target per source and cycle (the linked one first, then one found by natural key), so they settle within
    as many cycles as there are targets."""
    world.hold = {}
    targets, links = world.targets, world.links
    rounds = 1 if world.spec.apply == "update" else len(world.targets) + 1
    history = []
    for _ in range(rounds):
        plan = planning.plan(world.spec, world.data(targets=targets, links=links))
        history.append(plan.actions)
        targets, links = simulate(plan, targets, links)
    final = planning.plan(world.spec, world.data(targets=targets, links=links))
    assert changing(final) == [], (history, final.actions)


@settings(max_examples=250, deadline=None)
@given(worlds())
def test_a_record_present_in_the_read_is_never_removed(world: World) -> None:
    plan = planning.plan(world.spec, world.data())
    present = set(world.read)
    for action in plan.actions:
        if isinstance(action, Inactivate) or (isinstance(action, Delete) and world.spec.apply != "delete"):
            assert action.source_id not in present, action
            link = world.links.get(action.source_id)
            assert link is not None and link.active, action  # only an active link is ever removed


@settings(max_examples=250, deadline=None)
@given(worlds())
def test_claimed_targets_are_never_adopted_and_nothing_is_acted_on_twice(world: World) -> None:
    data = world.data()
    plan = planning.plan(world.spec, data)
    sources = [a.source_id for a in plan.actions]
    assert len(sources) == len(set(sources)), plan.actions
    adopted = [a.target_id for a in plan.actions if isinstance(a, Link)]
    assert len(adopted) == len(set(adopted)), plan.actions
    assert not set(adopted) & data.claimed_targets, plan.actions
    for action in plan.actions:
        if isinstance(action, Link):
            key = planning.natural_key(world.targets[action.target_id].fields, world.spec.first_sight)
            desired = world.sources[action.source_id]
            assert isinstance(desired, Desired)
            assert key == planning.natural_key(desired.fields, world.spec.first_sight)
            assert "" not in key  # an empty natural key matches nothing


@settings(max_examples=250, deadline=None)
@given(worlds())
def test_skipped_quarantined_filtered_and_held_records_are_not_acted_on(world: World) -> None:
    plan = planning.plan(world.spec, world.data())
    untouchable = set(world.hold) | {
        sid for sid in world.read if isinstance(world.sources[sid], Skipped | Quarantined | Filtered)
    }
    for action in plan.actions:
        if action.source_id in untouchable:
            assert action_kind(action) not in CHANGING_KINDS, action
        if isinstance(action, Create):
            desired = world.sources[action.source_id]
            assert isinstance(desired, Desired) and not desired.blocked  # a blocked create is a skip
    kinds = {a.source_id: action_kind(a) for a in plan.actions}
    for sid in world.read:
        if isinstance(world.sources[sid], Skipped):
            assert kinds[sid] == "skip"
        elif isinstance(world.sources[sid], Quarantined):
            assert kinds[sid] in ("quarantine", "skip")
        elif isinstance(world.sources[sid], Filtered):
            assert sid not in kinds


@settings(max_examples=250, deadline=None)
@given(worlds())
def test_the_guard_trips_exactly_when_removals_exceed_the_share(world: World) -> None:
    data = world.data()
    plan = planning.plan(world.spec, data)
    present = set(world.read)
    removals = sum(
        1
        for a in plan.actions
        if isinstance(a, Inactivate) or (isinstance(a, Delete) and a.source_id not in present)
    )
    empty = data.mode == "full" and data.linked_total > 0 and not data.normalized
    expected = (empty and world.spec.removal.action != "ignore") or (
        removals > 0
        and data.linked_total > 0
        and removals > world.spec.max_inactivate_share * data.linked_total
    )
    assert bool(plan.guard) == expected, (plan.guard, removals, data.linked_total)


@settings(max_examples=200, deadline=None)
@given(worlds(), st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_the_read_order(world: World, rnd: random.Random) -> None:
    a = planning.plan(world.spec, world.data())
    shuffled = list(world.read)
    rnd.shuffle(shuffled)
    targets = dict(rnd.sample(list(world.targets.items()), len(world.targets)))
    b = planning.plan(world.spec, world.data(targets=targets, read=shuffled))
    assert msgspec.json.encode(a) == msgspec.json.encode(b)


def test_which_source_adopts_a_target_again_does_not_depend_on_the_read_order() -> None:
    spec = planning.PlanSpec(
        integration="ozmap-ixc",
        entity="client-ports",
        source="ozmap.connections",
        target="ixc.radusuarios",
        first_sight=("descricao", "id_projeto"),
        updatable=frozenset({"capacidade"}),
        removal=planning.Removal(),
        max_inactivate_share=0.1,
        on_unmatched="ignore",
    )
    a, b = _desired("a", "CTO-1", "3", "8", False), _desired("b", "CTO-1", "3", "8", False)
    links = {"a": planning.LinkState("vanished-1", "h"), "b": planning.LinkState("vanished-2", "h")}
    target = Record("t1", {"descricao": "CTO-1", "id_projeto": "3", "capacidade": "16", "status": "A"})

    def plan(order: list[Desired]) -> EntityPlan:
        data = planning.PlanInput(
            mode="full",
            normalized=order,
            links=links,
            targets={"t1": target},
            claimed_targets=frozenset({"vanished-1", "vanished-2"}),
            linked_total=2,
            force_compare=True,
        )
        return planning.plan(spec, data)

    assert plan([a, b]).actions == plan([b, a]).actions
