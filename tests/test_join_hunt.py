"""The join end to end: simulate's audit log and Tetragon export hunted together (files merged by time, -j, OCSF, store)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from execguard.cli import app
from execguard.sim import simulate
from execguard.sinks.alert_json import alert_dict
from execguard.sinks.restore import restore

runner = CliRunner()
SCHEMA = json.loads((Path(__file__).parent / "data" / "ocsf" / "detection_finding-1.1.0.schema.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate.write(out, "all", None, 400, 1)
    return out


def hunt(*args: str) -> tuple[list[dict[str, Any]], str]:
    res = runner.invoke(app, ["hunt", "-o", "jsonl", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")], res.stderr


def labels(sim: Path) -> dict[tuple[str, int], dict[str, Any]]:
    out = {}
    for line in (sim / "labels.jsonl").read_text().splitlines():
        lab = json.loads(line)
        out[(lab["file"], lab["line"])] = lab
    return out


def test_audit_and_tetragon_give_incidents_and_a_bypass(sim: Path) -> None:
    alerts, err = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "tetragon.jsonl"), "-j", "1")
    labs = labels(sim)
    incidents = [a for a in alerts if any(r["rule_id"] == "join-exec-incident" for r in a["rules"])]
    assert incidents
    for a in incidents:
        assert a["source"]["format"] == "k8s-audit" and a["covers"]
        for c in a["covers"]:
            assert c["source"]["format"] == "tetragon"
            assert c["actor"]["user"] == a["actor"]["user"] and c["actor"]["source_ip"] == a["actor"]["source_ip"]
            assert c["actor"]["user_agent"] == a["actor"]["user_agent"]
            assert c["target"]["pod"] == a["target"]["pod"]
    # Hildegard's exec of a miner through nodes/proxy: the processes carry system:anonymous
    miner = [a for a in incidents if a["actor"]["user"] == "system:anonymous"]
    assert miner and max(a["severity"] for a in miner) == "critical"
    bypass = [a for a in alerts if any(r["rule_id"] == "join-exec-bypass" for r in a["rules"])]
    assert len(bypass) == 1
    b = bypass[0]
    assert b["source"]["format"] == "tetragon" and b["actor"]["user"] is None
    lab = labs[("tetragon.jsonl", b["source"]["line"])]
    assert lab["malicious"] and lab["step"] == "kubelet :10250 run (no audit record)"
    assert "exec bypassed the API server (kubelet :10250, CRI or runtime on the node)" in " ".join(b["reasons"])
    assert b["severity"] in ("high", "critical")
    # no probe and no init-tree process is an alert of its own
    for a in alerts:
        if a["source"]["format"] == "tetragon":
            assert labs[("tetragon.jsonl", a["source"]["line"])]["step"] not in ("exec probe", "container's own process")
    assert "1 exec(s) bypassed the API server" in err and "shed" in err


def test_order_of_files_and_workers_do_not_change_the_join(sim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "tetragon.jsonl"), "-j", "1")
    b, _ = hunt(str(sim / "tetragon.jsonl"), str(sim / "k8s-audit.jsonl"), "-j", "1")
    assert sorted(map(json.dumps, a)) == sorted(map(json.dumps, b))
    # workers: files cut in many ranges, decisions replayed in the parent, then joined: the same alerts
    from execguard.pipeline import units

    monkeypatch.setattr(units, "UNIT", 64 << 10)
    monkeypatch.setattr(units, "MIN_UNIT", 64 << 10)
    monkeypatch.setattr(units, "MIN_TOTAL", 0)
    c, _ = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "tetragon.jsonl"), "-j", "2")
    assert a == c


def test_without_node_telemetry_the_output_is_unchanged(sim: Path) -> None:
    a, _ = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "docker-events.jsonl"), "-j", "1")
    b, _ = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "docker-events.jsonl"), "-j", "1", "--no-join")
    assert a == b


def test_tetragon_alone_flags_no_bypass(sim: Path) -> None:
    alerts, err = hunt(str(sim / "tetragon.jsonl"), "-j", "1")
    assert alerts and not any(r["rule_id"] == "join-exec-bypass" for a in alerts for r in a["rules"])
    assert "0 exec(s) bypassed" in err and "with no API-server source on at the time" in err


def test_joined_alerts_round_trip_and_are_valid_ocsf(sim: Path, tmp_path: Path) -> None:
    alerts, _ = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "docker-events.jsonl"), str(sim / "tetragon.jsonl"), "-j", "1")
    joined = [a for a in alerts if a.get("covers")]
    assert joined
    for d in joined[:50]:
        assert alert_dict(restore(d)) == d
    res = runner.invoke(app, ["hunt", "-q", "-o", "ocsf", "-j", "1", str(sim / "k8s-audit.jsonl"), str(sim / "tetragon.jsonl")],
                        catch_exceptions=False)
    findings = [json.loads(line) for line in res.stdout.splitlines()]
    validator = Draft202012Validator(SCHEMA)
    with_covers = [f for f in findings if len(f["evidences"]) > 1]
    assert with_covers
    for f in with_covers[:50]:
        assert not list(validator.iter_errors(f))


def test_window_and_skew_options(sim: Path) -> None:
    _, err = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "tetragon.jsonl"), "-j", "1", "--join-skew", "0", "--join-window", "0")
    # node clocks are up to 1.2 s off in the simulation: with no tolerance some execs lose their record
    line = next(x for x in err.splitlines() if x.startswith("join:"))
    assert int(line.split(" exec(s) bypassed")[0].rsplit(" ", 1)[-1]) > 1


def test_policy_probe_entry_is_accepted(sim: Path, tmp_path: Path) -> None:
    pol = tmp_path / "p.yml"
    pol.write_text("apiVersion: execguard/v1\nkind: Policy\nentries:\n  - name: sidecar\n    action: probe\n"
                   "    reason: the config reloader is driven from the node\n    match:\n      containers: [config-reloader]\n")
    alerts, err = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "tetragon.jsonl"), "-j", "1", "--policy", str(pol))
    assert not any(r["rule_id"] == "join-exec-bypass" for a in alerts for r in a["rules"])
    assert "1 by policy" in err


def test_workers_with_no_node_telemetry_let_the_join_hold_nothing(sim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once every range is read and none held node telemetry, the join passes held alerts on: the same output."""
    from execguard.pipeline import parallel, units

    serial, _ = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "docker-events.jsonl"), "-j", "1")
    monkeypatch.setattr(units, "UNIT", 16 << 10)
    monkeypatch.setattr(units, "MIN_UNIT", 16 << 10)
    monkeypatch.setattr(units, "MIN_TOTAL", 0)
    released: list[int] = []
    replay = parallel.ParallelHunt._results

    def spied(self: parallel.ParallelHunt):  # type: ignore[no-untyped-def]
        units = replay(self)
        first = next(units)
        while self._live:  # every worker done and gone before the first range is replayed: all is known then
            self._receive(block=True)
        for n, item in enumerate(itertools.chain([first], units)):
            if self.node_free and not released:
                released.append(n)
            yield item

    monkeypatch.setattr(parallel.ParallelHunt, "_results", spied)
    par, _ = hunt(str(sim / "k8s-audit.jsonl"), str(sim / "docker-events.jsonl"), "-j", "2")
    assert par == serial and len(serial) > 20
    assert released == [1]  # after the first range, the join held nothing more
