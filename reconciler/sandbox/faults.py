"""Fault injection and request logging shared by every sandbox server.

Everything here lives under ``/_sandbox/``, clearly apart from the faithful API routes:

    GET    /_sandbox/faults            list active fault rules
    POST   /_sandbox/faults            add one: {"kind", "route"?, "method"?, "rate"?, "count"?, "seconds"?, "status"?}
    DELETE /_sandbox/faults            remove every rule
    DELETE /_sandbox/faults/{id}       remove one rule
    GET    /_sandbox/requests          the request log (?since=<seq>&limit=<n>)
    DELETE /_sandbox/requests          clear the request log
    GET    /_sandbox/stats             faults injected so far, by kind; requests served

Fault kinds (``rate`` = probability per matching request, default 1; ``count`` = stop after n injections):

    latency    sleep ``seconds`` then serve normally
    error      answer ``status`` (default 503) with the system's own gateway error page
    429        answer 429 with ``Retry-After: seconds`` (default 1)
    timeout    sleep ``seconds`` (default 60) before answering: the client's timeout fires first
    reset      abort the TCP connection (RST) without an answer
    malformed  answer 200 with truncated JSON
    html       answer the system's HTML error page (``status`` default: the system's usual one)
    lost       serve the request for real (a write happens), then abort the connection: the answer is lost

The sandbox imports nothing of the reconciler: it plays "another company's server".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import random
import re
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from reconciler.sandbox import answers

CONTROL_PREFIX = "/_sandbox/"
KINDS = ("latency", "error", "429", "timeout", "reset", "malformed", "html", "lost")
REQUEST_LOG_MAX = 200_000
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
}


class FaultRule(msgspec.Struct, forbid_unknown_fields=True):
    """One fault rule as posted to ``/_sandbox/faults``."""

    kind: str
    route: str = ".*"
    method: str | None = None
    rate: float = 1.0
    count: int | None = None
    seconds: float | None = None
    status: int | None = None
    id: int = 0
    injected: int = 0


class LoggedRequest(msgspec.Struct):
    """One request the sandbox received (the Authorization header is never logged)."""

    seq: int
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0
    fault: str = ""
    at: float = 0.0


class Faults:
    """Fault rules, the request log and counters of one sandbox server.

    ``html_page``/``html_status`` are the system's own HTML error page; ``error_page`` its gateway error page.
    ``seed`` makes the random draws repeatable.
    """

    def __init__(
        self,
        *,
        html_page: str = "<html><body><h1>Internal Server Error</h1></body></html>",
        html_status: int = 500,
        error_page: str = "<html><head><title>503 Service Unavailable</title></head>"
        "<body><center><h1>503 Service Unavailable</h1></center><hr><center>nginx</center></body></html>",
        seed: int = 0,
    ) -> None:
        self.html_page = html_page
        self.html_status = html_status
        self.error_page = error_page
        self.rules: list[FaultRule] = []
        self.log: collections.deque[LoggedRequest] = collections.deque(maxlen=REQUEST_LOG_MAX)
        self.log_bodies = True
        self.injected: collections.Counter[str] = collections.Counter()
        self.served = 0
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._random = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        """Validate and register a rule; returns it with its id."""
        if rule.kind not in KINDS:
            raise ValueError(f"unknown fault kind {rule.kind!r}; expected one of {', '.join(KINDS)}")
        if not 0.0 <= rule.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        re.compile(rule.route)
        rule.id = next(self._ids)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def _pick(self, request: web.Request) -> FaultRule | None:
        for rule in self.rules:
            if rule.count is not None and rule.injected >= rule.count:
                continue
            if rule.method and rule.method.upper() != request.method:
                continue
            if not re.search(rule.route, request.path):
                continue
            if rule.rate < 1.0 and self._random.random() >= rule.rate:
                continue
            rule.injected += 1
            self.injected[rule.kind] += 1
            return rule
        return None

    async def _log(self, request: web.Request) -> LoggedRequest:
        body: Any = None
        if self.log_bodies and request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = msgspec.json.decode(raw)
                except msgspec.DecodeError:
                    body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        entry = LoggedRequest(
            seq=next(self._seq),
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=headers,
            body=body,
            at=time.time(),
        )
        self.log.append(entry)
        return entry

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """aiohttp middleware: logs faithful-API requests and injects the configured faults."""
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        self.served += 1
        entry = await self._log(request)
        rule = self._pick(request)
        if rule is not None and rule.kind == "lost":
            entry.fault = rule.kind
            response = await handler(request)
            entry.status = response.status
            _abort(request)
            raise ConnectionResetError("sandbox: answer lost after serving the request")
        if rule is not None:
            entry.fault = rule.kind
            injected = await self._inject(rule, request)
            if injected is not None:
                entry.status = injected.status
                return injected
        response = await handler(request)
        entry.status = response.status
        return response

    async def _inject(self, rule: FaultRule, request: web.Request) -> web.StreamResponse | None:
        kind = rule.kind
        if kind == "latency":
            await asyncio.sleep(rule.seconds if rule.seconds is not None else 0.05)
            return None
        if kind == "error":
            status = rule.status or 503
            page = self.error_page.replace(
                "503 Service Unavailable", f"{status} {_REASONS.get(status, 'Error')}"
            )
            return web.Response(status=status, text=page, content_type="text/html")
        if kind == "429":
            retry_after = rule.seconds if rule.seconds is not None else 1.0
            return web.Response(
                status=429,
                text='{"message": "Too Many Requests"}',
                content_type="application/json",
                headers={"Retry-After": _retry_after_header(retry_after)},
            )
        if kind == "timeout":
            await asyncio.sleep(rule.seconds if rule.seconds is not None else 60.0)
            return web.Response(status=504, text=self.error_page, content_type="text/html")
        if kind == "reset":
            _abort(request)
            raise ConnectionResetError("sandbox: injected connection reset")
        if kind == "malformed":
            return web.Response(
                status=200, body=b'{"total": 3, "rows": [{"id": "', content_type="application/json"
            )
        # html
        return web.Response(
            status=rule.status or self.html_status, text=self.html_page, content_type="text/html"
        )

    def install(self, app: web.Application) -> None:
        """Add the middleware and the ``/_sandbox/`` fault/log routes to ``app``."""
        app.middlewares.append(self.middleware)
        app.router.add_get("/_sandbox/faults", self._get_faults)
        app.router.add_post("/_sandbox/faults", self._post_fault)
        app.router.add_delete("/_sandbox/faults", self._delete_faults)
        app.router.add_delete("/_sandbox/faults/{id}", self._delete_fault)
        app.router.add_get("/_sandbox/requests", self._get_requests)
        app.router.add_delete("/_sandbox/requests", self._delete_requests)
        app.router.add_get("/_sandbox/stats", self._get_stats)
        answers.install(app)  # content tampering (truncated list streams, canned answers): see answers.py

    async def _get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.rules)

    async def _post_fault(self, request: web.Request) -> web.Response:
        try:
            rule = msgspec.json.decode(await request.read(), type=FaultRule)
            rule = self.add(rule)
        except (msgspec.DecodeError, ValueError, re.error) as exc:
            return json_response({"message": f"bad fault rule: {exc}"}, status=400)
        return json_response(rule, status=201)

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self.clear()
        return web.Response(status=204)

    async def _delete_fault(self, request: web.Request) -> web.Response:
        wanted = request.match_info["id"]
        before = len(self.rules)
        self.rules = [r for r in self.rules if str(r.id) != wanted]
        return web.Response(status=204 if len(self.rules) < before else 404)

    async def _get_requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        limit = int(request.query.get("limit", "1000"))
        rows = [e for e in self.log if e.seq > since][:limit]
        return json_response(rows)

    async def _delete_requests(self, request: web.Request) -> web.Response:
        self.log.clear()
        return web.Response(status=204)

    async def _get_stats(self, request: web.Request) -> web.Response:
        return json_response({"served": self.served, "injected": dict(self.injected)})


def json_response(payload: Any, *, status: int = 200, content_type: str = "application/json") -> web.Response:
    """Encode ``payload`` with msgspec (fast for large pages)."""
    return web.Response(body=msgspec.json.encode(payload), status=status, content_type=content_type)


def _retry_after_header(seconds: float) -> str:
    whole = int(seconds)
    return str(whole if whole == seconds else max(1, round(seconds)))


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
