"""One hunt, batch or live: events -> engine (here or in workers) -> policy -> filters/sort/dedupe -> sink.

``Hunt`` is the single code path. ``hunt.files(reader, paths, workers)`` reads files (serially, or
through forked workers planned by ``start_workers``); ``hunt.events(iterable)`` takes Events from
anything else, such as a live source; ``hunt.alerts(iterable)`` takes alerts already decided. Each
alert that survives goes to the sink and is counted (by severity, and by rule and actor for the
closing summary). The caller owns the sink and closes it; the CLI only parses options and prints.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..engine.match import Engine
from ..model import Alert, Event, severity_rank
from ..sinks import Sink
from ..sinks.summary import Summary
from . import nodescan, parallel, units
from .collector import fewer_collections
from .filters import AlertFilter
from .join import JoinOptions, JoinStage, decided
from .stages import Pipeline

SAMPLES = 5  # reads of the running count for -j 0, SAMPLE_GAP seconds apart (20 ms in all)
SAMPLE_GAP = 0.005

if TYPE_CHECKING:
    from ..policy import PolicyFilter
    from ..sources.reader import Reader


class Hunt:
    def __init__(
        self,
        engine: Engine,
        sink: Sink,
        keep: AlertFilter | None = None,
        sort: str | None = "time",
        policy: PolicyFilter | None = None,
        top: int = 5,
        extra: Sink | None = None,
        join: JoinOptions | None = None,
    ) -> None:
        self.engine = engine
        self.sink = sink
        self.extra = extra  # --store / --sink: they keep what the policy lets through
        self.policy = policy
        # sort None: a stream, alerts go out as they are found; sorted, the sink may see them all before (``ahead``)
        self.pipe = Pipeline(keep, sort=sort, ahead=getattr(sink, "ahead", None))
        self.summary = Summary(top)
        self.counts: Counter[str] = Counter()  # by severity, suppressed alerts shown with --show-suppressed left out
        self.worst = -1  # severity rank of the worst alert counted; -1 none
        # the join (engine/join.py): after the engine, before the policy; None: off
        self.join = None if join is None else JoinStage(join, sort is not None, policy.matcher.expected if policy else None)
        if self.join is not None:
            engine.join = True  # set before the reader's prefilter and any worker are planned

    def emit(self, alert: Alert) -> None:
        if alert.suppressed is None:  # suppressed ones shown with --show-suppressed neither count nor fail
            lead = alert.lead  # Alert.lead searches the matches each time: once here
            severity = lead.severity
            self.counts[severity] += 1
            self.worst = max(self.worst, severity_rank(severity))
            self.summary.add(alert, lead)
        self.sink.write(alert)
        if self.extra is not None and alert.suppressed is None:
            self.extra.write(alert)

    def alerts(self, alerts: Iterable[Alert]) -> None:
        if self.policy is not None:
            alerts = self.policy.filter(alerts)  # here, after correlation: -j gives the same result
        self.pipe.run(alerts, self.emit)

    def numbered(self, alerts: Iterable[tuple[Alert, int]]) -> None:
        """Alerts with their input sequence numbers (the join's output)."""
        if self.policy is not None:
            policy = self.policy
            alerts = ((out, seq) for alert, seq in alerts if (out := policy(alert)) is not None)
        self.pipe.run_numbered(alerts, self.emit)

    def events(self, events: Iterable[Event], scan: Callable[[], bool] | None = None) -> None:
        """``scan``: for the join, whether no input can hold node telemetry (JoinStage.run)."""
        if self.join is None:
            self.alerts(self.engine.run(events))
        else:
            self.numbered(self.join.run(decided(self.engine, events), scan=scan))

    def files(self, reader: Reader, paths: list[str], workers: parallel.ParallelHunt | None = None) -> None:
        """Hunt ``paths`` (as ``start_workers`` returned them when ``workers`` is given)."""
        with fewer_collections():
            if workers is None:
                self.events(reader.read(paths), lambda: nodescan.clean_files(paths))
            elif self.join is None:
                self.alerts(workers.alerts())
            else:
                self.numbered(self.join.run(workers.decided(), lambda: workers.node_free))

    @property
    def dropped(self) -> int:
        """Alerts the time, namespace, pod, user and rule filters left out."""
        keep = self.pipe.keep
        return keep.dropped if keep is not None else 0

    @property
    def merged(self) -> int:
        """Docker execs seen in both docker events and the dockerd log, reported once."""
        return self.pipe.dedupe.merged


def start_workers(
    reader: Reader, engine: Engine, paths: list[str], jobs: int, idle: bool = False, probe: IdleProbe | None = None
) -> tuple[parallel.ParallelHunt | None, list[str]]:
    """Forked workers for ``paths`` when ``jobs`` > 1 and the work is worth them, and the paths to hunt.

    ``idle``: ``jobs`` came from ``idle_jobs`` (-j 0): once the work is known to be worth workers, the CPUs
    are counted again over a few reads of the running count (20 ms), those ``probe`` took meanwhile if given.
    Start them before any thread (a progress bar's) exists. The paths come back de-duplicated when
    planned, as the workers see them.
    """
    planned = units.plan(reader, paths) if jobs > 1 else None
    if probe is not None:
        # its thread ends here, whatever is decided next: no thread may be alive at a fork (the workers', or the
        # JSON-lines sink's helper, which a live thread turns off)
        probe.running()
    if planned is None:
        return None, paths
    files = list(dict.fromkeys(u.path for u in planned))
    if not (units.worth_it(planned, jobs) and parallel.can_fork()):
        return None, files
    if idle:
        jobs = min(jobs, idle_jobs(parallel.available_jobs(), SAMPLES, probe))
        if jobs < 2:
            return None, files
    return parallel.ParallelHunt(reader, engine, planned, jobs), files


class IdleProbe:
    """-j 0's reads of the running count (``_running_others``), taken on a thread while the hunt loads its rules and
    plans its work: they were a 20 ms sleep before the workers started, ~1 % of a dense hunt on a busy machine.
    ``running`` joins the thread; ``start_workers`` calls it once the work is planned, so it is gone before any fork."""

    def __init__(self, samples: int = SAMPLES, gap: float = SAMPLE_GAP) -> None:
        self._seen: int | None = None
        # the hunt's own thread runs beside the probe's: it is no other work either
        starting = threading.get_native_id()
        self._thread = threading.Thread(target=self._read, args=(samples, gap, starting), name="execguard-idle-probe", daemon=True)
        self._thread.start()

    def _read(self, samples: int, gap: float, starting: int) -> None:
        self._seen = _running_others(samples, gap, starting)

    def running(self) -> int | None:
        self._thread.join()
        return self._seen


def idle_probe(paths: list[str]) -> IdleProbe | None:
    """An ``IdleProbe`` for a -j 0 hunt of ``paths``, when its reads may be needed: some CPU is busy by the load
    average (else they could only lower the count, and are never read) and the inputs are not too small to be worth
    workers (``units.worth_it``) even if every line is an exec. A small hunt, one reading stdin (never cut into
    units) or one on a single usable CPU starts no thread."""
    if "-" in paths or parallel.available_jobs() < 2:
        return None
    try:
        if int(os.getloadavg()[0]) == 0:
            return None
    except OSError:  # pragma: no cover - no load average (not Linux)
        return None
    size = 0
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue  # missing: the reader warns about it
        size += st.st_size if stat.S_ISREG(st.st_mode) else units.MIN_TOTAL  # a directory: may be large
    return IdleProbe() if size * (1 + units.HIT_COST) >= units.MIN_TOTAL else None


def usable_jobs(asked: int, probe: IdleProbe | None = None) -> tuple[int, int | None]:
    """-j as asked (0: one per idle usable CPU), capped at the CPUs this process may run on; and the cap when it applied.

    With a ``probe`` under way, -j 0 is every usable CPU until ``start_workers`` has its reads (a read here would
    count the probe's thread as other work)."""
    usable = parallel.available_jobs()
    if asked > usable:
        return usable, usable  # more workers than CPUs only contend
    return asked or (usable if probe is not None else idle_jobs(usable)), None


def idle_jobs(usable: int, samples: int = 1, probe: IdleProbe | None = None) -> int:
    """One worker per usable CPU that other work leaves idle (the 1-minute load average), at least one.

    Workers pay for their spools and the parent's replay; on CPUs other processes keep busy they only
    contend, and a hunt with workers ran slower than one process (benchmarks/RESULTS.md, issue 10).
    The average lags by a minute, so a hunt run just after another would see its own predecessor as
    other work: a CPU counts as busy only while something else is runnable now too (/proc/loadavg), in at least
    two of ``samples`` reads (``_running_others``, or those ``probe`` took), read only when the average says some
    CPU is busy.
    """
    try:
        busy = int(os.getloadavg()[0])
    except OSError:  # pragma: no cover - no load average (not Linux)
        return usable
    if busy == 0:
        return usable  # the reads below could only lower it: no 20 ms of them before the workers start
    running = probe.running() if probe is not None else _running_others(samples)
    if running is not None:
        busy = min(busy, running)
    return max(1, min(usable, usable - busy))


def _running_others(samples: int = SAMPLES, gap: float = SAMPLE_GAP, also: int | None = None) -> int | None:
    """Tasks runnable besides this one (the fourth field of /proc/loadavg, "running/total"), as at least two of a
    few reads ``gap`` seconds apart saw them (the second most; the one read when ``samples`` is 1).

    Other sessions' work runs in bursts (tests, builds): one read often caught them between two, and the default
    run started two workers beside them and was slower than one process (issue 10), so one read is not enough.
    The most of the reads was too much: a task that runs for a millisecond now and then (a monitor, a benchmark's
    memory sampler) turned the workers off for the whole hunt whenever one read caught it. ``also``: another thread
    of this process (``IdleProbe``'s caller), not counted when it is runnable at the read."""
    seen: list[int] = []
    for i in range(samples):
        if i:
            time.sleep(gap)
        try:
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0]) - 1
            if also is not None and _runnable(also):
                running -= 1
            seen.append(max(0, running))
        except (OSError, ValueError, IndexError):
            return None
    seen.sort(reverse=True)
    return seen[min(1, len(seen) - 1)] if seen else None


def _runnable(thread: int) -> bool:
    """Whether this process's thread ``thread`` (a native id) is runnable now (state R in /proc)."""
    try:
        with open(f"/proc/self/task/{thread}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "R"
    except (OSError, IndexError):
        return False
