"""The IXC tables the connector serves as raw collections, per ixc.md sections 3 and 4.

A collection is a table: records carry the row's columns as strings, whatever the install returns, minus
credentials. :data:`CATALOG` lists the documented columns (rules may only name those). ``writable`` columns may be
changed by an update; tables with ``insert`` also accept creates, whose body carries every writable column
(``""`` for the unused ones, as IXC's own samples do). ``incremental`` tables have ``ultima_atualizacao``.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from reconciler.connectors.base import Catalog, CollectionSchema


class Table(msgspec.Struct, frozen=True):
    """How the connector treats one table."""

    name: str
    columns: frozenset[str]
    writable: frozenset[str] = frozenset()
    insert: bool = False
    incremental: bool = False
    secrets: frozenset[str] = frozenset()
    """Columns never copied into records, besides every ``senha*`` column."""
    description: str = ""

    def is_secret(self, column: str) -> bool:
        return column.startswith("senha") or column in self.secrets


def _cols(text: str) -> frozenset[str]:
    return frozenset(text.split())


BOX_WRITABLE = _cols(
    "descricao tipo id_projeto id_transmissor id_interface id_tecnologia capacidade latitude longitude "
    "codigo_estilo_caixa obs_caixa_ftth status idx id_diretorio id_mini_projeto cep endereco numero bairro id_cidade"
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "rad_caixa_ftth",
            BOX_WRITABLE | _cols("id ultima_atualizacao external_id"),
            writable=BOX_WRITABLE,
            insert=True,
            incremental=True,
            description="FTTH boxes (CTOs)",
        ),
        Table(
            "df_projeto",
            _cols("id nome latitude longitude zoom status id_filial cor_mapa"),
            writable=_cols("nome latitude longitude zoom status id_filial cor_mapa"),
            insert=True,
            description="Projects (FiberDocs/InMap)",
        ),
        Table(
            "radpop_radio",
            _cols("id descricao ip id_pop ativo fabricante_modelo conexao"),
            secrets=_cols("login"),
            description="Transmitters (OLTs, radios); device credentials are never read into records",
        ),
        Table("radpop", _cols("id pop latitude longitude"), description="POPs"),
        Table(
            "radpop_radio_porta_fibra",
            _cols("id id_pop_radio id_slot numero_pon interface"),
            description="PON ports of OLTs",
        ),
        Table(
            "radusuarios",
            _cols(
                "id id_cliente id_contrato login ativo online tipo_conexao_mapa autenticacao id_caixa_ftth "
                "ftth_porta id_transmissor id_porta_transmissor id_df_projeto splitter latitude longitude "
                "endereco_padrao_cliente endereco numero bairro cidade cep id_condominio bloco apartamento mac "
                "onu_mac ip concentrador id_grupo sinal_ultimo_atendimento ultima_conexao_inicial "
                "ultima_conexao_final motivo_desconexao ultima_atualizacao id_filial"
            ),
            writable=_cols("id_caixa_ftth ftth_porta latitude longitude"),
            incremental=True,
            description="Logins (connections); the OZmap client code is the login",
        ),
        Table(
            "cliente",
            _cols(
                "id razao fantasia tipo_pessoa cnpj_cpf ativo endereco numero complemento bairro cidade uf cep "
                "latitude longitude email telefone_celular fone id_condominio bloco apartamento data_cadastro "
                "ultima_atualizacao"
            ),
            incremental=True,
            description="Customers",
        ),
        Table(
            "cliente_contrato",
            _cols(
                "id id_cliente id_vd_contrato contrato status status_internet tipo data data_ativacao "
                "data_cancelamento data_desistencia motivo_cancelamento endereco_padrao_cliente endereco numero "
                "bairro cep latitude longitude id_condominio bloco apartamento ultima_atualizacao"
            ),
            incremental=True,
            description="Contracts",
        ),
        Table(
            "radpop_radio_cliente_fibra",
            _cols(
                "id id_login id_contrato id_transmissor nome id_caixa_ftth porta_ftth mac serial_number ponid "
                "slotno ponno onu_numero id_radpop_radio_porta sinal_rx sinal_tx temperatura voltagem data_sinal "
                "status_potencia causa_ultima_queda latitude longitude id_condominio radpop_estrutura"
            ),
            writable=_cols("id_caixa_ftth porta_ftth"),
            description="ONUs (optical power readings)",
        ),
        Table(
            "cliente_condominio",
            _cols("id condominio endereco numero bairro id_cidade"),
            description="Condominiums",
        ),
    )
}


def catalog(tables: Iterable[Table]) -> Catalog:
    """The collection schemas of ``tables``."""
    return {
        t.name: CollectionSchema(
            fields=t.columns,
            writable=t.writable,
            incremental=t.incremental,
            deletions=False,
            description=t.description,
        )
        for t in tables
    }


CATALOG: Catalog = catalog(TABLES.values())
