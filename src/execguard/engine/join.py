"""The join: records of who asked for an exec, joined to what the node saw run (docs/node.md).

Fed (event, alert or None, seq) in log-time order, after the engine decided each event. Three kinds
of events take part (joinkeys.relevant): a record of who asked (pods/exec, attach, ephemeral
container, kubelet exec through the API server, Docker exec), a node event (``runtime_exec``,
``process``) and a pod spec's exec probe or lifecycle hook (a ``create`` with such an origin).

- A node event that came in from outside the container's process tree (``joinkeys.exec_like``)
  starts a session and waits ``skew`` (+ ``lag`` on streams) for a record of who asked. Its later
  processes (same pid seen by another source, or a child by ppid) join the same session.
- Matched to a record (same container or pod, at most ``window`` after it, ``skew`` either way),
  the record's session becomes an incident: ONE alert led by the record, whose identity is copied
  onto every process it covers (``Alert.covers``), with every part's rule hits (so its severity is the
  highest of its parts) and one ``join-exec-incident`` hit that tells the story.
- Not matched: a probe or hook (the pod spec said so, Tetragon's ``maybe_exec_probe``, a policy
  ``probe`` entry, or the same argv in the same container ``REPEAT`` times) is left alone; with no
  API-server or Docker source seen within ``COVERAGE`` before it, nothing can be said (counted as
  uncovered); otherwise it is a bypass: a ``join-exec-bypass`` alert at high.

Alerts that wait are written when their session has been quiet for ``window`` + ``skew`` (+ ``lag``)
of log time, or ``MAX_HOLD`` after it began; later processes of a written session go out on their
own, identity attached. Every input alert comes out exactly once, alone or inside one incident or
bypass alert. Memory: at most ``cap`` sessions, processes, records, hook specs and repeat counts
each; past that the oldest go (a waiting session is written early), counted in ``stats.shed``.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

from ..model import Alert, Event, RuleMatch
from ..times import NS, time_ns
from . import joinkeys as jk
from . import joinstory as story
from .joinlive import BYPASS, LAG, VERDICT_CAP, Verdicts
from .joinstory import JoinStats

INCIDENT = "join-exec-incident"
IDS = (BYPASS, INCIDENT)
WINDOW = 10.0  # seconds from a record of who asked to the runtime exec it caused
SKEW = 3.0  # seconds the sources' clocks may disagree by
CAP = 50_000
COVER_CAP = 100  # processes listed in one alert; later ones go out alone
REPEAT = 3  # the same argv this often in one container with no record: a probe or hook
COVERAGE = 15  # minutes: a record of a source vouches for it being on this long before and after
MAX_HOLD = 600.0  # seconds an alert may wait for more processes
PER_KEY = 32  # records remembered per container or pod

Out = tuple[Alert, int]
Member = tuple[Event, Alert | None, int, int]  # event, its alert, log time, seq


@dataclass(eq=False)
class Session:
    lead: Event
    alert: Alert | None
    start: int
    seq: int
    kind: str  # trail | pending | bypass | probe | plain | merged | verdict (watch: a bypass verdict waits)
    last: int = 0
    members: list[Member] = field(default_factory=list)
    into: Session | None = None  # a pending session merged into this record's
    claimed: bool = False  # a node exec joined this record
    written: bool = False  # its alert is out: later members go alone
    queued: bool = False  # in the heap of sessions whose alert waits
    words: tuple[str, ...] = ()  # a record's command, as joinkeys.argv_key compares it

    def root(self) -> Session:
        s = self
        while s.into is not None:
            s = s.into
        return s


class Joiner:
    def __init__(
        self,
        window: float = WINDOW,
        skew: float = SKEW,
        lag: float = 0.0,
        cap: int = CAP,
        expected: Callable[[Event], bool] | None = None,
        active: bool = False,
        covered: frozenset[str] = frozenset(),
        hold: bool = True,
        verdicts: bool = False,
        verdict_lag: float = LAG,
        verdict_cap: int = VERDICT_CAP,
    ) -> None:
        self.window, self.skew, self.lag = int(window * NS), int(skew * NS), int(lag * NS)
        self.cap = cap
        self.expected = expected  # policy `probe` entries
        self.active = active  # node telemetry is present: records' alerts wait for what they ran
        self.covered = covered  # families known to be on (a live audit webhook): 'k8s', 'docker'
        # False (watch): nothing waits, every alert goes out with the event that caused it, so a runner that
        # acknowledges input per batch stays exactly-once: identities are attached to processes whose record
        # came first; no incident alert, and a bypass only as a later alert of its own (``verdicts``, joinlive)
        self.hold = hold
        # watch (hold False): bypass verdicts wait beside the alerts already written (engine/joinlive.py)
        self.verdicts = Verdicts(self, verdict_lag, verdict_cap) if verdicts and not hold else None
        self.stats = JoinStats()
        self._shed = jk.Shed()
        self.now = 0
        self.seen: dict[str, set[int]] = {"k8s": set(), "docker": set()}  # minutes in which each source had a record
        self.trails: jk.Bounded[Hashable, deque[Session]] = jk.Bounded(cap, self._shed)
        self.pids: jk.Bounded[tuple[str, int], Session] = jk.Bounded(cap, self._shed)
        self.hooks: jk.Bounded[Hashable, None] = jk.Bounded(cap, self._shed)
        self.repeats: jk.Bounded[Hashable, int] = jk.Bounded(cap, self._shed)
        self.live: OrderedDict[int, Session] = OrderedDict()  # sessions still waiting, oldest first
        self.pending: deque[Session] = deque()
        self.heap: list[tuple[int, int, Session]] = []

    # ---- feeding ---------------------------------------------------------------------------------
    def feed(self, event: Event, alert: Alert | None, seq: int = 0, t: int | None = None) -> Iterator[Out]:
        """``t``: the event's time in ns when the caller has it already."""
        t = time_ns(event.time) if t is None else t
        if t is None or not jk.relevant(event):
            if alert is not None:
                yield alert, seq
            return
        if t > self.now:
            self.now = t
            yield from self._advance()
            if self.verdicts is not None:
                yield from self.verdicts.due(t)
        self.note(event, t)
        if jk.is_hook_spec(event):
            self.hooks.put(jk.hook_key(event), None)
            if alert is not None:
                yield alert, seq
        elif jk.is_trail(event):
            yield from self._trail(event, alert, t, seq)
        else:
            self.active = True
            yield from self._node(event, alert, t, seq)

    def note(self, event: Event, t: int | None = None) -> None:
        """A record of an API-server or Docker source, whatever it is: that source was on at its time."""
        fam = jk.family(event)
        t = time_ns(event.time) if t is None else t
        if fam is None or t is None:
            return
        minutes = self.seen[fam]
        minutes.add(t // (60 * NS))
        if len(minutes) > self.cap:
            minutes.discard(min(minutes))
            self._shed.count += 1

    def tick(self, wall: int) -> Iterator[Out]:
        """A quiet stream (watch): bypass verdicts due by the wall clock ``wall`` (ns)."""
        if self.verdicts is not None:
            yield from self.verdicts.due(self.now, wall)

    def resume(self, lead: Event, later: list[Event], seq: int = 0) -> bool:
        """A pending bypass verdict from watch's state file: it waits again, from now. False: no time to judge it by."""
        t = time_ns(lead.time)
        if t is None or self.verdicts is None:
            return False
        s = Session(lead, None, t, seq, "verdict", last=t, members=[(e, None, time_ns(e.time) or t, seq) for e in later])
        if lead.process is not None and lead.process.pid is not None:
            self.pids.put((jk.process_key(lead), lead.process.pid), s)
        self.verdicts.add(s)
        return True

    def drain(self) -> Iterator[Out]:
        """Everything still waiting, decided as if the stream had moved past it."""
        while self.pending:
            s = self.pending.popleft()
            if s.kind == "pending":
                yield from self._resolve(s)
        for _, _, s in sorted(self.heap, key=lambda h: (h[0], h[1])):
            if not s.written and s.into is None:
                yield from self._release(s)
        self.heap = []
        self.live.clear()

    @property
    def shed(self) -> int:
        return self.stats.shed + self._shed.count

    # ---- the three kinds of event ------------------------------------------------------------------
    def _trail(self, event: Event, alert: Alert | None, t: int, seq: int) -> Iterator[Out]:
        s = Session(event, alert, t, seq, "trail", last=t, words=jk.argv_key(event.command))
        for key in jk.lookup(event, trail=True):
            found = self.trails.get(key)
            if found is None:
                found = deque(maxlen=PER_KEY)
            found.append(s)
            self.trails.put(key, found)
        if self.verdicts is not None:
            self.verdicts.cancel(s)
        if not self.active or not self.hold:
            s.written = True  # no node telemetry (yet), or nothing may wait: later processes go out alone
            if alert is not None:
                yield alert, seq
        elif alert is not None:
            yield from self._hold(s)
        # no alert of its own: it waits only once a process joins it

    def _node(self, event: Event, alert: Alert | None, t: int, seq: int) -> Iterator[Out]:
        key = jk.process_key(event)
        p = event.process
        pid = p.pid if p is not None else None
        known = None
        if pid is not None:
            known = self.pids.get((key, pid))  # the same process from another source
            if known is None and p is not None and p.ppid is not None:
                known = self.pids.get((key, p.ppid))  # a child of one we follow
        if known is not None:
            s = known.root()
            if pid is not None:
                self.pids.put((key, pid), s)
            yield from self._join(s, (event, alert, t, seq))
            return
        if not jk.exec_like(event):
            if alert is not None:
                yield alert, seq
            return
        s = Session(event, alert, t, seq, "pending", last=t)
        if pid is not None:
            self.pids.put((key, pid), s)
        if not self.hold:  # decided now, on the records seen so far
            yield from self._resolve(s)
            return
        self.pending.append(s)
        yield from self._track(s)

    def _join(self, s: Session, m: Member) -> Iterator[Out]:
        event, alert, t, seq = m
        if s.kind == "verdict" and len(s.members) < COVER_CAP:
            s.members.append((event, None, t, seq))  # listed if the bypass is called; its own alert goes out now
        if s.kind == "trail":
            story.identity(event, s.lead)
            self.stats.identities += 1
        if s.written or s.kind in ("probe", "plain") or len(s.members) >= COVER_CAP:
            self.stats.late += self.hold and s.written and s.kind in ("trail", "bypass")
            if alert is not None:
                yield alert, seq
            return
        s.members.append(m)
        s.last = max(s.last, t)
        if s.kind in ("trail", "bypass"):
            yield from self._hold(s)

    # ---- deciding ---------------------------------------------------------------------------------
    def _resolve(self, s: Session) -> Iterator[Out]:
        ev = s.lead
        hook = ev.command_origin in jk.HOOKS or jk.hook_key(ev) in self.hooks
        trail = self._find_trail(ev, s.start, hook)
        if trail is not None:
            s.kind, s.into, trail.claimed = "merged", trail, True
            self.live.pop(id(s), None)
            for m in [(ev, s.alert, s.start, s.seq), *s.members]:
                yield from self._join(trail, m)
            return
        if self.expected is not None and self.expected(ev):
            s.kind = "probe"
            self.stats.expected += 1
        elif hook:
            s.kind = "probe"
            self.stats.probes += 1
        elif not self._covered(ev, s.start):
            s.kind = "plain"
            self.stats.uncovered += 1
        elif not self.hold:
            # the record may be seconds behind (clock skew, the audit webhook's batching): a bypass cannot be
            # told on arrival, and nothing may wait here. watch keeps a verdict beside the alert (joinlive)
            if self.verdicts is not None:
                self.verdicts.add(s)
            else:
                s.kind = "plain"
                self.stats.unjudged += 1
        else:
            s.kind = "probe" if self.repeated(ev) else "bypass"
        if s.kind == "bypass":
            yield from self._hold(s)
            return
        self.live.pop(id(s), None)
        s.written = True
        for _, alert, _, seq in [(ev, s.alert, s.start, s.seq), *s.members]:
            if alert is not None:
                yield alert, seq
        s.members = []

    def repeated(self, ev: Event) -> bool:
        """Counts an unmatched exec's argv per container: the REPEATth time it is taken for a probe or hook."""
        rk = (jk.process_key(ev) if jk.pod_key(ev) is None else ev.target.namespace, ev.target.container, jk.argv_key(ev.command))
        n = self.repeats.get(rk, 0) + 1
        self.repeats.put(rk, n)
        self.stats.repeated += n >= REPEAT
        return n >= REPEAT

    def in_window(self, tr: Session, t: int) -> bool:
        """A node event at ``t`` may have been caused by the record ``tr``."""
        return tr.start - self.skew <= t <= tr.start + self.window + self.skew

    def _find_trail(self, ev: Event, t: int, hook: bool) -> Session | None:
        found: list[Session] = []
        for key in jk.lookup(ev, trail=False):
            for tr in self.trails.get(key, ()):
                if self.in_window(tr, t) and jk.same_container(tr.lead, ev):
                    found.append(tr)
        argv = jk.argv_key(ev.command)
        if hook:  # a probe that looks like one joins only a record of the very same command
            found = [tr for tr in found if tr.words == argv]
        if not found:
            return None
        # the same command, then a record no exec claimed yet, then one with an alert (a Docker exec_create over its
        # exec_start), then the nearest in time
        return min(found, key=lambda tr: (tr.words != argv, tr.claimed, tr.alert is None, abs(t - tr.start)))

    def _covered(self, ev: Event, t: int) -> bool:
        fam = "k8s" if jk.pod_key(ev) is not None else "docker"
        if fam in self.covered:
            return True
        minute, minutes = t // (60 * NS), self.seen[fam]
        return any(m in minutes for m in range(minute - COVERAGE, minute + COVERAGE + 1))

    # ---- waiting and writing ------------------------------------------------------------------------
    def _deadline(self, s: Session) -> int:
        return min(s.last + self.window + self.skew + self.lag, s.start + int(MAX_HOLD * NS))

    def _hold(self, s: Session) -> Iterator[Out]:
        if not s.queued:
            s.queued = True
            heapq.heappush(self.heap, (self._deadline(s), s.seq, s))
        yield from self._track(s)

    def _track(self, s: Session) -> Iterator[Out]:
        self.live[id(s)] = s
        self.live.move_to_end(id(s))
        while len(self.live) > self.cap:
            _, old = self.live.popitem(last=False)
            self.stats.shed += 1
            if old.kind == "pending":
                yield from self._resolve(old)
            if old.kind in ("trail", "bypass") and not old.written:
                yield from self._release(old)
            self.live.pop(id(old), None)

    def _advance(self) -> Iterator[Out]:
        while self.pending and self.pending[0].start + self.skew + self.lag < self.now:
            s = self.pending.popleft()
            if s.kind == "pending":
                yield from self._resolve(s)
        while self.heap and self.heap[0][0] < self.now:
            _, _, s = heapq.heappop(self.heap)
            s.queued = False
            if s.written or s.into is not None:
                continue
            if self._deadline(s) >= self.now:
                s.queued = True
                heapq.heappush(self.heap, (self._deadline(s), s.seq, s))
                continue
            yield from self._release(s)

    def _release(self, s: Session) -> Iterator[Out]:
        s.written = True
        self.live.pop(id(s), None)
        members, s.members = s.members, []
        parts = [a for a in (s.alert, *(m[1] for m in members)) if a is not None]
        if s.kind == "trail":
            if not members:
                if s.alert is not None:
                    yield s.alert, s.seq
                return
            if not parts:
                return  # neither the record nor what it ran hit a rule
            self.stats.incidents += 1
            covered = [m[0] for m in members]
            told = RuleMatch(INCIDENT, "Exec joined to the processes it started", "info", ["T1609"], story.incident(s.lead, covered))
            yield Alert(s.lead, [*story.merged(parts), told], covers=covered), s.seq
        elif s.kind == "bypass":
            self.stats.bypasses += 1
            why = RuleMatch(BYPASS, "Exec that bypassed the API server", "high", ["T1609"],
                            story.bypass(s.lead, len(members), self.window / NS, self.skew / NS))
            yield Alert(s.lead, [why, *story.merged(parts)], covers=[m[0] for m in members]), s.seq
