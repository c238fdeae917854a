"""The embedded SQLite alert store: ``hunt --store PATH``, ``--sink store:PATH``, queried by ``execguard alerts``.

One row per alert (schema in docs/sinks.md). WAL journal, so ``execguard alerts`` reads while a
``watch`` writes. Idempotent: a row is keyed on (event key, lead rule), the event key being the
event's own id or, when the log gives none, a digest of the event; a replayed log or a restarted
watch never doubles an alert (``INSERT OR IGNORE``). Rows are committed in batches (every
``batch`` alerts or ``interval`` seconds, by a small timer thread when no alert comes, and at close), so
memory holds at most one batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..model import Alert, severity_rank
from ..times import time_ns
from .alert_json import alert_dict

SCHEMA_VERSION = 1

# Each entry moves the schema from version i to i + 1; a new column or index is a new entry, never an edit.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            time TEXT,
            time_ns INTEGER,
            severity TEXT NOT NULL,
            severity_rank INTEGER NOT NULL,
            rule_id TEXT NOT NULL,
            title TEXT,
            actor_user TEXT,
            impersonated_user TEXT,
            namespace TEXT,
            pod TEXT,
            container TEXT,
            image TEXT,
            source_format TEXT,
            source_file TEXT,
            source_line INTEGER,
            event_id TEXT,
            event_key TEXT NOT NULL,
            stored_ns INTEGER NOT NULL,
            alert TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX alerts_event_rule ON alerts (event_key, rule_id)",
        "CREATE INDEX alerts_time ON alerts (time_ns)",
        "CREATE INDEX alerts_severity_time ON alerts (severity_rank, time_ns)",
        "CREATE INDEX alerts_rule_time ON alerts (rule_id, time_ns)",
        "CREATE INDEX alerts_actor_time ON alerts (actor_user, time_ns)",
        "CREATE INDEX alerts_namespace_time ON alerts (namespace, time_ns)",
        "CREATE INDEX alerts_pod_time ON alerts (pod, time_ns)",
    ),
]
assert len(MIGRATIONS) == SCHEMA_VERSION

COLUMNS = (
    "time", "time_ns", "severity", "severity_rank", "rule_id", "title", "actor_user", "impersonated_user", "namespace", "pod",
    "container", "image", "source_format", "source_file", "source_line", "event_id", "event_key", "stored_ns", "alert",
)
_INSERT = f"INSERT OR IGNORE INTO alerts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


class StoreError(Exception):
    """The store cannot be opened or written: one line naming the file."""


def event_key(d: dict[str, Any]) -> str:
    """What makes two alerts the same event: its id, else a digest of what happened (not where it was read).

    A throttle summary (``throttled``) is its own record, keyed on the window it closes.
    """
    throttled = d.get("throttled")
    if throttled:
        return "throttle:" + hashlib.sha256(orjson.dumps(throttled, option=orjson.OPT_SORT_KEYS)).hexdigest()
    if d.get("event_id"):
        return "id:" + str(d["event_id"])
    what = {k: v for k, v in d.items() if k not in ("source", "sources", "suppressed", "rules", "reasons", "rule_id", "title", "severity")}
    return "sha256:" + hashlib.sha256(orjson.dumps(what, option=orjson.OPT_SORT_KEYS)).hexdigest()


def row(d: dict[str, Any], stored_ns: int) -> tuple[Any, ...]:
    actor = d.get("actor") or {}
    target = d.get("target") or {}
    source = d.get("source") or {}
    severity = d.get("severity") or "info"
    return (
        d.get("time"), time_ns(d.get("time")), severity, severity_rank(severity), d.get("rule_id") or "?", d.get("title"),
        actor.get("user"), actor.get("impersonated_user"), target.get("namespace"), target.get("pod"),
        target.get("container"), target.get("image"), source.get("format"), source.get("file"), source.get("line"),
        d.get("event_id"), event_key(d), stored_ns, orjson.dumps(d).decode(),
    )


def connect(path: Path | str, create: bool = True) -> sqlite3.Connection:
    """Open (and create or migrate) the store; StoreError with the file name when it is not one."""
    p = Path(path)
    if not create and not p.exists():
        raise StoreError(f"{p}: no such alert store")
    try:
        if create and p.parent and not p.parent.exists():
            raise StoreError(f"{p}: directory {p.parent} does not exist")
        db = sqlite3.connect(p, timeout=30, check_same_thread=False, isolation_level=None)
        if create:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: set once by the writer, readers find it
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a process crash, not a power cut
        _migrate(db, p)
    except sqlite3.Error as exc:
        raise StoreError(f"{p}: not a usable alert store ({exc})") from None
    return db


def _version(db: sqlite3.Connection) -> int:
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone() is None:
        return 0
    return int(db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    if _version(db) == SCHEMA_VERSION:
        return  # nothing to write: a read-only store can still be queried
    db.execute("BEGIN IMMEDIATE")  # one writer migrates; a second opener waits, then sees the new version
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ns INTEGER NOT NULL)")
        current = _version(db)
        if current > SCHEMA_VERSION:
            raise StoreError(f"{path}: store schema version {current} is newer than this execguard reads ({SCHEMA_VERSION})")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time_ns()))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


@dataclass
class StoreSink:
    """A Sink writing every alert to the store; thread-safe (watch writes from several inputs)."""

    path: Path | str
    batch: int = 500
    interval: float = 1.0
    written: int = 0  # rows inserted
    duplicates: int = 0  # alerts already in the store (a replay)
    _db: sqlite3.Connection = field(init=False, repr=False)
    _pending: list[tuple[Any, ...]] = field(default_factory=list, init=False, repr=False)
    _last: float = field(default=0.0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        self._db = connect(self.path)
        self._last = time.monotonic()
        # a live watch may go quiet after one alert: the batch is committed within ``interval`` all the same
        self._flusher = threading.Thread(target=self._flush_on_time, name="execguard-store-flush", daemon=True)
        self._flusher.start()

    def _flush_on_time(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self._pending and time.monotonic() - self._last >= self.interval:
                    with contextlib.suppress(StoreError):  # kept in _pending; the next write raises it to the caller
                        self._commit()

    def write(self, alert: Alert) -> None:
        self.write_dict(alert_dict(alert))

    def write_dict(self, d: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(row(d, time.time_ns()))
            if len(self._pending) >= self.batch or time.monotonic() - self._last >= self.interval:
                self._commit()

    def flush(self) -> None:
        with self._lock:
            self._commit()

    def _commit(self) -> None:
        self._last = time.monotonic()
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        try:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(_INSERT, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._pending = rows + self._pending  # kept for the next try; the caller hears of it now
            del self._pending[: max(0, len(self._pending) - 10 * self.batch)]  # but memory stays bounded
            raise StoreError(f"{self.path}: {exc}") from None
        added = self._db.total_changes - before
        self.written += added
        self.duplicates += len(rows) - added

    def close(self) -> None:
        self._stop.set()
        self._flusher.join(5)
        with self._lock:
            try:
                self._commit()
            finally:
                self._db.close()


@dataclass
class Query:
    """What ``execguard alerts`` asks the store; globs are matched by AlertFilter afterwards, literals here too."""

    since: int | None = None
    until: int | None = None
    min_severity: str = "info"
    namespaces: list[str] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)


def _literal(patterns: list[str]) -> bool:
    return bool(patterns) and not any(c in p for p in patterns for c in "*?[")


def time_window(since: int | None, until: int | None) -> tuple[list[str], list[Any]]:
    """WHERE terms and their arguments for ``time_ns`` between since and until (both inclusive, either open)."""
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append("time_ns >= ?")
        args.append(since)
    if until is not None:
        where.append("time_ns <= ?")
        args.append(until)
    return where, args


def rows(db: sqlite3.Connection, q: Query) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row id, alert dict) in time order (no time last), streamed: memory does not grow with the store."""
    where, args = time_window(q.since, q.until)
    where.insert(0, "severity_rank >= ?")
    args.insert(0, severity_rank(q.min_severity))
    for column, patterns in (("namespace", q.namespaces), ("pod", q.pods)):
        if _literal(patterns):
            where.append(f"{column} IN ({', '.join('?' * len(patterns))})")
            args += patterns
    if _literal(q.users):
        marks = ", ".join("?" * len(q.users))
        where.append(f"(actor_user IN ({marks}) OR impersonated_user IN ({marks}))")
        args += q.users * 2
    sql = f"SELECT id, alert FROM alerts WHERE {' AND '.join(where)} ORDER BY time_ns IS NULL, time_ns, id"
    for rid, text in db.execute(sql, args):
        yield rid, orjson.loads(text)
