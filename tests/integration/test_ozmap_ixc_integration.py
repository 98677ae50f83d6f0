"""Seed 002 as a whole: every entity in one ``sync --once`` in a sensible order, each with its schedule, a clean
``plan`` afterwards, and the demo converging over a generated world.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import msgspec
import pytest

from reconciler import demo
from reconciler.engine import load_rules

from .clients_world import IXC_B1, IXC_B2, S1, S2A, SB2, World
from .conftest import Sandboxes

pytestmark = pytest.mark.anyio

ENTITIES = {
    "boxes",
    "condo-splitters",
    "client-ports",
    "client-coordinates",
    "client-creation",
    "activation",
    "withdrawal",
    "cancellation",
    "client-status",
    "client-power",
    "client-names",
}


def mixed_world() -> World:
    world = World()
    world.client(1, "ana.f", splitter=S1, port=2, name="Ana F.", status=1)
    world.login(1, "ana.f", box=IXC_B1, port="5", name="Ana Ferreira", online="S", signal="-20.50")
    world.client(2, "bia.res", splitter=S2A, port=2, implanted=False)
    world.login(2, "bia.res", box=IXC_B2, port="2", contract="A")
    world.client(3, "caio.gone", splitter=S1, port=3, implanted=False)
    world.login(3, "caio.gone", ativo="N", contract="D")
    world.client(4, "duda.cancel", splitter=SB2, port=1)
    world.login(4, "duda.cancel", ativo="N", contract=None)
    world.login(5, "edu.new", box=IXC_B1, port="4", name="Edu Novo", contract="P")
    return world


async def test_entities_run_boxes_first_each_with_its_schedule(sandboxes: Sandboxes) -> None:
    rules = load_rules(sandboxes.config(entities=None), "ozmap-ixc")
    order = [r.entity for r in rules]
    assert set(order) == ENTITIES
    position = order.index
    assert position("boxes") < position("condo-splitters") < min(position(e) for e in ENTITIES - set(NETWORK))
    assert position("withdrawal") < position("client-creation") and position("cancellation") < position(
        "client-creation"
    )
    assert position("client-creation") < min(position("activation"), position("client-ports"))
    assert {(r.incremental_seconds, r.full_seconds) for r in rules} == {(300, 86400)}


NETWORK = ("boxes", "condo-splitters")


async def test_cli_sync_once_runs_every_entity_then_plan_is_clean(sandboxes: Sandboxes) -> None:
    mixed_world().load(sandboxes)
    cfg = sandboxes.config(entities=None)
    base = [sys.executable, "-m", "reconciler"]
    report = sandboxes.tmp / "sync.json"
    synced = await anyio.run_process(
        [
            *base,
            "sync",
            "--config",
            str(cfg.path),
            "--integration",
            "ozmap-ixc",
            "--once",
            "--json",
            str(report),
        ],
        check=False,
    )
    assert synced.returncode == 2, synced.stdout.decode() + synced.stderr.decode()
    document = msgspec.json.decode(report.read_bytes())
    assert [e["entity"] for e in document["plan"]["entities"]] == [
        r.entity for r in load_rules(cfg, "ozmap-ixc")
    ]
    kinds = {e["entity"]: {a["type"] for a in e["actions"]} for e in document["plan"]["entities"]}
    assert {"delete"} <= kinds["withdrawal"] and {"operate"} <= kinds["cancellation"]
    assert {"create"} <= kinds["client-creation"]
    clean = await anyio.run_process([*base, "plan", "--config", str(cfg.path)], check=False)
    assert clean.returncode == 0, clean.stdout.decode() + clean.stderr.decode()
    assert "in sync: nothing to do" in clean.stdout.decode()

    clients = {c["code"]: c for c in sandboxes.ozmap.all("ftth-clients")}
    assert clients["ana.f"]["name"] == "Ana Ferreira" and clients["ana.f"]["status"] == 0
    assert clients["bia.res"]["implanted"] is True
    assert "caio.gone" not in clients
    assert clients["edu.new"]["implanted"] is False
    logins = {r["login"]: r for r in sandboxes.ixc.all("radusuarios")}
    assert logins["ana.f"]["ftth_porta"] == "2"


async def test_demo_shows_every_entity_and_converges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await demo.run(report_path=tmp_path / "demo.html", scale=1000, seed=42)
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    for name in ENTITIES:
        assert f"== ozmap-ixc/{name} " in out
    for name in ("olt-map", "boxes", "clients"):  # seed 003 runs after
        assert f"== archolt-ozmap/{name} " in out
    assert "in sync: nothing to do" in out.split("### 5.")[-1]
