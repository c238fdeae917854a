"""An AdmissionRequest (admission.k8s.io/v1) turned into the Events the rules judge.

The request is rewritten as the audit event the API server would log for the same call and handed
to the Kubernetes audit source, so pod-spec command extraction (entrypoints, lifecycle hooks, exec
probes, workload templates) and PodExecOptions handling live in one place: sources/k8s_audit.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .. import k8s
from ..model import Event, SourceRef
from ..sources import k8s_audit
from ..sources.base import SourceError, as_dict, as_str

FORMAT = "k8s-admission"
CONNECT_SUBRESOURCES = ("exec", "attach", "portforward")
# operation -> the audit verb of the same call (CONNECT is a POST, or a websocket GET, logged as create/get)
VERBS = {"CONNECT": "create", "CREATE": "create", "UPDATE": "update"}
CONTROLLER_USERS = "system:serviceaccount:kube-system:"  # with a name ending in "controller": replicaset-controller ...


class RequestError(ValueError):
    """An AdmissionReview that is not one: the webhook answers 400."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What every answer and log line names about a request, judged or not."""

    uid: str
    operation: str
    kind: str  # the object's kind: PodExecOptions, Pod, Deployment ...
    resource: str
    subresource: str
    namespace: str
    name: str
    user: str
    dry_run: bool
    controller: str = ""  # kind/name of the controlling owner when a built-in controller writes the object


    def what(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.operation} {res} {where or '-'} by {self.user or '-'}"


def parse_review(body: Any) -> dict[str, Any]:
    """The ``request`` of an AdmissionReview v1, checked for the fields an answer needs."""
    if not isinstance(body, dict):
        raise RequestError("body is not a JSON object")
    if body.get("kind") != "AdmissionReview":
        raise RequestError(f"kind is {body.get('kind')!r}, not 'AdmissionReview'")
    if body.get("apiVersion") != "admission.k8s.io/v1":
        raise RequestError(f"apiVersion is {body.get('apiVersion')!r}; only admission.k8s.io/v1 is served")
    request = body.get("request")
    if not isinstance(request, dict):
        raise RequestError("no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise RequestError("request.uid is missing")
    return request


def facts(request: dict[str, Any]) -> Facts:
    def field(obj: Any, key: str) -> str:
        return (as_str(obj.get(key)) or "") if isinstance(obj, dict) else ""

    return Facts(
        uid=field(request, "uid"),
        operation=field(request, "operation"),
        kind=field(request.get("kind"), "kind"),
        resource=field(request.get("resource"), "resource"),
        subresource=field(request, "subResource"),
        namespace=field(request, "namespace"),
        name=field(request, "name"),
        user=field(request.get("userInfo"), "username"),
        dry_run=request.get("dryRun") is True,
        controller=_controller(request),
    )


def _controller(request: dict[str, Any]) -> str:
    """The owner a built-in controller writes this object for (a ReplicaSet's pods, a Deployment's ReplicaSets).

    Its commands were judged at the owner's write, with the user who made it; judging them again would
    refuse, under the controller's name, what that user's approval or warn mode let through. Only
    kube-system's controllers count: anyone may set ownerReferences on a pod of their own.
    """
    user = request.get("userInfo")
    name = as_str(user.get("username")) if isinstance(user, dict) else None
    if not name or not ((name.startswith(CONTROLLER_USERS) and name.endswith("controller")) or name == "system:kube-controller-manager"):
        return ""
    obj = request.get("object")
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    owners = meta.get("ownerReferences") if isinstance(meta, dict) else None
    for ref in owners if isinstance(owners, list) else []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return f"{as_str(ref.get('kind')) or '?'}/{as_str(ref.get('name')) or '?'}"
    return ""


def judged(f: Facts) -> bool:
    """Whether the request is one the webhook decides on; anything else is allowed untouched."""
    if f.resource == "pods" and f.subresource in CONNECT_SUBRESOURCES:
        return f.operation == "CONNECT"
    if f.resource == "pods" and f.subresource == "ephemeralcontainers":
        return f.operation == "UPDATE"
    return f.resource in k8s.BY_RESOURCE and not f.subresource and f.operation in ("CREATE", "UPDATE") and not f.controller


def events(request: dict[str, Any], f: Facts) -> list[Event]:
    """The Events of a judged request: one per command it would run (none: nothing to judge)."""
    try:
        return _events(request, f)
    except SourceError as exc:  # a field of the wrong type: the body is not an AdmissionReview
        raise RequestError(str(exc)) from None


def _events(request: dict[str, Any], f: Facts) -> list[Event]:
    user = as_dict(request.get("userInfo"), "request.userInfo")
    group = as_str(as_dict(request.get("resource"), "request.resource").get("group")) or ""
    prefix = f"/apis/{group}/v1" if group else "/api/v1"
    # quoted: a name is never parsed as part of the query (the API server validates names; a stray caller need not)
    parts = [prefix, *(["namespaces", f.namespace] if f.namespace else []), f.resource, f.name, f.subresource]
    path = "/".join(quote(p, safe="/") if i == 0 else quote(p, safe="") for i, p in enumerate(parts) if p)
    audit: dict[str, Any] = {
        "kind": "Event",
        "auditID": f.uid,
        "verb": VERBS.get(f.operation, f.operation.lower()),
        "requestURI": path,
        "user": {k: user[k] for k in ("username", "uid", "groups", "extra") if k in user},
        "objectRef": {"resource": f.resource, "subresource": f.subresource or None, "namespace": f.namespace or None,
                      "name": f.name or None, "apiGroup": group or None},
    }  # fmt: skip
    obj = request.get("object")
    if f.subresource == "ephemeralcontainers":
        return _ephemeral(audit, obj, request.get("oldObject"))
    audit["requestObject"] = obj
    evs = list(k8s_audit.from_audit_event(audit, SourceRef(FORMAT, "admission")))
    if f.subresource:
        return evs  # exec/attach/portforward: judged with or without a command
    return [ev for ev in evs if ev.command]


def _ephemeral(audit: dict[str, Any], obj: Any, old: Any) -> list[Event]:
    """One event per ephemeral container the update adds (the old Pod has the others), as kubectl debug sends."""
    new = _ephemeral_list(obj)
    before = {c.get("name") for c in _ephemeral_list(old)}
    added = [c for c in new if c.get("name") not in before] or new[-1:]
    out: list[Event] = []
    for c in added:
        pod = dict(obj) if isinstance(obj, dict) else {}
        pod["spec"] = {"ephemeralContainers": [c]}
        out.extend(k8s_audit.from_audit_event({**audit, "requestObject": pod}, SourceRef(FORMAT, "admission")))
    return out


def _ephemeral_list(pod: Any) -> list[dict[str, Any]]:
    spec = pod.get("spec") if isinstance(pod, dict) else None
    items = spec.get("ephemeralContainers") if isinstance(spec, dict) else None
    return [c for c in items if isinstance(c, dict)] if isinstance(items, list) else []
