"""Where guard writes what it did: every decision and every approval, one JSON object per line.

``JsonlRecorder`` writes each record with one ``write(2)`` on an O_APPEND file before the decision's
answer is sent, so an answered decision is in the file even if the process is SIGKILLed the next
moment (not across a power loss: there is no fsync per decision). Each line carries a
``record_id`` unique to it. With ``--store``, a ``StoreFollower`` thread copies the file into the
SQLite alert store (sinks/decisions.py) every ``interval``; the request path never touches SQLite,
so a locked, slow or missing store cannot delay or refuse a decision: it only falls behind, and
catches up (this run or the next) from the file.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

INTERVAL = 0.2  # seconds between copies into the store
WARN_EVERY = 60.0  # a failing store is reported at most once a minute


class Recorder(Protocol):
    def record(self, kind: str, payload: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonlRecorder:
    def __init__(self, path: Path | None) -> None:
        """``None`` writes to stdout (a foreground plugin under systemd, a pod: the journal or kubectl logs keep it)."""
        self.path = path
        self._lock = threading.Lock()
        self._prefix = secrets.token_hex(5) + "-"  # this process's records; the counter numbers them
        self._seq = itertools.count(1)
        self._fd: int | None = None
        self._closed = False
        if path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def record(self, kind: str, payload: dict[str, Any]) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        head = {"time": stamp, "kind": kind, "record_id": f"{self._prefix}{next(self._seq)}"}
        line = orjson.dumps({**head, **payload}, default=str) + b"\n"
        with self._lock:
            if self._closed:
                raise ValueError("the decision record is closed")  # the server answers 500: never a decision left unrecorded
            if self._fd is None:
                sys.stdout.write(line.decode())
                sys.stdout.flush()
                return
            view = memoryview(line)
            while view:  # one write on a regular file; a short write (disk full soon) is finished, not torn by another
                view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class StoreFollower:
    """Copies the decision record into the alert store on a thread; ``close`` copies what is left and stops."""

    def __init__(self, store: Path, record: Path, warn: Callable[[str], None], interval: float = INTERVAL, follow: bool = True) -> None:
        """``follow=False``: no thread, ``close`` copies once (``guard approve --store``)."""
        self.store = store
        self.record = record
        self.warn = warn
        self.interval = interval
        self.copied = 0  # rows this run added to the store
        self.behind = 0  # bytes of the record not in the store at the last try
        self.failures = 0  # tries that failed (store locked, missing, full)
        self._db: sqlite3.Connection | None = None
        self._warned = -WARN_EVERY
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="execguard-store", daemon=True) if follow else None
        if self._thread is not None:
            self._thread.start()

    def _run(self) -> None:
        while True:
            self.copy()
            if self._stop.wait(self.interval):
                return

    def copy(self) -> bool:
        """One pass: everything the record holds now; False (and a warning at most once a minute) when the store failed."""
        from ..sinks.decisions import open_store, sync
        from ..sinks.store import StoreError

        try:
            if self._db is None:
                self._db = open_store(self.store)
            result = sync(self._db, self.record)
        except (StoreError, sqlite3.Error, OSError) as exc:
            self.failures += 1
            if time.monotonic() - self._warned >= WARN_EVERY:
                self._warned = time.monotonic()
                self.warn(f"{self.store}: decisions not copied into the store yet ({exc}); decisions go on, the store catches up later")
            return False
        self.copied += result.copied
        self.behind = result.behind
        for offset in result.bad[:3]:
            self.warn(f"{self.record}: byte {offset}: not a JSON record line, left out of the store")
        return True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.copy()  # the last answered decisions (a SIGTERM drain ends here)
        if self._db is not None:
            self._db.close()
            self._db = None


class GuardRecorder:
    """The JSON lines record, and the store copy of it when there is one."""

    def __init__(self, jsonl: JsonlRecorder, follower: StoreFollower | None = None) -> None:
        self.jsonl = jsonl
        self.follower = follower

    def record(self, kind: str, payload: dict[str, Any]) -> None:
        self.jsonl.record(kind, payload)

    def close(self) -> None:
        self.jsonl.close()
        if self.follower is not None:
            self.follower.close()
