"""Outbound webhook deliveries of the COS BE sandbox (cosbe.md 4.5, C6, C7).

Each event is POSTed as JSON to the registered URL with the headers ``X-COS-Event-Id: <id>`` and
``X-COS-Signature: sha256=<hex HMAC-SHA256 of the raw body with the shared secret>`` [assume, C7] (no signature
header when no secret is set). Delivery runs in a background task, never blocking the API answer that caused
it: first attempt at once, then retries after the ``retry_delays`` schedule (default 1 s, 5 s, 30 s, 2 min,
10 min, then dropped) on a non-2xx answer, an error or the ``timeout`` (default 10 s). At-least-once, no ordering
guarantee. Knobs reproduce the receiver's hard cases (cosbe.md 6.6): ``duplicate`` (every event sent twice),
``drop_next`` (the next n events are silently lost), ``reorder`` (every other event waits ``reorder_window``
seconds, so pairs arrive swapped) and ``delay`` (every first attempt waits, a slow sender).

Every attempt is recorded as a :class:`Delivery` (``GET /_sandbox/webhook/deliveries``).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import itertools
import time
from typing import Any

import aiohttp
import msgspec

DEFAULT_RETRY_DELAYS = (1.0, 5.0, 30.0, 120.0, 600.0)
LOG_MAX = 10_000


class Delivery(msgspec.Struct):
    """One delivery attempt. ``outcome``: delivered, retrying, gave-up, dropped (knob) or skipped (no loop)."""

    seq: int
    event_id: str
    type: str
    url: str
    attempt: int
    outcome: str
    status: int | None = None
    error: str = ""
    at: float = 0.0


def signature(secret: str, body: bytes) -> str:
    """The ``X-COS-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Notifier:
    """Sends webhook events for one COS environment; ``url`` None = webhooks off (events are still logged)."""

    def __init__(
        self,
        url: str | None = None,
        secret: str | None = None,
        *,
        retry_delays: tuple[float, ...] | list[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.secret = secret
        self.retry_delays = list(retry_delays)
        self.timeout = timeout
        self.duplicate = False
        self.drop_next = 0
        self.reorder = False
        self.reorder_window = 0.2
        self.delay = 0.0
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=LOG_MAX)
        self.deliveries: collections.deque[Delivery] = collections.deque(maxlen=LOG_MAX)
        self._seq = itertools.count(1)
        self._reordered = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def settings(self) -> dict[str, Any]:
        """The current configuration (the secret shown only as set or not)."""
        return {
            "url": self.url,
            "secret_set": self.secret is not None,
            "retry_delays": self.retry_delays,
            "timeout": self.timeout,
            "duplicate": self.duplicate,
            "drop_next": self.drop_next,
            "reorder": self.reorder,
            "delay": self.delay,
            "pending": len(self._tasks),
        }

    def emit(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for delivery (returns at once)."""
        self.events.append(event)
        url = self.url
        if url is None:
            return
        if self.drop_next > 0:
            self.drop_next -= 1
            self._record(event, url, 0, "dropped")
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._record(event, url, 0, "skipped", error="no running event loop")
            return
        body = msgspec.json.encode(event)
        wait = self.delay
        if self.reorder:
            self._reordered += 1
            wait += self.reorder_window if self._reordered % 2 == 1 else 0.0
        for _ in range(2 if self.duplicate else 1):
            task = loop.create_task(self._deliver(url, self.secret, body, event, wait))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until no delivery is in flight (tests; bound it with ``asyncio.timeout``)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel pending deliveries and close the HTTP session."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _record(self, event: dict[str, Any], url: str, attempt: int, outcome: str, **extra: Any) -> None:
        self.deliveries.append(
            Delivery(
                seq=next(self._seq),
                event_id=str(event.get("id", "")),
                type=str(event.get("type", "")),
                url=url,
                attempt=attempt,
                outcome=outcome,
                at=time.time(),
                **extra,
            )
        )

    async def _deliver(
        self, url: str, secret: str | None, body: bytes, event: dict[str, Any], wait: float
    ) -> None:
        if wait > 0:
            await asyncio.sleep(wait)
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        headers = {"Content-Type": "application/json", "X-COS-Event-Id": str(event.get("id", ""))}
        if secret is not None:
            headers["X-COS-Signature"] = signature(secret, body)
        delays = list(self.retry_delays)
        for attempt in range(1, len(delays) + 2):
            status: int | None = None
            error = ""
            try:
                async with self._session.post(
                    url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
                ) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = type(exc).__name__
            if status is not None and 200 <= status < 300:
                self._record(event, url, attempt, "delivered", status=status)
                return
            last = attempt > len(delays)
            self._record(event, url, attempt, "gave-up" if last else "retrying", status=status, error=error)
            if last:
                return
            await asyncio.sleep(delays[attempt - 1])
