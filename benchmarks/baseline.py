"""The physical bound of a cycle's I/O path: its very requests, replayed bare, in their own process.

The driver takes the requests an engine cycle made from the sandboxes' request logs (``/_sandbox/requests``)
and hands them here in a JSON file, each tagged with a *phase* (for a cycle: 0 = every read before the first
write, 1 = the apply that the plan made possible; a phase starts when the previous one is done, as in the
engine). This process replays them with plain aiohttp — the same per-system
concurrency as the engine, every system at once, no retries, no paging logic, no engine code — and decodes every
answer with msgspec (``msgspec.json.decode`` into plain Python objects). What it measures is what the machine,
the loopback and the sandbox servers allow for that exact set of requests; the engine cannot beat it.

    python -m benchmarks.baseline --requests FILE --config CFG [--concurrency 8] [--only reads|all]

Prints one JSON line: wall seconds, requests, rows decoded, bytes, peak RSS.
"""

from __future__ import annotations

import argparse
import base64
import resource
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec

from benchmarks.rss import peak_rss_mb


class Logged(msgspec.Struct):
    """One request as the sandbox logged it (plus the system it went to)."""

    system: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    phase: int = 0
    """Requests of a later phase start only when every request of the earlier ones is answered."""


def is_read(system: str, method: str, headers: dict[str, str]) -> bool:
    """A listing/read: OZmap GET, IXC ``ixcsoft: listar``."""
    if system == "ixc":
        return headers.get("ixcsoft", "").lower() == "listar"
    return method == "GET"


def _auth(config: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    parsed = tomllib.loads(config.read_text())
    urls: dict[str, str] = {}
    auth: dict[str, dict[str, str]] = {}
    for name, section in parsed["systems"].items():
        urls[name] = section["url"]
        secret = (config.parent / section["secret"]["file"]).read_text().strip()
        if section["kind"] == "ixc":
            auth[name] = {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}
        else:
            auth[name] = {"Authorization": secret}
    return urls, auth


async def replay(requests: list[Logged], config: Path, concurrency: int) -> dict[str, Any]:
    urls, auth = _auth(config)
    decode = msgspec.json.decode
    encode = msgspec.json.encode
    rows = 0
    received = 0
    statuses: dict[int, int] = {}
    limiters = {name: anyio.CapacityLimiter(concurrency) for name in urls}
    sessions = {
        name: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency), cookie_jar=aiohttp.DummyCookieJar()
        )
        for name in urls
    }
    # The request objects are built before the clock starts: only the I/O and the decoding are timed.
    prepared = []
    for r in requests:
        headers = dict(auth[r.system])
        if "ixcsoft" in r.headers:
            headers["ixcsoft"] = r.headers["ixcsoft"]
        data = None
        if r.body is not None:
            data = encode(r.body)
            headers["Content-Type"] = "application/json"
        prepared.append(
            (r.phase, (r.system, r.method, urls[r.system] + r.path, r.query or None, data, headers))
        )

    async def one(system: str, method: str, url: str, query: Any, data: Any, headers: dict[str, str]) -> None:
        nonlocal rows, received
        async with (
            limiters[system],
            sessions[system].request(method, url, params=query, data=data, headers=headers) as resp,
        ):
            body = await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
        received += len(body)
        doc = decode(body) if body else None
        if isinstance(doc, dict):
            page = doc.get("rows")
            if page is None:
                page = doc.get("registros")
            if isinstance(page, list):
                rows += len(page)

    phases: dict[int, float] = {}
    cpu = _cpu()
    try:
        for phase in sorted({p for p, _ in prepared}):
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for p, item in prepared:
                    if p == phase:
                        group.start_soon(one, *item)
            phases[phase] = time.perf_counter() - started
    finally:
        for session in sessions.values():
            await session.close()
    return {
        "wall": sum(phases.values()),
        "phases": {str(k): v for k, v in phases.items()},
        "requests": len(prepared),
        "rows": rows,
        "bytes": received,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "peak_rss_mb": peak_rss_mb(),
        "cpu_s": _cpu() - cpu,
    }


def _cpu() -> float:
    """CPU seconds (user + system) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline")
    parser.add_argument("--requests", type=Path, required=True, help="JSON list of logged requests")
    parser.add_argument("--config", type=Path, required=True, help="the engine config of the sandboxes")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight per system")
    parser.add_argument("--only", choices=["reads", "all"], default="all")
    args = parser.parse_args(argv)
    requests = msgspec.json.decode(args.requests.read_bytes(), type=list[Logged])
    if args.only == "reads":
        requests = [r for r in requests if is_read(r.system, r.method, r.headers)]
    result = anyio.run(replay, requests, args.config, args.concurrency, backend_options={"use_uvloop": True})
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
