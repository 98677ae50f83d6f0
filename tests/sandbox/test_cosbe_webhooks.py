"""COS BE sandbox webhooks: signed deliveries to a real receiver, retries, knobs, and the events of user actions."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import anyio
import pytest

from reconciler.sandbox.cosbe import CosbeStore
from tests.sandbox.test_cosbe_support import (
    SECRET,
    Receiver,
    Sandbox,
    create_body,
    make_store,
    oid,
    receiver,
    serve,
)

pytestmark = pytest.mark.anyio


async def settle(store: CosbeStore) -> None:
    with anyio.fail_after(5):
        await store.webhooks.idle()


def events(hook: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in hook.got]


def hooked(hook: Receiver, **delivery: Any) -> CosbeStore:
    store = make_store(webhook_url=hook.url, webhook_secret=SECRET)
    for name, value in delivery.items():
        setattr(store.webhooks, name, value)
    return store


async def test_update_delivers_a_signed_object_updated_event() -> None:
    async with receiver() as hook:
        store = hooked(hook)
        async with serve(store) as api:
            change = {
                "id": oid(2),
                "status": "Deliverable",
                "metadata": [{"name": "Drop Type", "value": "Buried"}],
            }
            await api.ok("POST", "/v1/Object/Update", json=change)
            await settle(store)
            [(headers, raw)] = hook.got
            expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
            assert headers["X-COS-Signature"] == f"sha256={expected}"
            event = json.loads(raw)
            assert headers["X-COS-Event-Id"] == event["id"] and headers["Content-Type"] == "application/json"
            assert event["type"] == "ObjectUpdated" and event["entity"] == "Object"
            assert event["created"] == 1748959200  # the store's frozen clock, epoch seconds
            assert event["data"] == {
                "id": oid(2),
                "objectNumber": 10_002,
                "version": 4,
                "changed": ["status", "metadata.Drop Type"],
            }
            deliveries = await api.ok("GET", "/_sandbox/webhook/deliveries")
            assert [(d["event_id"], d["attempt"], d["outcome"], d["status"]) for d in deliveries] == [
                (event["id"], 1, "delivered", 204)
            ]
            created = await api.ok("POST", "/v1/Object/Create", json=create_body(), status=201)
            await settle(store)
            assert (
                events(hook)[-1]["type"] == "ObjectCreated"
                and events(hook)[-1]["data"]["id"] == created["id"]
            )


async def test_delivery_never_blocks_the_api_answer() -> None:
    async with receiver(delay=0.3) as hook:
        store = hooked(hook)
        async with serve(store) as api:
            await api.ok("POST", "/v1/Object/Update", json={"id": oid(1), "reachable": False})
            assert store.webhooks.settings()["pending"] == 1 and not store.webhooks.deliveries
            await settle(store)
            assert [d.outcome for d in store.webhooks.deliveries] == ["delivered"]


async def test_failed_deliveries_are_retried_then_given_up() -> None:
    async with receiver(500, 503) as hook:
        store = hooked(hook, retry_delays=[0.01, 0.01, 0.01])
        async with serve(store) as api:
            await api.ok("POST", "/v1/Object/Update", json={"id": oid(1), "reachable": False})
            await settle(store)
            attempts = [(d.attempt, d.outcome, d.status) for d in store.webhooks.deliveries]
            assert attempts == [(1, "retrying", 500), (2, "retrying", 503), (3, "delivered", 204)]
            assert len({body for _, body in hook.got}) == 1  # the same event, the same bytes
            assert len({h["X-COS-Signature"] for h, _ in hook.got}) == 1
            hook.statuses = [500] * 5
            store.webhooks.retry_delays = [0.01]
            await api.ok("POST", "/v1/Object/Update", json={"id": oid(1), "reachable": True})
            await settle(store)
            assert [d.outcome for d in store.webhooks.deliveries][-2:] == ["retrying", "gave-up"]


async def test_unreachable_receiver_is_recorded_as_errors() -> None:
    store = make_store(webhook_url="http://127.0.0.1:9/nowhere", webhook_secret=SECRET)
    store.webhooks.retry_delays = [0.01]
    async with serve(store) as api:
        await api.ok("POST", "/v1/Object/Update", json={"id": oid(1), "reachable": False})
        await settle(store)
        assert [(d.outcome, d.status) for d in store.webhooks.deliveries] == [
            ("retrying", None),
            ("gave-up", None),
        ]
        assert store.webhooks.deliveries[0].error


async def test_control_api_configures_the_webhook() -> None:
    async with receiver() as hook:
        async with serve() as api:
            await api.ok("POST", "/v1/Object/Update", json={"id": oid(1), "reachable": False})
            assert await api.ok("GET", "/_sandbox/webhook/deliveries") == []  # no URL registered yet
            settings = await api.ok(
                "POST", "/_sandbox/webhooks", json={"url": hook.url, "secret": SECRET, "retry_delays": [0.01]}
            )
            assert settings["url"] == hook.url and settings["secret_set"] is True
            assert SECRET not in json.dumps(await api.ok("GET", "/_sandbox/webhook"))
            await api.ok("POST", "/v1/Object/Update", json={"id": oid(1), "reachable": True})
            await settle(api.store)
            assert len(hook.got) == 1
            assert len(await api.ok("GET", "/_sandbox/webhook/events")) == 2
            assert (await api.call("DELETE", "/_sandbox/webhook"))[0] == 204
            await api.ok("POST", "/v1/Object/Update", json={"id": oid(1), "reachable": False})
            await settle(api.store)
            assert len(hook.got) == 1
            assert (await api.call("POST", "/_sandbox/webhook", json={"secret": "x"}))[0] == 400


async def test_user_actions_emit_object_and_order_events() -> None:
    async with receiver() as hook:
        store = hooked(hook)
        async with serve(store) as api:
            edited = await api.ok(
                "PATCH", f"/_sandbox/store/objects/{oid(3)}", json={"vetroLink": "https://x/y"}
            )
            assert edited["version"] == 4
            activated = await api.ok(
                "POST", f"/_sandbox/objects/{oid(3)}/order", json={"operation": "Activated"}
            )
            assert activated["serviceStatus"] == "Active"
            done = await api.ok("POST", f"/_sandbox/objects/{oid(4)}/work-order-completed")
            assert done["dropInstalled"] is True and done["status"] == "Deliverable"
            status, new = await api.call("POST", "/_sandbox/store/objects", json={"status": "ApprovedSurvey"})
            assert status == 201 and new["objectNumber"] == 10_006
            assert (await api.call("DELETE", f"/_sandbox/store/objects/{oid(5)}"))[0] == 204
            assert (await api.call("POST", f"/_sandbox/objects/{oid(3)}/order", json={"operation": "Fly"}))[
                0
            ] == 400
            assert (await api.call("POST", f"/_sandbox/objects/{oid(404)}/work-order-completed"))[0] == 404
            await settle(store)
            got = sorted(
                (e["type"], e["data"].get("id"), tuple(e["data"].get("changed", ()))) for e in events(hook)
            )
            order = next(e for e in events(hook) if e["type"] == "OrderOperation")
            assert (
                order["entity"] is None
                and order["data"]["operation"] == "Activated"
                and "objectNumber" not in order["data"]
            )
            assert [g for g in got if g[0] != "OrderOperation"] == sorted(
                [
                    ("ObjectUpdated", oid(3), ("vetroLink",)),
                    ("ObjectUpdated", oid(3), ("serviceStatus",)),
                    ("ObjectUpdated", oid(4), ("dropInstalled", "status")),
                    ("ObjectCreated", new["id"], ("status",)),
                    ("ObjectDeleted", oid(5), ()),
                ]
            )


async def test_delivery_knobs_duplicate_drop_and_reorder() -> None:
    async with receiver() as hook:
        store = hooked(hook, duplicate=True)
        async with serve(store) as api:
            await api.ok("POST", "/v1/Object/Update", json={"id": oid(1), "reachable": False})
            await settle(store)
            assert len(hook.got) == 2 and hook.got[0][1] == hook.got[1][1]
            store.webhooks.duplicate = False
            store.webhooks.drop_next = 1
            for n in (1, 2):
                await api.ok("POST", "/v1/Object/Update", json={"id": oid(n), "reachable": True})
            await settle(store)
            assert [e["data"]["id"] for e in events(hook)[2:]] == [oid(2)]
            assert store.webhooks.deliveries[-2].outcome == "dropped"
            await reordered(api, store, hook)


async def reordered(api: Sandbox, store: CosbeStore, hook: Receiver) -> None:
    store.webhooks.reorder = True
    store.webhooks.reorder_window = 0.2
    before = len(hook.got)
    for n in (3, 4):
        await api.ok("POST", "/v1/Object/Update", json={"id": oid(n), "reachable": False})
    await settle(store)
    assert [e["data"]["id"] for e in events(hook)[before:]] == [oid(4), oid(3)]
