"""Where watch's memory goes over a long run: the engine's own bounded state, fed distinct exec events.

Runs the built-in rules (engine/match.py Engine, as watch's runner does) over N exec events with
distinct auditIDs (what the webhook load of memory.py sends) and prints the process's RSS every
--every events, so growth over a long watch can be told apart from a leak: the engine remembers the
alerts it has emitted (dedup, at most SEEN_LIMIT keys) in a table of fixed size (engine/seen.py),
allocated whole on the first alert, so RSS should be flat from the first --every on.

    .venv/bin/python benchmarks/engine_memory.py --events 300000 --every 25000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from execguard.engine import match
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.model import SourceRef
from execguard.sources import k8s_audit
from webhook_util import exec_event


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--every", type=int, default=25_000)
    args = ap.parse_args()
    engine = Engine(load_rules())
    ref = SourceRef(k8s_audit.FORMAT, "audit-webhook", 1)
    alerts = 0
    print(f"SEEN_LIMIT {match.SEEN_LIMIT}; start RSS {rss_mb():.1f} MB")
    for n in range(1, args.events + 1):
        events = list(k8s_audit.from_audit_event(exec_event(f"m{n // 200}-{n % 200}"), ref))
        alerts += sum(1 for _ in engine.run(events))
        if n % args.every == 0:
            print(f"{n:>8} events, {alerts:>8} alerts, engine dedup keys {len(engine._seen):>7}, RSS {rss_mb():6.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
