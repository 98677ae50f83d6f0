"""Geometry of the OZmap sandbox: ``[lng, lat]`` points, haversine metres, point spellings, GeoJSON polygons.

Serves the ``near``, ``within`` and ``point-intersect`` filter operators and ``ftth-viability/radius``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from reconciler.sandbox.ozmap_values import as_number, bad_request

EARTH_RADIUS_M: Final = 6_371_008.8
Ring = list[tuple[float, float]]  # (lng, lat) pairs
Polygon = list[Ring]  # outer ring then holes


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlat, dlng = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dlat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlng / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def point_of(value: Any) -> tuple[float, float] | None:
    """``(lat, lng)`` of a stored ``[lng, lat]`` pair, else None."""
    if type(value) is list and len(value) >= 2:
        lng, lat = value[0], value[1]
        if type(lng) in (int, float) and type(lat) in (int, float):
            return float(lat), float(lng)
    return None


@dataclass(frozen=True, slots=True)
class Near:
    """A ``near`` operand: centre and optional radius in metres."""

    lat: float
    lng: float
    radius: float | None

    def distance(self, coords: Any) -> float | None:
        point = point_of(coords)
        return None if point is None else haversine_m(self.lat, self.lng, point[0], point[1])


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise bad_request(f"{what} must be a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (number := as_number(value)) is not None:
        return number
    raise bad_request(f"{what} must be a number, got {value!r}")


def parse_point(value: Any) -> tuple[float, float]:
    """``(lat, lng)`` from any point spelling the contract lists (lat/lng, latitude/longitude, coords, coordinates)."""
    if isinstance(value, list | tuple) and len(value) >= 2:
        return _float(value[1], "lat"), _float(value[0], "lng")
    if not isinstance(value, dict):
        raise bad_request(f"invalid point {value!r}")
    for pair in ("coords", "coordinates"):
        if pair in value:
            return parse_point(value[pair])
    if "lat" in value and "lng" in value:
        return _float(value["lat"], "lat"), _float(value["lng"], "lng")
    if "latitude" in value and "longitude" in value:
        return _float(value["latitude"], "latitude"), _float(value["longitude"], "longitude")
    raise bad_request(f"invalid point {value!r}: expected lat/lng")


def parse_near(value: Any) -> Near:
    lat, lng = parse_point(value)
    radius = None
    if isinstance(value, dict):
        for key in ("radius", "maxDistance", "distance"):
            if value.get(key) is not None:
                radius = _float(value[key], "radius")
                break
    return Near(lat, lng, radius)


def parse_polygons(value: Any) -> list[Polygon]:
    """GeoJSON Polygon/MultiPolygon (or a bare ring / ring list) → polygons of (lng, lat) rings."""
    if isinstance(value, dict):
        kind, coordinates = value.get("type"), value.get("coordinates")
        if kind == "MultiPolygon" and isinstance(coordinates, list):
            return [_polygon(p) for p in coordinates]
        if coordinates is not None:
            return [_polygon(coordinates)]
        for key in ("geometry", "area", "polygon"):
            if key in value:
                return parse_polygons(value[key])
        raise bad_request("invalid polygon")
    if isinstance(value, list) and value and isinstance(value[0], list) and value[0]:
        if isinstance(value[0][0], int | float):  # a bare ring
            return [_polygon([value])]
        return [_polygon(value)]
    raise bad_request("invalid polygon")


def _polygon(rings: Any) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise bad_request("invalid polygon")
    polygon: Polygon = []
    for ring in rings:
        if not isinstance(ring, list) or len(ring) < 3:
            raise bad_request("invalid polygon ring")
        polygon.append([(_float(p[0], "lng"), _float(p[1], "lat")) for p in ring])
    return polygon


def _in_ring(lng: float, lat: float, ring: Ring) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lng < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def in_polygons(lat: float, lng: float, polygons: list[Polygon]) -> bool:
    """Even-odd point-in-polygon with holes."""
    for rings in polygons:
        if _in_ring(lng, lat, rings[0]) and not any(_in_ring(lng, lat, hole) for hole in rings[1:]):
            return True
    return False
