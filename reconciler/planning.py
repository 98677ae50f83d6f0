"""Pure diff and plan: desired records + links + target snapshot → minimal actions.

No I/O and no clock: the same inputs always give the same :class:`~reconciler.model.EntityPlan`. The cycle
module gathers the inputs (fetching, normalising, reading links) and hands them over in a :class:`PlanInput`.

Decisions, per source record:

* desired + link + linked target present → ``update`` of the owned fields that differ (none → unchanged);
* desired + link + linked target missing → ``create`` again (the target record was removed behind our back);
* desired, no link → natural-key candidates among unlinked targets (then, when none, the rule's fallback key's):
  one → ``link`` (plus its field changes), several → ``skip`` (ambiguous), none → what the rule's
  ``on_unmatched`` says: ``create`` (default), ``skip``
  (with the record's ``unmatched_reason``) or nothing (``ignore``, counted unchanged). Rules that never create
  also retry first sight when their linked target is gone (a login re-created under the same name);
* a matched record (linked or first sight) gets what the rule's ``apply`` says: field changes (``update``, the
  default), ``delete`` of the target, or ``operate`` (a named connector operation with the desired fields);
* source gone (deleted, or absent from a full snapshot) + active link → ``inactivate`` / ``delete`` /
  nothing, as the rule's removal says;
* ``Skipped`` / ``Quarantined`` normalisations → ``skip`` / ``quarantine`` actions with their reasons.

Then the guard: a plan that would inactivate more than ``max_inactivate_share`` of the active links, or a full
snapshot that is empty while links exist, is marked with a guard message; ``applying`` refuses such a plan
unless the operator overrides it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import msgspec

from reconciler.model import (
    Action,
    Create,
    Delete,
    Desired,
    EntityPlan,
    FieldChange,
    Filtered,
    Inactivate,
    Link,
    Normalized,
    Operate,
    Quarantine,
    Quarantined,
    Record,
    Skip,
    Skipped,
    Update,
    Value,
)


class Removal(msgspec.Struct, frozen=True):
    """What a vanished source record does to its target: ``inactivate`` (field := value), ``delete``, ``ignore``."""

    action: Literal["inactivate", "delete", "ignore"] = "ignore"
    field: str = ""
    value: Value = None


class PlanSpec(msgspec.Struct, frozen=True):
    """The parts of an entity's rule the planner needs."""

    integration: str
    entity: str
    source: str
    target: str
    first_sight: tuple[str, ...]
    updatable: frozenset[str]
    removal: Removal
    max_inactivate_share: float
    on_unmatched: Literal["create", "skip", "ignore"] = "create"
    apply: Literal["update", "delete", "operation"] = "update"
    operation: str = ""
    first_sight_fallback: tuple[str, ...] = ()


class LinkState(msgspec.Struct, frozen=True):
    """The planner's view of one stored link."""

    target_id: str
    content_hash: str
    active: bool = True


class PlanInput(msgspec.Struct, frozen=True):
    """Everything one entity's plan is computed from.

    ``normalized``: the fetched source records after the rule. ``links``: stored links of (at least) those source
    records and of ``gone``; in full mode, all links. ``targets``: target records by id — the linked ones and the
    natural-key candidates. ``claimed_targets``: target ids linked to *some* source (a candidate already claimed
    by another source must not be linked twice). ``gone``: source ids reported deleted. ``full``: the snapshot is
    complete, so an active link whose source is absent counts as gone. ``linked_total``: active links of the
    entity (the guard's denominator).
    """

    mode: Literal["full", "incremental"]
    normalized: Sequence[Normalized]
    links: Mapping[str, LinkState]
    targets: Mapping[str, Record]
    claimed_targets: frozenset[str] = frozenset()
    gone: Sequence[str] = ()
    linked_total: int = 0
    force_compare: bool = False
    hold: Mapping[str, str] = msgspec.field(default_factory=dict)
    """Source id → reason: these records' actions are deferred (per-record backoff) and planned as skips."""
    settled: int = 0
    """Source records of the snapshot known to be unchanged without being normalised (both records read the
    same as when last found in agreement; see ``reconciler.agreement``). They are counted unchanged; their
    links are left out of ``links``, so a full snapshot does not take them for gone."""
    filtered: int = 0
    """Source records outside the rule's filter, unlinked and not held, counted without being listed in
    ``normalized`` (a full cycle does not keep a quarter of a million objects that need no action)."""


def same_value(current: Value, desired: Value) -> bool:
    """Equality as a person reading both systems would see it.

    Strings holding decimals compare as numbers (``"-27.59690"`` equals ``"-27.5969"``) when at least one of
    them has a decimal point; everything else compares exactly (names are case-sensitive, ``"012"`` is not
    ``"12"``). ``None`` equals ``""`` (IXC has no nulls, it writes empty strings).
    """
    if current == desired:
        return True
    if current in (None, "") and desired in (None, ""):
        return True
    if isinstance(current, str) and isinstance(desired, str) and ("." in current or "." in desired):
        try:
            return float(current) == float(desired)
        except ValueError:
            return False
    if (
        isinstance(current, int | float)
        and isinstance(desired, int | float)
        and not isinstance(current, bool)
    ):
        return float(current) == float(desired)
    return False


def field_changes(target: Record, desired: Desired, updatable: frozenset[str]) -> tuple[FieldChange, ...]:
    """The owned fields whose target value differs from the desired one, in the rule's field order."""
    changes: list[FieldChange] = []
    current = target.fields
    for name, value in desired.fields.items():
        if name not in updatable or name in desired.create_only:
            continue
        before = current.get(name)
        if not same_value(before, value):
            changes.append(FieldChange(name, before, value))
    return tuple(changes)


def natural_key(fields: Mapping[str, Value], names: Sequence[str]) -> tuple[str, ...]:
    """The first-sight key as a tuple of exact strings (None → "")."""
    return tuple("" if fields.get(n) is None else str(fields.get(n)) for n in names)


def target_key(record: Record, names: Sequence[str]) -> tuple[str, ...]:
    """A target record's natural key; ``id`` is the record's own id unless it has a field of that name."""
    fields = record.fields
    return tuple(
        record.id
        if n == "id" and "id" not in fields
        else ("" if fields.get(n) is None else str(fields.get(n)))
        for n in names
    )


def index_candidates(
    targets: Iterable[Record], names: Sequence[str], claimed: frozenset[str]
) -> dict[tuple[str, ...], list[Record]]:
    """Unclaimed target records grouped by natural key (a key with an empty part is never indexed: an empty
    value matches nothing)."""
    index: dict[tuple[str, ...], list[Record]] = {}
    if not names:
        return index
    for record in targets:
        if record.id in claimed:
            continue
        key = target_key(record, names)
        if "" not in key:
            index.setdefault(key, []).append(record)
    return index


def plan(spec: PlanSpec, data: PlanInput) -> EntityPlan:
    """Compute the entity's plan. Deterministic: actions are sorted by kind order, then source id."""
    actions: list[Action] = []
    unchanged = data.settled
    filtered = data.filtered
    present: set[str] = set()
    candidates = index_candidates(data.targets.values(), spec.first_sight, data.claimed_targets)
    fallback = index_candidates(data.targets.values(), spec.first_sight_fallback, data.claimed_targets)
    taken: set[str] = set()
    unlinked: list[Desired] = []

    for item in data.normalized:
        present.add(item.source_id)
        if isinstance(item, Filtered):
            filtered += 1
            continue
        if isinstance(item, Skipped):
            actions.append(Skip(item.source_id, item.reason, item.label))
            continue
        if isinstance(item, Quarantined):
            actions.append(Quarantine(item.source_id, item.reason, item.label))
            continue
        link = data.links.get(item.source_id)
        if link is None or (spec.on_unmatched != "create" and link.target_id not in data.targets):
            # Matched by natural key below, in source-id order (a vanished target is looked for again too).
            unlinked.append(item)
            continue
        action = _plan_desired(spec, data, item, (candidates, fallback), taken)
        if action is None:
            unchanged += 1
        else:
            actions.append(action)
    # First-sight matching in source-id order, so which of two same-named sources adopts a target is stable.
    for item in sorted(unlinked, key=lambda d: d.source_id):
        action = _plan_desired(spec, data, item, (candidates, fallback), taken)
        if action is None:
            unchanged += 1
        else:
            actions.append(action)

    gone = set(data.gone) - present
    if data.mode == "full":
        gone |= {sid for sid, link in data.links.items() if link.active and sid not in present}
    removals = 0
    for source_id in sorted(gone):
        removal = _plan_removal(spec, data, source_id)
        if removal is None:
            continue
        reason = data.hold.get(source_id)
        if reason is not None:  # held removals will not run this cycle, so they do not count for the guard
            actions.append(Skip(source_id, reason, removal.label))
            continue
        actions.append(removal)
        removals += 1

    if data.hold:
        actions = [_held(a, data.hold) for a in actions]
    actions.sort(key=_order)
    guard = _guard(spec, data, removals)
    return EntityPlan(
        integration=spec.integration,
        entity=spec.entity,
        source=spec.source,
        target=spec.target,
        mode=data.mode,
        actions=tuple(actions),
        unchanged=unchanged,
        filtered=filtered,
        guard=guard,
    )


_Index = dict[tuple[str, ...], list[Record]]


def _first_sight(
    spec: PlanSpec, desired: Desired, indexes: tuple[_Index, _Index], taken: set[str]
) -> tuple[list[Record], Mapping[str, Value]]:
    """The unclaimed targets matching ``desired`` by its natural key, else by its fallback key, and that key."""
    for names, index, key in (
        (spec.first_sight, indexes[0], desired.natural_key),
        (spec.first_sight_fallback, indexes[1], desired.fallback_key or {}),
    ):
        if not names:
            continue
        parts = natural_key(desired.fields, names)
        if "" in parts:
            continue  # an empty key matches nothing
        matches = [r for r in index.get(parts, ()) if r.id not in taken]
        if matches:
            return matches, key
    return [], desired.natural_key


def _plan_desired(
    spec: PlanSpec,
    data: PlanInput,
    desired: Desired,
    indexes: tuple[_Index, _Index],
    taken: set[str],
) -> Action | None:
    link = data.links.get(desired.source_id)
    if link is not None:
        target = data.targets.get(link.target_id)
        if target is not None:
            return _matched(spec, desired, target, linked=True)
        if link.active and link.content_hash == desired.content_hash and not data.force_compare:
            return None  # unchanged since last applied and not re-read this cycle
        if spec.on_unmatched == "create":
            if desired.blocked:
                return Skip(desired.source_id, desired.blocked, desired.label)
            return Create(
                desired.source_id,
                desired.fields,
                desired.natural_key,
                desired.content_hash,
                desired.label,
                reason=f"linked {spec.target} record {link.target_id} no longer exists",
            )
        # a rule that never creates looks for the record again by natural key

    matches, key = _first_sight(spec, desired, indexes, taken)
    if len(matches) > 1:
        ids = ", ".join(sorted(r.id for r in matches))
        return Skip(
            desired.source_id,
            f"ambiguous: {len(matches)} {spec.target} records match {_describe(key)} (ids {ids})",
            desired.label,
        )
    if len(matches) == 1:
        taken.add(matches[0].id)
        return _matched(spec, desired, matches[0], linked=False, key=key)
    if spec.on_unmatched == "ignore":
        return None
    if spec.on_unmatched == "skip":
        reason = (
            desired.unmatched_reason or f"no {spec.target} record matches {_describe(desired.natural_key)}"
        )
        return Skip(desired.source_id, reason, desired.label)
    if desired.blocked:
        return Skip(desired.source_id, desired.blocked, desired.label)
    return Create(desired.source_id, desired.fields, desired.natural_key, desired.content_hash, desired.label)


def _matched(
    spec: PlanSpec, desired: Desired, target: Record, *, linked: bool, key: Mapping[str, Value] | None = None
) -> Action | None:
    """What a desired record matched to ``target`` (by link or first sight) becomes, per the rule's apply.

    A rule that never creates skips a matched record whose write is blocked (a field it needs is missing);
    a creating rule's block concerns create-only fields, which a match does not write.
    """
    if desired.blocked and spec.on_unmatched != "create":
        return Skip(desired.source_id, desired.blocked, desired.label)
    if spec.apply == "delete":
        return Delete(desired.source_id, target.id, desired.label)
    if spec.apply == "operation":
        return Operate(
            desired.source_id, target.id, spec.operation, desired.fields, desired.content_hash, desired.label
        )
    changes = field_changes(target, desired, spec.updatable)
    if linked:
        if not changes:
            return None
        return Update(desired.source_id, target.id, changes, desired.content_hash, desired.label)
    return Link(
        desired.source_id,
        target.id,
        dict(key) if key is not None else desired.natural_key,
        changes,
        desired.content_hash,
        desired.label,
    )


def _plan_removal(spec: PlanSpec, data: PlanInput, source_id: str) -> Action | None:
    link = data.links.get(source_id)
    if link is None or not link.active or spec.removal.action == "ignore":
        return None
    target = data.targets.get(link.target_id)
    # The source record is gone, so name it after what the target calls it.
    label = " / ".join(target_key(target, spec.first_sight)) if target is not None else ""
    if spec.removal.action == "delete":
        return Delete(source_id, link.target_id, label)
    before = target.fields.get(spec.removal.field) if target is not None else None
    if target is not None and same_value(before, spec.removal.value):
        return None
    return Inactivate(source_id, link.target_id, spec.removal.field, before, spec.removal.value, label)


_KIND_ORDER = {
    "create": 0,
    "link": 1,
    "update": 2,
    "operate": 3,
    "inactivate": 4,
    "delete": 5,
    "skip": 6,
    "quarantine": 7,
}


def _order(action: Action) -> tuple[int, str]:
    return (_KIND_ORDER[type(action).__struct_config__.tag], action.source_id)  # type: ignore[index]


def _guard(spec: PlanSpec, data: PlanInput, removals: int) -> str:
    """Only removals of vanished sources count: a rule whose apply is ``delete`` acts on records it reads."""
    empty = (
        data.mode == "full"
        and data.linked_total > 0
        and not data.normalized
        and not data.settled
        and not data.filtered
    )
    if empty and spec.removal.action != "ignore":
        return (
            f"the full snapshot of {spec.source} is empty while {data.linked_total} records are linked; "
            "refusing to remove them (an empty read is far more likely than an emptied network)"
        )
    if removals and data.linked_total and removals > spec.max_inactivate_share * data.linked_total:
        share = removals / data.linked_total
        return (
            f"would remove {removals} of {data.linked_total} linked records ({share:.0%}), more than the allowed "
            f"{spec.max_inactivate_share:.0%}; re-run with --allow-mass-removal if this is intended"
        )
    return ""


def _describe(key: Mapping[str, Value]) -> str:
    return " + ".join(f"{k}={v!r}" for k, v in key.items())


def _held(action: Action, reasons: Mapping[str, str]) -> Action:
    """A held source id's changing action becomes a skip carrying the hold's reason."""
    reason = reasons.get(action.source_id)
    if reason is None or isinstance(action, Skip | Quarantine):
        return action
    return Skip(action.source_id, reason, action.label)
