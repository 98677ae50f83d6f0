"""The IXC ``logins`` view: ``radusuarios`` joined with what seed 002's client rules read about each login.

ixc.md §4.5–4.7 and §7 X9/X10 say where each status lives; one record per login carries them all, flat:

- ``ativo`` (login active ``S``/``N``), ``online`` (``S``/``N``; ``SS``, ``I`` and ``""`` mean unknown) and
  ``tipo_conexao_mapa`` (``F`` = fiber) from ``radusuarios`` itself, with its box, port and coordinates;
- ``contract_status``: ``cliente_contrato.status`` of ``id_contrato`` (``A`` active, ``D`` withdrew, ``I``
  cancelled…), ``""`` when the login has no contract (``"0"``) or names one that does not exist;
- ``client_name``: ``cliente.razao`` of ``id_cliente`` (the name the ERP owns);
- ``signal``: ``radpop_radio_cliente_fibra.sinal_rx`` of the ONU whose ``id_login`` is the login, as text
  (``"0.00"`` = no reading; None when the login has no ONU). With several ONUs, the first with a reading wins.

The joined tables are read per page of logins with ``IN`` lists of at most 200 ids, concurrently. Contract,
customer and ONU changes do not bump the login's ``ultima_atualizacao``, so the view cannot be read
incrementally: rules over it run a full read every cycle (``incremental = false`` in the catalog).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import anyio

from reconciler.connectors.base import CollectionSchema
from reconciler.connectors.ixc.client import Cond, IxcClient, in_cond
from reconciler.model import Fields, Record

#: Longest ``IN`` list per request.
IN_BATCH = 200
#: ``radusuarios`` columns the view carries, besides ``id``.
LOGIN_COLUMNS = (
    "login",
    "ativo",
    "online",
    "tipo_conexao_mapa",
    "id_caixa_ftth",
    "ftth_porta",
    "latitude",
    "longitude",
    "id_cliente",
    "id_contrato",
)
JOINED = ("contract_status", "client_name", "signal")
NO_READING = "0.00"

SCHEMA = CollectionSchema(
    fields=frozenset(("id", *LOGIN_COLUMNS, *JOINED)),
    description="Logins (radusuarios) with contract status, customer name and ONU signal",
)


class LoginJoin:
    """Turns pages of raw ``radusuarios`` rows into ``logins`` records (three batched look-ups per page)."""

    def __init__(self, client: IxcClient) -> None:
        self._client = client

    async def records(self, rows: Sequence[Mapping[str, str]]) -> list[Record]:
        contracts: dict[str, str] = {}
        names: dict[str, str] = {}
        signals: dict[str, str] = {}
        contract_ids = _ids(r.get("id_contrato", "") for r in rows)
        client_ids = _ids(r.get("id_cliente", "") for r in rows)
        login_ids = _ids(r.get("id", "") for r in rows)
        async with anyio.create_task_group() as group:
            group.start_soon(self._column, "cliente_contrato", "id", contract_ids, "status", contracts)
            group.start_soon(self._column, "cliente", "id", client_ids, "razao", names)
            group.start_soon(self._signals, login_ids, signals)
        return [_record(row, contracts, names, signals) for row in rows]

    async def _column(self, table: str, key: str, ids: list[str], column: str, into: dict[str, str]) -> None:
        for row in await self._batched(table, key, ids):
            into[row.get(key, "")] = row.get(column, "")

    async def _signals(self, login_ids: list[str], into: dict[str, str]) -> None:
        onus = sorted(
            await self._batched("radpop_radio_cliente_fibra", "id_login", login_ids), key=_onu_order
        )
        for onu in onus:
            login, reading = onu.get("id_login", ""), onu.get("sinal_rx", "")
            if login not in into or (into[login] in ("", NO_READING) and reading not in ("", NO_READING)):
                into[login] = reading

    async def _batched(self, table: str, column: str, ids: list[str]) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for start in range(0, len(ids), IN_BATCH):
            conds: list[Cond] = [in_cond(column, ids[start : start + IN_BATCH])]
            async for rows in self._client.pages(table, conds):
                out.extend(rows)
        return out


def _ids(values: Iterable[str]) -> list[str]:
    return sorted({v for v in values if v not in ("", "0")}, key=lambda v: (len(v), v))


def _onu_order(onu: Mapping[str, str]) -> tuple[int, str]:
    onu_id = onu.get("id", "")
    return (len(onu_id), onu_id)


def _record(
    row: Mapping[str, str], contracts: Mapping[str, str], names: Mapping[str, str], signals: Mapping[str, str]
) -> Record:
    login_id = row.get("id", "")
    fields: Fields = {"id": login_id}
    for column in LOGIN_COLUMNS:
        fields[column] = row.get(column, "")
    fields["contract_status"] = contracts.get(row.get("id_contrato", ""), "")
    fields["client_name"] = names.get(row.get("id_cliente", ""))
    fields["signal"] = signals.get(login_id)
    return Record(id=login_id, fields=fields, updated_at=row.get("ultima_atualizacao", ""))
