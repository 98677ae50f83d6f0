"""Schemas of the IXC tables the sandbox serves: columns, empty values, required fields, enums, references.

The webservice exposes database tables, so a schema is just the ordered column list of a table as the list
endpoint returns it (ixc.md section 4). Each column knows its *kind*, which decides its empty value
(``""`` text, ``"0"`` references and integers, ``"0000-00-00"`` dates, ``"0000-00-00 00:00:00"`` datetimes,
``"0.00"`` readings), how filters compare it and how writes normalise it. References name the table they point to
when that table is served by the sandbox (``None``: a table the sandbox does not model, never checked).
``readonly`` columns are maintained by the server: API writes ignore them and a PUT keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ID = "id"
TEXT = "text"
REF = "ref"
INT = "int"
DEC = "dec"
ENUM = "enum"
DATE = "date"
DATETIME = "datetime"

ZERO_DATE = "0000-00-00"
ZERO_DATETIME = "0000-00-00 00:00:00"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an IXC table."""

    name: str
    kind: str
    empty: str
    required: bool = False
    choices: frozenset[str] | None = None
    ref: str | None = None
    readonly: bool = False

    @property
    def numeric(self) -> bool:
        """Integer-typed in the database: sorted numerically, ``""`` in a filter means 0."""
        return self.kind in (ID, REF, INT)

    @property
    def datelike(self) -> bool:
        return self.kind in (DATE, DATETIME)


@dataclass(frozen=True, slots=True)
class TableSchema:
    """The ordered columns of one table (``id`` first)."""

    name: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None


def text_column(name: str, *, required: bool = False) -> Column:
    """A free-text column (also used for columns first seen in loaded rows)."""
    return Column(name, TEXT, "", required=required)


def _texts(names: str) -> list[Column]:
    return [text_column(n) for n in names.split()]


def _ref(name: str, table: str | None = None, *, required: bool = False) -> Column:
    return Column(name, REF, "0", required=required, ref=table)


def _int(name: str, *, required: bool = False) -> Column:
    return Column(name, INT, "0", required=required)


def _dec(names: str) -> list[Column]:
    return [Column(n, DEC, "0.00") for n in names.split()]


def _enum(name: str, choices: str, *, required: bool = False, readonly: bool = False) -> Column:
    return Column(name, ENUM, "", required=required, choices=frozenset(choices.split()), readonly=readonly)


def _date(names: str) -> list[Column]:
    return [Column(n, DATE, ZERO_DATE) for n in names.split()]


def _datetime(name: str, *, readonly: bool = False) -> Column:
    return Column(name, DATETIME, ZERO_DATETIME, readonly=readonly)


def _table(name: str, *columns: Column | Iterable[Column]) -> TableSchema:
    flat: list[Column] = [Column("id", ID, "")]
    for item in columns:
        flat.extend([item] if isinstance(item, Column) else item)
    flat.append(_datetime("ultima_atualizacao", readonly=True))
    names = [c.name for c in flat]
    assert len(names) == len(set(names)), f"duplicate column in {name}"
    return TableSchema(name, tuple(flat))


YES_NO = "S N"
BOX_STYLES = (
    "7eTTWpDR 1Pr4jX4X 8PbLzK3P 9S83YSCh 5T4gmUHG 752EWQuj 3HHYsgRp 50r7nh0u "
    "ASydas32 a8sFy8ff AssUd3h7 AhsuSS1u LIgAKPfY YveVV4Ka H63QbvyX w5bHIgOc"
)
"""``codigo_estilo_caixa`` codes: blue, green, yellow, white, red, orange, grey, black, purple, pink, brown,
light blue, dark blue, lilac, lime, dark green."""

_SCHEMAS = (
    _table(
        "rad_caixa_ftth",
        text_column("descricao", required=True),
        _enum("tipo", "P N A"),
        _ref("id_projeto", "df_projeto", required=True),
        _ref("id_transmissor", "radpop_radio"),
        _ref("id_interface", "radpop_radio_porta_fibra"),
        _ref("id_tecnologia"),
        _int("capacidade"),
        _texts("latitude longitude"),
        _enum("codigo_estilo_caixa", BOX_STYLES, required=True),
        text_column("obs_caixa_ftth"),
        _enum("status", "A I"),
        text_column("idx"),
        _ref("id_diretorio"),
        _ref("id_mini_projeto"),
        _texts("cep endereco numero bairro"),
        _ref("id_cidade"),
        text_column("external_id"),
    ),
    _table(
        "df_projeto",
        text_column("nome", required=True),
        text_column("latitude", required=True),
        text_column("longitude", required=True),
        _int("zoom", required=True),
        _enum("status", "A I", required=True),
        _ref("id_filial"),
        text_column("cor_mapa"),
    ),
    _table(
        "radpop",
        text_column("pop", required=True),
        _texts("latitude longitude endereco"),
        _ref("id_cidade"),
        _ref("id_projeto", "df_projeto"),
        _enum("ativo", YES_NO),
    ),
    _table(
        "radpop_radio",
        text_column("descricao", required=True),
        text_column("ip"),
        _ref("id_pop", "radpop"),
        _enum("ativo", YES_NO),
        text_column("fabricante_modelo"),
        _enum("conexao", "58 24 C F"),
        _texts("porta login senha senha_hw senha_anm"),
    ),
    _table(
        "radpop_radio_porta_fibra",
        _ref("id_pop_radio", "radpop_radio", required=True),
        _int("id_slot"),
        _int("numero_pon"),
        _texts("interface descricao"),
    ),
    _table(
        "cliente_condominio",
        text_column("condominio", required=True),
        text_column("endereco", required=True),
        text_column("numero", required=True),
        text_column("bairro", required=True),
        _ref("id_cidade", required=True),
        _texts("cep latitude longitude obs"),
    ),
    _table(
        "cliente",
        text_column("razao", required=True),
        text_column("fantasia"),
        _enum("tipo_pessoa", "F J E"),
        _texts("cnpj_cpf ie_identidade"),
        _enum("ativo", YES_NO),
        _texts("endereco numero complemento bairro"),
        _ref("cidade"),
        _ref("uf"),
        _texts("cep latitude longitude email telefone_celular fone"),
        _ref("id_condominio", "cliente_condominio"),
        _texts("bloco apartamento"),
        _date("data_cadastro data_nascimento"),
        _texts("referencia obs"),
        _ref("filial_id"),
    ),
    _table(
        "cliente_contrato",
        _ref("id_cliente", "cliente", required=True),
        _ref("id_vd_contrato"),
        text_column("contrato"),
        _enum("status", "P A I N D"),
        _enum("status_internet", "A D CM CA FA AA CE"),
        _enum("tipo", "I T S SVA"),
        _date("data data_ativacao data_cancelamento data_desistencia"),
        _ref("motivo_cancelamento"),
        text_column("obs_cancelamento"),
        _enum("endereco_padrao_cliente", YES_NO),
        _texts("endereco numero bairro cep"),
        _ref("cidade"),
        _texts("latitude longitude"),
        _ref("id_condominio", "cliente_condominio"),
        _texts("bloco apartamento"),
        _ref("id_filial"),
    ),
    _table(
        "radusuarios",
        _ref("id_cliente", "cliente", required=True),
        _ref("id_contrato", "cliente_contrato"),
        text_column("login", required=True),
        text_column("senha"),
        _enum("ativo", YES_NO),
        _enum("online", "S N SS I", readonly=True),
        _enum("tipo_conexao_mapa", "F 58 24 L A LTE LDD"),
        _enum("autenticacao", "L H M V D I E"),
        _ref("id_caixa_ftth", "rad_caixa_ftth"),
        _int("ftth_porta"),
        _ref("id_transmissor", "radpop_radio"),
        _ref("id_porta_transmissor", "radpop_radio_porta_fibra"),
        _ref("id_df_projeto", "df_projeto"),
        _int("splitter"),
        _texts("latitude longitude"),
        _enum("endereco_padrao_cliente", "S N C"),
        _texts("endereco numero complemento bairro"),
        _ref("cidade"),
        text_column("cep"),
        _ref("id_condominio", "cliente_condominio"),
        _texts("bloco apartamento mac onu_mac ip"),
        _ref("concentrador"),
        _ref("id_grupo"),
        text_column("sinal_ultimo_atendimento"),
        _datetime("ultima_conexao_inicial", readonly=True),
        _datetime("ultima_conexao_final", readonly=True),
        text_column("motivo_desconexao"),
        _ref("id_filial"),
        text_column("obs"),
    ),
    _table(
        "radpop_radio_cliente_fibra",
        _ref("id_login", "radusuarios"),
        _ref("id_contrato", "cliente_contrato"),
        _ref("id_transmissor", "radpop_radio", required=True),
        text_column("nome", required=True),
        _ref("id_caixa_ftth", "rad_caixa_ftth"),
        _int("porta_ftth"),
        _texts("mac serial_number ponid slotno ponno onu_numero"),
        _ref("id_radpop_radio_porta", "radpop_radio_porta_fibra"),
        _dec("sinal_rx sinal_tx temperatura voltagem"),
        _datetime("data_sinal"),
        _enum("status_potencia", "regular irregular indefinido"),
        _texts("causa_ultima_queda latitude longitude"),
        _ref("id_condominio", "cliente_condominio"),
        _ref("id_projeto", "df_projeto"),
        _enum("radpop_estrutura", YES_NO, required=True),
    ),
)

TABLES: dict[str, TableSchema] = {s.name: s for s in _SCHEMAS}
"""Every table the sandbox serves, by name; any other name is "Recurso … não está disponível!"."""


def _referenced_by() -> dict[str, tuple[tuple[str, str], ...]]:
    found: dict[str, list[tuple[str, str]]] = {name: [] for name in TABLES}
    for schema in _SCHEMAS:
        for col in schema.columns:
            if col.ref is not None:
                found[col.ref].append((schema.name, col.name))
    return {name: tuple(refs) for name, refs in found.items()}


REFERENCED_BY: dict[str, tuple[tuple[str, str], ...]] = _referenced_by()
"""For each table, the (table, column) pairs pointing at it: a DELETE is refused while any of them does."""
