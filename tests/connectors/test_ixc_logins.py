"""The IXC ``logins`` view against the IXC sandbox: the login joined with contract status, customer name and
ONU signal, batched per page; read-only and not incremental."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NamedTuple

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from reconciler import errors
from reconciler.connectors.ixc.connector import IxcConnector
from reconciler.model import Record
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ixc import DEFAULT_TOKEN, HTML_ERROR_PAGE, IxcStore, create_app
from tests.connectors.conftest import api_requests, system, url_of

pytestmark = pytest.mark.anyio


class Env(NamedTuple):
    store: IxcStore
    faults: Faults
    connector: IxcConnector


def load(store: IxcStore) -> None:
    store.load("cliente", [{"id": str(i), "razao": f"Cliente {i}"} for i in range(1, 6)])
    store.load(
        "cliente_contrato",
        [{"id": "11", "id_cliente": "1", "status": "A"}, {"id": "12", "id_cliente": "2", "status": "D"}],
    )
    store.load(
        "radusuarios",
        [
            {"id": "1", "id_cliente": "1", "id_contrato": "11", "login": "ana", "ativo": "S", "online": "S",
             "tipo_conexao_mapa": "F", "id_caixa_ftth": "0", "ftth_porta": "0", "senha": "x"},
            {"id": "2", "id_cliente": "2", "id_contrato": "12", "login": "bia", "ativo": "N", "online": "SS",
             "tipo_conexao_mapa": "F"},
            {"id": "3", "id_cliente": "3", "id_contrato": "0", "login": "caio", "ativo": "N",
             "tipo_conexao_mapa": "F"},
            {"id": "4", "id_cliente": "4", "id_contrato": "99", "login": "duda", "ativo": "S",
             "tipo_conexao_mapa": "58"},
            {"id": "5", "id_cliente": "77", "id_contrato": "0", "login": "edu", "ativo": "S",
             "tipo_conexao_mapa": "F"},
        ],
    )  # fmt: skip
    store.load(
        "radpop_radio_cliente_fibra",
        [
            {"id": "1", "id_login": "1", "nome": "a1", "sinal_rx": "0.00", "id_transmissor": "0"},
            {"id": "2", "id_login": "1", "nome": "a2", "sinal_rx": "-21.35", "id_transmissor": "0"},
            {"id": "3", "id_login": "2", "nome": "b", "sinal_rx": "0.00", "id_transmissor": "0"},
        ],
    )


@pytest.fixture
async def env(session: aiohttp.ClientSession) -> AsyncIterator[Env]:
    store = IxcStore()
    load(store)
    faults = Faults(html_page=HTML_ERROR_PAGE, html_status=200)
    async with TestServer(create_app(store, faults=faults), host="127.0.0.1") as server:
        yield Env(
            store, faults, IxcConnector(system("ixc", url_of(server), DEFAULT_TOKEN, page_size=2), session)
        )


async def logins(env: Env) -> dict[str, Record]:
    out: dict[str, Record] = {}
    async for page in env.connector.stream("logins"):
        out.update((str(r.fields["login"]), r) for r in page)
    return out


async def test_logins_carry_contract_status_customer_name_and_signal(env: Env) -> None:
    records = await logins(env)
    ana = records["ana"].fields
    assert (ana["ativo"], ana["online"], ana["tipo_conexao_mapa"]) == ("S", "S", "F")
    assert (ana["contract_status"], ana["client_name"], ana["signal"]) == ("A", "Cliente 1", "-21.35")
    assert "senha" not in ana
    assert (records["bia"].fields["contract_status"], records["bia"].fields["signal"]) == ("D", "0.00")
    assert records["caio"].fields["contract_status"] == ""  # id_contrato "0": no contract
    assert records["duda"].fields["contract_status"] == ""  # a contract that does not exist
    assert records["caio"].fields["signal"] is None  # no ONU
    assert records["edu"].fields["client_name"] is None  # a customer that does not exist


async def test_joined_tables_are_read_in_batches_per_page(env: Env) -> None:
    await logins(env)
    assert len(api_requests(env.faults, "POST", "/radusuarios")) == 3  # 5 logins, rp 2
    contracts = api_requests(env.faults, "POST", "/cliente_contrato")
    assert len(contracts) <= 3 and all(e.headers["ixcsoft"] == "listar" for e in contracts)


async def test_fetch_and_find_logins(env: Env) -> None:
    (bia,) = await env.connector.fetch_by_ids("logins", ["2"])
    assert bia.fields["contract_status"] == "D"
    (found,) = await env.connector.find("logins", {"login": "ana"})
    assert found.id == "1" and found.fields["signal"] == "-21.35"
    assert await env.connector.find("logins", {"login": "ana", "contract_status": "D"}) == []


async def test_the_view_is_read_only_and_not_incremental(env: Env) -> None:
    assert not IxcConnector.CATALOG["logins"].incremental
    with pytest.raises(errors.ConfigError, match="read-only"):
        await env.connector.update("logins", "1", {"login": "x"})
    with pytest.raises(errors.ConfigError, match="ultima_atualizacao"):
        env.connector.stream("logins", since="2025-01-01 00:00:00")
    with pytest.raises(errors.ConfigError, match="no operation 'cancel'"):
        await env.connector.operate("radusuarios", "1", "cancel", {})
