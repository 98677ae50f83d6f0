"""ArchOLT sandbox: an in-memory fake of ArchOLT's REST API (project-defined contract) as an aiohttp application.

Public surface: :class:`ArcholtStore` (the data), :func:`create_app` (the server), :data:`STORE_KEY` /
:data:`FAULTS_KEY` (where the app keeps them), :data:`DEFAULT_TOKEN` (scope ``read_write``) and
:data:`DEFAULT_READ_TOKEN` (scope ``read``). The contract is ``/work/shared/apis/archolt.md``; no public ArchOLT
API exists, so everything below is [assume] (archolt.md A1) unless it names the seed.

Faithful routes, under ``/api/v1`` (a trailing slash is accepted)::

    GET    /olts                       list (updated_since, after_id, page, per_page)
    GET    /olts/{id}                  one OLT (404 olt_not_found)
    PATCH  /olts/{id}                  ozmap_olt_id, require_cto_on_activation (the "OZMAP" tab [seed])
    GET    /ctos                       list; filters olt_id, ozmap_box_id, name, active
    PUT    /ctos/ozmap/{ozmap_box_id}  upsert a box mirror: 201 created, 200 updated or unchanged (idempotent)
    DELETE /ctos/ozmap/{ozmap_box_id}  204; 409 cto_in_use while provisioned ONUs use it; ?deactivate=true → 200
    GET    /onus                       list; filters status (provisioned|deprovisioned|all), olt_id, cto_id,
                                       has_cto, serial
    GET    /onus/{id}                  one ONU (404 onu_not_found), tombstones included
    POST   /onus                       provision (201), with the rules of archolt.md 3
    PUT    /onus/{id}/cto              "Alterar CTO (OZMAP)" [seed]: {"cto_id": 7} | {"cto_name": "CTO-12"}
    POST   /onus/{id}/deprovision      200; idempotent
    GET    /events                     change feed: after, limit → {"data": [...], "next_after": n}; 410
                                       cursor_expired below retention

Conventions (archolt.md 2): ``Authorization: Bearer <token>`` (401 ``unauthenticated``; a write with a ``read``
token 403 ``forbidden``); per-token rate limit 10 req/s, burst 20 → 429 ``rate_limited`` with ``Retry-After``
(:class:`ArcholtKnobs`); lists answer ``{"data", "meta": {page, per_page, total}}`` ordered by ``updated_at`` then
``id``; ``per_page`` default 100, larger than 500 clamped; ``updated_since`` is inclusive, with ``after_id`` the
pair ``(updated_at, id) > (updated_since, after_id)`` and ``total`` counts every row after the position. Errors are
``{"error": {"code", "message" (Portuguese), "details"}}``. Choices where the contract is silent: an ``after_id``
without ``updated_since`` is 400 ``invalid_parameter``; unknown query parameters are ignored; ``GET events``
without ``after`` starts at the oldest retained event; an unknown route is aiohttp's plain 404.

Control API (no auth, not logged, never faulted), besides the ``/_sandbox/faults``, ``/_sandbox/requests`` and
``/_sandbox/stats`` routes of :mod:`reconciler.sandbox.faults`::

    GET    /_sandbox/knobs ; POST /_sandbox/knobs {"naive_local_timestamps": true, …}
    GET    /_sandbox/store/{collection}            olts | ctos | onus | events, API shape, id (seq) order
    GET    /_sandbox/store/{collection}/{id}       one (404 when absent)
    POST   /_sandbox/store/{collection}            raw insert/replace: object or array (no rule, no event) → 201
    PATCH  /_sandbox/store/{collection}/{id}       an operator's edit in ArchOLT's UI, with the rules and events:
                                                   onus: model/vlan/description/login, oper_state/powers (no
                                                   bump), cto_id/cto_name (link a CTO), status "deprovisioned";
                                                   olts: the OZMAP tab plus name/ip/vendor/model/pon_type/pon_ports
                                                   (a port may carry ``tx_power_dbm``, the PON's launch power
                                                   [assume], shown only when set);
                                                   ctos: mirror fields
    DELETE /_sandbox/store/{collection}/{id}       onus: deprovision as an operator (?purge=true: raw removal);
                                                   others: raw removal
    POST   /_sandbox/provision                     provision like a technician (rules of POST onus) → 201
    POST   /_sandbox/poll                          monitoring poll: new readings, no updated_at bump
    POST   /_sandbox/reset                         forget data, events, knobs, fault rules and the request log
    POST   /_sandbox/seed                          {"seed", "scale", "ozmap_olts"?, "ozmap_boxes"?} → reset + load
                                                   :func:`reconciler.sandbox.archolt_world.archolt_rows`
    GET    /_sandbox/clock ; PUT /_sandbox/clock {"now": iso} | {"advance_seconds": n} ; POST = advance
    PUT    /_sandbox/faults                        replace every fault rule with the given list

The sandbox imports only aiohttp, msgspec, the stdlib and ``reconciler.sandbox``: it plays another company's server.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from reconciler.sandbox import archolt_domain as domain
from reconciler.sandbox.archolt_control import Control, error_response, read_json
from reconciler.sandbox.archolt_store import DEFAULT_READ_TOKEN, DEFAULT_TOKEN, ArcholtStore, Row
from reconciler.sandbox.archolt_values import (
    DEFAULT_EVENT_LIMIT,
    DEFAULT_PER_PAGE,
    MAX_EVENT_LIMIT,
    MAX_PER_PAGE,
    ApiError,
    ArcholtKnobs,
    bad_parameter,
    parse_time,
)
from reconciler.sandbox.faults import Faults, json_response
from reconciler.sandbox.ratelimit import TokenBuckets

__all__ = [
    "DEFAULT_READ_TOKEN",
    "DEFAULT_TOKEN",
    "FAULTS_KEY",
    "STORE_KEY",
    "ArcholtKnobs",
    "ArcholtStore",
    "bearer",
    "create_app",
]

API: Final = "/api/v1"
STORE_KEY: Final = web.AppKey("archolt_store", ArcholtStore)
FAULTS_KEY: Final = web.AppKey("archolt_faults", Faults)
HTML_ERROR_PAGE: Final = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    "<hr><center>nginx</center></body></html>"
)
_SLASH: Final = "{_slash:/?}"
_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOWEST: Final = -(2**63)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer(token: str) -> str:
    """The ``Authorization`` header value for ``token``."""
    return f"Bearer {token}"


def create_app(store: ArcholtStore, *, faults: Faults | None = None) -> web.Application:
    """The sandbox server for ``store``; ``faults`` (None: one with an nginx 502 page) is installed on it."""
    if faults is None:
        faults = Faults(html_page=HTML_ERROR_PAGE, html_status=502)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    faults.install(app)
    api = _Api(store)
    app.middlewares.append(api.middleware)
    app[STORE_KEY] = store
    app[FAULTS_KEY] = faults
    r = app.router
    r.add_get(f"{API}/olts{_SLASH}", api.list_olts)
    r.add_get(f"{API}/olts/{{id}}{_SLASH}", api.get_olt)
    r.add_patch(f"{API}/olts/{{id}}{_SLASH}", api.patch_olt)
    r.add_get(f"{API}/ctos{_SLASH}", api.list_ctos)
    r.add_put(f"{API}/ctos/ozmap/{{box}}{_SLASH}", api.put_cto)
    r.add_delete(f"{API}/ctos/ozmap/{{box}}{_SLASH}", api.delete_cto)
    r.add_get(f"{API}/onus{_SLASH}", api.list_onus)
    r.add_post(f"{API}/onus{_SLASH}", api.post_onu)
    r.add_get(f"{API}/onus/{{id}}{_SLASH}", api.get_onu)
    r.add_put(f"{API}/onus/{{id}}/cto{_SLASH}", api.put_onu_cto)
    r.add_post(f"{API}/onus/{{id}}/deprovision{_SLASH}", api.deprovision)
    r.add_get(f"{API}/events{_SLASH}", api.events)
    Control(store, faults).install(app)
    return app


# -- request helpers ----------------------------------------------------------------------------------------------


def _int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise bad_parameter(name, reason="integer expected") from None


def _bool_param(request: web.Request, name: str) -> bool | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise bad_parameter(name, reason="true or false expected")


def _time_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise bad_parameter(name, reason="ISO 8601 timestamp expected") from None


def _path_id(request: web.Request, missing: str, label: str) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise ApiError(missing, {label: request.match_info["id"]}) from None


class _Api:
    """Handlers of the faithful ``/api/v1`` routes, and the auth/rate-limit/error middleware."""

    def __init__(self, store: ArcholtStore) -> None:
        self.store = store
        self.limiter = TokenBuckets()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Bearer auth, scope and rate limit for ``/api/v1``; ApiError → the contract's error body."""
        if not request.path.startswith(API + "/") and request.path != API:
            return await handler(request)
        store = self.store
        try:
            scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
            token = token.strip()
            scope = store.tokens.get(token) if scheme.lower() == "bearer" and token else None
            if scope is None:
                response = error_response(ApiError("unauthenticated"))
                response.headers["WWW-Authenticate"] = 'Bearer realm="ArchOLT"'
                return response
            knobs = store.knobs
            wait = self.limiter.take(token, knobs.rate_limit, knobs.rate_burst, store.monotonic())
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                response = error_response(ApiError("rate_limited", {"retry_after": retry_after}))
                response.headers["Retry-After"] = str(retry_after)
                return response
            if request.method in _WRITES and scope != "read_write":
                raise ApiError("forbidden", {"scope": scope})
            store.expire()
            return await handler(request)
        except ApiError as exc:
            return error_response(exc)

    # -- listing ---------------------------------------------------------------------------------------------

    def page(
        self, request: web.Request, collection: str, key: Any, predicate: Callable[[Row], bool] | None
    ) -> web.Response:
        """One list answer of ``collection`` (archolt.md 2 "Pagination" and "Incremental reads")."""
        store = self.store
        since = _time_param(request, "updated_since")
        after_id = _int_param(request, "after_id")
        if after_id is not None and since is None:
            raise bad_parameter("after_id", reason="requires updated_since")
        page = _int_param(request, "page")
        page = 1 if page is None else page
        if page < 1:
            raise bad_parameter("page", reason="must be >= 1")
        per_page = _int_param(request, "per_page")
        per_page = DEFAULT_PER_PAGE if per_page is None else per_page
        if per_page < 1:
            raise bad_parameter("per_page", reason="must be >= 1")
        per_page = min(per_page, MAX_PER_PAGE)
        if (
            collection == "onus"
            and store.knobs.mutate_onus_between_pages > 0
            and (page > 1 or after_id is not None)
        ):
            domain.touch_onus(store, store.knobs.mutate_onus_between_pages)
        keys = store.listing(collection, key, predicate)
        start = 0
        if since is not None:
            position = (since, after_id if after_id is not None else _LOWEST)
            start = (
                bisect.bisect_right(keys, position)
                if after_id is not None
                else bisect.bisect_left(keys, position)
            )
        total = len(keys) - start
        offset = start + (page - 1) * per_page
        table = store.table(collection)
        data = [
            store.render(collection, table[rid])
            for _, rid in keys[offset : min(offset + per_page, len(keys))]
        ]
        return json_response({"data": data, "meta": {"page": page, "per_page": per_page, "total": total}})

    async def list_olts(self, request: web.Request) -> web.StreamResponse:
        return self.page(request, "olts", (), None)

    async def list_ctos(self, request: web.Request) -> web.StreamResponse:
        olt_id = _int_param(request, "olt_id")
        box = request.query.get("ozmap_box_id") or None
        name = request.query.get("name") or None
        active = _bool_param(request, "active")

        def match(row: Row) -> bool:
            return (
                (olt_id is None or row["olt_id"] == olt_id)
                and (box is None or row["ozmap_box_id"] == box)
                and (name is None or row["name"] == name)
                and (active is None or row["active"] == active)
            )

        key = (olt_id, box, name, active)
        return self.page(request, "ctos", key, None if key == (None, None, None, None) else match)

    async def list_onus(self, request: web.Request) -> web.StreamResponse:
        status = request.query.get("status") or "all"
        if status not in ("provisioned", "deprovisioned", "all"):
            raise bad_parameter("status", reason="provisioned, deprovisioned or all")
        olt_id = _int_param(request, "olt_id")
        cto_id = _int_param(request, "cto_id")
        has_cto = _bool_param(request, "has_cto")
        serial = request.query.get("serial") or None

        def match(row: Row) -> bool:
            link = row["cto"]
            return (
                (status == "all" or row["status"] == status)
                and (olt_id is None or row["olt_id"] == olt_id)
                and (cto_id is None or (link is not None and link["id"] == cto_id))
                and (has_cto is None or (link is not None) == has_cto)
                and (serial is None or row["serial"] == serial.upper())
            )

        key = (status, olt_id, cto_id, has_cto, serial)
        return self.page(request, "onus", key, None if key == ("all", None, None, None, None) else match)

    # -- one record ------------------------------------------------------------------------------------------

    async def get_olt(self, request: web.Request) -> web.StreamResponse:
        olt = domain.olt_or_404(self.store, _path_id(request, "olt_not_found", "olt_id"))
        return json_response(self.store.render("olts", olt))

    async def get_onu(self, request: web.Request) -> web.StreamResponse:
        onu = domain.onu_or_404(self.store, _path_id(request, "onu_not_found", "onu_id"))
        return json_response(self.store.render("onus", onu))

    # -- writes ----------------------------------------------------------------------------------------------

    async def patch_olt(self, request: web.Request) -> web.StreamResponse:
        olt_id = _path_id(request, "olt_not_found", "olt_id")
        olt = domain.patch_olt(self.store, olt_id, await read_json(request))
        return json_response(self.store.render("olts", olt))

    async def put_cto(self, request: web.Request) -> web.StreamResponse:
        row, status = domain.upsert_cto(self.store, request.match_info["box"], await read_json(request))
        return json_response(self.store.render("ctos", row), status=status)

    async def delete_cto(self, request: web.Request) -> web.StreamResponse:
        deactivate = bool(_bool_param(request, "deactivate"))
        row = domain.delete_cto(self.store, request.match_info["box"], deactivate=deactivate)
        if row is None:
            return web.Response(status=204)
        return json_response(self.store.render("ctos", row))

    async def post_onu(self, request: web.Request) -> web.StreamResponse:
        row = domain.provision(self.store, await read_json(request))
        return json_response(self.store.render("onus", row), status=201)

    async def put_onu_cto(self, request: web.Request) -> web.StreamResponse:
        onu_id = _path_id(request, "onu_not_found", "onu_id")
        row = domain.change_cto(self.store, onu_id, await read_json(request))
        return json_response(self.store.render("onus", row))

    async def deprovision(self, request: web.Request) -> web.StreamResponse:
        row = domain.deprovision(self.store, _path_id(request, "onu_not_found", "onu_id"))
        return json_response(self.store.render("onus", row))

    # -- change feed -----------------------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        store = self.store
        after = _int_param(request, "after")
        if after is not None and after < 0:
            raise bad_parameter("after", reason="must be >= 0")
        limit = _int_param(request, "limit")
        limit = DEFAULT_EVENT_LIMIT if limit is None else limit
        if limit < 1:
            raise bad_parameter("limit", reason="must be >= 1")
        limit = min(limit, MAX_EVENT_LIMIT)
        if after is None:
            after = store.purged_through
        elif after < store.purged_through:
            raise ApiError("cursor_expired", {"after": after, "oldest_seq": store.purged_through + 1})
        found = store.events_after(after, limit)
        data = [store.render("events", e) for e in found]
        return json_response({"data": data, "next_after": found[-1]["seq"] if found else after})
