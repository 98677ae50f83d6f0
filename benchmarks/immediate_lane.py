"""Immediate-lane latency of ``cosbe-vetro``: a COS BE object change → its PATCH reaching Vetro, at a steady rate,
with full syncs of the same entity running back to back the whole time.

Usage::

    .venv/bin/python -m benchmarks.immediate_lane                    # 100 changes/s for 20 s, 5000 objects
    .venv/bin/python -m benchmarks.immediate_lane --rate 100 --seconds 20 --objects 5000 --json out.json

What runs where: this process serves the Vetro FiberMap and COS BE sandboxes on loopback (seeded service
locations, each with a COS object linked by External Identification) and drives the changes; ``reconciler run``
is a real subprocess with its JSON log. COS BE delivers each change as a signed webhook (``X-COS-Signature``) to
the daemon's ``/webhooks/cosbe-vetro/objects``; the daemon's immediate lane runs targeted cycles (read the
object from COS, compare, ``PATCH features`` to Vetro). Meanwhile a full sync of that same entity is requested
every second, so one is nearly always in flight (the daemon merges pending requests).

Each change writes a unique value (``Install Notes = bench-<n>``, mapped onto the Vetro attribute of the same
name) on a different object, so the PATCH that carries it identifies it. Latency = the time the Vetro sandbox
received that PATCH (its request log) minus the time the change was made in COS BE (same host, same clock).

The sandboxes' rate limits (Vetro 10 req/s, COS 20 req/s: assumptions V8/C9 of the API notes) are switched off:
at 100 changes/s the lane needs about 100 ``Object/Get`` per second from COS BE alone, so with the assumed limits
the systems' own API budgets — not the reconciler — would set the pace. The figures measure the reconciler.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from reconciler.sandbox import cosbe_seed, vetro_seed
from reconciler.sandbox.cosbe import DEFAULT_API_KEY, DEFAULT_ENVIRONMENT, CosbeStore
from reconciler.sandbox.cosbe import FAULTS_KEY as COS_FAULTS
from reconciler.sandbox.cosbe import create_app as create_cos_app
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.vetro import DEFAULT_TOKEN, VetroStore
from reconciler.sandbox.vetro import FAULTS_KEY as VETRO_FAULTS
from reconciler.sandbox.vetro import create_app as create_vetro_app

ROUTE = "/webhooks/cosbe-vetro/objects"
WEBHOOK_SECRET = "bench-whsec-3c9f0b7e2a61"
MARK = "bench-"
SEED = 7


def world(size: int) -> tuple[VetroStore, CosbeStore, list[str]]:
    """``size`` seeded service locations, each with a COS object linked by External Identification."""
    vetro = VetroStore(seed=SEED)
    vetro.knobs.rate_limit = 0
    vetro.load("plans", vetro_seed.PLANS)
    vetro.load("layers", vetro_seed.LAYERS)
    features = list(vetro_seed.service_locations(SEED, size))
    vetro.load("features", features)
    cos = CosbeStore(seed=SEED)
    cos.knobs.rate_limit = 0
    cos.knobs.order_noise = False
    groups = cosbe_seed.groups(SEED)
    cos.load("groups", groups)
    cos.load("metadata", cosbe_seed.definitions(SEED))
    group = groups[0]
    objects = []
    for n, feature in enumerate(features):
        props = feature["properties"]
        objects.append(
            {
                "id": f"00000000-0000-4000-9000-{n:012d}",
                "objectNumber": 10_001 + n,
                "objectType": "SingleFamilyHome",
                "status": "InDeployment",
                "group": group,
                "address": {"street": props["Street Address"], "city": "Montpelier", "state": "VT",
                            "postalCode": "05602", "country": "US"},
                "externalIdentification": feature["x-vetro"]["vetro_id"],
                "externalServiceLocationId": props["ID"],
                "metadata": [{"name": "Install Notes", "value": "initial"}],
                "updatedAt": "2025-05-01T10:00:00Z",
            }
        )  # fmt: skip
    cos.load("objects", objects)
    return vetro, cos, [o["id"] for o in objects]


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def config_text(vetro_url: str, cos_url: str) -> str:
    return f"""
[state]
path = "state.db"

[systems.vetro]
kind = "vetro"
url = "{vetro_url}/v3"
secret = {{ file = "vetro.token" }}

[systems.cosbe]
kind = "cosbe"
url = "{cos_url}"
secret = {{ file = "cosbe.key" }}
webhook-secret = {{ file = "cosbe.webhook" }}

[integrations.cosbe-vetro]
[integrations.cosbe-vetro.options]
vetro_map_url = "{vetro_url}/ui/feature/{{1}}?plan_id={{0}}"
metadata_attributes = {{ "Install Notes" = "Install Notes" }}

[daemon]
listen = "127.0.0.1:0"
shutdown-timeout = 5
"""


class Daemon:
    """``reconciler run`` as a subprocess: its URL (from the ``listening`` log line) and its metrics."""

    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "--config", str(config), "--log-format", "json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "RECONCILER_LOG_LEVEL": "INFO"},
        )
        self.url = ""
        self.cycles: list[tuple[str, float]] = []
        """(mode, seconds) of every cycle the daemon logged."""

    async def wait_listening(self) -> None:
        assert self.process.stderr is not None
        stream = self.process.stderr

        def next_line() -> bytes:
            return stream.readline()

        while not self.url:
            line = await anyio.to_thread.run_sync(next_line)
            if not line:
                raise RuntimeError(f"the daemon exited with {self.process.wait()}")
            event = msgspec.json.decode(line)
            if event.get("event") == "listening":
                self.url = event["url"]
        threading.Thread(
            target=_drain, args=(stream, self.cycles), daemon=True
        ).start()  # never block the pipe

    async def sample(self, http: aiohttp.ClientSession, name: str, **labels: str) -> float:
        async with http.get(self.url + "/metrics") as resp:
            text = await resp.text()
        wanted = set(labels.items())
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and wanted <= set(s.labels.items())
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def wait_until(check: Any, what: str, deadline: float = 600.0) -> None:
    """Poll ``check`` (another process's state) until it holds; TimeoutError naming ``what`` after ``deadline``."""
    with anyio.move_on_after(deadline):
        while not await check():  # noqa: ASYNC110 - polling another process, nothing to wait on here
            await anyio.sleep(0.1)
        return
    raise TimeoutError(f"timed out after {deadline:g} s waiting for {what}")


def _drain(stream: Any, cycles: list[tuple[str, float]]) -> None:
    for line in iter(stream.readline, b""):
        with contextlib.suppress(msgspec.DecodeError):
            event = msgspec.json.decode(line)
            if isinstance(event, dict) and event.get("event") == "cycle" and event.get("entity") == "objects":
                cycles.append((str(event.get("mode")), float(event.get("seconds", 0.0))))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    total = int(args.rate * args.seconds)
    size = max(args.objects, total)
    vetro, cos, ids = world(size)
    vetro_app, cos_app = create_vetro_app(vetro), create_cos_app(cos)
    vetro_log: Faults = vetro_app[VETRO_FAULTS]
    cos_app[COS_FAULTS].log_bodies = False
    with tempfile.TemporaryDirectory(prefix="bench-immediate-") as tmp:
        folder = Path(tmp)
        (folder / "vetro.token").write_text(DEFAULT_TOKEN)
        (folder / "cosbe.key").write_text(f"{DEFAULT_ENVIRONMENT}:{DEFAULT_API_KEY}")
        (folder / "cosbe.webhook").write_text(WEBHOOK_SECRET)
        async with serving(vetro_app) as vetro_url, serving(cos_app) as cos_url:
            config = folder / "bench.toml"
            config.write_text(config_text(vetro_url, cos_url))
            daemon = Daemon(config)
            try:
                return await _drive(args, daemon, vetro_log, cos, ids, total)
            finally:
                daemon.stop()


async def _drive(
    args: argparse.Namespace, daemon: Daemon, vetro_log: Faults, cos: CosbeStore, ids: list[str], total: int
) -> dict[str, Any]:
    await daemon.wait_listening()
    async with aiohttp.ClientSession() as http:

        async def first_cycles() -> bool:
            return (
                await daemon.sample(http, "reconciler_last_success_timestamp_seconds", entity="objects") > 0
            )

        started = time.perf_counter()
        await wait_until(first_cycles, "the first full cycles")
        print(f"first full sync of {len(ids)} objects: {time.perf_counter() - started:.1f} s", flush=True)
        cos.webhooks.url = daemon.url + ROUTE
        cos.webhooks.secret = WEBHOOK_SECRET
        full_before = await daemon.sample(http, "reconciler_cycles_total", entity="objects", mode="full")
        targeted_before = await daemon.sample(
            http, "reconciler_cycles_total", entity="objects", mode="targeted"
        )
        bearer = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}
        changed_at: dict[str, float] = {}

        async def full_syncs(stop: anyio.Event) -> None:
            while not stop.is_set() and args.full_syncs:
                async with http.post(daemon.url + "/sync/cosbe-vetro/objects?full=1", headers=bearer) as resp:
                    resp.raise_for_status()
                with anyio.move_on_after(1.0):
                    await stop.wait()

        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(full_syncs, stop)
            await anyio.sleep(0.5)  # let the first full sync start
            t0 = time.perf_counter()
            for n in range(total):
                delay = t0 + n / args.rate - time.perf_counter()
                if delay > 0:
                    await anyio.sleep(delay)
                value = f"{MARK}{n}"
                changed_at[value] = time.time()
                cos.user_edit(ids[n], {"metadata": [{"name": "Install Notes", "value": value}]})
            drive_seconds = time.perf_counter() - t0

            arrived: dict[str, float] = {}

            def collect() -> None:
                for entry in vetro_log.log:
                    if entry.method != "PATCH" or not isinstance(entry.body, dict):
                        continue
                    for feature in entry.body.get("features", []):
                        note = (feature.get("properties") or {}).get("Install Notes")
                        if isinstance(note, str) and note in changed_at and note not in arrived:
                            arrived[note] = entry.at

            async def all_arrived() -> bool:
                collect()
                return len(arrived) >= total

            with contextlib.suppress(TimeoutError):  # what never arrived is reported as missing
                await wait_until(all_arrived, "every change to reach Vetro", deadline=60)
            stop.set()
        full_cycles = await daemon.sample(http, "reconciler_cycles_total", entity="objects", mode="full")
        targeted = await daemon.sample(http, "reconciler_cycles_total", entity="objects", mode="targeted")
    latencies = [(arrived[v] - changed_at[v]) * 1000 for v in arrived]
    delivered = {d.event_id: d.at for d in cos.webhooks.deliveries if d.outcome == "delivered"}
    sent = {e["id"]: e for e in cos.webhooks.events}
    webhook_ms = [
        (at - changed_at[note]) * 1000
        for event_id, at in delivered.items()
        if (note := _note_of(cos, sent.get(event_id))) in changed_at
    ]
    targeted_ms = [s * 1000 for mode, s in daemon.cycles if mode == "targeted"]
    result = {
        "rate": args.rate,
        "seconds": args.seconds,
        "objects": len(ids),
        "changes": total,
        "drive_seconds": round(drive_seconds, 2),
        "arrived": len(arrived),
        "missing": total - len(arrived),
        "full_syncs_completed": int(full_cycles - full_before),
        "targeted_cycles": int(targeted - targeted_before),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p90": round(percentile(latencies, 0.90), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
            "mean": round(statistics.fmean(latencies), 1),
        }
        if latencies
        else {},
        "webhook_delivery_ms": _summary(webhook_ms),
        "targeted_cycle_ms": _summary(targeted_ms),
    }
    return result


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {name: round(percentile(values, share), 1) for name, share in (("p50", 0.5), ("p99", 0.99))}


def _note_of(cos: CosbeStore, event: dict[str, Any] | None) -> str:
    """The benchmark value an ObjectUpdated event stands for (its object's number names the change)."""
    if event is None or event.get("type") != "ObjectUpdated":
        return ""
    return f"{MARK}{int(event['data']['objectNumber']) - 10_001}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.immediate_lane", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rate", type=float, default=100.0, help="COS BE changes per second (default 100)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long changes are made (default 20)")
    parser.add_argument("--objects", type=int, default=5000, help="linked objects (≥ changes; default 5000)")
    parser.add_argument(
        "--no-full-syncs",
        dest="full_syncs",
        action="store_false",
        help="measure without full syncs alongside",
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = anyio.run(measure, args)
    latency = result["latency_ms"]
    print(
        f"immediate lane, cosbe-vetro: {result['changes']} COS BE changes at {args.rate:g}/s over "
        f"{result['drive_seconds']} s ({result['objects']} objects), {result['full_syncs_completed']} full syncs "
        f"of the same entity completed meanwhile, {result['targeted_cycles']} targeted cycles"
    )
    if latency:
        print(
            f"change → Vetro PATCH latency: p50 {latency['p50']} ms, p90 {latency['p90']} ms, "
            f"p99 {latency['p99']} ms, max {latency['max']} ms; {result['missing']} missing"
        )
        print(
            f"  of which change → webhook delivered: {result['webhook_delivery_ms']} ms; "
            f"one targeted cycle in the daemon: {result['targeted_cycle_ms']} ms"
        )
    if args.json is not None:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2))
    return 0 if result["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
