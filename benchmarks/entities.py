"""The entities the benchmarks know, by name: how to size their world and how to change their records.

A scenario never hard-codes ``boxes``: it asks :data:`ENTITIES` for the entity named on the command line. To
benchmark a new entity (``clients`` when its rule file lands), add one :class:`BenchEntity` here: the sandbox
world it needs, how many of its source records a world of a given scale holds, and the edit a field team would
make to one of its records (the change the engine must carry over).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.sandbox import World

EditBody = Callable[[str, int], dict[str, Any]]


@dataclass(frozen=True)
class BenchEntity:
    """One entity as the benchmarks drive it.

    ``world``: the sandbox world it needs (``network`` has no clients, see :mod:`benchmarks.sandbox`).
    ``per_scale``: source records per unit of sandbox ``--scale`` in that world (approximate, for sizing only;
    the tables report the records really fetched). ``edit``: the control-API PATCH body that changes one
    source record the way a user would, given a tag and a running number.
    """

    name: str
    integration: str
    world: World
    per_scale: float
    source_system: str
    source_collection: str
    """Collection name of the source sandbox's control API (``/_sandbox/store/<collection>``)."""
    target_system: str
    target_route: str
    """Regex of the target API routes the entity's apply writes through (where apply latency is injected)."""
    edit: EditBody

    def world_scale(self, records: int) -> int:
        """The sandbox ``--scale`` whose world holds about ``records`` source records of this entity."""
        return max(1000, round(records / self.per_scale))

    def linked_ids(self, state: Path) -> list[str]:
        """Source ids of the active links in a state store, in id order (records the engine keeps in sync)."""
        # closed here, not left to the collector: an open connection would keep every engine cycle after it from
        # being the last one to close the database, which is when SQLite checkpoints and removes the WAL
        with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT source_id FROM links WHERE integration = ? AND entity = ? AND state = 'active' "
                "ORDER BY source_id",
                (self.integration, self.name),
            ).fetchall()
        return [row[0] for row in rows]

    def age_held(self, state: Path) -> int:
        """Mark every held (skipped/quarantined) record as last checked long ago, so an incremental cycle finds
        them due a re-check (``reconciler.cycle.HELD_RECHECK_AFTER``); returns how many are held."""
        with contextlib.closing(sqlite3.connect(state)) as db, db:
            return db.execute(
                "UPDATE quarantine SET at = '2000-01-01T00:00:00.000Z' WHERE integration = ? AND entity = ?",
                (self.integration, self.name),
            ).rowcount


ENTITIES: dict[str, BenchEntity] = {
    # A network-only world of scale S holds ~0.105 S OZmap boxes (S/10 service splitters in CTO boxes and
    # buildings, plus one CE box per 8 of them); scale 10 N therefore gives ~1.05 N boxes.
    "boxes": BenchEntity(
        name="boxes",
        integration="ozmap-ixc",
        world="network",
        per_scale=0.1,
        source_system="ozmap",
        source_collection="boxes",
        target_system="ixc",
        target_route="^/webservice/v1/rad_caixa_ftth",
        edit=lambda tag, n: {"observation": f"bench {tag} {n}"},
    ),
    # OZmap → IXC clients: each client's property (the ``connections`` view: property + client) gives its IXC
    # login the property's coordinates. The full world holds ~0.9 S clients; a field team moves a drop point.
    "client-coordinates": BenchEntity(
        name="client-coordinates",
        integration="ozmap-ixc",
        world="full",
        per_scale=0.9,
        source_system="ozmap",
        source_collection="properties",
        target_system="ixc",
        target_route="^/webservice/v1/radusuarios",
        edit=lambda tag, n: _moved(n),
    ),
}


def _moved(n: int) -> dict[str, Any]:
    """A property moved a few metres (distinct per record, so the login's coordinates really change)."""
    lat, lng = -27.0 - (n % 5000) * 1e-4, -48.0 - (n // 5000 % 5000) * 1e-4
    return {"lat": round(lat, 6), "lng": round(lng, 6), "coords": [round(lng, 6), round(lat, 6)]}
