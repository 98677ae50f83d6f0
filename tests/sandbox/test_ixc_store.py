"""IXC sandbox store without HTTP: bulk load, indexes, query cache, value helpers, clock."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from reconciler.sandbox import ixc_query
from reconciler.sandbox.ixc import DEFAULT_TOKEN, IxcStore
from reconciler.sandbox.ixc_rows import eq_key, parse_date, to_int
from reconciler.sandbox.ixc_store import UnknownTable
from reconciler.sandbox.ixc_tables import REFERENCED_BY, TABLES


def select(store: IxcStore, table: str, **params: str) -> list[str]:
    tab = store.table(table)
    return ixc_query.select(tab, ixc_query.parse(tab, params))


def test_served_tables_and_default_token() -> None:
    assert {
        "rad_caixa_ftth",
        "df_projeto",
        "radpop_radio",
        "radpop",
        "radpop_radio_porta_fibra",
        "cliente",
        "cliente_contrato",
        "radusuarios",
        "radpop_radio_cliente_fibra",
        "cliente_condominio",
    } <= set(TABLES)
    assert len(TABLES["radusuarios"].columns) >= 38
    assert ("radusuarios", "id_caixa_ftth") in REFERENCED_BY["rad_caixa_ftth"]
    assert ("radpop_radio_cliente_fibra", "id_caixa_ftth") in REFERENCED_BY["rad_caixa_ftth"]
    assert IxcStore().tokens == {DEFAULT_TOKEN: "pt-BR"}


def test_load_fills_coerces_assigns_ids_and_keeps_extra_columns() -> None:
    store = IxcStore()
    store.load("df_projeto", [{"id": "5", "nome": "A", "zoom": 15, "cor_mapa": None, "status": "A"}])
    store.load("df_projeto", [{"nome": "B"}, {"id": "5", "nome": "A2"}, {"nome": "C", "campo_extra": "x"}])
    rows = store.all("df_projeto")
    assert [(r["id"], r["nome"]) for r in rows] == [("5", "A2"), ("6", "B"), ("7", "C")]
    assert rows[0]["zoom"] == "0"  # replaced by the second load, which did not carry zoom
    assert rows[1]["campo_extra"] == ""  # backfilled
    assert rows[2]["campo_extra"] == "x"
    assert rows[1]["ultima_atualizacao"] == "0000-00-00 00:00:00"
    store.load("df_projeto", [{"id": "9", "zoom": 12, "status": True}])
    assert store.get("df_projeto", "9") == {**rows[1], "id": "9", "nome": "", "zoom": "12", "status": "S"}


def test_unknown_table_raises() -> None:
    with pytest.raises(UnknownTable):
        IxcStore().load("boletos", [])
    with pytest.raises(KeyError):
        IxcStore().get("boletos", "1")


def test_out_of_order_ids_are_listed_in_id_order() -> None:
    store = IxcStore()
    store.load("df_projeto", [{"id": str(n), "nome": f"P{n}"} for n in (3, 10, 2, 1)])
    assert select(store, "df_projeto") == ["1", "2", "3", "10"]
    assert [r["id"] for r in store.all("df_projeto")] == ["1", "2", "3", "10"]


def test_indexes_follow_writes() -> None:
    store = IxcStore()
    store.load("df_projeto", [{"id": "1", "nome": "Centro", "latitude": "1", "longitude": "1", "zoom": "1"}])
    store.load(
        "rad_caixa_ftth",
        [
            {"id": str(n), "descricao": f"CTO-{n}", "id_projeto": "1", "codigo_estilo_caixa": "7eTTWpDR"}
            for n in (1, 2)
        ],
    )
    assert select(store, "rad_caixa_ftth", qtype="rad_caixa_ftth.descricao", query="cto-2") == ["2"]
    row = store.get("rad_caixa_ftth", "2")
    assert row is not None
    store.update("rad_caixa_ftth", "2", {**row, "descricao": "CTO-X"})
    assert select(store, "rad_caixa_ftth", qtype="rad_caixa_ftth.descricao", query="cto-2") == []
    assert select(store, "rad_caixa_ftth", qtype="rad_caixa_ftth.descricao", query="cto-x") == ["2"]
    new_id = store.insert("rad_caixa_ftth", {**row, "descricao": "CTO-X"})
    assert select(store, "rad_caixa_ftth", qtype="rad_caixa_ftth.descricao", query="CTO-X") == ["2", new_id]
    store.delete("rad_caixa_ftth", "2")
    assert select(store, "rad_caixa_ftth", qtype="rad_caixa_ftth.descricao", query="cto-x") == [new_id]


def test_query_cache_is_dropped_on_write() -> None:
    store = IxcStore()
    store.load("cliente", [{"id": str(n), "razao": f"C{n}", "ativo": "S"} for n in range(1, 6)])
    first = select(store, "cliente", qtype="cliente.ativo", query="S")
    assert select(store, "cliente", qtype="cliente.ativo", query="S") is first
    store.patch("cliente", "3", {"ativo": "N"})
    assert select(store, "cliente", qtype="cliente.ativo", query="S") == ["1", "2", "4", "5"]


def test_naive_clock_is_utc_and_written_in_ixc_local_time() -> None:
    store = IxcStore(clock=lambda: datetime(2025, 1, 1, 2, 30, 0))
    assert store.now() == "2024-12-31 23:30:00"


def test_value_helpers() -> None:
    assert to_int("08") == 8
    assert to_int("-3") == -3
    assert to_int("") is None
    assert to_int("²") is None
    assert to_int("1.5") is None
    assert eq_key("0042") == eq_key("42") == "42"
    assert eq_key("CTO") == "cto"
    assert parse_date("18/06/2024", "date") == "2024-06-18"
    assert parse_date("18/06/2024", "datetime") == "2024-06-18 00:00:00"
    assert parse_date("18/06/2024 10:11", "datetime") == "2024-06-18 10:11:00"
    assert parse_date("2024-06-18T10:11:12", "datetime") == "2024-06-18 10:11:12"
    assert parse_date("junho", "date") is None


def test_bulk_load_and_lookups_are_fast() -> None:
    store = IxcStore()
    rows = [
        {
            "id": str(n),
            "id_cliente": str(n),
            "login": f"login{n}",
            "ativo": "S" if n % 10 else "N",
            "tipo_conexao_mapa": "F",
            "id_caixa_ftth": str(n % 5000 + 1),
            "ftth_porta": str(n % 16 + 1),
            "ultima_atualizacao": f"2025-01-{n % 28 + 1:02d} 10:00:00",
        }
        for n in range(1, 200_001)
    ]
    started = time.perf_counter()
    store.load("radusuarios", rows)
    loaded = time.perf_counter() - started
    assert loaded < 4.0, f"loading 200k rows took {loaded:.2f}s"
    started = time.perf_counter()
    assert select(store, "radusuarios", qtype="radusuarios.login", query="login777") == ["777"]
    for n in range(1, 200):
        assert select(store, "radusuarios", qtype="radusuarios.login", query=f"login{n * 100}") == [
            str(n * 100)
        ]
    ids = ",".join(str(n) for n in range(1000, 1200))
    assert len(select(store, "radusuarios", qtype="radusuarios.id", query=ids, oper="IN")) == 200
    assert len(select(store, "radusuarios", qtype="radusuarios.ativo", query="S")) == 180_000
    looked_up = time.perf_counter() - started
    assert looked_up < 4.0, f"lookups took {looked_up:.2f}s"
