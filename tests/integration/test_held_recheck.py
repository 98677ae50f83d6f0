"""Held (skipped/quarantined) records on incremental cycles: re-checked in turn, all at once when lookups change.

An incremental cycle must cost what changed, not what is held: with thousands of boxes waiting for an OLT that
IXC does not know, each cycle re-reads only the ``HELD_RECHECK`` least recently checked ones, and every held
box still gets its turn; one checked less than ``HELD_RECHECK_AFTER`` ago is not due yet. A change to the rule's
lookup tables (a project or OLT added to IXC) can release any of them, so then all of them are re-read at once.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler import cycle
from reconciler.applying import iso_utc

from .conftest import Sandboxes, oid
from .test_boxes_e2e import build_world, sync

pytestmark = pytest.mark.anyio

HELD = {oid(103), oid(106), oid(107)}  # OLT unknown to IXC, project missing in IXC, no coordinates


async def world_with_an_old_backlog(sb: Sandboxes) -> None:
    """The boxes world, with one box edited now: the cursor moves past the lag window of the held boxes."""
    build_world(sb)
    await sb.control("ozmap", "PATCH", f"store/boxes/{oid(101)}", {"observation": "edited today"})


def _filters(entry: dict[str, Any]) -> list[dict[str, Any]]:
    for place in (entry.get("body"), entry.get("query")):
        if isinstance(place, dict) and "filter" in place:
            found = place["filter"]
            return list(json.loads(found) if isinstance(found, str) else found)
    return []


async def boxes_read_by_id(sb: Sandboxes) -> set[str]:
    """Ids of the boxes the last cycle read by id (``id in [...]``), from the sandbox's request log."""
    ids: set[str] = set()
    for entry in await sb.control("ozmap", "GET", "requests"):
        if entry["path"].rstrip("/").endswith("/boxes"):
            for condition in _filters(entry):
                if condition.get("property") == "id" and condition.get("operator") == "in":
                    ids.update(condition["value"])
    await sb.control("ozmap", "DELETE", "requests")
    return ids


async def test_each_incremental_cycle_rechecks_the_least_recently_checked_held_records(
    sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cycle, "HELD_RECHECK", 1)
    monkeypatch.setattr(cycle, "HELD_RECHECK_AFTER", timedelta(0))  # every held box is due at once
    await world_with_an_old_backlog(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)  # full: the three held boxes are recorded
    await sandboxes.control("ozmap", "DELETE", "requests")
    turns = []
    for _ in range(3):
        run = await sync(cfg)
        assert run.plan.entities[0].mode == "incremental"
        turns.append(await boxes_read_by_id(sandboxes))
    assert all(len(turn) == 1 for turn in turns), turns
    assert set().union(*turns) == HELD, turns  # each held box had its turn, least recently checked first


async def test_a_change_to_the_lookup_tables_rechecks_every_held_record(
    sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cycle, "HELD_RECHECK", 1)
    await world_with_an_old_backlog(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)
    await sandboxes.control("ozmap", "DELETE", "requests")
    # IXC learns the project of CTO-6: a lookup table changed, so every held box is re-read.
    sandboxes.ixc.load(
        "df_projeto",
        [
            {
                "id": "4",
                "nome": "Curitiba",
                "latitude": "-25.4",
                "longitude": "-49.2",
                "zoom": "14",
                "status": "A",
            }
        ],
    )
    await sync(cfg)
    assert await boxes_read_by_id(sandboxes) == HELD
    assert "CTO-6" in {r["descricao"] for r in sandboxes.ixc.all("rad_caixa_ftth")}
    # Nothing changed since, and the two boxes still held were checked just now: none is due yet.
    await sync(cfg)
    assert await boxes_read_by_id(sandboxes) == set()


async def test_a_held_record_checked_moments_ago_is_not_read_again(sandboxes: Sandboxes) -> None:
    await world_with_an_old_backlog(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)  # full: the three held boxes are checked and recorded now
    await sandboxes.control("ozmap", "DELETE", "requests")
    run = await sync(cfg)
    assert run.plan.entities[0].mode == "incremental"
    assert await boxes_read_by_id(sandboxes) == set()
    # One of them was last checked longer ago than HELD_RECHECK_AFTER: that one is due, and only once.
    long_ago = datetime.now(UTC) - cycle.HELD_RECHECK_AFTER - timedelta(minutes=1)
    with contextlib.closing(sqlite3.connect(cfg.state_path)) as db, db:
        changed = db.execute(
            "UPDATE quarantine SET at = ? WHERE source_id = ?",
            (iso_utc(long_ago), oid(106)),
        ).rowcount
    assert changed == 1
    await sync(cfg)
    assert await boxes_read_by_id(sandboxes) == {oid(106)}
    await sync(cfg)
    assert await boxes_read_by_id(sandboxes) == set()


async def test_a_held_record_named_for_recheck_is_read_however_recently_it_was_checked(
    sandboxes: Sandboxes,
) -> None:
    # The daemon names the records whose backoff after failures has run out: they are retried at once.
    await world_with_an_old_backlog(sandboxes)
    cfg = sandboxes.config()
    await sync(cfg)
    await sandboxes.control("ozmap", "DELETE", "requests")
    await sync(cfg, recheck={"boxes": [oid(107), "not-held"]})
    assert await boxes_read_by_id(sandboxes) == {oid(107)}
