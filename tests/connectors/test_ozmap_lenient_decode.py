"""One OZmap record with a wrongly typed field: its page is decoded row by row, the record comes out with its id,
what could be read and a ``problem`` that every rule quarantines; the rest of the page goes on (BUG-4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from reconciler import errors
from reconciler.connectors.ozmap import lenient, views
from reconciler.connectors.ozmap.connector import OzmapConnector
from reconciler.cycle import _spare_unreadable_targets
from reconciler.model import Delete, EntityPlan, Quarantined, Record, Skip, Update
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ozmap import DEFAULT_API_KEY, OzmapStore, create_app
from tests.connectors.conftest import system, url_of
from tests.connectors.test_ozmap_connector import BOX_A, BOX_B, BOX_C, BOX_CE, BOX_D, P1, box, load, oid
from tests.unit.test_rule_compiling import compile_boxes

pytestmark = pytest.mark.anyio

BOX_BAD = oid(61)


def page(*rows: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"total": len(rows), "rows": list(rows)})


# -- the decoder, without HTTP -------------------------------------------------------------------------------------


def test_a_good_page_takes_the_fast_path_unchanged() -> None:
    body = page({"id": "a", "name": "A", "lat": -27.5}, {"id": "b", "implanted": True})
    problems: dict[str, str] = {}
    assert lenient.decode_page(body, views.BOXES, problems, "ozmap boxes") == views.BOXES.decode(body)
    assert problems == {}


def test_a_bad_row_is_salvaged_with_its_problem_in_words_and_the_others_decode_normally() -> None:
    body = page(
        {"id": "a", "name": "A", "lat": -27.5},
        {"id": "b", "name": "B", "lat": "-27,59", "implanted": "yes", "lng": -48.5},
        {"id": "c", "name": "C"},
    )
    problems: dict[str, str] = {}
    decoded = lenient.decode_page(body, views.BOXES, problems, "ozmap boxes")
    assert decoded.total == 3
    assert [row.id for row in decoded.rows] == ["a", "b", "c"]
    assert decoded.rows[0] == views.BOX.decode(msgspec.json.encode({"id": "a", "name": "A", "lat": -27.5}))
    bad = decoded.rows[1]
    assert (bad.name, bad.lat, bad.lng, bad.implanted) == ("B", None, -48.5, False)  # bad fields: defaults
    assert problems == {
        "b": 'ozmap boxes/b has bad data: field lat: expected a number, got "-27,59"; '
        'field implanted: expected true or false, got "yes"'
    }


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ({"id": "x", "updatedAt": 5}, "field updatedAt: expected text, got 5"),
        ({"id": "x", "box": 7}, "field box: expected text or an object, got 7"),
        ({"id": "x", "client": {"status": "on"}}, 'field client.status: expected a whole number, got "on"'),
        (
            {"id": "x", "connections": [{"port": "1"}]},
            'field connections[0].port: expected a whole number, got "1"',
        ),
        ({"id": "x", "observation": "y" * 80}, None),  # fits: no problem
        ({"id": "x", "address": ["a" * 50]}, 'field address: expected text, got ["' + "a" * 37 + "…"),
    ],
)
def test_problems_name_the_field_what_it_should_be_and_what_came(
    row: dict[str, Any], words: str | None
) -> None:
    problems: dict[str, str] = {}
    lenient.decode_page(page(row), views.CONNECTIONS, problems, "ozmap properties")
    assert problems == ({} if words is None else {"x": f"ozmap properties/x has bad data: {words}"})


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (page({"id": 5, "name": "no text id"}), "$.id` (row 0)"),
        (page({"id": "a"}, {"name": "no id"}), "missing required field `id` (row 1)"),
        (page({"id": "a"}, ["not", "an", "object"]), "Expected `object`, got `array` (row 1)"),
        (msgspec.json.encode({"rows": []}), "missing required field `total`"),
    ],
)
def test_a_row_without_a_readable_id_or_a_bad_envelope_fails_the_page(body: bytes, says: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        lenient.decode_page(body, views.BOXES, {}, "ozmap boxes")
    assert says in str(info.value)


def test_malformed_json_is_still_a_decode_error_not_a_validation_error() -> None:
    with pytest.raises(msgspec.DecodeError) as info:
        lenient.decode_page(b'{"total": 1, "rows": [{"id": "a"', views.BOXES, {}, "ozmap boxes")
    assert not isinstance(info.value, msgspec.ValidationError)


# -- the connector, over HTTP --------------------------------------------------------------------------------------


@pytest.fixture
async def oz(session: aiohttp.ClientSession) -> AsyncIterator[tuple[OzmapStore, OzmapConnector]]:
    store = OzmapStore()
    load(store)
    bad = box(BOX_BAD, "CTO-TEXTLAT", P1, 6)
    bad["lat"] = "-27,59"
    store.load("boxes", [bad])
    async with TestServer(create_app(store, faults=Faults()), host="127.0.0.1") as server:
        connector = OzmapConnector(system("ozmap", url_of(server), DEFAULT_API_KEY, page_size=2), session)
        yield store, connector


async def test_a_box_with_a_text_latitude_comes_out_with_its_id_name_and_problem(
    oz: tuple[OzmapStore, OzmapConnector],
) -> None:
    _, connector = oz
    records = {r.id: r async for page in connector.stream("boxes") for r in page}
    assert set(records) == {BOX_CE, BOX_A, BOX_B, BOX_C, BOX_D, BOX_BAD}  # the rest of its page goes on
    bad = records[BOX_BAD]
    assert bad.problem == f'ozmap boxes/{BOX_BAD} has bad data: field lat: expected a number, got "-27,59"'
    assert (bad.fields["name"], bad.fields["project_name"], bad.fields["lat"]) == (
        "CTO-TEXTLAT",
        "Centro",
        None,
    )
    assert all(not r.problem for r in records.values() if r.id != BOX_BAD)
    # read again by id (the quarantine retry of an incremental cycle) and incrementally: the same problem
    (again,) = await connector.fetch_by_ids("boxes", [BOX_BAD])
    assert again.problem == bad.problem and again.fields["name"] == "CTO-TEXTLAT"
    since = {
        r.id: r async for page in connector.stream("boxes", since="2025-03-06T00:00:00.000Z") for r in page
    }
    assert since[BOX_BAD].problem == bad.problem


async def test_a_nested_value_is_shown_and_a_project_whose_id_cannot_be_read_fails_the_listing(
    oz: tuple[OzmapStore, OzmapConnector], session: aiohttp.ClientSession
) -> None:
    store, connector = oz
    store.load("boxes", [{**box(oid(63), "CTO-X", P1, 8), "name": {"nested": True}}])
    records = {r.id: r async for page in connector.stream("boxes") for r in page}
    assert records[oid(63)].problem.endswith('field name: expected text, got {"nested":true}')

    rows = [{"id": oid(1), "name": "P1"}, {"id": 2, "name": "P2"}]  # an id that is no text: not trackable

    async def projects(request: web.Request) -> web.Response:
        return web.json_response({"total": len(rows), "rows": rows})

    app = web.Application()
    app.router.add_get("/api/v2/projects", projects)
    async with TestServer(app, host="127.0.0.1") as server:
        own = OzmapConnector(system("ozmap", url_of(server), "k"), session)
        with pytest.raises(errors.TerminalRemoteError) as info:
            _ = [r async for page in own.stream("projects") for r in page]
    assert "unexpected answer" in str(info.value) and "$.id` (row 1)" in str(info.value)


async def test_a_connection_whose_client_is_unreadable_stays_in_the_view_with_its_problem(
    oz: tuple[OzmapStore, OzmapConnector],
) -> None:
    store, connector = oz
    client_id, prop_id = oid(71), oid(72)
    store.load(
        "ftth-clients", [{"id": client_id, "code": "ana", "name": "Ana", "implanted": "sim", "status": 0}]
    )
    store.load(
        "properties",
        [{"id": prop_id, "client": client_id, "box": BOX_A, "project": P1, "coords": [-48.5, -27.5]}],
    )
    records = {r.id: r async for page in connector.stream("connections") for r in page}
    assert prop_id in records  # not dropped as "no client", which would read as a removal
    assert records[prop_id].problem == (
        f'ozmap properties/{prop_id} has bad data: field client.implanted: expected true or false, got "sim"'
    )


# -- what the engine makes of such records -------------------------------------------------------------------------


def test_every_rule_quarantines_a_record_with_a_problem_before_its_filter_and_checks() -> None:
    rule = compile_boxes()
    fields: dict[str, Any] = {
        "name": "CTO-TEXTLAT",
        "project_name": "Centro",
        "implanted": False,
        "lat": None,
    }
    problem = 'ozmap boxes/b1 has bad data: field lat: expected a number, got "-27,59"'
    record = Record(id="b1", fields=fields, updated_at="2025-03-06", problem=problem)
    # not implanted would be filtered out, and no latitude would fail a check: the problem comes first
    assert rule.normalize(record, {"project": {}, "transmitter": {}}) == Quarantined(
        "b1", problem, "CTO-TEXTLAT (Centro)", "2025-03-06"
    )


def test_actions_on_a_target_read_with_bad_data_become_skips() -> None:
    plan = EntityPlan(
        integration="i",
        entity="e",
        source="s.c",
        target="t.c",
        mode="full",
        actions=(Delete("s1", "t1", "one"), Update("s2", "t2", (), "h", "two")),
    )
    targets = {
        "t1": Record("t1", {}, problem="t.c/t1 has bad data: field implanted: …"),
        "t2": Record("t2", {}),
    }
    spared = _spare_unreadable_targets(plan, targets)
    assert spared.actions == (
        Skip("s1", "the target record cannot be read safely: t.c/t1 has bad data: field implanted: …", "one"),
        Update("s2", "t2", (), "h", "two"),
    )
    assert _spare_unreadable_targets(plan, {"t2": targets["t2"]}) is plan
