"""The node view of ``simulate`` (sim/node.py's processes) as Falco, KubeArmor and auditd would log it.

Same processes, pids and times as ``tetragon.jsonl``; each writer keeps only what its tool really records
(docs/node.md "Process telemetry"):
- Falco: one JSON alert per process from a site rule on every process spawned in a container (Falco's
  default rules alert on few of them); ``proc.cmdline`` is the name and the arguments joined by spaces,
  ``container.id`` the 12-digit short id, no init-tree flag and no probe flag (the parent, ``runc``, tells an exec);
- KubeArmor: a ``ContainerLog`` (process visibility) per process: ``Resource`` the binary and arguments
  joined by spaces, container pids beside the node's, no probe flag;
- auditd: SYSCALL, EXECVE, CWD, PATH, PROCTITLE and EOE records per execve (``-S execve -k exec``) behind
  ``node=NAME`` (``name_format = hostname``); a stock kernel names no container and no pod, and the login
  uid of a process the runtime started is unset.
"""

from __future__ import annotations

import json
import posixpath
import random
from datetime import UTC, datetime
from typing import Any

from .node import ProcOp
from .ops import Label, unix_ns

Record = tuple[list[str], Label, str | None]

FALCO_RULE = "Process spawned in container"
SERIAL_START = 81000  # auditd's serials on each node at the start of the log (any number; one node each)


def _exe(path: str) -> str:
    return path if path.startswith("/") else f"/usr/bin/{path}"


def _comm(path: str) -> str:
    return posixpath.basename(path)[:15]  # the kernel's TASK_COMM_LEN


def _image(image: str) -> tuple[str, str]:
    repo, sep, tag = image.rpartition(":")
    return (repo, tag) if sep and "/" not in tag else (image, "latest")


def _iso_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"


def falco(op: ProcOp) -> list[Record]:
    """One line of Falco's ``json_output``."""
    name = _comm(op.argv[0])
    cmdline = " ".join([name, *op.argv[1:]])
    pname = _comm(op.parent[0])
    repo, tag = _image(op.image)
    ns = unix_ns(op.t)
    fields: dict[str, Any] = {
        "container.id": op.container_id[:12], "container.image.repository": repo, "container.image.tag": tag,
        "container.name": op.container, "evt.time": ns, "evt.type": "execve",
        "k8s.ns.name": op.namespace, "k8s.pod.name": op.pod,
        "proc.cmdline": cmdline, "proc.cwd": "/", "proc.exepath": _exe(op.argv[0]), "proc.name": name,
        "proc.pcmdline": " ".join([pname, *op.parent[1:]]), "proc.pexepath": _exe(op.parent[0]), "proc.pid": op.pid,
        "proc.pname": pname, "proc.ppid": op.ppid, "user.name": "root", "user.uid": 0,
    }  # fmt: skip
    iso = _iso_ns(ns)
    stamp = iso[11:-1]
    output = (f"{stamp}: Informational {FALCO_RULE} (user=root user_uid=0 command={cmdline} pid={op.pid} parent={pname} "
              f"container_id={op.container_id[:12]} container_name={op.container} image={repo}:{tag} "
              f"k8s.ns={op.namespace or '<NA>'} k8s.pod={op.pod or '<NA>'})")
    rec = {"hostname": op.node, "output": output, "output_fields": fields, "priority": "Informational", "rule": FALCO_RULE,
           "source": "syscall", "tags": ["container", "process"], "time": iso}
    return [([json.dumps(rec, separators=(",", ":"))], op.label, op.group)]


def kubearmor(op: ProcOp) -> list[Record]:
    """One ``karmor logs --json`` line: a ContainerLog of a process start."""
    # pids inside the container's namespace: runc (an exec's parent) is outside it, so KubeArmor writes 0
    ppid = 1 if op.ppid == 1 else 0 if posixpath.basename(op.parent[0]) == "runc" else 2 + op.ppid % 900
    ns = unix_ns(op.t)
    rec: dict[str, Any] = {"Timestamp": ns // 10**9, "UpdatedTime": _iso_ns(ns)[:26] + "Z", "ClusterName": "default", "HostName": op.node}
    if op.pod:
        rec.update({"NamespaceName": op.namespace, "PodName": op.pod, "Labels": f"app={op.pod.rsplit('-', 2)[0]}"})
    rec.update({
        "ContainerID": op.container_id, "ContainerName": op.container, "ContainerImage": op.image,
        "HostPPID": op.ppid, "HostPID": op.pid, "PPID": ppid, "PID": 2 + op.pid % 900, "UID": 0,
        "ParentProcessName": _exe(op.parent[0]), "ProcessName": _exe(op.argv[0]),
        "Type": "ContainerLog", "Source": " ".join([_exe(op.parent[0]), *op.parent[1:]]), "Operation": "Process",
        "Resource": " ".join([_exe(op.argv[0]), *op.argv[1:]]), "Data": "syscall=SYS_EXECVE", "Result": "Passed",
    })  # fmt: skip
    return [([json.dumps(rec, separators=(",", ":"))], op.label, op.group)]


def _audit_arg(raw: bytes) -> str:
    """auditd's encoding of an argument: quoted, or hex when it holds a space, quote, control or non-ASCII byte."""
    if any(b <= 0x20 or b >= 0x7F or b == 0x22 for b in raw):  # audit_string_contains_control
        return raw.hex().upper()
    return f'"{raw.decode()}"'


class Auditd:
    """Serial numbers per node; one execve's records per process."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.serials: dict[str, int] = {}

    def records(self, op: ProcOp) -> list[Record]:
        serial = self.serials.get(op.node, SERIAL_START + self.rng.randint(0, 5000)) + self.rng.randint(1, 30)
        self.serials[op.node] = serial  # other syscalls the rules audit take the numbers in between
        ns = unix_ns(op.t)
        head = f"node={op.node} type=%s msg=audit({ns // 10**9}.{ns // 10**6 % 1000:03d}:{serial}): "
        exe = _exe(op.argv[0])
        sys = (f"arch=c000003e syscall=59 success=yes exit=0 a0={self.rng.getrandbits(44):x} a1={self.rng.getrandbits(44):x} "
               f"a2={self.rng.getrandbits(44):x} a3=0 items=2 ppid={op.ppid} pid={op.pid} auid=4294967295 uid=0 gid=0 euid=0 "
               f'suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="{_comm(op.argv[0])}" exe="{exe}" key="exec"')
        args = " ".join(f"a{i}={_audit_arg(a.encode())}" for i, a in enumerate(op.argv))
        # the kernel's untrusted-string rule: hex once a NUL (between arguments) or other control byte is in it
        title = _audit_arg("\0".join(op.argv).encode()[:128])
        lines = [
            head % "SYSCALL" + sys,
            head % "EXECVE" + f"argc={len(op.argv)} {args}",
            head % "CWD" + 'cwd="/"',
            head % "PATH" + f'item=0 name="{exe}" inode={self.rng.randint(10**5, 10**7)} dev=00:{self.rng.randint(40, 90):02x} '
            "mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
            head % "PATH" + f'item=1 name="/lib64/ld-linux-x86-64.so.2" inode={self.rng.randint(10**5, 10**7)} dev=00:2e '
            "mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
            head % "PROCTITLE" + f"proctitle={title}",
            head % "EOE",
        ]
        lines[-1] = lines[-1].rstrip(" ") + " "  # auditd writes EOE with nothing after "): "
        return [(lines, op.label, op.group)]
