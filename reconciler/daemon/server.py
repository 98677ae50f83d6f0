"""The daemon's HTTP server (aiohttp), in the daemon's own process and event loop.

=================================================  ==========================================================
route                                              answer
=================================================  ==========================================================
``GET /healthz``                                   200 while the process serves (liveness)
``GET /readyz``                                    200 when the state store answers and no entity has failed
                                                   ``readiness-failures`` cycles in a row; 503 otherwise and
                                                   while stopping. The JSON body says which entity fails, why.
``GET /metrics``                                   Prometheus text format (see :mod:`reconciler.daemon.metrics`)
``POST /webhooks/{integration}/{entity}``          ``{"ids": [...]}`` (or a COS BE change event): queue these
                                                   source records for an immediate targeted cycle → 202
                                                   ``{"queued", "deduplicated"}``
``POST /sync/{integration}/{entity}``              queue an on-demand cycle → 202 ``{"requested", "queued"}``;
                                                   ``?full=1``: a full resync; ``?allow-mass-removal=1``: the
                                                   operator's override of the removal guard for that cycle
``GET /openapi.json``, ``/ozmap/...``              the OZmap Integrator's Guide API (:mod:`reconciler.guide.http`)
=================================================  ==========================================================

The two POST routes need the shared secret (signature or bearer token, see
:mod:`reconciler.daemon.webhooks`): 401 when it is wrong, 403 when no secret is configured, 404 for an entity
the daemon does not run, 400 for a bad body, 503 while shutting down. No access log: scrapes every few seconds
would drown the cycle lines; webhooks are logged by the daemon itself.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from aiohttp import web

from reconciler.daemon import webhooks
from reconciler.daemon.metrics import CONTENT_TYPE
from reconciler.daemon.runner import Daemon
from reconciler.daemon.scheduling import EntityKey
from reconciler.errors import ReconcilerError
from reconciler.guide import http as guide_http

__all__ = ["create_app", "running"]

log = logging.getLogger("reconciler.daemon.http")

#: Largest request body accepted (a webhook of MAX_IDS ObjectIds is ≈ 300 kB).
MAX_BODY = 1024 * 1024
#: Seconds in-progress HTTP handlers get when the server stops.
HTTP_SHUTDOWN_SECONDS = 5.0
_TRUE = ("1", "true", "yes")


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(payload), status=status, content_type="application/json")


class _Routes:
    """Handlers bound to one daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        problem = await self.daemon.check_store()
        ready, details = self.daemon.readiness()
        details["store"] = problem or "ok"
        ready = ready and problem is None
        details["ready"] = ready
        return _json(details, 200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.daemon.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def webhook(self, request: web.Request) -> web.Response:
        key, body, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        assert key is not None
        try:
            ids = webhooks.decode_ids(body)
        except ValueError as exc:
            return self._refuse("bad_request", 400, str(exc))
        queued, duplicates = self.daemon.submit(key, ids)
        self.daemon.metrics.webhooks.labels("accepted").inc()
        log.info(
            "%s: webhook queued %d record(s), %d already queued",
            key,
            queued,
            duplicates,
            extra={"event": "webhook", "entity": str(key), "queued": queued, "deduplicated": duplicates},
        )
        return _json({"queued": queued, "deduplicated": duplicates}, 202)

    async def sync(self, request: web.Request) -> web.Response:
        key, _, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        assert key is not None
        full = request.query.get("full", "").lower() in _TRUE
        override = request.query.get("allow-mass-removal", "").lower() in _TRUE
        queued = self.daemon.request_cycle(key, full=full, allow_mass_removal=override)
        self.daemon.metrics.webhooks.labels("accepted").inc()
        mode = "full" if full else "incremental"
        log.log(
            logging.WARNING if override else logging.INFO,
            "%s: on-demand %s cycle requested%s",
            key,
            mode,
            " with the removal guard overridden" if override else "",
            extra={"event": "sync_request", "mode": mode, "allow_mass_removal": override},
        )
        return _json({"requested": mode, "allow_mass_removal": override, "queued": queued}, 202)

    async def _admit(self, request: web.Request) -> tuple[EntityKey | None, bytes, web.Response | None]:
        """Entity lookup, authentication and the stopping check shared by the POST routes."""
        integration, entity = request.match_info["integration"], request.match_info["entity"]
        key = self.daemon.entity(integration, entity)
        if key is None:
            return None, b"", self._refuse("unknown_entity", 404, f"no enabled entity {integration}/{entity}")
        body = await request.read()
        secrets = self.daemon.webhook_secrets(key)
        problem = webhooks.verify(request.headers, body, secrets, now=self.daemon.clock.time())
        if problem is not None:
            status = 403 if not secrets else 401
            return None, b"", self._refuse("unauthorized", status, problem)
        if self.daemon.stopping:
            refusal = self._refuse("stopping", 503, "shutting down")
            refusal.headers["Retry-After"] = "30"
            return None, b"", refusal
        return key, body, None

    def _refuse(self, result: str, status: int, message: str) -> web.Response:
        self.daemon.metrics.webhooks.labels(result).inc()
        return _json({"error": message}, status)


def create_app(daemon: Daemon) -> web.Application:
    """The aiohttp application serving ``daemon``."""
    routes = _Routes(daemon)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/healthz", routes.healthz)
    app.router.add_get("/readyz", routes.readyz)
    app.router.add_get("/metrics", routes.metrics)
    app.router.add_post("/webhooks/{integration}/{entity}", routes.webhook)
    app.router.add_post("/sync/{integration}/{entity}", routes.sync)
    guide_http.mount(app, daemon.engine.config, stopping=lambda: daemon.stopping)
    return app


@contextlib.asynccontextmanager
async def running(daemon: Daemon, *, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``daemon`` on ``host:port`` for the duration of the block; yields the bound base URL."""
    runner = web.AppRunner(
        create_app(daemon), access_log=None, handle_signals=False, shutdown_timeout=HTTP_SHUTDOWN_SECONDS
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ReconcilerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        await runner.cleanup()
