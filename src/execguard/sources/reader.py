"""Read files, .gz, directories and stdin; pick each input's mode and format; hand records to sources.

The pieces: ``discover`` (which files), ``rawinput`` (bytes, gunzip), ``lines`` (framing and the
prefilter scan (see ``pipeline.prefilter``): when the rules allow it, only lines holding one of a few byte literals are parsed),
``documents`` (JSON lines and streamed documents), ``ranges`` (cuts for parallel reading). This
module decides the mode from a file's head and dispatches each decoded record to its source.

Nothing here raises for bad input: every problem becomes a warning naming file and line, a count
in ``Stats``, and the reader goes on with the next line, document or file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from ..model import Event, SourceRef
from . import JSON_SOURCES, TEXT_SOURCES, json_source, sniff
from . import ranges as _ranges
from .base import NotProcess, SourceError, TextParser
from .discover import expand, is_stream
from .documents import JsonDecoder, parses, short
from .lines import BOM, Framer, chain, transcode, whole_lines
from .rawinput import Input
from .stats import Stats, Warn

__all__ = ["BLOCK", "HEAD", "MAX_LINE", "InputError", "Reader", "Stats", "Warn", "is_stream"]

# Module globals, read at call time, so tests can patch them small.
BLOCK = 16 << 20  # bytes per read of line-delimited input
HEAD = 64 << 10  # first read of a file, used to sniff its format
MAX_LINE = 64 << 20
SNIFF_LINES = 64


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
        return expand(paths, self.stats, self.warn)

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
                self.stats.unreadable_input(self.warn, name, f"cannot open: {exc.strerror or exc}")
                continue
            self.stats.files += 1
            try:
                yield from self._read_stream(name, stream)
            finally:
                stream.close()

    def ranges(self, path: str, unit: int) -> list[tuple[int, int]] | None:
        """Byte ranges that split a large line-delimited JSON file for reading in parallel (see ``ranges.ranges``)."""
        return _ranges.ranges(path, unit, self.max_line, HEAD, lambda head: self._sniff(head, at_eof=False)[0] == "lines")

    def read_range(self, path: str, start: int, end: int) -> Iterator[Event]:
        """Events of the line-delimited JSON lines in bytes [start, end) of path (from ``ranges``).

        Line numbers count from the range's first line; the caller adds the lines before it.
        """
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by Input.close
        except OSError as exc:
            self.stats.unreadable_input(self.warn, path, f"cannot open: {exc.strerror or exc}")
            return
        stream = Input(raw, owned=True, plain=True, limit=end - start)
        try:
            raw.seek(start)
            if start == 0:
                self.stats.files += 1
            state = {"line": 0, "reuse": 1}
            framer = self._framer()
            decoder = self._decoder()
            blocks = framer.blocks(path, stream, state, HEAD, BLOCK)
            for lineno, line in framer.lines(path, blocks, state, self.literals, strip_bom=start == 0):
                yield from decoder.line(path, lineno, line)
        finally:
            stream.close()

    def _framer(self) -> Framer:
        return Framer(self.stats, self.warn, self.max_line, self.on_progress)

    def _decoder(self) -> JsonDecoder:
        return JsonDecoder(self.stats, self.warn, self._record, BLOCK)

    def json_line(self, name: str, lineno: int, line: bytes) -> Iterable[Event]:
        """One JSON line handed in from outside the reader's own loops (watch --tail), counted and warned about alike."""
        return self._decoder().line(name, lineno, line)

    # ---- mode and format -------------------------------------------------------------
    def _read_stream(self, name: str, stream: Input) -> Iterator[Event]:
        state = {"line": 0}
        framer = self._framer()
        decoder = self._decoder()
        blocks = framer.blocks(name, stream, state, HEAD, BLOCK)
        head = bytes(next(blocks, b""))  # the HEAD read: bytes, never the reused buffer
        at_eof = len(head) < HEAD
        if stream.stream:
            head, at_eof = whole_lines(head, blocks, HEAD)
        codec = sniff.utf16(head) if self.fmt == "auto" or self.fmt not in self.text_sources else None
        if codec is not None:
            # re-encoded as UTF-8 block by block: line numbers and framing stay those of the file
            blocks = transcode(codec, chain(head, blocks))
            head = bytes(next(blocks, b""))
        mode, text_fmt = self._sniff(head, at_eof=at_eof)
        if mode == "lines" and self.fmt == "auto" and _klog_json(head, at_eof):
            mode, text_fmt = "unknown", sniff.KLOG_JSON
        state["reuse"] = mode == "lines" and codec is None
        source = chain(head, blocks)
        if mode == "unknown":
            yield from self._unknown(name, framer, decoder, source, state, text_fmt or sniff.TEXT, stream.stream)
        elif mode == "text" and text_fmt:
            parser: TextParser = self.text_sources[text_fmt].Parser(name)
            for lineno, line in framer.lines(name, source, state, self._text_literals(text_fmt)):
                self.stats.parsed += 1
                yield from self._guard(name, lineno, parser.feed, text_fmt, lineno, line)
            yield from self._guard(name, None, parser.close, text_fmt)
        elif mode == "document":
            yield from decoder.documents(name, source, state, stream.stream)
        else:
            for lineno, line in framer.lines(name, source, state, self.literals):
                yield from decoder.line(name, lineno, line)

    def _unknown(
        self,
        name: str,
        framer: Framer,
        decoder: JsonDecoder,
        blocks: Iterable[bytes | bytearray],
        state: dict[str, int],
        kind: str,
        live: bool,
    ) -> Iterator[Event]:
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
        for lineno, line in framer.lines(name, blocks, state, self.literals):
            # the text between JSON lines (klog, say) is no bad record, nor is klog's JSON, which opens with "ts"
            lead = line.lstrip()
            if lead[:1] == b"{" and not lead.startswith(b'{"ts":'):
                yield from decoder.line(name, lineno, line)
        if not live and self.stats.events == before:
            self.stats.unknown_files[name] = kind
            self.warn(name, None, kind)

    def _text_literals(self, fmt: str) -> list[bytes] | None:
        lits = getattr(self.text_sources[fmt], "LITERALS", None)
        return list(lits) if lits and self.literals is not None else None

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
            if not body or any(parses(p) for p in candidates):
                return "lines", None  # a few lines of text before JSON lines: the text lines are bad records
            if self.fmt == "auto" or not candidates:
                return "unknown", sniff.unknown_kind(head)
            return "lines", None  # a format was named: every line is checked against it
        if not candidates:
            return "lines", None  # a first line longer than the head: line-delimited
        if parses(candidates[0]):
            return "lines", None
        # The first line is not a JSON value by itself: pretty-printed or concatenated documents,
        # unless it is just a broken line of a line-delimited file whose other lines parse.
        if any(parses(p) for p in candidates[1:]):
            return "lines", None
        return "document", None


    # ---- records ---------------------------------------------------------------------
    # _record and _guard return lists, not generators: one record's events are built whole anyway, and on a
    # dense log the two generator layers per record cost more than the dispatch itself
    def _record(self, name: str, lineno: int | None, obj: Any, nested: bool = False) -> Iterable[Event]:
        if isinstance(obj, list) and not nested:
            return self._items(name, lineno, obj)
        if not isinstance(obj, dict):
            self.stats.bad += 1
            self.warn(name, lineno, f"a JSON {_json_type(obj)}, not an object")
            return []
        if self.fmt != "auto":
            src = json_source(self.fmt)
            if src is None or not _matches(src, obj):
                self.stats.bad += 1
                self.warn(name, lineno, f"not a {self.fmt} record")
                return []
        else:
            for src in JSON_SOURCES:
                if _matches(src, obj):
                    break
            else:
                self.stats.unknown += 1
                self.warn(name, lineno, "record of no known format skipped")
                return []
        ref = SourceRef(src.FORMAT, name, lineno)  # positional: a third of the cost of keywords
        return self._guard(name, lineno, src.events, src.FORMAT, obj, ref)

    def _items(self, name: str, lineno: int | None, items: list[Any]) -> Iterator[Event]:
        """A top-level array's elements, one record each (events of one before the next is read)."""
        for item in items:
            yield from self._record(name, lineno, item, nested=True)

    def _guard(
        self, name: str, lineno: int | None, produce: Callable[..., Iterable[Event]], fmt: str, *args: Any
    ) -> list[Event]:
        """Run a source (``produce(*args)``); a bad record costs a warning, never the stream."""
        try:
            out = list(produce(*args))
        except NotProcess:
            self.stats.not_process += 1
            return []
        except SourceError as exc:
            self.stats.bad += 1
            self.warn(name, lineno, f"{fmt}: {short(str(exc))}")
            return []
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
            self.stats.bad += 1
            self.warn(name, lineno, f"{fmt}: unexpected record shape ({type(exc).__name__}: {short(str(exc))})")
            return []
        except Exception as exc:  # a bug in a source must not end the hunt
            self.stats.bad += 1
            self.warn(name, lineno, f"{fmt}: source failed on this record ({type(exc).__name__}: {short(str(exc))})")
            return []
        self.stats.events += len(out)
        by_format = self.stats.by_format
        for ev in out:
            by_format[ev.source.format or fmt] += 1
        return out


def _matches(src: Any, obj: dict[str, Any]) -> bool:
    try:
        return bool(src.match(obj))
    except Exception:
        return False


def _json_type(obj: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}.get(
        type(obj), type(obj).__name__
    )


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
