"""How the daemon names, logs and exposes the result of one cycle. Pure helpers over results and errors.

A cycle's ``status`` is ``ok``, ``partial`` (it ran, some actions failed: those records back off), ``failed``
(it raised: a system down, a snapshot cut short, a state store error) or ``guard`` (a safety guard stopped it
before acting; an operator must confirm with ``reconciler sync --allow-mass-removal``).
"""

from __future__ import annotations

import collections
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from reconciler.cycle import CycleResult
from reconciler.daemon.scheduling import NOT_ATTEMPTS, EntityKey
from reconciler.errors import GuardTripped, ReconcilerError, RemoteError, StateError, excerpt
from reconciler.model import action_kind

if TYPE_CHECKING:
    from reconciler.daemon.runner import EntityState, Job

__all__ = ["entity_status", "error_text", "leaf", "log_cycle", "mode_of", "status_of", "system_of"]


def status_of(result: CycleResult | None, error: BaseException | None) -> str:
    if isinstance(error, GuardTripped):
        return "guard"
    if error is not None or result is None:
        return "failed"
    return "partial" if result.failures else "ok"


def mode_of(job: Job, result: CycleResult | None) -> str:
    """``targeted``, ``full`` or ``incremental``: what the cycle really did when known."""
    if job.kind == "targeted":
        return "targeted"
    if result is not None:
        return result.plan.mode
    return "full" if job.mode == "full" else "incremental"


def leaf(error: BaseException) -> BaseException:
    """The first non-group exception inside ``error`` (task groups wrap errors in ExceptionGroups)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def system_of(error: BaseException) -> str:
    """The system an error is attributed to in metrics: the remote system, ``state``, or ``reconciler``."""
    error = leaf(error)
    if isinstance(error, RemoteError):
        return error.system
    if isinstance(error, StateError):
        return "state"
    return "reconciler"


def error_text(result: CycleResult | None, error: BaseException | None) -> str:
    """A one-line, capped description of what went wrong ('' when nothing did)."""
    if error is not None:
        inner = leaf(error)
        return excerpt(f"{type(inner).__name__}: {inner}")
    if result is not None and result.failures:
        failed = [o for o in result.outcomes if not o.ok and o.kind not in NOT_ATTEMPTS]
        return excerpt(
            f"{len(failed)} action(s) failed; first: {failed[0].label or failed[0].source_id}: "
            f"{failed[0].error}"
        )
    return ""


def entity_status(state: EntityState, threshold: int) -> dict[str, Any]:
    """The /readyz view of one entity."""
    last = state.last_success
    return {
        "status": state.last_status,
        "running": state.running,
        "consecutive_failures": state.schedule.consecutive_failures,
        "failing": state.schedule.consecutive_failures >= threshold,
        "error": state.last_error,
        "last_success": datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds") if last else None,
    }


def log_cycle(
    log: logging.Logger,
    key: EntityKey,
    mode: str,
    status: str,
    result: CycleResult | None,
    error: BaseException | None,
    seconds: float,
    *,
    retry: float,
) -> None:
    """One log line per cycle: INFO when it ran, WARNING when it failed, ERROR when a guard stopped it."""
    extra: dict[str, Any] = {
        "event": "cycle",
        "integration": key.integration,
        "entity": key.entity,
        "mode": mode,
        "status": status,
        "seconds": round(seconds, 3),
    }
    if result is not None:
        kinds = collections.Counter(action_kind(a) for a in result.plan.actions)
        extra.update(changes=result.plan.changes, failures=result.failures, fetched=result.fetched)
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "nothing to do"
        level = logging.WARNING if result.failures else logging.INFO
        log.log(
            level,
            "%s: %s cycle %s: %s, %d failed, %.2f s",
            key,
            mode,
            status,
            summary,
            result.failures,
            seconds,
            extra=extra,
        )
        return
    text = error_text(result, error)
    extra["error"] = text
    if status == "guard":
        log.error("%s: %s cycle stopped by a guard: %s", key, mode, text, extra=extra)
        return
    extra["retry_in"] = retry
    log.warning(
        "%s: %s cycle failed: %s; retrying in %g s",
        key,
        mode,
        text,
        retry,
        extra=extra,
        exc_info=_traceback_worthy(error),
    )


def _traceback_worthy(error: BaseException | None) -> BaseException | None:
    """Unexpected errors (bugs) get a traceback in the log; the reconciler's own errors explain themselves."""
    if error is None or isinstance(leaf(error), ReconcilerError):
        return None
    return error
