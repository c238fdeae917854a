"""--kubeconfig end to end through the real `kubernetes` client.

No API server can run here, so a loopback HTTP server answers the list calls in the API's wire format: typed lists
(``DeploymentList`` ...) with apiVersion, ``metadata.resourceVersion`` and items that carry no ``kind``; chunking
with ``limit``/``continue``; errors as ``metav1.Status`` bodies (403 Forbidden, 404 NotFound). The objects under
data/audit/kube-api/ were written for these tests in the exact shape the API server returns (defaulted fields,
ownerReferences, status); they were not recorded from a cluster. The same directory is also audited offline
(``--from``), so live and offline findings can be compared.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from execguard.audit import live
from execguard.audit.engine import Finding
from execguard.audit.run import run_audit

DATA = Path(__file__).parent / "data" / "audit"
CLUSTER = DATA / "kube-api"
RBAC = "rbac.authorization.k8s.io/v1"
# API path → (list kind, apiVersion, resource, group): what `kube_inputs` must request, and nothing else.
PATHS = {
    f"/apis/{RBAC}/clusterroles": ("ClusterRoleList", RBAC, "clusterroles", "rbac.authorization.k8s.io"),
    f"/apis/{RBAC}/clusterrolebindings": ("ClusterRoleBindingList", RBAC, "clusterrolebindings", "rbac.authorization.k8s.io"),
    f"/apis/{RBAC}/roles": ("RoleList", RBAC, "roles", "rbac.authorization.k8s.io"),
    f"/apis/{RBAC}/rolebindings": ("RoleBindingList", RBAC, "rolebindings", "rbac.authorization.k8s.io"),
    "/api/v1/pods": ("PodList", "v1", "pods", ""),
    "/api/v1/nodes": ("NodeList", "v1", "nodes", ""),
    "/api/v1/serviceaccounts": ("ServiceAccountList", "v1", "serviceaccounts", ""),
    "/api/v1/replicationcontrollers": ("ReplicationControllerList", "v1", "replicationcontrollers", ""),
    "/apis/apps/v1/deployments": ("DeploymentList", "apps/v1", "deployments", "apps"),
    "/apis/apps/v1/statefulsets": ("StatefulSetList", "apps/v1", "statefulsets", "apps"),
    "/apis/apps/v1/daemonsets": ("DaemonSetList", "apps/v1", "daemonsets", "apps"),
    "/apis/apps/v1/replicasets": ("ReplicaSetList", "apps/v1", "replicasets", "apps"),
    "/apis/batch/v1/jobs": ("JobList", "batch/v1", "jobs", "batch"),
    "/apis/batch/v1/cronjobs": ("CronJobList", "batch/v1", "cronjobs", "batch"),
}
AUDITOR = "system:serviceaccount:audit:execguard"


def forbidden(path: str) -> tuple[int, dict[str, Any]]:
    """The Status the API server sends when RBAC denies a cluster-wide list."""
    _, _, resource, group = PATHS[path]
    qualified = f"{resource}.{group}" if group else resource
    details: dict[str, Any] = {"group": group, "kind": resource} if group else {"kind": resource}
    message = f'{qualified} is forbidden: User "{AUDITOR}" cannot list resource "{resource}" in API group "{group}" at the cluster scope'
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    return 403, {**status, "reason": "Forbidden", "details": details, "code": 403}


NOT_FOUND = (
    404,
    {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    },
)


def cluster_lists() -> dict[str, dict[str, Any]]:
    """API path → the list body, from data/audit/kube-api/<resource>.json."""
    out = {}
    for path, (kind, api_version, resource, _) in PATHS.items():
        body = json.loads((CLUSTER / f"{resource}.json").read_text())
        assert body["kind"] == kind and body["apiVersion"] == api_version
        assert all("kind" not in item for item in body["items"])  # as the API server sends them
        out[path] = body
    return out


def broad_lists() -> dict[str, dict[str, Any]]:
    """rbac-broad/bindings.yaml plus one pod and one node; every other list empty."""
    by_kind: dict[str, list[dict[str, Any]]] = {
        "Pod": [{"metadata": {"name": "worker", "namespace": "team-d"}, "spec": {"containers": [{"name": "w", "image": "alpine:3.20"}]}}],
        "Node": [{"metadata": {"name": "node-1"}, "spec": {}}],
    }
    for doc in yaml.safe_load_all((DATA / "rbac-broad/bindings.yaml").read_text()):
        kind = doc.pop("kind")
        doc.pop("apiVersion")
        by_kind.setdefault(kind, []).append(doc)
    return {
        path: {"kind": kind, "apiVersion": api, "metadata": {"resourceVersion": "42"}, "items": by_kind.get(kind[: -len("List")], [])}
        for path, (kind, api, _, _) in PATHS.items()
    }


class Cluster:
    """A loopback API server: GET of a list path, paged by limit/continue like the real one."""

    def __init__(
        self, lists: dict[str, dict[str, Any]], errors: dict[str, tuple[int, dict[str, Any]]] | None = None, version: str = "v1.34.2"
    ) -> None:
        self.lists, self.errors = lists, errors or {}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.version = version  # GET /version: decides whether get alone on pods/exec can exec

    def answer(self, method: str, target: str) -> tuple[int, dict[str, Any]]:
        url = urlsplit(target)
        query = parse_qs(url.query)
        self.requests.append((method, url.path, query))
        if method == "GET" and url.path in ("/version", "/version/"):
            major, minor = self.version.lstrip("v").split(".")[:2]
            return 200, {"major": major, "minor": minor, "gitVersion": self.version, "gitCommit": "0" * 40,
                         "gitTreeState": "clean", "buildDate": "2026-10-01T00:00:00Z", "goVersion": "go1.25.1",
                         "compiler": "gc", "platform": "linux/amd64"}
        if method != "GET" or url.path not in PATHS:
            return NOT_FOUND
        if url.path in self.errors:
            return self.errors[url.path]
        body = self.lists[url.path]
        start = int(query.get("continue", ["0"])[0])
        limit = int(query.get("limit", ["0"])[0]) or len(body["items"]) or 1
        items = body["items"][start : start + limit]
        meta: dict[str, Any] = dict(body["metadata"])
        if start + limit < len(body["items"]):
            meta["continue"] = str(start + limit)  # opaque to clients; the real token is base64 JSON
            meta["remainingItemCount"] = len(body["items"]) - start - limit
        return 200, {**body, "metadata": meta, "items": items}


@pytest.fixture
def serve() -> Iterator[Callable[[Cluster], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(cluster: Cluster) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                code, body = cluster.answer(self.command, self.path)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _reply

            def log_message(self, *args: object) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def kubeconfig(tmp_path: Path, server: str) -> str:
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters:\n- name: t\n  cluster:\n    server: {server}\n"
        "users:\n- name: u\n  user:\n    token: not-a-real-token\n"
        "contexts:\n- name: t\n  context: {cluster: t, user: u}\n"
    )
    return str(kc)


def shown(findings: list[Finding]) -> set[tuple[str, str, str, str]]:
    return {(f.id, f.severity, f.target, f.evidence) for f in findings}


def test_kubeconfig_lists_rbac_pods_nodes(serve: Callable[[Cluster], str], tmp_path: Path) -> None:
    cluster = Cluster(broad_lists())
    kc = kubeconfig(tmp_path, serve(cluster))
    inputs = live.kube_inputs(live.kube_client(kc))
    assert {o.kind for o in inputs.objects} == {"ClusterRole", "ClusterRoleBinding", "RoleBinding", "Pod", "Node", "ServerVersion"}
    res = run_audit(kubeconfig=kc)
    assert not res.errors
    got = {(f.id, f.target) for f in res.findings}
    assert ("EG-RBAC-001", "Group system:unauthenticated @ cluster") in got
    assert ("EG-RBAC-002", "Group system:authenticated @ cluster") in got
    assert ("EG-RBAC-020", "Pod team-d/worker") in got
    assert all(f.file is None or f.file.startswith("kube-api:") for f in res.findings)
    assert {m for m, _, _ in cluster.requests} == {"GET"}  # read-only
    assert {p for _, p, _ in cluster.requests} == set(PATHS) | {"/version/"}


def test_live_controllers_and_service_accounts_match_offline(
    serve: Callable[[Cluster], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "PAGE", 1)  # every list spans pages: the continue token must be followed
    cluster = Cluster(cluster_lists())
    res = run_audit(kubeconfig=kubeconfig(tmp_path, serve(cluster)))
    offline = run_audit(from_dir=str(CLUSTER))
    assert not res.errors and not offline.errors
    assert shown(res.findings) == shown(offline.findings)
    got = {(f.id, f.target) for f in res.findings}
    assert {t for i, t in got if i == "EG-WL-001"} == {"Deployment ci/builder volume docker-sock", "CronJob ci/prune volume dsock"}
    assert {t for i, t in got if i == "EG-WL-002"} == {"DaemonSet monitoring/node-agent"}
    assert {t for i, t in got if i == "EG-RBAC-020"} == {"Deployment ci/builder", "DaemonSet monitoring/node-agent"}
    # quiet-app's service account sets automountServiceAccountToken: false, read from the ServiceAccount list
    assert ("EG-RBAC-010", "ServiceAccount team-b/quiet @ namespace:team-b") in got
    # The ReplicaSet, Pod and Job copies of a template are not reported again; the old ReplicaSet revision's
    # probe differs from the Deployment's and is.
    assert {t for i, t in got if i == "EG-WL-010"} == {
        "Deployment ci/builder[builder] livenessProbe",
        "ReplicaSet ci/builder-5c4d8b7f9[builder] livenessProbe",
        "StatefulSet prod/db[postgres] livenessProbe",
    }
    assert not any(t.startswith(("Pod ci/", "Job ", "ReplicaSet ci/builder-6f7b9c8d5")) for _, t in got)
    assert not any(f.id == "EG-LIVE-001" for f in res.findings)
    pods = [q for _, p, q in cluster.requests if p == "/api/v1/pods"]
    assert [q.get("continue") for q in pods] == [None, ["1"]] and all(q["limit"] == ["1"] for q in pods)


def test_forbidden_and_unserved_lists_are_reported_and_the_audit_goes_on(serve: Callable[[Cluster], str], tmp_path: Path) -> None:
    errors = {
        "/apis/apps/v1/daemonsets": forbidden("/apis/apps/v1/daemonsets"),
        "/api/v1/serviceaccounts": forbidden("/api/v1/serviceaccounts"),
        "/apis/batch/v1/cronjobs": NOT_FOUND,
    }
    server = serve(Cluster(cluster_lists(), errors))
    kc = kubeconfig(tmp_path, server)
    inputs = live.kube_inputs(live.kube_client(kc))
    assert len(inputs.warnings) == 3
    res = run_audit(kubeconfig=kc)
    assert not res.errors
    gaps = {f.target: f for f in res.findings if f.id == "EG-LIVE-001"}
    host = f"kube-api:{server}"
    assert set(gaps) == {f"{host} list apps/v1 daemonsets", f"{host} list v1 serviceaccounts", f"{host} list batch/v1 cronjobs"}
    ds = gaps[f"{host} list apps/v1 daemonsets"]
    assert ds.severity == "info" and ds.facts["status"] == 403 and ds.facts["reason"] == "forbidden"
    assert f'User "{AUDITOR}" cannot list resource "daemonsets" in API group "apps" at the cluster scope' in ds.evidence
    assert gaps[f"{host} list batch/v1 cronjobs"].facts["reason"] == "not served"
    got = {(f.id, f.target) for f in res.findings}
    # Everything else is still evaluated.
    assert ("EG-WL-001", "Deployment ci/builder volume docker-sock") in got
    assert ("EG-RBAC-012", "ServiceAccount monitoring/node-agent @ cluster") in got
    assert not any(t.startswith("DaemonSet ") for _, t in got)
    # Without its CronJob the Job is the only holder of that template, so it is reported.
    assert ("EG-WL-001", "Job ci/prune-29541600 volume dsock") in got
    # Without ServiceAccounts, automountServiceAccountToken is unknown and the token is taken as mounted;
    # the coverage finding says so.
    assert ("EG-RBAC-020", "Deployment team-b/quiet-app") in got
    assert "EG-RBAC-020 assumes tokens are mounted" in gaps[f"{host} list v1 serviceaccounts"].evidence


def test_other_api_errors_still_abort(serve: Callable[[Cluster], str], tmp_path: Path) -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    kc = kubeconfig(tmp_path, serve(Cluster(cluster_lists(), {"/api/v1/pods": (401, status)})))
    res = run_audit(kubeconfig=kc)
    assert res.errors and "401 Unauthorized" in res.errors[0]


@pytest.mark.parametrize(("version", "frank"), [("v1.34.2", "EG-RBAC-010"), ("v1.35.0", "EG-RBAC-015")])
def test_server_version_decides_get_only_exec(serve: Callable[[Cluster], str], tmp_path: Path, version: str, frank: str) -> None:
    """frank has get (not create) on pods/exec: exec over websocket up to 1.34; 1.35 also checks create."""
    lists = broad_lists()
    for doc in yaml.safe_load_all((DATA / "rbac/roles.yaml").read_text()):
        if doc.get("kind") == "ClusterRole" and doc["metadata"]["name"] == "exec-get":
            lists[f"/apis/{RBAC}/clusterroles"]["items"].append({k: v for k, v in doc.items() if k not in ("kind", "apiVersion")})
    group = "rbac.authorization.k8s.io"
    binding = {
        "metadata": {"name": "frank-exec-get"},
        "roleRef": {"apiGroup": group, "kind": "ClusterRole", "name": "exec-get"},
        "subjects": [{"apiGroup": group, "kind": "User", "name": "frank"}],
    }
    lists[f"/apis/{RBAC}/clusterrolebindings"]["items"].append(binding)
    res = run_audit(kubeconfig=kubeconfig(tmp_path, serve(Cluster(lists, version=version))))
    mine = [f for f in res.findings if f.target == "User frank @ cluster"]
    assert [f.id for f in mine] == [frank]
    assert version.lstrip("v")[:4] in mine[0].evidence
