"""`watch --containerd unix:///run/containerd/containerd.sock`: every exec the runtime starts, whoever asked.

The events service (``/containerd.services.events.v1.Events/Subscribe``, filtered to the task and container
topics below, every namespace: ``k8s.io`` for Kubernetes, ``moby`` for Docker) streams envelopes over gRPC.
For each ``/tasks/exec-started`` the process is read from /proc at once (containerd_proc.py), then the container from the containers service
(labels, image; cached per container, bounded) and one Event of action ``runtime_exec`` goes out. A
``/tasks/create`` (or a ``/tasks/start`` whose create was not seen) is the create-time path: the OCI spec's
``process.args`` as an Event of action ``create``, command origin ``container``.

containerd keeps no event history, so a reconnect (after a containerd restart) resumes from the events
published after it. What can be recovered is listed then (containerd_scan.py): exec processes still
running that no event reported, as ``runtime_exec`` with verb ``found_running``; an exec that began and
ended in the gap is lost. Each reconnect and the seconds without a stream are counted
(``execguard_input_reconnects``, ``execguard_input_gap_seconds``) and warned about. Execs already handed
on are remembered (bounded) so nothing is reported twice.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .. import redact
from ..model import Event, Process, SourceRef, Target
from . import containerd_wire as wire
from .containerd_proc import ProcReader

if TYPE_CHECKING:
    from .metrics import Metrics

FORMAT = "containerd"
SUBSCRIBE = "/containerd.services.events.v1.Events/Subscribe"
GET_CONTAINER = "/containerd.services.containers.v1.Containers/Get"
NS_HEADER = "containerd-namespace"
BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
READ_TICK = 0.5  # how often an open stream looks at the stop flag
RPC_TIMEOUT = 5.0
CACHE_LIMIT = 1024  # containers remembered (labels, image, spec args)
SEEN_LIMIT = 4096  # execs and creates handed on
POD_LABEL, NAMESPACE_LABEL, CONTAINER_LABEL = "io.kubernetes.pod.name", "io.kubernetes.pod.namespace", "io.kubernetes.container.name"
KIND_LABEL = "io.cri-containerd.kind"  # "sandbox": a pod's pause container, no command of anyone's
NAME_LABELS = ("nerdctl/name",)
TOPICS = ("/tasks/exec-started", "/tasks/create", "/tasks/start", "/containers/update", "/containers/delete")

Warn = Callable[[str], None]


class ContainerdError(RuntimeError):
    pass


def socket_path(address: str) -> str:
    """The socket path of ``unix:///PATH``, ``unix:PATH`` or an absolute path; ValueError otherwise."""
    if address.startswith("unix://"):
        path = address[len("unix://") :]
    elif address.startswith("unix:"):
        path = address[len("unix:") :]
    elif address.startswith("/"):
        path = address
    else:
        raise ValueError("containerd listens on a unix socket: give unix:///PATH/containerd.sock")
    if not path.startswith("/"):
        raise ValueError(f"{address}: the socket path must be absolute")
    return path


def peer_visible(path: str) -> bool | None:
    """Whether containerd's process is in a PID namespace we can see (SO_PEERCRED reports pid 0 when not)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(path)
            pid, _uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    except (OSError, AttributeError):  # AttributeError: no SO_PEERCRED off Linux
        return None
    return pid > 0


def _spec_args(spec: wire.Any_) -> list[str]:
    if not spec.value:
        return []
    try:
        doc = orjson.loads(spec.value)
    except orjson.JSONDecodeError:
        return []
    process = doc.get("process") if isinstance(doc, dict) else None
    args = process.get("args") if isinstance(process, dict) else None
    return [a for a in args if isinstance(a, str)] if isinstance(args, list) else []


def target_of(container_id: str, c: wire.Container | None, node: str | None) -> Target:
    labels = c.labels if c is not None else {}
    name = labels.get(CONTAINER_LABEL) or next((labels[k] for k in NAME_LABELS if labels.get(k)), None)
    return Target(
        namespace=labels.get(NAMESPACE_LABEL) or None,
        pod=labels.get(POD_LABEL) or None,
        container=name,
        container_id=container_id,
        image=(c.image or None) if c is not None else None,
        node=node,
        kind="container",
    )


def exec_event(
    env: wire.Envelope, task: wire.TaskEvent, argv: list[str], proc: Process, c: wire.Container | None, address: str, node: str | None
) -> Event:
    """The Event of one /tasks/exec-started, from what /proc and the containers service said."""
    return Event(
        time=env.time,
        source=SourceRef(format=FORMAT, file=address),
        action="runtime_exec",
        verb="exec_started",
        target=target_of(task.container_id, c, node),
        command=argv,
        outcome="allowed",
        event_id=task.exec_id or None,
        raw=f"{address} {env.namespace} {env.topic} {task.container_id[:12]} {task.exec_id}",
        process=proc,
    )


def create_event(env: wire.Envelope, task: wire.TaskEvent, c: wire.Container | None, address: str, node: str | None) -> Event:
    """The create-time Event of a container's task: the OCI spec's process.args, as a create with origin container."""
    return Event(
        time=env.time,
        source=SourceRef(format=FORMAT, file=address),
        action="create",
        verb=env.topic.rpartition("/")[2],
        target=target_of(task.container_id, c, node),
        command=redact.argv(_spec_args(c.spec)) if c is not None else [],
        command_origin="container",
        outcome="allowed",
        raw=f"{address} {env.namespace} {env.topic} {task.container_id[:12]}",
    )


class ContainerdInput:
    """One containerd. ``run`` returns only when ``stop`` is set; failures are warned about and retried."""

    def __init__(
        self,
        address: str,
        warn: Warn | None = None,
        metrics: Metrics | None = None,
        node: str | None = None,
        proc_root: Path = Path("/proc"),
    ) -> None:
        self.own_proc = proc_root == Path("/proc")  # a host /proc mounted elsewhere: trust it, no PID-namespace check
        self.path = socket_path(address)
        self.address = f"unix://{self.path}"
        self.warn: Warn = warn or (lambda m: None)
        self.metrics = metrics
        self.node = node
        self.procs = ProcReader(proc_root)
        self.containers: OrderedDict[tuple[str, str], wire.Container | None] = OrderedDict()
        self.seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()  # (namespace, container, exec id or "")
        self.connected = threading.Event()  # set while the stream is open (tests and readiness)
        self.reconnects = 0
        self.events_in = 0
        self.unread = 0  # execs reported without their argv
        self._channel: Any = None
        self._lost_at: float | None = None  # when the last open stream ended
        self._streams = 0  # streams opened so far: every one after the first follows a gap
        self.caught_up = 0  # execs found running after a gap

    def name(self) -> str:
        return f"containerd {self.address}"

    # ---- connection --------------------------------------------------------------------------
    def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None:
        import grpc

        self._channel = grpc.insecure_channel(self.address)
        failures = 0
        try:
            while not stop.is_set():
                try:
                    self._follow(emit, stop)
                except (grpc.RpcError, ContainerdError, wire.WireError) as exc:
                    if self.connected.is_set():
                        self._lost_at = time.monotonic()  # a stream we had: the gap starts now
                        failures = 0
                    if stop.is_set():
                        break
                    if failures % 10 == 0:  # a long outage warns at its start and now and then, not every retry
                        self.warn(f"containerd {self.path}: {_rpc_text(exc)}; reconnecting (events until then are lost)")
                self.connected.clear()
                if stop.is_set():
                    break
                stop.wait(BACKOFF[min(failures, len(BACKOFF) - 1)])
                failures += 1
        finally:
            self.connected.clear()
            self._channel.close()

    def _ready(self, stop: threading.Event) -> None:
        """Wait for the channel to connect, looking at the stop flag now and then."""
        import grpc

        ready = grpc.channel_ready_future(self._channel)
        deadline = time.monotonic() + RPC_TIMEOUT
        try:
            while not stop.is_set():
                try:
                    ready.result(timeout=READ_TICK)
                    return
                except grpc.FutureTimeoutError:
                    if time.monotonic() > deadline:
                        raise ContainerdError(f"no connection to {self.address} within {RPC_TIMEOUT:.0f}s") from None
        finally:
            ready.cancel()

    def _follow(self, emit: Callable[[Event], None], stop: threading.Event) -> None:
        import grpc

        self._ready(stop)
        if stop.is_set():
            return
        visible = peer_visible(self.path) if self.own_proc else True
        if visible is False and self.procs.visible:
            self.warn(f"containerd {self.path}: its processes are in another PID namespace; execs are reported without argv (use hostPID)")
        self.procs.visible = visible is not False
        subscribe = self._channel.unary_stream(SUBSCRIBE, request_serializer=_raw, response_deserializer=_raw)
        # containerd ORs the filters: only these topics cross the socket (image pulls and snapshots do not)
        call = subscribe(wire.encode_subscribe([f'topic=="{t}"' for t in TOPICS]))
        done = threading.Event()

        def cancel_on_stop() -> None:
            while not done.is_set():
                if stop.wait(READ_TICK):
                    call.cancel()
                    return

        threading.Thread(target=cancel_on_stop, name="containerd-stop", daemon=True).start()
        if self._lost_at is not None:
            self._count_gap(time.monotonic() - self._lost_at)
            self._lost_at = None
        if self._streams:
            self._catch_up(emit)  # the stream is open: what started in the gap and still runs is listed now
        self._streams += 1
        self.connected.set()  # nothing comes on the stream before the first event: the call running is all we know
        try:
            for data in call:
                if stop.is_set():
                    return
                self._one(data, emit)
        except grpc.RpcError as exc:
            if stop.is_set() and exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise
        finally:
            done.set()
            call.cancel()
        raise ContainerdError("the event stream ended")  # containerd closed it (shutting down)

    def _count_gap(self, seconds: float) -> None:
        self.reconnects += 1
        self.warn(f"containerd {self.path}: reconnected after {seconds:.1f}s; events in that time are lost (containerd keeps no history)")
        if self.metrics is not None:
            self.metrics.reconnects.labels(input=self.name()).inc()
            self.metrics.gap_seconds.labels(input=self.name()).inc(seconds)

    def _catch_up(self, emit: Callable[[Event], None]) -> None:
        """Report the exec processes running now that no event reported (they started while we were away)."""
        import grpc

        from .containerd_scan import running_execs

        try:
            found = running_execs(self._channel, RPC_TIMEOUT)
        except (grpc.RpcError, wire.WireError) as exc:
            self.warn(f"containerd {self.path}: listing the running execs after the gap failed: {_rpc_text(exc)}")
            return
        now = time.time_ns()
        for ns, cid, pid, exec_id in found:
            if not self._first((ns, cid, exec_id)):
                continue  # reported before the gap
            env = wire.Envelope(_rfc3339(now), now, ns, "(running after a gap in the event stream)", wire.Any_())
            argv, proc = self.procs.process(pid, 0, exec_id)
            ev = exec_event(env, wire.TaskEvent(cid, exec_id, pid), argv, proc, self.container(ns, cid), self.address, self.node)
            ev.verb = "found_running"
            ev.tty, ev.stdin = self.procs.stdin(pid) if not proc.known else (None, None)
            self.caught_up += 1
            emit(ev)

    # ---- one envelope ------------------------------------------------------------------------
    def _one(self, data: bytes, emit: Callable[[Event], None]) -> None:
        try:
            env = wire.decode_envelope(data)
            if env.topic not in TOPICS:
                return
            self.events_in += 1
            for ev in self.handle(env):
                emit(ev)
        except (wire.WireError, KeyError, ValueError, OSError) as exc:  # one bad envelope or /proc entry: named, the stream goes on
            self.warn(f"containerd {self.path}: an event could not be read: {exc}")

    def handle(self, env: wire.Envelope) -> list[Event]:
        """The Events one envelope yields (none for most topics)."""
        if env.topic in ("/containers/update", "/containers/delete"):
            cid = wire.decode_task("/tasks/start", env.event.value).container_id  # field 1 is the id in both
            self.containers.pop((env.namespace, cid), None)
            return []
        task = wire.decode_task(env.topic, env.event.value)
        if env.topic == "/tasks/exec-started":
            key = (env.namespace, task.container_id, task.exec_id)
            if not self._first(key):
                return []
            # /proc first: the process may live for a millisecond
            argv, proc = self.procs.process(task.pid, env.time_ns, task.exec_id or None)
            tty, stdin = self.procs.stdin(task.pid) if not proc.known else (None, None)
            if proc.known:
                self.unread += 1
            ev = exec_event(env, task, argv, proc, self.container(env.namespace, task.container_id), self.address, self.node)
            ev.tty, ev.stdin = tty, stdin
            return [ev]
        # /tasks/create, or /tasks/start when its create came before we connected
        if not self._first((env.namespace, task.container_id, "")):
            return []
        c = self.container(env.namespace, task.container_id)
        if c is not None and c.labels.get(KIND_LABEL) == "sandbox":
            return []
        return [create_event(env, task, c, self.address, self.node)]

    def _first(self, key: tuple[str, str, str]) -> bool:
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > SEEN_LIMIT:
            self.seen.popitem(last=False)
        return True

    def container(self, namespace: str, container_id: str) -> wire.Container | None:
        """The container's record from the containers service, cached; None when it cannot be had."""
        key = (namespace, container_id)
        if key in self.containers:
            self.containers.move_to_end(key)
            return self.containers[key]
        c = self._get(namespace, container_id)
        self.containers[key] = c
        if len(self.containers) > CACHE_LIMIT:
            self.containers.popitem(last=False)
        return c

    def _get(self, namespace: str, container_id: str) -> wire.Container | None:
        import grpc

        if self._channel is None:
            return None
        get = self._channel.unary_unary(GET_CONTAINER, request_serializer=_raw, response_deserializer=_raw)
        try:
            data = get(wire.encode_get_container(container_id), metadata=((NS_HEADER, namespace),), timeout=RPC_TIMEOUT)
            return wire.decode_get_container_response(data)
        except grpc.RpcError as exc:
            self.warn(f"containerd {self.path}: container {container_id[:12]} in {namespace}: {_rpc_text(exc)}; reported without labels")
        except wire.WireError as exc:
            self.warn(f"containerd {self.path}: container {container_id[:12]} in {namespace}: {exc}; reported without labels")
        return None


def _rfc3339(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def _raw(data: bytes) -> bytes:
    return data


def _rpc_text(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        with contextlib.suppress(Exception):
            code = exc.code()  # type: ignore[attr-defined]
            return f"{code.name.lower()}: {str(details() or '')[:200]}"
    return str(exc)[:200] or type(exc).__name__


def node_name() -> str | None:
    """The node's name for alerts: $NODE_NAME (a DaemonSet's downward API), else None."""
    return os.environ.get("NODE_NAME") or None
