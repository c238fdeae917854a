"""Which files a list of paths names: directories walked recursively, special files skipped with a warning."""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator

from .stats import Stats, Warn


def expand(paths: Iterable[str], stats: Stats, warn: Warn) -> Iterator[str]:
    """Files to read: paths as given, directories walked recursively (hidden names skipped)."""
    for path in paths:
        if path == "-":
            yield path
        elif os.path.isdir(path):
            yield from _walk(path, stats, warn)
        elif os.path.lexists(path):
            yield path  # a file, a pipe (/dev/fd/N), or a broken link that fails to open
        else:
            stats.unreadable_input(warn, path, "no such file or directory")


def _walk(top: str, stats: Stats, warn: Warn) -> Iterator[str]:
    def onerror(exc: OSError) -> None:
        stats.unreadable_input(warn, exc.filename or top, f"cannot list: {exc.strerror or exc}")

    pseudo = _pseudo_mounts()

    def kernel(path: str) -> bool:
        """A kernel file system, skipped with a warning: /proc/kmsg and the like are regular files whose read
        waits forever, and none of it is a log."""
        kind = pseudo.get(os.path.realpath(path)) if pseudo else None
        if kind is None:
            return False
        stats.skipped += 1
        warn(path, None, f"skipped: a {kind} file system, not logs")
        return True

    if kernel(top):
        return
    for root, dirs, files in os.walk(top, onerror=onerror):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not kernel(os.path.join(root, d)))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            try:
                mode = os.stat(path).st_mode
            except OSError as exc:
                stats.unreadable_input(warn, path, f"cannot open: {exc.strerror or exc}")
                continue
            if stat.S_ISREG(mode):
                yield path
            else:
                # reading a FIFO nobody writes to would wait forever; a device or socket is no log
                stats.skipped += 1
                warn(path, None, f"skipped: {_special(mode)}, not a regular file (name it on the command line to read it)")


# kernel and runtime file systems a recursive walk must not enter (name a file in them to read it)
PSEUDO = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "pstore", "bpf",
    "mqueue", "hugetlbfs", "configfs", "fusectl", "binfmt_misc", "autofs", "efivarfs", "rpc_pipefs", "nsfs",
})  # fmt: skip


def _pseudo_mounts(table: str = "/proc/self/mounts") -> dict[str, str]:
    """Mount point -> type of each pseudo file system mounted (empty where the table cannot be read)."""
    found: dict[str, str] = {}
    try:
        with open(table, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[2] in PSEUDO:
                    # the table escapes space, tab, newline and backslash as octal
                    found[re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[1])] = parts[2]
    except OSError:
        pass
    return found


def is_stream(path: str) -> bool:
    """The input is a pipe, FIFO or terminal (``-`` is stdin): its records arrive over time."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode if path == "-" else os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
