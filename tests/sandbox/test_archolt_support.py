"""Shared helpers of the ArchOLT sandbox tests (no tests here): a small world, a settable clock, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
from aiohttp import test_utils

from reconciler.sandbox.archolt import ArcholtStore, bearer, create_app
from reconciler.sandbox.faults import Faults

RW = "rw-token-5f1c"
RO = "ro-token-77aa"
OZ_OLT_1 = "64b7f0c2a1e5d93b7c0e4a11"
OZ_OLT_2 = "64b7f0c2a1e5d93b7c0e4b22"
BOX_12 = "64c1a9e0b2f4d8a1c3e5f701"
BOX_20N = "64c1a9e0b2f4d8a1c3e5f702"
BOX_20S = "64c1a9e0b2f4d8a1c3e5f703"
BOX_30 = "64c1a9e0b2f4d8a1c3e5f704"
BOX_OLD = "64c1a9e0b2f4d8a1c3e5f705"
NOW = datetime(2025, 6, 3, 15, 0, 0, tzinfo=UTC)  # 12:00 in São Paulo


class Clock:
    """A settable clock (aware UTC); ``tick`` moves it forward."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


class Ticker:
    """A settable monotonic clock for the rate limiter."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def cto(
    cto_id: int, box: str, name: str, ozmap_olt_id: str | None, project: str, **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": cto_id,
        "ozmap_box_id": box,
        "name": name,
        "ozmap_olt_id": ozmap_olt_id,
        "project": project,
        "latitude": -23.55052,
        "longitude": -46.63331,
        "ports_total": 16,
        "ports_free": 5,
        "active": True,
        "synced_at": "2025-06-01T09:00:00-03:00",
        "updated_at": "2025-06-01T09:00:00-03:00",
    }
    row.update(extra)
    return row


def seeded_store(clock: Clock | None = None, ticker: Ticker | None = None) -> ArcholtStore:
    """Three OLTs (1 requires a CTO, 3 is unmapped), five CTOs (two named CTO-20, one inactive, one without OLT),
    four ONUs (5812 with CTO, 5813 without, 5814 deprovisioned, 5815 on the unmapped OLT). No rate limit."""
    store = ArcholtStore(
        tokens={RW: "read_write", RO: "read"}, clock=clock or Clock(), monotonic=ticker or Ticker()
    )
    store.knobs.rate_limit = 0
    store.load(
        "olts",
        [
            {"id": 1, "name": "OLT-CENTRO-01", "ip": "10.20.0.2", "vendor": "Huawei", "model": "MA5800-X7",
             "pon_type": "GPON", "ozmap_olt_id": OZ_OLT_1, "require_cto_on_activation": True,
             "pon_ports": [{"slot": 1, "pon": 1, "max_onus": 128}, {"slot": 1, "pon": 2, "max_onus": 2}],
             "created_at": "2024-11-04T09:00:00-03:00", "updated_at": "2025-05-30T16:41:09-03:00"},
            {"id": 2, "name": "OLT-NORTE-02", "ip": "10.20.0.5", "vendor": "ZTE", "model": "C650",
             "pon_type": "XGS-PON", "ozmap_olt_id": OZ_OLT_2, "require_cto_on_activation": False,
             "pon_ports": [{"slot": 1, "pon": 1, "max_onus": 128}],
             "created_at": "2024-11-04T09:00:00-03:00", "updated_at": "2025-05-29T08:00:00-03:00"},
            {"id": 3, "name": "OLT-SUL-03", "ip": "10.20.0.9", "vendor": "Fiberhome", "model": "AN5516-06",
             "pon_type": "GPON", "ozmap_olt_id": None, "require_cto_on_activation": False,
             "pon_ports": [{"slot": 1, "pon": 1, "max_onus": 128}],
             "created_at": "2024-11-04T09:00:00-03:00", "updated_at": "2025-05-29T08:00:00-03:00"},
        ],
    )  # fmt: skip
    store.load(
        "ctos",
        [
            cto(7, BOX_12, "CTO-12", OZ_OLT_1, "Centro"),
            cto(8, BOX_20N, "CTO-20", OZ_OLT_2, "Norte"),
            cto(9, BOX_20S, "CTO-20", OZ_OLT_2, "Sul", updated_at="2025-06-02T09:00:00-03:00"),
            cto(10, BOX_30, "CTO-30", None, "Centro"),
            cto(11, BOX_OLD, "CTO-OLD", OZ_OLT_1, "Centro", active=False),
        ],
    )
    link7 = {"id": 7, "name": "CTO-12", "ozmap_box_id": BOX_12}
    link8 = {"id": 8, "name": "CTO-20", "ozmap_box_id": BOX_20N}
    store.load(
        "onus",
        [
            {"id": 5812, "serial": "ZTEGC8A1B2C3", "olt_id": 1, "slot": 1, "pon": 1, "onu_index": 0,
             "model": "F670L", "vlan": 100, "description": "Rua das Flores, 120", "login": "joao.silva",
             "status": "provisioned", "cto": link7, "oper_state": "online", "rx_power_dbm": -19.42,
             "tx_power_dbm": 2.31, "provisioned_at": "2025-06-03T10:05:12-03:00",
             "updated_at": "2025-06-03T10:07:40-03:00"},
            {"id": 5813, "serial": "HWTC00000001", "olt_id": 2, "slot": 1, "pon": 1, "onu_index": 0,
             "model": "EG8145V5", "vlan": 200, "description": "Av. Brasil, 5", "login": None,
             "status": "provisioned", "cto": None, "provisioned_at": "2025-06-02T10:00:00-03:00",
             "updated_at": "2025-06-02T10:00:00-03:00"},
            {"id": 5814, "serial": "HWTC00000002", "olt_id": 2, "slot": 1, "pon": 1, "onu_index": 1,
             "model": "EG8145V5", "vlan": 200, "description": "Rua Velha, 9", "login": "maria",
             "status": "deprovisioned", "cto": link8, "provisioned_at": "2025-05-01T10:00:00-03:00",
             "deprovisioned_at": "2025-05-29T10:00:00-03:00", "updated_at": "2025-05-29T10:00:00-03:00"},
            {"id": 5815, "serial": "FHTT0000AAAA", "olt_id": 3, "slot": 1, "pon": 1, "onu_index": 0,
             "model": "AN5506-04-FA", "vlan": 300, "description": "Sítio", "status": "provisioned",
             "provisioned_at": "2025-06-01T10:00:00-03:00", "updated_at": "2025-06-01T10:00:00-03:00"},
        ],
    )  # fmt: skip
    return store


@dataclass
class Reply:
    """An HTTP answer, read whole."""

    status: int
    content_type: str
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return msgspec.json.decode(self.text)

    @property
    def code(self) -> str:
        body = self.json()
        assert isinstance(body, dict) and "error" in body, self.text
        code: str = body["error"]["code"]
        return code

    @property
    def data(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.json()["data"]
        return rows


@dataclass
class Archolt:
    """A running sandbox plus a client session."""

    store: ArcholtStore
    faults: Faults
    server: test_utils.TestServer
    session: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        token: str | None = RW,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        wait: float = 30.0,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", bearer(token))
        async with self.session.request(
            method,
            self.url(path),
            json=json,
            data=data,
            params=params,
            headers=sent,
            timeout=aiohttp.ClientTimeout(total=wait),
        ) as resp:
            text = await resp.text()
            return Reply(resp.status, resp.content_type, dict(resp.headers), text)

    async def get(self, path: str, **params: Any) -> Reply:
        return await self.call("GET", f"/api/v1/{path}", params={k: str(v) for k, v in params.items()})

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        reply = await self.call(method, path, **kwargs)
        assert reply.status == status, reply.text
        return reply.json() if reply.text else None

    async def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url(f"/_sandbox/{path}"), json=body) as resp:
            raw = await resp.read()
            return resp.status, (msgspec.json.decode(raw) if raw else None)


@asynccontextmanager
async def running(
    store: ArcholtStore | None = None, *, faults: Faults | None = None
) -> AsyncIterator[Archolt]:
    """Serve ``store`` (default: :func:`seeded_store`) on 127.0.0.1 and open a client session."""
    store = store if store is not None else seeded_store()
    faults = faults if faults is not None else Faults(seed=1)
    server = test_utils.TestServer(create_app(store, faults=faults), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Archolt(store, faults, server, session)
    finally:
        await server.close()
