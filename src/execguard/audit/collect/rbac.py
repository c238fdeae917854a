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

from ...k8s import WORKLOAD_KINDS, pod_spec_path
from ...rbac import (  # noqa: F401 - the matching core lives in execguard.rbac; audit modules import it from here too
    CAPABILITIES,
    EXEC_FAMILY,
    RBAC_GROUP,
    Want,
    allows,
    capabilities,
    group_matches,
    name_matches,
    resource_matches,
    selector_matches,
    strs,
    subject_class,
    subject_label,
    verb_matches,
)
from ..engine import Item
from ..gather.inputs import Inputs, Obj, mapping, sequence
from .owners import items_without_template_copies
from .version import exec_needs_create


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
            memo[mkey] = capabilities(rules, cluster)
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
    if o.kind == "Pod":
        return mapping(o.data.get("spec"))
    *outer, last = pod_spec_path(o.kind)
    spec: dict[str, Any] = o.data
    for key in outer:
        spec = mapping(spec.get(key))
    tpl = spec.get(last)
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
