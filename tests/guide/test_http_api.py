"""The guide's HTTP API over real HTTP, every answer validated against the served ``/openapi.json``.

The API runs in an aiohttp app (``reconciler.guide.http.mount``) in front of the OZmap sandbox; each request's
answer — success or error — must match the schema the document declares for that route and status. Bad input
must answer 4xx with a message naming the field.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from reconciler.daemon import webhooks
from reconciler.guide.http import ROUTES, mount
from tests.integration.conftest import _serve

from .conftest import SECRET, Env
from .schema_check import errors, response_schema
from .world import BUILDING, CTO1, LAT, LNG, OLT, PON2, S1, SB1

pytestmark = pytest.mark.anyio


@dataclass
class Api:
    url: str
    env: Env
    document: dict[str, Any]
    checked: set[tuple[str, str, int]]

    async def call(
        self,
        method: str,
        template: str,
        *,
        path: dict[str, Any] | None = None,
        body: Any = None,
        raw: bytes | None = None,
        query: dict[str, str] | None = None,
        auth: str | None = "bearer",
        expect: int = 200,
    ) -> Any:
        """Send, check the status, validate the answer against the document; returns the decoded answer."""
        data = raw if raw is not None else (b"" if body is None else msgspec.json.encode(body))
        headers = {"Content-Type": "application/json"}
        if auth == "bearer":
            headers["Authorization"] = f"Bearer {SECRET}"
        elif auth == "hmac":
            stamp = str(int(time.time()))
            headers[webhooks.TIMESTAMP_HEADER] = stamp
            headers[webhooks.SIGNATURE_HEADER] = webhooks.sign(SECRET, stamp, data)
        target = template.format(**(path or {}))
        async with aiohttp.ClientSession() as http:
            async with http.request(
                method, self.url + target, data=data, params=query, headers=headers
            ) as resp:
                text = await resp.text()
                assert resp.status == expect, f"{method} {target}: {resp.status} {text}"
                assert resp.content_type == "application/json"
                answer = msgspec.json.decode(text)
        problems = errors(answer, response_schema(self.document, method, template, expect), self.document)
        assert not problems, f"{method} {template} {expect}: {problems}"
        self.checked.add((method, template, expect))
        return answer


@pytest.fixture
async def api(env: Env) -> AsyncIterator[Api]:
    app = web.Application()
    mount(app, env.config)
    runner, url = await _serve(app)
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "/openapi.json") as resp:
            assert resp.status == 200
            document = msgspec.json.decode(await resp.read())
        yield Api(url, env, document, set())
    finally:
        await runner.cleanup()


async def test_openapi_document_describes_every_route(api: Api) -> None:
    doc = api.document
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"]
    for spec, _ in ROUTES:
        operation = doc["paths"][spec.path][spec.method.lower()]
        assert str(spec.status) in operation["responses"] and "400" in operation["responses"]
        assert ("security" in operation) == spec.auth
    feasibility = doc["paths"]["/ozmap/feasibility"]["get"]
    params = {p["name"]: p for p in feasibility["parameters"]}
    assert params["lat"]["required"] and params["lat"]["schema"]["maximum"] == 90
    assert params["radius"]["required"] is False
    reservation = doc["components"]["schemas"]["ReservationRequest"]
    assert reservation["additionalProperties"] is False and set(reservation["required"]) == {
        "code",
        "lat",
        "lng",
    }
    # every $ref resolves
    text = msgspec.json.encode(doc).decode()
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in doc["components"]["schemas"], name


async def test_feasibility_and_bad_coordinates(api: Api) -> None:
    found = await api.call(
        "GET", "/ozmap/feasibility", query={"lat": str(LAT), "lng": str(LNG), "radius": "200"}
    )
    assert [b["id"] for b in found["boxes"]] == [CTO1] and [b["id"] for b in found["buildings"]] == [BUILDING]
    bad = {
        ("91", str(LNG), "200"): ("lat", "lat must be a latitude between -90 and 90 degrees (got 91)"),
        (str(LAT), "-181", "200"): ("lng", "lng must be a longitude between -180 and 180 degrees (got -181)"),
        (str(LAT), str(LNG), "0"): ("radius", "radius must be between 1 and 5000 metres (got 0)"),
        (str(LAT), str(LNG), "99999"): ("radius", "radius must be between 1 and 5000 metres (got 99999)"),
        ("north", str(LNG), "200"): (
            "lat",
            "lat must be a latitude between -90 and 90 degrees (got 'north')",
        ),
    }
    for (lat, lng, radius), (field, message) in bad.items():
        problem = await api.call(
            "GET", "/ozmap/feasibility", query={"lat": lat, "lng": lng, "radius": radius}, expect=400
        )
        assert problem == {"error": message, "field": field}
    missing = await api.call("GET", "/ozmap/feasibility", query={"lat": str(LAT)}, expect=400)
    assert missing == {"error": "lng is required", "field": "lng"}


async def test_writes_need_the_shared_secret(api: Api) -> None:
    body = {"code": "novo", "lat": LAT, "lng": LNG}
    denied = await api.call("POST", "/ozmap/reservations", body=body, auth=None, expect=401)
    assert "Authorization" in denied["error"] or "Signature" in denied["error"]
    wrong = await api.call("POST", "/ozmap/reservations", body=body, auth="nope", expect=401)
    assert wrong["error"]
    signed = await api.call("POST", "/ozmap/reservations", body=body, auth="hmac", expect=201)
    assert (signed["box_id"], signed["splitter_id"], signed["port"]) == (CTO1, S1, 4)


async def test_writes_are_disabled_without_a_secret(env: Env) -> None:
    cfg = env.config
    app = web.Application()
    mount(app, msgspec.structs.replace(cfg, webhook_secret=None))
    runner, url = await _serve(app)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/ozmap/clients/ana/implantation", data=b"") as resp:
                assert resp.status == 403
                assert "no webhook-secret" in (await resp.json())["error"]
    finally:
        await runner.cleanup()


async def test_bad_bodies_answer_400_with_the_field(api: Api) -> None:
    cases = [
        ({"code": "x", "lat": LAT, "lng": LNG, "colour": "red"}, {"error": "unknown field 'colour'", "field": "colour"}),
        ({"code": "x", "lat": LAT}, {"error": "lng is required", "field": "lng"}),
        ({"code": "x", "lat": LAT, "lng": LNG, "box_id": CTO1, "port": 0},
         {"error": "port must be a whole number from 1 (the splitter's output port) (got 0)", "field": "port"}),
        ({"code": "", "lat": LAT, "lng": LNG}, {"error": "code: Expected `str` of length >= 1", "field": "code"}),
        ({"code": "x", "lat": LAT, "lng": LNG, "port": 2}, {"error": "port needs box_id or splitter_id", "field": "port"}),
    ]  # fmt: skip
    for body, problem in cases:
        assert await api.call("POST", "/ozmap/reservations", body=body, expect=400) == problem
    assert await api.call("POST", "/ozmap/reservations", raw=b"{nope", expect=400) == {
        "error": "the body is not valid JSON"
    }
    status = await api.call(
        "PUT", "/ozmap/clients/{code}/status", path={"code": "ana"}, body={"status": "ok"}, expect=400
    )
    assert status == {"error": 'status must be "OK" or "ERROR" (got \'ok\')', "field": "status"}
    power = await api.call(
        "PUT", "/ozmap/clients/{code}/power", path={"code": "ana"}, body={"dbm": -90}, expect=400
    )
    assert power["field"] == "dbm" and "between -60 and 20 dBm" in power["error"]
    slot = await api.call(
        "PUT", "/ozmap/olts/{olt}/pons/{slot}/{pon}/power", path={"olt": OLT, "slot": "x", "pon": 1},
        body={"dbm": 3}, expect=400,
    )  # fmt: skip
    assert slot == {"error": "slot must be a whole number from 1 (got 'x')", "field": "slot"}
    threshold = await api.call("GET", "/ozmap/power-check", query={"threshold": "-1"}, expect=400)
    assert threshold["field"] == "threshold"


async def test_not_found_conflict_and_ozmap_refusals(api: Api) -> None:
    missing = await api.call("GET", "/ozmap/clients/{code}", path={"code": "ghost"}, expect=404)
    assert missing == {"error": "no client with code 'ghost' in OZmap"}
    taken = await api.call(
        "POST", "/ozmap/reservations", body={"code": "ana", "lat": LAT, "lng": LNG}, expect=409
    )
    assert "already exists" in taken["error"]
    occupied = {"code": "novo", "lat": LAT, "lng": LNG, "splitter_id": S1, "port": 1}
    refused = await api.call("POST", "/ozmap/reservations", body=occupied, expect=422)
    assert refused["error"].startswith("OZmap refused the request") and "occupied" in refused["error"]


async def test_every_operation_over_http(api: Api) -> None:
    call = api.call
    code = {"code": "ana"}
    splitters = await call(
        "GET", "/ozmap/boxes/{box_id}/splitters", path={"box_id": CTO1}, query={"all": "true"}
    )
    assert splitters[0]["free_ports"] == [4, 5, 6, 7]
    reserved = await call(
        "POST", "/ozmap/reservations", body={"code": "novo", "name": "N", "lat": LAT, "lng": LNG}, expect=201
    )
    assert reserved["port"] == 4
    assert (await call("POST", "/ozmap/clients/{code}/implantation", path={"code": "novo"}))[
        "implanted"
    ] is True
    state = await call("GET", "/ozmap/clients/{code}", path=code)
    assert state["pppoe_user"] == "ana.pppoe"
    updated = await call(
        "PATCH", "/ozmap/clients/{code}", path=code, body={"name": "Ana S", "address": "Rua 2"}
    )
    assert (updated["client_name"], updated["address"]) == ("Ana S", "Rua 2")
    connection = await call("GET", "/ozmap/clients/{code}/connection", path=code)
    assert (connection["box"]["id"], connection["splitter_id"], connection["port"]) == (CTO1, S1, 1)
    moved = await call("PUT", "/ozmap/clients/{code}/box", path={"code": "bia"}, body={"box_id": BUILDING})
    assert moved["splitter_id"] == SB1
    step1 = await call("POST", "/ozmap/clients/{code}/address-change", path=code,
                       body={"lat": -27.5907, "lng": LNG, "box_id": BUILDING}, expect=201)  # fmt: skip
    done = await call("POST", "/ozmap/clients/{code}/address-change/complete", path=code,
                      body={"new_property_id": step1["new_property_id"]})  # fmt: skip
    assert done["stage"] == "completed"
    assert (await call("PUT", "/ozmap/clients/{code}/status", path=code, body={"status": "ERROR"}))[
        "status"
    ] == "ERROR"
    bulk = await call("POST", "/ozmap/bulk/status", body={"codes": ["ana", "bia", "zz"], "status": "OK"})
    assert bulk["unknown"] == ["zz"]
    power = await call("PUT", "/ozmap/clients/{code}/power", path={"code": "caio"}, body={"dbm": -20.5})
    assert power["potency_read"] == -20.5
    onu = await call("PUT", "/ozmap/clients/{code}/onu", path=code, body={"serial_number": "ZTEGC0FFEE01"})
    assert onu["serial_number"] == "ZTEGC0FFEE01"
    check = await call(
        "GET", "/ozmap/clients/{code}/power-check", path={"code": "caio"}, query={"threshold": "2"}
    )
    assert (check["verdict"], check["calculated_dbm"]) == ("ok", -21.5)
    report = await call("GET", "/ozmap/power-check")
    assert [c["code"] for c in report["worse"]] == ["bia"]  # in the building now: -30 read vs -18 calculated
    tags = await call(
        "GET", "/ozmap/clients/{code}/tags", path={"code": "caio"}, query={"tag": "queda-massiva"}
    )
    assert tags["has_tag"] is True
    pons = await call("GET", "/ozmap/olts/{olt}/pons", path={"olt": "OLT-1"})
    assert [(p["slot"], p["pon"]) for p in pons] == [(1, 1), (1, 2), (2, 1)]
    pon = await call("PUT", "/ozmap/olts/{olt}/pons/{slot}/{pon}/power", path={"olt": "10.0.0.1", "slot": 1, "pon": 2},
                     body={"dbm": 4.0})  # fmt: skip
    assert (pon["id"], pon["potency"]) == (PON2, 4.0)
    pendency = await call(
        "POST", "/ozmap/pendencies", body={"name": "Poste caído", "box_id": CTO1}, expect=201
    )
    assert pendency["project_id"]
    prospect = await call(
        "POST", "/ozmap/prospects", body={"name": "Rita", "lat": -23.0, "lng": -46.0}, expect=201
    )
    assert prospect["viable"] is False
    removed = await call("DELETE", "/ozmap/clients/{code}", path={"code": "novo"}, query={"mode": "property"})
    assert removed["client_deleted"] is True
    successes = {(m, p) for m, p, status in api.checked if status < 300}
    assert successes == {(spec.method, spec.path) for spec, _ in ROUTES} - {("GET", "/ozmap/feasibility")}
