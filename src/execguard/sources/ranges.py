"""Cutting a large line-delimited file into byte ranges that workers read in parallel."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import IO

from . import sniff
from .rawinput import GZ_MAGIC


def ranges(path: str, unit: int, max_line: int, head_size: int, is_lines: Callable[[bytes], bool]) -> list[tuple[int, int]] | None:
    """Byte ranges, each ending just after a newline, that split a large line-delimited JSON
    file; None when the file cannot be split (stdin, gzip, a text or document format — which
    ``is_lines`` decides from the head — smaller than two units, or no newline near a cut)."""
    try:
        info = os.stat(path)
        size = info.st_size
        if size < 2 * unit or not stat.S_ISREG(info.st_mode):
            return None
        with open(path, "rb") as f:
            head = f.read(head_size)
            if head[:2] == GZ_MAGIC or sniff.utf16(head) or not is_lines(head):
                return None
            cuts = [0]
            for at in range(unit, size - unit // 2, unit):
                cut = _next_line(f, max(at, cuts[-1]), max_line, head_size)
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


def _next_line(f: IO[bytes], at: int, max_line: int, window_size: int) -> int | None:
    """Offset just past the first newline at or after ``at``; None if none within max_line bytes."""
    f.seek(at)
    seen = 0
    while seen <= max_line:
        window = f.read(window_size)
        if not window:
            return at + seen
        nl = window.find(b"\n")
        if nl != -1:
            return at + seen + nl + 1
        seen += len(window)
    return None
