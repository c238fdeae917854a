"""Sigma correlation rules evaluated over the event stream.

engine/load_correlation.py reads the rule (with pySigma; this module never imports it, so a hunt with
cached rules does not either). ``event_count``/``value_count``: this module keeps, per group-by key, only the
last few matching events (at most the threshold) and fires one alert when the count within the timespan
reaches it, then starts counting afresh: one alert per burst, bounded memory however long the stream.
``temporal``/``temporal_ordered``: chains of different rules' hits (engine/chains.py). A correlation may
reference another correlation (a burst, then an allowed exec). Only what can be decided while streaming is
supported: ``gte``/``gt`` counts; absence (``lt``/``lte``), ``value_sum`` and the like are refused at load
time rather than half-supported.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from ..clock import time_ns
from ..model import Alert, Event, RuleMatch
from ..times import NS
from .chains import Chains, Done, Groups, Role, extras, group_keys
from .fields import Overlay
from .reason import Lookup, render
from .rule import Correlation, Hit, Rule, procedure_tags

MAX_GROUPS = 50_000  # distinct group keys kept per rule; the least recently seen are dropped

# one chain or count a set of hits feeds: the correlation, its part (None: a count), the referenced rule, its
# title, and the chain's groups when its step is a ``Chains.add_last``
Planned = tuple[Rule, Correlation, Role | None, str, str, Groups | None]


def silent_rules(rules: list[Rule]) -> set[str]:
    """Plain rules whose hits only feed correlations: every correlation referencing them says `generate: false`.

    A correlation referenced by another keeps its own alerts: they are never plain hits.
    """
    plain = {r.rule_id for r in rules if r.correlation is None}
    said: dict[str, bool] = {}
    for rule in rules:
        if rule.correlation is not None:
            for ref in rule.correlation.rules:
                said[ref] = said.get(ref, False) or rule.correlation.generate
    return {ref for ref, generate in said.items() if not generate and ref in plain}


class Correlator:
    def __init__(self, rules: list[Rule], max_groups: int = MAX_GROUPS) -> None:
        self.rules = [r for r in rules if r.correlation is not None]
        self.max_groups = max_groups
        titles = {r.rule_id: r.title.lower() for r in self.rules}
        # per referenced rule: the correlations its hits feed, with its part in each chain (None: a count), the
        # pair that feeds it once per event, and the title a step shows when the hit is a correlation's result
        self._watch: dict[str, list[tuple[Rule, Correlation, Role | None, tuple[str, str], str]]] = {}
        for rule in self.rules:
            corr = rule.correlation
            assert corr is not None
            for ref in corr.rules:
                role = Chains.role(corr, ref) if corr.temporal else None
                self._watch.setdefault(ref, []).append((rule, corr, role, (rule.rule_id, ref), titles.get(ref, "")))
        # per rule and group key: recent (time, event_id) (event_count) or value -> last time (value_count)
        self._groups: dict[str, OrderedDict[tuple[str, ...], Any]] = {
            r.rule_id: OrderedDict() for r in self.rules
        }
        self._chains = Chains(max_groups)
        self._plans: dict[tuple[str, ...], list[Planned]] = {}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def feed(self, event: Event, fields: Lookup, hits: Sequence[Hit]) -> Iterator[Alert]:
        """Every correlation alert the event completes, its own chain matches as alerts of their own."""
        folded, alerts = self.step(event, fields, hits)
        yield from (Alert(event, [m]) for m in folded)
        yield from alerts

    def step(self, event: Event, fields: Lookup, hits: Sequence[Hit]) -> tuple[list[RuleMatch], list[Alert]]:
        """(chain matches for this event itself, alerts: counts completed here and earlier chain steps).

        A correlation's own result counts as a hit of it for the correlations that reference it.
        """
        watch = self._watch
        referenced = [h.rule_id for h in hits if h.rule_id in watch]
        if not referenced:
            return [], []  # most hits feed no correlation
        ns = time_ns(event.time)  # None: no time, no window
        if ns is None:
            return [], []
        when = ns / NS
        plan = self._plans.get(key := tuple(referenced))
        if plan is None:
            if len(self._plans) >= 1024:  # sets of hit rules are few; bounded all the same
                self._plans.clear()
            plan = self._plans[key] = self._plan(referenced)
        folded: list[RuleMatch] = []
        alerts: list[Alert] = []
        chains = self._chains
        eid = event.event_id
        keyed: dict[str, list[tuple[str, ...]]] = {}  # group keys by field: several chains group by the same one
        pending: list[str] = []  # the results of correlations completed here, which feed others in turn
        for rule, corr, role, ref, title, groups in plan:
            if role is None:
                alert = self._count(rule, event, when, fields)
                if alert is not None:
                    alerts.append(alert)
                    pending.append(rule.rule_id)
                continue
            if groups is not None and not groups:
                # no group holds an earlier step of this chain (in many logs, never one): no keys to look up
                if eid:
                    groups.unpaired.add(eid, when, when - corr.seconds)
                continue
            field = role.field
            found = None if field is None else keyed.get(field)
            if found is None:
                found = group_keys(corr, role, ref, fields)
                if field is not None:
                    keyed[field] = found
            if groups is not None:  # the usual step: an allowed exec that may end the chain
                if not found:
                    continue
                done = chains.add_last(groups, corr, role, ref, eid, when, found)
            else:
                # a correlation's result: say which, not just its last event
                done = chains.add(rule.rule_id, corr, role, ref, event, when, found, title)
            if done is not None:
                self._complete(rule, corr, done, when, fields, folded, alerts, pending)
        if pending:  # rare: the first pass completed something others reference
            fed = {(rule.rule_id, ref) for rule, _, role, ref, _, _ in plan if role is not None}
            counted = {rule.rule_id for rule, _, role, _, _, _ in plan if role is None}
            self._cascade(event, fields, when, pending, fed, counted, keyed, folded, alerts)
        return folded, alerts

    def _plan(self, refs: list[str]) -> list[Planned]:
        """The chains and counts a set of hits feeds, in the order ``_cascade`` would take them, each once:
        worked out once per set of hit rules instead of per event. With each chain whose step is a
        ``Chains.add_last``, its groups."""
        plan: list[Planned] = []
        fed: set[tuple[str, str]] = set()
        counted: set[str] = set()
        for ref in refs:
            for rule, corr, role, pair, title in self._watch.get(ref, ()):
                if role is not None:
                    if pair not in fed:
                        fed.add(pair)
                        groups = self._chains.groups(rule.rule_id) if role.needs_others else None
                        plan.append((rule, corr, role, ref, title, groups))
                elif rule.rule_id not in counted:  # an event matching two referenced rules counts once
                    counted.add(rule.rule_id)
                    plan.append((rule, corr, None, ref, title, None))
        return plan

    def _complete(
        self, rule: Rule, corr: Correlation, done: Done, when: float, fields: Lookup,
        folded: list[RuleMatch], alerts: list[Alert], pending: list[str],
    ) -> None:
        match, earlier = self._chained(rule, corr, done, when, fields)
        alerts.extend(earlier)
        if all(m.rule_id != rule.rule_id for m in folded):
            folded.append(match)
            pending.append(rule.rule_id)

    def _cascade(
        self, event: Event, fields: Lookup, when: float, pending: list[str], fed: set[tuple[str, str]], counted: set[str],
        keyed: dict[str, list[tuple[str, ...]]], folded: list[RuleMatch], alerts: list[Alert],
    ) -> None:
        """The correlations fed by the results of others completed by this event, after those of its own hits."""
        add = self._chains.add
        while pending:
            ref = pending.pop(0)
            for rule, corr, role, pair, title in self._watch.get(ref, ()):
                if role is not None:
                    if pair in fed:
                        continue
                    fed.add(pair)
                    if role.field is None:
                        found = group_keys(corr, role, ref, fields)
                    else:
                        got = keyed.get(role.field)
                        found = keyed[role.field] = group_keys(corr, role, ref, fields) if got is None else got
                    done = add(rule.rule_id, corr, role, ref, event, when, found, title)
                    if done is not None:
                        self._complete(rule, corr, done, when, fields, folded, alerts, pending)
                    continue
                if rule.rule_id in counted:
                    continue
                counted.add(rule.rule_id)
                alert = self._count(rule, event, when, fields)
                if alert is not None:
                    alerts.append(alert)
                    pending.append(rule.rule_id)

    @staticmethod
    def _chained(rule: Rule, corr: Correlation, done: Done, when: float, fields: Lookup) -> tuple[RuleMatch, list[Alert]]:
        """A completed chain: its match for the current event, and alerts for its earlier steps not reported yet."""
        reason = render(rule.reason or rule.title, Overlay(fields, extras(done, when, corr.timespan)))
        tags = procedure_tags(rule.tags)
        match = RuleMatch(rule.rule_id, rule.title, rule.severity, tags, reason)
        earlier = [
            Alert(s.event, [RuleMatch(rule.rule_id, rule.title, rule.severity, tags, f"an earlier step of this chain: {reason}")])
            for s in done.fresh
        ]
        return match, earlier

    def _count(self, rule: Rule, event: Event, when: float, fields: Lookup) -> Alert | None:
        corr = rule.correlation
        assert corr is not None
        groups = self._groups[rule.rule_id]
        key = corr.key(fields)
        window: Any = groups.get(key)
        if window is None:
            window = deque(maxlen=corr.threshold) if corr.field is None else OrderedDict()
            groups[key] = window
            if len(groups) > self.max_groups:
                groups.popitem(last=False)
        else:
            groups.move_to_end(key)
        if corr.field is None:
            inside = self._events(window, when, event.event_id, corr)
        else:
            inside = self._values(window, when, fields.get(corr.field), corr)
        if inside is None:
            return None
        window.clear()  # one alert per burst; the next needs a fresh threshold
        extra: dict[str, Any] = {
            "count": len(inside),
            "timespan": corr.timespan,
            "first_time": datetime.fromtimestamp(min(inside.values()), tz=UTC).isoformat(),
            "values": ", ".join(str(v) for v in inside if v is not None) if corr.field else "",
        }
        reason = render(rule.reason or rule.title, Overlay(fields, extra))
        return Alert(event, [RuleMatch(rule.rule_id, rule.title, rule.severity, procedure_tags(rule.tags), reason)])

    @staticmethod
    def _events(window: Any, when: float, event_id: str | None, corr: Correlation) -> dict[Any, float] | None:
        """event_count: the last `threshold` events; the burst when they all fall inside the timespan."""
        if event_id and any(eid == event_id for _, eid in window):
            return None  # a later audit stage of an event already counted
        window.append((when, event_id))
        latest = max(t for t, _ in window)
        inside = {i: t for i, (t, _) in enumerate(window) if t >= latest - corr.seconds}
        return inside if len(inside) >= corr.threshold else None

    @staticmethod
    def _values(window: Any, when: float, value: Any, corr: Correlation) -> dict[Any, float] | None:
        """value_count: each distinct value with the last time it was seen; the burst when enough are recent."""
        if value is None or value == "" or value == []:
            return None  # an event without the value says nothing about how many there are
        value = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        window.pop(value, None)
        window[value] = when
        latest = max(window.values())
        for old in [v for v, t in window.items() if t < latest - corr.seconds]:
            del window[old]  # bounded: at most threshold values survive, the alert clears them
        return dict(window) if len(window) >= corr.threshold else None
