"""The closing summary on stderr: the rules that fired most and the actors behind most alerts."""

from __future__ import annotations

from collections import Counter

from ..model import Alert
from .table import clean

DISTINCT = 10_000  # distinct rules or actors counted by name; the rest go under "(others)"
OTHERS = "(others)"


def actor_of(alert: Alert) -> str:
    actor = alert.event.actor
    who = actor.user or "(no identity)"
    return f"{who} as {actor.impersonated_user}" if actor.impersonated_user else who


class Summary:
    def __init__(self, top: int = 5) -> None:
        self.top = top
        self.by_rule: Counter[str] = Counter()
        self.by_actor: Counter[str] = Counter()

    def add(self, alert: Alert) -> None:
        _count(self.by_rule, alert.lead.rule_id)
        _count(self.by_actor, actor_of(alert))

    def lines(self) -> list[str]:
        if self.top <= 0 or not self.by_rule:
            return []
        return [_line("by rule", self.by_rule, self.top, "rules"), _line("by actor", self.by_actor, self.top, "actors")]


def _count(counter: Counter[str], key: str) -> None:
    if key not in counter and len(counter) >= DISTINCT:
        key = OTHERS
    counter[key] += 1


def _line(label: str, counter: Counter[str], top: int, noun: str) -> str:
    shown = counter.most_common(top)
    rest = len(counter) - len(shown)
    text = ", ".join(f"{clean(name[:200])} {n}" for name, n in shown)
    return f"{label}: {text}" + (f" (+{rest} more {noun})" if rest else "")
