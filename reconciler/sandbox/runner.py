"""Run the sandbox servers: generate a world, load it into the fake systems, serve them over HTTP.

Library use (tests, benchmarks)::

    async with running(["ozmap", "ixc"], seed=42, scale=1000) as sandboxes:
        sandboxes["ozmap"].url      # "http://127.0.0.1:<port>"; the connector appends /api/v2
        sandboxes["ixc"].secret     # "<user id>:<64 hex>"; the connector appends /webservice/v1 to the url
        sandboxes.write_config(tmp_path / "sandbox.toml")

Command line (``reconciler sandbox …`` calls :func:`add_arguments` and :func:`run`; ``python -m
reconciler.sandbox.runner`` works too): prints each system's URL and credentials, optionally writes an engine
config with its secret files, then serves until SIGINT/SIGTERM.

Credentials derive from the seed, so one seed always yields the same key/token: OZmap gets an API key shaped like
OZmap's own (an HS256 JWT with ``module: "api"``, no ``exp``) plus a login/password pair; IXC gets a
``"<user id>:<64 hex>"`` token; ArchOLT a ``read_write`` Bearer token, its install built from the world's OZmap
OLTs and boxes (:mod:`~reconciler.sandbox.generate_archolt`); Vetro a ``token``, COS BE an environment and API key
(plus the secret its change webhooks are signed with), both seeded by :mod:`~reconciler.sandbox.vetro_seed` and
:mod:`~reconciler.sandbox.cosbe_seed` with one service location per ten units of scale. Ports: ``port_base`` 0 picks free ports; otherwise OZmap listens on ``port_base``,
IXC on ``port_base + 1`` (later systems continue the sequence).

Generation is synchronous and runs before the servers start (about a minute at scale 1 000 000). Like every
sandbox module this imports only aiohttp, msgspec, the stdlib and ``reconciler.sandbox``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import hmac
import json
import os
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from reconciler.sandbox import archolt, cosbe, cosbe_seed, generate_archolt, ixc, ozmap, vetro, vetro_seed
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.generate import World

__all__ = [
    "SYSTEMS",
    "Credentials",
    "SandboxSystem",
    "Sandboxes",
    "add_arguments",
    "credentials",
    "main",
    "run",
    "running",
]

SYSTEMS = ("ozmap", "ixc", "archolt", "vetro", "cosbe")
"""Systems the runner knows, in port order (``port_base + index``)."""

API_PATHS = {
    "ozmap": "/api/v2",
    "ixc": "/webservice/v1",
    "archolt": "/api/v1",
    "vetro": "/v3",
    "cosbe": "/v1",
}
SECRET_FILES = {
    "ozmap": "ozmap.key",
    "ixc": "ixc.token",
    "archolt": "archolt.token",
    "vetro": "vetro.token",
    "cosbe": "cosbe.key",
}
COSBE_WEBHOOK_FILE = "cosbe.webhook"
OZMAP_USER = "reconciler"


@dataclass(frozen=True)
class Credentials:
    """The sandbox credentials of one seed."""

    ozmap_key: str
    ozmap_login: str
    ozmap_password: str
    ixc_token: str
    archolt_token: str = ""
    vetro_token: str = ""
    cosbe_environment: str = ""
    cosbe_key: str = ""
    cosbe_webhook_secret: str = ""
    """COS BE signs its change webhooks with it (``X-COS-Signature``); the daemon checks them with it."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def credentials(seed: int) -> Credentials:
    """Deterministic credentials for ``seed``: a JWT-shaped OZmap API key, a login, and an IXC token."""
    digest = hashlib.sha256(f"reconciler-sandbox:{seed}".encode()).digest()
    user_id = digest[:12].hex()
    issued = 1_735_689_600 + int.from_bytes(digest[12:15]) % 86_400  # 2025-01-01 plus up to a day
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"module": "api", "user": user_id, "creationDate": issued * 1000, "iat": issued}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64url(hmac.new(digest, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    token_hash = hashlib.sha256(b"ixc:" + digest).hexdigest()
    return Credentials(
        ozmap_key=f"{header}.{payload}.{signature}",
        ozmap_login=OZMAP_USER,
        ozmap_password=hashlib.sha256(b"password:" + digest).hexdigest()[:20],
        ixc_token=f"{10 + digest[15] % 90}:{token_hash}",
        archolt_token=hashlib.sha256(b"archolt:" + digest).hexdigest()[:40],
        vetro_token=hashlib.sha256(b"vetro:" + digest).hexdigest()[:40],
        cosbe_environment=f"sandbox-{seed}",
        cosbe_key=hashlib.sha256(b"cosbe:" + digest).hexdigest()[:32],
        cosbe_webhook_secret="whsec-" + hashlib.sha256(b"cosbe-webhook:" + digest).hexdigest()[:32],
    )


@dataclass(frozen=True)
class SandboxSystem:
    """One running sandbox server."""

    name: str
    url: str
    """Base URL without the API path (OZmap: the connector appends ``/api/v2``; IXC: ``/webservice/v1``)."""
    secret: str
    """What the engine config's ``secret`` holds: OZmap API key or IXC ``"<id>:<hash>"`` token."""
    store: Any
    """The in-memory data (:class:`~reconciler.sandbox.ozmap.OzmapStore` or :class:`~reconciler.sandbox.ixc.IxcStore`)."""
    faults: Faults
    world: World

    @property
    def api_url(self) -> str:
        """The URL including the system's API path."""
        return self.url + API_PATHS[self.name]

    @property
    def control_url(self) -> str:
        """Base of the sandbox control API (faults, request log, store editing)."""
        return f"{self.url}/_sandbox/"


class Sandboxes:
    """The running sandboxes of one world, by system name."""

    def __init__(self, world: World, systems: dict[str, SandboxSystem], credentials: Credentials) -> None:
        self.world = world
        self.systems = systems
        self.credentials = credentials
        self.generated_seconds = 0.0

    def __getitem__(self, name: str) -> SandboxSystem:
        return self.systems[name]

    def __contains__(self, name: object) -> bool:
        return name in self.systems

    def __iter__(self) -> Iterator[SandboxSystem]:
        return iter(self.systems.values())

    def config_text(
        self, *, state_path: str = "reconciler-state.db", secrets_dir: str = "sandbox.secrets"
    ) -> str:
        """The engine config (TOML) pointing at these sandboxes; secrets by file reference under ``secrets_dir``."""
        world = self.world
        lines = [
            f"# Engine config for the sandboxes of seed {world.seed}, scale {world.scale}",
            "# (written by the sandbox runner; secrets live in the files it names).",
            "",
            "[state]",
            f"path = {_toml_str(state_path)}",
        ]
        for system in self:
            secret_file = f"{secrets_dir}/{SECRET_FILES[system.name]}"
            lines += [
                "",
                f"[systems.{system.name}]",
                f"kind = {_toml_str(system.name)}",
                f"url = {_toml_str(system.url)}",
                f"secret = {{ file = {_toml_str(secret_file)} }}",
            ]
            if system.name == "cosbe":
                lines.append(
                    f"webhook-secret = {{ file = {_toml_str(f'{secrets_dir}/{COSBE_WEBHOOK_FILE}')} }}"
                )
        if "ozmap" in self and "ixc" in self:
            lines += ["", "[integrations.ozmap-ixc]", "", "[integrations.ozmap-ixc.options]"]
            lines.append("create_box_without_olt = false")
        if "ozmap" in self and "archolt" in self:
            lines += ["", "[integrations.archolt-ozmap]"]
        if "vetro" in self and "cosbe" in self:
            lines += _cosbe_vetro_lines(self["vetro"].url)
        return "\n".join(lines) + "\n"

    def write_config(
        self, path: Path, *, state_path: str = "reconciler-state.db", secrets_dir: str = "sandbox.secrets"
    ) -> Path:
        """Write :meth:`config_text` to ``path`` and the secret files (0600) into ``secrets_dir`` (0700) next to it."""
        path = Path(path)
        folder = path.parent / secrets_dir
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        for system in self:
            _write_private(folder / SECRET_FILES[system.name], system.secret + "\n")
        if "cosbe" in self:
            _write_private(folder / COSBE_WEBHOOK_FILE, self.credentials.cosbe_webhook_secret + "\n")
        path.write_text(self.config_text(state_path=state_path, secrets_dir=secrets_dir), encoding="utf-8")
        return path


def _cosbe_vetro_lines(vetro_url: str) -> list[str]:
    """The integration of COS BE with Vetro (deep links to the sandbox's map page, the metadata mapped onto Vetro
    attributes) and request rates under the sandboxes' limits (vetro.md V8, cosbe.md C9)."""
    mapping = ", ".join(
        f"{_toml_str(n)} = {_toml_str(n)}" for n in ("Survey Done", "Install Notes", "Splice Tray")
    )
    return [
        "",
        "[systems.cosbe.http]",
        "rate-limit = 18",
        "",
        "[systems.vetro.http]",
        "rate-limit = 9",
        "",
        "[integrations.cosbe-vetro]",
        "[integrations.cosbe-vetro.options]",
        f"vetro_map_url = {_toml_str(vetro_url + '/ui/feature/{1}?plan_id={0}')}",
        f"metadata_attributes = {{ {mapping} }}",
    ]


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


def _check_systems(systems: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(systems))
    unknown = [name for name in wanted if name not in SYSTEMS]
    if unknown or not wanted:
        raise ValueError(f"unknown sandbox system(s) {unknown}; choose among {', '.join(SYSTEMS)}")
    return wanted


def _build_apps(
    world: World, wanted: list[str], creds: Credentials
) -> dict[str, tuple[web.Application, Any, Faults, str]]:
    oz_store = ozmap.OzmapStore(
        api_keys={creds.ozmap_key: OZMAP_USER}, logins={creds.ozmap_login: creds.ozmap_password}
    )
    ixc_store = ixc.IxcStore(tokens={creds.ixc_token: "pt-BR"})
    world.load_into(oz_store if "ozmap" in wanted else None, ixc_store if "ixc" in wanted else None)
    oz_store.build_query_indexes()
    apps: dict[str, tuple[web.Application, Any, Faults, str]] = {}
    if "ozmap" in wanted:
        app = ozmap.create_app(oz_store)
        apps["ozmap"] = (app, oz_store, app[ozmap.FAULTS_KEY], creds.ozmap_key)
    if "ixc" in wanted:
        app = ixc.create_app(ixc_store)
        apps["ixc"] = (app, ixc_store, app[ixc.FAULTS_KEY], creds.ixc_token)
    if "archolt" in wanted:  # an ArchOLT install mirroring the world's OZmap OLTs and boxes
        arch_store = archolt.ArcholtStore(tokens={creds.archolt_token: "read_write"})
        now = datetime.fromtimestamp(arch_store.now(), UTC)
        for name, rows in generate_archolt.world_rows(world, now=now).items():
            arch_store.load(name, rows)
        app = archolt.create_app(arch_store)
        apps["archolt"] = (app, arch_store, app[archolt.FAULTS_KEY], creds.archolt_token)
    size = max(20, world.scale // 10)  # service locations (and, for part of them, COS objects)
    if "vetro" in wanted:
        vetro_store = vetro.VetroStore(tokens={creds.vetro_token: vetro.TokenScope()}, seed=world.seed)
        vetro_seed.seed_into(vetro_store, seed=world.seed, size=size)
        app = vetro.create_app(vetro_store)
        apps["vetro"] = (app, vetro_store, app[vetro.FAULTS_KEY], creds.vetro_token)
    if "cosbe" in wanted:
        key = cosbe.ApiKey(environment=creds.cosbe_environment)
        cos_store = cosbe.CosbeStore(keys={creds.cosbe_key: key}, seed=world.seed)
        cos_store.webhooks.secret = creds.cosbe_webhook_secret
        cosbe_seed.seed_into(cos_store, seed=world.seed, size=size)
        app = cosbe.create_app(cos_store)
        apps["cosbe"] = (
            app,
            cos_store,
            app[cosbe.FAULTS_KEY],
            f"{creds.cosbe_environment}:{creds.cosbe_key}",
        )
    return apps


@contextlib.asynccontextmanager
async def running(
    systems: Sequence[str],
    *,
    seed: int,
    scale: int,
    host: str = "127.0.0.1",
    port_base: int = 0,
    cosbe_webhook: str | None = None,
) -> AsyncIterator[Sandboxes]:
    """Generate the world of ``(seed, scale)``, load it and serve ``systems`` until the block exits.

    ``cosbe_webhook``: where COS BE delivers its change webhooks (the daemon's ``/webhooks/cosbe-vetro/objects``),
    when known; ``POST /_sandbox/webhook`` on the COS sandbox sets it later."""
    wanted = _check_systems(systems)
    started = time.perf_counter()
    world = World(seed=seed, scale=scale)
    creds = credentials(seed)
    apps = _build_apps(world, wanted, creds)
    if cosbe_webhook is not None and "cosbe" in apps:
        apps["cosbe"][1].webhooks.url = cosbe_webhook
    generated = time.perf_counter() - started
    async with contextlib.AsyncExitStack() as stack:
        running_systems: dict[str, SandboxSystem] = {}
        for name, (app, store, faults, secret) in apps.items():
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            port = port_base + SYSTEMS.index(name) if port_base else 0
            await web.TCPSite(runner, host, port).start()
            bound = runner.addresses[0][1]
            url_host = f"[{host}]" if ":" in host else host
            running_systems[name] = SandboxSystem(
                name, f"http://{url_host}:{bound}", secret, store, faults, world
            )
        sandboxes = Sandboxes(world, running_systems, creds)
        sandboxes.generated_seconds = generated
        yield sandboxes


# -------------------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox options to ``parser`` (shared by ``reconciler sandbox`` and ``python -m …runner``)."""
    parser.add_argument(
        "--systems", default="ozmap,ixc", help="comma-separated systems to serve (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=42, help="world seed (default: %(default)s)")
    parser.add_argument(
        "--scale", type=int, default=1000, help="≈ service boxes + clients to generate (default: %(default)s)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port-base",
        type=int,
        default=18000,
        help="first port: ozmap = base, ixc = base + 1; 0 = free ports (default: %(default)s)",
    )
    parser.add_argument(
        "--write-config", metavar="FILE", type=Path, help="write an engine config (and secrets) here"
    )
    parser.add_argument(
        "--cosbe-webhook",
        metavar="URL",
        help="COS BE delivers its change webhooks here (the daemon's .../webhooks/cosbe-vetro/objects)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve the sandboxes described by ``args`` until SIGINT/SIGTERM; returns the exit code."""
    try:
        systems = _check_systems([s.strip() for s in str(args.systems).split(",") if s.strip()])
    except ValueError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_serve(args, systems))


#: Cyclic-GC thresholds of a sandbox process once its world is loaded (the default is (700, 10, 10)).
SANDBOX_GC_THRESHOLDS = (100_000, 50, 100)


def settle_heap() -> None:
    """Freeze the loaded world out of the cyclic collector and raise its thresholds (sandbox processes only).

    The stores hold millions of long-lived, acyclic rows, and the rows the engine writes are added to them. At the
    default thresholds the collector re-scans all of these again and again, which makes pauses of up to a second
    at 1M records. A real API server has no such pauses, and they would land at random in the cycles the
    benchmarks time. Reference cycles are still collected, only less often.
    """
    gc.freeze()
    gc.set_threshold(*SANDBOX_GC_THRESHOLDS)


async def _serve(args: argparse.Namespace, systems: list[str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running(
            systems,
            seed=args.seed,
            scale=args.scale,
            host=args.host,
            port_base=args.port_base,
            cosbe_webhook=getattr(args, "cosbe_webhook", None),
        ) as sandboxes:
            settle_heap()
            _report(sandboxes, args)
            await stop.wait()
            print("sandbox: stopping", flush=True)
    except OSError as exc:
        print(f"sandbox: cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0


def _report(sandboxes: Sandboxes, args: argparse.Namespace) -> None:
    world = sandboxes.world
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    summary = world.summary() if world.scale <= 200_000 else None
    out = [
        f"sandbox: world seed={world.seed} scale={world.scale} generated and loaded in "
        f"{sandboxes.generated_seconds:.1f} s (peak RSS {peak_mb:.0f} MB)"
    ]
    if summary is not None:
        out.append(
            f"sandbox: {summary['boxes']} boxes ({summary['service_boxes_eligible']} service boxes eligible), "
            f"{summary['clients']} clients, {summary['logins']} IXC logins"
        )
    creds = sandboxes.credentials
    for system in sandboxes:
        out.append(f"{system.name}: {system.url}  (API {system.api_url})")
        if system.name == "ozmap":
            out.append(f"  api key:  {creds.ozmap_key}")
            out.append(f"  login:    {creds.ozmap_login} / {creds.ozmap_password}")
        elif system.name == "archolt":
            out.append(f"  token:    {creds.archolt_token}  (Bearer)")
        elif system.name == "vetro":
            out.append(f"  token:    {creds.vetro_token}  (header 'token')")
        elif system.name == "cosbe":
            out.append(f"  key:      {creds.cosbe_key}  (BusinessEngine: {creds.cosbe_environment})")
            out.append(
                f"  webhooks: signed with {creds.cosbe_webhook_secret}; POST {system.control_url}webhook"
            )
        else:
            out.append(f"  token:    {creds.ixc_token}")
        out.append(f"  control:  {system.control_url}")
    if args.write_config is not None:
        path = sandboxes.write_config(args.write_config)
        out.append(f"config: {path} (secrets in {path.parent / 'sandbox.secrets'})")
    out.append("sandbox: serving; Ctrl-C or SIGTERM stops")
    print("\n".join(out), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reconciler.sandbox.runner``."""
    parser = argparse.ArgumentParser(
        prog="python -m reconciler.sandbox.runner", description="Serve the OZmap and IXC sandboxes."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
