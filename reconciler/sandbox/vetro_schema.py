"""Vetro's schema objects (plans, layers and their attribute schema, token scopes) and write validation.

Validation follows vetro.md 2.9 and 6.7: a geometry must be of the layer's ``geometry_type`` with
``[longitude, latitude]`` positions in range; ``select`` attributes (or any with ``permitted_values``) take one
of their permitted values; ``number`` takes a number, ``checkbox`` a boolean, ``text`` a scalar; ``null`` always
clears. Attributes the layer does not define are refused unless the store's ``strict_attributes`` knob is off.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Plan(msgspec.Struct, forbid_unknown_fields=True):
    """A plan (vetro.md 4.1); ``project_id``/``project_label`` [assume]."""

    id: int
    label: str
    project_id: int = 0
    project_label: str = ""


class Attribute(msgspec.Struct, forbid_unknown_fields=True):
    """One entry of a layer's ``available_attributes`` (vetro.md 4.2); dropdowns are ``select`` [assume]."""

    html_input_type: str = "text"
    permitted_values: list[str] | None = None
    is_hidden: bool = False


class Layer(msgspec.Struct, forbid_unknown_fields=True):
    """A layer and its attribute schema (vetro.md 4.2); ``geometry_type`` [assume]."""

    id: int
    label: str
    geometry_type: str = "Point"
    available_attributes: dict[str, Attribute] = {}


class TokenScope(msgspec.Struct, forbid_unknown_fields=True):
    """What a token may do: ``plans`` it sees (None = every plan) and whether it may write (vetro.md 1)."""

    plans: list[int] | None = None
    read_only: bool = False

    def allows(self, plan_id: Any) -> bool:
        return self.plans is None or plan_id in self.plans


def properties_problem(layer: Layer, properties: Any, *, strict: bool) -> str | None:
    """Why ``properties`` cannot be written on ``layer`` (None when they can); ``strict`` refuses unknown labels."""
    if properties is None:
        return None
    if not isinstance(properties, dict):
        return "properties must be an object"
    for label, value in properties.items():
        spec = layer.available_attributes.get(label)
        if spec is None:
            if strict:
                return f"attribute {label!r} is not defined on layer {layer.label!r}"
            continue
        problem = _value_problem(label, spec, value)
        if problem:
            return problem
    return None


def _position_problem(position: Any) -> str | None:
    if not isinstance(position, list) or len(position) not in (2, 3):
        return "a position is [longitude, latitude]"
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in position):
        return "coordinates must be numbers"
    lon, lat = position[0], position[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return f"coordinates out of range: [{lon}, {lat}] (GeoJSON order is [longitude, latitude])"
    return None


def geometry_problem(layer: Layer, geometry: Any, *, required: bool) -> str | None:
    """Why ``geometry`` does not suit ``layer`` (None when it does)."""
    if geometry is None:
        return "geometry is required" if required else None
    if not isinstance(geometry, dict) or not isinstance(geometry.get("type"), str):
        return "geometry must be a GeoJSON geometry object"
    kind, coords = geometry["type"], geometry.get("coordinates")
    if kind != layer.geometry_type:
        return f"layer {layer.label!r} takes {layer.geometry_type} geometries, not {kind}"
    if kind == "Point":
        return _position_problem(coords)
    lines = coords if kind == "LineString" else (coords[0] if isinstance(coords, list) and coords else None)
    if not isinstance(lines, list) or len(lines) < 2:
        return f"{kind} needs at least two positions"
    return next((p for p in map(_position_problem, lines) if p), None)


def _value_problem(label: str, spec: Attribute, value: Any) -> str | None:
    if value is None:
        return None
    kind = spec.html_input_type
    if spec.permitted_values is not None or kind == "select":
        if value not in (spec.permitted_values or []):
            allowed = ", ".join(spec.permitted_values or [])
            return f"{label!r}: {value!r} is not a permitted value ({allowed})"
        return None
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"{label!r} takes a number"
    if kind == "checkbox" and not isinstance(value, bool):
        return f"{label!r} takes true or false"
    if kind == "text" and not isinstance(value, str | int | float):
        return f"{label!r} takes text"
    return None
