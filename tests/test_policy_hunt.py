"""hunt --policy end to end: suppression, --show-suppressed, the summary by entry, correlation, -j workers, bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.pipeline import parallel, units
from execguard.pipeline.prefilter import literals_for
from execguard.policy import PolicyFilter, parse_policy
from execguard.sim.simulate import write as simulate
from execguard.sinks.alert_json import alert_dict
from execguard.sources.reader import Reader

DATA = Path(__file__).parent / "data"
INPUTS = [str(DATA / "docker" / "docker-events.jsonl"), str(DATA / "falco" / "exec_pod.json"), str(DATA / "gke" / "entries.jsonl")]
HEAD = "apiVersion: execguard/v1\nkind: Policy\nentries:\n"
POLICY = HEAD + """\
  - name: lab-docker-exec
    action: suppress
    reason: docker exec into the lab's web container is routine
    match: {rules: [docker-exec], containers: [web]}
  - name: minikube
    action: allow
    reason: the developer's own minikube
    match: {users: [minikube-user], sourceIPs: [192.168.99.0/24]}
  - name: shop-debug
    action: severity
    severity: info
    reason: the shop team debugs its own pods
    match: {rules: [k8s-exec-api, k8s-ephemeral-container], namespaces: [shop], sourceIPs: [34.140.0.0/16]}
  - name: no-longer
    action: suppress
    reason: retired
    expires: 2020-01-31
    match: {namespaces: ["*"]}
"""


def hunt(tmp_path: Path, policy: str | None, *args: str, inputs: list[str] = INPUTS) -> tuple[int, list[dict[str, Any]], str]:
    extra: list[str] = []
    if policy is not None:
        (tmp_path / "policy.yml").write_text(policy)
        extra = ["--policy", str(tmp_path / "policy.yml")]
    result = CliRunner().invoke(app, ["hunt", *inputs, "-o", "jsonl", "-j", "1", *extra, *args])
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, alerts, result.stderr


def test_policy_suppresses_and_reports_by_entry(tmp_path: Path) -> None:
    _, plain, _ = hunt(tmp_path, None)
    code, alerts, err = hunt(tmp_path, POLICY)
    assert code == 0
    plain_ids = [(a["source"]["line"], a["rule_id"]) for a in plain]
    ids = [(a["source"]["line"], a["rule_id"]) for a in alerts]
    # four plain docker execs into web and the developer's exec are gone; the rest stay in order
    assert len(plain) - len(alerts) == 5
    assert [i for i in plain_ids if i in ids] == ids
    assert not any(a["rule_id"] == "docker-exec" for a in alerts)
    assert not any(a["actor"]["user"] == "minikube-user" for a in alerts)
    # a miner run through docker exec still fires, without the suppressed docker-exec hit
    miners = [a for a in alerts if a["rule_id"] == "cmd-miner"]
    assert miners and all("docker-exec" not in [r["rule_id"] for r in a["rules"]] for a in miners)
    # the shop team's execs are re-rated to info, the reason says by which entry
    shop = [a for a in alerts if a["target"]["namespace"] == "shop" and a["rule_id"] in ("k8s-exec-api", "k8s-ephemeral-container")]
    assert len(shop) == 4 and {a["severity"] for a in shop} == {"info"}
    assert "[policy shop-debug: low -> info]" in shop[0]["reasons"][0]
    assert "policy.yml:17: entry no-longer expired 2020-01-31; it no longer applies" in err.replace("\n", "")
    summary = " ".join(err.split())
    assert "5 alerts suppressed (4 by lab-docker-exec, 1 by minikube)" in summary
    assert "; 4 rule hits hidden from alerts still reported; 4 alerts re-rated" in summary


def test_show_suppressed_marks_without_counting(tmp_path: Path) -> None:
    _, plain, _ = hunt(tmp_path, None)
    code, alerts, err = hunt(tmp_path, POLICY, "--show-suppressed", "--fail-on", "medium", "--min-severity", "low")
    marked = [a for a in alerts if "suppressed" in a]
    # alerts come out in time order across the files, so compare as a multiset
    assert sorted(a["suppressed"] for a in marked) == sorted(
        ["lab-docker-exec: docker exec into the lab's web container is routine"] * 4 + ["minikube: the developer's own minikube"]
    )
    assert len(alerts) == len(plain) - 4  # the shop team's four, re-rated to info, fell under the floor
    assert code == 1  # the criticals; not the suppressed alerts
    assert "alerts: 5 critical, 1 high, 1 low" in " ".join(err.split())  # the five shown as suppressed are not counted
    code, _, _ = hunt(tmp_path, HEAD + "  - {name: all, action: suppress, reason: drill, match: {rules: ['*']}}\n",
                      "--show-suppressed", "--fail-on", "info")  # fmt: skip
    assert code == 0  # everything shown is suppressed: nothing to fail on


def test_table_and_ocsf_show_the_mark(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text(POLICY)
    base = ["hunt", INPUTS[1], "--policy", str(tmp_path / "policy.yml"), "--show-suppressed", "-j", "1"]
    table = CliRunner().invoke(app, base)
    assert "SUPPRESSED by policy minikube: the developer's own minikube" in " ".join(table.stdout.split())
    ocsf = [json.loads(line) for line in CliRunner().invoke(app, [*base, "-o", "ocsf"]).stdout.splitlines()]
    assert [(o["status_id"], o["status_detail"]) for o in ocsf] == [(3, "minikube: the developer's own minikube")]


@pytest.mark.parametrize("floor", ["info", "medium", "critical"])
def test_empty_policy_changes_nothing(tmp_path: Path, floor: str) -> None:
    _, plain, _ = hunt(tmp_path, None, "--min-severity", floor)
    _, alerts, err = hunt(tmp_path, HEAD + "  []\n", "--min-severity", floor)
    assert alerts == plain and plain
    assert "0 alerts suppressed" in err


def test_raised_severity_clears_the_floor(tmp_path: Path) -> None:
    raise_ = HEAD + "  - {action: severity, severity: high, reason: prod, match: {rules: [k8s-exec-denied], namespaces: [kube-system]}}\n"
    _, plain, _ = hunt(tmp_path, None, "--min-severity", "high")
    _, alerts, _ = hunt(tmp_path, raise_, "--min-severity", "high")
    added = [a for a in alerts if a not in plain]
    assert [(a["rule_id"], a["severity"], a["target"]["namespace"]) for a in added] == [("k8s-exec-denied", "high", "kube-system")]


def denied(i: int) -> dict[str, Any]:
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"deny-{i}",
        "stage": "ResponseComplete", "verb": "create",
        "requestURI": f"/api/v1/namespaces/prod/pods/web-{i}/exec?command=id&container=app",
        "user": {"username": "system:serviceaccount:ops:prober", "groups": ["system:serviceaccounts"]}, "sourceIPs": ["10.0.0.9"],
        "objectRef": {"resource": "pods", "namespace": "prod", "name": f"web-{i}", "subresource": "exec"},
        "responseStatus": {"code": 403}, "stageTimestamp": f"2026-11-29T10:00:{i:02d}.000000Z",
    }  # fmt: skip


def test_correlation_counts_suppressed_events(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text("".join(json.dumps(denied(i)) + "\n" for i in range(6)))
    scope = "{rules: [k8s-exec-denied], serviceAccounts: [ops/*]}"
    quiet_denials = HEAD + f"  - {{name: prober, action: suppress, reason: probe, match: {scope}}}\n"
    _, alerts, err = hunt(tmp_path, quiet_denials, inputs=[str(log)])
    # each denial is hidden, but five of them within ten minutes are still a burst
    assert [a["rule_id"] for a in alerts] == ["k8s-exec-denied-burst"]
    assert "6 alerts suppressed (6 by prober)" in " ".join(err.split())
    _, alerts, _ = hunt(tmp_path, quiet_denials.replace("k8s-exec-denied]", "'k8s-exec-denied*']"), inputs=[str(log)])
    assert alerts == []


def test_bad_policy_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = HEAD + "  - name: x\n    action: suppress\n    match:\n      sourceIP: [10.0.0.0/8]\n"
    code, alerts, err = hunt(tmp_path, bad)
    assert code == 2 and alerts == []
    lines = err.strip().splitlines()
    assert lines == [
        f"error: {tmp_path / 'policy.yml'}:4: entry 1 (x): missing reason: say why this entry exists (it is shown with what it hides)",
        f"error: {tmp_path / 'policy.yml'}:7: unknown key 'sourceIP' in entry 1 match; did you mean 'sourceIPs'?",
    ]
    assert "Traceback" not in err
    code, _, err = hunt(tmp_path, None, "--policy", str(tmp_path / "nope.yml"))
    assert code == 2 and "nope.yml: cannot read" in err


def test_unknown_rule_glob_warns(tmp_path: Path) -> None:
    _, _, err = hunt(tmp_path, HEAD + "  - {action: suppress, reason: r, match: {rules: [k8s-exec-apii]}}\n")
    assert "policy.yml:4: entry #1: rules 'k8s-exec-apii' matches none of the loaded rules" in " ".join(err.split())


def test_markup_in_the_file_is_printed_as_written(tmp_path: Path) -> None:
    odd = HEAD + '  - {name: "[/x]", action: suppress, reason: r, expires: 2020-01-01, match: {rules: "[/y]"}}\n'
    code, _, err = hunt(tmp_path, odd)
    assert code == 0 and "Traceback" not in err
    flat = " ".join(err.split())
    assert "entry [/x] expired 2020-01-01" in flat and "rules '[/y]' matches none" in flat
    shown = odd.replace("expires: 2020-01-01", "match: {pods: ['*']}}\n  - {name: '[/w]', action: suppress, reason: r")
    code, _, err = hunt(tmp_path, shown, inputs=INPUTS[1:2])
    assert code == 0 and "1 alerts suppressed (1 by [/x])" in " ".join(err.split())  # first match wins
    code, _, err = hunt(tmp_path, odd.replace("rules:", "pods:").replace("[/y]", "web-[/z"))
    assert code == 2 and "glob 'web-[/z' has an unclosed '['" in err


def test_workers_give_the_serial_result(tmp_path: Path) -> None:
    simulate(tmp_path / "sim", fmt="k8s-audit", events=1500, seed=5)
    paths = [str(tmp_path / "sim")]
    policy = parse_policy(
        HEAD
        + "  - {name: ns, action: suppress, reason: r, match: {namespaces: ['kube-*', 'default']}}\n"
        + "  - {name: shells, action: severity, severity: critical, reason: r, match: {rules: [k8s-exec-interactive-shell]}}\n"
        + "  - {name: ips, action: allow, reason: r, match: {sourceIPs: [10.244.0.0/16]}}\n",
        "p.yml",
    )

    def run(workers: bool) -> tuple[list[dict[str, Any]], PolicyFilter]:
        engine = Engine(load_rules([], builtin=True))
        reader = Reader(literals=literals_for(engine.actions()))
        gate = PolicyFilter(policy, min_severity="low", show_suppressed=True)
        if workers:
            planned = units.plan(reader, paths, unit=24 << 10)
            assert planned is not None and len(planned) > 4
            alerts = parallel.ParallelHunt(reader, engine, planned, jobs=2).alerts()
        else:
            alerts = engine.run(reader.read(paths))
        return [alert_dict(a) for a in gate.filter(alerts)], gate

    serial, serial_gate = run(False)
    split, split_gate = run(True)
    assert split == serial
    assert serial_gate.suppressed == split_gate.suppressed and sum(serial_gate.suppressed.values()) > 0
    assert serial_gate.rerated == split_gate.rerated > 0
