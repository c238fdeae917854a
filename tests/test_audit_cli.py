"""`execguard audit` end to end: outputs (table, json, sarif), --out, --fail-on and exit codes, kubeconfig construction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.audit.engine import CatalogueError, Item, catalogue, evaluate, parse_catalogue
from execguard.audit.gather import live
from execguard.cli import app
from execguard.testing.dockerd import free_port

DATA = Path(__file__).parent / "data" / "audit"
runner = CliRunner()


def test_json_output_fields() -> None:
    r = runner.invoke(app, ["audit", "--from", str(DATA / "kubelet/flags"), "--output", "json"])
    assert r.exit_code == 0, r.output
    findings = json.loads(r.stdout)
    assert {f["id"] for f in findings} == {"EG-KUBELET-001", "EG-KUBELET-002", "EG-KUBELET-003", "EG-KUBELET-004"}
    for f in findings:
        assert {"id", "title", "severity", "mitigation", "target", "evidence", "remediation"} <= set(f)
        assert f["mitigation"] == "M1035" and f["file"].endswith("kubelet.cmdline") and f["line"] == 1


def test_sarif_output(tmp_path: Path) -> None:
    out = tmp_path / "r.sarif"
    r = runner.invoke(app, ["audit", "--from", str(DATA / "workloads"), "-o", "sarif", "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [x["id"] for x in rules] == [c.id for c in catalogue()]
    res = next(x for x in run["results"] if x["ruleId"] == "EG-WL-002")
    assert res["level"] == "error" and rules[res["ruleIndex"]]["id"] == "EG-WL-002"
    phys = res["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"]["uri"] == "workloads.yaml" and phys["region"]["startLine"] == 50
    assert res["locations"][0]["logicalLocations"][0]["name"] == "Pod kube-system/nsenter"
    assert {x["level"] for x in run["results"]} == {"error", "note"}  # high → error, info → note


def test_sarif_root_makes_uris_repository_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another CI's checkout: --sarif-root names the repository root code scanning resolves URIs against."""
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    repo = Path(__file__).parents[1]
    out = tmp_path / "r.sarif"
    args = ["audit", "--from", str(DATA / "workloads"), "-o", "sarif", "--out", str(out), "--sarif-root", str(repo)]
    assert runner.invoke(app, args).exit_code == 0
    res = next(x for x in json.loads(out.read_text())["runs"][0]["results"] if x["ruleId"] == "EG-WL-002")
    loc = res["locations"][0]["physicalLocation"]["artifactLocation"]
    assert loc == {"uri": "tests/data/audit/workloads/workloads.yaml", "uriBaseId": "%SRCROOT%"}


def test_table_has_matrix_and_mitigation_groups() -> None:
    r = runner.invoke(app, ["audit", "--from", str(DATA / "rbac")], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "subject × capability" in r.stdout and "User frank" in r.stdout
    assert "M1018 User Account Management" in r.stdout and "M1026 Privileged Account Management" in r.stdout


def test_fail_on() -> None:
    args = ["audit", "--from", str(DATA / "docker/open-json"), "-o", "json"]
    assert runner.invoke(app, [*args, "--fail-on", "critical"]).exit_code == 1
    assert runner.invoke(app, ["audit", "--from", str(DATA / "docker/secure"), "--fail-on", "info"]).exit_code == 0
    assert runner.invoke(app, [*args, "--fail-on", "bogus"]).exit_code == 2


def test_usage_and_unreadable() -> None:
    assert runner.invoke(app, ["audit"]).exit_code == 2
    assert runner.invoke(app, ["audit", "--from", str(DATA / "nope")]).exit_code == 2


def test_kubeconfig_client_is_built_and_unreachable_server_is_exit_2(tmp_path: Path) -> None:
    port = free_port()
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\n"
        "users:\n- name: u\n  user:\n    token: not-a-real-token\n"
        "contexts:\n- name: t\n  context: {cluster: t, user: u}\n"
    )
    client = live.kube_client(str(kc))
    assert client.configuration.host == f"https://127.0.0.1:{port}"
    r = runner.invoke(app, ["audit", "--kubeconfig", str(kc)])
    assert r.exit_code == 2
    with pytest.raises(live.LiveError):
        live.kube_client(str(tmp_path / "missing"))


def test_engine_operators_and_catalogue_validation() -> None:
    checks = parse_catalogue(
        [
            {
                "id": "T-1",
                "title": "t",
                "kind": "k",
                "mitigation": "M1018",
                "severity": "low",
                "evidence": "{x} {missing}",
                "remediation": "r",
                "when": {"x": {"in": [1, 2]}, "y": {"set": True}, "z": {"gte": 3}, "l": {"contains": "a"}},
            },
        ]
    )
    hit = evaluate([Item("k", "t", {"x": 1, "y": [1], "z": 3, "l": ["a"]})], checks)
    assert len(hit) == 1 and hit[0].evidence == "1 ?"
    assert not evaluate([Item("k", "t", {"x": 1, "y": [], "z": 3, "l": ["a"]})], checks)
    with pytest.raises(CatalogueError):
        parse_catalogue([{"id": "x"}])
