"""The Kubernetes objects that run the audit webhook receiver (`execguard watch manifests`, docs/deploy.md).

One replica: the spool, the state file and the alert store belong to one process. The spool is on a
PersistentVolumeClaim by default: it holds batches already acknowledged to kube-apiserver and not
yet alerted on, so it must outlive the pod (a node drain, an eviction, a rollout); an emptyDir only
outlives container restarts and is offered for clusters without storage (``spool_volume="emptyDir"``).
With a ReadWriteOnce claim the rollout strategy is Recreate: two pods cannot hold the claim at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..guard.manifests import Options as GuardOptions
from ..guard.manifests import b64, container_security, pod_security

NAME = "execguard-watch"
PORT = 8443
DATA = "/var/lib/execguard"
SPOOL_VOLUMES = ("pvc", "emptyDir")


@dataclass(slots=True)
class Options:
    namespace: str = "execguard"
    image: str = GuardOptions().image
    apiserver_cidrs: list[str] = field(default_factory=list)  # the only sources the NetworkPolicy lets in
    spool_volume: str = "pvc"
    spool_size: str = "4Gi"  # the claim; --spool-max-mb is set to 3/4 of it, leaving room for the store and state
    storage_class: str | None = None
    cert_pem: bytes = b""
    key_pem: bytes = b""
    token: str = ""
    policy_text: str | None = None


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "execguard"}


def _meta(o: Options, name: str = NAME) -> dict[str, Any]:
    return {"name": name, "namespace": o.namespace, "labels": _labels()}


def _mebibytes(size: str) -> int:
    units = {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    for unit, factor in units.items():
        if size.endswith(unit) and size[: -len(unit)].isdigit():
            return int(size[: -len(unit)]) * factor
    raise ValueError(f"spool size {size!r}: give a whole number of Mi, Gi or Ti")


def service_account(o: Options) -> dict[str, Any]:
    # the receiver never calls the API server: an identity of its own, with no token mounted
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(o), "automountServiceAccountToken": False}


def secret(o: Options) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(o, f"{NAME}-tls"),
        "data": {"tls.crt": b64(o.cert_pem), "tls.key": b64(o.key_pem), "token": b64(o.token.encode())},
    }


def policy_config_map(o: Options) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(o, f"{NAME}-policy"), "data": {"policy.yml": o.policy_text or ""}}


def claim(o: Options) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": o.spool_size}}}
    if o.storage_class:
        spec["storageClassName"] = o.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _meta(o, f"{NAME}-spool"), "spec": spec}


def args(o: Options) -> list[str]:
    """The container's arguments: what `execguard watch` runs with in the pod (tests run them for real)."""
    spool_mb = _mebibytes(o.spool_size) * 3 // 4
    out = ["watch", "--audit-webhook", f"0.0.0.0:{PORT}", "--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key",
           "--token-file", "/tls/token", "--spool", f"{DATA}/spool", "--spool-max-mb", str(spool_mb),
           "--store", f"{DATA}/alerts.db", "-o", "jsonl"]  # fmt: skip
    if o.policy_text is not None:
        out += ["--policy", "/policy/policy.yml"]
    return out


def deployment(o: Options) -> dict[str, Any]:
    mounts = [
        {"name": "tls", "mountPath": "/tls", "readOnly": True},
        {"name": "data", "mountPath": DATA},
        {"name": "tmp", "mountPath": "/tmp"},  # multiprocessing's shared memory for the receiver process
    ]
    data: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": f"{NAME}-spool"}} if o.spool_volume == "pvc" else {"emptyDir": {"sizeLimit": o.spool_size}}
    )
    volumes: list[dict[str, Any]] = [
        {"name": "tls", "secret": {"secretName": f"{NAME}-tls", "defaultMode": 0o440}},
        {"name": "data", **data},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ]
    if o.policy_text is not None:
        mounts.append({"name": "policy", "mountPath": "/policy", "readOnly": True})
        volumes.append({"name": "policy", "configMap": {"name": f"{NAME}-policy"}})

    def probe(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": PORT, "scheme": "HTTPS"}, "periodSeconds": 10, "timeoutSeconds": 2}

    container = {
        "name": "watch",
        "image": o.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["execguard"],
        "args": args(o),
        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
        # /readyz is 503 while the spool refuses batches (429) or watch drains: the Service stops sending
        "readinessProbe": {**probe("/readyz"), "initialDelaySeconds": 2},
        "livenessProbe": {**probe("/healthz"), "initialDelaySeconds": 10, "failureThreshold": 3},
        # two processes: the receiver (HTTPS, fsync) and the engine; the engine may use a core at full load
        "resources": {"requests": {"cpu": "250m", "memory": "192Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}},
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(o),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # the spool claim is ReadWriteOnce; SIGTERM drains it first
            "selector": {"matchLabels": _labels()},
            "template": {
                "metadata": {"labels": _labels()},
                "spec": {
                    "serviceAccountName": NAME,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 45,  # watch drains for up to 30 s after SIGTERM
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def service(o: Options) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(o),
        "spec": {"selector": _labels(), "ports": [{"name": "https", "port": 443, "targetPort": PORT, "protocol": "TCP"}]},
    }


def network_policy(o: Options) -> dict[str, Any]:
    # ingress only from the API servers' addresses; no cidr given = no ingress at all until one is
    sources = [{"ipBlock": {"cidr": cidr}} for cidr in o.apiserver_cidrs]
    ingress = [{"from": sources, "ports": [{"protocol": "TCP", "port": PORT}]}] if sources else []
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(o),
        "spec": {"podSelector": {"matchLabels": _labels()}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def receiver_manifests(o: Options) -> list[dict[str, Any]]:
    if o.spool_volume not in SPOOL_VOLUMES:
        raise ValueError(f"spool volume {o.spool_volume!r}: choose {' or '.join(SPOOL_VOLUMES)}")
    _mebibytes(o.spool_size)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": o.namespace, "labels": {"app.kubernetes.io/part-of": "execguard"}}}
    out = [ns, service_account(o), secret(o)]
    if o.policy_text is not None:
        out.append(policy_config_map(o))
    if o.spool_volume == "pvc":
        out.append(claim(o))
    return [*out, deployment(o), service(o), network_policy(o)]
