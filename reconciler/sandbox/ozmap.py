"""OZmap API v2 sandbox: an in-memory fake of OZmap's REST API as an aiohttp application.

Public surface (other modules code against it): :class:`OzmapStore` (the data), :func:`create_app` (the server),
:data:`STORE_KEY` / :data:`FAULTS_KEY` (where the app keeps them) and :data:`DEFAULT_API_KEY`.

Faithful routes, all under ``/api/v2`` (a trailing slash is accepted), see ``/work/shared/apis/ozmap.md``:

    POST   /users/login[?type=API]          {login, password} → {authorization: <key>, user}   (no auth)
    GET    /authenticated                   200 with a valid key
    GET    /<collection>                    envelope {total, count, start, limit, hasNextPage, nextUrl, rows}
    POST   /<collection>                    201 full record (+ creatorData, __v)
    GET    /<collection>/<id>               record, 404 when missing or soft-deleted
    PATCH  /<collection>/<id>               204
    DELETE /<collection>/<id>               204, soft delete (deletedAt)
    POST   /<collection>/batch-update       {filter, update} → 204
    GET    /properties/client/<code>        bare array, client populated
    POST   /cables/<dropId>/fibers/disconnect   204
    GET    /ftth-viability/radius?lat&lng[&radius]

Auth: ``Authorization: <key>`` or ``Bearer <key>``; otherwise 401 ``{"message"}``. Errors are ``{"message"}``.

Listing: ``filter``/``sort`` come from the JSON body of the GET or from the query string as JSON text (the body
wins); ``select``, ``populate``/``populate[]``, ``limit`` (default 25 [assume]; ``-1`` or ``0`` = all),
``page`` (1-based) and ``start`` (0-based offset; wins over ``page``). ``nextUrl`` repeats the request's query
parameters with ``limit`` and the next ``start`` [assume: the real cursor parameter is not public]; a filter sent
in the body is not copied into ``nextUrl`` — resend the same body, as the SDK does. Default order ``_id`` asc.
Soft-deleted records are listed only when the filter names ``deletedAt`` (e.g. ``deletedAt >= <cursor>``).

Topology convention [assume] (how the engine finds the OLT feeding a box's first service splitter; details in
``ozmap_network``): fibres are plain id strings; a PON's ``connectables`` lists the fibres it launches; a
splitter's ``connectables.input[0]`` is the fibre feeding it; a network splitter's ``output[i]`` feeds downstream
splitters; a service splitter's (``isDrop``) ``output[i]`` is the drop fibre of the client on port ``i + 1``.
Input fibre → PON holding it (or splitter whose ``output`` holds it, recursively) → ``parent`` slot → ``parent``
OLT → ``ip``. "In project" = ``implanted`` false.

Fast filters (index-backed, O(result) after the first use): ``id``/``_id`` and the reference paths ``parent``,
``project``, ``box``, ``client``, ``code``, ``drop``, ``boxA``, ``boxB``, ``olt``, ``slot``, ``external_id``,
``onu.serial_number``, ``connections.id``, ``connections.fiber`` with ``=``/``in``; ``updatedAt >``/``>=``;
``deletedAt >``/``>=``/``exists true``; ``coords near`` with a radius. Anything else is one scan per distinct
(filter, sort), cached until the next write to that collection, so paging costs O(page) per page.

Control API (no auth, not logged, never faulted), besides the fault/log routes of ``faults.py``:

    GET    /_sandbox/store/<collection>[?include_deleted=1]   every record, _id order
    GET    /_sandbox/store/<collection>/<id>                  one record (deleted ones too)
    POST   /_sandbox/store/<collection>                       insert raw record(s) (object or list) → 201
    PATCH  /_sandbox/store/<collection>/<id>                  edit like a user in the UI (bumps updatedAt) → 200
    DELETE /_sandbox/store/<collection>/<id>                  delete like a user (soft, with side effects) → 204
    GET    /_sandbox/clock ; POST /_sandbox/clock {"advance_seconds": n}

The sandbox imports only aiohttp, msgspec, the stdlib and ``reconciler.sandbox``: it plays another company's server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from reconciler.sandbox import ozmap_domain as domain
from reconciler.sandbox import ozmap_network as network
from reconciler.sandbox.faults import Faults, json_response
from reconciler.sandbox.ozmap_query import parse_fields
from reconciler.sandbox.ozmap_store import DEFAULT_API_KEY, OzmapStore
from reconciler.sandbox.ozmap_values import ApiError, Record, format_ms

__all__ = ["DEFAULT_API_KEY", "FAULTS_KEY", "STORE_KEY", "OzmapStore", "create_app"]

API: Final = "/api/v2"
DEFAULT_LIMIT: Final = 25
STORE_KEY: Final = web.AppKey("store", OzmapStore)
FAULTS_KEY: Final = web.AppKey("faults", Faults)
_SLASH: Final = "{_slash:/?}"
_LOGIN_PATHS: Final = frozenset({f"{API}/users/login", f"{API}/users/login/"})
_PAGING_PARAMS: Final = frozenset({"page", "start", "limit"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(store: OzmapStore, *, faults: Faults | None = None) -> web.Application:
    """The sandbox server for ``store``; ``faults`` (None: a fresh :class:`Faults`) is installed on it."""
    app = web.Application(client_max_size=256 * 1024 * 1024)
    faults = faults if faults is not None else Faults()
    api, control = _Api(store), _Control(store)
    faults.install(app)
    app.middlewares.append(api.middleware)
    app[STORE_KEY] = store
    app[FAULTS_KEY] = faults
    router = app.router
    router.add_post(f"{API}/users/login{_SLASH}", api.login)
    router.add_get(f"{API}/authenticated{_SLASH}", api.authenticated)
    router.add_get(f"{API}/ftth-viability/radius{_SLASH}", api.viability)
    router.add_get(f"{API}/properties/client/{{code}}{_SLASH}", api.by_client_code)
    router.add_post(f"{API}/cables/{{drop_id}}/fibers/disconnect{_SLASH}", api.disconnect)
    router.add_post(f"{API}/{{collection}}/batch-update{_SLASH}", api.batch_update)
    router.add_get(f"{API}/{{collection}}{_SLASH}", api.list_rows)
    router.add_post(f"{API}/{{collection}}{_SLASH}", api.create)
    router.add_get(f"{API}/{{collection}}/{{record_id}}{_SLASH}", api.get_one)
    router.add_patch(f"{API}/{{collection}}/{{record_id}}{_SLASH}", api.patch)
    router.add_delete(f"{API}/{{collection}}/{{record_id}}{_SLASH}", api.delete)
    router.add_get("/_sandbox/store/{collection}", control.list_all)
    router.add_post("/_sandbox/store/{collection}", control.insert)
    router.add_get("/_sandbox/store/{collection}/{record_id}", control.get_one)
    router.add_patch("/_sandbox/store/{collection}/{record_id}", control.edit)
    router.add_delete("/_sandbox/store/{collection}/{record_id}", control.delete)
    router.add_get("/_sandbox/clock", control.clock)
    router.add_post("/_sandbox/clock", control.advance_clock)
    return app


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ApiError(400, "request body is not valid JSON") from None


def _authorization(request: web.Request) -> str | None:
    raw = request.headers.get("Authorization")
    if raw is None:
        return None
    raw = raw.strip()
    return raw[7:].strip() if raw[:7].lower() == "bearer " else raw


def _int_param(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None


def _position(request: web.Request) -> tuple[int, int]:
    """``(limit, start)``: ``start`` wins over the 1-based ``page``; ``limit`` <= 0 means everything."""
    limit = _int_param(request, "limit", DEFAULT_LIMIT)
    if "start" in request.query:
        start = _int_param(request, "start", 0)
    else:
        page = _int_param(request, "page", 1)
        if page < 1:
            raise ApiError(400, "page must be >= 1")
        start = (page - 1) * limit if limit > 0 else 0
    if start < 0:
        raise ApiError(400, "start must be >= 0")
    return limit, start


def _json_param(body: dict[str, Any], request: web.Request, name: str, *, text_ok: bool = False) -> Any:
    """``name`` from the body (wins) or the query string (JSON text; plain text when ``text_ok``)."""
    value = body.get(name) if name in body else request.query.get(name)
    if not isinstance(value, str) or value == "":
        return value or None
    try:
        return msgspec.json.decode(value)
    except msgspec.DecodeError:
        if text_ok:
            return value
        raise ApiError(400, f"{name} must be JSON") from None


def _fields(body: dict[str, Any], request: web.Request, name: str) -> list[str]:
    raw: list[Any] = [*request.query.getall(name, []), *request.query.getall(f"{name}[]", [])]
    if name in body:
        raw.append(body[name])
    return parse_fields(raw)


class _Api:
    """Handlers of the faithful ``/api/v2`` routes, and the auth/error middleware."""

    def __init__(self, store: OzmapStore) -> None:
        self.store = store

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Auth for ``/api/v2`` (login excepted) and ``{"message"}`` error bodies."""
        try:
            if request.path.startswith(API) and request.path not in _LOGIN_PATHS:
                self.user(request)
            return await handler(request)
        except ApiError as exc:
            return json_response({"message": exc.message}, status=exc.status)
        except web.HTTPException as exc:
            if exc.status >= 400 and request.path.startswith(API):
                return json_response({"message": exc.reason}, status=exc.status)
            raise

    def user(self, request: web.Request) -> Record:
        key = _authorization(request)
        user = None if not key else self.store.user_for_key(key)
        if user is None:
            raise ApiError(401, "Unauthorized: missing or invalid API key")
        return user

    async def login(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _json_body(request)
        except ApiError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("login"), str):
            raise ApiError(401, "Invalid credentials")
        key = self.store.login(body["login"], str(body.get("password")))
        if key is None:
            raise ApiError(401, "Invalid credentials")
        return json_response({"authorization": key, "user": self.store.user_for_key(key)})

    async def authenticated(self, request: web.Request) -> web.StreamResponse:
        return json_response({"authenticated": True, "user": self.user(request)})

    async def list_rows(self, request: web.Request) -> web.StreamResponse:
        collection = request.match_info["collection"]
        domain.check_collection(self.store, collection)
        body = await _json_body(request) or {}
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        flt = _json_param(body, request, "filter")
        sort = _json_param(body, request, "sort", text_ok=True)
        select, populate = _fields(body, request, "select"), _fields(body, request, "populate")
        limit, start = _position(request)
        ids = self.store.query(collection, flt, sort)
        page_ids = ids[start:] if limit <= 0 else ids[start : start + limit]
        table = self.store.table(collection)
        if select or populate:
            rows = [domain.render(self.store, collection, table[i], select, populate) for i in page_ids]
        else:
            rows = [table[i] for i in page_ids]
        end = start + len(rows)
        has_next = limit > 0 and end < len(ids)
        next_url = None
        if has_next:
            params = [(k, v) for k, v in request.query.items() if k not in _PAGING_PARAMS]
            params += [("limit", str(limit)), ("start", str(end))]
            next_url = f"{API}/{collection}?{urlencode(params)}"
        envelope = {
            "total": len(ids),
            "count": len(rows),
            "start": start,
            "limit": limit,
            "hasNextPage": has_next,
            "nextUrl": next_url,
            "rows": rows,
        }
        return json_response(envelope)

    async def get_one(self, request: web.Request) -> web.StreamResponse:
        collection, record_id = request.match_info["collection"], request.match_info["record_id"]
        domain.check_collection(self.store, collection)
        record = domain.live_or_404(self.store, collection, record_id)
        body = await _json_body(request) or {}
        body = body if isinstance(body, dict) else {}
        select, populate = _fields(body, request, "select"), _fields(body, request, "populate")
        return json_response(domain.render(self.store, collection, record, select, populate))

    async def create(self, request: web.Request) -> web.StreamResponse:
        collection = request.match_info["collection"]
        domain.check_collection(self.store, collection)
        record = domain.create(self.store, collection, await _json_body(request), self.user(request))
        return json_response({**record, "__v": 0}, status=201)

    async def patch(self, request: web.Request) -> web.StreamResponse:
        collection, record_id = request.match_info["collection"], request.match_info["record_id"]
        domain.patch(self.store, collection, record_id, await _json_body(request))
        return web.Response(status=204)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        domain.delete(self.store, request.match_info["collection"], request.match_info["record_id"])
        return web.Response(status=204)

    async def batch_update(self, request: web.Request) -> web.StreamResponse:
        domain.batch_update(self.store, request.match_info["collection"], await _json_body(request))
        return web.Response(status=204)

    async def by_client_code(self, request: web.Request) -> web.StreamResponse:
        return json_response(network.properties_by_client_code(self.store, request.match_info["code"]))

    async def disconnect(self, request: web.Request) -> web.StreamResponse:
        network.disconnect_drop(self.store, request.match_info["drop_id"])
        return web.Response(status=204)

    async def viability(self, request: web.Request) -> web.StreamResponse:
        def number(name: str, default: float | None = None) -> float:
            text = request.query.get(name)
            if text is None and default is not None:
                return default
            try:
                return float(text or "")
            except ValueError:
                raise ApiError(400, f"{name} must be a number") from None

        lat, lng = number("lat"), number("lng")
        radius = number("radius", self.store.default_radius)
        if not (-90 <= lat <= 90 and -180 <= lng <= 180) or radius <= 0:
            raise ApiError(400, "lat/lng out of range or radius not positive")
        return json_response(network.viability(self.store, lat, lng, radius))


class _Control:
    """Handlers of ``/_sandbox/store`` and ``/_sandbox/clock``: the test's hands inside "OZmap"."""

    def __init__(self, store: OzmapStore) -> None:
        self.store = store

    async def list_all(self, request: web.Request) -> web.StreamResponse:
        include = request.query.get("include_deleted", "").lower() in ("1", "true", "yes")
        return json_response(self.store.all(request.match_info["collection"], include_deleted=include))

    async def get_one(self, request: web.Request) -> web.StreamResponse:
        record = self.store.row(request.match_info["collection"], request.match_info["record_id"])
        if record is None:
            raise ApiError(404, "not found")
        return json_response(record)

    async def insert(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        collection = request.match_info["collection"]
        if isinstance(body, list) and all(isinstance(item, dict) for item in body):
            return json_response([self.store.insert(collection, item) for item in body], status=201)
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a record or a list of records")
        return json_response(self.store.insert(collection, body), status=201)

    async def edit(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "body must be an object")
        changes = {k: v for k, v in body.items() if k not in ("id", "_id")}
        collection, record_id = request.match_info["collection"], request.match_info["record_id"]
        return json_response(self.store.update(collection, record_id, changes))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        domain.delete(self.store, request.match_info["collection"], request.match_info["record_id"])
        return web.Response(status=204)

    async def clock(self, request: web.Request) -> web.StreamResponse:
        return json_response({"now": format_ms(self.store.now_ms())})

    async def advance_clock(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        seconds = body.get("advance_seconds", 0) if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ApiError(400, "advance_seconds must be a non-negative number")
        return json_response({"now": self.store.advance_clock(seconds)})
