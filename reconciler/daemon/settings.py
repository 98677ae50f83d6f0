"""The daemon's settings, resolved at one point: command-line flag, then ``RECONCILER_*`` variable, then the
config file's ``[daemon]`` section, then the default.

============================  ========================  ==========================  ====================
setting                       flag                      environment                 ``[daemon]`` key
============================  ========================  ==========================  ====================
listen address                ``--listen HOST:PORT``    ``RECONCILER_LISTEN``       ``listen``
log format                    ``--log-format``          ``RECONCILER_LOG_FORMAT``   ``log-format``
log level                                               ``RECONCILER_LOG_LEVEL``    ``log-level``
============================  ========================  ==========================  ====================

Everything else comes from ``[daemon]`` only (see :class:`reconciler.config.DaemonSection`). Schedule overrides
are checked against the rules the daemon actually runs, so a typo in ``"integration/entity"`` fails at start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import NamedTuple, cast

import msgspec

from reconciler import config as config_mod
from reconciler.errors import ConfigError
from reconciler.logs import LogFormat
from reconciler.rules import loading

__all__ = ["ENV_LISTEN", "ENV_LOG_FORMAT", "ENV_LOG_LEVEL", "DaemonSettings", "Schedule", "resolve"]

ENV_LISTEN = "RECONCILER_LISTEN"
ENV_LOG_FORMAT = "RECONCILER_LOG_FORMAT"
ENV_LOG_LEVEL = "RECONCILER_LOG_LEVEL"
_FORMATS = ("auto", "human", "json")


class Schedule(NamedTuple):
    """Seconds between incremental cycles and between full resyncs of one entity."""

    incremental: float
    full: float


class DaemonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Resolved daemon settings; see :class:`reconciler.config.DaemonSection` for each field's meaning."""

    host: str
    port: int
    shutdown_timeout: float
    readiness_failures: int
    log_format: LogFormat
    log_level: str
    record_backoff: float
    record_backoff_max: float
    schedules: dict[str, tuple[float | None, float | None]]
    """``integration/entity`` → (incremental, full) seconds; None keeps the rule's value."""

    def schedule(self, name: str, *, incremental: float, full: float) -> Schedule:
        """The schedule of entity ``name`` given its rule's own intervals."""
        override_inc, override_full = self.schedules.get(name, (None, None))
        return Schedule(override_inc or incremental, override_full or full)

    def check_schedules(self, known: Iterable[str], where: str) -> None:
        """ConfigError when an override names an entity the daemon does not run."""
        unknown = sorted(set(self.schedules) - set(known))
        if unknown:
            raise ConfigError(
                f"{where}: daemon.schedules names {', '.join(unknown)}, which is not an enabled entity "
                f"(enabled: {', '.join(sorted(known)) or 'none'})"
            )


def resolve(
    cfg: config_mod.Config,
    *,
    listen: str | None = None,
    log_format: str | None = None,
    environ: Mapping[str, str] | None = None,
    isatty: bool = False,
) -> DaemonSettings:
    """Combine flags, environment and ``cfg.daemon``. ``isatty`` decides what ``auto`` log format means."""
    env = environ if environ is not None else {}
    section = cfg.daemon
    where = str(cfg.path)
    host, port = parse_listen(listen or env.get(ENV_LISTEN) or section.listen, where)
    fmt = (log_format or env.get(ENV_LOG_FORMAT) or section.log_format).lower()
    if fmt not in _FORMATS:
        raise ConfigError(f"{where}: log format {fmt!r} is not one of {', '.join(_FORMATS)}")
    level = (env.get(ENV_LOG_LEVEL) or section.log_level).upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigError(f"{where}: unknown log level {level!r}")
    return DaemonSettings(
        host=host,
        port=port,
        shutdown_timeout=section.shutdown_timeout,
        readiness_failures=section.readiness_failures,
        log_format=cast("LogFormat", ("human" if isatty else "json") if fmt == "auto" else fmt),
        log_level=level,
        record_backoff=section.record_backoff,
        record_backoff_max=max(section.record_backoff_max, section.record_backoff),
        schedules={
            name: (
                _seconds(o.incremental, f"{where}: daemon.schedules.{name}.incremental"),
                _seconds(o.full, f"{where}: daemon.schedules.{name}.full"),
            )
            for name, o in section.schedules.items()
        },
    )


def parse_listen(text: str, where: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) → ``(host, port)``; port 0 lets the system pick one."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"{where}: listen address {text!r} is not host:port (e.g. 127.0.0.1:8080)")
    return host, int(port_text)


def _seconds(value: str | float | None, where: str) -> float | None:
    if value is None or isinstance(value, float | int):
        return value
    try:
        return float(loading.parse_duration(value))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
