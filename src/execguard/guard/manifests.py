"""The objects that install the admission webhook, and a webhook-free ValidatingAdmissionPolicy variant.

Two webhooks share one configuration because they fail differently (docs/guard-kubernetes.md):
- exec: CONNECT on pods/exec|attach|portforward and UPDATE of pods/ephemeralcontainers. failurePolicy Fail
  by default: while execguard is down nobody can exec (outside its own namespace), which is the point.
- workloads: CREATE/UPDATE of Pods and pod templates. failurePolicy Ignore by default: a webhook outage must
  not stop a cluster from rescheduling its pods; `hunt` still sees any create that slipped through.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from .. import __version__

NAME = "execguard-admission"
APPROVALS = f"{NAME}-approvals"
STATE_DIR = "/var/lib/execguard"
PORT = 8443
WORKLOAD_RULES = (
    ("", ("pods", "replicationcontrollers")),
    ("apps", ("deployments", "statefulsets", "daemonsets", "replicasets")),
    ("batch", ("jobs", "cronjobs")),
)
FAILURE_POLICIES = ("Fail", "Ignore")
VAP_ACTIONS = {"enforce": ["Deny"], "warn": ["Warn"], "audit": ["Audit"]}


@dataclass(slots=True)
class Options:
    namespace: str = "execguard"
    image: str = f"ghcr.io/execguard/execguard:{__version__}"
    exec_failure_policy: str = "Fail"
    workload_failure_policy: str = "Ignore"
    timeout: int = 5  # seconds the API server waits (1..30); p99 of a decision is far below 5 ms
    replicas: int = 2
    exempt_namespaces: list[str] = field(default_factory=list)  # besides the webhook's own
    ca_pem: bytes = b""  # the CA that signed the serving certificate (caBundle)
    cert_pem: bytes = b""
    key_pem: bytes = b""
    policy_text: str | None = None  # the policy file, shipped in a ConfigMap
    exec_groups: list[str] = field(default_factory=lambda: ["execguard:exec"])  # VAP: who may still exec
    vap_mode: str = "enforce"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def container_security() -> dict[str, Any]:
    """Non-root, read-only root file system, no privilege, no capability (also `watch manifests`)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}


b64 = _b64  # the public name, for live/manifests.py


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "execguard"}


def _exempt(o: Options) -> dict[str, Any]:
    names = list(dict.fromkeys([o.namespace, *o.exempt_namespaces]))
    return {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": names}]}


def _webhook(o: Options, name: str, rules: list[dict[str, Any]], failure: str) -> dict[str, Any]:
    return {
        "name": f"{name}.execguard.io",
        "clientConfig": {
            "service": {"namespace": o.namespace, "name": NAME, "path": f"/{name}", "port": 443},
            "caBundle": _b64(o.ca_pem),
        },
        "rules": rules,
        "failurePolicy": failure,
        "matchPolicy": "Equivalent",
        "namespaceSelector": _exempt(o),
        "sideEffects": "None",
        "timeoutSeconds": o.timeout,
        "admissionReviewVersions": ["v1"],
    }


def exec_rules() -> list[dict[str, Any]]:
    return [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CONNECT"], "resources": ["pods/exec", "pods/attach", "pods/portforward"],
         "scope": "Namespaced"},
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods/ephemeralcontainers"],
         "scope": "Namespaced"},
    ]  # fmt: skip


def webhook_configuration(o: Options) -> dict[str, Any]:
    workload_rules = [
        {"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": list(res), "scope": "Namespaced"}
        for group, res in WORKLOAD_RULES
    ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": NAME, "labels": _labels()},
        "webhooks": [
            _webhook(o, "exec", exec_rules(), o.exec_failure_policy),
            _webhook(o, "workloads", workload_rules, o.workload_failure_policy),
        ],
    }


def service(o: Options) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": o.namespace, "labels": _labels()},
        "spec": {"selector": _labels(), "ports": [{"name": "https", "port": 443, "targetPort": PORT, "protocol": "TCP"}]},
    }


def secret(o: Options) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": f"{NAME}-tls", "namespace": o.namespace, "labels": _labels()},
        "data": {"tls.crt": _b64(o.cert_pem), "tls.key": _b64(o.key_pem)},
    }


def policy_config_map(o: Options) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{NAME}-policy", "namespace": o.namespace, "labels": _labels()},
        "data": {"policy.yml": o.policy_text or ""},
    }


def deployment(o: Options) -> dict[str, Any]:
    # decisions go to stdout (kubectl logs, the cluster's log pipeline); break-glass approvals come from a ConfigMap
    # that `execguard guard approve` output is loaded into (docs/guard-kubernetes.md), optional so the pod starts without
    args = ["guard", "admission", "--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key", "--listen", f"0.0.0.0:{PORT}",
            "--state-dir", STATE_DIR, "--record", "-"]  # fmt: skip
    mounts = [
        {"name": "tls", "mountPath": "/tls", "readOnly": True},
        {"name": "approvals", "mountPath": STATE_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "tls", "secret": {"secretName": f"{NAME}-tls", "defaultMode": 0o440}},
        {"name": "approvals", "configMap": {"name": APPROVALS, "optional": True}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
    ]
    if o.policy_text is not None:
        args += ["--policy", "/policy/policy.yml"]
        mounts.append({"name": "policy", "mountPath": "/policy", "readOnly": True})
        volumes.append({"name": "policy", "configMap": {"name": f"{NAME}-policy"}})
    probe = {"httpGet": {"path": "/healthz", "port": PORT, "scheme": "HTTPS"}, "periodSeconds": 10, "timeoutSeconds": 2}
    container = {
        "name": "admission",
        "image": o.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["execguard"],
        "args": args,
        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {**probe, "initialDelaySeconds": 2},
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "100m", "memory": "96Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": o.namespace, "labels": _labels()},
        "spec": {
            "replicas": o.replicas,
            "selector": {"matchLabels": _labels()},
            "template": {
                "metadata": {"labels": _labels()},
                "spec": {
                    # the webhook never calls the API server: no token in the pod
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def namespace(o: Options) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": o.namespace, "labels": _labels()}}


def webhook_manifests(o: Options) -> list[dict[str, Any]]:
    out = [namespace(o), secret(o)]
    if o.policy_text is not None:
        out.append(policy_config_map(o))
    return [*out, deployment(o), service(o), webhook_configuration(o)]


def admission_policy(o: Options) -> list[dict[str, Any]]:
    """ValidatingAdmissionPolicy + binding: exec, attach, port-forward and debug only for the listed groups,
    in every namespace but the exempt ones. No command judgement (CEL cannot run the rules): the user/namespace part."""
    name = "execguard-exec-groups"
    groups = ", ".join(f"'{g}'" for g in o.exec_groups)
    listed = ", ".join(o.exec_groups)
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": _labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{k: v for k, v in r.items() if k != "scope"} for r in exec_rules()]},
            "validations": [
                {
                    # a user with no groups has no groups field: has() keeps the expression from erroring
                    "expression": f"has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in [{groups}])",
                    "messageExpression": (
                        f"'execguard: ' + request.resource.resource + '/' + request.subResource + ' in namespace ' + "
                        f"request.namespace + ' is only for group {listed} (ValidatingAdmissionPolicy {name})'"
                    ),
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": _labels()},
        "spec": {
            "policyName": name,
            "validationActions": VAP_ACTIONS[o.vap_mode],
            "matchResources": {"namespaceSelector": _exempt(o)},
        },
    }
    return [policy, binding]
