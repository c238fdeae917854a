"""Controller ownership: the same pod template seen through its controller and the objects it created.

A dump or live listing holds a Deployment, its ReplicaSets and their Pods (CronJob → Job → Pod, DaemonSet →
Pod ...). Each repeats the template, so each would repeat the finding. An object whose controller
(``metadata.ownerReferences[]`` with ``controller: true``) is in the input keeps only the items its
controller does not already produce: a pod that differs from its template (an old ReplicaSet revision, a
mutated pod) is still reported, an identical copy is not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from ..engine import Item
from ..gather.inputs import Obj, sequence


def _uid(o: Obj) -> str:
    return str(o.meta.get("uid") or "")


def controller_ref(o: Obj) -> dict[str, Any] | None:
    for ref in sequence(o.meta.get("ownerReferences")):
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def controllers(objs: Iterable[Obj]) -> dict[int, Obj]:
    """id(object) → its controller, for objects whose controller is among ``objs``."""
    objs = list(objs)
    by_name = {(o.kind, o.namespace or "default", o.name): o for o in objs}
    out: dict[int, Obj] = {}
    for o in objs:
        ref = controller_ref(o)
        if ref is None:
            continue
        owner = by_name.get((str(ref.get("kind") or ""), o.namespace or "default", str(ref.get("name") or "")))
        # A uid on both sides must agree (a recreated controller with the same name is another object).
        if owner is not None and owner is not o and (not ref.get("uid") or not _uid(owner) or ref.get("uid") == _uid(owner)):
            out[id(o)] = owner
    return out


def _signature(item: Item) -> tuple[str, str]:
    facts = {k: v for k, v in item.facts.items() if k != "workload"}
    return item.kind, json.dumps(facts, sort_keys=True, default=str)


def items_without_template_copies(objs: Iterable[Obj], items_of: Callable[[Obj], list[Item]]) -> list[Item]:
    """``items_of`` for every object, minus the items an object's controller (in ``objs``) already yields."""
    objs = list(objs)
    owner_of = controllers(objs)
    cache: dict[int, list[Item]] = {}

    def of(o: Obj) -> list[Item]:
        if id(o) not in cache:
            cache[id(o)] = items_of(o)
        return cache[id(o)]

    out: list[Item] = []
    for o in objs:
        mine = of(o)
        owner = owner_of.get(id(o))
        if owner is not None:
            seen = {_signature(i) for i in of(owner)}
            mine = [i for i in mine if _signature(i) not in seen]
        out += mine
    return out
