"""RBAC writes in Kubernetes audit events: what a Role, ClusterRole or binding created or changed grants.

Stateless: the capabilities come from the rules the request carries, a built-in role named by a binding, or
the built-in admin/edit/view roles a ClusterRole aggregates into by its labels. Roles named by a binding and
not in this record are resolved later, in stream order, by the engine (engine/grants.py).

What a record carries: create/update bodies are whole objects (``requestObject``, or ``responseObject`` at
RequestResponse level, preferred: it is the object as stored). A patch body is the patch only: a merge or
strategic merge patch is a partial object (its ``rules``/``subjects``/labels are read as they are); a JSON
patch is a list of ops, and the values of ``add``/``replace`` ops on ``/rules``, ``/subjects`` and
``/metadata/labels`` are read. Rules a patch removes, and rules it leaves untouched, are not seen.
"""

from __future__ import annotations

from typing import Any

from ..model import RbacChange
from ..rbac import AGGREGATE_LABELS, RBAC_GROUP, WELL_KNOWN, exec_capabilities, principal, subject_class, subject_label

KINDS = {"roles": "Role", "clusterroles": "ClusterRole", "rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding"}
MAX_ITEMS = 256  # rules or subjects read from one record: a bigger list is cut, not a reason to stall


def is_rbac_write(resource: str | None, group: str | None, verb: str | None, subresource: str | None) -> bool:
    return resource in KINDS and group == RBAC_GROUP and verb in ("create", "update", "patch") and not subresource


def _dicts(v: Any) -> list[dict[str, Any]]:
    return [x for x in v[:MAX_ITEMS] if isinstance(x, dict)] if isinstance(v, list) else []


def _labels(v: Any) -> dict[str, str]:
    return {str(k): str(x) for k, x in v.items()} if isinstance(v, dict) else {}


def _from_ops(ops: list[Any]) -> dict[str, Any]:
    """The parts of a JSON patch a grant can be read from, as a partial object."""
    out: dict[str, Any] = {}
    for op in ops[:MAX_ITEMS]:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
            continue
        steps = str(op.get("path", "")).split("/")[1:]
        value = op.get("value")
        if steps[:1] in (["rules"], ["subjects"]):
            key = steps[0]
            out.setdefault(key, []).extend(value if len(steps) == 1 and isinstance(value, list) else [value])
        elif steps[:1] == ["roleRef"] and isinstance(value, dict):
            out["roleRef"] = value
        elif steps[:2] == ["metadata", "labels"]:
            labels = out.setdefault("metadata", {}).setdefault("labels", {})
            if len(steps) == 2 and isinstance(value, dict):
                labels.update(value)
            elif len(steps) == 3:
                labels[steps[2].replace("~1", "/").replace("~0", "~")] = value
    return out


def body_of(obj: dict[str, Any], kind: str) -> tuple[dict[str, Any], bool]:
    """The object the record shows, and whether it is whole (not a patch)."""
    response = obj.get("responseObject")
    if isinstance(response, dict) and response.get("kind") == kind:
        return response, True
    request = obj.get("requestObject")
    if isinstance(request, list):
        return _from_ops(request), False
    if isinstance(request, dict):
        return request, obj.get("verb") != "patch"
    return {}, False


def change(obj: dict[str, Any], resource: str, namespace: str | None, name: str | None) -> RbacChange:
    kind = KINDS[resource]
    body, whole = body_of(obj, kind)
    meta: dict[str, Any] = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
    ch = RbacChange(kind=kind, name=name or _str(meta.get("name")), namespace=namespace or _str(meta.get("namespace")))
    ch.labels = _labels(meta.get("labels"))
    if kind in ("Role", "ClusterRole"):
        rules = body.get("rules")
        ch.rules = _dicts(rules) if isinstance(rules, list) else ([] if whole else None)
        agg = body.get("aggregationRule")
        if isinstance(agg, dict):
            ch.selectors = _dicts(agg.get("clusterRoleSelectors"))
        if ch.rules:
            ch.capabilities = exec_capabilities(ch.rules, cluster=kind == "ClusterRole")
        if ch.capabilities:
            into = sorted(AGGREGATE_LABELS[k] for k, v in ch.labels.items() if k in AGGREGATE_LABELS and v == "true")
            ch.known = "its rules" + (f", aggregated into ClusterRole {', '.join(into)}" if kind == "ClusterRole" and into else "")
        return ch
    ref = body.get("roleRef")
    if isinstance(ref, dict) and ref.get("name"):
        ch.role_ref = f"{_str(ref.get('kind')) or 'ClusterRole'}/{ref.get('name')}"
    for s in _dicts(body.get("subjects")):
        skind, sname = _str(s.get("kind")) or "", _str(s.get("name")) or ""
        sns = (_str(s.get("namespace")) or ch.namespace) if skind == "ServiceAccount" else None
        ch.subjects.append(subject_label(skind, sname, sns))
        ch.principals.append(principal(skind, sname, sns))
        cls = subject_class(skind, sname, sns)
        if cls not in ch.subject_classes:
            ch.subject_classes.append(cls)
    role_kind, _, role_name = (ch.role_ref or "").partition("/")
    if role_kind == "ClusterRole" and role_name in WELL_KNOWN:
        ch.capabilities = exec_capabilities(WELL_KNOWN[role_name], cluster=kind == "ClusterRoleBinding")
        if ch.capabilities:
            ch.known = f"built-in ClusterRole {role_name}"
    return ch


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None
