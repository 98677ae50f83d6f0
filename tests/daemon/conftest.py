"""Daemon fixtures: the integration sandboxes, a config with a ``[daemon]`` section, and ``reconciler run`` as a
real subprocess whose JSON log lines the test reads while its own event loop keeps serving the sandboxes.

Everything waits asynchronously (``anyio.open_process``, polling with generous deadlines); nothing asserts on
wall-clock speed.
"""

from __future__ import annotations

import base64
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import Any

import aiohttp
import anyio
import msgspec
from anyio.abc import Process
from prometheus_client.parser import text_string_to_metric_families

from reconciler.daemon import webhooks
from tests.integration.conftest import IXC_TOKEN, OZMAP_KEY, Sandboxes, sandboxes

__all__ = ["WEBHOOK_SECRET", "DaemonProcess", "daemon_config", "running_daemon", "sandboxes", "wait_for"]

WEBHOOK_SECRET = "whsec-" + "5f3a9b" * 6
SECRETS = (OZMAP_KEY, IXC_TOKEN, base64.b64encode(IXC_TOKEN.encode()).decode(), WEBHOOK_SECRET)
#: Seconds any single wait may take before the test fails (the daemon runs a Python start-up and cycles).
DEADLINE = 60.0


def daemon_config(sb: Sandboxes, *, incremental: str = "1h", daemon: str = "", **options: Any) -> Path:
    """The integration tests' config file plus a ``[daemon]`` section listening on a free loopback port."""
    path = sb.config(**options).path
    (sb.tmp / "secrets" / "webhook").write_text(WEBHOOK_SECRET)
    path.write_text(
        path.read_text()
        + f"""
[daemon]
listen = "127.0.0.1:0"
webhook-secret = {{ file = "secrets/webhook" }}
record-backoff = 1
{daemon}

[daemon.schedules."ozmap-ixc/boxes"]
incremental = "{incremental}"
full = "24h"
"""
    )
    return path


async def wait_for(
    check: Callable[[], Awaitable[Any]], what: str, *, deadline: float = DEADLINE, every: float = 0.1
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``deadline`` seconds."""
    with anyio.move_on_after(deadline):
        while True:
            value = await check()
            if value:
                return value
            await anyio.sleep(every)
    raise AssertionError(f"timed out after {deadline:g} s waiting for {what}")


@dataclass
class DaemonProcess:
    """A running ``reconciler run``: its process, base URL and the JSON log lines read so far."""

    process: Process
    url: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [msgspec.json.decode(line) for line in self.lines]

    async def request(
        self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, self.url + path, data=body, headers=headers) as resp:
                text = await resp.text()
                is_json = resp.content_type == "application/json"
                return resp.status, (msgspec.json.decode(text) if is_json else text)

    async def webhook(self, ids: list[str], *, entity: str = "ozmap-ixc/boxes") -> tuple[int, Any]:
        """A correctly signed webhook."""
        body = msgspec.json.encode({"ids": ids})
        stamp = str(int(time.time()))
        headers = {
            webhooks.TIMESTAMP_HEADER: stamp,
            webhooks.SIGNATURE_HEADER: webhooks.sign(WEBHOOK_SECRET, stamp, body),
            "Content-Type": "application/json",
        }
        return await self.request("POST", f"/webhooks/{entity}", body=body, headers=headers)

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics, parsed by prometheus_client: (name, labels) → value."""
        status, text = await self.request("GET", "/metrics")
        assert status == 200, text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    async def sample(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in (await self.metrics()).items() if n == name and wanted <= ls)

    async def wait_exit(self, deadline: float = DEADLINE) -> int:
        with anyio.fail_after(deadline):
            return await self.process.wait()

    def assert_clean_logs(self) -> None:
        """Every log line is JSON with the usual fields, and no secret appears anywhere."""
        for line in self.lines:
            event = msgspec.json.decode(line)
            assert {"time", "level", "logger", "message"} <= set(event), line
            for secret in SECRETS:
                assert secret not in line, f"secret leaked into the log: {line}"

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]


async def _read_lines(stream: Any, sink: list[str]) -> None:
    pending = b""
    async for chunk in stream:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        sink.extend(line.decode() for line in complete if line.strip())
    if pending.strip():
        sink.append(pending.decode())


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "reconciler", *args]


@contextlib.asynccontextmanager
async def running_daemon(config: Path, *extra: str) -> AsyncIterator[DaemonProcess]:
    """Start ``reconciler run`` and wait for its ``listening`` line; on exit, stop it (SIGTERM, then kill)."""
    process = await anyio.open_process(
        command("run", "--config", str(config), "--log-format", "json", *extra),
        stdin=DEVNULL,
        stdout=PIPE,
        stderr=PIPE,
    )
    async with process, anyio.create_task_group() as group:
        daemon = DaemonProcess(process)
        group.start_soon(_read_lines, process.stderr, daemon.lines)
        group.start_soon(_read_lines, process.stdout, daemon.lines)

        async def listening() -> str:
            if process.returncode is not None:
                raise AssertionError(f"daemon exited with {process.returncode}: {daemon.lines}")
            return next((e["url"] for e in daemon.events if e.get("event") == "listening"), "")

        try:
            daemon.url = await wait_for(listening, "the daemon to listen")
            yield daemon
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with anyio.move_on_after(DEADLINE):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
