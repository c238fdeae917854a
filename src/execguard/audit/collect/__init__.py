"""Collectors: gathered inputs (offline files or a live listing, see ``gather``) -> ``Item``s of flat facts.

Collectors never reach the network; the facts each item kind may carry are declared in ``facts.py``.
"""

from __future__ import annotations

from ..engine import Item
from ..gather.inputs import Inputs
from . import apiserver, coverage, docker, kubelet, rbac, workloads
from .audit_policy import audit_policy_items


def kube_items(inputs: Inputs) -> list[Item]:
    """Kubelet, list coverage, kube-apiserver and the audit policies no API server named."""
    items = kubelet.kubelet_items(inputs) + coverage.coverage_items(inputs)
    api, used = apiserver.apiserver_items(inputs)
    items += api
    for p in inputs.of_kind("Policy"):
        if p.file not in used and str(p.data.get("apiVersion", "")).startswith("audit.k8s.io"):
            items += audit_policy_items(p)
    return items


def collect_items(inputs: Inputs) -> tuple[list[Item], list[rbac.Grant]]:
    """Every item of the offline or listed inputs, and the RBAC grants found (for the report's matrix)."""
    rbac_items, grants = rbac.collect(inputs)
    return rbac_items + kube_items(inputs) + docker.collect(inputs) + workloads.collect(inputs), grants
