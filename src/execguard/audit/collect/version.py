"""Does this API server require `create` for exec over websocket, or is `get` on pods/exec enough?

kubectl >= 1.30 execs over a websocket, a GET, which RBAC authorizes as verb `get`. From Kubernetes 1.35 the
API server also checks `create` on pods/exec, pods/attach and pods/portforward for that upgrade (feature gate
AuthorizePodWebsocketUpgradeCreatePermission, beta and on by default; KEP-4006, kubernetes PR 134577).
nodes/proxy has no such check: `get` on it still reaches the kubelet's /exec.
"""

from __future__ import annotations

from ..gather.inputs import Inputs
from .apiserver import apiserver_commands, apiserver_version, feature_gates
from .flags import parse_flags

GATE = "AuthorizePodWebsocketUpgradeCreatePermission"
FIRST = (1, 35)  # first release with the check on by default


def exec_needs_create(inputs: Inputs) -> tuple[bool | None, str]:
    """(True: get alone cannot exec; False: it can; None: unknown, version not found) and why."""
    for cl in apiserver_commands(inputs):
        gates = feature_gates(parse_flags(cl.argv).get("feature-gates", ""))
        if GATE in gates:
            return gates[GATE], f"{GATE}={'true' if gates[GATE] else 'false'} in --feature-gates ({cl.file})"
    version, where = apiserver_version(inputs)
    if version is None:
        return None, f"API server version unknown: get alone is enough before Kubernetes 1.35 or with {GATE}=false"
    text = f"{version[0]}.{version[1]}"
    if version >= FIRST:
        return True, f"Kubernetes {text} ({where}) also requires create for exec/attach over websocket"
    return False, f"Kubernetes {text} ({where}) authorizes a websocket exec/attach as get alone"
