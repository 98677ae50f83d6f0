"""COS BE partner API calls (cosbe.md 3) on top of :class:`~reconciler.connectors.http.Transport`.

- Base URL: the configured URL (``https://<tenant>.<env>.partnerapi.net``) with ``/v1`` appended unless present.
- Auth (cosbe.md 1): ``Authorization: <api key>`` (raw, no scheme) and ``BusinessEngine: <environment>``. The
  config file has one secret per system, so for COS BE it holds ``"<environment>:<api key>"`` (split on the first
  colon: environment names carry no colon, keys may). The key and the whole secret are scrubbed from every error.
- Object groups and metadata definitions are read at most once per client (cosbe.md 5: cache per run).
- ``Object/Create`` is not retried once it may have reached the server (no idempotency key; external ids are not
  unique-enforced, cosbe.md 2.3); ``Object/Update`` is a partial update, safe to resend.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import anyio
import msgspec
import yarl

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors.cosbe import views
from reconciler.connectors.http import Response, Transport

T = TypeVar("T")

API_PREFIX = "/v1"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 1000


def api_base(url: str) -> str:
    """``https://host[/v1][/][?…]`` → ``https://host/v1``."""
    base = str(yarl.URL(url).with_query(None).with_fragment(None)).rstrip("/")
    return base if base.endswith(API_PREFIX) else base + API_PREFIX


def credentials(system: str, secret: str) -> tuple[str, str]:
    """``"<environment>:<api key>"`` → (environment, key); ConfigError (without the secret) otherwise."""
    environment, sep, key = secret.partition(":")
    if not sep or not environment.strip() or not key.strip():
        raise errors.ConfigError(
            f'{system}: the COS BE secret must read "<environment>:<api key>" (the BusinessEngine header value, '
            "a colon, then the API key)"
        )
    return environment.strip(), key.strip()


class CosbeClient:
    """The HTTP side of the COS BE connector (no record mapping here)."""

    def __init__(
        self, config: SystemConfig, session: aiohttp.ClientSession, *, rng: random.Random | None = None
    ) -> None:
        secret = config.secret.reveal()
        environment, key = credentials(config.name, secret)
        self.transport = Transport(
            system=config.name,
            session=session,
            base_url=api_base(config.url),
            settings=config.http,
            headers={"Authorization": key, "BusinessEngine": environment, "Accept": "application/json"},
            secrets=(secret, key),
            rng=rng,
        )
        self.page_size = min(config.http.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        self.concurrency = config.http.concurrency
        self._lock = anyio.Lock()
        self._groups: list[dict[str, Any]] | None = None
        self._definitions: list[dict[str, Any]] | None = None

    async def page(self, path: str, params: Mapping[str, str]) -> views.Page:
        """One page of a ``…/List`` endpoint."""
        return await self._call("GET", path, views.PAGE, params=params)

    async def get(self, object_id: str) -> dict[str, Any]:
        """``Object/Get/{id}``; NotFound when unknown."""
        return await self._call("GET", f"/Object/Get/{quote(object_id, safe='')}", views.OBJECT)

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``Object/Create`` → the created object."""
        return await self._call("POST", "/Object/Create", views.OBJECT, json=body, idempotent=False)

    async def update(self, body: dict[str, Any]) -> dict[str, Any]:
        """``Object/Update`` (partial; ``body["id"]`` names the object) → the updated object."""
        return await self._call("POST", "/Object/Update", views.OBJECT, json=body)

    async def groups(self) -> list[dict[str, Any]]:
        """``ObjectGroup/List``, every page (cached)."""
        async with self._lock:
            if self._groups is None:
                self._groups = await self._all("/ObjectGroup/List", {})
            return self._groups

    async def definitions(self) -> list[dict[str, Any]]:
        """``Metadata/List?entity=Object``, every page (cached)."""
        async with self._lock:
            if self._definitions is None:
                self._definitions = await self._all("/Metadata/List", {"entity": "Object"})
            return self._definitions

    async def _all(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        index = 0
        while True:
            page = await self.page(path, {**params, "pageIndex": str(index), "pageSize": str(self.page_size)})
            rows.extend(page.items)
            size = page.pageSize or self.page_size
            if len(page.items) < size or (page.totalCount is not None and len(rows) >= page.totalCount):
                return rows
            index += 1

    async def _call(
        self,
        method: str,
        path: str,
        decoder: msgspec.json.Decoder[T],
        *,
        params: Mapping[str, str] | None = None,
        json: object = None,
        idempotent: bool = True,
    ) -> T:
        transport = self.transport

        def fail(cls: type[errors.RemoteError], what: str, body: bytes | str) -> errors.RemoteError:
            return transport.error(cls, method, path, what, body)

        def decode(response: Response) -> T:
            return views.decode(response, decoder, fail)

        return await transport.request(
            method, path, params=params, json=json, idempotent=idempotent, decode=decode
        )
