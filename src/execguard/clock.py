"""An event's time as nanoseconds, parsed once per hunt.

The correlation windows (engine/correlate.py), the join, the time sort and the Docker de-duplication each read
an event's time, and ``times.time_ns`` keeps only the last 1024 stamps: on a dense log most stamps were parsed
again, the sort's and the de-duplication's long after the join's. With workers the parent parses none: each
worker sends the time it parsed beside the event (pipeline/wire.py) and the replay ``learn``s it. Here, not in
pipeline/, because the engine reads it too; one parse also means one answer: a stamp the sort places is one the
correlation windows place, at the same time.
"""

from __future__ import annotations

from .times import time_ns as _parse

LIMIT = 1 << 15  # stamps remembered; then forgotten all at once (a few MB at most)
_known: dict[str, int | None] = {}


def learn(value: str | None, ns: int | None) -> None:
    """``value`` parsed elsewhere (a worker) as ``ns``."""
    if value:
        if len(_known) >= LIMIT:
            _known.clear()
        _known[value] = ns


def time_ns(value: str | None) -> int | None:
    """``times.time_ns``, remembered."""
    if not value:
        return None
    ns = _known.get(value, _UNKNOWN)  # not a KeyError: a serial hunt's first reader (correlation) misses every time
    if ns is _UNKNOWN:
        ns = _parse(value)
        learn(value, ns)
    return ns  # type: ignore[return-value]


_UNKNOWN = object()
