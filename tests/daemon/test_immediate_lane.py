"""The immediate lane (issue 7, bullet 5): a COS BE change reaches Vetro through an authenticated webhook, also
while a full sync of the same entity runs, and that full sync never writes back the older state it had read.

``reconciler run`` runs as a subprocess; the test's event loop serves the Vetro and COS BE sandboxes, and the COS
sandbox delivers its signed change webhooks to the daemon (``X-COS-Signature``), as COS support would set up.
Latency figures come from ``benchmarks/immediate_lane.py``; nothing here asserts on wall-clock speed.
"""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import pytest

from reconciler import config as config_mod
from reconciler.daemon import settings, webhooks
from reconciler.daemon.gating import VETO_REASON, RecordGate
from reconciler.daemon.runner import Daemon
from reconciler.daemon.scheduling import EntityKey
from reconciler.engine import Engine
from reconciler.sandbox.cosbe import DEFAULT_API_KEY
from tests.integration.cosbe_vetro_world import (
    COS_SECRET,
    COS_WEBHOOK_SECRET,
    IMPORT,
    INTEGRATION,
    PUSH,
    CosVetro,
    cos_object,
    cv,
    oid,
    sl,
    vid,
)

from .conftest import DaemonProcess, running_daemon, wait_for

__all__ = ["cv"]

pytestmark = pytest.mark.anyio

ROUTE = f"/webhooks/{INTEGRATION}/{PUSH}"
DAEMON = """
[daemon]
listen = "127.0.0.1:0"
shutdown-timeout = 2
record-backoff = 1
"""


def event(object_id: str, *, entity: str | None = "Object", kind: str = "ObjectUpdated") -> bytes:
    data = {"id": object_id, "objectNumber": 10_001, "version": 4, "changed": ["status"]}
    return msgspec.json.encode(
        {"id": "evt-1", "type": kind, "created": 1748960702, "entity": entity, "data": data}
    )


def cos_headers(body: bytes, secret: str = COS_WEBHOOK_SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-COS-Event-Id": "evt-1",
        webhooks.COS_SIGNATURE_HEADER: webhooks.cos_sign(secret, body),
    }


async def start(cv: CosVetro, n: int) -> Any:
    cv.load([sl(i) for i in range(1, n + 1)], [cos_object(i) for i in range(1, n + 1)])
    path = cv.tmp / "reconciler.toml"
    path.write_text(cv.config_text(extra=DAEMON))
    return running_daemon(path)


async def first_cycles(daemon: DaemonProcess) -> None:
    async def done() -> bool:
        return await daemon.sample("reconciler_last_success_timestamp_seconds", entity=PUSH) > 0

    await wait_for(done, "the first cycles of both entities")


def assert_no_cos_secret(daemon: DaemonProcess) -> None:
    for line in daemon.lines:
        for secret in (COS_SECRET, DEFAULT_API_KEY, COS_WEBHOOK_SECRET):
            assert secret not in line, f"secret leaked into the log: {line}"


async def test_cos_change_events_are_authenticated_by_their_signature(cv: CosVetro) -> None:
    async with await start(cv, 2) as daemon:
        await first_cycles(daemon)
        body = event(oid(1))
        assert await daemon.request("POST", ROUTE, body=body, headers=cos_headers(body)) == (
            202,
            {"queued": 1, "deduplicated": 0},
        )
        status, answer = await daemon.request("POST", ROUTE, body=body, headers=cos_headers(body, "wrong"))
        assert (status, answer) == (401, {"error": "bad X-COS-Signature"})
        tampered = event(oid(2))
        status, _ = await daemon.request("POST", ROUTE, body=tampered, headers=cos_headers(body))
        assert status == 401
        order = event("order-7", entity=None, kind="OrderOperation")  # names no object: nothing to sync
        assert await daemon.request("POST", ROUTE, body=order, headers=cos_headers(order)) == (
            202,
            {"queued": 0, "deduplicated": 0},
        )
    assert_no_cos_secret(daemon)


async def test_an_object_change_reaches_vetro_through_the_webhook_while_a_full_sync_runs(
    cv: CosVetro,
) -> None:
    async with await start(cv, 5) as daemon:
        await first_cycles(daemon)
        full_cycles = await daemon.sample("reconciler_cycles_total", entity=PUSH, mode="full")
        synced = len(cv.vetro_patches())  # what the first cycles wrote
        # COS support registers the daemon's webhook route; COS signs each delivery with the shared secret.
        await cv.user("cosbe", "POST", "webhook", {"url": daemon.url + ROUTE, "secret": COS_WEBHOOK_SECRET})
        # A full sync of the push entity reads Vetro, then stalls on its read of the COS objects for 8 s.
        await cv.user(
            "cosbe",
            "POST",
            "faults",
            {"kind": "latency", "route": "Object/List", "seconds": 8, "count": 1},
        )
        status, _ = await daemon.request(
            "POST",
            f"/sync/{INTEGRATION}/{PUSH}?full=1",
            headers={"Authorization": f"Bearer {COS_WEBHOOK_SECRET}"},
        )
        assert status == 202

        async def stalled() -> bool:
            return any(e.fault == "latency" for e in cv.cos_faults.log)

        await wait_for(stalled, "the full sync to be in flight")
        assert await daemon.sample("reconciler_cycle_in_progress", entity=PUSH) == 1

        # A person in COS BE completes the work order of object 3: the change webhook goes out at once.
        await cv.user("cosbe", "POST", f"objects/{oid(3)}/work-order-completed")

        async def arrived() -> bool:
            return cv.properties(3).get("COS Object Status") == "Deliverable"

        await wait_for(arrived, "the change to reach Vetro through the webhook")
        assert await daemon.sample("reconciler_cycles_total", entity=PUSH, mode="full") == full_cycles
        assert await daemon.sample("reconciler_cycles_total", entity=PUSH, mode="targeted") >= 1
        assert cv.properties(3)["COS Drop Installed"] == "Yes"
        assert [d.outcome for d in cv.cos.webhooks.deliveries] == ["delivered"]

        async def full_done() -> bool:
            return await daemon.sample("reconciler_cycles_total", entity=PUSH, mode="full") > full_cycles

        await wait_for(full_done, "the full sync to finish")
        # The full sync read Vetro before the targeted cycle wrote it: its update was vetoed, never sent.
        assert cv.properties(3)["COS Object Status"] == "Deliverable"
        since = cv.vetro_patches()[synced:]
        assert [(p["x-vetro"]["vetro_id"], p["properties"]["COS Object Status"]) for p in since] == [
            (vid(3), "Deliverable")
        ]
        full = [e for e in daemon.logged("cycle") if e["entity"] == PUSH and e["mode"] == "full"][-1]
        # It had planned an update of object 3 from its older read of Vetro: vetoed, not sent, not a failure.
        assert (full["status"], full["changes"], full["failures"]) == ("ok", 1, 0)

        async def settled() -> bool:  # the vetoed record was queued again and settled by a targeted cycle
            return await daemon.sample("reconciler_queue_depth", entity=PUSH) == 0

        await wait_for(settled, "the vetoed record to be settled")
    daemon.assert_clean_logs()
    assert_no_cos_secret(daemon)


async def test_the_daemon_runs_both_entities_hourly_and_daily(cv: CosVetro) -> None:
    path = cv.tmp / "reconciler.toml"
    path.write_text(cv.config_text(extra=DAEMON))
    cfg = config_mod.load(path)
    async with Engine.open(cfg) as engine:
        daemon = Daemon(engine=engine, settings=settings.resolve(cfg))
        every = {
            k.entity: (s.schedule.incremental_seconds, s.schedule.full_seconds)
            for k, s in daemon.entities.items()
        }
        assert every == {IMPORT: (3600, 86400), PUSH: (3600, 86400)}
        assert daemon.webhook_secrets(EntityKey(INTEGRATION, PUSH)) == [COS_WEBHOOK_SECRET]


async def test_the_record_gate_vetoes_only_what_a_targeted_cycle_touched_meanwhile() -> None:
    vetoed: list[str] = []
    gate = RecordGate(on_veto=vetoed.append)
    async with gate.holding(["a"]):  # before the scheduled cycle starts: not a conflict
        pass
    order: list[str] = []
    async with gate.scheduled() as scheduled, anyio.create_task_group() as group:
        holding = anyio.Event()

        async def targeted() -> None:
            async with gate.holding(["c", "b"]):
                holding.set()
                await anyio.sleep(0.05)
                order.append("targeted done")

        group.start_soon(targeted)
        await holding.wait()
        async with scheduled("a") as veto:
            assert veto is None
        async with scheduled("b") as veto:  # waits for the targeted cycle, then gives way to it
            order.append("gate b")
            assert veto == VETO_REASON
    assert order == ["targeted done", "gate b"] and vetoed == ["b"]
    assert gate.statistics() == {"locked": 0, "touched": 0}
