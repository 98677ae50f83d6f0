"""The runner in-process against the sandboxes: dependency order of first cycles, and a clean stop."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from reconciler import config as config_mod
from reconciler.daemon import settings
from reconciler.daemon.runner import Daemon
from reconciler.daemon.scheduling import EntityKey
from reconciler.engine import Engine
from reconciler.errors import ConfigError
from reconciler.rules import loading
from tests.integration.conftest import Sandboxes
from tests.integration.test_boxes_e2e import build_world

from .conftest import wait_for

pytestmark = pytest.mark.anyio


def two_entity_config(sb: Sandboxes, daemon: str = "") -> Path:
    """Entities ``a`` and ``b`` (both the boxes rule), ``b`` declared ``after = ["a"]``."""
    folder = sb.tmp / "rules" / "ozmap-ixc"
    folder.mkdir(parents=True)
    boxes = (loading.builtin_rules_dir() / "ozmap-ixc" / "boxes.toml").read_text()
    (folder / "a.toml").write_text(boxes)
    (folder / "b.toml").write_text(boxes.replace("[entity]\n", '[entity]\nafter = ["a"]\n', 1))
    path = sb.config().path
    text = path.read_text().replace('entities = ["boxes"]', 'rules = "rules"')
    path.write_text(text + f"\n[daemon]\n{daemon}\n")
    return path


async def test_first_cycles_run_in_dependency_order_then_stop_cleanly(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    cfg = config_mod.load(two_entity_config(sandboxes))
    async with Engine.open(cfg) as engine:
        daemon = Daemon(engine=engine, settings=settings.resolve(cfg))
        a, b = daemon.entities[EntityKey("ozmap-ixc", "a")], daemon.entities[EntityKey("ozmap-ixc", "b")]
        assert daemon.dependencies(b) == [a] and daemon.dependencies(a) == []
        async with anyio.create_task_group() as group:
            group.start_soon(daemon.run)

            async def both_ran() -> bool:
                return a.first_cycle.is_set() and b.first_cycle.is_set()

            await wait_for(both_ran, "the first cycles of a and b")
            assert await daemon.shutdown(30) is True
        runs = sorted(await engine.store.runs(), key=lambda r: r.started_at)
    assert [list(msgspec.json.decode(r.summary)) for r in runs] == [["a"], ["b"]]
    assert runs[0].finished_at <= runs[1].started_at
    assert (a.last_status, b.last_status) == ("ok", "ok")


async def test_a_schedule_override_for_an_entity_not_run_is_refused(sandboxes: Sandboxes) -> None:
    path = two_entity_config(sandboxes, '[daemon.schedules."ozmap-ixc/boxes"]\nincremental = "1m"')
    cfg = config_mod.load(path)
    async with Engine.open(cfg) as engine:
        with pytest.raises(ConfigError, match=r"ozmap-ixc/boxes, which is not an enabled entity"):
            Daemon(engine=engine, settings=settings.resolve(cfg))
