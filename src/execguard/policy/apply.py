"""A policy applied to a stream of alerts, with the tallies hunt's summary reports.

Order per alert: severity overrides, then the --min-severity floor (so a raised rule can clear
it and a lowered one drop under it), then allow/suppress. Suppressed alerts below the floor are
not counted: they would not have been shown anyway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from fnmatch import fnmatchcase

from ..model import Alert, severity_rank
from .match import PolicyMatcher
from .model import Entry, Policy


class PolicyFilter:
    def __init__(self, policy: Policy, min_severity: str = "info", show_suppressed: bool = False, now: datetime | None = None) -> None:
        self.matcher = PolicyMatcher(policy, now)
        self.policy = policy
        self.floor = severity_rank(min_severity)
        self.show_suppressed = show_suppressed
        self.suppressed: Counter[str] = Counter()  # entry name -> alerts it suppressed
        self.hidden: Counter[str] = Counter()  # entry name -> hits it hid from alerts that still fired
        self.rerated = 0  # reported alerts whose levels a severity entry changed

    def __call__(self, alert: Alert) -> Alert | None:
        """The alert to report (marked when suppressed and shown), or None."""
        verdict = self.matcher.apply(alert)
        out = verdict.alert
        if severity_rank(out.severity) < self.floor:
            return None
        by = verdict.suppressed_by
        if by is None:
            self.rerated += verdict.rerated
            for _, entry in verdict.hidden:
                self.hidden[entry.name] += 1
            return out
        self.suppressed[by.name] += 1
        if not self.show_suppressed:
            return None
        out.suppressed = f"{by.name}: {by.reason}"
        return out

    def filter(self, alerts: Iterable[Alert]) -> Iterator[Alert]:
        for alert in alerts:
            out = self(alert)
            if out is not None:
                yield out

    def expired(self) -> list[Entry]:
        return self.policy.expired(self.matcher.now)

    def summary(self) -> str:
        total = sum(self.suppressed.values())
        parts = [f"policy {self.policy.file}: {total} alerts suppressed"]
        if total:
            parts[0] += " (" + ", ".join(f"{n} by {name}" for name, n in self.suppressed.most_common()) + ")"
        if self.hidden:
            parts.append(f"{sum(self.hidden.values())} rule hits hidden from alerts still reported")
        if self.rerated:
            parts.append(f"{self.rerated} alerts re-rated")
        return "; ".join(parts)


def unknown_rules(policy: Policy, rule_ids: Iterable[str]) -> list[tuple[Entry, str]]:
    """Entries' rule globs that match none of the loaded rules: a typo, or a rule not loaded."""
    ids = list(rule_ids)
    return [(e, g) for e in policy.entries for g in e.scope.rules if not any(fnmatchcase(i, g) for i in ids)]
