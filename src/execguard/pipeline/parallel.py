"""Hunt on several cores: files, and ranges of large line-delimited files, read by worker processes.

Each worker runs a source and the stateless half of the engine (``Engine.coded_hits``) on its unit and
writes the events that hit a rule, and its warnings, to a spool file (pipeline/wire.py). The parent replays the
spools in input order through the stateful half (``Engine.decide``: correlation, severity floor,
stage folding), adding the lines of earlier ranges of the same file to line numbers. So the
alerts, their order, line numbers, warnings and counts are those of a serial run.

Workers are forked after the rules are compiled, so nothing is compiled or pickled twice; spools
keep memory flat however many hits a unit has. Used only where fork exists (Linux).
"""

from __future__ import annotations

import gc
import mmap
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import IO, Any

from .. import clock
from ..engine.joinkeys import NODE
from ..engine.match import Engine
from ..model import Alert, Event
from ..sources.reader import Reader, Stats, Warn
from . import wire
from .collector import collect_less, fewer_collections
from .nodescan import clean_range
from .units import WARM, Unit

ALERTED = 1 << 16  # requests a worker remembers, to leave their later stages' reasons to the parent
# a range this many times costlier per byte than a sparse log is scanned for node telemetry first (see _clean)
SCAN_WEIGHT = 4.0


@dataclass
class _Done:
    spool: str
    stats: Stats
    error: str | None = None
    node: int = 0  # node-telemetry events spooled: the join has something to do


_JOB: tuple[Reader, Engine, str] | None = None  # set in the parent just before the workers fork


def available_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


class ParallelHunt:
    """Start the workers (before any thread, such as a progress bar's, exists), then iterate ``alerts``.

    Plain processes rather than multiprocessing.Pool: each takes the next unit number from a shared
    counter and reports on a pipe of its own, so stopping them (Ctrl-C, a closed output) is a
    SIGTERM with no queue lock a dying worker could hold.
    """

    def __init__(self, reader: Reader, engine: Engine, units: list[Unit], jobs: int) -> None:
        global _JOB
        self.reader = reader
        self.engine = engine
        self.units = units
        self.on_progress: Callable[[int], None] | None = None
        # every unit is read and none held node telemetry: the join has nothing to wait for (pipeline/join.py)
        self.node_free = False
        self._node = 0
        self._live: set[Connection] = set()
        self._dir = tempfile.mkdtemp(prefix="execguard-")
        ctx = multiprocessing.get_context("fork")
        self._next = _Counter(ctx)
        self._workers: list[tuple[BaseProcess, Connection]] = []
        _JOB = (reader, engine, self._dir)
        # the first range of the first cut file, small (see _ramp), is read here before the fork: what a process
        # makes on first use (lazy imports, the scanner's compiled literals, the engine's memos of repeated
        # commands) is then made once and shared by every worker, and the parent replays it while they start
        first = next((i for i, u in enumerate(units) if u.start is not None and u.size <= 2 * WARM), None)
        self._done: dict[int, _Done] = {}
        if first is not None:  # none only when an over-long line kept the first cut file's first range whole
            with fewer_collections():
                self._done[first] = _work(first, units[first])
        todo = [i for i in range(len(units)) if i != first]
        # the join holds every event it reads until no node telemetry can come (pipeline/join.py): on a dense
        # log that is most of them, spilled to disk and read back. The dense ranges are scanned for it first,
        # shared among the workers, so that it is known at once instead of when the last range is read.
        scan = [i for i in todo if units[i].start is not None and units[i].work >= SCAN_WEIGHT * units[i].size] if engine.join else []
        self._clean: set[int] = set()
        self._known = 0  # the first unit after the one replayed not yet known to hold no node telemetry
        self._todo = todo
        workers = min(jobs, len(todo))
        gc.freeze()  # what exists now (rules, imports) is never collected: a worker's collections do not copy its pages
        try:
            for w in range(workers):
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker, args=(units, todo, self._next, send, scan[w::workers]), daemon=True)
                proc.start()
                send.close()  # the parent keeps the reading end only: EOF when the worker is gone
                self._workers.append((proc, receive))
        except BaseException:
            self.close()
            raise
        finally:
            _JOB = None  # the children have their copy
            gc.unfreeze()

    def _results(self) -> Iterator[tuple[Unit, _Done]]:
        """Finished units in input order, waiting for each in turn."""
        done = self._done
        self._live = {conn for _, conn in self._workers}
        self._node = sum(d.node for d in done.values())
        for index, unit in enumerate(self.units):
            while index not in done:
                if not self._live:
                    # every worker is gone without this unit: report it, never hang
                    done[index] = _Done("", Stats(), "a worker stopped before reading this part; it was skipped")
                    break
                self._receive(block=True)
            yield unit, done.pop(index)
            if not self.node_free:
                self._receive(block=False)  # what else is finished
                self._learn_node_free(index)

    def _learn_node_free(self, index: int) -> None:
        """``node_free`` once no node telemetry was seen and every unit after ``index`` was read without any or
        scanned clean. ``_known`` only moves on (both sets only grow while it is ahead of ``index``): O(units) in all."""
        at = max(self._known, index + 1)
        while at < len(self.units) and (at in self._done or at in self._clean):
            at += 1
        self._known = at
        self.node_free = not self._node and at == len(self.units)

    def _receive(self, block: bool) -> None:
        """Results the workers sent: at least one when ``block``, else those already there."""
        while ready := wait(list(self._live), None if block else 0):
            for conn in ready:
                assert isinstance(conn, Connection)
                try:
                    i, result = conn.recv()
                except (EOFError, OSError):
                    self._live.discard(conn)
                    continue
                if i < 0:  # the units of its share of the scan without node telemetry (_worker)
                    self._clean.update(result)
                    continue
                self._done[i] = result
                self._node += result.node
            if block:
                return

    def alerts(self) -> Iterator[Alert]:
        for _, alert, correlated in self.decided():
            if alert is not None:
                yield alert
            yield from correlated

    def decided(self) -> Iterator[tuple[Event, Alert | None, list[Alert]]]:
        """Every spooled event with its decision, in input order (the join needs events without alerts too).

        Read under the hunt's ``collector.fewer_collections`` (pipeline/run.py): the replay's tuples are short-lived.
        """
        line_base: dict[str, int] = {}
        try:
            for unit, result in self._results():
                base = line_base.get(unit.path, 0) if unit.start else 0
                yield from self._replay(result, base)
                line_base[unit.path] = base + result.stats.lines
                _merge(self.reader.stats, result.stats)
                if result.error:
                    self.reader.stats.bad += 1
                    self.reader.warn(unit.path, None, result.error)
                if self.on_progress:
                    self.on_progress(unit.size)
        finally:
            self.close()

    def _replay(self, done: _Done, base: int) -> Iterator[tuple[Event, Alert | None, list[Alert]]]:
        warn: Warn = self.reader.warn
        decide, learn, from_wire = self.engine.decide, clock.learn, self.engine.from_wire
        if not done.spool:
            return
        try:
            f: IO[bytes] = open(done.spool, "rb")  # noqa: SIM115 - closed below
        except OSError:
            return
        with f:
            for rec in wire.read(f, from_wire):
                if rec[0] == "w":
                    _, file, line, message = rec
                    warn(file, line + base if line else line, message)
                    continue
                event: Event = rec[1]
                learn(event.time, rec[3])
                if base:
                    _shift(event, base)
                correlated: list[Alert] = []
                yield event, decide(event, rec[2], correlated), correlated
        os.unlink(done.spool)

    def close(self) -> None:
        for proc, conn in self._workers:
            if proc.is_alive():
                proc.terminate()
            conn.close()
        for proc, _ in self._workers:
            proc.join(5)
            if proc.is_alive():  # pragma: no cover - a worker that ignores SIGTERM
                proc.kill()
                proc.join()
        self._workers = []
        shutil.rmtree(self._dir, ignore_errors=True)


class _Counter:
    """The next unit to take, shared by the forked workers: 8 bytes of shared memory and a lock held to read and
    bump them. ``multiprocessing.Value`` is the same thing after importing ctypes for it, ~13 ms before the first
    worker could start."""

    def __init__(self, ctx: Any) -> None:
        self._lock = ctx.Lock()
        self._mem = mmap.mmap(-1, 8)  # anonymous, and shared (MAP_SHARED): every forked worker sees the one counter

    def take(self) -> int:
        with self._lock:
            at = int.from_bytes(self._mem[:8], "little")
            self._mem[:8] = (at + 1).to_bytes(8, "little")
        return at


def _worker(units: list[Unit], todo: list[int], counter: _Counter, send: Connection, scan: list[int]) -> None:
    """A worker process: report which units of ``scan`` hold no node telemetry (``_clean``), then take the next
    unit of ``todo`` until none are left; report each when its spool is written."""
    # Ctrl-C reaches the whole process group: the parent stops the workers and keeps what it has
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    collect_less()
    if scan:
        send.send((-1, [i for i in scan if _clean(units[i])]))
    while True:
        at = counter.take()
        if at >= len(todo):
            break
        index = todo[at]
        send.send((index, _work(index, units[index])))
    send.close()


def _clean(unit: Unit) -> bool:
    """True when the range ``unit`` cannot yield node telemetry (pipeline/nodescan.py). About 0.3 ms a MB with
    Hyperscan, 1 ms without; a whole-file unit may be any format and is never declared clean."""
    return unit.start is not None and unit.end is not None and clean_range(unit.path, unit.start, unit.end)


def _work(index: int, unit: Unit) -> _Done:
    """In a worker: read one unit, keep the events that hit a rule and the warnings, in order."""
    assert _JOB is not None
    parent, engine, spool_dir = _JOB
    spool = os.path.join(spool_dir, f"{index}.spool")
    with open(spool, "wb", buffering=1 << 20) as f:
        out = wire.Writer(f)
        reader = Reader(fmt=parent.fmt, literals=parent.literals, warn=out.warning, max_line=parent.max_line)
        events = reader.read([unit.path]) if unit.start is None else reader.read_range(unit.path, unit.start, unit.end or 0)
        hits, needs_state, keep = engine.coded_hits, engine.needs_state, out.coded
        error = None
        node = 0
        # (format, event id) of the requests whose earlier audit stage is spooled with hits: a later stage's reasons
        # are left to the parent, whose stage folding suppresses most such alerts (Engine.coded_hits)
        alerted: set[tuple[str, str]] = set()
        try:
            for event in events:
                eid = event.event_id
                if eid and event.rbac is None:  # an RBAC write may be completed by the parent's grants: explained here
                    key = (event.source.format, eid)
                    later = key in alerted
                    found = hits(event, not later)
                    if found and not later:
                        if len(alerted) >= ALERTED:
                            alerted.clear()  # bounded: a stage after this explains its hits here, as if first
                        alerted.add(key)
                else:
                    found = hits(event)
                if found or needs_state(event):
                    keep(event, found)
                    node += event.action in NODE
        except Exception as exc:  # a bug must cost this unit's rest, not the hunt
            error = f"worker failed after {reader.stats.lines} lines ({type(exc).__name__}: {exc}); the rest of this part was skipped"
        try:
            out.flush()  # what was found before a failure is kept
        except OSError as exc:
            error = error or f"worker could not write what it found ({exc}); this part was skipped"
    return _Done(spool, reader.stats, error, node)


def _shift(event: Event, base: int) -> None:
    ref = event.source
    if ref.line is None:
        return
    old = f"{ref.file}:{ref.line}"
    ref.line += base
    if event.raw == old:
        event.raw = f"{ref.file}:{ref.line}"


def _merge(total: Stats, part: Stats) -> None:
    for f in fields(Stats):
        name = f.name
        value: Any = getattr(part, name)
        if name == "peak_buffer":
            total.peak_buffer = max(total.peak_buffer, value)
        elif name == "by_format":
            total.by_format.update(value)
        elif name == "unknown_files":
            total.unknown_files.update(value)
        else:
            setattr(total, name, getattr(total, name) + value)
