"""Decide a list of rules for an event, once per distinct tuple of the values the rules read.

Commands repeat heavily (CI runners exec the same few commands all day), so the stateless part of
matching, which rules an event satisfies, is remembered per group of rules that read the same
fields, keyed on those fields' values (engine/fields.py BASIS: the argv stands for every command.*
field). Only ``hits`` use this: correlations and chains keep state and run on every event.
A group whose keys rarely repeat (it reads a pod name or a time) stops remembering.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ..model import Event
from .fields import BASIS, BASIS_GROUP, FieldView
from .rule import Rule

LIMIT = 8192  # entries per group; the memo is emptied when full (bounded memory, no LRU bookkeeping)
TRIAL = 4096  # lookups before a group's hit rate is judged
MIN_HITS = 0.25  # below this share of repeats a group decides every event afresh


class _Group:
    __slots__ = ("basis", "hits", "lookups", "memo", "on", "positions", "rules")

    def __init__(self, names: tuple[str, ...], positions: list[int], rules: list[Rule]) -> None:
        self.basis: list[Callable[[Event], Hashable]] = [BASIS[n] for n in names]
        self.positions = positions
        self.rules = rules
        self.memo: dict[Hashable, tuple[bool, ...]] = {}
        self.on = True
        self.lookups = 0
        self.hits = 0

    def decide(self, event: Event, view: FieldView) -> tuple[bool, ...]:
        if not self.on:
            return tuple(r.matcher(view) for r in self.rules)
        try:
            key = tuple(b(event) for b in self.basis)
            got = self.memo.get(key)
        except TypeError:  # a value that cannot be a key (a dict in a list): decide afresh
            return tuple(r.matcher(view) for r in self.rules)
        self.lookups += 1
        if got is not None:
            self.hits += 1
            return got
        got = tuple(r.matcher(view) for r in self.rules)
        if len(self.memo) >= LIMIT:
            self.memo.clear()
        self.memo[key] = got
        if self.lookups == TRIAL and self.hits < TRIAL * MIN_HITS:
            self.on = False
            self.memo.clear()
        return got


class Decider:
    """The rules of ``candidates`` (in their order) an event matches."""

    def __init__(self, candidates: list[Rule]) -> None:
        self.candidates = candidates
        by_basis: dict[tuple[str, ...], list[int]] = {}
        for i, rule in enumerate(candidates):
            names = tuple(sorted({BASIS_GROUP[n] for n in (rule.reads or rule.fields_used) if n in BASIS_GROUP}))
            by_basis.setdefault(names, []).append(i)
        self.groups = [_Group(names, pos, [candidates[i] for i in pos]) for names, pos in by_basis.items()]

    def matches(self, event: Event, view: FieldView) -> list[Rule]:
        if len(self.groups) == 1:
            g = self.groups[0]
            return [r for r, ok in zip(g.rules, g.decide(event, view), strict=True) if ok]
        matched = [False] * len(self.candidates)
        for g in self.groups:
            for i, ok in zip(g.positions, g.decide(event, view), strict=True):
                matched[i] = ok
        return [r for r, ok in zip(self.candidates, matched, strict=True) if ok]
