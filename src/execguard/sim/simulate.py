"""``execguard simulate``: realistic labelled telemetry, streamed, deterministic for a seed."""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import docker as dsim
from . import k8s as ksim
from . import node as nsim
from .ops import Op
from .scenarios import ATTACKS, SCENARIOS
from .writers import ALL_FILE_NAMES, ALL_FORMATS, DOCKER_FORMATS, FORMATS, MORE_NODE_FORMATS, NODE_FORMATS, FormatWriter

K8S_GAP = 0.25  # mean seconds between background API requests
DOCKER_GAP = 1.5


def formats_for(scenario: str) -> tuple[str, ...]:
    if scenario == "all":
        return FORMATS
    return SCENARIOS[scenario].formats


def _ops(fmt: str, scenario: str, events: int, seed: int) -> Iterator[Op]:
    """Background and attack ops of one format, merged in time order."""
    rng = random.Random(f"{seed}:{fmt}")
    names = [n for n in (ATTACKS if scenario == "all" else [scenario]) if n != "benign" and fmt in SCENARIOS[n].formats]
    docker = fmt in DOCKER_FORMATS
    gap = DOCKER_GAP if docker else K8S_GAP
    span = max(events, 1) * gap
    attacks: list[Op] = []
    if docker:
        host = dsim.Host(rng)
        bg: Iterator[Op] = dsim.background(rng, host, events, gap)
        for name in names:
            attacks += dsim.ATTACKS[name](random.Random(f"{seed}:{fmt}:{name}"), host, rng.uniform(0.15, 0.7) * span)
    else:
        cluster = ksim.Cluster.build(rng)
        bg = ksim.background(rng, cluster, events, gap)
        for name in names:
            attacks += ksim.ATTACKS[name](random.Random(f"{seed}:{fmt}:{name}"), cluster, rng.uniform(0.15, 0.7) * span)
    attacks.sort(key=lambda op: op.t)
    yield from heapq.merge(bg, attacks, key=lambda op: op.t)


def _node_ops(scenario: str, events: int, seed: int) -> Iterator[nsim.ProcOp]:
    """Tetragon's view of the k8s-audit cluster and the Docker host of the same seed (sim/node.py)."""
    fmts = formats_for(scenario)
    world = nsim.NodeWorld(random.Random(f"{seed}:tetragon"), None)
    streams: list[Iterator[nsim.ProcOp]] = []
    if "k8s-audit" in fmts:
        world.cluster = ksim.Cluster.build(random.Random(f"{seed}:k8s-audit"))  # the same cluster _ops builds first
        world.nodes = list(world.cluster.nodes)
        hildegard = scenario in ("all", "hildegard")
        streams.append(nsim.from_k8s(world, _ops("k8s-audit", scenario, events, seed), max(events, 1) * K8S_GAP, hildegard))
    if "docker-events" in fmts:
        streams.append(nsim.from_docker(world, _ops("docker-events", scenario, events, seed)))
    # each stream is in time order but for clock skew and its extras: sorted in memory (node ops are few)
    yield from sorted(heapq.merge(*streams, key=lambda op: op.t), key=lambda op: op.t)


def write(
    out_dir: str | Path, scenario: str = "all", fmt: str | None = None, events: int = 2000, seed: int = 1, node_formats: bool = False
) -> dict[str, Any]:
    """Write DIR/<format file> for each format (or just ``fmt``) and DIR/labels.jsonl; return counts.

    ``node_formats`` adds Falco, KubeArmor and auditd files of the same node view as ``tetragon.jsonl``, after
    the others (their files and labels stay byte for byte as without it).
    Streams: records and labels go to disk as they are made, so ``events`` may be in the millions.
    """
    if scenario != "all" and scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose all, {', '.join(SCENARIOS)}")
    if fmt is not None and fmt not in ALL_FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose {', '.join(ALL_FORMATS)}")
    # every node format is the one node view: written wherever tetragon is
    node_view = MORE_NODE_FORMATS if "tetragon" in formats_for(scenario) else ()
    fmts = (formats_for(scenario) + (node_view if node_formats else ())) if fmt is None else (fmt,)
    if fmt is not None and fmt not in formats_for(scenario) + node_view:
        raise ValueError(f"scenario {scenario} is not written in {fmt} (it is in {', '.join(formats_for(scenario))})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, Any] = {"files": {}, "records": 0, "malicious": 0}
    with open(out / "labels.jsonl", "w", encoding="utf-8") as labels:
        for f in fmts:
            name = ALL_FILE_NAMES[f]
            with open(out / name, "w", encoding="utf-8", newline="\n") as stream:
                writer = FormatWriter(f, stream, name, random.Random(f"{seed}:{f}:writer"))
                n = 0
                node = f in NODE_FORMATS + MORE_NODE_FORMATS
                ops: Iterator[Op | nsim.ProcOp] = _node_ops(scenario, events, seed) if node else _ops(f, scenario, events, seed)
                for op in ops:
                    for label in writer.write(op):
                        labels.write(json.dumps(label, separators=(",", ":")) + "\n")
                        n += 1
                        counts["malicious"] += label["malicious"]
                counts["files"][name] = {"format": f, "records": n, "lines": writer.line}
                counts["records"] += n
    return counts
