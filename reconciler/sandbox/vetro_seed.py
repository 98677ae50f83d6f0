"""Deterministic seed data for the Vetro sandbox (vetro.md 6.11), shared with the COS BE seed.

One tenant, two projects, three plans, a Service Location layer with the attribute schema of vetro.md 4.4 plus a
few other layers, and ``size`` service locations with US addresses. The same ``(seed, size)`` always yields the
same rows. Every auto-import condition of the seed is exercised (shares are per location, drawn per index):

- 10 % ``Address Import = No``; 6 % incomplete address (Zip Code or City empty); 4 % unknown ``Group Name``;
  3 % without ``Building Type``; the rest importable.

:func:`service_locations` yields the features lazily (also used by ``cosbe_seed`` to link objects to them).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from reconciler.sandbox.vetro_filter import format_instant
from reconciler.sandbox.vetro_store import VetroStore

SERVICE_LOCATION = "Service Location"
STATUSES = ("Not deliverable", "Approved survey", "Pending signup", "In deployment", "Deliverable")
SERVICE_STATUSES = ("Inactive", "Active", "Awaiting Activation", "Paused")
BUILDING_TYPES = ("Residential", "MDU", "Business")
DROP_TYPES = ("Aerial", "Buried", "Underground", "Combo")
YES_NO = ("Yes", "No")
T0 = datetime(2025, 1, 6, 8, 0, 0, tzinfo=UTC)


def _text() -> dict[str, Any]:
    return {"html_input_type": "text", "permitted_values": None, "is_hidden": False}


def _select(values: tuple[str, ...]) -> dict[str, Any]:
    return {"html_input_type": "select", "permitted_values": list(values), "is_hidden": False}


SERVICE_LOCATION_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "ID": _text(),
    "Address": _text(),
    "Street Address": _text(),
    "City": _text(),
    "State": _text(),
    "Zip Code": _text(),
    "County": _text(),
    "Building Type": _select(BUILDING_TYPES),
    "Drop Type": _select(DROP_TYPES),
    "Build": _select(YES_NO),
    "Network Type": _text(),
    "Subname": _text(),
    "Address Import": _select(YES_NO),
    "Status": _select(STATUSES),
    "Group Name": _text(),
    "COS Object ID": _text(),
    "COS Object Number": _text(),
    "COS Object Status": _select(STATUSES),
    "COS Reachable": _select(YES_NO),
    "COS Service Status": _select(SERVICE_STATUSES),
    "COS Drop Installed": _select(YES_NO),
    "COS Link": _text(),
    "Survey Done": _select(YES_NO),
    "Install Notes": _text(),
    "Splice Tray": _text(),
}
"""vetro.md 4.4 (both tables), plus three labels the COS seed maps object metadata onto."""

SERVICE_LOCATION_LAYER_ID = 26
LAYERS: list[dict[str, Any]] = [
    {
        "id": SERVICE_LOCATION_LAYER_ID,
        "label": SERVICE_LOCATION,
        "geometry_type": "Point",
        "available_attributes": SERVICE_LOCATION_ATTRIBUTES,
    },
    {"id": 11, "label": "Pole", "geometry_type": "Point", "available_attributes": {"ID": _text()}},
    {"id": 12, "label": "Handhole", "geometry_type": "Point", "available_attributes": {"ID": _text()}},
    {"id": 31, "label": "Drop", "geometry_type": "LineString", "available_attributes": {"ID": _text()}},
    {"id": 36, "label": "Splitter", "geometry_type": "Point", "available_attributes": {"ID": _text()}},
]


class City(NamedTuple):
    name: str
    state: str
    zip_code: str
    county: str
    lon: float
    lat: float


PROJECTS = {
    9: ("Montpelier", City("Montpelier", "VT", "05602", "Washington", -72.5754, 44.2601)),
    14: ("Barre", City("Barre", "VT", "05641", "Washington", -72.5018, 44.1970)),
}
PLANS: list[dict[str, Any]] = [
    {"id": 112, "label": "Montpelier Phase 2", "project_id": 9, "project_label": "Montpelier"},
    {"id": 113, "label": "Montpelier Phase 3", "project_id": 9, "project_label": "Montpelier"},
    {"id": 120, "label": "Barre Phase 1", "project_id": 14, "project_label": "Barre"},
]
GROUP_NAMES = tuple(p["label"] for p in PLANS)
"""The COS object groups matching the plans (the seed's ``Group Name`` condition)."""
STREETS = (
    "Maple St", "Elm St", "Main St", "State St", "Barre St", "School St", "Loomis St", "Berlin St",
    "Northfield St", "College St", "Spring St", "Prospect St", "Hillside Ave", "Summer St", "Bailey Ave",
)  # fmt: skip


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def service_location(seed: int, index: int) -> dict[str, Any]:
    """The ``index``-th seeded service location (a feature in wire shape)."""
    rng = random.Random(seed * 1_000_003 + index)
    plan = PLANS[index % len(PLANS)]
    _, city = PROJECTS[plan["project_id"]]
    number = 2 + 2 * rng.randrange(400)
    street = f"{number} {rng.choice(STREETS)}"
    roll = rng.random()
    props: dict[str, Any] = {
        "ID": f"SL-{index + 1:07d}",
        "Street Address": street,
        "City": city.name,
        "State": city.state,
        "Zip Code": city.zip_code,
        "County": city.county,
        "Building Type": rng.choices(BUILDING_TYPES, weights=(80, 12, 8))[0],
        "Drop Type": rng.choice(DROP_TYPES),
        "Build": "Yes",
        "Network Type": "PON",
        "Subname": plan["label"],
        "Address Import": "Yes",
        "Status": rng.choice(STATUSES),
        "Group Name": plan["label"],
    }
    if roll < 0.10:
        props["Address Import"] = "No"
    elif roll < 0.16:
        props["Zip Code" if rng.random() < 0.5 else "City"] = ""
    elif roll < 0.20:
        props["Group Name"] = plan["label"].replace("Phase", "Phase 9")
    elif roll < 0.23:
        props["Building Type"] = None
    props["Address"] = ", ".join(p for p in (street, props["City"], f"{city.state} {props['Zip Code']}") if p)
    created = T0 + timedelta(seconds=60 * index)
    edited = created + timedelta(seconds=rng.randrange(86_400 * 30), milliseconds=rng.randrange(1000))
    return {
        "type": "Feature",
        "geometry": {
            "type": "Point",
            "coordinates": [
                round(city.lon + rng.uniform(-0.02, 0.02), 6),
                round(city.lat + rng.uniform(-0.015, 0.015), 6),
            ],
        },
        "x-vetro": {
            "vetro_id": _uuid(rng),
            "feature_id": 48_000 + index,
            "layer_id": SERVICE_LOCATION_LAYER_ID,
            "plan_id": plan["id"],
            "project_id": plan["project_id"],
            "created_time": format_instant(created),
            "last_edited_time": format_instant(edited),
        },
        "properties": props,
    }


def service_locations(seed: int, size: int) -> Iterator[dict[str, Any]]:
    """The ``size`` seeded service locations, lazily, in ``feature_id`` order."""
    for index in range(size):
        yield service_location(seed, index)


def poles(seed: int, count: int) -> Iterator[dict[str, Any]]:
    """A few poles, so the Service Location layer is not the only one."""
    rng = random.Random(seed - 1)
    for index in range(count):
        plan = PLANS[index % len(PLANS)]
        _, city = PROJECTS[plan["project_id"]]
        stamp = format_instant(T0 + timedelta(seconds=index))
        yield {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [city.lon + index * 1e-4, city.lat]},
            "x-vetro": {
                "vetro_id": _uuid(rng),
                "feature_id": 10_000 + index,
                "layer_id": 11,
                "plan_id": plan["id"],
                "project_id": plan["project_id"],
                "created_time": stamp,
                "last_edited_time": stamp,
            },
            "properties": {"ID": f"P-{index + 1:05d}"},
        }


def seed_into(store: VetroStore, *, seed: int, size: int) -> dict[str, int]:
    """Replace ``store``'s data with the seeded tenant; returns counts per kind."""
    store.reset()
    return {
        "plans": store.load("plans", PLANS),
        "layers": store.load("layers", LAYERS),
        "features": store.load("features", poles(seed, max(1, size // 10)))
        + store.load("features", service_locations(seed, size)),
    }
