"""Logging setup: a human format on a terminal, JSON lines in daemon mode, and secrets never written.

``setup`` installs exactly one handler on the root logger (so aiohttp's and our loggers share it) with:

- :class:`HumanFormatter` — ``12:03:10 INFO  reconciler.daemon: ozmap-ixc/boxes: incremental cycle ok …``;
- or :class:`JsonFormatter` — one JSON object per line: ``time``, ``level``, ``logger``, ``message``, every
  ``extra={...}`` field, and ``exception`` (the formatted traceback) when there is one;
- :class:`RedactingFilter` in front of either: every configured secret value (and its base64 form, which is
  what HTTP Basic auth sends), and the value of anything that looks like an ``Authorization`` header, becomes
  ``***`` in the message, the extra fields and the traceback text.

Redaction is a safety net: connectors already keep secrets out of their error messages. It runs on the handler,
so it also covers records that third-party libraries emit.
"""

from __future__ import annotations

import base64
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import msgspec

from reconciler import config as config_mod

__all__ = [
    "REDACTED",
    "HumanFormatter",
    "JsonFormatter",
    "LogFormat",
    "RedactingFilter",
    "secret_values",
    "setup",
]

LogFormat = Literal["human", "json"]

REDACTED = "***"
#: Shorter secret values are not redacted: replacing every "a" in the logs would hide everything else instead.
MIN_SECRET_LENGTH = 4

#: ``Authorization: Basic xyz``, ``"authorization": "xyz"``, ``Authorization=Bearer xyz`` …: the value goes.
_AUTH_HEADER = re.compile(
    r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token)\s+)?[^\s\"',;}]+"
)

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def secret_values(cfg: config_mod.Config) -> list[str]:
    """Every secret of a configuration, revealed, plus the base64 form of each (HTTP Basic auth)."""
    secrets: list[config_mod.Secret] = []
    for system in cfg.systems.values():
        secrets.append(system.secret)
        if system.webhook_secret is not None:
            secrets.append(system.webhook_secret)
    if cfg.webhook_secret is not None:
        secrets.append(cfg.webhook_secret)
    values: list[str] = []
    for secret in secrets:
        value = secret.reveal()
        values.extend((value, base64.b64encode(value.encode()).decode()))
    return values


class RedactingFilter(logging.Filter):
    """Blanks secret values and Authorization header values in a record before any formatter sees it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        unique = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self.secrets = sorted(unique, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret and Authorization value replaced by ``***``."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _AUTH_HEADER.sub(lambda m: m.group(1) + (m.group(2) or "") + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record got through ``extra={...}``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values that JSON cannot carry are written as their ``str()``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return msgspec.json.encode(entry, enc_hook=str).decode()


class HumanFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: message`` — the extra fields are already in the message for people."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s: %(message)s", datefmt="%H:%M:%S")


def setup(
    fmt: LogFormat,
    *,
    secrets: Iterable[str] = (),
    level: str | int = "INFO",
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every logger to one redacting handler on ``stream`` (stderr when None); returns the handler.

    Calling it again replaces the handler it installed before (tests, or a config reload).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name("reconciler")
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "reconciler"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
