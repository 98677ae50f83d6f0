"""Per-key token buckets, the native rate limit several sandboxed APIs document (ArchOLT, Vetro, COS BE).

Each system's knobs give the rate (requests per second, 0 = no limit) and the burst at every call, so a test can
change them between requests. Time comes from the caller's clock, so a sandbox with a test-controlled clock
drains and refills its buckets on that clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBuckets:
    """One token bucket per key (an API token or key)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def clear(self) -> None:
        """Forget every bucket (they start full again)."""
        self._buckets.clear()

    def take(self, key: str, rate: float, burst: float, now: float | None = None) -> float:
        """Take one request from ``key``'s bucket: 0 when allowed, else the seconds until one is available."""
        if rate <= 0:
            return 0.0
        at = self._clock() if now is None else now
        capacity = max(1.0, float(burst))
        level, stamp = self._buckets.get(key, (capacity, at))
        level = min(capacity, level + max(0.0, at - stamp) * rate)
        if level >= 1.0:
            self._buckets[key] = (level - 1.0, at)
            return 0.0
        self._buckets[key] = (level, at)
        return (1.0 - level) / rate
