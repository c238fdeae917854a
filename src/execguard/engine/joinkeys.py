"""What the join (engine/join.py) keys on and remembers: which events take part, container keys,
the exec probes and lifecycle hooks pod specs declare, and bounded maps that count what they shed.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from ..model import Event

# the API server's (and Docker's) record of someone asking for a command in a container
TRAIL = frozenset({"exec", "attach", "ephemeral_container", "kubelet_run", "kubelet_exec", "kubelet_attach"})
NODE = frozenset({"runtime_exec", "process"})  # what the node saw run, whoever asked
K8S = frozenset({"k8s-audit", "eks", "gke", "aks"})
DOCKER = frozenset({"docker-events", "dockerd-log"})
# commands the kubelet or dockerd runs by itself, from the pod spec or image: never an API-server exec
HOOKS = frozenset(
    {"livenessProbe", "readinessProbe", "startupProbe", "lifecycle.postStart", "lifecycle.preStop", "healthcheck", "maybe_exec_probe"}
)
ACTIONS = TRAIL | NODE | {"create"}  # actions the join reads; the prefilter and -j workers must keep them
SCHEMES = ("containerd://", "docker://", "cri-o://", "crio://")
ID_PREFIX = 12  # docker's short id: the least any source writes
_HEX = re.compile(r"[0-9a-f]{12}")


def family(ev: Event) -> str | None:
    """'k8s' or 'docker' for a record of who asked, by the source that wrote it; None for anything else."""
    fmt = ev.source.format
    return "k8s" if fmt in K8S else "docker" if fmt in DOCKER else None


def is_trail(ev: Event) -> bool:
    return ev.action in TRAIL and family(ev) is not None and ev.outcome != "denied"


def is_hook_spec(ev: Event) -> bool:
    return ev.action == "create" and ev.command_origin in HOOKS and bool(ev.command)


def relevant(ev: Event) -> bool:
    """Events the join reads (the rest pass it by): records of who asked, node processes, hook specs."""
    return ev.action in NODE or is_trail(ev) or is_hook_spec(ev)


@lru_cache(maxsize=1 << 16)  # a node's containers are few, and every event names one
def short_id(value: str | None) -> str | None:
    """A container id cut to its first 12 hex digits (runtime scheme dropped); None for a name or nothing."""
    if not value:
        return None
    for scheme in SCHEMES:
        if value.startswith(scheme):
            value = value[len(scheme) :]
    value = value[:ID_PREFIX].lower()
    return value if _HEX.fullmatch(value) else None


def pod_key(ev: Event) -> tuple[str, str] | None:
    t = ev.target
    return (t.namespace, t.pod) if t.namespace and t.pod else None


def process_key(ev: Event) -> str:
    """The pid space a process lives in, as far as records tell: its container (pids are the node's)."""
    t = ev.target
    return short_id(t.container_id) or f"{t.node or ''}/{t.namespace or ''}/{t.pod or ''}/{t.container or ''}"


def argv_key(argv: list[str]) -> tuple[str, ...]:
    """The words of an argv, the first cut to its base name: a probe says `cat`, the node sees `/bin/cat`, and
    docker events split the command on white space, so only the words can be compared."""
    words = " ".join(argv).split()
    if not words:
        return ()
    return (words[0].rsplit("/", 1)[-1], *words[1:])


def hook_key(ev: Event) -> tuple[str, str, tuple[str, ...]]:
    """Namespace, container name and argv: a workload's pods have generated names, its containers do not."""
    return (ev.target.namespace or "", ev.target.container or "", argv_key(ev.command))


def same_container(trail: Event, node: Event) -> bool:
    """The record of who asked names the container the node saw the exec in."""
    a, b = trail.target, node.target
    ida, idb = short_id(a.container_id), short_id(b.container_id)
    if ida and idb:
        return ida == idb
    if a.namespace and a.pod and b.namespace and b.pod:
        if (a.namespace, a.pod) != (b.namespace, b.pod):
            return False
        return not a.container or not b.container or a.container == b.container
    # the dockerd log names a container as the client did: a name, or an id prefix
    name = a.container or ""
    return bool(name) and (name == b.container or (idb is not None and len(name) >= ID_PREFIX and idb.startswith(name[:ID_PREFIX])))


def exec_like(ev: Event) -> bool:
    """A node event that came in from outside the container's own process tree: a runtime exec, a process
    Tetragon says is not in the init tree, or (no such flag) one whose parent is `runc exec`."""
    if ev.action == "runtime_exec":
        return True
    p = ev.process
    if p is None:
        return False
    if p.in_init_tree is not None:
        return not p.in_init_tree
    parent = (p.parent_exe or "").rsplit("/", 1)[-1]
    return parent == "runc" and "exec" in p.parent_command



def lookup(ev: Event, trail: bool) -> list[Hashable]:
    """The keys a record of who asked is filed under (``trail``), or a node event looks its record up by."""
    keys: list[Hashable] = []
    pod = pod_key(ev)
    if pod is not None:
        keys.append(("pod", *pod))
    sid = short_id(ev.target.container_id)
    if sid is not None:
        keys.append(("id", sid))
    name = ev.target.container
    if name and ((trail and family(ev) == "docker") or (not trail and pod is None)):
        keys.append(("name", name))
        if trail and short_id(name) is not None:
            keys.append(("id", short_id(name)))
    return keys

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class Shed:
    count: int = 0


class Bounded(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its least recently set key past ``cap`` and counts each one in ``shed``."""

    def __init__(self, cap: int, shed: Shed) -> None:
        super().__init__()
        self.cap = cap
        self.shed = shed

    def put(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.cap:
            self.popitem(last=False)
            self.shed.count += 1
