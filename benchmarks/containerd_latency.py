"""`watch --containerd` on a throw-away test daemon's containerd (needs root, dockerd, containerd, busybox).

Per exec: how long after containerd published /tasks/exec-started the process was read from /proc (the
window in which a short-lived exec can vanish), the exec → alert latency (clock read just before the
exec create request; alert time when the sink receives it), and whether the argv was still there. Two
kinds of exec, one after the other: `sh -c "echo N; sleep 0.05; true"` (lives ~50 ms) and `true`
(exits at once). Usage: .venv/bin/python benchmarks/containerd_latency.py [--execs 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.live.containerd import ContainerdInput
from execguard.live.inputs import EventStream, supervise
from execguard.live.metrics import Metrics
from execguard.live.runner import Detector, Runner
from execguard.model import Alert, Process
from execguard.testing.dockerd import IMAGE, start_dockerd


class Clock:
    def __init__(self) -> None:
        self.seen: dict[str, tuple[float, Alert]] = {}
        self.cond = threading.Condition()

    def write(self, alert: Alert) -> None:
        with self.cond:
            self.seen.setdefault(alert.event.event_id or "", (time.perf_counter(), alert))
            self.cond.notify_all()

    def close(self) -> None:
        pass

    def wait(self, exec_id: str, timeout: float = 10.0) -> tuple[float, Alert] | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while exec_id not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.seen[exec_id]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--execs", type=int, default=200, help="execs of each kind")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    d = start_dockerd()
    read_lag: dict[str, float] = {}  # exec id -> ms from the event's publication to the /proc read
    try:
        sock = d.exec_root / "containerd" / "containerd.sock"
        inp = ContainerdInput(f"unix://{sock}")
        process = inp.procs.process

        def timed(pid: int, event_ns: int = 0, exec_id: str | None = None) -> tuple[list[str], Process]:
            out = process(pid, event_ns, exec_id)
            read_lag[exec_id or ""] = (time.time_ns() - event_ns) / 1e6
            return out

        inp.procs.process = timed  # type: ignore[method-assign]
        clock = Clock()
        runner = Runner(Detector(Engine(load_rules([])), None, 0), clock, Metrics(), None, lambda m: None)
        supervise(EventStream(inp), runner.queue, runner.stop, print)

        def engine_loop() -> None:
            while not runner.stop.is_set():
                runner.step(0.1)

        threading.Thread(target=engine_loop, daemon=True).start()
        assert inp.connected.wait(30)
        api = d.client().api
        c = d.client().containers.run(IMAGE, ["sleep", "3600"], detach=True, network_mode="none")
        time.sleep(1.0)  # the subscription settles at containerd's end
        results: dict[str, Any] = {}
        for kind, cmd in (("short", ["sh", "-c", "echo {n}; sleep 0.05; true"]), ("instant", ["true"])):
            latency: list[float] = []
            lags: list[float] = []
            read = missed = 0
            for n in range(args.execs):
                argv = [a.format(n=n) for a in cmd]
                t0 = time.perf_counter()
                exec_id = api.exec_create(c.id, argv)["Id"]
                api.exec_start(exec_id, detach=True)
                got = clock.wait(exec_id)
                if got is None:
                    missed += 1
                    continue
                latency.append((got[0] - t0) * 1000)
                lags.append(read_lag.get(exec_id, float("nan")))
                read += got[1].event.command == argv
            results[kind] = {
                "execs": args.execs, "alerts": args.execs - missed, "argv_read": read,
                "alert_p50_ms": round(statistics.median(latency), 1), "alert_p99_ms": round(pct(latency, 99), 1),
                "read_lag_p50_ms": round(statistics.median(lags), 2), "read_lag_p99_ms": round(pct(lags, 99), 2),
            }  # fmt: skip
            print(kind, results[kind])
        results["load"] = os.getloadavg()
        print("load average", " ".join(f"{x:.2f}" for x in results["load"]))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        runner.stop.set()
        c.remove(force=True)
    finally:
        d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
