"""Keep the complete records of a JSON object that does not decode as a whole.

Exports wrap their records in one object: ``{"events": [...]}`` (``aws logs filter-log-events``),
``{"items": [...]}`` (an EventList), ``{"records": [...]}`` (Azure), ``{"logEvents": [...]}``.
Cut short, or with one broken element, the whole object fails to decode and every record in it
would be lost. Here the object is walked key by key and its arrays element by element: broken
elements are skipped (resuming at the next element), and what was complete is handed on as the
object, with a note per skipped spot.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

_WS = re.compile(r"[ \t\r\n]*")
# the start of the next element of a one-line array: the end of one object, a comma, the next
NEXT_COMPACT = re.compile(r"\}\s*,\s*(\{)")
GROW = 16 << 20  # characters read ahead when an element needs more text


class Window(Protocol):
    text: str
    pos: int
    line: int
    exhausted: bool
    decoder: json.JSONDecoder

    def more(self, at_least: int = 1) -> bool: ...


class _Cut(Exception):
    """The walk cannot go on (input ended, or a key or a value outside an array is broken)."""


class _Walk:
    def __init__(self, w: Window) -> None:
        self.w = w
        self.notes: list[tuple[int, str]] = []  # (line, what was skipped)
        self.kept = 0  # objects decoded as array elements
        self.cut_at = 0  # where the walk stopped when it could not finish

    # positions are absolute in w.text; w.more() drops the text before w.pos and sets pos to 0
    def _grow(self, i: int) -> int:
        rel = i - self.w.pos
        if not self.w.more(GROW):
            raise _Cut
        return self.w.pos + rel

    def line_at(self, i: int) -> int:
        return self.w.line + self.w.text.count("\n", self.w.pos, i)

    def ws(self, i: int) -> int:
        while True:
            m = _WS.match(self.w.text, i)
            i = m.end() if m else i
            if i < len(self.w.text):
                return i
            if self.w.exhausted:
                raise _Cut
            i = self._grow(i)

    def decode(self, i: int) -> tuple[Any, int, int]:
        """(value, end, start) of the value at i; start moves when more text had to be read."""
        while True:
            try:
                value, end = self.w.decoder.raw_decode(self.w.text, i)
                return value, end, i
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(self.w.text) - 8 or exc.msg.startswith("Unterminated string")
                if incomplete and not self.w.exhausted:
                    i = self._grow(i)
                    continue
                raise

    def obj(self, i: int) -> tuple[dict[str, Any], int | None]:
        """The object at i (its ``{``) with what could be kept; the index past it, or None when cut."""
        out: dict[str, Any] = {}
        try:
            i = self.ws(i + 1)
            if self.w.text[i] == "}":
                return out, i + 1
            while True:
                key, i, _ = self.decode(i)
                i = self.ws(i)
                if not isinstance(key, str) or self.w.text[i] != ":":
                    raise _Cut
                i = self.ws(i + 1)
                if self.w.text[i] == "[":
                    items: list[Any] = []
                    out[key] = items
                    i = self.array(i, items)
                else:
                    out[key], i, _ = self.decode(i)
                i = self.ws(i)
                ch = self.w.text[i]
                if ch == "}":
                    return out, i + 1
                if ch != ",":
                    raise _Cut
                i = self.ws(i + 1)
        except (_Cut, ValueError, RecursionError):
            self.cut_at = i
            return out, None

    def array(self, i: int, items: list[Any]) -> int:
        """Decode the array at i into items; the index past it."""
        i = self.ws(i + 1)
        if self.w.text[i] == "]":
            return i + 1
        while True:
            start = i
            try:
                value, i, start = self.decode(i)
            except (ValueError, RecursionError) as exc:
                i = self.skip(start, exc)
                continue
            items.append(value)
            self.kept += isinstance(value, dict)  # records; a list of strings (sourceIPs) is no export
            i = self.ws(i)
            ch = self.w.text[i]
            if ch == "]":
                return i + 1
            if ch == ",":
                i = self.ws(i + 1)
                continue
            i = self.skip(i, ValueError("expected ',' or ']' after an element"))

    def skip(self, start: int, exc: BaseException) -> int:
        """Note the broken element at start and find the next one; _Cut when there is none."""
        line = self.line_at(start)
        if isinstance(exc, json.JSONDecodeError):
            why = at_line(exc.msg, self.line_at(min(exc.pos, len(self.w.text))))
        else:
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        bol = self.w.text.rfind("\n", 0, start) + 1
        lead = self.w.text[bol:start]
        pattern = re.compile("\n" + re.escape(lead) + r"(\{)") if bol and not lead.strip() else NEXT_COMPACT
        at = start + 1
        while True:
            m = pattern.search(self.w.text, at)
            if m:
                self.notes.append((line, f"array element skipped (not JSON: {why})"))
                return m.start(1)
            if self.w.exhausted:
                self.notes.append((line, f"array element cut short by the end of input, skipped (not JSON: {why})"))
                raise _Cut
            rel = max(start, len(self.w.text) - 64) - self.w.pos  # a match may straddle the read
            start = self._grow(start)
            at = self.w.pos + rel


Salvaged = tuple[dict[str, Any], int | None, list[tuple[int, str]]]


def at_line(msg: str, line: int) -> str:
    """json's message with a line number ("Unterminated string starting at" ends in "at" already)."""
    return f"{msg} line {line}" if msg.endswith(" at") else f"{msg} at line {line}"


def salvage(w: Window) -> Salvaged | None:
    """The object at ``w.pos`` with its complete array elements, the index past it (None when the
    input ends inside it), and (line, note) per skipped spot; None when no object was kept from an array
    (a single broken record is not an export: it is not handed on in part)."""
    walk = _Walk(w)
    obj, end = walk.obj(w.pos)
    if not walk.kept:
        return None
    if end is None and not walk.notes:
        at = min(walk.cut_at, len(w.text))
        what = "the input ends inside this JSON object (cut short?)" if w.exhausted else "not JSON here: the rest of this object is skipped"
        walk.notes.append((walk.line_at(at), what))
    return obj, end, walk.notes
