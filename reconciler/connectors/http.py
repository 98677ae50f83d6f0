"""Shared HTTP plumbing for every connector: session factory, retries, rate limit, error mapping.

One :class:`Transport` per connector owns the *policy* of talking to one system: a concurrency gate
(``anyio.Semaphore``), a token-bucket rate limiter, the retry loop and the mapping of every aiohttp/asyncio failure
and HTTP status into :mod:`reconciler.errors`. Connectors hand it a ``decode`` callback that turns a 2xx answer
into a value (or raises a mapped error), so a malformed body is retried exactly like a 503.

Retry rules (the type decides, never the message):

- Only :class:`~reconciler.errors.Transient` errors are retried, at most ``HttpSettings.retries`` times, after a
  full-jitter exponential backoff ``uniform(0, min(backoff_max, backoff * 2**attempt))``; a server's
  ``Retry-After`` (429 or 503; seconds or an HTTP date) replaces the backoff, capped by ``backoff_max``.
- A *non-idempotent* request (a create) is retried only when the server surely did not act on it: the connection
  could not be opened (:class:`ConnectFailed`) or the server refused with 429. After a timeout, a reset, a 5xx or
  a malformed answer it raises, so the engine can resolve the half-done create by natural key.

Error messages read ``"METHOD /path → status: <body excerpt>"``: never headers, never the query string, and any
occurrence of a credential is blanked (:meth:`Transport.scrub`).
"""

from __future__ import annotations

import collections
import email.utils
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

import aiohttp
import anyio
import msgspec
import yarl

from reconciler import errors
from reconciler.config import HttpSettings

T = TypeVar("T")

__all__ = [
    "ConnectFailed",
    "Response",
    "RetryPolicy",
    "ServiceUnavailable",
    "TokenBucket",
    "Transport",
    "excerpt_text",
    "make_session",
    "parse_retry_after",
]


class ConnectFailed(errors.TransientRemoteError):
    """The TCP/TLS connection could not be opened: the request never reached the server (safe to resend)."""


class ServiceUnavailable(errors.TransientRemoteError):
    """HTTP 503; ``retry_after`` is the server's hint in seconds (None when absent)."""

    def __init__(self, system: str, message: str, *, retry_after: float | None, status: int = 503) -> None:
        super().__init__(system, message, status=status)
        self.retry_after = retry_after


def make_session(http: HttpSettings, *, limit: int) -> aiohttp.ClientSession:
    """A session for one system: ``limit`` pooled connections, TLS verification per settings, no cookie jar.

    Call it inside the running event loop; the caller owns (and closes) the session.
    """
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ssl=http.verify_tls)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=http.timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
    )


class RetryPolicy(msgspec.Struct, frozen=True):
    """How many times and how long to wait; built from :class:`HttpSettings`."""

    retries: int = 4
    backoff: float = 0.5
    backoff_max: float = 30.0

    @classmethod
    def from_settings(cls, http: HttpSettings) -> RetryPolicy:
        return cls(retries=http.retries, backoff=http.backoff, backoff_max=http.backoff_max)

    def should_retry(self, exc: BaseException, attempt: int, *, idempotent: bool) -> bool:
        """``attempt`` counts failures so far (0 after the first one)."""
        if attempt >= self.retries or not errors.is_transient(exc):
            return False
        return idempotent or isinstance(exc, ConnectFailed | errors.RateLimited)

    def delay(self, exc: BaseException, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before the next attempt: the server's hint if any, else full jitter."""
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, int | float):
            return max(0.0, min(float(hint), self.backoff_max))
        return rng.uniform(0.0, min(self.backoff_max, self.backoff * (2.0**attempt)))


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts up to ``burst``; ``rate`` 0 = unlimited.

    Each caller reserves a token (the balance may go negative) and sleeps off its own deficit, so waiters are
    served in arrival order without a lock.
    """

    def __init__(
        self, rate: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self._rate = rate
        self._capacity = max(1.0, burst if burst is not None else rate)
        self._tokens = self._capacity
        self._clock = clock
        self._stamp = clock()

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it (0 = now)."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await anyio.sleep(wait)


class Response(NamedTuple):
    """A fully read answer."""

    status: int
    body: bytes
    headers: Mapping[str, str]


_TAG = re.compile(rb"<[^>]*>")


def excerpt_text(body: bytes | str) -> str:
    """A capped one-line excerpt of a body; HTML tags are stripped so an error page reads as its text."""
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    if raw.lstrip()[:1] == b"<":
        raw = _TAG.sub(b" ", raw)
    return errors.excerpt(raw)


def parse_retry_after(
    value: str | None, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date relative to ``now``; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


class Transport:
    """Talks to one system: ``base_url`` + path, fixed ``headers`` (auth), policy from ``settings``.

    ``secrets`` are strings that must never appear in an error message (the key, its encoded header form).
    ``rng`` drives the jitter (None = a fresh ``random.Random``; pass a seeded one in tests).
    """

    def __init__(
        self,
        *,
        system: str,
        session: aiohttp.ClientSession,
        base_url: str,
        settings: HttpSettings,
        headers: Mapping[str, str],
        secrets: Sequence[str] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self._base_path = yarl.URL(self.base_url).path.rstrip("/")
        self.settings = settings
        self.policy = RetryPolicy.from_settings(settings)
        self._session = session
        self._headers = dict(headers)
        self._secrets = tuple(s for s in secrets if s)
        self._rng = rng or random.Random()
        self._gate = anyio.Semaphore(settings.concurrency)
        self._bucket = TokenBucket(settings.rate_limit)
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._counters: collections.Counter[str] = collections.Counter()

    def statistics(self) -> dict[str, int]:
        """``requests`` sent, ``retries`` made, ``errors.<kind>`` per failed attempt."""
        return dict(self._counters)

    def scrub(self, text: str) -> str:
        """``text`` with every credential blanked out."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def excerpt(self, body: bytes | str) -> str:
        """A capped excerpt of a remote body, blanked of credentials *before* it is cut (a cut secret would leak)."""
        if not body:
            return ""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return excerpt_text(self.scrub(text))

    async def request(
        self,
        method: str,
        path: str,
        *,
        decode: Callable[[Response], T],
        params: Mapping[str, str] | None = None,
        json: object = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> T:
        """Send ``method path`` (retrying per policy) and return ``decode(response)`` of a 2xx answer.

        ``json`` (when not None) is encoded with msgspec as the body. Statuses ≥ 300 are mapped to errors before
        ``decode`` runs; ``decode`` may raise mapped errors itself (malformed body → Transient).
        """
        data = None if json is None else msgspec.json.encode(json)
        sent_headers = dict(self._headers)
        if data is not None:
            sent_headers["Content-Type"] = "application/json"
        if headers:
            sent_headers.update(headers)
        attempt = 0
        while True:
            try:
                response = await self._send(method, path, params, data, sent_headers)
                if response.status >= 300:
                    raise self._status_error(method, path, response)
                return decode(response)
            except errors.RemoteError as exc:
                self._counters["errors." + _kind(exc)] += 1
                if not self.policy.should_retry(exc, attempt, idempotent=idempotent):
                    raise
                delay = self.policy.delay(exc, attempt, self._rng)
            attempt += 1
            self._counters["retries"] += 1
            await anyio.sleep(delay)

    def error(
        self, cls: type[errors.RemoteError], method: str, path: str, what: str, body: bytes | str = b""
    ) -> errors.RemoteError:
        """A mapped error ``cls`` whose message is ``"METHOD /path → what: <excerpt>"`` (scrubbed)."""
        text = self.excerpt(body)
        message = self.scrub(f"{method} {self._path(path)} → {what}" + (f": {text}" if text else ""))
        return cls(self.system, message)

    def _path(self, path: str) -> str:
        return self._base_path + path

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        data: bytes | None,
        headers: dict[str, str],
    ) -> Response:
        await self._bucket.acquire()
        async with self._gate:
            self._counters["requests"] += 1
            try:
                async with self._session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as resp:
                    body = await resp.read()
                    return Response(resp.status, body, resp.headers)
            except (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError) as exc:
                raise self.error(
                    errors.TerminalRemoteError, method, path, f"TLS failure ({type(exc).__name__})"
                ) from exc
            except aiohttp.ConnectionTimeoutError as exc:
                raise self.error(ConnectFailed, method, path, "connect timeout") from exc
            except aiohttp.ClientConnectorError as exc:
                reason = exc.os_error.strerror or type(exc.os_error).__name__
                raise self.error(ConnectFailed, method, path, f"cannot connect ({reason})") from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                raise self.error(errors.TransientRemoteError, method, path, "connection reset") from exc
            except TimeoutError as exc:  # aiohttp.ServerTimeoutError and asyncio.TimeoutError both land here
                what = f"timeout after {self.settings.timeout:g}s"
                raise self.error(errors.TransientRemoteError, method, path, what) from exc
            except aiohttp.ClientPayloadError as exc:
                raise self.error(errors.TransientRemoteError, method, path, "truncated body") from exc
            except aiohttp.ClientResponseError as exc:
                raise self.error(errors.TransientRemoteError, method, path, "unreadable answer") from exc
            except aiohttp.ClientError as exc:
                raise self.error(errors.TransientRemoteError, method, path, type(exc).__name__) from exc

    def _status_error(self, method: str, path: str, response: Response) -> errors.RemoteError:
        status = response.status
        text = self.excerpt(response.body)
        message = self.scrub(f"{method} {self._path(path)} → {status}" + (f": {text}" if text else ""))
        err: errors.RemoteError
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            err = errors.RateLimited(self.system, message, retry_after=retry_after)
        elif status == 503:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            err = ServiceUnavailable(self.system, message, retry_after=retry_after)
        elif status >= 500:
            err = errors.TransientRemoteError(self.system, message, status=status)
        elif status in (401, 403):
            err = errors.AuthError(self.system, message, status=status)
        elif status == 404:
            err = errors.NotFound(self.system, message, status=status)
        else:  # other 4xx, and 3xx: we never follow redirects with credentials attached
            err = errors.TerminalRemoteError(self.system, message, status=status)
        return err


def _kind(exc: errors.RemoteError) -> str:
    """Counter name of a failed attempt."""
    if isinstance(exc, errors.RateLimited):
        return "rate_limited"
    if isinstance(exc, ConnectFailed):
        return "connect"
    if isinstance(exc, errors.AuthError):
        return "auth"
    if isinstance(exc, errors.NotFound):
        return "not_found"
    if isinstance(exc, errors.TransientRemoteError):
        return "transient"
    return "terminal"
