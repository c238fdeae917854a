"""`watch --docker URL`: follow the Engine API /events and complete each exec and create from the daemon.

The events stream joins an exec's argv with spaces; /exec/{id}/json keeps it exact
(ProcessConfig.entrypoint + arguments), with user, privileged and tty. A create is completed from the
container's inspect. The Event is built by the docker-events source and completed with the same
helpers the dockerd-log source uses for the create and exec bodies, so rules see one shape whatever
the input. An exec already gone (404) still alerts from what its event carries.

The connection is restartable: on any failure it reconnects with backoff and ``since`` = the last
event time seen (timeNano); events at that boundary already handed on are skipped by
(the Action's verb, Actor.ID, execID, timeNano). With watch's state file the same position (the time and the
keys of the events at it) is kept per daemon, saved before each event's batch is acknowledged, so a
restarted watch, even after kill -9, resumes from it. The daemon replays ``since`` from its own
in-memory buffer of its last 256 events of every type (``eventsLimit`` in moby's daemon/events), which a
restarted daemon starts afresh: when the buffer no longer holds the event at the position, events in
between may be gone, and that is warned about and counted, not hidden.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson

from ..audit.gather.docker_live import ClientTLS
from ..model import Event, SourceRef
from ..sources import docker_events
from ..sources.base import SourceError, as_dict, as_int, as_str, as_str_list
from ..sources.dockerd_log import _create_body, _exec_body, _healthcheck
from .dockerapi import ApiError, Endpoint, get, get_json, json_lines, request
from .inputs import Batch

Warn = Callable[[str], None]
ACTIONS = ("exec_create", "exec_start", "create", "start")
BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
READ_TICK = 0.5  # how often a quiet stream looks at the stop flag
SEEN_LIMIT = 4096  # event keys remembered to skip what a reconnect replays
AT_LIMIT = 64  # keys kept in the position for events at one and the same nanosecond
OPEN_LIMIT = 64  # execs created but not started, containers created but not started, kept in the position
NS = 1_000_000_000
Key = tuple[str, str, str, int]


class DockerInput:
    """One Docker daemon. ``run`` returns only when ``stop`` is set; failures are warned about and retried."""

    def __init__(
        self,
        url: str,
        tls: ClientTLS | None = None,
        since_ns: int | None = None,
        warn: Warn | None = None,
        position: Any = None,
        gap: Callable[[float], None] | None = None,
    ) -> None:
        self.endpoint = Endpoint(url, tls)
        self.url = url
        self.since_ns = since_ns  # None: from when run() starts
        self.warn: Warn = warn or (lambda m: None)
        self.gap = gap  # called with the seconds of events that may be lost (metrics)
        self.seen: OrderedDict[Key, None] = OrderedDict()
        self.at: list[Key] = []  # the keys handed on at since_ns: a resume skips them
        self.anchored = False  # since_ns is the time of an event this daemon sent (so it should still hold it)
        self.gaps = 0
        self.created: OrderedDict[str, None] = OrderedDict()  # containers whose create was handed on
        # what a restart must not split in two: execs whose exec_create went out and whose exec_start has not come
        # (True: carried over from the last run, whose engine folded the start into the create's alert), and
        # containers whose create went out and whose start has not come
        self.open_execs: OrderedDict[str, bool] = OrderedDict()
        self.unstarted: OrderedDict[str, None] = OrderedDict()
        self.resume(position)
        self.connected = threading.Event()  # set while the stream is open (tests and /readyz)
        self.reconnects = 0
        self.events_in = 0

    def name(self) -> str:
        return f"docker {self.url}"

    def position(self) -> dict[str, Any]:
        """Where a restarted watch resumes: the last event time and the keys of the events at that time."""
        return {
            "since": self.since_ns,
            "at": [list(k[:3]) for k in self.at],
            "execs": list(self.open_execs),
            "creates": list(self.unstarted),
        }

    def resume(self, position: Any) -> None:
        """Start from a position ``position()`` gave (watch's state file); anything else is ignored."""
        if not isinstance(position, dict) or not isinstance(position.get("since"), int):
            return
        self.since_ns = position["since"]
        for k in position.get("at") or []:
            if isinstance(k, list) and len(k) == 3 and all(isinstance(x, str) for x in k):
                key = (k[0], k[1], k[2], self.since_ns)
                self.seen[key] = None
                self.at.append(key)
        for exec_id in _strings(position.get("execs")):
            _put(self.open_execs, exec_id, True)
        for cid in _strings(position.get("creates")):
            _put(self.unstarted, cid, None)
            self.created[cid] = None
        self.anchored = bool(self.at)  # checked once, on the first connect: the daemon ran on while watch was down

    def run(self, emit: Callable[[Event], None], stop: threading.Event) -> None:
        """Hand on each Event as it comes (no position: for callers without a state file)."""

        def hand(evs: list[Event]) -> None:
            for ev in evs:
                emit(ev)

        self.follow(hand, stop)

    def follow(self, hand: Callable[[list[Event]], None], stop: threading.Event) -> None:
        """Hand on the Events of each Docker event together (none for one that alerts on nothing)."""
        if self.since_ns is None:
            self.since_ns = time.time_ns()
        failures = 0
        while not stop.is_set():
            try:
                if self.anchored:
                    self._check_held()
                self._follow(hand, stop)
                failures = 0  # a clean end (daemon shut down): reconnect at once, then back off
            except (OSError, ValueError, ApiError) as exc:  # socket, TLS, HTTP and JSON errors alike
                if stop.is_set():
                    break
                self.warn(f"{self.url}: {str(exc)[:200] or type(exc).__name__}; reconnecting")
            finally:
                self.connected.clear()
            if stop.is_set():
                break
            stop.wait(BACKOFF[min(failures, len(BACKOFF) - 1)])
            failures += 1
            self.reconnects += 1

    def _path(self) -> str:
        filters = orjson.dumps({"type": ["container"], "event": list(ACTIONS)}).decode()
        since = self.since_ns or 0
        return f"/events?since={since // NS}.{since % NS:09d}&filters={quote(filters)}"

    def _check_held(self) -> None:
        """Warn when the daemon no longer holds the event at ``since``: what came after it may be lost.

        The daemon's buffer is its last 256 events of any type; a restarted daemon starts it empty."""
        since = self.since_ns or 0
        status, body = get(self.endpoint, f"/events?since=1&until={since // NS}.{since % NS:09d}")
        held = body.strip() if status == 200 else b"?"
        self.anchored = False  # once: a reconnect within a run follows a stream that was live until it broke
        if held:
            return
        try:
            oldest = self._oldest_held()
        except (OSError, ValueError):
            oldest = None
        lost = max(0.0, ((oldest or time.time_ns()) - since) / NS)
        self.gaps += 1
        if self.gap is not None:
            self.gap(lost)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since / NS))
        self.warn(
            f"{self.url}: the daemon no longer holds the events after {stamp} (it keeps its last 256, and a restart "
            f"empties them): up to {lost:.0f} s of Docker events may be missed; execs then are not alerted from Docker"
        )

    def _oldest_held(self) -> int | None:
        since = self.since_ns or 0
        now = time.time_ns()
        status, body = get(self.endpoint, f"/events?since={since // NS}.{since % NS:09d}&until={now // NS}.{now % NS:09d}")
        first = body.split(b"\n", 1)[0] if status == 200 else b""
        obj = orjson.loads(first) if first.strip() else None
        return as_int(obj.get("timeNano")) if isinstance(obj, dict) else None

    def _follow(self, hand: Callable[[list[Event]], None], stop: threading.Event) -> None:
        sock, resp = request(self.endpoint, self._path())
        try:
            if resp.status != 200:
                raise ApiError(f"GET /events → {resp.status} {resp.body(4096)[:160].decode(errors='replace').strip()}")
            sock.settimeout(READ_TICK)
            self.connected.set()
            for obj in json_lines(resp):
                if stop.is_set():
                    return
                if obj is not None:
                    self._one(obj, hand)
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _one(self, obj: dict[str, Any], hand: Callable[[list[Event]], None]) -> None:
        nano = as_int(obj.get("timeNano")) or (as_int(obj.get("time")) or 0) * NS
        actor = obj.get("Actor")
        actor = actor if isinstance(actor, dict) else {}
        attrs = actor.get("Attributes")
        attrs = attrs if isinstance(attrs, dict) else {}
        # the action's verb only: "exec_create: CMD" carries the command, which the state file must not hold
        key = (str(obj.get("Action")).partition(":")[0].strip(), str(actor.get("ID")), str(attrs.get("execID") or ""), nano)
        if key in self.seen:
            return  # replayed by a reconnect's since
        self.seen[key] = None
        if len(self.seen) > SEEN_LIMIT:
            self.seen.popitem(last=False)
        if nano > (self.since_ns or 0):
            self.since_ns, self.at = nano, []
        if nano == self.since_ns and len(self.at) < AT_LIMIT:
            self.at.append(key)
        self.events_in += 1
        try:
            evs = self.events(obj)
        except SourceError as exc:
            self.warn(f"{self.url}: event {key[0]} at {nano}: {exc}")
            evs = []
        hand(evs)  # even none: the position moves past this event

    def events(self, obj: dict[str, Any]) -> list[Event]:
        """The Events of one Docker event, completed from the daemon."""
        ref = SourceRef(format=docker_events.FORMAT, file=self.url, line=None)
        action = (as_str(obj.get("Action")) or "").partition(":")[0].strip()
        evs = list(docker_events.events(obj, ref))
        if not evs:
            return evs
        ev = evs[0]
        ev.raw = f"{self.url} {action} {obj.get('timeNano') or obj.get('time')}"
        cid = ev.target.container_id or ""
        try:
            if action in ("exec_create", "exec_start") and ev.event_id:
                if action == "exec_start" and self.open_execs.pop(ev.event_id, False):
                    return []  # its exec_create was alerted before watch restarted
                if action == "exec_create":
                    _put(self.open_execs, ev.event_id, False)
                self._complete_exec(ev)
                return [ev]
            if action in ("create", "start") and cid:
                if action == "start":
                    self.unstarted.pop(cid, None)
                    if cid in self.created:
                        return []  # its create already went out: the entrypoint was judged then
                else:
                    _put(self.unstarted, cid, None)
                self.created[cid] = None
                if len(self.created) > SEEN_LIMIT:
                    self.created.popitem(last=False)
                ev.action, ev.verb = "create", action
                return self._complete_create(ev)
        except SourceError as exc:  # an inspect of an unexpected shape: the event alone still alerts
            self.warn(f"{self.url}: {action} {cid[:12]}: {exc}; reported from the event alone")
            return [ev]
        return []

    def _complete_exec(self, ev: Event) -> None:
        try:
            info = get_json(self.endpoint, f"/exec/{quote(ev.event_id or '', safe='')}/json")
        except (OSError, ValueError) as exc:
            self.warn(f"{self.url}: exec {ev.event_id}: {str(exc)[:160]}; reported from the event alone")
            return
        if not isinstance(info, dict):
            return  # gone already: the event's own (space-split) command stands
        proc = as_dict(info.get("ProcessConfig"), "ProcessConfig")
        entry = as_str(proc.get("entrypoint"))
        body = {
            "Cmd": ([entry] if entry else []) + as_str_list(proc.get("arguments")),
            "Privileged": proc.get("privileged"),
            "Tty": proc.get("tty"),
            "AttachStdin": info.get("OpenStdin"),
            "User": proc.get("user"),
        }
        outcome = ev.outcome
        _exec_body(body, ev)
        ev.outcome = outcome

    def _complete_create(self, ev: Event) -> list[Event]:
        cid = ev.target.container_id or ""
        try:
            info = get_json(self.endpoint, f"/containers/{quote(cid, safe='')}/json")
        except (OSError, ValueError) as exc:
            self.warn(f"{self.url}: container {cid[:12]}: {str(exc)[:160]}; reported from the event alone")
            return [ev]
        if not isinstance(info, dict):
            return [ev]
        config = as_dict(info.get("Config"), "Config")
        body = {**config, "HostConfig": as_dict(info.get("HostConfig"), "HostConfig")}
        _create_body(body, ev)
        ev.outcome = "allowed"
        labels = as_dict(config.get("Labels"), "Config.Labels")
        t = ev.target
        t.namespace = t.namespace or as_str(labels.get(docker_events.NAMESPACE_LABEL))
        t.pod = t.pod or as_str(labels.get(docker_events.POD_LABEL))
        k8s_container = as_str(labels.get(docker_events.CONTAINER_LABEL))
        if k8s_container:
            t.container = k8s_container
        elif not t.container:
            t.container = (as_str(info.get("Name")) or "").lstrip("/") or None
        health = _healthcheck(body, ev)
        return [ev] if health is None else [ev, health]


def _strings(value: Any) -> list[str]:
    return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []


def _put(d: OrderedDict[str, Any], key: str, value: Any) -> None:
    d[key] = value
    if len(d) > OPEN_LIMIT:
        d.popitem(last=False)


class DockerStream:
    """``--docker`` as an input of watch: one batch per Docker event, with the position reached (kept by --state)."""

    def __init__(self, inner: DockerInput) -> None:
        self.inner = inner
        self.name: str = inner.name()

    def run(self, out: queue.Queue[Batch], stop: threading.Event) -> None:
        self.inner.follow(lambda evs: out.put(Batch(self.name, evs, position=self.inner.position())), stop)
