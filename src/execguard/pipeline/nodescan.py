"""Whether input can hold node telemetry at all, told from its bytes before it is read.

The join (pipeline/join.py) holds every event it reads until it knows that no node telemetry (Tetragon,
Falco, KubeArmor, auditd: what a node saw run) can still come; on a dense log that is most events, spilled
to disk and read back. Every record of a node action holds one of its source's literals (the prefilter's
contract, pipeline/prefilter.py), so bytes that hold none of them cannot yield one. Plain files only: a
gzip or UTF-16 file's bytes say nothing until inflated or decoded.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Iterable

from ..engine.joinkeys import NODE
from ..sources import auditd, sniff
from ..sources.discover import expand
from ..sources.find import holds_any
from ..sources.stats import Stats
from .prefilter import literals_for

GZ_MAGIC = b"\x1f\x8b"
CHUNK = 16 << 20  # bytes scanned at a time in a whole file


# the JSON sources' literals of node actions, and the auditd log's (every record it reads is a process)
LITERALS = sorted({*(literals_for(set(NODE)) or []), *auditd.LITERALS})


def clean_range(path: str, start: int, end: int) -> bool:
    """True when bytes [start, end) of ``path`` hold no node literal (a range of line-delimited JSON)."""
    if not LITERALS:
        return False
    try:
        with (
            open(path, "rb") as f,
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as whole,
            memoryview(whole) as view,
            view[start:end] as part,
        ):
            return not holds_any(part, LITERALS)
    except (OSError, ValueError):
        return False


def clean_files(paths: Iterable[str]) -> bool:
    """True when every input is a plain file (directories walked) whose bytes hold no node literal."""
    if not LITERALS:
        return False
    overlap = max(map(len, LITERALS)) - 1  # a literal cut by a chunk boundary is found in the next chunk
    for path in expand(paths, Stats(), lambda *_: None):
        if path == "-":
            return False
        try:
            with open(path, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    return False
                tail = b""
                while block := f.read(CHUNK):
                    if not tail and (block[:2] == GZ_MAGIC or sniff.utf16(block)):
                        return False  # its lines are known only once inflated or decoded
                    if holds_any(tail + block if tail else block, LITERALS):
                        return False
                    tail = block[-overlap:]
        except OSError:
            return False
    return True
