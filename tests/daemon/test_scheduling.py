"""Scheduling decisions with a fake clock: plain numbers for ``now``, no event loop, no sleeping."""

from __future__ import annotations

import time

import pytest

from reconciler.daemon.scheduling import (
    CYCLE_RETRY_BASE,
    EntityKey,
    EntitySchedule,
    RecordBackoff,
    backoff_delay,
)
from reconciler.model import Outcome

KEY = EntityKey("ozmap-ixc", "boxes")
T0 = 1000.0


def schedule(incremental: float = 300, full: float = 86400) -> EntitySchedule:
    return EntitySchedule.starting(incremental_seconds=incremental, full_seconds=full, now=T0)


def due(s: EntitySchedule, now: float, *, queued: bool = False, requested: bool = False) -> str | None:
    return s.next_job(now, queued=queued, requested=requested)


def test_the_first_cycle_is_due_at_start_and_then_every_interval() -> None:
    s = schedule()
    assert due(s, T0) == "incremental"
    s.finished("full", T0 + 10, ok=True)  # no cursor yet: the engine made it a full read
    assert due(s, T0 + 10) is None
    assert s.wait_seconds(T0 + 10, queued=False, requested=False, delayed_at=None) == 300
    assert due(s, T0 + 309.9) is None
    assert due(s, T0 + 310) == "incremental"
    s.finished("incremental", T0 + 311, ok=True)
    assert due(s, T0 + 611) == "incremental"


def test_the_full_resync_comes_every_full_interval_and_resets_the_incremental_one() -> None:
    s = schedule(incremental=300, full=3600)
    s.finished("incremental", T0, ok=True)
    for n in range(1, 12):
        assert due(s, T0 + 300 * n) == "incremental"
        s.finished("incremental", T0 + 300 * n, ok=True)
    assert due(s, T0 + 3600) == "full"  # both are due: the full one wins
    s.finished("full", T0 + 3700, ok=True)
    assert s.next_full == T0 + 3700 + 3600
    assert s.next_incremental == T0 + 3700 + 300


@pytest.mark.parametrize(
    ("queued", "requested", "expected"),
    [(True, True, "targeted"), (False, True, "requested"), (True, False, "targeted")],
)
def test_immediate_work_is_served_ahead_of_scheduled_cycles(
    queued: bool, requested: bool, expected: str
) -> None:
    s = schedule()
    assert due(s, T0 + 86400, queued=queued, requested=requested) == expected


def test_targeted_cycles_do_not_move_the_schedule() -> None:
    s = schedule()
    s.finished("incremental", T0, ok=True)
    s.finished("targeted", T0 + 100, ok=True)
    assert s.next_incremental == T0 + 300


def test_a_failed_cycle_backs_the_entity_off_and_stays_due() -> None:
    s = schedule(incremental=10)
    s.finished("incremental", T0, ok=False)
    assert s.failures == 1 and s.retry_at == T0 + CYCLE_RETRY_BASE
    assert due(s, T0 + 0.5, requested=True) is None  # no scheduled work while backing off
    assert s.wait_seconds(T0 + 0.5, queued=False, requested=True, delayed_at=None) == pytest.approx(0.5)
    assert due(s, T0 + 0.5, queued=True) == "targeted"  # the immediate lane has its own backoff
    assert due(s, T0 + 1) == "incremental"  # the failed incremental cycle is still due
    delays = []
    for _ in range(5):
        s.finished("incremental", T0, ok=False)
        delays.append(s.retry_at - T0)
    assert delays == [2, 4, 8, 10, 10]  # doubling, capped at the incremental interval
    s.finished("incremental", T0 + 50, ok=True)
    assert (s.failures, s.retry_at) == (0, 0)


def test_each_lane_backs_off_on_its_own_failures_and_readiness_counts_either() -> None:
    s = schedule(incremental=300)
    s.finished("targeted", T0, ok=False)
    s.finished("targeted", T0, ok=False)
    assert (s.immediate_failures, s.immediate_retry_at) == (2, T0 + 2)
    assert due(s, T0 + 1, queued=True) == "incremental"  # the queued records wait; the scheduled lane runs
    assert s.immediate_wait(T0 + 1, queued=True, delayed_at=None) == pytest.approx(1)
    assert s.consecutive_failures == 2
    s.finished("incremental", T0 + 1, ok=True)  # a scheduled success does not lift the immediate backoff
    assert s.consecutive_failures == 2 and due(s, T0 + 1.5, queued=True) is None
    assert due(s, T0 + 2, queued=True) == "targeted"
    s.finished("targeted", T0 + 2, ok=True)
    assert (s.consecutive_failures, s.immediate_retry_at) == (0, 0)


def test_the_immediate_lane_waits_for_queued_or_delayed_records_only() -> None:
    s = schedule(incremental=300)
    assert s.immediate_wait(T0, queued=True, delayed_at=None) == 0
    assert s.immediate_wait(T0, queued=False, delayed_at=T0 + 30) == 30
    assert s.immediate_wait(T0, queued=False, delayed_at=None) >= 3600  # idle: new work wakes it


def test_a_failed_full_resync_is_retried() -> None:
    s = schedule(incremental=300, full=3600)
    assert due(s, T0 + 3600) == "full"
    s.finished("full", T0 + 3600, ok=False)
    assert due(s, T0 + 3601) == "full"


def test_wait_seconds_accounts_for_delayed_retries() -> None:
    s = schedule(incremental=300)
    s.finished("incremental", T0, ok=True)
    assert s.wait_seconds(T0, queued=False, requested=False, delayed_at=T0 + 30) == 30
    assert s.wait_seconds(T0, queued=False, requested=False, delayed_at=T0 + 900) == 300
    assert s.wait_seconds(T0, queued=True, requested=False, delayed_at=None) == 0


def test_backoff_delay_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 30, 3600) for n in range(0, 9)] == [0, 30, 60, 120, 240, 480, 960, 1920, 3600]
    assert backoff_delay(10_000, 1, 5) == 5  # no overflow for long failure streaks


def failed(source_id: str, kind: str = "update") -> Outcome:
    return Outcome(kind, source_id, ok=False, error="ixc: 503")


def test_record_backoff_holds_failing_records_with_a_readable_reason() -> None:
    backoff = RecordBackoff(base=30, cap=3600)
    wall = time.mktime((2025, 1, 1, 12, 0, 0, 0, 0, 0)) - time.timezone  # 12:00:00 UTC
    assert backoff.record(KEY, [failed("a"), Outcome("create", "b", ok=True)], T0) == [("a", T0 + 30)]
    assert backoff.holds(KEY, T0 + 10, wall_now=wall) == {
        "a": "backing off after 1 failure until 12:00:20 UTC"
    }
    assert backoff.holds(KEY, T0 + 30, wall_now=wall) == {}  # due again: acted on in the next cycle
    assert backoff.expired(KEY, T0 + 10) == [] and backoff.expired(KEY, T0 + 30) == ["a"]  # re-read when due
    backoff.record(KEY, [failed("a")], T0 + 30)
    backoff.record(KEY, [failed("a")], T0 + 90)
    assert backoff.failures(KEY, "a") == 3
    assert backoff.holds(KEY, T0 + 90, wall_now=wall) == {
        "a": "backing off after 3 failures until 12:02:00 UTC"
    }
    assert backoff.waiting(KEY, T0 + 90) == 1
    assert backoff.holds(EntityKey("ozmap-ixc", "clients"), T0, wall_now=wall) == {}


def test_record_backoff_forgets_on_success_and_ignores_skips() -> None:
    backoff = RecordBackoff(base=30, cap=3600)
    backoff.record(KEY, [failed("a")], T0)
    # The held record's own skip is not an attempt: it neither counts nor clears.
    backoff.record(KEY, [Outcome("skip", "a", ok=False, error="backing off"), failed("q", "quarantine")], T0)
    assert backoff.failures(KEY, "a") == 1 and backoff.failures(KEY, "q") == 0
    backoff.record(KEY, [Outcome("update", "a", ok=True)], T0 + 40)
    assert backoff.failures(KEY, "a") == 0
    assert backoff.holds(KEY, T0 + 41, wall_now=0) == {}


def test_entity_key_reads_as_integration_slash_entity() -> None:
    assert str(KEY) == "ozmap-ixc/boxes"
