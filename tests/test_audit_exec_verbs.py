"""get alone on pods/exec: exec over websocket up to Kubernetes 1.34, not from 1.35 (unless the gate is off).

Facts: KEP-4006 and kubernetes PR 134577 - from 1.35 the API server also authorizes `create` on pods/exec,
pods/attach and pods/portforward for a websocket upgrade (feature gate AuthorizePodWebsocketUpgradeCreatePermission,
beta, on by default). nodes/proxy is not covered: get on it still reaches the kubelet.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from execguard.audit.inputs import CommandLine, Inputs, Obj
from execguard.audit.run import run_audit
from execguard.audit.version import exec_needs_create

DATA = Path(__file__).parent / "data" / "audit"
MANIFEST = """apiVersion: v1
kind: Pod
metadata: {{name: kube-apiserver, namespace: kube-system}}
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:{version}
    command: [kube-apiserver, --authorization-mode=Node,RBAC{extra}]
"""


def cluster(tmp_path: Path, version: str | None, extra: str = "") -> Path:
    root = tmp_path / "dump"
    shutil.copytree(DATA / "rbac", root)
    if version is not None:
        (root / "etc/kubernetes/manifests").mkdir(parents=True)
        (root / "etc/kubernetes/manifests/kube-apiserver.yaml").write_text(MANIFEST.format(version=version, extra=extra))
    return root


def frank(root: Path) -> list[tuple[str, str]]:
    """frank is bound to exec-get: get, not create, on pods/exec."""
    return [(f.id, f.evidence) for f in run_audit(from_dir=str(root)).findings if f.target == "User frank @ cluster"]


@pytest.mark.parametrize(
    ("version", "extra", "want"),
    [
        ("v1.34.2", "", "EG-RBAC-010"),
        ("v1.30.0", "", "EG-RBAC-010"),
        ("v1.35.0", "", "EG-RBAC-015"),
        ("v1.36.1", "", "EG-RBAC-015"),
        ("v1.35.0", ", --feature-gates=AuthorizePodWebsocketUpgradeCreatePermission=false", "EG-RBAC-010"),
        ("v1.35.0", ", --feature_gates=AuthorizePodWebsocketUpgradeCreatePermission=false", "EG-RBAC-010"),  # _ is - to pflag
        ("v1.35.0", ", --feature-gates=SomethingElse=true,AuthorizePodWebsocketUpgradeCreatePermission=true", "EG-RBAC-015"),
        (None, "", "EG-RBAC-010"),
    ],
)
def test_get_only_exec_by_version(tmp_path: Path, version: str | None, extra: str, want: str) -> None:
    [(check, evidence)] = frank(cluster(tmp_path, version, extra))
    assert check == want
    if version is None:
        assert "version unknown" in evidence and "1.35" in evidence
    elif "false" in extra:
        assert "AuthorizePodWebsocketUpgradeCreatePermission=false" in evidence
    else:
        assert version.lstrip("v").rsplit(".", 1)[0] in evidence


def test_create_grants_and_nodes_proxy_are_unaffected(tmp_path: Path) -> None:
    """A 1.35 server changes nothing for grants that include create, nor for get on nodes/proxy."""
    def rbac(root: Path) -> set[tuple[str, str]]:
        return {(f.id, f.target) for f in run_audit(from_dir=str(root)).findings if f.id.startswith("EG-RBAC")}

    old, new = rbac(cluster(tmp_path / "a", "v1.34.0")), rbac(cluster(tmp_path / "b", "v1.35.0"))
    assert old - new == {("EG-RBAC-010", "User frank @ cluster")}
    assert new - old == {("EG-RBAC-015", "User frank @ cluster")}
    assert any(i == "EG-RBAC-012" for i, _ in new)  # nodes/proxy get still reaches the kubelet


def test_command_line_and_live_version_sources() -> None:
    cl = CommandLine(["/usr/local/bin/kube-apiserver", "--feature-gates", "AuthorizePodWebsocketUpgradeCreatePermission=false"], "unit")
    assert exec_needs_create(Inputs(commands=[cl]))[0] is False
    live = Inputs(objects=[Obj({"kind": "ServerVersion", "gitVersion": "v1.35.2-eks-1a2b3c"}, "kube-api:x")])
    assert exec_needs_create(live)[0] is True
    assert exec_needs_create(Inputs())[0] is None


def test_malformed_apiserver_manifest_does_not_stop_the_audit(tmp_path: Path) -> None:
    root = cluster(tmp_path, None)
    (root / "kube-apiserver.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver, namespace: kube-system}\n"
        "spec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.35.0\n"
        "    command: kube-apiserver --feature-gates=AuthorizePodWebsocketUpgradeCreatePermission=false\n"
    )
    # the string command is ignored (no gate read from it); the image tag still gives the version
    assert [c for c, _ in frank(root)] == ["EG-RBAC-015"]
