"""Chains across records (Sigma temporal / temporal_ordered) and RBAC grants remembered across records (issue 9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from execguard.engine.grants import GrantMemory
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.model import Alert, Event, RbacChange
from execguard.pipeline import parallel, units
from execguard.pipeline.prefilter import literals_for
from execguard.sim.simulate import write as simulate
from execguard.sinks.alert_json import alert_dict
from execguard.sources.reader import Reader
from rules_builder import base_event, binding_body, deny, exec_event, hunt, rbac_event, role_body, write_jsonl

WEB_SA = "system:serviceaccount:web:webapp"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:web", "system:authenticated")
TOKEN = {"user": WEB_SA, "groups": SA_GROUPS, "credential_pod": "webapp-6d4f9-x2x7q", "source_ip": "10.244.1.23"}
EXEC_RULE = {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]}
READ_RULE = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}


def at(minute: float) -> str:
    m, s = divmod(round(minute * 60), 60)
    return f"2026-03-01T10:{m:02d}:{s:02d}.000000Z"


def list_secrets(minute: float, ns: str | None = "web", code: int = 200, **kw: Any) -> dict[str, Any]:
    uri = f"/api/v1/namespaces/{ns}/secrets" if ns else "/api/v1/secrets"
    ref = {"resource": "secrets", "apiVersion": "v1", **({"namespace": ns} if ns else {})}
    ev = base_event("list", uri, ref, code=code, stage="ResponseComplete", time=at(minute), **{**TOKEN, **kw})
    return deny(ev) if code == 403 else ev


def list_pods(minute: float, **kw: Any) -> dict[str, Any]:
    return base_event("list", "/api/v1/pods?limit=500", {"resource": "pods", "apiVersion": "v1"}, code=200, stage="ResponseComplete",
                      time=at(minute), **{**TOKEN, **kw})


def run_exec(minute: float, pod: str = "payments-api-0", ns: str = "payments", argv: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    return exec_event(ns, pod, argv or ["id"], time=at(minute), **{**TOKEN, **kw})


def chain_alerts(alerts: list[Alert], rule_id: str) -> list[Alert]:
    return [a for a in alerts if any(m.rule_id == rule_id for m in a.matches)]


def reason(alert: Alert, rule_id: str) -> str:
    return next(m.reason for m in alert.matches if m.rule_id == rule_id)


def run(tmp_path: Path, events: list[dict[str, Any]], name: str = "audit.log") -> list[Alert]:
    return hunt([write_jsonl(tmp_path / name, events)])


# ---- a pod's token looks around, then execs elsewhere (Peirates) ---------------------------------------
TOKEN_CHAIN = "k8s-chain-token-recon-exec"


def test_token_recon_then_exec(tmp_path: Path) -> None:
    events = [list_secrets(0, None, 403), list_secrets(0.5), list_pods(1), run_exec(3), run_exec(4, pod="cart-1", ns="shop")]
    alerts = run(tmp_path, events)
    found = chain_alerts(alerts, TOKEN_CHAIN)
    # the reads become alerts when the chain completes, and each exec carries the chain in its own alert
    assert [a.event.action for a in found] == ["exec", "discovery", "discovery", "discovery", "exec"]
    first = found[0]
    assert first.severity == "high"
    assert {"k8s-exec-service-account", "k8s-exec-pod-token"} <= {m.rule_id for m in first.matches}  # one alert for the exec
    text = reason(first, TOKEN_CHAIN)
    assert text.startswith(f"{WEB_SA} ran exec in payments/payments-api-0")
    assert "(allowed) after list secrets (denied), list secrets web, list pods within 10m" in text
    assert "S0683 Peirates" in alert_dict(first)["procedures"]
    assert all(a.lead.rule_id == TOKEN_CHAIN and "an earlier step of this chain" in a.lead.reason for a in found[1:4])
    assert found[4].event.target.pod == "cart-1"  # the reads are still inside the window: the chain completes again
    # the reads are alerted once, however many execs follow
    assert len([a for a in alerts if a.event.action == "discovery"]) == 3


@pytest.mark.parametrize(
    "events",
    [
        [run_exec(0)],  # an exec alone
        [list_secrets(0), list_pods(1)],  # reads alone
        [run_exec(0), list_secrets(1)],  # in the wrong order
        [list_secrets(0), run_exec(11)],  # too far apart
        [list_secrets(0), run_exec(2, user="system:serviceaccount:ci:runner")],  # another account
        [list_secrets(0, user="alice@example.com", groups=("system:authenticated",), credential_pod=None),
         run_exec(2, user="alice@example.com", groups=("system:authenticated",), credential_pod=None)],  # a person: kubectl get, exec
    ],
)
def test_token_chain_negatives(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    alerts = run(tmp_path, events)
    assert chain_alerts(alerts, TOKEN_CHAIN) == []
    assert not [a for a in alerts if a.event.action == "discovery"]  # chain steps are not alerts by themselves


def test_later_stages_of_a_chained_exec_add_nothing(tmp_path: Path) -> None:
    started = run_exec(2, audit_id="aaaaaaaa-0000-4000-8000-000000000001")
    complete = {**started, "stage": "ResponseComplete", "stageTimestamp": at(2.1)}
    alerts = run(tmp_path, [list_secrets(0), started, complete])
    assert [a.event.stage for a in chain_alerts(alerts, TOKEN_CHAIN) if a.event.action == "exec"] == ["ResponseStarted"]


def test_a_later_stage_answers_as_its_first_stage_before_any_earlier_step(tmp_path: Path) -> None:
    """The exec's first stage comes when no group of the chain holds anything (nothing kept, correlate.py's
    shortcut); the listing, received a minute before it, is logged after it: the exec's later stage is the same
    request and gives its first stage's answer (no chain). The next exec completes the chain."""
    started = run_exec(2, pod="payments-api-0", audit_id="aaaaaaaa-0000-4000-8000-000000000002")
    complete = {**started, "stage": "ResponseComplete", "stageTimestamp": at(2.1)}
    later = run_exec(3, pod="payments-api-1", audit_id="aaaaaaaa-0000-4000-8000-000000000003")
    alerts = run(tmp_path, [started, list_secrets(1), complete, later])
    assert [a.event.event_id for a in chain_alerts(alerts, TOKEN_CHAIN) if a.event.action == "exec"] == [later["auditID"]]
    # the listing is reported as the step before the exec that completed the chain, not the first one's later stage
    [listing] = [a for a in chain_alerts(alerts, TOKEN_CHAIN) if a.event.action == "discovery"]
    assert "ran exec in payments/payments-api-1 " in reason(listing, TOKEN_CHAIN)


# ---- denied, denied, ... allowed -------------------------------------------------------------------------
DENIED_CHAIN = "k8s-chain-denied-then-allowed"
MALLORY = {"user": "mallory@example.com", "groups": ("system:authenticated",)}


def denied(minute: float, i: int, **kw: Any) -> dict[str, Any]:
    return deny(exec_event("payments", f"db-{i}", ["id"], time=at(minute), **{**MALLORY, **kw}))


def allowed(minute: float, **kw: Any) -> dict[str, Any]:
    return exec_event("shop", "cart-0", ["sh"], time=at(minute), **{**MALLORY, **kw})


def test_denied_burst_then_allowed(tmp_path: Path) -> None:
    alerts = run(tmp_path, [*(denied(i, i) for i in range(5)), allowed(12)])
    # the allowed exec, and the denied one that completed the burst, as the chain's earlier step
    [chained, step] = chain_alerts(alerts, DENIED_CHAIN)
    assert chained.event.target.pod == "cart-0" and chained.severity == "high"
    assert reason(chained, DENIED_CHAIN).startswith(
        "mallory@example.com ran exec in shop/cart-0 container app (allowed) after burst of denied container commands by one actor "
        "(last: exec db-4 (denied)) within 30m"
    )
    assert step.event.target.pod == "db-4"
    assert chain_alerts(alerts, "k8s-exec-denied-burst")  # the burst keeps its own alert


@pytest.mark.parametrize(
    "events",
    [
        [*(denied(i, i) for i in range(4)), allowed(6)],  # no burst
        [*(denied(i, i) for i in range(5)), allowed(40)],  # allowed long after
        [*(denied(i, i) for i in range(5)), allowed(6, user="bob@example.com")],  # someone else
        [allowed(0), *(denied(i + 1, i) for i in range(5))],  # allowed first
    ],
)
def test_denied_chain_negatives(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    assert chain_alerts(run(tmp_path, events), DENIED_CHAIN) == []


# ---- a binding grants exec, the subject execs ---------------------------------------------------------------
GRANT_CHAIN = "k8s-chain-grant-then-exec"
ADMIN = {"user": "kubernetes-admin", "groups": ("system:masters", "system:authenticated")}


def crb(minute: float, role: str, subjects: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    body = binding_body("ClusterRoleBinding", "pwn", "ClusterRole", role, subjects)
    return rbac_event("clusterrolebindings", "pwn", body, time=at(minute), **{**ADMIN, **kw})


SA_SUBJECT = [{"kind": "ServiceAccount", "name": "webapp", "namespace": "web"}]


def test_grant_then_exec_by_its_subject(tmp_path: Path) -> None:
    alerts = run(tmp_path, [crb(0, "cluster-admin", SA_SUBJECT), run_exec(5)])
    [chained, grant] = chain_alerts(alerts, GRANT_CHAIN)
    assert grant.event.action == "rbac" and "an earlier step" in grant.lead.reason
    assert chained.event.action == "exec" and chained.severity == "high"
    assert "after create clusterrolebindings within 30m" in reason(chained, GRANT_CHAIN)
    # the binding is also an alert of its own (medium), the chain's step alert is the second one for it
    assert [a.lead.rule_id for a in alerts if a.event.action == "rbac"] == ["k8s-rbac-exec-binding", GRANT_CHAIN]


def test_grant_to_a_group_chains_with_its_members(tmp_path: Path) -> None:
    group = [{"kind": "Group", "name": "system:serviceaccounts:web"}]
    alerts = run(tmp_path, [crb(0, "edit", group), run_exec(5)])
    assert len(chain_alerts(alerts, GRANT_CHAIN)) == 2


@pytest.mark.parametrize(
    "events",
    [
        [crb(0, "cluster-admin", SA_SUBJECT), run_exec(5, user="system:serviceaccount:ci:runner", groups=("system:authenticated",))],
        [deny(crb(0, "cluster-admin", SA_SUBJECT)), run_exec(5)],  # a denied binding grants nothing
        [crb(0, "view", SA_SUBJECT), run_exec(5)],  # view does not grant exec
        [crb(0, "cluster-admin", SA_SUBJECT), run_exec(45)],  # long after
        [crb(0, "cluster-admin", SA_SUBJECT), deny(run_exec(5))],  # the exec was refused
    ],
)
def test_grant_chain_negatives(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    assert chain_alerts(run(tmp_path, events), GRANT_CHAIN) == []


# ---- node credentials, then someone else from the same address (Siloscape) ------------------------------
NODE_CHAIN = "k8s-chain-node-credential-pivot"
NODE = {"user": "system:node:win-node-1", "groups": ("system:nodes", "system:authenticated"), "source_ip": "10.0.1.40"}


def node_probe(minute: float, **kw: Any) -> dict[str, Any]:
    ref = {"resource": "selfsubjectaccessreviews", "apiGroup": "authorization.k8s.io", "apiVersion": "v1"}
    return base_event("create", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ref, code=201, stage="ResponseComplete",
                      time=at(minute), **{**NODE, **kw})


def admin_exec(minute: float, ip: str = "10.0.1.40") -> dict[str, Any]:
    return exec_event("shop", "cart-0", ["whoami"], time=at(minute), source_ip=ip, **ADMIN)


def test_node_credentials_then_pivot(tmp_path: Path) -> None:
    listed = list_pods(3, user="kubernetes-admin", groups=("system:masters",), credential_pod=None, source_ip="10.0.1.40")
    alerts = run(tmp_path, [node_probe(0), listed, admin_exec(4), admin_exec(5)])
    found = chain_alerts(alerts, NODE_CHAIN)
    # the listing completes the chain (the probe gets its alert then), each exec completes it again
    assert [(a.event.actor.user, a.event.action) for a in found] == [
        ("kubernetes-admin", "discovery"), ("system:node:win-node-1", "discovery"),
        ("kubernetes-admin", "exec"), ("kubernetes-admin", "exec"),
    ]
    assert all(a.severity == "high" for a in found)


@pytest.mark.parametrize(
    "events",
    [
        [node_probe(0), admin_exec(4, ip="10.0.9.9")],  # another address
        [admin_exec(0), node_probe(1)],  # wrong order
        [node_probe(0), exec_event("shop", "cart-0", ["id"], time=at(2), **NODE)],  # only the node itself: its own rule says it
        # what kubelets do all day: list pods on their node, watch secrets; then an admin from elsewhere
        [base_event("list", "/api/v1/pods?fieldSelector=spec.nodeName%3Dwin-node-1", {"resource": "pods", "apiVersion": "v1"},
                    code=200, stage="ResponseComplete", time=at(0), **NODE), admin_exec(2)],
    ],
)
def test_node_chain_negatives(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    assert chain_alerts(run(tmp_path, events), NODE_CHAIN) == []


# ---- roles remembered across records ---------------------------------------------------------------------------
def role_event(name: str, rules: list[dict[str, Any]], ns: str | None = "shop", **kw: Any) -> dict[str, Any]:
    kind, resource = ("Role", "roles") if ns else ("ClusterRole", "clusterroles")
    return rbac_event(resource, name, role_body(kind, name, rules, namespace=ns, **kw), namespace=ns, time=at(0), **ADMIN)


def rolebinding(role_kind: str, role: str, subjects: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    body = binding_body("RoleBinding", "b", role_kind, role, subjects or SA_SUBJECT, namespace="shop")
    return rbac_event("rolebindings", "b", body, namespace="shop", time=at(1), **{**ADMIN, **kw})


def grants(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.lead.rule_id.startswith("k8s-rbac-exec-binding")]


def test_binding_of_a_role_seen_earlier(tmp_path: Path) -> None:
    alerts = run(tmp_path, [role_event("debugger", [READ_RULE, EXEC_RULE]), rolebinding("Role", "debugger")])
    [binding] = grants(alerts)
    assert binding.severity == "medium"
    assert binding.lead.reason == (
        "kubernetes-admin create RoleBinding shop/b: Role/debugger (Role/debugger seen at "
        f"{tmp_path / 'audit.log'}:1) grants pods/exec to ServiceAccount web/webapp"
    )
    assert alert_dict(binding)["rbac"]["capabilities"] == ["pods/exec"]


def test_binding_to_a_default_service_account_is_high(tmp_path: Path) -> None:
    default = [{"kind": "ServiceAccount", "name": "default", "namespace": "shop"}]
    alerts = run(tmp_path, [role_event("debugger", [EXEC_RULE]), rolebinding("Role", "debugger", default)])
    [binding] = grants(alerts)
    assert binding.severity == "high" and binding.lead.rule_id == "k8s-rbac-exec-binding-broad"


@pytest.mark.parametrize(
    "events",
    [
        [role_event("reader", [READ_RULE]), rolebinding("Role", "reader")],  # the role grants no exec
        [deny(role_event("debugger", [EXEC_RULE])), rolebinding("Role", "debugger")],  # the role was never created
        [role_event("debugger", [EXEC_RULE], ns="other"), rolebinding("Role", "debugger")],  # another namespace's Role
        [role_event("debugger", [EXEC_RULE]), rolebinding("ClusterRole", "debugger")],  # a Role is not a ClusterRole
        [role_event("proxy", [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}], ns=None),
         rolebinding("ClusterRole", "proxy")],  # nodes/proxy through a RoleBinding: not granted
        [rolebinding("ClusterRole", "debugger")],  # never seen: unknown, no alert
    ],
)
def test_remembered_role_negatives(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    assert grants(run(tmp_path, events)) == []


def test_binding_patch_without_role_ref_uses_the_remembered_one(tmp_path: Path) -> None:
    first = rolebinding("ClusterRole", "edit")
    ops = [{"op": "add", "path": "/subjects/-", "value": {"kind": "Group", "name": "system:authenticated"}}]
    patch = rbac_event("rolebindings", "b", ops, namespace="shop", verb="patch", time=at(2), **ADMIN)
    alerts = run(tmp_path, [first, patch])
    assert [a.lead.rule_id for a in grants(alerts)] == ["k8s-rbac-exec-binding", "k8s-rbac-exec-binding-broad"]
    assert grants(alerts)[1].event.rbac is not None and grants(alerts)[1].event.rbac.role_ref == "ClusterRole/edit"


AGG_SELECTOR = [{"matchLabels": {"example.com/aggregate-to-debug": "true"}}]
AGG_LABELS = {"example.com/aggregate-to-debug": "true"}


def test_role_aggregated_into_an_aggregating_role_seen_earlier(tmp_path: Path) -> None:
    events = [
        role_event("debug", [], ns=None, selectors=AGG_SELECTOR),
        role_event("debug-exec", [EXEC_RULE], ns=None, labels=AGG_LABELS),
        rolebinding("ClusterRole", "debug"),
    ]
    alerts = run(tmp_path, events)
    role_alerts = [a for a in alerts if a.lead.rule_id == "k8s-rbac-exec-role"]
    assert [a.event.rbac.name for a in role_alerts if a.event.rbac] == ["debug-exec"]
    assert "aggregated into ClusterRole debug seen earlier" in role_alerts[0].lead.reason
    [binding] = grants(alerts)
    assert "pods/exec" in binding.lead.reason  # the aggregating role now carries the exec rule


def test_aggregating_role_created_after_its_parts(tmp_path: Path) -> None:
    events = [role_event("debug-exec", [EXEC_RULE], ns=None, labels=AGG_LABELS), role_event("debug", [], ns=None, selectors=AGG_SELECTOR)]
    alerts = run(tmp_path, events)
    assert [a.lead.reason.split(" (")[1] for a in alerts if a.event.rbac and a.event.rbac.name == "debug"] == [
        "aggregates ClusterRole debug-exec seen earlier)"
    ]


def test_memory_is_bounded() -> None:
    memory = GrantMemory(max_entries=3)
    for i in range(10):
        ev = Event(action="rbac", outcome="allowed", raw=f"f:{i}", rbac=RbacChange("ClusterRole", name=f"r{i}", rules=[EXEC_RULE]))
        ev.rbac.capabilities = ["pods/exec"]  # type: ignore[union-attr]
        memory.resolve(ev)
    assert len(memory.roles) == 3
    assert [k[2] for k in memory.roles] == ["r7", "r8", "r9"]


# ---- generate: false, and -j 2 ------------------------------------------------------------------------------
def test_generate_false_silences_only_plain_rules(tmp_path: Path) -> None:
    rule = tmp_path / "c.yml"
    rule.write_text(
        "title: t\nname: my-chain\nid: 11111111-2222-4333-8444-555555555556\nreason: '{chain} then {action}'\nlevel: high\n"
        "tags: [attack.execution, attack.t1609]\ncorrelation:\n  type: temporal\n  rules: [k8s-portforward, k8s-exec-api]\n"
        "  group-by: [actor.user]\n  timespan: 5m\n  generate: false\n",
        encoding="utf-8",
    )
    rules = load_rules([str(rule)])
    pf = exec_event("shop", "db-0", [], subresource="portforward", time=at(0))
    pf["requestURI"] = "/api/v1/namespaces/shop/pods/db-0/portforward?ports=5432"
    alerts = hunt([write_jsonl(tmp_path / "a.log", [pf, exec_event("shop", "db-0", ["id"], time=at(1))])], rules=rules)
    # temporal in any order; the plain rules it names give no alerts of their own now
    assert [sorted(m.rule_id for m in a.matches) for a in alerts] == [["my-chain"], ["my-chain"]]
    assert alerts[0].lead.reason == "portforward db-0 then exec"  # the exec completed it; the port-forward follows


def test_same_alerts_with_two_workers(tmp_path: Path) -> None:
    simulate(tmp_path / "sim", fmt="k8s-audit", events=1200, seed=5)
    lines = (tmp_path / "sim" / "k8s-audit.jsonl").read_text(encoding="utf-8").splitlines()
    # roles early, bindings and chains late: state must cross many unit cuts
    early = [role_event("debugger", [EXEC_RULE]), list_secrets(0)]
    late = [rolebinding("Role", "debugger"), crb(1, "cluster-admin", SA_SUBJECT), run_exec(2), *(denied(2, i) for i in range(5)),
            allowed(3), node_probe(1), admin_exec(4)]
    text = "\n".join([json.dumps(e) for e in early] + lines + [json.dumps(e) for e in late]) + "\n"
    path = tmp_path / "in.log"
    path.write_text(text, encoding="utf-8")

    def alerts(workers: bool) -> list[dict[str, Any]]:
        engine = Engine(load_rules())
        reader = Reader(literals=literals_for(engine.actions()))
        if not workers:
            return [alert_dict(a) for a in engine.run(reader.read([str(path)]))]
        planned = units.plan(reader, [str(path)], unit=16 << 10)
        assert planned is not None and len(planned) > 8
        return [alert_dict(a) for a in parallel.ParallelHunt(reader, engine, planned, jobs=2).alerts()]

    serial = alerts(False)
    assert alerts(True) == serial
    rules = {r["rule_id"] for a in serial for r in a["rules"]}
    assert {TOKEN_CHAIN, GRANT_CHAIN, DENIED_CHAIN, NODE_CHAIN, "k8s-rbac-exec-binding", "k8s-rbac-exec-role"} <= rules


# ---- the same through managed-cluster wrappers, prefilter on -------------------------------------------------
def eks(native: dict[str, Any]) -> dict[str, Any]:
    return {"logStreamName": "kube-apiserver-audit-1", "timestamp": 1, "message": json.dumps(native, separators=(",", ":"))}


def aks(native: dict[str, Any]) -> dict[str, Any]:
    return {"category": "kube-audit", "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
            "properties": {"log": json.dumps(native, separators=(",", ":")), "pod": "kube-apiserver-1"}}


def gke_entry(method: str, resource_name: str, minute: float, request: dict[str, Any] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog", "methodName": method, "resourceName": resource_name,
        "authenticationInfo": {"principalEmail": WEB_SA}, "requestMetadata": {"callerIp": "10.244.1.23"}, "status": {},
    }
    if request is not None:
        payload["request"] = request
    return {"protoPayload": payload, "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "c1"}}, "timestamp": at(minute),
            "insertId": f"{method}-{minute}"}


@pytest.mark.parametrize("wrap", [eks, aks], ids=["eks", "aks"])
def test_wrapped_native_records(tmp_path: Path, wrap: Any) -> None:
    bare_list = base_event("list", "/api/v1/secrets", {"resource": "secrets", "apiVersion": "v1"}, code=200, stage="ResponseComplete",
                           time=at(0), **TOKEN)  # a Go client's list: no query at all
    grant = crb(1, "cluster-admin", SA_SUBJECT)
    path = tmp_path / "wrapped.jsonl"
    path.write_text("".join(json.dumps(wrap(e), separators=(",", ":")) + "\n" for e in [bare_list, grant, run_exec(3)]), encoding="utf-8")
    alerts = hunt([path])
    assert {a.lead.rule_id for a in alerts if a.event.action == "rbac"} >= {"k8s-rbac-exec-binding"}
    assert chain_alerts(alerts, TOKEN_CHAIN) and chain_alerts(alerts, GRANT_CHAIN)


def test_gke_records(tmp_path: Path) -> None:
    body = binding_body("ClusterRoleBinding", "pwn", "ClusterRole", "edit", [{"kind": "Group", "name": "system:authenticated"}])
    entries = [
        gke_entry("io.k8s.core.v1.secrets.list", "core/v1/namespaces/web/secrets", 0),
        gke_entry("io.k8s.authorization.rbac.v1.clusterrolebindings.create",
                  "rbac.authorization.k8s.io/v1/clusterrolebindings/pwn", 1, body),
        gke_entry("io.k8s.core.v1.pods.exec.create", "core/v1/namespaces/payments/pods/payments-api-0/exec", 3),
    ]
    alerts = hunt([write_jsonl(tmp_path / "gke.jsonl", entries)])
    [grant] = [a for a in alerts if a.lead.rule_id == "k8s-rbac-exec-binding-broad"]
    assert grant.event.rbac is not None and grant.event.rbac.capabilities == ["pods/exec", "pods/attach"]
    exec_alert = next(a for a in alerts if a.event.action == "exec")
    assert {TOKEN_CHAIN, GRANT_CHAIN} <= {m.rule_id for m in exec_alert.matches}  # GKE's exec has no command: the chains say more
