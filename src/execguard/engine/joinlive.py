"""Live bypass verdicts for ``watch`` (docs/node.md "The join", docs/watch.md).

In watch nothing may wait: a batch is acknowledged only once all its alerts are written. So a
node exec with no record of who asked yet has its own alert written at once, and a *pending
verdict* is kept beside it. When the join window (+ skew, + ``lag`` for late delivery) has passed on
the input clocks, or on the wall clock for a quiet stream (``Joiner.tick``), with no pods/exec, attach,
ephemeral-container or Docker exec record for that container, a SEPARATE ``join-exec-bypass`` alert
(high) is written, listing the exec's later processes in ``covers``. A matching record arriving in
time cancels the verdict, and the exec's later processes get its identity as usual.

Bounded: at most ``cap`` verdicts wait; past it the oldest is dropped undecided (``shed``). The
verdicts are kept in watch's state file at each checkpoint (live/verdicts.py) and wait again after
a restart; on SIGTERM those due are written and the rest dropped (``dropped``), counted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING

from ..model import Alert, RuleMatch
from ..times import NS
from . import joinkeys as jk
from . import joinstory as story

if TYPE_CHECKING:
    from .join import Joiner, Session

BYPASS = "join-exec-bypass"
VERDICT_CAP = 10_000  # pending verdicts; each holds one Event and up to COVER_CAP later ones
LAG = 30.0  # seconds a record may arrive late (the audit webhook's batch wait, a tailed file)


class Verdicts:
    def __init__(self, joiner: Joiner, lag: float = LAG, cap: int = VERDICT_CAP) -> None:
        self.j = joiner
        self.lag = int(lag * NS)
        self.cap = cap
        self.waiting: OrderedDict[int, Session] = OrderedDict()  # oldest first
        self.arrived: dict[int, int] = {}  # wall clock (ns) when each verdict began to wait
        self.wall: Callable[[], int] = time.time_ns
        self.by_key: dict[Hashable, dict[int, Session]] = {}
        self.cancelled = 0  # a record came in time
        self.shed = 0  # dropped undecided for the cap
        self.dropped = 0  # dropped undecided at the end (SIGTERM before their window passed)
        self.version = 0  # changes whenever the set of waiting verdicts does (the state file saves them then)

    def __len__(self) -> int:
        return len(self.waiting)

    def due_at(self, s: Session) -> int:
        # from when it came too, not only from its time: an old event (a log read from its start, a verdict kept
        # over a restart) gives the other inputs time to catch up and replay their records
        return max(s.start, self.arrived.get(id(s), 0)) + self.j.window + self.j.skew + self.lag

    def add(self, s: Session) -> None:
        s.kind, s.written = "verdict", True  # its own alert is out; later processes are listed if a bypass is called
        self.waiting[id(s)] = s
        self.version += 1
        self.arrived[id(s)] = self.wall()
        for key in jk.lookup(s.lead, trail=False):
            self.by_key.setdefault(key, {})[id(s)] = s
        while len(self.waiting) > self.cap:
            _, old = self.waiting.popitem(last=False)
            self._forget(old)
            old.kind = "plain"
            self.shed += 1

    def _forget(self, s: Session) -> None:
        self.version += 1
        self.waiting.pop(id(s), None)
        self.arrived.pop(id(s), None)
        for key in jk.lookup(s.lead, trail=False):
            found = self.by_key.get(key)
            if found is not None:
                found.pop(id(s), None)
                if not found:
                    del self.by_key[key]

    def cancel(self, trail: Session) -> None:
        """A record of who asked: every pending exec it may have caused is no bypass (as hunt would join them)."""
        matched: dict[int, Session] = {}
        for key in jk.lookup(trail.lead, trail=True):
            for sid, s in self.by_key.get(key, {}).items():
                if self.j.in_window(trail, s.start) and jk.same_container(trail.lead, s.lead):
                    matched[sid] = s
        for s in matched.values():
            self._forget(s)
            s.kind, s.into, trail.claimed = "merged", trail, True  # later processes get the record's identity
            self.cancelled += 1

    def due(self, clock: int, wall: int | None = None) -> Iterator[tuple[Alert, int]]:
        """Bypass alerts for the verdicts whose time has passed by the inputs' ``clock`` or the ``wall`` clock (ns)."""
        while self.waiting:
            s = next(iter(self.waiting.values()))
            if self.due_at(s) >= max(clock, wall or 0):
                return  # kept in arrival order: a verdict that came in out of time order waits for those before it
            self._forget(s)
            if self.j.repeated(s.lead):
                s.kind = "probe"
                continue
            s.kind = "bypass"
            self.j.stats.bypasses += 1
            j = self.j
            why = RuleMatch(BYPASS, "Exec that bypassed the API server", "high", ["T1609"],
                            story.bypass(s.lead, len(s.members), j.window / NS, j.skew / NS))  # fmt: skip
            yield Alert(s.lead, [why], covers=[m[0] for m in s.members]), s.seq
            s.members = []

    def drop(self) -> int:
        """The end: verdicts not yet due are dropped undecided; how many."""
        n = len(self.waiting)
        self.dropped += n
        self.version += 1
        self.waiting.clear()
        self.arrived.clear()
        self.by_key.clear()
        return n
