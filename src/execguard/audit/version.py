"""Does this API server require `create` for exec over websocket, or is `get` on pods/exec enough?

kubectl >= 1.30 execs over a websocket, a GET, which RBAC authorizes as verb `get`. From Kubernetes 1.35 the
API server also checks `create` on pods/exec, pods/attach and pods/portforward for that upgrade (feature gate
AuthorizePodWebsocketUpgradeCreatePermission, beta and on by default; KEP-4006, kubernetes PR 134577).
nodes/proxy has no such check: `get` on it still reaches the kubelet's /exec.
"""

from __future__ import annotations

import re
from typing import Any

from .inputs import Inputs

GATE = "AuthorizePodWebsocketUpgradeCreatePermission"
FIRST = (1, 35)  # first release with the check on by default
_TAG = re.compile(r"kube-apiserver[^:@/]*:v?(\d+)\.(\d+)")
_GIT = re.compile(r"v?(\d+)\.(\d+)")


def exec_needs_create(inputs: Inputs) -> tuple[bool | None, str]:
    """(True: get alone cannot exec; False: it can; None: unknown, version not found) and why."""
    gate, gate_where = _gate(inputs)
    if gate is not None:
        return gate, f"{GATE}={'true' if gate else 'false'} in --feature-gates ({gate_where})"
    version, where = apiserver_version(inputs)
    if version is None:
        return None, f"API server version unknown: get alone is enough before Kubernetes 1.35 or with {GATE}=false"
    text = f"{version[0]}.{version[1]}"
    if version >= FIRST:
        return True, f"Kubernetes {text} ({where}) also requires create for exec/attach over websocket"
    return False, f"Kubernetes {text} ({where}) authorizes a websocket exec/attach as get alone"


def _apiserver_args(inputs: Inputs) -> list[tuple[list[str], str, str | None]]:
    """(argv, where, image) of every kube-apiserver found: static pod manifests and command lines."""
    out: list[tuple[list[str], str, str | None]] = []
    for o in inputs.of_kind("Pod"):
        spec = o.data.get("spec")
        containers = spec.get("containers") if isinstance(spec, dict) else None
        for c in containers if isinstance(containers, list) else []:
            if not isinstance(c, dict):
                continue
            # a manifest the API server would reject (command as a string) must not stop the audit
            argv = [str(a) for key in ("command", "args") if isinstance(c.get(key), list) for a in c[key]]
            image = str(c.get("image") or "")
            if "kube-apiserver" in image or any(a.endswith("kube-apiserver") for a in argv[:1]):
                out.append((argv, o.file, image))
    for cl in inputs.commands:
        if cl.program == "kube-apiserver":
            out.append((cl.argv, cl.file, None))
    return out


def _gate(inputs: Inputs) -> tuple[bool | None, str]:
    for argv, where, _ in _apiserver_args(inputs):
        for i, arg in enumerate(argv):
            value = None
            if arg.startswith("--feature-gates="):
                value = arg.split("=", 1)[1]
            elif arg == "--feature-gates" and i + 1 < len(argv):
                value = argv[i + 1]
            for item in (value or "").split(","):
                name, _, setting = item.strip().partition("=")
                if name == GATE and setting.strip().lower() in ("true", "false"):
                    return setting.strip().lower() == "true", where
    return None, ""


def apiserver_version(inputs: Inputs) -> tuple[tuple[int, int] | None, str]:
    """(major, minor) of the API server from live /version or a kube-apiserver image tag, and where it was read."""
    for o in inputs.of_kind("ServerVersion"):  # live: GET /version
        m = _GIT.match(str(o.data.get("gitVersion") or ""))
        if m:
            return (int(m.group(1)), int(m.group(2))), f"/version {o.data.get('gitVersion')}"
    for _, where, image in _apiserver_args(inputs):
        m = _TAG.search(image or "")
        if m:
            return (int(m.group(1)), int(m.group(2))), f"image {image} in {where}"
    return None, ""


def server_version_object(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A /version answer as an input object (kind ServerVersion)."""
    return {"kind": "ServerVersion", "gitVersion": data.get("gitVersion") or data.get("git_version"), "source": source}
