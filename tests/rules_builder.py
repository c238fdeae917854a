"""Build realistic audit.k8s.io/v1 Event records for rule tests, and run them through the real reader + engine.

The shapes follow what kube-apiserver writes (see tests/data/falco/*.json): exec commands live only in the
requestURI as repeated, URL-encoded ``command=`` parameters, websocket exec is verb ``get``, SPDY is
``create``, the upgrade is logged at stage ResponseStarted with code 101, a denial has code 403 and the
``authorization.k8s.io/decision: forbid`` annotation.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.engine.rule import Rule
from execguard.model import Alert
from execguard.pipeline.prefilter import literals_for
from execguard.sources.reader import Reader

KUBECTL_UA = "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"
HUMAN = "alice@example.com"
_ids = itertools.count(1)
_RULES: list[Rule] | None = None


def builtin_rules() -> list[Rule]:
    global _RULES
    if _RULES is None:
        _RULES = load_rules()
    return _RULES


def _audit_id() -> str:
    return f"00000000-0000-4000-8000-{next(_ids):012d}"


def encode_query(params: list[tuple[str, str]], space: str = "+") -> str:
    """Encode like a client would: ``+`` (form style, client-go) or ``%20`` (websocket clients) for spaces."""
    if space == "+":
        return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in params)
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


def base_event(
    verb: str,
    uri: str,
    object_ref: dict[str, Any],
    *,
    user: str = HUMAN,
    groups: Iterable[str] = ("system:authenticated",),
    user_agent: str = KUBECTL_UA,
    source_ip: str = "10.0.0.5",
    stage: str = "ResponseStarted",
    code: int = 101,
    audit_id: str | None = None,
    credential_pod: str | None = None,
    time: str = "2026-03-01T10:00:00.000000Z",
) -> dict[str, Any]:
    user_info: dict[str, Any] = {"username": user, "groups": list(groups)}
    if credential_pod:
        user_info["extra"] = {
            "authentication.kubernetes.io/pod-name": [credential_pod],
            "authentication.kubernetes.io/pod-uid": ["5f0e5d1c-1111-4222-8333-444455556666"],
        }
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id or _audit_id(),
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": user_info,
        "sourceIPs": [source_ip],
        "userAgent": user_agent,
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": time,
        "stageTimestamp": time,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    return ev


def deny(ev: dict[str, Any]) -> dict[str, Any]:
    """Turn an event into the 403 the API server logs when RBAC refuses it."""
    ev = json.loads(json.dumps(ev))
    ev["stage"] = "ResponseComplete"
    ev["responseStatus"] = {
        "metadata": {},
        "status": "Failure",
        "message": "forbidden",
        "reason": "Forbidden",
        "code": 403,
    }
    ev["annotations"] = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
    return ev


def exec_event(
    namespace: str,
    pod: str,
    argv: list[str],
    *,
    container: str | None = "app",
    subresource: str = "exec",
    verb: str = "create",
    tty: bool = False,
    stdin: bool = False,
    space: str = "+",
    **kw: Any,
) -> dict[str, Any]:
    params = [("command", a) for a in argv]
    if container:
        params.append(("container", container))
    if stdin:
        params.append(("stdin", "true"))
    params.append(("stdout", "true"))
    params.append(("stderr", "true"))
    if tty:
        params.append(("tty", "true"))
    uri = f"/api/v1/namespaces/{namespace}/pods/{pod}/{subresource}?{encode_query(params, space)}"
    ref = {"resource": "pods", "namespace": namespace, "name": pod, "apiVersion": "v1", "subresource": subresource}
    return base_event(verb, uri, ref, **kw)


def attach_event(namespace: str, pod: str, *, stdin: bool = True, tty: bool = False, **kw: Any) -> dict[str, Any]:
    return exec_event(namespace, pod, [], subresource="attach", stdin=stdin, tty=tty, **kw)


def portforward_event(namespace: str, pod: str, port: int = 5432, **kw: Any) -> dict[str, Any]:
    uri = f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward?ports={port}"
    ref = {"resource": "pods", "namespace": namespace, "name": pod, "apiVersion": "v1", "subresource": "portforward"}
    return base_event("create", uri, ref, **kw)


def kubelet_event(node: str, path: str, params: list[tuple[str, str]] | None = None, *, verb: str = "create", **kw: Any) -> dict[str, Any]:
    """nodes/proxy call: path is what follows /proxy/, e.g. ``run/default/web/app``."""
    query = f"?{encode_query(params)}" if params else ""
    uri = f"/api/v1/nodes/{node}/proxy/{path}{query}"
    ref = {"resource": "nodes", "name": node, "apiVersion": "v1", "subresource": "proxy"}
    kw.setdefault("code", 200)
    kw.setdefault("stage", "ResponseComplete")
    return base_event(verb, uri, ref, **kw)


def ephemeral_event(
    namespace: str,
    pod: str,
    image: str,
    argv: list[str] | None = None,
    *,
    name: str = "debugger-x7k2p",
    target_container: str | None = "app",
    verb: str = "patch",
    **kw: Any,
) -> dict[str, Any]:
    uri = f"/api/v1/namespaces/{namespace}/pods/{pod}/ephemeralcontainers"
    ref = {"resource": "pods", "namespace": namespace, "name": pod, "apiVersion": "v1", "subresource": "ephemeralcontainers"}
    kw.setdefault("code", 200)
    kw.setdefault("stage", "ResponseComplete")
    ev = base_event(verb, uri, ref, **kw)
    container: dict[str, Any] = {"name": name, "image": image, "stdin": True, "tty": True}
    if argv:
        container["command"] = argv
    if target_container:
        container["targetContainerName"] = target_container
    ev["level"] = "Request"
    ev["requestObject"] = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": pod, "namespace": namespace},
                           "spec": {"ephemeralContainers": [container]}}
    return ev


def workload_event(
    resource: str,
    namespace: str,
    name: str,
    containers: list[dict[str, Any]],
    *,
    verb: str = "create",
    **kw: Any,
) -> dict[str, Any]:
    """Pod or controller create with its spec in requestObject (audit level Request)."""
    group = "api/v1" if resource == "pods" else "apis/apps/v1" if resource in ("deployments", "daemonsets") else "apis/batch/v1"
    uri = f"/{group}/namespaces/{namespace}/{resource}"
    ref = {"resource": resource, "namespace": namespace, "apiVersion": "v1"}
    if resource == "pods":
        ref["name"] = name
    kw.setdefault("code", 201)
    kw.setdefault("stage", "ResponseComplete")
    ev = base_event(verb, uri, ref, **kw)
    spec = {"containers": containers}
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": namespace}}
    if resource == "pods":
        body["spec"] = spec
    elif resource == "cronjobs":
        body["spec"] = {"jobTemplate": {"spec": {"template": {"spec": spec}}}}
    else:
        body["spec"] = {"template": {"spec": spec}}
    ev["level"] = "Request"
    ev["requestObject"] = body
    return ev


def write_jsonl(path: Path, events: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def hunt(paths: Iterable[Path | str], rules: list[Rule] | None = None, min_severity: str = "info") -> list[Alert]:
    """What `execguard hunt` does: reader with the rule set's literal prefilter, then the engine."""
    engine = Engine(rules if rules is not None else builtin_rules(), min_severity=min_severity)
    reader = Reader(literals=literals_for(engine.actions()))
    return list(engine.run(reader.read([str(p) for p in paths])))


def hunt_events(tmp_path: Path, events: Iterable[dict[str, Any]], name: str = "audit.log") -> list[Alert]:
    return hunt([write_jsonl(tmp_path / name, events)])


def rule_ids(alert: Alert) -> set[str]:
    return {m.rule_id for m in alert.matches}


def probed(argv: list[str], hook: str = "livenessProbe") -> dict[str, Any]:
    """A container without a command override whose probe or lifecycle hook execs argv."""
    c = {"name": "main", "image": "postgres:16"}
    if hook.startswith("lifecycle."):
        c["lifecycle"] = {hook.split(".", 1)[1]: {"exec": {"command": argv}}}
    else:
        c[hook] = {"exec": {"command": argv}, "periodSeconds": 10}
    return c


def rbac_event(
    resource: str,
    name: str,
    body: dict[str, Any] | list[dict[str, Any]] | None,
    *,
    namespace: str | None = None,
    verb: str = "create",
    **kw: Any,
) -> dict[str, Any]:
    """A Role/ClusterRole/RoleBinding/ClusterRoleBinding write at Request level (the body in requestObject)."""
    where = f"/namespaces/{namespace}" if namespace else ""
    uri = f"/apis/rbac.authorization.k8s.io/v1{where}/{resource}" + (f"/{name}" if verb != "create" else "")
    ref: dict[str, Any] = {"resource": resource, "name": name, "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"}
    if namespace:
        ref["namespace"] = namespace
    kw.setdefault("code", 201 if verb == "create" else 200)
    kw.setdefault("stage", "ResponseComplete")
    ev = base_event(verb, uri, ref, **kw)
    ev["level"] = "Request"
    if body is not None:
        ev["requestObject"] = body
    return ev


def role_body(kind: str, name: str, rules: list[dict[str, Any]], *, namespace: str | None = None,
              labels: dict[str, str] | None = None, selectors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    body: dict[str, Any] = {"kind": kind, "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta, "rules": rules}
    if selectors is not None:
        body["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return body


def binding_body(kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, Any]], *,
                 namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": subjects}
