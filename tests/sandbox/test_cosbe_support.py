"""COS BE sandbox test support (a small environment, a running server, a webhook receiver), plus store tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from reconciler.sandbox import cosbe_seed, vetro_seed
from reconciler.sandbox.cosbe import (
    DEFAULT_API_KEY,
    DEFAULT_ENVIRONMENT,
    FAULTS_KEY,
    ApiKey,
    CosbeStore,
    create_app,
)
from reconciler.sandbox.cosbe_objects import Problem
from reconciler.sandbox.cosbe_store import ListQuery, parse_since
from reconciler.sandbox.faults import Faults

NOW = datetime(2025, 6, 3, 14, 0, 0, tzinfo=UTC)
READ_ONLY = "read-only-key"
OTHER_ENV_KEY = "prod-key"
KEYS = {
    DEFAULT_API_KEY: ApiKey(),
    READ_ONLY: ApiKey(write=False),
    OTHER_ENV_KEY: ApiKey(environment="acme-prod"),
}
HEADERS = {"Authorization": DEFAULT_API_KEY, "BusinessEngine": DEFAULT_ENVIRONMENT}
GROUP = "6018366c-f658-47a7-9ed3-4fe53a096533"
BARRE = "cfaf0010-3f58-4ad4-a308-24d215ceb3a1"
SECRET = "whsec-test"


def oid(n: int) -> str:
    return f"00000000-0000-4000-9000-{n:012d}"


def obj(n: int, **extra: Any) -> dict[str, Any]:
    """Object ``n``, updated 2025-05-<n % 28 + 1> 10:00 UTC, linked to Vetro service location SL-<n>."""
    row: dict[str, Any] = {
        "id": oid(n),
        "objectNumber": 10_000 + n,
        "objectType": "SingleFamilyHome",
        "status": "InDeployment",
        "reachable": True,
        "serviceStatus": "AwaitingActivation",
        "dropInstalled": False,
        "group": {"id": GROUP, "name": "Montpelier Phase 2"},
        "address": {
            "street": f"{n} Maple St",
            "unit": None,
            "city": "Montpelier",
            "state": "VT",
            "postalCode": "05602",
            "country": "US",
            "latitude": 44.26,
            "longitude": -72.57,
        },
        "externalIdentification": f"00000000-0000-4000-8000-{n:012d}",
        "externalServiceLocationId": f"SL-{n:04d}",
        "metadata": [{"name": "Drop Type", "value": "Aerial"}],
        "createdAt": "2025-02-11T09:20:11Z",
        "updatedAt": f"2025-05-{n % 28 + 1:02d}T10:00:00Z",
        "version": 3,
    }
    row.update(extra)
    return row


def make_store(count: int = 5, **options: Any) -> CosbeStore:
    store = CosbeStore(keys=KEYS, clock=lambda: NOW, **options)
    store.knobs.rate_limit = 0
    store.load(
        "groups", [{"id": GROUP, "name": "Montpelier Phase 2"}, {"id": BARRE, "name": "Barre Phase 1"}]
    )
    store.load("metadata", cosbe_seed.definitions(1))
    store.load("objects", [obj(n) for n in range(1, count + 1)])
    return store


def create_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "objectType": "Business",
        "status": "NotDeliverable",
        "group": {"id": BARRE},
        "address": {"street": "1 Main St", "city": "Barre", "state": "VT", "postalCode": "05641"},
        "externalIdentification": "3f2c9a7e-1b4d-4c8e-9f0a-7d6e5c4b3a21",
        "metadata": [{"name": "Survey Done", "value": "true"}],
    }
    body.update(extra)
    return body


@dataclass
class Sandbox:
    store: CosbeStore
    faults: Faults
    http: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        sent = dict(HEADERS if headers is None else headers)
        async with self.http.request(method, path, headers=sent, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, text

    async def ok(self, method: str, path: str, *, status: int = 200, **kwargs: Any) -> Any:
        got, body = await self.call(method, path, **kwargs)
        assert got == status, body
        return body


@contextlib.asynccontextmanager
async def serve(store: CosbeStore | None = None) -> AsyncIterator[Sandbox]:
    store = store if store is not None else make_store()
    app = create_app(store)
    async with TestServer(app, host="127.0.0.1") as server:
        async with aiohttp.ClientSession(str(server.make_url(""))) as http:
            yield Sandbox(store, app[FAULTS_KEY], http)


@dataclass
class Receiver:
    """A tiny webhook receiver: answers ``statuses`` in turn (then 204) and keeps what it got."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    delay: float = 0.0


@contextlib.asynccontextmanager
async def receiver(*statuses: int, delay: float = 0.0) -> AsyncIterator[Receiver]:
    state = Receiver(statuses=list(statuses), delay=delay)

    async def hook(request: web.Request) -> web.Response:
        state.got.append((dict(request.headers), await request.read()))
        if state.delay:
            await asyncio.sleep(state.delay)
        return web.Response(status=state.statuses.pop(0) if state.statuses else 204)

    app = web.Application()
    app.router.add_post("/hooks/cosbe", hook)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/hooks/cosbe"))
        yield state


# -- store-level tests ---------------------------------------------------------------------------------------


def test_keyset_listing_is_inclusive_and_never_skips_ties() -> None:
    store = make_store(0)
    store.load("objects", [obj(n, updatedAt="2025-05-01T10:00:00Z") for n in range(1, 8)])
    since = "2025-05-01T10:00:00Z"
    page, total = store.list_objects(ListQuery(page_size=3, modified_since=since))
    assert [o["id"] for o in page] == [oid(1), oid(2), oid(3)] and total == 7
    page, total = store.list_objects(ListQuery(page_size=3, modified_since=since, after_id=oid(3)))
    assert [o["id"] for o in page] == [oid(4), oid(5), oid(6)] and total == 4
    later, fractional = parse_since("2025-05-01T10:00:00.5Z")
    assert (later, fractional) == ("2025-05-01T10:00:01Z", True)
    page, _ = store.list_objects(ListQuery(modified_since=later, fractional=True, after_id=oid(1)))
    assert page == []


def test_validation_collects_every_error_and_the_update_rules() -> None:
    store = make_store(1)
    with pytest.raises(Problem) as caught:
        store.create(
            {
                "objectType": "Castle",
                "serviceStatus": "Active",
                "group": {"id": "nope"},
                "address": {"street": "", "city": "Barre", "state": "VT"},
                "metadata": [
                    {"name": "Drop Type", "value": "Teleport"},
                    {"name": "Survey Done", "value": "yes"},
                    {"name": "Splice Tray", "value": "x" * 21},
                    {"name": "Unknown", "value": "1"},
                ],
            }
        )
    assert caught.value.status == 400 and caught.value.errors is not None
    assert set(caught.value.errors) == {
        "objectType", "status", "serviceStatus", "group.id", "address.street", "address.postalCode",
        "metadata[0].value", "metadata[1].value", "metadata[2].value", "metadata[3].name",
    }  # fmt: skip
    updated = store.update(
        {"id": oid(1), "metadata": [{"name": "Drop Type", "value": None}], "vetroLink": "x"}
    )
    assert (
        updated["metadata"] == []
        and updated["version"] == 4
        and updated["updatedAt"] == "2025-06-03T14:00:00Z"
    )
    with pytest.raises(Problem) as stale:
        store.update({"id": oid(1), "version": 3, "reachable": False})
    assert stale.value.status == 409


def test_seed_is_coherent_with_the_vetro_seed() -> None:
    store = CosbeStore()
    counts = cosbe_seed.seed_into(store, seed=7, size=200)
    assert counts["groups"] == 3 and counts["metadata"] == 4 and 80 < counts["objects"] < 140
    assert {g.name for g in store.groups.values()} == set(vetro_seed.GROUP_NAMES)
    vetro = {f["x-vetro"]["vetro_id"]: f["properties"]["ID"] for f in vetro_seed.service_locations(7, 200)}
    objects = store.all("objects")
    by_id = [o for o in objects if o["externalIdentification"]]
    by_eslid = [o for o in objects if not o["externalIdentification"] and o["externalServiceLocationId"]]
    unlinked = [o for o in objects if not o["externalIdentification"] and not o["externalServiceLocationId"]]
    assert by_id and by_eslid and unlinked
    assert all(vetro[o["externalIdentification"]] == o["externalServiceLocationId"] for o in by_id)
    assert {o["externalServiceLocationId"] for o in by_eslid} <= set(vetro.values())
    again = CosbeStore()
    cosbe_seed.seed_into(again, seed=7, size=200)
    assert again.all("objects") == objects
