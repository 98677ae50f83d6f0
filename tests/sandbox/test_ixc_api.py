"""IXC sandbox over real HTTP: routing, auth, the list endpoint (filters, operators, paging, sorting, envelope)."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest

from tests.sandbox.test_ixc_support import EN_TOKEN, TOKEN, running, seeded_store

pytestmark = pytest.mark.anyio


def grid(*items: dict[str, str]) -> str:
    return msgspec.json.encode(list(items)).decode()


# -- routing and auth ------------------------------------------------------------------------------------------


async def test_missing_and_wrong_credentials_answer_401_not_json() -> None:
    async with running() as ixc:
        missing = await ixc.call("POST", "/webservice/v1/cliente", json={}, listar=True, token=None)
        wrong = await ixc.call("POST", "/webservice/v1/cliente", json={}, listar=True, token="17:deadbeef")
        garbage = await ixc.call(
            "POST", "/webservice/v1/cliente", json={}, listar=True, headers={"Authorization": "Basic %%%"}
        )
    for reply in (missing, wrong, garbage):
        assert reply.status == 401
        assert not reply.text.lstrip().startswith("{")


async def test_bearer_auth_answers_400() -> None:
    async with running() as ixc:
        reply = await ixc.call(
            "POST",
            "/webservice/v1/cliente",
            json={},
            listar=True,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert reply.status == 400
    assert not reply.text.lstrip().startswith("{")


async def test_basic_auth_is_user_id_and_hash() -> None:
    user_id, hash_ = TOKEN.split(":")
    header = "basic " + base64.b64encode(f"{user_id}:{hash_}".encode()).decode()
    async with running() as ixc:
        reply = await ixc.call(
            "POST",
            "/webservice/v1/df_projeto",
            json={},
            listar=True,
            token=None,
            headers={"Authorization": header},
        )
    assert reply.status == 200
    assert reply.json()["total"] == "2"


async def test_unknown_table_is_not_available() -> None:
    async with running() as ixc:
        reply = await ixc.query("contas_a_receber_x")
        english = await ixc.call("POST", "/webservice/v1/nope", json={}, listar=True, token=EN_TOKEN)
    assert reply.status == 200
    assert reply.json() == {"type": "error", "message": "Recurso contas_a_receber_x não está disponível!"}
    assert english.json()["type"] == "error"
    assert "not available" in english.json()["message"]


async def test_get_without_listar_header_is_404() -> None:
    async with running() as ixc:
        reply = await ixc.call("GET", "/webservice/v1/rad_caixa_ftth")
        one = await ixc.call("GET", "/webservice/v1/rad_caixa_ftth/8")
    assert reply.status == 404
    assert one.status == 404


async def test_list_by_post_and_by_get_with_body_and_trailing_slash() -> None:
    params = {"qtype": "rad_caixa_ftth.id", "query": "8", "oper": "="}
    async with running() as ixc:
        by_post = await ixc.call("POST", "/webservice/v1/rad_caixa_ftth", json=params, listar=True)
        by_get = await ixc.call("GET", "/webservice/v1/rad_caixa_ftth/", json=params, listar=True)
        upper = await ixc.call(
            "POST", "/webservice/v1/rad_caixa_ftth/", json=params, headers={"IXCSOFT": "LISTAR"}
        )
    for reply in (by_post, by_get, upper):
        assert reply.status == 200
        assert [r["id"] for r in reply.json()["registros"]] == ["8"]


async def test_list_with_form_encoded_body() -> None:
    form = {"qtype": "radusuarios.login", "query": "maria.souza", "oper": "=", "page": "1", "rp": "20"}
    async with running() as ixc:
        reply = await ixc.call("POST", "/webservice/v1/radusuarios", data=form, listar=True)
    assert reply.status == 200
    assert [r["login"] for r in reply.json()["registros"]] == ["maria.souza"]


async def test_envelope_content_type_and_string_values() -> None:
    async with running() as ixc:
        reply = await ixc.query("radpop_radio_cliente_fibra", qtype="radpop_radio_cliente_fibra.id", query="")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/x-json; charset=utf-8"
    body = reply.json()
    assert body["page"] == "1"
    assert body["total"] == "2"
    for record in body["registros"]:
        assert all(isinstance(v, str) for v in record.values())
    onu = body["registros"][1]
    assert onu["sinal_rx"] == "0.00"
    assert onu["id_contrato"] == "0"  # empty reference
    assert onu["data_sinal"] == "0000-00-00 00:00:00"  # empty datetime
    assert onu["mac"] == ""  # empty text


async def test_list_shows_device_credentials_like_ixc() -> None:
    async with running() as ixc:
        rows = await ixc.rows("radpop_radio", qtype="radpop_radio.ip", query="10.0.0.1", oper="=")
    assert rows[0]["login"] == "admin"
    assert rows[0]["senha"] == "s3cret"


async def test_zero_matches_omit_registros() -> None:
    async with running() as ixc:
        reply = await ixc.query("radusuarios", qtype="radusuarios.login", query="nobody", oper="=")
        past_end = await ixc.query("radusuarios", page="9", rp="2")
    assert reply.json() == {"page": "1", "total": "0"}
    assert past_end.json() == {"page": "9", "total": "4"}


# -- filters ---------------------------------------------------------------------------------------------------

OPERATOR_CASES: list[tuple[str, str, str, str, list[str]]] = [
    ("rad_caixa_ftth", "descricao", "=", "cto-centro-01", ["8"]),  # case-insensitive
    ("rad_caixa_ftth", "status", "!=", "A", ["10"]),
    ("rad_caixa_ftth", "id", ">", "9", ["10", "11"]),  # numeric: "10" > "9"
    ("rad_caixa_ftth", "id", "<", "10", ["8", "9"]),
    ("rad_caixa_ftth", "capacidade", ">=", "16", ["8", "10"]),
    ("rad_caixa_ftth", "capacidade", "<=", "8", ["9", "11"]),
    ("rad_caixa_ftth", "descricao", "L", "centro", ["8", "9"]),
    ("rad_caixa_ftth", "descricao", "NL", "CENTRO", ["10", "11"]),
    ("rad_caixa_ftth", "id", "IN", "8,10,99", ["8", "10"]),
    ("rad_caixa_ftth", "id", "NI", "8, 10", ["9", "11"]),
    ("rad_caixa_ftth", "id", "BE", "9,10", ["9", "10"]),
    ("rad_caixa_ftth", "id", "NBE", "9,10", ["8", "11"]),
    ("radusuarios", "online", "IN", "S,N", ["4410", "4412"]),
    ("radusuarios", "id_caixa_ftth", "=", "08", ["4410", "4412"]),  # integers compare numerically
    ("cliente_contrato", "data_ativacao", ">=", "01/01/2024", ["1"]),  # DD/MM/YYYY on a DATE column
    ("cliente_contrato", "data_ativacao", "<", "2024-01-01", ["2", "3", "4"]),  # zero dates sort first
    ("radusuarios", "ultima_atualizacao", ">=", "2025-03-02 07:41:10", ["4410", "4412"]),
    ("radusuarios", "ultima_atualizacao", ">", "02/03/2025 07:41:10", ["4412"]),
    ("radusuarios", "ultima_atualizacao", "<=", "2025-03-02", ["4411", "4413"]),  # date → midnight
    ("cliente", "razao", "=", "JOÃO SILVA", ["2"]),
]


@pytest.mark.parametrize(("table", "column", "oper", "query", "expected"), OPERATOR_CASES)
async def test_operators_of_the_main_filter(
    table: str, column: str, oper: str, query: str, expected: list[str]
) -> None:
    async with running() as ixc:
        ids = await ixc.ids(table, qtype=f"{table}.{column}", query=query, oper=oper)
    assert ids == expected


@pytest.mark.parametrize(("table", "column", "oper", "query", "expected"), OPERATOR_CASES)
async def test_operators_in_grid_param(
    table: str, column: str, oper: str, query: str, expected: list[str]
) -> None:
    item = {"TB": f"{table}.{column}", "OP": oper, "P": query}
    if oper in ("BE", "NBE"):
        item["P"], item["P2"] = query.split(",")
    async with running() as ixc:
        ids = await ixc.ids(table, qtype=f"{table}.id", query="", oper="=", grid_param=grid(item))
    assert ids == expected


async def test_empty_query_means_no_main_filter() -> None:
    async with running() as ixc:
        ids = await ixc.ids("rad_caixa_ftth", qtype="rad_caixa_ftth.descricao", query="", oper="=")
    assert ids == ["8", "9", "10", "11"]


async def test_grid_param_ands_with_the_main_filter_as_string_or_array() -> None:
    items: list[dict[str, Any]] = [
        {"TB": "radusuarios.ativo", "OP": "=", "P": "S"},
        {"TB": "radusuarios.id_caixa_ftth", "OP": "=", "P": "8"},
    ]
    async with running() as ixc:
        as_string = await ixc.ids(
            "radusuarios", qtype="radusuarios.tipo_conexao_mapa", query="F", oper="=", grid_param=grid(*items)
        )
        as_array = await ixc.ids(
            "radusuarios", qtype="radusuarios.tipo_conexao_mapa", query="F", oper="=", grid_param=items
        )
        only_grid = await ixc.ids("radusuarios", grid_param=grid(items[0]))
    assert as_string == as_array == ["4410", "4412"]
    assert only_grid == ["4410", "4412", "4413"]


async def test_box_by_name_within_project() -> None:
    async with running() as ixc:
        ids = await ixc.ids(
            "rad_caixa_ftth",
            qtype="rad_caixa_ftth.descricao",
            query="CTO-NORTE-01",
            oper="=",
            grid_param=grid({"TB": "rad_caixa_ftth.id_projeto", "OP": "=", "P": "2"}),
        )
    assert ids == ["10"]


async def test_empty_grid_value_matches_empty_values() -> None:
    async with running() as ixc:
        no_box = await ixc.ids("radusuarios", grid_param=grid({"TB": "radusuarios.id_caixa_ftth", "P": ""}))
        no_online = await ixc.ids(
            "radusuarios", grid_param=grid({"TB": "radusuarios.online", "OP": "=", "P": ""})
        )
        never_active = await ixc.ids(
            "cliente_contrato", grid_param=grid({"TB": "cliente_contrato.data_ativacao", "OP": "=", "P": ""})
        )
    assert no_box == ["4413"]
    assert no_online == ["4413"]
    assert never_active == ["2", "4"]


async def test_id_in_batches() -> None:
    ids = ",".join(str(n) for n in range(4000, 4600))
    async with running() as ixc:
        found = await ixc.ids("radusuarios", qtype="radusuarios.id", query=ids, oper="IN")
    assert found == ["4410", "4411", "4412", "4413"]


BAD_LISTS: list[dict[str, Any]] = [
    {"qtype": "rad_caixa_ftth.nome", "query": "x", "oper": "="},  # no such column
    {"qtype": "descricao", "query": "x", "oper": "="},  # no table prefix
    {"qtype": "df_projeto.nome", "query": "x", "oper": "="},  # another table's column
    {"qtype": "rad_caixa_ftth.descricao", "query": "", "sortname": "descricao"},
    {"sortname": "rad_caixa_ftth.cor"},
    {"grid_param": grid({"TB": "rad_caixa_ftth.nada", "OP": "=", "P": "1"})},
    {"grid_param": grid({"TB": "status", "OP": "=", "P": "A"})},
    {"grid_param": "[{not json"},
    {"qtype": "rad_caixa_ftth.id", "query": "1", "oper": "LIKE"},
    {"qtype": "rad_caixa_ftth.id", "query": "9", "oper": "BE"},  # BE needs two values
    {"page": "first"},
]


@pytest.mark.parametrize("params", BAD_LISTS)
async def test_bad_list_requests_answer_the_html_error_page_with_500(params: dict[str, Any]) -> None:
    async with running() as ixc:
        reply = await ixc.query("rad_caixa_ftth", **params)
    assert reply.status == 500
    assert reply.is_html_error
    assert reply.text.startswith("<div") and reply.text.count("<div") == 1


async def test_broken_json_list_body_is_the_html_page() -> None:
    async with running() as ixc:
        reply = await ixc.call(
            "POST",
            "/webservice/v1/cliente",
            data=b'{"qtype": ',
            listar=True,
            headers={"Content-Type": "application/json"},
        )
    assert reply.status == 500
    assert reply.is_html_error


# -- paging and sorting ----------------------------------------------------------------------------------------


async def test_paging_and_total() -> None:
    async with running() as ixc:
        pages = [(await ixc.query("rad_caixa_ftth", page=str(p), rp="3")).json() for p in (1, 2, 3)]
    assert [p["total"] for p in pages] == ["4", "4", "4"]
    assert [r["id"] for r in pages[0]["registros"]] == ["8", "9", "10"]
    assert [r["id"] for r in pages[1]["registros"]] == ["11"]
    assert "registros" not in pages[2]


async def test_default_rp_is_20_and_default_sort_id_asc() -> None:
    store_rows = [{"id": str(n), "nome": f"P{n}", "status": "A"} for n in range(30, 0, -1)]
    store = seeded_store()
    store.load("df_projeto", store_rows)
    async with running(store) as ixc:
        body = (await ixc.query("df_projeto")).json()
    assert body["total"] == "30"
    assert [r["id"] for r in body["registros"]] == [str(n) for n in range(1, 21)]


async def test_sorting() -> None:
    async with running() as ixc:
        desc = await ixc.ids("rad_caixa_ftth", sortname="rad_caixa_ftth.id", sortorder="desc")
        by_name = await ixc.ids("rad_caixa_ftth", sortname="rad_caixa_ftth.descricao", sortorder="asc")
        by_capacity = await ixc.ids("rad_caixa_ftth", sortname="rad_caixa_ftth.capacidade", sortorder="desc")
        by_update = await ixc.ids("radusuarios", sortname="radusuarios.ultima_atualizacao", sortorder="asc")
    assert desc == ["11", "10", "9", "8"]
    assert by_name == ["8", "9", "11", "10"]  # case-insensitive: CTO-CENTRO-*, CTO-LIVRE, cto-norte-01
    assert by_capacity == ["8", "10", "9", "11"]  # numeric, ties in id order
    assert by_update == ["4413", "4411", "4410", "4412"]


async def test_repeated_paging_uses_the_cached_selection() -> None:
    params = {"qtype": "rad_caixa_ftth.status", "query": "A", "rp": "1"}
    async with running() as ixc:
        cache = ixc.store.table("rad_caixa_ftth").cache
        await ixc.query("rad_caixa_ftth", page="1", **params)
        (selection,) = cache.values()
        second = await ixc.query("rad_caixa_ftth", page="2", **params)
        (again,) = cache.values()
    assert again is selection
    assert selection == ["8", "9", "11"]
    assert [r["id"] for r in second.json()["registros"]] == ["9"]
