"""Workloads: runtime sockets and their parent directories, privileged+hostPID, exec-probe inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from execguard.audit.cli import run_audit
from execguard.audit.workloads import runtime_socket_exposed

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
