"""Delivery off the detection path: a thread, a bounded queue, retries with backoff, a spill file.

``write`` never waits on the network. When the queue is full an alert is appended to the spill file
(one JSON line each) if there is one, else counted in ``dropped``. The thread delivers queued alerts,
retrying a failure with exponential backoff and full jitter (or the receiver's Retry-After), and
replays the spill file when the queue runs dry; a spill file left by an earlier run is replayed too.
At close it keeps delivering for up to ``drain`` seconds, then spills (or counts) what is left.
Delivery is at least once: a crash between a send and its bookkeeping repeats that one alert.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..model import Alert
from .alert_json import alert_dict

Deliver = Callable[[dict[str, Any]], None]
Warn = Callable[[str], None]


class DeliveryError(Exception):
    """A send failed: ``retry`` False for a refusal that repeating cannot fix (HTTP 400), ``after`` a delay the receiver asked for."""

    def __init__(self, message: str, retry: bool = True, after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.after = after


@dataclass
class Stats:
    sent: int = 0
    failed: int = 0  # attempts that failed (each retry counts)
    rejected: int = 0  # refused for good by the receiver
    spilled: int = 0
    dropped: int = 0  # lost: queue full and no spill file, or still queued at close


class BackgroundSink:
    def __init__(
        self, name: str, deliver: Deliver, *, queue_size: int = 1000, spill: Path | None = None, drain: float = 5.0,
        backoff: float = 0.5, max_backoff: float = 30.0, warn: Warn | None = None,
    ) -> None:
        self.name = name  # for messages: never a secret (a webhook URL's path can be one)
        self.deliver = deliver
        self.queue: queue.Queue[bytes] = queue.Queue(queue_size)
        self.spill = spill
        self.drain = drain
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.warn = warn or (lambda message: None)
        self.stats = Stats()
        self._spill_lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._down = False
        self._thread = threading.Thread(target=self._run, name=f"execguard-sink-{name}", daemon=True)
        self._thread.start()

    def write(self, alert: Alert) -> None:
        self.write_dict(alert_dict(alert))

    def write_dict(self, d: dict[str, Any]) -> None:
        line = orjson.dumps(d)
        try:
            self.queue.put_nowait(line)
        except queue.Full:
            self._overflow(line)

    def _overflow(self, line: bytes) -> None:
        if self.spill is None:
            self.stats.dropped += 1
            return
        try:
            with self._spill_lock, open(self.spill, "ab") as f:
                f.write(line + b"\n")
            self.stats.spilled += 1
        except OSError as exc:
            self.stats.dropped += 1
            self.warn(f"{self.name}: cannot spill to {self.spill}: {exc.strerror or exc}; alert dropped")

    # -- the delivery thread --

    def _run(self) -> None:
        while True:
            try:
                line = self.queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                self._replay_spill()
                continue
            if not self._send(line):
                self._overflow(line)  # out of time at close: keep it for the next run

    def _send(self, line: bytes) -> bool:
        """Deliver one alert, retrying until it is sent, refused for good, or the close deadline passes."""
        attempt = 0
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:  # a spill file damaged on disk: that line is reported, the rest go on
            self.stats.rejected += 1
            self.warn(f"{self.name}: a spilled alert is not JSON; skipped")
            return True
        while True:
            if time.monotonic() > self._deadline:
                return False
            try:
                try:
                    self.deliver(record)
                except DeliveryError:
                    raise
                except Exception as exc:  # a bug must not end the thread: it is one more failure to retry
                    raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
            except DeliveryError as exc:
                self.stats.failed += 1
                if not exc.retry:
                    self.stats.rejected += 1
                    self.warn(f"{self.name}: alert refused: {exc}")
                    return True
                if not self._down:
                    self._down = True
                    self.warn(f"{self.name}: {exc}; retrying with backoff, alerts are queued" + (" and spilled" if self.spill else ""))
                backoff = min(self.max_backoff, self.backoff * 2 ** min(attempt, 30))
                delay = exc.after if exc.after is not None else random.uniform(0, backoff)
                attempt += 1
                if time.monotonic() + delay > self._deadline:
                    return False
                if self._stop.is_set():
                    time.sleep(delay)  # closing: wait the delay out, up to the deadline checked above
                else:
                    self._stop.wait(delay)
                continue
            self.stats.sent += 1
            if self._down:
                self._down = False
                self.warn(f"{self.name}: delivering again")
            return True

    def _replay_spill(self) -> None:
        if self.spill is None or self._stop.is_set():
            return
        replaying = self.spill.with_name(self.spill.name + ".replaying")
        with self._spill_lock:
            # an earlier replay cut short (crash) is finished first; then the current spill is taken whole
            if not replaying.exists():
                if not self.spill.exists() or self.spill.stat().st_size == 0:
                    return
                os.replace(self.spill, replaying)
        with open(replaying, "rb") as f:  # line by line: a spill file of hours of alerts is not read into memory
            for line in f:
                if not line.strip():
                    continue
                if self._stop.is_set() or not self._send(line.rstrip(b"\n")):
                    # stopped mid-way: this line and the rest go back to the spill file for the next run
                    with self._spill_lock, open(self.spill, "ab") as out:
                        out.write(line if line.endswith(b"\n") else line + b"\n")
                        shutil.copyfileobj(f, out)
                    break
        with contextlib.suppress(FileNotFoundError):
            replaying.unlink()

    def close(self) -> None:
        self._deadline = time.monotonic() + self.drain
        self._stop.set()
        self._thread.join(self.drain + 1.0)
        while True:  # the thread gave up (deadline): what it left in the queue is spilled or counted
            try:
                self._overflow(self.queue.get_nowait())
            except queue.Empty:
                break
        lost = self.stats.dropped
        if lost:
            self.warn(f"{self.name}: {lost} alert{'s' if lost != 1 else ''} not delivered and not spilled")
