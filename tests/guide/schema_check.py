"""A small JSON Schema (2020-12) validator for the subset msgspec writes, to check answers against /openapi.json.

``jsonschema`` is not a dependency of the project; this covers what ``msgspec.json.schema_components`` emits:
``$ref`` (to ``#/components/schemas/...``), ``type`` (one or a list), ``enum``, ``const``, ``anyOf``/``oneOf``/
``allOf``, ``properties``/``required``/``additionalProperties``, ``items``/``prefixItems``, numeric and length
bounds, ``pattern``. Unknown keywords (``title``, ``description``, ``default``, ``format``) are ignored.
"""

from __future__ import annotations

import re
from typing import Any

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def errors(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``value`` (``root`` resolves ``$ref``); empty when valid."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return errors(value, target, root, where)
    found: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES[k](value) for k in kinds):
            return [f"{where}: {value!r} is not of type {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        found.append(f"{where}: {value!r} != {schema['const']!r}")
    for key in ("anyOf", "oneOf"):
        if key in schema:
            matches = sum(not errors(value, option, root, where) for option in schema[key])
            if matches == 0 or (key == "oneOf" and matches > 1):
                found.append(f"{where}: {value!r} matches {matches} of {key}")
    for option in schema.get("allOf", ()):
        found.extend(errors(value, option, root, where))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        found.extend(f"{where}: missing {name!r}" for name in schema.get("required", ()) if name not in value)
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                found.extend(errors(item, props[name], root, f"{where}.{name}"))
            elif extra is False:
                found.append(f"{where}: unexpected {name!r}")
            elif isinstance(extra, dict):
                found.extend(errors(item, extra, root, f"{where}.{name}"))
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if isinstance(sub, dict):
                found.extend(errors(item, sub, root, f"{where}[{i}]"))
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            found.append(f"{where}: {len(value)} items out of bounds")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            found.append(f"{where}: length {len(value)} out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if _TYPES["number"](value):
        checks = (
            ("minimum", lambda b: value >= b),
            ("maximum", lambda b: value <= b),
            ("exclusiveMinimum", lambda b: value > b),
            ("exclusiveMaximum", lambda b: value < b),
        )
        found.extend(
            f"{where}: {value} violates {k} {schema[k]}"
            for k, ok in checks
            if k in schema and not ok(schema[k])
        )
    return found


def response_schema(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    """The schema of ``status``'s JSON answer of ``method path`` (a path template) in an OpenAPI document."""
    operation = document["paths"][path][method.lower()]
    answer = operation["responses"][str(status)]
    schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
    return schema
