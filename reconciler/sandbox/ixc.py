"""IXC Provedor sandbox: an in-memory fake of IXC's webservice v1 as an aiohttp application.

Faithful API (the contract is /work/shared/apis/ixc.md; section 6 lists what is reproduced)::

    GET|POST  /webservice/v1/<table>[/]          with ``ixcsoft: listar``: list (qtype/query/oper, grid_param,
                                                 sortname/sortorder, page/rp) → text/x-json envelope
    GET       /webservice/v1/<table>[/]          without the header: 404
    POST      /webservice/v1/<table>[/]          without the header: insert
    PUT       /webservice/v1/<table>/<id>[/]     replace the whole record
    DELETE    /webservice/v1/<table>/<id>[/]     remove (refused while referenced)

HTTP Basic auth with ``base64("<user_id>:<hash>")`` (401 when wrong or missing, 400 for another scheme); JSON or
form-encoded bodies; business refusals are ``{"type": "error", …}`` with HTTP 200; processing failures the HTML
error page (HTTP 500 for list requests, 200 for writes).

Control API (no auth), besides the ``/_sandbox/faults``, ``/_sandbox/requests`` and ``/_sandbox/stats`` routes of
:mod:`reconciler.sandbox.faults`::

    GET    /_sandbox/knobs                 current data knobs (:class:`IxcKnobs`)
    POST   /_sandbox/knobs                 change some: {"rp_overflow": 3, "total_as_number": true, …}
    GET    /_sandbox/store/<table>         every row
    GET    /_sandbox/store/<table>/<id>    one row (404 when absent)
    POST   /_sandbox/store/<table>         insert/replace one raw row (object) or bulk-load rows (array)
    PATCH  /_sandbox/store/<table>/<id>    change some fields as a user would in IXC's UI (bumps ultima_atualizacao)
    DELETE /_sandbox/store/<table>/<id>    remove a row, no reference check
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from typing import Any

import msgspec
from aiohttp import web

from reconciler.sandbox import ixc_query
from reconciler.sandbox.faults import Faults, json_response
from reconciler.sandbox.ixc_messages import HTML_ERROR_PAGE, message
from reconciler.sandbox.ixc_rows import Table
from reconciler.sandbox.ixc_store import (
    DEFAULT_TOKEN,
    IxcKnobs,
    IxcStore,
    Refused,
    UnknownTable,
    Unprocessable,
)
from reconciler.sandbox.ixc_tables import REF

__all__ = [
    "DEFAULT_TOKEN",
    "FAULTS_KEY",
    "HTML_ERROR_PAGE",
    "JSON_CONTENT_TYPE",
    "STORE_KEY",
    "IxcKnobs",
    "IxcStore",
    "basic_auth",
    "create_app",
]

STORE_KEY = web.AppKey("ixc_store", IxcStore)
FAULTS_KEY = web.AppKey("ixc_faults", Faults)
JSON_CONTENT_TYPE = "text/x-json; charset=utf-8"
MAX_BODY = 512 * 1024 * 1024


def create_app(store: IxcStore, *, faults: Faults | None = None) -> web.Application:
    """The sandbox application serving ``store``; ``faults`` defaults to one with IXC's HTML error page."""
    if faults is None:
        faults = Faults(html_page=HTML_ERROR_PAGE, html_status=200)
    app = web.Application(client_max_size=MAX_BODY)
    faults.install(app)
    app[STORE_KEY] = store
    app[FAULTS_KEY] = faults
    app.router.add_route("*", "/webservice/v1/{path:.*}", _webservice)
    app.router.add_get("/_sandbox/knobs", _get_knobs)
    app.router.add_post("/_sandbox/knobs", _post_knobs)
    app.router.add_get("/_sandbox/store/{table}", _store_list)
    app.router.add_post("/_sandbox/store/{table}", _store_insert)
    app.router.add_get("/_sandbox/store/{table}/{id}", _store_get)
    app.router.add_patch("/_sandbox/store/{table}/{id}", _store_patch)
    app.router.add_delete("/_sandbox/store/{table}/{id}", _store_delete)
    return app


def basic_auth(token: str) -> str:
    """The ``Authorization`` header value for a raw ``"<user_id>:<hash>"`` token."""
    return "Basic " + base64.b64encode(token.encode()).decode()


# -- faithful API ----------------------------------------------------------------------------------------------


class _BadBody(Exception):
    pass


async def _webservice(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    parts = request.match_info["path"].split("/")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not parts[0] or len(parts) > 2:
        return _plain(404, "404 Not Found")
    table_name, record_id = parts[0], (parts[1] if len(parts) == 2 else "")
    language = _authenticate(request, store)
    if isinstance(language, web.Response):
        return language
    if store.knobs.ip_blocked:
        return _error(language, "ip_blocked")
    listing = request.headers.get("ixcsoft", "").strip().lower() == "listar"
    method = request.method
    if method == "GET" and not listing:
        return _plain(404, "404 Not Found")
    if table_name not in store.tables:
        return _error(language, "unavailable", table=table_name)
    table = store.table(table_name)
    is_list = listing and method in ("GET", "POST")
    try:
        body = await _body(request)
    except _BadBody:
        return _html(request, 500 if is_list else 200)
    if is_list:
        return _list(request, store, table, body)
    try:
        if method == "POST":
            new_id = store.insert(table_name, _strings(body))
            return _json({"type": "success", "message": message(language, "inserted"), "id": new_id})
        if method == "PUT" and record_id:
            store.update(table_name, record_id, _strings(body))
            return _json({"type": "success", "message": message(language, "updated"), "id": record_id})
        if method == "DELETE" and record_id:
            store.delete(table_name, record_id)
            return _json({"type": "success", "message": message(language, "removed")})
        if method in ("PUT", "DELETE"):
            raise Unprocessable(f"{method} without an id")
    except Refused as refusal:
        return _error(language, refusal.key, **refusal.fields)
    except Unprocessable:
        return _html(request, 200)
    return _plain(405, "405 Method Not Allowed")


def _list(request: web.Request, store: IxcStore, table: Table, params: dict[str, Any]) -> web.Response:
    knobs = store.knobs
    try:
        query = ixc_query.parse(table, params, in_single_value_error=knobs.in_single_value_error)
        ids = ixc_query.select(table, query, be_matches_zero_dates=knobs.be_matches_zero_dates)
    except ixc_query.ListError:
        return _html(request, 500)
    start = (query.page - 1) * query.rp
    chunk = ids[start : start + query.rp + max(0, knobs.rp_overflow)]
    total = len(ids)
    payload: dict[str, Any] = {
        "page": str(query.page),
        "total": total if knobs.total_as_number else str(total),
    }
    if chunk:
        rows, names = table.rows, table.names
        if knobs.numeric_ids:
            payload["registros"] = [_numeric(table, rows[rid]) for rid in chunk]
        else:
            payload["registros"] = [dict(zip(names, rows[rid], strict=True)) for rid in chunk]
    return _json(payload)


def _numeric(table: Table, row: tuple[str, ...]) -> dict[str, Any]:
    record: dict[str, Any] = table.as_dict(row)
    for column in table.columns:
        if column.name == "id" or column.kind == REF:
            value = record[column.name]
            if value.isdigit() and value.isascii():
                record[column.name] = int(value)
    return record


def _authenticate(request: web.Request, store: IxcStore) -> str | web.Response:
    header = request.headers.get("Authorization", "").strip()
    if not header:
        return _unauthorized()
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return _plain(400, "400 Bad Request")
    try:
        token = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return _unauthorized()
    language = store.tokens.get(token)
    return _unauthorized() if language is None else language


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    if request.content_type == "application/x-www-form-urlencoded":
        return _form(raw)
    try:
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        if b"=" in raw and not raw.lstrip().startswith((b"{", b"[")):
            return _form(raw)
        raise _BadBody from None
    if not isinstance(decoded, dict):
        raise _BadBody
    return decoded


def _form(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadBody from None
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def _strings(body: dict[str, Any]) -> dict[str, str]:
    """Posted field values as strings (JSON numbers and nulls happen in hand-written clients)."""
    out: dict[str, str] = {}
    for key, value in body.items():
        if isinstance(value, str):
            out[key] = value
        elif value is None:
            out[key] = ""
        elif isinstance(value, bool):
            out[key] = "S" if value else "N"
        elif isinstance(value, int | float):
            out[key] = str(value)
        else:
            out[key] = msgspec.json.encode(value).decode()
    return out


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(payload), status=status, headers={"Content-Type": JSON_CONTENT_TYPE}
    )


def _error(language: str, key: str, **fields: str) -> web.Response:
    return _json({"type": "error", "message": message(language, key, **fields)})


def _html(request: web.Request, status: int) -> web.Response:
    return web.Response(text=request.app[FAULTS_KEY].html_page, status=status, content_type="text/html")


def _plain(status: int, text: str) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/plain")


def _unauthorized() -> web.Response:
    return web.Response(
        text="401 Unauthorized",
        status=401,
        content_type="text/plain",
        headers={"WWW-Authenticate": 'Basic realm="IXCSoft"'},
    )


# -- control API -----------------------------------------------------------------------------------------------


def _control_error(status: int, text: str) -> web.Response:
    return json_response({"message": text}, status=status)


async def _get_knobs(request: web.Request) -> web.Response:
    return json_response(request.app[STORE_KEY].knobs)


async def _post_knobs(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    try:
        changes = msgspec.json.decode(await request.read() or b"{}", type=dict[str, Any])
        store.knobs = msgspec.convert({**msgspec.to_builtins(store.knobs), **changes}, IxcKnobs)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _control_error(400, f"bad knobs: {exc}")
    return json_response(store.knobs)


async def _store_list(request: web.Request) -> web.Response:
    try:
        return json_response(request.app[STORE_KEY].all(request.match_info["table"]))
    except UnknownTable as exc:
        return _control_error(404, f"unknown table {exc}")


async def _store_get(request: web.Request) -> web.Response:
    try:
        row = request.app[STORE_KEY].get(request.match_info["table"], request.match_info["id"])
    except UnknownTable as exc:
        return _control_error(404, f"unknown table {exc}")
    return _control_error(404, "no such row") if row is None else json_response(row)


async def _store_insert(request: web.Request) -> web.Response:
    store, table = request.app[STORE_KEY], request.match_info["table"]
    try:
        body = msgspec.json.decode(await request.read())
        if isinstance(body, list) and all(isinstance(item, dict) for item in body):
            store.load(table, body)
            return json_response({"loaded": len(body)}, status=201)
        if isinstance(body, dict):
            return json_response(store.raw_insert(table, body), status=201)
    except msgspec.DecodeError as exc:
        return _control_error(400, f"bad JSON: {exc}")
    except UnknownTable as exc:
        return _control_error(404, f"unknown table {exc}")
    return _control_error(400, "expected a row object or an array of rows")


async def _store_patch(request: web.Request) -> web.Response:
    store, table = request.app[STORE_KEY], request.match_info["table"]
    try:
        changes = msgspec.json.decode(await request.read(), type=dict[str, Any])
        row = store.patch(table, request.match_info["id"], changes)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _control_error(400, f"bad JSON: {exc}")
    except UnknownTable as exc:
        return _control_error(404, f"unknown table {exc}")
    except KeyError as exc:
        return _control_error(400, f"unknown column(s) {exc}")
    return _control_error(404, "no such row") if row is None else json_response(row)


async def _store_delete(request: web.Request) -> web.Response:
    try:
        removed = request.app[STORE_KEY].raw_delete(request.match_info["table"], request.match_info["id"])
    except UnknownTable as exc:
        return _control_error(404, f"unknown table {exc}")
    return web.Response(status=204 if removed else 404)
