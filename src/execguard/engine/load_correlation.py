"""Sigma correlation rules read into Rules: pySigma parses them, this module checks what a stream can decide.

Only loading imports pySigma (engine/correlate.py evaluates the rules and never does), so a hunt whose
compiled rules come from the cache starts without it.
"""

from __future__ import annotations

from typing import Any

import yaml
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)

from .checks import nearest
from .fields import FIELDS
from .matchers import never
from .rule import Correlation, Rule, RuleError, rule_from

# placeholders a correlation's reason may use besides the event's fields (set in Correlator._count)
PLACEHOLDERS = ("count", "timespan", "first_time", "values", "chain")
TEMPORAL = (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED)


def raw_settings(text: str, parsed: SigmaCorrelationRule) -> dict[str, Any]:
    """The ``correlation:`` mapping as written for ``parsed`` (a file may hold several documents): pySigma
    reads an absent ``generate`` as false, where this engine's default is true, so absence must be seen."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and isinstance(d.get("correlation"), dict)]
    except yaml.YAMLError:
        return {}
    for doc in docs:
        if len(docs) == 1 or doc.get("name") == parsed.name or str(doc.get("id")) == str(parsed.id):
            return dict(doc["correlation"])
    return {}


def compile_correlation(parsed: SigmaCorrelationRule, raw: dict[str, Any], where: str) -> Rule:
    """A correlation rule parsed by pySigma (``raw``: its ``correlation:`` mapping as written)."""
    supported = (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT, *TEMPORAL)
    if parsed.type not in supported:
        names = ", ".join(t.name.lower() for t in supported)
        raise RuleError(where, f"correlation type {parsed.type.name.lower()} is not supported ({names})")
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
    return rule_from(parsed, where, never, set(), used, correlation=corr)


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
