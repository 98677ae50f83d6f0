"""Engine configuration: one TOML file, resolved once, passed down frozen.

Example (``reconciler sandbox --write-config`` writes one like it)::

    [state]
    path = "reconciler-state.db"

    [systems.ozmap]
    kind = "ozmap"
    url = "http://127.0.0.1:18000"
    secret = { env = "OZMAP_API_KEY" }          # or { file = "secrets/ozmap.key" }
    [systems.ozmap.http]
    concurrency = 8

    [systems.ixc]
    kind = "ixc"
    url = "http://127.0.0.1:18001"
    secret = { file = "secrets/ixc.token" }     # IXC: the raw "<user id>:<hash>" token

    [integrations.ozmap-ixc]
    entities = ["boxes"]                         # omitted = every rule file of the integration
    [integrations.ozmap-ixc.options]
    create_box_without_olt = false

Secrets are never written in the file itself: only an environment variable name or a file path, resolved here
into :class:`Secret` values whose ``repr`` hides them. Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from reconciler.errors import ConfigError
from reconciler.rules.locating import Locator, PathPart, dotted, split_msgspec_error, toml_error_position

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Share = Annotated[float, msgspec.Meta(ge=0, le=1)]


class Secret:
    """A credential. ``str()``/``repr()`` never show it; call :meth:`reveal` at the last moment."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


#: System kinds that need no credential: ``secret`` may be left out (the local SQLite replica).
SECRETLESS_KINDS = frozenset({"replica"})


class SecretRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where a secret comes from: exactly one of an environment variable or a file."""

    env: str | None = None
    file: str | None = None


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="kebab"):
    """How the engine talks to one system."""

    timeout: PositiveFloat = 30.0
    """Seconds for one HTTP request, connect to last byte. 30 s: IXC under load answers in 15-30 s."""
    retries: Annotated[int, msgspec.Meta(ge=0)] = 4
    """Extra attempts after a transient failure (5xx, 429, timeout, reset, malformed body)."""
    backoff: PositiveFloat = 0.5
    """First retry delay in seconds; doubles each attempt (with jitter) up to ``backoff-max``."""
    backoff_max: PositiveFloat = 30.0
    """Longest wait between two attempts, also the cap applied to a server's Retry-After."""
    concurrency: PositiveInt = 8
    """Requests in flight at once to this system (apply and paging)."""
    rate_limit: NonNegativeFloat = 0.0
    """Requests per second at most; 0 = no limit."""
    page_size: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Rows per list page; 0 = the connector's default (OZmap 1000, IXC 500)."""
    verify_tls: bool = True
    """False accepts self-signed certificates (common on IXC installs)."""


class SystemSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: str
    url: str
    secret: SecretRef = SecretRef()
    http: HttpSettings = HttpSettings()
    webhook_secret: SecretRef | None = msgspec.field(default=None, name="webhook-secret")


class StateSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str = "reconciler-state.db"


class GuardSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="kebab"):
    max_inactivate_share: Share = 0.10
    """Default share of linked records one cycle may inactivate before the guard stops it."""


class IntegrationSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = True
    entities: list[str] | None = None
    rules: str | None = None
    """Folder of rule files overriding the built-in ones."""
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class ScheduleOverride(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[daemon.schedules."<integration>/<entity>"]``: the daemon's override of a rule's ``[schedule]``.

    Durations as in rule files (``"90s"``, ``"5m"``, ``"1h30m"``, ``"1d"``) or plain seconds; omitted = the rule's.
    """

    incremental: str | PositiveFloat | None = None
    full: str | PositiveFloat | None = None


class DaemonSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="kebab"):
    """``[daemon]``: how ``reconciler run`` listens, schedules and stops. Every key is optional.

    ``listen``, ``log-format`` and ``log-level`` may also come from ``--listen``/``--log-format`` and
    ``RECONCILER_LISTEN``/``RECONCILER_LOG_FORMAT``/``RECONCILER_LOG_LEVEL`` (flag, then environment, then this
    file); ``reconciler.daemon.settings`` resolves them.
    """

    listen: str = "127.0.0.1:8080"
    """``host:port`` of the HTTP server (/healthz, /readyz, /metrics, webhooks). Loopback by default: a sidecar's
    neighbours share its network namespace; containers set ``0.0.0.0:8080``. Port 0 picks a free port."""
    shutdown_timeout: NonNegativeFloat = 30.0
    """Seconds in-flight cycles get to finish after SIGTERM/SIGINT (Kubernetes' default grace period is 30 s)."""
    readiness_failures: PositiveInt = 3
    """Consecutive failed cycles of one entity after which /readyz answers 503."""
    log_format: Literal["auto", "human", "json"] = "auto"
    """``auto`` (human on a terminal, JSON lines otherwise), ``human`` or ``json``."""
    log_level: str = "INFO"
    """A ``logging`` level name: DEBUG, INFO, WARNING, ERROR."""
    record_backoff: PositiveFloat = 30.0
    """Seconds a record waits after its first failed action before it is tried again; doubles per failure."""
    record_backoff_max: PositiveFloat = 3600.0
    """Longest wait between two attempts of one failing record."""
    webhook_secret: SecretRef | None = None
    """Shared secret of ``POST /webhooks/...`` and ``POST /sync/...`` (HMAC signature or bearer token). Without
    it (and without the source system's ``webhook-secret``) those routes refuse every request."""
    schedules: dict[str, ScheduleOverride] = msgspec.field(default_factory=dict)
    """``"integration/entity"`` → schedule override."""


class ConfigFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: StateSection = StateSection()
    systems: dict[str, SystemSection] = msgspec.field(default_factory=dict)
    integrations: dict[str, IntegrationSection] = msgspec.field(default_factory=dict)
    guard: GuardSection = GuardSection()
    daemon: DaemonSection = DaemonSection()


class SystemConfig(msgspec.Struct, frozen=True):
    """A resolved system: its name in the config, connector kind, base URL, secret and HTTP settings."""

    name: str
    kind: str
    url: str
    secret: Secret
    http: HttpSettings
    webhook_secret: Secret | None = None


class IntegrationConfig(msgspec.Struct, frozen=True):
    name: str
    entities: tuple[str, ...] | None
    rules_dir: Path | None
    options: dict[str, Any]


class Config(msgspec.Struct, frozen=True):
    """The resolved configuration handed to the engine."""

    path: Path
    state_path: Path
    systems: dict[str, SystemConfig]
    integrations: dict[str, IntegrationConfig]
    max_inactivate_share: float
    daemon: DaemonSection = DaemonSection()
    """``[daemon]`` as written; ``reconciler.daemon.settings`` resolves it with flags and environment."""
    webhook_secret: Secret | None = None
    """``[daemon] webhook-secret``, resolved."""


def load(path: str | os.PathLike[str], *, environ: dict[str, str] | None = None) -> Config:
    """Read, validate and resolve a config file.

    Every problem raises :class:`ConfigError` as one line ``<file>:<line>: <what is wrong>``, the line being the
    one of the offending key or table, e.g. ``systems.ozmap: unknown key "tokn"``. Secret values are never quoted.
    """
    cfg_path = Path(path)
    env = dict(os.environ) if environ is None else environ
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{cfg_path}: cannot read config file: {exc.strerror}") from None
    raw = _parse_toml(cfg_path, text)
    where = _Where(cfg_path, Locator(text))
    parsed = _decode(raw, where)
    _check_kinds(parsed, where)
    base = cfg_path.parent
    systems = {
        name: SystemConfig(
            name=name,
            kind=section.kind,
            url=section.url.rstrip("/"),
            secret=(
                Secret("")
                if section.kind in SECRETLESS_KINDS and section.secret == SecretRef()
                else _resolve_secret(section.secret, base, env, where.at("systems", name, "secret"))
            ),
            http=section.http,
            webhook_secret=(
                _resolve_secret(
                    section.webhook_secret, base, env, where.at("systems", name, "webhook-secret")
                )
                if section.webhook_secret is not None
                else None
            ),
        )
        for name, section in parsed.systems.items()
    }
    integrations = {
        name: IntegrationConfig(
            name=name,
            entities=tuple(section.entities) if section.entities is not None else None,
            rules_dir=(base / section.rules) if section.rules else None,
            options=dict(section.options),
        )
        for name, section in parsed.integrations.items()
        if section.enabled
    }
    return Config(
        path=cfg_path,
        state_path=base / parsed.state.path,
        systems=systems,
        integrations=integrations,
        max_inactivate_share=parsed.guard.max_inactivate_share,
        daemon=parsed.daemon,
        webhook_secret=(
            _resolve_secret(parsed.daemon.webhook_secret, base, env, where.at("daemon", "webhook-secret"))
            if parsed.daemon.webhook_secret is not None
            else None
        ),
    )


# --------------------------------------------------------------------------------------------- errors

_T = TypeVar("_T")
_UNKNOWN = re.compile(r"Object contains unknown field `(.*)`", re.DOTALL)
_MISSING = re.compile(r"Object missing required field `(.*)`", re.DOTALL)
_WRONG_TYPE = re.compile(r"Expected `([^`]*)`, got `(\w+)`")

#: Tables whose keys are names (of a system, an integration, a schedule override), decoded entry by entry
#: before the whole file: msgspec reports a dict key as ``[...]``, losing the name the message must give.
_NAMED_TABLES: tuple[tuple[tuple[str, ...], type[msgspec.Struct]], ...] = (
    (("systems",), SystemSection),
    (("integrations",), IntegrationSection),
    (("daemon", "schedules"), ScheduleOverride),
)
_SECRET_KEYS = frozenset({"secret", "webhook-secret"})
_SECRET_FORM = 'give { env = "VAR" } or { file = "path" }'


class _Where:
    """Turns a TOML key path into ``<file>:<line>: <dotted.path>: `` prefixes and errors."""

    def __init__(self, file: Path, locator: Locator) -> None:
        self.file = file
        self.locator = locator

    def at(self, *path: PathPart) -> str:
        """``<file>:<line of path>: <dotted path>`` (just ``<file>:<line>`` for the top level)."""
        prefix = f"{self.file}:{self.locator.line(path)}"
        return f"{prefix}: {dotted(path)}" if path else prefix

    def error(
        self, message: str, *path: PathPart, line_of: tuple[PathPart, ...] | None = None
    ) -> ConfigError:
        """A ConfigError about ``path``, at the line of ``line_of`` (default: of ``path``)."""
        line = self.locator.line(path if line_of is None else line_of)
        where = f"{dotted(path)}: " if path else ""
        return ConfigError(f"{self.file}:{line}: {where}{message}")


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        line, _, _ = toml_error_position(text, message)
        message = message[:1].lower() + message[1:]
        raise ConfigError(f"{path}:{line}: invalid TOML: {message}") from None


def _decode(raw: dict[str, Any], where: _Where) -> ConfigFile:
    for keys, entry_type in _NAMED_TABLES:
        table: Any = raw
        for key in keys:
            table = table.get(key) if isinstance(table, Mapping) else None
        if isinstance(table, Mapping):
            for name, entry in table.items():
                _convert(entry, entry_type, (*keys, name), where)
    return _convert(raw, ConfigFile, (), where)


def _convert(raw: Any, kind: type[_T], prefix: tuple[PathPart, ...], where: _Where) -> _T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        message, path = split_msgspec_error(str(exc))
        raise _explain(message, prefix + path, where) from None


def _explain(message: str, path: tuple[PathPart, ...], where: _Where) -> ConfigError:
    """msgspec's ``message`` about ``path`` in words, never quoting a secret's value."""
    if unknown := _UNKNOWN.fullmatch(message):
        key = unknown.group(1)
        text = f'unknown key "{key}"' if path else f'unknown top-level key "{key}"'
        return where.error(text, *path, line_of=(*path, key))
    if missing := _MISSING.fullmatch(message):
        return where.error(f'missing key "{missing.group(1)}"', *path)
    wrong = _WRONG_TYPE.fullmatch(message)
    if _is_secret(path):
        if wrong is not None and path[-1] in _SECRET_KEYS and wrong.group(2) == "str":
            return where.error(f"a secret is never written in the config file: {_SECRET_FORM}", *path)
        if wrong is None:  # only type names are safe to show: other messages may quote the value
            return where.error(f"invalid secret reference: {_SECRET_FORM}", *path)
    text = message.replace("`", "").replace(" | null", "").replace("object", "table")
    text = text.replace("Invalid enum value", "invalid value")
    return where.error(text[:1].lower() + text[1:], *path)


def _is_secret(path: tuple[PathPart, ...]) -> bool:
    """Whether ``path`` is (inside) a system's or the daemon's secret reference."""
    if path[:1] == ("systems",):
        return len(path) > 2 and path[2] in _SECRET_KEYS
    return path[:2] == ("daemon", "webhook-secret")


def _check_kinds(parsed: ConfigFile, where: _Where) -> None:
    from reconciler.connectors.registry import KINDS  # here: the registry imports this module

    for name, section in parsed.systems.items():
        if section.kind not in KINDS:
            known = ", ".join(sorted(KINDS))
            message = f'unknown system kind "{section.kind}" (known: {known})'
            raise where.error(message, "systems", name, line_of=("systems", name, "kind"))


def _resolve_secret(ref: SecretRef, base: Path, env: dict[str, str], where: str) -> Secret:
    if (ref.env is None) == (ref.file is None):
        raise ConfigError(f'{where}: give exactly one of env = "VAR" or file = "path"')
    if ref.env is not None:
        value = env.get(ref.env)
        if not value:
            raise ConfigError(f"{where}: environment variable {ref.env} is not set")
        return Secret(value.strip())
    assert ref.file is not None
    secret_path = base / ref.file
    try:
        value = secret_path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read secret file {secret_path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{where}: secret file {secret_path} is empty")
    return Secret(value)
