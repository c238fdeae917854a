"""A compiled rule: what it is called, how severe, what it matches and how it explains a match."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .fields import FieldView
from .reason import Lookup, render

Matcher = Callable[[FieldView], bool]

LEVELS = {"informational": "info", "info": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
PROCEDURES = {
    "s0601": "S0601 Hildegard",
    "s0599": "S0599 Kinsing",
    "s0683": "S0683 Peirates",
    "s0623": "S0623 Siloscape",
    "g0139": "G0139 TeamTNT",
}


class Hit(Protocol):
    """A rule an event matched, as correlation and the engine's decision read it: a RuleMatch, or the Rule
    itself while its reason is not rendered yet (engine/match.py renders it only for an alert written)."""

    rule_id: str
    severity: str


class RuleError(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


@dataclass
class Rule:
    rule_id: str  # the Sigma `name`, or its id
    sigma_id: str
    title: str
    severity: str
    tags: list[str]
    description: str
    reason: str
    matcher: Matcher
    actions: set[str] | None  # actions the rule can fire on; None = any
    path: str = ""
    fields_used: set[str] = field(default_factory=set)  # the fields the detection names
    correlation: Correlation | None = None  # set for Sigma correlation rules (engine/correlate.py)
    # every field the matcher reads: fields_used, and the keyword fields for bare keywords
    reads: set[str] = field(default_factory=set)

    def explain(self, fields: Lookup) -> str:
        return render(self.reason or self.title, fields)



@dataclass
class Correlation:
    """A correlation rule's settings (engine/correlate.py counts and chains with them)."""

    rules: list[str]  # referenced rule ids (Sigma `name`s)
    group_by: list[str]
    seconds: float
    timespan: str
    threshold: int  # events (event_count) or distinct values (value_count) needed within the timespan
    field: str | None = None  # value_count: the field whose distinct values are counted
    kind: str = "event_count"  # event_count | value_count | temporal | temporal_ordered
    aliases: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)  # group-by alias -> rule id -> field
    generate: bool = True  # false only when the rule says `generate: false`: its rules' hits are not alerts

    @property
    def temporal(self) -> bool:
        return self.kind.startswith("temporal")

    @property
    def ordered(self) -> bool:
        return self.kind == "temporal_ordered"

    def key(self, fields: Lookup) -> tuple[str, ...]:
        out = []
        for name in self.group_by:
            value = fields.get(name)
            out.append(",".join(map(str, value)) if isinstance(value, list) else "" if value is None else str(value))
        return tuple(out)


def rule_from(parsed: Any, where: str, matcher: Matcher, actions: set[str] | None, used: set[str], **more: Any) -> Rule:
    """A Rule from a parsed pySigma rule or correlation rule: the metadata both kinds share."""
    level = LEVELS.get(str(parsed.level.name).lower() if parsed.level else "", "medium")
    return Rule(
        rule_id=parsed.name or str(parsed.id),
        sigma_id=str(parsed.id) if parsed.id else "",
        title=parsed.title,
        severity=level,
        tags=[f"{t.namespace}.{t.name}".lower() for t in parsed.tags],
        description=parsed.description or "",
        reason=str(parsed.custom_attributes.get("reason", "")),
        matcher=matcher,
        actions=actions,
        path=where,
        fields_used=used,
        **more,
    )


def procedure_tags(tags: Iterable[str]) -> list[str]:
    out = []
    for tag in tags:
        key = tag.split(".", 1)[-1]
        if key == "t1609":
            out.append("T1609")
        elif key in PROCEDURES:
            out.append(PROCEDURES[key])
    return out
