"""execguard emulate docker against a real daemon; hunt over its debug log and events finds every labelled action,
and score joins those alerts to emulate's labels (the README's emulate -> hunt -> score loop)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.sim.emulate import EMU_LABEL, is_local
from execguard.sim.score import score
from execguard.testing.dockerd import Dockerd

runner = CliRunner()


def test_only_local_daemons_unless_allowed(tmp_path: Path) -> None:
    assert is_local("unix:///var/run/docker.sock")
    assert is_local("tcp://127.0.0.1:2375") and is_local("tcp://localhost:2375") and is_local("tcp://[::1]:2375")
    assert not is_local("tcp://203.0.113.5:2375") and not is_local("ssh://admin@host")
    res = runner.invoke(app, ["emulate", "docker", "--host", "tcp://203.0.113.5:2375", "--labels", str(tmp_path / "l.jsonl")])
    assert res.exit_code == 2
    assert not (tmp_path / "l.jsonl").exists()


@dataclass
class Run:
    labels: Path
    events: Path
    debug_log: Path
    rows: list[dict[str, Any]]


@pytest.fixture(scope="module")
def emulated(docker_daemon: Dockerd, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("emulate")
    labels, events = out / "emu.jsonl", out / "docker-events.jsonl"
    res = runner.invoke(app, ["emulate", "docker", "--host", docker_daemon.url, "--scenario", "all", "--labels", str(labels),
                              "--events", str(events)])
    assert res.exit_code == 0, res.output
    debug_log = out / "dockerd.log"
    shutil.copyfile(docker_daemon.log_path, debug_log)  # the daemon keeps writing its own; hunt a still copy
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    return Run(labels, events, debug_log, rows)


def hunt(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / f"{name}.alerts.jsonl"
    res = runner.invoke(app, ["hunt", *args, "-o", "jsonl", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return out


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.docker
def test_emulate_on_real_daemon_is_labelled_cleaned_up_and_hunted(emulated: Run, docker_daemon: Dockerd, tmp_path: Path) -> None:
    rows = emulated.rows
    assert {r["scenario"] for r in rows} == {"teamtnt", "kinsing"}
    execs = [r for r in rows if r["exec_id"]]
    assert len(execs) == 10 and all(r["time"] and r["container"] and r["step"] for r in rows)
    client = docker_daemon.client()
    assert client.containers.list(all=True, filters={"label": EMU_LABEL}) == []

    alerts = read(hunt(tmp_path, "debug", str(emulated.debug_log), "--format", "dockerd-log"))
    by_exec = {a["event_id"]: a for a in alerts if a.get("event_id")}
    for r in execs:
        assert r["exec_id"] in by_exec, f"no alert for {r['step']} ({r['exec_id']})"
    miner = [by_exec[r["exec_id"]] for r in execs if r["step"] == "download miner"]
    assert all(a["severity"] in ("high", "critical") for a in miner)
    creates = [a for a in alerts if a["action"] == "create"]
    names = {r["container_name"] for r in rows if not r["exec_id"]}
    assert names <= {a["target"]["container"] for a in creates}


@pytest.mark.docker
def test_emulate_hunt_score_loop(emulated: Run, tmp_path: Path) -> None:
    """The README loop, each source alone and both together; recall is what each source can show."""
    debug = hunt(tmp_path, "debug", str(emulated.debug_log), "--format", "dockerd-log")
    events = hunt(tmp_path, "events", str(emulated.events))  # format detected
    both = hunt(tmp_path, "both", str(emulated.debug_log), str(emulated.events))
    labels = read(emulated.labels)
    n = len(labels)
    assert n == 12 and all(lab["malicious"] for lab in labels)

    # the debug log has every API call with its body: each action, exec or create, is caught
    res = score(labels, read(debug))
    assert (res.total.events, res.total.caught) == (n, n)
    assert res.total.precision == 1.0 and res.missed == []
    assert res.by_procedure["G0139"].recall == 1.0 and res.by_procedure["S0599"].recall == 1.0
    assert res.by_rule["cmd-miner"].caught == 4  # download and run, in both victims
    assert res.scored == [f"{n} emulate labels against {emulated.debug_log} (dockerd-log)"]

    # events carry each exec's command and ID but a create's neither command nor flags: the two creates are missed
    res = score(labels, read(events))
    assert (res.total.events, res.total.caught) == (n, n - 2)
    assert sorted(m["step"] for m in res.missed) == ["create container with downloader entrypoint", "escape to host"]
    assert res.by_format["docker-events"].recall == (n - 2) / n

    res = score(labels, read(both))
    assert res.total.recall == 1.0
    assert (res.by_format["dockerd-log"].caught, res.by_format["docker-events"].caught) == (n, n - 2)
    assert res.total.precision == 1.0

    cli = runner.invoke(app, ["score", "--labels", str(emulated.labels), str(both), "--min-severity", "high"])
    assert cli.exit_code == 0, cli.output
    assert f"against {emulated.debug_log} (dockerd-log)" in cli.output and f"against {emulated.events} (docker-events)" in cli.output
    assert f"**recall 100.0%** ({n}/{n} attack events alerted)" in cli.output
