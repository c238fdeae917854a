"""execguard score: the arithmetic on a small hand-made labels/alerts pair."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from execguard.cli import app
from execguard.sim.score import score

runner = CliRunner()


def _lab(file: str, line: int, mal: bool, scenario: str = "benign", proc: str | None = None, step: str = "s",
         event_id: str | None = None) -> dict:
    return {"file": file, "line": line, "malicious": mal, "scenario": scenario, "procedure": proc, "step": step, "event_id": event_id}


def _alert(file: str, line: int, severity: str, rules: list[str]) -> dict:
    return {"rule_id": rules[0], "severity": severity, "source": {"format": "k8s-audit", "file": file, "line": line},
            "rules": [{"rule_id": r, "severity": severity} for r in rules], "command": ["sh"]}


LABELS = [
    _lab("k8s-audit.jsonl", 1, False),
    _lab("k8s-audit.jsonl", 2, True, "peirates", "S0683", "exec", "a1"),  # two stages of one exec
    _lab("k8s-audit.jsonl", 3, True, "peirates", "S0683", "exec", "a1"),
    _lab("k8s-audit.jsonl", 4, True, "peirates", "S0683", "list secrets", "a2"),  # missed
    _lab("k8s-audit.jsonl", 5, False, step="kubectl exec"),  # false alarm
    _lab("dockerd.log", 7, True, "teamtnt", "G0139", "download miner", "x1"),
    _lab("dockerd.log", 9, True, "teamtnt", "G0139", "download miner", "x1"),
]
ALERTS = [
    _alert("/data/sim/k8s-audit.jsonl", 2, "high", ["k8s-exec-pod-token", "k8s-exec-api"]),
    _alert("/data/sim/k8s-audit.jsonl", 5, "low", ["k8s-exec-api"]),
    _alert("/elsewhere/dockerd.log", 7, "critical", ["cmd-miner"]),
    _alert("/data/sim/k8s-audit.jsonl", 99, "low", ["k8s-exec-api"]),  # no such labelled line
]


def test_precision_recall_per_scenario_procedure_rule() -> None:
    res = score(LABELS, ALERTS)
    assert res.alerts == 4 and res.unjoined == 1
    assert (res.total.alerts, res.total.true_alerts) == (3, 2)
    assert (res.total.events, res.total.caught) == (3, 2)
    assert res.total.precision == 2 / 3 and res.total.recall == 2 / 3
    p = res.by_scenario["peirates"]
    assert (p.events, p.caught, p.alerts, p.true_alerts) == (2, 1, 1, 1)
    assert res.by_procedure["G0139"].recall == 1.0
    assert res.by_scenario["benign"].alerts == 1 and res.by_scenario["benign"].precision == 0.0
    api = res.by_rule["k8s-exec-api"]
    assert (api.alerts, api.true_alerts, api.caught) == (2, 1, 1)
    assert res.by_rule["cmd-miner"].precision == 1.0
    assert [(m["file"], m["line"], m["step"]) for m in res.missed] == [("k8s-audit.jsonl", 4, "list secrets")]
    assert [(f["line"], f["rule_id"]) for f in res.false_alarms] == [(5, "k8s-exec-api")]
    assert res.worst[("teamtnt", "dockerd.log")] == "critical"


def test_min_severity_drops_lower_alerts() -> None:
    res = score(LABELS, ALERTS, "high")
    assert res.alerts == 2 and res.unjoined == 0
    assert res.total.precision == 1.0 and res.total.recall == 2 / 3
    assert res.false_alarms == []


def test_cli_writes_markdown(tmp_path: Path) -> None:
    lab = tmp_path / "labels.jsonl"
    al = tmp_path / "alerts.jsonl"
    lab.write_text("".join(json.dumps(x) + "\n" for x in LABELS))
    al.write_text("".join(json.dumps(x) + "\n" for x in ALERTS))
    md = tmp_path / "card.md"
    res = runner.invoke(app, ["score", "--labels", str(lab), str(al), "--markdown", str(md)])
    assert res.exit_code == 0, res.output
    text = md.read_text()
    assert "**Precision 66.7%** (2/3 alerts on attack records), **recall 66.7%** (2/3 attack events alerted)" in text
    assert "| k8s-audit.jsonl:4 | peirates | list secrets | 1 |" in text
    assert "| peirates | 1 | 1 | 100.0% | 2 | 1 | 50.0% |" in text
    bad = runner.invoke(app, ["score", "--labels", str(lab), str(al), "--min-severity", "loud"])
    assert bad.exit_code == 2


def test_a_subset_of_files_scores_only_those(tmp_path: Path) -> None:
    k8s_only = [a for a in ALERTS if "k8s-audit" in a["source"]["file"]]
    res = score(LABELS, k8s_only)
    assert res.scored == ["k8s-audit.jsonl (k8s-audit)"] and res.left_out == ["dockerd.log"]
    assert res.labels == 5 and (res.total.events, res.total.caught) == (2, 1)  # dockerd.log's attack is not counted missed
    full = score(LABELS, k8s_only, all_files=True)
    assert full.left_out == [] and (full.total.events, full.total.caught) == (3, 1)
    assert ("dockerd.log", 7, "download miner") in [(m["file"], m["line"], m["step"]) for m in full.missed]

    lab, al = tmp_path / "labels.jsonl", tmp_path / "alerts.jsonl"
    lab.write_text("".join(json.dumps(x) + "\n" for x in LABELS))
    al.write_text("".join(json.dumps(x) + "\n" for x in k8s_only))
    out = runner.invoke(app, ["score", "--labels", str(lab), str(al)]).output
    assert "Scored against: k8s-audit.jsonl (k8s-audit)." in out
    assert "Left out, no alert came from them (not hunted? `--all-files` scores them): dockerd.log." in out
    assert "(1/2 attack events alerted)" in out
    assert "(1/3 attack events alerted)" in runner.invoke(app, ["score", "--labels", str(lab), str(al), "--all-files"]).output


# emulate's labels: one per Docker API action, no file or line
CID, CID2 = "a" * 64, "b" * 64
EMU = [
    {"time": "2026-03-01T10:00:01.000000Z", "container": CID, "container_name": "web-1f2e3d", "exec_id": "e1" * 32,
     "step": "download miner", "scenario": "teamtnt", "procedure": "G0139", "malicious": True},
    {"time": "2026-03-01T10:00:02.000000Z", "container": CID, "container_name": "web-1f2e3d", "exec_id": "e2" * 32,
     "step": "wipe history", "scenario": "teamtnt", "procedure": "G0139", "malicious": True},
    {"time": "2026-03-01T10:00:03.000000Z", "container": CID2, "container_name": "ubuntu-1f2e3d", "exec_id": None,
     "step": "create container with downloader entrypoint", "scenario": "kinsing", "procedure": "S0599", "malicious": True},
]


def _docker_alert(fmt: str, time: str, severity: str, rule: str, *, event_id: str | None = None, container: str | None = None,
                  container_id: str | None = None, action: str = "exec") -> dict:
    return {"rule_id": rule, "severity": severity, "time": time, "action": action, "event_id": event_id,
            "source": {"format": fmt, "file": f"/var/log/{fmt}", "line": 1},
            "target": {"container": container, "container_id": container_id},
            "rules": [{"rule_id": rule, "severity": severity}], "command": ["sh"]}


def test_emulate_labels_join_by_exec_id_container_and_time() -> None:
    alerts = [
        _docker_alert("dockerd-log", "2026-03-01T10:00:01.2Z", "critical", "cmd-miner", event_id="e1" * 32, container=CID),
        _docker_alert("dockerd-log", "2026-03-01T10:00:03.1Z", "critical", "cmd-download-pipe-shell", container="ubuntu-1f2e3d",
                      action="create"),  # the create call knows the name, not yet the ID
        _docker_alert("docker-events", "2026-03-01T10:00:02.5Z", "high", "cmd-log-wipe", container_id=CID),  # no exec ID: by time
        _docker_alert("docker-events", "2026-03-01T10:00:01.1Z", "low", "docker-exec", event_id="e9" * 32, container_id=CID),
        _docker_alert("docker-events", "2026-03-01T10:09:00Z", "low", "docker-exec", container_id=CID),  # minutes later
        _docker_alert("dockerd-log", "2026-03-01T10:00:01Z", "low", "docker-exec", event_id="e3" * 32, container="other"),
    ]
    res = score(EMU, alerts)
    assert res.alerts == 6 and res.unjoined == 3  # another exec ID, far in time, another container
    assert (res.total.events, res.total.caught, res.total.precision) == (3, 3, 1.0)
    assert res.by_scenario["kinsing"].recall == 1.0
    assert (res.by_format["dockerd-log"].events, res.by_format["dockerd-log"].caught) == (3, 2)
    assert (res.by_format["docker-events"].events, res.by_format["docker-events"].caught) == (3, 1)
    assert res.scored == ["3 emulate labels against /var/log/docker-events (docker-events)",
                          "3 emulate labels against /var/log/dockerd-log (dockerd-log)"]
    high = score(EMU, alerts, "high")
    assert (high.total.caught, high.missed) == (3, [])
    only_miner = score(EMU, alerts[:1])
    assert [m["where"] for m in only_miner.missed] == [f"exec {'e2' * 6} in web-1f2e3d", "container ubuntu-1f2e3d"]


def test_labels_without_a_join_key_are_refused(tmp_path: Path) -> None:
    lab, al = tmp_path / "labels.jsonl", tmp_path / "alerts.jsonl"
    lab.write_text(json.dumps({"step": "x", "malicious": True}) + "\n")
    al.write_text("")
    res = runner.invoke(app, ["score", "--labels", str(lab), str(al)])
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {lab}: label 1: neither file and line (simulate) nor exec_id or container (emulate)"
