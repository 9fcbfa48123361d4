"""Prometheus metrics: counters fed by the service layer, gauges read at scrape time."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class PrometheusTelemetry:
    """The ``Telemetry`` port on prometheus-client, with its own registry per process/core."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter("liaisonbot_commands", "Commands handled",
                                ["verb", "platform", "outcome"], registry=self.registry)
        self._command_children: dict[tuple[str, str, str], Any] = {}
        self.deliveries = Counter("liaisonbot_deliveries", "Outbox delivery attempts",
                                  ["platform", "outcome"], registry=self.registry)
        self.delivery_latency = Histogram(
            "liaisonbot_delivery_latency_seconds", "From queued to delivered", ["platform"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
            registry=self.registry)
        self.backlog = Gauge("liaisonbot_outbox_backlog", "Posts waiting in the outbox",
                             registry=self.registry)
        self.overdue = Gauge("liaisonbot_overdue_requests", "Overdue requests per requested office",
                             ["office"], registry=self.registry)
        self.scheduler_lag = Gauge("liaisonbot_scheduler_lag_seconds",
                                   "Seconds since the last follow-up tick", registry=self.registry)
        self.leader = Gauge("liaisonbot_leader",
                            "1 when this process runs the tick and Matrix sync",
                            registry=self.registry)
        self.withheld = Counter("liaisonbot_matrix_withheld", "Room keys withheld from the bot",
                                ["code"], registry=self.registry)

    def matrix_withheld(self, code: str) -> None:
        """A partner's client withheld a room key from the bot (``m.room_key.withheld``)."""
        self.withheld.labels(code).inc()

    def command(self, verb: str, platform: str, outcome: str) -> None:
        key = (verb, platform, outcome)  # the labelled child looked up once per label set
        child = self._command_children.get(key)
        if child is None:
            child = self._command_children[key] = self.commands.labels(*key)
        child.inc()

    def delivery(self, platform: str, outcome: str, latency_s: float) -> None:
        self.deliveries.labels(platform, outcome).inc()
        if outcome == "ok":
            self.delivery_latency.labels(platform).observe(latency_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
