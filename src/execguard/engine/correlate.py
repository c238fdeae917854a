"""Sigma correlation rules evaluated over the event stream.

pySigma parses the rule. ``event_count``/``value_count``: this module keeps, per group-by key, only the
last few matching events (at most the threshold) and fires one alert when the count within the timespan
reaches it, then starts counting afresh: one alert per burst, bounded memory however long the stream.
``temporal``/``temporal_ordered``: chains of different rules' hits (engine/chains.py). A correlation may
reference another correlation (a burst, then an allowed exec). Only what can be decided while streaming is
supported: ``gte``/``gt`` counts; absence (``lt``/``lte``), ``value_sum`` and the like are refused at load
time rather than half-supported.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import yaml
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError

from ..model import Alert, Event, RuleMatch
from .chains import Chains, extras
from .checks import nearest
from .fields import FIELDS, Overlay
from .reason import Lookup, render
from .rule import Correlation, Rule, RuleError, procedure_tags, rule_from

# placeholders a correlation's reason may use besides the event's fields (set in Correlator._count)
PLACEHOLDERS = ("count", "timespan", "first_time", "values", "chain")
TEMPORAL = (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED)
MAX_GROUPS = 50_000  # distinct group keys kept per rule; the least recently seen are dropped


def is_correlation(text: str) -> bool:
    return any(line.startswith("correlation:") for line in text.splitlines())


def compile_correlation(text: str, where: str) -> Rule:
    try:
        data = yaml.safe_load(text)
        parsed = SigmaCorrelationRule.from_dict(data)
    except SigmaError as exc:
        raise RuleError(where, f"invalid Sigma correlation rule: {exc}") from None
    except Exception as exc:
        raise RuleError(where, f"cannot read correlation rule: {exc}") from None
    supported = (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT, *TEMPORAL)
    if parsed.type not in supported:
        names = ", ".join(t.name.lower() for t in supported)
        raise RuleError(where, f"correlation type {parsed.type.name.lower()} is not supported ({names})")
    raw: dict[str, Any] = data["correlation"] if isinstance(data, dict) and isinstance(data.get("correlation"), dict) else {}
    if parsed.type in TEMPORAL:
        return _temporal_rule(parsed, raw, where)
    cond = parsed.condition
    if not isinstance(cond, SigmaCorrelationCondition):
        raise RuleError(where, "extended (boolean) correlation conditions are not supported")
    field_name: str | None = None
    if parsed.type is SigmaCorrelationType.VALUE_COUNT:
        ref = cond.fieldref
        if not isinstance(ref, str) or not ref:
            raise RuleError(where, "value_count needs one condition field")
        field_name = ref
    if cond.op is SigmaCorrelationConditionOperator.GTE:
        threshold = int(cond.count)
    elif cond.op is SigmaCorrelationConditionOperator.GT:
        threshold = int(cond.count) + 1
    else:
        raise RuleError(where, f"correlation condition {cond.op.name.lower()} cannot be decided on a stream (use gte or gt)")
    if threshold < 1:
        raise RuleError(where, "correlation threshold must be at least 1")
    if parsed.timespan is None:
        raise RuleError(where, "correlation needs a timespan")
    group_by = list(parsed.group_by or [])
    unknown = [g for g in [*group_by, *([field_name] if field_name else [])] if g not in FIELDS]
    if unknown:
        raise RuleError(where, f"group-by names unknown fields: {', '.join(unknown)}{nearest(unknown[0], FIELDS)} (see docs/fields.md)")
    corr = Correlation(
        rules=[str(r.reference) for r in parsed.rules or []],
        group_by=group_by,
        seconds=float(parsed.timespan.seconds),
        timespan=parsed.timespan.spec,
        threshold=threshold,
        field=field_name,
    )
    corr.generate = raw.get("generate") is not False
    if not corr.rules:
        raise RuleError(where, "correlation references no rules")
    return _rule(parsed, corr, where)


def _temporal_rule(parsed: SigmaCorrelationRule, raw: dict[str, Any], where: str) -> Rule:
    """temporal / temporal_ordered: every referenced rule must match (a `condition`, if given, must say so)."""
    refs = [str(r.reference) for r in parsed.rules or []]
    if len(refs) < 2:
        raise RuleError(where, "a temporal correlation needs at least two rules")
    cond = parsed.condition
    if "condition" in raw and not (
        isinstance(cond, SigmaCorrelationCondition) and cond.op is SigmaCorrelationConditionOperator.GTE and int(cond.count) == len(refs)
    ):
        raise RuleError(where, f"a temporal condition other than gte: {len(refs)} (all rules) is not supported")
    if parsed.timespan is None:
        raise RuleError(where, "correlation needs a timespan")
    aliases: dict[str, dict[str, str]] = {}
    for name, alias in parsed.aliases.aliases.items():
        aliases[name] = {str(r.reference): str(f) for r, f in alias.mapping.items()}
    group_by = list(parsed.group_by or [])
    used = {f for m in aliases.values() for f in m.values()} | {g for g in group_by if g not in aliases}
    unknown = sorted(f for f in used if f not in FIELDS)
    if unknown:
        raise RuleError(where, f"group-by names unknown fields: {', '.join(unknown)}{nearest(unknown[0], FIELDS)} (see docs/fields.md)")
    corr = Correlation(
        rules=refs,
        group_by=group_by,
        seconds=float(parsed.timespan.seconds),
        timespan=parsed.timespan.spec,
        threshold=len(refs),
        kind=parsed.type.name.lower(),
        aliases=aliases,
        generate=raw.get("generate") is not False,
    )
    rule = _rule(parsed, corr, where)
    rule.fields_used = used
    return rule


def _rule(parsed: SigmaCorrelationRule, corr: Correlation, where: str) -> Rule:
    used = set(corr.group_by) | ({corr.field} if corr.field else set())
    # never matches one event; the Correlator decides. Actions are resolved from the referenced rules.
    return rule_from(parsed, where, lambda f: False, set(), used, correlation=corr)


def resolve(rules: list[Rule]) -> None:
    """Give each correlation rule the actions of the rules it counts, so the prefilter keeps their lines.

    A correlation may count another correlation's alerts: resolved in dependency order, cycles refused.
    """
    by_id = {r.rule_id: r for r in rules}
    done: set[str] = {r.rule_id for r in rules if r.correlation is None}

    def visit(rule: Rule, stack: tuple[str, ...]) -> None:
        if rule.rule_id in done:
            return
        assert rule.correlation is not None
        actions: set[str] | None = set()
        for ref in rule.correlation.rules:
            base = by_id.get(ref)
            if base is None:
                raise RuleError(rule.path, f"correlation references unknown rule {ref}")
            if ref in stack:
                raise RuleError(rule.path, f"correlation references itself through {ref}")
            visit(base, (*stack, ref))
            if base.actions is None or actions is None:
                actions = None
            else:
                actions |= base.actions
        for name, mapping in rule.correlation.aliases.items():
            stray = sorted(set(mapping) - set(rule.correlation.rules))
            if stray:
                raise RuleError(rule.path, f"alias {name} names rules the correlation does not reference: {', '.join(stray)}")
        rule.actions = actions
        done.add(rule.rule_id)

    for rule in rules:
        visit(rule, (rule.rule_id,))


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


@lru_cache(maxsize=256)  # each correlation an event feeds asks again for the same timestamp
def _seconds(time: str | None) -> float | None:
    if not time:
        return None
    try:
        return datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Correlator:
    def __init__(self, rules: list[Rule], max_groups: int = MAX_GROUPS) -> None:
        self.rules = [r for r in rules if r.correlation is not None]
        self.max_groups = max_groups
        self._watch: dict[str, list[Rule]] = {}
        for rule in self.rules:
            assert rule.correlation is not None
            for ref in rule.correlation.rules:
                self._watch.setdefault(ref, []).append(rule)
        # per rule and group key: recent (time, event_id) (event_count) or value -> last time (value_count)
        self._groups: dict[str, OrderedDict[tuple[str, ...], Any]] = {
            r.rule_id: OrderedDict() for r in self.rules
        }
        self._chains = Chains(max_groups)
        self._titles = {r.rule_id: r.title.lower() for r in self.rules}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def feed(self, event: Event, fields: Lookup, hits: list[RuleMatch]) -> Iterator[Alert]:
        """Every correlation alert the event completes, its own chain matches as alerts of their own."""
        folded, alerts = self.step(event, fields, hits)
        yield from (Alert(event, [m]) for m in folded)
        yield from alerts

    def step(self, event: Event, fields: Lookup, hits: list[RuleMatch]) -> tuple[list[RuleMatch], list[Alert]]:
        """(chain matches for this event itself, alerts: counts completed here and earlier chain steps).

        A correlation's own result counts as a hit of it for the correlations that reference it.
        """
        folded: list[RuleMatch] = []
        alerts: list[Alert] = []
        pending = [h.rule_id for h in hits]
        fed: set[tuple[str, str]] = set()
        counted: set[str] = set()
        while pending:
            ref = pending.pop(0)
            for rule in self._watch.get(ref, ()):
                corr = rule.correlation
                assert corr is not None
                if corr.temporal:
                    if (rule.rule_id, ref) in fed:
                        continue
                    fed.add((rule.rule_id, ref))
                    match, earlier = self._chain(rule, corr, ref, event, fields)
                    alerts.extend(earlier)
                    if match is not None and all(m.rule_id != rule.rule_id for m in folded):
                        folded.append(match)
                        pending.append(rule.rule_id)
                    continue
                if rule.rule_id in counted:
                    continue  # an event matching two referenced rules counts once
                counted.add(rule.rule_id)
                alert = self._count(rule, event, fields)
                if alert is not None:
                    alerts.append(alert)
                    pending.append(rule.rule_id)
        return folded, alerts

    def _chain(self, rule: Rule, corr: Correlation, ref: str, event: Event, fields: Lookup) -> tuple[RuleMatch | None, list[Alert]]:
        when = _seconds(event.time)
        if when is None:
            return None, []
        counted = self._titles.get(ref, "")  # a correlation's result: say which, not just its last event
        done = self._chains.add(rule.rule_id, corr, ref, event, when, fields, counted)
        if done is None:
            return None, []
        reason = render(rule.reason or rule.title, Overlay(fields, extras(done, when, corr.timespan)))
        tags = procedure_tags(rule.tags)
        match = RuleMatch(rule.rule_id, rule.title, rule.severity, tags, reason)
        earlier = [
            Alert(s.event, [RuleMatch(rule.rule_id, rule.title, rule.severity, tags, f"an earlier step of this chain: {reason}")])
            for s in done.fresh
        ]
        return match, earlier

    def _count(self, rule: Rule, event: Event, fields: Lookup) -> Alert | None:
        corr = rule.correlation
        assert corr is not None
        when = _seconds(event.time)
        if when is None:
            return None  # no time, no window
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
