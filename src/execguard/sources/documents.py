"""JSON decoding: one line at a time, or streamed documents (pretty-printed, concatenated, arrays).

Document mode holds the document being decoded plus what was read past it; the elements of a
top-level array are decoded one by one. A value that does not decode whole keeps its complete
records (``salvage``); every problem is a warning naming file and line, never an exception.
Decoded values go to ``record`` (the reader's dispatch to a source).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from ..model import Event
from .salvage import Salvaged, salvage
from .stats import Stats, Warn
from .window import Window, decode_error

Record = Callable[[str, "int | None", Any], Iterable[Event]]

_WS = re.compile(r"[ \t\r\n]*")


class JsonDecoder:
    def __init__(self, stats: Stats, warn: Warn, record: Record, block: int) -> None:
        self.stats = stats
        self.warn = warn
        self.record = record
        self.block = block

    def line(self, name: str, lineno: int, line: bytes) -> Iterable[Event]:
        """The events of one line of line-delimited JSON: what the reader's dispatch returns (a record's events
        as a list; a top-level array's, item by item), with no generator of its own on the common path."""
        self.stats.parsed += 1
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return self._lenient(name, lineno, line, exc)
        return self.record(name, lineno, obj)

    def _lenient(self, name: str, lineno: int, line: bytes, exc: orjson.JSONDecodeError) -> Iterator[Event]:
        values, repaired = lenient(line)
        if values is None:
            kept = self._salvage_line(lineno, line)
            if kept is not None:  # a one-line export cut short, or with a broken element
                yield from self._salvaged(name, lineno, kept[0], kept[1], None)
                return
            self.stats.bad += 1
            self.warn(name, lineno, f"not JSON ({short(str(exc))})")
            return
        if repaired:
            self.stats.repaired += 1
            self.warn(name, lineno, "invalid UTF-8 replaced by U+FFFD")
        for obj in values:
            yield from self.record(name, lineno, obj)

    def documents(self, name: str, blocks: Iterable[bytes | bytearray], state: dict[str, int], live: bool = False) -> Iterator[Event]:
        """Concatenated or pretty-printed JSON values (Falco trace files, EventList dumps, arrays).

        Each value's records carry the line its first character is on. The elements of a
        top-level array are decoded one at a time. A broken value costs a warning; reading
        resumes at the next line that opens an object at the broken value's indentation.
        """
        w = Window(iter(blocks), self.stats.held, self.block)
        w.live = live
        in_array = False
        while True:
            state["line"] = w.line - 1
            ch = w.skip_ws()
            if ch is None:
                if in_array:
                    self.stats.bad += 1
                    self.warn(name, w.line, "JSON array not closed at end of input")
                break
            if in_array and ch in ",]":
                w.advance(w.pos + 1)
                in_array = ch == ","
                continue
            if ch == "[" and not in_array:
                w.advance(w.pos + 1)
                in_array = True
                continue
            start_line = w.line
            indent = w.indent()
            try:
                obj, end = w.decode()
            except (ValueError, RecursionError) as exc:
                kept = salvage(w) if ch == "{" else None
                if kept is not None:
                    self.stats.parsed += 1
                    yield from self._salvaged(name, start_line, kept, w, indent)
                    continue
                self.stats.parsed += 1
                self.stats.bad += 1
                self.warn(name, start_line, f"not JSON ({decode_error(exc, w)})")
                if not w.resync(indent, compact=in_array and indent is None):
                    break
                continue
            self.stats.parsed += 1
            yield from self.record(name, start_line, obj)
            w.advance(end)
        self.stats.lines += w.physical_lines()

    def _salvage_line(self, lineno: int, line: bytes) -> tuple[Salvaged, Window] | None:
        if line.lstrip()[:1] != b"{" or b"[" not in line:
            return None
        w = Window(iter([line]), self.stats.held, self.block)
        w.line = lineno
        if w.skip_ws() != "{":
            return None
        kept = salvage(w)
        return (kept, w) if kept is not None else None

    def _salvaged(self, name: str, line: int, kept: Salvaged, w: Window, indent: str | None) -> Iterator[Event]:
        """The complete records of an object that did not decode whole; then move past it."""
        obj, end, notes = kept
        for at, note in notes:
            self.stats.bad += 1
            self.warn(name, at, note)
        yield from self.record(name, line, obj)
        if end is not None:
            w.advance(end)
        elif w.exhausted:
            w.advance(len(w.text))
        else:
            w.resync(indent)


def parses(line: bytes) -> bool:
    """The line is a JSON object or array by itself (also when invalid UTF-8 has to be replaced)."""
    try:
        return isinstance(orjson.loads(line), (dict, list))
    except orjson.JSONDecodeError:
        values, _ = lenient(line)
        return values is not None and all(isinstance(v, (dict, list)) for v in values)


def lenient(line: bytes) -> tuple[list[Any] | None, bool]:
    """Second chance for a line orjson refused: invalid UTF-8 (replaced), or several values on one line."""
    try:
        text = line.decode("utf-8")
        repaired = False
    except UnicodeDecodeError:
        text = line.decode("utf-8", errors="replace")
        repaired = True
    text = text.lstrip("\ufeff")
    if repaired:
        try:
            return [orjson.loads(text)], True
        except orjson.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    try:
        while pos < len(text):
            obj, pos = decoder.raw_decode(text, pos)
            values.append(obj)
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
    except (ValueError, RecursionError):
        return None, repaired
    return (values or None), repaired


def short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
