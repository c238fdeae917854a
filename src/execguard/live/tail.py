"""`watch --tail PATH`: follow log files like `tail -F`, in any format `hunt` reads, resuming from a state file.

Files are followed by identity (device, inode), not by name, so a rename rotation is seen as the same
file under a new name (or none): the old file is read to its end, kept open for ``linger`` seconds
in case its writer has not reopened yet, and the new file at the path is read from its start. A
copytruncate rotation shows as a file shorter than what was read, or whose first bytes changed: it is
read again from its start. Files that appear later (a glob matching more) are read from their start.

Only complete lines are handed on: a partial last line is held until its newline. Each batch put on
the runner's queue carries the position reached with it (per file: the offset of the last complete
line, the line number and a fingerprint of the file's first bytes); the runner stores it in the
process's state file once the sinks have the batch's alerts (live/checkpoint.py), so a restart resumes
without loss or duplicates. Lines go through the reader's own record dispatch (JSON records of every
source, or the dockerd debug log sniffed per file).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..model import Event
from ..sources import TEXT_SOURCES, dockerd_log
from ..sources.base import TextParser
from ..sources.reader import Reader
from .inputs import Batch

Warn = Callable[[str, "int | None", str], None]
BLOCK = 1 << 20  # bytes per read
MAX_LINE = 16 << 20  # a partial line longer than this is dropped with a warning
HEAD = 4096  # bytes of a file's start kept as its fingerprint
CHUNK = 2000  # events per batch at most: a large file read from its start does not sit in memory whole


@dataclass
class Follower:
    path: str
    key: tuple[int, int]  # (st_dev, st_ino)
    fd: int
    offset: int = 0  # end of the last complete line handed on
    lineno: int = 0
    partial: bytearray = field(default_factory=bytearray)
    head: bytes = b""  # sha256 of the first head_len bytes
    head_len: int = 0
    mode: str | None = None  # "json", "text" (dockerd-log) or another text format's name, sniffed from the first line
    parser: TextParser | None = None
    gone_since: float | None = None  # no matched path leads to it any more (rotated away or deleted)
    dropping: bool = False  # a partial line too long: skip to the next newline


def _fingerprint(fd: int, length: int) -> bytes:
    return hashlib.sha256(os.pread(fd, length, 0)).digest() if length else b""


class TailInput:
    name = "tail"  # one input for every --tail pattern; its key in the state file

    def __init__(
        self,
        patterns: Iterable[str],
        position: dict[str, Any] | None = None,
        from_start: bool = False,
        poll: float = 0.2,
        linger: float = 5.0,
        fmt: str = "auto",
        warn: Warn | None = None,
    ) -> None:
        self.patterns = list(patterns)
        self.acked = position  # the position the sinks have: where a (re)start resumes
        self.from_start = from_start
        self.poll = poll
        self.linger = linger
        self.warn: Warn = warn or (lambda f, n, m: None)
        self.reader = Reader(fmt=fmt, warn=self.warn)
        self.fmt = fmt
        self.followers: dict[tuple[int, int], Follower] = {}
        self.saved: dict[tuple[int, int], dict[str, Any]] = {}
        self.had_state = False
        self.started = False
        self.lines = 0
        self.line_done: Callable[[], None] | None = None  # called after each line's events went out

    # ---- the loop ------------------------------------------------------------------------
    def run(self, out: queue.Queue[Batch], stop: threading.Event) -> None:
        """Put a batch (events and the position after them) on ``out`` per poll that moved an offset."""
        self._restore(self.acked)  # a restart of this input: what was read and not acked is read again
        first = not self.started
        self.started = True
        pending: list[Event] = []

        def flush() -> None:
            position = self.position()
            events = pending[:]
            pending.clear()

            def ack(mark: dict[str, Any]) -> None:
                self.acked = position

            out.put(Batch(self.name, events, ack, position=position))

        def flush_big() -> None:
            if len(pending) >= CHUNK:
                flush()

        self.line_done = flush_big
        try:
            self._find_rotated_while_down()
            while not stop.is_set():
                try:
                    if self.poll_once(pending.append, first) or pending:
                        flush()
                except OSError as exc:  # a transient file system error: said once per poll, then tried again
                    self.warn(exc.filename or self.name, None, exc.strerror or str(exc))
                first = False
                stop.wait(self.poll)
        finally:
            self.line_done = None
            for f in self.followers.values():
                with contextlib.suppress(OSError):
                    os.close(f.fd)
            self.followers.clear()

    def _matched(self) -> dict[tuple[int, int], str]:
        found: dict[tuple[int, int], str] = {}
        for pattern in self.patterns:
            names = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            for path in names:
                try:
                    st = os.stat(path)
                except OSError:
                    continue  # not there (yet): looked for again at the next poll
                if stat.S_ISREG(st.st_mode) and not path.endswith(".gz"):
                    found.setdefault((st.st_dev, st.st_ino), path)
        return found

    def poll_once(self, emit: Callable[[Event], None], first: bool = False) -> bool:
        """Read what is new in every file; True when an offset moved (a checkpoint is due)."""
        now = time.monotonic()
        matched = self._matched()
        changed = False
        for key, path in matched.items():
            f = self.followers.get(key)
            if f is None:
                f = self._open(path, key, first)
                if f is None:
                    continue
                self.followers[key] = f
                changed = True
            f.path, f.gone_since = path, None
        for key, f in list(self.followers.items()):
            grew = self._read(f, emit)
            changed |= grew
            if key in matched:
                continue
            if f.gone_since is None or grew:
                f.gone_since = now
            elif now - f.gone_since >= self.linger:
                self._finish(f, emit)
                os.close(f.fd)
                del self.followers[key]
                changed = True
        return changed

    # ---- one file ------------------------------------------------------------------------
    def _open(self, path: str, key: tuple[int, int], first: bool) -> Follower | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self.warn(path, None, exc.strerror or str(exc))
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != key:  # replaced between stat and open: seen at the next poll
            os.close(fd)
            return None
        f = Follower(path, key, fd)
        saved = self.saved.get(key)
        if saved is not None and st.st_size >= saved["offset"] and _fingerprint(fd, saved["head_len"]).hex() == saved["head"]:
            f.offset, f.lineno = saved["offset"], saved["lineno"]
            f.head, f.head_len = bytes.fromhex(saved["head"]), saved["head_len"]
            f.mode = saved.get("mode")
        elif first and not self.had_state and not self.from_start:
            f.offset = self._line_start_before(fd, st.st_size)  # like tail -F: what is written from now on
            f.lineno = -1  # line numbers unknown when starting mid-file
        if f.mode not in (None, "json"):
            f.parser = _text_source(f.mode).Parser(path)
        return f

    @staticmethod
    def _line_start_before(fd: int, size: int) -> int:
        back = min(size, 1 << 16)
        tail = os.pread(fd, back, size - back)
        nl = tail.rfind(b"\n")
        return size - back + nl + 1 if nl >= 0 else (0 if back == size else size)

    def _rewind(self, f: Follower, emit: Callable[[Event], None], why: str) -> None:
        self._finish(f, emit)
        self.warn(f.path, None, f"{why}: read again from its start")
        f.offset, f.lineno, f.partial, f.head, f.head_len, f.dropping = 0, 0, bytearray(), b"", 0, False
        f.mode, f.parser = None, None

    def _read(self, f: Follower, emit: Callable[[Event], None]) -> bool:
        size = os.fstat(f.fd).st_size
        if size < f.offset:
            self._rewind(f, emit, "truncated (copytruncate rotation?)")
        elif f.head_len and size != f.offset + len(f.partial) and _fingerprint(f.fd, f.head_len) != f.head:
            self._rewind(f, emit, "its first bytes changed (truncated and rewritten)")
        moved = False
        pos = f.offset + len(f.partial)
        while pos < size:
            data = os.pread(f.fd, min(size - pos, BLOCK), pos)
            if not data:
                break
            pos += len(data)
            moved |= self._take(f, data, emit)
        return moved

    def _take(self, f: Follower, data: bytes, emit: Callable[[Event], None]) -> bool:
        f.partial += data
        start = 0
        moved = False
        while (nl := f.partial.find(b"\n", start)) >= 0:
            line = bytes(f.partial[start:nl])
            start = nl + 1
            f.offset += len(line) + 1
            f.lineno += 1 if f.lineno >= 0 else 0
            moved = True
            if f.dropping:
                f.dropping = False
                continue
            self._line(f, line.rstrip(b"\r"), emit)
            if self.line_done is not None:
                self.line_done()
        del f.partial[:start]
        if len(f.partial) > MAX_LINE:
            self.warn(f.path, None, f"a line longer than {MAX_LINE >> 20} MiB skipped")
            f.offset += len(f.partial)
            f.partial.clear()
            f.dropping = True
            moved = True
        if not f.head_len and f.offset:
            f.head_len = min(f.offset, HEAD)
            f.head = _fingerprint(f.fd, f.head_len)
        return moved

    def _line(self, f: Follower, line: bytes, emit: Callable[[Event], None]) -> None:
        if not line.strip():
            return
        lineno = f.lineno if f.lineno > 0 else None
        self.lines += 1
        if f.mode is None:
            text = next((m.FORMAT for m in TEXT_SOURCES if self.fmt == m.FORMAT or (self.fmt == "auto" and m.sniff(line))), None)
            # "text" names the dockerd log, as state files written before other text formats say
            f.mode = "json" if text is None else "text" if text == dockerd_log.FORMAT else text
            if text is not None:
                f.parser = _text_source(f.mode).Parser(f.path)
        if f.parser is not None:
            produce = functools.partial(f.parser.feed, lineno or 0, line)
            events: Iterable[Event] = self.reader._guard(f.path, lineno, produce, _text_source(f.mode).FORMAT)
        else:
            events = self.reader.json_line(f.path, lineno or 0, line)
        for ev in events:
            emit(ev)

    def _finish(self, f: Follower, emit: Callable[[Event], None]) -> None:
        """A file left behind: what its parser still holds goes out."""
        if f.parser is not None:
            for ev in self.reader._guard(f.path, None, f.parser.close, _text_source(f.mode).FORMAT):
                emit(ev)

    # ---- state -----------------------------------------------------------------------------
    def position(self) -> dict[str, Any]:
        """Where every followed file stands: what the state file keeps for this input."""
        files = [
            {"path": f.path, "dev": f.key[0], "ino": f.key[1], "offset": f.offset, "lineno": f.lineno,
             "head": f.head.hex(), "head_len": f.head_len, "mode": f.mode}
            for f in self.followers.values()
        ]  # fmt: skip
        return {"files": files}

    def _restore(self, position: dict[str, Any] | None) -> None:
        for f in self.followers.values():
            with contextlib.suppress(OSError):
                os.close(f.fd)
        self.followers.clear()
        self.saved.clear()
        if position is None:
            return
        self.had_state = True  # a position existed: do not skip to the end and lose what it covered
        files = position.get("files") if isinstance(position, dict) else None
        for entry in files if isinstance(files, list) else []:
            try:
                key = (int(entry["dev"]), int(entry["ino"]))
                self.saved[key] = {
                    "path": str(entry["path"]), "offset": int(entry["offset"]), "lineno": int(entry["lineno"]),
                    "head": str(entry["head"]), "head_len": int(entry["head_len"]), "mode": entry.get("mode"),
                }  # fmt: skip
            except (KeyError, TypeError, ValueError):
                self.warn("tail state", None, "a malformed file entry skipped")

    def _find_rotated_while_down(self) -> None:
        """A followed file renamed while we were stopped: found by its inode next to its old name, and read to its end."""
        matched = self._matched()
        for key, saved in self.saved.items():
            if key in matched:
                continue
            with contextlib.suppress(OSError), os.scandir(os.path.dirname(saved["path"]) or ".") as it:
                for entry in it:
                    if entry.inode() == key[1] and entry.is_file() and entry.stat().st_dev == key[0]:
                        f = self._open(entry.path, key, False)
                        if f is not None:
                            f.gone_since = time.monotonic()
                            self.followers[key] = f
                        break


def _text_source(mode: str | None) -> Any:
    """The text-format module of a follower's mode ("text" is the dockerd log)."""
    name = dockerd_log.FORMAT if mode == "text" else mode
    return next((m for m in TEXT_SOURCES if m.FORMAT == name), dockerd_log)
