"""Filter, sort and projection engine of the OZmap sandbox (pure: no I/O, no store).

Owns the listing semantics of contract sections 2.3 and 2.4:

* a filter is a JSON list of ``{"property", "operator", "value"}``; top-level elements are ANDed; a nested list
  is an OR group, a list inside that group an AND group again [assume: the contract leaves groups open];
* every operator of 2.4 with Mongo-like semantics: dotted paths walk through objects and arrays, an array field
  matches when any element does, ``=``/``in`` cast the operand to the stored type (``"1"`` matches ``1``,
  ``"true"`` matches ``true``), ``!=``/``notin`` match missing fields, ``<``/``>`` on ``*At``/``*_date`` fields
  compare ISO instants whatever their spelling, ``like`` is a case-insensitive regex search [assume],
  ``near`` uses haversine metres on ``[lng, lat]`` and orders nearest first, ``within`` takes a GeoJSON
  (Multi)Polygon or ``{"id", "model"}`` of a project/region/horizontal condominium; an unknown operator is a 400;
* sort specs (``[{"property", "direction"}]``, ``{"field": 1}`` or Mongoose ``"-field"``) with Mongo type order;
* ``select`` projections (Mongoose style, ``-field`` excludes).

The store (``ozmap_store``) plans index use from the :class:`Condition` list and runs the compiled predicate.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from reconciler.sandbox.ozmap_geo import Near, in_polygons, parse_near, parse_point, parse_polygons, point_of
from reconciler.sandbox.ozmap_values import (
    MISSING,
    ApiError,
    Getter,
    Record,
    as_number,
    bad_request,
    date_text,
    eq_targets,
    is_date_path,
    make_getter,
    value_key,
)

Predicate = Callable[[Record], bool]
PolygonResolver = Callable[[str, str], Any]
"""``(model, id) -> polygon`` used by ``within`` with ``{"id", "model"}``; returns None when unknown."""
OPERATORS: Final = frozenset(
    {
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "notin",
        "like",
        "exists",
        "all",
        "near",
        "within",
        "point-intersect",
    }
)
_RANGE_OPS: Final = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


# -- compiled filters ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Condition:
    """One top-level ANDed condition, kept for index planning by the store."""

    path: str
    op: str
    operand: Any
    targets: set[Hashable] | None = None  # for = / in: matching value keys
    date_text: str | None = None  # for range ops on date paths
    near: Near | None = None


@dataclass(slots=True)
class CompiledFilter:
    """A filter ready to run: predicate (None = match all), top-level conditions, ordering hints."""

    predicate: Predicate | None
    conditions: list[Condition] = field(default_factory=list)
    near: Near | None = None
    near_getter: Getter | None = None
    names_deleted: bool = False


def compile_filter(raw: Any, resolve_polygon: PolygonResolver) -> CompiledFilter:
    """Validate and compile a filter (list, single condition object, or None); raises ApiError(400)."""
    if raw is None or raw == [] or raw == {}:
        return CompiledFilter(None)
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise bad_request("filter must be a list of conditions")
    compiled = CompiledFilter(None)
    predicates = []
    for element in raw:
        if isinstance(element, dict):
            condition, predicate = _condition(element, compiled, resolve_polygon)
            compiled.conditions.append(condition)
        else:
            predicate = _group(element, compiled, resolve_polygon, any_of=True)
        predicates.append(predicate)
    compiled.predicate = _all_of(predicates)
    return compiled


def _group(
    raw: Any, compiled: CompiledFilter, resolve_polygon: PolygonResolver, *, any_of: bool
) -> Predicate:
    if not isinstance(raw, list):
        raise bad_request(f"invalid filter element {raw!r}")
    predicates = [
        _condition(element, compiled, resolve_polygon)[1]
        if isinstance(element, dict)
        else _group(element, compiled, resolve_polygon, any_of=not any_of)
        for element in raw
    ]
    if not predicates:
        return lambda record: True
    return _any_of(predicates) if any_of else _all_of(predicates)


def _all_of(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda record: all(predicate(record) for predicate in predicates)


def _any_of(predicates: Sequence[Predicate]) -> Predicate:
    return lambda record: any(predicate(record) for predicate in predicates)


def _condition(
    raw: dict[str, Any], compiled: CompiledFilter, resolve_polygon: PolygonResolver
) -> tuple[Condition, Predicate]:
    path, op = raw.get("property"), raw.get("operator")
    if not isinstance(path, str) or not path:
        raise bad_request(f"filter condition needs a 'property': {raw!r}")
    if not isinstance(op, str) or op not in OPERATORS:
        raise bad_request(f"unknown filter operator {op!r}; expected one of {', '.join(sorted(OPERATORS))}")
    if path == "deletedAt" or path.startswith("deletedAt."):
        compiled.names_deleted = True
    operand = raw.get("value")
    get = make_getter("_id" if path == "id" else path)
    condition = Condition(path, op, operand)
    if op in ("=", "!=", "in", "notin"):
        predicate = _membership(condition, get)
    elif op in _RANGE_OPS:
        predicate = _range(condition, get)
    elif op == "like":
        predicate = _like(operand, get)
    elif op == "exists":
        want = operand if isinstance(operand, bool) else str(operand).lower() in ("true", "1")
        predicate = lambda record: (get(record) is not MISSING) == want  # noqa: E731
    elif op == "all":
        predicate = _all(operand, get)
    elif op == "near":
        condition.near = near = parse_near(operand)
        compiled.near, compiled.near_getter = near, get
        predicate = _near(near, get)
    elif op == "within":
        predicate = _within(operand, get, resolve_polygon)
    else:  # point-intersect
        predicate = _point_intersect(operand, get)
    return condition, predicate


def _membership(condition: Condition, get: Getter) -> Predicate:
    op, operand, date = condition.op, condition.operand, is_date_path(condition.path)
    if op in ("in", "notin"):
        if not isinstance(operand, list):
            raise bad_request(f"operator {op!r} needs a list value")
        targets: set[Hashable] = set()
        structural: list[Any] = []
        for element in operand:
            element_targets = eq_targets(element, date=date)
            if element_targets is None:
                structural.append(element)
            else:
                targets |= element_targets
    else:
        maybe_targets = eq_targets(operand, date=date)
        structural = [operand] if maybe_targets is None else []
        targets = maybe_targets or set()
    condition.targets = None if structural else targets
    negate = op in ("!=", "notin")

    def matches(record: Record) -> bool:
        value = get(record)
        if structural and value in structural:
            return True
        if type(value) is list:
            for element in value:
                key = value_key(element)
                if key is not None and key in targets:
                    return True
            return False
        key = value_key(value)
        return key is not None and key in targets

    if negate:
        return lambda record: not matches(record)
    return matches


def _range(condition: Condition, get: Getter) -> Predicate:
    compare = _RANGE_OPS[condition.op]
    operand = condition.operand
    text: str | None = None
    number: float | None = None
    if is_date_path(condition.path):
        text = condition.date_text = date_text(operand)
    elif isinstance(operand, bool) or operand is None or isinstance(operand, dict | list):
        raise bad_request(f"operator {condition.op!r} needs a number, date or string value")
    elif isinstance(operand, int | float):
        number = float(operand)
    else:
        text = str(operand)
        number = as_number(text)

    def check(value: Any) -> bool:
        kind = type(value)
        if kind is str:
            return text is not None and compare(value, text)
        if (kind is int or kind is float) and number is not None:
            return compare(value, number)  # type: ignore[no-any-return]
        return False

    def predicate(record: Record) -> bool:
        value = get(record)
        if type(value) is list:
            return any(check(element) for element in value)
        return check(value)

    return predicate


def _like(operand: Any, get: Getter) -> Predicate:
    if not isinstance(operand, str | int | float) or isinstance(operand, bool):
        raise bad_request("operator 'like' needs a string value")
    try:
        pattern = re.compile(str(operand), re.IGNORECASE)
    except re.error:
        pattern = re.compile(re.escape(str(operand)), re.IGNORECASE)

    def predicate(record: Record) -> bool:
        value = get(record)
        values = value if type(value) is list else (value,)
        return any(type(v) is str and pattern.search(v) is not None for v in values)

    return predicate


def _all(operand: Any, get: Getter) -> Predicate:
    if not isinstance(operand, list):
        raise bad_request("operator 'all' needs a list value")
    wanted = [eq_targets(element) for element in operand]
    if any(targets is None for targets in wanted):
        raise bad_request("operator 'all' needs scalar values")

    def predicate(record: Record) -> bool:
        value = get(record)
        if type(value) is not list:
            value = [] if value is MISSING else [value]
        keys = {value_key(element) for element in value}
        return all(not keys.isdisjoint(targets) for targets in wanted if targets is not None)

    return predicate


def _near(near: Near, get: Getter) -> Predicate:
    radius = near.radius

    def predicate(record: Record) -> bool:
        distance = near.distance(get(record))
        return distance is not None and (radius is None or distance <= radius)

    return predicate


def _within(operand: Any, get: Getter, resolve_polygon: PolygonResolver) -> Predicate:
    if isinstance(operand, dict) and "id" in operand and "coordinates" not in operand:
        model = str(operand.get("model", "project"))
        area = resolve_polygon(model, str(operand["id"]))
        if area is None:
            raise bad_request(f"within: {model} {operand['id']!r} not found or has no area")
        operand = area
    polygons = parse_polygons(operand)

    def predicate(record: Record) -> bool:
        point = point_of(get(record))
        return point is not None and in_polygons(point[0], point[1], polygons)

    return predicate


def _point_intersect(operand: Any, get: Getter) -> Predicate:
    lat, lng = parse_point(operand)

    def predicate(record: Record) -> bool:
        value = get(record)
        if value is MISSING or value is None:
            return False
        try:
            return in_polygons(lat, lng, parse_polygons(value))
        except ApiError:
            return False

    return predicate


# -- sort ----------------------------------------------------------------------------------------------------


SortSpec = list[tuple[Getter, bool]]
"""(getter, descending) pairs, most significant first."""


def compile_sort(raw: Any) -> SortSpec:
    """Parse ``[{"property", "direction"}]``, ``{"field": 1}``, ``"field -other"``; raises ApiError(400)."""
    if raw is None or raw == [] or raw == {} or raw == "":
        return []
    pairs: list[tuple[str, Any]] = []
    if isinstance(raw, str):
        for token in re.split(r"[\s,]+", raw.strip()):
            if token:
                pairs.append((token[1:], -1) if token[0] == "-" else (token.lstrip("+"), 1))
    elif isinstance(raw, dict) and "property" not in raw:
        pairs = list(raw.items())
    else:
        for element in raw if isinstance(raw, list) else [raw]:
            if not isinstance(element, dict) or not isinstance(element.get("property"), str):
                raise bad_request(f"invalid sort element {element!r}")
            pairs.append((element["property"], element.get("direction", 1)))
    spec: SortSpec = []
    for path, direction in pairs:
        if direction in (1, "1", "asc", "ascending"):
            descending = False
        elif direction in (-1, "-1", "desc", "descending"):
            descending = True
        else:
            raise bad_request(f"invalid sort direction {direction!r}")
        spec.append((make_getter("_id" if path == "id" else path), descending))
    return spec


def sort_key(value: Any) -> tuple[int, Any]:
    """Mongo's cross-type order: missing/null < numbers < strings < objects < arrays(first) < booleans."""
    kind = type(value)
    if kind is str:
        return (2, value)
    if kind is bool:
        return (5, value)
    if kind is int or kind is float:
        return (1, value)
    if kind is list:
        return sort_key(value[0]) if value else (0, 0)
    if kind is dict:
        return (3, repr(sorted(value.items(), key=operator.itemgetter(0))))
    return (0, 0)


# -- select --------------------------------------------------------------------------------------------------


def parse_fields(raw: Iterable[Any]) -> list[str]:
    """Flatten select/populate inputs: strings split on spaces/commas, lists flattened."""
    fields: list[str] = []
    for item in raw:
        if isinstance(item, list):
            fields.extend(parse_fields(item))
        elif isinstance(item, dict) and isinstance(item.get("path"), str):
            fields.extend(parse_fields([item["path"]]))
        elif isinstance(item, str):
            fields.extend(token for token in re.split(r"[\s,]+", item) if token)
    return fields


def project(record: Record, fields: list[str]) -> Record:
    """Mongoose-style projection: inclusion keeps ``id``/``kind`` (+ ``lat``/``lng``), ``-field`` excludes."""
    include = [f for f in fields if not f.startswith("-")]
    exclude = [f[1:] for f in fields if f.startswith("-")]
    if not include:
        out = dict(record)
        for path in exclude:
            _drop(out, path.split("."))
        return out
    out = {"id": record.get("id")}
    if "kind" in record:
        out["kind"] = record["kind"]
    for path in include:
        _copy(record, out, path.split("."))
    if "lat" in record or "coords" in record:
        keep = "coords" in include
        out["lat"] = record.get("lat") if keep or "lat" in include else None
        out["lng"] = record.get("lng") if keep or "lng" in include else None
    for path in exclude:
        _drop(out, path.split("."))
    return out


def _copy(source: Record, target: Record, parts: list[str]) -> None:
    head = parts[0]
    if head not in source:
        return
    if len(parts) == 1:
        target[head] = source[head]
    elif isinstance(source[head], dict):
        child = target.setdefault(head, {})
        if isinstance(child, dict):
            _copy(source[head], child, parts[1:])


def _drop(target: Record, parts: list[str]) -> None:
    if len(parts) == 1:
        target.pop(parts[0], None)
    elif isinstance(target.get(parts[0]), dict):
        target[parts[0]] = child = dict(target[parts[0]])
        _drop(child, parts[1:])
