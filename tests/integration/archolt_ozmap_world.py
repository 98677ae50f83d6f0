"""A hand-built OZmap network and ArchOLT install for seed 003 (ArchOLT ↔ OZmap), served over HTTP.

OZmap (project Centro): OLT-A, OLT-B and OLT-C, each OLT → slot → PON → a network splitter in a CE box feeding
the service splitters (1x8) of CTO-A1, CTO-A2 (OLT-A), CTO-B1 (OLT-B) and CTO-C1 (OLT-C). Besides them: CTO-SOLTA,
whose splitter has no input fibre (connected to no OLT), CTO-PROJ (in project, not implanted) and fibre ``f-a9``
of OLT-A's network splitter, free for a box added by a test (:func:`add_box`).

ArchOLT: OLT-A (1, mapped to OLT-A, "require CTO on activation"), OLT-B (2, mapped, no requirement), OLT-SUL (3,
the OZmap OLT-C, *not* mapped) and OLT-NOVA (4, mapped to an id OZmap does not have). No CTO mirrors and no ONUs:
the box sync loads the mirrors, tests provision ONUs like a technician (:meth:`Env.provision`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from aiohttp import web

from reconciler import config as config_mod
from reconciler.engine import Engine, IntegrationRun
from reconciler.model import EntityPlan
from reconciler.sandbox.archolt import DEFAULT_TOKEN, ArcholtStore, bearer
from reconciler.sandbox.archolt import create_app as create_archolt_app
from reconciler.sandbox.ozmap import OzmapStore
from reconciler.sandbox.ozmap import create_app as create_ozmap_app

from .conftest import OZMAP_KEY, TS, oid, ozmap_box, ozmap_splitter

INTEGRATION = "archolt-ozmap"
CENTRO = oid(1)
OLT_A, OLT_B, OLT_C = oid(10), oid(11), oid(12)
GHOST_OLT = oid(99)  # OLT-NOVA's mapping: OZmap has no such OLT
CTO_A1, CTO_A2, CTO_B1, CTO_C1, CTO_LOOSE, CTO_PLAN = (oid(n) for n in range(110, 116))
CTO_A3 = oid(116)  # added by add_box
S_A1, S_A2, S_B1, S_C1, S_LOOSE, S_PLAN = (oid(n) for n in range(210, 216))
S_A3 = oid(216)
#: ArchOLT OLT ids
ARCH_A, ARCH_B, ARCH_SUL, ARCH_NOVA = 1, 2, 3, 4
BOX_LAT, BOX_LNG = -23.5505, -46.6333


@dataclass
class Env:
    """Both sandboxes, their stores and a config pointing at them."""

    ozmap: OzmapStore
    archolt: ArcholtStore
    ozmap_url: str
    archolt_url: str
    tmp: Path

    def config(self, entities: tuple[str, ...] | None = None, **options: Any) -> config_mod.Config:
        secrets = self.tmp / "secrets"
        secrets.mkdir(exist_ok=True)
        (secrets / "ozmap.key").write_text(OZMAP_KEY)
        (secrets / "archolt.token").write_text(DEFAULT_TOKEN)
        chosen = "" if entities is None else "entities = [" + ", ".join(f'"{e}"' for e in entities) + "]"
        opts = "\n".join(f"{k} = {str(v).lower()}" for k, v in options.items())
        http = "[systems.{0}.http]\nretries = 3\nbackoff = 0.05\nbackoff-max = 1\ntimeout = 5\n"
        text = f"""
[state]
path = "state.db"

[systems.ozmap]
kind = "ozmap"
url = "{self.ozmap_url}"
secret = {{ file = "secrets/ozmap.key" }}
{http.format("ozmap")}
[systems.archolt]
kind = "archolt"
url = "{self.archolt_url}"
secret = {{ file = "secrets/archolt.token" }}
{http.format("archolt")}
[integrations.{INTEGRATION}]
{chosen}
[integrations.{INTEGRATION}.options]
{opts}
"""
        path = self.tmp / "reconciler.toml"
        path.write_text(text)
        return config_mod.load(path)

    async def run(self, cfg: config_mod.Config, **kwargs: Any) -> IntegrationRun:
        async with Engine.open(cfg) as engine:
            return await engine.run(INTEGRATION, **kwargs)

    async def archolt_api(self, method: str, path: str, body: Any = None) -> Any:
        """ArchOLT's own API, as a technician's or operator's action in ArchOLT."""
        headers = {"Authorization": bearer(DEFAULT_TOKEN)}
        url = f"{self.archolt_url}/api/v1/{path}"
        async with aiohttp.ClientSession() as http:
            for _ in range(
                10
            ):  # the token is shared with the engine: wait out ArchOLT's rate limit like a client
                async with http.request(method, url, json=body, headers=headers) as resp:
                    if resp.status == 429:
                        await anyio.sleep(float(resp.headers.get("Retry-After", "1")))
                        continue
                    assert resp.status < 400, await resp.text()
                    return await resp.json(content_type=None)
        raise AssertionError(f"{method} {path}: still rate-limited after 10 attempts")

    async def ozmap_control(self, method: str, path: str, body: Any = None) -> Any:
        """OZmap's sandbox control API: a user editing in OZmap's UI."""
        async with aiohttp.ClientSession() as http:
            async with http.request(method, f"{self.ozmap_url}/_sandbox/{path}", json=body) as resp:
                assert resp.status < 400, await resp.text()
                return None if resp.status == 204 else await resp.json(content_type=None)

    async def provision(
        self, olt: int, serial: str, *, cto: str | None = None, login: str | None = None
    ) -> int:
        """A technician's activation (the rules of ``POST onus``, a CTO by name when given); returns the ONU id."""
        body: dict[str, Any] = {"olt_id": olt, "slot": 1, "pon": 1, "serial": serial, "model": "F670L"}
        if cto is not None:
            body["cto_name"] = cto
        if login is not None:
            body["login"] = login
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.archolt_url}/_sandbox/provision", json=body) as resp:
                assert resp.status == 201, await resp.text()
                return int((await resp.json())["id"])

    def mirrors(self) -> dict[str, dict[str, Any]]:
        """ArchOLT's CTO mirrors by OZmap box id."""
        return {c["ozmap_box_id"]: c for c in self.archolt.all("ctos")}

    def clients(self) -> dict[str, dict[str, Any]]:
        """Live OZmap clients by code."""
        return {c["code"]: c for c in self.ozmap.all("ftth-clients")}

    def property_of(self, client_id: str) -> dict[str, Any]:
        (prop,) = [p for p in self.ozmap.all("properties") if p.get("client") == client_id]
        return prop


def entity(result: IntegrationRun, name: str) -> EntityPlan:
    return next(e for e in result.plan.entities if e.entity == name)


def by_label(plan: EntityPlan) -> dict[str, Any]:
    return {a.label: a for a in plan.actions}


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def serving(tmp: Path) -> AsyncIterator[Env]:
    """Both sandboxes with the world above, on loopback."""
    ozmap = OzmapStore(api_keys={OZMAP_KEY: "integration"})
    archolt = ArcholtStore()
    load_world(ozmap, archolt)
    oz_runner, oz_url = await _serve(create_ozmap_app(ozmap))
    arch_runner, arch_url = await _serve(create_archolt_app(archolt))
    try:
        yield Env(ozmap, archolt, oz_url, arch_url, tmp)
    finally:
        await oz_runner.cleanup()
        await arch_runner.cleanup()


def load_world(oz: OzmapStore, arch: ArcholtStore) -> None:
    oz.load("projects", [{"id": CENTRO, "name": "Centro", "createdAt": TS, "updatedAt": TS}])
    olts, slots, pons, splitters = [], [], [], []
    boxes = [ozmap_box(100 + k, f"CE-{k + 1}", CENTRO, lat=BOX_LAT, lng=BOX_LNG) for k in range(3)]
    for k, (olt, name) in enumerate(((OLT_A, "OLT-A"), (OLT_B, "OLT-B"), (OLT_C, "OLT-C"))):
        slot, pon, feed = oid(20 + k), oid(30 + k), f"f-pon-{k}"
        olts.append({"id": olt, "kind": "OLT", "name": name, "ip": f"10.0.0.{k + 1}", "connectables": [slot]})
        slots.append({"id": slot, "parent": olt, "connectables": [pon]})
        pons.append({"id": pon, "parent": slot, "connectables": [feed]})
        outputs: list[str | None] = [f"f-{'abc'[k]}{i}" for i in range(1, 10)]
        splitters.append(
            ozmap_splitter(200 + k, oid(100 + k), CENTRO, is_drop=False, inputs=[feed], outputs=outputs)
        )
    for row in (*olts, *slots, *pons):
        row.update(createdAt=TS, updatedAt=TS)
    oz.load("olts", olts)
    oz.load("slots", slots)
    oz.load("pons", pons)
    services = {  # box n → (name, input fibre, implanted)
        110: ("CTO-A1", "f-a1", True),
        111: ("CTO-A2", "f-a2", True),
        112: ("CTO-B1", "f-b1", True),
        113: ("CTO-C1", "f-c1", True),
        114: ("CTO-SOLTA", None, True),
        115: ("CTO-PROJ", "f-a3", False),
    }
    for n, (name, fibre, implanted) in services.items():
        boxes.append(ozmap_box(n, name, CENTRO, implanted=implanted, lat=BOX_LAT + n / 1e4, lng=BOX_LNG))
        splitters.append(
            ozmap_splitter(n + 100, oid(n), CENTRO, is_drop=True, inputs=[fibre], outputs=[None] * 8)
        )
    oz.load("boxes", boxes)
    oz.load("splitters", splitters)
    ports = [{"slot": 1, "pon": 1, "max_onus": 128}]
    arch.load(
        "olts",
        [
            {"id": ARCH_A, "name": "OLT-A", "ip": "10.0.0.1", "ozmap_olt_id": OLT_A,
             "require_cto_on_activation": True, "pon_ports": ports},
            {"id": ARCH_B, "name": "OLT-B", "ip": "10.0.0.2", "ozmap_olt_id": OLT_B, "pon_ports": ports},
            {"id": ARCH_SUL, "name": "OLT-SUL", "ip": "10.0.0.3", "ozmap_olt_id": None, "pon_ports": ports},
            {"id": ARCH_NOVA, "name": "OLT-NOVA", "ip": "10.0.0.9", "ozmap_olt_id": GHOST_OLT, "pon_ports": ports},
        ],
    )  # fmt: skip


def add_box(oz: OzmapStore) -> None:
    """A new box CTO-A3 on OLT-A's free fibre ``f-a9`` (a field team's addition)."""
    oz.load("boxes", [ozmap_box(116, "CTO-A3", CENTRO, lat=BOX_LAT, lng=BOX_LNG + 0.01, updated=oz.stamp())])
    oz.load(
        "splitters", [ozmap_splitter(216, CTO_A3, CENTRO, is_drop=True, inputs=["f-a9"], outputs=[None] * 8)]
    )
