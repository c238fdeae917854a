"""Kubernetes RBAC matching, shared by ``audit`` (posture) and ``hunt`` (grants seen in audit logs).

Pure functions over PolicyRule dicts, following k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go:
  verbs      ``*`` or equal;   apiGroups ``*`` or equal ("" is core);
  resources  ``*``, equal to ``resource/subresource`` (or ``resource``), or ``*/subresource`` — and nothing
             else: ``pods/*`` matches only a subresource literally named ``*``;
  resourceNames empty, or containing the object's name (so a named rule never allows ``create``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True, slots=True)
class Want:
    group: str
    resource: str
    subresource: str
    verbs: tuple[str, ...]
    namespaced: bool


# capability → the requests any one of which gives it (data, not logic).
CAPABILITIES: dict[str, tuple[Want, ...]] = {
    "pods/exec": (Want("", "pods", "exec", ("create", "get"), True),),
    "pods/attach": (Want("", "pods", "attach", ("create", "get"), True),),
    "pods/ephemeralcontainers": (Want("", "pods", "ephemeralcontainers", ("patch", "update"), True),),
    "nodes/proxy": (Want("", "nodes", "proxy", ("get", "create"), False),),
    "create-workloads": (
        Want("", "pods", "", ("create",), True),
        Want("", "replicationcontrollers", "", ("create",), True),
        *(Want("apps", r, "", ("create",), True) for r in ("deployments", "daemonsets", "statefulsets", "replicasets")),
        *(Want("batch", r, "", ("create",), True) for r in ("jobs", "cronjobs")),
    ),
    "impersonate": (
        Want("", "users", "", ("impersonate",), False),
        Want("", "groups", "", ("impersonate",), False),
        Want("", "serviceaccounts", "", ("impersonate",), True),
    ),
    "escalate": (Want(RBAC_GROUP, "roles", "", ("escalate",), True), Want(RBAC_GROUP, "clusterroles", "", ("escalate",), False)),
    "bind": (Want(RBAC_GROUP, "roles", "", ("bind",), True), Want(RBAC_GROUP, "clusterroles", "", ("bind",), False)),
}
EXEC_FAMILY = ("pods/exec", "pods/attach", "pods/ephemeralcontainers", "nodes/proxy")

# Built-in roles that grant exec, by name, for bindings whose role is not in the log. Their rules as the
# bootstrap policy writes them (only the exec-family part matters here).
_EXEC_SUBRESOURCES = {"apiGroups": [""], "resources": ["pods/attach", "pods/exec"], "verbs": ["create", "get"]}
WELL_KNOWN: dict[str, list[dict[str, Any]]] = {
    "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    "admin": [_EXEC_SUBRESOURCES],
    "edit": [_EXEC_SUBRESOURCES],
    "system:aggregate-to-edit": [_EXEC_SUBRESOURCES],
    "system:kubelet-api-admin": [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["*"]}],
}
# labels that aggregate a ClusterRole's rules into the built-in admin, edit and view roles
AGGREGATE_LABELS = {f"{RBAC_GROUP}/aggregate-to-{name}": name for name in ("admin", "edit", "view")}


def strs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


def verb_matches(rule: dict[str, Any], verb: str) -> bool:
    return any(v in ("*", verb) for v in strs(rule.get("verbs")))


def group_matches(rule: dict[str, Any], group: str) -> bool:
    return any(g in ("*", group) for g in strs(rule.get("apiGroups")))


def resource_matches(rule: dict[str, Any], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in strs(rule.get("resources")):
        if r == "*" or r == combined:
            return True
        if subresource and len(r) == len(subresource) + 2 and r.startswith("*/") and r.endswith(subresource):
            return True
    return False


def name_matches(rule: dict[str, Any], name: str) -> bool:
    names = strs(rule.get("resourceNames"))
    return not names or name in names


def allows(rule: dict[str, Any], group: str, resource: str, subresource: str, verb: str, name: str = "") -> bool:
    """Does this PolicyRule allow the request (exactly as the RBAC authorizer decides)?"""
    return (
        verb_matches(rule, verb)
        and group_matches(rule, group)
        and resource_matches(rule, resource, subresource)
        and name_matches(rule, name)
    )


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """metav1.LabelSelector: matchLabels AND every matchExpression. An empty selector matches everything."""
    match_labels = selector.get("matchLabels")
    for k, v in (match_labels if isinstance(match_labels, dict) else {}).items():
        if labels.get(k) != v:
            return False
    exprs = selector.get("matchExpressions")
    for e in exprs if isinstance(exprs, list) else []:
        if not isinstance(e, dict):
            return False  # a selector term that cannot be read selects nothing
        key, op, values = str(e.get("key")), e.get("operator"), strs(e.get("values"))
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def capabilities(rules: list[dict[str, Any]], cluster: bool) -> dict[str, tuple[set[str], set[str] | None]]:
    """capability → (verbs granted, resourceNames or None for all) for these rules at this scope."""
    out: dict[str, tuple[set[str], set[str] | None]] = {}
    for cap, wants in CAPABILITIES.items():
        verbs: set[str] = set()
        names: set[str] | None = set()
        for w in wants:
            if not w.namespaced and not cluster:
                continue  # a RoleBinding never grants cluster-scoped resources
            for verb in w.verbs:
                for r in rules:
                    if not (verb_matches(r, verb) and group_matches(r, w.group) and resource_matches(r, w.resource, w.subresource)):
                        continue
                    rn = strs(r.get("resourceNames"))
                    if rn and verb == "create" and not w.subresource:
                        continue  # create has no name: a named rule never matches it
                    verbs.add(verb)
                    if not rn:
                        names = None
                    elif names is not None:
                        names.update(rn)
        if verbs:
            out[cap] = (verbs, names)
    return out


def exec_capabilities(rules: list[dict[str, Any]], cluster: bool = True) -> list[str]:
    """The exec-family capabilities (pods/exec, pods/attach, pods/ephemeralcontainers, nodes/proxy) these rules grant."""
    caps = capabilities([r for r in rules if isinstance(r, dict)], cluster)
    return [c for c in EXEC_FAMILY if c in caps]


def subject_class(kind: str, name: str, namespace: str | None) -> str:
    if (kind == "User" and name == "system:anonymous") or (kind == "Group" and name == "system:unauthenticated"):
        return "anonymous"
    if kind == "Group" and name == "system:authenticated":
        return "all_authenticated"
    if kind == "Group" and name == "system:serviceaccounts":
        return "all_service_accounts"
    if kind == "Group" and name.startswith("system:serviceaccounts:"):
        return "namespace_service_accounts"
    if kind == "ServiceAccount":
        return "default_service_account" if name == "default" else "service_account"
    if name.startswith("system:"):
        return "system"
    return "user" if kind == "User" else "group"


def subject_label(kind: str, name: str, namespace: str | None) -> str:
    return f"ServiceAccount {namespace}/{name}" if kind == "ServiceAccount" else f"{kind} {name}"


def principal(kind: str, name: str, namespace: str | None) -> str:
    """The name the subject authenticates as (a user name or a group name), as audit events spell it."""
    return f"system:serviceaccount:{namespace}:{name}" if kind == "ServiceAccount" else name
