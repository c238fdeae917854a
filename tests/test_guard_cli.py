"""guard's commands at the edge: one-line errors with exit 2, approvals written atomically and kept."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.guard.approvals import FILE, ApprovalStore, add_approval, read_approvals

BAD_POLICY = (
    "apiVersion: execguard/v1\nkind: Policy\nentries:\n  - action: deny\n    mode: loud\n    reason: r\n    match: {namespace: [x]}\n"
)


def run(*args: str) -> tuple[int, str, str]:
    out = CliRunner().invoke(app, list(args))
    return out.exit_code, out.stdout, out.stderr


def test_bad_policy_refused_at_start_with_lines(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(BAD_POLICY)
    code, _, err = run("guard", "docker-authz", "--policy", str(tmp_path / "bad.yml"), "--socket", str(tmp_path / "p.sock"),
                       "--state-dir", str(tmp_path / "s"))  # fmt: skip
    assert code == 2 and "bad.yml:5: entry 1 mode 'loud'" in err and "bad.yml:7: unknown key 'namespace'" in err
    assert "Traceback" not in err and not (tmp_path / "p.sock").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["docker-authz", "--mode", "loud"], "--mode 'loud'"),
        (["docker-authz", "--deny-at", "urgent"], "--deny-at 'urgent'"),
        (["docker-authz", "--fail", "sideways"], "--fail 'sideways'"),
        (["approve", "--user", "a", "--for", "3d", "--reason", "x"], "--for: duration '3d'"),
        (["approve", "--user", "a", "--for", "25h", "--reason", "x"], "--for must be between"),
        (["approve", "--user", "a", "--for", "30m", "--reason", " "], "--reason must say why"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = run(
        "guard", *args, "--state-dir", str(tmp_path / "s"), *(["--socket", str(tmp_path / "p.sock")] if args[0] != "approve" else [])
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_approve_writes_and_records(tmp_path: Path) -> None:
    code, out, _ = run(
        "guard", "approve", "--user", "alice", "--namespace", "prod", "--for", "1h30m", "--reason", "INC-5", "--state-dir", str(tmp_path)
    )
    assert code == 0 and out.startswith("approval ") and "alice in namespace prod until" in out
    (approval,) = read_approvals(tmp_path / FILE)
    assert approval.user == "alice" and approval.namespace == "prod" and approval.reason == "INC-5"
    assert (tmp_path / FILE).stat().st_mode & 0o777 == 0o600
    record = json.loads((tmp_path / "decisions.jsonl").read_text())
    assert record["kind"] == "approval" and record["id"] == approval.id
    store = ApprovalStore(tmp_path)
    now = datetime.now(UTC)
    assert store.lookup("alice", "prod", now) == approval
    assert store.lookup("alice", "dev", now) is None and store.lookup(None, "prod", now) is None
    assert store.lookup("alice", "prod", now + timedelta(hours=2)) is None


def test_concurrent_approvals_are_all_kept_and_expired_dropped(tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    add_approval(tmp_path, "old", None, timedelta(minutes=5), "gone", now=past)
    threads = [threading.Thread(target=add_approval, args=(tmp_path, f"u{i}", None, timedelta(minutes=5), "r")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    users = sorted(a.user for a in read_approvals(tmp_path / FILE))
    assert users == [f"u{i}" for i in range(8)]


def test_damaged_approval_lines_grant_nothing(tmp_path: Path) -> None:
    good = add_approval(tmp_path, "alice", None, timedelta(minutes=5), "r")
    with open(tmp_path / FILE, "a") as f:
        f.write('{"id": "x", "user": "mallory"}\nnot json\n')
    assert [a.user for a in read_approvals(tmp_path / FILE)] == [good.user]
