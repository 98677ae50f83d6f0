"""Decoding IXC webservice answers, in the order ixc.md 5.4 prescribes.

1. HTTP status ≥ 300 — mapped by the transport before these functions run.
2. A body starting with ``<`` is IXC's HTML "processing failure" page (or a proxy page): Transient, with the
   tag-stripped text as the message.
3. Invalid/truncated JSON: Transient (malformed).
4. JSON ``type == "error"``: Terminal, with the message minus its ``<br />`` tails. ``message`` is never parsed
   (it is localised): the type decides.
5. A list answer: ``total`` as a string or a number; ``registros`` absent means an empty page.
6. A write answer: ``type == "success"`` with the new id (string or number).

Rows are decoded straight into ``dict[str, str]`` (IXC sends every value as a string). When a row carries a rare
non-string value, msgspec refuses the strict shape and the page is decoded again leniently and coerced to
strings, so the common case pays nothing for the rare one.

A listing that names the ``columns`` it needs is decoded into a struct of those columns only: msgspec skips the
others without building their strings (a ``radusuarios`` row has ~40 columns; a full cycle reads ~7), about a
third of the time of the whole row. A missing column stays missing, as in the whole row; a non-string value in
a wanted column takes the lenient path as above, and one in another column is never looked at.
"""

from __future__ import annotations

import functools
import keyword
import re
from collections.abc import Callable
from typing import Any

import msgspec

from reconciler import errors
from reconciler.connectors.http import Response

#: (error class, message) → the error to raise; the client binds method, path and credential scrubbing.
MakeError = Callable[[type[errors.RemoteError], str, bytes | str], errors.RemoteError]

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


class _Strict(msgspec.Struct):
    total: int | str | None = None
    registros: list[dict[str, str]] = []
    type: str | None = None
    message: str | None = None


class _Lenient(msgspec.Struct):
    total: int | str | None = None
    registros: list[dict[str, Any]] = []
    type: str | None = None
    message: str | None = None


class WriteAnswer(msgspec.Struct):
    type: str | None = None
    message: str | None = None
    id: str | int | None = None


_STRICT = msgspec.json.Decoder(_Strict)
_LENIENT = msgspec.json.Decoder(_Lenient)
_WRITE = msgspec.json.Decoder(WriteAnswer)


class ListPage(msgspec.Struct, frozen=True, gc=False):
    """One decoded list page: the announced total and the rows (every value a string)."""

    total: int
    rows: list[dict[str, str]]


def to_text(value: Any) -> str:
    """An IXC value as the string IXC would have sent: None → ``""``, numbers as written."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "S" if value else "N"
    if isinstance(value, float):
        text = repr(value)
        return format(value, ".10f").rstrip("0").rstrip(".") if "e" in text or "E" in text else text
    if isinstance(value, int):
        return str(value)
    return msgspec.json.encode(value).decode()


def error_message(message: str | None) -> str:
    """An IXC ``type=error`` message without its HTML line breaks."""
    return " ".join(_BR.sub(" ", message or "").split()) or "(no message)"


def decode_list(response: Response, fail: MakeError, columns: tuple[str, ...] | None = None) -> ListPage:
    """A list answer (see the module docstring for the order of checks); with ``columns``, rows hold only those."""
    body = response.body
    if body.lstrip()[:1] == b"<":
        raise fail(errors.TransientRemoteError, "HTML error page", body)
    projected = _projected(columns) if columns is not None else None
    try:
        answer: Any = (projected or _STRICT).decode(body)
    except msgspec.ValidationError:
        try:
            answer = _LENIENT.decode(body)
        except msgspec.DecodeError as exc:
            raise fail(errors.TerminalRemoteError, f"unexpected answer ({exc})", b"") from exc
    except msgspec.DecodeError as exc:
        raise fail(errors.TransientRemoteError, "malformed JSON", body) from exc
    if answer.type == "error":
        raise fail(errors.TerminalRemoteError, "refused", error_message(answer.message))
    if answer.total is None:
        raise fail(errors.TerminalRemoteError, "answer without total", body)
    try:
        total = int(answer.total)
    except ValueError as exc:
        raise fail(errors.TransientRemoteError, "malformed total", body) from exc
    if projected is not None and not isinstance(answer, _Lenient):
        return ListPage(total, [_present(msgspec.structs.asdict(row)) for row in answer.registros])
    rows: list[dict[str, Any]] = answer.registros
    if columns is not None:
        wanted = frozenset(columns)
        rows = [{k: v for k, v in row.items() if k in wanted} for row in rows]
    if isinstance(answer, _Lenient):
        rows = [{k: to_text(v) for k, v in row.items()} for row in rows]
    return ListPage(total, rows)


@functools.lru_cache(maxsize=64)
def _projected(columns: tuple[str, ...]) -> msgspec.json.Decoder[Any] | None:
    """A decoder of list pages whose rows hold ``columns`` only (None when a column cannot be a struct field:
    such a listing decodes whole rows, then :func:`decode_list` keeps the wanted columns)."""
    if not all(c.isidentifier() and not keyword.iskeyword(c) and not c.startswith("_") for c in columns):
        return None
    row = msgspec.defstruct("ProjectedRow", [(c, str | msgspec.UnsetType, msgspec.UNSET) for c in columns])
    page = msgspec.defstruct(
        "ProjectedPage",
        [
            ("total", int | str | None, None),
            ("registros", list[row], []),  # type: ignore[valid-type]
            ("type", str | None, None),
            ("message", str | None, None),
        ],
    )
    return msgspec.json.Decoder(page)


def _present(row: dict[str, Any]) -> dict[str, str]:
    """A projected row without the columns the answer did not have."""
    if msgspec.UNSET in row.values():
        return {k: v for k, v in row.items() if v is not msgspec.UNSET}
    return row


def decode_write(response: Response, fail: MakeError) -> str:
    """A write answer → the id it names (``""`` when none, e.g. after a delete)."""
    body = response.body
    if body.lstrip()[:1] == b"<":
        raise fail(errors.TransientRemoteError, "HTML error page", body)
    try:
        answer = _WRITE.decode(body)
    except msgspec.ValidationError as exc:
        raise fail(errors.TerminalRemoteError, f"unexpected answer ({exc})", b"") from exc
    except msgspec.DecodeError as exc:
        raise fail(errors.TransientRemoteError, "malformed JSON", body) from exc
    if answer.type == "error":
        raise fail(errors.TerminalRemoteError, "refused", error_message(answer.message))
    if answer.type != "success":
        raise fail(errors.TerminalRemoteError, "answer is neither success nor error", body)
    return to_text(answer.id)
