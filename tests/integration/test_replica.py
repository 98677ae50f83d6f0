"""Field-service replica (seed 001 "Element Synchronization"): OZmap boxes and splitters → a local SQLite file.

The OZmap sandbox runs on loopback; the replica is a real SQLite file read back with ``sqlite3`` the way a
field-service tool would. The last test is issue 8's "done when": a box deleted in OZmap disappears from the
replica, with its splitters, on the next incremental cycle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler import config as config_mod
from reconciler.engine import Engine, IntegrationRun
from reconciler.model import Create, Delete, Update
from reconciler.sandbox.ozmap import OzmapStore
from reconciler.sandbox.ozmap import create_app as create_ozmap_app

from .conftest import OZMAP_KEY, TS, _serve, oid, ozmap_box, ozmap_splitter

pytestmark = pytest.mark.anyio

PROJECT = oid(1)
BOXES = [oid(100 + n) for n in range(4)]
BUILDING = oid(300)


class Replica:
    """The sandbox, a config with an OZmap system and a replica system, and the replica file."""

    def __init__(self, store: OzmapStore, url: str, tmp: Path) -> None:
        self.store, self.url, self.tmp = store, url, tmp
        self.db = tmp / "field" / "replica.db"
        (tmp / "ozmap.key").write_text(OZMAP_KEY)
        path = tmp / "reconciler.toml"
        path.write_text(
            f"""
[state]
path = "state.db"

[systems.ozmap]
kind = "ozmap"
url = "{url}"
secret = {{ file = "ozmap.key" }}
[systems.ozmap.http]
retries = 2
backoff = 0.01
timeout = 5

[systems.replica]
kind = "replica"
url = "sqlite://{self.db}"

[integrations.ozmap-replica]
"""
        )
        self.config = config_mod.load(path)

    async def run(self, **kwargs: Any) -> IntegrationRun:
        async with Engine.open(self.config) as engine:
            return await engine.run("ozmap-replica", **kwargs)

    def rows(self, table: str) -> dict[str, dict[str, Any]]:
        with sqlite3.connect(self.db) as db:
            db.row_factory = sqlite3.Row
            return {r["id"]: dict(r) for r in db.execute(f'SELECT * FROM "{table}"')}

    async def control(self, method: str, path: str, body: Any = None) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, f"{self.url}/_sandbox/{path}", json=body) as resp:
                assert resp.status < 400, await resp.text()


@pytest.fixture
async def replica(tmp_path: Path) -> AsyncIterator[Replica]:
    store = OzmapStore(api_keys={OZMAP_KEY: "integration"})
    _world(store)
    runner, url = await _serve(create_ozmap_app(store))
    try:
        yield Replica(store, url, tmp_path)
    finally:
        await runner.cleanup()


def _world(store: OzmapStore) -> None:
    store.load("projects", [{"id": PROJECT, "name": "Chicago", "createdAt": TS, "updatedAt": TS}])
    store.load(
        "boxes",
        [ozmap_box(100 + n, f"CTO-{n}", PROJECT, lat=-27.59 + n / 1000, implanted=n != 3) for n in range(4)],
    )
    store.load(
        "buildings",
        [{"id": BUILDING, "kind": "Building", "name": "Edifício Aurora", "project": PROJECT,
          "coords": [-48.56, -27.6], "implanted": True, "createdAt": TS, "updatedAt": TS}],
    )  # fmt: skip
    splitters = [
        ozmap_splitter(
            200 + n, BOXES[n], PROJECT, is_drop=True, inputs=[f"f-{n}"], outputs=["f-x", None, None, None]
        )
        for n in range(4)
    ]
    splitters.append(
        ozmap_splitter(204, BOXES[0], PROJECT, is_drop=False, inputs=[None], outputs=[None, None])
    )
    splitters.append(ozmap_splitter(205, BUILDING, PROJECT, is_drop=True, inputs=[None], outputs=[None] * 8))
    splitters[0]["ports"][1]["blocked"] = True
    store.load("splitters", splitters)


async def test_first_cycle_copies_every_box_and_splitter(replica: Replica) -> None:
    result = await replica.run(apply=True)
    assert result.failures == 0
    plans = {p.entity: p for p in result.plan.entities}
    assert plans["boxes"].count("create") == 4 and plans["splitters"].count("create") == 6
    boxes = replica.rows("boxes")
    assert set(boxes) == set(BOXES)
    first = boxes[BOXES[0]]
    assert (first["name"], first["project_name"], first["implanted"], first["lat"]) == (
        "CTO-0",
        "Chicago",
        1,
        -27.59,
    )
    assert (first["service_splitters"], first["service_ports"]) == (1, 4)
    assert boxes[BOXES[3]]["implanted"] == 0  # "in project" boxes are part of the network too
    assert first["synced_at"]
    splitters = replica.rows("splitters")
    service = splitters[oid(200)]
    assert (service["parent_id"], service["parent_kind"], service["is_drop"]) == (BOXES[0], "Box", 1)
    assert (service["ports_free"], service["ports_blocked"], service["free_ports"]) == (2, 1, "[3,4]")
    assert (service["created_at"], service["updated_at"]) == (TS, TS)
    assert splitters[oid(205)]["parent_kind"] == "Building"
    assert splitters[oid(204)]["is_drop"] == 0
    again = await replica.run()
    assert again.plan.changes == 0


async def test_incremental_cycle_follows_creates_updates_and_deletes(replica: Replica) -> None:
    await replica.run(apply=True)
    await replica.control("POST", "clock", {"advance_seconds": 120})
    await replica.control("PATCH", f"store/boxes/{BOXES[1]}", {"name": "CTO-1B"})
    await replica.control("DELETE", f"store/boxes/{BOXES[2]}")  # soft delete, like a user in OZmap's UI
    new_box = {
        k: v for k, v in ozmap_box(104, "CTO-NEW", PROJECT).items() if k not in ("createdAt", "updatedAt")
    }
    await replica.control("POST", "store/boxes", new_box)  # created now: createdAt = updatedAt = the clock
    take = {"connectables": {"input": ["f-0"], "output": ["f-x", None, "f-client", None]}}
    await replica.control("PATCH", f"store/splitters/{oid(200)}", take)  # a client took port 3

    result = await replica.run(apply=True)
    assert result.failures == 0
    boxes_plan, splitters_plan = (p for p in result.plan.entities)
    assert boxes_plan.mode == "incremental" and splitters_plan.mode == "incremental"
    kinds = {a.source_id: type(a) for a in boxes_plan.actions}
    assert kinds == {BOXES[1]: Update, BOXES[2]: Delete, oid(104): Create}
    assert {a.source_id: type(a) for a in splitters_plan.actions} == {oid(200): Update, oid(202): Delete}

    boxes = replica.rows("boxes")
    assert BOXES[2] not in boxes  # deleted in OZmap → gone from the replica
    assert boxes[BOXES[1]]["name"] == "CTO-1B" and boxes[oid(104)]["name"] == "CTO-NEW"
    splitters = replica.rows("splitters")
    assert oid(202) not in splitters  # the deleted box's splitter went with it
    assert (splitters[oid(200)]["ports_free"], splitters[oid(200)]["free_ports"]) == (1, "[4]")
    assert (await replica.run()).plan.changes == 0


async def test_box_deleted_in_ozmap_disappears_on_next_incremental_cycle(replica: Replica) -> None:
    await replica.run(apply=True)
    assert BOXES[0] in replica.rows("boxes")
    await replica.control("DELETE", f"store/boxes/{BOXES[0]}")
    result = await replica.run(apply=True)
    plan = next(p for p in result.plan.entities if p.entity == "boxes")
    assert plan.mode == "incremental"
    assert [type(a) for a in plan.actions] == [Delete]
    assert BOXES[0] not in replica.rows("boxes")
    assert set(replica.rows("boxes")) == set(BOXES[1:])
    assert {oid(200), oid(204)}.isdisjoint(replica.rows("splitters"))  # its service and network splitters


async def test_replica_needs_no_secret_and_rejects_unknown_tables(replica: Replica) -> None:
    from reconciler.connectors import registry
    from reconciler.errors import ConfigError

    system = replica.config.systems["replica"]
    assert system.secret.reveal() == ""
    async with aiohttp.ClientSession() as session:
        connector = registry.create(system, session)
        with pytest.raises(ConfigError, match="unknown collection 'poles'"):
            await connector.fetch_by_ids("poles", ["x"])


def test_replica_url_forms() -> None:
    from reconciler.connectors.replica.connector import replica_path
    from reconciler.errors import ConfigError

    assert str(replica_path("sqlite:///var/lib/reconciler/replica.db")) == "/var/lib/reconciler/replica.db"
    assert str(replica_path("sqlite:data/replica.db")) == "data/replica.db"
    assert str(replica_path("sqlite://replica.db")) == "replica.db"
    assert str(replica_path("/tmp/r.db")) == "/tmp/r.db"
    with pytest.raises(ConfigError, match="names no file"):
        replica_path("sqlite://")
