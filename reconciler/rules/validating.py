"""Static checks of a decoded rule file: what can be wrong without knowing any system's schema.

Run by :func:`reconciler.rules.loading.load_rule_file` right after decoding. Every failure is a ``RuleError`` at
the line of the offending key. :func:`expressions_of` and :func:`templates_of` list where a rule holds
expressions and templates, so the compiler walks exactly the same places when it resolves their names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from reconciler.rules import schema, syntax, templates, transforms
from reconciler.rules.locating import PathPart, dotted

if TYPE_CHECKING:
    from reconciler.rules.loading import RuleFile

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (86400, 3600, 60, 1)
#: Names a field's ``reason`` template may use besides source fields.
REASON_EXTRA = ("value", "field")


def parse_duration(text: str) -> int:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"1d"`` → seconds; ValueError when malformed or zero."""
    match = _DURATION.fullmatch(text.strip())
    seconds = sum(int(n) * unit for n, unit in zip(match.groups(), _UNITS, strict=True) if n) if match else 0
    if seconds <= 0:
        raise ValueError(f"bad duration '{text}' (use e.g. 90s, 5m, 1h30m, 1d)")
    return seconds


def when_missing(field: schema.Field) -> schema.WhenMissing:
    """The effective when-missing policy of a field (see :mod:`reconciler.rules.schema` for the defaults)."""
    if field.when_missing is not None:
        return field.when_missing
    if field.lookup is not None:
        return "skip"
    if field.default is not None and field.default_if is None:
        return "default"
    return "null"


def expressions_of(spec: schema.Rule) -> Iterator[tuple[tuple[PathPart, ...], str, str]]:
    """``(path, text, side)`` of every expression; ``side`` is ``"source"`` or ``"target"``."""
    if spec.source.filter is not None:
        yield ("source", "filter"), spec.source.filter, "source"
    for i, check in enumerate(spec.source.check):
        yield ("source", "check", i, "expr"), check.expr, "source"
    if spec.target.filter is not None:
        yield ("target", "filter"), spec.target.filter, "target"
    for name, field in spec.fields.items():
        if field.expr is not None:
            yield ("fields", name, "expr"), field.expr, "source"


def templates_of(spec: schema.Rule) -> Iterator[tuple[tuple[PathPart, ...], str, tuple[str, ...]]]:
    """``(path, text, extra names)`` of every template (all over source fields)."""
    if spec.entity.label:
        yield ("entity", "label"), spec.entity.label, ()
    for i, check in enumerate(spec.source.check):
        yield ("source", "check", i, "reason"), check.reason, ()
    for name, field in spec.fields.items():
        if field.reason is not None:
            yield ("fields", name, "reason"), field.reason, REASON_EXTRA
    if spec.match.unmatched_reason is not None:
        yield ("match", "unmatched-reason"), spec.match.unmatched_reason, ()


def check(rule: RuleFile) -> None:
    """Raise the first static problem of ``rule`` as a RuleError."""
    spec = rule.spec
    if rule.entity in spec.entity.after:
        raise rule.error(f"entity.after: {rule.entity} cannot run after itself", "entity", "after")
    if not spec.fields:
        raise rule.error("fields: no field is mapped; add a [fields.NAME] table", "fields")
    _check_syntax(rule)
    for name, lookup in spec.lookups.items():
        _check_lookup(rule, name, lookup)
    for name, field in spec.fields.items():
        _check_field(rule, name, field)
    for option, fmap in spec.field_map.items():
        _check_field_map(rule, option, fmap)
    _check_match(rule)
    _check_enums(rule)
    _check_checks(rule)
    _check_apply(rule)
    _check_removal(rule)
    for key in ("incremental", "full"):
        try:
            parse_duration(getattr(spec.schedule, key))
        except ValueError as exc:
            raise rule.error(f"schedule.{key}: {exc}", "schedule", key) from None


def _check_syntax(rule: RuleFile) -> None:
    for path, text, _side in expressions_of(rule.spec):
        try:
            syntax.parse(text)
        except syntax.ExpressionError as exc:
            raise rule.error(f"{dotted(path)}: {exc}", *path) from None
    for path, text, _extra in templates_of(rule.spec):
        try:
            templates.template_names(text)
        except ValueError as exc:
            raise rule.error(f"{dotted(path)}: {exc}", *path) from None


def _check_lookup(rule: RuleFile, name: str, lookup: schema.Lookup) -> None:
    table = (lookup.system, lookup.collection, lookup.key, lookup.value)
    is_table = all(part is not None for part in table) and lookup.links is None and not lookup.reverse
    is_links = lookup.links is not None and all(part is None for part in table)
    if not (is_table or is_links):
        raise rule.error(
            f"lookups.{name}: give either system, collection, key and value (a table lookup) "
            "or links (another entity's links, optionally with reverse)",
            "lookups",
            name,
        )


def _check_field(rule: RuleFile, name: str, field: schema.Field) -> None:
    spec = rule.spec
    where = f"fields.{name}"
    given = [
        key
        for key, v in (("from", field.from_), ("value", field.value), ("expr", field.expr))
        if v is not None
    ]
    if len(given) != 1:
        found = f" (found {' and '.join(given)})" if given else ""
        raise rule.error(f"{where}: give exactly one of from, value or expr{found}", "fields", name)
    if field.transform is not None and field.transform not in transforms.TRANSFORMS:
        known = ", ".join(sorted(transforms.TRANSFORMS))
        raise rule.error(
            f"{where}.transform: unknown transform '{field.transform}'; known: {known}",
            "fields",
            name,
            "transform",
        )
    if field.lookup is not None and field.lookup not in spec.lookups:
        declared = ", ".join(sorted(spec.lookups)) or "none"
        raise rule.error(
            f"{where}.lookup: unknown lookup '{field.lookup}'; declared: {declared}", "fields", name, "lookup"
        )
    _check_default(rule, name, field)


def _check_default(rule: RuleFile, name: str, field: schema.Field) -> None:
    where = f"fields.{name}"
    if field.default_if is not None:
        option = rule.spec.options.get(field.default_if)
        if option is None:
            declared = ", ".join(sorted(rule.spec.options)) or "none"
            raise rule.error(
                f"{where}.default-if: unknown option '{field.default_if}'; declared: {declared}",
                "fields",
                name,
                "default-if",
            )
        if not isinstance(option.default, bool):
            raise rule.error(
                f"{where}.default-if: option '{field.default_if}' is not a boolean",
                "fields",
                name,
                "default-if",
            )
    needs_default = field.default_if is not None or field.when_missing == "default"
    if needs_default and field.default is None:
        raise rule.error(f'{where}: default-if and when-missing = "default" need a default', "fields", name)
    if field.default is not None and not needs_default and field.when_missing is not None:
        raise rule.error(
            f'{where}.default: never used; set when-missing = "default" or default-if',
            "fields",
            name,
            "default",
        )


def _check_match(rule: RuleFile) -> None:
    match = rule.spec.match
    for where, keys in (
        ("first-sight", match.first_sight),
        ("first-sight-fallback", match.first_sight_fallback),
    ):
        for key in keys:
            if key not in rule.spec.fields:
                mapped = ", ".join(rule.spec.fields)
                raise rule.error(
                    f"match.{where}: '{key}' is not a mapped field; mapped: {mapped}", "match", where
                )
    if match.first_sight_fallback and not match.first_sight:
        raise rule.error(
            "match.first-sight-fallback: a fallback needs a first-sight key to fall back from",
            "match",
            "first-sight-fallback",
        )


def enum_key(value: object) -> object:
    """How an enum value is compared: exactly, except that numbers compare by value (``1`` is ``1.0``) and a
    boolean is never a number (``true`` is not ``1``)."""
    return ("bool", value) if type(value) is bool else value


def _check_enums(rule: RuleFile) -> None:
    for name, values in rule.spec.source.enums.items():
        where: tuple[PathPart, ...] = ("source", "enums", name)
        if not values:
            raise rule.error(f"{dotted(where)}: list at least one value", *where)
        seen: set[object] = set()
        for value in values:
            if enum_key(value) in seen:
                raise rule.error(f"{dotted(where)}: {value!r} is listed twice", *where)
            seen.add(enum_key(value))


def _check_checks(rule: RuleFile) -> None:
    for i, check in enumerate(rule.spec.source.check):
        if check.on_fail == "skip-create" and rule.spec.match.on_unmatched != "create":
            raise rule.error(
                f'source.check[{i}].on-fail: "skip-create" gates creation, but this rule never creates '
                '(on-unmatched is not "create"); use "skip"',
                "source",
                "check",
                i,
                "on-fail",
            )


def _check_field_map(rule: RuleFile, option: str, fmap: schema.FieldMap) -> None:
    where = f"field-map.{option}"
    declared = rule.spec.options.get(option)
    if declared is None:
        known = ", ".join(sorted(rule.spec.options)) or "none"
        raise rule.error(f"{where}: unknown option '{option}'; declared: {known}", "field-map", option)
    if not isinstance(declared.default, dict):
        raise rule.error(
            f"{where}: option '{option}' is not a table (its default must be a table of text)",
            "field-map",
            option,
        )
    for key, text in (("target", fmap.target), ("from", fmap.from_)):
        try:
            names = set(templates.template_names(text))
        except ValueError as exc:
            raise rule.error(f"{where}.{key}: {exc}", "field-map", option, key) from None
        if not names <= {"key", "value"} or (key == "target" and not names):
            raise rule.error(
                f"{where}.{key}: use the placeholders {{key}} and {{value}} (the option's entries)"
                + (", at least one" if key == "target" else ""),
                "field-map",
                option,
                key,
            )
    if fmap.transform is not None and fmap.transform not in transforms.TRANSFORMS:
        known = ", ".join(sorted(transforms.TRANSFORMS))
        raise rule.error(
            f"{where}.transform: unknown transform '{fmap.transform}'; known: {known}",
            "field-map",
            option,
            "transform",
        )
    if fmap.when_missing in ("skip", "quarantine", "default"):
        raise rule.error(
            f'{where}.when-missing: a mapped field takes "null" or "omit"',
            "field-map",
            option,
            "when-missing",
        )


def _check_apply(rule: RuleFile) -> None:
    match, apply = rule.spec.match, rule.spec.apply
    if match.unmatched_reason is not None and match.on_unmatched != "skip":
        raise rule.error(
            'match.unmatched-reason: only used with on-unmatched = "skip"', "match", "unmatched-reason"
        )
    if (apply.action == "operation") != (apply.operation is not None):
        raise rule.error('apply: action = "operation" and operation = "NAME" go together', "apply")
    if apply.action != "update":
        if match.on_unmatched == "create":
            raise rule.error(
                f'match.on-unmatched: a rule whose apply action is "{apply.action}" cannot create; '
                'set on-unmatched = "skip" or "ignore"',
                "match",
            )
        if not match.first_sight:
            raise rule.error(
                f'match.first-sight: a rule whose apply action is "{apply.action}" needs a natural key',
                "match",
            )


def _check_removal(rule: RuleFile) -> None:
    removal = rule.spec.removal
    missing = [key for key, v in (("field", removal.field), ("value", removal.value)) if v is None]
    if removal.action == "inactivate" and missing:
        raise rule.error(f'removal: action "inactivate" needs {" and ".join(missing)}', "removal")
    if removal.action != "inactivate" and len(missing) < 2:
        raise rule.error('removal: field and value apply only to action "inactivate"', "removal")
