"""Monitoring from ArchOLT to OZmap (seed 001 "Monitoring/Provisioning"), integration ``archolt-monitoring``:
client status from the ONU's operational state, read optical power, ONU data, PON port power — and the
"power check" report of clients whose read power is worse than OZmap's calculated power.

Both sandboxes run on loopback; readings change the way ArchOLT's monitoring poll changes them (no
``updated_at`` bump), and the next cycle carries them over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler import config as config_mod
from reconciler.connectors.http import make_session
from reconciler.connectors.ozmap.guide_calls import GuideCalls
from reconciler.engine import Engine, IntegrationRun
from reconciler.guide.http import Services, ozmap_system
from reconciler.model import EntityPlan, Link, Skip
from reconciler.sandbox.archolt import DEFAULT_TOKEN, ArcholtStore
from reconciler.sandbox.archolt import create_app as create_archolt_app
from reconciler.sandbox.ozmap import OzmapStore
from reconciler.sandbox.ozmap import create_app as create_ozmap_app

from .conftest import OZMAP_KEY, TS, _serve, oid, ozmap_box, ozmap_splitter

pytestmark = pytest.mark.anyio

PROJECT, OZ_OLT, SLOT, PON1, PON2 = oid(1), oid(10), oid(20), oid(30), oid(31)
CE, CTO, NET, S1 = oid(100), oid(101), oid(200), oid(201)
#: ONU id (= OZmap client code) → (OZmap read power before, oper_state, rx dBm)
ONUS = {
    501: (None, "online", -19.5),
    502: (-20.0, "los", None),
    503: (-18.0, "unknown", None),
    505: (None, "online", -17.0),
}


class Env:
    def __init__(
        self, ozmap: OzmapStore, archolt: ArcholtStore, oz_url: str, arch_url: str, tmp: Path
    ) -> None:
        self.ozmap, self.archolt, self.oz_url, self.arch_url = ozmap, archolt, oz_url, arch_url
        (tmp / "ozmap.key").write_text(OZMAP_KEY)
        (tmp / "archolt.token").write_text(DEFAULT_TOKEN)
        path = tmp / "reconciler.toml"
        http = "retries = 2\nbackoff = 0.01\ntimeout = 5"
        path.write_text(
            f"""
[state]
path = "state.db"
[systems.ozmap]
kind = "ozmap"
url = "{oz_url}"
secret = {{ file = "ozmap.key" }}
[systems.ozmap.http]
{http}
[systems.archolt]
kind = "archolt"
url = "{arch_url}"
secret = {{ file = "archolt.token" }}
[systems.archolt.http]
{http}
[integrations.archolt-monitoring]
"""
        )
        self.config = config_mod.load(path)

    async def run(self, **kwargs: Any) -> IntegrationRun:
        async with Engine.open(self.config) as engine:
            return await engine.run("archolt-monitoring", **kwargs)

    async def archolt_edit(self, collection: str, record_id: int, body: Any) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.patch(
                f"{self.arch_url}/_sandbox/store/{collection}/{record_id}", json=body
            ) as resp:
                assert resp.status < 400, await resp.text()

    def client(self, code: str) -> dict[str, Any]:
        return next(c for c in self.ozmap.all("ftth-clients") if c["code"] == code)

    def property_of(self, code: str) -> dict[str, Any]:
        client = self.client(code)
        return next(p for p in self.ozmap.all("properties") if p["client"] == client["id"])


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    ozmap = OzmapStore(api_keys={OZMAP_KEY: "integration"})
    archolt = ArcholtStore()
    _world(ozmap, archolt)
    oz_runner, oz_url = await _serve(create_ozmap_app(ozmap))
    arch_runner, arch_url = await _serve(create_archolt_app(archolt))
    try:
        yield Env(ozmap, archolt, oz_url, arch_url, tmp_path)
    finally:
        await oz_runner.cleanup()
        await arch_runner.cleanup()


def _world(oz: OzmapStore, arch: ArcholtStore) -> None:
    oz.load("projects", [{"id": PROJECT, "name": "Centro", "createdAt": TS, "updatedAt": TS}])
    oz.load("olts", [{"id": OZ_OLT, "name": "OLT-A", "ip": "10.0.0.1", "connectables": [SLOT]}])
    oz.load("slots", [{"id": SLOT, "parent": OZ_OLT, "connectables": [PON1, PON2]}])
    oz.load(
        "pons",
        [
            {"id": PON1, "name": "PON 1", "parent": SLOT, "potency": 0, "connectables": ["f-pon"]},
            {"id": PON2, "name": "PON 2", "parent": SLOT, "potency": 1.0, "connectables": []},
        ],
    )
    oz.load("boxes", [ozmap_box(100, "CE-1", PROJECT), ozmap_box(101, "CTO-1", PROJECT)])
    net = ozmap_splitter(200, CE, PROJECT, is_drop=False, inputs=["f-pon"], outputs=["f-s1"] + [None] * 7)
    net["attenuation"] = [10.5] * 8
    outputs: list[str | None] = [f"f-{code}" for code in ONUS] + [None] * (8 - len(ONUS))
    service = ozmap_splitter(201, CTO, PROJECT, is_drop=True, inputs=["f-s1"], outputs=outputs)
    service["attenuation"] = [10.5] * 8
    oz.load("splitters", [net, service])
    props, clients = [], []
    for port, (code, (power, _, _)) in enumerate(ONUS.items(), start=1):
        cid, pid = oid(6000 + code), oid(5000 + code)
        clients.append({"id": cid, "kind": "ftth", "code": str(code), "name": f"ONU {code}", "implanted": True,
                        "status": 0, "tags": [], "onu": {"user_PPPoE": "", "serial_number": "", "mac_address": "A4:3E:51:00:11:22"},
                        "createdAt": TS, "updatedAt": TS})  # fmt: skip
        props.append({"id": pid, "kind": "Property", "project": PROJECT, "box": CTO, "client": cid,
                      "potencyRead": power, "coords": [-48.55, -27.59], "tags": [],
                      "connections": [{"id": S1, "kind": "Splitter", "name": "Splitter 1", "port": port,
                                       "fiber": f"f-{code}"}], "createdAt": TS, "updatedAt": TS})  # fmt: skip
    oz.load("ftth-clients", clients)
    oz.load("properties", props)
    arch.load(
        "olts",
        [
            {"id": 1, "name": "OLT-A", "ip": "10.0.0.1", "ozmap_olt_id": OZ_OLT,
             "pon_ports": [{"slot": 1, "pon": 1, "tx_power_dbm": 4.5}, {"slot": 1, "pon": 2},
                           {"slot": 2, "pon": 1, "tx_power_dbm": 3.0}]},
            {"id": 2, "name": "OLT-SUL", "ip": "10.0.0.9", "ozmap_olt_id": None,
             "pon_ports": [{"slot": 1, "pon": 1, "tx_power_dbm": 2.0}]},
        ],
    )  # fmt: skip
    onus = [
        {"id": code, "olt_id": 1, "serial": f"ZTEGC000{code}", "login": f"login{code}", "status": "provisioned",
         "oper_state": state, "rx_power_dbm": rx}
        for code, (_, state, rx) in ONUS.items()
    ]  # fmt: skip
    onus.append(
        {"id": 504, "olt_id": 1, "serial": "ZTEGC0000504", "oper_state": "online", "rx_power_dbm": -20.0}
    )
    arch.load("onus", onus)


def plan_of(result: IntegrationRun, entity: str) -> EntityPlan:
    return next(p for p in result.plan.entities if p.entity == entity)


async def test_status_power_onu_data_and_pon_power_reach_ozmap(env: Env) -> None:
    result = await env.run(apply=True)
    assert result.failures == 0
    # client status: online → OK, los → ERROR, unknown → unchanged; ONU 504 has no OZmap client: ignored
    assert {c: env.client(c)["status"] for c in ("501", "502", "503", "505")} == {
        "501": 0,
        "502": 1,
        "503": 0,
        "505": 0,
    }
    changed = {a.source_id for a in plan_of(result, "client-status").actions if getattr(a, "changes", ())}
    assert changed == {"502"}  # the others are linked by code, already right
    # read power: the ONU's rx; no reading leaves the last one
    powers = {c: env.property_of(c)["potencyRead"] for c in ("501", "502", "503", "505")}
    assert powers == {"501": -19.5, "502": -20.0, "503": -18.0, "505": -17.0}
    # ONU data: serial and PPPoE user; the MAC (unknown to ArchOLT) is kept
    assert env.client("501")["onu"] == {
        "serial_number": "ZTEGC000501",
        "user_PPPoE": "login501",
        "mac_address": "A4:3E:51:00:11:22",
    }
    # PON power: mapped OLT, reading present; 2/1 unknown to OZmap → skip with reason; OLT-SUL unmapped → left out
    pon_plan = plan_of(result, "pon-power")
    assert [(type(a), a.source_id) for a in pon_plan.actions if not isinstance(a, Skip)] == [(Link, "1/1/1")]
    (skip,) = [a for a in pon_plan.actions if isinstance(a, Skip)]
    assert skip.reason == f"OZmap OLT {OZ_OLT} (OLT-A) has no PON 2/1"
    assert (env.ozmap.get("pons", PON1) or {})["potency"] == 4.5
    assert (env.ozmap.get("pons", PON2) or {})["potency"] == 1.0
    again = await env.run()
    assert again.plan.changes == 0


async def test_new_readings_flow_on_the_next_cycle(env: Env) -> None:
    await env.run(apply=True)
    await env.archolt_edit("onus", 501, {"oper_state": "dying_gasp", "rx_power_dbm": None})
    await env.archolt_edit("onus", 505, {"rx_power_dbm": -23.25})
    await env.archolt_edit("olts", 1, {"pon_ports": [{"slot": 1, "pon": 1, "tx_power_dbm": 5.0}]})
    result = await env.run(apply=True)
    assert result.failures == 0
    assert env.client("501")["status"] == 1
    assert env.property_of("501")["potencyRead"] == -19.5  # no new reading: the last one stays
    assert env.property_of("505")["potencyRead"] == -23.25
    assert (env.ozmap.get("pons", PON1) or {})["potency"] == 5.0
    assert (await env.run()).plan.changes == 0


async def test_power_check_report_after_monitoring(env: Env) -> None:
    await env.run(apply=True)
    system = ozmap_system(env.config)
    assert system is not None
    async with make_session(system.http, limit=4) as session:
        monitoring = Services.over(GuideCalls.for_system(system, session)).monitoring
        report = await monitoring.power_report(2.0)
    # calculated at the service splitter: 4.5 (PON power from ArchOLT) - 10.5 - 10.5 = -16.5 dBm
    by_code = {c.code: c for c in report.worse}
    assert set(by_code) == {"502", "501"}  # -20.0 and -19.5 read: 3.5 and 3.0 dB worse; 505 (-17.0) is fine
    assert (by_code["501"].calculated_dbm, by_code["501"].worse_by_db) == (-16.5, 3.0)
    assert [c.code for c in report.worse] == ["502", "501"]  # worst first
    assert report.checked == 4
