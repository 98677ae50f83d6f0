"""``reconciler run`` as a subprocess against the OZmap and IXC sandboxes served by the test's own event loop.

Each test starts a real daemon (JSON logs on stderr, HTTP on a free loopback port), drives it through the
sandboxes' control API and its own HTTP routes, and checks what reached IXC, the state store, /metrics, /readyz
and the log. Every log line must be JSON and free of secrets.
"""

from __future__ import annotations

import signal
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler import config as config_mod
from reconciler.engine import Engine
from reconciler.state.sqlite import SqliteStateStore
from tests.integration.conftest import Sandboxes
from tests.integration.test_boxes_e2e import B1, B2, build_world

from .conftest import WEBHOOK_SECRET, DaemonProcess, command, daemon_config, running_daemon, wait_for

pytestmark = pytest.mark.anyio


def ixc_box_named(sb: Sandboxes, name: str) -> dict[str, Any] | None:
    return next((r for r in sb.ixc.all("rad_caixa_ftth") if r["descricao"] == name), None)


def capacity_of_box_45(sb: Sandboxes) -> str:
    box = sb.ixc.get("rad_caixa_ftth", "45")
    assert box is not None
    return box["capacidade"]


async def first_cycle_done(daemon: DaemonProcess) -> None:
    async def done() -> bool:  # ok, or partial when a loaded machine timed an action out
        return await daemon.sample("reconciler_last_success_timestamp_seconds") > 0

    await wait_for(done, "the first cycle")


async def in_sync(sb: Sandboxes) -> int:
    """Changes a fresh full plan would make (0: the daemon left nothing half-done)."""
    cfg = config_mod.load(sb.tmp / "reconciler.toml")
    async with Engine.open(cfg) as engine:
        run = await engine.run("ozmap-ixc", mode="full")
    return run.plan.changes


async def test_scheduled_cycles_create_then_follow_edits(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    async with running_daemon(daemon_config(sandboxes, incremental="1s")) as daemon:

        async def created() -> Any:
            return ixc_box_named(sandboxes, "CTO-1")

        await wait_for(created, "CTO-1 to be created in IXC by the first cycle")
        await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B1}", {"observation": "moved to 6th"})

        async def followed() -> bool:
            box = ixc_box_named(sandboxes, "CTO-1")
            return box is not None and box["obs_caixa_ftth"] == "moved to 6th"

        await wait_for(followed, "the edit to reach IXC through a scheduled incremental cycle")

        async def counted() -> bool:  # the PUT lands during apply; the cycle is counted once it has committed
            return await daemon.sample("reconciler_cycles_total", mode="incremental") >= 1

        await wait_for(counted, "the incremental cycle that carried the edit to finish")
        assert (
            await daemon.sample("reconciler_cycles_total", mode="full") == 1
        )  # only the first cycle read all
        assert await daemon.sample("reconciler_cycles_total", mode="targeted") == 0
        daemon.process.send_signal(signal.SIGTERM)
        assert await daemon.wait_exit() == 0
    daemon.assert_clean_logs()
    assert daemon.logged("stopped")
    assert await in_sync(sandboxes) == 0


async def test_webhook_syncs_an_edit_at_once_without_waiting_for_the_schedule(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    async with running_daemon(daemon_config(sandboxes, incremental="1h")) as daemon:
        await first_cycle_done(daemon)
        await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B1}", {"observation": "new splice"})
        status, answer = await daemon.webhook([B1])
        assert (status, answer) == (202, {"queued": 1, "deduplicated": 0})

        async def followed() -> bool:
            box = ixc_box_named(sandboxes, "CTO-1")
            return box is not None and box["obs_caixa_ftth"] == "new splice"

        await wait_for(followed, "the webhook's record to reach IXC")
        assert await daemon.sample("reconciler_cycles_total", mode="targeted", status="ok") == 1
        assert await daemon.sample("reconciler_cycles_total", mode="incremental") == 0  # the schedule is 1 h
        assert await daemon.sample("reconciler_webhook_requests_total", result="accepted") == 1
    daemon.assert_clean_logs()
    assert daemon.logged("webhook")[0]["queued"] == 1


async def test_webhooks_for_a_queued_record_are_deduplicated(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    async with running_daemon(daemon_config(sandboxes, incremental="1h")) as daemon:
        await first_cycle_done(daemon)
        # Hold the immediate lane busy: the targeted cycle of B2 reads OZmap boxes, which answer after 5 s.
        await sandboxes.control(
            "ozmap", "POST", "faults", {"kind": "latency", "route": "boxes", "seconds": 5, "count": 1}
        )
        assert await daemon.webhook([B2]) == (202, {"queued": 1, "deduplicated": 0})

        async def stalled() -> bool:
            stats = await sandboxes.control("ozmap", "GET", "stats")
            return bool(stats["injected"].get("latency"))

        await wait_for(stalled, "the targeted cycle of B2 to be in flight")
        assert await daemon.webhook([B1]) == (202, {"queued": 1, "deduplicated": 0})
        assert await daemon.webhook([B1]) == (202, {"queued": 0, "deduplicated": 1})
        assert await daemon.sample("reconciler_queue_depth", entity="boxes") == 1
        assert await daemon.sample("reconciler_queue_deduplicated_total") == 1
        assert await daemon.sample("reconciler_cycle_in_progress", entity="boxes") == 1

        async def drained() -> bool:
            return await daemon.sample("reconciler_cycles_total", mode="targeted") == 2

        await wait_for(drained, "one targeted cycle of B2, then one for the two webhooks of B1")
        assert await daemon.sample("reconciler_queue_depth", entity="boxes") == 0
    daemon.assert_clean_logs()


async def test_metrics_are_prometheus_text_with_the_documented_series(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    async with running_daemon(daemon_config(sandboxes, incremental="1h")) as daemon:
        await first_cycle_done(daemon)
        status, text = await daemon.request("GET", "/metrics")
        samples = await daemon.metrics()
    assert status == 200
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert {
        "reconciler_cycles": "counter",
        "reconciler_actions": "counter",
        "reconciler_errors": "counter",
        "reconciler_queue_depth": "gauge",
        "reconciler_queue_deduplicated": "counter",
        "reconciler_cycle_duration_seconds": "histogram",
        "reconciler_last_success_timestamp_seconds": "gauge",
        "reconciler_webhook_requests": "counter",
        "process_resident_memory_bytes": "gauge",
    }.items() <= families.items()
    assert not [name for name in families if name.endswith("_created")]
    names = {name for name, _ in samples}
    assert "reconciler_cycle_duration_seconds_bucket" in names
    entity = {("integration", "ozmap-ixc"), ("entity", "boxes")}

    def value(name: str, **labels: str) -> float:
        wanted = entity | set(labels.items())
        return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)

    assert value("reconciler_cycles_total", mode="full", status="ok") == 1
    assert value("reconciler_actions_total", kind="create", outcome="ok") == 1
    assert value("reconciler_actions_total", kind="link", outcome="ok") == 1
    assert value("reconciler_actions_total", kind="skip", outcome="skipped") == 2
    assert value("reconciler_last_success_timestamp_seconds") > 1_600_000_000
    assert value("reconciler_cycle_duration_seconds_count", mode="full") == 1
    assert value("reconciler_queue_depth") == 0
    daemon.assert_clean_logs()


async def test_readiness_fails_while_cycles_keep_failing_and_recovers(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    config = daemon_config(sandboxes, incremental="1s", daemon="readiness-failures = 2")
    async with running_daemon(config) as daemon:
        await first_cycle_done(daemon)
        assert (await daemon.request("GET", "/readyz"))[0] == 200
        await sandboxes.control("ixc", "POST", "faults", {"kind": "error", "status": 503})

        async def not_ready() -> Any:
            status, body = await daemon.request("GET", "/readyz")
            return body if status == 503 else None

        body = await wait_for(not_ready, "/readyz to turn 503")
        state = body["entities"]["ozmap-ixc/boxes"]
        assert state["failing"] and state["consecutive_failures"] >= 2 and "ixc" in state["error"]
        assert body["store"] == "ok"
        assert await daemon.sample("reconciler_errors_total", system="ixc") >= 2
        assert await daemon.sample("reconciler_cycles_total", status="failed") >= 2
        assert (await daemon.request("GET", "/healthz"))[0] == 200  # alive, just not ready
        await sandboxes.control("ixc", "DELETE", "faults")

        async def ready() -> bool:
            return (await daemon.request("GET", "/readyz"))[0] == 200

        await wait_for(ready, "/readyz to recover")
    daemon.assert_clean_logs()
    assert any(e["level"] == "warning" for e in daemon.logged("cycle"))


async def test_sigterm_mid_cycle_lets_the_actions_finish_and_commits(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    # The update of the linked box CTO-2 (id 45) answers after 3 s: SIGTERM lands while it is in flight.
    await sandboxes.control(
        "ixc", "POST", "faults", {"kind": "latency", "route": "rad_caixa_ftth", "method": "PUT", "seconds": 3}
    )
    async with running_daemon(daemon_config(sandboxes)) as daemon:

        async def in_flight() -> bool:
            return any(r["method"] == "PUT" for r in await sandboxes.control("ixc", "GET", "requests"))

        await wait_for(in_flight, "the update to be in flight")
        daemon.process.send_signal(signal.SIGTERM)
        assert await daemon.wait_exit() == 0
    daemon.assert_clean_logs()
    assert [e["status"] for e in daemon.logged("cycle")] == ["ok"]
    assert daemon.logged("draining") and daemon.logged("stopped") and not daemon.logged("shutdown_timeout")
    assert capacity_of_box_45(sandboxes) == "16"
    async with Engine.open(config_mod.load(sandboxes.tmp / "reconciler.toml")) as engine:
        journal = await engine.store.journal()
        links = await engine.store.links("ozmap-ixc", "boxes")
    assert journal and all(entry.status == "done" for entry in journal)
    created = ixc_box_named(sandboxes, "CTO-1")
    assert created is not None
    assert {sid: row.target_id for sid, row in links.items()} == {B1: created["id"], B2: "45"}
    assert await in_sync(sandboxes) == 0


async def test_shutdown_timeout_cancels_and_the_next_start_settles_the_journal(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    await sandboxes.control(
        "ixc", "POST", "faults", {"kind": "latency", "route": "rad_caixa_ftth", "method": "PUT", "seconds": 4}
    )
    config = daemon_config(sandboxes, daemon="shutdown-timeout = 0.5")
    async with running_daemon(config) as daemon:

        async def in_flight() -> bool:
            return any(r["method"] == "PUT" for r in await sandboxes.control("ixc", "GET", "requests"))

        await wait_for(in_flight, "the update to be in flight")
        daemon.process.send_signal(signal.SIGTERM)
        assert await daemon.wait_exit() == 0
    daemon.assert_clean_logs()
    assert daemon.logged("shutdown_timeout") and daemon.logged("stopped")
    async with Engine.open(config_mod.load(config)) as engine:
        assert any(e.status == "pending" for e in await engine.store.journal())
    await sandboxes.control("ixc", "DELETE", "faults")

    async def landed() -> bool:  # the server still finishes the cut-off PUT (its handler is not cancelled)
        return capacity_of_box_45(sandboxes) == "16"

    await wait_for(landed, "the interrupted update to land on IXC")
    async with running_daemon(config) as daemon:
        await first_cycle_done(daemon)
    async with Engine.open(config_mod.load(config)) as engine:
        assert not [e for e in await engine.store.journal() if e.status == "pending"]
    assert [r["descricao"] for r in sandboxes.ixc.all("rad_caixa_ftth")].count("CTO-1") == 1
    assert await in_sync(sandboxes) == 0


async def test_a_second_instance_on_the_same_store_refuses_to_start(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    config = daemon_config(sandboxes)
    async with running_daemon(config) as daemon:
        await first_cycle_done(daemon)
        second = await anyio.run_process(
            command("run", "--config", str(config), "--log-format", "json"), check=False
        )
        assert second.returncode == 1
        (line,) = second.stderr.decode().splitlines()
        assert "is locked by another reconciler process" in line and str(config.parent / "state.db") in line
        job = await anyio.run_process(command("migrate", "--config", str(config)), check=False)
        assert job.returncode == 1 and "is locked by another reconciler process" in job.stderr.decode()
        assert (await daemon.request("GET", "/healthz"))[0] == 200
    assert await daemon.wait_exit() == 0


async def test_migrate_then_initial_load_is_the_deployment_job(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    config = str(daemon_config(sandboxes))
    first = await anyio.run_process(command("migrate", "--config", config), check=False)
    assert first.returncode == 0, first.stderr.decode()
    assert "schema version 3 (applied: 0001_initial, 0002_quarantine_by_age, 0003_link_agreement)" in (
        first.stdout.decode()
    )
    again = await anyio.run_process(command("migrate", "--config", config), check=False)
    assert "(up to date)" in again.stdout.decode()
    assert not sandboxes.ixc.all("rad_caixa_ftth")[2:]  # nothing synced yet: only the two seeded boxes
    loaded = await anyio.run_process(command("migrate", "--config", config, "--initial-load"), check=False)
    assert loaded.returncode == 0, loaded.stdout.decode() + loaded.stderr.decode()  # applied cleanly
    assert ixc_box_named(sandboxes, "CTO-1") is not None
    assert await in_sync(sandboxes) == 0
    async with running_daemon(daemon_config(sandboxes)) as daemon:  # the sidecar takes over from there
        await first_cycle_done(daemon)
        assert await daemon.sample("reconciler_actions_total", outcome="ok") == 0
    daemon.assert_clean_logs()


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {WEBHOOK_SECRET}"}


async def test_a_failing_record_backs_off_without_blocking_the_others(sandboxes: Sandboxes) -> None:
    build_world(sandboxes)
    # Every update of IXC box 45 (CTO-2, linked on first sight) fails; CTO-1 is unaffected.
    fault = {"kind": "error", "route": "rad_caixa_ftth/45$", "method": "PUT", "status": 500}
    await sandboxes.control("ixc", "POST", "faults", fault)
    config = daemon_config(sandboxes, incremental="1s", daemon="record-backoff-max = 4")
    async with running_daemon(config) as daemon:

        async def failed_twice() -> bool:
            return await daemon.sample("reconciler_actions_total", kind="link", outcome="failed") >= 2

        await wait_for(failed_twice, "the link of CTO-2 to fail, back off and be retried")
        assert await daemon.sample("reconciler_cycles_total", status="partial") >= 1
        assert (await daemon.request("GET", "/readyz"))[0] == 200  # one bad record is not an unready daemon
        assert await daemon.sample("reconciler_errors_total", system="ixc", error="ActionFailed") >= 2

        async def held() -> bool:  # scheduled cycles skip it with the backoff's reason meanwhile
            store = SqliteStateStore(config.parent / "state.db")
            await store.open(lock=False, migrate=False)
            try:
                rows = await store.quarantined("ozmap-ixc", "boxes")
            finally:
                await store.close()
            return any(r.source_id == B2 and "backing off after" in r.reason for r in rows)

        await wait_for(held, "a scheduled cycle to hold CTO-2")
        await sandboxes.control("ozmap", "PATCH", f"store/boxes/{B1}", {"observation": "still flowing"})

        async def others_flow() -> bool:
            box = ixc_box_named(sandboxes, "CTO-1")
            return box is not None and box["obs_caixa_ftth"] == "still flowing"

        await wait_for(others_flow, "CTO-1's edit to reach IXC while CTO-2 backs off")
        await sandboxes.control("ixc", "DELETE", "faults")

        async def recovered() -> bool:
            return capacity_of_box_45(sandboxes) == "16" and (
                await daemon.sample("reconciler_records_backing_off", entity="boxes") == 0
            )

        await wait_for(recovered, "CTO-2 to be linked and updated once IXC accepts it")
    daemon.assert_clean_logs()
    assert await in_sync(sandboxes) == 0


async def test_an_operator_overrides_the_removal_guard_without_stopping_the_daemon(
    sandboxes: Sandboxes,
) -> None:
    build_world(sandboxes)
    async with running_daemon(daemon_config(sandboxes, incremental="1s")) as daemon:
        await first_cycle_done(daemon)
        await sandboxes.control("ozmap", "DELETE", f"store/boxes/{B1}")  # 1 of 2 linked boxes: above 10 %

        async def guarded() -> Any:
            _, body = await daemon.request("GET", "/readyz")
            return body["entities"]["ozmap-ixc/boxes"]["status"] == "guard"

        await wait_for(guarded, "the guard to stop the incremental cycle")
        assert (ixc_box_named(sandboxes, "CTO-1") or {}).get("status") == "A"  # nothing removed yet
        assert await daemon.sample("reconciler_guard_trips_total") >= 1
        status, answer = await daemon.request(
            "POST", "/sync/ozmap-ixc/boxes?allow-mass-removal=1", headers=bearer()
        )
        assert status == 202 and answer["allow_mass_removal"] is True

        async def inactivated() -> bool:
            box = ixc_box_named(sandboxes, "CTO-1")
            return box is not None and box["status"] == "I"

        await wait_for(inactivated, "the confirmed removal to reach IXC")
    daemon.assert_clean_logs()
    assert any(e["level"] == "error" and "guard" in e["message"] for e in daemon.logged("cycle"))
    assert daemon.logged("sync_request")[0]["level"] == "warning"
