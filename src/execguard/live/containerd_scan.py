"""After a reconnect: the exec processes still running, which the events lost in the gap would have reported.

containerd replays no events, but it can list what runs: every namespace, each running task, and each
task's processes, where an exec's own process carries its exec id (runc's ProcessDetails). An exec that
started and ended inside the gap leaves nothing to find; one still running (an interactive shell, a miner)
is found here.
"""

from __future__ import annotations

from typing import Any

from . import containerd_wire as wire

LIST_NAMESPACES = "/containerd.services.namespaces.v1.Namespaces/List"
LIST_TASKS = "/containerd.services.tasks.v1.Tasks/List"
LIST_PIDS = "/containerd.services.tasks.v1.Tasks/ListPids"
NS_HEADER = "containerd-namespace"
MAX_EXECS = 10_000  # a bound on one scan's findings


def _raw(data: bytes) -> bytes:
    return data


def running_execs(channel: Any, timeout: float) -> list[tuple[str, str, int, str]]:
    """(namespace, container id, pid, exec id) of every exec process running now; grpc.RpcError or WireError on failure."""

    def call(method: str, request: bytes, namespace: str | None = None) -> bytes:
        rpc = channel.unary_unary(method, request_serializer=_raw, response_deserializer=_raw)
        metadata = ((NS_HEADER, namespace),) if namespace else None
        data: bytes = rpc(request, metadata=metadata, timeout=timeout)
        return data

    out: list[tuple[str, str, int, str]] = []
    for ns in wire.decode_namespaces(call(LIST_NAMESPACES, b"")):
        for task in wire.decode_tasks(call(LIST_TASKS, b"", ns)):
            for pid, exec_id in wire.decode_pids(call(LIST_PIDS, wire.encode_string(1, task.container_id), ns)):
                if exec_id:
                    out.append((ns, task.container_id, pid, exec_id))
                    if len(out) >= MAX_EXECS:
                        return out
    return out
