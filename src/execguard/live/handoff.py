"""The hand-off between the audit webhook's receiver process and the engine process (docs/watch.md "Two processes").

The spool is the hand-off. The receiver process (live/receiver.py) appends each body and fsyncs
it (live/spool.py), then publishes the fsynced end in shared memory and wakes the engine through
a pipe. The engine process reads frames up to that end (``SpoolReader``), alerts, writes the
spool checkpoint and publishes it back, so the receiver can free the space in its size limit.

No lock is shared between the two processes: a kill -9 of one must never leave the other waiting
on a lock the dead one held. Each shared value is one aligned 64-bit word that one side writes and
the other reads; the receiver's counters are written by the receiver only (under a lock of its own)
and folded into the engine's Prometheus registry when it renders.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import threading
from multiprocessing.context import SpawnContext
from pathlib import Path
from typing import Any

from .metrics import BAD_BODIES, CODES, REJECTED, SLOTS, TLS_FAILURES, Metrics
from .spool import Frame, Position, SpoolError, load_checkpoint, read_frames, segment_path, write_checkpoint

SHIFT = 40  # a position in one word: segment above bit 40, offset (< 1 TiB; segments are 64 MiB) below


def pack(pos: Position) -> int:
    return (pos.segment << SHIFT) | pos.offset


def unpack(value: int) -> Position:
    return Position(value >> SHIFT, value & ((1 << SHIFT) - 1))


class Shared:
    """Made by the engine process before it starts the receiver; passed to each receiver process it starts."""

    def __init__(self, ctx: SpawnContext) -> None:
        self.synced = ctx.RawValue(ctypes.c_int64, -1)  # receiver: the fsynced end; -1 until its spool is open
        self.committed = ctx.RawValue(ctypes.c_int64, 0)  # engine: the spool checkpoint
        self.ready = ctx.RawValue(ctypes.c_int8, 1)  # engine: 0 once it is stopping (/readyz)
        self.counters = ctx.RawArray(ctypes.c_int64, SLOTS)  # receiver: answers by code, 429s, TLS failures, 400s
        self.wake_r, self.wake_w = ctx.Pipe(duplex=False)  # receiver -> engine: "more is fsynced"
        self.engine_end, self.receiver_end = ctx.Pipe()  # receiver asks for /metrics, the engine renders it


class SpoolReader:
    """The engine's side of a spool another process writes: what ``SpoolInput`` reads, commits and rewinds."""

    def __init__(self, directory: Path, shared: Shared, fsync: bool = True) -> None:
        self.dir = Path(directory)
        self.shared = shared
        self.fsync = fsync
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"{exc.filename or self.dir}: {exc.strerror or exc}") from None
        self.checkpoint, self.mark = load_checkpoint(self.dir)
        self._read = self.checkpoint
        self._wake = shared.wake_r.fileno()
        os.set_blocking(self._wake, False)
        shared.committed.value = pack(self.checkpoint)

    def synced(self) -> Position | None:
        value = int(self.shared.synced.value)
        return None if value < 0 else unpack(value)

    def _seg_size(self, segment: int) -> int:
        # a segment before the last is complete: the writer fsyncs it before it starts the next one
        try:
            return segment_path(self.dir, segment).stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, max_frames: int = 64, timeout: float | None = None) -> list[Frame]:
        limit = self.synced()
        if (limit is None or self._read >= limit) and timeout:
            ready, _, _ = select.select([self._wake], [], [], timeout)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake, 4096)
            limit = self.synced()
        if limit is None or self._read >= limit:
            return []
        frames, self._read = read_frames(self.dir, self._read, limit, self._seg_size, max_frames)
        return frames

    def commit(self, end: Position, mark: dict[str, Any] | None = None) -> None:
        if mark is not None:
            self.mark = mark
        write_checkpoint(self.dir, end, self.mark, self.fsync)
        first, self.checkpoint = self.checkpoint.segment, end
        self.shared.committed.value = pack(end)
        for n in range(first, end.segment):
            with contextlib.suppress(FileNotFoundError):
                segment_path(self.dir, n).unlink()

    def rewind(self) -> None:
        self._read = self.checkpoint

    @property
    def size(self) -> int:
        total = 0
        for path in self.dir.glob("seg-*.log"):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    @property
    def lag(self) -> int:
        limit = self.synced()
        if limit is None or limit <= self.checkpoint:
            return 0
        total = limit.offset - self.checkpoint.offset
        for n in range(self.checkpoint.segment, limit.segment):
            total += self._seg_size(n)
        return total

    def empty(self) -> bool:
        limit = self.synced()
        return limit is None or self.checkpoint >= limit

    def close(self) -> None:
        pass  # nothing held open: each read opens its segment


class SharedStats:
    """The receiver process's counters (in shared memory) and its /metrics (rendered by the engine process)."""

    def __init__(self, shared: Shared, timeout: float = 5.0) -> None:
        self.counters = shared.counters
        self.ask = shared.receiver_end
        self.timeout = timeout
        self._lock = threading.Lock()
        self._ask_lock = threading.Lock()

    def _inc(self, slot: int) -> None:
        with self._lock:  # += on a shared word is not atomic between this process's threads
            self.counters[slot] += 1

    def request(self, code: int) -> None:
        if code in CODES:
            self._inc(CODES.index(code))

    def rejected_batch(self) -> None:
        self._inc(REJECTED)

    def tls_failure(self) -> None:
        self._inc(TLS_FAILURES)

    def bad_body(self) -> None:
        self._inc(BAD_BODIES)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        with self._ask_lock:
            while self.ask.poll():  # a late answer to a request that timed out
                self.ask.recv_bytes()
            self.ask.send_bytes(b"metrics")
            if not self.ask.poll(self.timeout):
                raise OSError(f"the engine process did not answer within {self.timeout:.0f}s")
            return self.ask.recv_bytes(), CONTENT_TYPE_LATEST


def answer_metrics(shared: Shared, metrics: Metrics, stop: threading.Event) -> threading.Thread:
    """In the engine process: render /metrics for the receiver process whenever it asks."""

    def loop() -> None:
        conn = shared.engine_end
        while not stop.is_set():
            try:
                if conn.poll(0.5):
                    conn.recv_bytes()
                    conn.send_bytes(metrics.render()[0])
            except (EOFError, OSError):
                return

    metrics.follow(shared.counters)
    t = threading.Thread(target=loop, name="metrics-answer", daemon=True)
    t.start()
    return t
