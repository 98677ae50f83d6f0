"""One engine cycle in its own process, so its peak RSS is its own. Prints a JSON result line.

python -m benchmarks.engine_cycle --config CFG --integration ozmap-ixc --entity boxes --mode full [--apply]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import anyio
import msgspec

from reconciler import config as config_mod
from reconciler.engine import Engine


async def _cycle(args: argparse.Namespace) -> dict[str, object]:
    cfg = config_mod.load(args.config)
    async with Engine.open(cfg) as engine:
        started = time.perf_counter()
        run = await engine.run(
            args.integration,
            entities=args.entity,
            mode=args.mode,
            apply=args.apply,
            allow_mass_removal=True,
        )
        wall = time.perf_counter() - started
    timings: dict[str, float] = {}
    fetched = 0
    for result in run.results:
        fetched += result.fetched
        for stage, seconds in result.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
    plan = run.plan
    return {
        "wall": wall,
        "timings": timings,
        "fetched": fetched,
        "changes": plan.changes,
        "actions": {
            k: sum(e.count(k) for e in plan.entities)
            for k in ("create", "link", "update", "inactivate", "skip", "quarantine")
        },
        "failures": run.failures,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--integration", default="ozmap-ixc")
    parser.add_argument("--entity", action="append")
    parser.add_argument("--mode", default="full", choices=["full", "incremental", "auto"])
    parser.add_argument("--apply", action="store_true")
    args = parser.parse_args()
    result = anyio.run(_cycle, args, backend_options={"use_uvloop": True})
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
