"""IXC sandbox over real HTTP: inserts, full-record PUTs, deletes, ``ultima_atualizacao``, localised messages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.test_ixc_support import BLUE, EN_TOKEN, Clock, running, seeded_store

pytestmark = pytest.mark.anyio

NEW_BOX = {
    "descricao": "CTO-BAIRRO-07",
    "tipo": "P",
    "id_projeto": "1",
    "id_transmissor": "2",
    "id_interface": "",
    "id_tecnologia": "",
    "capacidade": "16",
    "latitude": "-27.5969",
    "longitude": "-48.5495",
    "codigo_estilo_caixa": BLUE,
    "obs_caixa_ftth": "ozmap:64f0c1",
    "status": "A",
    "idx": "",
    "ultima_atualizacao": "",
    "cep": "",
    "endereco": "",
    "numero": "",
    "bairro": "",
    "id_cidade": "",
}


def without(record: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in keys}


# -- insert ----------------------------------------------------------------------------------------------------


async def test_insert_answers_success_with_the_new_id_and_stores_normalised_values() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as ixc:
        reply = await ixc.call("POST", "/webservice/v1/rad_caixa_ftth", json=NEW_BOX)
        listed = await ixc.rows(
            "rad_caixa_ftth", qtype="rad_caixa_ftth.id", query=reply.json()["id"], oper="="
        )
    assert reply.status == 200
    assert reply.json() == {"type": "success", "message": "Registro inserido com sucesso!", "id": "12"}
    (box,) = listed
    assert box["descricao"] == "CTO-BAIRRO-07"
    assert box["id_interface"] == "0"  # "" becomes the empty reference
    assert box["id_cidade"] == "0"
    assert box["external_id"] == ""  # not sent: empty value
    assert box["ultima_atualizacao"] == "2025-03-10 12:00:00"  # server time, UTC-03, value sent ignored


async def test_insert_with_form_fields_and_trailing_slash() -> None:
    form = {"nome": "Projeto Sul", "latitude": "-27.7", "longitude": "-48.6", "zoom": "13", "status": "A"}
    async with running() as ixc:
        reply = await ixc.call("POST", "/webservice/v1/df_projeto/", data=form)
    assert reply.json()["type"] == "success"
    assert ixc.store.get("df_projeto", reply.json()["id"]) is not None


async def test_insert_accepts_olt_zero_and_converts_brazilian_dates() -> None:
    contract = {"id_cliente": "3", "status": "A", "data_ativacao": "18/06/2024", "data": "2024-06-01"}
    async with running() as ixc:
        box = await ixc.call("POST", "/webservice/v1/rad_caixa_ftth", json={**NEW_BOX, "id_transmissor": "0"})
        made = await ixc.call("POST", "/webservice/v1/cliente_contrato", json=contract)
    assert box.json()["type"] == "success"
    stored = ixc.store.get("cliente_contrato", made.json()["id"])
    assert stored is not None
    assert stored["data_ativacao"] == "2024-06-18"
    assert stored["data"] == "2024-06-01"
    assert stored["data_cancelamento"] == "0000-00-00"


REFUSED_INSERTS: list[tuple[str, dict[str, Any], str]] = [
    ("rad_caixa_ftth", without(NEW_BOX, "descricao"), "O campo descricao é obrigatório!<br />"),
    ("rad_caixa_ftth", {**NEW_BOX, "id_projeto": "0"}, "O campo id_projeto é obrigatório!<br />"),
    ("rad_caixa_ftth", without(NEW_BOX, "codigo_estilo_caixa"), "O campo codigo_estilo_caixa é obrigatório!<br />"),
    ("rad_caixa_ftth", {**NEW_BOX, "id_projeto": "99"}, "O registro 99 informado no campo id_projeto não existe!<br />"),
    ("rad_caixa_ftth", {**NEW_BOX, "id_transmissor": "7"}, "O registro 7 informado no campo id_transmissor não existe!<br />"),
    ("rad_caixa_ftth", {**NEW_BOX, "status": "X"}, "Valor inválido para o campo status!<br />"),
    ("rad_caixa_ftth", {**NEW_BOX, "codigo_estilo_caixa": "azul"}, "Valor inválido para o campo codigo_estilo_caixa!<br />"),
    ("df_projeto", {"nome": "Sem zoom", "latitude": "1", "longitude": "1", "status": "A"}, "O campo zoom é obrigatório!<br />"),
    ("df_projeto", {"nome": "X", "latitude": "1", "longitude": "1", "zoom": "3", "status": ""}, "O campo status é obrigatório!<br />"),
]  # fmt: skip


@pytest.mark.parametrize(("table", "body", "message"), REFUSED_INSERTS)
async def test_refused_inserts_answer_type_error_with_200(
    table: str, body: dict[str, Any], message: str
) -> None:
    async with running() as ixc:
        before = len(ixc.store.all(table))
        reply = await ixc.call("POST", f"/webservice/v1/{table}", json=body)
    assert reply.status == 200
    assert reply.json() == {"type": "error", "message": message}
    assert len(ixc.store.all(table)) == before


async def test_messages_follow_the_token_language() -> None:
    async with running() as ixc:
        ok = await ixc.call("POST", "/webservice/v1/rad_caixa_ftth", json=NEW_BOX, token=EN_TOKEN)
        bad = await ixc.call(
            "POST", "/webservice/v1/rad_caixa_ftth", json=without(NEW_BOX, "descricao"), token=EN_TOKEN
        )
    assert ok.json()["message"] == "Record successfully inserted!"
    assert bad.json() == {"type": "error", "message": "The field descricao is required!<br />"}


# -- update ----------------------------------------------------------------------------------------------------


async def test_put_of_the_full_record_replaces_it_and_bumps_ultima_atualizacao() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as ixc:
        (box,) = await ixc.rows("rad_caixa_ftth", qtype="rad_caixa_ftth.id", query="8", oper="=", rp="1")
        clock.tick(90)
        body = {**without(box, "id"), "latitude": "-27.6000", "status": "I"}
        reply = await ixc.call("PUT", "/webservice/v1/rad_caixa_ftth/8", json=body)
        (after,) = await ixc.rows("rad_caixa_ftth", qtype="rad_caixa_ftth.id", query="8", oper="=")
    assert reply.json() == {"type": "success", "message": "Registro atualizado com sucesso!", "id": "8"}
    assert after == {
        **box,
        "latitude": "-27.6000",
        "status": "I",
        "ultima_atualizacao": "2025-03-10 12:01:30",
    }


async def test_put_blanks_optional_fields_left_out() -> None:
    async with running() as ixc:
        box = ixc.store.get("rad_caixa_ftth", "8")
        assert box is not None
        reply = await ixc.call(
            "PUT", "/webservice/v1/rad_caixa_ftth/8/", json=without(box, "id", "id_transmissor", "capacidade")
        )
    after = ixc.store.get("rad_caixa_ftth", "8")
    assert reply.json()["type"] == "success"
    assert after is not None
    assert after["id_transmissor"] == "0"
    assert after["capacidade"] == "0"
    assert after["descricao"] == "CTO-CENTRO-01"


async def test_partial_put_missing_a_required_field_is_the_html_page_with_200() -> None:
    async with running() as ixc:
        before = ixc.store.get("rad_caixa_ftth", "8")
        reply = await ixc.call("PUT", "/webservice/v1/rad_caixa_ftth/8", json={"latitude": "-27.1"})
    assert reply.status == 200
    assert reply.is_html_error
    assert ixc.store.get("rad_caixa_ftth", "8") == before


async def test_put_ignores_the_body_id_unknown_keys_and_server_columns() -> None:
    async with running() as ixc:
        login = ixc.store.get("radusuarios", "4410")
        assert login is not None
        body = {
            **login,
            "id": "999",
            "online": "N",
            "campo_inexistente": "x",
            "id_caixa_ftth": "9",
            "ftth_porta": "2",
        }
        reply = await ixc.call("PUT", "/webservice/v1/radusuarios/4410", json=body)
    after = ixc.store.get("radusuarios", "4410")
    assert reply.json()["type"] == "success"
    assert ixc.store.get("radusuarios", "999") is None
    assert after is not None
    assert (after["id_caixa_ftth"], after["ftth_porta"]) == ("9", "2")
    assert after["online"] == "S"  # maintained by the RADIUS side, not writable
    assert after["ultima_conexao_inicial"] == "2025-03-02 07:41:10"
    assert "campo_inexistente" not in after


async def test_put_validates_like_insert() -> None:
    async with running() as ixc:
        box = ixc.store.get("rad_caixa_ftth", "8")
        assert box is not None
        blank = await ixc.call("PUT", "/webservice/v1/rad_caixa_ftth/8", json={**box, "descricao": ""})
        dangling = await ixc.call("PUT", "/webservice/v1/rad_caixa_ftth/8", json={**box, "id_projeto": "77"})
    assert blank.json() == {"type": "error", "message": "O campo descricao é obrigatório!<br />"}
    assert dangling.json()["type"] == "error"


async def test_put_unknown_id_is_record_not_found() -> None:
    async with running() as ixc:
        reply = await ixc.call("PUT", "/webservice/v1/rad_caixa_ftth/404", json=NEW_BOX)
        no_id = await ixc.call("PUT", "/webservice/v1/rad_caixa_ftth", json=NEW_BOX)
    assert reply.status == 200
    assert reply.json() == {"type": "error", "message": "Registro não encontrado!<br />"}
    assert no_id.is_html_error


async def test_incremental_reads_see_every_write_after_the_cursor() -> None:
    clock = Clock()
    async with running(seeded_store(clock)) as ixc:
        cursor = ixc.store.now()
        box = ixc.store.get("rad_caixa_ftth", "9")
        assert box is not None
        await ixc.call("PUT", "/webservice/v1/rad_caixa_ftth/9", json=without(box, "id"))
        made = (await ixc.call("POST", "/webservice/v1/rad_caixa_ftth", json=NEW_BOX)).json()["id"]
        changed = await ixc.ids(
            "rad_caixa_ftth",
            qtype="rad_caixa_ftth.ultima_atualizacao",
            query=cursor,
            oper=">=",
            sortname="rad_caixa_ftth.ultima_atualizacao",
        )
    assert changed == ["9", made]


async def test_stamps_never_go_backwards() -> None:
    clock = Clock()
    store = seeded_store(clock)
    first = store.now()
    clock.tick(-3600)
    assert store.now() == first


# -- delete ----------------------------------------------------------------------------------------------------


async def test_delete_refuses_a_box_used_by_a_login_or_an_onu() -> None:
    async with running() as ixc:
        by_login = await ixc.call("DELETE", "/webservice/v1/rad_caixa_ftth/9")
        ixc.store.raw_delete("radusuarios", "4410")
        ixc.store.raw_delete("radusuarios", "4412")
        by_onu = await ixc.call("DELETE", "/webservice/v1/rad_caixa_ftth/8")
        project = await ixc.call("DELETE", "/webservice/v1/df_projeto/1")
    assert by_login.status == 200
    assert by_login.json()["type"] == "error"
    assert "radusuarios" in by_login.json()["message"]
    assert by_login.json()["message"].endswith("<br />")
    assert "radpop_radio_cliente_fibra" in by_onu.json()["message"]
    assert project.json()["type"] == "error"
    assert ixc.store.get("rad_caixa_ftth", "8") is not None


async def test_delete_removes_an_unreferenced_record() -> None:
    async with running() as ixc:
        reply = await ixc.call("DELETE", "/webservice/v1/rad_caixa_ftth/11")
        again = await ixc.call("DELETE", "/webservice/v1/rad_caixa_ftth/11")
        listed = await ixc.ids("rad_caixa_ftth")
    assert reply.json() == {"type": "success", "message": "Registro removido com sucesso!"}
    assert again.json() == {"type": "error", "message": "Registro não encontrado!<br />"}
    assert listed == ["8", "9", "10"]


async def test_freeing_the_port_then_deleting_the_box() -> None:
    async with running() as ixc:
        login = ixc.store.get("radusuarios", "4411")
        assert login is not None
        moved = await ixc.call(
            "PUT", "/webservice/v1/radusuarios/4411", json={**login, "id_caixa_ftth": "0", "ftth_porta": "0"}
        )
        reply = await ixc.call("DELETE", "/webservice/v1/rad_caixa_ftth/9")
    assert moved.json()["type"] == "success"
    assert reply.json()["type"] == "success"


async def test_writes_invalidate_cached_list_results() -> None:
    async with running() as ixc:
        before = await ixc.ids("rad_caixa_ftth", qtype="rad_caixa_ftth.status", query="A", oper="=")
        await ixc.call("POST", "/webservice/v1/rad_caixa_ftth", json=NEW_BOX)
        after = await ixc.ids("rad_caixa_ftth", qtype="rad_caixa_ftth.status", query="A", oper="=")
        await ixc.call("DELETE", "/webservice/v1/rad_caixa_ftth/11")
        final = await ixc.ids("rad_caixa_ftth", qtype="rad_caixa_ftth.status", query="A", oper="=")
        by_name = await ixc.ids("rad_caixa_ftth", qtype="rad_caixa_ftth.descricao", query="cto-bairro-07")
    assert before == ["8", "9", "11"]
    assert after == ["8", "9", "11", "12"]
    assert final == ["8", "9", "12"]
    assert by_name == ["12"]
