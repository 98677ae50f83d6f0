"""Benchmark driver: sandboxes and the engine each in their own process, figures as ratios of one run.

Scenarios per scale (source entities ≈ scale; the OZmap→IXC ``boxes`` entity today):

1. **initial load** — first full sync into an IXC that already holds ~30% of the boxes (link + create);
2. **full cycle, 1% changed** — 1% of the OZmap boxes edited, then a full plan + apply; stage times;
3. **baseline** — the physical bound of that cycle's read path: the very same HTTP requests the full cycle made
   (taken from the sandboxes' request logs), replayed bare with the same concurrency and decoded with msgspec,
   no engine logic. Ratio = engine read path (fetch + normalize + plan) / baseline;
4. **incremental cycle** — the same number of edits again, read by cursor: cost follows changes, not size.

    python -m benchmarks.run [--smoke] [--scales 10000,100000,1000000]

Writes ``benchmarks/results/latest.json`` and ``benchmarks/results/latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec

RESULTS = Path(__file__).parent / "results"
CONCURRENCY = 8


class Sandbox:
    """The sandbox servers in a child process (``reconciler sandbox``)."""

    def __init__(self, scale: int, workdir: Path) -> None:
        self.config = workdir / "bench.toml"
        self.log = (workdir / "sandbox.log").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "sandbox",
                "--systems",
                "ozmap,ixc",
                "--seed",
                "42",
                "--scale",
                str(scale),
                "--port-base",
                "0",
                "--write-config",
                str(self.config),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 900
        while not self.config.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start; see {workdir / 'sandbox.log'}")
            time.sleep(0.2)
        time.sleep(0.3)
        parsed = tomllib.loads(self.config.read_text())
        self.urls = {name: section["url"] for name, section in parsed["systems"].items()}
        self.secrets = {
            name: (self.config.parent / section["secret"]["file"]).read_text().strip()
            for name, section in parsed["systems"].items()
        }
        self.state = self.config.parent / parsed["state"]["path"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def engine_cycle(config: Path, *, mode: str, apply: bool) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.engine_cycle",
        "--config",
        str(config),
        "--mode",
        mode,
        "--entity",
        "boxes",
    ]
    if apply:
        cmd.append("--apply")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _control(http: aiohttp.ClientSession, url: str, method: str, path: str, body: Any = None) -> Any:
    async with http.request(method, f"{url}/_sandbox/{path}", json=body) as resp:
        resp.raise_for_status()
        return None if resp.status == 204 else await resp.json(content_type=None)


async def edit_boxes(sb: Sandbox, share: float, tag: str) -> int:
    """Edit ``share`` of the OZmap boxes (observation), like a field team would."""
    async with aiohttp.ClientSession() as http:
        boxes = await _control(http, sb.urls["ozmap"], "GET", "store/boxes")
        chosen = [b["id"] for b in boxes][:: max(1, round(1 / share))]
        limiter = anyio.CapacityLimiter(CONCURRENCY)

        async def one(box_id: str) -> None:
            async with limiter:
                await _control(
                    http, sb.urls["ozmap"], "PATCH", f"store/boxes/{box_id}", {"observation": f"edited {tag}"}
                )

        async with anyio.create_task_group() as group:
            for box_id in chosen:
                group.start_soon(one, box_id)
    return len(chosen)


async def clear_logs(sb: Sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        for url in sb.urls.values():
            await _control(http, url, "DELETE", "requests")


async def replay_reads(sb: Sandbox) -> dict[str, Any]:
    """Replay every read request the last cycle made, bare, and decode each answer with msgspec."""
    import base64

    requests: list[tuple[str, dict[str, Any]]] = []
    async with aiohttp.ClientSession() as http:
        for name, url in sb.urls.items():
            since = 0
            while True:
                page = await _control(http, url, "GET", f"requests?since={since}&limit=100000")
                if not page:
                    break
                since = page[-1]["seq"]
                for r in page:
                    is_read = r["method"] == "GET" or r["headers"].get("ixcsoft", "").lower() == "listar"
                    if is_read:
                        requests.append((name, r))
    auth = {
        "ozmap": {"Authorization": sb.secrets["ozmap"]},
        "ixc": {"Authorization": "Basic " + base64.b64encode(sb.secrets["ixc"].encode()).decode()},
    }
    decoder = msgspec.json.Decoder()
    rows = 0
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(system: str, r: dict[str, Any]) -> None:
            nonlocal rows
            headers = dict(auth[system])
            if system == "ixc":
                headers["ixcsoft"] = "listar"
            async with (
                limiter,
                http.request(
                    r["method"],
                    sb.urls[system] + r["path"],
                    params=r["query"],
                    json=r["body"],
                    headers=headers,
                ) as resp,
            ):
                doc = decoder.decode(await resp.read())
            if isinstance(doc, dict):
                rows += len(doc.get("rows") or doc.get("registros") or [])

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for system, r in requests:
                group.start_soon(one, system, r)
        wall = time.perf_counter() - started
    return {"requests": len(requests), "rows": rows, "wall": wall}


def read_path(cycle: dict[str, Any]) -> float:
    t = cycle["timings"]
    return sum(t.get(k, 0.0) for k in ("lookups", "fetch", "normalize", "state", "fetch_targets", "plan"))


def run_scale(scale: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{scale}-") as tmp:
        started = time.perf_counter()
        sb = Sandbox(scale, Path(tmp))
        startup = time.perf_counter() - started
        try:
            initial = engine_cycle(sb.config, mode="full", apply=True)
            edited = anyio.run(edit_boxes, sb, 0.01, "a")
            anyio.run(clear_logs, sb)
            full = engine_cycle(sb.config, mode="full", apply=True)
            baseline = anyio.run(replay_reads, sb)
            anyio.run(edit_boxes, sb, 0.01, "b")
            incremental = engine_cycle(sb.config, mode="auto", apply=True)
            clean = engine_cycle(sb.config, mode="full", apply=False)
        finally:
            sb.stop()
    return {
        "scale": scale,
        "sandbox_startup_s": startup,
        "edited": edited,
        "initial": initial,
        "full_1pct": full,
        "baseline": baseline,
        "incremental": incremental,
        "converged": clean["changes"] == 0,
        "ratio_full_read_vs_baseline": read_path(full) / baseline["wall"] if baseline["wall"] else None,
        "records_per_s_full": full["fetched"] / full["wall"] if full["wall"] else None,
        "ratio_incremental_vs_full": incremental["wall"] / full["wall"] if full["wall"] else None,
    }


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| scale | initial load s | full 1% s (read / apply / commit) | baseline s | full read ÷ baseline | records/s | incremental s | incr ÷ full | peak RSS MB (full) | converged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f, t = r["full_1pct"], r["full_1pct"]["timings"]
        lines.append(
            f"| {r['scale']:,} | {r['initial']['wall']:.2f} | {f['wall']:.2f} ({read_path(f):.2f} / {t.get('apply', 0):.2f} / {t.get('commit', 0):.2f}) "
            f"| {r['baseline']['wall']:.2f} | {r['ratio_full_read_vs_baseline']:.2f}× | {r['records_per_s_full']:,.0f} "
            f"| {r['incremental']['wall']:.2f} | {r['ratio_incremental_vs_full']:.2f} | {f['peak_rss_mb']:.0f} | {r['converged']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="one tiny scale, for CI")
    parser.add_argument("--scales", default="10000,100000")
    args = parser.parse_args()
    scales = [2000] if args.smoke else [int(s) for s in args.scales.split(",")]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    results = []
    for scale in scales:
        print(f"benchmark: scale {scale:,} …", flush=True)
        results.append(run_scale(scale))
    RESULTS.mkdir(exist_ok=True)
    name = "smoke" if args.smoke else "latest"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (RESULTS / f"{name}.md").write_text(table)
    print(table)
    if not all(r["converged"] for r in results):
        print(
            "benchmark: the engine did not converge (a plan after the last sync still has changes)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
