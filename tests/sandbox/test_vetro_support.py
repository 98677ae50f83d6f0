"""Vetro sandbox test support (a small tenant, a running server over real HTTP), plus store-level tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler.sandbox import vetro_seed
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.vetro import DEFAULT_TOKEN, FAULTS_KEY, TokenScope, VetroStore, create_app
from reconciler.sandbox.vetro_filter import FilterError, canonical, matches, parse_filter, parse_order

NOW = datetime(2025, 6, 3, 14, 0, 0, tzinfo=UTC)
READ_ONLY = "read-only-token"
PLAN_112_ONLY = "plan-112-token"
TOKENS = {
    DEFAULT_TOKEN: TokenScope(),
    READ_ONLY: TokenScope(read_only=True),
    PLAN_112_ONLY: TokenScope(plans=[112]),
}


def sl(n: int, plan: int = 112, **props: Any) -> dict[str, Any]:
    """Service location ``n`` (vetro_id ``00000000-…-<n>``), last edited 2025-05-<n % 28 + 1> 10:00 UTC."""
    properties: dict[str, Any] = {
        "ID": f"SL-{n:04d}",
        "Street Address": f"{n} Maple St",
        "City": "Montpelier",
        "State": "VT",
        "Zip Code": "05602",
        "Building Type": "Residential",
        "Address Import": "Yes",
        "Status": "Deliverable",
        "Group Name": "Montpelier Phase 2",
    }
    properties.update(props)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-72.5 - n / 1000, 44.26]},
        "x-vetro": {
            "vetro_id": vid(n),
            "feature_id": 1000 + n,
            "layer_id": 26,
            "plan_id": plan,
            "created_time": "2025-02-01T00:00:00.000Z",
            "last_edited_time": f"2025-05-{n % 28 + 1:02d}T10:00:00.000Z",
        },
        "properties": properties,
    }


def vid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def make_store(count: int = 7) -> VetroStore:
    """Plans/layers of the seed, ``count`` service locations (plan 112 except n % 3 == 0 → 113) and one pole."""
    store = VetroStore(tokens=TOKENS, clock=lambda: NOW)
    store.knobs.rate_limit = 0
    store.load("plans", vetro_seed.PLANS)
    store.load("layers", vetro_seed.LAYERS)
    store.load("features", [sl(n, 113 if n % 3 == 0 else 112) for n in range(1, count + 1)])
    pole = {
        "geometry": {"type": "Point", "coordinates": [-72.5, 44.2]},
        "x-vetro": {"vetro_id": vid(999), "feature_id": 5000, "layer_id": 11, "plan_id": 112},
        "properties": {"ID": "P-1"},
    }
    store.load("features", [pole])
    return store


@dataclass
class Sandbox:
    store: VetroStore
    faults: Faults
    http: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, *, token: str | None = DEFAULT_TOKEN, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers.setdefault("token", token)
        async with self.http.request(method, path, headers=headers, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, text

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status == 200, body
        return body

    async def result(self, method: str, path: str, **kwargs: Any) -> Any:
        body = await self.ok(method, path, **kwargs)
        assert body["success"] is True
        return body["result"]


@contextlib.asynccontextmanager
async def serve(store: VetroStore | None = None) -> AsyncIterator[Sandbox]:
    store = store if store is not None else make_store()
    app = create_app(store)
    async with TestServer(app, host="127.0.0.1") as server:
        async with aiohttp.ClientSession(str(server.make_url(""))) as http:
            yield Sandbox(store, app[FAULTS_KEY], http)


# -- store-level tests ---------------------------------------------------------------------------------------


def test_filter_grammar_parses_quoted_labels_numbers_and_time() -> None:
    clauses = parse_filter('last_edited_time>="2025-06-03T16:00:00+02:00" AND "Address Import"="Yes" AND n<3')
    assert [(c.name, c.op, c.value, c.reserved) for c in clauses] == [
        ("last_edited_time", ">=", "2025-06-03T14:00:00.000Z", True),
        ("Address Import", "=", "Yes", False),
        ("n", "<", 3.0, False),
    ]
    assert parse_filter('"a \\"b\\""="x AND y"')[0].name == 'a "b"'
    assert parse_filter('ID="x AND y"')[0].value == "x AND y"
    for bad in ("ID=x", '"ID"', 'ID=="1"', "last_edited_time>=3", 'ID="1" OR ID="2"', '"open=1'):
        with pytest.raises(FilterError):
            parse_filter(bad)
    assert parse_order("ID:desc") == ("ID", True) and parse_order('"Zip Code":asc') == ("Zip Code", False)
    with pytest.raises(FilterError):
        parse_order("ID:sideways")


def test_filter_matching_numbers_text_and_nulls() -> None:
    feature = sl(1)
    feature["properties"]["Zip Code"] = None
    feature["properties"]["Count"] = 12
    assert matches(feature, parse_filter('Count>=12 AND Count<"13" AND City!="Barre"'))
    assert not matches(feature, parse_filter('"Zip Code"="05602"'))
    assert matches(feature, parse_filter('"Zip Code"!="05602"'))
    assert matches(feature, parse_filter('last_edited_time>="2025-05-02T10:00:00Z"'))
    assert not matches(feature, parse_filter('last_edited_time>"2025-05-02T10:00:00.000Z"'))
    assert canonical("2025-06-02T12:00:00.5+02:00") == "2025-06-02T10:00:00.500Z"


def test_load_completes_features_and_keeps_feature_id_order() -> None:
    store = make_store(3)
    store.load("features", [{"x-vetro": {"layer_id": 26, "plan_id": 120, "feature_id": 1}, "properties": {}}])
    ids = [f["x-vetro"]["feature_id"] for f in store.all("features")]
    assert ids == sorted(ids) and ids[0] == 1
    first = store.all("features")[0]["x-vetro"]
    assert (
        first["project_id"] == 14 and first["last_edited_time"].endswith("Z") and len(first["vetro_id"]) == 36
    )


def test_stamps_strictly_increase_on_a_frozen_clock() -> None:
    store = VetroStore(clock=lambda: NOW)
    stamps = [store.stamp() for _ in range(3)]
    assert stamps == sorted(set(stamps)) and stamps[0] == "2025-06-03T14:00:00.000Z"
    assert store.set_clock(advance_seconds=60).startswith("2025-06-03T14:01:00")
    assert store.set_clock(now="2025-07-01T00:00:00Z") == "2025-07-01T00:00:00.000Z"


def test_seed_is_deterministic_and_covers_every_import_condition() -> None:
    one, two = VetroStore(), VetroStore()
    assert vetro_seed.seed_into(one, seed=7, size=400) == {"plans": 3, "layers": 5, "features": 440}
    vetro_seed.seed_into(two, seed=7, size=400)
    assert one.all("features") == two.all("features")
    locations = [f["properties"] for f in one.all("features") if f["x-vetro"]["layer_id"] == 26]
    assert any(p["Address Import"] == "No" for p in locations)
    assert any(p["Zip Code"] == "" or p["City"] == "" for p in locations)
    assert any(p["Group Name"] not in vetro_seed.GROUP_NAMES for p in locations)
    assert any(p["Building Type"] is None for p in locations)
    assert sum(p["Address Import"] == "Yes" for p in locations) > 250
    assert vetro_seed.service_location(7, 5) == vetro_seed.service_location(7, 5)
