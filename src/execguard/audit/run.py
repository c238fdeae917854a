"""The audit as a function: collect facts (offline dir, kubeconfig, Docker API, probes) → evaluate the catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import docker, docker_live, kube, live, probe, rbac, shapes, workloads
from .engine import Finding, Item, evaluate
from .inputs import AuditInputError, Inputs, read_dir
from .rbac import Grant


@dataclass
class AuditResult:
    findings: list[Finding] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def collect_items(inputs: Inputs) -> tuple[list[Item], list[Grant]]:
    rbac_items, grants = rbac.collect(inputs)
    return rbac_items + kube.collect(inputs) + docker.collect(inputs) + workloads.collect(inputs), grants


def run_audit(
    from_dir: str | None = None,
    kubeconfig: str | None = None,
    docker_host: str | None = None,
    probes: list[str] | None = None,
    docker_tls: docker_live.ClientTLS | None = None,
) -> AuditResult:
    """The whole audit as a function: each source adds items; one evaluation at the end.

    ``docker_tls`` (see ``docker_live.client_tls``) is used to read a TLS daemon at ``docker_host``; the
    anonymous test of a tcp:// host is made either way.
    """
    res = AuditResult()
    items: list[Item] = []
    merged = Inputs()
    if from_dir:
        try:
            offline = read_dir(from_dir)
        except AuditInputError as exc:
            res.errors.append(str(exc))
            return res
        res.warnings += offline.warnings
        res.warnings += [w for o in offline.objects + offline.docker_configs for w in shapes.problems(o)]
        merged = offline
    if kubeconfig:
        try:
            api = live.kube_inputs(live.kube_client(kubeconfig))
            merged.objects.extend(api.objects)
            res.warnings += api.warnings  # e.g. lists the account may not read
        except live.LiveError as exc:
            res.errors.append(str(exc))
    if from_dir or kubeconfig:
        found, res.grants = collect_items(merged)
        items += found
    if docker_host:
        try:
            found, read_errors = docker_live.docker_host_items(docker_host, docker_tls)
            items += found
            res.errors += read_errors
        except live.LiveError as exc:
            res.errors.append(str(exc))
    if probes:
        items += docker_live.local_socket_items()
    for spec in probes or []:
        try:
            items += probe.probe(spec)
        except live.LiveError as exc:
            res.errors.append(str(exc))
    res.findings = evaluate(items)
    return res

