"""Vetro FiberMap calls (vetro.md 3) on top of :class:`~reconciler.connectors.http.Transport`.

- Base URL: the configured URL without its query string; ``/v3`` is appended when it names no version (``/v2``
  and ``/v3`` serve the same paths, vetro.md 1). Connector options travel in the URL's query string (the config
  file has no Vetro-specific section), see :func:`parse_url`.
- Auth: header ``token: <token>`` (no scheme, vetro.md 1); the token never appears in error messages.
- ``plans`` and ``layers`` are read at most once per client (vetro.md 2.8: ``plans`` has a daily cap).
- Writes: ``POST features`` (create; not retried once it may have reached the server), ``PATCH features`` (merge,
  idempotent), ``POST features/delete``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote

import aiohttp
import anyio
import msgspec
import yarl

from reconciler import errors
from reconciler.config import SystemConfig
from reconciler.connectors.http import Response, Transport
from reconciler.connectors.vetro import views

T = TypeVar("T")

DEFAULT_VERSION = "/v3"
MAX_LIMIT = 50_000
DEFAULT_PAGE_SIZE = 1000
DEFAULT_BATCH = 10
SERVICE_LOCATION = "Service Location"
OPTIONS = ("plans", "layer", "incremental", "batch")


class Options(NamedTuple):
    """Connector options read from the configured URL's query string."""

    base_url: str
    plans: tuple[int, ...] | None = None
    """``plans=112,113``: plan ids to read (default: every plan the token sees)."""
    layer: str = SERVICE_LOCATION
    """``layer=Service Location``: label of the service-location layer (vetro.md 4.2: resolved by label)."""
    incremental: str = "filter"
    """``incremental=filter|scan``: server-side ``last_edited_time`` filter, or a full read (vetro.md 2.6)."""
    batch: int = DEFAULT_BATCH
    """``batch=10``: features per PATCH in :meth:`VetroConnector.update_many` (vetro.md 2.7)."""


def parse_url(system: str, url: str) -> Options:
    """The base URL and options of a configured Vetro URL (ConfigError for an unknown or bad option)."""
    parsed = yarl.URL(url)
    unknown = set(parsed.query) - set(OPTIONS)
    if unknown:
        raise errors.ConfigError(
            f"{system}: unknown Vetro URL option(s) {', '.join(sorted(unknown))} (known: {', '.join(OPTIONS)})"
        )
    base = str(parsed.with_query(None).with_fragment(None)).rstrip("/")
    if not base.endswith(("/v2", "/v3")):
        base += DEFAULT_VERSION
    query = parsed.query
    try:
        plans = tuple(int(p) for p in query["plans"].split(",") if p.strip()) if "plans" in query else None
        batch = int(query.get("batch", DEFAULT_BATCH))
    except ValueError:
        raise errors.ConfigError(f"{system}: Vetro URL options plans and batch take integers") from None
    incremental = query.get("incremental", "filter")
    if incremental not in ("filter", "scan") or batch < 1:
        raise errors.ConfigError(f"{system}: Vetro URL option incremental is filter or scan, batch >= 1")
    return Options(base, plans, query.get("layer", SERVICE_LOCATION), incremental, batch)


class VetroClient:
    """The HTTP side of the Vetro connector (no record mapping here)."""

    def __init__(
        self, config: SystemConfig, session: aiohttp.ClientSession, *, rng: random.Random | None = None
    ) -> None:
        self.options = parse_url(config.name, config.url)
        token = config.secret.reveal()
        self.transport = Transport(
            system=config.name,
            session=session,
            base_url=self.options.base_url,
            settings=config.http,
            headers={"token": token, "Accept": "application/json"},
            secrets=(token,),
            rng=rng,
        )
        self.page_size = min(config.http.page_size or DEFAULT_PAGE_SIZE, MAX_LIMIT)
        self._lock = anyio.Lock()
        self._plans: list[views.Plan] | None = None
        self._layers: list[views.Layer] | None = None

    async def plans(self) -> list[views.Plan]:
        """``GET plans`` (cached)."""
        async with self._lock:
            if self._plans is None:
                self._plans = await self._get("/plans", "plans", views.PLANS)
            return self._plans

    async def layers(self) -> list[views.Layer]:
        """``GET layers`` (cached)."""
        async with self._lock:
            if self._layers is None:
                self._layers = await self._get("/layers", "layers", views.LAYERS)
            return self._layers

    async def query(self, params: Mapping[str, str]) -> list[views.Feature]:
        """One ``GET features/query`` page."""
        return await self._get("/features/query", "features", views.FEATURES, params=params)

    async def by_ids(self, ids: Sequence[str]) -> list[views.Feature]:
        """``GET features/{id},{id}…``; NotFound when any id is unknown (vetro.md 2.9)."""
        path = "/features/" + ",".join(quote(i, safe="") for i in ids)
        return await self._get(path, "features", views.FEATURES)

    async def create(self, features: list[dict[str, Any]]) -> list[views.Feature]:
        """``POST features`` → the created features (new vetro_ids), in request order."""
        return await self._write("POST", "/features", {"features": features}, idempotent=False)

    async def patch(self, features: list[dict[str, Any]]) -> list[views.Feature]:
        """``PATCH features`` (merge; all-or-nothing per batch)."""
        return await self._write("PATCH", "/features", {"features": features}, idempotent=True)

    async def delete(self, ids: Sequence[str]) -> None:
        """``POST features/delete`` with a JSON array of vetro_ids."""
        path = "/features/delete"
        fail = self._fail("POST", path)
        await self.transport.request(
            "POST",
            path,
            json=list(ids),
            decode=lambda response: views.decode(response, None, msgspec.json.Decoder(), fail),
        )

    async def _get(
        self,
        path: str,
        key: str,
        decoder: msgspec.json.Decoder[T],
        *,
        params: Mapping[str, str] | None = None,
    ) -> T:
        fail = self._fail("GET", path)

        def decode(response: Response) -> T:
            return views.decode(response, key, decoder, fail)

        return await self.transport.request("GET", path, params=params, decode=decode)

    async def _write(
        self, method: str, path: str, body: dict[str, Any], *, idempotent: bool
    ) -> list[views.Feature]:
        fail = self._fail(method, path)

        def decode(response: Response) -> list[views.Feature]:
            return views.decode(response, "features", views.FEATURES, fail)

        written: list[views.Feature] = await self.transport.request(
            method, path, json=body, idempotent=idempotent, decode=decode
        )
        if len(written) != len(body["features"]):
            raise self.transport.error(
                errors.TerminalRemoteError,
                method,
                path,
                f"{len(body['features'])} features sent, {len(written)} in the answer",
            )
        return written

    def _fail(self, method: str, path: str) -> views.MakeError:
        transport = self.transport

        def make(cls: type[errors.RemoteError], what: str, body: bytes | str) -> errors.RemoteError:
            return transport.error(cls, method, path, what, body)

        return make
