"""Minimal `watch` wiring: live inputs → Engine → Sink, one thread per input, one queue.

Each input runs in its own thread and is restarted (after a pause) if it ever raises; the engine
and the sink run in the caller's thread only, so they need no locks. ``settle()`` lets an input
that checkpoints (tail) wait until every event it handed on has reached the sink.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from ..engine.match import Engine
from ..model import Alert, Event

RESTART_PAUSE = 1.0
QUEUE_LIMIT = 100_000  # events waiting for the engine; an input blocks (backpressure) beyond it


class LiveInput(Protocol):
    def name(self) -> str: ...

    def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None: ...


class AlertSink(Protocol):
    def write(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class Emitter:
    """What inputs call: puts events on the one queue. ``settle`` waits until the queue is worked off."""

    def __init__(self, q: queue.Queue[Event]) -> None:
        self.q = q

    def __call__(self, event: Event) -> None:
        self.q.put(event)

    def settle(self) -> None:
        self.q.join()


class Runner:
    def __init__(self, inputs: Sequence[LiveInput], engine: Engine, sink: AlertSink, warn: Callable[[str], None]) -> None:
        self.inputs = list(inputs)
        self.engine = engine
        self.sink = sink
        self.warn = warn
        self.queue: queue.Queue[Event] = queue.Queue(QUEUE_LIMIT)
        self.emit = Emitter(self.queue)
        self.alerts = 0
        self.threads: list[threading.Thread] = []

    def _input_thread(self, inp: LiveInput, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                inp.run(self.emit, stop)
            except Exception as exc:  # a bug in one input must not end the others: report it and start it again
                self.warn(f"{inp.name()}: stopped by {type(exc).__name__}: {str(exc)[:200]}; restarting")
                stop.wait(RESTART_PAUSE)

    def start(self, stop: threading.Event) -> None:
        for inp in self.inputs:
            t = threading.Thread(target=self._input_thread, args=(inp, stop), name=inp.name(), daemon=True)
            t.start()
            self.threads.append(t)

    def step(self, timeout: float = 0.2) -> bool:
        """Work off one queued event; False when none came within timeout."""
        try:
            event = self.queue.get(timeout=timeout)
        except queue.Empty:
            return False
        try:
            correlated: list[Alert] = []
            alert = self.engine.match(event, correlated)
            for a in ([alert] if alert is not None else []) + correlated:
                self.sink.write(a)
                self.alerts += 1
        finally:
            self.queue.task_done()
        return True

    def run(self, stop: threading.Event) -> None:
        """Until stop is set; then the inputs are joined, what they queued is worked off and the sink closed."""
        self.start(stop)
        try:
            while not stop.is_set():
                self.step()
        finally:
            stop.set()
            for t in self.threads:
                t.join(timeout=10)
            while self.step(timeout=0):
                pass
            self.sink.close()
