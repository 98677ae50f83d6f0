"""Start, serve and stop the daemon: the body of ``reconciler run``.

Order matters: signals are caught first (a SIGTERM during start-up still stops cleanly), then the engine opens
the state store — taking its single-writer lock, so a second instance on the same store refuses *before* it
binds a port or talks to any system — then the HTTP server binds, then the workers start.

Stopping: the first SIGTERM/SIGINT starts :meth:`~reconciler.daemon.runner.Daemon.shutdown` (no new cycle,
running ones finish within ``shutdown-timeout``); a second one cancels what still runs. Then the server stops,
the engine closes the HTTP sessions and the store (releasing the lock), and the process exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping

import anyio
import prometheus_client
from anyio.abc import TaskGroup

from reconciler import config as config_mod
from reconciler import logs
from reconciler.daemon import server, settings
from reconciler.daemon.runner import Daemon
from reconciler.engine import Engine
from reconciler.errors import ReconcilerError

__all__ = ["main", "serve"]

log = logging.getLogger("reconciler.daemon")

EXIT_OK, EXIT_ERROR = 0, 1


async def main(
    config_path: str,
    *,
    listen: str | None = None,
    log_format: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Load the config, set up logging, serve until stopped. Config errors propagate (the CLI prints them);
    errors after logging is set up are logged (as JSON in daemon mode) and give exit code 1."""
    env = os.environ if environ is None else environ
    cfg = config_mod.load(config_path, environ=dict(env))
    resolved = settings.resolve(
        cfg, listen=listen, log_format=log_format, environ=env, isatty=sys.stderr.isatty()
    )
    logs.setup(resolved.log_format, secrets=logs.secret_values(cfg), level=resolved.log_level)
    # Process-wide: no `*_created` twin of every counter and histogram in /metrics.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        return await serve(cfg, resolved)
    except ReconcilerError as exc:
        log.error("cannot run: %s", exc, extra={"event": "fatal"})
        return EXIT_ERROR
    except Exception:  # a bug: still one (JSON) log record with the traceback, then exit 1
        log.exception("crashed", extra={"event": "fatal"})
        return EXIT_ERROR


async def serve(cfg: config_mod.Config, resolved: settings.DaemonSettings) -> int:
    """Run the daemon for ``cfg`` until a signal stops it; returns the exit code."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with Engine.open(cfg) as engine:
            daemon = Daemon(engine=engine, settings=resolved)
            async with server.running(daemon, host=resolved.host, port=resolved.port) as url:
                log.info(
                    "listening on %s; entities: %s",
                    url,
                    ", ".join(str(k) for k in daemon.entities),
                    extra={"event": "listening", "url": url, "pid": os.getpid()},
                )
                async with anyio.create_task_group() as group:
                    group.start_soon(_watch_signals, signals, daemon, resolved.shutdown_timeout, group)
                    await daemon.run()
                    group.cancel_scope.cancel()
    log.info("stopped", extra={"event": "stopped"})
    return EXIT_OK


async def _watch_signals(
    signals: AsyncIterator[signal.Signals], daemon: Daemon, grace: float, group: TaskGroup
) -> None:
    async for signum in signals:
        name = signum.name
        if not daemon.stopping:
            log.info("%s received: stopping", name, extra={"event": "signal", "signal": name})
            group.start_soon(daemon.shutdown, grace)
        else:
            log.warning("%s received again: cancelling running cycles", name, extra={"event": "signal"})
            daemon.abort()
