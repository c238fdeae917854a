"""Compile a parsed Sigma detection into a Python matcher over an event's FieldView.

pySigma does the parsing and modifier handling (contains, all, re, cidr, ...); this module is
a small backend whose "query" is a closure built by engine/matchers.py (kept apart so that cached
rules load without pySigma). Unsupported constructs fail at load time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from . import matchers as m
from .gates import rule_gate
from .literals import required
from .rule import Matcher, Rule, RuleError, rule_from

KEYWORD_FIELDS = ("command.text", "request_uri", "actor.user_agent")


def _fragment(value: SigmaString) -> str:
    """A case-folded Sigma string as a regex over lower-case text (wildcards become .* and .)."""
    parts = list(value.s)
    multi, single = SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE
    head = "" if parts and parts[0] is multi else r"\A"
    tail = "" if parts and parts[-1] is multi else r"\Z"
    while parts and parts[0] is multi:
        parts.pop(0)
    while parts and parts[-1] is multi:
        parts.pop()
    body = "".join(".*" if p is multi else "." if p is single else re.escape(str(p).lower()) for p in parts)
    return head + body + tail


def _cased_pattern(value: SigmaString) -> Callable[[str], bool]:
    parts = value.s
    if all(isinstance(p, str) for p in parts):
        return m.equals("".join(str(p) for p in parts))
    regex = "".join(
        ".*" if p is SpecialChars.WILDCARD_MULTI else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(str(p))
        for p in parts
    )
    return m.full_match(re.compile(regex, re.DOTALL))


def _regex(value: SigmaRegularExpression) -> re.Pattern[str]:
    flags = 0
    for flag in value.flags:
        if flag is SigmaRegularExpressionFlag.IGNORECASE:
            flags |= re.IGNORECASE
        elif flag is SigmaRegularExpressionFlag.MULTILINE:
            flags |= re.MULTILINE
        elif flag is SigmaRegularExpressionFlag.DOTALL:
            flags |= re.DOTALL
    return re.compile(value.regexp.original if hasattr(value.regexp, "original") else str(value.regexp), flags)


def _field_matcher(name: str, value: Any, where: str) -> Matcher:
    if isinstance(value, SigmaExpansion):
        return m.any_matcher([_field_matcher(name, v, where) for v in value.values])
    if isinstance(value, SigmaNull):
        return m.is_null(name)
    if isinstance(value, SigmaExists):
        return m.exists(name, value.exists)
    if isinstance(value, SigmaBool):
        return m.is_bool(name, value.boolean)
    if isinstance(value, SigmaNumber):
        return m.equals_number(name, float(value.number))
    if isinstance(value, SigmaCompareExpression):
        return m.compare(name, value.op.name, float(value.number.number))
    if isinstance(value, SigmaCIDRExpression):
        return m.in_network(name, ipaddress.ip_network(value.cidr, strict=False))
    if isinstance(value, SigmaRegularExpression):
        try:
            rx = _regex(value)
        except re.error as exc:
            raise RuleError(where, f"field {name}: invalid regular expression: {exc}") from None
        gate = required(rx.pattern, rx.flags)
        if gate is not None:
            return m.gated(name, rx.search, tuple(gate), bool(rx.flags & re.IGNORECASE))
        return m.regex(name, rx.search)
    if isinstance(value, SigmaCasedString):
        return m.cased(name, _cased_pattern(value))
    if isinstance(value, SigmaString):
        return m.folded(name, [_fragment(value)])
    raise RuleError(where, f"unsupported value {type(value).__name__} for field {name}")


def _merge_or(node: ConditionOR, used: set[str]) -> Matcher | None:
    """`field|contains: [a, b, c]` parses to an OR of one field: match it with one regex."""
    args = [a for a in node.args if isinstance(a, ConditionFieldEqualsValueExpression)]
    if not args or len(args) != len(node.args):
        return None
    names = {a.field for a in args}
    values = [a.value for a in args]
    strings = [v for v in values if isinstance(v, SigmaString) and not isinstance(v, SigmaCasedString)]
    if len(names) != 1 or len(strings) != len(values):
        return None
    name = names.pop()
    used.add(name)
    return m.folded(name, [_fragment(v) for v in strings])


def _compile(node: Any, where: str, used: set[str]) -> Matcher:
    if isinstance(node, ConditionAND):
        return m.all_of([_compile(a, where, used) for a in node.args])
    if isinstance(node, ConditionOR):
        merged = _merge_or(node, used)
        if merged is not None:
            return merged
        return m.any_of([_compile(a, where, used) for a in node.args])
    if isinstance(node, ConditionNOT):
        return m.negate(_compile(node.args[0], where, used))
    if isinstance(node, ConditionFieldEqualsValueExpression):
        used.add(node.field)
        return _field_matcher(node.field, node.value, where)
    if isinstance(node, ConditionValueExpression):
        return m.any_matcher([_field_matcher(k, node.value, where) for k in KEYWORD_FIELDS])
    raise RuleError(where, f"unsupported condition {type(node).__name__}")


def required_actions(node: Any) -> set[str] | None:
    """Actions an event must have for the condition to hold; None when unconstrained."""
    if isinstance(node, ConditionAND):
        found = [r for r in (required_actions(a) for a in node.args) if r is not None]
        if not found:
            return None
        out = found[0]
        for r in found[1:]:
            out = out & r
        return out
    if isinstance(node, ConditionOR):
        subs = [required_actions(a) for a in node.args]
        if any(s is None for s in subs):
            return None
        return set().union(*subs)  # type: ignore[arg-type]
    if isinstance(node, ConditionFieldEqualsValueExpression) and node.field == "action":
        value = node.value
        if isinstance(value, SigmaString) and all(isinstance(p, str) for p in value.s):
            return {"".join(value.s).lower()}  # type: ignore[arg-type]
        if isinstance(value, SigmaExpansion):
            return required_actions(ConditionOR(args=[ConditionFieldEqualsValueExpression(field="action", value=v) for v in value.values]))
    return None


def compile_rule(rule: SigmaRule, path: str = "") -> Rule:
    where = path or str(rule.title)
    if rule.detection is None:
        raise RuleError(where, "no detection")
    conditions = rule.detection.parsed_condition
    used: set[str] = set()
    trees = [c.parse() for c in conditions]
    matchers = [_compile(t, where, used) for t in trees]
    gate = rule_gate(trees[0]) if len(trees) == 1 else None
    if gate is not None:
        matchers = [m.gate_rule(gate, matchers[0])]
    actions: set[str] | None = set()
    for t in trees:
        req = required_actions(t)
        if req is None or actions is None:
            actions = None
        else:
            actions |= req
    return rule_from(
        rule,
        path,
        m.any_matcher(matchers) if len(matchers) > 1 else matchers[0],
        actions,
        used,
        reads=used | (set(KEYWORD_FIELDS) if _has_keywords(trees) else set()),
    )


def _has_keywords(nodes: list[Any]) -> bool:
    """Whether a condition tree holds a bare keyword, which the matcher looks for in KEYWORD_FIELDS."""
    for node in nodes:
        if isinstance(node, ConditionValueExpression):
            return True
        if isinstance(node, (ConditionAND, ConditionOR, ConditionNOT)) and _has_keywords(list(node.args)):
            return True
    return False
