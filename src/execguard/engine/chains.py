"""Sigma ``temporal`` and ``temporal_ordered`` correlations: chains of different rules' hits, per group key.

Each group keeps, per referenced rule, its last few hits (time and event) inside the timespan. A chain is
complete when every referenced rule has a hit within the timespan before the current event's time (for
``temporal_ordered``, in the listed order, the current event being the last step). The current event gets the
chain's match; the earlier steps, not reported yet, get an alert of their own then: they were only
reconnaissance until the chain showed what they led to. While the earlier steps stay inside the timespan, each
later event of the last step completes the chain again (a token that listed secrets and then execs into four
pods: four chain matches).

Memory: at most ``PER_RULE`` hits per referenced rule and group, ``MAX_GROUPS`` groups per rule (least
recently seen dropped), ``MAX_KEYS`` group keys per event (a group-by field holding a list, such as a binding's
subjects, puts the event in one group per value). The last step of an ordered chain makes no group: where no
earlier step is, only its request id is kept (``Unpaired``, at most ``MAX_GROUPS`` per chain, inside the timespan).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..model import Event
from .fields import Lookup
from .rule import Correlation

PER_RULE = 16
MAX_KEYS = 16

Keys = list[tuple[str, ...]]  # an event's group keys in one chain


@dataclass(slots=True)
class Step:
    when: float
    event: Event
    summary: str
    event_id: str | None = None
    reported: bool = False


class Steps(deque[Step]):
    """One referenced rule's recent steps in one group, oldest first (at most ``PER_RULE``), and those with an
    event id by it: a later audit stage finds its first stage in one look-up instead of a walk through all."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, Step] = {}  # event ids are unique here: a step whose id is known is never added

    def drop_oldest(self) -> None:
        old = self.popleft()
        if old.event_id:
            del self.ids[old.event_id]

    def trim(self, oldest: float) -> None:
        """Drop the steps before ``oldest`` (the timespan before the current event)."""
        while self and self[0].when < oldest:
            self.drop_oldest()


class Lasts(deque[tuple[float, str | None]]):
    """``Steps`` for the last rule of an ordered chain that is no earlier step of it (``Role.needs_others``): never
    listed, so only each step's (time, event id) is kept, the one tuple shared by every group the event falls in,
    and by id whether the step completed the chain in this group (what a later audit stage of the request answers)."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        super().__init__((), PER_RULE)  # the oldest step drops out by itself; ``add_last`` forgets its id
        self.ids: dict[str, bool] = {}

    def trim(self, oldest: float) -> None:
        while self and self[0][0] < oldest:
            _, eid = self.popleft()
            if eid:
                del self.ids[eid]


class Unpaired:
    """The requests (event ids) whose last step of an ordered chain fell in a group holding nothing (no earlier
    step: no chain) and was kept nowhere, inside the timespan and at most ``limit``: a later audit stage of one
    gets its first stage's answer even if an earlier step has filled the group since. Kept once per chain, not
    a step per group: every allowed exec is such a step, in each of its groups (its user and each of its
    groups), and groups made for them held ~99.9 % of a dense hunt's chain state and half its correlation time."""

    __slots__ = ("ids", "limit", "order")

    def __init__(self, limit: int) -> None:
        self.order: deque[tuple[float, str]] = deque()
        self.ids: set[str] = set()
        self.limit = limit

    def add(self, eid: str, when: float, oldest: float) -> None:
        """Note ``eid`` (once: a later stage of a request noted already changes nothing)."""
        if eid in self.ids:
            return
        order = self.order
        order.append((when, eid))
        self.ids.add(eid)
        if order[0][0] < oldest or len(order) > self.limit:
            ids = self.ids
            while order and (order[0][0] < oldest or len(order) > self.limit):
                ids.discard(order.popleft()[1])


class Groups(OrderedDict[tuple[str, ...], dict[str, Steps | Lasts]]):
    """One chain's groups, least recently seen first: group key -> referenced rule -> recent steps; and its
    ``Unpaired`` last steps."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.unpaired = Unpaired(limit)


@dataclass
class Done:
    """A completed chain: the steps before the current event, and those of them not reported before."""

    earlier: list[Step] = field(default_factory=list)
    fresh: list[Step] = field(default_factory=list)


def group_keys(corr: Correlation, role: Role, ref: str, fields: Lookup) -> Keys:
    """The group keys of an event that hit ``ref``, for ``Chains.add``: one per combination of list values (bounded)."""
    if role.field is not None:  # the usual shape (one user, one address, one principal list): one field
        found = _one_key(fields.get(role.field))
        if found is not None:
            return found
    return _combined(corr, ref, fields)


def _combined(corr: Correlation, ref: str, fields: Lookup) -> Keys:
    out: Keys = [()]
    for name in corr.group_by:
        value = fields.get(_field(corr, ref, name))
        values = [str(v) for v in value if v not in (None, "")] if isinstance(value, list) else [] if value in (None, "") else [str(value)]
        if not values:
            return []  # an event without the key cannot be joined to anything
        out = [(*k, v) for k in out for v in dict.fromkeys(values)][:MAX_KEYS]
    return out


def _field(corr: Correlation, ref: str, name: str) -> str:
    """The field a group-by name reads for ``ref``'s hits (an alias names one per rule)."""
    alias = corr.aliases.get(name)
    return alias.get(ref, name) if alias else name


_KNOWN: dict[tuple[Any, ...], Keys] = {}  # the keys of list values seen lately: the same principal lists come back
KNOWN_LIMIT = 4096


def _one_key(value: Any) -> Keys | None:
    """The keys of one group-by field's value when it is a string or a list of them (None: another shape)."""
    if value.__class__ is str:
        return [(value,)] if value else []
    if value.__class__ is list:
        seen = tuple(value)
        try:
            found = _KNOWN.get(seen)
        except TypeError:  # an unhashable item: not a string
            return None
        if found is None:
            if not all(v.__class__ is str for v in value):
                return None
            made: Keys = [(v,) for v in dict.fromkeys(value) if v]
            del made[MAX_KEYS:]
            if len(_KNOWN) >= KNOWN_LIMIT:
                _KNOWN.clear()
            _KNOWN[seen] = found = made
        return found
    return None


def summary(event: Event) -> str:
    """One step, as the chain's reason lists it."""
    what = event.action
    if event.action in ("discovery", "rbac", "other"):
        what = f"{event.verb or '?'} {event.resource or '?'}"
    where = event.target.pod or event.target.namespace or event.target.node or ""
    tail = f" {where}" if where else ""
    outcome = f" ({event.outcome})" if event.outcome in ("denied", "error") else ""
    return f"{what}{tail}{outcome}"


@dataclass(frozen=True, slots=True)
class Role:
    """How one referenced rule takes part in one chain, worked out once instead of per hit."""

    ordered: bool  # temporal_ordered
    last: bool  # ordered, and the rule is the last step: a hit of it may complete the chain
    listed: bool  # its steps may be listed among a completed chain's earlier steps (so they need a text)
    before: tuple[str, ...]  # ordered: the earlier steps' rules, the one just before the last first
    needs_others: bool  # only the last step, never an earlier one: a group holding no other rule's steps cannot complete
    field: str | None  # the one field the chain groups by, for this rule's hits (None: several)


class Chains:
    def __init__(self, max_groups: int) -> None:
        self.max_groups = max_groups
        # per rule: group key -> referenced rule -> recent steps
        self._groups: dict[str, Groups] = {}

    def groups(self, rule_id: str) -> Groups:
        """One chain's groups, for ``add_last``."""
        groups = self._groups.get(rule_id)
        if groups is None:
            groups = self._groups[rule_id] = Groups(self.max_groups)
        return groups

    @staticmethod
    def role(corr: Correlation, ref: str) -> Role:
        """How hits of ``ref`` take part in the chain ``corr``: worked out once, handed to every ``add``."""
        ordered = corr.kind == "temporal_ordered"
        last = ordered and ref == corr.rules[-1]
        # a step of an ordered chain's last rule is never listed among the earlier steps: no text for it
        listed = not (last and ref not in corr.rules[:-1])
        before = tuple(reversed(corr.rules[:-1]))
        field = _field(corr, ref, corr.group_by[0]) if len(corr.group_by) == 1 else None
        return Role(ordered, last, listed, before, last and not listed and bool(before), field)

    def add(
        self, rule_id: str, corr: Correlation, role: Role, ref: str, event: Event, when: float, found: Keys, title: str = ""
    ) -> Done | None:
        """Add a hit of ``ref`` in the groups ``found`` (``group_keys``; ``title``: the name of a correlation whose
        result the hit is) and see if the chain completes.

        Each group the event falls in gets a step of its own, but for the last step of an ordered chain
        (``role.needs_others``) in a group holding nothing: that is only noted (``Unpaired``). Written as one loop,
        not a call per group: every allowed exec passes through here for each chain it can end.
        """
        if not found:
            return None
        groups = self.groups(rule_id)
        if role.needs_others:
            return self.add_last(groups, corr, role, ref, event.event_id, when, found)
        return self._each(groups, corr, role, ref, event, when, found, title)

    def _each(
        self, groups: Groups, corr: Correlation, role: Role, ref: str, event: Event, when: float, found: Keys, title: str
    ) -> Done | None:
        """``add``'s general loop: any rule in any chain (tests hold ``add_last`` to its answers)."""
        eid = event.event_id
        oldest = when - corr.seconds
        text: str | None = None
        done: Done | None = None
        unpaired = groups.unpaired
        alone = False  # the step fell in a group holding nothing: kept in ``unpaired`` (only ``role.needs_others``)
        for key in found:
            state = groups.get(key)
            if state is None:
                if role.needs_others:
                    alone = True
                    continue
                state = groups[key] = {}
                if len(groups) > self.max_groups:
                    groups.popitem(last=False)
            else:
                groups.move_to_end(key)
            steps = state.get(ref)
            assert not isinstance(steps, Lasts)  # a listed rule's or an unordered chain's: ``Lasts`` only in ``add_last``
            if eid:
                same = None if steps is None else steps.ids.get(eid)
                if same is not None:
                    # a later audit stage of a request already seen: the same answer as its first stage, nothing new
                    if same.reported:
                        done = Done() if done is None else done
                    continue
                if role.needs_others and eid in unpaired.ids:
                    continue  # its first stage found this group holding nothing: no chain then, none now
            if steps is None:
                steps = state[ref] = Steps()
            if text is None:
                text = "" if not role.listed else f"{title} (last: {summary(event)})" if title else summary(event)
            current = Step(when, event, text, eid)
            if len(steps) >= PER_RULE:
                steps.drop_oldest()
            steps.append(current)
            if eid:
                steps.ids[eid] = current
            for other in state.values():
                other.trim(oldest)
            if role.ordered:
                if not role.last:
                    continue  # an earlier step: kept for the last step to find
                earlier = _ordered(state, corr, role.before, when)
            else:
                earlier = _unordered(state, corr, ref, current)
            if earlier is None:
                continue
            current.reported = True
            done = _done(done, earlier)
        if alone and eid:
            unpaired.add(eid, when, oldest)
        return done

    def add_last(self, groups: Groups, corr: Correlation, role: Role, ref: str, eid: str | None, when: float, found: Keys) -> Done | None:
        """``add`` for the last step of an ordered chain that is no earlier step of it (``role.needs_others``;
        ``found`` not empty; ``groups``: ``self.groups(rule_id)``): every allowed exec, in each chain it can
        end, in each of its groups; the same answers as the general path, with fewer steps."""
        oldest = when - corr.seconds
        item = (when, eid)
        done: Done | None = None
        get = groups.get
        alone = False
        for key in found:
            state = get(key)
            if state is None:
                alone = True  # the usual case (an allowed exec, no earlier step of this chain in its group)
                continue
            groups.move_to_end(key)
            # this rule's steps in this chain are always a Lasts (a Role is fixed per chain and rule)
            lasts: Lasts | None = state.get(ref)  # type: ignore[assignment]
            if eid:
                same = None if lasts is None else lasts.ids.get(eid)
                if same is not None:
                    # a later audit stage of a request already seen: the same answer as its first stage, nothing new
                    if same:
                        done = Done() if done is None else done
                    continue
                if eid in groups.unpaired.ids:
                    continue  # its first stage found this group holding nothing: no chain then, none now
            if lasts is None:
                lasts = state[ref] = Lasts()
                ids = lasts.ids
            else:
                ids = lasts.ids
                if len(lasts) == PER_RULE:
                    old = lasts[0][1]  # about to drop out
                    if old:
                        del ids[old]
            lasts.append(item)
            if eid:
                ids[eid] = False
            for other in state.values():
                other.trim(oldest)
            earlier = _ordered(state, corr, role.before, when)
            if earlier is None:
                continue
            if eid:
                ids[eid] = True
            done = _done(done, earlier)
        if alone and eid:
            groups.unpaired.add(eid, when, oldest)
        return done


def _done(done: Done | None, earlier: list[Step]) -> Done:
    """A chain completed in one more group: its earlier steps, those not reported before now reported."""
    fresh = [s for s in earlier if not s.reported]
    for s in fresh:
        s.reported = True
    return Done(earlier, fresh) if done is None else Done(done.earlier + earlier, done.fresh + fresh)


def _ordered(state: dict[str, Steps | Lasts], corr: Correlation, before: tuple[str, ...], when: float) -> list[Step] | None:
    """temporal_ordered: the current event is the last step; each earlier step has a hit no later than the next."""
    limit = when
    oldest = when - corr.seconds
    earlier: list[Step] = []
    for other in before:
        steps = state.get(other)
        if not steps:
            return None
        assert isinstance(steps, Steps)  # an earlier step's rule is listed
        inside = [s for s in steps if oldest <= s.when <= limit]
        if not inside:
            return None
        limit = max(s.when for s in inside)
        earlier.extend(inside)
    return sorted(earlier, key=lambda s: s.when)


def _unordered(state: dict[str, Steps | Lasts], corr: Correlation, ref: str, current: Step) -> list[Step] | None:
    """temporal: every referenced rule has a hit inside the timespan, in any order."""
    when = current.when
    earlier: list[Step] = []
    for other in corr.rules:
        steps = state.get(other, ())
        assert isinstance(steps, Steps | tuple)  # no step of an unordered chain is a ``Lasts``
        inside = [s for s in steps if when - corr.seconds <= s.when <= when and s is not current]
        if not inside and other != ref:
            return None
        earlier.extend(inside)
    return sorted(earlier, key=lambda s: s.when)


def chain_text(done: Done, limit: int = 6) -> str:
    """The earlier steps for a reason: 'list secrets (denied) x3, list pods' in time order."""
    counts: OrderedDict[str, int] = OrderedDict()
    for s in done.earlier:
        counts[s.summary] = counts.get(s.summary, 0) + 1
    parts = [f"{text} x{n}" if n > 1 else text for text, n in counts.items()]
    more = f", and {len(parts) - limit} more" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + more


def first_time(done: Done, when: float) -> str:
    return datetime.fromtimestamp(min([when, *(s.when for s in done.earlier)]), tz=UTC).isoformat()


def extras(done: Done, when: float, timespan: str) -> dict[str, Any]:
    return {"count": len(done.earlier) + 1, "timespan": timespan, "first_time": first_time(done, when), "chain": chain_text(done)}
