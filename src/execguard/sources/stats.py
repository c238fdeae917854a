"""What a read saw: counts the reader keeps and the warning callback it reports problems through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Warn = Callable[[str, "int | None", str], None]


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0  # bytes read, after decompression
    lines: int = 0  # physical lines seen
    parsed: int = 0  # records decoded (lines past the prefilter, or JSON documents)
    events: int = 0
    bad: int = 0  # bad lines/records/streams skipped
    unknown: int = 0  # well-formed records of no known shape
    not_process: int = 0  # process-telemetry records that are no process start (KubeArmor File/Network, Falco open)
    unreadable: int = 0  # inputs that could not be opened or listed
    repaired: int = 0  # lines with invalid UTF-8, read with U+FFFD in place of the bad bytes
    peak_buffer: int = 0  # most bytes (line mode) or characters (document mode) held at once
    skipped: int = 0  # special files (FIFOs, sockets, devices) found in a directory and not read
    by_format: Counter[str] = field(default_factory=Counter)
    unknown_files: dict[str, str] = field(default_factory=dict)  # file -> what it is instead (not read unless a pipe)

    def held(self, size: int) -> None:
        """Note a buffer of ``size`` bytes or characters held at once."""
        if size > self.peak_buffer:
            self.peak_buffer = size

    def unreadable_input(self, warn: Warn, name: str, message: str) -> None:
        self.unreadable += 1
        warn(name, None, message)
