"""Scalar primitives of the OZmap sandbox: API errors, dotted paths, value keys, numbers and timestamps.

Owns the fake's notion of equality (Mongoose-like casting: ``"1"`` equals ``1``, ``"true"`` equals ``true``,
``null`` equals a missing field) through :func:`value_key`/:func:`eq_targets`, shared by the filter engine and
the store's hash indexes so both always agree, and the API's timestamp spelling (ISO-8601 UTC, ms, ``Z``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

Record = dict[str, Any]
Getter = Callable[[Record], Any]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class ApiError(Exception):
    """An answer the fake gives instead of a result: HTTP ``status`` with body ``{"message": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""Value of a path absent from a record (distinct from an explicit ``null``)."""
NULL_KEY: Final = ("z", None)
MISSING_KEY: Final = ("m", None)
_TRUE_KEY: Final = ("b", True)
_FALSE_KEY: Final = ("b", False)


# -- paths and value keys ------------------------------------------------------------------------------------


def make_getter(path: str) -> Getter:
    """Compile a dotted path into a getter; crossing arrays yields the list of values found (Mongo style)."""
    if "." not in path:
        return lambda record: record.get(path, MISSING)
    parts = tuple(path.split("."))

    def get(record: Record) -> Any:
        found: list[Any] = []
        crossed = _walk(record, parts, 0, found)
        if not found:
            return MISSING
        return found if crossed else found[0]

    return get


def _walk(current: Any, parts: tuple[str, ...], i: int, out: list[Any]) -> bool:
    """Collect the values at ``parts[i:]`` below ``current``; returns True when an array was crossed."""
    if i == len(parts):
        out.append(current)
        return False
    part = parts[i]
    if isinstance(current, dict):
        if part in current:
            return _walk(current[part], parts, i + 1, out)
        return False
    if isinstance(current, list):
        if part.isdigit():
            index = int(part)
            return index < len(current) and _walk(current[index], parts, i + 1, out)
        for element in current:
            _walk(element, parts, i, out)
        return True
    return False


def value_key(value: Any) -> Hashable | None:
    """Hashable key of a scalar such that equal keys ⇔ equal values in the fake's equality (None: not scalar)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return _TRUE_KEY if value else _FALSE_KEY
    if kind is int or kind is float:
        return ("n", float(value))
    if value is None:
        return NULL_KEY
    if value is MISSING:
        return MISSING_KEY
    return None


def index_keys(value: Any) -> list[Hashable]:
    """Keys under which a record holding ``value`` at an indexed path is found (array elements one by one)."""
    if type(value) is list:
        keys = [value_key(element) for element in value]
        return [key for key in keys if key is not None]
    key = value_key(value)
    return [] if key is None else [key]


def as_number(text: str) -> float | None:
    stripped = text.strip()
    if not stripped or stripped.lower() in ("nan", "inf", "-inf", "infinity", "-infinity", "+inf"):
        return None
    try:
        return float(stripped)
    except ValueError:
        return None


def eq_targets(operand: Any, *, date: bool = False) -> set[Hashable] | None:
    """The value keys an operand of ``=`` matches, with Mongoose-like casting; None for object/array operands."""
    if operand is None:
        return {NULL_KEY, MISSING_KEY}
    kind = type(operand)
    if kind is bool:
        return {_TRUE_KEY if operand else _FALSE_KEY, "true" if operand else "false"}
    if kind is int or kind is float:
        number = float(operand)
        targets: set[Hashable] = {("n", number), repr(operand)}
        if number.is_integer():
            targets.add(str(int(number)))
        if date:
            targets.add(date_text(operand))
        return targets
    if kind is str:
        targets = {operand}
        if date:
            targets.add(date_text(operand))
        number_or_none = as_number(operand)
        if number_or_none is not None:
            targets.add(("n", number_or_none))
        if operand in ("true", "false"):
            targets.add(_TRUE_KEY if operand == "true" else _FALSE_KEY)
        return targets
    return None


def is_date_path(path: str) -> bool:
    last = path.rsplit(".", 1)[-1]
    return last.endswith("At") or last.endswith("_date") or last == "date"


def format_ms(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds and ``Z`` (the API's timestamp spelling)."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def parse_ms(text: str) -> int:
    """Epoch milliseconds of an ISO-8601 text (naive means UTC); ValueError when not a date."""
    moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def date_text(operand: Any) -> str:
    """Canonical ISO-ms-Z spelling of a date operand (ISO text of any precision/offset, or epoch ms)."""
    if isinstance(operand, bool):
        raise bad_request(f"invalid date {operand!r}")
    if isinstance(operand, int | float):
        return format_ms(int(operand))
    if isinstance(operand, str):
        if len(operand) == 24 and operand[-1] == "Z" and operand[10] == "T":
            return operand
        try:
            return format_ms(parse_ms(operand))
        except ValueError:
            raise bad_request(f"invalid date {operand!r}") from None
    raise bad_request(f"invalid date {operand!r}")
