"""The life of a ``watch`` process: inputs, the receiver process, metrics ports, the engine loop, signals, drain.

Until SIGTERM or Ctrl-C the engine runs in the calling (main) thread and each input in its own;
the webhook's receiver, if any, runs in a process of its own (live/receiver.py) and is started
again if it dies. SIGHUP reloads rules and policy between two batches. On SIGTERM: the receiver
drains (503 for new POSTs, requests in flight finish) and exits, then every batch queued and
everything spooled is alerted on (up to ``drain_seconds``), the state file saved, the inputs stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from .handoff import Shared, SpoolReader, answer_metrics
from .inputs import Input, supervise
from .receiver import ReceiverProcess
from .runner import Detector, Runner
from .webhook import Receiver, serve


@dataclass
class Service:
    runner: Runner
    inputs: list[Input]
    reload_detector: Callable[[], Detector]  # raises one of ``reload_errors`` with a message for ``describe``
    reload_errors: tuple[type[Exception], ...]
    describe: Callable[[Exception], str]
    note: Callable[[str], None]
    warn: Callable[[str], None]
    error: Callable[[str], None]
    receiver: ReceiverProcess | None = None
    reader: SpoolReader | None = None
    shared: Shared | None = None
    metrics_ports: list[Receiver] = field(default_factory=list)
    drain_seconds: float = 30.0
    engine_nice: int = 10  # with a receiver process: how much lower the engine's CPU priority is (0 = the same)

    def run(self) -> bool:
        """Serve until a stop signal; True when everything queued and spooled was alerted on before exiting."""
        stopping = threading.Event()
        reload = threading.Event()

        def on_stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            reload.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        runner = self.runner
        receiving = self.receiver.supervise(stopping, self.drain_seconds) if self.receiver is not None else None
        if receiving is not None and self.engine_nice > 0:
            # the receiver's answer waits for nothing but an fsync; the engine has the spool to catch up from.
            # On a busy machine the engine would otherwise take the CPU the receiver's answers need
            # (docs/watch.md "Two processes"). Per thread: this one, and the input threads started below.
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + self.engine_nice)
        threads = [supervise(inp, runner.queue, runner.stop, self.warn) for inp in self.inputs]
        if self.shared is not None:
            answer_metrics(self.shared, runner.metrics, runner.stop)
        for port in self.metrics_ports:
            serve(port)
        self.note("watch: " + ", ".join(inp.name for inp in self.inputs))
        while not stopping.is_set() and not runner.broken:
            runner.step(0.2)
            if reload.is_set():
                reload.clear()
                self._reload()
        # drain: the receiver refuses new batches and finishes the ones in flight; then alert on everything spooled
        if self.shared is not None:
            self.shared.ready.value = 0
        for port in self.metrics_ports:
            port.draining = True
        stopping.set()  # also when stdout's reader went away
        if receiving is not None:
            receiving.join(self.drain_seconds + 10)
        idle = self.reader.empty if self.reader is not None else lambda: True
        drained = runner.broken or runner.drain(idle, self.drain_seconds)
        runner.stop.set()
        for t in threads:
            t.join(5)  # the inputs close their files and sockets
        for port in self.metrics_ports:
            port.shutdown()
            port.server_close()
        return drained

    def _reload(self) -> None:
        try:
            old, new = self.runner.detector, self.reload_detector()
            if old.join is not None and new.join is not None:
                old.join.expected = new.join.expected  # the join's state (and pending bypass verdicts) outlives a reload
                new.join = old.join
            self.runner.detector = new
            self.runner.metrics.reloads.labels(result="ok").inc()
            self.note("watch: rules and policy reloaded")
        except self.reload_errors as exc:
            self.runner.metrics.reloads.labels(result="failed").inc()
            self.error(f"reload failed, keeping the rules and policy in use: {self.describe(exc)}")
