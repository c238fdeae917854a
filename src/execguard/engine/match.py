"""Run compiled rules over events; one Alert per event, later audit stages of it folded in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..model import Alert, Event, RuleMatch, match_rank, severity_rank
from .correlate import Correlator, silent_rules
from .fields import FieldView
from .grants import GrantMemory
from .joinkeys import ACTIONS as JOIN_ACTIONS
from .joinkeys import relevant
from .memo import Decider, Reasons
from .rule import Rule, procedure_tags
from .seen import SeenKeys

SEEN_LIMIT = 200_000

class Engine:
    def __init__(self, rules: list[Rule], min_severity: str = "info") -> None:
        self.rules = rules
        self.min_rank = severity_rank(min_severity)
        self._seen = SeenKeys(SEEN_LIMIT)  # fixed size: allocated whole on the first alert
        self.suppressed = 0
        self.correlator = Correlator(rules)  # correlation rules count the others' hits; they never match one event
        self.silent = silent_rules(rules)  # hits that only feed correlations (`generate: false`)
        self.grants = GrantMemory()  # roles and bindings seen so far, for bindings whose role is not in the record
        rules = [r for r in rules if r.correlation is None]
        by_action: dict[str, list[Rule]] = {}
        self._any_action = [r for r in rules if r.actions is None]
        for rule in rules:
            for action in rule.actions or ():
                by_action.setdefault(action, []).append(rule)
        self._by_action = by_action
        self._deciders: dict[str, Decider] = {}  # per action: its rules, then the rules of any action
        self._tags = {r.rule_id: procedure_tags(r.tags) for r in rules}
        self._number = {id(r): i for i, r in enumerate(self.rules)}  # a hit on the wire is its rule's number
        self._reasons = Reasons(rules)
        self._last: tuple[Event, FieldView] | None = None  # the view ``hits`` built, for ``decide`` to reuse
        self.join = False  # the join (engine/join.py) runs after: it reads events no rule hits

    def actions(self) -> set[str] | None:
        """Every action some rule can fire on; None when a rule accepts any action."""
        if self._any_action:
            return None
        return set(self._by_action) | (set(JOIN_ACTIONS) if self.join else set())

    def needs_state(self, event: Event) -> bool:
        """Events ``decide`` must see even without hits: RBAC writes, remembered for later bindings, and
        with the join on, every event it reads (records of who asked, node processes, hook specs)."""
        return event.rbac is not None or (self.join and relevant(event))

    def _matched(self, event: Event) -> tuple[list[Rule], FieldView | None]:
        """The rules the event matches, and the field view they read (None: no rule can fire on its action)."""
        decider = self._deciders.get(event.action)
        if decider is None:
            decider = self._deciders[event.action] = Decider(self._by_action.get(event.action, []) + self._any_action)
        if not decider.candidates:
            return [], None
        view = FieldView(event)
        self._last = (event, view)
        return decider.matches(event, view), view

    def hits(self, event: Event) -> list[RuleMatch]:
        """The rules the event matches, by itself: no state, so it may run in another process.

        The hits of rules that only feed correlations (``silent``) carry no reason: no alert shows them.
        """
        rules, view = self._matched(event)
        if not rules:
            return []
        assert view is not None
        tags, explain, silent = self._tags, self._reasons.explain, self.silent
        return [
            RuleMatch(r.rule_id, r.title, r.severity, list(tags[r.rule_id]), "" if r.rule_id in silent else explain(r, view))
            for r in rules
        ]

    def coded_hits(self, event: Event, explain: bool = True) -> list[Any]:
        """``hits`` as a worker hands them to the parent (pipeline/wire.py): ``(n, reason)`` with ``n`` the rule's
        number in ``rules``, or a bare ``n`` for a hit whose reason is not rendered here: a rule that only feeds
        correlations, and every hit when not ``explain`` (a later audit stage of a request: the parent's stage
        folding suppresses most). ``from_wire`` makes hits of them again; ``decide`` renders a missing reason, as
        ``hits`` would have, only for an alert that comes out."""
        rules, view = self._matched(event)
        if not rules:
            return []
        number = self._number
        if not explain:
            return [number[id(r)] for r in rules]
        assert view is not None
        silent, reason = self.silent, self._reasons.explain
        return [number[id(r)] if r.rule_id in silent else (number[id(r)], reason(r, view)) for r in rules]

    def from_wire(self, coded: list[Any]) -> list[RuleMatch | Rule]:
        """``coded_hits`` back: a RuleMatch for each hit with its reason, the Rule itself for one without."""
        rules, tags = self.rules, self._tags
        out: list[RuleMatch | Rule] = []
        for hit in coded:
            if type(hit) is int:
                out.append(rules[hit])
            else:
                r = rules[hit[0]]
                out.append(RuleMatch(r.rule_id, r.title, r.severity, list(tags[r.rule_id]), hit[1]))
        return out

    def decide(self, event: Event, hits: Sequence[RuleMatch | Rule], correlated: list[Alert] | None = None) -> Alert | None:
        """The alert for an event and its hits, after correlation, the severity floor and stage folding.

        Stateful: call it in stream order. With ``correlated`` given, correlation alerts the event
        completes are appended there.
        """
        return self._decide(event, hits, None, correlated)

    def match(self, event: Event, correlated: list[Alert] | None = None) -> Alert | None:
        """The event's alert; with ``correlated`` given, correlation alerts it completes are appended there."""
        rules, view = self._matched(event)
        return self._decide(event, rules, view, correlated)

    def _decide(
        self, event: Event, hits: Sequence[RuleMatch | Rule], view: FieldView | None, correlated: list[Alert] | None
    ) -> Alert | None:
        """``decide``, for hits that are RuleMatches or (from ``match``, or ``from_wire``) the Rules themselves: a
        Rule becomes a RuleMatch, its reason rendered from ``view`` (None: from the event), only in an alert that
        comes out. Most hits never do: rules that only feed correlations, and the later audit stages of a request
        already alerted on."""
        if event.rbac is not None and self.grants.resolve(event):
            hits = self.hits(event)  # a binding's role became known from an earlier record
        if correlated is not None and hits and self.correlator:
            # counted before the severity floor and stage folding: a burst of low alerts is the signal
            last = self._last
            # an RBAC event may have been completed since (grants): its fields are read afresh
            fields = last[1] if last is not None and last[0] is event and event.rbac is None else FieldView(event)
            folded, alerts = self.correlator.step(event, fields, hits)
            if folded:
                hits = [*hits, *folded]  # a chain this event completes is part of its own alert
            if alerts:
                correlated.extend(a for a in alerts if severity_rank(a.severity) >= self.min_rank)
        if self.silent:
            silent = self.silent
            hits = [h for h in hits if h.rule_id not in silent]
        if not hits:
            return None
        lead = max(hits, key=match_rank)  # as Alert.lead: the first of the most severe
        if match_rank(lead) < self.min_rank:
            return None
        if event.event_id:
            # an audit event is logged once per stage: alert on the first stage only. Per source
            # format: one exec in docker events and the dockerd log is merged later (pipeline/dedupe.py)
            key = (event.source.format, event.event_id, event.target.container or "", lead.rule_id)
            if not self._seen.add(key):
                self.suppressed += 1
                return None
        if view is None and not all(isinstance(h, RuleMatch) for h in hits):
            view = FieldView(event)  # a hit a worker left unexplained (``coded_hits``) is explained here, as there
        return Alert(event, [h if isinstance(h, RuleMatch) else self._explained(h, view) for h in hits])

    def _explained(self, rule: Rule, view: FieldView | None) -> RuleMatch:
        assert view is not None
        return RuleMatch(rule.rule_id, rule.title, rule.severity, list(self._tags[rule.rule_id]), self._reasons.explain(rule, view))

    def run(self, events: Iterable[Event]) -> Iterator[Alert]:
        for event in events:
            correlated: list[Alert] = []
            alert = self.match(event, correlated)
            if alert is not None:
                yield alert
            yield from correlated
