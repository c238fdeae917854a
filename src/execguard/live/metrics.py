"""Prometheus metrics of ``execguard watch`` (docs/watch.md "Metrics"), in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest


class Metrics:
    def __init__(self, spool_bytes: Callable[[], float] | None = None, spool_lag: Callable[[], float] | None = None) -> None:
        r = self.registry = CollectorRegistry()
        self.events = Counter("execguard_events", "Events read, by input.", ["input"], registry=r)
        self.parse_errors = Counter("execguard_parse_errors", "Bodies or records that could not be read, by input.", ["input"], registry=r)
        self.alerts = Counter("execguard_alerts", "Alerts written to the sinks, by severity.", ["severity"], registry=r)
        self.sink_failures = Counter("execguard_sink_failures", "Failed writes or flushes, by sink.", ["sink"], registry=r)
        self.requests = Counter("execguard_webhook_requests", "Webhook HTTP answers, by status code.", ["code"], registry=r)
        self.rejected = Counter("execguard_webhook_rejected", "Webhook batches refused with 429 (spool full).", registry=r)
        self.tls_failures = Counter("execguard_webhook_tls_failures", "Connections whose TLS handshake failed.", registry=r)
        self.reloads = Counter("execguard_reloads", "SIGHUP reloads of rules and policy, by result.", ["result"], registry=r)
        self.reconnects = Counter("execguard_input_reconnects", "Streams reopened after a loss, by input.", ["input"], registry=r)
        self.gap_seconds = Counter("execguard_input_gap_seconds", "Seconds a stream was down (lost events).", ["input"], registry=r)
        self.spool_bytes = Gauge("execguard_spool_bytes", "Bytes in the spool's segment files.", registry=r)
        self.spool_lag = Gauge("execguard_spool_lag_bytes", "Spooled bytes not yet alerted on and committed.", registry=r)
        if spool_bytes is not None:
            self.spool_bytes.set_function(spool_bytes)
        if spool_lag is not None:
            self.spool_lag.set_function(spool_lag)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
