"""One alert for one Docker exec recorded by two sources.

docker events and the dockerd debug log both record every ``docker exec``: the same exec id
when both have it, otherwise the same container and command within a second or two. Fed
alerts in time order, this holds each Docker alert for ``window`` of log time, folds a match
from the other source into it (rules, missing fields, the other source in ``also_seen``) and
then lets it go. Memory: the alerts of one window, at most ``cap``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import fields

from ..clock import time_ns
from ..model import Alert, Event
from .filters import NS

DOCKER = frozenset({"docker-events", "dockerd-log"})
ACTIONS = frozenset({"exec", "attach"})
WINDOW = 2 * NS
CAP = 50_000


def _container_matches(a: Event, b: Event) -> bool:
    ta, tb = a.target, b.target
    if ta.container and tb.container and ta.container == tb.container:
        return True
    ids = [x for x in (ta.container_id, tb.container_id) if x]
    names = [x for x in (ta.container, tb.container) if x]
    # the dockerd log names a container as the client did: a name or an id prefix
    return (len(ids) == 2 and (ids[0].startswith(ids[1]) or ids[1].startswith(ids[0]))) or any(
        i.startswith(n) and len(n) >= 12 for i in ids for n in names
    )


def same_exec(a: Alert, b: Alert, window: int = WINDOW) -> bool:
    ea, eb = a.event, b.event
    if ea.source.format == eb.source.format or ea.action != eb.action:
        return False
    if ea.event_id and eb.event_id:
        return ea.event_id == eb.event_id
    ta, tb = time_ns(ea.time), time_ns(eb.time)
    if ta is None or tb is None or abs(ta - tb) > window:
        return False
    return " ".join(ea.command) == " ".join(eb.command) and _container_matches(ea, eb)


def docker_exec(alert: Alert) -> bool:
    """An exec or attach from a Docker source: the alerts ``DockerDedupe`` may fold together."""
    ev = alert.event
    return ev.source.format in DOCKER and ev.action in ACTIONS


def merge(first: Alert, second: Alert) -> Alert:
    """One alert from two records of one exec; the dockerd log leads (it keeps argv boundaries)."""
    lead, other = (second, first) if second.event.source.format == "dockerd-log" else (first, second)
    ev, oe = lead.event, other.event
    for part, spare in ((ev.target, oe.target), (ev.actor, oe.actor)):
        for f in fields(part):
            if getattr(part, f.name) in (None, [], "") and getattr(spare, f.name) not in (None, [], ""):
                setattr(part, f.name, getattr(spare, f.name))
    for name in ("event_id", "tty", "stdin", "privileged", "run_as_user", "code"):
        if getattr(ev, name) in (None, "") and getattr(oe, name) not in (None, ""):
            setattr(ev, name, getattr(oe, name))
    if not ev.time or (oe.time and (time_ns(oe.time) or 0) < (time_ns(ev.time) or 0)):
        ev.time = oe.time  # the earlier of the two
    known = {m.rule_id for m in lead.matches}
    lead.matches.extend(m for m in other.matches if m.rule_id not in known)
    lead.also_seen.extend([other.event.source, *other.also_seen])
    lead.covers.extend(other.covers)  # what the join found it ran
    return lead


class DockerDedupe:
    """Feed (alert, seq) in time order; get them back, duplicates folded, in the same order."""

    def __init__(self, window: int = WINDOW, cap: int = CAP) -> None:
        self.window = window
        self.cap = cap
        self.pending: deque[tuple[int | None, Alert, int]] = deque()
        self.merged = 0

    def feed(self, alert: Alert, seq: int) -> Iterator[tuple[Alert, int]]:
        t = time_ns(alert.event.time)
        while self.pending and (t is None or len(self.pending) >= self.cap or (self.pending[0][0] or 0) < t - self.window):
            _, a, s = self.pending.popleft()
            yield a, s
        if docker_exec(alert):
            for i, (pt, held, pseq) in enumerate(self.pending):
                if not held.also_seen and held.event.source.format in DOCKER and same_exec(held, alert, self.window):
                    self.pending[i] = (pt, merge(held, alert), min(pseq, seq))
                    self.merged += 1
                    return
        self.pending.append((t, alert, seq))

    def drain(self) -> Iterator[tuple[Alert, int]]:
        while self.pending:
            _, a, s = self.pending.popleft()
            yield a, s
