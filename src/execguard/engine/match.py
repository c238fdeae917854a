"""Run compiled rules over events; one Alert per event, later audit stages of it folded in."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator

from ..model import Alert, Event, RuleMatch, severity_rank
from .sigma import Rule, procedure_tags

SEEN_LIMIT = 200_000


class Engine:
    def __init__(self, rules: list[Rule], min_severity: str = "info") -> None:
        self.rules = rules
        self.min_rank = severity_rank(min_severity)
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self.suppressed = 0
        by_action: dict[str, list[Rule]] = {}
        self._any_action = [r for r in rules if r.actions is None]
        for rule in rules:
            for action in rule.actions or ():
                by_action.setdefault(action, []).append(rule)
        self._by_action = by_action

    def actions(self) -> set[str] | None:
        """Every action some rule can fire on; None when a rule accepts any action."""
        if self._any_action:
            return None
        return set(self._by_action)

    def match(self, event: Event) -> Alert | None:
        candidates = self._by_action.get(event.action, []) + self._any_action
        if not candidates:
            return None
        fields = event.fields()
        hits = [
            RuleMatch(r.rule_id, r.title, r.severity, procedure_tags(r.tags), r.explain(fields))
            for r in candidates
            if r.matcher(fields)
        ]
        if not hits:
            return None
        alert = Alert(event, hits)
        if severity_rank(alert.severity) < self.min_rank:
            return None
        if event.event_id:
            # an audit event is logged once per stage: alert on the first stage only
            key = (event.event_id, event.target.container or "", alert.lead.rule_id)
            if key in self._seen:
                self.suppressed += 1
                return None
            self._seen[key] = None
            if len(self._seen) > SEEN_LIMIT:
                self._seen.popitem(last=False)
        return alert

    def run(self, events: Iterable[Event]) -> Iterator[Alert]:
        for event in events:
            alert = self.match(event)
            if alert is not None:
                yield alert
