"""``reconciler demo``: the whole product in one command, against sandboxes on loopback.

1. start the OZmap and IXC sandboxes with a generated network and write an engine config for them;
2. ``plan`` (full): print what a first sync would do;
3. ``sync``: apply it;
4. simulate people at work: edit a box in OZmap (new observation, moved) and remove another, rename a client in
   OZmap (the ERP's name wins) and cancel a login in IXC (its OZmap client is detached);
5. ``plan`` (incremental): exactly those changes;
6. ``sync`` again, then ``plan`` once more: nothing to do;
7. ArchOLT ↔ OZmap (seed 003) the same way: plan, sync, a technician provisions an ONU and deprovisions another in
   ArchOLT, the incremental plan (a client created, one removed), sync, and a clean plan;
8. COS BE ↔ Vetro (seed 000) after the others: plan and sync (auto-import with the failed conditions named, the
   push of object data and deep links), a work order completed and a survey ticked in COS BE, the incremental
   plan of exactly those pushes, sync, and a clean plan;
and write an HTML report of the first sync.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import aiohttp
import anyio

from reconciler import config as config_mod
from reconciler import report
from reconciler.engine import Engine, IntegrationRun

INTEGRATION = "ozmap-ixc"
ARCHOLT = "archolt-ozmap"
COSBE_VETRO = "cosbe-vetro"


def _banner(text: str) -> None:
    print(f"\n### {text}\n", flush=True)


async def _user_edits(ozmap_url: str, engine: Engine) -> list[str]:
    """Edit one linked box and delete another through the OZmap sandbox's control API (like a user would)."""
    links = await engine.store.links(INTEGRATION, "boxes")
    active = sorted(sid for sid, row in links.items() if row.state == "active")
    if len(active) < 2:
        return []
    edited, removed = active[0], active[-1]
    async with aiohttp.ClientSession() as http:
        async with http.patch(
            f"{ozmap_url}/_sandbox/store/boxes/{edited}",
            json={"observation": "Moved to the other side of the street by the field team"},
        ) as resp:
            resp.raise_for_status()
        async with http.delete(f"{ozmap_url}/_sandbox/store/boxes/{removed}") as resp:
            resp.raise_for_status()
    return [f"edited box {edited} (observation)", f"removed box {removed}"]


async def _client_edits(ozmap_url: str, ixc_url: str, engine: Engine) -> list[str]:
    """Rename a client in OZmap and cancel another one's login in IXC (inactive, no contract)."""
    links = await engine.store.links(INTEGRATION, "client-status")  # active fiber logins with a client
    active = sorted((sid, row.target_id) for sid, row in links.items() if row.state == "active")
    if len(active) < 2:
        return []
    (_, renamed), (cancelled, _) = active[0], active[-1]
    async with aiohttp.ClientSession() as http:
        async with http.patch(
            f"{ozmap_url}/_sandbox/store/ftth-clients/{renamed}", json={"name": "Renamed in the field"}
        ) as resp:
            resp.raise_for_status()
        async with http.patch(
            f"{ixc_url}/_sandbox/store/radusuarios/{cancelled}", json={"ativo": "N", "id_contrato": "0"}
        ) as resp:
            resp.raise_for_status()
    return [f"renamed OZmap client {renamed}", f"cancelled IXC login {cancelled} (inactive, no contract)"]


async def _technician(archolt_url: str, engine: Engine) -> list[str]:
    """In ArchOLT: provision a new ONU on the CTO of an ONU that has a client, and deprovision that ONU."""
    links = await engine.store.links(ARCHOLT, "clients")
    active = sorted(sid for sid, row in links.items() if row.state == "active")
    if not active:
        return []
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{archolt_url}/_sandbox/store/onus/{active[0]}") as resp:
            resp.raise_for_status()
            onu = await resp.json()
        body = {k: onu[k] for k in ("olt_id", "slot", "pon")}
        body.update(serial="DEMO0000CAFE", model=onu["model"], cto_id=onu["cto"]["id"], login="demo.cliente")
        async with http.post(f"{archolt_url}/_sandbox/provision", json=body) as resp:
            resp.raise_for_status()
            new = await resp.json()
        async with http.delete(f"{archolt_url}/_sandbox/store/onus/{active[0]}") as resp:
            resp.raise_for_status()
    cto = onu["cto"]["name"]
    return [
        f"provisioned ONU {new['id']} (DEMO0000CAFE) on {cto}",
        f"deprovisioned ONU {active[0]} ({onu['serial']})",
    ]


async def _cos_user(cos_url: str, engine: Engine) -> list[str]:
    """In COS BE: complete the work order of one pushed object and tick the survey flag of another."""
    links = await engine.store.links(COSBE_VETRO, "objects")
    active = sorted(sid for sid, row in links.items() if row.state == "active")
    if len(active) < 2:
        return []
    done, surveyed = active[0], active[-1]
    survey = {"metadata": [{"name": "Survey Done", "value": "true"}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{cos_url}/_sandbox/objects/{done}/work-order-completed") as resp:
            resp.raise_for_status()
        async with http.patch(f"{cos_url}/_sandbox/store/objects/{surveyed}", json=survey) as resp:
            resp.raise_for_status()
    return [f"completed the work order of object {done}", f"ticked Survey Done on object {surveyed}"]


async def run(*, report_path: Path, scale: int, seed: int) -> int:
    """Run the demo; returns 0 when the final plan is empty (the engine converged)."""
    from reconciler.sandbox import runner

    with tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp:
        started = time.perf_counter()
        systems = ["ozmap", "ixc", "archolt", "vetro", "cosbe"]
        async with runner.running(systems, seed=seed, scale=scale) as sandboxes:
            cfg_path = sandboxes.write_config(Path(tmp) / "demo.toml")
            _banner(f"Sandboxes up in {time.perf_counter() - started:.1f}s (seed {seed}, scale {scale})")
            for system in sandboxes:
                print(f"   {system.name:<6} {system.url}   (control API: {system.control_url})")
            cfg = config_mod.load(cfg_path)
            async with Engine.open(cfg) as engine:
                _banner("1. Dry run: what the first sync would do")
                first = await engine.run(INTEGRATION, mode="full")
                print(report.render_text(first.plan))

                _banner("2. Sync")
                synced = await engine.run(INTEGRATION, mode="full", apply=True)
                print(report.render_text(synced.plan, synced.outcomes))
                await anyio.Path(report_path).write_text(
                    report.render_html(synced.plan, synced.outcomes, title="reconciler demo: first sync"),
                    encoding="utf-8",
                )

                _banner("3. People at work in OZmap and IXC")
                ozmap_url, ixc_url = sandboxes["ozmap"].url, sandboxes["ixc"].url
                for line in [
                    *await _user_edits(ozmap_url, engine),
                    *await _client_edits(ozmap_url, ixc_url, engine),
                ]:
                    print(f"   {line}")

                _banner("4. Dry run (incremental): only what changed")
                after_edits = await engine.run(INTEGRATION)
                print(report.render_text(after_edits.plan))

                _banner("5. Sync, then plan again")
                await engine.run(INTEGRATION, apply=True)
                final: IntegrationRun = await engine.run(INTEGRATION, mode="full")
                print(report.render_text(final.plan))

                _banner("6. ArchOLT ↔ OZmap: dry run, then sync")
                print(report.render_text((await engine.run(ARCHOLT, mode="full")).plan))
                arch = await engine.run(ARCHOLT, mode="full", apply=True)
                print(report.render_text(arch.plan, arch.outcomes))

                _banner("7. A technician in ArchOLT; the incremental plan, sync, plan again")
                for line in await _technician(sandboxes["archolt"].url, engine):
                    print(f"   {line}")
                print(report.render_text((await engine.run(ARCHOLT)).plan))
                await engine.run(ARCHOLT, apply=True)
                arch_final = await engine.run(ARCHOLT, mode="full")
                print(report.render_text(arch_final.plan))

                _banner("8. COS BE ↔ Vetro: auto-import and push (dry run, then sync)")
                print(report.render_text((await engine.run(COSBE_VETRO, mode="full")).plan))
                cos = await engine.run(COSBE_VETRO, mode="full", apply=True)
                print(report.render_text(cos.plan, cos.outcomes))

                _banner("9. People at work in COS BE; the incremental plan, sync, plan again")
                for line in await _cos_user(sandboxes["cosbe"].url, engine):
                    print(f"   {line}")
                print(report.render_text((await engine.run(COSBE_VETRO)).plan))
                await engine.run(COSBE_VETRO, apply=True)
                cos_final = await engine.run(COSBE_VETRO, mode="full")
                print(report.render_text(cos_final.plan))
        print(f"\nHTML report of the first sync: {report_path}")
        converged = final.plan.changes == 0 and arch_final.plan.changes == 0 and cos_final.plan.changes == 0
        return 0 if converged else 2
