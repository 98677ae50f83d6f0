"""The boxes view of incremental and by-id reads traces only the OLT chains it needs — with the same answers.

A full read lists the whole topology (PONs, slots, OLTs, network splitters) once; an incremental read of a few
changed boxes of a million must not. Both must join the same OLT onto every box: checked here box by box on a
generated network (OLT → slot → PON → network splitters in CE boxes → service splitters), whose chains run
straight from a PON or through network splitters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler.connectors.ozmap import joins
from reconciler.connectors.ozmap.connector import OzmapConnector
from reconciler.model import Record
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.generate import World
from reconciler.sandbox.ozmap import DEFAULT_API_KEY, OzmapStore, create_app
from tests.connectors.conftest import api_requests, system, url_of

pytestmark = pytest.mark.anyio

OLT_FIELDS = ("olt_ip", "olt_name", "olt_id", "service_splitters", "service_ports")
TOPOLOGY = ("pons", "slots", "olts")


@pytest.fixture
async def network(session: aiohttp.ClientSession) -> AsyncIterator[tuple[OzmapConnector, Faults, OzmapStore]]:
    store = OzmapStore()
    World(seed=5, scale=4000).load_into(store, None)
    faults = Faults()
    async with TestServer(create_app(store, faults=faults), host="127.0.0.1") as server:
        yield OzmapConnector(system("ozmap", url_of(server), DEFAULT_API_KEY), session), faults, store


async def read_all(connector: OzmapConnector, **kwargs: str) -> dict[str, Record]:
    return {r.id: r for page in [p async for p in connector.stream("boxes", **kwargs)] for r in page}


def olt_fields(records: dict[str, Record]) -> dict[str, tuple[object, ...]]:
    return {rid: tuple(r.fields[f] for f in OLT_FIELDS) for rid, r in records.items()}


async def test_a_read_by_id_traces_the_same_olts_as_the_full_listing(
    network: tuple[OzmapConnector, Faults, OzmapStore],
) -> None:
    connector, faults, _ = network
    full = await read_all(connector)
    traced = sum(1 for r in full.values() if r.fields["olt_ip"] is not None)
    assert traced > 100 and traced < len(full)  # the world has fed boxes and boxes with no service splitter
    faults.log.clear()
    by_id = {r.id: r for r in await connector.fetch_by_ids("boxes", sorted(full))}
    assert olt_fields(by_id) == olt_fields(full)
    for name in TOPOLOGY:  # traced with filters, never listed whole
        listed = api_requests(faults, "GET", f"/api/v2/{name}")
        assert listed and all("filter" in e.query for e in listed), name
    network_listings = [
        e for e in api_requests(faults, "GET", "/api/v2/splitters") if "isDrop" in e.query.get("filter", "")
    ]
    assert all(
        "connectables.output" in e.query["filter"]
        for e in network_listings
        if '"value":false' in e.query["filter"]
    )


async def test_an_incremental_read_traces_only_the_changed_boxes(
    network: tuple[OzmapConnector, Faults, OzmapStore],
) -> None:
    connector, faults, store = network
    full = await read_all(connector)
    fed = sorted(rid for rid, r in full.items() if r.fields["olt_ip"] is not None)[:3]
    cursor = max(r.updated_at for r in full.values())
    for rid in fed:
        store.update("boxes", rid, {"observation": "moved the door"})
    faults.log.clear()
    changed = await read_all(connector, since=cursor)
    assert set(fed) <= set(changed)
    assert olt_fields({rid: changed[rid] for rid in fed}) == olt_fields({rid: full[rid] for rid in fed})
    pons = [e for e in api_requests(faults, "GET", "/api/v2/pons")]
    assert len(pons) <= 8  # a handful of traced hops, whatever the size of the network


async def test_past_the_trace_limit_the_whole_topology_is_listed_once(
    network: tuple[OzmapConnector, Faults, OzmapStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    connector, faults, _ = network
    monkeypatch.setattr(joins, "TRACE_MAX", 10)
    full = await read_all(connector)
    faults.log.clear()
    by_id = {r.id: r for r in await connector.fetch_by_ids("boxes", sorted(full))}
    assert olt_fields(by_id) == olt_fields(full)
    assert any("filter" not in e.query for e in api_requests(faults, "GET", "/api/v2/pons"))  # listed whole
