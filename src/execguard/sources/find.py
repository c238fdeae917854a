"""Find the lines of a block that hold any of a few byte literals, without splitting the block."""

from __future__ import annotations

from collections.abc import Iterator


def line_starts(chunk: bytes, literals: list[bytes] | None) -> Iterator[tuple[int, int]]:
    """Yield (offset, 1-based line number within chunk) of candidate lines, in order.

    ``chunk`` ends with a newline. With no literals every line is a candidate.
    """
    if literals is None:
        offset = 0
        lineno = 1
        size = len(chunk)
        while offset < size:
            yield offset, lineno
            offset = chunk.index(b"\n", offset) + 1
            lineno += 1
        return
    starts: set[int] = set()
    for lit in literals:
        i = chunk.find(lit)
        while i != -1:
            start = chunk.rfind(b"\n", 0, i) + 1
            starts.add(start)
            end = chunk.find(b"\n", i)
            i = chunk.find(lit, end)
    prev = 0
    lineno = 1
    for start in sorted(starts):
        lineno += chunk.count(b"\n", prev, start)
        prev = start
        yield start, lineno
