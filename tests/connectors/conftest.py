"""Fixtures for connector tests: sandbox servers on 127.0.0.1 (aiohttp's own TestServer) and HTTP sessions.

Tests observe behaviour through the sandbox's request log (``Faults.log``) and store, never by patching ours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import BaseTestServer

from reconciler.config import HttpSettings, Secret, SystemConfig
from reconciler.connectors.http import make_session
from reconciler.sandbox.faults import FaultRule, Faults, LoggedRequest

#: Fast retry settings: tests assert attempts through the request log, never wall-clock durations.
FAST = HttpSettings(timeout=5.0, retries=3, backoff=0.001, backoff_max=0.01)


def system(kind: str, url: str, secret: str, **http: Any) -> SystemConfig:
    """A resolved system config for ``kind`` at ``url``."""
    return SystemConfig(
        name=kind, kind=kind, url=url, secret=Secret(secret), http=msgspec.structs.replace(FAST, **http)
    )


def api_requests(faults: Faults, method: str | None = None, path: str = "") -> list[LoggedRequest]:
    """The logged API requests (``method``, path containing ``path``)."""
    return [e for e in faults.log if (method is None or e.method == method) and path in e.path]


def add_fault(faults: Faults, kind: str, **options: Any) -> FaultRule:
    return faults.add(FaultRule(kind=kind, **options))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session(FAST, limit=8) as client_session:
        yield client_session


def url_of(server: BaseTestServer) -> str:
    return str(server.make_url("")).rstrip("/")
