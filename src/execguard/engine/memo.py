"""Decide a list of rules for an event, once per distinct tuple of the values the rules read.

Commands repeat heavily (CI runners exec the same few commands all day), so the stateless part of
matching, which rules an event satisfies, is remembered, keyed on the values of the fields the
rules read (engine/fields.py BASIS: the argv stands for every command.* field). Only ``hits`` use
this: correlations and chains keep state and run on every event.

Two levels: one key over every field of every candidate rule (one lookup when the event repeats
an earlier one), then on a miss one key per group of rules that read the same fields, so a rule
reading a pod name does not make the others decide afresh. A group whose keys rarely repeat stops
remembering. Memory is bounded: a memo is emptied when full.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from operator import attrgetter
from typing import Any

from ..model import Event
from .fields import ATTRS, BASIS, BASIS_GROUP, LISTS, FieldView
from .reason import reads
from .rule import Rule

LIMIT = 4096  # entries per memo (keys share the event's strings: a few hundred bytes each)
TRIAL = 4096  # lookups before a memo's hit rate is judged
MIN_HITS = 0.25  # below this share of repeats a memo is switched off

Decision = tuple[bool, ...]


def _keyer(names: tuple[str, ...]) -> Callable[[Event], Hashable]:
    """A function giving an event's key for these basis names: one attrgetter, then the rest."""
    attrs = [n for n in names if n in ATTRS]
    rest = [BASIS[n] for n in names if n not in ATTRS]
    lists = [i for i, n in enumerate(attrs) if n in LISTS]
    get: Callable[[Event], Any] = attrgetter(*[ATTRS[n] for n in attrs]) if attrs else (lambda e: ())
    single = len(attrs) == 1

    def key(e: Event) -> Hashable:
        got = get(e)
        values = [got] if single else list(got)
        for i in lists:
            values[i] = tuple(values[i])
        for b in rest:
            values.append(b(e))
        return tuple(values)

    return key


class Memo:
    __slots__ = ("hits", "key", "lookups", "memo", "on")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.key = _keyer(names)
        self.memo: dict[Hashable, Any] = {}
        self.on = True
        self.lookups = 0
        self.hits = 0

    def get(self, event: Event) -> tuple[Hashable, Any]:
        """The event's key and what is remembered for it (None: nothing, or not remembering)."""
        if not self.on:
            return None, None
        try:
            key = self.key(event)
            got = self.memo.get(key)
        except TypeError:  # a value that cannot be a key (a dict in a list): decide afresh
            return None, None
        self.lookups += 1
        if got is not None:
            self.hits += 1
        return key, got

    def put(self, key: Hashable, value: Any) -> None:
        if key is None or not self.on:
            return
        if len(self.memo) >= LIMIT:
            self.memo.clear()
        self.memo[key] = value
        if self.lookups >= TRIAL and self.hits < self.lookups * MIN_HITS:
            self.on = False
            self.memo.clear()


class _Group:
    __slots__ = ("memo", "positions", "rules")

    def __init__(self, names: tuple[str, ...], positions: list[int], rules: list[Rule]) -> None:
        self.memo = Memo(names)
        self.positions = positions
        self.rules = rules

    def decide(self, event: Event, view: FieldView) -> Decision:
        key, got = self.memo.get(event)
        if got is None:
            got = tuple(r.matcher(view) for r in self.rules)
            self.memo.put(key, got)
        return got


def _names(rule: Rule) -> set[str]:
    return {BASIS_GROUP[n] for n in (rule.reads or rule.fields_used) if n in BASIS_GROUP}


class Decider:
    """The rules of ``candidates`` (in their order) an event matches."""

    def __init__(self, candidates: list[Rule]) -> None:
        self.candidates = candidates
        by_basis: dict[tuple[str, ...], list[int]] = {}
        for i, rule in enumerate(candidates):
            by_basis.setdefault(tuple(sorted(_names(rule))), []).append(i)
        self.groups = [_Group(names, pos, [candidates[i] for i in pos]) for names, pos in by_basis.items()]
        self.whole = Memo(tuple(sorted(set().union(*by_basis)))) if len(self.groups) > 1 else None

    def matches(self, event: Event, view: FieldView) -> list[Rule]:
        if self.whole is None:
            g = self.groups[0]
            return [r for r, ok in zip(g.rules, g.decide(event, view), strict=True) if ok]
        key, got = self.whole.get(event)
        if got is not None:
            return got
        matched = [False] * len(self.candidates)
        for g in self.groups:
            for i, ok in zip(g.positions, g.decide(event, view), strict=True):
                matched[i] = ok
        rules = [r for r, ok in zip(self.candidates, matched, strict=True) if ok]
        self.whole.put(key, rules)
        return rules


class Reasons:
    """A rule's reason for an event, remembered per distinct values of the fields its template reads."""

    def __init__(self, rules: list[Rule]) -> None:
        self._memos: dict[str, Memo | None] = {}
        for rule in rules:
            names = reads(rule.reason or rule.title)
            self._memos[rule.rule_id] = None if names is None else Memo(tuple(sorted({BASIS_GROUP[n] for n in names})))

    def explain(self, rule: Rule, view: FieldView) -> str:
        memo = self._memos.get(rule.rule_id)
        if memo is None:
            return rule.explain(view)
        key, got = memo.get(view.event)
        if got is None:
            got = rule.explain(view)
            memo.put(key, got)
        return got
