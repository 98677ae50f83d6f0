"""Issue 10.3: an empty or truncated read never removes anything; mass removals stop with exit 3 and a report.

Streams are tampered with by the sandboxes' answer rules (:mod:`reconciler.sandbox.answers`): a listing that
announces more rows than it delivers, loses rows on every page, fails after its first page, or says the
collection is empty. Every command runs as the operator would run it: ``reconciler sync``/``plan`` subprocesses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import msgspec
import pytest

from reconciler import config as config_mod
from reconciler.engine import Engine
from reconciler.sandbox import runner
from tests.reliability import support

pytestmark = pytest.mark.anyio

INTEGRATION = "ozmap-ixc"
SCALE = 200
OZMAP_BOXES = r"/api/v2/boxes/?$"
IXC_BOXES = r"/webservice/v1/rad_caixa_ftth/?$"


async def reconciler(*args: str) -> tuple[int, str, str]:
    done = await anyio.run_process([sys.executable, "-m", "reconciler", *args], check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def synced_world(sandboxes: runner.Sandboxes, folder: Path) -> config_mod.Config:
    """A config (OZmap pages of 5 rows, so listings span pages) and a first full sync."""
    path = support.write_config(sandboxes, folder)
    path.write_text(support.set_table(path.read_text(), "systems.ozmap.http", {"page-size": 5}))
    cfg = config_mod.load(path)
    async with Engine.open(cfg) as engine:
        run = await engine.run(INTEGRATION, mode="full", apply=True)
    assert run.failures == 0
    for system in sandboxes:
        system.faults.log.clear()
    return cfg


def writes(sandboxes: runner.Sandboxes) -> list[str]:
    return [
        f"{system.name} {e.method} {e.path}"
        for system in sandboxes
        for e in system.faults.log
        if e.method != "GET" and e.headers.get("ixcsoft", "").lower() != "listar"
    ]


def box_statuses(sandboxes: runner.Sandboxes) -> dict[str, str]:
    return {r["id"]: r["status"] for r in sandboxes["ixc"].store.all("rad_caixa_ftth")}


TRUNCATED = {
    "source announces more rows than it delivers": (
        "ozmap",
        {"mode": "short", "route": OZMAP_BOXES, "extra": 3},
    ),
    "source loses rows on every page": ("ozmap", {"mode": "drop", "route": OZMAP_BOXES, "extra": 2}),
    "source fails after its first page": ("ozmap", {"mode": "fail", "route": OZMAP_BOXES, "after": 1}),
    "source page comes back empty": (
        "ozmap",
        {"mode": "drop", "route": OZMAP_BOXES, "after": 1, "extra": 99},
    ),
    "target announces more rows than it delivers": (
        "ixc",
        {"mode": "short", "route": IXC_BOXES, "listing": True, "extra": 2},
    ),
    "lookup table announces more rows than it delivers": (
        "ixc",
        {"mode": "short", "route": r"/webservice/v1/df_projeto/?$", "listing": True},
    ),
}


@pytest.mark.parametrize("case", list(TRUNCATED))
async def test_a_truncated_stream_stops_the_cycle_and_changes_nothing(case: str, tmp_path: Path) -> None:
    system, rule = TRUNCATED[case]
    async with support.world(INTEGRATION, scale=SCALE) as sandboxes:
        cfg = await synced_world(sandboxes, tmp_path)
        for box in sorted(box_statuses(sandboxes))[
            :1
        ]:  # a real change is waiting, so a write would be visible
            await support.control(
                sandboxes["ixc"].url, "PATCH", f"store/rad_caixa_ftth/{box}", {"obs_caixa_ftth": "x"}
            )
        before = box_statuses(sandboxes)
        await support.control(sandboxes[system].url, "POST", "answers", rule)
        code, out, err = await reconciler("sync", "--once", "--full", "--config", str(cfg.path))
        assert code == 1, out + err
        assert "rows" in err or "page" in err, err  # says the listing was incomplete
        assert writes(sandboxes) == []
        assert box_statuses(sandboxes) == before
        acted = await support.control(sandboxes[system].url, "GET", "answers")
        assert acted[0]["acted"] >= 1
        await support.clear_faults(sandboxes)
        code, out, err = await reconciler("sync", "--once", "--full", "--config", str(cfg.path))
        assert code == 2, out + err  # the waiting change, once the stream is whole again
        code, out, err = await reconciler("plan", "--full", "--config", str(cfg.path))
        assert code == 0, out + err


async def test_an_empty_source_snapshot_trips_the_guard_with_exit_3_and_a_report(tmp_path: Path) -> None:
    async with support.world(INTEGRATION, scale=SCALE) as sandboxes:
        cfg = await synced_world(sandboxes, tmp_path)
        before = box_statuses(sandboxes)
        await support.control(
            sandboxes["ozmap"].url, "POST", "answers", {"mode": "empty", "route": OZMAP_BOXES}
        )
        report_json, report_html = tmp_path / "guard.json", tmp_path / "guard.html"
        code, out, err = await reconciler(
            "sync",
            "--once",
            "--full",
            "--config",
            str(cfg.path),
            "--json",
            str(report_json),
            "--html",
            str(report_html),
        )
        assert code == 3, out + err
        assert "stopped by a guard" in err and "is empty" in err, err
        assert writes(sandboxes) == [] and box_statuses(sandboxes) == before
        document = msgspec.json.decode(report_json.read_bytes())
        (boxes,) = [e for e in document["plan"]["entities"] if e["entity"] == "boxes"]
        assert "is empty" in boxes["guard"]
        assert "is empty" in report_html.read_text()
        code, out, err = await reconciler("plan", "--full", "--config", str(cfg.path))
        assert code == 3, out + err


async def _remove_a_third_of_the_linked_boxes(
    sandboxes: runner.Sandboxes, cfg: config_mod.Config
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(linked, removed) (source id, target id) pairs: 30 % of the linked boxes vanish from OZmap."""
    async with Engine.open(cfg) as engine:
        links = await engine.store.links(INTEGRATION, "boxes")
    linked = sorted((sid, row.target_id) for sid, row in links.items() if row.state == "active")
    removed = linked[: max(2, len(linked) * 3 // 10)]
    for source_id, _ in removed:
        await support.control(sandboxes["ozmap"].url, "DELETE", f"store/boxes/{source_id}")
    for system in sandboxes:
        system.faults.log.clear()
    return linked, removed


async def test_the_share_guard_stops_mass_removal_until_the_operator_overrides_it(tmp_path: Path) -> None:
    async with support.world(INTEGRATION, scale=SCALE) as sandboxes:
        cfg = await synced_world(sandboxes, tmp_path)
        linked, removed = await _remove_a_third_of_the_linked_boxes(sandboxes, cfg)
        before = box_statuses(sandboxes)
        report = tmp_path / "guard.json"
        code, out, err = await reconciler("sync", "--once", "--config", str(cfg.path), "--json", str(report))
        assert code == 3, out + err
        assert f"would remove {len(removed)} of {len(linked)} linked records" in err, err
        assert "--allow-mass-removal" in err
        assert writes(sandboxes) == [] and box_statuses(sandboxes) == before
        entities = msgspec.json.decode(report.read_bytes())["plan"]["entities"]
        (boxes,) = [e for e in entities if e["entity"] == "boxes"]
        assert boxes["guard"] and sum(a["type"] == "inactivate" for a in boxes["actions"]) == len(removed)
        code, out, err = await reconciler("plan", "--config", str(cfg.path))
        assert code == 3, out + err  # the dry run says so too

        # The operator's override: exactly the removed boxes are inactivated, nothing else changes.
        await reconciler("sync", "--once", "--allow-mass-removal", "--config", str(cfg.path))
        after = box_statuses(sandboxes)
        gone = {target for _, target in removed}
        assert {after[target] for target in gone} == {"I"}
        assert {t: s for t, s in after.items() if t not in gone} == {
            t: s for t, s in before.items() if t not in gone
        }
        await support.converge(cfg, INTEGRATION)
        code, out, err = await reconciler("plan", "--config", str(cfg.path))
        assert code == 0, out + err


async def test_an_overridden_guard_reports_the_sync_as_applied(tmp_path: Path) -> None:
    async with support.world(INTEGRATION, scale=SCALE) as sandboxes:
        cfg = await synced_world(sandboxes, tmp_path)
        await _remove_a_third_of_the_linked_boxes(sandboxes, cfg)
        code, out, err = await reconciler("sync", "--once", "--allow-mass-removal", "--config", str(cfg.path))
        assert writes(sandboxes), "the override applied nothing"
        assert "nothing will be applied" not in out and "stopped by a guard" not in err, out + err
        assert code == 2, out + err
