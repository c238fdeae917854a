"""Correlation alone: a hunt's ``Correlator.step`` calls recorded once, then replayed on fresh Correlators.

Reads FILE with the built-in rules and runs the engine side once (as benchmarks/engine.py does), recording every
``Correlator.step`` call; then replays just those calls ``--repeat`` times, each on a fresh Correlator, and prints
their CPU seconds and a digest of what they returned (equal digests: the same chain matches and alerts).
Under ``valgrind --tool=cachegrind``, ``--repeat 1`` against ``--repeat 6`` gives five replays' instructions.

    .venv/bin/python benchmarks/correlate.py benchmarks/out/sim-40M.log --repeat 5
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python benchmarks/correlate.py FILE   # another tree
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import time
from typing import Any

from execguard.engine import correlate
from execguard.engine.match import Engine
from execguard.pipeline import prefilter
from execguard.pipeline.join import JoinOptions
from execguard.pipeline.rules import load
from execguard.pipeline.run import Hunt
from execguard.sinks.jsonl import JsonlSink
from execguard.sources.reader import Reader


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rules = load()
    probe = Engine(rules)
    probe.join = True
    events = list(Reader(literals=prefilter.literals(probe)).read([args.file]))
    calls: list[tuple[Any, Any, Any]] = []
    step = correlate.Correlator.step

    def recorded(self: correlate.Correlator, event: Any, fields: Any, hits: Any) -> Any:
        calls.append((event, fields, list(hits)))
        return step(self, event, fields, hits)

    correlate.Correlator.step = recorded  # type: ignore[method-assign]
    Hunt(Engine(rules), JsonlSink(io.BytesIO()), sort="time", join=JoinOptions()).events(events)
    correlate.Correlator.step = step  # type: ignore[method-assign]
    print(f"load {os.getloadavg()[0]:.2f}; {len(calls)} Correlator.step calls")
    runs: list[float] = []
    results: list[Any] = []
    for _ in range(args.repeat):
        replay = correlate.Correlator(rules).step
        started = time.process_time()
        results = [replay(e, f, h) for e, f, h in calls]
        runs.append(time.process_time() - started)
    if runs:
        print(f"replay CPU s: min {min(runs):.3f}, median {statistics.median(runs):.3f}")
    digest = hashlib.sha256()
    for folded, alerts in results:
        digest.update(repr([(m.rule_id, m.reason) for m in folded]).encode())
        digest.update(repr([(a.event.event_id, [(m.rule_id, m.reason) for m in a.matches]) for a in alerts]).encode())
    print(f"digest {digest.hexdigest()[:16]}: {sum(len(f) for f, _ in results)} chain matches, {sum(len(a) for _, a in results)} alerts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
