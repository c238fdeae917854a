"""Roles and bindings seen earlier in a hunt, so a binding whose role is not in its own record is still judged.

Runs in stream order in the engine's stateful half (``Engine.decide``), so ``-j N`` gives what a serial hunt
gives. Only requests that succeeded are remembered: a denied or failed write granted nothing. Bounded: the
least recently written entries are dropped past ``MAX_ENTRIES`` per table.

Aggregation: a ClusterRole with an ``aggregationRule`` gets the exec capabilities of every ClusterRole seen
so far whose labels match one of its selectors; a ClusterRole whose labels match an aggregating role seen
earlier adds its capabilities to that role (the built-in admin/edit/view are handled by the source, from
the labels alone).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..model import Event, RbacChange
from ..rbac import EXEC_FAMILY, WELL_KNOWN, exec_capabilities, selector_matches

MAX_ENTRIES = 20_000
CLUSTER_ONLY = ("nodes/proxy",)  # a RoleBinding never grants cluster-scoped resources


@dataclass
class Role:
    capabilities: list[str]
    labels: dict[str, str]
    where: str
    selectors: list[dict[str, Any]] = field(default_factory=list)


def _key(kind: str, namespace: str | None, name: str | None) -> tuple[str, str, str]:
    return kind, namespace or "" if kind in ("Role", "RoleBinding") else "", name or ""


def _where(event: Event) -> str:
    return event.raw or event.source.file or "an earlier record"


class GrantMemory:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.roles: OrderedDict[tuple[str, str, str], Role] = OrderedDict()
        self.bindings: OrderedDict[tuple[str, str, str], str] = OrderedDict()  # binding -> "Kind/name" of its role

    def _put(self, table: OrderedDict[tuple[str, str, str], Any], key: tuple[str, str, str], value: object) -> None:
        table[key] = value
        table.move_to_end(key)
        if len(table) > self.max_entries:
            table.popitem(last=False)

    def resolve(self, event: Event) -> bool:
        """Complete ``event.rbac`` from memory and remember it; True when its capabilities changed."""
        ch = event.rbac
        if ch is None or event.outcome in ("denied", "error") or event.stage == "RequestReceived":
            return False  # not a grant: nothing to remember, nothing to add
        before = (list(ch.capabilities), ch.known, ch.role_ref)
        if ch.kind in ("Role", "ClusterRole"):
            self._role(ch, _where(event))
        else:
            self._binding(ch)
        return (ch.capabilities, ch.known, ch.role_ref) != before

    def _role(self, ch: RbacChange, where: str) -> None:
        key = _key(ch.kind, ch.namespace, ch.name)
        old = self.roles.get(key)
        caps = list(ch.capabilities)
        if ch.rules is None and old is not None:
            caps = list(old.capabilities)  # a patch that does not touch the rules keeps them
        labels = {**(old.labels if old and ch.rules is None else {}), **ch.labels}
        notes: list[str] = []
        if ch.kind == "ClusterRole" and ch.selectors:
            found = sorted(
                name for (kind, _, name), r in self.roles.items()
                if kind == "ClusterRole" and name != ch.name and r.capabilities and any(selector_matches(s, r.labels) for s in ch.selectors)
            )
            for name in found:
                caps += [c for c in self.roles[("ClusterRole", "", name)].capabilities if c not in caps]
            if found:
                notes.append(f"aggregates ClusterRole {', '.join(found)} seen earlier")
        if ch.kind == "ClusterRole" and caps:
            into = sorted(
                name for (kind, _, name), r in self.roles.items()
                if kind == "ClusterRole" and name != ch.name and r.selectors and any(selector_matches(s, labels) for s in r.selectors)
            )
            for name in into:
                agg = self.roles[("ClusterRole", "", name)]
                agg.capabilities += [c for c in caps if c not in agg.capabilities]
            if into:
                notes.append(f"aggregated into ClusterRole {', '.join(into)} seen earlier")
        ch.capabilities = [c for c in EXEC_FAMILY if c in caps]
        if notes:
            ch.known = "; ".join(filter(None, [ch.known, *notes]))
        elif ch.capabilities and not ch.known:
            ch.known = f"its rules as seen at {old.where}" if old else "its rules"
        kept = old is not None and ch.rules is None
        selectors = ch.selectors or (old.selectors if old else [])
        self._put(self.roles, key, Role(ch.capabilities, labels, old.where if old and kept else where, selectors))

    def _binding(self, ch: RbacChange) -> None:
        key = _key(ch.kind, ch.namespace, ch.name)
        if ch.role_ref is None:
            ch.role_ref = self.bindings.get(key)  # roleRef cannot change: a patch of subjects keeps the role
        if ch.role_ref is None:
            ch.known = ch.known or "its role is not in the log"
            return
        self._put(self.bindings, key, ch.role_ref)
        if ch.capabilities:
            return  # a built-in role, known by name
        kind, _, name = ch.role_ref.partition("/")
        if kind == "ClusterRole" and name in WELL_KNOWN:
            ch.capabilities = exec_capabilities(WELL_KNOWN[name], cluster=ch.kind == "ClusterRoleBinding")
            ch.known = f"built-in ClusterRole {name}, the binding's role as seen earlier"
            return
        role = self.roles.get(_key(kind, ch.namespace, name))
        if role is None:
            ch.known = f"{ch.role_ref} is not in the log (neither built in nor seen earlier)"
            return
        caps = role.capabilities if ch.kind == "ClusterRoleBinding" else [c for c in role.capabilities if c not in CLUSTER_ONLY]
        ch.capabilities = list(caps)
        if caps:
            ch.known = f"{ch.role_ref} seen at {role.where}"
