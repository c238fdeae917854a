#!/usr/bin/env python3
"""Generate a large native Kubernetes audit log (audit.k8s.io/v1, one Event per line) from execguard's simulator.

The records are those of ``execguard simulate`` (k8s-audit format: its benign cluster background with every
attack scenario mixed in), so the formats live in one place, src/execguard/sim/. A pool of simulated requests
is split into exec requests (pods/exec and pods/attach: every line of the request) and the rest, and the
output draws from the two so that ``--exec-rate`` of its lines are exec records: 0.001 (the default) is a
quiet production cluster, where the prefilter skips almost every line; 0.4 is a CI cluster whose runners exec
all day, or a cluster under attack (the simulator's own mix is about 0.38).

The other lines follow ``--mix``. ``real`` (the default) weights them as a production audit log reads:
mostly get/list/watch, lease renewals, events and status patches; a controller listing pods about 1 % of
lines, secrets listed 0.2 %, pod creates whose containers carry a command 0.2 % (kept in proportion to each
other within those classes). ``sim`` keeps the simulator's own background mix, where about a fifth of the
non-exec lines are pod lists and pod creates with commands that the prefilter must pass (the mix of the
figures measured before this option).

Fast: the pool is rendered once into byte templates split around the auditID and the two timestamps; each
output line only fills those slots (a fresh auditID per request, times rising second by second).
Deterministic for a given --seed, --size and --exec-rate.

    python benchmarks/gen_audit.py --size 1G --seed 1 -o benchmarks/out/audit-1G.log
    python benchmarks/gen_audit.py --size 100M --exec-rate 0.4 -o benchmarks/out/dense-100M.log
    python benchmarks/gen_audit.py --size 200M -o benchmarks/out/audit-200M.log.gz
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from execguard.sim.simulate import write

EXEC_RATE = 0.001
# --mix real: share of the non-exec lines per class of request; "rest" takes what is left
REAL_MIX = {"pod_create_command": 0.002, "list_pods": 0.01, "list_secrets": 0.002}
POOL = 20_000  # simulated background events per pool (attacks are added)
Template = tuple[tuple[bytes, ...], ...]  # one request = 1..n lines; each line = the 4 parts around its slots
# auditID, then requestReceivedTimestamp, then stageTimestamp: the order the simulator (and kube-apiserver) writes
_SLOTS = re.compile(rb'^(.*?"auditID":")([^"]*)(".*?"requestReceivedTimestamp":")[^"]*(".*?"stageTimestamp":")[^"]*(".*)$')
_EXEC = re.compile(rb'"subresource":"(?:exec|attach)"')


def pool(seed: int) -> tuple[list[Template], list[Template]]:
    """The simulator's k8s-audit requests as templates: (exec requests, other requests), in file order."""
    with tempfile.TemporaryDirectory() as tmp:
        write(tmp, "all", "k8s-audit", POOL, seed)  # POOL read at call time: tests make it small
        lines = (Path(tmp) / "k8s-audit.jsonl").read_bytes().splitlines()
    requests: dict[bytes, list[tuple[bytes, ...]]] = {}
    is_exec: dict[bytes, bool] = {}
    for line in lines:
        m = _SLOTS.match(line)
        if m is None:
            raise SystemExit(f"gen_audit: a simulated line without auditID and both timestamps in order: {line[:120]!r}")
        aid = m.group(2)
        requests.setdefault(aid, []).append((m.group(1), m.group(3), m.group(4), m.group(5)))
        is_exec[aid] = is_exec.get(aid, False) or bool(_EXEC.search(line))
    execs = [tuple(parts) for aid, parts in requests.items() if is_exec[aid]]
    others = [tuple(parts) for aid, parts in requests.items() if not is_exec[aid]]
    return execs, others


def request_class(tpl: Template) -> str:
    """What kind of non-exec request a template is, for --mix real."""
    line = b"".join(tpl[0])
    if b'"verb":"create"' in line and b'"resource":"pods"' in line and (b'"command"' in line or b'"args"' in line):
        return "pod_create_command"
    if b'"verb":"list"' in line and b'"resource":"pods"' in line:
        return "list_pods"
    if b'"verb":"list"' in line and b'"resource":"secrets"' in line:
        return "list_secrets"
    return "rest"


def other_weights(others: list[Template], mix: str) -> list[float]:
    """Relative weights of the non-exec requests (summing to 1): uniform (sim), or by class (real)."""
    if mix == "sim":
        return [1.0 / len(others)] * len(others)
    classes = [request_class(t) for t in others]
    count = {c: classes.count(c) for c in set(classes)}
    share = {c: REAL_MIX.get(c, 0.0) for c in count}
    share["rest"] = 1.0 - sum(v for c, v in share.items() if c != "rest")
    if "rest" not in count:
        raise SystemExit("gen_audit: the simulated pool has no plain requests for --mix real")
    return [share[c] / count[c] for c in classes]


def build_templates(seed: int, exec_rate: float, mix: str = "real") -> tuple[list[Template], list[float]]:
    """Templates and weights such that ``exec_rate`` of the lines drawn are exec records."""
    execs, others = pool(seed)
    ow = other_weights(others, mix)
    if not 0 < exec_rate < 1:  # all or nothing: one pool alone
        return (execs, [1.0] * len(execs)) if exec_rate else (others, ow)
    e = sum(map(len, execs)) / len(execs)  # lines per exec request
    o = sum(w * len(t) for t, w in zip(others, ow, strict=True))  # lines per other request, as drawn
    # a share q of requests being exec gives q*e / (q*e + (1-q)*o) exec lines: solve for q
    q = exec_rate * o / (e - exec_rate * e + exec_rate * o)
    return execs + others, [q / len(execs)] * len(execs) + [(1 - q) * w for w in ow]


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:], 1)
    return int(float(text.rstrip("KMGT")) * mult)


def generate(
    out: Any, size: int, seed: int, start: datetime, exec_rate: float = EXEC_RATE, batch: int = 2048, mix: str = "real"
) -> tuple[int, int]:
    templates, weights = build_templates(seed, exec_rate, mix)
    rng = random.Random(seed ^ 0x5EED)
    cum: list[float] = []
    total = 0.0
    for wt in weights:
        total += wt
        cum.append(total)
    ms = [b"%03d" % i for i in range(1000)]
    written = 0
    lines = 0
    t = start
    second = 0
    while written < size:
        picks = rng.choices(templates, cum_weights=cum, k=batch)
        ids = rng.randbytes(16 * batch).hex().encode()
        micros = sorted(rng.randrange(1_000_000) for _ in range(batch))
        prefix = (t + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S.").encode()
        second += 1
        buf: list[bytes] = []
        for i, tpl in enumerate(picks):
            o = 32 * i
            aid = (
                ids[o : o + 8]
                + b"-"
                + ids[o + 8 : o + 12]
                + b"-4"
                + ids[o + 13 : o + 16]
                + b"-a"
                + ids[o + 17 : o + 20]
                + b"-"
                + ids[o + 20 : o + 32]
            )
            m = micros[i]
            t0 = prefix + ms[m // 1000] + ms[m % 1000] + b"Z"
            m1 = min(m + 300 + (m & 0x3FFF), 999_999)
            t1 = prefix + ms[m1 // 1000] + ms[m1 % 1000] + b"Z"
            for p in tpl:
                buf.append(p[0] + aid + p[1] + t0 + p[2] + t1 + p[3] + b"\n")
        data = b"".join(buf)
        if written + len(data) > size:
            cut = data.rfind(b"\n", 0, size - written) + 1
            data = data[:cut] if cut else b""
            if not data:
                break
        out.write(data)
        written += len(data)
        lines += data.count(b"\n")
    return written, lines


def from_simulate(output: str, size: int, seed: int) -> int:
    """The same kind of file from execguard's own labelled simulator, sized by a small probe run."""
    import shutil

    if output == "-" or output.endswith(".gz"):
        print("--simulate writes a plain file: give -o FILE", file=sys.stderr)
        return 2
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=Path(output).resolve().parent) as tmp:
        write(Path(tmp) / "probe", "all", "k8s-audit", 2000, seed)
        per_event = (Path(tmp) / "probe" / "k8s-audit.jsonl").stat().st_size / 2000
        write(Path(tmp) / "big", "all", "k8s-audit", max(1, int(size / per_event)), seed)
        shutil.move(str(Path(tmp) / "big" / "k8s-audit.jsonl"), output)
        shutil.move(str(Path(tmp) / "big" / "labels.jsonl"), output + ".labels.jsonl")
    written = Path(output).stat().st_size
    dt = time.perf_counter() - t
    print(f"{written / 1e6:.1f} MB from execguard simulate in {dt:.1f} s; labels in {output}.labels.jsonl", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="100M", help="bytes to write: 500M, 1G, 5G (the file ends on a whole line at or below it)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2024-05-14T09:00:00", help="UTC time of the first event")
    ap.add_argument("-o", "--output", default="-", help="file to write ('.gz' compresses, level 1); - for stdout")
    ap.add_argument("--exec-rate", type=float, default=EXEC_RATE, help="share of lines that are pods/exec or pods/attach records (0-1)")
    ap.add_argument(
        "--mix", choices=("real", "sim"), default="real",
        help="the non-exec lines: a production log's weighting (real) or the simulator's own (sim)",
    )  # fmt: skip
    ap.add_argument(
        "--simulate",
        action="store_true",
        help="write `execguard simulate`'s own file instead (its mix, ~38 %% exec, with labels for `execguard score`); slower",
    )
    args = ap.parse_args(argv)
    if not 0 <= args.exec_rate <= 1:
        ap.error("--exec-rate must be between 0 and 1")
    size = parse_size(args.size)
    if args.simulate:
        return from_simulate(args.output, size, args.seed)
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    t = time.perf_counter()
    if args.output == "-":
        written, lines = generate(sys.stdout.buffer, size, args.seed, start, args.exec_rate, mix=args.mix)
    elif args.output.endswith(".gz"):
        with gzip.open(args.output, "wb", compresslevel=1) as f:
            written, lines = generate(f, size, args.seed, start, args.exec_rate, mix=args.mix)
    else:
        with open(args.output, "wb", buffering=16 << 20) as f:
            written, lines = generate(f, size, args.seed, start, args.exec_rate, mix=args.mix)
    dt = time.perf_counter() - t
    print(f"{written / 1e6:.1f} MB, {lines} lines in {dt:.1f} s ({written / 1e6 / dt:.0f} MB/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
