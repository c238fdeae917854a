"""Alerts in time or severity order with bounded memory: sorted runs spill to a temp file.

Up to ``limit`` alerts are held in memory; past that each sorted run is pickled to one temp
file and the runs are merged lazily with heapq.merge, so memory is about ``limit`` alerts
plus one alert per run however large the hunt.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..clock import time_ns
from ..model import Alert, severity_rank
from .collector import drop

SORTS = ("time", "severity", "input")
RUN = 20_000  # alerts held in memory before a sorted run is written out
LAST = 1 << 80  # alerts without a readable time sort after every timed one

Key = tuple[int, ...]


def time_key(alert: Alert, seq: int) -> Key:
    t = time_ns(alert.event.time)
    return (LAST if t is None else t, seq)


def severity_key(alert: Alert, seq: int) -> Key:
    t = time_ns(alert.event.time)
    return (-severity_rank(alert.severity), LAST if t is None else t, seq)


def input_key(alert: Alert, seq: int) -> Key:
    return (seq,)


KEYS: dict[str, Callable[[Alert, int], Key]] = {"time": time_key, "severity": severity_key, "input": input_key}


class SpillSorter:
    """Add (alert, seq) pairs, then iterate them in key order once."""

    def __init__(self, key: Callable[[Alert, int], Key], limit: int = RUN) -> None:
        self.key = key
        self.limit = limit
        self.buffer: list[tuple[Key, Alert, int]] = []
        self.runs: list[tuple[int, int]] = []  # (offset, count) of each run in the spill file
        self.spill: IO[bytes] | None = None
        self.path = ""
        self.count = 0

    def add(self, alert: Alert, seq: int) -> None:
        self.buffer.append((self.key(alert, seq), alert, seq))
        self.count += 1
        if len(self.buffer) >= self.limit:
            self._write_run()

    def _write_run(self) -> None:
        if self.spill is None:
            fd, self.path = tempfile.mkstemp(prefix="execguard-sort-")
            self.spill = os.fdopen(fd, "wb")
        self.buffer.sort(key=lambda r: r[0])
        offset = self.spill.tell()
        for rec in self.buffer:
            self.spill.write(pickle.dumps(rec, protocol=pickle.HIGHEST_PROTOCOL))
        self.runs.append((offset, len(self.buffer)))
        self.buffer = []

    def _read_run(self, offset: int, count: int) -> Iterator[tuple[Key, Alert, int]]:
        # each run reads through a handle of its own so the merge can interleave them
        with open(self.path, "rb") as f:
            f.seek(offset)
            for _ in range(count):
                yield pickle.load(f)

    def drain(self) -> Iterator[tuple[Alert, int]]:
        self.buffer.sort(key=lambda r: r[0])
        try:
            if not self.runs:
                for _, alert, seq in self.buffer:
                    yield alert, seq
                return
            assert self.spill is not None
            self.spill.flush()
            streams: list[Any] = [self._read_run(o, n) for o, n in self.runs]
            streams.append(iter(self.buffer))
            for _, alert, seq in heapq.merge(*streams, key=lambda r: r[0]):
                yield alert, seq
        finally:
            self.close()

    def close(self) -> None:
        if self.buffer:
            drop(self.buffer)  # the last run, held in memory: left for the program's exit when the hunt ends it
        self.buffer = []
        self.runs = []
        if self.spill is not None:
            self.spill.close()
            self.spill = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)
