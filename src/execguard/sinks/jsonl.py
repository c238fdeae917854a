from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from typing import IO

from ..model import Alert
from .alert_json import alert_json

BLOCK = 1 << 16  # bytes of lines gathered before one write, when alerts need not go out one by one
# alerts worth a helper process for their second part (``ahead``): below, the fork costs about what it saves
HELPER_MIN = 2000
# the share of the alerts this process renders itself: the helper's are slower to reach (each page it touches is
# copied for it at the first write, a reference count)
OWN_SHARE = 0.55


class JsonlSink:
    """One alert per line. ``block`` 0: each line written and flushed at once (a stream, watch); else lines go
    out in writes of about ``block`` bytes (a sorted hunt writes every alert at its end: a flush per alert cost a
    write call each, ~3x the copying into a pipe), and ``close`` writes the rest."""

    def __init__(self, out: IO[bytes], block: int = 0) -> None:
        self.out = out
        self.block = block
        self._lines: list[bytes] = []
        self._held = 0
        self._helper: _Helper | None = None
        self._own_left = 0  # with a helper: alerts still to render here before the first of its part
        self._skip = 0  # alerts still to come whose lines the helper wrote

    def ahead(self, alerts: Sequence[Alert]) -> None:
        """``alerts`` are what ``write`` gets next, in this order (a sorted hunt's, once its inputs are read).

        Rendering them is the hunt's last stretch, on one CPU while the workers' are idle: a forked helper renders
        the later part while this process renders and counts the first; their lines go out in order."""
        if not self.block or len(alerts) < HELPER_MIN or not sys.platform.startswith("linux"):
            return
        if threading.active_count() > 1:  # a progress bar's: a fork copies none of its locks' holders
            return
        own = int(len(alerts) * OWN_SHARE)
        self._helper = _Helper.start(alerts[own:])
        self._own_left = own

    def write(self, alert: Alert) -> None:
        if self._skip:
            self._skip -= 1
            return
        if self._helper is not None:
            if not self._own_left:  # the first of the helper's part
                self._from_helper(alert)
                return
            self._own_left -= 1
        line = alert_json(alert)
        if not self.block:
            self.out.write(line + b"\n")
            self.out.flush()
            return
        self._lines.append(line)
        self._held += len(line) + 1
        if self._held >= self.block:
            self._write()

    def _from_helper(self, alert: Alert) -> None:
        helper, self._helper = self._helper, None
        assert helper is not None
        lines = helper.result()
        if lines is None:  # it failed: this process renders them, as without it
            self.write(alert)
            return
        if self._lines:
            self._write()
        with lines:  # copied a MB at a time: a dense hunt's part is tens of MB
            shutil.copyfileobj(lines, self.out, 1 << 20)
        self._skip = helper.count - 1

    def _write(self) -> None:
        lines, self._lines, self._held = self._lines, [], 0
        lines.append(b"")
        self.out.write(b"\n".join(lines))

    def close(self) -> None:
        if self._helper is not None:  # stopped before its part came (an interrupt, a closed pipe)
            self._helper.stop()
            self._helper = None
        if self._lines:
            self._write()
        self.out.flush()


class _Helper:
    """A forked process writing the JSON lines of ``alerts`` (already in memory, shared by the fork) to a file."""

    def __init__(self, pid: int, path: str, count: int) -> None:
        self.pid, self.path, self.count = pid, path, count

    @classmethod
    def start(cls, alerts: Sequence[Alert]) -> _Helper | None:
        try:  # no temp file or no process to be had: this process renders them all, as without a helper
            fd, path = tempfile.mkstemp(prefix="execguard-lines-")
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:
            os.close(fd)
            os.unlink(path)
            return None
        if pid == 0:  # pragma: no cover - the child, measured by its lines
            status = 1
            try:
                gc.disable()  # a collection would touch, and so copy, every page the parent holds
                with open(fd, "wb", buffering=1 << 20) as f:
                    for alert in alerts:
                        f.write(alert_json(alert))
                        f.write(b"\n")
                status = 0
            finally:
                os._exit(status)  # nothing of the parent's (buffers, atexit) runs here
        os.close(fd)
        return cls(pid, path, len(alerts))

    def result(self) -> IO[bytes] | None:
        """The file of lines, open, once the helper is done (it exits 0 only once every line is written and the file
        closed); None when it failed."""
        try:
            _, status = os.waitpid(self.pid, 0)
            return open(self.path, "rb") if status == 0 else None  # the caller closes it
        except OSError:
            return None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # an open file stays readable

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
