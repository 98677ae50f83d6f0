"""IXC webservice v1 calls: list (POST + ``ixcsoft: listar``), insert (POST), full-record update (PUT), delete.

- Base URL: the configured host, with ``/webservice/v1`` appended unless already there.
- Auth: ``Authorization: Basic base64("<user id>:<hash>")`` from the raw token; the token, its hash and its
  encoded form are scrubbed from every error message.
- List bodies are JSON with every value a string; extra conditions travel in ``grid_param`` as a JSON *string*.
  The main filter (``qtype``/``query``) takes the first condition whose value is not empty, because an empty
  ``query`` means "no filter" to IXC; ``IN`` with one value is sent as ``=`` (one install answered its HTML
  error page for a single-value ``IN``).
- Paging: ``rp`` rows per page (default 500), pages fetched concurrently once page 1 gave the total, rows
  de-duplicated by id (some installs return more than ``rp`` rows), complete only when the distinct rows equal
  the total (:mod:`reconciler.connectors.paging`).
"""

from __future__ import annotations

import base64
import operator
import random
from collections.abc import AsyncIterator, Sequence
from typing import NamedTuple
from urllib.parse import quote

import aiohttp
import msgspec

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors import paging
from reconciler.connectors.http import Transport
from reconciler.connectors.ixc import views

API_PREFIX = "/webservice/v1"
DEFAULT_PAGE_SIZE = 500
LIST_HEADERS = {"ixcsoft": "listar"}

_id_of = operator.itemgetter("id")


class Cond(NamedTuple):
    """One condition: ``column`` (without the table prefix), IXC operator, value(s) as text."""

    column: str
    op: str
    value: str


def api_base(url: str) -> str:
    """``https://host[/webservice/v1][/]`` → ``https://host/webservice/v1``."""
    base = url.rstrip("/")
    if base.endswith(API_PREFIX):
        base = base[: -len(API_PREFIX)]
    return base + API_PREFIX


def in_cond(column: str, values: Sequence[str]) -> Cond:
    """``column IN values``, or ``=`` for a single value."""
    if len(values) == 1:
        return Cond(column, "=", values[0])
    return Cond(column, "IN", ",".join(values))


def list_body(
    table: str,
    conds: Sequence[Cond],
    request: paging.PageRequest,
    *,
    sortname: str = "id",
    sortorder: str = "asc",
) -> dict[str, str]:
    """The JSON body of a list request (all values strings)."""
    main_index = next((i for i, c in enumerate(conds) if c.value != ""), None)
    if main_index is None:
        qtype, query, oper = f"{table}.id", "", "="
    else:
        main = conds[main_index]
        qtype, query, oper = f"{table}.{main.column}", main.value, main.op
    grid = [
        {"TB": f"{table}.{c.column}", "OP": c.op, "P": c.value}
        for i, c in enumerate(conds)
        if i != main_index
    ]
    return {
        "qtype": qtype,
        "query": query,
        "oper": oper,
        "page": str(request.number),
        "rp": str(request.size),
        "sortname": f"{table}.{sortname}",
        "sortorder": sortorder,
        "grid_param": msgspec.json.encode(grid).decode(),
    }


class IxcClient:
    """The HTTP side of the IXC connector (no record mapping here)."""

    def __init__(
        self, config: SystemConfig, session: aiohttp.ClientSession, *, rng: random.Random | None = None
    ):
        token = config.secret.reveal()
        encoded = base64.b64encode(token.encode()).decode()
        _, _, password = token.partition(":")
        self.transport = Transport(
            system=config.name,
            session=session,
            base_url=api_base(config.url),
            settings=config.http,
            headers={"Authorization": f"Basic {encoded}", "Accept": "application/json"},
            secrets=(token, encoded, password),
            rng=rng,
        )
        self.page_size = config.http.page_size or DEFAULT_PAGE_SIZE
        self.window = config.http.concurrency

    async def page(
        self,
        table: str,
        conds: Sequence[Cond],
        request: paging.PageRequest,
        *,
        sortname: str = "id",
        columns: tuple[str, ...] | None = None,
    ) -> views.ListPage:
        """One list page (rows with only ``columns``, when given: see :func:`views.decode_list`)."""
        path = f"/{table}"
        body = list_body(table, conds, request, sortname=sortname)
        return await self.transport.request(
            "POST",
            path,
            json=body,
            headers=LIST_HEADERS,
            decode=lambda response: views.decode_list(response, self._fail("POST", path), columns),
        )

    def pages(
        self,
        table: str,
        conds: Sequence[Cond],
        *,
        sortname: str = "id",
        size: int | None = None,
        columns: tuple[str, ...] | None = None,
    ) -> AsyncIterator[list[dict[str, str]]]:
        """Every matching row, page by page, de-duplicated by id (complete or ``SnapshotIncomplete``); ``columns``
        must include ``id``."""

        async def fetch(request: paging.PageRequest) -> tuple[int, list[dict[str, str]]]:
            page = await self.page(table, conds, request, sortname=sortname, columns=columns)
            return page.total, page.rows

        plan = paging.OffsetPaging(size or self.page_size, what=f"{self.transport.system} {table}")
        return paging.stream_pages(plan, fetch, key=_id_of, window=self.window)

    async def read(self, table: str, record_id: str) -> dict[str, str]:
        """The full row ``record_id`` (every column, credentials included: it is only written back)."""
        page = await self.page(table, [Cond("id", "=", record_id)], paging.PageRequest(1, 1))
        for row in page.rows:
            if row.get("id") == record_id:
                return row
        raise errors.NotFound(self.transport.system, f"{table} {record_id} not found")

    async def insert(self, table: str, body: dict[str, str]) -> str:
        """POST without the list header → the new id. Not retried once it may have reached the server."""
        path = f"/{table}"
        new_id = await self.transport.request(
            "POST",
            path,
            json=body,
            idempotent=False,
            decode=lambda response: views.decode_write(response, self._fail("POST", path)),
        )
        if not new_id:
            raise self.transport.error(
                errors.TerminalRemoteError, "POST", path, "insert answered without an id"
            )
        return new_id

    async def put(self, table: str, record_id: str, body: dict[str, str]) -> None:
        """PUT the whole record (IXC replaces the row; a partial body would blank the other columns)."""
        path = f"/{table}/{quote(record_id, safe='')}"
        await self.transport.request(
            "PUT",
            path,
            json=body,
            decode=lambda response: views.decode_write(response, self._fail("PUT", path)),
        )

    async def delete(self, table: str, record_id: str) -> None:
        path = f"/{table}/{quote(record_id, safe='')}"
        await self.transport.request(
            "DELETE", path, decode=lambda response: views.decode_write(response, self._fail("DELETE", path))
        )

    def _fail(self, method: str, path: str) -> views.MakeError:
        transport = self.transport

        def make(cls: type[errors.RemoteError], what: str, body: bytes | str) -> errors.RemoteError:
            return transport.error(cls, method, path, what, body)

        return make
