"""One engine cycle in its own process, so its peak RSS is its own. Prints one JSON result line.

    python -m benchmarks.engine_cycle --config CFG [--integration ozmap-ixc] --entity boxes --mode full [--apply]
        [--http ixc.concurrency=32] [--profile out.html]

``--http SYSTEM.KEY=VALUE`` overrides one HTTP setting of the config (``concurrency``, ``rate_limit``, …).
``--profile`` runs the cycle under pyinstrument and writes its HTML report (install ``.[bench]``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec

from benchmarks.rss import peak_rss_mb
from reconciler import config as config_mod
from reconciler import heap
from reconciler.engine import Engine

ACTION_KINDS = ("create", "link", "update", "inactivate", "delete", "skip", "quarantine")


def _override(cfg: config_mod.Config, overrides: list[str]) -> config_mod.Config:
    systems = dict(cfg.systems)
    for item in overrides:
        target, _, raw = item.partition("=")
        system, _, key = target.partition(".")
        current = systems[system].http
        value = type(getattr(current, key))(raw)
        http = msgspec.structs.replace(current, **{key: value})
        systems[system] = msgspec.structs.replace(systems[system], http=http)
    return msgspec.structs.replace(cfg, systems=systems)


async def _cycle(args: argparse.Namespace) -> dict[str, Any]:
    cfg = _override(config_mod.load(args.config), args.http)
    async with Engine.open(cfg) as engine:
        started, cpu = time.perf_counter(), _cpu()
        run = await engine.run(
            args.integration,
            entities=args.entity,
            mode=args.mode,
            apply=args.apply,
            allow_mass_removal=True,
        )
        wall, cpu = time.perf_counter() - started, _cpu() - cpu
        requests = {name: dict(c.statistics()) for name, c in engine.connectors.items()}
    timings: dict[str, float] = {}
    fetched = settled = 0
    for result in run.results:
        fetched += result.fetched
        settled += result.settled
        for stage, seconds in result.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
    plan = run.plan
    return {
        "wall": wall,
        "timings": timings,
        "fetched": fetched,
        "settled": settled,
        "changes": plan.changes,
        "unchanged": sum(e.unchanged for e in plan.entities),
        "filtered": sum(e.filtered for e in plan.entities),
        "actions": {k: sum(e.count(k) for e in plan.entities) for k in ACTION_KINDS},
        "failures": run.failures,
        "requests": requests,
        "peak_rss_mb": peak_rss_mb(),
        "cpu_s": cpu,
    }


def _cpu() -> float:
    """CPU seconds (user + system) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine_cycle")
    parser.add_argument("--config", required=True)
    parser.add_argument("--integration", default="ozmap-ixc")
    parser.add_argument("--entity", action="append")
    parser.add_argument("--mode", default="full", choices=["full", "incremental", "auto"])
    parser.add_argument("--apply", action="store_true")
    parser.add_argument("--http", action="append", default=[], metavar="SYSTEM.KEY=VALUE")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument HTML profile here")
    args = parser.parse_args(argv)
    heap.fix_mmap_threshold()  # as the ``reconciler`` command does
    options = {"use_uvloop": True}
    if args.profile is None:
        result = anyio.run(_cycle, args, backend_options=options)
    else:
        from pyinstrument import Profiler

        with Profiler(async_mode="disabled", interval=0.002) as profiler:
            result = anyio.run(_cycle, args, backend_options=options)
        args.profile.write_text(profiler.output_html())
        args.profile.with_suffix(".txt").write_text(profiler.output_text(unicode=True, show_all=False))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
