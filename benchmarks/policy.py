"""Cost of a policy per alert: apply docs/policy-example.yml (or --policy FILE) to a simulated hunt's alerts.

    .venv/bin/python benchmarks/policy.py --events 20000

The policy runs once per alert, never per log line, so this is the number that matters: alerts per
second through PolicyFilter (CPU time of this process: the benchmark machine is shared).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.policy import PolicyFilter, load_policy
from execguard.sim.simulate import write as simulate
from execguard.sources.reader import Reader

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--policy", default=str(ROOT / "docs" / "policy-example.yml"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        simulate(Path(tmp) / "sim", fmt="k8s-audit", events=args.events, seed=1)
        alerts = list(Engine(load_rules([], builtin=True)).run(Reader().read([str(Path(tmp) / "sim")])))
    policy = load_policy(args.policy)
    best = float("inf")
    kept = 0
    for _ in range(args.repeat):
        gate = PolicyFilter(policy)
        start = time.process_time()
        kept = sum(1 for _ in gate.filter(alerts))
        best = min(best, time.process_time() - start)
    print(f"{len(alerts)} alerts, {len(policy.entries)} entries: {best * 1e3:.1f} ms, "
          f"{len(alerts) / best:,.0f} alerts/s ({best / len(alerts) * 1e6:.1f} us each); {kept} kept")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
