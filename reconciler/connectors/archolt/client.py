"""ArchOLT API calls on top of :class:`~reconciler.connectors.http.Transport`: keyset walks, filtered lists, one
record, CTO upsert/removal and the change feed (archolt.md 2-3; the whole API is [assume], A1).

- Base URL: the configured host, with ``/api/v1`` appended unless already there.
- Auth: ``Authorization: Bearer <token>`` [assume A12]; the token never appears in an error message.
- Errors: the transport maps statuses (401/403 → AuthError, 404 → NotFound, 429 → RateLimited with
  ``Retry-After``, 5xx → transient, HTML 502/503 pages included). The business refusals 400/409/410/422 become
  :class:`Refused` carrying ArchOLT's stable ``error.code`` and ``details`` — callers branch on ``code``, never on
  the Portuguese message (archolt.md 2); 410 ``cursor_expired`` is :class:`CursorExpired`.
- Big walks use keyset paging (:class:`KeysetWalk`), as the contract prescribes for incremental reads: always
  page 1, then ``updated_since`` + ``after_id`` = the last row's pair, which neither skips nor loops when rows
  share an ``updated_at`` or change during the walk (archolt.md 2 "Incremental reads"). Small filtered lists
  (``find``, the OLT join) reuse :mod:`reconciler.connectors.paging` (offset pages with ``meta.total``).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors import paging
from reconciler.connectors.archolt import views
from reconciler.connectors.http import Response, Transport

T = TypeVar("T")

API_PREFIX = "/api/v1"
DEFAULT_PAGE_SIZE = 500
"""Rows per list page: the contract's ``per_page`` maximum (larger values are clamped by the server)."""
EVENT_LIMIT = 1000
"""Events per feed request: the contract's ``limit`` maximum."""
REFUSAL_STATUSES = frozenset({400, 409, 410, 422})


class Refused(errors.TerminalRemoteError):
    """A 400/409/410/422 answer. ``code`` is ArchOLT's ``error.code`` (``""`` when the body had none)."""

    def __init__(
        self,
        system: str,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(system, message, status=status)
        self.code = code
        self.details: dict[str, Any] = dict(details or {})


class CursorExpired(Refused):
    """410 ``cursor_expired``: the feed position is older than the retention; resync with a full read."""


def api_base(url: str) -> str:
    """``https://host[:port][/api/v1][/]`` → ``https://host[:port]/api/v1``."""
    base = url.rstrip("/")
    if base.endswith(API_PREFIX):
        base = base[: -len(API_PREFIX)]
    return base + API_PREFIX


class ArcholtTransport(Transport):
    """The shared transport, with refusals decoded into :class:`Refused` (code and details kept)."""

    def _status_error(self, method: str, path: str, response: Response) -> errors.RemoteError:
        status = response.status
        if status not in REFUSAL_STATUSES:
            return super()._status_error(method, path, response)
        code, details = "", {}
        try:
            body = views.ERROR.decode(response.body)
        except msgspec.DecodeError:
            body = views.ErrorBody()
        if body.error is not None:
            code, details = body.error.code, body.error.details
        text = self.excerpt(response.body)
        message = self.scrub(f"{method} {self._path(path)} → {status}" + (f": {text}" if text else ""))
        cls = CursorExpired if status == 410 else Refused
        return cls(self.system, message, status=status, code=code, details=details)


class KeysetWalk:
    """The rules of one keyset walk (sans-I/O). ``what`` names the listing in error messages.

    Each answer says how many rows remain from the position (``meta.total``): the walk ends when a page holds
    all of them. An empty page while rows remain, a page larger than what remains, a position that does not
    move, or a walk that keeps growing (rows edited faster than they are read) raise ``SnapshotIncomplete``.
    """

    def __init__(self, size: int, *, what: str, since: str | None = None) -> None:
        if size < 1:
            raise ValueError("page size must be >= 1")
        self.size = size
        self.what = what
        self.since = since
        self.position: tuple[str, int] | None = None
        self.done = False
        self.pages = 0
        self._budget: int | None = None

    def params(self) -> dict[str, str]:
        """Query parameters of the next request."""
        params = {"page": "1", "per_page": str(self.size)}
        if self.position is not None:
            params["updated_since"], params["after_id"] = self.position[0], str(self.position[1])
        elif self.since is not None:
            params["updated_since"] = self.since
        return params

    def receive(self, total: int, last: tuple[str, int] | None, rows: int) -> None:
        """Account for one answer: the announced ``total`` remaining, the page's last key and its size."""
        self.pages += 1
        if self._budget is None:
            self._budget = 4 * (total // self.size + 1) + 16
        if total < 0 or rows > total:
            raise errors.SnapshotIncomplete(f"{self.what}: {rows} rows served while {total} were announced")
        if rows == total:
            self.done = True
            return
        if rows == 0 or last is None:
            raise errors.SnapshotIncomplete(f"{self.what}: empty page while {total} rows remain")
        if last == self.position:
            raise errors.SnapshotIncomplete(f"{self.what}: the position did not move past {last}")
        if self.pages >= self._budget:
            raise errors.SnapshotIncomplete(f"{self.what}: still {total} rows after {self.pages} pages")
        self.position = last


class ArcholtClient:
    """The HTTP side of the ArchOLT connector (no record mapping here)."""

    def __init__(
        self, config: SystemConfig, session: aiohttp.ClientSession, *, rng: random.Random | None = None
    ) -> None:
        token = config.secret.reveal()
        self.transport = ArcholtTransport(
            system=config.name,
            session=session,
            base_url=api_base(config.url),
            settings=config.http,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            secrets=(token,),
            rng=rng,
        )
        self.page_size = config.http.page_size or DEFAULT_PAGE_SIZE
        self.window = config.http.concurrency

    async def list_page(
        self, resource: str, decoder: msgspec.json.Decoder[views.Page[T]], params: Mapping[str, str]
    ) -> views.Page[T]:
        """One list answer of ``GET /resource``."""
        path = f"/{resource}"
        return await self.transport.request(
            "GET", path, params=params, decode=self._decoder(decoder, "GET", path)
        )

    async def walk(
        self,
        resource: str,
        decoder: msgspec.json.Decoder[views.Page[T]],
        key: Callable[[T], tuple[str, int]],
        *,
        filters: Mapping[str, str] | None = None,
        since: str | None = None,
    ) -> AsyncIterator[list[T]]:
        """Every matching row (``updated_at >= since`` when given), page by page, by keyset.

        A transient failure after the first page becomes ``SnapshotIncomplete`` (part was already yielded).
        """
        plan = KeysetWalk(self.page_size, what=f"{self.transport.system} {resource}", since=since)
        while not plan.done:
            try:
                page = await self.list_page(resource, decoder, {**(filters or {}), **plan.params()})
            except errors.RemoteError as exc:
                if plan.pages == 0 or not errors.is_transient(exc):
                    raise
                raise errors.SnapshotIncomplete(f"{plan.what}: page {plan.pages + 1} failed: {exc}") from exc
            rows = page.data
            plan.receive(page.meta.total, key(rows[-1]) if rows else None, len(rows))
            if rows:
                yield rows

    def pages(
        self,
        resource: str,
        decoder: msgspec.json.Decoder[views.Page[T]],
        id_of: Callable[[T], str],
        *,
        filters: Mapping[str, str] | None = None,
    ) -> AsyncIterator[list[T]]:
        """A filtered listing by offset pages (concurrent once page 1 told the total), de-duplicated."""

        async def fetch(request: paging.PageRequest) -> tuple[int, list[T]]:
            params = {**(filters or {}), "page": str(request.number), "per_page": str(request.size)}
            page = await self.list_page(resource, decoder, params)
            return page.meta.total, page.data

        plan = paging.OffsetPaging(self.page_size, what=f"{self.transport.system} {resource}")
        return paging.stream_pages(plan, fetch, key=id_of, window=self.window)

    async def get(self, path: str, decoder: msgspec.json.Decoder[T]) -> T:
        """``GET path`` decoded; NotFound when the record does not exist."""
        return await self.transport.request("GET", path, decode=self._decoder(decoder, "GET", path))

    async def put_cto(self, ozmap_box_id: str, body: Mapping[str, Any]) -> views.CtoView:
        """``PUT /ctos/ozmap/{id}``: idempotent upsert (retried like any idempotent request)."""
        path = f"/ctos/ozmap/{quote(ozmap_box_id, safe='')}"
        return await self.transport.request(
            "PUT", path, json=dict(body), decode=self._decoder(views.CTO, "PUT", path)
        )

    async def delete_cto(self, ozmap_box_id: str, *, deactivate: bool = False) -> None:
        """``DELETE /ctos/ozmap/{id}`` (``?deactivate=true`` keeps the mirror with ``active=false``)."""
        path = f"/ctos/ozmap/{quote(ozmap_box_id, safe='')}"
        params = {"deactivate": "true"} if deactivate else None
        await self.transport.request("DELETE", path, params=params, decode=_ignore)

    async def events(self, after: int | None, limit: int = EVENT_LIMIT) -> views.EventPage:
        """``GET /events?after=&limit=``; :class:`CursorExpired` when ``after`` is older than the retention."""
        params = {"limit": str(limit)}
        if after is not None:
            params["after"] = str(after)
        return await self.transport.request(
            "GET", "/events", params=params, decode=self._decoder(views.EVENTS, "GET", "/events")
        )

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


def _ignore(response: Response) -> None:
    return None
