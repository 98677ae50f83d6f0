"""The arithmetic and the plain functions of the rule expression language (``len``, ``coalesce``, ``int``…).

Two build values from others: ``case(x, k1, v1, k2, v2, …[, default])`` translates a code (``'InDeployment'`` →
``'In deployment'``: the ``v`` of the first ``k`` equal to ``x``, else the default or null) and
``format(template, a, b, …)`` fills a template's ``{}`` / ``{0}`` placeholders in order or by position (a URL
built from a record's ids; any null argument makes the result null, so a missing id never yields a broken URL).

Each is a pure function over values; bad input raises :class:`ValueError`, which the compiled rule turns into a
quarantine reason. ``option``, ``iff`` and ``lookup`` are not here: the expression compiler handles them itself
(they are folded at compile time, evaluated lazily, or read the lookup tables).
"""

from __future__ import annotations

import operator
import string
from collections.abc import Callable
from typing import Any

from reconciler.rules import transforms


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _arithmetic(symbol: str, op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        if _is_number(a) and _is_number(b):
            if symbol == "/" and b == 0:
                raise ValueError(f"division by zero: {a!r} / {b!r}")
            return op(a, b)
        if symbol == "+" and isinstance(a, str) and isinstance(b, str):
            return a + b
        raise ValueError(f"cannot apply '{symbol}' to {a!r} and {b!r}")

    return apply


ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": _arithmetic("+", operator.add),
    "-": _arithmetic("-", operator.sub),
    "*": _arithmetic("*", operator.mul),
    "/": _arithmetic("/", operator.truediv),
}


def negate(value: Any) -> Any:
    if value is None:
        return None
    if _is_number(value):
        return -value
    raise ValueError(f"cannot negate {value!r}")


def _text_function(name: str, op: Callable[[str], str]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return op(value)
        raise ValueError(f"{name}() needs text, got {value!r}")

    return apply


def _len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str | list | dict):
        return len(value)
    raise ValueError(f"len() needs text or a list, got {value!r}")


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _round(value: Any, digits: Any = None) -> Any:
    if value is None:
        return None
    whole = digits is None or (isinstance(digits, int) and not isinstance(digits, bool))
    if not _is_number(value) or not whole:
        raise ValueError(f"round() needs a number and whole digits, got {value!r}, {digits!r}")
    return round(value, digits)


def _case(value: Any, *pairs: Any) -> Any:
    for index in range(0, len(pairs) - 1, 2):
        if pairs[index] == value and isinstance(pairs[index], bool) == isinstance(value, bool):
            return pairs[index + 1]
    return pairs[-1] if len(pairs) % 2 else None


def _format(template: Any, *args: Any) -> Any:
    if template is None or any(a is None for a in args):
        return None
    if not isinstance(template, str):
        raise ValueError(f"format() needs a text template, got {template!r}")
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"format(): bad template {template!r}: {exc}") from None
    for _literal, name, spec, conversion in pieces:
        if name is not None and (spec or conversion or not (name == "" or name.isdigit())):
            raise ValueError(f"format(): only {{}} and {{0}} placeholders are allowed, not {{{name}}}")
    try:
        return template.format(*(transforms.to_str(a) for a in args))
    except (IndexError, ValueError) as exc:
        raise ValueError(f"format(): {template!r} with {len(args)} argument(s): {exc}") from None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "lower": _text_function("lower", str.lower),
    "upper": _text_function("upper", str.upper),
    "trim": _text_function("trim", str.strip),
    "present": _present,
    "coalesce": _coalesce,
    "str": transforms.to_str,
    "int": transforms.to_int,
    "float": transforms.to_float,
    "round": _round,
    "case": _case,
    "format": _format,
}
