"""Answer tampering shared by every sandbox: list streams that lie about their size, and canned answers.

:mod:`reconciler.sandbox.faults` breaks the *transport* (errors, resets, timeouts...). The rules here break the
*content* of otherwise faithful answers, the way a buggy server or a proxy does, to prove that the engine never
infers anything from a partial snapshot:

    GET    /_sandbox/answers           list the rules (with how often each acted)
    POST   /_sandbox/answers           add one: {"mode", "route"?, "method"?, "listing"?, "after"?, "count"?,
                                                 "rate"?, "extra"?, "status"?, "body"?}
    DELETE /_sandbox/answers           remove every rule

Modes (``route`` is a regular expression searched in the request path, like fault rules):

    short    a list answer announces ``extra`` (default 1) more rows than the collection holds (total inflated)
    drop     a list answer keeps its total but loses its last ``extra`` (default 1) rows
    fail     a list answer is replaced by a 503 gateway page (``after`` = 1: an error mid stream, after page 1)
    empty    a list answer says the collection is empty: total 0, no rows (a consistent, empty snapshot)
    canned   the request is not served: it gets ``status`` (default 200) and the JSON ``body`` instead (e.g. IXC's
             HTTP-200 business refusal ``{"type": "error", "message": "..."}``)

``after``: matching answers left untouched before the rule acts (page 1 is fetched alone, so ``after = 1`` hits
the later pages). ``count``: act at most this many times. ``rate``: probability per matching answer (seeded).
``listing``: true = only list requests (a GET, or IXC's ``ixcsoft: listar``), false = only the others (writes),
absent = both. A list answer is a JSON object with a total (``total``/``totalCount``) and a row list (``rows``,
``registros``, ``items`` or ``data``); other answers are never rewritten by the list modes.

Like every sandbox module this imports only aiohttp, msgspec, the stdlib and ``reconciler.sandbox``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from aiohttp import web

__all__ = ["ANSWERS_KEY", "MODES", "AnswerRule", "Answers", "install"]

MODES: Final = ("short", "drop", "fail", "empty", "canned")
CONTROL_PREFIX: Final = "/_sandbox/"
_TOTAL_KEYS: Final = ("total", "totalCount")
_ROW_KEYS: Final = ("rows", "registros", "items", "data")
_GATEWAY_PAGE: Final = (
    "<html><head><title>503 Service Unavailable</title></head>"
    "<body><center><h1>503 Service Unavailable</h1></center><hr><center>nginx</center></body></html>"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AnswerRule(msgspec.Struct, forbid_unknown_fields=True):
    """One rule as posted to ``/_sandbox/answers``."""

    mode: str
    route: str = ".*"
    method: str | None = None
    listing: bool | None = None
    after: int = 0
    count: int | None = None
    rate: float = 1.0
    extra: int = 1
    status: int = 200
    body: Any = None
    id: int = 0
    seen: int = 0
    acted: int = 0


class Answers:
    """The answer rules of one sandbox server."""

    def __init__(self, *, seed: int = 0) -> None:
        self.rules: list[AnswerRule] = []
        self._next_id = 1
        self._random = random.Random(seed)

    def add(self, rule: AnswerRule) -> AnswerRule:
        """Validate and register a rule; returns it with its id."""
        if rule.mode not in MODES:
            raise ValueError(f"unknown mode {rule.mode!r}; expected one of {', '.join(MODES)}")
        if not 0.0 <= rule.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if rule.after < 0 or rule.extra < 0 or (rule.count is not None and rule.count < 0):
            raise ValueError("after, extra and count must not be negative")
        re.compile(rule.route)
        rule.id = self._next_id
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def _matching(self, request: web.Request, *, canned: bool) -> list[AnswerRule]:
        listing = _is_listing(request)
        out = []
        for rule in self.rules:
            if (rule.mode == "canned") != canned:
                continue
            if rule.count is not None and rule.acted >= rule.count:
                continue
            if rule.method and rule.method.upper() != request.method:
                continue
            if rule.listing is not None and rule.listing != listing:
                continue
            if not re.search(rule.route, request.path):
                continue
            out.append(rule)
        return out

    def _fires(self, rule: AnswerRule) -> bool:
        rule.seen += 1
        if rule.seen <= rule.after:
            return False
        if rule.rate < 1.0 and self._random.random() >= rule.rate:
            return False
        rule.acted += 1
        return True

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """aiohttp middleware: canned answers before the handler, list rewriting after it."""
        if request.path.startswith(CONTROL_PREFIX) or not self.rules:
            return await handler(request)
        for rule in self._matching(request, canned=True):
            if self._fires(rule):
                return web.Response(
                    status=rule.status, body=msgspec.json.encode(rule.body), content_type="application/json"
                )
        rules = self._matching(request, canned=False)
        response = await handler(request)
        if not rules or not isinstance(response, web.Response) or response.status >= 300:
            return response
        envelope = _envelope(response)
        if envelope is None:
            return response
        for rule in rules:
            if self._fires(rule):
                return _rewrite(rule, response, *envelope)
        return response

    def install(self, app: web.Application) -> None:
        """Add the middleware and the ``/_sandbox/answers`` routes to ``app``."""
        app.middlewares.append(self.middleware)
        app[ANSWERS_KEY] = self
        app.router.add_get("/_sandbox/answers", self._get)
        app.router.add_post("/_sandbox/answers", self._post)
        app.router.add_delete("/_sandbox/answers", self._delete)

    async def _get(self, request: web.Request) -> web.Response:
        return _json(self.rules)

    async def _post(self, request: web.Request) -> web.Response:
        try:
            rule = self.add(msgspec.json.decode(await request.read(), type=AnswerRule))
        except (msgspec.DecodeError, ValueError, re.error) as exc:
            return _json({"message": f"bad answer rule: {exc}"}, status=400)
        return _json(rule, status=201)

    async def _delete(self, request: web.Request) -> web.Response:
        self.rules.clear()
        return web.Response(status=204)


ANSWERS_KEY: Final = web.AppKey("answers", Answers)


def install(app: web.Application) -> Answers:
    """Give ``app`` a fresh :class:`Answers` (middleware + control routes); returns it."""
    answers = Answers()
    answers.install(app)
    return answers


def _is_listing(request: web.Request) -> bool:
    return request.method == "GET" or request.headers.get("ixcsoft", "").strip().lower() == "listar"


def _envelope(response: web.Response) -> tuple[dict[str, Any], str, str] | None:
    """(decoded body, total key, rows key) of a list answer; None for any other answer."""
    body = response.body
    if not isinstance(body, bytes) or not body.lstrip().startswith(b"{"):
        return None
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(decoded, dict):
        return None
    total_key = next((k for k in _TOTAL_KEYS if k in decoded), None)
    if total_key is None:
        return None
    rows_key = next((k for k in _ROW_KEYS if isinstance(decoded.get(k), list)), None)
    if rows_key is None:
        if "registros" in decoded or "type" in decoded:
            return None
        rows_key = "registros"  # IXC leaves registros out of an empty page
        decoded[rows_key] = []
    return decoded, total_key, rows_key


def _rewrite(
    rule: AnswerRule, response: web.Response, decoded: dict[str, Any], total_key: str, rows_key: str
) -> web.Response:
    if rule.mode == "fail":
        return web.Response(status=503, text=_GATEWAY_PAGE, content_type="text/html")
    total = decoded[total_key]
    as_text = isinstance(total, str)
    number = int(total)
    if rule.mode == "short":
        number += rule.extra
    elif rule.mode == "drop":
        rows = decoded[rows_key]
        decoded[rows_key] = rows[: max(0, len(rows) - rule.extra)]
    elif rule.mode == "empty":
        number = 0
        decoded[rows_key] = []
    decoded[total_key] = str(number) if as_text else number
    for key in ("count", "hasNextPage"):
        if key in decoded and rule.mode == "empty":
            decoded[key] = 0 if key == "count" else False
    return web.Response(
        status=response.status,
        body=msgspec.json.encode(decoded),
        content_type=response.content_type,
        charset=response.charset,
    )


def _json(payload: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(payload), status=status, content_type="application/json")
