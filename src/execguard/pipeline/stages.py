"""What happens to alerts between the engine and a sink: filters, order, Docker de-duplication.

Two modes. Streaming (stdin or another pipe among the inputs): each alert that passes the
filters goes out as soon as it is found, in input order. Sorted (every input a regular file or a
directory): alerts are sorted by time with bounded memory (order.py), the same exec seen
in docker events and the dockerd log is folded into one alert (dedupe.py), and the
result comes out in the order asked for once the inputs are read.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ..model import Alert
from .dedupe import DockerDedupe, docker_exec
from .filters import AlertFilter
from .order import KEYS, RUN, SpillSorter


def sortable(paths: Iterable[str]) -> bool:
    """True when every input is a regular file or a directory: the hunt ends, so it can be sorted."""
    for p in paths:
        if p == "-":
            return False
        try:
            mode = Path(p).stat().st_mode
        except OSError:
            continue  # reported as unreadable by the reader
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return False
    return True


class Pipeline:
    """``run`` feeds engine alerts through; ``emit`` receives what the sink should get, in order."""

    def __init__(
        self,
        keep: AlertFilter | None = None,
        sort: str | None = "time",
        run_size: int = RUN,
        ahead: Callable[[Sequence[Alert]], None] | None = None,
    ) -> None:
        self.keep = keep if keep is not None and keep.active else None
        self.sort = sort  # None: streaming, input order
        # told every alert the time sort lets out, before the first goes: when the sort held them all in memory
        self.ahead = ahead
        self.seq = 0
        self.dedupe = DockerDedupe()
        self._by_time = SpillSorter(KEYS["time"], run_size) if sort else None
        self._run_size = run_size
        # a Docker exec or attach alert was sorted: without one the de-duplication could fold nothing
        self._docker = False

    def feed(self, alert: Alert, seq: int | None = None) -> Iterator[Alert]:
        """``seq``: the alert's place in the input when a stage before (the join) reordered alerts."""
        if self.keep is not None and not self.keep.keep(alert):
            return
        self.seq = self.seq + 1 if seq is None else seq
        if self._by_time is None:
            yield alert
        else:
            if not self._docker:
                self._docker = docker_exec(alert)
            self._by_time.add(alert, self.seq)

    def drain(self) -> Iterator[Alert]:
        if self._by_time is None:
            return
        timed, self._by_time = self._by_time, None
        held = not timed.runs  # none spilled: every alert is in memory already
        merged = self._merged(timed)
        if self.sort == "time":
            if self.ahead is not None and held:
                ordered = [alert for alert, _ in merged]
                self.ahead(ordered)
                yield from ordered
                return
            for alert, _ in merged:
                yield alert
            return
        final = SpillSorter(KEYS[self.sort or "input"], self._run_size)
        try:
            for alert, seq in merged:
                final.add(alert, seq)
            for alert, _ in final.drain():
                yield alert
        finally:
            final.close()

    def _merged(self, timed: SpillSorter) -> Iterator[tuple[Alert, int]]:
        try:
            if not self._docker:  # it would hold each alert for its window and let it go unchanged, in order
                yield from timed.drain()
                return
            for alert, seq in timed.drain():
                yield from self.dedupe.feed(alert, seq)
            yield from self.dedupe.drain()
        finally:
            timed.close()

    def run(self, alerts: Iterable[Alert], emit: Callable[[Alert], None]) -> None:
        """Every alert through to ``emit``; what was sorted so far still goes out on Ctrl-C or a read error."""
        self.run_numbered(((a, None) for a in alerts), emit)

    def run_numbered(self, alerts: Iterable[tuple[Alert, int | None]], emit: Callable[[Alert], None]) -> None:
        try:
            for alert, seq in alerts:
                for ready in self.feed(alert, seq):
                    emit(ready)
        except BrokenPipeError:
            raise
        except BaseException:
            for ready in self.drain():
                emit(ready)
            raise
        for ready in self.drain():
            emit(ready)
