"""The rule-file language as msgspec Structs: one Struct per TOML table, unknown keys rejected.

These types only say what a rule file may contain and of what type (decode and validate at the boundary,
STYLE.md §2.4). Whether the names in it resolve (fields, lookups, options, transforms) is checked by
:mod:`reconciler.rules.loading` (without schemas) and :mod:`reconciler.rules.compiling` (against the connectors'
collection schemas). ``rules/ozmap-ixc/boxes.toml`` is the worked example of the field keys; the client rules
next to it show the rest (``client-creation``: deferred skips, ``lookup()``, ``default-if``; ``client-status``:
``on-unmatched``, ``omit``, ``iff()``; ``withdrawal``/``cancellation``: ``[apply]``).

Field mapping defaults, ``[fields.NAME]``:

* exactly one of ``from`` (a source field), ``value`` (a literal) or ``expr`` (an expression);
* then ``transform``, then ``lookup``; a value that is still null (or a lookup that found nothing) is *missing*;
* ``when-missing`` says what a missing value does: ``"skip"`` (Skipped with ``reason``), ``"quarantine"``,
  ``"default"`` (use ``default``), ``"null"`` (keep null) or ``"omit"`` (leave the field out of the desired
  record: the target keeps its value). Unset, it is ``"skip"`` for a field with a lookup, ``"default"`` when a
  ``default`` is given without ``default-if``, else ``"null"``. A ``"skip"`` waits for the planner where the
  field is not always written: a create-only field skips only a record that would be created (one already on
  the target is still matched), and a rule that never creates skips only matched records;
* ``default-if = "option"``: when that boolean option is on, a missing value takes ``default`` instead
  (``default`` is the final value: it is not transformed or looked up);
* ``update = false``: written on create only, the target owns the field afterwards. Every other mapped field
  is owned by the source: a change made on the target side is overwritten at the next comparison.

Beyond field updates (``[match]`` and ``[apply]``):

* ``on-unmatched``: what a source record with no counterpart does — ``"create"`` it (default), ``"skip"`` it
  with ``unmatched-reason`` (a template), or ``"ignore"`` it (an update-only rule);
* ``[apply] action``: what a matched record gets — ``"update"`` of its fields (default), ``"delete"`` of the
  target record, or ``"operation"``: the target connector's named ``operation`` with the mapped fields as its
  arguments (for what TOML cannot say, e.g. OZmap's "cancel client").
* ``[match] first-sight-fallback``: a second natural key, tried for a record whose first-sight key has an empty
  part or matches nothing (``cosbe-vetro``: by External Identification, else by External Service Location ID).
  A key with an empty part never matches anything, and ``id`` names the target record's own id.

Enum fields, ``[source] enums`` (``rules/ozmap-ixc`` declares the IXC login and contract flags):

* ``enums = { ativo = ["S", "N"], contract_status = ["", "P", "A", "I", "N", "D"] }`` (or a ``[source.enums]``
  table) lists the values each source field may hold (text, numbers or booleans; at least one). A record whose
  field holds any other value, or none, is quarantined with a reason such as ``ativo "X" is not one of S, N``.
  The values are checked *before* ``filter``, so a value nobody expected is reported instead of silently
  filtered out; but a record the filter would leave out with its actual value *and* with every listed value
  (e.g. a radio login in a fiber-only rule) is simply filtered out, so a rule only reports what it could have
  synced. A record read with bad data (a wrongly typed field: the connector sets ``Record.problem``) is
  quarantined with that problem before anything else of the rule runs.

Conditions and config-driven mappings (``rules/cosbe-vetro`` shows both):

* ``[[source.check]] on-fail = "skip-create"``: the condition gates creation only — a record failing it is
  skipped where it would be created (every failing such check is named in the reason), while a record that
  already has a counterpart is still matched and updated (the seed's auto-import conditions);
* an option whose ``default`` is a table of text (``{ "Survey Done" = "Survey Done" }``) holds a mapping the
  config may replace, and ``[field-map.OPTION]`` turns each of its entries into one field: ``target`` and
  ``from`` are templates where ``{key}`` and ``{value}`` stand for the entry (``target = "properties.{value}"``,
  ``from = "metadata.{key}"``), with the usual ``transform``, ``when-missing`` and ``update`` keys.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

import msgspec

#: A literal in a rule file (TOML has no null).
Scalar: TypeAlias = str | int | float | bool
#: What an option may hold: a literal, or a table of text (a mapping the config may replace).
OptionValue: TypeAlias = str | int | float | bool | dict[str, str]

WhenMissing = Literal["skip", "quarantine", "default", "null", "omit"]
OnFail = Literal["quarantine", "skip", "skip-create"]
RemovalAction = Literal["inactivate", "delete", "ignore"]
OnUnmatched = Literal["create", "skip", "ignore"]
ApplyAction = Literal["update", "delete", "operation"]
Share = Annotated[float, msgspec.Meta(ge=0, le=1)]
#: The values an enum field may hold (``[source] enums``); emptiness is checked with a readable message.
EnumValues: TypeAlias = list[Scalar]
Name = Annotated[str, msgspec.Meta(min_length=1)]


class _Table(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="kebab"):
    """Base of every table: immutable, keyword-only, unknown keys rejected, kebab-case keys."""


class Entity(_Table, frozen=True):
    """``[entity]``: what the entity is and when it runs."""

    description: str = ""
    label: str = ""
    """Template naming a record in reports, e.g. ``"{name} ({project_name})"`` (source fields)."""
    after: list[Name] = msgspec.field(default_factory=list)
    """Entities of the same integration that must run before this one."""
    enabled: bool = True
    """False: run only when the config lists the entity explicitly."""


class Check(_Table, frozen=True):
    """``[[source.check]]``: a record for which ``expr`` is false is quarantined (or skipped) with ``reason``."""

    expr: str
    reason: str
    on_fail: OnFail = "quarantine"
    """``"skip"``: the record is fine but cannot be synced now (e.g. its box is not linked yet).
    ``"skip-create"``: the record must not be *created* (skipped where it would be); a matched one is updated."""


class Source(_Table, frozen=True):
    """``[source]``: where the records come from and which of them matter."""

    system: Name
    collection: Name
    incremental: bool = False
    filter: str | None = None
    enums: dict[Name, EnumValues] = msgspec.field(default_factory=dict)
    """Source field → the values it may hold; any other value quarantines the record (see the module docstring)."""
    check: list[Check] = msgspec.field(default_factory=list)


class Target(_Table, frozen=True):
    """``[target]``: where the records go; ``filter`` limits the target records the rule considers."""

    system: Name
    collection: Name
    filter: str | None = None


class Match(_Table, frozen=True):
    """``[match]``: how a record is recognised on the target before a link exists, and what no match does."""

    first_sight: list[Name] = msgspec.field(default_factory=list)
    first_sight_fallback: list[Name] = msgspec.field(default_factory=list)
    """A second key, tried when the first has an empty part or matches nothing."""
    on_unmatched: OnUnmatched = "create"
    unmatched_reason: str | None = None
    """Template (source fields) of the skip reason when ``on-unmatched = "skip"``."""


class Apply(_Table, frozen=True):
    """``[apply]``: what a matched record gets; ``operation`` names the connector operation."""

    action: ApplyAction = "update"
    operation: Name | None = None


class Lookup(_Table, frozen=True):
    """``[lookups.NAME]``: either a table (system, collection, key, value) or another entity's ``links``."""

    system: Name | None = None
    collection: Name | None = None
    key: Name | None = None
    value: Name | None = None
    links: Name | None = None
    reverse: bool = False


class Option(_Table, frozen=True):
    """``[options.NAME]``: a setting the config may change; its type is the type of ``default`` (a table of
    text for a mapping, e.g. COS metadata name → Vetro attribute label)."""

    default: OptionValue
    description: str = ""


class Field(_Table, frozen=True):
    """``[fields.TARGET_FIELD]``: how one target field gets its value (see the module docstring)."""

    from_: Name | None = msgspec.field(default=None, name="from")
    value: Scalar | None = None
    expr: str | None = None
    transform: Name | None = None
    lookup: Name | None = None
    when_missing: WhenMissing | None = None
    reason: str | None = None
    default: Scalar | None = None
    default_if: Name | None = None
    update: bool = True


class FieldMap(_Table, frozen=True):
    """``[field-map.OPTION]``: one ``[fields.X]`` per entry of the table option ``OPTION``.

    ``target`` and ``from`` are templates in which ``{key}`` and ``{value}`` stand for the entry's key and value.
    """

    target: Name
    from_: Name = msgspec.field(name="from")
    transform: Name | None = None
    when_missing: WhenMissing | None = None
    update: bool = True


class Removal(_Table, frozen=True):
    """``[removal]``: what a vanished source record does to its target record."""

    action: RemovalAction = "ignore"
    field: Name | None = None
    value: Scalar | None = None


class Schedule(_Table, frozen=True):
    """``[schedule]``: durations like ``"90s"``, ``"5m"``, ``"1h30m"``, ``"1d"``."""

    incremental: str = "5m"
    full: str = "24h"


class Guard(_Table, frozen=True):
    """``[guard]``: ``max-inactivate-share`` unset means the config's default."""

    max_inactivate_share: Share | None = None


class Rule(_Table, frozen=True):
    """A whole rule file."""

    source: Source
    target: Target
    fields: dict[str, Field]
    entity: Entity = Entity()
    match: Match = Match()
    apply: Apply = Apply()
    lookups: dict[str, Lookup] = msgspec.field(default_factory=dict)
    options: dict[str, Option] = msgspec.field(default_factory=dict)
    field_map: dict[str, FieldMap] = msgspec.field(default_factory=dict)
    removal: Removal = Removal()
    schedule: Schedule = Schedule()
    guard: Guard = Guard()


#: Sections that are tables of named tables, with the Struct of each entry (decoded one by one for line numbers).
NAMED_TABLES: dict[str, type[_Table]] = {
    "fields": Field,
    "lookups": Lookup,
    "options": Option,
    "field-map": FieldMap,
}
