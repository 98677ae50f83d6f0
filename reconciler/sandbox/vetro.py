"""Vetro FiberMap sandbox: an in-memory fake of the FiberMap API (v2 and v3 paths) as an aiohttp application.

Faithful API (the contract is /work/shared/apis/vetro.md; section 6 lists what is reproduced), served under both
``/v2/`` and ``/v3/`` (a trailing slash is accepted)::

    GET    plans                      {"success": true, "result": {"plans": [{id, label, project_id, project_label}]}}
    GET    layers                     result.layers[] with available_attributes
    GET    features/query             plan_ids (``8,6`` or repeated ``plan_ids[]``), layer_ids, filter, order,
                                      offset, limit (default 100, clamped to 50 000) → result = [Feature]
    GET    features/{id}[,{id}…]      404 when any id is unknown
    POST   features                   {"features": [...]} create, all-or-nothing → result = written features
    PATCH  features                   merge by x-vetro.vetro_id (null clears), all-or-nothing
    POST   features/delete            JSON array of vetro_ids → result = true
    GET    /ui/feature/{vetro_id}     HTML page: the deep-link target (vetro.md 5, V12)

Auth: header ``token`` (case-insensitive name, no scheme): 401 when missing/unknown, 403 for plans outside the
token's scope and for writes with a read-only token. Errors are ``{"success": false, "message"}`` (+ ``errors``
``[{index, message}]`` for batch validation) [assume, V2]. Rate limit: per-token token bucket (knobs
``rate_limit``/``rate_burst``, default 10/s burst 20 [assume, V8]) and an optional daily cap on ``plans``;
over the limit: 429 ``{"success": false, "message": "Too many requests"}`` + ``Retry-After: <integer seconds>``.
Knob ``v3_bare`` makes ``/v3/`` answer bare bodies (``{"features": [...]}``, ``{"plans": [...]}``,
``{"layers": [...]}``) [assume, V1].

Control API (no auth), besides the fault/log routes of :mod:`reconciler.sandbox.faults`::

    GET|POST       /_sandbox/knobs                      :class:`VetroKnobs` (POST merges the given keys)
    GET            /_sandbox/clock ; POST|PUT /_sandbox/clock   {"advance_seconds"?, "now"?, "frozen"?}
    POST           /_sandbox/reset                      empty store, rate counters, faults and request log
    POST           /_sandbox/seed                       {"seed": 42, "size": 100} → deterministic tenant
    GET|POST       /_sandbox/tokens                     {"token", "plans"?: [ids] | null, "read_only"?: bool}
    DELETE         /_sandbox/tokens/{token}
    GET            /_sandbox/store/{plans|layers|features}[/{id}]
    POST           /_sandbox/store/{plans|layers|features}   object → insert/replace, array → bulk load
    PATCH          /_sandbox/store/features/{vetro_id}  {"properties"?, "geometry"?}: a user editing the map
    DELETE         /_sandbox/store/{kind}/{id}

The sandbox imports only aiohttp, msgspec, the stdlib and ``reconciler.sandbox``: it plays another company's server.
"""

from __future__ import annotations

import collections
import html
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final

import msgspec
from aiohttp import web

from reconciler.sandbox import vetro_seed
from reconciler.sandbox.faults import Faults, json_response
from reconciler.sandbox.ratelimit import TokenBuckets
from reconciler.sandbox.vetro_filter import FilterError, parse_filter, parse_order
from reconciler.sandbox.vetro_schema import TokenScope
from reconciler.sandbox.vetro_store import (
    DEFAULT_LIMIT,
    DEFAULT_TOKEN,
    MAX_LIMIT,
    VetroError,
    VetroKnobs,
    VetroStore,
)

__all__ = [
    "DEFAULT_TOKEN",
    "FAULTS_KEY",
    "STORE_KEY",
    "TokenScope",
    "VetroKnobs",
    "VetroStore",
    "create_app",
]

STORE_KEY: Final = web.AppKey("vetro_store", VetroStore)
FAULTS_KEY: Final = web.AppKey("vetro_faults", Faults)
VERSIONS: Final = ("/v2", "/v3")
_SLASH: Final = "{_slash:/?}"
HTML_ERROR_PAGE: Final = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    "<hr><center>cloudflare</center></body></html>"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SCOPE_KEY: Final = web.RequestKey("vetro_scope", TokenScope)


def create_app(store: VetroStore, *, faults: Faults | None = None) -> web.Application:
    """The sandbox application serving ``store``; ``faults`` defaults to one with a proxy's HTML error page."""
    if faults is None:
        faults = Faults(html_page=HTML_ERROR_PAGE, html_status=502)
    app = web.Application(client_max_size=256 * 1024 * 1024)
    api = _Api(store)
    control = _Control(store, faults, api)
    faults.install(app)
    app.middlewares.append(api.middleware)
    app[STORE_KEY] = store
    app[FAULTS_KEY] = faults
    router = app.router
    for prefix in VERSIONS:
        router.add_get(f"{prefix}/plans{_SLASH}", api.plans)
        router.add_get(f"{prefix}/layers{_SLASH}", api.layers)
        router.add_get(f"{prefix}/features/query{_SLASH}", api.query)
        router.add_post(f"{prefix}/features/delete{_SLASH}", api.delete)
        router.add_get(f"{prefix}/features/{{ids}}{_SLASH}", api.by_ids)
        router.add_post(f"{prefix}/features{_SLASH}", api.create)
        router.add_patch(f"{prefix}/features{_SLASH}", api.patch)
    router.add_get("/ui/feature/{vetro_id}", api.ui_feature)
    router.add_get("/_sandbox/knobs", control.get_knobs)
    router.add_post("/_sandbox/knobs", control.post_knobs)
    router.add_get("/_sandbox/clock", control.get_clock)
    router.add_post("/_sandbox/clock", control.set_clock)
    router.add_put("/_sandbox/clock", control.set_clock)
    router.add_post("/_sandbox/reset", control.reset)
    router.add_post("/_sandbox/seed", control.seed)
    router.add_get("/_sandbox/tokens", control.get_tokens)
    router.add_post("/_sandbox/tokens", control.post_token)
    router.add_delete("/_sandbox/tokens/{token}", control.delete_token)
    router.add_get("/_sandbox/store/{kind}", control.list_all)
    router.add_post("/_sandbox/store/{kind}", control.insert)
    router.add_get("/_sandbox/store/{kind}/{id}", control.get_one)
    router.add_patch("/_sandbox/store/features/{id}", control.edit)
    router.add_delete("/_sandbox/store/{kind}/{id}", control.delete)
    return app


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"success": False, "message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status=status)


def _too_many(retry_after: float) -> web.Response:
    response = _error(429, "Too many requests")
    response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


class _Api:
    """Handlers of the faithful routes, and the auth/rate-limit/error middleware."""

    def __init__(self, store: VetroStore) -> None:
        self.store = store
        self.limiter = TokenBuckets()
        self.daily: collections.Counter[tuple[str, str]] = collections.Counter()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(VERSIONS):
            return await handler(request)
        token = request.headers.get("token", "").strip()
        scope = self.store.scope(token) if token else None
        if scope is None:
            return _error(401, "Unauthorized: missing or invalid token")
        knobs = self.store.knobs
        wait = self.limiter.take(token, knobs.rate_limit, knobs.rate_burst)
        if wait > 0:
            return _too_many(wait)
        request[SCOPE_KEY] = scope
        try:
            return await handler(request)
        except VetroError as exc:
            return _error(exc.status, exc.message, exc.errors)
        except FilterError as exc:
            return _error(400, f"bad filter: {exc}")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return _error(exc.status, exc.reason)
            raise

    def _ok(self, request: web.Request, result: Any, bare_key: str | None) -> web.Response:
        if self.store.knobs.v3_bare and request.path.startswith("/v3"):
            if bare_key is None:
                return json_response(result)
            if isinstance(result, dict):
                return json_response(result)
            return json_response({bare_key: result})
        return json_response({"success": True, "result": result})

    async def plans(self, request: web.Request) -> web.Response:
        cap = self.store.knobs.plans_daily_cap
        if cap is not None:
            token = request.headers["token"].strip()
            now = self.store.now()
            key = (token, now.date().isoformat())
            if self.daily[key] >= cap:
                midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
                return _too_many((midnight - now).total_seconds())
            self.daily[key] += 1
        plans = self.store.visible_plans(request[SCOPE_KEY])
        return self._ok(request, {"plans": plans}, "plans")

    async def layers(self, request: web.Request) -> web.Response:
        return self._ok(request, {"layers": list(self.store.layers.values())}, "layers")

    async def query(self, request: web.Request) -> web.Response:
        offset = _int(request, "offset", 0)
        limit = min(_int(request, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        if offset < 0 or limit < 1:
            raise VetroError(400, "offset must be >= 0 and limit >= 1")
        filter_text = request.query.get("filter", "")
        result = self.store.query(
            request[SCOPE_KEY],
            plan_ids=_ids(request, "plan_ids"),
            layer_ids=_ids(request, "layer_ids"),
            clauses=parse_filter(filter_text),
            order=parse_order(request.query.get("order")),
            filter_text=filter_text,
        )
        page = result[offset : offset + limit]
        response = self._ok(request, page, "features")
        self.store.drift(result)
        return response

    async def by_ids(self, request: web.Request) -> web.Response:
        ids = [i.strip() for i in request.match_info["ids"].split(",") if i.strip()]
        if not ids:
            raise VetroError(400, "no feature id given")
        return self._ok(request, self.store.by_ids(request[SCOPE_KEY], ids), "features")

    async def create(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return self._ok(request, self.store.create(request[SCOPE_KEY], body), "features")

    async def patch(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return self._ok(request, self.store.patch(request[SCOPE_KEY], body), "features")

    async def delete(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        self.store.delete(request[SCOPE_KEY], body)
        return self._ok(request, True, None)

    async def ui_feature(self, request: web.Request) -> web.Response:
        feature = self.store.features.get(request.match_info["vetro_id"])
        if feature is None:
            return web.Response(
                status=404, text="<html><body>Not found</body></html>", content_type="text/html"
            )
        meta, props = feature["x-vetro"], feature["properties"]
        title = html.escape(str(props.get("ID") or meta["vetro_id"]))
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in props.items()
        )
        page = (
            f"<html><head><title>VETRO FiberMap – {title}</title></head><body><h1>{title}</h1>"
            f"<p>plan {meta.get('plan_id')} · layer {meta.get('layer_id')}</p><table>{rows}</table></body></html>"
        )
        return web.Response(text=page, content_type="text/html")


def _int(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name, "")
    if not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise VetroError(400, f"{name} must be an integer") from None


def _ids(request: web.Request, name: str) -> list[int]:
    """``name=8,6`` (v2 style) and/or repeated ``name[]=2757`` (v3 style)."""
    raw = [*request.query.getall(name, []), *request.query.getall(f"{name}[]", [])]
    out: list[int] = []
    for value in raw:
        for part in value.split(","):
            if part.strip():
                try:
                    out.append(int(part))
                except ValueError:
                    raise VetroError(400, f"{name} must be integers") from None
    return out


async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise VetroError(400, "Content-Type must be application/json")
    try:
        return msgspec.json.decode(await request.read())
    except msgspec.DecodeError:
        raise VetroError(400, "malformed JSON body") from None


# -- control API ---------------------------------------------------------------------------------------------


class _ClockChange(msgspec.Struct, forbid_unknown_fields=True):
    advance_seconds: float = 0.0
    now: str | None = None
    frozen: bool | None = None


class _Seed(msgspec.Struct, forbid_unknown_fields=True):
    seed: int = 42
    size: int = 100


class _Token(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    plans: list[int] | None = None
    read_only: bool = False


def _control_error(status: int, text: str) -> web.Response:
    return json_response({"message": text}, status=status)


class _Control:
    """Handlers of ``/_sandbox/…``: the test's hands inside "Vetro"."""

    def __init__(self, store: VetroStore, faults: Faults, api: _Api) -> None:
        self.store = store
        self.faults = faults
        self.api = api

    async def get_knobs(self, request: web.Request) -> web.Response:
        return json_response(self.store.knobs)

    async def post_knobs(self, request: web.Request) -> web.Response:
        try:
            changes = msgspec.json.decode(await request.read() or b"{}", type=dict[str, Any])
            merged = {**msgspec.to_builtins(self.store.knobs), **changes}
            self.store.knobs = msgspec.convert(merged, VetroKnobs)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _control_error(400, f"bad knobs: {exc}")
        return json_response(self.store.knobs)

    async def get_clock(self, request: web.Request) -> web.Response:
        return json_response({"now": self.store.set_clock()})

    async def set_clock(self, request: web.Request) -> web.Response:
        try:
            change = msgspec.json.decode(await request.read() or b"{}", type=_ClockChange)
            now = self.store.set_clock(
                advance_seconds=change.advance_seconds, now=change.now, frozen=change.frozen
            )
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return _control_error(400, f"bad clock change: {exc}")
        return json_response({"now": now})

    async def reset(self, request: web.Request) -> web.Response:
        self.store.reset()
        self.faults.clear()
        self.faults.log.clear()
        self.api.limiter.clear()
        self.api.daily.clear()
        return web.Response(status=204)

    async def seed(self, request: web.Request) -> web.Response:
        try:
            spec = msgspec.json.decode(await request.read() or b"{}", type=_Seed)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _control_error(400, f"bad seed: {exc}")
        counts = vetro_seed.seed_into(self.store, seed=spec.seed, size=spec.size)
        return json_response(counts, status=201)

    async def get_tokens(self, request: web.Request) -> web.Response:
        return json_response(self.store.tokens)

    async def post_token(self, request: web.Request) -> web.Response:
        try:
            spec = msgspec.json.decode(await request.read(), type=_Token)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _control_error(400, f"bad token: {exc}")
        self.store.tokens[spec.token] = TokenScope(plans=spec.plans, read_only=spec.read_only)
        return json_response(self.store.tokens[spec.token], status=201)

    async def delete_token(self, request: web.Request) -> web.Response:
        removed = self.store.tokens.pop(request.match_info["token"], None)
        return web.Response(status=204 if removed is not None else 404)

    def _kind(self, request: web.Request) -> str | None:
        kind = request.match_info["kind"]
        return kind if kind in ("plans", "layers", "features") else None

    async def list_all(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        if kind is None:
            return _control_error(404, f"unknown kind {request.match_info['kind']!r}")
        return json_response(self.store.all(kind))

    async def get_one(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        if kind is None:
            return _control_error(404, f"unknown kind {request.match_info['kind']!r}")
        found = self.store.get(kind, request.match_info["id"])
        return _control_error(404, "not found") if found is None else json_response(found)

    async def insert(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        if kind is None:
            return _control_error(404, f"unknown kind {request.match_info['kind']!r}")
        try:
            body = msgspec.json.decode(await request.read())
            rows = body if isinstance(body, list) else [body]
            if not all(isinstance(row, dict) for row in rows):
                return _control_error(400, "expected an object or an array of objects")
            count = self.store.load(kind, rows)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return _control_error(400, f"bad {kind}: {exc}")
        if isinstance(body, list):
            return json_response({"loaded": count}, status=201)
        return json_response(self.store.last_loaded, status=201)

    async def edit(self, request: web.Request) -> web.Response:
        try:
            changes = msgspec.json.decode(await request.read(), type=dict[str, Any])
            feature = self.store.user_edit(request.match_info["id"], changes)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _control_error(400, f"bad JSON: {exc}")
        except KeyError as exc:
            return _control_error(400, f"only properties and geometry can be edited, not {exc}")
        return _control_error(404, "no such feature") if feature is None else json_response(feature)

    async def delete(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        if kind is None:
            return _control_error(404, f"unknown kind {request.match_info['kind']!r}")
        removed = self.store.raw_delete(kind, request.match_info["id"])
        return web.Response(status=204 if removed else 404)
