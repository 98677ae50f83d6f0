"""Compile a loaded rule against the systems' schemas into a :class:`CompiledRule` the planner runs.

Compiling resolves every name a rule uses (source fields in ``from``/expressions/templates, writable target
fields, lookup key and value fields, the removal field, options) against the connectors'
:class:`~reconciler.connectors.base.CollectionSchema` values, reporting each problem as ``file:line: message``.
Config options are checked here too (unknown option or wrong type → :class:`~reconciler.errors.ConfigError`).

The result holds plain attributes for the planner plus closures for :meth:`CompiledRule.normalize`, the pure
function that turns one source record into ``Desired | Skipped | Quarantined | Filtered``; it is called once per
record per cycle (a million times in the benchmarks), so everything that does not depend on the record has been
decided here.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

from reconciler import agreement, model
from reconciler.errors import ConfigError, RuleError
from reconciler.model import Desired, Filtered, Normalized, Quarantined, Record, Skipped, Value
from reconciler.rules import expressions, fieldsteps, schema, templates, transforms, validating
from reconciler.rules.expressions import LOOKUPS_KEY, Env, Fn
from reconciler.rules.fieldsteps import OMIT, Blocked, Reject, Step, Tables
from reconciler.rules.loading import RuleFile
from reconciler.rules.locating import PathPart, dotted
from reconciler.rules.lookups import AMBIGUOUS, Ambiguous, LookupSpec

if TYPE_CHECKING:
    from reconciler.connectors.base import Catalog, CollectionSchema

__all__ = ["AMBIGUOUS", "Ambiguous", "CompiledRule", "LookupSpec", "compile_rule", "load_integration"]


#: Most filter evaluations spent on deciding whether a record with unknown enum values could pass the filter.
ENUM_TRIALS_MAX = 64


@dataclass(frozen=True, slots=True)
class _Enum:
    """One ``[source] enums`` entry: the field, how to read it, the listed values and their keys (see
    :func:`validating.enum_key`), and the list as a message shows it."""

    name: str
    get: Fn
    flat: bool
    """The field is a top-level env key (a nested one cannot be substituted when trying the filter)."""
    values: tuple[Value, ...]
    allowed: frozenset[object]
    listing: str

    def reason(self, value: Value) -> str:
        if value is None:
            return f"{self.name} has no value, not one of {self.listing}"
        return f"{self.name} {_quoted(value)} is not one of {self.listing}"


@dataclass(frozen=True, slots=True)
class _Program:
    """The closures :meth:`CompiledRule.normalize` runs."""

    needs_id: bool
    needs_tables: bool
    """Some source expression calls ``lookup()``: the env carries the tables under ``LOOKUPS_KEY``."""
    enums: tuple[_Enum, ...]
    filter: Fn | None
    checks: tuple[tuple[Fn, templates.Template, str, str], ...]
    """(test, reason, where, on-fail) of the checks that reject a record"""
    create_checks: tuple[tuple[Fn, templates.Template, str], ...]
    """(test, reason, where) of the ``skip-create`` checks: they only block a create"""
    steps: tuple[tuple[str, Step], ...]
    may_omit: bool
    label: templates.Template | None
    unmatched_reason: templates.Template | None
    target_filter: Fn | None
    target_needs_id: bool
    target_filter_reads: frozenset[str]


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """One entity of one integration, ready to run. Attributes are what the planner reads."""

    integration: str
    entity: str
    path: Path
    description: str
    after: tuple[str, ...]
    source_system: str
    source_collection: str
    incremental: bool
    target_system: str
    target_collection: str
    first_sight: tuple[str, ...]
    first_sight_fallback: tuple[str, ...]
    """A second natural key, tried when the first has an empty part or matches nothing."""
    on_unmatched: schema.OnUnmatched
    apply_action: schema.ApplyAction
    operation: str
    """The connector operation of ``apply_action == "operation"`` ("" otherwise)."""
    fields: tuple[str, ...]
    """Every mapped target field, in declaration order."""
    updatable: frozenset[str]
    """Fields the rule keeps in sync (``update = true``)."""
    create_only: frozenset[str]
    """Fields written on create only; the target owns them afterwards (``update = false``)."""
    lookups: Mapping[str, LookupSpec]
    removal: schema.Removal
    incremental_seconds: int
    full_seconds: int
    max_inactivate_share: float | None
    """None: the config's default applies."""
    options: Mapping[str, Value]
    """Every declared option, resolved (config value or default)."""
    fingerprint: bytes
    """A digest of what the rule was compiled from (spec after options, options, both schemas): see
    ``reconciler.agreement``."""
    source_reads: tuple[str, ...]
    """Every source field the rule reads (sorted; a dotted name also as its top-level field). Nothing else of a
    record can change what :meth:`normalize` makes of it, so a record's fingerprint covers only these."""
    _program: _Program = field(repr=False)

    @property
    def name(self) -> str:
        """``integration/entity``."""
        return f"{self.integration}/{self.entity}"

    @property
    def target_filter_reads(self) -> frozenset[str]:
        """The target fields the ``[target] filter`` reads."""
        return self._program.target_filter_reads

    def normalize(self, record: Record, lookups: Tables) -> Normalized:
        """The desired target record for ``record`` (or why there is none).

        ``lookups`` must hold a table for every name in :attr:`lookups` (see :mod:`reconciler.rules.lookups`).
        """
        program = self._program
        env: Env = record.fields
        if program.needs_id or program.needs_tables:
            extended: dict[str, Any] = dict(env)
            if program.needs_id:
                extended["id"] = record.id
            if program.needs_tables:
                extended[LOOKUPS_KEY] = lookups
            env = extended
        if record.problem:  # read with bad data: nothing of the rule runs on the salvaged fields
            return Quarantined(record.id, record.problem, self._label(env), record.updated_at)
        if program.enums:
            odd = _odd_values(program.enums, env)
            if odd:
                if not _may_pass(program.filter, env, odd):
                    return Filtered(record.id, record.updated_at)
                reason = "; ".join(enum.reason(value) for enum, value in odd)
                return Quarantined(record.id, reason, self._label(env), record.updated_at)
        if program.filter is not None:
            try:
                if not program.filter(env):
                    return Filtered(record.id, record.updated_at)
            except ValueError as exc:
                return Quarantined(record.id, f"source.filter: {exc}", self._label(env), record.updated_at)
        label = self._label(env)
        try:
            _run_checks(program.checks, env)
            blocked = _create_blocks(program.create_checks, env) if program.create_checks else ""
            fields = {name: step(env, lookups) for name, step in program.steps}
        except Reject as reject:
            kind = Quarantined if reject.quarantine else Skipped
            return kind(record.id, reject.reason, label, record.updated_at)
        if program.may_omit:
            kept: dict[str, Value] = {}
            for name, value in fields.items():
                if value is OMIT:
                    continue
                if type(value) is Blocked:
                    blocked = f"{blocked}; {value.reason}" if blocked else value.reason
                    continue
                kept[name] = value
            fields = kept
        unmatched = program.unmatched_reason
        return Desired(
            source_id=record.id,
            fields=fields,
            natural_key={key: fields.get(key) for key in self.first_sight},
            fallback_key=(
                {key: fields.get(key) for key in self.first_sight_fallback}
                if self.first_sight_fallback
                else None
            ),
            content_hash=model.content_hash(fields),
            create_only=self.create_only,
            label=label,
            updated_at=record.updated_at,
            unmatched_reason=unmatched.render(env) if unmatched is not None else "",
            blocked=blocked,
        )

    def target_matches(self, record: Record) -> bool:
        """Whether a target record is within the rule's ``[target] filter`` (True when there is none)."""
        program = self._program
        if program.target_filter is None:
            return True
        env: Env = {**record.fields, "id": record.id} if program.target_needs_id else record.fields
        try:
            return bool(program.target_filter(env))
        except ValueError:
            return False

    def _label(self, env: Env) -> str:
        label = self._program.label
        return label.render(env) if label is not None else ""


def _odd_values(enums: tuple[_Enum, ...], env: Env) -> list[tuple[_Enum, Value]]:
    """The enum fields of ``env`` holding a value their list does not have, with that value."""
    odd: list[tuple[_Enum, Value]] = []
    for enum in enums:
        value = enum.get(env)
        try:
            if validating.enum_key(value) in enum.allowed:
                continue
        except TypeError:  # a list or a table: never an enum value
            pass
        odd.append((enum, value))
    return odd


def _may_pass(test: Fn | None, env: Env, odd: list[tuple[_Enum, Value]]) -> bool:
    """Whether the source filter could let the record through: with its actual values or with any listed value
    in place of each odd one. A record it leaves out either way is no business of the rule, odd value or not."""
    if test is None:
        return True
    try:
        if test(env):
            return True
        if not all(enum.flat for enum, _ in odd):
            return True
        trial = dict(env)
        names = [enum.name for enum, _ in odd]
        combinations = itertools.product(*(enum.values for enum, _ in odd))
        for combination in itertools.islice(combinations, ENUM_TRIALS_MAX):
            trial.update(zip(names, combination, strict=True))
            if test(trial):
                return True
    except ValueError:  # the filter cannot decide: report the record
        return True
    return math.prod(len(enum.values) for enum, _ in odd) > ENUM_TRIALS_MAX


def _quoted(value: Value) -> str:
    """A value in a message: text in double quotes (so an empty or spaced one shows), others as JSON."""
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= 60 else text[:59] + "…"


def _listing(values: Sequence[Value]) -> str:
    """``S, N``; text that is empty or holds a comma is quoted."""
    return ", ".join(v if isinstance(v, str) and v and "," not in v else _quoted(v) for v in values)


def _run_checks(checks: tuple[tuple[Fn, templates.Template, str, str], ...], env: Env) -> None:
    for test, reason, where, on_fail in checks:
        try:
            passed = test(env)
        except ValueError as exc:
            raise Reject(f"{where}: {exc}", quarantine=True) from None
        if not passed:
            raise Reject(reason.render(env), quarantine=on_fail == "quarantine")


def _create_blocks(checks: tuple[tuple[Fn, templates.Template, str], ...], env: Env) -> str:
    """The reasons of every failing ``skip-create`` check, joined ("" when the record may be created)."""
    reasons: list[str] = []
    for test, reason, where in checks:
        try:
            passed = test(env)
        except ValueError as exc:
            raise Reject(f"{where}: {exc}", quarantine=True) from None
        if not passed:
            reasons.append(reason.render(env))
    return "; ".join(reasons)


def compile_rule(
    rule: RuleFile,
    *,
    source: CollectionSchema,
    target: CollectionSchema,
    lookup_schemas: Mapping[str, CollectionSchema],
    options: Mapping[str, Value],
) -> CompiledRule:
    """Check ``rule`` against the schemas and config ``options``; build its :class:`CompiledRule`.

    ``lookup_schemas`` maps each table lookup's name to the schema of its collection. Raises RuleError for
    rule problems and ConfigError for options the rule does not declare or of the wrong type.
    """
    resolved = resolve_options(rule, options)
    rule = _expand_field_maps(rule, resolved)
    spec = rule.spec
    compiler = _Compiler(rule, source, target, resolved)
    if spec.source.incremental and not source.incremental:
        raise rule.error(
            f"source.incremental: {compiler.source_name} cannot be read incrementally",
            "source",
            "incremental",
        )
    lookups = {name: _lookup_spec(rule, name, lookup_schemas) for name in spec.lookups}
    program = compiler.program(lookups)
    return CompiledRule(
        integration=rule.integration,
        entity=rule.entity,
        path=rule.path,
        description=spec.entity.description,
        after=tuple(spec.entity.after),
        source_system=spec.source.system,
        source_collection=spec.source.collection,
        incremental=spec.source.incremental,
        target_system=spec.target.system,
        target_collection=spec.target.collection,
        first_sight=tuple(spec.match.first_sight),
        first_sight_fallback=tuple(spec.match.first_sight_fallback),
        on_unmatched=spec.match.on_unmatched,
        apply_action=spec.apply.action,
        operation=spec.apply.operation or "",
        fields=tuple(spec.fields),
        updatable=frozenset(name for name, f in spec.fields.items() if f.update),
        create_only=frozenset(name for name, f in spec.fields.items() if not f.update),
        lookups=MappingProxyType(lookups),
        removal=_removal(rule, target, compiler.target_name),
        incremental_seconds=validating.parse_duration(spec.schedule.incremental),
        full_seconds=validating.parse_duration(spec.schedule.full),
        max_inactivate_share=spec.guard.max_inactivate_share,
        options=MappingProxyType(resolved),
        fingerprint=agreement.rule_digest((spec, resolved, source, target)),
        source_reads=compiler.source_reads,
        _program=program,
    )


def load_integration(
    folder: Path,
    integration: str,
    *,
    catalogs: Mapping[str, Catalog],
    options: Mapping[str, Value],
    entities: Sequence[str] | None,
) -> list[CompiledRule]:
    """Every rule of one integration, compiled and in dependency order (see :mod:`reconciler.rules.integration`)."""
    from reconciler.rules import integration as integration_mod  # that module builds on this one

    return integration_mod.load_integration(
        folder, integration, catalogs=catalogs, options=options, entities=entities
    )


def resolve_options(rule: RuleFile, given: Mapping[str, Value]) -> dict[str, Value]:
    """Declared defaults overridden by ``given``; ConfigError for unknown names or a type other than the default's."""
    declared = rule.spec.options
    resolved: dict[str, Value] = {name: option.default for name, option in declared.items()}
    for name, value in given.items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ConfigError(f"unknown option '{name}' for {rule.name}; known: {known}")
        resolved[name] = _option_value(rule, name, declared[name].default, value)
    return resolved


def _option_value(rule: RuleFile, name: str, default: Value, value: Value) -> Value:
    expected = type(default)
    if expected is float and type(value) is int:
        return float(value)
    if expected is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"option '{name}' for {rule.name} must be a table of text, got {value!r}")
        return dict(value)
    if type(value) is not expected:
        raise ConfigError(
            f"option '{name}' for {rule.name} must be {expected.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _expand_field_maps(rule: RuleFile, options: Mapping[str, Value]) -> RuleFile:
    """``rule`` with one ``[fields.X]`` per entry of each ``[field-map.OPTION]`` option (resolved values)."""
    spec = rule.spec
    if not spec.field_map:
        return rule
    fields = dict(spec.fields)
    for option, fmap in spec.field_map.items():
        table = options.get(option)
        assert isinstance(table, dict)  # checked by validating (declared table) and resolve_options (config)
        for key, value in table.items():
            name = fmap.target.replace("{key}", key).replace("{value}", value)
            if name in fields:
                raise rule.error(
                    f"field-map.{option}: entry {key!r} maps onto '{name}', which another field maps already",
                    "field-map",
                    option,
                )
            fields[name] = schema.Field(
                from_=fmap.from_.replace("{key}", key).replace("{value}", value),
                transform=fmap.transform,
                when_missing=fmap.when_missing,
                update=fmap.update,
            )
    return dataclasses.replace(rule, spec=msgspec.structs.replace(spec, fields=fields))


def _lookup_spec(rule: RuleFile, name: str, schemas: Mapping[str, CollectionSchema]) -> LookupSpec:
    lookup = rule.spec.lookups[name]
    if lookup.links is not None:
        return LookupSpec(name=name, kind="links", links_entity=lookup.links, reverse=lookup.reverse)
    assert lookup.system and lookup.collection and lookup.key and lookup.value
    schema_ = schemas.get(name)
    if schema_ is None:
        raise rule.error(
            f"lookups.{name}: no schema for {lookup.system} {lookup.collection}",
            "lookups",
            name,
            "collection",
        )
    available = schema_.fields | {"id"}
    for key in ("key", "value"):
        field_name = getattr(lookup, key)
        if field_name not in available:
            raise rule.error(
                f"lookups.{name}.{key}: unknown field '{field_name}' in {lookup.system} {lookup.collection}"
                + _hint(field_name, available),
                "lookups",
                name,
                key,
            )
    return LookupSpec(
        name=name,
        kind="table",
        system=lookup.system,
        collection=lookup.collection,
        key=lookup.key,
        value=lookup.value,
    )


def _removal(rule: RuleFile, target: CollectionSchema, target_name: str) -> schema.Removal:
    removal = rule.spec.removal
    known = target.writable or target.fields
    if removal.field is not None and known and removal.field not in known:
        raise rule.error(
            f"removal.field: '{removal.field}' is not a writable field of {target_name}"
            + _hint(removal.field, known),
            "removal",
            "field",
        )
    return removal


def _hint(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class _Compiler:
    """Resolves one rule's names against its schemas; raises RuleError at the offending key's line."""

    def __init__(
        self, rule: RuleFile, source: CollectionSchema, target: CollectionSchema, options: Mapping[str, Value]
    ) -> None:
        self.rule = rule
        self.spec = rule.spec
        self.options = options
        self.source_fields = _Names(source.fields | {"id"}, source.open_prefixes)
        self.target_fields = _Names(target.fields | target.writable | {"id"}, target.open_prefixes)
        self.writable = _Names(target.writable or target.fields, target.open_prefixes)
        self.source_name = f"{self.spec.source.system} {self.spec.source.collection}"
        self.target_name = f"{self.spec.target.system} {self.spec.target.collection}"
        self.operation_args = self._operation_args(target)
        self.needs_tables = False
        self.source_reads = self._source_reads()
        self.source_id_used = "id" not in source.fields and "id" in self.source_reads
        self.target_id_used = "id" not in target.fields

    def _operation_args(self, target: CollectionSchema) -> frozenset[str]:
        operation = self.spec.apply.operation
        if operation is None:
            return frozenset()
        if operation not in target.operations:
            known = ", ".join(sorted(target.operations)) or "none"
            raise self.fail(
                ("apply", "operation"), f"{self.target_name} has no operation '{operation}'; known: {known}"
            )
        return target.operations[operation]

    def _source_reads(self) -> tuple[str, ...]:
        """Every source name the rule's templates, field sources, enums and source expressions read."""
        names: set[str] = set()
        for _path, text, _extra in validating.templates_of(self.spec):
            names.update(templates.template_names(text))
        names.update(f.from_ for f in self.spec.fields.values() if f.from_ is not None)
        names.update(self.spec.source.enums)
        for path, text, side in validating.expressions_of(self.spec):
            if side == "source":
                names.update(self.expression(path, text).names)
        names.update([name.split(".")[0] for name in names])
        return tuple(sorted(names))

    def fail(self, path: tuple[PathPart, ...], problem: object) -> RuleError:
        return self.rule.error(f"{dotted(path)}: {problem}", *path)

    def expression(
        self, path: tuple[PathPart, ...], text: str, *, side: str = "source"
    ) -> expressions.Expression:
        source = side == "source"
        fields = self.source_fields if source else self.target_fields
        try:
            compiled = expressions.compile_expression(
                text,
                fields=fields,
                options=self.options,
                lookups=tuple(self.spec.lookups) if source else None,
            )
        except expressions.ExpressionError as exc:
            raise self.fail(path, exc) from None
        self.needs_tables = self.needs_tables or compiled.uses_lookups
        return compiled

    def template(
        self, path: tuple[PathPart, ...], text: str, extra: tuple[str, ...] = ()
    ) -> templates.Template:
        try:
            return templates.compile_template(text, fields=self.source_fields, extra=extra)
        except ValueError as exc:
            raise self.fail(path, exc) from None

    def program(self, lookups: Mapping[str, LookupSpec]) -> _Program:
        spec = self.spec
        compiled = [
            (
                self.expression(("source", "check", i, "expr"), check.expr).fn,
                self.template(("source", "check", i, "reason"), check.reason),
                f"source.check[{i}]",
                check.on_fail,
            )
            for i, check in enumerate(spec.source.check)
        ]
        checks = tuple(c for c in compiled if c[3] != "skip-create")
        create_checks = tuple(c[:3] for c in compiled if c[3] == "skip-create")
        unmatched = spec.match.unmatched_reason
        src_filter, tgt_filter = spec.source.filter, spec.target.filter
        target_filter = (
            self.expression(("target", "filter"), tgt_filter, side="target")
            if tgt_filter is not None
            else None
        )
        steps = tuple((name, self.step(name, f, lookups)) for name, f in spec.fields.items())
        return _Program(
            needs_id=self.source_id_used,
            enums=tuple(self.enum(name, values) for name, values in spec.source.enums.items()),
            filter=self.expression(("source", "filter"), src_filter).fn if src_filter is not None else None,
            checks=checks,
            create_checks=create_checks,
            steps=steps,
            needs_tables=self.needs_tables,
            may_omit=any(
                validating.when_missing(f) == "omit" or self.deferred(f) for f in spec.fields.values()
            ),
            label=self.template(("entity", "label"), spec.entity.label) if spec.entity.label else None,
            unmatched_reason=(
                self.template(("match", "unmatched-reason"), unmatched) if unmatched is not None else None
            ),
            target_filter=target_filter.fn if target_filter is not None else None,
            target_needs_id=self.target_id_used and target_filter is not None and "id" in target_filter.names,
            target_filter_reads=target_filter.names if target_filter is not None else frozenset(),
        )

    def enum(self, name: str, values: Sequence[Value]) -> _Enum:
        try:
            get = expressions.field_getter(name, self.source_fields)
        except expressions.ExpressionError as exc:
            problem = f"{exc.message} in {self.source_name}{_hint_of(exc)}"
            raise self.fail(("source", "enums", name), problem) from None
        return _Enum(
            name=name,
            get=get,
            flat=name in self.source_fields,
            values=tuple(values),
            allowed=frozenset(validating.enum_key(v) for v in values),
            listing=_listing(values),
        )

    def check_target_field(self, name: str, spec: schema.Field) -> None:
        """A mapped field must be something the apply action can use on the target.

        Updates write their fields, except a create-only field of a rule that never creates: that is only a
        natural key, which the target must have but need not let us write.
        """
        action = self.spec.apply.action
        is_key = name in self.spec.match.first_sight and name in self.target_fields
        if action == "update":
            only_a_key = is_key and not spec.update and self.spec.match.on_unmatched != "create"
            if self.writable and name not in self.writable and not only_a_key:
                raise self.fail(("fields", name), f"'{name}' is not a writable field of {self.target_name}")
            return
        if action == "delete" and not is_key:
            raise self.fail(
                ("fields", name),
                f"'{name}' is not a first-sight key; a delete rule maps only its natural key",
            )
        if action == "operation" and not is_key and name not in self.operation_args:
            takes = ", ".join(sorted(self.operation_args)) or "no arguments"
            raise self.fail(
                ("fields", name),
                f"'{name}' is neither a first-sight key nor an argument of operation "
                f"'{self.spec.apply.operation}' (it takes {takes})",
            )

    def deferred(self, spec: schema.Field) -> bool:
        """Whether the field's skip waits for the planner: a create-only field is needed only to create, and
        a rule that never creates needs its fields only where it writes (a matched record)."""
        if spec.default_if is not None and self.options.get(spec.default_if) is True:
            return False
        return validating.when_missing(spec) == "skip" and (
            self.spec.match.on_unmatched != "create" or not spec.update
        )

    def step(self, name: str, spec: schema.Field, lookups: Mapping[str, LookupSpec]) -> Step:
        self.check_target_field(name, spec)
        step = self.plain_step(name, spec, lookups)
        return fieldsteps.defer(step) if self.deferred(spec) else step

    def plain_step(self, name: str, spec: schema.Field, lookups: Mapping[str, LookupSpec]) -> Step:
        transform = transforms.TRANSFORMS[spec.transform] if spec.transform is not None else None
        if spec.value is not None and spec.lookup is None:
            constant = self.constant(name, spec, transform)
            return lambda env, tables: constant
        policy = validating.when_missing(spec)
        if spec.default_if is not None and self.options.get(spec.default_if) is True:
            policy = "default"
        return fieldsteps.build_step(
            fieldsteps.StepSpec(
                name=name,
                get=self.getter(name, spec, transform),
                source_field=spec.from_ if spec.from_ in self.source_fields else None,
                transform=None if spec.value is not None else transform,
                lookup=lookups[spec.lookup] if spec.lookup is not None else None,
                policy=policy,
                default=spec.default,
                reason=self.template(("fields", name, "reason"), spec.reason, validating.REASON_EXTRA)
                if spec.reason is not None
                else None,
            )
        )

    def getter(self, name: str, spec: schema.Field, transform: transforms.Transform | None) -> Fn:
        if spec.expr is not None:
            return self.expression(("fields", name, "expr"), spec.expr).fn
        if spec.from_ is not None:
            try:
                return expressions.field_getter(spec.from_, self.source_fields)
            except expressions.ExpressionError as exc:
                problem = f"{exc.message} in {self.source_name}{_hint_of(exc)}"
                raise self.fail(("fields", name, "from"), problem) from None
        constant = self.constant(name, spec, transform)
        return lambda env: constant

    def constant(self, name: str, spec: schema.Field, transform: transforms.Transform | None) -> Value:
        try:
            return spec.value if transform is None else transform(spec.value)
        except ValueError as exc:
            raise self.fail(("fields", name, "value"), exc) from None


class _Names(frozenset[str]):
    """A collection's field names plus its open prefixes: any name under a prefix counts as a field
    (tenant-defined attributes such as Vetro ``properties.<label>`` or COS ``metadata.<name>``)."""

    prefixes: tuple[str, ...]

    def __new__(cls, names: Collection[str], prefixes: Collection[str]) -> _Names:
        made = super().__new__(cls, names)
        made.prefixes = tuple(prefixes)
        return made

    def __contains__(self, name: object) -> bool:
        if frozenset.__contains__(self, name):
            return True
        return isinstance(name, str) and any(
            name.startswith(prefix) and len(name) > len(prefix) for prefix in self.prefixes
        )


def _hint_of(exc: expressions.ExpressionError) -> str:
    return f"; {exc.hint}" if exc.hint else ""
