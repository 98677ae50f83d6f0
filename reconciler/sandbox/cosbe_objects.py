"""COS BE objects: enumerations, groups, metadata definitions and the validation of create/update bodies.

Everything here follows cosbe.md 2.3 and section 4 (all [assume] there: COS publishes no REST reference):
camelCase fields, PascalCase enums (C3), metadata as a list of ``{name, value}`` strings (C10) validated against
the definitions (unknown name, dropdown value outside ``options``, over ``maxLength`` → 400), ``serviceStatus``
read-only (400 when sent), ``address`` replaced as a whole, metadata merged by name with ``null`` clearing,
unknown body keys ignored (ASP.NET model binding). Failures raise :class:`Problem` (RFC 7807 problem details, C8).
"""

from __future__ import annotations

from typing import Any

import msgspec

STATUSES = ("NotDeliverable", "ApprovedSurvey", "PendingSignup", "InDeployment", "Deliverable")
SERVICE_STATUSES = ("Inactive", "Active", "AwaitingActivation", "Paused")
OBJECT_TYPES = ("SingleFamilyHome", "MultiDwellingUnit", "Business")
METADATA_TYPES = ("Checkbox", "Dropdown", "TextArea", "Textbox")
ENTITIES = ("Object", "Service", "Order", "NetworkElement")
ORDER_OPERATIONS = {
    "Created": "AwaitingActivation",
    "Activated": "Active",
    "Paused": "Paused",
    "Terminated": "Inactive",
}
"""Order operation → the object's resulting ``serviceStatus`` (cosbe.md 3, sandbox ``order`` action)."""
ADDRESS_REQUIRED = ("street", "city", "state", "postalCode")
ADDRESS_TEXT = (*ADDRESS_REQUIRED, "unit", "country")
TEXT_FIELDS = ("externalIdentification", "externalServiceLocationId", "vetroLink")
FLAGS = ("reachable", "dropInstalled")

_TITLES = {
    400: "One or more validation errors occurred.",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
}
_TYPES = {
    400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
    401: "https://tools.ietf.org/html/rfc7235#section-3.1",
    403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
    404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
    405: "https://tools.ietf.org/html/rfc7231#section-6.5.5",
    409: "https://tools.ietf.org/html/rfc7231#section-6.5.8",
    415: "https://tools.ietf.org/html/rfc7231#section-6.5.13",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
}

Obj = dict[str, Any]


class Problem(Exception):
    """An API refusal as problem details: HTTP ``status``, optional ``detail`` and per-field ``errors``."""

    def __init__(
        self,
        status: int,
        detail: str = "",
        errors: dict[str, list[str]] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, detail, errors)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def body(self, trace_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": _TYPES.get(self.status, "about:blank"),
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
            "traceId": trace_id,
        }
        if self.detail:
            out["detail"] = self.detail
        if self.errors:
            out["errors"] = self.errors
        return out


class Group(msgspec.Struct, forbid_unknown_fields=True):
    """An object group (cosbe.md 4.3)."""

    id: str
    name: str


class MetadataField(msgspec.Struct, forbid_unknown_fields=True):
    """A metadata field definition (cosbe.md 4.4)."""

    id: str
    name: str
    entity: str = "Object"
    type: str = "Textbox"
    options: list[str] | None = None
    required: bool = False
    maxLength: int | None = None
    externalId: str | None = None
    visibleToServiceProviders: bool = True


class _Errors:
    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.found.setdefault(path, []).append(message)

    def raise_if_any(self) -> None:
        if self.found:
            raise Problem(400, errors=self.found)


def _enum(errors: _Errors, body: Obj, name: str, allowed: tuple[str, ...], *, required: bool) -> None:
    if name not in body:
        if required:
            errors.add(name, f"The {name} field is required.")
        return
    value = body[name]
    if value not in allowed:
        errors.add(
            name, f"The value {value!r} is not valid for {name}; expected one of {', '.join(allowed)}."
        )


def _address(errors: _Errors, value: Any) -> Obj | None:
    if not isinstance(value, dict):
        errors.add("address", "The address field is required.")
        return None
    out: Obj = {}
    for part in ADDRESS_TEXT:
        text = value.get(part)
        if text is not None and not isinstance(text, str):
            errors.add(f"address.{part}", f"The {part} field must be a string.")
        out[part] = text.strip() if isinstance(text, str) else None
    for part in ADDRESS_REQUIRED:
        if not out[part]:
            errors.add(f"address.{part}", f"The {part} field is required.")
    country = out["country"] or "US"
    if len(country) != 2 or not country.isalpha():
        errors.add("address.country", "The country field must be an ISO 3166 alpha-2 code.")
    out["country"] = country.upper()
    for part, limit in (("latitude", 90), ("longitude", 180)):
        number = value.get(part)
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, int | float) or abs(number) > limit
        ):
            errors.add(f"address.{part}", f"The {part} field must be a number between -{limit} and {limit}.")
        out[part] = number
    return out


def _metadata(
    errors: _Errors, value: Any, definitions: dict[str, MetadataField]
) -> list[tuple[str, str | None]]:
    if not isinstance(value, list):
        errors.add("metadata", "The metadata field must be a list of {name, value}.")
        return []
    out: list[tuple[str, str | None]] = []
    for index, entry in enumerate(value):
        where = f"metadata[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            errors.add(where, "Each metadata entry needs a name.")
            continue
        name, text = entry["name"], entry.get("value")
        definition = definitions.get(name)
        if definition is None:
            errors.add(f"{where}.name", f"Unknown metadata field {name!r}.")
            continue
        if text is None:
            out.append((name, None))
            continue
        if not isinstance(text, str):
            errors.add(f"{where}.value", "Metadata values are strings.")
            continue
        if definition.type == "Checkbox" and text not in ("true", "false"):
            errors.add(f"{where}.value", f'{name!r} is a checkbox: the value is "true" or "false".')
        elif definition.type == "Dropdown" and text not in (definition.options or []):
            errors.add(f"{where}.value", f"{text!r} is not an option of {name!r}.")
        elif definition.maxLength is not None and len(text) > definition.maxLength:
            errors.add(f"{where}.value", f"{name!r} is longer than {definition.maxLength} characters.")
        else:
            out.append((name, text))
    return out


def checked_changes(
    body: Obj,
    *,
    creating: bool,
    groups: dict[str, Group],
    definitions: dict[str, MetadataField],
) -> Obj:
    """The validated fields of a create/update body, in stored form (``metadata`` as (name, value) pairs).

    Raises :class:`Problem` 400 with every field error found.
    """
    errors = _Errors()
    out: Obj = {}
    if "serviceStatus" in body:
        errors.add("serviceStatus", "The serviceStatus field is read-only (it follows the object's order).")
    _enum(errors, body, "objectType", OBJECT_TYPES, required=creating)
    _enum(errors, body, "status", STATUSES, required=creating)
    for name in ("objectType", "status"):
        if name in body:
            out[name] = body[name]
    for name in FLAGS:
        if name in body:
            if not isinstance(body[name], bool):
                errors.add(name, f"The {name} field must be true or false.")
            out[name] = body[name]
        elif creating:
            out[name] = False
    for name in TEXT_FIELDS:
        if name in body:
            value = body[name]
            if value is not None and not isinstance(value, str):
                errors.add(name, f"The {name} field must be a string or null.")
            out[name] = value
        elif creating:
            out[name] = None
    if "group" in body or creating:
        out["group"] = _group(errors, body.get("group"), groups)
    if "address" in body or creating:
        out["address"] = _address(errors, body.get("address"))
    if "metadata" in body:
        out["metadata"] = _metadata(errors, body["metadata"], definitions)
    if creating:
        given = {name for name, value in out.get("metadata", []) if value is not None}
        for definition in definitions.values():
            if definition.required and definition.name not in given:
                errors.add("metadata", f"The metadata field {definition.name!r} is required.")
    errors.raise_if_any()
    return out


def _group(errors: _Errors, value: Any, groups: dict[str, Group]) -> Obj | None:
    if value is None:
        return None
    group_id = value.get("id") if isinstance(value, dict) else None
    if not isinstance(group_id, str):
        errors.add("group.id", "The group needs an id.")
        return None
    group = groups.get(group_id)
    if group is None:
        errors.add("group.id", "Unknown object group.")
        return None
    return {"id": group.id, "name": group.name}


def apply(obj: Obj, changes: Obj) -> list[str]:
    """Apply validated ``changes`` to ``obj`` in place; returns the names of the fields that changed."""
    changed: list[str] = []
    for name, value in changes.items():
        if name == "metadata":
            changed.extend(merge_metadata(obj, value))
        elif name == "address":
            before, after = obj.get("address") or {}, value or {}
            parts = sorted(set(before) | set(after))
            changed.extend(f"address.{part}" for part in parts if before.get(part) != after.get(part))
            obj["address"] = value
        elif obj.get(name) != value or name not in obj:
            obj[name] = value
            changed.append(name)
    return changed


def merge_metadata(obj: Obj, pairs: list[tuple[str, str | None]]) -> list[str]:
    """Merge (name, value) pairs into ``obj["metadata"]`` by name; a None value removes the entry."""
    entries: list[Obj] = obj.setdefault("metadata", [])
    by_name = {entry["name"]: entry for entry in entries}
    changed: list[str] = []
    for name, value in pairs:
        current = by_name.get(name)
        if value is None:
            if current is not None:
                entries.remove(current)
                del by_name[name]
                changed.append(f"metadata.{name}")
        elif current is None:
            by_name[name] = {"name": name, "value": value}
            entries.append(by_name[name])
            changed.append(f"metadata.{name}")
        elif current["value"] != value:
            current["value"] = value
            changed.append(f"metadata.{name}")
    return changed
