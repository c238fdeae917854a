"""Cilium Tetragon's JSON export: `tetra getevents -o json` lines and the export file (tetragon.log).

Each record is one GetEventsResponse: a single key naming the event type (``process_exec``,
``process_exit``, ``process_kprobe`` ...), ``node_name`` and ``time``. ``process_exec`` becomes action
``process`` with ``Event.process`` filled; ``process_exit`` becomes action ``other`` (verb
``process_exit``, ``code`` the exit status) so rules and the join never count a process twice; every
other type (kprobe, tracepoint, uprobe, connect, listen ...) is read as action ``other`` with the type
as verb, which no built-in rule or join step uses.

Where the fields are (docs/node.md): ``process_exec.process.in_init_tree`` (a BoolValue: absent on
Tetragon before 0.11 and on host processes), ``process_exec.process.pod.container.maybe_exec_probe``
(true when binary and arguments equal a liveness or readiness exec probe of the pod spec; kept as
``command_origin = "maybe_exec_probe"``). ``arguments`` is one string: Tetragon joins argv[1:] with
spaces and wraps an argument holding a space in double quotes, escaping nothing (``split_args``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import redact
from ..model import Event, Process, SourceRef, Target
from .base import SourceError, as_dict, as_int, as_str

FORMAT = "tetragon"

LITERALS: dict[str, tuple[bytes, ...]] = {
    "process": (b"process_exec",),
    "other": (b"\"process_",),
}

PROBE_ORIGIN = "maybe_exec_probe"
RUNTIME_PREFIXES = ("containerd://", "docker://", "cri-o://", "crio://")


def match(obj: dict[str, Any]) -> bool:
    if "node_name" not in obj and "time" not in obj:
        return False
    return any(k.startswith("process_") and isinstance(v, dict) for k, v in obj.items())


def split_args(joined: str) -> list[str]:
    """argv[1:] back from Tetragon's ``arguments``.

    Tetragon writes ``a b "c d"``: plain arguments joined by one space, an argument holding a space
    wrapped in double quotes with nothing escaped. So a quoted piece ends at the first ``"`` followed
    by a space or the end, and holds a space (else the quote was part of a plain argument). Lost for
    good upstream: empty arguments, and the boundary inside an argument that holds both ``" `` and a
    space (read here as two arguments).
    """
    out: list[str] = []
    i, n = 0, len(joined)
    while i < n:
        if joined[i] == " ":
            i += 1
            continue
        if joined[i] == '"':
            j = joined.find('" ', i + 1)
            if j < 0 and joined.endswith('"') and n - 1 > i:
                j = n - 1
            if j > i and " " in joined[i + 1 : j]:
                out.append(joined[i + 1 : j])
                i = j + 1
                continue
        j = joined.find(" ", i)
        j = n if j < 0 else j
        out.append(joined[i:j])
        i = j
    return out


def container_id(value: str | None) -> str | None:
    """``containerd://abc...`` -> ``abc...`` (the runtime's own id, as docker events and containerd name it)."""
    if not value:
        return None
    for prefix in RUNTIME_PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :] or None
    return value


def _argv(proc: dict[str, Any]) -> list[str]:
    binary = as_str(proc.get("binary")) or ""
    args = as_str(proc.get("arguments")) or ""
    return ([binary] if binary else []) + split_args(args)


def _target(proc: dict[str, Any], node: str | None) -> Target:
    pod = as_dict(proc.get("pod"), "process.pod")
    cont = as_dict(pod.get("container"), "process.pod.container")
    image = as_dict(cont.get("image"), "process.pod.container.image")
    cid = container_id(as_str(cont.get("id"))) or as_str(proc.get("docker"))  # `docker`: a short id, also on Docker hosts
    return Target(
        namespace=as_str(pod.get("namespace")),
        pod=as_str(pod.get("name")),
        container=as_str(cont.get("name")),
        container_id=cid,
        image=as_str(image.get("name")),
        node=node,
        kind="Pod" if pod else ("container" if cid else None),
    )


def events(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    kind = next((k for k, v in obj.items() if k.startswith("process_") and isinstance(v, dict)), None)
    if kind is None:
        raise SourceError("no process_* event in the record")
    body = as_dict(obj[kind], kind)
    proc = as_dict(body.get("process"), f"{kind}.process")
    parent = as_dict(body.get("parent"), f"{kind}.parent")
    node = as_str(obj.get("node_name"))
    in_tree = proc.get("in_init_tree")
    cont = as_dict(as_dict(proc.get("pod"), "process.pod").get("container"), "process.pod.container")
    ev = Event(
        time=as_str(obj.get("time")) or as_str(proc.get("start_time")),
        source=ref,
        action="process" if kind == "process_exec" else "other",
        verb=kind,
        target=_target(proc, node),
        command=redact.argv(_argv(proc)),
        # the process's own id, shared by its exec and exit records (not the runtime's exec id)
        event_id=as_str(proc.get("exec_id")),
        raw=f"{ref.file}:{ref.line}" if ref.line else ref.file,
        outcome="allowed" if kind == "process_exec" else "unknown",
        process=Process(
            pid=as_int(proc.get("pid")),
            ppid=as_int(parent.get("pid")),
            exe=as_str(proc.get("binary")),
            cwd=as_str(proc.get("cwd")),
            uid=as_int(proc.get("uid")),
            parent_exe=as_str(parent.get("binary")),
            parent_command=redact.argv(_argv(parent)) if parent else [],
            in_init_tree=in_tree if isinstance(in_tree, bool) else None,
        ),
    )
    if cont.get("maybe_exec_probe") is True:
        ev.command_origin = PROBE_ORIGIN
    if kind == "process_exit":
        ev.code = as_int(body.get("status"))
    yield ev
