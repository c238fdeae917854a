"""One writer per format: each op becomes the records its source would really log, one label per record.

Byte-level conventions copied from the real thing:
- kube-apiserver audit: compact Go JSON, fields in the order of the audit.k8s.io/v1 Event struct, one event per
  stage, microsecond timestamps;
- EKS: CloudWatch Logs events (``filter-log-events`` items) whose ``message`` is the native event;
- AKS: Azure Monitor diagnostic records (category ``kube-audit``) with the native event as a string in
  ``properties.log``;
- GKE: Cloud Audit Logs ``LogEntry`` (one per request, not per stage; exec carries no command);
- docker events: ``docker events --format '{{json .}}'`` (legacy status/id/from keys first, no HTML escaping);
- dockerd debug log: logrus text lines; the ``form data`` body is the request re-marshalled by dockerd (keys
  sorted, HTML characters escaped) and then quoted with Go's %q.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from typing import IO, Any

from . import node_formats
from .node import ProcOp
from .node import records as node_records
from .ops import (
    Container,
    DockerCall,
    DockerCreate,
    DockerExec,
    DockerRemove,
    K8sOp,
    Label,
    Op,
    rand_hex,
    rfc3339,
    unix_ns,
)

K8S_FORMATS = ("k8s-audit", "eks", "gke", "aks")
DOCKER_FORMATS = ("docker-events", "dockerd-log")
NODE_FORMATS = ("tetragon",)  # process telemetry of k8s-audit's nodes and the Docker host (sim/node.py)
FORMATS = K8S_FORMATS + DOCKER_FORMATS + NODE_FORMATS
FILE_NAMES = {"k8s-audit": "k8s-audit.jsonl", "eks": "eks-audit.jsonl", "gke": "gke-audit.jsonl", "aks": "aks-audit.jsonl",
              "docker-events": "docker-events.jsonl", "dockerd-log": "dockerd.log", "tetragon": "tetragon.jsonl"}
# the same node view in the other process-telemetry formats (sim/node_formats.py): written on request
# (`simulate --node-formats`, or `--format`), so the default corpus and its scorecard stay as they were
MORE_NODE_FORMATS = ("falco", "kubearmor", "auditd")
MORE_FILE_NAMES = {"falco": "falco.jsonl", "kubearmor": "kubearmor.jsonl", "auditd": "audit.log"}
ALL_FORMATS = FORMATS + MORE_NODE_FORMATS
ALL_FILE_NAMES = FILE_NAMES | MORE_FILE_NAMES

# (first line of the record, its label, the id that ties the records of one request together)
Record = tuple[list[str], Label, str | None]


def go_json(obj: Any, html: bool = True) -> str:
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if html:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def go_quote(text: str) -> str:
    """Go's strconv.Quote (what logrus uses for a value that needs quoting)."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ---- Kubernetes ----------------------------------------------------------------------------------------
def stage_event(op: K8sOp, stage: str, delay: float) -> dict[str, Any]:
    ev: dict[str, Any] = {}
    for key, value in op.event.items():
        if key == "annotations":
            continue
        ev[key] = value
        if key == "auditID":
            ev["stage"] = stage
    ev["requestReceivedTimestamp"] = rfc3339(op.t)
    ev["stageTimestamp"] = rfc3339(op.t + delay)
    ev["annotations"] = op.event["annotations"]
    return ev


def k8s_records(op: K8sOp, fmt: str, rng: random.Random, ctx: dict[str, Any]) -> Iterator[Record]:
    audit_id = op.event["auditID"]
    if fmt == "gke":
        yield [go_json(gke_entry(op, rng, ctx), html=False)], op.label, audit_id
        return
    for stage, delay in op.stages:
        native = go_json(stage_event(op, stage, delay))
        if fmt == "k8s-audit":
            line = native
        elif fmt == "eks":
            ms = unix_ns(op.t + delay) // 1_000_000
            line = go_json({"logStreamName": ctx["eks_stream"], "timestamp": ms, "message": native,
                            "ingestionTime": ms + rng.randint(300, 2500), "eventId": str(rng.getrandbits(180)).zfill(56)[:56]})
        else:  # aks
            line = go_json({"time": rfc3339(op.t + delay, 7), "resourceId": ctx["aks_resource"], "category": "kube-audit",
                            "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
                            "properties": {"log": native, "stream": "stdout", "pod": ctx["aks_pod"], "containerID": ctx["aks_ctr"]}})
        yield [line], op.label, audit_id


def gke_entry(op: K8sOp, rng: random.Random, ctx: dict[str, Any]) -> dict[str, Any]:
    ev = op.event
    ref = ev["objectRef"]
    group = ref.get("apiGroup") or "core"
    version = ref.get("apiVersion", "v1")
    parts = [group, version]
    if ref.get("namespace"):
        parts += ["namespaces", ref["namespace"]]
    parts.append(ref["resource"])
    if ref.get("name"):
        parts.append(ref["name"])
    if ref.get("subresource"):
        parts.append(ref["subresource"])
    resource_name = "/".join(parts)
    method_group = group
    sub = f".{ref['subresource']}" if ref.get("subresource") else ""
    method = f"io.k8s.{method_group}.{version}.{ref['resource']}{sub}.{ev['verb']}"
    code = ev["responseStatus"]["code"]
    denied = code in (401, 403)
    read = ev["verb"] in ("get", "list", "watch")
    payload: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": ev["user"]["username"]},
        "authorizationInfo": [{"granted": not denied, "permission": method, "resource": resource_name}],
        "methodName": method,
        "requestMetadata": {"callerIp": ev["sourceIPs"][0], "callerSuppliedUserAgent": ev["userAgent"]},
        "resourceName": resource_name,
        "serviceName": "k8s.io",
        "status": {"code": 7, "message": "PERMISSION_DENIED"} if denied else {},
    }
    if op.gke_request is not None:
        payload["request"] = op.gke_request
    stamp = rfc3339(op.t + op.stages[-1][1])
    insert = ev["auditID"]
    log = "data_access" if read or (ref.get("subresource") in ("exec", "attach", "proxy") and ev["verb"] == "get") else "activity"
    return {
        "insertId": insert,
        "labels": dict(ev["annotations"]),
        "logName": f"projects/{ctx['gcp_project']}/logs/cloudaudit.googleapis.com%2F{log}",
        "operation": {"first": True, "id": insert, "last": True, "producer": "k8s.io"},
        "protoPayload": payload,
        "receiveTimestamp": rfc3339(op.t + op.stages[-1][1] + rng.uniform(0.2, 2.0), 9),
        "resource": {"labels": {"cluster_name": "prod-gke", "location": "europe-west1", "project_id": ctx["gcp_project"]},
                     "type": "k8s_cluster"},
        "severity": "NOTICE" if not read else "INFO",
        "timestamp": stamp,
    }


# ---- Docker: events -----------------------------------------------------------------------------------
def _docker_event(ctr: Container, action: str, t: float, extra: dict[str, str] | None = None) -> str:
    attrs = {**ctr.labels, "image": ctr.image, "name": ctr.name, **(extra or {})}
    ns = unix_ns(t)
    obj = {"status": action, "id": ctr.id, "from": ctr.image, "Type": "container", "Action": action,
           "Actor": {"ID": ctr.id, "Attributes": dict(sorted(attrs.items()))}, "scope": "local", "time": ns // 1_000_000_000,
           "timeNano": ns}
    return go_json(obj, html=False)


def _network_event(ctr: Container, action: str, t: float, net_id: str, mode: str) -> str:
    ns = unix_ns(t)
    obj = {"Type": "network", "Action": action, "Actor": {"ID": net_id, "Attributes": {"container": ctr.id, "name": mode,
                                                                                         "type": "null" if mode == "none" else "bridge"}},
           "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns}
    return go_json(obj, html=False)


def docker_event_records(op: Op, ctx: dict[str, Any]) -> Iterator[Record]:
    if isinstance(op, DockerExec):
        text = " ".join([op.cmd[0], " ".join(op.cmd[1:])])
        yield [_docker_event(op.container, f"exec_create: {text}", op.t, {"execID": op.exec_id})], op.label, op.exec_id
        yield [_docker_event(op.container, f"exec_start: {text}", op.t + 0.001, {"execID": op.exec_id})], op.label, op.exec_id
        yield ([_docker_event(op.container, "exec_die", op.t + op.duration, {"execID": op.exec_id, "exitCode": str(op.exit_code)})],
               op.label, op.exec_id)
    elif isinstance(op, DockerCreate):
        net = ctx["networks"]["none" if op.network_mode == "none" else "bridge"]
        mode = "none" if op.network_mode == "none" else "bridge"
        yield [_docker_event(op.container, "create", op.t + 0.02)], op.label, op.container.id
        if op.start:
            yield [_network_event(op.container, "connect", op.t + 0.035, net, mode)], op.label, op.container.id
            yield [_docker_event(op.container, "start", op.t + 0.3)], op.label, op.container.id
    elif isinstance(op, DockerRemove):
        net = ctx["networks"]["bridge"]
        yield [_docker_event(op.container, "die", op.t, {"exitCode": str(op.exit_code)})], op.label, op.container.id
        yield [_network_event(op.container, "disconnect", op.t + 0.05, net, "bridge")], op.label, op.container.id
        yield [_docker_event(op.container, "destroy", op.t + 0.09)], op.label, op.container.id
    # DockerCall: the events stream shows nothing for a read


# ---- Docker: dockerd -D ---------------------------------------------------------------------------------
def _log(t: float, msg: str, level: str = "debug", fields: str = "") -> str:
    return f'time="{rfc3339(t, 9)}" level={level} msg={go_quote(msg)}' + (f" {fields}" if fields else "")


def exec_body(op: DockerExec) -> dict[str, Any]:
    attach = not op.detach
    return {"AttachStderr": attach, "AttachStdin": op.tty and attach, "AttachStdout": attach, "Cmd": op.cmd, "Detach": op.detach,
            "DetachKeys": "", "Env": None, "Privileged": op.privileged, "Tty": op.tty, "User": op.user, "WorkingDir": ""}


HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "AutoRemove": False, "Binds": None, "BlkioDeviceReadBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteBps": [],
    "BlkioDeviceWriteIOps": [], "BlkioWeight": 0, "BlkioWeightDevice": [], "CapAdd": None, "CapDrop": None, "Cgroup": "",
    "CgroupParent": "", "CgroupnsMode": "", "ConsoleSize": [0, 0], "ContainerIDFile": "", "CpuCount": 0, "CpuPercent": 0,
    "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpuShares": 0, "CpusetCpus": "",
    "CpusetMems": "", "DeviceCgroupRules": None, "DeviceRequests": None, "Devices": [], "Dns": [], "DnsOptions": [],
    "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IOMaximumBandwidth": 0, "IOMaximumIOps": 0, "IpcMode": "",
    "Isolation": "", "Links": None, "LogConfig": {"Config": {}, "Type": ""}, "MaskedPaths": None, "Memory": 0,
    "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": -1, "NanoCpus": 0, "NetworkMode": "default",
    "OomKillDisable": False, "OomScoreAdj": 0, "PidMode": "", "PidsLimit": 0, "PortBindings": {}, "Privileged": False,
    "PublishAllPorts": False, "ReadonlyPaths": None, "ReadonlyRootfs": False, "RestartPolicy": {"MaximumRetryCount": 0, "Name": "no"},
    "SecurityOpt": None, "ShmSize": 0, "UTSMode": "", "Ulimits": [], "UsernsMode": "", "VolumeDriver": "", "VolumesFrom": None,
}


def create_body(op: DockerCreate) -> dict[str, Any]:
    host = dict(HOST_CONFIG_DEFAULTS)
    host.update({"Binds": op.binds, "NetworkMode": op.network_mode, "Privileged": op.privileged})
    body: dict[str, Any] = {"AttachStderr": False, "AttachStdin": False, "AttachStdout": False, "Cmd": op.cmd, "Domainname": "",
            "Entrypoint": op.entrypoint, "Env": None, "HostConfig": host, "Hostname": "", "Image": op.container.image,
            "Labels": op.container.labels, "NetworkingConfig": {"EndpointsConfig": {}}, "OnBuild": None, "OpenStdin": False,
            "StdinOnce": False, "Tty": False, "User": "", "Volumes": {}, "WorkingDir": ""}
    return _sorted(body)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def form(body: dict[str, Any]) -> str:
    return "form data: " + go_json(_sorted(body))


def dockerd_records(op: Op, ctx: dict[str, Any]) -> Iterator[Record]:
    lab = op.label
    if isinstance(op, DockerCall):
        yield [_log(op.t, "Calling HEAD /_ping")], lab, None
        yield [_log(op.t + 0.0004, f"Calling {op.method} /{op.api}{op.path}")], lab, None
    elif isinstance(op, DockerExec):
        c, t, x = op.container, op.t, op.exec_id
        ref = op.ref or c.name
        yield [_log(t - 0.004, "Calling HEAD /_ping")], lab, None
        yield [_log(t - 0.003, f"Calling GET /{op.api}/containers/{ref}/json")], lab, None
        yield [_log(t, f"Calling POST /{op.api}/containers/{ref}/exec"), _log(t + 0.0002, form(exec_body(op)))], lab, x
        yield [_log(t + 0.001, f"Calling POST /{op.api}/exec/{x}/start"),
               _log(t + 0.0011, form({"Detach": op.detach, "Tty": op.tty}))], lab, x
        yield [_log(t + 0.0012, f"starting exec command {x} in container {c.id}")], lab, x
        if not op.detach:
            yield [_log(t + 0.003, "attach: stdout: begin")], lab, x
        yield [_log(t + 0.008, "event forwarded", fields="ns=moby topic=/tasks/exec-added type=containerd.events.TaskExecAdded")], lab, x
        yield [_log(t + 0.06, "event forwarded", fields="ns=moby topic=/tasks/exec-started type=containerd.events.TaskExecStarted")], lab, x
        yield [_log(t + op.duration, "event forwarded", fields="ns=moby topic=/tasks/exit type=containerd.events.TaskExit")], lab, x
        if not op.detach:
            yield [_log(t + op.duration + 0.0003, "attach: stdout: end")], lab, x
            yield [_log(t + op.duration + 0.0005, "attach done")], lab, x
            yield [_log(t + op.duration + 0.001, f"Calling GET /{op.api}/exec/{x}/json")], lab, x
    elif isinstance(op, DockerCreate):
        c, t = op.container, op.t
        yield [_log(t - 0.002, "Calling HEAD /_ping")], lab, None
        yield [_log(t, f"Calling POST /{op.api}/containers/create?name={c.name}"), _log(t + 0.0005, form(create_body(op)))], lab, c.id
        published = "ns=moby topic=/containers/create type=containerd.events.ContainerCreate"
        yield [_log(t + 0.02, "event published", fields=published)], lab, c.id
        if op.start:
            yield [_log(t + 0.03, f"Calling POST /{op.api}/containers/{c.id}/start")], lab, c.id
            yield [_log(t + 0.3, "event forwarded", fields="ns=moby topic=/tasks/start type=containerd.events.TaskStart")], lab, c.id
    elif isinstance(op, DockerRemove):
        c, t = op.container, op.t
        yield [_log(t, "event forwarded", fields="ns=moby topic=/tasks/exit type=containerd.events.TaskExit")], lab, c.id
        yield [_log(t + 0.05, f"Calling DELETE /{op.api}/containers/{c.id}?force=1")], lab, c.id


def new_context(rng: random.Random) -> dict[str, Any]:
    sub = f"{rand_hex(rng, 8)}-{rand_hex(rng, 4)}-{rand_hex(rng, 4)}-{rand_hex(rng, 4)}-{rand_hex(rng, 12)}"
    return {
        "eks_stream": f"kube-apiserver-audit-{rand_hex(rng, 32)}",
        "aks_resource": f"/SUBSCRIPTIONS/{sub.upper()}/RESOURCEGROUPS/PROD-RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE"
                        "/MANAGEDCLUSTERS/PROD-AKS",
        "aks_pod": f"kube-apiserver-{rand_hex(rng, 10)}-{rand_hex(rng, 5)}",
        "aks_ctr": rand_hex(rng),
        "gcp_project": "shop-prod-4412",
        "networks": {"bridge": rand_hex(rng), "none": rand_hex(rng)},
    }


def _op_id(op: Op) -> str | None:
    """The id every record of one op shares (audit ID, exec ID, container ID)."""
    if isinstance(op, K8sOp):
        return str(op.event["auditID"])
    if isinstance(op, DockerExec):
        return op.exec_id
    if isinstance(op, (DockerCreate, DockerRemove)):
        return op.container.id
    return None


class FormatWriter:
    """Writes the records of one format to one stream, counting lines; yields label dicts."""

    def __init__(self, fmt: str, out: IO[str], rel: str, rng: random.Random) -> None:
        self.fmt, self.out, self.rel, self.rng = fmt, out, rel, rng
        self.ctx = new_context(rng)
        self.line = 0
        self.auditd = node_formats.Auditd(rng)

    def _node(self, op: ProcOp) -> Iterable[Record]:
        if self.fmt == "falco":
            return node_formats.falco(op)
        if self.fmt == "kubearmor":
            return node_formats.kubearmor(op)
        if self.fmt == "auditd":
            return self.auditd.records(op)
        return node_records(op)

    def write(self, op: Op | ProcOp) -> Iterator[dict[str, Any]]:
        if isinstance(op, ProcOp):
            records: Iterable[Record] = self._node(op)
        elif isinstance(op, K8sOp):
            records = k8s_records(op, self.fmt, self.rng, self.ctx)
        elif self.fmt == "docker-events":
            records = docker_event_records(op, self.ctx)
        else:
            records = dockerd_records(op, self.ctx)
        op_id = None if isinstance(op, ProcOp) else _op_id(op)
        for lines, lab, event_id in records:
            first = self.line + 1
            if op_id is None:
                op_id = f"op:{self.rel}:{first}"  # a read call: its records form one event of their own
            event_id = event_id or op_id
            self.out.write("\n".join(lines) + "\n")
            self.line += len(lines)
            yield {"file": self.rel, "line": first, "malicious": lab.malicious, "scenario": lab.scenario, "procedure": lab.procedure,
                   "step": lab.step, "event_id": event_id}
