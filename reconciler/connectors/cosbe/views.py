"""Decoding COS BE answers, flattening objects into records, and building write bodies (cosbe.md 2, 4).

An object becomes a flat record: ``id`` = the object's GUID; top-level scalars keep their wire names
(``objectNumber``, ``status``, ``externalIdentification`` …); ``group`` and ``address`` become ``group.id``,
``group.name``, ``address.street`` … (all present, None when the object has none); each metadata entry becomes
``metadata.<name>`` (string values, checkbox = ``"true"``/``"false"``, C10). ``updated_at`` = ``updatedAt``
(RFC 3339 UTC, second precision: sorts as a string).

Write bodies go the other way: ``group.id`` (or ``group.name``, resolved by the caller) → ``group: {id}``,
``address.*`` → one whole ``address`` object (it is replaced as a whole, cosbe.md 2.3), ``metadata.*`` → a list
of ``{name, value}`` (``None`` clears on update; non-strings are written as COS shows them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec

from reconciler import errors
from reconciler.connectors.http import Response
from reconciler.model import Fields, Record, Value

T = TypeVar("T")

METADATA_PREFIX = "metadata."
ADDRESS_PARTS = ("street", "unit", "city", "state", "postalCode", "country", "latitude", "longitude")
GROUP_PARTS = ("id", "name")
SCALARS = (
    "objectNumber", "objectType", "status", "reachable", "serviceStatus", "dropInstalled",
    "externalIdentification", "externalServiceLocationId", "vetroLink", "adminUrl", "createdAt", "updatedAt",
    "version",
)  # fmt: skip
WRITABLE_SCALARS = (
    "objectType", "status", "reachable", "dropInstalled", "externalIdentification", "externalServiceLocationId",
    "vetroLink",
)  # fmt: skip

#: (error class, what, body) → the error to raise; the client binds method, path and credential scrubbing.
MakeError = Callable[[type[errors.RemoteError], str, bytes | str], errors.RemoteError]


class Page(msgspec.Struct, frozen=True):
    """A list answer: ``{"items", "pageIndex", "pageSize", "totalCount"}`` (cosbe.md 2.1)."""

    items: list[dict[str, Any]]
    pageIndex: int = 0
    pageSize: int = 0
    totalCount: int | None = None


PAGE: msgspec.json.Decoder[Page] = msgspec.json.Decoder(Page)
OBJECT: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(dict[str, Any])


def decode(response: Response, decoder: msgspec.json.Decoder[T], fail: MakeError) -> T:
    """A 2xx answer: an HTML page or truncated JSON is Transient, a body of the wrong shape Terminal."""
    body = response.body
    if body.lstrip()[:1] == b"<":
        raise fail(errors.TransientRemoteError, "HTML page instead of JSON", body)
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise fail(errors.TerminalRemoteError, f"unexpected answer ({exc})", b"") from exc
    except msgspec.DecodeError as exc:
        raise fail(errors.TransientRemoteError, "malformed JSON", body) from exc


def object_record(obj: Mapping[str, Any]) -> Record:
    """An object as a flat record (see the module docstring)."""
    fields: Fields = {}
    for name, value in obj.items():
        if name == "id":
            continue
        if name == "metadata":
            for entry in value or ():
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    fields[METADATA_PREFIX + entry["name"]] = entry.get("value")
        elif name in ("group", "address"):
            parts = GROUP_PARTS if name == "group" else ADDRESS_PARTS
            nested = value if isinstance(value, dict) else {}
            for part in (*parts, *(k for k in nested if k not in parts)):
                fields[f"{name}.{part}"] = nested.get(part)
        elif isinstance(value, dict):
            for part, inner in value.items():
                fields[f"{name}.{part}"] = inner
        else:
            fields[name] = value
    return Record(id=str(obj.get("id", "")), fields=fields, updated_at=str(obj.get("updatedAt") or ""))


def named_record(row: Mapping[str, Any]) -> Record:
    """A group or a metadata definition as a record (wire names kept)."""
    return Record(id=str(row.get("id", "")), fields={k: v for k, v in row.items() if k != "id"})


def metadata_text(value: Value) -> str | None:
    """A metadata value as COS stores it: strings as is, booleans ``"true"``/``"false"``, None clears."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return msgspec.json.encode(value).decode()


def body_of(
    fields: Mapping[str, Value], *, group_id: str | None, address: dict[str, Any] | None
) -> dict[str, Any]:
    """The create/update body fields for ``fields`` (group and address already resolved by the caller)."""
    body: dict[str, Any] = {name: fields[name] for name in WRITABLE_SCALARS if name in fields}
    if "group.id" in fields or "group.name" in fields:
        body["group"] = None if group_id is None else {"id": group_id}
    if address is not None:
        body["address"] = address
    metadata = [
        {"name": name[len(METADATA_PREFIX) :], "value": metadata_text(value)}
        for name, value in fields.items()
        if name.startswith(METADATA_PREFIX)
    ]
    if metadata:
        body["metadata"] = metadata
    return body


def address_of(fields: Mapping[str, Value], current: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The whole address to send: ``current`` overlaid with the ``address.*`` fields; None when none changes."""
    changed = {
        name[len("address.") :]: value for name, value in fields.items() if name.startswith("address.")
    }
    if not changed:
        return None
    address: dict[str, Any] = dict.fromkeys(ADDRESS_PARTS)
    if current:
        address.update(current)
    address.update(changed)
    return address
