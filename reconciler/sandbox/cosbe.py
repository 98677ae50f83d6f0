"""COS Business Engine sandbox: an in-memory fake of the COS BE partner API as an aiohttp application.

Faithful API (the contract is /work/shared/apis/cosbe.md; most of the REST surface is [assume] there), under
``/v1/`` (paths are case-insensitive like ASP.NET routing)::

    GET   Object/List          pageIndex, pageSize (default 100, clamped to 1000), modifiedSince (inclusive),
                               afterId (keyset, needs modifiedSince), status, groupId, externalIdentification,
                               externalServiceLocationId, objectNumber → {items, pageIndex, pageSize, totalCount}
    GET   Object/Get/{id}      one object (404 problem when unknown)
    POST  Object/Create        201 + the object
    POST  Object/Update        partial update by body ``id``; optional ``version`` (stale → 409)
    GET   ObjectGroup/List     {items: [{id, name}], …}
    GET   Metadata/List        ?entity=Object → {items: [definition], …}

Auth (cosbe.md 1, C12): ``Authorization: <api key>`` (no scheme) and ``BusinessEngine: <environment>``; 401 when
the key is missing/unknown, 403 when the environment does not match the key, the source IP is not allow-listed
(knob) or a read-only key writes. Errors are ASP.NET problem details (``application/problem+json``, C8). Rate
limit: per-key token bucket, default 20/s burst 40 [assume, C9], 429 + ``Retry-After`` seconds. Writes emit
webhook events (:mod:`.cosbe_webhooks`).

Control API (no auth), besides the fault/log routes of :mod:`reconciler.sandbox.faults`::

    GET|POST    /_sandbox/knobs                          :class:`CosbeKnobs`
    GET         /_sandbox/clock ; POST|PUT /_sandbox/clock    {"advance_seconds"?, "now"?, "frozen"?}
    POST        /_sandbox/reset ; POST /_sandbox/seed {"seed", "size"}
    GET|POST    /_sandbox/keys                           {"key", "environment"?, "write"?}
    GET|POST|DELETE /_sandbox/webhook (alias /_sandbox/webhooks)   {"url", "secret", "retry_delays"?, "timeout"?,
                                                         "duplicate"?, "drop_next"?, "reorder"?, "delay"?}
    GET         /_sandbox/webhook/deliveries[?since=<seq>] ; GET /_sandbox/webhook/events
    GET         /_sandbox/store/{objects|groups|metadata}[/{id}]
    POST        /_sandbox/store/{kind}                   object → insert (objects: as a user, emits ObjectCreated);
                                                         array → bulk load (no event)
    PATCH       /_sandbox/store/objects/{id}             a user edits fields (emits ObjectUpdated)
    DELETE      /_sandbox/store/{kind}/{id}              (objects: emits ObjectDeleted)
    POST        /_sandbox/objects/{id}/order             {"operation": "Created"|"Activated"|"Paused"|"Terminated"}
    POST        /_sandbox/objects/{id}/work-order-completed

The sandbox imports only aiohttp, msgspec, the stdlib and ``reconciler.sandbox``: it plays another company's server.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from aiohttp import web

from reconciler.sandbox import cosbe_seed
from reconciler.sandbox.cosbe_objects import STATUSES, Problem
from reconciler.sandbox.cosbe_store import (
    DEFAULT_API_KEY,
    DEFAULT_ENVIRONMENT,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ApiKey,
    CosbeKnobs,
    CosbeStore,
    ListQuery,
    parse_since,
)
from reconciler.sandbox.faults import Faults, json_response
from reconciler.sandbox.ratelimit import TokenBuckets

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_ENVIRONMENT",
    "FAULTS_KEY",
    "STORE_KEY",
    "ApiKey",
    "CosbeKnobs",
    "CosbeStore",
    "create_app",
]

STORE_KEY: Final = web.AppKey("cosbe_store", CosbeStore)
FAULTS_KEY: Final = web.AppKey("cosbe_faults", Faults)
API: Final = "/v1/"
PROBLEM: Final = "application/problem+json"
KEY_KEY: Final = web.RequestKey("cosbe_key", ApiKey)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(store: CosbeStore, *, faults: Faults | None = None) -> web.Application:
    """The sandbox application serving ``store``; closing the app stops the store's webhook deliveries."""
    faults = faults if faults is not None else Faults()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    api = _Api(store)
    control = _Control(store, faults, api)
    faults.install(app)
    app.middlewares.append(api.middleware)
    app[STORE_KEY] = store
    app[FAULTS_KEY] = faults

    async def close_store(_: web.Application) -> None:
        await store.aclose()

    app.on_cleanup.append(close_store)
    router = app.router
    router.add_route("*", API + "{path:.*}", api.dispatch)
    router.add_get("/_sandbox/knobs", control.get_knobs)
    router.add_post("/_sandbox/knobs", control.post_knobs)
    router.add_get("/_sandbox/clock", control.get_clock)
    router.add_post("/_sandbox/clock", control.set_clock)
    router.add_put("/_sandbox/clock", control.set_clock)
    router.add_post("/_sandbox/reset", control.reset)
    router.add_post("/_sandbox/seed", control.seed)
    router.add_get("/_sandbox/keys", control.get_keys)
    router.add_post("/_sandbox/keys", control.post_key)
    for path in ("/_sandbox/webhook", "/_sandbox/webhooks"):
        router.add_get(path, control.get_webhook)
        router.add_post(path, control.post_webhook)
        router.add_delete(path, control.delete_webhook)
        router.add_get(path + "/deliveries", control.deliveries)
        router.add_get(path + "/events", control.events)
    router.add_get("/_sandbox/store/{kind}", control.list_all)
    router.add_post("/_sandbox/store/{kind}", control.insert)
    router.add_get("/_sandbox/store/{kind}/{id}", control.get_one)
    router.add_patch("/_sandbox/store/objects/{id}", control.edit)
    router.add_delete("/_sandbox/store/{kind}/{id}", control.delete)
    router.add_post("/_sandbox/objects/{id}/order", control.order)
    router.add_post("/_sandbox/objects/{id}/work-order-completed", control.work_order_completed)
    return app


def problem_response(problem: Problem) -> web.Response:
    trace = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00"
    response = json_response(problem.body(trace), status=problem.status, content_type=PROBLEM)
    response.headers.update(problem.headers)
    return response


class _Api:
    """The faithful ``/v1/`` routes and their auth/rate-limit/problem middleware."""

    def __init__(self, store: CosbeStore) -> None:
        self.store = store
        self.limiter = TokenBuckets()
        self.routes: dict[tuple[str, str], Callable[[web.Request, str], Awaitable[web.Response]]] = {
            ("GET", "object/list"): self.list_objects,
            ("GET", "object/get"): self.get_object,
            ("POST", "object/create"): self.create,
            ("POST", "object/update"): self.update,
            ("GET", "objectgroup/list"): self.list_groups,
            ("GET", "metadata/list"): self.list_metadata,
        }

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API):
            return await handler(request)
        try:
            self._authenticate(request)
            return await handler(request)
        except Problem as problem:
            return problem_response(problem)

    def _authenticate(self, request: web.Request) -> None:
        knobs = self.store.knobs
        if knobs.allowed_ips is not None and request.remote not in knobs.allowed_ips:
            raise Problem(403, f"Source address {request.remote} is not allow-listed.")
        key = request.headers.get("Authorization", "").strip()
        info = self.store.keys.get(key) if key else None
        if info is None:
            raise Problem(401, "Missing or unknown API key.")
        if request.headers.get("BusinessEngine", "").strip() != info.environment:
            raise Problem(403, "The BusinessEngine header does not name this key's environment.")
        wait = self.limiter.take(key, knobs.rate_limit, knobs.rate_burst)
        if wait > 0:
            seconds = str(max(1, math.ceil(wait)))
            raise Problem(
                429, f"Rate limit exceeded; retry after {seconds} s.", headers={"Retry-After": seconds}
            )
        request[KEY_KEY] = info

    async def dispatch(self, request: web.Request) -> web.Response:
        parts = [p for p in request.match_info["path"].split("/") if p]
        route = "/".join(parts[:2]).lower()
        argument = "/".join(parts[2:])
        handler = self.routes.get((request.method, route))
        if handler is None:
            if any(r == route for _, r in self.routes):
                raise Problem(405, f"{request.method} is not allowed on {route}.")
            raise Problem(404, f"No endpoint {request.path}.")
        return await handler(request, argument)

    async def _body(self, request: web.Request) -> Any:
        if not request[KEY_KEY].write:
            raise Problem(403, "This API key has no write right.")
        if request.content_type != "application/json":
            raise Problem(415, "Content-Type must be application/json.")
        try:
            return msgspec.json.decode(await request.read())
        except msgspec.DecodeError as exc:
            raise Problem(400, errors={"$": [f"The JSON value could not be read: {exc}"]}) from None

    async def list_objects(self, request: web.Request, _: str) -> web.Response:
        query = _list_query(request)
        items, total = self.store.list_objects(query)
        response = json_response(
            {"items": items, "pageIndex": query.page_index, "pageSize": query.page_size, "totalCount": total}
        )
        self.store.drift(items)
        return response

    async def get_object(self, request: web.Request, oid: str) -> web.Response:
        obj = self.store.objects.get(oid)
        if obj is None:
            raise Problem(404, f"Object {oid} was not found.")
        return json_response(obj)

    async def create(self, request: web.Request, _: str) -> web.Response:
        return json_response(self.store.create(await self._body(request)), status=201)

    async def update(self, request: web.Request, _: str) -> web.Response:
        return json_response(self.store.update(await self._body(request)))

    async def list_groups(self, request: web.Request, _: str) -> web.Response:
        return _page(request, sorted(self.store.groups.values(), key=lambda g: g.name))

    async def list_metadata(self, request: web.Request, _: str) -> web.Response:
        entity = request.query.get("entity")
        rows = [d for d in self.store.definitions.values() if entity is None or d.entity == entity]
        return _page(request, sorted(rows, key=lambda d: d.name))


def _int(request: web.Request, name: str, default: int, minimum: int) -> int:
    text = request.query.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Problem(400, errors={name: [f"The value '{text}' is not valid for {name}."]}) from None
    if value < minimum:
        raise Problem(400, errors={name: [f"{name} must be at least {minimum}."]})
    return value


def _paging(request: web.Request) -> tuple[int, int]:
    index = _int(request, "pageIndex", 0, 0)
    return index, min(_int(request, "pageSize", DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)


def _page(request: web.Request, rows: list[Any]) -> web.Response:
    index, size = _paging(request)
    items = rows[index * size : (index + 1) * size]
    return json_response({"items": items, "pageIndex": index, "pageSize": size, "totalCount": len(rows)})


def _list_query(request: web.Request) -> ListQuery:
    index, size = _paging(request)
    query = request.query
    since, fractional = None, False
    if query.get("modifiedSince"):
        try:
            since, fractional = parse_since(query["modifiedSince"])
        except ValueError:
            raise Problem(400, errors={"modifiedSince": ["The value is not a valid timestamp."]}) from None
    after = query.get("afterId") or None
    if after is not None and since is None:
        raise Problem(400, errors={"afterId": ["afterId needs modifiedSince."]})
    filters: list[tuple[str, Any]] = []
    for name in ("status", "groupId", "externalIdentification", "externalServiceLocationId"):
        if query.get(name):
            filters.append((name, query[name]))
    if query.get("status") and query["status"] not in STATUSES:
        raise Problem(400, errors={"status": [f"The value '{query['status']}' is not valid for status."]})
    if query.get("objectNumber"):
        filters.append(("objectNumber", _int(request, "objectNumber", 0, 0)))
    return ListQuery(index, size, since, fractional, after, tuple(filters))


# -- control API ---------------------------------------------------------------------------------------------


class _ClockChange(msgspec.Struct, forbid_unknown_fields=True):
    advance_seconds: float = 0.0
    now: str | None = None
    frozen: bool | None = None


class _Seed(msgspec.Struct, forbid_unknown_fields=True):
    seed: int = 42
    size: int = 100


class _Key(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    environment: str = DEFAULT_ENVIRONMENT
    write: bool = True


class _Webhook(msgspec.Struct, forbid_unknown_fields=True):
    url: str | None
    secret: str | None = None
    retry_delays: list[float] | None = None
    timeout: float | None = None
    duplicate: bool | None = None
    drop_next: int | None = None
    reorder: bool | None = None
    delay: float | None = None


class _Operation(msgspec.Struct, forbid_unknown_fields=True):
    operation: str


def _control_error(status: int, text: str) -> web.Response:
    return json_response({"message": text}, status=status)


async def _decode(request: web.Request, type_: type[Any]) -> Any:
    return msgspec.json.decode(await request.read() or b"{}", type=type_)


_BAD = (msgspec.DecodeError, msgspec.ValidationError, ValueError)


class _Control:
    """Handlers of ``/_sandbox/…``: the test's hands inside "COS BE" (a COS user, COS support)."""

    def __init__(self, store: CosbeStore, faults: Faults, api: _Api) -> None:
        self.store = store
        self.faults = faults
        self.api = api

    async def get_knobs(self, request: web.Request) -> web.Response:
        return json_response(self.store.knobs)

    async def post_knobs(self, request: web.Request) -> web.Response:
        try:
            changes = await _decode(request, dict[str, Any])
            merged = {**msgspec.to_builtins(self.store.knobs), **changes}
            self.store.knobs = msgspec.convert(merged, CosbeKnobs)
        except _BAD as exc:
            return _control_error(400, f"bad knobs: {exc}")
        return json_response(self.store.knobs)

    async def get_clock(self, request: web.Request) -> web.Response:
        return json_response({"now": self.store.set_clock()})

    async def set_clock(self, request: web.Request) -> web.Response:
        try:
            change = await _decode(request, _ClockChange)
            now = self.store.set_clock(
                advance_seconds=change.advance_seconds, now=change.now, frozen=change.frozen
            )
        except _BAD as exc:
            return _control_error(400, f"bad clock change: {exc}")
        return json_response({"now": now})

    async def reset(self, request: web.Request) -> web.Response:
        self.store.reset()
        self.store.webhooks.events.clear()
        self.store.webhooks.deliveries.clear()
        self.faults.clear()
        self.faults.log.clear()
        self.api.limiter.clear()
        return web.Response(status=204)

    async def seed(self, request: web.Request) -> web.Response:
        try:
            spec = await _decode(request, _Seed)
        except _BAD as exc:
            return _control_error(400, f"bad seed: {exc}")
        return json_response(cosbe_seed.seed_into(self.store, seed=spec.seed, size=spec.size), status=201)

    async def get_keys(self, request: web.Request) -> web.Response:
        """How many keys exist and their environments (never the keys themselves)."""
        environments = sorted({k.environment for k in self.store.keys.values()})
        return json_response({"keys": len(self.store.keys), "environments": environments})

    async def post_key(self, request: web.Request) -> web.Response:
        try:
            spec = await _decode(request, _Key)
        except _BAD as exc:
            return _control_error(400, f"bad key: {exc}")
        self.store.keys[spec.key] = ApiKey(environment=spec.environment, write=spec.write)
        return web.Response(status=204)

    async def get_webhook(self, request: web.Request) -> web.Response:
        return json_response(self.store.webhooks.settings())

    async def post_webhook(self, request: web.Request) -> web.Response:
        try:
            spec = await _decode(request, _Webhook)
        except _BAD as exc:
            return _control_error(400, f"bad webhook: {exc}")
        hooks = self.store.webhooks
        hooks.url, hooks.secret = spec.url, spec.secret
        for name in ("retry_delays", "timeout", "duplicate", "drop_next", "reorder", "delay"):
            value = getattr(spec, name)
            if value is not None:
                setattr(hooks, name, value)
        return json_response(hooks.settings())

    async def delete_webhook(self, request: web.Request) -> web.Response:
        self.store.webhooks.url = None
        return web.Response(status=204)

    async def deliveries(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0") or 0)
        return json_response([d for d in self.store.webhooks.deliveries if d.seq > since])

    async def events(self, request: web.Request) -> web.Response:
        return json_response(list(self.store.webhooks.events))

    def _kind(self, request: web.Request) -> str | None:
        kind = request.match_info["kind"]
        return kind if kind in ("objects", "groups", "metadata") else None

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
            if isinstance(body, list) and all(isinstance(row, dict) for row in body):
                return json_response({"loaded": self.store.load(kind, body)}, status=201)
            if not isinstance(body, dict):
                return _control_error(400, "expected an object or an array of objects")
            if kind == "objects":
                return json_response(self.store.user_create(body), status=201)
            self.store.load(kind, [body])
        except _BAD as exc:
            return _control_error(400, f"bad {kind}: {exc}")
        return json_response(self.store.get(kind, str(body.get("id"))), status=201)

    async def edit(self, request: web.Request) -> web.Response:
        try:
            changes = await _decode(request, dict[str, Any])
            obj = self.store.user_edit(request.match_info["id"], changes)
        except _BAD as exc:
            return _control_error(400, f"bad JSON: {exc}")
        except KeyError as exc:
            return _control_error(400, f"not editable: {exc}")
        return _control_error(404, "no such object") if obj is None else json_response(obj)

    async def delete(self, request: web.Request) -> web.Response:
        kind, key = self._kind(request), request.match_info["id"]
        if kind is None:
            return _control_error(404, f"unknown kind {request.match_info['kind']!r}")
        if kind == "objects":
            removed = self.store.user_delete(key)
        else:
            table: dict[str, Any] = self.store.groups if kind == "groups" else self.store.definitions
            removed = table.pop(key, None) is not None
        return web.Response(status=204 if removed else 404)

    async def order(self, request: web.Request) -> web.Response:
        try:
            spec = await _decode(request, _Operation)
            obj = self.store.order(request.match_info["id"], spec.operation)
        except _BAD as exc:
            return _control_error(400, f"bad order operation: {exc}")
        return _control_error(404, "no such object") if obj is None else json_response(obj)

    async def work_order_completed(self, request: web.Request) -> web.Response:
        obj = self.store.work_order_completed(request.match_info["id"])
        return _control_error(404, "no such object") if obj is None else json_response(obj)
