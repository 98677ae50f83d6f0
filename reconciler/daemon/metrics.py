"""Prometheus metrics of the daemon, through ``prometheus_client`` (never hand-formatted).

Every metric lives in the :class:`Metrics` object's own ``CollectorRegistry`` (no module globals: two daemons in
one test process do not share counters). Labels are bounded: integration and entity come from the rules, never
from a request path; ``system`` from the config; ``error`` is an exception class name.

==========================================================  =========  ======================================
name                                                        type       labels
==========================================================  =========  ======================================
``reconciler_cycles_total``                                 counter    integration, entity, mode, status
``reconciler_cycle_duration_seconds``                       histogram  integration, entity, mode
``reconciler_cycle_in_progress``                            gauge      integration, entity
``reconciler_last_success_timestamp_seconds``               gauge      integration, entity
``reconciler_consecutive_failed_cycles``                    gauge      integration, entity
``reconciler_actions_total``                                counter    integration, entity, kind, outcome
``reconciler_errors_total``                                 counter    system, error
``reconciler_guard_trips_total``                            counter    integration, entity
``reconciler_queue_depth``                                  gauge      integration, entity
``reconciler_queue_delayed``                                gauge      integration, entity
``reconciler_queue_added_total``                            counter    —
``reconciler_queue_deduplicated_total``                     counter    —
``reconciler_records_backing_off``                          gauge      integration, entity
``reconciler_webhook_requests_total``                       counter    result
==========================================================  =========  ======================================

``mode`` is ``full``, ``incremental`` or ``targeted``; ``status`` is ``ok``, ``partial`` (some actions
failed), ``failed`` (the cycle raised) or ``guard``; ``outcome`` is ``ok``, ``failed`` or ``skipped``. The
process collector (``process_*``) and Python's (``python_*``) are included.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

from reconciler.daemon.scheduling import NOT_ATTEMPTS, EntityKey
from reconciler.model import Outcome

__all__ = ["CONTENT_TYPE", "DURATION_BUCKETS", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Cycle durations span a targeted cycle of one record (≈50 ms) to a full resync of a million (≈1 h).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

_ENTITY = ("integration", "entity")


class Metrics:
    """The daemon's metrics; ``render()`` is the ``/metrics`` body."""

    def __init__(self, entities: Iterable[EntityKey] = ()) -> None:
        self.registry = CollectorRegistry()
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        counter, gauge = self._counter, self._gauge
        self.cycles = counter("reconciler_cycles", "Entity cycles run", *_ENTITY, "mode", "status")
        self.cycle_duration = Histogram(
            "reconciler_cycle_duration_seconds",
            "Wall time of one entity cycle",
            [*_ENTITY, "mode"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = gauge(
            "reconciler_cycle_in_progress",
            "cycles of the entity in flight (2: a targeted one beside a scheduled one)",
            *_ENTITY,
        )
        self.last_success = gauge(
            "reconciler_last_success_timestamp_seconds",
            "Unix time of the entity's last cycle that did not fail",
            *_ENTITY,
        )
        self.consecutive_failures = gauge(
            "reconciler_consecutive_failed_cycles",
            "Failed cycles in a row (0 after a success); /readyz turns 503 at the configured threshold",
            *_ENTITY,
        )
        self.actions = counter(
            "reconciler_actions", "Actions applied, by kind and outcome", *_ENTITY, "kind", "outcome"
        )
        self.errors = counter("reconciler_errors", "Failed cycles and actions, by system", "system", "error")
        self.guard_trips = counter("reconciler_guard_trips", "Cycles stopped by a safety guard", *_ENTITY)
        self.queue_depth = gauge(
            "reconciler_queue_depth", "Record ids queued for an immediate cycle", *_ENTITY
        )
        self.queue_delayed = gauge(
            "reconciler_queue_delayed", "Record ids waiting for a retry after a failure", *_ENTITY
        )
        self.queue_added = counter("reconciler_queue_added", "Record ids queued by webhooks")
        self.queue_deduplicated = counter(
            "reconciler_queue_deduplicated",
            "Queue additions dropped because the same record (or cycle request) was already queued",
        )
        self.backing_off = gauge(
            "reconciler_records_backing_off", "Records held back after failed actions", *_ENTITY
        )
        self.webhooks = counter(
            "reconciler_webhook_requests", "Webhook and on-demand requests, by result", "result"
        )
        for key in entities:
            self._declare(key)

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)

    def _declare(self, key: EntityKey) -> None:
        """Create the entity's series at zero, so they exist before its first cycle."""
        for gauge in (self.in_progress, self.consecutive_failures, self.queue_depth, self.queue_delayed):
            gauge.labels(*key).set(0)
        self.backing_off.labels(*key)
        self.guard_trips.labels(*key)

    def observe_cycle(
        self, key: EntityKey, *, mode: str, status: str, seconds: float, finished_at: float
    ) -> None:
        """Count one finished cycle; ``finished_at`` is Unix time."""
        self.cycles.labels(*key, mode, status).inc()
        self.cycle_duration.labels(*key, mode).observe(seconds)
        if status in ("ok", "partial"):
            self.last_success.labels(*key).set(finished_at)
        if status == "guard":
            self.guard_trips.labels(*key).inc()

    def observe_outcomes(self, key: EntityKey, outcomes: Iterable[Outcome], *, target_system: str) -> None:
        """Count every action outcome; failed ones also count as errors of the target system."""
        for outcome in outcomes:
            result = "skipped" if outcome.kind in NOT_ATTEMPTS else ("ok" if outcome.ok else "failed")
            self.actions.labels(*key, outcome.kind, result).inc()
            if result == "failed":
                self.errors.labels(target_system, "ActionFailed").inc()

    def observe_error(self, system: str, error: BaseException) -> None:
        self.errors.labels(system, type(error).__name__).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
