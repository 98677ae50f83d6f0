"""The ``cosbe-vetro`` end-to-end world: Vetro FiberMap and COS BE sandboxes on loopback, and a config for them.

Worlds are built by hand (service locations and objects numbered ``n``) so each test knows exactly which record
exercises which part of seed 000: ``sl(n)`` is an importable service location (vetro_id ``vid(n)``, Vetro ID
``SL-000n``); ``cos_object(n, link=...)`` is a COS object linked to it by External Identification, by External
Service Location ID, or not at all. Both sandboxes run on the real clock with their rate limits off.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web

from reconciler import config as config_mod
from reconciler.sandbox import cosbe_seed, vetro_seed
from reconciler.sandbox.cosbe import DEFAULT_API_KEY, DEFAULT_ENVIRONMENT, CosbeStore
from reconciler.sandbox.cosbe import FAULTS_KEY as COS_FAULTS
from reconciler.sandbox.cosbe import create_app as create_cos_app
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.vetro import DEFAULT_TOKEN, VetroStore
from reconciler.sandbox.vetro import FAULTS_KEY as VETRO_FAULTS
from reconciler.sandbox.vetro import create_app as create_vetro_app

INTEGRATION = "cosbe-vetro"
IMPORT = "service-locations"
PUSH = "objects"
COS_SECRET = f"{DEFAULT_ENVIRONMENT}:{DEFAULT_API_KEY}"
COS_WEBHOOK_SECRET = "cos-whsec-" + "7d1e" * 8
GROUP_P2 = "6018366c-f658-47a7-9ed3-4fe53a096533"
GROUP_P3 = "cfaf0010-3f58-4ad4-a308-24d215ceb3a1"
GROUPS = [{"id": GROUP_P2, "name": "Montpelier Phase 2"}, {"id": GROUP_P3, "name": "Montpelier Phase 3"}]
#: The sandbox's metadata definitions mapped onto Vetro attributes by the tests' config.
METADATA_ATTRIBUTES = {"Survey Done": "Survey Done", "Install Notes": "Install Notes"}
OLD = "2025-05-01T10:00:00Z"

Link = Literal["id", "eslid", "both", "none"]


def vid(n: int) -> str:
    """The vetro_id of service location ``n``."""
    return f"00000000-0000-4000-8000-{n:012d}"


def oid(n: int) -> str:
    """The id of COS object ``n``."""
    return f"00000000-0000-4000-9000-{n:012d}"


def slid(n: int) -> str:
    """The Vetro ``ID`` attribute of service location ``n`` (COS: External Service Location ID)."""
    return f"SL-{n:04d}"


def sl(n: int, plan: int = 112, **props: Any) -> dict[str, Any]:
    """Service location ``n``: every auto-import condition holds unless ``props`` says otherwise (``...`` as a
    value leaves that attribute out)."""
    properties: dict[str, Any] = {
        "ID": slid(n),
        "Street Address": f"{n} Maple St",
        "City": "Montpelier",
        "State": "VT",
        "Zip Code": "05602",
        "Building Type": "Residential",
        "Address Import": "Yes",
        "Status": "In deployment",
        "Group Name": "Montpelier Phase 2",
    }
    properties.update(props)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-72.5 - n / 1000, 44.26]},
        "x-vetro": {
            "vetro_id": vid(n),
            "feature_id": 1000 + n,
            "layer_id": vetro_seed.SERVICE_LOCATION_LAYER_ID,
            "plan_id": plan,
            "created_time": "2025-02-01T00:00:00.000Z",
            "last_edited_time": "2025-05-01T10:00:00.000Z",
        },
        "properties": {k: v for k, v in properties.items() if v is not ...},
    }


def cos_object(n: int, *, link: Link = "both", **fields: Any) -> dict[str, Any]:
    """COS object ``n`` at the address of service location ``n``, linked to it as ``link`` says."""
    row: dict[str, Any] = {
        "id": oid(n),
        "objectNumber": 10_000 + n,
        "objectType": "SingleFamilyHome",
        "status": "InDeployment",
        "reachable": True,
        "serviceStatus": "AwaitingActivation",
        "dropInstalled": False,
        "group": {"id": GROUP_P2, "name": "Montpelier Phase 2"},
        "address": {
            "street": f"{n} Maple St",
            "unit": None,
            "city": "Montpelier",
            "state": "VT",
            "postalCode": "05602",
            "country": "US",
            "latitude": 44.26,
            "longitude": -72.5 - n / 1000,
        },
        "externalIdentification": vid(n) if link in ("id", "both") else None,
        "externalServiceLocationId": slid(n) if link in ("eslid", "both") else None,
        "metadata": [{"name": "Survey Done", "value": "false"}],
        "createdAt": "2025-02-11T09:20:11Z",
        "updatedAt": OLD,
        "version": 3,
    }
    row.update(fields)
    return row


@dataclass
class CosVetro:
    """Running sandboxes of both systems, their stores and request logs, and the test's folder."""

    vetro: VetroStore
    cos: CosbeStore
    vetro_faults: Faults
    cos_faults: Faults
    vetro_url: str
    cos_url: str
    tmp: Path

    def load(self, features: list[dict[str, Any]], objects: list[dict[str, Any]]) -> None:
        self.vetro.load("features", features)
        self.cos.load("objects", objects)

    def config_text(self, *, vetro_token: str = DEFAULT_TOKEN, extra: str = "") -> str:
        """The engine config (secrets in files under ``secrets/``) for both sandboxes."""
        secrets = self.tmp / "secrets"
        secrets.mkdir(exist_ok=True)
        (secrets / "vetro.token").write_text(vetro_token)
        (secrets / "cosbe.key").write_text(COS_SECRET)
        (secrets / "cosbe.webhook").write_text(COS_WEBHOOK_SECRET)
        mapping = ", ".join(f'"{k}" = "{v}"' for k, v in METADATA_ATTRIBUTES.items())
        http = "retries = 2\nbackoff = 0.05\nbackoff-max = 0.5\ntimeout = 5"
        return f"""
[state]
path = "state.db"

[systems.vetro]
kind = "vetro"
url = "{self.vetro_url}/v3"
secret = {{ file = "secrets/vetro.token" }}
[systems.vetro.http]
{http}

[systems.cosbe]
kind = "cosbe"
url = "{self.cos_url}"
secret = {{ file = "secrets/cosbe.key" }}
webhook-secret = {{ file = "secrets/cosbe.webhook" }}
[systems.cosbe.http]
{http}

[integrations.cosbe-vetro]
[integrations.cosbe-vetro.options]
vetro_map_url = "{self.vetro_url}/ui/feature/{{1}}?plan_id={{0}}"
metadata_attributes = {{ {mapping} }}
{extra}
"""

    def config(self, **kwargs: Any) -> config_mod.Config:
        path = self.tmp / "reconciler.toml"
        path.write_text(self.config_text(**kwargs))
        return config_mod.load(path)

    def feature(self, n: int) -> dict[str, Any]:
        found = self.vetro.features.get(vid(n))
        assert found is not None, f"no service location {n}"
        return found

    def properties(self, n: int) -> dict[str, Any]:
        props: dict[str, Any] = self.feature(n)["properties"]
        return props

    def object_of(self, n: int) -> dict[str, Any] | None:
        """The COS object of service location ``n`` (by External Identification), if any."""
        found = [o for o in self.cos.objects.values() if o.get("externalIdentification") == vid(n)]
        assert len(found) <= 1, f"{len(found)} objects for service location {n}"
        return found[0] if found else None

    def vetro_patches(self) -> list[dict[str, Any]]:
        """Every feature sent in a ``PATCH features`` so far."""
        return [
            item
            for entry in self.vetro_faults.log
            if entry.method == "PATCH" and entry.path.endswith("/features") and isinstance(entry.body, dict)
            for item in entry.body.get("features", [])
        ]

    async def user(self, system: str, method: str, path: str, body: Any = None) -> Any:
        """Act through a sandbox's control API, like a person in that system's UI."""
        base = self.vetro_url if system == "vetro" else self.cos_url
        async with aiohttp.ClientSession() as http:
            async with http.request(method, f"{base}/_sandbox/{path}", json=body) as resp:
                assert resp.status < 400, await resp.text()
                return None if resp.status == 204 else await resp.json(content_type=None)


@contextlib.asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def stores() -> tuple[VetroStore, CosbeStore]:
    """Empty tenants: Vetro's plans and layers, COS's groups and metadata definitions; no rate limits."""
    vetro = VetroStore()
    vetro.knobs.rate_limit = 0
    vetro.load("plans", vetro_seed.PLANS)
    vetro.load("layers", vetro_seed.LAYERS)
    cos = CosbeStore(admin_base_url="https://acme.example-be.net")
    cos.knobs.rate_limit = 0
    cos.load("groups", GROUPS)
    cos.load("metadata", cosbe_seed.definitions(0))
    return vetro, cos


@pytest.fixture
async def cv(tmp_path: Path) -> AsyncIterator[CosVetro]:
    vetro, cos = stores()
    vetro_app, cos_app = create_vetro_app(vetro), create_cos_app(cos)
    async with _serving(vetro_app) as vetro_url, _serving(cos_app) as cos_url:
        yield CosVetro(vetro, cos, vetro_app[VETRO_FAULTS], cos_app[COS_FAULTS], vetro_url, cos_url, tmp_path)
