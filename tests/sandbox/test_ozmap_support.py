"""OZmap sandbox test support: a tiny world, a running server over real HTTP — plus store-level tests.

The world (one project, an OLT → slot → PON chain, boxes with network and service splitters) is loaded with
``OzmapStore.load`` exactly as the API would return it, on a frozen clock, so ids and timestamps are stable.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ozmap import FAULTS_KEY, STORE_KEY, OzmapStore, create_app
from reconciler.sandbox.ozmap_values import ApiError

KEY = "test-api-key"
T0 = "2025-01-01T00:00:00.000Z"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def oid(n: int) -> str:
    """A deterministic 24-hex ObjectId."""
    return f"{0x65F1C0DE << 64 | n:024x}"


@dataclass(frozen=True)
class World:
    """Ids of the fixture records."""

    project: str = oid(1)
    box_type: str = oid(2)
    splitter_type: str = oid(3)
    olt: str = oid(10)
    slot: str = oid(11)
    pon: str = oid(12)
    box1: str = oid(20)  # implanted, network + service splitter, 60 m from CENTRE
    box2: str = oid(21)  # "in project" (implanted false), service splitter
    box3: str = oid(22)  # implanted, network splitter only, ~150 m away
    box4: str = oid(23)  # implanted, service splitter with every port taken, ~110 m away
    net1: str = oid(30)
    svc1: str = oid(31)
    svc2: str = oid(32)
    net3: str = oid(33)
    svc4: str = oid(34)
    tag: str = oid(40)
    user: str = oid(50)
    pendency_type: str = oid(60)


W = World()
CENTRE = {"lat": -27.5900, "lng": -48.5500}


def _stamp(record: dict[str, Any]) -> dict[str, Any]:
    return {"createdAt": T0, "updatedAt": T0, **record}


def _splitter(
    sid: str, name: str, parent: str, *, drop: bool, outputs: int, feed: str, out: list[Any]
) -> dict[str, Any]:
    return _stamp(
        {
            "id": sid,
            "kind": "Splitter",
            "parent": parent,
            "project": W.project,
            "splitterType": W.splitter_type,
            "name": name,
            "isDrop": drop,
            "implanted": True,
            "ratio": {"input": 1, "output": outputs},
            "connectables": {"input": [feed], "output": out + [None] * (outputs - len(out))},
            "ports": [
                {"index": i, "id": oid(1000 + i), "blocked": False, "tags": []} for i in range(outputs)
            ],
            "attenuation": [10.5] * outputs,
            "currentPower": [None] * outputs,
            "installPower": [None] * outputs,
            "tags": [],
        }
    )


def _box(bid: str, name: str, lng: float, lat: float, *, implanted: bool) -> dict[str, Any]:
    return _stamp(
        {
            "id": bid,
            "kind": "Box",
            "name": name,
            "project": W.project,
            "coords": [lng, lat],
            "hierarchyLevel": 3,
            "boxType": W.box_type,
            "implanted": implanted,
            "draft": False,
            "certified": False,
            "shared": False,
            "default_reserve": 0,
            "address": None,
            "observation": None,
            "pole": None,
            "tags": [W.tag] if bid == W.box1 else [],
            "cables": [],
        }
    )


def load_world(store: OzmapStore) -> World:
    """Load the fixture world into ``store``."""
    area = {
        "type": "Polygon",
        "coordinates": [
            [[-48.56, -27.60], [-48.54, -27.60], [-48.54, -27.58], [-48.56, -27.58], [-48.56, -27.60]]
        ],
    }
    store.load("users", [_stamp({"id": W.user, "name": "api", "username": "api"})])
    store.load(
        "projects", [_stamp({"id": W.project, "name": "Chicago", "area": area, "defaultPonPotency": 3})]
    )
    store.load("box-types", [_stamp({"id": W.box_type, "name": "CTO 16", "prefix": "CTO"})])
    store.load("splitter-types", [_stamp({"id": W.splitter_type, "ratio": {"input": 1, "output": 8}})])
    store.load("tags", [_stamp({"id": W.tag, "name": "outage", "allowedTypes": ["box", "client"]})])
    store.load("pendency-types", [_stamp({"id": W.pendency_type, "name": "Fix"})])
    store.load(
        "olts",
        [
            _stamp(
                {
                    "id": W.olt,
                    "kind": "OLT",
                    "name": "OLT-1",
                    "ip": "10.0.0.7",
                    "project": W.project,
                    "connectables": [W.slot],
                    "port": 22,
                }
            )
        ],
    )
    store.load("slots", [_stamp({"id": W.slot, "kind": "Slot", "parent": W.olt, "connectables": [W.pon]})])
    store.load(
        "pons",
        [_stamp({"id": W.pon, "kind": "PON", "parent": W.slot, "connectables": ["f-pon"], "potency": 3})],
    )
    store.load(
        "boxes",
        [
            _box(W.box1, "CTO-1", -48.5500, -27.5905, implanted=True),
            _box(W.box2, "CTO-2", -48.5505, -27.5900, implanted=False),
            _box(W.box3, "CE-3", -48.5485, -27.5900, implanted=True),
            _box(W.box4, "CTO-4", -48.5500, -27.5910, implanted=True),
            _box(oid(24), "CTO-far", -48.60, -27.70, implanted=True),
        ],
    )
    full = [f"f-taken-{i}" for i in range(8)]
    splitters = [
        _splitter(W.net1, "NET-1", W.box1, drop=False, outputs=4, feed="f-pon", out=["f-n1", "f-n3", "f-n4"]),
        _splitter(W.svc1, "SVC-1", W.box1, drop=True, outputs=8, feed="f-n1", out=[]),
        _splitter(W.svc2, "SVC-2", W.box2, drop=True, outputs=8, feed="f-x", out=[]),
        _splitter(W.net3, "NET-3", W.box3, drop=False, outputs=4, feed="f-n3", out=[]),
        _splitter(W.svc4, "SVC-4", W.box4, drop=True, outputs=8, feed="f-n4", out=full),
    ]
    splitters[1]["ports"][1]["blocked"] = True  # svc1 port 2
    store.load("splitters", splitters)
    return W


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def make_store(**kwargs: Any) -> OzmapStore:
    kwargs.setdefault("api_keys", {KEY: "api"})
    kwargs.setdefault("logins", {"api": "secret"})
    kwargs.setdefault("clock", FrozenClock())
    store = OzmapStore(**kwargs)
    load_world(store)
    return store


@dataclass
class Sandbox:
    """A running OZmap sandbox and an authenticated client session (``base_url`` = the server)."""

    store: OzmapStore
    faults: Faults
    http: aiohttp.ClientSession
    url: str

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """One request; answers (status, decoded JSON or text or None)."""
        async with self.http.request(method, path, **kwargs) as response:
            raw = await response.read()
            if not raw:
                return response.status, None
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, raw.decode()

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        """A request that must answer ``status``; returns its body."""
        got, body = await self.call(method, path, **kwargs)
        assert got == status, (got, body)
        return body


@contextlib.asynccontextmanager
async def serve(store: OzmapStore | None = None, *, faults: Faults | None = None) -> AsyncIterator[Sandbox]:
    """Run the sandbox on 127.0.0.1 (random port) with a session sending the API key."""
    store = store if store is not None else make_store()
    app = create_app(store, faults=faults)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url("/"))
        async with aiohttp.ClientSession(base_url=base, headers={"Authorization": KEY}) as http:
            yield Sandbox(store, app[FAULTS_KEY], http, base)
    finally:
        await server.close()


# -- store-level tests -----------------------------------------------------------------------------------------


def test_load_fills_missing_fields_and_keeps_given_ones() -> None:
    store = OzmapStore(clock=FrozenClock())
    store.load("boxes", [{"id": oid(1), "coords": [-48.5, -27.5], "createdAt": T0, "updatedAt": T0}])
    store.load("properties", [{"_id": oid(2), "kind": "Property"}])
    box = store.get("boxes", oid(1))
    assert box is not None
    assert (box["_id"], box["kind"], box["lat"], box["lng"], box["updatedAt"]) == (
        oid(1),
        "Box",
        -27.5,
        -48.5,
        T0,
    )
    prop = store.get("properties", oid(2))
    assert prop is not None
    assert prop["id"] == oid(2) and prop["lat"] is None and prop["createdAt"].endswith("Z")


def test_all_and_get_return_copies_in_id_order() -> None:
    store = make_store()
    store.soft_delete("boxes", W.box3)
    ids = [r["id"] for r in store.all("boxes")]
    assert ids == sorted(ids) and W.box3 not in ids
    assert W.box3 in [r["id"] for r in store.all("boxes", include_deleted=True)]
    copy = store.get("boxes", W.box1)
    assert copy is not None
    copy["name"] = "mutated"
    assert store.get("boxes", W.box1) == {**copy, "name": "CTO-1"}
    assert store.get("boxes", "nope") is None and store.all("nothing") == []


def test_stamps_strictly_increase_on_a_frozen_clock_and_pass_loaded_ones() -> None:
    store = OzmapStore(clock=FrozenClock())
    store.load("boxes", [{"id": oid(1), "createdAt": T0, "updatedAt": "2030-01-01T00:00:00.000Z"}])
    stamps = [store.stamp() for _ in range(5)]
    assert stamps == sorted(set(stamps)) and stamps[0] > "2030-01-01T00:00:00.000Z"
    assert all(len(s) == 24 and s.endswith("Z") for s in stamps)


def test_new_ids_are_24_hex_and_sort_after_loaded_ones() -> None:
    store = make_store()
    fresh = [store.new_id() for _ in range(3)]
    assert fresh == sorted(fresh) and all(len(i) == 24 and int(i, 16) for i in fresh)
    assert fresh[0] > max(r["id"] for r in store.all("boxes"))


def test_clock_advance_moves_stamps() -> None:
    store = make_store()
    before = store.stamp()
    store.advance_clock(3600)
    assert store.stamp() >= "2025-06-01T13:00:00.000Z" > before


def test_query_cache_follows_writes() -> None:
    store = make_store()
    flt = [{"property": "implanted", "operator": "=", "value": True}]
    first = store.query("boxes", flt, None)
    assert store.query("boxes", flt, None) is first or len(first) <= 256
    store.update("boxes", W.box2, {"implanted": True})
    assert W.box2 in store.query("boxes", flt, None)


def test_indexes_are_maintained_across_writes() -> None:
    store = make_store()
    by_parent = [{"property": "parent", "operator": "=", "value": W.box1}]
    assert [s["id"] for s in store.lookup("splitters", "parent", W.box1)] == [W.net1, W.svc1]
    store.update("splitters", W.svc1, {"parent": W.box3})
    assert store.query("splitters", by_parent, None) == [W.net1]
    recent = [{"property": "updatedAt", "operator": ">", "value": T0}]
    assert store.query("splitters", recent, None) == [W.svc1]
    store.soft_delete("splitters", W.net1)
    assert store.query("splitters", by_parent, None) == []
    near = [{"property": "coords", "operator": "near", "value": {**CENTRE, "radius": 80}}]
    assert store.query("boxes", near, None) == [W.box2, W.box1]
    store.update("boxes", W.box2, {"coords": [-48.7, -27.7]})
    assert store.query("boxes", near, None) == [W.box1]


def test_indexes_built_before_serving_answer_like_the_lazy_ones_and_follow_writes() -> None:
    lazy, eager = make_store(), make_store()
    eager.build_query_indexes()
    fibres = sorted(
        {f for s in lazy.all("splitters") for f in (s.get("connectables") or {}).get("output") or [] if f}
    )
    queries = [
        ("splitters", [{"property": "connectables.output", "operator": "in", "value": fibres[:2]}]),
        ("splitters", [{"property": "parent", "operator": "=", "value": W.box1}]),
        ("boxes", [{"property": "updatedAt", "operator": ">=", "value": T0}]),
    ]
    for collection, flt in queries:
        assert eager.query(collection, flt, None) == lazy.query(collection, flt, None), flt
    for store in (lazy, eager):
        store.update("splitters", W.net1, {"connectables": {"input": [], "output": ["moved-fibre"]}})
    moved = [{"property": "connectables.output", "operator": "in", "value": ["moved-fibre"]}]
    assert eager.query("splitters", moved, None) == lazy.query("splitters", moved, None) == [W.net1]
    with pytest.raises(ValueError, match="no index"):
        eager.build_indexes("boxes", "colour")


def test_filter_errors_are_400() -> None:
    store = make_store()
    for bad in (
        [{"property": "name", "operator": "eq", "value": "x"}],
        [{"operator": "=", "value": "x"}],
        "not a list",
        [{"property": "n", "operator": "in", "value": "x"}],
        [{"property": "updatedAt", "operator": ">", "value": "yesterday"}],
        [{"property": "coords", "operator": "near", "value": {"lat": "x", "lng": 1}}],
    ):
        with pytest.raises(ApiError) as info:
            store.query("boxes", bad, None)
        assert info.value.status == 400, bad
    with pytest.raises(ApiError, match="direction"):
        store.query("boxes", None, [{"property": "name", "direction": 2}])


def test_load_is_fast_and_paging_queries_are_cached() -> None:
    store = OzmapStore()
    rows = [
        {
            "id": f"{i:024x}",
            "name": f"CTO-{i}",
            "project": "p",
            "coords": [-48.5 + i * 1e-5, -27.5],
            "implanted": i % 2 == 0,
            "createdAt": T0,
            "updatedAt": T0,
        }
        for i in range(100_000)
    ]
    started = time.perf_counter()
    try:
        store.load("boxes", rows)
    finally:
        gc.unfreeze()  # load() froze the heap; let the test session collect it again
    assert time.perf_counter() - started < 5.0
    flt = [{"property": "implanted", "operator": "=", "value": True}]
    ids = store.query("boxes", flt, None)
    started = time.perf_counter()
    for _ in range(100):
        assert store.query("boxes", flt, None) is ids
    assert time.perf_counter() - started < 0.5
    assert len(ids) == 50_000 and STORE_KEY.__class__.__name__ == "AppKey"
