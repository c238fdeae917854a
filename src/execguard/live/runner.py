"""The loop of ``execguard watch``: batches from the inputs' queue -> engine -> policy -> sinks -> ack.

One thread (the caller's) runs the engine, so its state (stage folding, correlation windows)
sees events in queue order. A batch is acknowledged to its input only after every alert of it
was written and the --out file flushed and fsynced; the file's size then (the "mark") and the
batch's input position go into the process's one state file (live/checkpoint.py) before the
ack. After a crash, watch cuts --out back to that mark and every input resumes from its stored
position: each accepted event is alerted exactly once in --out (docs/watch.md "Exactly once").
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from ..engine.join import Joiner
from ..engine.match import Engine
from ..model import Alert, Event, severity_rank
from ..policy import PolicyFilter
from .checkpoint import StateFile
from .inputs import Batch
from .metrics import Metrics
from .verdicts import dump, version


class Sink(Protocol):
    def write(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class Detector:
    """What SIGHUP replaces as a whole: the engine (rules) and the policy."""

    engine: Engine
    policy: PolicyFilter | None
    min_rank: int
    # the join (docs/node.md), in its mode where nothing waits: a batch's alerts are all written before its ack;
    # bypass verdicts wait beside them and come out as alerts of their own (engine/joinlive.py)
    join: Joiner | None = None

    def _joined(self, events: Iterable[Event]) -> Iterator[Alert]:
        assert self.join is not None
        for event in events:
            correlated: list[Alert] = []
            alert = self.engine.match(event, correlated)
            self.join.note(event)  # every audit or Docker record says that source is on
            for out, _ in self.join.feed(event, alert):
                yield out
            yield from correlated

    def alerts(self, batch: Batch) -> list[Alert]:
        return self._kept(self.engine.run(batch.events) if self.join is None else self._joined(batch.events))

    def due(self, wall: int) -> list[Alert]:
        """Bypass verdicts whose window has passed by the wall clock (ns), as alerts."""
        if self.join is None or not self.join.verdicts:
            return []
        return self._kept(out for out, _ in self.join.tick(wall))

    def _kept(self, alerts: Iterable[Alert]) -> list[Alert]:
        out: list[Alert] = []
        for alert in alerts:
            if self.policy is not None:
                kept = self.policy(alert)
                if kept is None:
                    continue
                alert = kept
            elif severity_rank(alert.severity) < self.min_rank:
                continue
            out.append(alert)
        return out


class OutFile:
    """--out, opened for appending, with the size to cut back to after a crash."""

    def __init__(self, path: Path, mark: dict[str, Any], text: bool) -> None:
        self.path = path
        self.key = str(path.resolve())
        self.cut = 0
        size = path.stat().st_size if path.exists() else 0
        if mark.get("out") == self.key and isinstance(mark.get("size"), int) and mark["size"] < size:
            # alerts written after the last checkpoint: their events are replayed from the spool
            with open(path, "r+b") as f:
                f.truncate(mark["size"])
                os.fsync(f.fileno())
            self.cut = size - mark["size"]
        self.handle: IO[Any] = open(path, "a", encoding="utf-8") if text else open(path, "ab")  # noqa: SIM115

    def sync(self) -> dict[str, Any]:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        return {"out": self.key, "size": os.fstat(self.handle.fileno()).st_size}

    def rollback(self, mark: dict[str, Any]) -> None:
        """Cut back what a failed batch wrote, so its retry does not write it twice."""
        size = mark.get("size")
        if mark.get("out") == self.key and isinstance(size, int):
            self.handle.flush()
            os.truncate(self.path, size)


class Runner:
    def __init__(
        self,
        detector: Detector,
        sink: Sink,
        metrics: Metrics,
        out: OutFile | None,
        warn: Callable[[str], None],
        mark: dict[str, Any] | None = None,
        state: StateFile | None = None,
        flush: Callable[[], None] | None = None,
    ) -> None:
        self.detector = detector
        self.sink = sink
        self.metrics = metrics
        self.out = out
        self.warn = warn
        self.queue: queue.Queue[Batch] = queue.Queue(maxsize=64)
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self.events = 0
        self.broken = False  # stdout's reader went away (`watch ... | head`)
        self.mark = mark or {}
        self.state = state
        self.flush = flush  # sinks that must be durable before a batch is acked (the alert store)
        self.ticked = 0.0
        self.shed = 0  # pending verdicts shed so far, as counted in metrics
        self.saved_verdicts = -1  # the join's verdict version the state file holds  # monotonic: the last look at pending verdicts
        if out is not None:
            self.mark = out.sync()

    def step(self, timeout: float = 0.2) -> bool:
        """Handle one batch from the queue; False when none came within ``timeout``."""
        try:
            batch = self.queue.get(timeout=timeout)
        except queue.Empty:
            self.tick()
            return False
        self.handle(batch)
        if time.monotonic() - self.ticked >= 1.0:
            self.tick()
        return True

    def tick(self) -> None:
        """Bypass verdicts due by the wall clock (a quiet stream): written and checkpointed like a batch of their own."""
        self.ticked = time.monotonic()
        join = self.detector.join
        alerts = self.detector.due(time.time_ns())
        if alerts:
            self.deliver(Batch("join", []), alerts)
        if join is not None and join.verdicts is not None:
            self.metrics.join_pending.set(len(join.verdicts))
            shed = join.verdicts.shed - self.shed
            if shed > 0:
                self.metrics.join_shed.inc(shed)
            self.shed = join.verdicts.shed

    def finish_verdicts(self) -> int:
        """At the end: verdicts due are written; the others stay in the state file (if any). How many are left."""
        self.tick()
        join = self.detector.join
        if join is None or join.verdicts is None or not join.verdicts:
            return 0
        if self.state is not None:
            self.state.join = dump(join)
            self._save(self.mark)
            return len(join.verdicts)
        return join.verdicts.drop()

    def handle(self, batch: Batch) -> None:
        for line in batch.bad[:20]:
            self.warn(line)
        if batch.bad:
            self.metrics.parse_errors.labels(input=batch.input).inc(len(batch.bad))
        self.metrics.events.labels(input=batch.input).inc(len(batch.events))
        self.events += len(batch.events)
        self.deliver(batch, self.detector.alerts(batch))  # once: the engine's state must not see the batch twice

    def deliver(self, batch: Batch, alerts: list[Alert]) -> None:
        delay = 0.5
        while True:
            try:
                for alert in alerts:
                    self.sink.write(alert)
                if self.flush is not None and alerts:
                    self.flush()
                mark = self.out.sync() if self.out is not None else self.mark
                break
            except OSError as exc:  # a full disk: keep the batch, retry, never ack it unwritten
                if self.out is None and isinstance(exc, BrokenPipeError):
                    self.broken = True  # nobody reads our alerts any more: stop, as hunt does, with this batch unacked
                    self.stop.set()
                    return
                self.metrics.sink_failures.labels(sink="out" if self.out is not None else "stdout").inc()
                self.warn(f"{self.out.path if self.out else 'stdout'}: {exc.strerror or exc}; retrying in {delay:.1f}s")
                if self.out is not None:
                    with contextlib.suppress(OSError):
                        self.out.rollback(self.mark)
                if self.stop.wait(delay):
                    return  # not acked: the spool replays it next start
                delay = min(delay * 2, 30.0)
        verdicts = version(self.detector.join)
        if self.state is not None and (batch.position is not None or mark != self.mark or verdicts != self.saved_verdicts):
            # before the ack: a spool commits (and frees) only what the state file already covers
            if batch.position is not None:
                self.state.positions[batch.input] = batch.position
            if verdicts != self.saved_verdicts:
                self.state.join = dump(self.detector.join)
            if not self._save(mark):
                return  # stopping with the state unsaved: not acked, so replayed next start
            self.saved_verdicts = verdicts
        self.mark = mark
        for alert in alerts:
            self.counts[alert.severity] += 1
            self.metrics.alerts.labels(severity=alert.severity).inc()
        if batch.ack is not None:
            batch.ack(mark)

    def _save(self, mark: dict[str, Any]) -> bool:
        assert self.state is not None
        delay = 0.5
        while True:
            try:
                self.state.save(mark)
                return True
            except OSError as exc:  # a full disk: the alerts are out; without the state a restart would repeat them
                self.metrics.sink_failures.labels(sink="state").inc()
                self.warn(f"{self.state.path}: {exc.strerror or exc}; retrying in {delay:.1f}s")
                if self.stop.wait(delay):
                    return False
                delay = min(delay * 2, 30.0)

    def drain(self, idle: Callable[[], bool], timeout: float) -> bool:
        """Handle batches until ``idle()`` holds and the queue is empty, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.step(0.1) and idle() and self.queue.empty():
                return True
        return False
