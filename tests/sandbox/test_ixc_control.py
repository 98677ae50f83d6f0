"""IXC sandbox control API over real HTTP: data knobs, raw store access, every fault kind, the request log."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import msgspec
import pytest

from reconciler.sandbox.faults import KINDS
from reconciler.sandbox.ixc import basic_auth
from tests.sandbox.test_ixc_support import BLUE, TOKEN, Clock, running, seeded_store

pytestmark = pytest.mark.anyio


# -- knobs -----------------------------------------------------------------------------------------------------


async def test_knobs_get_and_partial_post() -> None:
    async with running() as ixc:
        status, initial = await ixc.control("GET", "knobs")
        posted = await ixc.control("POST", "knobs", {"rp_overflow": 2})
        unknown = await ixc.control("POST", "knobs", {"no_such_knob": True})
        wrong_type = await ixc.control("POST", "knobs", {"total_as_number": "yes"})
        _, final = await ixc.control("GET", "knobs")
    assert status == 200
    assert initial == {
        "rp_overflow": 0,
        "total_as_number": False,
        "numeric_ids": False,
        "in_single_value_error": False,
        "be_matches_zero_dates": False,
        "ip_blocked": False,
    }
    assert posted == (200, {**initial, "rp_overflow": 2})
    assert unknown[0] == 400
    assert wrong_type[0] == 400
    assert final == {**initial, "rp_overflow": 2}


async def test_rp_overflow_returns_more_rows_than_rp() -> None:
    async with running() as ixc:
        await ixc.control("POST", "knobs", {"rp_overflow": 2})
        body = (await ixc.query("rad_caixa_ftth", page="1", rp="1")).json()
    assert body["total"] == "4"
    assert [r["id"] for r in body["registros"]] == ["8", "9", "10"]


async def test_total_as_number_and_numeric_ids() -> None:
    async with running() as ixc:
        await ixc.control("POST", "knobs", {"total_as_number": True, "numeric_ids": True})
        body = (await ixc.query("rad_caixa_ftth", qtype="rad_caixa_ftth.id", query="8", oper="=")).json()
    assert body["total"] == 1
    box = body["registros"][0]
    assert box["id"] == 8
    assert box["id_projeto"] == 1
    assert box["capacidade"] == "16"
    assert box["latitude"] == "-27.5969"


async def test_in_with_a_single_value_fails_when_asked() -> None:
    async with running() as ixc:
        await ixc.control("POST", "knobs", {"in_single_value_error": True})
        single = await ixc.query("rad_caixa_ftth", qtype="rad_caixa_ftth.id", query="8", oper="IN")
        two = await ixc.query("rad_caixa_ftth", qtype="rad_caixa_ftth.id", query="8,9", oper="IN")
    assert single.status == 500
    assert single.is_html_error
    assert two.status == 200


async def test_be_on_dates_matches_zero_dates_when_asked() -> None:
    params: dict[str, Any] = {
        "grid_param": msgspec.json.encode(
            [{"TB": "cliente_contrato.data_ativacao", "OP": "BE", "P": "01/01/2024", "P2": "31/12/2024"}]
        ).decode()
    }
    async with running() as ixc:
        normal = await ixc.ids("cliente_contrato", **params)
        await ixc.control("POST", "knobs", {"be_matches_zero_dates": True})
        quirky = await ixc.ids("cliente_contrato", **params)
        ranged = await ixc.ids(
            "cliente_contrato",
            qtype="cliente_contrato.data_ativacao",
            query="2024-01-01",
            oper=">=",
        )
    assert normal == ["1"]
    assert quirky == ["1", "2", "4"]
    assert ranged == ["1"]


async def test_ip_not_allowed() -> None:
    async with running() as ixc:
        await ixc.control("POST", "knobs", {"ip_blocked": True})
        reply = await ixc.query("cliente")
    assert reply.status == 200
    assert reply.json() == {"type": "error", "message": "Seu IP não está liberado para efetuar login!"}


# -- raw store access ------------------------------------------------------------------------------------------


async def test_store_reads() -> None:
    async with running() as ixc:
        everything = await ixc.control("GET", "store/rad_caixa_ftth")
        one = await ixc.control("GET", "store/rad_caixa_ftth/10")
        missing = await ixc.control("GET", "store/rad_caixa_ftth/404")
        unknown = await ixc.control("GET", "store/boletos")
    assert everything[0] == 200
    assert [r["id"] for r in everything[1]] == ["8", "9", "10", "11"]
    assert one == (200, ixc.store.get("rad_caixa_ftth", "10"))
    assert missing[0] == 404
    assert unknown[0] == 404


async def test_store_raw_insert_skips_the_rules() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as ixc:
        status, row = await ixc.control(
            "POST", "store/rad_caixa_ftth", {"descricao": "sem projeto", "id_projeto": "404", "capacidade": 8}
        )
        bulk = await ixc.control(
            "POST",
            "store/df_projeto",
            [{"id": "50", "nome": "A"}, {"id": "51", "nome": "B", "cor_mapa": None}],
        )
        bad = await ixc.control("POST", "store/df_projeto", "just text")
    assert status == 201
    assert row["id"] == "12"
    assert row["id_projeto"] == "404"
    assert row["capacidade"] == "8"
    assert row["ultima_atualizacao"] == "2025-03-10 12:00:00"
    assert bulk == (201, {"loaded": 2})
    assert ixc.store.get("df_projeto", "51") == {
        "id": "51",
        "nome": "B",
        "latitude": "",
        "longitude": "",
        "zoom": "0",
        "status": "",
        "id_filial": "0",
        "cor_mapa": "",
        "ultima_atualizacao": "0000-00-00 00:00:00",
    }
    assert bad[0] == 400


async def test_store_patch_edits_like_a_user_and_bumps_ultima_atualizacao() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as ixc:
        status, row = await ixc.control("PATCH", "store/radusuarios/4411", {"online": "S", "ativo": "S"})
        listed = await ixc.ids(
            "radusuarios", qtype="radusuarios.ultima_atualizacao", query="10/03/2025 00:00:00", oper=">="
        )
        unknown = await ixc.control("PATCH", "store/radusuarios/4411", {"cor": "azul"})
        missing = await ixc.control("PATCH", "store/radusuarios/1", {"online": "S"})
    assert status == 200
    assert (row["online"], row["ativo"], row["ultima_atualizacao"]) == ("S", "S", "2025-03-10 12:00:00")
    assert listed == ["4411"]
    assert unknown[0] == 400
    assert missing[0] == 404


async def test_store_delete_ignores_references() -> None:
    async with running() as ixc:
        first = await ixc.control("DELETE", "store/rad_caixa_ftth/8")
        again = await ixc.control("DELETE", "store/rad_caixa_ftth/8")
        after = await ixc.ids("rad_caixa_ftth")
    assert first[0] == 204
    assert again[0] == 404
    assert after == ["9", "10", "11"]


# -- faults ----------------------------------------------------------------------------------------------------


async def add_fault(ixc: Any, **rule: Any) -> None:
    status, body = await ixc.control("POST", "faults", rule)
    assert status == 201, body


async def test_every_fault_kind_is_covered_here() -> None:
    assert set(KINDS) <= {"latency", "error", "429", "timeout", "reset", "malformed", "html", "lost"}


async def test_latency_fault_delays_a_normal_answer() -> None:
    async with running() as ixc:
        await add_fault(ixc, kind="latency", seconds=0.3, route="/webservice/v1/cliente$")
        started = time.monotonic()
        reply = await ixc.query("cliente")
        elapsed = time.monotonic() - started
    assert elapsed >= 0.3
    assert reply.json()["total"] == "3"


async def test_error_fault_answers_a_gateway_page() -> None:
    async with running() as ixc:
        await add_fault(ixc, kind="error", count=1)
        await add_fault(ixc, kind="error", status=504, count=1)
        first = await ixc.query("cliente")
        second = await ixc.query("cliente")
        third = await ixc.query("cliente")
    assert (first.status, first.content_type) == (503, "text/html")
    assert second.status == 504
    assert third.status == 200


async def test_429_fault_sets_retry_after() -> None:
    async with running() as ixc:
        await add_fault(ixc, kind="429", seconds=2, method="POST")
        reply = await ixc.query("cliente")
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "2"


async def test_timeout_fault_outlasts_the_client_timeout() -> None:
    async with running() as ixc:
        await add_fault(ixc, kind="timeout", seconds=0.5)
        with pytest.raises(TimeoutError):
            await ixc.call("POST", "/webservice/v1/cliente", json={}, listar=True, wait=0.1)


async def test_reset_fault_drops_the_connection() -> None:
    async with running() as ixc:
        await add_fault(ixc, kind="reset", count=1)
        with pytest.raises(aiohttp.ClientConnectionError):
            await ixc.query("cliente")
        after = await ixc.query("cliente")
    assert after.status == 200


async def test_lost_fault_performs_the_write_but_drops_the_answer() -> None:
    async with running() as ixc:
        await add_fault(ixc, kind="lost", method="POST", count=1)
        body = {"nome": "Perdido", "latitude": "1", "longitude": "1", "zoom": "10", "status": "A"}
        with pytest.raises(aiohttp.ClientConnectionError):
            await ixc.call("POST", "/webservice/v1/df_projeto", json=body)
        found = await ixc.ids("df_projeto", qtype="df_projeto.nome", query="Perdido", oper="=")
    assert found == ["3"]


async def test_malformed_fault_answers_truncated_json() -> None:
    async with running() as ixc:
        await add_fault(ixc, kind="malformed")
        reply = await ixc.query("cliente")
    assert reply.status == 200
    with pytest.raises(msgspec.DecodeError):
        reply.json()


async def test_html_fault_answers_ixc_error_page_with_200() -> None:
    async with running() as ixc:
        await add_fault(ixc, kind="html", route="rad_caixa_ftth", method="PUT")
        box = ixc.store.get("rad_caixa_ftth", "8")
        assert box is not None
        put = await ixc.call("PUT", "/webservice/v1/rad_caixa_ftth/8", json=box)
        listed = await ixc.query("rad_caixa_ftth")
        _, stats = await ixc.control("GET", "stats")
    assert put.status == 200
    assert put.is_html_error
    assert listed.status == 200
    assert stats["injected"] == {"html": 1}


# -- request log -----------------------------------------------------------------------------------------------


async def test_request_log_keeps_the_put_body_and_never_the_authorization_header() -> None:
    async with running() as ixc:
        box = ixc.store.get("rad_caixa_ftth", "9")
        assert box is not None
        body = {**{k: v for k, v in box.items() if k != "id"}, "status": "I"}
        await ixc.call("PUT", "/webservice/v1/rad_caixa_ftth/9", json=body)
        await ixc.call("POST", "/webservice/v1/df_projeto", data={"nome": "Form"})
        await ixc.control("GET", "knobs")
        _, log = await ixc.control("GET", "requests")
    assert [(e["method"], e["path"]) for e in log] == [
        ("PUT", "/webservice/v1/rad_caixa_ftth/9"),
        ("POST", "/webservice/v1/df_projeto"),
    ]
    put = log[0]
    assert put["body"] == body
    assert put["status"] == 200
    assert "authorization" not in put["headers"]
    assert basic_auth(TOKEN).split()[1] not in msgspec.json.encode(log).decode()
    assert log[1]["body"] == "nome=Form"
    assert BLUE in put["body"]["codigo_estilo_caixa"]
