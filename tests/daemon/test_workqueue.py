"""The immediate work queue: deduplication, order, batches, delayed retries and cycle requests."""

from __future__ import annotations

from reconciler.daemon.scheduling import EntityKey
from reconciler.daemon.workqueue import CycleRequest, QueueStats, WorkQueue

BOXES = EntityKey("ozmap-ixc", "boxes")
CLIENTS = EntityKey("ozmap-ixc", "clients")


def test_an_id_already_queued_is_not_queued_twice() -> None:
    queue = WorkQueue()
    assert queue.add(BOXES, ["a", "b"]) == (2, 0)
    assert queue.add(BOXES, ["b", "c", "c"]) == (1, 2)
    assert queue.add(CLIENTS, ["a"]) == (1, 0)  # keys are per entity
    assert queue.depth(BOXES) == 3
    assert queue.statistics() == QueueStats(
        depth=4, delayed=0, requests=0, added=4, deduplicated=2, retried=0
    )


def test_ids_are_taken_in_arrival_order_in_batches() -> None:
    queue = WorkQueue()
    queue.add(BOXES, ["c", "a", "b"])
    assert queue.take(BOXES, 2) == ["c", "a"]
    assert queue.add(BOXES, ["c"]) == (1, 0)  # taken ids may be queued again
    assert queue.take(BOXES, 10) == ["b", "c"]
    assert queue.take(BOXES, 10) == [] and queue.take(CLIENTS, 10) == []


def test_delayed_retries_join_the_queue_when_due() -> None:
    queue = WorkQueue()
    queue.add_after(BOXES, "a", 100.0)
    queue.add_after(BOXES, "b", 50.0)
    assert queue.next_delayed(BOXES) == 50.0 and queue.depth(BOXES) == 0
    assert queue.promote(BOXES, 60.0) == 1
    assert queue.take(BOXES, 10) == ["b"]
    assert queue.delayed(BOXES) == 1
    queue.forget(BOXES, ["a"])  # it succeeded in a scheduled cycle meanwhile
    assert queue.next_delayed(BOXES) is None and queue.promote(BOXES, 1e9) == 0


def test_a_fresh_webhook_beats_the_backoff() -> None:
    queue = WorkQueue()
    queue.add_after(BOXES, "a", 100.0)
    assert queue.add(BOXES, ["a"]) == (1, 0)
    assert queue.delayed(BOXES) == 0 and queue.take(BOXES, 10) == ["a"]
    queue.add(BOXES, ["b"])
    queue.add_after(BOXES, "b", 100.0)  # already queued: nothing to delay
    assert queue.delayed(BOXES) == 0


def test_cycle_requests_are_deduplicated_and_merged() -> None:
    queue = WorkQueue()
    assert queue.request(BOXES, "incremental") is True
    assert queue.request(BOXES, "incremental") is False
    assert queue.request(BOXES, "full") is True  # upgraded
    assert queue.request(BOXES, "incremental") is False
    assert queue.request(BOXES, "incremental", allow_mass_removal=True) is True  # the override sticks
    assert queue.requested(BOXES) and not queue.requested(CLIENTS)
    assert queue.take_request(BOXES) == CycleRequest("full", allow_mass_removal=True)
    assert queue.take_request(BOXES) is None
    assert queue.statistics().deduplicated == 2
