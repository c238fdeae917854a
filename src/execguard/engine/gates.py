"""Rule-level gates: a field and literals of which the field must hold one for the rule to match.

A content rule reads `selection and (pipe or sub or ...)`: every branch of the OR needs some literal
in ``command.text`` (``curl``, ``base64``, ...). Their union is a necessary condition for the whole
rule, tested with a few substring checks on the folded text before any closure runs. Most create
and exec events fail it for every content rule, which is where matching time went.

The gate is only ever a necessary condition: where the condition tree gives no certain literal
(a NOT, a field without strings, an alternative without a literal) there is no gate.
"""

from __future__ import annotations

import re
from typing import Any

from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionOR
from sigma.types import SigmaExpansion, SigmaRegularExpression, SigmaRegularExpressionFlag, SigmaString

from .literals import MIN_LEN, fold, required

Gate = tuple[str, frozenset[str]]  # field, folded literals


def rule_gate(node: Any) -> Gate | None:
    gate = _gate(node)
    if gate is None or not gate[1] or min(len(s) for s in gate[1]) < MIN_LEN:
        return None
    return gate


def _gate(node: Any) -> Gate | None:
    if isinstance(node, ConditionAND):
        found = [g for g in (_gate(a) for a in node.args) if g is not None]
        # the gate whose shortest literal is longest tests best
        return max(found, key=lambda g: (min(len(s) for s in g[1]), -len(g[1])), default=None)
    if isinstance(node, ConditionOR):
        subs = [_gate(a) for a in node.args]
        if not subs or any(s is None for s in subs) or len({s[0] for s in subs if s}) != 1:
            return None
        return subs[0][0], frozenset().union(*(s[1] for s in subs if s))  # type: ignore[index]
    if isinstance(node, ConditionFieldEqualsValueExpression) and node.field != "action":
        # the action is dispatched on before any rule runs: a gate on it would never close
        lits = _value_literals(node.value)
        return (node.field, lits) if lits else None
    return None


def _value_literals(value: Any) -> frozenset[str] | None:
    if isinstance(value, SigmaExpansion):
        parts = [_value_literals(v) for v in value.values]
        if not parts or any(p is None for p in parts):
            return None
        return frozenset().union(*parts)  # type: ignore[arg-type]
    if isinstance(value, SigmaRegularExpression):
        pattern = value.regexp.original if hasattr(value.regexp, "original") else str(value.regexp)
        flags = re.IGNORECASE if SigmaRegularExpressionFlag.IGNORECASE in value.flags else 0
        found = required(pattern, flags)
        # folded text is lower-cased: a case-sensitive literal present in the raw text is present lowered
        return frozenset(fold(s) for s in found) if found else None
    if isinstance(value, SigmaString):  # cased too: a piece present as written is present folded
        # the longest wildcard-free piece of the value must appear in the field
        pieces = [str(p) for p in value.s if isinstance(p, str)]
        best = max(pieces, key=len, default="")
        return frozenset({fold(best)}) if best else None
    return None
