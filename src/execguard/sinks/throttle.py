"""Dedup and throttle: per (rule, actor, target), the first alert in a window passes, repeats are counted.

A window opens with the first alert of a key and lasts ``window`` seconds. Repeats inside it are not
passed on; when the window closes (noticed at the next write or ``tick``) or at close, one summary
alert goes on: the last repeat, with ``throttled`` = {count, first, last, window_s, key} in its JSON and
the count in its lead reason. A key with no repeats emits nothing more. Memory: one entry per open window,
at most ``max_keys`` (past that the oldest window is closed early, its summary sent). ``timer`` starts a
thread that closes windows on time when no alert comes (watch); without it, ``tick`` does.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..model import Alert


class Inner(Protocol):
    def write(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class ThrottledAlert(Alert):
    """A summary: the last repeat of a key, with how many were held back."""

    throttled: dict[str, Any] = field(default_factory=dict)


def throttle_key(alert: Alert) -> tuple[str, str, str]:
    ev = alert.event
    t = ev.target
    target = "/".join(p or "" for p in (t.cluster, t.namespace, t.pod or t.node, t.container or t.container_id))
    return alert.lead.rule_id, ev.actor.user or "", target


@dataclass
class _Window:
    opened: float
    first_time: str | None
    count: int = 0
    last: Alert | None = None


class ThrottleSink:
    def __init__(
        self, inner: Inner, window: float = 60.0, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000,
        timer: bool = False,
    ) -> None:
        if window <= 0:
            raise ValueError("throttle window must be more than 0 seconds")
        self.inner = inner
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self.passed = 0
        self.held = 0  # repeats counted, not passed on
        self._open: OrderedDict[tuple[str, str, str], _Window] = OrderedDict()  # oldest window first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        if timer:
            self._timer = threading.Thread(target=self._tick_until_closed, name="execguard-throttle", daemon=True)
            self._timer.start()

    def _tick_until_closed(self) -> None:
        while not self._stop.wait(min(1.0, self.window / 4)):
            self.tick()

    def write(self, alert: Alert) -> None:
        with self._lock:
            now = self.clock()
            self._expire(now)
            key = throttle_key(alert)
            win = self._open.get(key)
            if win is not None:
                win.count += 1
                win.last = alert
                self.held += 1
                return
            if len(self._open) >= self.max_keys:
                oldest, win = self._open.popitem(last=False)
                self._emit(oldest, win)
            self._open[key] = _Window(now, alert.event.time)
            self.passed += 1
            self.inner.write(alert)

    def tick(self) -> None:
        """Emit the summaries of windows that have closed (watch calls this when idle)."""
        with self._lock:
            self._expire(self.clock())

    def _expire(self, now: float, everything: bool = False) -> None:
        while self._open:
            key, win = next(iter(self._open.items()))
            if not everything and now - win.opened < self.window:
                break
            del self._open[key]
            self._emit(key, win)

    def _emit(self, key: tuple[str, str, str], win: _Window) -> None:
        if win.count and win.last is not None:
            self.inner.write(self._summary(key, win))

    def _summary(self, key: tuple[str, str, str], win: _Window) -> ThrottledAlert:
        last = win.last
        assert last is not None
        lead = last.lead
        note = f"repeated {win.count} more time{'s' if win.count != 1 else ''} within {self.window:g}s (first at {win.first_time}): "
        matches = [replace(m, reason=note + m.reason) if m is lead else m for m in last.matches]
        info = {"count": win.count, "first": win.first_time, "last": last.event.time, "window_s": self.window,
                "key": {"rule": key[0], "actor": key[1], "target": key[2]}}
        return ThrottledAlert(event=last.event, matches=matches, suppressed=last.suppressed, also_seen=last.also_seen, throttled=info)

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(5)
        with self._lock:
            self._expire(self.clock(), everything=True)
        self.inner.close()
