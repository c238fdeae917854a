"""Decoded text of a document-mode stream (pretty-printed or concatenated JSON, arrays), read block by block."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from .salvage import NEXT_COMPACT, at_line

_WS = re.compile(r"[ \t\r\n]*")


class Window:
    """Decoded text of a document-mode stream: the current value and what was read past it."""

    def __init__(self, blocks: Iterator[bytes | bytearray], held: Callable[[int], None], block: int) -> None:
        self.blocks = blocks
        self.held = held  # told the characters held, for the reader's peak_buffer
        self.block = block  # characters read ahead when a value needs more text
        self.dec = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self.decoder = json.JSONDecoder()
        self.text = ""
        self.pos = 0
        self.line = 1  # line number at `pos`
        self.exhausted = False
        self.last = ""  # last character read, to count a final line without a newline
        self.live = False  # a pipe: decode with what has arrived rather than wait for a full block

    def more(self, at_least: int = 1) -> bool:
        """Drop the consumed text and append at least ``at_least`` characters; False at the end."""
        if self.exhausted:
            return False
        self.text = self.text[self.pos :]
        self.pos = 0
        added = 0
        while added < at_least:
            block = next(self.blocks, None)
            piece = self.dec.decode(b"", final=True) if block is None else self.dec.decode(block)
            if piece:
                self.text += piece
                self.last = piece[-1]
                added += len(piece)
                self.held(len(self.text))
            if block is None:
                self.exhausted = True
                break
            if self.live and added:
                break
        return added > 0

    def advance(self, end: int) -> None:
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def skip_ws(self) -> str | None:
        """Skip JSON white space; the next character, or None at the end of input."""
        while True:
            m = _WS.match(self.text, self.pos)
            self.advance(m.end() if m else self.pos)
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return None

    def indent(self) -> str | None:
        """White space before `pos` on its line, or None when something else precedes it there."""
        bol = self.text.rfind("\n", 0, self.pos) + 1
        if bol == 0 and self.line > 1:
            return None  # the line started before the text we still hold
        lead = self.text[bol : self.pos]
        return lead if not lead.strip() else None

    def decode(self) -> tuple[Any, int]:
        while True:
            try:
                return self.decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(self.text) - 8 or exc.msg.startswith("Unterminated string")
                if incomplete and not self.exhausted:
                    # read as much again as the value has so far: decoding work stays linear;
                    # then decode again, also to report the error against the text now held
                    self.more(max(len(self.text) - self.pos, self.block))
                    continue
                raise

    def resync(self, indent: str | None, compact: bool = False) -> bool:
        """Move to the next line opening an object at ``indent`` past the broken value (with ``compact``,
        to the next element of a one-line array); False at the end."""
        at_indent = "\n()" + re.escape(indent) + r"[{\[]" if indent is not None else r"\n()[ \t]*\{"
        pattern = re.compile(NEXT_COMPACT.pattern + "|" + at_indent if compact else at_indent)
        start = self.pos + 1
        while True:
            m = pattern.search(self.text, start)
            if m:
                self.advance(m.start(m.lastindex or 0))
                return True
            # keep only the end (a match may straddle two blocks)
            nl = max(self.text.rfind("\n", self.pos), len(self.text) - 64 if compact else -1)
            self.advance(nl if nl >= self.pos else len(self.text))
            if not self.more(self.block):
                self.advance(len(self.text))
                return False
            start = self.pos

    def physical_lines(self) -> int:
        if not self.last:
            return 0
        return self.line - 1 + (0 if self.last == "\n" else 1)


def decode_error(exc: BaseException, w: Window) -> str:
    if isinstance(exc, json.JSONDecodeError):
        line = w.line + w.text.count("\n", w.pos, exc.pos)
        return at_line(exc.msg, line)
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = str(exc)
    return text if len(text) <= 120 else text[:120] + "…"
