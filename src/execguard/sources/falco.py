"""Falco's JSON alerts (`json_output: true`): one process start per alert on a spawned process.

An alert is ``{"output", "priority", "rule", "time", "source", "hostname", "output_fields": {...}}``;
what it says about the process is only what the rule's output names (``proc.cmdline``, ``proc.exepath``,
``proc.pid``, ``proc.pname``, ``container.id``, ``k8s.pod.name`` ...), with ``<NA>`` or null for unknown.

``proc.cmdline`` is ``proc.name`` and the arguments joined by single spaces, so argument boundaries are
lost (``sh -c "a b"`` reads as four words) and argv[0] is the process name, not what the caller passed:
the command is split on white space, as for docker events. An alert on another syscall (an ``open`` by
``cat /etc/shadow``) or on the Kubernetes audit (``ka.*`` fields, the k8s_audit plugin) starts no
process: it is counted as such and skipped, and the audit log itself is the record to hunt for
the API side (Falco's ka.* alert is one line per rule hit, with no audit ID or stage).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..model import Event, Process, SourceRef, Target
from . import procs
from .base import NotProcess, SourceError, as_dict, as_str

FORMAT = "falco"

# every alert about a process names some proc.* field in its output_fields
LITERALS: dict[str, tuple[bytes, ...]] = {"process": (b'"proc.',)}

_EXEC_TYPES = frozenset({"execve", "execveat"})
_ANAME = re.compile(r"^proc\.aname\[(\d+)\]$")


def match(obj: dict[str, Any]) -> bool:
    return "output_fields" in obj and "rule" in obj and ("priority" in obj or "output" in obj)


def _ancestors(fields: dict[str, Any]) -> list[str]:
    """proc.aname[2], proc.aname[3] ... (the grandparent and up) where the rule's output names them."""
    found = []
    for key, v in fields.items():
        m = _ANAME.match(key)
        name = procs.value(v)
        if m and name:
            found.append((int(m[1]), name))
    return [name for _, name in sorted(found)]


def _time(obj: dict[str, Any], fields: dict[str, Any]) -> str | None:
    stamp = as_str(obj.get("time"))
    if stamp:
        return stamp
    for key in ("evt.time", "evt.rawtime", "evt.time.iso8601"):
        raw = fields.get(key)
        nanos = procs.number(raw)
        if nanos is not None and nanos > 10**17:
            return procs.iso_nanos(nanos)
        if isinstance(raw, str) and "T" in raw:
            return raw
    return None


def events(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    fields = as_dict(obj.get("output_fields"), "output_fields")
    get = procs.value
    source = as_str(obj.get("source"))
    if source == "k8s_audit" or (source != "syscall" and any(k.startswith("ka.") for k in fields)):
        raise NotProcess("a Falco k8s_audit alert: hunt the audit log itself")
    evt_type = get(fields.get("evt.type"))
    if evt_type is not None and evt_type not in _EXEC_TYPES:
        raise NotProcess(f"a Falco alert on {evt_type}, not a process start")
    if evt_type is None and get(fields.get("fd.name")) is not None:
        raise NotProcess("a Falco alert on a file or socket, not a process start")
    cmdline = get(fields.get("proc.cmdline"))
    name = get(fields.get("proc.name"))
    args = get(fields.get("proc.args"))
    exe = get(fields.get("proc.exepath")) or get(fields.get("proc.exe"))
    if cmdline:
        argv = cmdline.split()
    elif name or exe:
        argv = [name or exe or "", *(args.split() if args else [])]
    else:
        if not any(k.startswith("proc.") for k in fields):
            raise NotProcess("a Falco alert that names no process")
        raise SourceError("Falco alert on a process without proc.cmdline, proc.name or proc.exepath")

    parent = get(fields.get("proc.pexepath")) or get(fields.get("proc.pexe")) or get(fields.get("proc.pname"))
    vpid = procs.number(fields.get("proc.vpid"))
    pcmd = get(fields.get("proc.pcmdline"))
    proc = Process(
        pid=procs.number(fields.get("proc.pid")),
        ppid=procs.number(fields.get("proc.ppid")),
        exe=exe,
        cwd=get(fields.get("proc.cwd")),
        uid=procs.number(fields.get("user.uid")),
        parent_exe=parent,
        parent_command=pcmd.split() if pcmd else [],
        in_init_tree=procs.in_init_tree(parent, vpid, _ancestors(fields)),
        known="argv from proc.cmdline: split on spaces, argument boundaries lost",
    )
    container_id = get(fields.get("container.id"))
    host = container_id == "host"
    image = get(fields.get("container.image.repository"))
    tag = get(fields.get("container.image.tag"))
    target = Target(
        namespace=get(fields.get("k8s.ns.name")),
        pod=get(fields.get("k8s.pod.name")),
        container=None if host else get(fields.get("container.name")),
        container_id=None if host else container_id,
        image=f"{image}:{tag}" if image and tag else image,
        node=get(obj.get("hostname")) or get(fields.get("evt.hostname")),
        kind="host" if host else None,
    )
    user = get(fields.get("user.name"))
    uid = proc.uid
    yield procs.event(
        ref,
        _time(obj, fields),
        argv,
        proc,
        target,
        verb=evt_type or "execve",
        run_as=user or (str(uid) if uid is not None else None),
    )
