"""Run exported `sqlite` queries on real audit records: a table `logs` built from audit JSON the way Zircolite
flattens JSON logs (one column per field, named by its JSON path, text compared without case).

It lets the raw-field rewrite (raw.py) be checked by running it, not by reading it: the records execguard's
rules fire on must be the records the exported queries select. Only the columns the expansions use are built.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from .targets import TARGETS

INTEGER = {"responseStatus.code"}


def columns() -> list[str]:
    return sorted(TARGETS["sqlite"].fields.values())


def _path(record: dict[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def table(records: Iterable[dict[str, Any]]) -> sqlite3.Connection:
    """An in-memory database with table `logs`: one row per audit event, `timestamp` its stage time."""
    conn = sqlite3.connect(":memory:")
    cols = columns()
    decl = ", ".join(f'"{c}" {"INTEGER" if c in INTEGER else "TEXT COLLATE NOCASE"}' for c in cols)
    conn.execute(f"CREATE TABLE logs (timestamp TEXT, {decl})")
    marks = ", ".join("?" for _ in range(len(cols) + 1))
    rows = []
    for record in records:
        values = [_path(record, c) for c in cols]
        time = record.get("stageTimestamp") or record.get("requestReceivedTimestamp")
        rows.append([time, *(v if v is None or isinstance(v, (int, str)) else str(v) for v in values)])
    conn.executemany(f"INSERT INTO logs VALUES ({marks})", rows)
    return conn


def audit_ids(conn: sqlite3.Connection, query: str) -> set[str]:
    """The auditID of every row a plain `SELECT * FROM logs WHERE ...` query selects."""
    cursor = conn.execute(query)
    names = [d[0] for d in cursor.description]
    at = names.index("auditID")
    return {row[at] for row in cursor.fetchall()}
