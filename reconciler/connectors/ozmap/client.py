"""OZmap API v2 calls: list pages, read one, create, patch, delete, on top of :class:`~..http.Transport`.

- The configured URL may or may not end in ``/api/v2``; :func:`api_base` normalises it.
- ``Authorization: <key>`` carries the raw API key (no ``Bearer``), the key never appears in error messages.
- Lists are ``GET /<resource>?page=&limit=&filter=<json>&sort=<json>`` (filter/sort as JSON in the query
  string, which every OZmap wiki example and most clients use); ``nextUrl`` is never followed, the position
  is always our own ``page`` number (see ozmap.md 2.3 on the SDK's ``nextUrl`` loop).
- Decoding: msgspec straight into the view; truncated/invalid JSON is Transient (retried), a body of the wrong
  shape is Terminal (retrying cannot fix it). Listings that pass a ``problems`` dict are decoded leniently
  instead: a row that does not fit its view is salvaged and its id → problem noted (:mod:`.lenient`), so one
  bad record does not fail its whole page; a good page still takes the one-decode fast path.
"""

from __future__ import annotations

import operator
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors import paging
from reconciler.connectors.http import Response, Transport
from reconciler.connectors.ozmap import lenient, views

T = TypeVar("T")

API_PREFIX = "/api/v2"
DEFAULT_PAGE_SIZE = 1000
#: Longest ``in`` list per request: keeps the URL-encoded filter well under the common 8 KiB request-line limit.
IN_BATCH = 200

Filter = list[dict[str, Any]]
Sort = list[dict[str, Any]]

_id_of = operator.attrgetter("id")


def api_base(url: str) -> str:
    """``https://host[:port][/api/v2][/]`` → ``https://host[:port]/api/v2``."""
    base = url.rstrip("/")
    if base.endswith(API_PREFIX):
        base = base[: -len(API_PREFIX)]
    return base + API_PREFIX


def cond(prop: str, op: str, value: Any) -> dict[str, Any]:
    """One filter condition."""
    return {"property": prop, "operator": op, "value": value}


def sort_by(*props: str) -> Sort:
    """Ascending sort on ``props`` in order."""
    return [{"property": p, "direction": 1} for p in props]


def batches(ids: Sequence[str], size: int = IN_BATCH) -> list[Sequence[str]]:
    """``ids`` cut into slices of at most ``size``."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


class OzmapClient:
    """The HTTP side of the OZmap connector (no record mapping here)."""

    def __init__(
        self, config: SystemConfig, session: aiohttp.ClientSession, *, rng: random.Random | None = None
    ):
        key = config.secret.reveal()
        self.transport = Transport(
            system=config.name,
            session=session,
            base_url=api_base(config.url),
            settings=config.http,
            headers={"Authorization": key, "Accept": "application/json"},
            secrets=(key,),
            rng=rng,
        )
        self.page_size = config.http.page_size or DEFAULT_PAGE_SIZE
        self.window = config.http.concurrency

    async def page(
        self,
        resource: str,
        decoder: msgspec.json.Decoder[views.Page[T]],
        request: paging.PageRequest,
        *,
        filter: Filter | None = None,
        sort: Sort | None = None,
        populate: str | None = None,
        select: str | None = None,
        problems: dict[str, str] | None = None,
    ) -> views.Page[T]:
        """One list page (``populate``: a reference field to expand, e.g. ``client``; ``select``: the fields to
        read, space-separated, e.g. ``client coords``; ``id`` always comes).

        ``problems``: decode leniently, adding the id → problem of every row that had to be salvaged.
        """
        params = {"page": str(request.number), "limit": str(request.size)}
        if filter:
            params["filter"] = msgspec.json.encode(filter).decode()
        if sort:
            params["sort"] = msgspec.json.encode(sort).decode()
        if populate:
            params["populate"] = populate
        if select:
            params["select"] = select
        path = f"/{resource}"
        decode = (
            self._decoder(decoder, "GET", path)
            if problems is None
            else self._lenient_decoder(decoder, path, problems)
        )
        return await self.transport.request("GET", path, params=params, decode=decode)

    def pages(
        self,
        resource: str,
        decoder: msgspec.json.Decoder[views.Page[T]],
        *,
        filter: Filter | None = None,
        sort: Sort | None = None,
        what: str = "",
        populate: str | None = None,
        problems: dict[str, str] | None = None,
    ) -> AsyncIterator[list[T]]:
        """Every row of a listing, page by page (complete or ``SnapshotIncomplete``); ``problems``: see :meth:`page`
        (a page's problems are in the dict before its rows are yielded)."""

        async def fetch(request: paging.PageRequest) -> tuple[int, list[T]]:
            page = await self.page(
                resource, decoder, request, filter=filter, sort=sort, populate=populate, problems=problems
            )
            return page.total, page.rows

        plan = paging.OffsetPaging(self.page_size, what=what or f"{self.transport.system} {resource}")
        return paging.stream_pages(plan, fetch, key=_id_of, window=self.window)

    async def collect(
        self,
        resource: str,
        decoder: msgspec.json.Decoder[views.Page[T]],
        *,
        filter: Filter | None = None,
        sort: Sort | None = None,
        populate: str | None = None,
        problems: dict[str, str] | None = None,
    ) -> list[T]:
        """Every row of a listing, in one list; ``problems``: see :meth:`page`."""
        out: list[T] = []
        async for rows in self.pages(
            resource, decoder, filter=filter, sort=sort, populate=populate, problems=problems
        ):
            out.extend(rows)
        return out

    async def get(self, resource: str, record_id: str, decoder: msgspec.json.Decoder[T]) -> T:
        """``GET /resource/id``; NotFound when missing."""
        path = f"/{resource}/{quote(record_id, safe='')}"
        return await self.transport.request("GET", path, decode=self._decoder(decoder, "GET", path))

    async def read(self, path: str, decoder: msgspec.json.Decoder[T]) -> T:
        """``GET path`` (e.g. the bare array of ``/properties/client/<code>``); NotFound when missing."""
        return await self.transport.request("GET", path, decode=self._decoder(decoder, "GET", path))

    async def create(self, resource: str, body: dict[str, Any]) -> str:
        """``POST /resource`` → the new id. Not retried once the request may have reached the server."""
        path = f"/{resource}"
        created = await self.transport.request(
            "POST", path, json=body, idempotent=False, decode=self._decoder(views.CREATED, "POST", path)
        )
        new_id = created.id or created.oid
        if not new_id:
            raise self.transport.error(errors.TerminalRemoteError, "POST", path, "created record has no id")
        return new_id

    async def create_property(self, body: dict[str, Any]) -> str:
        """``POST /properties`` with an inline client → the id of the client it created (not retried)."""
        path = "/properties"
        created = await self.transport.request(
            "POST",
            path,
            json=body,
            idempotent=False,
            decode=self._decoder(views.CREATED_PROPERTY, "POST", path),
        )
        client_id = views.ref_id(created.client)
        if not client_id:
            raise self.transport.error(
                errors.TerminalRemoteError, "POST", path, "created property has no client"
            )
        return client_id

    async def action(self, path: str) -> None:
        """``POST path`` with no body to an idempotent action endpoint (e.g. a drop's fibre disconnect)."""
        await self.transport.request("POST", path, json={}, decode=self._no_content("POST", path))

    async def patch(self, resource: str, record_id: str, body: dict[str, Any]) -> None:
        """``PATCH /resource/id`` with only the changed fields (204)."""
        path = f"/{resource}/{quote(record_id, safe='')}"
        await self.transport.request("PATCH", path, json=body, decode=self._no_content("PATCH", path))

    async def delete(self, resource: str, record_id: str) -> None:
        """``DELETE /resource/id`` (204)."""
        path = f"/{resource}/{quote(record_id, safe='')}"
        await self.transport.request("DELETE", path, decode=self._no_content("DELETE", path))

    def _no_content(self, method: str, path: str) -> Callable[[Response], None]:
        """Accept a write's answer only when it is empty (204) or JSON: a garbled 2xx body is not proof of success.

        Such a body means a proxy or a broken server answered, so the write may not have happened; these writes
        are idempotent, so the transient error makes the transport send them again.
        """
        transport = self.transport

        def check(response: Response) -> None:
            if not response.body.strip():
                return
            try:
                msgspec.json.decode(response.body)
            except msgspec.DecodeError as exc:
                raise transport.error(
                    errors.TransientRemoteError, method, path, "unreadable answer to a write", response.body
                ) from exc

        return check

    def _lenient_decoder(
        self, decoder: msgspec.json.Decoder[views.Page[T]], path: str, problems: dict[str, str]
    ) -> Callable[[Response], views.Page[T]]:
        transport = self.transport
        what = f"{transport.system} {path.lstrip('/')}"

        def decode(response: Response) -> views.Page[T]:
            try:
                return lenient.decode_page(response.body, decoder, problems, what)
            except msgspec.ValidationError as exc:
                raise transport.error(
                    errors.TerminalRemoteError, "GET", path, f"unexpected answer ({exc})"
                ) from exc
            except msgspec.DecodeError as exc:
                raise transport.error(
                    errors.TransientRemoteError, "GET", path, "malformed JSON", response.body
                ) from exc

        return decode

    def _decoder(self, decoder: msgspec.json.Decoder[T], method: str, path: str) -> Callable[[Response], T]:
        transport = self.transport

        def decode(response: Response) -> T:
            try:
                return decoder.decode(response.body)
            except msgspec.ValidationError as exc:
                raise transport.error(
                    errors.TerminalRemoteError, method, path, f"unexpected answer ({exc})"
                ) from exc
            except msgspec.DecodeError as exc:
                raise transport.error(
                    errors.TransientRemoteError, method, path, "malformed JSON", response.body
                ) from exc

        return decode
