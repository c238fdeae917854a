"""What a live input of ``execguard watch`` is: it puts batches of Events on one queue.

Every input (the audit webhook's spool, Docker events, tailed files) runs in its own thread and
is restarted on its own when it fails, with backoff. A batch of a durable input carries the
``position`` the input reached with it (JSON); the runner stores it in the process's one state
file together with the --out size once the batch's alerts are in the sinks, then calls ``ack``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..model import Event

Ack = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class Batch:
    input: str  # the input's name, for metrics and messages
    events: list[Event]
    ack: Ack | None = None
    bad: list[str] = field(default_factory=list)  # one line per record that could not be read
    position: Any = None  # where a durable input resumes once this batch is done (None: not durable)


class Input(Protocol):
    name: str

    def run(self, out: queue.Queue[Batch], stop: threading.Event) -> None:
        """Put batches on ``out`` until ``stop`` is set; return then. Raising means: restart me."""
        ...


class EventSource(Protocol):
    def name(self) -> str: ...

    def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None: ...


class EventStream:
    """An input that hands on one Event at a time (``run(emit, stop)``, like Docker's /events), as batches.

    Each event is a batch of its own: such inputs are slow (an exec at a time) and want the least
    latency; they keep no position (Docker replays its own buffer by ``since``)."""

    def __init__(self, inner: EventSource) -> None:
        self.inner = inner
        self.name: str = inner.name()

    def run(self, out: queue.Queue[Batch], stop: threading.Event) -> None:
        self.inner.run(lambda ev: out.put(Batch(self.name, [ev])), stop)


def supervise(
    inp: Input, out: queue.Queue[Batch], stop: threading.Event, warn: Callable[[str], None], max_backoff: float = 30.0
) -> threading.Thread:
    """Run ``inp`` in a thread, restarting it with exponential backoff when it raises."""

    def loop() -> None:
        delay = 0.5
        while not stop.is_set():
            started = time.monotonic()
            try:
                inp.run(out, stop)
                return
            except Exception as exc:  # an input's failure must not end the others
                warn(f"input {inp.name}: {exc}; restarting in {delay:.1f}s")
            if time.monotonic() - started > 60:
                delay = 0.5  # it ran a while: a fresh failure, not a loop
            stop.wait(delay)
            delay = min(delay * 2, max_backoff)

    t = threading.Thread(target=loop, name=f"input-{inp.name}", daemon=True)
    t.start()
    return t
