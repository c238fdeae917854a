"""The join in the pipeline: engine decisions in, (alert, seq) out, for hunt and watch alike.

Sorted hunts (every input a regular file): the events the join reads, with their alerts, go through a
time merge with bounded memory (``TimeSpill``: sorted runs spilled to a temp file, merged with heapq),
so an audit log and a Tetragon export hunted together meet in log-time order however the files were
cut; the join then runs over the merged stream. With no node telemetry in the inputs, the join has
nothing to do and every alert comes out with its input sequence number unchanged, so the hunt's output
is what it was without the join. Streams (stdin, watch): events are joined as they arrive, and a node
exec waits ``lag`` seconds of log time (a bounded reordering window) for a record of who asked that
another input delivers late (the audit webhook batches for up to its max wait).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from ..clock import time_ns
from ..engine import joinkeys as jk
from ..engine.join import CAP, SKEW, WINDOW, Joiner, JoinStats
from ..engine.match import Engine
from ..model import Alert, Event
from . import wire
from .order import LAST

Decided = tuple[Event, "Alert | None", list[Alert]]  # an event, its alert, correlation alerts it completed
LAG = 30.0  # seconds a node exec waits on a stream for a late record of who asked
# events the time merge holds in memory before a sorted run goes to disk. A spilled event costs the parent ~20 us
# to write and read back (wire encoding; 88 k instructions, cachegrind), ~0.4 s of a dense 105 MB hunt's 36 000
# at the 20 000 the alert sort holds; held, they took 13.5 MB more (~0.85 kB each): bounded all the same
HOLD = 60_000


@dataclass
class JoinOptions:
    window: float = WINDOW
    skew: float = SKEW
    lag: float = LAG  # streams only
    cap: int = CAP
    covered: frozenset[str] = frozenset()  # 'k8s' / 'docker': a live input known to deliver every such record


def decided(engine: Engine, events: Iterable[Event]) -> Iterator[Decided]:
    """The engine's decision for every event (``Engine.run`` keeps only the alerts)."""
    for event in events:
        correlated: list[Alert] = []
        yield event, engine.match(event, correlated), correlated


class TimeSpill:
    """(time, seq, (event, alert)) records, then once in (time, seq) order; at most ``limit`` held in memory.

    Runs go to disk as ``wire`` batches: a pickle of the slotted dataclasses cost a dense hunt more to write and
    read back than the join itself (issue 10).
    """

    def __init__(self, limit: int = HOLD) -> None:
        self.limit = limit
        self.buffer: list[tuple[int, int, tuple[Event, Alert | None]]] = []
        self.runs: list[tuple[int, int]] = []
        self.spill: IO[bytes] | None = None
        self.path = ""

    def add(self, t: int, seq: int, item: tuple[Event, Alert | None]) -> None:
        self.buffer.append((t, seq, item))
        if len(self.buffer) >= self.limit:
            if self.spill is None:
                fd, self.path = tempfile.mkstemp(prefix="execguard-join-")
                self.spill = os.fdopen(fd, "wb")
            self.buffer.sort(key=lambda r: (r[0], r[1]))
            self.runs.append((self.spill.tell(), len(self.buffer)))
            for at in range(0, len(self.buffer), wire.BATCH):
                batch = [(t, s, wire.encode_event(ev), wire.encode_alert(al, ev)) for t, s, (ev, al) in self.buffer[at : at + wire.BATCH]]
                wire.write_batch(self.spill, batch)
            self.buffer = []

    def _run(self, offset: int, count: int) -> Iterator[tuple[int, int, tuple[Event, Alert | None]]]:
        with open(self.path, "rb") as f:
            f.seek(offset)
            while count > 0 and (batch := wire.read_batch(f)) is not None:
                count -= len(batch)
                for t, s, ev, al in batch:
                    event = wire.decode_event(ev)
                    yield t, s, (event, wire.decode_alert(al, event))

    def drain(self) -> Iterator[tuple[int, int, tuple[Event, Alert | None]]]:
        self.buffer.sort(key=lambda r: (r[0], r[1]))
        try:
            if self.spill is not None:
                self.spill.flush()
            streams: list[Iterator[tuple[int, int, tuple[Event, Alert | None]]]] = [self._run(o, n) for o, n in self.runs]
            yield from heapq.merge(*streams, iter(self.buffer), key=lambda r: (r[0], r[1]))
        finally:
            self.close()

    def close(self) -> None:
        self.buffer, self.runs = [], []
        if self.spill is not None:
            self.spill.close()
            self.spill = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _always() -> bool:
    return True


class JoinStage:
    """``run(decisions)`` -> (alert, seq): seq is the alert's place in the input, for the sort's ties."""

    def __init__(self, options: JoinOptions, sorted_input: bool, expected: Callable[[Event], bool] | None = None) -> None:
        self.options = options
        self.sorted = sorted_input
        self.expected = expected
        self.joiner: Joiner | None = None
        self.node_events = 0

    @property
    def stats(self) -> JoinStats | None:
        """The join's counts, when the inputs held node telemetry (else it had nothing to do)."""
        if self.joiner is None or not self.node_events:
            return None
        self.joiner.stats.shed = self.joiner.shed
        return self.joiner.stats

    def _joiner(self, lag: float) -> Joiner:
        o = self.options
        return Joiner(o.window, o.skew, lag, o.cap, self.expected, active=self.sorted, covered=o.covered)

    def run(
        self, items: Iterable[Decided], node_free: Callable[[], bool] | None = None, scan: Callable[[], bool] | None = None
    ) -> Iterator[tuple[Alert, int]]:
        """``node_free``: True once it is known that no node telemetry comes (every input read by -j workers).
        ``scan``: asked once, when what the join holds would first spill to disk: True when no input can hold
        node telemetry at all (pipeline/nodescan.py), so nothing needs holding."""
        return self._sorted(items, node_free, scan) if self.sorted else self._stream(items)

    def _stream(self, items: Iterable[Decided]) -> Iterator[tuple[Alert, int]]:
        joiner = self.joiner = self._joiner(self.options.lag)
        seq = 0
        try:
            for event, alert, correlated in items:
                seq += 1
                self.node_events += event.action in jk.NODE
                if alert is not None:
                    joiner.note(event)
                yield from joiner.feed(event, alert, seq)
                for extra in correlated:
                    seq += 1
                    yield extra, seq
        except BaseException:
            yield from joiner.drain()  # what waited is kept on Ctrl-C or a read error
            raise
        yield from joiner.drain()

    def _sorted(
        self, items: Iterable[Decided], node_free: Callable[[], bool] | None = None, scan: Callable[[], bool] | None = None
    ) -> Iterator[tuple[Alert, int]]:
        spill = TimeSpill()
        joiner = self._joiner(0.0)
        seq = 0
        held = True  # events the join reads are held for the time merge
        try:
            for event, alert, correlated in items:
                seq += 1
                if held and scan is not None and len(spill.buffer) + 1 >= spill.limit:
                    # what is held would spill to disk, which costs more than a look at the inputs' bytes
                    if not self.node_events and scan():
                        node_free = _always
                    scan = None
                if held and node_free is not None and not self.node_events and node_free():
                    # nothing to join them with: what was held goes on (the sort after puts every alert in its
                    # place by time and sequence number, as it would have come out of the merge) and no more is
                    held = False
                    for _, s, (_, held_alert) in spill.drain():
                        if held_alert is not None:
                            yield held_alert, s
                if not held:
                    if alert is not None:
                        yield alert, seq
                    for extra in correlated:
                        seq += 1
                        yield extra, seq
                    continue
                relevant = jk.relevant(event)
                if alert is not None or relevant:  # most events without an alert need no time
                    t = time_ns(event.time)
                    if alert is not None:  # the same events with -j or not: those that hit a rule, and those the join reads
                        joiner.note(event, t)
                    if relevant:
                        self.node_events += event.action in jk.NODE
                        spill.add(LAST if t is None else t, seq, (event, alert))
                    elif alert is not None:
                        yield alert, seq
                for extra in correlated:
                    seq += 1
                    yield extra, seq
        except BaseException:
            for _, s, (_, alert) in spill.drain():  # interrupted: what was found goes out unjoined
                if alert is not None:
                    yield alert, s
            raise
        if not self.node_events:
            for _, s, (_, alert) in spill.drain():
                if alert is not None:
                    yield alert, s
            return
        self.joiner = joiner
        for t, s, (event, alert) in spill.drain():
            yield from joiner.feed(event, alert, s, None if t == LAST else t)
        yield from joiner.drain()
