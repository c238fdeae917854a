"""Docker rules: a positive and a negative case each, on events parsed from the real Docker 20.10 capture."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.engine.rule import Rule
from execguard.model import Event
from execguard.sources.reader import Reader

DATA = Path(__file__).parent / "data"
LOG = DATA / "docker" / "dockerd-debug.log"
EVENTS = DATA / "docker" / "docker-events.jsonl"


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return load_rules()


def parse(path: Path) -> list[Event]:
    return list(Reader(warn=lambda f, n, m: None).read([str(path)]))


def at(events: list[Event], line: int) -> Event:
    return next(e for e in events if e.source.line == line)


def hits(rules: list[Rule], event: Event) -> set[str]:
    alert = Engine(rules).match(event)
    return {m.rule_id for m in alert.matches} if alert else set()


def derived_log(tmp_path: Path, replace_from: str, replace_to: str, first: int, last: int) -> list[Event]:
    """Real log lines first..last (1-based), with one value changed: written for these tests."""
    lines = LOG.read_text().splitlines(keepends=True)[first - 1 : last]
    text = "".join(lines)
    assert replace_from in text
    path = tmp_path / "derived.log"
    path.write_text(text.replace(replace_from, replace_to))
    return parse(path)


def test_docker_exec(rules: list[Rule]) -> None:
    log, events = parse(LOG), parse(EVENTS)
    cat = at(log, 381)
    assert "docker-exec" in hits(rules, cat)
    started = next(e for e in events if e.verb == "exec_start")
    assert "docker-exec" in hits(rules, started)
    assert "docker-exec" not in hits(rules, replace(cat, outcome="denied"))
    assert "docker-exec" not in hits(rules, at(log, 357))  # a container create


def test_docker_exec_privileged(rules: list[Rule]) -> None:
    log = parse(LOG)
    priv = at(log, 494)
    alert = Engine(rules).match(priv)
    assert alert is not None and alert.lead.rule_id == "docker-exec-privileged" and alert.severity == "high"
    assert "docker-exec-privileged" not in hits(rules, at(log, 381))


def test_docker_exec_root(rules: list[Rule]) -> None:
    log = parse(LOG)
    assert "docker-exec-root" in hits(rules, at(log, 494))  # User "0"
    assert "docker-exec-root" in hits(rules, replace(at(log, 494), run_as_user="root:root", privileged=False))
    assert "docker-exec-root" not in hits(rules, at(log, 419))  # User "1000"
    assert "docker-exec-root" not in hits(rules, at(log, 381))  # User "": the container's own user
    assert "docker-exec-root" not in hits(rules, replace(at(log, 419), run_as_user="10"))


@pytest.mark.parametrize(
    "bind",
    ["/:/host", "/:/host:ro", "/var/run/docker.sock:/var/run/docker.sock", "/run/containerd/containerd.sock:/c.sock", "/var/run:/r"],
)
def test_docker_create_host_mount(rules: list[Rule], tmp_path: Path, bind: str) -> None:
    (create,) = derived_log(tmp_path, "/tmp/rootfs:/host", bind, 530, 531)
    assert create.binds == [bind]
    alert = Engine(rules).match(create)
    assert alert is not None and alert.lead.rule_id == "docker-create-host-mount" and alert.severity == "high"


def test_docker_create_host_mount_negative(rules: list[Rule], tmp_path: Path) -> None:
    log = parse(LOG)
    assert "docker-create-host-mount" not in hits(rules, at(log, 530))  # /tmp/rootfs:/host is not the host root
    (data_dir,) = derived_log(tmp_path, "/tmp/rootfs:/host", "/srv/data:/data", 530, 531)
    assert "docker-create-host-mount" not in hits(rules, data_dir)


def test_docker_create_privileged(rules: list[Rule]) -> None:
    log = parse(LOG)
    priv = at(log, 530)
    assert "docker-create-privileged" in hits(rules, priv)
    assert "docker-create-privileged" not in hits(rules, at(log, 357))
    # a privileged Kubernetes pod is a different record (kind Pod), left to the Kubernetes rules
    pods = parse(DATA / "falco" / "create_nginx_pod_privileged.json")
    assert pods and all("docker-create-privileged" not in hits(rules, p) for p in pods)


def test_docker_rules_carry_t1609(rules: list[Rule]) -> None:
    docker = [r for r in rules if r.rule_id.startswith("docker-")]
    assert {r.rule_id for r in docker} >= {
        "docker-exec", "docker-exec-privileged", "docker-exec-root", "docker-create-host-mount", "docker-create-privileged",
    }  # fmt: skip
    assert all("attack.t1609" in r.tags for r in docker)
