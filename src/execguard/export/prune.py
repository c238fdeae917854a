"""A narrower rule from one that cannot be exported whole: the alternatives (OR branches) that cannot be said in
the target are left out, and named in a note.

`selection and (names or protocol or pools)` with `names` a regular expression over the decoded argv becomes
`selection and (protocol or pools)`: it finds fewer events than execguard, never more. A detection that cannot
be exported anywhere else (under AND, or under NOT, where leaving it out would widen the query) keeps the rule
unexportable.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

TOKEN = re.compile(r"\s*(\(|\)|\b(?:1|all|any) of [\w*]+|\w[\w*]*|\S)")


@dataclass
class Node:
    op: str  # "id", "and", "or", "not"
    name: str = ""
    args: tuple[Node, ...] = ()


class ConditionError(ValueError):
    pass


def parse(condition: str, names: list[str]) -> Node:
    """Sigma's condition grammar (not > and > or; `1 of x*`, `all of them`) over the rule's detection names."""
    tokens = [t for t in TOKEN.findall(condition) if t.strip()]
    pos = 0

    def peek() -> str:
        return tokens[pos] if pos < len(tokens) else ""

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1] if pos <= len(tokens) else ""

    def expr() -> Node:
        parts = [term()]
        while peek() == "or":
            take()
            parts.append(term())
        return parts[0] if len(parts) == 1 else Node("or", args=tuple(parts))

    def term() -> Node:
        parts = [factor()]
        while peek() == "and":
            take()
            parts.append(factor())
        return parts[0] if len(parts) == 1 else Node("and", args=tuple(parts))

    def factor() -> Node:
        tok = take()
        if tok == "not":
            return Node("not", args=(factor(),))
        if tok == "(":
            inner = expr()
            if take() != ")":
                raise ConditionError(f"unbalanced parentheses in {condition!r}")
            return inner
        if " of " in tok:
            quantifier, pattern = tok.split(" of ")
            chosen = [n for n in names if pattern == "them" or fnmatch.fnmatchcase(n, pattern)]
            if not chosen:
                raise ConditionError(f"{tok!r} names no detection")
            return Node("and" if quantifier == "all" else "or", args=tuple(Node("id", n) for n in chosen))
        if tok in names:
            return Node("id", tok)
        raise ConditionError(f"unexpected {tok!r} in {condition!r}")

    tree = expr()
    if pos != len(tokens):
        raise ConditionError(f"unexpected {tokens[pos]!r} in {condition!r}")
    return tree


def prune(node: Node, bad: set[str]) -> Node | None:
    """The node without its OR alternatives that use a bad detection; None when that cannot be done safely."""
    if node.op == "id":
        return None if node.name in bad else node
    if node.op == "not":  # leaving something out under a negation would widen the query
        return None if uses(node, bad) else node
    kept = [prune(a, bad) for a in node.args]
    if node.op == "and":
        return None if any(k is None for k in kept) else Node("and", args=tuple(k for k in kept if k is not None))
    alive = tuple(k for k in kept if k is not None)
    return None if not alive else alive[0] if len(alive) == 1 else Node("or", args=alive)


def uses(node: Node, names: set[str]) -> bool:
    return node.name in names if node.op == "id" else any(uses(a, names) for a in node.args)


def identifiers(node: Node) -> set[str]:
    return {node.name} if node.op == "id" else {n for a in node.args for n in identifiers(a)}


def text(node: Node) -> str:
    if node.op == "id":
        return node.name
    if node.op == "not":
        return f"not {_wrapped(node.args[0])}"
    return f" {node.op} ".join(_wrapped(a) for a in node.args)


def _wrapped(node: Node) -> str:
    return text(node) if node.op in ("id", "not") else f"({text(node)})"
