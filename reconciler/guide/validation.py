"""Input validation of the guide operations: decode into the request Structs, with messages a caller can act on.

Two entry points, shared by the HTTP API and the CLI:

- :func:`decode_body` — a JSON body into a request Struct (unknown keys, wrong types and bounds are errors);
- :func:`from_query` — query-string text (``?lat=-27.59&radius=300``) into a Struct, numbers parsed from text.

msgspec enforces the constraints declared in :mod:`.models`; its messages (``Expected `float` <= 90.0 - at
`$.lat```) are rewritten for the fields people get wrong into ``lat must be a latitude between -90 and 90
degrees (got 91.0)``. Every failure is an :class:`InvalidInput` naming the field; the HTTP layer answers it
with 400 ``{"error", "field"}``, the CLI with exit code 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import msgspec

from reconciler.errors import ReconcilerError
from reconciler.guide.models import MAX_RADIUS, MIN_RADIUS

T = TypeVar("T")

__all__ = ["Conflict", "InvalidInput", "Missing", "check_point", "decode_body", "from_query", "mac_address"]

_FRIENDLY: Final = {
    "lat": "lat must be a latitude between -90 and 90 degrees",
    "lng": "lng must be a longitude between -180 and 180 degrees",
    "radius": f"radius must be between {MIN_RADIUS:g} and {MAX_RADIUS:g} metres",
    "dbm": "dbm must be an optical power between -60 and 20 dBm",
    "threshold": "threshold must be between 0 and 30 dB",
    "port": "port must be a whole number from 1 (the splitter's output port)",
    "status": 'status must be "OK" or "ERROR"',
    "codes": "codes must be a list of 1 to 1000 client codes",
}
_PATH = re.compile(r"`\$((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)`")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:\-.]?)(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")


class InvalidInput(ReconcilerError):
    """Bad input: ``field`` names the offending input (None for the body as a whole)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Missing(ReconcilerError):
    """Something the request names does not exist in OZmap (a client code, a box, a PON…): HTTP 404."""


class Conflict(ReconcilerError):
    """The request cannot be done in the current state (code taken, no feasible box…): HTTP 409."""


def _failure(
    exc: msgspec.ValidationError | msgspec.DecodeError, raw: Mapping[str, Any] | None
) -> InvalidInput:
    text = str(exc)
    found = _PATH.search(text)
    path = found.group(1) if found else ""
    top = path.lstrip(".").split(".")[0].split("[")[0] if path else None
    if text.startswith("Object contains unknown field"):
        name = text.split("`")[1] if "`" in text else None
        return InvalidInput(f"unknown field {name!r}", name)
    if text.startswith("Object missing required field"):
        name = text.split("`")[1] if "`" in text else None
        where = f"{path.lstrip('.')}." if path else ""
        return InvalidInput(f"{where}{name} is required", f"{where}{name}")
    if top in _FRIENDLY:
        got = raw.get(top) if raw is not None else None
        suffix = f" (got {_shown(got)})" if got is not None and not isinstance(got, list | dict) else ""
        return InvalidInput(_FRIENDLY[top] + suffix, top)
    field = path.lstrip(".") or None
    message = text.split(" - at ")[0]
    return InvalidInput(f"{field}: {message}" if field else message, field)


def _shown(value: Any) -> str:
    """A value as the caller wrote it: query text that is a number without quotes."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return repr(value)
        return value
    return repr(value)


def decode_body(body: bytes, cls: type[T]) -> T:
    """A JSON request body as ``cls``; an empty body counts as ``{}``."""
    try:
        raw = msgspec.json.decode(body or b"{}")
    except msgspec.DecodeError:
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(raw, dict):
        raise InvalidInput("the body must be a JSON object")
    return convert(raw, cls)


def convert(raw: Mapping[str, Any], cls: type[T], *, strict: bool = True) -> T:
    """``raw`` (decoded JSON or parsed text) as ``cls``, with the messages of this module."""
    try:
        value = msgspec.convert(dict(raw), cls, strict=strict)
    except msgspec.ValidationError as exc:
        raise _failure(exc, raw) from None
    _after(value)
    return value


def from_query(params: Mapping[str, str], cls: type[T]) -> T:
    """Query-string parameters as ``cls``: numbers and booleans (``1``/``true``) are parsed from their text."""
    return convert({name: text for name, text in params.items() if text != ""}, cls, strict=False)


def _after(value: Any) -> None:
    """Rules that span fields: a position is both coordinates or neither."""
    lat, lng = getattr(value, "lat", 0), getattr(value, "lng", 0)
    if (lat is None) != (lng is None):
        missing = "lng" if lng is None else "lat"
        raise InvalidInput(
            f"{missing} is required together with {'lat' if missing == 'lng' else 'lng'}", missing
        )
    placed = getattr(value, "splitter_id", None) or getattr(value, "box_id", None)
    if getattr(value, "port", None) is not None and hasattr(value, "splitter_id") and not placed:
        raise InvalidInput("port needs box_id or splitter_id", "port")


def check_point(lat: float, lng: float) -> None:
    """InvalidInput unless ``lat``/``lng`` are in range (for callers that hold plain numbers)."""
    if not -90 <= lat <= 90:
        raise InvalidInput(f"{_FRIENDLY['lat']} (got {lat!r})", "lat")
    if not -180 <= lng <= 180:
        raise InvalidInput(f"{_FRIENDLY['lng']} (got {lng!r})", "lng")


def mac_address(text: str) -> str:
    """A MAC address as ``AA:BB:CC:DD:EE:FF`` (``-``, ``.`` or no separator accepted); InvalidInput otherwise."""
    if not _MAC.match(text.strip()):
        raise InvalidInput(
            f"mac_address {text!r} is not a MAC address (e.g. A4:3E:51:00:11:22)", "mac_address"
        )
    digits = re.sub(r"[^0-9A-Fa-f]", "", text).upper()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
