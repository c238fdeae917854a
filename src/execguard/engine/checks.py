"""Load-time checks that a rule can fire: the fields it names and the placeholders of its reason.

A misspelt field never matches and a broken reason template shows raw braces on every alert, both
silently; refusing the rule at load, with the nearest valid name and the line, is kinder.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from .fields import FIELDS

if TYPE_CHECKING:  # pySigma only where a rule is loaded: reason.py imports this module on the cached path
    from sigma.exceptions import SigmaError

# {field} or {field|text shown when the field is empty}; the renderer in reason.py uses the same pattern
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_.]*)(?:\|([^{}]*))?\}")
_BRACES = re.compile(r"\{([^{}]*)\}|[{}]")
_FORM = "write {field} or {field|text when empty}"


def nearest(name: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest known name, or ''."""
    pool = list(known)
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not close:  # case slips (Command.Line) are far apart for difflib
        close = [k for k in pool if k.lower() == name.lower()][:1]
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_field(used: Iterable[str]) -> tuple[str, str] | None:
    """The first field name that is not an Event field, with its message; None when all are known."""
    known = set(FIELDS)
    for name in sorted(used):
        if name not in known:
            return name, f"unknown field {name}{nearest(name, FIELDS)}; the fields are listed in docs/fields.md"
    return None


def reason_problem(template: str, names: Collection[str]) -> str | None:
    """What is wrong with a reason template, or None. ``names`` are the placeholders it may use."""
    for m in _BRACES.finditer(template):
        text = m.group(0)
        if text in ("{", "}"):
            return f"reason has an unbalanced '{text}' at column {m.start() + 1}; {_FORM}"
        ph = PLACEHOLDER.fullmatch(text)
        if ph is None:
            head = (m.group(1) or "").split("|", 1)[0]
            if ":" in head or "!" in head:
                return f"reason placeholder {text}: format specs and conversions are not supported; {_FORM}"
            return f"reason placeholder {text} is badly formed; {_FORM}"
        if ph.group(1) not in names:
            name = ph.group(1)
            return f"reason names unknown field {name}{nearest(name, names)}; the fields are listed in docs/fields.md"
    return None


def line_of(text: str, pattern: str) -> int | None:
    """1-based number of the first line matching the regex ``pattern``."""
    rx = re.compile(pattern)
    for n, line in enumerate(text.splitlines(), 1):
        if rx.search(line):
            return n
    return None


def field_line(text: str, name: str) -> int | None:
    """Line where a detection item names the field (``name:``, ``name|mod:``, quoted or in a list)."""
    return line_of(text, rf"^[ \t-]*['\"]?{re.escape(name)}(\|[^:]*)?['\"]?[ \t]*:")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def sigma_problem(text: str, exc: SigmaError) -> tuple[int | None, str]:
    """pySigma's error as one line, at the line it names or, for a bad regex or condition, the line holding it."""
    from sigma.exceptions import SigmaConditionError, SigmaRegularExpressionError

    msg = str(exc.args[0]) if exc.args else type(exc).__name__
    line = exc.source.line if exc.source is not None else None
    if line is None and isinstance(exc, SigmaRegularExpressionError):
        m = re.search(r"Regular expression '(.*)' is invalid", msg, re.DOTALL)
        line = (line_of(text, re.escape(m.group(1))) if m else None) or line_of(text, r"\|re\b")
    elif line is None and isinstance(exc, SigmaConditionError):
        line = line_of(text, r"^[ \t]+condition[ \t]*:")
    return line, f"invalid Sigma rule: {_one_line(msg)}"


def read_problem(exc: Exception) -> tuple[int | None, str]:
    """A YAML (or other) reading error as one line, with the line YAML errors know."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return mark.line + 1, f"cannot read rule: {_one_line(str(getattr(exc, 'problem', None) or exc))}"
    return None, f"cannot read rule: {_one_line(str(exc))}"
