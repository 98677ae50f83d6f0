"""The reconciler's error tree.

Every error the engine raises on purpose derives from :class:`ReconcilerError`. Adapters (connectors, the state
store) map library errors (aiohttp, sqlite) into this tree once, at the boundary, with ``raise ... from``.
Retry policy reads the *type*, never the message: :class:`Transient` errors may succeed when tried again,
:class:`Terminal` ones will not.

    ReconcilerError
    ├── ConfigError                 bad config file / option / missing secret            (Terminal)
    ├── RuleError                   bad rule file: always carries file and line         (Terminal)
    ├── StateError                  state store problems                                 (Terminal)
    │   └── StateLockedError        another instance holds the single-writer lock
    ├── GuardTripped                a safety guard stopped the cycle before acting
    ├── SnapshotIncomplete          a source stream ended early / errored mid-way       (Transient)
    └── RemoteError                 an external system answered badly                    (has .system)
        ├── TransientRemoteError    5xx, 429, timeouts, resets, malformed bodies          (Transient)
        │   └── RateLimited         429, carries retry_after seconds
        └── TerminalRemoteError     4xx, business refusals (IXC type=error), auth          (Terminal)
            ├── AuthError           401/403
            └── NotFound            404 / unknown id

Messages never contain secrets: connectors build them from method, path and a capped excerpt of the body.
"""

from __future__ import annotations

#: Longest excerpt of a remote body quoted in an error message.
BODY_EXCERPT_MAX = 300


class Transient:
    """Marker mixin: the operation may succeed if retried."""


class Terminal:
    """Marker mixin: retrying will not help."""


class ReconcilerError(Exception):
    """Root of every error the reconciler raises deliberately."""


class ConfigError(ReconcilerError, Terminal):
    """The configuration file, an option or a secret reference is wrong."""


class RuleError(ReconcilerError, Terminal):
    """A rule file is wrong. ``str(err)`` is ``file:line: message``."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line}: {message}")


class StateError(ReconcilerError, Terminal):
    """The state store cannot be opened, migrated or written."""


class StateLockedError(StateError):
    """Another reconciler instance already owns this state store."""


class GuardTripped(ReconcilerError):
    """A safety guard refused to let a cycle act (mass inactivation, empty source...)."""


class SnapshotIncomplete(ReconcilerError, Transient):
    """A snapshot stream ended early or failed mid-way; nothing may be inferred from what is missing."""


class RemoteError(ReconcilerError):
    """An external system failed. ``system`` names it (``ozmap``, ``ixc``...)."""

    def __init__(self, system: str, message: str, *, status: int | None = None) -> None:
        self.system = system
        self.status = status
        super().__init__(f"{system}: {message}")


class TransientRemoteError(RemoteError, Transient):
    """5xx, timeouts, connection resets, malformed or HTML bodies: worth retrying."""


class RateLimited(TransientRemoteError):
    """HTTP 429. ``retry_after`` is the server's hint in seconds (None when absent)."""

    def __init__(self, system: str, message: str, *, retry_after: float | None, status: int = 429) -> None:
        super().__init__(system, message, status=status)
        self.retry_after = retry_after


class TerminalRemoteError(RemoteError, Terminal):
    """A refusal that will not change on retry: validation errors, business errors, bad requests."""


class AuthError(TerminalRemoteError):
    """401/403: the credentials are wrong, expired, or lack permission."""


class NotFound(TerminalRemoteError):
    """The record or resource does not exist."""


def excerpt(body: str | bytes, limit: int = BODY_EXCERPT_MAX) -> str:
    """A single-line, capped excerpt of a remote body for error messages."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is marked as worth retrying."""
    return isinstance(exc, Transient)
