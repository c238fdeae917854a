"""Read files, .gz, directories and stdin; frame them into records; hand records to sources.

Line-delimited input is scanned in large blocks and, when the rules allow it, only lines
holding one of a few byte literals are parsed at all (see ``engine.prefilter``).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ..model import Event, SourceRef
from . import JSON_SOURCES, TEXT_SOURCES, json_source
from .base import SourceError, TextParser
from .find import line_starts

BLOCK = 16 << 20
HEAD = 64 << 10
MAX_LINE = 64 << 20

Warn = Callable[[str, "int | None", str], None]


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0
    lines: int = 0  # physical lines seen
    parsed: int = 0  # records decoded (lines past the prefilter, or JSON documents)
    events: int = 0
    bad: int = 0
    unknown: int = 0  # well-formed records of no known shape
    by_format: Counter[str] = field(default_factory=Counter)


class InputError(OSError):
    """An input that cannot be opened at all (missing file, permission)."""


def expand(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        if path == "-":
            yield path
        elif os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if not name.startswith("."):
                        yield os.path.join(root, name)
        elif os.path.exists(path):
            yield path
        else:
            raise InputError(f"{path}: no such file or directory")


def _open(path: str) -> IO[bytes]:
    raw: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    peek = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
    if peek == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


class Reader:
    def __init__(
        self,
        fmt: str = "auto",
        literals: list[bytes] | None = None,
        warn: Warn | None = None,
        max_line: int = MAX_LINE,
    ) -> None:
        self.fmt = fmt
        self.literals = literals
        self.warn: Warn = warn or (lambda f, n, m: None)
        self.max_line = max_line
        self.stats = Stats()
        self.text_sources = {m.FORMAT: m for m in TEXT_SOURCES}
        self.on_progress: Callable[[int], None] | None = None

    # ---- framing ---------------------------------------------------------------------
    def read(self, paths: Iterable[str]) -> Iterator[Event]:
        for path in expand(paths):
            name = "<stdin>" if path == "-" else path
            try:
                stream = _open(path)
            except OSError as exc:
                self.warn(name, None, f"cannot open: {exc.strerror or exc}")
                self.stats.bad += 1
                continue
            self.stats.files += 1
            try:
                yield from self._read_stream(name, stream)
            finally:
                if path != "-":
                    stream.close()

    def _read_stream(self, name: str, stream: IO[bytes]) -> Iterator[Event]:
        state = {"line": 0}
        blocks = self._blocks(name, stream, state)
        head = next(blocks, b"")
        mode, text_fmt = self._sniff(head)
        if mode == "text" and text_fmt:
            parser: TextParser = self.text_sources[text_fmt].Parser(name)
            for lineno, line in self._lines(name, head, blocks, state, self._text_literals(text_fmt)):
                self.stats.parsed += 1
                yield from self._guard(name, lineno, lambda ln=lineno, li=line: parser.feed(ln, li), text_fmt)
            yield from self._guard(name, None, parser.close, text_fmt)
        elif mode == "document":
            yield from self._documents(name, head, blocks, state)
        else:
            for lineno, line in self._lines(name, head, blocks, state, self.literals):
                yield from self._json_line(name, lineno, line)

    def _text_literals(self, fmt: str) -> list[bytes] | None:
        lits = getattr(self.text_sources[fmt], "LITERALS", None)
        return list(lits) if lits and self.literals is not None else None

    def _blocks(self, name: str, stream: IO[bytes], state: dict[str, int]) -> Iterator[bytes]:
        size = HEAD
        while True:
            try:
                block = stream.read(size)
            except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
                what = "truncated or corrupt compressed data" if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)) else str(exc)
                self.warn(name, state["line"] + 1, f"{what}; the rest of this file is skipped")
                self.stats.bad += 1
                return
            if not block:
                return
            self.stats.bytes += len(block)
            if self.on_progress:
                self.on_progress(len(block))
            yield block
            size = BLOCK

    def _sniff(self, head: bytes) -> tuple[str, str | None]:
        for fmt, mod in self.text_sources.items():
            if self.fmt in ("auto", fmt) and mod.sniff(head):
                return "text", fmt
        if self.fmt in self.text_sources:
            return "text", self.fmt
        body = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if body[:1] == b"[":
            return "document", None
        if body[:1] == b"{":
            first = body.split(b"\n", 1)[0]
            try:
                orjson.loads(first)
            except orjson.JSONDecodeError:
                # a pretty-printed or concatenated document, unless the first line is just too long
                if b"\n" in body or len(first) < len(head) - 1:
                    return "document", None
            return "lines", None
        return "lines", None

    def _lines(
        self,
        name: str,
        head: bytes,
        blocks: Iterator[bytes],
        state: dict[str, int],
        literals: list[bytes] | None,
    ) -> Iterator[tuple[int, bytes]]:
        pending = b""
        base = 0  # complete lines before `pending`
        discarding = False
        for block in _chain(head, blocks):
            data = pending + block if pending else block
            cut = data.rfind(b"\n") + 1
            if discarding:
                if cut == 0:
                    pending = b""
                    continue
                first_nl = data.find(b"\n") + 1
                data, cut = data[first_nl:], cut - first_nl
                base += 1
                discarding = False
            if cut == 0:
                pending = data
                if len(pending) > self.max_line:
                    self.warn(name, base + 1, f"line longer than {self.max_line} bytes skipped")
                    self.stats.bad += 1
                    pending = b""
                    discarding = True
                continue
            chunk, pending = data[:cut], data[cut:]
            for offset, lineno_in_chunk in line_starts(chunk, literals):
                end = chunk.find(b"\n", offset)
                line = chunk[offset:end]
                if line.strip():
                    yield base + lineno_in_chunk, line
            n = chunk.count(b"\n")
            base += n
            self.stats.lines += n
            state["line"] = base
        if pending and not discarding:
            self.stats.lines += 1
            if literals is None or any(lit in pending for lit in literals):
                if pending.strip():
                    yield base + 1, pending

    # ---- records ---------------------------------------------------------------------
    def _json_line(self, name: str, lineno: int, line: bytes) -> Iterator[Event]:
        self.stats.parsed += 1
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            self.stats.bad += 1
            self.warn(name, lineno, f"not JSON ({_short(str(exc))})")
            return
        yield from self._record(name, lineno, obj)

    def _record(self, name: str, lineno: int | None, obj: Any) -> Iterator[Event]:
        if isinstance(obj, list):
            for item in obj:
                yield from self._record(name, lineno, item)
            return
        if not isinstance(obj, dict):
            self.stats.bad += 1
            self.warn(name, lineno, f"a JSON {type(obj).__name__}, not an object")
            return
        if self.fmt != "auto":
            src = json_source(self.fmt)
            if src is None or not src.match(obj):
                self.stats.bad += 1
                self.warn(name, lineno, f"not a {self.fmt} record")
                return
        else:
            src = next((s for s in JSON_SOURCES if s.match(obj)), None)
            if src is None:
                self.stats.unknown += 1
                self.warn(name, lineno, "record of no known format skipped")
                return
        ref = SourceRef(format=src.FORMAT, file=name, line=lineno)
        yield from self._guard(name, lineno, lambda: src.events(obj, ref), src.FORMAT)

    def _guard(self, name: str, lineno: int | None, produce: Callable[[], Iterable[Event]], fmt: str) -> Iterator[Event]:
        """Run a source; a bad record costs a warning, never the stream."""
        try:
            out = list(produce())
        except SourceError as exc:
            self.stats.bad += 1
            self.warn(name, lineno, f"{fmt}: {exc}")
            return
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
            self.stats.bad += 1
            self.warn(name, lineno, f"{fmt}: unexpected record shape ({type(exc).__name__}: {_short(str(exc))})")
            return
        self.stats.events += len(out)
        for ev in out:
            self.stats.by_format[ev.source.format or fmt] += 1
        yield from out

    def _documents(self, name: str, head: bytes, blocks: Iterator[bytes], state: dict[str, int]) -> Iterator[Event]:
        """Concatenated or pretty-printed JSON values (Falco trace files, EventList dumps)."""
        decoder = json.JSONDecoder()
        text = ""
        pos = 0
        line = 1
        dec = _Utf8()
        source = _chain(head, blocks)
        exhausted = False
        while True:
            # skip white space between documents
            while True:
                stripped = len(text) - pos - len(text[pos:].lstrip())
                line += text.count("\n", pos, pos + stripped)
                pos += stripped
                if pos < len(text) or exhausted:
                    break
                more = next(source, None)
                if more is None:
                    exhausted = True
                    text += dec.final()
                else:
                    text = text[pos:] + dec.decode(more)
                    pos = 0
            if pos >= len(text):
                break
            try:
                obj, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                if not exhausted:
                    more = next(source, None)
                    if more is None:
                        exhausted = True
                        text = text[pos:] + dec.final()
                    else:
                        text = text[pos:] + dec.decode(more)
                    pos = 0
                    continue
                self.stats.bad += 1
                self.warn(name, line + exc.lineno - 1 if exc.pos >= pos else line, f"not JSON ({exc.msg})")
                # resynchronise on the next line that opens an object
                nxt = text.find("\n{", pos + 1)
                if nxt == -1:
                    break
                line += text.count("\n", pos, nxt + 1)
                pos = nxt + 1
                continue
            self.stats.parsed += 1
            self.stats.lines = line
            state["line"] = line
            yield from self._record(name, line, obj)
            line += text.count("\n", pos, end)
            pos = end
            if pos > BLOCK:
                text, pos = text[pos:], 0


class _Utf8:
    def __init__(self) -> None:
        import codecs

        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def decode(self, data: bytes) -> str:
        return self._dec.decode(data)

    def final(self) -> str:
        return self._dec.decode(b"", final=True)


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
