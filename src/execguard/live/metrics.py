"""Prometheus metrics of ``execguard watch`` (docs/watch.md "Metrics"), in a registry of its own.

The webhook's receiver may run in a process of its own (live/handoff.py): it then counts its
answers in shared memory, and the engine process folds those counts into this registry each time
it renders, so one scrape, on either port, shows every counter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# slots of the receiver's shared counters: one per HTTP status it answers, then the others
CODES = (200, 400, 401, 404, 411, 413, 429, 503)
REJECTED, TLS_FAILURES, BAD_BODIES = len(CODES), len(CODES) + 1, len(CODES) + 2
SLOTS = len(CODES) + 3


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
        self.join_pending = Gauge("execguard_join_pending_verdicts", "Node execs awaiting a record of who asked.", registry=r)
        self.join_shed = Counter("execguard_join_verdicts_shed", "Bypass verdicts dropped undecided (cap).", registry=r)
        if spool_bytes is not None:
            self.spool_bytes.set_function(spool_bytes)
        if spool_lag is not None:
            self.spool_lag.set_function(spool_lag)
        self._remote: Any = None  # a ctypes array in shared memory
        self._folded = [0] * SLOTS
        self._fold_lock = threading.Lock()

    # -- what the receiver counts (webhook.Receiver's Stats protocol)

    def request(self, code: int) -> None:
        self.requests.labels(code=str(code)).inc()

    def rejected_batch(self) -> None:
        self.rejected.inc()

    def tls_failure(self) -> None:
        self.tls_failures.inc()

    def bad_body(self) -> None:
        self.parse_errors.labels(input="audit-webhook").inc()

    # -- a receiver in another process

    def follow(self, counters: Any) -> None:
        """Fold these shared counters (SLOTS of them, only ever growing) into the registry when rendering."""
        self._remote = counters

    def fold(self) -> None:
        if self._remote is None:
            return
        with self._fold_lock:  # two scrapes at once (two ports) must not add the same delta twice
            self._fold()

    def _fold(self) -> None:
        for i in range(SLOTS):
            value = int(self._remote[i])
            delta, self._folded[i] = value - self._folded[i], value
            if delta <= 0:
                continue
            if i < len(CODES):
                self.requests.labels(code=str(CODES[i])).inc(delta)
            elif i == REJECTED:
                self.rejected.inc(delta)
            elif i == TLS_FAILURES:
                self.tls_failures.inc(delta)
            else:
                self.parse_errors.labels(input="audit-webhook").inc(delta)

    def render(self) -> tuple[bytes, str]:
        self.fold()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
