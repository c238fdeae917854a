"""A durable on-disk spool: what the audit webhook has acknowledged, until it has been alerted on.

Layout of the directory: ``seg-<n>.log`` segment files, appended only, and ``checkpoint.json``.
A segment is a run of frames: a 12-byte header (payload length, CRC-32 of the payload, magic)
then the payload (one request body). Durability (docs/watch.md "Spool"):

- ``append`` returns only once its frame is fsynced: the webhook answers 200 after that. Appends
  that arrive while an fsync runs share the next one (group commit), so many concurrent requests
  cost one fsync, not one each.
- The consumer reads frames, hands their events to the sinks, and ``commit``s a position with the
  sinks' mark (e.g. the --out file's size after its fsync). The checkpoint is written to a
  temporary file, fsynced and renamed over the old one, so it is either the old or the new.
- On open, a torn tail (a kill -9 or power loss mid-write) is cut at the last whole frame, and
  segments wholly before the checkpoint are deleted; reading starts at the checkpoint, so frames
  not yet committed are read again, and committed ones never.
- The total size of the segment files is bounded: ``append`` raises SpoolFull past it (HTTP 429).
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

HEADER = struct.Struct("<IIi")
MAGIC = 0x45475350  # "EGSP": a header that is all zeroes (a preallocated or zero-filled tail) is not a frame
MAX_FRAME = 256 * 1024 * 1024
CHECKPOINT = "checkpoint.json"


class SpoolFull(Exception):
    """The spool holds its limit: the caller should retry later."""


class SpoolError(Exception):
    """The spool directory cannot be used (one line, naming the file)."""


@dataclass(frozen=True, order=True, slots=True)
class Position:
    segment: int
    offset: int


@dataclass(slots=True)
class Frame:
    end: Position  # commit this to mark the frame processed
    payload: bytes


def _name(segment: int) -> str:
    return f"seg-{segment:012d}.log"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _scan(path: Path) -> int:
    """Length of the valid prefix of a segment: whole frames with the right magic and CRC."""
    good = 0
    with open(path, "rb") as f:
        while True:
            head = f.read(HEADER.size)
            if len(head) < HEADER.size:
                return good
            length, crc, magic = HEADER.unpack(head)
            if magic != MAGIC or length > MAX_FRAME:
                return good
            body = f.read(length)
            if len(body) < length or zlib.crc32(body) != crc:
                return good
            good += HEADER.size + length


class Spool:
    def __init__(
        self,
        directory: Path,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 64 << 20,
        fsync: bool = True,
        on_synced: Callable[[Position], None] | None = None,
        committed: Callable[[], Position] | None = None,
    ) -> None:
        self.dir = Path(directory)
        # a writer whose consumer is another process (live/handoff.py): it is told what is fsynced,
        # and it learns the consumer's checkpoint (to free its size accounting) from ``committed``
        self.on_synced = on_synced
        self.committed = committed
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync  # False only for benchmarks that measure the rest
        self.truncated = 0  # bytes of torn tail cut on open
        self._lock = threading.Lock()  # appends and the size accounting
        self._sync_lock = threading.Lock()  # one fsync at a time; the others wait and find their frame synced
        self._ready = threading.Condition(self._lock)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._open()
        except OSError as exc:
            raise SpoolError(f"{exc.filename or self.dir}: {exc.strerror or exc}") from None

    # -- opening and recovery

    def _open(self) -> None:
        self.checkpoint, self.mark = self._load_checkpoint()
        segments = sorted(int(p.name[4:16]) for p in self.dir.glob("seg-*.log") if p.name[4:16].isdigit())
        for n in segments:
            if n < self.checkpoint.segment:
                with contextlib.suppress(FileNotFoundError):  # the consumer process may delete it first
                    (self.dir / _name(n)).unlink()
        segments = [n for n in segments if n >= self.checkpoint.segment] or [self.checkpoint.segment]
        self._sizes: dict[int, int] = {}
        for n in segments:
            path = self.dir / _name(n)
            if not path.exists():
                path.touch()
            size = path.stat().st_size
            good = _scan(path)
            if good < size:  # a torn tail: only the last frame written before the crash can be cut short
                with open(path, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
                self.truncated += size - good
            self._sizes[n] = good
        self._write_seg = segments[-1]
        self._out = open(self.dir / _name(self._write_seg), "ab")  # noqa: SIM115
        if self.fsync:
            # whole frames a killed writer left unsynced are handed on now: make them durable first, or a
            # power cut could take back bytes the consumer has alerted on and checkpointed past
            os.fsync(self._out.fileno())
        self._written = Position(self._write_seg, self._sizes[self._write_seg])
        self._synced = self._written
        self._read = self.checkpoint
        _fsync_dir(self.dir)
        if self.on_synced is not None:
            self.on_synced(self._synced)

    def _load_checkpoint(self) -> tuple[Position, dict[str, Any]]:
        return load_checkpoint(self.dir)

    def _follow(self) -> None:
        """With a consumer in another process: drop the segments its checkpoint has passed (caller holds the lock)."""
        if self.committed is None:
            return
        self.checkpoint = max(self.checkpoint, self.committed())
        for n in [n for n in self._sizes if n < self.checkpoint.segment]:
            del self._sizes[n]

    # -- the writer side (webhook request threads)

    @property
    def size(self) -> int:
        """Bytes in segment files on disk."""
        with self._lock:
            self._follow()
            return sum(self._sizes.values())

    @property
    def lag(self) -> int:
        """Bytes appended but not yet committed by the consumer."""
        with self._lock:
            return sum(size for n, size in self._sizes.items() if n >= self.checkpoint.segment) - self.checkpoint.offset

    def full(self, extra: int = 0) -> bool:
        return self.size + extra > self.max_bytes

    def empty(self) -> bool:
        """Everything appended has been read and committed."""
        return self.lag == 0

    def append(self, payload: bytes) -> Position:
        """Write one frame; return once it is on disk (fsynced). SpoolFull when over the limit."""
        frame = HEADER.pack(len(payload), zlib.crc32(payload), MAGIC) + payload
        with self._lock:
            self._follow()
            held = sum(self._sizes.values())
            if held + len(frame) > self.max_bytes:
                raise SpoolFull(f"spool {self.dir} holds {held} of {self.max_bytes} bytes")
            if self._sizes[self._write_seg] >= self.segment_bytes:
                self._rotate()
            self._out.write(frame)
            self._sizes[self._write_seg] += len(frame)
            end = Position(self._write_seg, self._sizes[self._write_seg])
            self._written = end
        self._sync_to(end)
        return end

    def _rotate(self) -> None:
        # the old segment is flushed and fsynced before any frame goes to the new one: only a
        # segment's tail can be torn, and only the last segment's
        self._out.flush()
        if self.fsync:
            os.fsync(self._out.fileno())
        self._out.close()
        self._write_seg += 1
        self._sizes[self._write_seg] = 0
        self._out = open(self.dir / _name(self._write_seg), "ab")  # noqa: SIM115
        if self.fsync:
            _fsync_dir(self.dir)

    def _sync_to(self, end: Position) -> None:
        with self._sync_lock:
            if self._synced >= end:  # another thread's fsync covered this frame
                return
            with self._lock:
                self._out.flush()
                upto = self._written
                fd = self._out.fileno()
                if self.fsync:
                    fd = os.dup(fd)  # fsync outside the append lock: appends go on during it
            if self.fsync:
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            with self._lock:
                self._synced = max(self._synced, upto)
                self._ready.notify_all()
            if self.on_synced is not None:
                self.on_synced(upto)

    # -- the reader side (one consumer thread)

    def read(self, max_frames: int = 64, timeout: float | None = None) -> list[Frame]:
        """Frames after the read position, up to what is synced; waits up to ``timeout`` for one."""
        with self._lock:
            if self._read >= self._synced and timeout:
                self._ready.wait(timeout)
            limit = self._synced
        frames, self._read = read_frames(self.dir, self._read, limit, lambda n: self._sizes.get(n, 0), max_frames)
        return frames

    def commit(self, end: Position, mark: dict[str, Any] | None = None) -> None:
        """Record ``end`` (and the sinks' mark) as processed, atomically; delete segments wholly before it."""
        if mark is not None:
            self.mark = mark
        write_checkpoint(self.dir, end, self.mark, self.fsync)
        with self._lock:
            self.checkpoint = end
            done = [n for n in self._sizes if n < end.segment]
            for n in done:
                del self._sizes[n]
        for n in done:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / _name(n)).unlink()

    def rewind(self) -> None:
        """Read again from the checkpoint (after a failed sink write that was not committed)."""
        self._read = self.checkpoint

    def close(self) -> None:
        with self._lock:
            self._out.flush()
            if self.fsync:
                os.fsync(self._out.fileno())
            self._out.close()


# -- shared by this writer-and-reader and the reader of another process (live/handoff.py)


def load_checkpoint(directory: Path) -> tuple[Position, dict[str, Any]]:
    path = directory / CHECKPOINT
    try:
        data = orjson.loads(path.read_bytes())
        return Position(int(data["segment"]), int(data["offset"])), dict(data.get("mark") or {})
    except FileNotFoundError:
        return Position(0, 0), {}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise SpoolError(f"{path}: not a spool checkpoint (delete the spool directory to start afresh)") from None


def write_checkpoint(directory: Path, end: Position, mark: dict[str, Any], fsync: bool = True) -> None:
    """Atomically: a temporary file, fsynced, renamed over the checkpoint, then the directory fsynced."""
    data = orjson.dumps({"segment": end.segment, "offset": end.offset, "mark": mark})
    tmp = directory / (CHECKPOINT + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, directory / CHECKPOINT)
    if fsync:
        _fsync_dir(directory)


def read_frames(
    directory: Path, start: Position, limit: Position, seg_size: Callable[[int], int], max_frames: int
) -> tuple[list[Frame], Position]:
    """Frames from ``start`` up to ``limit`` (what is fsynced); ``seg_size(n)`` is the end of a segment before the last."""
    frames: list[Frame] = []
    pos = start
    while len(frames) < max_frames and pos < limit:
        path = directory / _name(pos.segment)
        seg_end = limit.offset if pos.segment == limit.segment else seg_size(pos.segment)
        if pos.offset >= seg_end:
            pos = Position(pos.segment + 1, 0)
            continue
        with open(path, "rb") as f:
            f.seek(pos.offset)
            while len(frames) < max_frames and pos.offset < seg_end:
                length, crc, magic = HEADER.unpack(f.read(HEADER.size))
                body = f.read(length)
                if magic != MAGIC or zlib.crc32(body) != crc:
                    raise SpoolError(f"{path}: corrupt frame at byte {pos.offset}")
                pos = Position(pos.segment, pos.offset + HEADER.size + length)
                frames.append(Frame(pos, body))
    return frames, pos


def segment_path(directory: Path, segment: int) -> Path:
    return directory / _name(segment)
