"""Read files, .gz, directories and stdin; frame them into records; hand records to sources.

Line-delimited input is scanned in large blocks and, when the rules allow it, only lines
holding one of a few byte literals are parsed at all (see ``pipeline.prefilter``).

Memory stays flat in the input size: line mode holds one block, one copy of its complete lines
and at most ``max_line`` bytes of a partial line (``Stats.peak_buffer`` records the most it held);
document mode (pretty-printed or concatenated JSON, JSON arrays) holds the document being decoded
plus what was read past it. Elements of a top-level JSON array are decoded one by one.

Nothing here raises for bad input: every problem becomes a warning naming file and line, a count
in ``Stats``, and the reader goes on with the next line, document or file.
"""

from __future__ import annotations

import codecs
import functools
import gzip
import json
import os
import re
import stat
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ..model import Event, SourceRef
from . import JSON_SOURCES, TEXT_SOURCES, json_source, sniff
from .base import SourceError, TextParser
from .find import count_newlines, line_starts
from .rawinput import GZ_MAGIC, Input
from .salvage import Salvaged, salvage
from .window import Window, decode_error

# Module globals, read at call time, so tests can patch them small.
BLOCK = 16 << 20  # bytes per read of line-delimited input
HEAD = 64 << 10  # first read of a file, used to sniff its format
MAX_LINE = 64 << 20
SNIFF_LINES = 64

BOM = b"\xef\xbb\xbf"
_WS = re.compile(r"[ \t\r\n]*")

Warn = Callable[[str, "int | None", str], None]


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0  # bytes read, after decompression
    lines: int = 0  # physical lines seen
    parsed: int = 0  # records decoded (lines past the prefilter, or JSON documents)
    events: int = 0
    bad: int = 0  # bad lines/records/streams skipped
    unknown: int = 0  # well-formed records of no known shape
    unreadable: int = 0  # inputs that could not be opened or listed
    repaired: int = 0  # lines with invalid UTF-8, read with U+FFFD in place of the bad bytes
    peak_buffer: int = 0  # most bytes (line mode) or characters (document mode) held at once
    skipped: int = 0  # special files (FIFOs, sockets, devices) found in a directory and not read
    by_format: Counter[str] = field(default_factory=Counter)
    unknown_files: dict[str, str] = field(default_factory=dict)  # file -> what it is instead (not read unless a pipe)


class InputError(OSError):
    """An input that cannot be opened at all (missing file, permission)."""


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

    # ---- inputs ----------------------------------------------------------------------
    def expand(self, paths: Iterable[str]) -> Iterator[str]:
        """Files to read: paths as given, directories walked recursively (hidden names skipped)."""
        for path in paths:
            if path == "-":
                yield path
            elif os.path.isdir(path):
                yield from self._walk(path)
            elif os.path.lexists(path):
                yield path  # a file, a pipe (/dev/fd/N), or a broken link that fails to open
            else:
                self._unreadable(path, "no such file or directory")

    def _walk(self, top: str) -> Iterator[str]:
        def onerror(exc: OSError) -> None:
            self._unreadable(exc.filename or top, f"cannot list: {exc.strerror or exc}")

        for root, dirs, files in os.walk(top, onerror=onerror):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                path = os.path.join(root, name)
                try:
                    mode = os.stat(path).st_mode
                except OSError as exc:
                    self._unreadable(path, f"cannot open: {exc.strerror or exc}")
                    continue
                if stat.S_ISREG(mode):
                    yield path
                else:
                    # reading a FIFO nobody writes to would wait forever; a device or socket is no log
                    self.stats.skipped += 1
                    self.warn(path, None, f"skipped: {_special(mode)}, not a regular file (name it on the command line to read it)")

    def _unreadable(self, name: str, message: str) -> None:
        self.stats.unreadable += 1
        self.warn(name, None, message)

    def _open(self, path: str) -> Input:
        if path == "-":
            return Input(sys.stdin.buffer, owned=False)
        raw = open(path, "rb")  # noqa: SIM115 - closed by Input.close
        try:
            return Input(raw, owned=True)
        except BaseException:
            raw.close()
            raise

    def read(self, paths: Iterable[str]) -> Iterator[Event]:
        # missing paths and skipped special files are named first, as a parallel hunt (which plans first) does
        for path in list(self.expand(paths)):
            name = "<stdin>" if path == "-" else path
            try:
                stream = self._open(path)
            except OSError as exc:
                self._unreadable(name, f"cannot open: {exc.strerror or exc}")
                continue
            self.stats.files += 1
            try:
                yield from self._read_stream(name, stream)
            finally:
                stream.close()

    def ranges(self, path: str, unit: int) -> list[tuple[int, int]] | None:
        """Byte ranges, each ending just after a newline, that split a large line-delimited JSON
        file for reading in parallel; None when the file cannot be split (stdin, gzip, a text
        or document format, smaller than two units, or no newline near a cut)."""
        try:
            info = os.stat(path)
            size = info.st_size
            if size < 2 * unit or not stat.S_ISREG(info.st_mode):
                return None
            with open(path, "rb") as f:
                head = f.read(HEAD)
                if head[:2] == GZ_MAGIC or sniff.utf16(head) or self._sniff(head, at_eof=False)[0] != "lines":
                    return None
                cuts = [0]
                for at in range(unit, size - unit // 2, unit):
                    cut = _next_line(f, max(at, cuts[-1]), self.max_line)
                    if cut is None:
                        return None  # an over-long line near the cut: the serial reader warns about it
                    if cut < size:
                        cuts.append(cut)
        except OSError:
            return None
        cuts = sorted(set(cuts))
        if len(cuts) < 2:
            return None
        return list(zip(cuts, [*cuts[1:], size], strict=True))

    def read_range(self, path: str, start: int, end: int) -> Iterator[Event]:
        """Events of the line-delimited JSON lines in bytes [start, end) of path (from ``ranges``).

        Line numbers count from the range's first line; the caller adds the lines before it.
        """
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by Input.close
        except OSError as exc:
            self._unreadable(path, f"cannot open: {exc.strerror or exc}")
            return
        stream = Input(raw, owned=True, plain=True, limit=end - start)
        try:
            raw.seek(start)
            if start == 0:
                self.stats.files += 1
            state = {"line": 0, "reuse": 1}
            blocks = self._blocks(path, stream, state)
            for lineno, line in self._lines(path, blocks, state, self.literals, strip_bom=start == 0):
                yield from self._json_line(path, lineno, line)
        finally:
            stream.close()

    # ---- framing ---------------------------------------------------------------------
    def _read_stream(self, name: str, stream: Input) -> Iterator[Event]:
        state = {"line": 0}
        blocks = self._blocks(name, stream, state)
        head = bytes(next(blocks, b""))  # the HEAD read: bytes, never the reused buffer
        at_eof = len(head) < HEAD
        if stream.stream:
            head, at_eof = _whole_lines(head, blocks)
        codec = sniff.utf16(head) if self.fmt == "auto" or self.fmt not in self.text_sources else None
        if codec is not None:
            # re-encoded as UTF-8 block by block: line numbers and framing stay those of the file
            blocks = _transcode(codec, _chain(head, blocks))
            head = bytes(next(blocks, b""))
        mode, text_fmt = self._sniff(head, at_eof=at_eof)
        if mode == "lines" and self.fmt == "auto" and _klog_json(head, at_eof):
            mode, text_fmt = "unknown", sniff.KLOG_JSON
        state["reuse"] = mode == "lines" and codec is None
        source = _chain(head, blocks)
        if mode == "unknown":
            yield from self._unknown(name, source, state, text_fmt or sniff.TEXT, stream.stream)
        elif mode == "text" and text_fmt:
            parser: TextParser = self.text_sources[text_fmt].Parser(name)
            for lineno, line in self._lines(name, source, state, self._text_literals(text_fmt)):
                self.stats.parsed += 1
                yield from self._guard(name, lineno, functools.partial(parser.feed, lineno, line), text_fmt)
            yield from self._guard(name, None, parser.close, text_fmt)
        elif mode == "document":
            yield from self._documents(name, source, state, stream.stream)
        else:
            for lineno, line in self._lines(name, source, state, self.literals):
                yield from self._json_line(name, lineno, line)

    def _unknown(self, name: str, blocks: Iterable[bytes | bytearray], state: dict[str, int], kind: str, live: bool) -> Iterator[Event]:
        """A file that starts as no known format. Binary data is not read. Text is read on for JSON objects
        on lines of their own further down (with --audit-log-path=- the API server's log holds audit events between klog lines),
        and named at its end if it held no event; a pipe is named at once, from its first lines."""
        if kind == sniff.BINARY and not live:
            self.stats.unknown_files[name] = kind
            self.warn(name, None, f"{kind}; not read")
            return
        if live:
            self.stats.unknown_files[name] = kind
            self.warn(name, None, f"{kind}, at its start; read on as JSON lines")
        before = self.stats.events
        for lineno, line in self._lines(name, blocks, state, self.literals):
            # the text between JSON lines (klog, say) is no bad record, nor is klog's JSON, which opens with "ts"
            lead = line.lstrip()
            if lead[:1] == b"{" and not lead.startswith(b'{"ts":'):
                yield from self._json_line(name, lineno, line)
        if not live and self.stats.events == before:
            self.stats.unknown_files[name] = kind
            self.warn(name, None, kind)

    def _text_literals(self, fmt: str) -> list[bytes] | None:
        lits = getattr(self.text_sources[fmt], "LITERALS", None)
        return list(lits) if lits and self.literals is not None else None

    def _blocks(self, name: str, stream: Input, state: dict[str, int]) -> Iterator[bytes | bytearray]:
        """Blocks of the stream: HEAD bytes first, then BLOCK at a time.

        Once the caller sets ``state["reuse"]`` (line mode, which is done with a block before it asks
        for the next) plain files are read into one reused buffer: no allocation and page faults per block.
        """
        size = HEAD
        buf: bytearray | None = None
        while True:
            before = stream.consumed
            try:
                block: bytes | bytearray
                if state.get("reuse") and size == BLOCK and not stream.gzip and not stream.stream:
                    if buf is None:
                        buf = bytearray(BLOCK)
                    got = stream.readinto(buf)
                    block = buf if got == len(buf) else bytes(buf[:got])
                else:
                    block = stream.read(size)
            except (EOFError, OSError, zlib.error) as exc:
                compressed = isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile))
                what = f"truncated or corrupt compressed data ({exc})" if compressed else f"read error: {exc}"
                self.warn(name, state["line"] + 1, f"{what}; the rest of this file is skipped")
                self.stats.bad += 1
                return
            if self.on_progress and stream.consumed > before:
                self.on_progress(stream.consumed - before)
            if not block:
                return
            self.stats.bytes += len(block)
            yield block
            size = BLOCK

    def _sniff(self, head: bytes, at_eof: bool = True) -> tuple[str, str | None]:
        for fmt, mod in self.text_sources.items():
            if self.fmt in ("auto", fmt) and mod.sniff(head):
                return "text", fmt
        if self.fmt in self.text_sources:
            return "text", self.fmt
        body = head[len(BOM) :] if head.startswith(BOM) else head
        body = body.lstrip(b" \t\r\n")
        if body[:1] == b"[":
            return "document", None
        pieces = body.split(b"\n")
        complete = pieces if at_eof else pieces[:-1]
        candidates = [p for p in complete[:SNIFF_LINES] if p.strip()]
        if body[:1] != b"{":
            if not body or any(_parses(p) for p in candidates):
                return "lines", None  # a few lines of text before JSON lines: the text lines are bad records
            if self.fmt == "auto" or not candidates:
                return "unknown", sniff.unknown_kind(head)
            return "lines", None  # a format was named: every line is checked against it
        if not candidates:
            return "lines", None  # a first line longer than the head: line-delimited
        if _parses(candidates[0]):
            return "lines", None
        # The first line is not a JSON value by itself: pretty-printed or concatenated documents,
        # unless it is just a broken line of a line-delimited file whose other lines parse.
        if any(_parses(p) for p in candidates[1:]):
            return "lines", None
        return "document", None

    def _lines(
        self,
        name: str,
        blocks: Iterable[bytes | bytearray],
        state: dict[str, int],
        literals: list[bytes] | None,
        strip_bom: bool = True,
    ) -> Iterator[tuple[int, bytes]]:
        """Yield (1-based line number, line) of non-blank candidate lines; skip over-long ones."""
        max_line = self.max_line
        stats = self.stats
        pending = b""  # start of a line whose end is in a later block
        base = 0  # lines complete before `pending`
        discarding = False  # inside an over-long line: drop bytes up to its newline
        first = strip_bom
        for block in blocks:
            if first:
                first = False
                if block.startswith(BOM):
                    block = block[len(BOM) :]
            start = 0
            nl = block.find(b"\n")
            if discarding:
                if nl == -1:
                    continue
                discarding = False
                base += 1
                stats.lines += 1
                start = nl + 1
            elif pending:
                if nl == -1:
                    if len(pending) + len(block) > max_line:
                        self._too_long(name, base + 1)
                        pending, discarding = b"", True
                    else:
                        pending += bytes(block)
                        self._held(len(block) + len(pending))
                    continue
                if len(pending) + nl > max_line:
                    self._too_long(name, base + 1)
                else:
                    line = pending + bytes(block[:nl])
                    self._held(len(block) + len(line))
                    if (literals is None or any(lit in line for lit in literals)) and line.strip():
                        yield base + 1, line
                pending = b""
                base += 1
                stats.lines += 1
                start = nl + 1
            cut = block.rfind(b"\n") + 1
            if cut > start:
                self._held(len(block))
                skip = self._long_lines(name, block, start, cut, base) if cut - start > max_line else None
                last = (start, 1)  # newlines before the last candidate are counted already
                for offset, lineno in line_starts(block, literals, start, cut):
                    last = offset, lineno
                    if skip and offset in skip:
                        continue
                    line = bytes(block[offset : block.index(b"\n", offset)])
                    if line.strip():
                        yield base + lineno, line
                n = last[1] - 1 + count_newlines(block, last[0], cut)
                base += n
                stats.lines += n
            tail = len(block) - max(cut, start)
            if tail > max_line:
                self._too_long(name, base + 1)
                discarding = True
            elif tail:
                pending = bytes(block[max(cut, start) :])
            state["line"] = base
        if discarding:
            stats.lines += 1
        elif pending:
            stats.lines += 1
            if (literals is None or any(lit in pending for lit in literals)) and pending.strip():
                yield base + 1, pending

    def _long_lines(self, name: str, block: bytes | bytearray, offset: int, end: int, base: int) -> set[int]:
        """Offsets of lines longer than max_line in block[offset:end] (only possible when max_line < BLOCK)."""
        out: set[int] = set()
        lineno = 1
        while offset < end:
            stop = block.index(b"\n", offset)
            if stop - offset > self.max_line:
                self._too_long(name, base + lineno)
                out.add(offset)
            offset = stop + 1
            lineno += 1
        return out

    def _too_long(self, name: str, lineno: int) -> None:
        self.stats.bad += 1
        self.warn(name, lineno, f"line longer than {self.max_line} bytes skipped")

    def _held(self, size: int) -> None:
        if size > self.stats.peak_buffer:
            self.stats.peak_buffer = size

    # ---- records ---------------------------------------------------------------------
    def _json_line(self, name: str, lineno: int, line: bytes) -> Iterator[Event]:
        self.stats.parsed += 1
        values: list[Any] | None
        try:
            values = [orjson.loads(line)]
        except orjson.JSONDecodeError as exc:
            values, repaired = _lenient(line)
            if values is None:
                kept = self._salvage_line(lineno, line)
                if kept is not None:  # a one-line export cut short, or with a broken element
                    yield from self._salvaged(name, lineno, kept[0], kept[1], None)
                    return
                self.stats.bad += 1
                self.warn(name, lineno, f"not JSON ({_short(str(exc))})")
                return
            if repaired:
                self.stats.repaired += 1
                self.warn(name, lineno, "invalid UTF-8 replaced by U+FFFD")
        for obj in values:
            yield from self._record(name, lineno, obj)

    def _record(self, name: str, lineno: int | None, obj: Any, nested: bool = False) -> Iterator[Event]:
        if isinstance(obj, list) and not nested:
            for item in obj:
                yield from self._record(name, lineno, item, nested=True)
            return
        if not isinstance(obj, dict):
            self.stats.bad += 1
            self.warn(name, lineno, f"a JSON {_json_type(obj)}, not an object")
            return
        if self.fmt != "auto":
            src = json_source(self.fmt)
            if src is None or not _matches(src, obj):
                self.stats.bad += 1
                self.warn(name, lineno, f"not a {self.fmt} record")
                return
        else:
            src = next((s for s in JSON_SOURCES if _matches(s, obj)), None)
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
            self.warn(name, lineno, f"{fmt}: {_short(str(exc))}")
            return
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
            self.stats.bad += 1
            self.warn(name, lineno, f"{fmt}: unexpected record shape ({type(exc).__name__}: {_short(str(exc))})")
            return
        except Exception as exc:  # a bug in a source must not end the hunt
            self.stats.bad += 1
            self.warn(name, lineno, f"{fmt}: source failed on this record ({type(exc).__name__}: {_short(str(exc))})")
            return
        self.stats.events += len(out)
        for ev in out:
            self.stats.by_format[ev.source.format or fmt] += 1
        yield from out

    def _documents(self, name: str, blocks: Iterable[bytes | bytearray], state: dict[str, int], live: bool = False) -> Iterator[Event]:
        """Concatenated or pretty-printed JSON values (Falco trace files, EventList dumps, arrays).

        Each value's records carry the line its first character is on. The elements of a
        top-level array are decoded one at a time. A broken value costs a warning; reading
        resumes at the next line that opens an object at the broken value's indentation.
        """
        w = Window(iter(blocks), self._held, BLOCK)
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
            yield from self._record(name, start_line, obj)
            w.advance(end)
        self.stats.lines += w.physical_lines()


    def _salvage_line(self, lineno: int, line: bytes) -> tuple[Salvaged, Window] | None:
        if line.lstrip()[:1] != b"{" or b"[" not in line:
            return None
        w = Window(iter([line]), self._held, BLOCK)
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
        yield from self._record(name, line, obj)
        if end is not None:
            w.advance(end)
        elif w.exhausted:
            w.advance(len(w.text))
        else:
            w.resync(indent)


def _matches(src: Any, obj: dict[str, Any]) -> bool:
    try:
        return bool(src.match(obj))
    except Exception:
        return False


def _parses(line: bytes) -> bool:
    """The line is a JSON object or array by itself (also when invalid UTF-8 has to be replaced)."""
    try:
        return isinstance(orjson.loads(line), (dict, list))
    except orjson.JSONDecodeError:
        values, _ = _lenient(line)
        return values is not None and all(isinstance(v, (dict, list)) for v in values)


def _lenient(line: bytes) -> tuple[list[Any] | None, bool]:
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




def _json_type(obj: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}.get(
        type(obj), type(obj).__name__
    )


def _next_line(f: IO[bytes], at: int, max_line: int) -> int | None:
    """Offset just past the first newline at or after ``at``; None if none within max_line bytes."""
    f.seek(at)
    seen = 0
    while seen <= max_line:
        window = f.read(HEAD)
        if not window:
            return at + seen
        nl = window.find(b"\n")
        if nl != -1:
            return at + seen + nl + 1
        seen += len(window)
    return None


def _klog_json(head: bytes, at_eof: bool) -> bool:
    """The head's JSON lines are structured klog and none is a record of a known format."""
    pieces = head.removeprefix(BOM).split(b"\n")
    objs = []
    for piece in (pieces if at_eof else pieces[:-1])[:SNIFF_LINES]:
        try:
            obj = orjson.loads(piece)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            objs.append(obj)
    return any(sniff.klog_json(o) for o in objs) and not any(_matches(s, o) for o in objs for s in JSON_SOURCES)


def is_stream(path: str) -> bool:
    """The input is a pipe, FIFO or terminal (``-`` is stdin): its records arrive over time."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode if path == "-" else os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))




def _whole_lines(head: bytes, blocks: Iterator[bytes | bytearray]) -> tuple[bytes, bool]:
    """A stream's head grown to hold a complete line (what it has sniffed from); and whether the stream ended."""
    while b"\n" not in head and len(head) < HEAD:
        more = next(blocks, None)
        if more is None:
            return head, True
        head += more
    return head, False


def _transcode(codec: str, blocks: Iterable[bytes | bytearray]) -> Iterator[bytes]:
    dec = codecs.getincrementaldecoder(codec)(errors="replace")
    for block in blocks:
        out = dec.decode(block)
        if out:
            yield out.encode("utf-8")
    out = dec.decode(b"", final=True)
    if out:
        yield out.encode("utf-8")


def _special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _chain(head: bytes | bytearray, rest: Iterator[bytes | bytearray]) -> Iterator[bytes | bytearray]:
    if head:
        yield head
    yield from rest


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def expand(paths: Iterable[str]) -> Iterator[str]:
    """Files a Reader would read for ``paths`` (compatibility helper; missing paths raise InputError)."""
    for path in paths:
        if path != "-" and not os.path.lexists(path):
            raise InputError(f"{path}: no such file or directory")
    yield from Reader().expand(paths)
