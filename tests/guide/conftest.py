"""Guide fixtures: the OZmap sandbox on loopback with :mod:`.world`, the guide services over real HTTP, a config.

Nothing of ours is mocked: operations go through :class:`GuideCalls` → Transport → aiohttp → the sandbox, and
tests read the sandbox's store afterwards, as another system's UI would show it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler import config as config_mod
from reconciler.connectors.http import make_session
from reconciler.connectors.ozmap.guide_calls import GuideCalls
from reconciler.guide.http import Services, ozmap_system
from reconciler.sandbox.ozmap import OzmapStore
from reconciler.sandbox.ozmap import create_app as create_ozmap_app
from tests.integration.conftest import OZMAP_KEY, _serve

from . import world

SECRET = "guide-secret-" + "7e" * 12


@dataclass
class Env:
    store: OzmapStore
    url: str
    config_path: Path
    services: Services

    @property
    def config(self) -> config_mod.Config:
        return config_mod.load(self.config_path)

    def client(self, code: str) -> dict[str, Any]:
        return next(c for c in self.store.all("ftth-clients") if c["code"] == code)

    def properties_of(self, code: str) -> list[dict[str, Any]]:
        client = self.client(code)
        return [p for p in self.store.all("properties") if p.get("client") == client["id"]]

    def outputs(self, splitter: str) -> list[Any]:
        row = self.store.get("splitters", splitter)
        assert row is not None
        return list(row["connectables"]["output"])


def write_config(tmp: Path, url: str) -> Path:
    (tmp / "ozmap.key").write_text(OZMAP_KEY)
    (tmp / "webhook").write_text(SECRET)
    path = tmp / "reconciler.toml"
    path.write_text(
        f"""
[state]
path = "state.db"

[systems.ozmap]
kind = "ozmap"
url = "{url}"
secret = {{ file = "ozmap.key" }}
[systems.ozmap.http]
retries = 2
backoff = 0.01
timeout = 5

[daemon]
listen = "127.0.0.1:0"
webhook-secret = {{ file = "webhook" }}
"""
    )
    return path


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    store = OzmapStore(api_keys={OZMAP_KEY: "integration"})
    world.load(store)
    runner, url = await _serve(create_ozmap_app(store))
    path = write_config(tmp_path, url)
    system = ozmap_system(config_mod.load(path))
    assert system is not None
    try:
        async with make_session(system.http, limit=4) as session:
            yield Env(store, url, path, Services.over(GuideCalls.for_system(system, session)))
    finally:
        await runner.cleanup()
