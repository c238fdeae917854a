"""What the process-telemetry sources (Falco, auditd, KubeArmor) share: one Event per process start.

These sources see processes on the node, not API callers: the actor stays unknown unless a record
names a person (auditd's login uid), and the Linux user goes to ``run_as_user``. Whether a process
came in by an exec is read from its parent: a container's first process (pid 1 in the container)
is its init; a process whose parent is the runtime (runc, or the shim that adopts exec'd processes)
and that is not pid 1 came in through the runtime, so it is not in the init tree.
"""

from __future__ import annotations

import posixpath
import re
from datetime import UTC, datetime

from .. import redact
from ..model import Actor, Event, Process, SourceRef, Target

ACTION = "process"

# binaries that start processes in a container from outside it: runc-like runtimes run `exec` ...
_EXEC_RUNTIMES = frozenset({"runc", "crun", "runsc", "youki", "runc:[2:init]"})
# ... and the monitors that adopt what they start (entrypoints and, once runc is gone, exec'd processes)
_MONITORS = ("containerd-shim", "docker-containerd-shim", "conmon")

# a container id in a cgroup path: docker-ID.scope, cri-containerd-ID.scope, crio-ID.scope, /docker/ID, /kubepods/.../ID
_CGROUP_ID = re.compile(r"(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:/|$)")
UNSET = frozenset({"", "<NA>", "N/A", "?", "(null)", "(none)", "unset", "4294967295", "-1"})


def value(v: object) -> str | None:
    """A field's text, or None for the placeholders the tools print for 'unknown'."""
    if type(v) is str:
        s = v.strip()
    elif v is None or isinstance(v, (dict, list, bool)):
        return None
    else:
        s = str(v)
    return None if s in UNSET else s


def number(v: object) -> int | None:
    s = value(v)
    if s is None:
        return None
    try:
        return int(float(s)) if "." in s or "e" in s else int(s)
    except (ValueError, OverflowError):  # not a number, or inf
        return None


def in_init_tree(parent: str | None, container_pid: int | None, ancestors: list[str] | None = None) -> bool | None:
    """True for the container's first process, False for one the runtime started later or a descendant of one
    (``ancestors``: the names above the parent, where the record lists them), None when the record cannot tell."""
    if container_pid == 1:
        return True
    name = posixpath.basename(parent or "")
    if name in _EXEC_RUNTIMES or any(posixpath.basename(a) in _EXEC_RUNTIMES for a in ancestors or ()):
        return False
    if name.startswith(_MONITORS):
        # the shim is the parent of the entrypoint (pid 1) and of exec'd processes it adopted
        return None if container_pid is None else False
    return None


def container_from_cgroup(path: str | None) -> str | None:
    """The 64-hex container id in a cgroup path, if it holds one."""
    if not path:
        return None
    m = _CGROUP_ID.search(path)
    return m.group(1) if m else None


def iso_seconds(secs: float) -> str | None:
    """RFC 3339 of epoch seconds (milliseconds kept), or None for a time no calendar holds."""
    try:
        stamp = datetime.fromtimestamp(int(secs), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return None
    frac = min(999, round((secs - int(secs)) * 1000))
    return f"{stamp}.{frac:03d}Z" if frac else f"{stamp}Z"


def iso_nanos(nanos: int) -> str | None:
    secs, frac = divmod(nanos, 1_000_000_000)
    try:
        return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
    except (ValueError, OverflowError, OSError):
        return None


def event(
    ref: SourceRef,
    time: str | None,
    argv: list[str],
    proc: Process,
    target: Target,
    *,
    outcome: str = "allowed",
    verb: str | None = "execve",
    run_as: str | None = None,
    actor: Actor | None = None,
) -> Event:
    """The Event of one process start; argv and the parent's argv are redacted here, as every source does."""
    proc.parent_command = redact.argv(proc.parent_command) if proc.parent_command else []
    if target.kind is None:
        target.kind = "container" if (target.container_id or target.pod or target.container) else None
    return Event(
        time=time,
        source=ref,
        actor=actor or Actor(),
        action=ACTION,
        verb=verb,
        target=target,
        command=redact.argv(argv),
        run_as_user=run_as,
        outcome=outcome,
        raw=f"{ref.file}:{ref.line}" if ref.line else ref.file,
        process=proc,
    )
