"""Which alerts a responder asked for: a time window and globs on namespace, pod, user and rule.

Times are compared as integer nanoseconds since the epoch so that a log's nanosecond stamps
(docker, containerd) and microsecond stamps (Kubernetes audit) order correctly together.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ..clock import time_ns
from ..model import Alert
from ..times import NS

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}




def parse_when(value: str, now_ns: int | None = None) -> int:
    """--since/--until: RFC 3339 (2026-11-29T03:00:00Z) or an age such as 90s, 15m, 2h, 1d, 1w, 1h30m."""
    text = value.strip()
    stamp = time_ns(text)
    if stamp is not None:
        return stamp
    parts = _RELATIVE.findall(text.lower())
    if parts and _RELATIVE.sub("", text.lower()).strip() == "":
        now = time.time_ns() if now_ns is None else now_ns
        return now - int(sum(float(n) * _UNIT_S[u] for n, u in parts) * NS)
    raise ValueError(f"{value!r}: give an RFC 3339 time (2026-11-29T03:00:00Z) or an age such as 30m, 2h, 1d")


def _any(patterns: Sequence[str], values: Sequence[str | None]) -> bool:
    return any(v is not None and fnmatchcase(v, p) for p in patterns for v in values)


@dataclass
class AlertFilter:
    """Alerts kept: inside [since, until] and matching at least one glob of each filter given.

    A filter with no patterns lets everything through. An alert without a readable time is
    dropped once --since or --until is given (it cannot be shown to be inside the window).
    """

    since: int | None = None
    until: int | None = None
    namespaces: list[str] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    dropped: int = 0

    @property
    def active(self) -> bool:
        return any((self.since is not None, self.until is not None, self.namespaces, self.pods, self.users, self.rules))

    def keep(self, alert: Alert) -> bool:
        ok = self._keep(alert)
        if not ok:
            self.dropped += 1
        return ok

    def _keep(self, alert: Alert) -> bool:
        ev = alert.event
        if self.since is not None or self.until is not None:
            t = time_ns(ev.time)
            if t is None or (self.since is not None and t < self.since) or (self.until is not None and t > self.until):
                return False
        if self.namespaces and not _any(self.namespaces, [ev.target.namespace]):
            return False
        if self.pods and not _any(self.pods, [ev.target.pod]):
            return False
        if self.users and not _any(self.users, [ev.actor.user, ev.actor.impersonated_user]):
            return False
        return not self.rules or _any(self.rules, [m.rule_id for m in alert.matches])
