"""The HTTP routes in-process: a real Daemon and server on a free port, workers not started, so every request's
effect on the queue can be read directly."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler import config as config_mod
from reconciler.daemon import server, settings, webhooks
from reconciler.daemon.runner import Daemon
from reconciler.daemon.scheduling import EntityKey
from reconciler.daemon.workqueue import CycleRequest
from reconciler.engine import Engine
from reconciler.errors import ReconcilerError
from tests.integration.conftest import Sandboxes

from .conftest import WEBHOOK_SECRET, daemon_config

pytestmark = pytest.mark.anyio

BOXES = EntityKey("ozmap-ixc", "boxes")


@pytest.fixture
async def served(sandboxes: Sandboxes) -> AsyncIterator[tuple[Daemon, str]]:
    async with serving(daemon_config(sandboxes)) as pair:
        yield pair


@contextlib.asynccontextmanager
async def serving(path: Path) -> AsyncIterator[tuple[Daemon, str]]:
    cfg = config_mod.load(path)
    async with Engine.open(cfg) as engine:
        daemon = Daemon(engine=engine, settings=settings.resolve(cfg))
        async with server.running(daemon, host="127.0.0.1", port=0) as url:
            yield daemon, url


async def call(
    url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url + path, data=body, headers=headers) as resp:
            raw = await resp.read()
            decoded = msgspec.json.decode(raw) if resp.content_type == "application/json" else raw.decode()
            return resp.status, decoded


def signed(body: bytes, *, secret: str = WEBHOOK_SECRET, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {
        webhooks.TIMESTAMP_HEADER: stamp,
        webhooks.SIGNATURE_HEADER: webhooks.sign(secret, stamp, body),
    }


async def test_probes(served: tuple[Daemon, str]) -> None:
    _daemon, url = served
    assert await call(url, "GET", "/healthz") == (200, {"status": "alive"})
    status, body = await call(url, "GET", "/readyz")
    assert status == 200
    assert body == {
        "ready": True,
        "stopping": False,
        "store": "ok",
        "entities": {
            "ozmap-ixc/boxes": {
                "status": "pending",
                "running": False,
                "consecutive_failures": 0,
                "failing": False,
                "error": "",
                "last_success": None,
            }
        },
    }
    status, text = await call(url, "GET", "/metrics")
    assert status == 200 and 'reconciler_queue_depth{entity="boxes",integration="ozmap-ixc"} 0.0' in str(text)


async def test_a_signed_webhook_queues_its_ids_once(served: tuple[Daemon, str]) -> None:
    daemon, url = served
    body = b'{"ids": ["a", "b", "a"]}'
    assert await call(url, "POST", "/webhooks/ozmap-ixc/boxes", body, signed(body)) == (
        202,
        {"queued": 2, "deduplicated": 0},
    )
    body = b'{"ids": ["b", "c"]}'
    bearer = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}
    assert await call(url, "POST", "/webhooks/ozmap-ixc/boxes", body, bearer) == (
        202,
        {"queued": 1, "deduplicated": 1},
    )
    assert daemon.statistics()["queue"] == {
        "depth": 3,
        "delayed": 0,
        "requests": 0,
        "added": 3,
        "deduplicated": 1,
        "retried": 0,
    }
    assert daemon.queue.take(BOXES, 10) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "message"),
    [
        ("/webhooks/ozmap-ixc/boxes", b'{"ids": ["a"]}', signed(b'{"ids": ["b"]}'), 401, "bad signature"),
        ("/webhooks/ozmap-ixc/boxes", b'{"ids": ["a"]}', signed(b'{"ids": ["a"]}', at=1e9), 401, "away"),
        ("/webhooks/ozmap-ixc/boxes", b'{"ids": ["a"]}', {}, 401, "missing"),
        ("/webhooks/ozmap-ixc/clients", b'{"ids": ["a"]}', signed(b'{"ids": ["a"]}'), 404, "no enabled"),
        ("/webhooks/ozmap-ixc/boxes", b'{"id": "a"}', signed(b'{"id": "a"}'), 400, "body must be"),
        ("/sync/ozmap-ixc/boxes", b"", {"Authorization": "Bearer wrong"}, 401, "bad bearer"),
    ],
)
async def test_bad_requests_queue_nothing(
    served: tuple[Daemon, str], path: str, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    daemon, url = served
    got_status, got = await call(url, "POST", path, body, headers)
    assert got_status == status and isinstance(got, dict) and message in got["error"]
    assert daemon.queue.statistics().added == 0 and not daemon.queue.requested(BOXES)
    assert await daemon_metric(url, "reconciler_webhook_requests_total") == 1


async def daemon_metric(url: str, name: str) -> float:
    _, text = await call(url, "GET", "/metrics")
    return sum(
        s.value for f in text_string_to_metric_families(str(text)) for s in f.samples if s.name == name
    )


async def test_on_demand_sync_requests_a_cycle(served: tuple[Daemon, str]) -> None:
    daemon, url = served
    bearer = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}
    assert await call(url, "POST", "/sync/ozmap-ixc/boxes", headers=bearer) == (
        202,
        {"requested": "incremental", "allow_mass_removal": False, "queued": True},
    )
    assert await call(url, "POST", "/sync/ozmap-ixc/boxes?full=1", headers=signed(b"")) == (
        202,
        {"requested": "full", "allow_mass_removal": False, "queued": True},
    )
    assert await call(url, "POST", "/sync/ozmap-ixc/boxes?full=1", headers=bearer) == (
        202,
        {"requested": "full", "allow_mass_removal": False, "queued": False},
    )
    assert daemon.queue.take_request(BOXES) == CycleRequest("full")


async def test_stopping_refuses_work_and_readiness(served: tuple[Daemon, str]) -> None:
    daemon, url = served
    daemon.stop()
    status, body = await call(url, "GET", "/readyz")
    assert status == 503 and isinstance(body, dict) and body["stopping"] is True
    body_bytes = b'{"ids": ["a"]}'
    assert await call(url, "POST", "/webhooks/ozmap-ixc/boxes", body_bytes, signed(body_bytes)) == (
        503,
        {"error": "shutting down"},
    )
    assert (await call(url, "GET", "/healthz"))[0] == 200


async def test_without_a_webhook_secret_the_routes_are_closed(sandboxes: Sandboxes) -> None:
    path = sandboxes.config().path  # no [daemon] section
    async with serving(path) as (_daemon, url):
        status, body = await call(url, "POST", "/sync/ozmap-ixc/boxes", headers={"Authorization": "Bearer x"})
    assert status == 403 and isinstance(body, dict) and "no webhook-secret" in body["error"]


async def test_the_source_systems_webhook_secret_is_accepted_too(sandboxes: Sandboxes) -> None:
    path = sandboxes.config().path
    (sandboxes.tmp / "secrets" / "ozmap.hook").write_text("ozmap-hook-secret")
    text = path.read_text().replace(
        "[systems.ozmap.http]", 'webhook-secret = { file = "secrets/ozmap.hook" }\n[systems.ozmap.http]'
    )
    path.write_text(text)
    async with serving(path) as (_daemon, url):
        body = b'{"ids": ["a"]}'
        status, _ = await call(
            url, "POST", "/webhooks/ozmap-ixc/boxes", body, signed(body, secret="ozmap-hook-secret")
        )
    assert status == 202


async def test_a_busy_port_is_a_clear_error(served: tuple[Daemon, str]) -> None:
    daemon, url = served
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ReconcilerError, match=f"cannot listen on 127.0.0.1:{port}"):
        async with server.running(daemon, host="127.0.0.1", port=port):
            pass
