"""Shared helpers of the IXC sandbox tests (no tests here): fixture rows and a client over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
from aiohttp import test_utils

from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ixc import FAULTS_KEY, IxcStore, basic_auth, create_app

TOKEN = "17:" + "9c1e" * 16
EN_TOKEN = "18:" + "a0b1" * 16
BLUE, BLACK = "7eTTWpDR", "50r7nh0u"


class Clock:
    """A settable clock (aware UTC); ``tick`` moves it forward."""

    def __init__(self, start: datetime = datetime(2025, 3, 10, 15, 0, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


def seeded_store(clock: Callable[[], datetime] | None = None) -> IxcStore:
    """A small IXC world: 2 projects, a POP, 2 OLTs, a PON port, 4 boxes, 3 customers, 4 contracts, 4 logins,
    2 ONUs, 1 condominium."""
    store = IxcStore(tokens={TOKEN: "pt-BR", EN_TOKEN: "en-US"}, clock=clock)
    store.load(
        "df_projeto",
        [
            {
                "id": "1",
                "nome": "Centro",
                "latitude": "-27.59",
                "longitude": "-48.54",
                "zoom": "15",
                "status": "A",
            },
            {
                "id": "2",
                "nome": "Bairro Norte",
                "latitude": "-27.5",
                "longitude": "-48.5",
                "zoom": "14",
                "status": "A",
            },
        ],
    )
    store.load("radpop", [{"id": "1", "pop": "POP Centro", "id_projeto": "1", "ativo": "S"}])
    store.load(
        "radpop_radio",
        [
            {"id": "1", "descricao": "OLT-FH-1", "ip": "10.0.0.1", "id_pop": "1", "ativo": "S",
             "fabricante_modelo": "FH", "login": "admin", "senha": "s3cret"},
            {"id": "2", "descricao": "OLT-HW-2", "ip": "10.0.0.2", "id_pop": "1", "ativo": "S",
             "fabricante_modelo": "HW"},
        ],
    )  # fmt: skip
    store.load(
        "radpop_radio_porta_fibra",
        [{"id": "1", "id_pop_radio": "1", "id_slot": "1", "numero_pon": "1", "interface": "gpon 1/1/1"}],
    )
    store.load(
        "rad_caixa_ftth",
        [
            {"id": "8", "descricao": "CTO-CENTRO-01", "tipo": "P", "id_projeto": "1", "id_transmissor": "1",
             "capacidade": "16", "latitude": "-27.5969", "longitude": "-48.5495", "codigo_estilo_caixa": BLUE,
             "status": "A", "ultima_atualizacao": "2025-03-01 10:00:00"},
            {"id": "9", "descricao": "CTO-CENTRO-02", "tipo": "P", "id_projeto": "1", "id_transmissor": "2",
             "capacidade": "8", "codigo_estilo_caixa": BLUE, "status": "A",
             "ultima_atualizacao": "2025-03-02 11:30:00"},
            {"id": "10", "descricao": "cto-norte-01", "tipo": "N", "id_projeto": "2", "capacidade": "16",
             "codigo_estilo_caixa": BLACK, "status": "I", "obs_caixa_ftth": "ozmap:64f0c1",
             "ultima_atualizacao": "2025-03-03 09:15:00"},
            {"id": "11", "descricao": "CTO-LIVRE", "tipo": "A", "id_projeto": "2", "capacidade": "4",
             "codigo_estilo_caixa": BLACK, "status": "A"},
        ],
    )  # fmt: skip
    store.load(
        "cliente_condominio",
        [{"id": "1", "condominio": "Residencial Aurora", "endereco": "Rua A", "numero": "10", "bairro": "Centro",
          "id_cidade": "4205"}],
    )  # fmt: skip
    store.load(
        "cliente",
        [
            {"id": "1", "razao": "Maria Souza", "tipo_pessoa": "F", "cnpj_cpf": "627.105.245-20", "ativo": "S",
             "data_cadastro": "2024-06-18"},
            {"id": "2", "razao": "João Silva", "tipo_pessoa": "F", "ativo": "N", "id_condominio": "1"},
            {"id": "3", "razao": "Empresa X Ltda", "tipo_pessoa": "J", "ativo": "S"},
        ],
    )  # fmt: skip
    store.load(
        "cliente_contrato",
        [
            {"id": "1", "id_cliente": "1", "status": "A", "status_internet": "A", "tipo": "I",
             "data_ativacao": "2024-06-18"},
            {"id": "2", "id_cliente": "2", "status": "D", "status_internet": "D", "data_desistencia": "2025-01-05"},
            {"id": "3", "id_cliente": "3", "status": "I", "data_ativacao": "2023-01-10"},
            {"id": "4", "id_cliente": "1", "status": "P"},
        ],
    )  # fmt: skip
    store.load(
        "radusuarios",
        [
            {"id": "4410", "id_cliente": "1", "id_contrato": "1", "login": "maria.souza", "senha": "pw1",
             "ativo": "S", "online": "S", "tipo_conexao_mapa": "F", "autenticacao": "L", "id_caixa_ftth": "8",
             "ftth_porta": "3", "id_transmissor": "1", "latitude": "-27.5969", "longitude": "-48.5495",
             "ultima_conexao_inicial": "2025-03-02 07:41:10", "ultima_atualizacao": "2025-03-02 07:41:10"},
            {"id": "4411", "id_cliente": "2", "id_contrato": "2", "login": "joao.silva", "ativo": "N",
             "online": "SS", "tipo_conexao_mapa": "F", "id_caixa_ftth": "9", "ftth_porta": "1",
             "ultima_atualizacao": "2025-02-01 08:00:00"},
            {"id": "4412", "id_cliente": "3", "id_contrato": "3", "login": "empresa.x", "ativo": "S",
             "online": "N", "tipo_conexao_mapa": "F", "id_caixa_ftth": "8", "ftth_porta": "10",
             "ultima_atualizacao": "2025-03-05 12:00:00"},
            {"id": "4413", "id_cliente": "1", "login": "radio.user", "ativo": "S", "online": "",
             "tipo_conexao_mapa": "58"},
        ],
    )  # fmt: skip
    store.load(
        "radpop_radio_cliente_fibra",
        [
            {"id": "1", "id_login": "4410", "id_contrato": "1", "id_transmissor": "1", "nome": "ONU maria",
             "id_caixa_ftth": "8", "porta_ftth": "3", "sinal_rx": "-21.35", "sinal_tx": "2.10",
             "radpop_estrutura": "N", "data_sinal": "2025-03-09 03:00:00"},
            {"id": "2", "id_login": "4412", "id_transmissor": "1", "nome": "ONU empresa", "id_caixa_ftth": "8",
             "porta_ftth": "10", "sinal_rx": "0.00", "radpop_estrutura": "N"},
        ],
    )  # fmt: skip
    return store


@dataclass
class Reply:
    """An HTTP answer, read whole."""

    status: int
    content_type: str
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return msgspec.json.decode(self.text)

    @property
    def is_html_error(self) -> bool:
        return self.content_type == "text/html" and "Contate o suporte IXC Soft" in self.text


_DEFAULT = object()


@dataclass
class Ixc:
    """A running sandbox plus a client session."""

    store: IxcStore
    server: test_utils.TestServer
    session: aiohttp.ClientSession

    @property
    def faults(self) -> Faults:
        return self.server.app[FAULTS_KEY]

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        listar: bool = False,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
        wait: float | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", basic_auth(token))
        if listar:
            sent["ixcsoft"] = "listar"
        client_timeout = aiohttp.ClientTimeout(total=wait) if wait else aiohttp.ClientTimeout(total=30)
        async with self.session.request(
            method, self.url(path), json=json, data=data, headers=sent, timeout=client_timeout
        ) as resp:
            text = await resp.text()
            return Reply(resp.status, resp.content_type, dict(resp.headers), text)

    async def query(self, table: str, **params: Any) -> Reply:
        return await self.call("POST", f"/webservice/v1/{table}", json=params, listar=True)

    async def rows(self, table: str, **params: Any) -> list[dict[str, Any]]:
        reply = await self.query(table, **{"rp": "1000", **params})
        assert reply.status == 200, reply.text
        body = reply.json()
        registros: list[dict[str, Any]] = body.get("registros", [])
        return registros

    async def ids(self, table: str, **params: Any) -> list[str]:
        return [row["id"] for row in await self.rows(table, **params)]

    async def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url(f"/_sandbox/{path}"), json=body) as resp:
            raw = await resp.read()
            return resp.status, (msgspec.json.decode(raw) if raw else None)


@asynccontextmanager
async def running(store: IxcStore | None = None, *, faults: Faults | None = None) -> AsyncIterator[Ixc]:
    """Serve ``store`` (default: :func:`seeded_store`) on 127.0.0.1 and open a client session."""
    store = store if store is not None else seeded_store()
    server = test_utils.TestServer(create_app(store, faults=faults), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Ixc(store, server, session)
    finally:
        await server.close()
