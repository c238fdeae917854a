"""Literals a regular expression cannot match without: a cheap ``in`` test before the regex runs.

``required(pattern, flags)`` returns a set of strings such that every match of the pattern
contains at least one of them, or None when no such set is found. It reads Python's own parse
of the pattern and is conservative: anything it does not understand gives None, never a wrong
set. Most content rules (``curl ... | sh``, miner names) then cost a few substring tests on the
commands that plainly do not hold them, which is nearly all of them.
"""

from __future__ import annotations

import re
from typing import Any

try:  # CPython's regex parser: private, so every use is guarded
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Pythons: no gates, same results
    _c = _p = None

# Under IGNORECASE Python also matches 'ı' (U+0131) for 'i' and 'ſ' (U+017F) for 's';
# str.lower() keeps them, so gate text maps them back (checked over all of Unicode).
FOLD = str.maketrans({"\u0131": "i", "\u017f": "s"})
MIN_LEN = 2  # shorter literals are in most text: not worth a gate


def fold(text: str) -> str:
    """Lower-case text as an IGNORECASE literal test needs it."""
    low = text.lower()
    return low if low.isascii() else low.translate(FOLD)


def required(pattern: str, flags: int = 0) -> frozenset[str] | None:
    if _p is None:  # pragma: no cover
        return None
    try:
        parsed = _p.parse(pattern, flags)
        found = _sequence(list(parsed), bool(parsed.state.flags & re.IGNORECASE))
    except Exception:  # an odd pattern: no gate rather than a wrong one
        return None
    if not found or min(len(s) for s in found) < MIN_LEN:
        return None
    return frozenset(found)


def _score(options: set[str]) -> tuple[int, int]:
    return min(len(s) for s in options), -len(options)


def _sequence(items: list[tuple[Any, Any]], icase: bool) -> set[str] | None:
    """Best set of a sequence: a run of literal characters, or one required item's set."""
    best: set[str] | None = None
    run: list[str] = []

    def offer(options: set[str] | None) -> None:
        nonlocal best
        if options and (best is None or _score(options) > _score(best)):
            best = options

    for op, av in items:
        if op is _c.LITERAL:
            ch = chr(av)
            if icase and not ch.isascii():
                offer({"".join(run)} if run else None)
                run = []
                continue
            run.append(ch.lower() if icase else ch)
            continue
        if op is _c.AT:  # \b, ^, $: zero width, the run goes on
            continue
        offer({"".join(run)} if run else None)
        run = []
        offer(_item(op, av, icase))
    offer({"".join(run)} if run else None)
    return best


def _item(op: Any, av: Any, icase: bool) -> set[str] | None:
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags or del_flags:  # scoped flags such as (?i:...): not worth the care
            return None
        return _sequence(list(sub), icase)
    if op is _c.BRANCH:
        union: set[str] = set()
        for sub in av[1]:
            options = _sequence(list(sub), icase)
            if not options:
                return None  # one alternative needs nothing: the whole needs nothing
            union |= options
        return union
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        low, _high, sub = av
        return _sequence(list(sub), icase) if low >= 1 else None
    if op is getattr(_c, "ATOMIC_GROUP", None):
        return _sequence(list(av), icase)
    return None
