"""guard's decisions and approvals in the SQLite alert store: ``guard ... --store PATH``, ``guard decisions``.

The decision record (decisions.jsonl, one JSON object per line) is written first, on the request
path, before the answer leaves; the store is filled from it by ``sync``, which copies the lines added
since the last sync and notes how far it got (file, inode, byte offset) in the same transaction. So
the store never holds a decision the record lacks, a store that is locked or down only falls
behind, and whatever it missed (a SIGKILL between answer and commit, a locked store) is copied on
the next sync, at most once: rows are keyed on the line's ``record_id``.

Additive to the alert store's schema: two tables of their own, created when missing, so the alert
tables and their migrations (sinks/store.py) are untouched.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..times import time_ns
from .store import StoreError, connect, time_window

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS guard_records (
        id INTEGER PRIMARY KEY,
        record_id TEXT NOT NULL UNIQUE,
        time TEXT,
        time_ns INTEGER,
        kind TEXT NOT NULL,
        platform TEXT,
        operation TEXT,
        decision TEXT,
        mode TEXT,
        severity TEXT,
        rule_id TEXT,
        entry TEXT,
        approval TEXT,
        user TEXT,
        namespace TEXT,
        pod TEXT,
        container TEXT,
        image TEXT,
        command TEXT,
        uid TEXT,
        record TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS guard_records_time ON guard_records (time_ns)",
    "CREATE INDEX IF NOT EXISTS guard_records_kind_time ON guard_records (kind, time_ns)",
    "CREATE INDEX IF NOT EXISTS guard_records_decision_time ON guard_records (decision, time_ns)",
    "CREATE INDEX IF NOT EXISTS guard_records_user_time ON guard_records (user, time_ns)",
    "CREATE INDEX IF NOT EXISTS guard_records_namespace_time ON guard_records (namespace, time_ns)",
    "CREATE TABLE IF NOT EXISTS guard_sync (file TEXT PRIMARY KEY, inode INTEGER NOT NULL, offset INTEGER NOT NULL)",
)
COLUMNS = (
    "record_id", "time", "time_ns", "kind", "platform", "operation", "decision", "mode", "severity", "rule_id", "entry",
    "approval", "user", "namespace", "pod", "container", "image", "command", "uid", "record",
)  # fmt: skip
_INSERT = f"INSERT OR IGNORE INTO guard_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
CHUNK = 64 << 10  # bytes of the record per transaction: short enough that request threads barely wait for the GIL
MAX_LINE = 64 << 20
VERDICTS = ("allow", "deny", "warn", "audit", "approved")


def open_store(path: Path | str) -> sqlite3.Connection:
    """The alert store with guard's tables; StoreError naming the file when it is not usable."""
    db = connect(path)
    try:
        db.execute("PRAGMA busy_timeout = 2000")  # a locked store makes the follower retry, never wait long
        for statement in SCHEMA:
            db.execute(statement)
    except sqlite3.Error as exc:
        db.close()
        raise StoreError(f"{path}: cannot add guard's tables ({exc})") from None
    return db


def verdict(d: dict[str, Any]) -> str | None:
    """allow | deny | warn | audit | approved for a decision record; None for other kinds."""
    if d.get("kind") != "decision":
        return None
    if not d.get("allowed"):
        return "deny"
    if d.get("approval"):
        return "approved"
    if d.get("would_deny"):
        return str(d.get("mode") or "audit")
    return "allow"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def row(line: bytes, d: dict[str, Any]) -> tuple[Any, ...]:
    kind = str(d.get("kind") or "?")
    rules = d.get("rules") or []
    record_id = d.get("record_id") or "sha256:" + hashlib.sha256(line).hexdigest()  # a line from before record ids
    approval = d.get("id") if kind == "approval" else d.get("approval")
    return (
        str(record_id), _text(d.get("time")), time_ns(d.get("time")), kind, _text(d.get("platform")), _text(d.get("operation")),
        verdict(d), _text(d.get("mode")), _text(d.get("severity")), _text(rules[0]) if rules else None, _text(d.get("entry")),
        _text(approval), _text(d.get("user")), _text(d.get("namespace")), _text(d.get("pod")), _text(d.get("container")),
        _text(d.get("image")), _text(d.get("command_display")), _text(d.get("uid")), line.decode("utf-8", "replace"),
    )  # fmt: skip


@dataclass
class SyncResult:
    copied: int = 0  # rows new to the store
    lines: int = 0  # complete lines read
    bad: list[int] = field(default_factory=list)  # byte offsets of lines that are not JSON objects (skipped)
    behind: int = 0  # bytes of the record not yet in the store after this call


def sync(db: sqlite3.Connection, record: Path, chunk: int = CHUNK, limit: int | None = None) -> SyncResult:
    """Copy the record's lines the store has not seen, a chunk per transaction, until the end (or ``limit`` bytes)."""
    key = str(record.resolve())
    result = SyncResult()
    done = 0
    while limit is None or done < limit:
        try:
            st = os.stat(record)
        except FileNotFoundError:
            return result
        db.execute("BEGIN IMMEDIATE")
        try:
            seen = db.execute("SELECT inode, offset FROM guard_sync WHERE file = ?", (key,)).fetchone()
            # a new file (rotated, recreated) or a shorter one is read from its start; record ids keep rows single
            offset = seen[1] if seen and seen[0] == st.st_ino and seen[1] <= st.st_size else 0
            with open(record, "rb") as f:
                f.seek(offset)
                data = f.read(chunk)
                while b"\n" not in data and len(data) < MAX_LINE:
                    more = f.read(chunk)  # one record longer than a chunk (a pod with a huge command)
                    if not more:
                        break
                    data += more
            end = data.rfind(b"\n") + 1  # a line still being written (or cut by a crash) waits for its newline
            if end == 0 and len(data) >= MAX_LINE:
                end = len(data)  # no newline in 64 MiB: skipped as bad rather than stalling the copy
            rows = []
            pos = offset
            for line in data[:end].splitlines():
                try:
                    d = orjson.loads(line)
                except orjson.JSONDecodeError:
                    d = None
                if isinstance(d, dict):
                    rows.append(row(line, d))
                elif line.strip():
                    result.bad.append(pos)
                pos += len(line) + 1
            before = db.total_changes
            db.executemany(_INSERT, rows)
            result.copied += db.total_changes - before
            result.lines += len(rows)
            db.execute("INSERT OR REPLACE INTO guard_sync VALUES (?, ?, ?)", (key, st.st_ino, offset + end))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        done += end
        result.behind = st.st_size - offset - end
        if end == 0 or result.behind <= 0:
            return result
    return result


@dataclass
class DecisionQuery:
    since: int | None = None
    until: int | None = None
    kinds: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    limit: int = 0  # the newest N; 0 = all


def records(db: sqlite3.Connection, q: DecisionQuery) -> Iterator[dict[str, Any]]:
    """Matching records (the JSON lines as written), oldest first, streamed."""
    where, args = time_window(q.since, q.until)
    for column, values in (("kind", q.kinds), ("decision", q.verdicts), ("user", q.users), ("namespace", q.namespaces)):
        if values:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            args += values
    if q.rules:  # any rule behind the decision, not only the lead one
        where.append(f"EXISTS (SELECT 1 FROM json_each(record, '$.rules') WHERE value IN ({', '.join('?' * len(q.rules))}))")
        args += q.rules
    sql = f"SELECT id, time_ns, record FROM guard_records {'WHERE ' + ' AND '.join(where) if where else ''}"
    if q.limit:
        sql = f"SELECT * FROM ({sql} ORDER BY time_ns DESC, id DESC LIMIT {int(q.limit)})"
    for _, _, text in db.execute(f"{sql} ORDER BY time_ns IS NULL, time_ns, id", args):
        yield orjson.loads(text)
