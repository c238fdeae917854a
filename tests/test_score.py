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
