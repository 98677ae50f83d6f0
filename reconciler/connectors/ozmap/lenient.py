"""A list page whose rows do not all fit their view: decode it row by row and salvage the rows that do not.

The fast path decodes a whole page with one typed decoder (:mod:`.views`). One row with a wrongly typed field
(a box ``lat`` sent as the text ``"-27,59"``) fails that whole decode; :func:`decode_page` then decodes the
envelope with its rows left raw, and each row on its own. A row that still fails is *salvaged*: each offending
top-level field is dropped, one at a time, so it takes the view's default, until the row decodes. Its id is
reported in ``problems`` with what was wrong, in words (``field lat: expected a number, got "-27,59"``), and the
connector attaches that to the row's :class:`~reconciler.model.Record` (``problem``), which every rule
quarantines. A row whose id itself cannot be read cannot be tracked: that stays an error of the whole page.

Nothing here is specific to OZmap but the envelope (:class:`~.views.Page`).
"""

from __future__ import annotations

import re
import typing
from typing import Any, TypeVar

import msgspec

from reconciler.connectors.ozmap import views

T = TypeVar("T")

_RAW_PAGE = msgspec.json.Decoder(views.Page[msgspec.Raw])
_ITEM_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}
_AT = re.compile(r"(?P<message>.*) - at `\$(?P<path>[^`]*)`", re.DOTALL)
_EXPECTED = re.compile(r"Expected `(?P<types>[^`]+)`(?P<limit>[^,]*), got `(?P<got>[^`]+)`")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_WORDS = {
    "float": "a number",
    "int": "a whole number",
    "str": "text",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
}
_SHOW_MAX = 40


def decode_page(
    body: bytes, decoder: msgspec.json.Decoder[views.Page[T]], problems: dict[str, str], what: str
) -> views.Page[T]:
    """``body`` decoded with ``decoder``, or row by row when the whole page does not fit.

    Each salvaged row's id → ``"<what>/<id> has bad data: <problem>"`` is added to ``problems``. Raises
    ``msgspec.ValidationError`` when the envelope is wrong or a row's id is unreadable, ``msgspec.DecodeError``
    when the body is not JSON.
    """
    try:
        return decoder.decode(body)
    except msgspec.ValidationError:
        pass
    envelope = _RAW_PAGE.decode(body)
    item = _item_decoder(decoder)
    rows: list[T] = []
    for n, raw in enumerate(envelope.rows):
        try:
            rows.append(item.decode(raw))
            continue
        except msgspec.ValidationError as exc:
            error = exc
        try:
            row, row_id, found = salvage(raw, item, error)
        except msgspec.ValidationError as exc:
            raise msgspec.ValidationError(f"{exc} (row {n})") from exc
        rows.append(row)
        problems[row_id] = f"{what}/{row_id} has bad data: {'; '.join(found)}"
    return views.Page(total=envelope.total, rows=rows)


def salvage(
    raw: msgspec.Raw | bytes, item: msgspec.json.Decoder[T], error: msgspec.ValidationError
) -> tuple[T, str, list[str]]:
    """``(row, id, problems)``: ``raw`` decoded with its offending top-level fields left out (so they take the
    view's defaults), its ``id`` and what was wrong with each field left out.

    Re-raises ``error`` (or the next one) when the row is not an object or its id (or another required field) is
    bad: such a row cannot be tracked.
    """
    obj = msgspec.json.decode(raw)
    if not isinstance(obj, dict):
        raise error
    found: list[str] = []
    while True:
        key, problem = describe(str(error), obj)
        if key is None or key not in obj or key == "id":
            raise error
        found.append(problem)
        del obj[key]
        try:
            return item.decode(msgspec.json.encode(obj)), str(obj.get("id")), found
        except msgspec.ValidationError as exc:
            error = exc


def describe(message: str, obj: Any) -> tuple[str | None, str]:
    """``(top-level key, words)`` of a msgspec validation message about ``obj``.

    ``Expected `float | null`, got `str` - at `$.lat``` → ``("lat", 'field lat: expected a number, got "-27,59"')``.
    The key is None when the message names no field (the row itself is wrong).
    """
    at = _AT.fullmatch(message)
    if at is None:
        return None, _plain(message)
    parts = [int(index) if index else name for name, index in _PATH_PART.findall(at.group("path"))]
    if not parts or not isinstance(parts[0], str):
        return None, _plain(message)
    field = at.group("path").lstrip(".")
    expected = _EXPECTED.fullmatch(at.group("message"))
    if expected is None:
        return parts[0], f"field {field}: {_plain(at.group('message'))}"
    types = [t for t in expected.group("types").split(" | ") if t != "null"]
    wanted = " or ".join(dict.fromkeys(_WORDS.get(t, t) for t in types)) or "null"
    found = _value_at(obj, parts)
    got = _show(found) if found is not _MISSING else _WORDS.get(expected.group("got"), expected.group("got"))
    return parts[0], f"field {field}: expected {wanted}{expected.group('limit')}, got {got}"


_MISSING = object()


def _value_at(obj: Any, parts: list[str | int]) -> Any:
    for part in parts:
        try:
            obj = obj[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return obj


def _show(value: Any) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 1] + "…"


def _plain(message: str) -> str:
    text = message.replace("`", "")
    return text[:1].lower() + text[1:]


def _item_decoder(decoder: msgspec.json.Decoder[views.Page[T]]) -> msgspec.json.Decoder[T]:
    """The decoder of one row of the pages ``decoder`` reads (built once per view)."""
    page_type = decoder.type
    found = _ITEM_DECODERS.get(page_type)
    if found is None:
        (row_type,) = typing.get_args(page_type)
        found = _ITEM_DECODERS[page_type] = msgspec.json.Decoder(row_type)
    return found
