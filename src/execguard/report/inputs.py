"""What ``execguard report`` reads: hunt/watch JSON-lines alerts, watch's SQLite store, audit findings JSON.

A bad line is one warning naming file and line and is skipped; every good alert before and after it is kept.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

Warn = Callable[[str], None]


class ReportInputError(Exception):
    """An input that cannot be read at all (missing, unreadable, not what it should be)."""


def _is_alert(d: Any) -> bool:
    return isinstance(d, dict) and isinstance(d.get("rule_id"), str) and isinstance(d.get("severity"), str)


def _lines(stream: IO[bytes], name: str, warn: Warn) -> Iterator[dict[str, Any]]:
    for lineno, raw in enumerate(stream, 1):
        line = raw.strip()
        if not line:
            continue
        try:
            d = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            warn(f"{name}:{lineno}: not JSON ({exc.args[0].split(':')[0]}); skipped")
            continue
        if not _is_alert(d):
            warn(f"{name}:{lineno}: not an execguard alert (no rule_id and severity); skipped")
            continue
        yield d


def jsonl_alerts(path: str, warn: Warn) -> Iterator[dict[str, Any]]:
    """The alerts of one JSON-lines file (``-``: stdin)."""
    if path == "-":
        yield from _lines(sys.stdin.buffer, "<stdin>", warn)
        return
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after the generator is drained
    except OSError as exc:
        raise ReportInputError(f"{path}: {exc.strerror or exc}") from None
    with f:
        try:
            yield from _lines(f, path, warn)
        except OSError as exc:  # a directory, an I/O error halfway: what was read is kept
            raise ReportInputError(f"{path}: {exc.strerror or exc}") from None


def store_alerts(path: Path) -> Iterator[dict[str, Any]]:
    """Every alert in watch's (or hunt --store's) SQLite store, in time order."""
    import sqlite3

    from ..sinks.store import Query, StoreError, connect, rows

    try:
        db = connect(path, create=False)
    except StoreError as exc:
        raise ReportInputError(str(exc)) from None
    try:
        for _rid, d in rows(db, Query()):
            yield d
    except sqlite3.Error as exc:
        raise ReportInputError(f"{path}: {exc}") from None
    finally:
        db.close()


def findings(path: Path) -> list[dict[str, Any]]:
    """``execguard audit -o json``: a list of findings."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ReportInputError(f"{path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(f, dict) and "id" in f and "severity" in f for f in data):
        raise ReportInputError(f"{path}: not execguard audit findings (execguard audit -o json)")
    return data
