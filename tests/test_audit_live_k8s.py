"""--kubeconfig end to end through the real `kubernetes` client.

No API server can run here, so a loopback HTTP server answers the six list calls with the fixture objects in the
API's list wire format (``ClusterRoleList`` ... whose items carry no ``kind``, as the API server sends them).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from execguard.audit import live
from execguard.audit.cli import run_audit

DATA = Path(__file__).parent / "data" / "audit"
RBAC = "rbac.authorization.k8s.io/v1"
PATHS = {
    f"/apis/{RBAC}/clusterroles": ("ClusterRole", RBAC),
    f"/apis/{RBAC}/clusterrolebindings": ("ClusterRoleBinding", RBAC),
    f"/apis/{RBAC}/roles": ("Role", RBAC),
    f"/apis/{RBAC}/rolebindings": ("RoleBinding", RBAC),
    "/api/v1/pods": ("Pod", "v1"),
    "/api/v1/nodes": ("Node", "v1"),
}
POD = {"metadata": {"name": "worker", "namespace": "team-d"}, "spec": {"containers": [{"name": "w", "image": "alpine:3.20"}]}}
NODE = {"metadata": {"name": "node-1"}, "spec": {}}


def _objects() -> dict[str, list[dict[str, object]]]:
    by_kind: dict[str, list[dict[str, object]]] = {"Pod": [POD], "Node": [NODE]}
    for doc in yaml.safe_load_all((DATA / "rbac-broad/bindings.yaml").read_text()):
        kind = doc.pop("kind")
        doc.pop("apiVersion")
        by_kind.setdefault(kind, []).append(doc)
    return by_kind


@pytest.fixture
def api_server() -> Iterator[str]:
    objects = _objects()
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            seen.append(self.command + " " + path)
            if path not in PATHS:
                self.send_error(404)
                return
            kind, api_version = PATHS[path]
            body = json.dumps(
                {"kind": f"{kind}List", "apiVersion": api_version, "metadata": {"resourceVersion": "42"}, "items": objects.get(kind, [])}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
    assert all(s.startswith("GET ") for s in seen)  # read-only
    assert {s.split(" ", 1)[1] for s in seen} == set(PATHS)


def test_kubeconfig_lists_rbac_pods_nodes(api_server: str, tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters:\n- name: t\n  cluster:\n    server: {api_server}\n"
        "users:\n- name: u\n  user:\n    token: not-a-real-token\n"
        "contexts:\n- name: t\n  context: {cluster: t, user: u}\n"
    )
    inputs = live.kube_inputs(live.kube_client(str(kc)))
    assert {o.kind for o in inputs.objects} == {"ClusterRole", "ClusterRoleBinding", "RoleBinding", "Pod", "Node"}
    res = run_audit(kubeconfig=str(kc))
    assert not res.errors
    got = {(f.id, f.target) for f in res.findings}
    assert ("EG-RBAC-001", "Group system:unauthenticated @ cluster") in got
    assert ("EG-RBAC-002", "Group system:authenticated @ cluster") in got
    assert ("EG-RBAC-020", "Pod team-d/worker") in got
    assert all(f.file is None or f.file.startswith("kube-api:") for f in res.findings)
