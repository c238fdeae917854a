"""Docker exec → alert latency of `watch --docker` on a throw-away test daemon (needs root, dockerd, busybox).

Each sample: the clock is read just before the exec create request is sent; the alert's time is when the
sink receives it (events stream → /exec/ID/json → engine → sink). The exec is started detached, as
`docker exec -d` does. Usage: .venv/bin/python benchmarks/docker_latency.py [--execs 300] [--json FILE]
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

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.live.docker import DockerInput
from execguard.live.inputs import EventStream, supervise
from execguard.live.metrics import Metrics
from execguard.live.runner import Detector, Runner
from execguard.model import Alert
from execguard.testing.dockerd import IMAGE, start_dockerd


class Clock:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()

    def write(self, alert: Alert) -> None:
        with self.cond:
            self.seen.setdefault(alert.event.event_id or "", time.perf_counter())
            self.cond.notify_all()

    def close(self) -> None:
        pass

    def wait(self, exec_id: str, timeout: float = 10.0) -> float | None:
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
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--execs", type=int, default=300)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    daemon = start_dockerd()
    try:
        inp = DockerInput(daemon.url)
        clock = Clock()
        warn = lambda m: print(m, file=sys.stderr)  # noqa: E731
        runner = Runner(Detector(Engine(load_rules([])), None, 0), clock, Metrics(), None, warn)  # watch's own runner
        supervise(EventStream(inp), runner.queue, runner.stop, warn)

        def loop() -> None:
            while not runner.stop.is_set():
                runner.step(0.1)

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        if not inp.connected.wait(30):
            print("the /events stream did not open", file=sys.stderr)
            return 1
        api = daemon.client().api
        c = daemon.client().containers.run(IMAGE, ["sleep", "600"], detach=True, network_mode="none")
        latencies: list[float] = []
        creates: list[float] = []  # the exec create request alone: the floor under the latency
        missed = 0
        for i in range(args.execs):
            t0 = time.perf_counter()
            exec_id = api.exec_create(c.id, ["sh", "-c", f"echo {i}"])["Id"]
            creates.append((time.perf_counter() - t0) * 1000)
            api.exec_start(exec_id, detach=True)
            seen = clock.wait(exec_id)
            if seen is None:
                missed += 1
            else:
                latencies.append((seen - t0) * 1000)
        runner.stop.set()
        t.join(10)
        figures = {
            "execs": args.execs,
            "alerts": len(latencies),
            "missed": missed,
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(pct(latencies, 99), 2),
            "max_ms": round(max(latencies), 2),
            "create_request_p50_ms": round(statistics.median(creates), 2),
            "loadavg": os.getloadavg()[0],
        }
        print(json.dumps(figures))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return 0 if missed == 0 else 1
    finally:
        daemon.stop()


if __name__ == "__main__":
    raise SystemExit(main())
