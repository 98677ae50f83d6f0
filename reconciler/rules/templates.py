"""Message templates: a record's label and the reasons given for skipped or quarantined records.

``"OLT {olt_ip} not found in IXC"`` names source fields in braces (``{{`` and ``}}`` are literal braces). The
loader checks the syntax (:func:`template_names`); the compiler resolves the names against the source schema
(:func:`compile_template`) so rendering a label per record is one join over precomputed getters. Values render
as text, null as ``null`` and booleans as ``true``/``false``, so a reason never hides that a value was missing.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import Value
from reconciler.rules.expressions import Env, field_getter

_NO_EXTRA: Mapping[str, Value] = {}


def template_names(text: str) -> tuple[str, ...]:
    """The field names a template uses; raises ValueError on bad syntax (``{0}``, ``{x!r}``, ``{x:>5}``, ``{``)."""
    names: list[str] = []
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"bad template: {exc}") from None
    for _literal, name, spec, conversion in pieces:
        if name is None:
            continue
        if not name or name.isdigit() or spec or conversion:
            raise ValueError("bad template: only {field} placeholders are allowed (no {0}, {x!r} or {x:>5})")
        names.append(name)
    return tuple(names)


def render_value(value: Value) -> str:
    """A value as it appears in a message."""
    if type(value) is str:
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template: ``render(env, extra)``; ``extra`` supplies names like ``value`` and ``field``."""

    text: str
    format: str
    """``text`` with every placeholder turned positional (``"OLT {} not found"``)."""
    getters: tuple[Callable[[Env, Mapping[str, Value]], Any], ...]

    def render(self, env: Env, extra: Mapping[str, Value] = _NO_EXTRA) -> str:
        return self.format.format(
            *[v if type(v := get(env, extra)) is str else render_value(v) for get in self.getters]
        )


def compile_template(text: str, *, fields: Collection[str], extra: Collection[str] = ()) -> Template:
    """Resolve a template's names: ``extra`` names first, then fields (raises ExpressionError if unknown)."""
    template_names(text)
    parts: list[str] = []
    getters: list[Callable[[Env, Mapping[str, Value]], Any]] = []
    for literal, name, _spec, _conversion in string.Formatter().parse(text):
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is not None:
            parts.append("{}")
            getters.append(_getter(name, fields, extra))
    return Template(text, "".join(parts), tuple(getters))


def _getter(
    name: str, fields: Collection[str], extra: Collection[str]
) -> Callable[[Env, Mapping[str, Value]], Any]:
    if name in extra:
        return lambda env, more: more.get(name)
    if name in fields:
        return lambda env, more: env.get(name)
    getter = field_getter(name, fields)
    return lambda env, more: getter(env)
