"""Compile a parsed Sigma detection into a Python matcher over an event's FieldView.

pySigma does the parsing and modifier handling (contains, all, re, cidr, ...); this module is
a small backend whose "query" is a closure. Unsupported constructs fail at load time.
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

from .fields import FieldView, scalar
from .gates import Gate, rule_gate
from .literals import fold, required
from .reason import fields_empty
from .rule import Matcher, Rule, RuleError, rule_from

Fields = FieldView
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
        want = "".join(str(p) for p in parts)
        return lambda s: s == want
    regex = "".join(
        ".*" if p is SpecialChars.WILDCARD_MULTI else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(str(p))
        for p in parts
    )
    compiled = re.compile(regex, re.DOTALL)
    return lambda s: compiled.fullmatch(s) is not None


def _folded_matcher(name: str, fragments: list[str]) -> Matcher:
    """One regex for a list of case-insensitive values of one field (Sigma's OR of values)."""
    rx = re.compile("|".join(f"(?:{f})" for f in fragments), re.DOTALL)
    search = rx.search

    def folded(f: Fields) -> bool:
        for s in f.lowered(name):  # noqa: SIM110 - a loop, not any(): no generator per call
            if search(s) is not None:
                return True
        return False

    return folded


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


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _compare(op: str, a: float, b: float) -> bool:
    return {"LT": a < b, "LTE": a <= b, "GT": a > b, "GTE": a >= b}[op]


def _field_matcher(name: str, value: Any, where: str) -> Matcher:
    if isinstance(value, SigmaExpansion):
        subs = [_field_matcher(name, v, where) for v in value.values]
        return lambda f: any(m(f) for m in subs)
    if isinstance(value, SigmaNull):
        return lambda f: fields_empty(f.get(name))
    if isinstance(value, SigmaExists):
        want = value.exists
        return lambda f: (not fields_empty(f.get(name))) is want
    if isinstance(value, SigmaBool):
        b = value.boolean
        return lambda f: any(v is b for v in f.values_of(name))
    if isinstance(value, SigmaNumber):
        n = float(value.number)
        return lambda f: any(_number(v) == n for v in f.values_of(name))
    if isinstance(value, SigmaCompareExpression):
        op = value.op.name
        n = float(value.number.number)

        def cmp(f: Fields) -> bool:
            for v in f.values_of(name):
                x = _number(v)
                if x is not None and _compare(op, x, n):
                    return True
            return False

        return cmp
    if isinstance(value, SigmaCIDRExpression):
        net = ipaddress.ip_network(value.cidr, strict=False)

        def in_net(f: Fields) -> bool:
            for v in f.values_of(name):
                try:
                    if ipaddress.ip_address(str(v)) in net:
                        return True
                except ValueError:
                    continue
            return False

        return in_net
    if isinstance(value, SigmaRegularExpression):
        try:
            rx = _regex(value)
        except re.error as exc:
            raise RuleError(where, f"field {name}: invalid regular expression: {exc}") from None
        search = rx.search
        gate = required(rx.pattern, rx.flags)
        if gate is not None:
            return _gated(name, search, tuple(gate), bool(rx.flags & re.IGNORECASE))

        def regex(f: Fields) -> bool:
            value = f.get(name)
            if value.__class__ is str:  # the common case: one string, no list to build
                return search(value) is not None
            for v in f.values_of(name):  # noqa: SIM110 - a loop, not any(): no generator per call
                if not isinstance(v, bool) and search(str(v)) is not None:
                    return True
            return False

        return regex
    if isinstance(value, SigmaCasedString):
        test = _cased_pattern(value)
        return lambda f: any(test(v if isinstance(v, str) else scalar(v)) for v in f.values_of(name))
    if isinstance(value, SigmaString):
        return _folded_matcher(name, [_fragment(value)])
    raise RuleError(where, f"unsupported value {type(value).__name__} for field {name}")


def _gated(name: str, search: Callable[[str], Any], gate: tuple[str, ...], icase: bool) -> Matcher:
    """A regex that runs only on values holding one of the literals it cannot match without."""

    def gated(f: Fields) -> bool:
        raws = f.texts(name)
        for text, raw in zip(f.folded(name, fold) if icase else raws, raws, strict=True):
            for lit in gate:
                if lit in text:
                    if search(raw) is not None:
                        return True
                    break
        return False

    return gated


def _gate_rule(gate: Gate, inner: Matcher) -> Matcher:
    """Run the rule only on events whose field holds one of the literals it cannot match without."""
    name, found = gate
    lits = tuple(sorted(found, key=len, reverse=True))

    def gated(f: Fields) -> bool:
        for text in f.gate_texts(name, fold):
            for lit in lits:
                if lit in text:
                    return inner(f)
        return False

    return gated


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
    return _folded_matcher(name, [_fragment(v) for v in strings])


def _compile(node: Any, where: str, used: set[str]) -> Matcher:
    if isinstance(node, ConditionAND):
        return _all([_compile(a, where, used) for a in node.args])
    if isinstance(node, ConditionOR):
        merged = _merge_or(node, used)
        if merged is not None:
            return merged
        return _any([_compile(a, where, used) for a in node.args])
    if isinstance(node, ConditionNOT):
        sub = _compile(node.args[0], where, used)
        return lambda f: not sub(f)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        used.add(node.field)
        return _field_matcher(node.field, node.value, where)
    if isinstance(node, ConditionValueExpression):
        subs = [_field_matcher(k, node.value, where) for k in KEYWORD_FIELDS]
        return lambda f: any(m(f) for m in subs)
    raise RuleError(where, f"unsupported condition {type(node).__name__}")


# Rules run on every candidate event: plain closures for two or three operands avoid building
# a generator per call, which was most of the matching time.
def _all(subs: list[Matcher]) -> Matcher:
    if len(subs) == 1:
        return subs[0]
    if len(subs) == 2:
        a, b = subs
        return lambda f: a(f) and b(f)
    if len(subs) == 3:
        a, b, c = subs
        return lambda f: a(f) and b(f) and c(f)

    def every(f: Fields) -> bool:
        for m in subs:  # noqa: SIM110 - a loop, not any(): no generator per call
            if not m(f):
                return False
        return True

    return every


def _any(subs: list[Matcher]) -> Matcher:
    if len(subs) == 1:
        return subs[0]
    if len(subs) == 2:
        a, b = subs
        return lambda f: a(f) or b(f)
    if len(subs) == 3:
        a, b, c = subs
        return lambda f: a(f) or b(f) or c(f)

    def some(f: Fields) -> bool:
        for m in subs:  # noqa: SIM110 - a loop, not any(): no generator per call
            if m(f):
                return True
        return False

    return some


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
        matchers = [_gate_rule(gate, matchers[0])]
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
        (lambda f: any(m(f) for m in matchers)) if len(matchers) > 1 else matchers[0],
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
