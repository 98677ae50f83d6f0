"""The sandbox servers of a benchmark, always in a child process, and the driver's handle on them.

Two kinds of world:

* ``full`` — exactly what ``python -m reconciler sandbox --scale S`` serves (≈ S/10 service boxes, ≈ 0.9 S
  clients); the child *is* that command.
* ``network`` — the same seeded world generator and the same fake servers, but only the network collections and
  tables are loaded (projects, OLTs, slots, PONs, boxes, splitters; IXC projects, transmitters, boxes), no
  clients. This is the benchmark-side way to reach ~N *boxes*: a world of scale 10 N has ≈ 1.05 N OZmap boxes,
  and without its 9 N clients it is generated in ~9 s and ~0.55 GB per 100k boxes instead of not at all.
  The child is ``python -m benchmarks.sandbox --scale S --write-config FILE``.

Either child prints ``sandbox: serving`` once its config is written; :class:`Sandbox` waits for that line, reads
the config back (URLs, secrets, state path) and offers the control API the scenarios need (request log, faults,
clock, edits "like a user in the UI").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import aiohttp
import anyio
import msgspec
from aiohttp import web

from benchmarks.rss import peak_rss_mb

World = Literal["network", "full"]

READY = "sandbox: serving"
START_TIMEOUT = 1800.0


class Sandbox:
    """A running sandbox child process and the engine config it wrote."""

    def __init__(
        self, scale: int, workdir: Path, *, world: World = "network", cpus: frozenset[int] | None = None
    ) -> None:
        self.scale = scale
        self.world = world
        self.workdir = workdir
        self.config = workdir / "bench.toml"
        self.log_path = workdir / "sandbox.log"
        module = "benchmarks.sandbox" if world == "network" else "reconciler"
        cmd = [sys.executable, "-m", module]
        if world == "full":
            cmd += ["sandbox", "--systems", "ozmap,ixc"]
        cmd += ["--seed", "42", "--scale", str(scale), "--port-base", "0", "--write-config", str(self.config)]
        started = time.perf_counter()
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        if cpus:
            os.sched_setaffinity(self.proc.pid, cpus)
        deadline = time.monotonic() + START_TIMEOUT
        while READY not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"sandbox did not start; see {self.log_path}:\n{self.log_path.read_text()}"
                )
            time.sleep(0.1)
        self.startup_s = time.perf_counter() - started
        parsed = tomllib.loads(self.config.read_text())
        self.urls: dict[str, str] = {name: s["url"] for name, s in parsed["systems"].items()}
        self.secrets: dict[str, str] = {
            name: (self.config.parent / s["secret"]["file"]).read_text().strip()
            for name, s in parsed["systems"].items()
        }
        self.state = self.config.parent / parsed["state"]["path"]

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def rss_mb(self) -> float:
        """The sandbox process's current resident memory (MB), from /proc."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the sandbox process has used so far, from /proc."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def auth_headers(self, system: str) -> dict[str, str]:
        """The faithful API's auth header for ``system`` (what a bare client sends)."""
        if system == "ixc":
            return {"Authorization": "Basic " + base64.b64encode(self.secrets["ixc"].encode()).decode()}
        return {"Authorization": self.secrets[system]}

    def config_with(self, name: str, http: dict[str, dict[str, object]]) -> Path:
        """A copy of the engine config with HTTP settings per system, e.g. ``{"ixc": {"concurrency": 32}}``."""
        out: list[str] = []
        for line in self.config.read_text().splitlines():
            out.append(line)
            system = line.strip("[]").split(".")[-1] if line.startswith("[systems.") else ""
            if http.get(system):
                pairs = ", ".join(f"{key} = {value}" for key, value in http[system].items())
                out.append(f"http = {{ {pairs} }}")
        path = self.workdir / name
        path.write_text("\n".join(out) + "\n")
        return path

    # -- control API ------------------------------------------------------------------------------------
    async def control(self, system: str, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, f"{self.urls[system]}/_sandbox/{path}", json=body) as resp,
        ):
            resp.raise_for_status()
            return None if resp.status == 204 else msgspec.json.decode(await resp.read())

    async def clear_logs(self) -> None:
        for system in self.urls:
            await self.control(system, "DELETE", "requests")

    async def request_log(self, system: str) -> list[dict[str, Any]]:
        """Every logged request of ``system`` (the log keeps the latest 200 000)."""
        out: list[dict[str, Any]] = []
        since = 0
        async with aiohttp.ClientSession() as http:
            while True:
                url = f"{self.urls[system]}/_sandbox/requests?since={since}&limit=50000"
                async with http.get(url) as resp:
                    page = msgspec.json.decode(await resp.read())
                if not page:
                    return out
                out.extend(page)
                since = page[-1]["seq"]

    async def edit(
        self, system: str, collection: str, ids: Sequence[str], body_of: Any, concurrency: int = 16
    ) -> None:
        """PATCH records through the control API, like a field team editing in the UI."""
        limiter = anyio.CapacityLimiter(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def one(n: int, record_id: str) -> None:
                async with limiter:
                    url = f"{self.urls[system]}/_sandbox/store/{collection}/{record_id}"
                    async with http.patch(url, json=body_of(n, record_id)) as resp:
                        resp.raise_for_status()
                        await resp.read()

            async with anyio.create_task_group() as group:
                for n, record_id in enumerate(ids):
                    group.start_soon(one, n, record_id)


# ------------------------------------------------------------------------------------ the child process
def _serve(scale: int, config: Path) -> int:
    from reconciler.sandbox import generate_ixc, generate_ozmap, ixc, ozmap
    from reconciler.sandbox.generate import World as SandboxWorld
    from reconciler.sandbox.runner import OZMAP_USER, Sandboxes, SandboxSystem, credentials, settle_heap

    started = time.perf_counter()
    world = SandboxWorld(seed=42, scale=scale)
    creds = credentials(42)
    oz_store = ozmap.OzmapStore(api_keys={creds.ozmap_key: OZMAP_USER})
    ixc_store = ixc.IxcStore(tokens={creds.ixc_token: "pt-BR"})
    gc.disable()
    for name in generate_ozmap.COLLECTIONS:
        oz_store.load(name, world.ozmap_rows(name))
    for name in generate_ixc.TABLES:
        ixc_store.load(name, world.ixc_rows(name))
    oz_store.build_query_indexes()  # what the cycles query, built before the first of them
    gc.enable()
    settle_heap()
    generated = time.perf_counter() - started
    oz_app, ixc_app = ozmap.create_app(oz_store), ixc.create_app(ixc_store)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            systems: dict[str, SandboxSystem] = {}
            for name, app, store, faults_key, secret in (
                ("ozmap", oz_app, oz_store, ozmap.FAULTS_KEY, creds.ozmap_key),
                ("ixc", ixc_app, ixc_store, ixc.FAULTS_KEY, creds.ixc_token),
            ):
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                stack.push_async_callback(runner.cleanup)
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                port = runner.addresses[0][1]
                systems[name] = SandboxSystem(
                    name, f"http://127.0.0.1:{port}", secret, store, app[faults_key], world
                )
            sandboxes = Sandboxes(world, systems, creds)
            sandboxes.write_config(config)
            peak = peak_rss_mb()
            boxes = len(oz_store.all("boxes"))
            print(
                f"sandbox: network-only world seed=42 scale={scale}: {boxes} OZmap boxes, no clients; "
                f"generated in {generated:.1f} s, peak RSS {peak:.0f} MB",
                flush=True,
            )
            print(f"{READY}; SIGTERM stops", flush=True)
            await stop.wait()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--port-base", type=int, default=0, help="only 0 (free ports) is supported")
    parser.add_argument("--write-config", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.seed != 42 or args.port_base != 0:
        parser.error("the benchmark sandbox serves seed 42 on free ports only")
    return _serve(args.scale, args.write_config)


if __name__ == "__main__":
    raise SystemExit(main())
