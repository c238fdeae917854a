"""KubeArmor alerts and logs (`karmor logs --json`, its relay's gRPC stream as JSON): process starts.

One JSON object per record, ``Type`` MatchedPolicy / MatchedHostPolicy (alerts) or ContainerLog /
HostLog (logs). ``Operation: Process`` records are process starts: ``Resource`` holds the command
(the binary's path and its arguments joined by spaces, so boundaries are lost), ``ProcessName`` the
binary, ``ParentProcessName``/``Source`` the parent, ``PID``/``PPID`` the ids inside the container and
``HostPID``/``HostPPID`` on the node. File, Network, Capabilities and Syscall records start no process:
they are counted and skipped. A blocked exec (``Action: Block``, ``Result: Permission denied``) is
denied: it never ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..model import Event, Process, SourceRef, Target
from . import procs
from .base import NotProcess, SourceError, as_str

FORMAT = "kubearmor"

# spaced as the tools print it or compact: either way the value ends in Process"
LITERALS: dict[str, tuple[bytes, ...]] = {"process": (b'Process"',)}


def match(obj: dict[str, Any]) -> bool:
    return "Operation" in obj and ("HostPID" in obj or "ProcessName" in obj) and ("Resource" in obj or "Source" in obj)


def _time(obj: dict[str, Any]) -> str | None:
    stamp = as_str(obj.get("UpdatedTime")) or as_str(obj.get("UpdatedTimeISO"))
    if stamp:
        return stamp
    secs = procs.number(obj.get("Timestamp"))
    return procs.iso_seconds(secs) if secs is not None else None


def events(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    get = procs.value
    operation = get(obj.get("Operation"))
    if operation != "Process":
        raise NotProcess(f"a KubeArmor {operation or 'untyped'} record")
    resource = get(obj.get("Resource"))
    exe = get(obj.get("ProcessName"))
    argv = resource.split() if resource else ([exe] if exe else [])
    if not argv:
        raise SourceError("KubeArmor Process record without Resource or ProcessName")
    parent = get(obj.get("ParentProcessName")) or get(obj.get("Source"))
    pid = procs.number(obj.get("PID"))
    cwd = get(obj.get("Cwd"))
    proc = Process(
        pid=procs.number(obj.get("HostPID")),  # the node's pids; PID/PPID are the container's
        ppid=procs.number(obj.get("HostPPID")),
        exe=exe,
        cwd=cwd,
        uid=procs.number(obj.get("UID")),
        parent_exe=parent,
        in_init_tree=procs.in_init_tree(parent, pid if get(obj.get("ContainerID")) else None),
        known="argv from Resource: split on spaces, argument boundaries lost",
    )
    host_log = str(obj.get("Type", "")).startswith(("Host", "MatchedHost"))
    target = Target(
        cluster=get(obj.get("ClusterName")),
        namespace=get(obj.get("NamespaceName")),
        pod=get(obj.get("PodName")),
        container=get(obj.get("ContainerName")),
        container_id=get(obj.get("ContainerID")),
        image=get(obj.get("ContainerImage")),
        node=get(obj.get("NodeName")) or get(obj.get("HostName")),
        kind="host" if host_log else None,
    )
    action = get(obj.get("Action"))
    result = get(obj.get("Result"))
    blocked = action == "Block" or (result is not None and result != "Passed")
    uid = proc.uid
    yield procs.event(
        ref,
        _time(obj),
        argv,
        proc,
        target,
        outcome="denied" if blocked else "allowed",
        run_as=str(uid) if uid is not None else None,
    )
