"""Benchmark driver (issue 11): scenarios against sandboxes on loopback, each part in its own process.

    python -m benchmarks.run                 # make bench: 10k, 100k and 1M boxes, dlt peer at 1M
    python -m benchmarks.run --smoke         # make bench-smoke: one tiny scale, no dlt (part of make test)
    python -m benchmarks.run --scales 10000,100000 --peer-scale 100000 --profile

Scenarios (see :mod:`benchmarks.scenarios`): 1. baseline (the full cycle's requests replayed bare), 2. full cycle
with 1% changed, 3. incremental cycle with 1k changes, 4. apply throughput under 20 ms latency at concurrency
8/32/128, 5. dlt peer, 6. state store. Writes ``benchmarks/results/latest.json`` and ``latest.md`` (``smoke.*``
with ``--smoke``) and prints the tables. Exit code 0 when every scenario ran and the engine converged; the
performance targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import report, scenarios
from benchmarks.entities import ENTITIES

RESULTS = Path(__file__).parent / "results"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = next(
            int(line.split()[1]) / 1024 / 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        memory = 0.0
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GB"


def _has_dlt() -> bool:
    try:
        import dlt  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="one tiny scale, no dlt, small apply batches")
    parser.add_argument("--entity", default="boxes", choices=sorted(ENTITIES))
    parser.add_argument(
        "--scales", help="source records per scale, comma-separated (default 10000,100000,1000000)"
    )
    parser.add_argument(
        "--apply-scale", type=int, help="scale of the apply scenario (default: 100000 or the largest)"
    )
    parser.add_argument(
        "--peer-scale", type=int, help="scale of the dlt peer (default: the largest; 0 = none)"
    )
    parser.add_argument(
        "--peer-formats", default="arrow,parquet", help="dlt formats (arrow, parquet, insert_values)"
    )
    parser.add_argument("--state-rows", type=int, help="links of the state store scenario (default 1000000)")
    parser.add_argument(
        "--profile", action="store_true", help="pyinstrument profiles of the cycles in results/"
    )
    parser.add_argument("--name", help="results file name (default: latest, or smoke)")
    args = parser.parse_args(argv)

    entity = ENTITIES[args.entity]
    if args.smoke:
        scales = [int(s) for s in (args.scales or "2000").split(",")]
    else:
        scales = [int(s) for s in (args.scales or "10000,100000,1000000").split(",")]
    scales.sort()
    apply_scale = args.apply_scale or (100_000 if 100_000 in scales else scales[-1])
    peer_scale = scales[-1] if args.peer_scale is None else args.peer_scale
    formats = tuple(f for f in args.peer_formats.split(",") if f)
    if args.smoke or not _has_dlt():
        if not args.smoke:
            print(
                "benchmark: dlt is not installed (pip install -e '.[bench]'): no peer scenario",
                file=sys.stderr,
            )
        peer_scale = 0
    name = args.name or ("smoke" if args.smoke else "latest")
    RESULTS.mkdir(exist_ok=True)
    profile_dir = RESULTS / f"{name}-profiles" if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(exist_ok=True)
    os.environ.setdefault("PYTHONHASHSEED", "0")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        settings = scenarios.Settings(
            entity=entity,
            scales=scales,
            workdir=Path(tmp),
            incremental_changes=150 if args.smoke else 1000,
            apply_scale=apply_scale,
            apply_seconds=0.25 if args.smoke else 2.0,
            apply_rate_limit=200.0 if args.smoke else 1000.0,
            peer_scale=peer_scale or None,
            peer_formats=formats,
            state_rows=args.state_rows or (20_000 if args.smoke else 1_000_000),
            profile_dir=profile_dir,
        )
        run: dict[str, Any] = {"scales": []}
        for n in scales:
            print(f"benchmark: {entity.integration}/{entity.name}, N = {n:,} …", flush=True)
            run["scales"].append(scenarios.run_scale(settings, n, lambda line: print(line, flush=True)))
        print(f"benchmark: state store, {settings.state_rows:,} links …", flush=True)
        run["state_store"] = scenarios.state_store(settings.state_rows, Path(tmp))
    run["meta"] = {
        "mode": "smoke" if args.smoke else "full",
        "entity": entity.name,
        "integration": entity.integration,
        "world": entity.world,
        "machine": _machine(),
        "python": platform.python_version(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "total_s": time.perf_counter() - started,
        "concurrency": settings.concurrency,
        "profiled": args.profile,
        "pinned": scenarios.PINNED,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(run, indent=2) + "\n")
    table = report.markdown(run)
    (RESULTS / f"{name}.md").write_text(table)
    print(table)
    if not all(s["converged"] for s in run["scales"]):
        print(
            "benchmark: the engine did not converge (a plan after the last sync still has changes)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
