"""The closures a compiled rule runs on an event's FieldView, built from plain values.

engine/compile.py reads pySigma's parse and calls these; the closures live here, in a module that never
imports pySigma, because the rule cache (pipeline/rules.py) stores them as code whose globals are this
module: a hunt with cached rules imports this, not the Sigma parser.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from .fields import FieldView, scalar
from .literals import fold
from .reason import fields_empty

Matcher = Callable[[FieldView], bool]
Fields = FieldView


def folded(name: str, fragments: list[str]) -> Matcher:
    """One regex for a list of case-insensitive values of one field (Sigma's OR of values)."""
    rx = re.compile("|".join(f"(?:{f})" for f in fragments), re.DOTALL)
    search = rx.search

    def folded(f: Fields) -> bool:
        for s in f.lowered(name):  # noqa: SIM110 - a loop, not any(): no generator per call
            if search(s) is not None:
                return True
        return False

    return folded


def equals(want: str) -> Callable[[str], bool]:
    return lambda s: s == want


def full_match(compiled: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda s: compiled.fullmatch(s) is not None


def cased(name: str, test: Callable[[str], bool]) -> Matcher:
    return lambda f: any(test(v if isinstance(v, str) else scalar(v)) for v in f.values_of(name))


def number(value: Any) -> float | None:
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


def is_null(name: str) -> Matcher:
    return lambda f: fields_empty(f.get(name))


def exists(name: str, want: bool) -> Matcher:
    return lambda f: (not fields_empty(f.get(name))) is want


def is_bool(name: str, b: bool) -> Matcher:
    return lambda f: any(v is b for v in f.values_of(name))


def equals_number(name: str, n: float) -> Matcher:
    return lambda f: any(number(v) == n for v in f.values_of(name))


def compare(name: str, op: str, n: float) -> Matcher:
    def cmp(f: Fields) -> bool:
        for v in f.values_of(name):
            x = number(v)
            if x is not None and _compare(op, x, n):
                return True
        return False

    return cmp


def in_network(name: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Matcher:
    def in_net(f: Fields) -> bool:
        for v in f.values_of(name):
            try:
                if ipaddress.ip_address(str(v)) in net:
                    return True
            except ValueError:
                continue
        return False

    return in_net


def regex(name: str, search: Callable[[str], Any]) -> Matcher:
    def regex(f: Fields) -> bool:
        value = f.get(name)
        if value.__class__ is str:  # the common case: one string, no list to build
            return search(value) is not None
        for v in f.values_of(name):  # noqa: SIM110 - a loop, not any(): no generator per call
            if not isinstance(v, bool) and search(str(v)) is not None:
                return True
        return False

    return regex


def gated(name: str, search: Callable[[str], Any], gate: tuple[str, ...], icase: bool) -> Matcher:
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


def gate_rule(gate: tuple[str, frozenset[str]], inner: Matcher) -> Matcher:
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


def negate(sub: Matcher) -> Matcher:
    return lambda f: not sub(f)


# Rules run on every candidate event: plain closures for two or three operands avoid building
# a generator per call, which was most of the matching time.
def all_of(subs: list[Matcher]) -> Matcher:
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


def any_of(subs: list[Matcher]) -> Matcher:
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


def any_matcher(subs: list[Matcher]) -> Matcher:
    """Several conditions of one rule, or a keyword over the keyword fields: any one holds."""
    return lambda f: any(m(f) for m in subs)


def never(f: Fields) -> bool:
    """A correlation rule's matcher: it never matches one event (engine/correlate.py decides)."""
    return False
