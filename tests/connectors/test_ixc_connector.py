"""IxcConnector against the IXC sandbox over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler import errors
from reconciler.connectors.http import Response
from reconciler.connectors.ixc.connector import IxcConnector
from reconciler.connectors.ixc.tables import BOX_WRITABLE
from reconciler.connectors.ixc.views import decode_list
from reconciler.model import Record
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ixc import DEFAULT_TOKEN, HTML_ERROR_PAGE, IxcStore, basic_auth, create_app
from tests.connectors.conftest import add_fault, api_requests, system, url_of

pytestmark = pytest.mark.anyio

HASH = DEFAULT_TOKEN.partition(":")[2]
ENCODED = base64.b64encode(DEFAULT_TOKEN.encode()).decode()

PROJECTS = [
    {"id": "3", "nome": "Centro", "latitude": "-27.59", "longitude": "-48.55", "zoom": "15", "status": "A"},
    {"id": "4", "nome": "Trindade", "latitude": "-27.60", "longitude": "-48.52", "zoom": "15", "status": "A"},
]
OLTS = [
    {"id": "2", "descricao": "OLT-FH-3", "ip": "10.0.0.7", "ativo": "S", "login": "admin", "senha": "s3cr3t",
     "senha_hw": "hw-pass", "senha_anm": "anm-pass"},
]  # fmt: skip


def box(i: int, **extra: str) -> dict[str, str]:
    row = {
        "id": str(i),
        "descricao": f"CTO-{i:02}",
        "tipo": "P",
        "id_projeto": "3",
        "id_transmissor": "2",
        "capacidade": "8",
        "latitude": "-27.5969",
        "longitude": "-48.5495",
        "codigo_estilo_caixa": "7eTTWpDR",
        "status": "A",
        "ultima_atualizacao": f"2025-03-0{1 + i % 5} 10:00:00",
    }
    row.update(extra)
    return row


class Ixc(NamedTuple):
    store: IxcStore
    faults: Faults
    url: str
    connector: IxcConnector


async def _ixc(
    session: aiohttp.ClientSession, *, token: str = DEFAULT_TOKEN, **http: Any
) -> AsyncIterator[Ixc]:
    store = IxcStore()
    store.load("df_projeto", PROJECTS)
    store.load("radpop_radio", OLTS)
    store.load("rad_caixa_ftth", [box(i) for i in range(1, 8)])
    faults = Faults(html_page=HTML_ERROR_PAGE, html_status=200)
    async with TestServer(create_app(store, faults=faults), host="127.0.0.1") as server:
        url = url_of(server)
        yield Ixc(store, faults, url, IxcConnector(system("ixc", url, token, **http), session))


@pytest.fixture
async def ixc(session: aiohttp.ClientSession) -> AsyncIterator[Ixc]:
    async for env in _ixc(session, page_size=3):
        yield env


async def collect(ixc: Ixc, collection: str, **kwargs: Any) -> list[Record]:
    return [r async for page in ixc.connector.stream(collection, **kwargs) for r in page]


def assert_no_secret(exc: BaseException) -> None:
    for secret in (DEFAULT_TOKEN, HASH, ENCODED):
        assert secret not in str(exc)


# -- listing ------------------------------------------------------------------------------------------------------


async def test_full_stream_pages_with_post_listar_and_string_params(ixc: Ixc) -> None:
    records = await collect(ixc, "rad_caixa_ftth")
    assert [r.id for r in records] == [str(i) for i in range(1, 8)]
    first = records[0]
    assert first.fields["descricao"] == "CTO-01" and first.fields["id_projeto"] == "3"
    assert first.updated_at == "2025-03-02 10:00:00"
    assert all(isinstance(v, str) for r in records for v in r.fields.values())
    lists = api_requests(ixc.faults, "POST", "/rad_caixa_ftth")
    assert len(lists) == 3  # 7 rows, rp 3
    for entry in lists:
        assert entry.headers["ixcsoft"] == "listar"
        assert all(isinstance(v, str) for v in entry.body.values())
        assert entry.body["rp"] == "3" and entry.body["sortname"] == "rad_caixa_ftth.id"
    assert sorted(e.body["page"] for e in lists) == ["1", "2", "3"]


async def test_incremental_stream_filters_on_ultima_atualizacao(ixc: Ixc) -> None:
    records = await collect(ixc, "rad_caixa_ftth", since="2025-03-04 00:00:00")
    assert [(r.id, r.updated_at) for r in records] == [
        ("3", "2025-03-04 10:00:00"),
        ("4", "2025-03-05 10:00:00"),
    ]
    body = api_requests(ixc.faults, "POST")[-1].body
    assert body["sortname"] == "rad_caixa_ftth.ultima_atualizacao"
    assert "ultima_atualizacao" in body["qtype"] + body["grid_param"]


async def test_deletions_and_non_incremental_tables_are_refused_without_a_request(ixc: Ixc) -> None:
    with pytest.raises(errors.ConfigError):
        ixc.connector.stream("rad_caixa_ftth", since="2025-01-01 00:00:00", deleted=True)
    with pytest.raises(errors.ConfigError):
        ixc.connector.stream("df_projeto", since="2025-01-01 00:00:00")
    with pytest.raises(errors.ConfigError, match="known: "):
        ixc.connector.stream("caixas")
    assert not api_requests(ixc.faults)


async def test_transmitter_credentials_never_reach_records(ixc: Ixc) -> None:
    [olt] = await collect(ixc, "radpop_radio")
    assert olt.fields["ip"] == "10.0.0.7"
    assert not {"login", "senha", "senha_hw", "senha_anm"} & olt.fields.keys()
    assert "s3cr3t" not in repr(olt)


async def test_registros_absent_is_an_empty_answer(ixc: Ixc) -> None:
    assert await ixc.connector.find("rad_caixa_ftth", {"descricao": "NOPE"}) == []
    assert await collect(ixc, "cliente") == []
    assert await ixc.connector.fetch_by_ids("rad_caixa_ftth", ["999"]) == []


async def test_rp_overflow_is_deduplicated(ixc: Ixc) -> None:
    ixc.store.knobs.rp_overflow = 2
    records = await collect(ixc, "rad_caixa_ftth")
    assert [r.id for r in records] == [str(i) for i in range(1, 8)]


async def test_numeric_totals_and_ids_are_coerced_to_strings(ixc: Ixc) -> None:
    ixc.store.knobs.total_as_number = True
    ixc.store.knobs.numeric_ids = True
    records = await collect(ixc, "rad_caixa_ftth")
    assert len(records) == 7
    assert records[0].id == "1" and records[0].fields["id_projeto"] == "3"


async def test_a_stream_given_fields_decodes_only_those_columns(ixc: Ixc) -> None:
    whole = await collect(ixc, "rad_caixa_ftth")
    asked = {"descricao", "capacidade", "obs_caixa_ftth", "no_such_column"}
    some = await collect(ixc, "rad_caixa_ftth", fields=asked)
    assert [r.id for r in some] == [r.id for r in whole]
    for full, slim in zip(whole, some, strict=True):
        # the asked-for columns the row has, with the id and the change marker
        kept = asked | {"id", "ultima_atualizacao"}
        assert slim.fields == {k: v for k, v in full.fields.items() if k in kept}
        assert slim.updated_at == full.updated_at and "no_such_column" not in slim.fields
    # credentials never, even when asked for; a table without ultima_atualizacao has none
    (olt,) = await collect(ixc, "radpop_radio", fields={"ip", "senha", "login"})
    assert olt.fields == {"id": "2", "ip": "10.0.0.7"}


async def test_a_stream_given_fields_coerces_odd_values_it_reads_and_ignores_the_others(ixc: Ixc) -> None:
    ixc.store.load("rad_caixa_ftth", [{**box(8), "capacidade": 16, "tipo": None}])
    odd = [r for r in await collect(ixc, "rad_caixa_ftth", fields={"descricao"}) if r.id == "8"]
    assert odd[0].fields == {"id": "8", "descricao": "CTO-08", "ultima_atualizacao": "2025-03-04 10:00:00"}
    odd = [r for r in await collect(ixc, "rad_caixa_ftth", fields={"capacidade", "tipo"}) if r.id == "8"]
    assert odd[0].fields == {
        "id": "8",
        "capacidade": "16",
        "tipo": "",
        "ultima_atualizacao": "2025-03-04 10:00:00",
    }
    ixc.store.knobs.numeric_ids = True
    records = await collect(ixc, "rad_caixa_ftth", fields={"id_projeto"})
    assert {r.id: r.fields["id_projeto"] for r in records} == {str(i): "3" for i in range(1, 9)}


def test_a_projected_row_without_a_column_stays_without_it() -> None:
    def fail(kind: type[errors.RemoteError], message: str, body: bytes | str) -> errors.RemoteError:
        return kind("ixc", message)

    body = b'{"total": "2", "registros": [{"id": "1", "a": "x", "b": "y"}, {"id": "2", "b": "z", "c": "w"}]}'
    page = decode_list(Response(200, body, {}), fail, ("a", "b", "id"))
    assert (page.total, page.rows) == (2, [{"id": "1", "a": "x", "b": "y"}, {"id": "2", "b": "z"}])
    # a column no struct field can be named after: whole rows are decoded, then cut to the columns
    page = decode_list(Response(200, body, {}), fail, ("id", "c", "class"))
    assert page.rows == [{"id": "1"}, {"id": "2", "c": "w"}]


async def test_fetch_by_ids_uses_in_and_single_id_uses_equals(ixc: Ixc) -> None:
    ixc.store.knobs.in_single_value_error = True
    found = await ixc.connector.fetch_by_ids("rad_caixa_ftth", ["2", "5", "5", "6"])
    assert sorted(r.id for r in found) == ["2", "5", "6"]
    assert api_requests(ixc.faults)[-1].body["oper"] == "IN"
    [one] = await ixc.connector.fetch_by_ids("rad_caixa_ftth", ["4"])
    assert one.id == "4"
    last = api_requests(ixc.faults)[-1].body
    assert (last["qtype"], last["oper"], last["query"]) == ("rad_caixa_ftth.id", "=", "4")


async def test_find_rechecks_exact_case(ixc: Ixc, session: aiohttp.ClientSession) -> None:
    ixc.store.load("rad_caixa_ftth", [box(20, descricao="CTO-CASE"), box(21, descricao="cto-case")])
    async with session.post(  # IXC itself compares text case-insensitively
        ixc.url + "/webservice/v1/rad_caixa_ftth",
        json={"qtype": "rad_caixa_ftth.descricao", "query": "CTO-CASE", "oper": "=", "page": "1", "rp": "9"},
        headers={"ixcsoft": "listar", "Authorization": basic_auth(DEFAULT_TOKEN)},
    ) as raw:
        assert (await raw.json(content_type=None))["total"] == "2"
    ixc.faults.log.clear()
    found = await ixc.connector.find("rad_caixa_ftth", {"descricao": "CTO-CASE", "id_projeto": "3"})
    assert [r.id for r in found] == ["20"]
    body = api_requests(ixc.faults)[-1].body
    assert (body["qtype"], body["query"], body["oper"]) == ("rad_caixa_ftth.descricao", "CTO-CASE", "=")
    assert '"TB":"rad_caixa_ftth.id_projeto"' in body["grid_param"]


# -- writes -------------------------------------------------------------------------------------------------------


async def test_create_sends_every_writable_column_without_the_list_header(ixc: Ixc) -> None:
    new_id = await ixc.connector.create(
        "rad_caixa_ftth",
        {"descricao": "CTO-NEW", "id_projeto": "3", "id_transmissor": "0", "codigo_estilo_caixa": "7eTTWpDR",
         "latitude": -27.5, "capacidade": 16, "status": "A", "tipo": "P"},
    )  # fmt: skip
    assert isinstance(new_id, str) and ixc.store.get("rad_caixa_ftth", new_id) is not None
    [post] = [e for e in api_requests(ixc.faults, "POST") if "ixcsoft" not in e.headers]
    assert set(post.body) == BOX_WRITABLE
    assert post.body["capacidade"] == "16" and post.body["latitude"] == "-27.5" and post.body["numero"] == ""


async def test_update_puts_the_whole_record_back(ixc: Ixc) -> None:
    await ixc.connector.update("rad_caixa_ftth", "2", {"descricao": "CTO-RENAMED", "capacidade": 16})
    [put] = api_requests(ixc.faults, "PUT")
    assert put.path.endswith("/rad_caixa_ftth/2")
    columns = set(ixc.store.get("rad_caixa_ftth", "2") or {}) - {"id"}
    assert set(put.body) == columns  # every column, never a partial body, never the id
    assert put.body["descricao"] == "CTO-RENAMED" and put.body["capacidade"] == "16"
    assert put.body["codigo_estilo_caixa"] == "7eTTWpDR"
    row = ixc.store.get("rad_caixa_ftth", "2") or {}
    assert row["descricao"] == "CTO-RENAMED" and row["latitude"] == "-27.5969"


async def test_update_keeps_credentials_of_the_row(ixc: Ixc) -> None:
    ixc.store.load("cliente", [{"id": "1", "razao": "Maria Souza", "senha": "hotsite-pass"}])
    ixc.store.load(
        "radusuarios",
        [
            {
                "id": "9",
                "id_cliente": "1",
                "login": "maria",
                "senha": "pppoe-pass",
                "ativo": "S",
                "ftth_porta": "1",
            }
        ],
    )
    await ixc.connector.update("radusuarios", "9", {"ftth_porta": "3"})
    row = ixc.store.get("radusuarios", "9") or {}
    assert row["senha"] == "pppoe-pass" and row["ftth_porta"] == "3"
    [record] = await ixc.connector.fetch_by_ids("radusuarios", ["9"])
    assert "senha" not in record.fields and record.fields["login"] == "maria"


async def test_update_of_an_unknown_id_is_not_found(ixc: Ixc) -> None:
    with pytest.raises(errors.NotFound):
        await ixc.connector.update("rad_caixa_ftth", "404", {"descricao": "X"})
    assert not api_requests(ixc.faults, "PUT")


async def test_writing_unwritable_fields_is_a_config_error(ixc: Ixc) -> None:
    with pytest.raises(errors.ConfigError, match="not writable: id"):
        await ixc.connector.update("rad_caixa_ftth", "2", {"id": "3"})
    with pytest.raises(errors.ConfigError):
        await ixc.connector.create("radusuarios", {"ftth_porta": "1"})


async def test_type_error_is_terminal_and_stripped_of_br(ixc: Ixc) -> None:
    with pytest.raises(errors.TerminalRemoteError) as caught:
        await ixc.connector.create(
            "rad_caixa_ftth", {"descricao": "X", "id_projeto": "999", "codigo_estilo_caixa": "7eTTWpDR"}
        )
    assert "<br" not in str(caught.value) and "id_projeto" in str(caught.value)
    assert not errors.is_transient(caught.value)
    assert_no_secret(caught.value)
    assert len([e for e in api_requests(ixc.faults, "POST") if "ixcsoft" not in e.headers]) == 1


async def test_ip_block_is_terminal(ixc: Ixc) -> None:
    ixc.store.knobs.ip_blocked = True
    with pytest.raises(errors.TerminalRemoteError, match="IP"):
        await collect(ixc, "df_projeto")
    assert len(api_requests(ixc.faults)) == 1


async def test_delete_removes_and_refusal_is_terminal(ixc: Ixc) -> None:
    await ixc.connector.delete("rad_caixa_ftth", "7")
    assert ixc.store.get("rad_caixa_ftth", "7") is None
    with pytest.raises(errors.TerminalRemoteError):  # projects are referenced by boxes
        await ixc.connector.delete("df_projeto", "3")


# -- failures -----------------------------------------------------------------------------------------------------


async def test_html_error_page_on_a_list_is_retried(ixc: Ixc) -> None:
    add_fault(ixc.faults, "html", count=1)
    records = await collect(ixc, "df_projeto")
    assert len(records) == 2
    assert [e.fault for e in api_requests(ixc.faults)] == ["html", ""]
    assert ixc.connector.statistics()["retries"] == 1


async def test_html_error_page_that_persists_is_transient_with_its_text(ixc: Ixc) -> None:
    add_fault(ixc.faults, "html")
    with pytest.raises(errors.TransientRemoteError, match="Ocorreu um erro ao processar") as caught:
        await collect(ixc, "df_projeto")
    assert "<div" not in str(caught.value)
    assert len(api_requests(ixc.faults)) == 4  # 1 + 3 retries


async def test_html_answer_to_a_create_is_not_retried(ixc: Ixc) -> None:
    add_fault(ixc.faults, "html", method="POST")
    with pytest.raises(errors.TransientRemoteError):
        await ixc.connector.create(
            "df_projeto", {"nome": "X", "latitude": "1", "longitude": "2", "zoom": "3", "status": "A"}
        )
    assert len(api_requests(ixc.faults, "POST")) == 1


async def test_bad_token_is_an_auth_error_without_the_token(session: aiohttp.ClientSession) -> None:
    bad = "7:" + "ab" * 32
    async for env in _ixc(session, token=bad):
        with pytest.raises(errors.AuthError) as caught:
            await collect(env, "df_projeto")
        assert caught.value.status == 401
        for secret in (bad, "ab" * 32, base64.b64encode(bad.encode()).decode()):
            assert secret not in str(caught.value)
        assert len(api_requests(env.faults)) == 1  # never retried
