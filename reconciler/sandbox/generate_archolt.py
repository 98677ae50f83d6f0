"""The ArchOLT install of a generated world: :func:`archolt_world.archolt_rows` fed with the world's OZmap side.

:func:`world_rows` hands ``archolt_rows`` the world's OZmap OLTs (``id``, ``name``, ``ip``; the last one stays
unmapped in ArchOLT) and the boxes the box sync would mirror: implanted CTO boxes with coordinates whose first
service splitter traces back to an OLT, with their project name and service ports (16 per splitter). Of the CTO
mirrors only those the generated ONUs use are kept, so a first sync both adopts existing mirrors and loads the
rest (the seed's initial load). ``onus`` ≈ a tenth of the world's scale (at least 12).

Same world and ``now`` → same rows. Imports only the stdlib and the sandbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reconciler.sandbox import generate_base as gb
from reconciler.sandbox.archolt_world import archolt_rows
from reconciler.sandbox.generate import World
from reconciler.sandbox.generate_layout import SERVICE_PORTS
from reconciler.sandbox.generate_ozmap import box_name

__all__ = ["world_rows"]

_NOT_MIRRORED = frozenset({gb.B_IN_PROJECT, gb.B_NO_COORDS})


def world_rows(world: World, *, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Rows per ArchOLT collection (``olts``, ``ctos``, ``onus``, ``events``) for ``ArcholtStore.load``."""
    lay = world.layout
    olts = [{"id": r["id"], "name": r["name"], "ip": r["ip"]} for r in world.ozmap_rows("olts")]
    boxes: list[dict[str, Any]] = []
    for c in lay.box_container:
        first, count = lay.cont_first[c], lay.cont_count[c]
        if not count or lay.cont_category[c] in _NOT_MIRRORED or lay.untraceable(first):
            continue
        lat, lng = lay.container_coords(c)
        boxes.append(
            {
                "id": lay.container_id(c),
                "name": box_name(lay, c),
                "ozmap_olt_id": lay.oid(gb.K_OLT, lay.service_olt(first)),
                "lat": lat,
                "lng": lng,
                "project": lay.project_names[lay.container_project(c)],
                "ports_total": SERVICE_PORTS * count,
            }
        )
    rows = archolt_rows(world.seed, max(12, world.scale // 10), olts, ozmap_boxes=boxes, now=now)
    used = {onu["cto"]["id"] for onu in rows["onus"] if onu["cto"] is not None}
    rows["ctos"] = [cto for cto in rows["ctos"] if cto["id"] in used]
    return rows
