"""Workload facts: runtime sockets mounted from the host, privileged+hostPID, and the exec-probe inventory."""

from __future__ import annotations

import posixpath
from typing import Any

from ...k8s import WORKLOAD_KINDS
from ..engine import Item
from ..gather.inputs import Inputs, Obj, mapping, sequence
from .owners import items_without_template_copies
from .rbac import pod_spec

# Host paths that hand a pod the container runtime's API (the socket itself or a directory holding it).
RUNTIME_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/run/k3s/containerd/containerd.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
)


def runtime_socket_exposed(path: str) -> str | None:
    """The runtime socket a hostPath gives access to: the socket itself or any parent directory of one."""
    if not path.strip():
        return None
    p = "/" + posixpath.normpath(path.strip()).lstrip("/")  # normpath keeps a leading "//"
    for sock in RUNTIME_SOCKETS:
        if p == sock or sock.startswith(p.rstrip("/") + "/"):
            return sock
    return None


def _containers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in sequence(spec.get(key)):
            if isinstance(c, dict):
                out.append((key, c))
    return out


def workload_items(o: Obj) -> list[Item]:
    spec = pod_spec(o)
    if spec is None:
        return []
    ns = o.namespace or "default"
    name = f"{o.kind} {ns}/{o.name}"
    items: list[Item] = []
    for v in sequence(spec.get("volumes")):
        hp = (v or {}).get("hostPath") if isinstance(v, dict) else None
        if not isinstance(hp, dict):
            continue
        path = str(hp.get("path") or "")
        sock = runtime_socket_exposed(path)
        facts = {"workload": name, "volume": v.get("name"), "path": path, "runtime_socket": sock, "exposes_runtime": sock is not None}
        items.append(Item("workload_hostpath", f"{name} volume {v.get('name')}", facts, o.file, o.line))
    privileged = [c.get("name") for _, c in _containers(spec) if mapping(c.get("securityContext")).get("privileged") is True]
    facts = {"workload": name, "host_pid": spec.get("hostPID") is True, "privileged_containers": privileged, "privileged": bool(privileged)}
    items.append(Item("workload_pod", name, facts, o.file, o.line))
    for _, c in _containers(spec):
        hooks = {f"lifecycle.{h}": mapping(c.get("lifecycle")).get(h) for h in ("postStart", "preStop")}
        handlers = {p: c.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")} | hooks
        for probe, handler in handlers.items():
            cmd = mapping(mapping(handler).get("exec")).get("command")
            if isinstance(cmd, list) and cmd:
                facts = {
                    "workload": name,
                    "namespace": ns,
                    "container": c.get("name"),
                    "probe": probe,
                    "command": [str(x) for x in cmd],
                    "image": c.get("image"),
                }
                items.append(Item("exec_probe", f"{name}[{c.get('name')}] {probe}", facts, o.file, o.line))
    return items


def collect(inputs: Inputs) -> list[Item]:
    return items_without_template_copies(inputs.of_kind(*WORKLOAD_KINDS), workload_items)
