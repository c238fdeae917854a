"""Units of work for a hunt's workers: which files, and which byte ranges of large line-delimited ones.

Estimated work, not bytes, decides the cuts (``weight``): a dense exec log costs ~100x a sparse one per byte.
The first cut file starts with small ranges (``_ramp``: the parent reads the first before the fork and replays
from the start) and the last range of the plan is cut small again (``_ramp_down``: the workers end together).
pipeline/parallel.py runs the units; every cut is at a newline, so the ranges read the same lines as the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO

from ..sources.find import line_starts
from ..sources.reader import Reader

UNIT = 64 << 20  # bytes of a sparse file handed to one worker at a time
MIN_UNIT = 1 << 20  # the smallest range a dense file is cut into: a 2 MB exec-heavy file is worth two processes
MIN_TOTAL = 32 << 20  # estimated work (in bytes of a sparse log) below which a serial hunt is as fast as workers
# A line that passes the prefilter is parsed and matched: measured at ~6 MB/s against ~800 MB/s for lines
# the prefilter skips, so a byte of such a line costs ~130 skipped bytes (rounded down: planning errs on fewer cuts).
HIT_COST = 100
SAMPLES = 8  # windows read to estimate the share of a file's bytes on lines that pass the prefilter
SAMPLE = 64 << 10
SAMPLED = 1 << 20  # smaller files count as sparse: sampling would cost more than it can save
WARM = 32 << 10  # the first range of the first cut file, read by the parent before the fork (see parallel.ParallelHunt)
TAIL = 4  # parts the plan's last range is cut into (see _ramp_down)


@dataclass(frozen=True)
class Unit:
    path: str
    start: int | None = None  # None: the whole file, read as a serial hunt would
    end: int | None = None
    size: int = 0  # bytes on disk, for progress
    work: int = 0  # estimated cost, in bytes of a sparse log (see weight)


def plan(reader: Reader, paths: list[str], unit: int = UNIT) -> list[Unit] | None:
    """Units of work for ``paths`` in input order; None when stdin is among them (it cannot be shared).

    Work, not bytes, decides the cuts: a file whose lines mostly pass the prefilter (an exec-heavy log)
    costs far more per byte than a sparse one, so it is cut into proportionally smaller ranges
    (``unit`` divided by its ``weight``, at least ``MIN_UNIT``) and can be shared by the workers.
    """
    if "-" in paths:
        return None
    units: list[Unit] = []
    ramped = False
    last_cut: int | None = None  # where the last cut file's units start
    for path in reader.expand(paths):
        try:
            size = os.stat(path).st_size
        except OSError:
            size = 0
        w = weight(path, size, reader.literals) if size >= min(SAMPLED, unit) else 1.0
        cut = max(min(MIN_UNIT, unit), int(unit / w))
        ranges = reader.ranges(path, cut)
        if ranges is None:
            units.append(Unit(path, size=size, work=int(size * w)))
        else:
            if not ramped:  # the first cut file starts with small ranges: the parent replays from the start
                ranges, ramped = _ramp(path, ranges, reader.max_line), True
            last_cut = len(units)
            units.extend(Unit(path, a, b, b - a, int((b - a) * w)) for a, b in ranges)
    if last_cut is not None and last_cut < len(units) - 1 and units[-1].start is not None:
        units[-1:] = _ramp_down(units[-1], reader.max_line)
    return units


def _ramp_down(unit: Unit, max_line: int) -> list[Unit]:
    """The last range of the plan, when it is a range of a file cut in several, cut again in ``TAIL`` parts at
    newlines. The workers take units in turn, so one may still read the last range while the other has
    finished, and the parent replays it only then, alone: smaller last ranges end both sooner."""
    start, end = unit.start or 0, unit.end or 0
    step = (end - start) // TAIL
    if step < WARM:
        return [unit]
    cuts = [start]
    try:
        with open(unit.path, "rb") as f:
            for i in range(1, TAIL):
                cut = _line_end(f, start + i * step, max_line)
                if cut is None or cut >= end:
                    break
                if cut > cuts[-1]:
                    cuts.append(cut)
    except OSError:
        return [unit]
    per_byte = unit.work / unit.size if unit.size else 1.0
    return [Unit(unit.path, a, b, b - a, int((b - a) * per_byte)) for a, b in zip(cuts, [*cuts[1:], end], strict=True)]


def _ramp(path: str, ranges: list[tuple[int, int]], max_line: int) -> list[tuple[int, int]]:
    """``ranges`` with the first cut again at newlines after WARM, 2 x WARM, 4 x WARM ... bytes.

    The parent reads the first range itself before the fork (see parallel.ParallelHunt) and replays what a worker
    found only once that worker has finished its range: small first ranges let it start at once and keep it
    fed while the workers are on their first ranges. Any cut at a newline reads the same lines.
    """
    start, end = ranges[0]
    cuts = [start]
    size = WARM
    try:
        with open(path, "rb") as f:
            while cuts[-1] + size + WARM < end:
                cut = _line_end(f, cuts[-1] + size, max_line)
                if cut is None or cut >= end:
                    break  # an over-long line: the range stays as it is
                cuts.append(cut)
                size = size if len(cuts) < 3 else size * 2
    except OSError:
        return ranges
    return [*zip(cuts, [*cuts[1:], end], strict=True), *ranges[1:]]


def _line_end(f: IO[bytes], at: int, max_line: int) -> int | None:
    """The offset just past the first newline at or after ``at``, looked for over at most ``max_line`` bytes."""
    f.seek(at)
    seen = 0
    while seen <= max_line:
        window = f.read(SAMPLE)
        if not window:
            return None
        nl = window.find(b"\n")
        if nl >= 0:
            return at + seen + nl + 1
        seen += len(window)
    return None


def weight(path: str, size: int, literals: list[bytes] | None) -> float:
    """Estimated cost of a byte of ``path`` relative to a byte of a sparse log: 1 + HIT_COST x the share of
    sampled bytes on lines holding a prefilter literal (every line, with no prefilter)."""
    if literals is None:
        return 1.0 + HIT_COST
    hit = seen = 0
    try:
        with open(path, "rb") as f:
            if f.read(2) == b"\x1f\x8b":  # gzip: not cut, and its bytes say nothing about its lines
                return 1.0
            step = max(size // SAMPLES, SAMPLE)
            for at in range(0, max(size - SAMPLE, 0) + 1, step):
                f.seek(at)
                window = f.read(SAMPLE)
                first, last = window.find(b"\n") + 1, window.rfind(b"\n") + 1  # whole lines only
                if first >= last:
                    continue
                seen += last - first
                # the reader's own scan (Hyperscan when installed): a regex per line took 12-23 ms before the fork
                for begin, _ in line_starts(window, literals, first, last):
                    hit += window.index(b"\n", begin) + 1 - begin
    except OSError:
        return 1.0
    return 1.0 + HIT_COST * (hit / seen if seen else 0.0)


def worth_it(planned: list[Unit], jobs: int) -> bool:
    """Workers pay for themselves: more than one job and one unit, and at least ``MIN_TOTAL`` of estimated work."""
    return jobs > 1 and len(planned) > 1 and sum(u.work or u.size for u in planned) >= MIN_TOTAL
