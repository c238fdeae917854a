"""A JSONL file that rotates by size: PATH, PATH.1 (the newest full one) ... PATH.N, the oldest beyond N removed.

Each alert is one line (as ``-o jsonl``), written and flushed whole: a line never spans two files, so
``cat PATH.N ... PATH.1 PATH`` is every kept alert in order. Appends to an existing PATH on start.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import orjson

from ..model import Alert
from .alert_json import alert_dict


class RotatingJsonlSink:
    def __init__(self, path: Path | str, max_bytes: int = 100 * 1024 * 1024, keep: int = 5) -> None:
        if max_bytes < 1 or keep < 0:
            raise ValueError(f"file {path}: max_bytes must be at least 1 and keep at least 0")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self.rotations = 0
        self._lock = threading.Lock()
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open across writes
        self._size = self._file.tell()

    def write(self, alert: Alert) -> None:
        self.write_dict(alert_dict(alert))

    def write_dict(self, d: dict[str, Any]) -> None:
        line = orjson.dumps(d) + b"\n"
        with self._lock:
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._file.write(line)
            self._file.flush()
            self._size += len(line)

    def _rotate(self) -> None:
        self._file.close()
        if self.keep == 0:
            self.path.unlink()
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}.{self.keep}")
            for i in range(self.keep - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0
        self.rotations += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()
