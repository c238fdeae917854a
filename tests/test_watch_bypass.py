"""Live bypass verdicts in watch (engine/joinlive.py): unit tests with constructed events, then the real
dockerd + containerd fixture: `watch --containerd SOCK --docker URL`, docker exec vs ctr task exec."""

from __future__ import annotations

import contextlib
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

from execguard.engine.join import BYPASS, Joiner
from execguard.model import Alert, Event
from execguard.policy import PolicyMatcher, parse_policy
from execguard.testing.dockerd import IMAGE, Dockerd
from execguard.times import NS, time_ns
from test_join import alert, api, at, proc


def live(**kw: object) -> Joiner:
    j = Joiner(window=10, skew=3, hold=False, verdicts=True, verdict_lag=0, **kw)  # type: ignore[arg-type]
    assert j.verdicts is not None
    j.verdicts.wall = lambda: 0  # the events are old: as if each came at once
    return j


def feed(j: Joiner, *events: Event) -> list[Alert]:
    return [a for ev in events for a, _ in j.feed(ev, alert(ev), 1)]


def bypasses(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if any(m.rule_id == BYPASS for m in a.matches)]


def tick(j: Joiner, seconds: float) -> list[Alert]:
    wall = time_ns(at(seconds))
    assert wall is not None
    return [a for a, _ in j.tick(wall)]


def coverage(j: Joiner, t: float = 0) -> None:
    """An audit record of another pod: the API server's audit source is on."""
    j.note(api(t, pod="other-0"))


def test_a_node_exec_with_no_record_is_alerted_at_once_and_a_bypass_after_the_window() -> None:
    j = live()
    coverage(j)
    ex = proc(1, 100, 50, ["/bin/sh", "-c", "id"])
    child = proc(1.5, 101, 100, ["id"], tree=None)
    out = feed(j, ex, child)
    assert [a.event for a in out] == [ex, child]  # both out at once, nothing held
    assert len(j.verdicts or ()) == 1
    assert tick(j, 1 + 13) == []  # window + skew not yet passed (exactly at the deadline)
    (b,) = tick(j, 1 + 13.01)
    assert b.event is ex and b.covers == [child] and b.severity == "high" and [m.rule_id for m in b.matches] == [BYPASS]
    assert b.matches[0].reason.startswith("exec bypassed the API server (kubelet :10250, CRI or runtime on the node): ")
    assert "within 10s (clock skew 3s); 1 more process(es) from it" in b.matches[0].reason
    assert tick(j, 100) == [] and j.stats.bypasses == 1  # exactly once


def test_the_input_clock_decides_too() -> None:
    j = live()
    coverage(j)
    ex = proc(1, 100, 50, ["/bin/sh"])
    later = proc(20, 300, 1, ["/bin/ls"], pod="db-0", cid="cd" * 32, tree=True)  # any node event moves the clock
    out = feed(j, ex, later)
    assert bypasses(out) and bypasses(out)[0].event is ex


def test_a_record_within_the_window_and_skew_cancels_and_gives_later_processes_its_identity() -> None:
    j = live()
    coverage(j)
    ex = proc(5, 100, 50, ["/bin/sh"])
    rec = api(7.5)  # 2.5 s after the exec on the audit clock: within the skew of 3
    child = proc(8, 101, 100, ["/usr/bin/curl", "x"], tree=None)
    feed(j, ex, rec)
    assert not j.verdicts and j.verdicts is not None and j.verdicts.cancelled == 1
    feed(j, child)
    assert child.actor.user == "alice"
    assert bypasses(tick(j, 60)) == [] and j.stats.bypasses == 0


def test_a_record_outside_the_skew_does_not_cancel() -> None:
    j = live()
    coverage(j)
    ex = proc(5, 100, 50, ["/bin/sh"])
    out = feed(j, ex, api(8.5))  # 3.5 s after: beyond the skew
    assert j.verdicts is not None and j.verdicts.cancelled == 0
    out += tick(j, 19)
    assert [a.event for a in bypasses(out)] == [ex]


def test_a_record_of_another_pod_does_not_cancel() -> None:
    j = live()
    coverage(j)
    ex = proc(5, 100, 50, ["/bin/sh"])
    feed(j, ex, api(5.5, pod="web-2"))
    assert [a.event for a in bypasses(tick(j, 19))] == [ex]


def test_no_source_to_compare_with_no_verdict() -> None:
    j = live()
    ex = proc(5, 100, 50, ["/bin/sh"])
    feed(j, ex)
    assert not j.verdicts and bypasses(tick(j, 100)) == [] and j.stats.uncovered == 1


def test_a_configured_docker_input_covers_docker_containers_only() -> None:
    j = live(covered=frozenset({"docker"}))
    dock = proc(5, 100, 50, ["/bin/sh"], pod="")
    dock.target.namespace = None
    dock.target.pod = None
    kube = proc(5, 200, 50, ["/bin/sh"], cid="ef" * 32)
    feed(j, dock, kube)
    assert [a.event for a in bypasses(tick(j, 30))] == [dock] and j.stats.uncovered == 1


def test_probes_policy_and_repetition_are_not_bypasses() -> None:
    policy = parse_policy(
        "apiVersion: execguard/v1\nkind: Policy\nentries:\n"
        "  - name: backup-agent\n    action: probe\n    reason: the backup agent's crictl exec\n"
        "    match:\n      commands: ['/usr/bin/backup *']\n"
    )
    j = live(expected=PolicyMatcher(policy).expected)
    coverage(j)
    flagged = proc(1, 100, 50, ["/bin/true"], origin="maybe_exec_probe")
    named = proc(2, 101, 50, ["/usr/bin/backup", "--now"])
    feed(j, flagged, named)
    assert not j.verdicts
    repeats = [proc(10 + i * 20, 200 + i, 50, ["/bin/pg_isready"]) for i in range(3)]
    out: list[Alert] = []
    for ev in repeats:
        out += feed(j, ev)
        out += tick(j, time_ns(ev.time) / NS - time_ns(at(0)) / NS + 14)  # type: ignore[operator]
    assert [a.event for a in bypasses(out)] == repeats[:2]  # the third time it is taken for a probe
    assert j.stats.repeated == 1 and j.stats.expected == 1 and j.stats.probes == 1


def test_the_cap_sheds_the_oldest_undecided_and_counts_it() -> None:
    j = Joiner(window=10, skew=3, hold=False, verdicts=True, verdict_lag=0, verdict_cap=2)
    assert j.verdicts is not None
    j.verdicts.wall = lambda: 0
    coverage(j)
    execs = [proc(1 + i * 0.1, 100 + i, 50, ["/bin/sh"], cid=f"{i:02d}" * 32, pod=f"p-{i}") for i in range(3)]
    out = feed(j, *execs)
    assert len(out) == 3 and j.verdicts is not None and len(j.verdicts) == 2 and j.verdicts.shed == 1
    assert [a.event for a in bypasses(tick(j, 30))] == execs[1:]


def test_drop_at_the_end_counts_what_was_not_due() -> None:
    j = live()
    coverage(j)
    feed(j, proc(1, 100, 50, ["/bin/sh"]))
    assert j.verdicts is not None and j.verdicts.drop() == 1 and bypasses(tick(j, 100)) == []


def test_hunt_mode_is_unchanged_by_the_option() -> None:
    j = Joiner(window=10, skew=3, verdicts=True)  # hold=True: hunt decides by itself
    assert j.verdicts is None



# ---- the real dockerd and its containerd -----------------------------------------------------------------------

WAIT = 30.0
EXE = Path(sys.executable).parent / "execguard"
JOIN = ["--join-window", "2", "--join-skew", "1"]  # a verdict is due 2 + 1 + 2 (prompt inputs) s after its exec


def ctr(d: Dockerd, *args: str) -> subprocess.CompletedProcess[str]:
    sock = d.exec_root / "containerd" / "containerd.sock"
    return subprocess.run(["ctr", "--address", str(sock), "--namespace", "moby", *args], capture_output=True, text=True, timeout=WAIT)


def read(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in out.read_bytes().splitlines()] if out.exists() else []


def rule_ids(a: dict[str, Any]) -> set[str]:
    return {m["rule_id"] for m in a["rules"]}


def wait_for(out: Path, pred: Callable[[dict[str, Any]], bool], timeout: float = WAIT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((a for a in read(out) if pred(a)), None)
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no such alert within {timeout}s: {[(a['event_id'], a['action']) for a in read(out)]}")


@contextlib.contextmanager
def watching(d: Dockerd, out: Path, *inputs: str) -> Iterator[subprocess.Popen[bytes]]:
    sock = d.exec_root / "containerd" / "containerd.sock"
    cmd = [str(EXE), "watch", "--containerd", f"unix://{sock}", *inputs, *JOIN, "-o", "jsonl", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err.decode()


def docker_exec(c: Any, argv: list[str]) -> str:
    api = c.client.api
    exec_id: str = api.exec_create(c.id, argv)["Id"]
    api.exec_start(exec_id)
    return exec_id


def container(d: Dockerd) -> Any:
    return d.client().containers.run(IMAGE, ["sleep", "300"], detach=True, network_mode="none", name=f"c-{uuid.uuid4().hex[:8]}")


@pytest.mark.docker
def test_watch_docker_exec_is_no_bypass_and_ctr_exec_is_one(docker_daemon: Dockerd, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    # a record joins any exec into its container within the window (as in hunt): the ctr exec goes into another one
    c, other = container(docker_daemon), container(docker_daemon)
    try:
        with watching(docker_daemon, out, "--docker", docker_daemon.url):
            # both inputs deliver once a docker exec is seen by both: Docker's record and containerd's runtime exec
            deadline, primed = time.monotonic() + WAIT, False
            while not primed and time.monotonic() < deadline:
                prime = docker_exec(c, ["true"])
                time.sleep(0.5)
                actions = {a["action"] for a in read(out) if a["event_id"] == prime}
                primed = {"exec", "runtime_exec"} <= actions
            assert primed, read(out)
            seen = time.monotonic()
            shell = docker_exec(c, ["sh", "-c", "cat /etc/hostname; sleep 1"])
            exec_id = f"ctr-{uuid.uuid4().hex[:8]}"
            r = ctr(docker_daemon, "task", "exec", "--exec-id", exec_id, other.id, "sh", "-c", "id; sleep 1")
            assert r.returncode == 0, r.stderr
            wait_for(out, lambda a: a["event_id"] == shell and a["action"] == "runtime_exec")
            first = wait_for(out, lambda a: a["event_id"] == exec_id)
            assert BYPASS not in rule_ids(first) and "runtime-exec" in rule_ids(first)  # its own alert, at once
            bypass = wait_for(out, lambda a: BYPASS in rule_ids(a), timeout=15)
            # past every docker exec's window too, with a margin for the wall-clock tick
            time.sleep(max(0.0, seen + 8 - time.monotonic()))
    finally:
        c.remove(force=True)
        other.remove(force=True)
    alerts = read(out)
    assert [a["event_id"] for a in alerts if BYPASS in rule_ids(a)] == [exec_id]
    assert bypass["severity"] == "high" and bypass["action"] == "runtime_exec" and rule_ids(bypass) == {BYPASS}
    reason = bypass["reasons"][0]
    assert reason.startswith("exec bypassed the API server (kubelet :10250, CRI or runtime on the node): ")
    assert f"in container {other.id}" in reason and "within 2s (clock skew 1s)" in reason
    assert len([a for a in alerts if a["event_id"] == exec_id]) == 2  # the runtime exec's alert and the verdict


@pytest.mark.docker
def test_watch_containerd_alone_never_calls_a_bypass(docker_daemon: Dockerd, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    c = container(docker_daemon)
    try:
        with watching(docker_daemon, out):
            deadline, last = time.monotonic() + WAIT, ""
            while time.monotonic() < deadline:
                last = f"ctr-{uuid.uuid4().hex[:8]}"
                ctr(docker_daemon, "task", "exec", "--exec-id", last, c.id, "true")
                time.sleep(0.5)
                if any(a["event_id"] == last for a in read(out)):
                    break
            wait_for(out, lambda a: a["event_id"] == last)
            docker_exec(c, ["sh", "-c", "true"])
            time.sleep(8)  # past the window, skew and lag
    finally:
        c.remove(force=True)
    alerts = read(out)
    assert any(a["event_id"] == last and a["action"] == "runtime_exec" for a in alerts)
    assert not [a for a in alerts if BYPASS in rule_ids(a)]


def test_sighup_keeps_pending_verdicts_and_the_runner_writes_them_when_due() -> None:
    from execguard.engine.load import load_rules
    from execguard.engine.match import Engine
    from execguard.live.inputs import Batch
    from execguard.live.metrics import Metrics
    from execguard.live.runner import Detector, Runner
    from execguard.live.service import Service

    class Keep:
        def __init__(self) -> None:
            self.alerts: list[Alert] = []

        def write(self, alert: Alert) -> None:
            self.alerts.append(alert)

        def close(self) -> None:
            pass

    engine = Engine(load_rules([]))
    sink, metrics = Keep(), Metrics()
    joiner = Joiner(window=10, skew=3, hold=False, verdicts=True, verdict_lag=0)
    runner = Runner(Detector(engine, None, 0, joiner), sink, metrics, None, lambda m: None)
    join = runner.detector.join
    assert join is not None
    ago = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 1))  # a second ago
    record = api(0, pod="other-0")
    ex = proc(1, 100, 50, ["/bin/sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"])
    record.time = ex.time = ago
    join.note(record)
    runner.handle(Batch("containerd", [ex]))
    assert [a.event for a in sink.alerts] == [ex] and len(join.verdicts or ()) == 1

    def pending() -> float | None:
        return metrics.registry.get_sample_value("execguard_join_pending_verdicts")

    service = Service(runner, [], lambda: Detector(engine, None, 0, live()), (), str, print, print, print)
    service._reload()
    assert runner.detector.join is join  # the pending verdict outlives the reload
    runner.tick()
    assert len(sink.alerts) == 1  # not due yet: 13 s after the exec
    assert pending() == 1
    # the wall clock passes the deadline: the quiet stream's tick writes the verdict
    join.verdicts.lag = -20 * NS  # type: ignore[union-attr]
    runner.tick()
    assert [a.event for a in bypasses(sink.alerts)] == [ex] and pending() == 0


@pytest.mark.docker
def test_sigterm_drops_verdicts_not_yet_due_and_says_so(docker_daemon: Dockerd, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    sock = docker_daemon.exec_root / "containerd" / "containerd.sock"
    cmd = [str(EXE), "watch", "--containerd", f"unix://{sock}", "--docker", docker_daemon.url, "--join-window", "60",
           "-o", "jsonl", "--out", str(out)]  # fmt: skip
    c = container(docker_daemon)
    proc_ = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not read(out):
            ctr(docker_daemon, "task", "exec", "--exec-id", f"ctr-{uuid.uuid4().hex[:8]}", c.id, "true")
            time.sleep(0.5)
        assert read(out)
    finally:
        proc_.send_signal(signal.SIGTERM)
        _, err = proc_.communicate(timeout=WAIT)
        c.remove(force=True)
    assert proc_.returncode == 0, err.decode()
    assert not [a for a in read(out) if BYPASS in rule_ids(a)]
    assert "pending bypass verdict" in err.decode() and "dropped (their join window had not passed" in err.decode()


def test_an_old_event_waits_on_the_wall_clock_from_its_arrival() -> None:
    """A log read from its start: its execs are long past their window, the records may be in the next file."""
    j = live()
    assert j.verdicts is not None
    j.verdicts.wall = lambda: time_ns(at(1000)) or 0  # read 1000 s after it happened
    coverage(j)
    ex = proc(1, 100, 50, ["/bin/sh"])
    feed(j, ex)
    assert tick(j, 1000 + 13) == []  # 1012 s past the exec, 13 s after it came: not yet
    feed(j, api(1.5, cmd=["/bin/sh"]))  # the audit log's record, read after the telemetry
    assert tick(j, 2000) == [] and j.verdicts.cancelled == 1


@pytest.mark.docker
def test_pending_verdicts_survive_a_restart_in_the_state_file(docker_daemon: Dockerd, tmp_path: Path) -> None:
    out, state = tmp_path / "alerts.jsonl", tmp_path / "state.json"
    sock = docker_daemon.exec_root / "containerd" / "containerd.sock"
    base = [str(EXE), "watch", "--containerd", f"unix://{sock}", "--docker", docker_daemon.url, "--state", str(state),
            "-o", "jsonl", "--out", str(out), "--join-skew", "1"]  # fmt: skip
    c = container(docker_daemon)
    try:
        first = subprocess.Popen([*base, "--join-window", "60"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline and not read(out):
                ctr(docker_daemon, "task", "exec", "--exec-id", f"ctr-{uuid.uuid4().hex[:8]}", c.id, "true")
                time.sleep(0.5)
            execs = {a["event_id"] for a in read(out)}
            assert execs
        finally:
            first.send_signal(signal.SIGTERM)
            _, err = first.communicate(timeout=WAIT)
        assert first.returncode == 0 and "kept in" in err.decode(), err.decode()
        saved = orjson.loads(state.read_bytes())["join"]
        assert {v["exec"]["event_id"] for v in saved} == {a["event_id"] for a in read(out)}
        # the next start: a 2 s window, so the kept verdicts (no record came) are due 2 + 1 + 2 s after it
        with watching(docker_daemon, out, "--docker", docker_daemon.url, "--state", str(state)):
            wait_for(out, lambda a: BYPASS in rule_ids(a), timeout=20)
            time.sleep(1)
    finally:
        c.remove(force=True)
    called = [a["event_id"] for a in read(out) if BYPASS in rule_ids(a)]
    assert sorted(called) == sorted({a["event_id"] for a in read(out) if a["action"] == "runtime_exec"})
    assert "join" not in orjson.loads(state.read_bytes())
