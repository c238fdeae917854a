from __future__ import annotations

from typing import IO

from ..model import Alert
from .alert_json import alert_json

BLOCK = 1 << 16  # bytes of lines gathered before one write, when alerts need not go out one by one


class JsonlSink:
    """One alert per line. ``block`` 0: each line written and flushed at once (a stream, watch); else lines go
    out in writes of about ``block`` bytes (a sorted hunt writes every alert at its end: a flush per alert cost a
    write call each, ~3x the copying into a pipe), and ``close`` writes the rest."""

    def __init__(self, out: IO[bytes], block: int = 0) -> None:
        self.out = out
        self.block = block
        self._lines: list[bytes] = []
        self._held = 0

    def write(self, alert: Alert) -> None:
        line = alert_json(alert)
        if not self.block:
            self.out.write(line + b"\n")
            self.out.flush()
            return
        self._lines.append(line)
        self._held += len(line) + 1
        if self._held >= self.block:
            self._write()

    def _write(self) -> None:
        lines, self._lines, self._held = self._lines, [], 0
        lines.append(b"")
        self.out.write(b"\n".join(lines))

    def close(self) -> None:
        if self._lines:
            self._write()
        self.out.flush()
