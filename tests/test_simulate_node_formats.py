"""simulate's node view as Falco, KubeArmor and auditd (sim/node_formats.py): byte-stable beside the other files,
parsed cleanly, labelled per process, and what the join does with each next to the audit log; and the DaemonSet
in docs/node.md validated against the Kubernetes schemas."""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from execguard.cli import app
from execguard.model import severity_rank
from execguard.sim import simulate
from execguard.sim.writers import FILE_NAMES, MORE_FILE_NAMES
from execguard.sources.reader import Reader

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
BYPASS_STEP = "kubelet :10250 run (no audit record)"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate.write(out, "all", None, 400, 1, node_formats=True)
    return out


def labels(d: Path) -> dict[tuple[str, int], dict[str, Any]]:
    out = {}
    for line in (d / "labels.jsonl").read_text().splitlines():
        lab = json.loads(line)
        out[(lab["file"], lab["line"])] = lab
    return out


def hunt(*args: Path | str) -> tuple[list[dict[str, Any]], str]:
    res = runner.invoke(app, ["hunt", "-o", "jsonl", "-j", "1", *map(str, args)], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")], res.stderr


def rule_ids(alert: dict[str, Any]) -> set[str]:
    return {r["rule_id"] for r in alert["rules"]}


def test_other_files_and_labels_stay_byte_identical_and_output_is_deterministic(sim: Path, tmp_path: Path) -> None:
    plain, again = tmp_path / "plain", tmp_path / "again"
    simulate.write(plain, "all", None, 400, 1)
    simulate.write(again, "all", None, 400, 1, node_formats=True)
    assert sorted(p.name for p in plain.iterdir()) == sorted([*FILE_NAMES.values(), "labels.jsonl"])
    for name in FILE_NAMES.values():
        assert filecmp.cmp(plain / name, sim / name, shallow=False), name
    old = (plain / "labels.jsonl").read_bytes()
    assert (sim / "labels.jsonl").read_bytes().startswith(old)  # the new files' labels come after
    for name in [*FILE_NAMES.values(), *MORE_FILE_NAMES.values(), "labels.jsonl"]:
        assert filecmp.cmp(sim / name, again / name, shallow=False), name


def test_new_files_parse_cleanly_one_label_per_process(sim: Path) -> None:
    labs = labels(sim)
    tetragon = sorted((k[1], v["step"], v["malicious"]) for k, v in labs.items() if k[0] == "tetragon.jsonl")
    for fmt, name in MORE_FILE_NAMES.items():
        reader = Reader()
        events = list(reader.read([str(sim / name)]))
        assert reader.stats.bad == 0 and reader.stats.unknown == 0
        assert set(reader.stats.by_format) == {fmt}
        mine = {k[1]: v for k, v in labs.items() if k[0] == name}
        # the same processes as tetragon.jsonl, in the same order: every event starts at a labelled line
        assert [(v["step"], v["malicious"]) for _, v in sorted(mine.items())] == [(s, m) for _, s, m in tetragon]
        assert sorted(ev.source.line for ev in events) == sorted(mine)
        for ev in events:
            assert ev.action == "process" and ev.command and ev.process is not None
        direct = [ev for ev in events if mine[ev.source.line]["step"] == BYPASS_STEP]
        assert direct and any("stratum+tcp://" in " ".join(ev.command) for ev in direct)
        if fmt == "auditd":  # a stock kernel names no container: the node is all the records tell
            assert all(ev.target.container_id is None and ev.target.pod is None and ev.target.node for ev in events)
            assert all("container unknown" in (ev.process.known or "") for ev in events if ev.process)
        else:
            assert all(ev.target.container_id and ev.target.node for ev in events)
            assert {ev.target.pod for ev in direct} == {"prometheus-k8s-0"}


@pytest.mark.parametrize("fmt", ["falco", "kubearmor"])
def test_join_finds_the_kubelet_bypass_and_attaches_identities(sim: Path, fmt: str) -> None:
    name = MORE_FILE_NAMES[fmt]
    alerts, err = hunt(sim / "k8s-audit.jsonl", sim / name)
    labs = labels(sim)
    incidents = [a for a in alerts if "join-exec-incident" in rule_ids(a)]
    assert incidents
    for a in incidents:
        assert a["source"]["format"] == "k8s-audit" and a["covers"]
        for c in a["covers"]:
            assert c["source"]["format"] == fmt
            assert (c["actor"]["user"], c["actor"]["source_ip"]) == (a["actor"]["user"], a["actor"]["source_ip"])
            assert c["target"]["pod"] == a["target"]["pod"]
    miner = [a for a in incidents if a["actor"]["user"] == "system:anonymous"]
    assert miner and max((a["severity"] for a in miner), key=severity_rank) == "critical"
    bypass = [a for a in alerts if "join-exec-bypass" in rule_ids(a)]
    steps = [labs[(name, a["source"]["line"])]["step"] for a in bypass]
    # Hildegard's run on the kubelet's port, found as with Tetragon; with no probe flag in these formats an exec
    # probe is told only by repetition (joinkeys REPEAT), so each probe's first runs are bypass alerts too
    assert steps.count(BYPASS_STEP) == 1
    assert set(steps) == {BYPASS_STEP, "exec probe"}
    b = next(a for a, s in zip(bypass, steps, strict=True) if s == BYPASS_STEP)
    assert b["actor"]["user"] is None and b["target"]["pod"] == "prometheus-k8s-0" and b["severity"] in ("high", "critical")
    assert f"{len(bypass)} exec(s) bypassed the API server" in err and "by repetition" in err
    # the containers' own processes are never an exec of their own
    for a in alerts:
        if a["source"]["format"] == fmt:
            assert labs[(name, a["source"]["line"])]["step"] != "container's own process"


@pytest.mark.parametrize("fmt", ["falco", "kubearmor"])
def test_policy_probe_entry_names_the_probes_these_formats_cannot_flag(sim: Path, tmp_path: Path, fmt: str) -> None:
    pol = tmp_path / "p.yml"
    pol.write_text("apiVersion: execguard/v1\nkind: Policy\nentries:\n  - name: probes\n    action: probe\n"
                   "    reason: the pod specs' exec probes\n    match:\n"
                   "      commands: ['*pg_isready *', '*cat /tmp/healthy', '*wget -q -O- localhost:3000/api/health']\n")
    name = MORE_FILE_NAMES[fmt]
    alerts, err = hunt(sim / "k8s-audit.jsonl", sim / name, "--policy", str(pol))
    labs = labels(sim)
    bypass = [a for a in alerts if "join-exec-bypass" in rule_ids(a)]
    assert [labs[(name, a["source"]["line"])]["step"] for a in bypass] == [BYPASS_STEP]
    assert "1 exec(s) bypassed the API server" in err


def test_auditd_beside_the_audit_log_alerts_on_content_but_joins_nothing(sim: Path) -> None:
    alerts, err = hunt(sim / "k8s-audit.jsonl", sim / "audit.log")
    labs = labels(sim)
    assert not any(rule_ids(a) & {"join-exec-bypass", "join-exec-incident"} for a in alerts)
    assert not any(a.get("covers") for a in alerts)
    assert "0 incident(s), 0 process(es) given an identity, 0 exec(s) bypassed" in err
    on_node = [a for a in alerts if a["source"]["format"] == "auditd"]
    direct = [a for a in on_node if labs[("audit.log", a["source"]["line"])]["step"] == BYPASS_STEP]
    # the miner the kubelet ran is still seen by the command rules, with no container, pod or identity
    assert direct and max((a["severity"] for a in direct), key=severity_rank) == "critical"
    assert all(a["target"]["pod"] is None and a["actor"]["user"] is None for a in direct)


def test_format_option_writes_one_node_format_and_refuses_where_there_is_no_node_view(tmp_path: Path) -> None:
    res = runner.invoke(app, ["simulate", "--scenario", "hildegard", "--format", "auditd", "--events", "50", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["audit.log", "labels.jsonl"]
    res = runner.invoke(app, ["simulate", "--scenario", "kinsing", "--format", "falco", "--out", str(tmp_path / "b")])
    assert res.exit_code != 0 and "not written in falco" in res.output
    res = runner.invoke(app, ["simulate", "--scenario", "teamtnt", "--node-formats", "--events", "50", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert {"falco.jsonl", "kubearmor.jsonl", "audit.log", "tetragon.jsonl"} <= {p.name for p in (tmp_path / "c").iterdir()}


def _daemonset_from_docs() -> dict[str, Any]:
    text = (ROOT / "docs" / "node.md").read_text(encoding="utf-8")
    section = text.split("\n## containerd", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    docs = [d for b in blocks for d in yaml.safe_load_all(b) if isinstance(d, dict) and d.get("kind") == "DaemonSet"]
    assert len(docs) == 1, "docs/node.md's containerd section should show one DaemonSet"
    return docs[0]


@pytest.mark.parametrize("version", ("1.30.0", kubernetes_validate.utils.latest_version()))
def test_docs_daemonset_validates_strictly(version: str) -> None:
    ds = _daemonset_from_docs()
    kubernetes_validate.validate(ds, version, strict=True)  # raises ValidationError naming the field
    pod = ds["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    assert pod["hostPID"] is True and "--containerd" in ctr["args"]
    assert {m["mountPath"] for m in ctr["volumeMounts"]} == {v["hostPath"]["path"] for v in pod["volumes"]}
