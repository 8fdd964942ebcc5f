"""Prometheus metrics of the tracker itself (one registry per app, so tests can build several apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_ingested = Counter(
            "runlink_events_ingested", "Events stored (new, not duplicates)", registry=self.registry
        )
        self.events_duplicate = Counter(
            "runlink_events_duplicate", "Events already stored (replays)", registry=self.registry
        )
        self.batches_rejected = Counter(
            "runlink_batches_rejected", "Batches rejected", ["reason"], registry=self.registry
        )
        self.events_rejected = Counter(
            "runlink_events_rejected", "Events in rejected batches (when countable)", registry=self.registry
        )
        self.ingest_latency = Histogram(
            "runlink_ingest_latency_seconds",
            "Time to validate and store one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.write_lock_wait = Histogram(
            "runlink_write_lock_wait_seconds",
            "Time a batch's write transaction waited for its write lock (part of the ingest latency)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.relinks = Counter("runlink_relinks", "dag_id relinks run", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
