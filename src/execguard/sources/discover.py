"""Which files a list of paths names: directories walked recursively, special files skipped with a warning."""

from __future__ import annotations

import os
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

    for root, dirs, files in os.walk(top, onerror=onerror):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
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
