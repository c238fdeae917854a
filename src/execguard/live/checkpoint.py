"""The one checkpoint of an ``execguard watch`` process (docs/watch.md "Exactly once").

One JSON file holds, written together and atomically (temp file, fsync, rename, fsync of the
directory): the --out file and its size when the last batch's alerts were fsynced (the "mark"),
and per durable input the position that batch's input had reached. After a crash, watch cuts
--out back to the size and every input resumes from its position: whatever came after was
neither alerted in --out nor counted as read, whichever input it came from. A separate file per
input could not do this: cutting --out to one input's mark would cut alerts of the others.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

VERSION = 1


class StateError(Exception):
    pass


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.mark: dict[str, Any] = {}
        self.positions: dict[str, Any] = {}
        self.join: list[Any] = []  # pending bypass verdicts (live/verdicts.py)

    def load(self) -> None:
        """Read the file if there is one; StateError names it when it cannot be used."""
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"{self.path}: {exc.strerror or exc}") from None
        except orjson.JSONDecodeError:
            raise StateError(f"{self.path}: not a watch state file (delete it to start afresh)") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("inputs", {}), dict) or not isinstance(raw.get("mark", {}), dict):
            raise StateError(f"{self.path}: not a watch state file (delete it to start afresh)")
        self.mark = dict(raw.get("mark") or {})
        self.positions = dict(raw.get("inputs") or {})
        join = raw.get("join") or []
        self.join = join if isinstance(join, list) else []

    def save(self, mark: dict[str, Any]) -> None:
        self.mark = mark
        data = orjson.dumps({"version": VERSION, "mark": mark, "inputs": self.positions, **({"join": self.join} if self.join else {})})
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{self.path.name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
