"""Workloads: runtime sockets and their parent directories, privileged+hostPID, exec-probe inventory; a template
repeated by the objects its controller created (ownerReferences) is reported once."""

from __future__ import annotations

from pathlib import Path

import pytest

from execguard.audit.inputs import Obj
from execguard.audit.owners import items_without_template_copies
from execguard.audit.run import run_audit
from execguard.audit.workloads import runtime_socket_exposed, workload_items

DATA = Path(__file__).parent / "data" / "audit" / "workloads"


@pytest.mark.parametrize(
    ("path", "exposed"),
    [
        ("/var/run/docker.sock", True),
        ("/var/run/", True),
        ("/run", True),
        ("/", True),
        ("/run/containerd", True),
        ("/run/k3s/containerd/containerd.sock", True),
        ("/var/run/crio/crio.sock", True),
        ("/var/run/cri-dockerd.sock", True),
        ("/var/log", False),
        ("/var/lib/docker", False),
        ("/running", False),
        ("", False),
    ],
)
def test_runtime_socket_paths(path: str, exposed: bool) -> None:
    assert (runtime_socket_exposed(path) is not None) is exposed


def test_workload_findings() -> None:
    res = run_audit(from_dir=str(DATA))
    hp = {f.facts["workload"] for f in res.findings if f.id == "EG-WL-001"}
    assert hp == {"DaemonSet monitoring/log-agent", "Pod ci/ctr-sock", "Pod ci/rootfs", "CronJob ci/prune"}
    priv = {f.target for f in res.findings if f.id == "EG-WL-002"}
    assert priv == {"Pod kube-system/nsenter"}  # not privileged-only nor hostPID-only
    probes = {(f.facts["probe"], tuple(f.facts["command"])) for f in res.findings if f.id == "EG-WL-010"}
    assert probes == {
        ("livenessProbe", ("pg_isready", "-U", "postgres")),
        ("startupProbe", ("sh", "-c", "test -f /tmp/ready")),
        ("lifecycle.preStop", ("/bin/sh", "-c", "pg_ctl stop -m fast")),
    }
    assert all(f.severity == "info" for f in res.findings if f.id == "EG-WL-010")


def test_controller_copies_of_a_template_are_reported_once() -> None:
    res = run_audit(from_dir=str(DATA.parent / "owned"))
    got = {(f.id, f.target) for f in res.findings}
    assert got == {
        ("EG-WL-001", "Deployment shop/api volume host-run"),
        ("EG-WL-010", "Deployment shop/api[api] readinessProbe"),
        # a webhook added this mount to one pod after creation: it is not in the template, so it is reported
        ("EG-WL-001", "Pod shop/api-7c5d9f8b6-m9w4t volume ctr-sock"),
    }


def _obj(kind: str, name: str, uid: str, owner: dict[str, object] | None = None, path: str = "/var/run/docker.sock") -> Obj:
    meta: dict[str, object] = {"name": name, "namespace": "ns", "uid": uid}
    if owner:
        meta["ownerReferences"] = [owner]
    spec = {"containers": [{"name": "c", "image": "alpine:3.20"}], "volumes": [{"name": "s", "hostPath": {"path": path}}]}
    data = {"kind": kind, "metadata": meta, "spec": spec if kind == "Pod" else {"template": {"spec": spec}}}
    return Obj(data, "f.yaml")


@pytest.mark.parametrize(
    ("owner", "deduplicated"),
    [
        ({"kind": "ReplicaSet", "name": "rs", "uid": "u-rs", "controller": True}, True),
        ({"kind": "ReplicaSet", "name": "rs", "controller": True}, True),  # no uid in the reference: by name
        ({"kind": "ReplicaSet", "name": "rs", "uid": "u-other", "controller": True}, False),  # a recreated namesake
        ({"kind": "ReplicaSet", "name": "rs", "uid": "u-rs"}, False),  # not the controller
        ({"kind": "ReplicaSet", "name": "gone", "uid": "u-gone", "controller": True}, False),  # controller not in the input
    ],
)
def test_owner_reference_matching(owner: dict[str, object], deduplicated: bool) -> None:
    objs = [_obj("ReplicaSet", "rs", "u-rs"), _obj("Pod", "p", "u-p", owner)]
    items = items_without_template_copies(objs, workload_items)
    pod_items = [i for i in items if i.facts["workload"] == "Pod ns/p"]
    assert (not pod_items) is deduplicated
    assert next(i.target for i in items if i.kind == "workload_hostpath") == "ReplicaSet ns/rs volume s"
