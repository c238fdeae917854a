"""What /proc says about a process the runtime just started (``watch --containerd`` runs on the node).

containerd's exec events carry a pid and no argv, so the argv, user, working directory and binary are read
from /proc at once. A process can be gone by then (``sh -c true`` lives for a millisecond), its pid can
be reused, and a watcher outside the host's PID namespace sees none of them: each case leaves the argv
empty and says why in ``Process.known``, so the exec still alerts.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from .. import redact
from ..model import Process

EXITED = "the process exited before its argv could be read"
REUSED = "the pid was reused before its argv could be read"
NOT_VISIBLE = "the pid is not visible from watch's PID namespace (run it with hostPID)"
NOT_STARTED = "the runtime had not started the command yet when /proc was read"
DENIED = "reading /proc of the process was refused (watch needs root; SYS_PTRACE for cwd and binary)"
RUNC_INIT_TRIES = 100  # runc's own init may still hold the pid for a moment before it execs the command
RUNC_INIT_PAUSE = 0.001
RUNC_INIT = b"runc\0init"
SKEW_NS = 2_000_000_000  # a process that started this long after its event is another one on a reused pid


def _read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(1 << 20)  # an argv is at most a few MB; a bounded read of the rest is enough


def argv_of(raw: bytes) -> list[str]:
    return [a.decode("utf-8", "surrogateescape") for a in raw.rstrip(b"\0").split(b"\0")] if raw.strip(b"\0") else []


def _status(text: str) -> tuple[int | None, int | None]:
    """(effective uid, parent pid) from /proc/PID/status."""
    uid = ppid = None
    for line in text.splitlines():
        if line.startswith("Uid:"):
            parts = line.split()
            uid = int(parts[2]) if len(parts) > 2 else None
        elif line.startswith("PPid:"):
            ppid = int(line.split()[1])
    return uid, ppid


def _state(status: str) -> str:
    """The one-letter state of /proc/PID/status (R, S, D, Z ...)."""
    at = status.find("State:")
    return status[at + 6 :].strip()[:1] if at >= 0 else ""


def _link(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:  # gone, or no SYS_PTRACE over another user's process
        return None


class ProcReader:
    """Reads processes under ``root`` (/proc, or a host /proc mounted elsewhere in a pod)."""

    def __init__(self, root: Path = Path("/proc")) -> None:
        self.root = root
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.boot_ns = self._boot_ns()
        self.visible = True  # False: containerd's processes are in a PID namespace we cannot see

    def _boot_ns(self) -> int | None:
        try:
            for line in _read(self.root / "stat").decode().splitlines():
                if line.startswith("btime "):
                    return int(line.split()[1]) * 1_000_000_000
        except (OSError, ValueError):
            pass
        return None

    def started_ns(self, pid: int) -> int | None:
        """When the process started (wall clock), from /proc/PID/stat field 22 and the boot time."""
        if self.boot_ns is None:
            return None
        try:
            stat = _read(self.root / str(pid) / "stat").decode(errors="replace")
            ticks = int(stat.rpartition(")")[2].split()[19])  # fields after "(comm)" start at field 3
        except (OSError, ValueError, IndexError):
            return None
        return self.boot_ns + ticks * 1_000_000_000 // self.tick

    def stdin(self, pid: int) -> tuple[bool | None, bool | None]:
        """(tty, stdin) from what fd 0 is: a terminal (``kubectl exec -it``), /dev/null (no stdin) or a pipe."""
        target = _link(self.root / str(pid) / "fd" / "0")
        if target is None:
            return None, None
        tty = target.startswith(("/dev/pts/", "/dev/tty", "/dev/console"))
        return tty, tty or target != "/dev/null"

    def process(self, pid: int, event_ns: int = 0, exec_id: str | None = None) -> tuple[list[str], Process]:
        """(argv, Process) of ``pid``; the argv is empty and ``Process.known`` says why when it could not be read."""
        proc = Process(pid=pid, exec_id=exec_id, in_init_tree=False)
        if not self.visible:
            proc.known = NOT_VISIBLE
            return [], proc
        where = self.root / str(pid)
        try:
            # runc's own init holds the pid until it execs the command (the event can come first): its
            # cmdline is empty or "runc init" then; wait for the exec a little, unless it is a zombie already
            for _ in range(RUNC_INIT_TRIES):
                raw = _read(where / "cmdline")
                status = _read(where / "status").decode(errors="replace")
                if _state(status) in ("Z", "X") or (raw.strip(b"\0") and not raw.startswith(RUNC_INIT)):
                    break
                time.sleep(RUNC_INIT_PAUSE)
        except PermissionError:
            proc.known = DENIED
            return [], proc
        except OSError:  # ENOENT or ESRCH: gone
            proc.known = EXITED
            return [], proc
        argv = argv_of(raw) if not raw.startswith(RUNC_INIT) else []
        proc.uid, proc.ppid = _status(status)
        started = self.started_ns(pid)
        if event_ns and started is not None and started > event_ns + SKEW_NS:
            return [], Process(pid=pid, exec_id=exec_id, in_init_tree=False, known=REUSED)
        if not argv:  # a zombie (exited, not yet reaped by the shim) has an empty cmdline
            proc.known = NOT_STARTED if raw.startswith(RUNC_INIT) or _state(status) not in ("Z", "X") else EXITED
            return [], proc
        proc.cwd = _link(where / "cwd")
        proc.exe = _link(where / "exe")
        if proc.ppid:
            parent = self.root / str(proc.ppid)
            proc.parent_exe = _link(parent / "exe")
            with contextlib.suppress(OSError):
                proc.parent_command = redact.argv(argv_of(_read(parent / "cmdline")))
        return redact.argv(argv), proc
