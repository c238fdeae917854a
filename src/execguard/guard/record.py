"""Where guard writes what it did: every decision and every approval, one JSON object per line.

Behind the small ``Recorder`` interface so the SQLite alert store (watch) can take the same records
later; ``JsonlRecorder`` appends under a lock and flushes each line, so a crash loses at most one.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO


class Recorder(Protocol):
    def record(self, kind: str, payload: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _line(kind: str, payload: dict[str, Any]) -> str:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"time": stamp, "kind": kind, **payload}, default=str, ensure_ascii=False) + "\n"


class JsonlRecorder:
    def __init__(self, path: Path | None) -> None:
        """``None`` writes to stdout (a foreground plugin under systemd: the journal keeps it)."""
        self._lock = threading.Lock()
        self._file: TextIO
        if path is None:
            self._file, self._own = sys.stdout, False
        else:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._file, self._own = open(path, "a", encoding="utf-8"), True  # noqa: SIM115 - closed by close()

    def record(self, kind: str, payload: dict[str, Any]) -> None:
        line = _line(kind, payload)
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        if self._own:
            self._file.close()
