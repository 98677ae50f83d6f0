"""One mapped target field as a closure: value source → transform → lookup → when-missing policy.

:func:`build_step` turns a ``[fields.NAME]`` table, already resolved against the schemas, into a function
``step(env, tables) -> value`` that either returns the field's value or raises :class:`Reject` (the record is
skipped or quarantined, with its reason). Everything that does not depend on the record (the transform, the
policy after applying ``default-if`` to the resolved option, constant values) is decided here, once, so the per
record work is a handful of calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.model import Value
from reconciler.rules.expressions import Env, Fn
from reconciler.rules.lookups import Ambiguous, LookupSpec, lookup_key
from reconciler.rules.templates import Template, render_value
from reconciler.rules.transforms import Transform

#: lookup name → table (key → value or an Ambiguous entry)
Tables = Mapping[str, Mapping[str, Value]]
Step = Callable[[Env, Tables], Value]


class _Omitted(str):
    """Type of :data:`OMIT` (a ``str`` so a field map stays an honest ``dict[str, Value]``)."""


#: Returned by a step whose value is missing under ``when-missing = "omit"``; the rule drops the field.
OMIT: Value = _Omitted("<omitted>")


class Blocked(str):
    """A deferred skip: the value of a field the planner needs only for some writes is missing.

    Returned (instead of raising :class:`Reject`) by a step wrapped with :func:`defer`; the rule drops the field
    and the desired record carries the reason, so the planner skips only where it would write the field.
    """

    reason: str

    def __new__(cls, reason: str) -> Blocked:
        marker = super().__new__(cls, "<blocked>")
        marker.reason = reason
        return marker


class Reject(Exception):
    """Raised by a step: the record cannot be mapped. ``quarantine`` False means skipped."""

    def __init__(self, reason: str, *, quarantine: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.quarantine = quarantine


@dataclass(frozen=True, slots=True, kw_only=True)
class StepSpec:
    """A field mapping resolved at compile time (see :mod:`reconciler.rules.schema` for the language).

    ``source_field`` is set when ``get`` just reads that top-level field, so the step can inline the read.
    """

    name: str
    get: Fn
    source_field: str | None = None
    transform: Transform | None = None
    lookup: LookupSpec | None = None
    policy: str = "null"
    default: Value = None
    reason: Template | None = None


def build_step(spec: StepSpec) -> Step:
    """The closure mapping one record to this field's value (as few nested calls as the mapping allows)."""
    read = _reader(spec)
    if spec.lookup is None and spec.policy == "null":
        return read
    missing = _missing(spec)
    if spec.lookup is None:

        def plain(env: Env, tables: Tables) -> Value:
            value = read(env, tables)
            return missing(env, value) if value is None else value

        return plain
    return _looked_up(spec.lookup, read, missing)


def defer(step: Step) -> Step:
    """``step`` whose skip (not quarantine) becomes a :class:`Blocked` value instead of rejecting the record."""

    def deferred(env: Env, tables: Tables) -> Value:
        try:
            return step(env, tables)
        except Reject as reject:
            if reject.quarantine:
                raise
            return Blocked(reject.reason)

    return deferred


def _reader(spec: StepSpec) -> Step:
    """Source value, then transform; a ValueError from either quarantines the record."""
    get, transform, name, field = spec.get, spec.transform, spec.name, spec.source_field
    if field is not None and transform is None:
        return lambda env, tables: env.get(field)
    if field is not None and transform is not None:

        def read_field(env: Env, tables: Tables) -> Value:
            try:
                return transform(env.get(field))
            except ValueError as exc:
                raise Reject(f"field {name}: {exc}", quarantine=True) from None

        return read_field

    def read(env: Env, tables: Tables) -> Value:
        try:
            value = get(env)
            return value if transform is None else transform(value)
        except ValueError as exc:
            raise Reject(f"field {name}: {exc}", quarantine=True) from None

    return read


def _looked_up(lookup: LookupSpec, read: Step, missing: Callable[[Env, Value], Value]) -> Step:
    table_name = lookup.name
    owner = (
        f"{lookup.system.upper()} records" if lookup.kind == "table" else f"links of {lookup.links_entity}"
    )

    def looked_up(env: Env, tables: Tables) -> Value:
        key = read(env, tables)
        if key is None or key == "":
            return missing(env, key)
        text = key if type(key) is str else lookup_key(key)
        found = tables[table_name].get(text)
        if found is None:
            return missing(env, key)
        if type(found) is Ambiguous:
            raise Reject(
                f"lookup {table_name}: {found.records} {owner} share the key {text!r}", quarantine=False
            )
        return found

    return looked_up


def _missing(spec: StepSpec) -> Callable[[Env, Value], Value]:
    """What a missing value becomes: null, the default, or a Reject with the rendered reason."""
    if spec.policy == "null":
        return lambda env, key: None
    if spec.policy == "default":
        default = spec.default
        return lambda env, key: default
    if spec.policy == "omit":
        return lambda env, key: OMIT
    quarantine = spec.policy == "quarantine"
    name, reason, lookup = spec.name, spec.reason, spec.lookup

    def reject(env: Env, key: Value) -> Value:
        if reason is not None:
            text = reason.render(env, {"value": key, "field": name})
        elif lookup is None:
            text = f"field {name}: value is missing"
        elif key is None or key == "":
            text = f"field {name}: no value to look up in {lookup.name}"
        else:
            text = f"field {name}: lookup {lookup.name} has no {render_value(key)!r}"
        raise Reject(text, quarantine=quarantine)

    return reject
