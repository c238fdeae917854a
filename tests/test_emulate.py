"""execguard emulate docker against a real daemon; hunt over its debug log finds every labelled action."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.sim.emulate import EMU_LABEL, is_local

runner = CliRunner()


def test_only_local_daemons_unless_allowed(tmp_path: Path) -> None:
    assert is_local("unix:///var/run/docker.sock")
    assert is_local("tcp://127.0.0.1:2375") and is_local("tcp://localhost:2375") and is_local("tcp://[::1]:2375")
    assert not is_local("tcp://203.0.113.5:2375") and not is_local("ssh://admin@host")
    res = runner.invoke(app, ["emulate", "docker", "--host", "tcp://203.0.113.5:2375", "--labels", str(tmp_path / "l.jsonl")])
    assert res.exit_code == 2
    assert not (tmp_path / "l.jsonl").exists()


@pytest.mark.docker
def test_emulate_on_real_daemon_is_labelled_cleaned_up_and_hunted(docker_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    labels = tmp_path / "emu.jsonl"
    res = runner.invoke(app, ["emulate", "docker", "--host", docker_daemon.url, "--scenario", "all", "--labels", str(labels)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert {r["scenario"] for r in rows} == {"teamtnt", "kinsing"}
    execs = [r for r in rows if r["exec_id"]]
    assert len(execs) == 10 and all(r["time"] and r["container"] and r["step"] for r in rows)
    client = docker_daemon.client()
    assert client.containers.list(all=True, filters={"label": EMU_LABEL}) == []

    out = tmp_path / "alerts.jsonl"
    hunt = runner.invoke(app, ["hunt", str(docker_daemon.log_path), "--format", "dockerd-log", "-o", "jsonl", "--out", str(out), "-q"])
    assert hunt.exit_code == 0, hunt.output
    alerts = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    by_exec = {a["event_id"]: a for a in alerts if a.get("event_id")}
    for r in execs:
        assert r["exec_id"] in by_exec, f"no alert for {r['step']} ({r['exec_id']})"
    miner = [by_exec[r["exec_id"]] for r in execs if r["step"] == "download miner"]
    assert all(a["severity"] in ("high", "critical") for a in miner)
    creates = [a for a in alerts if a["action"] == "create"]
    names = {r["container_name"] for r in rows if not r["exec_id"]}
    assert names <= {a["target"]["container"] for a in creates}
