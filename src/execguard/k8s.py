"""Kubernetes workload kinds and where each keeps its pod spec: written once, read by audit and sources."""

from __future__ import annotations

from typing import Any

TEMPLATE = ("spec", "template", "spec")

# kind -> (API resource, path to the pod spec); the workloads that run pods, Pod first.
WORKLOADS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Pod": ("pods", ("spec",)),
    "Deployment": ("deployments", TEMPLATE),
    "DaemonSet": ("daemonsets", TEMPLATE),
    "StatefulSet": ("statefulsets", TEMPLATE),
    "ReplicaSet": ("replicasets", TEMPLATE),
    "ReplicationController": ("replicationcontrollers", TEMPLATE),
    "Job": ("jobs", TEMPLATE),
    "CronJob": ("cronjobs", ("spec", "jobTemplate", "spec", "template", "spec")),
}
WORKLOAD_KINDS = tuple(WORKLOADS)
# PodTemplate holds a pod spec but runs nothing: a write of one is still a way to plant a command.
POD_TEMPLATE = ("podtemplates", ("template", "spec"))

# API resource -> (kind, path to the pod spec), PodTemplate included.
BY_RESOURCE: dict[str, tuple[str, tuple[str, ...]]] = {
    **{resource: (kind, path) for kind, (resource, path) in WORKLOADS.items()},
    POD_TEMPLATE[0]: ("PodTemplate", POD_TEMPLATE[1]),
}


def pod_spec_path(kind: str) -> tuple[str, ...]:
    """Where a workload of this kind keeps its pod spec (a controller's template for kinds not listed)."""
    return WORKLOADS.get(kind, ("", TEMPLATE))[1]


def dig(d: Any, *path: str) -> Any:
    """The value at ``path`` of nested mappings; None where a step is missing or not a mapping."""
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d
