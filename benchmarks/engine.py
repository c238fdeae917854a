"""The engine side of a hunt alone: events read once, then rules, correlation, the join, sort and JSON lines timed.

A ``-j 1`` hunt is the reader (sources, model) plus the engine side (engine/, pipeline/join.py and stages.py,
the jsonl sink). This reads each FILE's events into memory once (the built-in rules' prefilter, as hunt does),
then runs the engine side over them ``--repeat`` times, each with a fresh Engine, and prints the CPU seconds
(process time) of each run and their median, and the alerts written. ``--out`` keeps the last run's alerts:
they equal ``execguard hunt -q -o jsonl -j 1 FILE`` for one regular file.

    .venv/bin/python benchmarks/engine.py benchmarks/out/sim-40M.log --repeat 5
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python benchmarks/engine.py FILE   # another tree
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import sys
import time

from execguard.engine.match import Engine
from execguard.pipeline import prefilter
from execguard.pipeline.join import JoinOptions
from execguard.pipeline.rules import load
from execguard.pipeline.run import Hunt
from execguard.sinks.jsonl import JsonlSink
from execguard.sources.reader import Reader


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="write the last run's alerts here (JSON lines)")
    ap.add_argument("--young", type=int, help="the collector's young threshold during the runs (default: Python's)")
    args = ap.parse_args()
    if args.young:
        gc.set_threshold(args.young, *gc.get_threshold()[1:])
    rules = load()
    probe = Engine(rules)
    probe.join = True
    reader = Reader(literals=prefilter.literals(probe))
    started = time.process_time()
    events = list(reader.read(args.files))
    read_cpu = time.process_time() - started
    print(f"load {os.getloadavg()[0]:.2f}; {len(events)} events read in {read_cpu:.2f} s CPU")
    runs: list[float] = []
    for n in range(args.repeat):
        buf = io.BytesIO()
        engine = Engine(rules)
        hunt = Hunt(engine, JsonlSink(buf), sort="time", join=JoinOptions())
        started = time.process_time()
        hunt.events(events)
        runs.append(time.process_time() - started)
        alerts = buf.getvalue().count(b"\n")
        print(f"run {n + 1}: engine side {runs[-1]:.3f} s CPU, {alerts} alerts")
        if args.out and n == args.repeat - 1:
            with open(args.out, "wb") as f:
                f.write(buf.getvalue())
    print(f"median {statistics.median(runs):.3f} s CPU; load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
