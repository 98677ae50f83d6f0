"""Deterministic seed data for the COS BE sandbox (cosbe.md 6.9), coherent with the Vetro seed.

The same ``(seed, size)`` as :mod:`.vetro_seed` gives object groups named like the Vetro plans (the ``Group Name``
values), one metadata definition of each kind, and objects for part of the Vetro service locations, drawn per
location: 35 % linked by ``externalIdentification`` (= vetro_id) and ``externalServiceLocationId`` (= ``ID``),
15 % linked by ``externalServiceLocationId`` only, 5 % unlinked objects (neither id), the rest absent from COS
(what auto-import creates).
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from reconciler.sandbox import vetro_seed
from reconciler.sandbox.cosbe_objects import OBJECT_TYPES, SERVICE_STATUSES, STATUSES
from reconciler.sandbox.cosbe_store import CosbeStore, stamp_of

OBJECT_TYPE_OF = dict(zip(vetro_seed.BUILDING_TYPES, OBJECT_TYPES, strict=True))
STATUS_OF = dict(zip(vetro_seed.STATUSES, STATUSES, strict=True))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def groups(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed * 7 + 1)
    return [{"id": _uuid(rng), "name": name} for name in vetro_seed.GROUP_NAMES]


def definitions(seed: int) -> list[dict[str, Any]]:
    """One metadata definition of each kind (cosbe.md 4.4), named like Vetro attributes they map onto."""
    rng = random.Random(seed * 7 + 2)
    return [
        {"id": _uuid(rng), "name": "Drop Type", "type": "Dropdown", "options": list(vetro_seed.DROP_TYPES)},
        {"id": _uuid(rng), "name": "Survey Done", "type": "Checkbox"},
        {"id": _uuid(rng), "name": "Install Notes", "type": "TextArea", "maxLength": 500},
        {"id": _uuid(rng), "name": "Splice Tray", "type": "Textbox", "maxLength": 20, "externalId": "tray"},
    ]


def objects(seed: int, size: int, group_ids: dict[str, str]) -> list[dict[str, Any]]:
    """Objects for part of the seeded Vetro service locations (see the module docstring)."""
    out: list[dict[str, Any]] = []
    for index, feature in enumerate(vetro_seed.service_locations(seed, size)):
        rng = random.Random(seed * 1_000_033 + index)
        roll = rng.random()
        if roll >= 0.55:
            continue
        props = feature["properties"]
        lon, lat = feature["geometry"]["coordinates"]
        linked_by_id = roll < 0.35
        unlinked = roll >= 0.50
        stamp = stamp_of(vetro_seed.T0 + timedelta(seconds=30 * index + 7))
        group_id = group_ids.get(props["Group Name"]) or next(iter(group_ids.values()))
        out.append(
            {
                "id": _uuid(rng),
                "objectNumber": 10_001 + index,
                "objectType": OBJECT_TYPE_OF.get(props.get("Building Type") or "", "SingleFamilyHome"),
                "status": STATUS_OF[props["Status"]],
                "reachable": rng.random() < 0.8,
                "serviceStatus": rng.choice(SERVICE_STATUSES),
                "dropInstalled": rng.random() < 0.4,
                "group": {"id": group_id, "name": next(n for n, i in group_ids.items() if i == group_id)},
                "address": {
                    "street": props["Street Address"],
                    "unit": None,
                    "city": props["City"] or "Montpelier",
                    "state": props["State"],
                    "postalCode": props["Zip Code"] or "05602",
                    "country": "US",
                    "latitude": lat,
                    "longitude": lon,
                },
                "externalIdentification": feature["x-vetro"]["vetro_id"] if linked_by_id else None,
                "externalServiceLocationId": None if unlinked else props["ID"],
                "vetroLink": None,
                "metadata": [
                    {"name": "Drop Type", "value": props["Drop Type"]},
                    {"name": "Survey Done", "value": "true" if rng.random() < 0.5 else "false"},
                ],
                "createdAt": stamp,
                "updatedAt": stamp,
                "version": 1,
            }
        )
    return out


def seed_into(store: CosbeStore, *, seed: int, size: int) -> dict[str, int]:
    """Replace ``store``'s data with the seeded environment (no webhook event); returns counts per kind."""
    store.reset()
    group_rows = groups(seed)
    return {
        "groups": store.load("groups", group_rows),
        "metadata": store.load("metadata", definitions(seed)),
        "objects": store.load("objects", objects(seed, size, {g["name"]: g["id"] for g in group_rows})),
    }
