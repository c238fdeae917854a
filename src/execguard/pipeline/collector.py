"""How often Python's cyclic collector runs while a hunt reads files, in the parent and in its workers."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# A hunt allocates millions of short-lived objects (records, events, hits, replayed tuples) and makes few
# cycles: at Python's default of a young collection every 700 allocations, the collector took 5-10 % of a
# dense hunt's CPU in workers and parent alike (benchmarks/RESULTS.md, issue 10).
YOUNG = 20_000


def collect_less() -> None:
    """For a process that only hunts (a worker): young collections every ``YOUNG`` allocations."""
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """``collect_less`` while files are hunted, then the thresholds as they were."""
    threshold = gc.get_threshold()
    collect_less()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
