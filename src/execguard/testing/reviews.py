"""AdmissionReview v1 requests in the shape kube-apiserver sends them, for tests and benchmarks.

Shapes follow the admission.k8s.io/v1 reference (kube-apiserver Admission (v1)) and what the API server
sends for `kubectl exec` (CONNECT pods/exec with a PodExecOptions object), `kubectl debug` (UPDATE of
pods/ephemeralcontainers with the whole Pod as object and oldObject) and `kubectl create deployment`.
"""

from __future__ import annotations

import copy
import http.client
import ssl
import uuid
from typing import Any

import orjson

USER = {"username": "alice@example.com", "uid": "2d1f", "groups": ["devs", "system:authenticated"]}
OPTION_KINDS = {"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions"}


def _review(request: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": str(uuid.uuid4()), **request}}


def _gvk(group: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": "v1", "kind": kind}


def _gvr(group: str, resource: str) -> dict[str, str]:
    return {"group": group, "version": "v1", "resource": resource}


def connect(
    subresource: str, command: list[str] | None = None, namespace: str = "shop", pod: str = "web-0", container: str = "app",
    user: dict[str, Any] | None = None, tty: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """CONNECT pods/exec|attach|portforward, as `kubectl exec -it web-0 -c app -- CMD` sends it."""
    kind = OPTION_KINDS[subresource]
    obj: dict[str, Any] = {"kind": kind, "apiVersion": "v1"}
    if subresource == "portforward":
        obj["ports"] = [8080]
    else:
        obj.update({"stdin": True, "stdout": True, "tty": tty, "container": container})
        if subresource == "exec":
            obj["command"] = list(command or [])
    gvr = _gvr("", "pods")
    return _review({
        "kind": _gvk("", kind), "resource": gvr, "subResource": subresource,
        "requestKind": _gvk("", kind), "requestResource": gvr, "requestSubResource": subresource,
        "name": pod, "namespace": namespace, "operation": "CONNECT", "userInfo": user or USER,
        "object": obj, "oldObject": None, "dryRun": False, "options": None,
    })  # fmt: skip


def pod(name: str = "web-0", namespace: str = "shop", containers: list[dict[str, Any]] | None = None,
        labels: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": "9e4b", "labels": labels or {"app": "web"}},
        "spec": {"containers": containers or [{"name": "app", "image": "nginx:1.27"}]},
    }  # fmt: skip


def debug(command: list[str], image: str = "busybox:1.36", target: str = "app", namespace: str = "shop") -> dict[str, Any]:
    """UPDATE pods/ephemeralcontainers, as `kubectl debug -it web-0 --image=IMAGE --target=app -- CMD` sends it."""
    old = pod(namespace=namespace)
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [{
        "name": "debugger-x7k2p", "image": image, "command": command, "stdin": True, "tty": True,
        "targetContainerName": target, "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
    }]  # fmt: skip
    gvr = _gvr("", "pods")
    return _review({
        "kind": _gvk("", "Pod"), "resource": gvr, "subResource": "ephemeralcontainers",
        "requestKind": _gvk("", "Pod"), "requestResource": gvr, "requestSubResource": "ephemeralcontainers",
        "name": "web-0", "namespace": namespace, "operation": "UPDATE", "userInfo": USER,
        "object": new, "oldObject": old, "dryRun": False,
        "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-debug"},
    })  # fmt: skip


def deployment(containers: list[dict[str, Any]], namespace: str = "shop", operation: str = "CREATE",
               labels: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """CREATE (or UPDATE) of an apps/v1 Deployment whose template runs these containers."""
    obj = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": namespace},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": labels or {"app": "api"}}, "spec": {"containers": containers}},
        },
    }  # fmt: skip
    gvr = _gvr("apps", "deployments")
    return _review({
        "kind": _gvk("apps", "Deployment"), "resource": gvr, "requestKind": _gvk("apps", "Deployment"), "requestResource": gvr,
        "name": "api", "namespace": namespace, "operation": operation, "userInfo": USER,
        "object": obj, "oldObject": None, "dryRun": False,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-create"},
    })  # fmt: skip


def other(kind: str = "ConfigMap", resource: str = "configmaps", operation: str = "CREATE") -> dict[str, Any]:
    """A request of a kind the webhook does not judge."""
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": "shop"}, "data": {"k": "v"}}
    gvr = _gvr("", resource)
    return _review({
        "kind": _gvk("", kind), "resource": gvr, "requestKind": _gvk("", kind), "requestResource": gvr,
        "name": "x", "namespace": "shop", "operation": operation, "userInfo": USER, "object": obj, "dryRun": False,
    })  # fmt: skip


def client_context(ca: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def post(conn: http.client.HTTPSConnection, body: bytes | dict[str, Any], path: str = "/validate") -> tuple[int, bytes]:
    """One POST on a kept-alive connection, as the API server sends reviews; (status, body)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json", "Accept": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read()
