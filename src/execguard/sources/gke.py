"""Google Kubernetes Engine audit logs: Cloud Audit Logs ``LogEntry`` records of the Kubernetes API server.

An entry (``protoPayload`` of type ``google.cloud.audit.AuditLog``, ``resource.type=k8s_cluster``) is turned
back into the native audit event shape and handed to ``k8s_audit.from_audit_event``, so every rule sees the
same fields. Also accepted: the Logging API / export wrapper ``{"entries": [...]}`` (JSON arrays are split by
the reader). GKE records no exec URI query, so ``command`` stays empty unless the entry carries one
(``requestMetadata.requestAttributes`` path/query, or a ``PodExecOptions`` request body).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ..model import Event, SourceRef
from . import k8s_audit
from .base import SourceError, as_dict, as_int, as_str, as_str_list

FORMAT = "gke"

# methodName io.k8s.core.v1.pods.exec.create, resourceName core/v1/namespaces/NS/pods/POD/exec
LITERALS: dict[str, tuple[bytes, ...]] = {
    "exec": (b".exec.", b"/exec"),
    "attach": (b".attach.", b"/attach"),
    "portforward": (b".portforward.", b"/portforward"),
    "ephemeral_container": (b"ephemeralcontainers",),
    "kubelet_run": (b".proxy.", b"/proxy"),
    "kubelet_exec": (b".proxy.", b"/proxy"),
    "kubelet_attach": (b".proxy.", b"/proxy"),
    "kubelet_portforward": (b".proxy.", b"/proxy"),
    "kubelet_cri": (b".proxy.", b"/proxy"),
    "kubelet_other": (b".proxy.", b"/proxy"),
    "create": (b"command", b"args"),
    "rbac": (b"rbac.authorization.k8s.io", b".rbac."),
    "discovery": (b"secrets.list", b"pods.list", b"selfsubject"),
}

AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"
# google.rpc.Code values meaning the caller was refused, and the HTTP code the API server answered
DENIED_RPC = {7: 403, 16: 401}
_VERSION = re.compile(r"^v\d+((alpha|beta)\d+)?$")


def match(obj: dict[str, Any]) -> bool:
    if "auditID" in obj or obj.get("kind") in ("Event", "EventList"):
        return False
    entries = obj.get("entries")
    if isinstance(entries, list):
        first = entries[0] if entries else None
        return isinstance(first, dict) and _is_k8s_entry(first)
    return _is_k8s_entry(obj)


def _is_k8s_entry(obj: dict[str, Any]) -> bool:
    payload = obj.get("protoPayload")
    if not isinstance(payload, dict):
        return False
    method = payload.get("methodName")
    resource = obj.get("resource")
    return (
        (isinstance(method, str) and method.startswith("io.k8s."))
        or payload.get("serviceName") == "k8s.io"
        or (isinstance(resource, dict) and resource.get("type") == "k8s_cluster")
    )


def events(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    entries = obj.get("entries")
    if isinstance(entries, list):
        out: list[Event] = []
        errors: list[str] = []
        for item in entries:
            try:
                out.extend(_entry(as_dict(item, "entry"), ref))
            except SourceError as exc:
                errors.append(str(exc))
        if errors and not out:
            raise SourceError(f"{len(errors)} entries unreadable, first: {errors[0]}")
        yield from out
        return
    yield from _entry(obj, ref)


def _entry(obj: dict[str, Any], ref: SourceRef) -> Iterator[Event]:
    payload = obj.get("protoPayload")
    if not isinstance(payload, dict):
        raise SourceError("LogEntry without a protoPayload object")
    method = as_str(payload.get("methodName")) or ""
    if not method.startswith("io.k8s."):
        raise SourceError(f"methodName {method!r} is not a Kubernetes API call")
    resource = as_dict(obj.get("resource"), "resource")
    labels = as_dict(resource.get("labels"), "resource.labels")
    auth = as_dict(payload.get("authenticationInfo"), "authenticationInfo")
    meta = as_dict(payload.get("requestMetadata"), "requestMetadata")
    has_status = isinstance(payload.get("status"), dict)
    status = as_dict(payload.get("status"), "status")
    response = payload.get("response")
    entry_labels = as_dict(obj.get("labels"), "labels")
    request = payload.get("request")

    ref_parts = _object_ref(as_str(payload.get("resourceName")) or "", method)
    verb = method.rsplit(".", 1)[-1]
    uri = _recorded_uri(meta) or _uri(ref_parts)
    rpc = as_int(status.get("code"))
    http = as_int(response.get("code")) if isinstance(response, dict) else None
    if http is None and rpc in DENIED_RPC:
        http = DENIED_RPC[rpc]

    audit_id = as_str(as_dict(obj.get("operation"), "operation").get("id")) or as_str(obj.get("insertId"))
    native: dict[str, Any] = {
        "verb": verb,
        "requestURI": uri,
        "user": {"username": as_str(auth.get("principalEmail")) or as_str(auth.get("principalSubject"))},
        "sourceIPs": as_str_list(meta.get("callerIp") or meta.get("callerIP")),
        "userAgent": meta.get("callerSuppliedUserAgent"),
        "objectRef": {k: v for k, v in ref_parts.items() if k != "extra"},
        "annotations": entry_labels,
        "requestObject": request,
        "stageTimestamp": obj.get("timestamp") or payload.get("timestamp"),
    }
    if audit_id:
        native["auditID"] = audit_id  # operation.id is the API server's auditID
    if http is not None:
        native["responseStatus"] = {"code": http}
    cluster = as_str(labels.get("cluster_name"))
    for ev in k8s_audit.from_audit_event(native, ref, cluster=cluster):
        ev.code = http
        ev.outcome = _outcome(payload, rpc, http, as_str(entry_labels.get("authorization.k8s.io/decision")), has_status)
        yield ev


def _object_ref(resource_name: str, method: str) -> dict[str, Any]:
    """objectRef from ``GROUP/VERSION[/namespaces/NS]/RESOURCE[/NAME[/SUBRESOURCE[/...]]]``, else from methodName."""
    parts = [p for p in resource_name.split("/") if p]
    if len(parts) >= 3 and _VERSION.match(parts[1]):
        group, version, rest = parts[0], parts[1], parts[2:]
        out: dict[str, Any] = {"apiGroup": "" if group == "core" else group, "apiVersion": version}
        if rest[0] == "namespaces" and len(rest) >= 3:
            out["namespace"], rest = rest[1], rest[2:]
        out["resource"] = rest[0]
        if len(rest) > 1:
            out["name"] = rest[1]
        if len(rest) > 2:
            out["subresource"] = rest[2]
        out["extra"] = rest[3:]
        return out
    # io.k8s.GROUP.VERSION.RESOURCE[.SUBRESOURCE].VERB: the group itself may hold dots
    tokens = method.split(".")[2:-1]
    idx = next((i for i, t in enumerate(tokens) if _VERSION.match(t)), None)
    if idx is None or idx + 1 >= len(tokens):
        raise SourceError(f"cannot tell the resource of {method!r}")
    group = ".".join(tokens[:idx])
    out = {"apiGroup": "" if group == "core" else group, "apiVersion": tokens[idx], "resource": tokens[idx + 1], "extra": []}
    if idx + 2 < len(tokens):
        out["subresource"] = tokens[idx + 2]
    return out


def _uri(ref: dict[str, Any]) -> str:
    """The API path the resourceName stands for (GKE keeps no query string, so no command)."""
    group = ref.get("apiGroup")
    path = ["api" if not group else "apis"] + ([group] if group else []) + [ref["apiVersion"]]
    if ref.get("namespace"):
        path += ["namespaces", ref["namespace"]]
    path.append(ref["resource"])
    for key in ("name", "subresource"):
        if ref.get(key):
            path.append(ref[key])
    path += ref.get("extra") or []
    return "/" + "/".join(quote(str(p), safe="") for p in path)


def _recorded_uri(meta: dict[str, Any]) -> str | None:
    attrs = meta.get("requestAttributes")
    if not isinstance(attrs, dict):
        return None
    path = as_str(attrs.get("path"))
    if not path:
        return None
    query = as_str(attrs.get("query"))
    return f"{path}?{query}" if query and "?" not in path else path


def _outcome(payload: dict[str, Any], rpc: int | None, http: int | None, decision: str | None, has_status: bool) -> str:
    infos = payload.get("authorizationInfo")
    grants = [a.get("granted") for a in infos if isinstance(a, dict)] if isinstance(infos, list) else []
    if decision == "forbid" or False in grants or rpc in DENIED_RPC or http in (401, 403):
        return "denied"
    if (rpc not in (None, 0)) or (http is not None and http >= 400):
        return "error"
    if has_status or True in grants or decision == "allow" or http is not None:
        return "allowed"
    return "unknown"

