"""Who can run T1609 capabilities, evaluated with Kubernetes' own RBAC matching rules.

Matching follows k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go:
  verbs      ``*`` or equal;   apiGroups ``*`` or equal ("" is core);
  resources  ``*``, equal to ``resource/subresource`` (or ``resource``), or ``*/subresource`` — and nothing
             else: ``pods/*`` matches only a subresource literally named ``*``;
  resourceNames empty, or containing the object's name (so a named rule never allows ``create``).
A RoleBinding grants its role's rules in its own namespace and never on cluster-scoped resources; a
ClusterRoleBinding grants them cluster-wide. ClusterRoles with an aggregationRule get the rules of every
ClusterRole whose labels match one of its clusterRoleSelectors (transitively, as the controller converges).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .engine import Item
from .inputs import Inputs, Obj, mapping, sequence
from .owners import items_without_template_copies
from .version import exec_needs_create

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
WORKLOAD_KINDS = ("Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job", "CronJob")


def _strs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


def verb_matches(rule: dict[str, Any], verb: str) -> bool:
    return any(v in ("*", verb) for v in _strs(rule.get("verbs")))


def group_matches(rule: dict[str, Any], group: str) -> bool:
    return any(g in ("*", group) for g in _strs(rule.get("apiGroups")))


def resource_matches(rule: dict[str, Any], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in _strs(rule.get("resources")):
        if r == "*" or r == combined:
            return True
        if subresource and len(r) == len(subresource) + 2 and r.startswith("*/") and r.endswith(subresource):
            return True
    return False


def name_matches(rule: dict[str, Any], name: str) -> bool:
    names = _strs(rule.get("resourceNames"))
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
    for k, v in mapping(selector.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for e in sequence(selector.get("matchExpressions")):
        if not isinstance(e, dict):
            return False  # a selector term that cannot be read selects nothing
        key, op, values = str(e.get("key")), e.get("operator"), _strs(e.get("values"))
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def effective_rules(inputs: Inputs) -> tuple[dict[str, list[dict[str, Any]]], dict[tuple[str, str], list[dict[str, Any]]]]:
    """ClusterRole name → rules (aggregation resolved); (namespace, Role name) → rules."""
    croles = {o.name: o for o in inputs.of_kind("ClusterRole")}
    resolved: dict[str, list[dict[str, Any]]] = {}

    def resolve(name: str, stack: frozenset[str]) -> list[dict[str, Any]]:
        if name in resolved:
            return resolved[name]
        obj = croles[name]
        rules = [r for r in sequence(obj.data.get("rules")) if isinstance(r, dict)]
        agg = mapping(obj.data.get("aggregationRule"))
        selectors = [s for s in sequence(agg.get("clusterRoleSelectors")) if isinstance(s, dict)]
        if selectors:
            for other_name, other in sorted(croles.items()):
                if other_name == name or other_name in stack:
                    continue
                labels = mapping(other.meta.get("labels"))
                if any(selector_matches(s, labels) for s in selectors):
                    for r in resolve(other_name, stack | {name}):
                        if r not in rules:
                            rules.append(r)
        if not stack:
            resolved[name] = rules
        return rules

    for n in croles:
        resolve(n, frozenset())
    roles = {
        (o.namespace or "default", o.name): [r for r in sequence(o.data.get("rules")) if isinstance(r, dict)]
        for o in inputs.of_kind("Role")
    }
    return resolved, roles


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


@dataclass
class Grant:
    subject_kind: str
    subject_name: str
    subject_namespace: str | None
    capability: str
    scope: str  # "cluster" or "namespace:NS"
    verbs: set[str] = field(default_factory=set)
    resource_names: set[str] | None = field(default_factory=set)  # None: every object
    via: list[str] = field(default_factory=list)
    file: str | None = None
    line: int | None = None

    @property
    def subject(self) -> str:
        return subject_label(self.subject_kind, self.subject_name, self.subject_namespace)

    @property
    def namespace(self) -> str | None:
        return None if self.scope == "cluster" else self.scope.split(":", 1)[1]


def _capabilities(rules: list[dict[str, Any]], cluster: bool) -> dict[str, tuple[set[str], set[str] | None]]:
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
                    rn = _strs(r.get("resourceNames"))
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


def grants(inputs: Inputs) -> list[Grant]:
    croles, roles = effective_rules(inputs)
    found: dict[tuple[str, str, str | None, str, str], Grant] = {}
    memo: dict[tuple[str, str, str | None, bool], dict[str, tuple[set[str], set[str] | None]]] = {}
    for b in inputs.of_kind("RoleBinding", "ClusterRoleBinding"):
        ref = mapping(b.data.get("roleRef"))
        cluster = b.kind == "ClusterRoleBinding"
        ns = None if cluster else (b.namespace or "default")
        if ref.get("kind") == "ClusterRole":
            rules = croles.get(str(ref.get("name")))
        elif ref.get("kind") == "Role" and not cluster:
            rules = roles.get((str(ns), str(ref.get("name"))))
        else:
            rules = None
        if rules is None:
            continue
        scope = "cluster" if cluster else f"namespace:{ns}"
        via = f"{b.kind}/{b.name if cluster else f'{ns}/{b.name}'} → {ref.get('kind')}/{ref.get('name')}"
        mkey = (str(ref.get("kind")), str(ref.get("name")), None if ref.get("kind") == "ClusterRole" else ns, cluster)
        if mkey not in memo:
            memo[mkey] = _capabilities(rules, cluster)
        caps = memo[mkey]
        for s in sequence(b.data.get("subjects")):
            if not isinstance(s, dict):
                continue
            kind, name = str(s.get("kind") or ""), str(s.get("name") or "")
            sns = (str(s.get("namespace") or "") or ns) if kind == "ServiceAccount" else None
            for cap, (verbs, names) in caps.items():
                key = (kind, name, sns, cap, scope)
                g = found.get(key) or found.setdefault(key, Grant(kind, name, sns, cap, scope, file=b.file, line=b.line))
                g.verbs |= verbs
                if names is None or g.resource_names is None:
                    g.resource_names = None
                else:
                    g.resource_names |= names
                if via not in g.via:
                    g.via.append(via)
    return sorted(found.values(), key=lambda g: (g.subject, g.capability, g.scope))


GET_ONLY_CAPS = ("pods/exec", "pods/attach")  # the API server's websocket create check covers these, not nodes/proxy


def get_only(g: Grant) -> bool:
    """pods/exec or pods/attach granted with verb get but not create: exec depends on the server version."""
    return g.capability in GET_ONLY_CAPS and not ({"create", "*"} & set(g.verbs))


def grant_items(gs: Iterable[Grant], needs_create: bool | None = None, why: str = "") -> list[Item]:
    items = []
    for g in gs:
        if get_only(g) and needs_create:
            facts: dict[str, Any] = {
                "subject": g.subject, "capability": g.capability, "scope": g.scope, "verbs": sorted(g.verbs), "via": g.via, "why": why,
            }
            items.append(Item("rbac_get_only", f"{g.subject} @ {g.scope}", facts, g.file, g.line))
            continue
        note = f"; with get only: {why}" if get_only(g) else ""
        facts = {
            "get_note": note,
            "subject": g.subject,
            "subject_kind": g.subject_kind,
            "subject_name": g.subject_name,
            "subject_namespace": g.subject_namespace,
            "subject_class": subject_class(g.subject_kind, g.subject_name, g.subject_namespace),
            "capability": g.capability,
            "scope": g.scope,
            "verbs": sorted(g.verbs),
            "resource_names": sorted(g.resource_names) if g.resource_names is not None else None,
            "objects": "only " + ", ".join(sorted(g.resource_names)) if g.resource_names else "all",
            "via": g.via,
        }
        items.append(Item("rbac_grant", f"{g.subject} @ {g.scope}", facts, g.file, g.line))
    return items


def pod_spec(o: Obj) -> dict[str, Any] | None:
    spec = mapping(o.data.get("spec"))
    if o.kind == "Pod":
        return spec
    if o.kind == "CronJob":
        spec = mapping(mapping(spec.get("jobTemplate")).get("spec"))
    tpl = mapping(spec.get("template")).get("spec")
    return tpl if isinstance(tpl, dict) else None


def applies_to_sa(g: Grant, ns: str, sa: str) -> bool:
    if g.scope != "cluster" and g.namespace is None:
        return False
    if g.subject_kind == "ServiceAccount":
        return g.subject_name == sa and g.subject_namespace == ns
    if g.subject_kind == "Group":
        return g.subject_name in ("system:authenticated", "system:serviceaccounts", f"system:serviceaccounts:{ns}")
    if g.subject_kind == "User":
        return g.subject_name == f"system:serviceaccount:{ns}:{sa}"
    return False


def workload_items(inputs: Inputs, gs: list[Grant]) -> list[Item]:
    """Workloads whose mounted service-account token can exec (or reach the kubelet) somewhere."""
    sas = {(o.namespace or "default", o.name): o.data for o in inputs.of_kind("ServiceAccount")}
    exec_grants = [g for g in gs if g.capability in EXEC_FAMILY]

    def items_of(o: Obj) -> list[Item]:
        spec = pod_spec(o)
        if spec is None:
            return []
        ns = o.namespace or "default"
        sa = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
        mount = spec.get("automountServiceAccountToken")
        if mount is None:
            mount = mapping(sas.get((ns, sa))).get("automountServiceAccountToken")
        if mount is False:
            return []
        mine = [g for g in exec_grants if applies_to_sa(g, ns, sa)]
        if not mine:
            return []
        caps = sorted({f"{g.capability} @ {g.scope}" for g in mine})
        via = sorted({v for g in mine for v in g.via})
        facts = {"workload": f"{o.kind} {ns}/{o.name}", "namespace": ns, "service_account": sa, "capabilities": caps, "via": via}
        return [Item("workload_sa", f"{o.kind} {ns}/{o.name}", facts, o.file, o.line)]

    return items_without_template_copies(inputs.of_kind(*WORKLOAD_KINDS), items_of)


def matrix(gs: list[Grant]) -> dict[str, dict[str, list[str]]]:
    """subject → capability → scopes (for the table view)."""
    out: dict[str, dict[str, list[str]]] = {}
    for g in gs:
        out.setdefault(g.subject, {}).setdefault(g.capability, []).append(g.scope)
    return out


def collect(inputs: Inputs) -> tuple[list[Item], list[Grant]]:
    """Items of every grant; a get-only exec/attach grant on a server that also checks create is its own
    (info) item and leaves the matrix and the workload checks: it cannot run a command there."""
    gs = grants(inputs)
    needs_create, why = exec_needs_create(inputs)
    effective = [g for g in gs if not (needs_create and get_only(g))]
    return grant_items(gs, needs_create, why) + workload_items(inputs, effective), effective
