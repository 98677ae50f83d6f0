"""The records that flow through a cycle, and the actions a plan is made of.

Everything here is a frozen msgspec Struct: the same types are decoded from connectors, hashed into the state
store, encoded into the plan JSON and rendered by the report. This module imports nothing of ours.

Flow: connectors yield :class:`Record` pages → the entity's compiled rule turns each into a
:class:`Desired` (or :class:`Skipped` / :class:`Quarantined`) → ``planning.plan`` compares desired records with
links and the target snapshot and emits :data:`Action` items → ``applying`` executes them and reports
:class:`Outcome` items.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, TypeAlias

import msgspec

#: A field value as it travels between systems: JSON scalars, plus lists/dicts for nested API values.
Value: TypeAlias = str | int | float | bool | list[Any] | dict[str, Any] | None

#: Field name → value. Flat: connectors flatten nested API shapes into dotted or joined names.
Fields: TypeAlias = dict[str, Value]


class Record(msgspec.Struct, frozen=True, gc=False):
    """One record of one collection of one system, as a connector normalises it.

    ``id`` is the system's own id (as a string); ``updated_at`` is the system's change marker, used as the
    incremental cursor (it only needs to sort correctly as a string); ``deleted`` marks a record the source
    reports as removed (soft-deleted rows read through an incremental "deleted since" query).

    ``problem`` says why the system's record could not be read whole (e.g. a wrongly typed field): its
    ``fields`` are what could be salvaged, and every rule quarantines it with that reason before looking at them.
    """

    id: str
    fields: Fields
    updated_at: str = ""
    deleted: bool = False
    problem: str = ""


class Desired(msgspec.Struct, frozen=True, gc=False):
    """What the target record should look like for one source record.

    ``fields`` holds every mapped target field; ``create_only`` names the fields that are written on create but
    never updated afterwards (the target owns them); ``natural_key`` is the first-sight match key (target field →
    value); ``content_hash`` fingerprints ``fields`` so an unchanged source can be skipped cheaply.
    """

    source_id: str
    fields: Fields
    natural_key: Fields
    content_hash: str
    create_only: frozenset[str] = frozenset()
    label: str = ""
    updated_at: str = ""
    fallback_key: Fields | None = None
    """The second natural key (``[match] first-sight-fallback``), tried when ``natural_key`` finds nothing."""
    unmatched_reason: str = ""
    """Why nothing is done when no target record matches (rules with ``on-unmatched = "skip"``)."""
    blocked: str = ""
    """A field the write needs is missing (a deferred ``when-missing = "skip"``): the planner skips with this
    reason where it would write — a create, for a create-only field; any write, for a rule that never creates."""


class Skipped(msgspec.Struct, frozen=True, gc=False):
    """A source record that cannot be synced now, with a reason a person can act on."""

    source_id: str
    reason: str
    label: str = ""
    updated_at: str = ""


class Quarantined(msgspec.Struct, frozen=True, gc=False):
    """A source record with bad data (missing field, coordinate out of range...). Reported, never applied."""

    source_id: str
    reason: str
    label: str = ""
    updated_at: str = ""


class Filtered(msgspec.Struct, frozen=True, gc=False):
    """A source record outside the rule's source filter (e.g. a box "in project"). Not an action."""

    source_id: str
    updated_at: str = ""


Normalized: TypeAlias = Desired | Skipped | Quarantined | Filtered


class FieldChange(msgspec.Struct, frozen=True):
    """One field that an update changes: ``before`` is the target's current value, ``after`` the desired one."""

    field: str
    before: Value
    after: Value


class Create(msgspec.Struct, frozen=True, tag="create"):
    """Create a target record for a source record that has no counterpart."""

    source_id: str
    fields: Fields
    natural_key: Fields
    content_hash: str
    label: str = ""
    reason: str = ""


class Update(msgspec.Struct, frozen=True, tag="update"):
    """Change only the listed owned fields of a linked target record."""

    source_id: str
    target_id: str
    changes: tuple[FieldChange, ...]
    content_hash: str
    label: str = ""


class Link(msgspec.Struct, frozen=True, tag="link"):
    """Adopt an existing target record matched by natural key; ``changes`` may be empty."""

    source_id: str
    target_id: str
    natural_key: Fields
    changes: tuple[FieldChange, ...]
    content_hash: str
    label: str = ""


class Inactivate(msgspec.Struct, frozen=True, tag="inactivate"):
    """The source record is gone: mark the linked target inactive (``field`` := ``value``)."""

    source_id: str
    target_id: str
    field: str
    before: Value
    value: Value
    label: str = ""


class Delete(msgspec.Struct, frozen=True, tag="delete"):
    """Delete the target: its source is gone and the rule's removal says so, or the rule's apply action is
    ``delete`` and the record matched (e.g. a withdrawn reservation)."""

    source_id: str
    target_id: str
    label: str = ""


class Operate(msgspec.Struct, frozen=True, tag="operate"):
    """Call the target connector's named ``operation`` on a matched record, with ``args`` (the desired fields).

    For what a field update cannot say (OZmap "cancel client": detach, note the last connection, unplug the
    drop). An operation must make the target stop matching the rule, so the next plan is empty.
    """

    source_id: str
    target_id: str
    operation: str
    args: Fields
    content_hash: str
    label: str = ""


class Skip(msgspec.Struct, frozen=True, tag="skip"):
    """Nothing will be done for this source record, and why."""

    source_id: str
    reason: str
    label: str = ""


class Quarantine(msgspec.Struct, frozen=True, tag="quarantine"):
    """A bad source record, set aside with its reason; the rest of the cycle goes on."""

    source_id: str
    reason: str
    label: str = ""


Action: TypeAlias = Create | Update | Link | Operate | Inactivate | Delete | Skip | Quarantine

#: Action kinds that change a target system (Skip and Quarantine do not).
CHANGING_KINDS: frozenset[str] = frozenset({"create", "update", "link", "operate", "inactivate", "delete"})


def action_kind(action: Action) -> str:
    """The tag of an action (``create``, ``update``...)."""
    return type(action).__struct_config__.tag  # type: ignore[return-value]


class EntityPlan(msgspec.Struct, frozen=True):
    """The actions planned for one entity of one integration in one cycle."""

    integration: str
    entity: str
    source: str
    target: str
    mode: Literal["full", "incremental", "targeted"]
    actions: tuple[Action, ...]
    unchanged: int = 0
    filtered: int = 0
    guard: str = ""

    def count(self, kind: str) -> int:
        """How many actions of ``kind``."""
        return sum(1 for a in self.actions if action_kind(a) == kind)

    @property
    def changes(self) -> int:
        """Number of actions that would change a target system."""
        return sum(1 for a in self.actions if action_kind(a) in CHANGING_KINDS)


class Plan(msgspec.Struct, frozen=True):
    """A whole dry run: one :class:`EntityPlan` per entity, in execution order."""

    created_at: str
    entities: tuple[EntityPlan, ...]

    @property
    def changes(self) -> int:
        return sum(e.changes for e in self.entities)

    @property
    def guard_tripped(self) -> bool:
        return any(e.guard for e in self.entities)


class Outcome(msgspec.Struct, frozen=True):
    """What happened when one action was applied."""

    kind: str
    source_id: str
    ok: bool
    target_id: str = ""
    error: str = ""
    attempts: int = 1
    label: str = ""


def content_hash(fields: Fields) -> str:
    """A stable 16-hex fingerprint of a field mapping (key order does not matter)."""
    payload = msgspec.json.encode(fields, order="sorted")
    return hashlib.blake2b(payload, digest_size=8).hexdigest()
