"""Positive and negative cases for the RBAC grant rules (issue 9 item 5); test_rules.py runs them with its own.

Each case is one record hunted alone, so only what a record shows by itself is judged here: rules in the
request, built-in roles by name, the built-in aggregation labels. Roles remembered across records are tested
in test_chains.py.
"""

from __future__ import annotations

from typing import Any

from rules_builder import binding_body, deny, rbac_event, role_body

EXEC = {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}
WS_EXEC = {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}
ATTACH = {"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["get", "create"]}
DEBUG = {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]}
PROXY = {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}
STAR_RES = {"apiGroups": [""], "resources": ["*"], "verbs": ["create"]}
STAR_VERB = {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["*"]}
SUB_STAR = {"apiGroups": ["*"], "resources": ["*/exec"], "verbs": ["get"]}
READ_PODS = {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}
POD_STAR = {"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]}  # matches only a subresource named "*"
WRONG_GROUP = {"apiGroups": ["apps"], "resources": ["pods/exec"], "verbs": ["create"]}
EXEC_LIST = {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["list", "watch"]}


def role(rules: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return rbac_event("roles", "r", role_body("Role", "r", rules, namespace="shop"), namespace="shop", **kw)


def crole(rules: list[dict[str, Any]], labels: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    return rbac_event("clusterroles", "c", role_body("ClusterRole", "c", rules, labels=labels), **kw)


def crb(role_name: str, subjects: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return rbac_event("clusterrolebindings", "b", binding_body("ClusterRoleBinding", "b", "ClusterRole", role_name, subjects), **kw)


def rb(role_kind: str, role_name: str, subjects: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    body = binding_body("RoleBinding", "b", role_kind, role_name, subjects, namespace="shop")
    return rbac_event("rolebindings", "b", body, namespace="shop", **kw)


ALICE = [{"kind": "User", "name": "alice@example.com", "apiGroup": "rbac.authorization.k8s.io"}]
SA = [{"kind": "ServiceAccount", "name": "ci", "namespace": "shop"}]
DEFAULT_SA = [{"kind": "ServiceAccount", "name": "default", "namespace": "shop"}]
ANON = [{"kind": "User", "name": "system:anonymous"}]
UNAUTH = [{"kind": "Group", "name": "system:unauthenticated"}]
AUTHED = [{"kind": "Group", "name": "system:authenticated"}]
ALL_SA = [{"kind": "Group", "name": "system:serviceaccounts"}]
NS_SA = [{"kind": "Group", "name": "system:serviceaccounts:shop"}]
AGG_EDIT = {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}


def patch(resource: str, body: Any, **kw: Any) -> dict[str, Any]:
    ns = None if resource.startswith("cluster") else "shop"
    return rbac_event(resource, "r" if "roles" in resource and "binding" not in resource else "b", body, namespace=ns, verb="patch", **kw)


def add_rbac_cases(cases: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> None:
    cases["k8s-rbac-exec-role"] = (
        [role([EXEC]), role([WS_EXEC]), role([ATTACH]), role([DEBUG]), crole([PROXY]), role([STAR_RES]), role([STAR_VERB]),
         crole([SUB_STAR]), crole([READ_PODS, EXEC], labels=AGG_EDIT),
         role([EXEC], verb="update"),
         # a merge patch carries the rules it sets; a JSON patch the ops that add them
         patch("roles", {"rules": [READ_PODS, EXEC]}),
         patch("clusterroles", [{"op": "add", "path": "/rules/-", "value": PROXY}])],
        [role([READ_PODS]), role([POD_STAR]), role([WRONG_GROUP]), role([EXEC_LIST]),
         role([PROXY]),  # a Role cannot grant cluster-scoped nodes/proxy
         deny(role([EXEC])), role([EXEC], code=409),  # refused or failed: nothing granted
         role([EXEC], stage="RequestReceived", code=None),
         patch("roles", {"metadata": {"labels": {"team": "shop"}}}),
         patch("clusterroles", [{"op": "remove", "path": "/rules/0"}])],
    )
    cases["k8s-rbac-exec-binding"] = (
        [crb("cluster-admin", ALICE), crb("admin", SA), rb("ClusterRole", "edit", ALICE), crb("system:kubelet-api-admin", ALICE),
         rb("ClusterRole", "system:aggregate-to-edit", SA)],
        [crb("view", ALICE), rb("ClusterRole", "my-role", ALICE),  # a role neither built in nor in this record: unknown
         rb("ClusterRole", "system:kubelet-api-admin", ALICE),  # nodes/proxy is cluster-scoped: a RoleBinding grants nothing
         deny(crb("cluster-admin", ALICE)), crb("cluster-admin", ALICE, code=422)],
    )
    cases["k8s-rbac-exec-binding-broad"] = (
        [crb("cluster-admin", ANON), crb("admin", UNAUTH), crb("edit", AUTHED), rb("ClusterRole", "admin", ALL_SA),
         rb("ClusterRole", "edit", NS_SA), rb("ClusterRole", "edit", DEFAULT_SA), crb("cluster-admin", [*ALICE, *DEFAULT_SA])],
        [crb("cluster-admin", ALICE), crb("cluster-admin", SA), crb("view", AUTHED), deny(crb("cluster-admin", ANON))],
    )
