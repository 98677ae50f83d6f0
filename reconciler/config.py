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
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from reconciler.errors import ConfigError

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
    """Read, validate and resolve a config file. Every problem raises :class:`ConfigError` naming the file."""
    cfg_path = Path(path)
    env = dict(os.environ) if environ is None else environ
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{cfg_path}: cannot read config file: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: {exc}") from None
    try:
        parsed = msgspec.convert(raw, ConfigFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{cfg_path}: {exc}") from None
    base = cfg_path.parent
    systems = {
        name: SystemConfig(
            name=name,
            kind=section.kind,
            url=section.url.rstrip("/"),
            secret=(
                Secret("")
                if section.kind in SECRETLESS_KINDS and section.secret == SecretRef()
                else _resolve_secret(section.secret, base, env, f"{cfg_path}: systems.{name}.secret")
            ),
            http=section.http,
            webhook_secret=(
                _resolve_secret(
                    section.webhook_secret, base, env, f"{cfg_path}: systems.{name}.webhook-secret"
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
            _resolve_secret(parsed.daemon.webhook_secret, base, env, f"{cfg_path}: daemon.webhook-secret")
            if parsed.daemon.webhook_secret is not None
            else None
        ),
    )


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
