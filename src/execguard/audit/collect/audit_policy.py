"""Audit-policy facts: for each T1609 request kind, the level and stages the policy records it at."""

from __future__ import annotations

from typing import Any

from ..engine import Item
from ..gather.inputs import Obj, sequence

# (resource, subresource, namespaced, verbs) a T1609 request is audited as.
AUDITED = (
    ("pods", "exec", True, ("get", "create")),
    ("pods", "attach", True, ("get", "create")),
    ("pods", "ephemeralcontainers", True, ("patch", "update")),
    ("nodes", "proxy", False, ("get", "create")),
)
STAGES_THAT_SEE_EXEC = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete"})


def _strs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


def audit_resource_match(rule: dict[str, Any], group: str, resource: str, subresource: str) -> str:
    """'all', 'some' (only named objects) or 'none' — audit policy semantics (not RBAC's):
    ``*`` all; exact ``resource/subresource``; ``*/sub``; ``resource/*`` (which also matches ``resource`` itself);
    ``pods`` alone does not match ``pods/exec``; an empty resources list in a group matches all of that group.
    """
    combined = f"{resource}/{subresource}" if subresource else resource
    best = "none"
    for gr in sequence(rule.get("resources")):
        if not isinstance(gr, dict) or str(gr.get("group") or "") != group:
            continue
        res_list = _strs(gr.get("resources"))
        if not res_list:
            return "all"
        named = bool(_strs(gr.get("resourceNames")))
        for res in res_list:
            hit = (
                res == combined
                or res == "*"
                or (bool(subresource) and res.startswith("*/") and subresource == res[2:])
                or (res.endswith("/*") and resource == res[:-2])
            )
            if hit:
                if not named:
                    return "all"
                best = "some"
    return best


def rule_applies(rule: dict[str, Any], verb: str, group: str, resource: str, subresource: str, namespaced: bool) -> tuple[str, list[str]]:
    """('all' | 'some' | 'none', conditions) for a request of this kind by anyone in any namespace."""
    conds: list[str] = []
    verbs = _strs(rule.get("verbs"))
    if verbs and verb not in verbs:
        return "none", conds
    if rule.get("users"):
        conds.append("users " + ",".join(_strs(rule["users"])))
    if rule.get("userGroups"):
        conds.append("userGroups " + ",".join(_strs(rule["userGroups"])))
    namespaces = _strs(rule.get("namespaces"))
    if namespaces or rule.get("resources"):
        if namespaces:
            if not namespaced:
                if "" not in namespaces:
                    return "none", conds
            else:
                conds.append("namespaces " + ",".join(n or '""' for n in namespaces))
        if rule.get("resources"):
            m = audit_resource_match(rule, group, resource, subresource)
            if m == "none":
                return "none", conds
            if m == "some":
                conds.append("resourceNames")
    elif rule.get("nonResourceURLs"):
        return "none", conds
    return ("some" if conds else "all"), conds


def policy_coverage(policy: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [r for r in sequence(policy.get("rules")) if isinstance(r, dict)]
    policy_omit = set(_strs(policy.get("omitStages")))
    out = []
    for resource, sub, namespaced, verbs in AUDITED:
        for verb in verbs:
            level, at, omit = "None", "no rule matches (default None)", set(policy_omit)
            exceptions: list[str] = []
            blind_for: list[str] = []
            for i, r in enumerate(rules, 1):
                how, conds = rule_applies(r, verb, "", resource, sub, namespaced)
                if how == "none":
                    continue
                lvl = str(r.get("level") or "None")
                r_omit = policy_omit | set(_strs(r.get("omitStages")))
                if how == "some":
                    exceptions.append(f"rule {i} ({'; '.join(conds)}): {lvl}")
                    if lvl == "None" or STAGES_THAT_SEE_EXEC <= r_omit:
                        blind_for.append(f"rule {i} ({'; '.join(conds)})")
                    continue
                level, at, omit = lvl, f"rule {i}", r_omit
                break
            blind = level == "None" or STAGES_THAT_SEE_EXEC <= omit
            out.append(
                {
                    "resource": f"{resource}/{sub}",
                    "verb": verb,
                    "level": level,
                    "rule": at,
                    "omit_stages": sorted(omit),
                    "blind": blind,
                    "exceptions": exceptions,
                    "blind_for": blind_for,
                    # exec/attach/proxy commands are in requestURI (Metadata); a debug container's command is in the body.
                    "command_visible": not blind and (sub != "ephemeralcontainers" or level in ("Request", "RequestResponse")),
                }
            )
    return out


def audit_policy_items(policy: Obj) -> list[Item]:
    items = []
    for cov in policy_coverage(policy.data):
        facts = {"policy": policy.file, **cov}
        target = f"audit policy {policy.file}: {cov['verb']} {cov['resource']}"
        items.append(Item("audit_coverage", target, facts, policy.file, policy.line))
    return items
