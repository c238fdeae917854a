"""Line framing: an input's bytes in large blocks, cut into numbered lines, prefilter-scanned.

Memory stays flat in the input size: one block, one copy of its complete lines and at most
``max_line`` bytes of a partial line (``Stats.peak_buffer`` records the most held). Sizes are
passed in by the reader, whose module globals tests patch small.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator

from .find import count_newlines, line_starts
from .rawinput import Input
from .stats import Stats, Warn

BOM = b"\xef\xbb\xbf"


class Framer:
    """Blocks and lines of one input, with over-long lines skipped and counted as bad."""

    def __init__(self, stats: Stats, warn: Warn, max_line: int, on_progress: Callable[[int], None] | None = None) -> None:
        self.stats = stats
        self.warn = warn
        self.max_line = max_line
        self.on_progress = on_progress

    def blocks(self, name: str, stream: Input, state: dict[str, int], head: int, block_size: int) -> Iterator[bytes | bytearray]:
        """Blocks of the stream: ``head`` bytes first, then ``block_size`` at a time.

        Once the caller sets ``state["reuse"]`` (line mode, which is done with a block before it asks
        for the next) plain files are read into one reused buffer: no allocation and page faults per block.
        A range of a file (``stream.limit``) smaller than a block is read at its own size: a worker reads a
        dense log in ~1 MB ranges, and a 16 MB buffer allocated and zeroed for each cost more than reading it.
        """
        size = head
        buf: bytearray | None = None
        short = False  # the last read ended the file: no 16 MB buffer to allocate (and zero) for what is left
        while True:
            before = stream.consumed
            if stream.limit is not None and size == block_size:
                short = short or stream.limit - stream.consumed < block_size
            try:
                block: bytes | bytearray
                if state.get("reuse") and size == block_size and not stream.gzip and not stream.stream and not short:
                    if buf is None:
                        buf = bytearray(block_size)
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
            short = len(block) < size
            self.stats.bytes += len(block)
            yield block
            size = block_size

    def lines(
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
        held = stats.held
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
                        held(len(block) + len(pending))
                    continue
                if len(pending) + nl > max_line:
                    self._too_long(name, base + 1)
                else:
                    line = pending + bytes(block[:nl])
                    held(len(block) + len(line))
                    if (literals is None or any(lit in line for lit in literals)) and line.strip():
                        yield base + 1, line
                pending = b""
                base += 1
                stats.lines += 1
                start = nl + 1
            cut = block.rfind(b"\n") + 1
            if cut > start:
                held(len(block))
                skip = self._long_lines(name, block, start, cut, base) if cut - start > max_line else None
                last = (start, 1)  # newlines before the last candidate are counted already
                for offset, lineno in line_starts(block, literals, start, cut):
                    last = offset, lineno
                    if skip and offset in skip:
                        continue
                    line = bytes(block[offset : block.index(b"\n", offset)])
                    if line and not line.isspace():  # blank: strip() would copy the line to say so
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
        """Offsets of lines longer than max_line in block[offset:end] (only possible when max_line < the block size)."""
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


def whole_lines(head: bytes, blocks: Iterator[bytes | bytearray], limit: int) -> tuple[bytes, bool]:
    """A stream's head grown to hold a complete line (what it has sniffed from); and whether the stream ended."""
    while b"\n" not in head and len(head) < limit:
        more = next(blocks, None)
        if more is None:
            return head, True
        head += more
    return head, False


def transcode(codec: str, blocks: Iterable[bytes | bytearray]) -> Iterator[bytes]:
    """UTF-16 blocks re-encoded as UTF-8, block by block: line numbers and framing stay those of the file."""
    dec = codecs.getincrementaldecoder(codec)(errors="replace")
    for block in blocks:
        out = dec.decode(block)
        if out:
            yield out.encode("utf-8")
    out = dec.decode(b"", final=True)
    if out:
        yield out.encode("utf-8")


def chain(head: bytes | bytearray, rest: Iterator[bytes | bytearray]) -> Iterator[bytes | bytearray]:
    if head:
        yield head
    yield from rest
