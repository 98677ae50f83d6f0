"""Command-line interface: ``reconciler plan|sync|migrate|run|sandbox|demo|ozmap``.

The only place where the event loop is started (``anyio.run``, with uvloop when installed).

Exit codes of ``plan`` and ``sync --once`` (like ``terraform plan -detailed-exitcode``):
0 = in sync / nothing to do, 2 = changes planned (plan) or applied without failures (sync),
1 = error (or some actions failed), 3 = stopped by a safety guard.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import anyio

from reconciler import __version__, heap, report
from reconciler import config as config_mod
from reconciler.cycle import Mode
from reconciler.errors import GuardTripped, ReconcilerError
from reconciler.model import EntityPlan, Plan

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_GUARD = 0, 1, 2, 3


def _run_async(fn: Callable[[], Coroutine[Any, Any, int]]) -> int:
    heap.fix_mmap_threshold()
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - platform without uvloop
        return anyio.run(fn)
    return anyio.run(fn, backend_options={"use_uvloop": True})


class _ProgressLine:
    """A single self-overwriting progress line on stderr, shown only on a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, label: str, count: int) -> None:
        if self.enabled and (count % 1000 == 0 or count < 1000):
            sys.stderr.write(f"\r{label} {count:,} records")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


def _integrations(cfg: config_mod.Config, chosen: str | None) -> list[str]:
    if chosen:
        return [chosen]
    if not cfg.integrations:
        raise ReconcilerError(f"{cfg.path}: no integration is configured or enabled")
    return sorted(cfg.integrations)


def _write_outputs(args: argparse.Namespace, plan: Plan, outcomes: dict[str, Any] | None) -> None:
    if getattr(args, "json", None):
        Path(args.json).write_bytes(report.to_json(plan, outcomes))
    if getattr(args, "html", None):
        Path(args.html).write_text(report.render_html(plan, outcomes), encoding="utf-8")


async def _plan_or_sync(args: argparse.Namespace, *, apply: bool) -> int:
    from reconciler.engine import Engine

    cfg = config_mod.load(args.config)
    progress = _ProgressLine()
    entity_plans: list[EntityPlan] = []
    outcomes: dict[str, Any] = {}
    failures = 0
    guard_message = ""
    mode: Mode = "full" if args.full else "auto"
    async with Engine.open(cfg) as engine:
        for integration in _integrations(cfg, args.integration):
            try:
                run = await engine.run(
                    integration,
                    entities=args.entity,
                    mode=mode,
                    apply=apply,
                    allow_mass_removal=getattr(args, "allow_mass_removal", False),
                    progress=progress,
                    compare_all=getattr(args, "compare_all", False),
                )
            except GuardTripped as exc:
                progress.done()
                guard_message = str(exc)
                blocked = exc.args[1] if len(exc.args) > 1 else None
                if isinstance(blocked, EntityPlan):
                    entity_plans.append(blocked)
                break
            progress.done()
            entity_plans.extend(run.plan.entities)
            outcomes.update(run.outcomes)
            failures += run.failures
    plan = Plan(created_at=_now(), entities=tuple(entity_plans))
    overridden = apply and getattr(args, "allow_mass_removal", False) and not guard_message
    print(report.render_text(plan, outcomes if apply else None, guard_overridden=overridden))
    _write_outputs(args, plan, outcomes if apply else None)
    if guard_message or (plan.guard_tripped and not overridden):
        print(f"\nstopped by a guard: {guard_message or 'see GUARD lines above'}", file=sys.stderr)
        return EXIT_GUARD
    if failures:
        print(f"\n{failures} action(s) failed; they will be retried next cycle", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_CHANGES if plan.changes else EXIT_OK


def _now() -> str:
    from reconciler.applying import now_iso

    return now_iso()


async def _migrate(args: argparse.Namespace) -> int:
    from reconciler.state.sqlite import SqliteStateStore

    cfg = config_mod.load(args.config)
    store = SqliteStateStore(cfg.state_path)
    await store.open(migrate=False)
    try:
        applied = await store.migrate()
        version = await store.schema_version()
    finally:
        await store.close()
    print(
        f"state store {cfg.state_path}: schema version {version}"
        + (f" (applied: {', '.join(applied)})" if applied else " (up to date)")
    )
    if args.initial_load:
        args.integration, args.entity, args.full, args.allow_mass_removal = None, None, True, False
        code = await _plan_or_sync(args, apply=True)
        # A deployment job succeeds when the load applied cleanly, whether or not it changed anything.
        return EXIT_OK if code == EXIT_CHANGES else code
    return EXIT_OK


async def _import_links(args: argparse.Namespace) -> int:
    from reconciler import linking
    from reconciler.engine import Engine

    cfg = config_mod.load(args.config)
    try:
        text = await anyio.Path(args.file).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ReconcilerError(f"{args.file}: cannot read: {exc.strerror}") from None
    async with Engine.open(cfg) as engine:
        rule = next((r for r in engine.rules(args.integration) if r.entity == args.entity), None)
        if rule is None:
            known = ", ".join(r.entity for r in engine.rules(args.integration))
            raise ReconcilerError(f"unknown entity {args.entity!r} for {args.integration}; known: {known}")
        result = await linking.import_links(
            text, rule=rule, connectors=engine.connectors, store=engine.store, dry_run=args.dry_run
        )
        for line in result.report(args.file):
            print(line, file=sys.stderr if line.startswith(f"{args.file}:") else sys.stdout)
        if args.sync and result.written:
            ids = [r.source_id for r in result.rows]
            run = await engine.run(
                args.integration, entities=[args.entity], apply=True, only={args.entity: ids}
            )
            print(report.render_text(run.plan, run.outcomes))
            if run.failures:
                return EXIT_ERROR
    return EXIT_ERROR if result.problems else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Keeps OZmap, IXC and friends in agreement: plan (dry run), sync, sandbox, demo.",
    )
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", required=True, help="engine config file (TOML)")
        p.add_argument("--integration", help="only this integration (default: every enabled one)")
        p.add_argument("--entity", action="append", help="only this entity (repeatable)")
        p.add_argument(
            "--full", action="store_true", help="read everything instead of changes since the cursor"
        )
        p.add_argument(
            "--compare-all",
            action="store_true",
            help="with --full: run the rule on every record and compare every pair, even pairs whose two "
            "records read exactly as when they were last found in agreement",
        )
        p.add_argument("--json", metavar="PATH", help="also write the plan as JSON")
        p.add_argument("--html", metavar="PATH", help="also write an HTML report")

    p_plan = sub.add_parser(
        "plan", help="dry run: show what a sync would do (exit 0 in sync, 2 changes, 3 guard)"
    )
    common(p_plan)
    p_sync = sub.add_parser(
        "sync", help="apply the plan (exit 0 nothing to do, 2 applied, 1 failures, 3 guard)"
    )
    common(p_sync)
    p_sync.add_argument("--once", action="store_true", help="run one cycle and exit (the default for now)")
    p_sync.add_argument(
        "--allow-mass-removal",
        action="store_true",
        help="operator override: apply even when the inactivation guard trips",
    )
    p_migrate = sub.add_parser(
        "migrate", help="apply state-store migrations (and optionally the initial load)"
    )
    p_migrate.add_argument("--config", required=True)
    p_migrate.add_argument("--initial-load", action="store_true", help="then run a first full sync and exit")

    p_links = sub.add_parser(
        "import-links",
        help="pair records from a CSV of source_id,target_id rows (exit 0 all good, 1 bad rows: see the report)",
    )
    p_links.add_argument("file", help="CSV file: a source_id,target_id header, then one pair per line")
    p_links.add_argument("--config", required=True, help="engine config file (TOML)")
    p_links.add_argument("--integration", required=True, help="e.g. cosbe-vetro")
    p_links.add_argument(
        "--entity", required=True, help="e.g. service-locations (source = Vetro, target = COS BE)"
    )
    p_links.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    p_links.add_argument("--sync", action="store_true", help="then sync the imported records at once")

    p_run = sub.add_parser(
        "run",
        help="daemon: entity cycles on their schedules, webhooks, /healthz /readyz /metrics (exit 0 on SIGTERM)",
    )
    p_run.add_argument("--config", required=True, help="engine config file (TOML), with an optional [daemon]")
    p_run.add_argument(
        "--listen", metavar="HOST:PORT", help="HTTP address (env RECONCILER_LISTEN; [daemon] listen)"
    )
    p_run.add_argument(
        "--log-format",
        choices=("auto", "human", "json"),
        help="human on a terminal, JSON lines otherwise by default (env RECONCILER_LOG_FORMAT)",
    )

    from reconciler.sandbox import runner as sandbox_runner

    p_sandbox = sub.add_parser("sandbox", help="start sandbox servers of the external systems")
    sandbox_runner.add_arguments(p_sandbox)

    p_demo = sub.add_parser("demo", help="sandboxes + plan + sync + edits + re-plan, and an HTML report")
    p_demo.add_argument("--report", default="demo-report.html", help="HTML report path")
    p_demo.add_argument("--scale", type=int, default=1000, help="size of the generated network")
    p_demo.add_argument("--seed", type=int, default=42)

    from reconciler.guide import cli as guide_cli

    p_ozmap = sub.add_parser(
        "ozmap", help="OZmap Integrator's Guide operations: feasibility, reserve, implant, power-check, ..."
    )
    guide_cli.add_arguments(p_ozmap)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``reconciler`` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "plan":
            return _run_async(lambda: _plan_or_sync(args, apply=False))
        if args.command == "sync":
            return _run_async(lambda: _plan_or_sync(args, apply=True))
        if args.command == "migrate":
            return _run_async(lambda: _migrate(args))
        if args.command == "import-links":
            return _run_async(lambda: _import_links(args))
        if args.command == "run":
            from reconciler.daemon import service

            return _run_async(
                lambda: service.main(args.config, listen=args.listen, log_format=args.log_format)
            )
        if args.command == "sandbox":
            from reconciler.sandbox import runner as sandbox_runner

            return sandbox_runner.run(args)
        if args.command == "ozmap":
            from reconciler.guide import cli as guide_cli

            return _run_async(lambda: guide_cli.run(args))
        if args.command == "demo":
            from reconciler import demo

            return _run_async(
                lambda: demo.run(report_path=Path(args.report), scale=args.scale, seed=args.seed)
            )
    except ReconcilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    raise AssertionError(args.command)
