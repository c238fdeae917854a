"""Alerts rendered ahead (Pipeline.ahead): while workers read, the parent renders each alert held for the sort,
instead of rendering them all after the last worker. Same bytes out; Docker execs the dedupe may still change
are rendered at the write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.model import Alert, Event, RuleMatch, SourceRef
from execguard.pipeline import parallel
from execguard.pipeline.dedupe import merge, mergeable
from execguard.pipeline.stages import Pipeline
from execguard.sim.simulate import write as simulate
from execguard.sinks.jsonl import JsonlSink

DOCKER = Path(__file__).parent / "data" / "docker"
EVENTS = str(DOCKER / "docker-events.jsonl")
LOG = str(DOCKER / "dockerd-debug.log")


def _alert(fmt: str, action: str, line: int) -> Alert:
    ev = Event("2026-01-01T00:00:01Z", SourceRef(fmt, "f", line), action=action, command=["id"], event_id=f"e{line}")
    return Alert(ev, [RuleMatch("r", "R", "low", [], "why")])


def test_docker_execs_are_left_to_the_write_and_a_merge_drops_a_rendering() -> None:
    out: list[Alert] = []
    pipe = Pipeline(sort="time")
    pipe.ahead = JsonlSink.render
    k8s, docker = _alert("k8s-audit", "exec", 1), _alert("dockerd-log", "exec", 2)
    pipe.run([k8s, docker], out.append)
    assert k8s.rendered == JsonlSink.render(k8s) and mergeable(docker) and docker.rendered is None
    a, b = _alert("docker-events", "exec", 3), _alert("dockerd-log", "exec", 4)
    b.event.event_id = a.event.event_id
    b.rendered = b"stale\n"
    assert merge(a, b).rendered is None
    assert Alert(k8s.event, k8s.matches) == k8s  # a cache: never part of what an alert is


def test_parallel_hunt_renders_ahead_and_writes_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = tmp_path / "sim"
    simulate(str(sim), seed=3)
    inputs = [str(p) for p in sorted(sim.rglob("*")) if p.is_file() and "labels" not in p.name] + [EVENTS, LOG]
    serial = CliRunner().invoke(app, ["hunt", "-q", "-o", "jsonl", "-j", "1", *inputs], catch_exceptions=False)
    assert serial.exit_code == 0, serial.stderr

    seen: dict[str, int] = {"ahead": 0, "at_write": 0, "docker_ahead": 0}
    write = JsonlSink.write

    def spy(self: JsonlSink, alert: Alert) -> None:
        seen["ahead" if alert.rendered is not None else "at_write"] += 1
        seen["docker_ahead"] += alert.rendered is not None and mergeable(alert)
        write(self, alert)

    monkeypatch.setattr(JsonlSink, "write", spy)
    monkeypatch.setattr(parallel, "UNIT", 16 << 10)
    monkeypatch.setattr(parallel, "MIN_UNIT", 16 << 10)
    monkeypatch.setattr(parallel, "MIN_TOTAL", 0)
    par = CliRunner().invoke(app, ["hunt", "-q", "-o", "jsonl", "-j", "2", *inputs], catch_exceptions=False)
    assert par.exit_code == 0, par.stderr
    assert par.stdout == serial.stdout
    alerts = [json.loads(x) for x in par.stdout.splitlines()]
    assert any(len(a["sources"]) == 2 for a in alerts)  # Docker execs merged after the sort, as serially
    assert seen["ahead"] > 100 and seen["at_write"] > 0 and seen["docker_ahead"] == 0
