"""``reconciler run``: the long-running sync daemon (a sidecar next to the systems it keeps in agreement).

One process, one event loop: per-entity workers on their own schedules (:mod:`.runner`, decisions in
:mod:`.scheduling`), an immediate work queue fed by webhooks (:mod:`.workqueue`, :mod:`.webhooks`) served by a
second worker per entity beside the scheduled one, serialized with it per record (:mod:`.gating`), an HTTP
server for probes, metrics and webhooks (:mod:`.server`, :mod:`.metrics`), and a graceful stop on SIGTERM
(:mod:`.service`). Settings resolve in :mod:`.settings`.
"""
