"""The ``filter`` and ``order`` parameters of Vetro's ``features/query`` (vetro.md 2.5, 2.6).

Grammar [assume, vetro.md 2.6 / V3]::

    expr   := clause (" AND " clause)*
    clause := name op value
    op     := "=" | "!=" | ">" | ">=" | "<" | "<="
    name   := a bare word | a double-quoted attribute label | the reserved last_edited_time
    value  := a double-quoted string | a number

Inside quotes ``\\"`` and ``\\\\`` escape a quote and a backslash (a fake-side convenience; public clients only
send plain labels and values). ``last_edited_time`` compares as an instant (any RFC 3339 offset); attributes
compare as numbers when both sides are numbers, as text otherwise. A null or missing attribute matches only
``!=``. ``order=<name>:<asc|desc>`` sorts by an attribute, ``feature_id``, ``created_time`` or
``last_edited_time`` (nulls last), ties by ``feature_id`` ascending.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

OPS = ("!=", ">=", "<=", "=", ">", "<")
TIME_FIELDS = frozenset({"last_edited_time", "created_time"})
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)

Feature = dict[str, Any]


class FilterError(ValueError):
    """A ``filter`` or ``order`` the fake cannot read (answered 400)."""


class Clause(NamedTuple):
    name: str
    op: str
    value: str | float
    reserved: bool


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp (``Z`` or an offset) as an aware UTC datetime; ValueError when unreadable."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return moment.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    """Vetro's timestamp form [assume, V5]: RFC 3339 UTC, millisecond precision, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def canonical(text: str) -> str:
    """A timestamp rewritten in :func:`format_instant` form (so strings sort as instants)."""
    return format_instant(parse_instant(text))


def _quoted(text: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise FilterError("unterminated quoted string")


def _clause(text: str) -> Clause:
    text = text.strip()
    if text.startswith('"'):
        name, pos = _quoted(text, 0)
        reserved = False
    else:
        match = _BARE.match(text)
        if match is None:
            raise FilterError(f"expected an attribute name at {text[:20]!r}")
        name, pos = match.group(), match.end()
        reserved = name in TIME_FIELDS
    rest = text[pos:].lstrip()
    op = next((o for o in OPS if rest.startswith(o)), None)
    if op is None:
        raise FilterError(f"expected one of {' '.join(OPS)} after {name!r}")
    rest = rest[len(op) :].lstrip()
    value: str | float
    if rest.startswith('"'):
        value, end = _quoted(rest, 0)
    else:
        number = _NUMBER.match(rest)
        if number is None:
            raise FilterError(f"expected a quoted string or a number after {name}{op}")
        value, end = float(number.group()), number.end()
    if rest[end:].strip():
        raise FilterError(f"unexpected text {rest[end:].strip()[:20]!r}")
    if reserved:
        if not isinstance(value, str):
            raise FilterError(f"{name} takes a quoted timestamp")
        try:
            value = canonical(value)
        except ValueError:
            raise FilterError(f"{name}: unreadable timestamp {value!r}") from None
    return Clause(name, op, value, reserved)


def _split(text: str) -> list[str]:
    """Split on `` AND `` outside quotes."""
    parts: list[str] = []
    start, i, quoted = 0, 0, False
    while i < len(text):
        char = text[i]
        if char == "\\" and quoted:
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted:
            match = _AND.match(text, i)
            if match is not None and i > start:
                parts.append(text[start:i])
                start = i = match.end()
                continue
        i += 1
    parts.append(text[start:])
    return parts


def parse_filter(text: str) -> list[Clause]:
    """The clauses of a ``filter`` expression; FilterError when malformed."""
    if not text.strip():
        return []
    return [_clause(part) for part in _split(text)]


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    return bool(left <= right)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def matches(feature: Feature, clauses: list[Clause]) -> bool:
    """True when ``feature`` satisfies every clause."""
    for clause in clauses:
        if clause.reserved:
            actual = feature["x-vetro"].get(clause.name)
        else:
            actual = feature["properties"].get(clause.name)
        if actual is None:
            if clause.op != "!=":
                return False
            continue
        wanted = clause.value
        if clause.reserved:
            ok = _compare(actual, clause.op, wanted)
        else:
            left, right = _number(actual), _number(wanted)
            if left is not None and right is not None:
                ok = _compare(left, clause.op, right)
            else:
                ok = _compare(_text(actual), clause.op, _text(wanted))
        if not ok:
            return False
    return True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_order(text: str | None) -> tuple[str, bool] | None:
    """``"<name>:<asc|desc>"`` → (name, descending); None when absent."""
    if not text:
        return None
    name, _, direction = text.rpartition(":")
    if not name:
        name, direction = text, "asc"
    if direction.lower() not in ("asc", "desc"):
        raise FilterError(f"order direction must be asc or desc, not {direction!r}")
    if name.startswith('"') and name.endswith('"') and len(name) >= 2:
        name = name[1:-1]
    return name, direction.lower() == "desc"


def sort_key(name: str) -> Callable[[Feature], Any]:
    """The key sorting features by ``name`` (x-vetro fields or an attribute); it answers None for a null."""
    if name in TIME_FIELDS or name == "feature_id":

        def meta(feature: Feature) -> Any:
            return feature["x-vetro"].get(name)

        return meta

    def attribute(feature: Feature) -> Any:
        value = feature["properties"].get(name)
        if value is None:
            return None
        number = _number(value)
        return (0, number, "") if number is not None else (1, 0.0, _text(value))

    return attribute


def ordered(features: list[Feature], order: tuple[str, bool] | None) -> list[Feature]:
    """``features`` (already in ``feature_id`` order) sorted per ``order``: nulls last, ties stay in place."""
    if order is None:
        return features
    name, descending = order
    key = sort_key(name)
    keyed = [(key(f), f) for f in features]
    present = [pair for pair in keyed if pair[0] is not None]
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [f for _, f in present] + [f for k, f in keyed if k is None]
