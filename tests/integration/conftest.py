"""End-to-end fixtures: real OZmap and IXC sandbox servers on loopback, a config pointing at them, an Engine.

Worlds are built by hand here (not by the generator) so each test knows exactly which record exercises which
rule of seed 002.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from reconciler import config as config_mod
from reconciler.sandbox.ixc import IxcStore
from reconciler.sandbox.ixc import create_app as create_ixc_app
from reconciler.sandbox.ozmap import OzmapStore
from reconciler.sandbox.ozmap import create_app as create_ozmap_app

OZMAP_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJtb2R1bGUiOiJhcGkiLCJ1c2VyIjoidGVzdCJ9.c2lnbmF0dXJl"
IXC_TOKEN = "17:" + "9c1e" * 16

TS = "2025-01-01T00:00:00.000Z"


def oid(n: int) -> str:
    """A 24-hex ObjectId-like id."""
    return f"{n:024x}"


@dataclass
class Sandboxes:
    """Running sandboxes plus helpers to build worlds and talk to the control API."""

    ozmap: OzmapStore
    ixc: IxcStore
    ozmap_url: str
    ixc_url: str
    tmp: Path
    options: dict[str, Any] = field(default_factory=dict)

    def config(self, entities: Sequence[str] | None = ("boxes",), **options: Any) -> config_mod.Config:
        """Write a config (secrets in files) and load it; ``entities`` None runs every rule file."""
        secrets = self.tmp / "secrets"
        secrets.mkdir(exist_ok=True)
        (secrets / "ozmap.key").write_text(OZMAP_KEY)
        (secrets / "ixc.token").write_text(IXC_TOKEN)
        chosen = "" if entities is None else "entities = [" + ", ".join(f'"{e}"' for e in entities) + "]"
        opts = "\n".join(
            f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}" for k, v in options.items()
        )
        text = f"""
[state]
path = "state.db"

[systems.ozmap]
kind = "ozmap"
url = "{self.ozmap_url}"
secret = {{ file = "secrets/ozmap.key" }}
[systems.ozmap.http]
retries = 3
backoff = 0.05
backoff-max = 0.5
timeout = 5

[systems.ixc]
kind = "ixc"
url = "{self.ixc_url}"
secret = {{ file = "secrets/ixc.token" }}
[systems.ixc.http]
retries = 3
backoff = 0.05
backoff-max = 0.5
timeout = 5

[integrations.ozmap-ixc]
{chosen}
[integrations.ozmap-ixc.options]
{opts}
"""
        path = self.tmp / "reconciler.toml"
        path.write_text(text)
        return config_mod.load(path)

    async def control(self, system: str, method: str, path: str, body: Any = None) -> Any:
        base = self.ozmap_url if system == "ozmap" else self.ixc_url
        async with aiohttp.ClientSession() as http:
            async with http.request(method, f"{base}/_sandbox/{path}", json=body) as resp:
                assert resp.status < 400, await resp.text()
                if resp.status == 204:
                    return None
                return await resp.json(content_type=None)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def sandboxes(tmp_path: Path) -> AsyncIterator[Sandboxes]:
    ozmap = OzmapStore(api_keys={OZMAP_KEY: "integration"})
    ixc = IxcStore(tokens={IXC_TOKEN: "pt-BR"})
    oz_runner, oz_url = await _serve(create_ozmap_app(ozmap))
    ixc_runner, ixc_url = await _serve(create_ixc_app(ixc))
    try:
        yield Sandboxes(ozmap, ixc, oz_url, ixc_url, tmp_path)
    finally:
        await oz_runner.cleanup()
        await ixc_runner.cleanup()


# ------------------------------------------------------------------ world building (API-shaped records)


def ozmap_box(
    n: int,
    name: str,
    project: str,
    *,
    implanted: bool = True,
    lat: float | None = -27.59,
    lng: float | None = -48.55,
    observation: str = "",
    updated: str = TS,
) -> dict[str, Any]:
    coords = [lng, lat] if lat is not None and lng is not None else None
    return {
        "id": oid(n),
        "_id": oid(n),
        "kind": "Box",
        "name": name,
        "project": project,
        "coords": coords,
        "lat": lat,
        "lng": lng,
        "hierarchyLevel": 3,
        "boxType": oid(9000),
        "implanted": implanted,
        "draft": False,
        "certified": False,
        "shared": False,
        "default_reserve": 0,
        "observation": observation,
        "address": "",
        "tags": [],
        "cables": [],
        "createdAt": TS,
        "updatedAt": updated,
    }


def ozmap_splitter(
    n: int,
    parent: str,
    project: str,
    *,
    is_drop: bool,
    inputs: list[str | None],
    outputs: list[str | None],
    name: str = "Splitter 1",
) -> dict[str, Any]:
    return {
        "id": oid(n),
        "_id": oid(n),
        "kind": "Splitter",
        "parent": parent,
        "project": project,
        "splitterType": oid(9001),
        "name": name,
        "isDrop": is_drop,
        "implanted": True,
        "ratio": {"input": len(inputs), "output": len(outputs)},
        "connectables": {"input": inputs, "output": outputs},
        "ports": [
            {"index": i + 1, "id": f"{oid(n)}-{i}", "blocked": False, "tags": []} for i in range(len(outputs))
        ],
        "attenuation": [],
        "currentPower": [None] * len(outputs),
        "installPower": [None] * len(outputs),
        "createdAt": TS,
        "updatedAt": TS,
    }


def load(store: OzmapStore | IxcStore, collection: str, rows: Iterable[dict[str, Any]]) -> None:
    store.load(collection, list(rows))


def ixc_box(box_id: str, name: str, project: str, **fields: str) -> dict[str, str]:
    row = {
        "id": box_id,
        "descricao": name,
        "tipo": "P",
        "id_projeto": project,
        "id_transmissor": "2",
        "capacidade": "16",
        "latitude": "-27.59",
        "longitude": "-48.55",
        "codigo_estilo_caixa": "7eTTWpDR",
        "obs_caixa_ftth": "",
        "status": "A",
    }
    row.update(fields)
    return row
