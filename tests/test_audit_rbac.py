"""RBAC who-can-exec: Kubernetes' exact matching, aggregation, binding scope, subject classes, workload tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from execguard.audit.inputs import read_dir
from execguard.audit.rbac import allows, grants, resource_matches, selector_matches
from execguard.audit.run import run_audit

DATA = Path(__file__).parent / "data" / "audit"


def rule(**kw: object) -> dict[str, object]:
    return {"apiGroups": [""], "verbs": ["*"], **kw}


@pytest.mark.parametrize(
    ("resources", "resource", "sub", "expected"),
    [
        (["*"], "pods", "exec", True),
        (["pods/exec"], "pods", "exec", True),
        (["*/exec"], "pods", "exec", True),
        (["*/exec"], "pods", "attach", False),
        (["pods/*"], "pods", "exec", False),  # not a wildcard in RBAC
        (["pods/*"], "pods", "*", True),  # matches only a subresource literally named *
        (["pods"], "pods", "exec", False),
        (["pods"], "pods", "", True),
        (["*/xexec"], "pods", "exec", False),
        (["nodes/proxy"], "nodes", "proxy", True),
        (["nodes"], "nodes", "proxy", False),
    ],
)
def test_resource_matching_is_kubernetes_exact(resources: list[str], resource: str, sub: str, expected: bool) -> None:
    assert resource_matches({"resources": resources}, resource, sub) is expected


def test_verbs_groups_and_names() -> None:
    r = rule(resources=["pods/exec"], verbs=["get"])
    assert allows(r, "", "pods", "exec", "get")
    assert not allows(r, "", "pods", "exec", "create")
    assert not allows(rule(resources=["pods/exec"], apiGroups=["apps"]), "", "pods", "exec", "get")
    assert allows(rule(resources=["pods/exec"], apiGroups=["*"]), "", "pods", "exec", "create")
    named = rule(resources=["pods/exec"], resourceNames=["web-0"])
    assert allows(named, "", "pods", "exec", "create", "web-0")
    assert not allows(named, "", "pods", "exec", "create", "web-1")
    assert not allows(named, "", "pods", "", "create", "")  # create has no name


def test_label_selectors() -> None:
    labels = {"a": "1", "b": "2"}
    assert selector_matches({"matchLabels": {"a": "1"}}, labels)
    assert not selector_matches({"matchLabels": {"a": "2"}}, labels)
    assert selector_matches({"matchExpressions": [{"key": "b", "operator": "In", "values": ["2", "3"]}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "c", "operator": "Exists"}]}, labels)
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["9"]}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, labels)


def _grants() -> dict[tuple[str, str, str], object]:
    return {(g.subject, g.capability, g.scope): g for g in grants(read_dir(DATA / "rbac"))}


def test_matrix_from_manifests_and_list_dumps() -> None:
    gs = _grants()
    # get alone on pods/exec is exec (websocket); Kubescape C-0002 looks only for create
    assert ("User frank", "pods/exec", "cluster") in gs
    # */exec through a RoleBinding to a ClusterRole: scope is the binding's namespace
    assert ("ServiceAccount team-a/default", "pods/exec", "namespace:team-a") in gs
    # Role + RoleBinding
    assert ("ServiceAccount team-b/ci", "pods/exec", "namespace:team-b") in gs
    # aggregated ClusterRole gets pods/attach from the labelled piece only
    assert ("User gina", "pods/attach", "cluster") in gs
    assert not any(k[0] == "User gina" and k[1] == "nodes/proxy" for k in gs)
    assert ("User erin", "nodes/proxy", "cluster") in gs
    assert ("Group ops", "pods/ephemeralcontainers", "cluster") in gs
    assert ("User mallory", "impersonate", "cluster") in gs
    assert ("User henry", "create-workloads", "cluster") in gs
    named = gs[("User dave", "pods/exec", "cluster")]
    assert named.resource_names == {"web-0"}  # type: ignore[attr-defined]
    assert ("User dave", "create-workloads", "cluster") not in gs  # named rule cannot create


def test_negatives() -> None:
    subjects = {k[0] for k in _grants()}
    assert "User alice" not in subjects  # pods/* is not a wildcard
    assert "User carol" not in subjects  # apiGroups apps
    assert "User bob" not in subjects  # nodes/proxy through a RoleBinding grants nothing (cluster-scoped)
    assert not any(k[0] == "User henry" and k[1] == "pods/exec" for k in _grants())  # pods does not cover pods/exec


def test_findings_and_workload_tokens() -> None:
    res = run_audit(from_dir=str(DATA / "rbac"))
    by = {(f.id, f.target) for f in res.findings}
    assert ("EG-RBAC-004", "ServiceAccount team-a/default @ namespace:team-a") in by
    assert ("EG-RBAC-012", "User erin @ cluster") in by
    assert ("EG-RBAC-014", "User mallory @ cluster") in by
    assert ("EG-RBAC-010", "User frank @ cluster") in by
    wl = {f.target for f in res.findings if f.id == "EG-RBAC-020"}
    assert wl == {"Pod team-a/web-0", "CronJob team-b/runner"}  # not the automount:false ones, not team-c
    assert not any(f.id in ("EG-RBAC-001", "EG-RBAC-002", "EG-RBAC-003") for f in res.findings)


def test_broad_grants() -> None:
    res = run_audit(from_dir=str(DATA / "rbac-broad"))
    ids = {(f.id, f.facts["subject"]) for f in res.findings}
    assert ("EG-RBAC-001", "Group system:unauthenticated") in ids
    assert ("EG-RBAC-002", "Group system:authenticated") in ids
    assert ("EG-RBAC-003", "Group system:serviceaccounts:team-d") in ids
    assert ("EG-RBAC-003", "Group system:serviceaccounts") in ids
    sev = {f.id: f.severity for f in res.findings}
    assert sev["EG-RBAC-001"] == "critical"
