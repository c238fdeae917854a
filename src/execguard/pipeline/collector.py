"""How often Python's cyclic collector runs while a hunt reads files, in the parent and in its workers."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

# A hunt allocates millions of short-lived objects (records, events, hits, replayed tuples) and makes no
# cycles (none found after a dense hunt with the collector off, parallel or not). What a young collection
# costs is the objects it finds alive: the events and alerts the join and the sort hold (bounded by their
# RUN limits, ~400 000 objects on a dense log), each traversed once more. At a young collection every 20 000
# net allocations that cost the parent of a dense default run 0.3-0.7 s of CPU, more than reading its workers'
# spools; a threshold above what a hunt holds means the collector runs only if something does leak cycles,
# which then stay bounded (benchmarks/RESULTS.md, issue 10). Python's default is 700.
YOUNG = 500_000


def collect_less() -> None:
    """For a process that only hunts (a worker): young collections every ``YOUNG`` allocations."""
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """``collect_less`` while files are hunted, then the thresholds as they were (in a process that ends with the
    hunt, ``ending``'s: the same)."""
    threshold = gc.get_threshold()
    collect_less()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


# What a hunt's last stage let go of, when the process ends with the hunt (``ending``): freeing a dense hunt's sorted
# alerts one object at a time took 20-28 ms at its very end (7 038 alerts, sim-40M); the program's exit frees nothing.
_LEFT: list[Any] = []
_ending = False


def ending() -> None:
    """This process ends when the hunt does (the ``execguard`` program, not an app run inside another process): its
    collections run at the hunt's pace from now to the exit, the hunt's own imports included (giving the old
    thresholds back at the end collected the ~150 000 young objects a dense hunt leaves: 100-112 ms after sim-40M's
    alerts were written, for nothing the exit needs), and what the hunt lets go of at the end is left for the exit."""
    global _ending
    _ending = True
    collect_less()


def drop(obj: Any) -> None:
    """``obj`` is being let go of: left for the exit instead when the process ends with the hunt (``ending``).
    For what is let go of once, at the end (bounded: what the sort held in memory)."""
    if _ending:
        _LEFT.append(obj)
