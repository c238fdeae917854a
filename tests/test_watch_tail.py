"""watch --tail: follow like tail -F through rename and copytruncate rotation, files that appear later, partial
lines, and a restart (a killed process) that resumes from the state file without loss or duplicates."""

from __future__ import annotations

import contextlib
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import orjson

from execguard.live.inputs import Batch
from execguard.live.tail import TailInput
from execguard.model import Event
from execguard.sources.reader import Reader

DATA = Path(__file__).parent / "data"
EXE = Path(sys.executable).parent / "execguard"
WAIT = 30.0


def line(i: int) -> bytes:
    """One docker-events record: an exec whose exec ID carries the number, so every alert is counted by ID."""
    obj = {
        "Type": "container", "Action": f"exec_start: sh -c echo {i}", "timeNano": 1_764_000_000_000_000_000 + i,
        "Actor": {"ID": "c" * 64, "Attributes": {"execID": f"exec-{i:05d}", "name": "web", "image": "bb"}},
    }  # fmt: skip
    return orjson.dumps(obj) + b"\n"


def write(path: Path, numbers: range, mode: str = "ab") -> None:
    with open(path, mode) as f:
        f.write(b"".join(line(i) for i in numbers))


class Events(list[Event]):
    def __call__(self, ev: Event) -> None:
        self.append(ev)

    def ids(self) -> list[str]:
        return [e.event_id or "" for e in self]


def expect(ids: list[str], numbers: Iterable[int]) -> None:
    assert sorted(ids) == [f"exec-{i:05d}" for i in numbers]  # each exactly once


def test_rename_rotation_reads_old_file_to_its_end_then_the_new(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, range(10))
    tail = TailInput([str(log)], from_start=True, linger=60)
    got = Events()
    tail.poll_once(got, first=True)
    expect(got.ids(), range(10))
    write(log, range(10, 15))
    log.rename(tmp_path / "app.log.1")
    write(tmp_path / "app.log.1", range(15, 20))  # the writer has not reopened yet
    write(log, range(20, 30))  # ... and now it has
    tail.poll_once(got)
    expect(got.ids(), range(30))
    assert got[-1].source.file == str(log) and got[-1].source.line == 10


def test_copytruncate_rotation_is_read_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, range(10))
    tail = TailInput([str(log)], from_start=True)
    got = Events()
    tail.poll_once(got, first=True)
    shutil.copy(log, tmp_path / "app.log.1")
    with open(log, "r+b") as f:
        f.truncate(0)
    write(log, range(10, 12))  # shorter than before: seen as a truncation
    tail.poll_once(got)
    expect(got.ids(), range(12))
    with open(log, "r+b") as f:
        f.truncate(0)
    write(log, range(100, 130))  # longer than before between two polls: seen by the first bytes
    tail.poll_once(got)
    expect(got.ids(), [*range(12), *range(100, 130)])


def test_files_appearing_later_match_the_glob_and_are_read_whole(tmp_path: Path) -> None:
    tail = TailInput([str(tmp_path / "logs" / "*.log")])
    got = Events()
    tail.poll_once(got, first=True)
    (tmp_path / "logs").mkdir()
    write(tmp_path / "logs" / "a.log", range(5))
    (tmp_path / "logs" / "skip.txt").write_bytes(line(99))
    tail.poll_once(got)
    write(tmp_path / "logs" / "b.log", range(5, 8))
    tail.poll_once(got)
    expect(got.ids(), range(8))


def test_existing_files_start_at_their_end_unless_asked(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, range(5))
    got = Events()
    tail = TailInput([str(log)])
    tail.poll_once(got, first=True)
    write(log, range(5, 7))
    tail.poll_once(got)
    expect(got.ids(), range(5, 7))


def test_partial_line_is_held_until_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    warnings: list[str] = []
    tail = TailInput([str(log)], from_start=True, warn=lambda f, n, m: warnings.append(m))
    got = Events()
    whole = line(1)
    log.write_bytes(whole[:40])
    tail.poll_once(got, first=True)
    assert got == [] and warnings == []
    with open(log, "ab") as f:
        f.write(whole[40:])
    tail.poll_once(got)
    expect(got.ids(), range(1, 2))
    assert warnings == []


def test_dockerd_debug_log_is_followed_with_its_own_parser(tmp_path: Path) -> None:
    # tests/data/docker/dockerd-debug.log is a real dockerd -D log (see tests/data/README.md)
    log = tmp_path / "dockerd.log"
    sample = (DATA / "docker" / "dockerd-debug.log").read_bytes()
    cut = sample.index(b"\n", len(sample) // 2) + 1
    log.write_bytes(sample[:cut])
    tail = TailInput([str(log)], from_start=True)
    got = Events()
    tail.poll_once(got, first=True)
    with open(log, "ab") as f:
        f.write(sample[cut:])
    tail.poll_once(got)
    whole = list(Reader().read([str(DATA / "docker" / "dockerd-debug.log")]))
    assert [e.command for e in got if e.action == "exec"] == [e.command for e in whole if e.action == "exec"]
    assert any(e.action == "exec" for e in got)


def test_position_resumes_after_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, range(10))
    got = Events()
    first = TailInput([str(log)], from_start=True)
    first.poll_once(got, first=True)
    saved = orjson.loads(orjson.dumps(first.position()))  # what the state file keeps
    write(log, range(10, 20))
    log.rename(tmp_path / "app.log.1")  # rotated while we were down
    write(log, range(20, 25))
    second = TailInput([str(log)], saved)
    stop = threading.Event()
    batches: queue.Queue[Batch] = queue.Queue()
    t = threading.Thread(target=second.run, args=(batches, stop))
    t.start()
    deadline = time.monotonic() + WAIT
    while len(got) < 25 and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            batch = batches.get(timeout=0.05)
            got.extend(batch.events)
            assert batch.ack is not None and batch.position is not None
            batch.ack({})
            assert second.acked == batch.position  # a restart of the input resumes from here
    stop.set()
    t.join(WAIT)
    expect(got.ids(), range(25))


def _offset(state: Path) -> int | None:
    try:
        return int(orjson.loads(state.read_bytes())["inputs"]["tail"]["files"][0]["offset"])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _alert_ids(out: Path) -> list[str]:
    if not out.exists():
        return []
    return [orjson.loads(raw)["event_id"] for raw in out.read_bytes().splitlines() if raw.strip()]


def _wait_ids(out: Path, n: int) -> list[str]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        ids = _alert_ids(out)
        if len(ids) >= n:
            return ids
        time.sleep(0.05)
    return _alert_ids(out)


def test_killed_watch_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    log, state, out = tmp_path / "app.log", tmp_path / "tail.json", tmp_path / "alerts.jsonl"
    write(log, range(20))
    cmd = [str(EXE), "watch", "--tail", str(tmp_path / "*.log"), "--tail-state", str(state), "--tail-from-start",
           "-o", "jsonl", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert len(_wait_ids(out, 20)) == 20
        write(log, range(20, 30))
        assert len(_wait_ids(out, 30)) == 30
        deadline = time.monotonic() + WAIT
        while _offset(state) != log.stat().st_size and time.monotonic() < deadline:
            time.sleep(0.05)  # the checkpoint of the last read
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(WAIT)
    write(log, range(30, 40))  # written while nothing watches
    log.rename(tmp_path / "app.log.1")
    write(tmp_path / "app.log.1", range(40, 45))
    write(log, range(45, 50))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_ids(out, 50)
        time.sleep(0.5)  # would a duplicate follow?
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err.decode()
    expect(_alert_ids(out), range(50))
    assert b"Traceback" not in err


def test_cli_needs_an_input() -> None:
    r = subprocess.run([str(EXE), "watch"], capture_output=True, timeout=WAIT, check=False)
    assert r.returncode == 2 and b"give an input: --audit-webhook HOST:PORT, --docker URL, --containerd URL or --tail PATH" in r.stderr


def test_falco_output_is_followed_as_json_records(tmp_path: Path) -> None:
    # tests/data/falco-output/alerts.jsonl: Falco's JSON alerts, written in its output's shape (tests/data/README.md)
    sample = (DATA / "falco-output" / "alerts.jsonl").read_bytes()
    log = tmp_path / "falco.log"
    cut = sample.index(b"\n", len(sample) // 2) + 1
    log.write_bytes(sample[:cut])
    warnings: list[str] = []
    tail = TailInput([str(log)], from_start=True, warn=lambda f, n, m: warnings.append(f"{n}: {m}"))
    got = Events()
    tail.poll_once(got, first=True)
    with open(log, "ab") as f:
        f.write(sample[cut:])
    tail.poll_once(got)
    whole = list(Reader().read([str(DATA / "falco-output" / "alerts.jsonl")]))
    assert [(e.source.line, e.command) for e in got] == [(e.source.line, e.command) for e in whole]
    assert {e.action for e in got} == {"process"} and len(got) == 7
    assert got[0].process is not None and got[0].process.in_init_tree is False
    assert warnings == ["11: falco: output_fields is str, not an object"]


def test_auditd_log_is_followed_with_its_own_parser(tmp_path: Path) -> None:
    sample = (DATA / "auditd" / "written-container-exec.log").read_bytes()
    log = tmp_path / "audit.log"
    cut = sample.index(b"type=EOE", len(sample) // 3)  # stop inside an event: its records wait for the rest
    log.write_bytes(sample[:cut])
    tail = TailInput([str(log)], from_start=True)
    got = Events()
    tail.poll_once(got, first=True)
    with open(log, "ab") as f:
        f.write(sample[cut:])
    tail.poll_once(got)
    whole = list(Reader().read([str(DATA / "auditd" / "written-container-exec.log")]))
    assert sorted((e.source.line or 0, e.command) for e in got) == sorted((e.source.line or 0, e.command) for e in whole)
    # every event went out as the log moved on (EOE, or a later record past the window): nothing waits for a close
    assert len(got) == 6 and all(e.source.format == "auditd" for e in got)


def test_watch_cli_alerts_on_a_tailed_falco_file(tmp_path: Path) -> None:
    log, out = tmp_path / "falco.log", tmp_path / "alerts.jsonl"
    sample = (DATA / "falco-output" / "alerts.jsonl").read_bytes()
    log.write_bytes(sample[: sample.index(b"\n") + 1])  # the exec'd shell first, the rest while watched
    cmd = [str(EXE), "watch", "--tail", str(log), "--tail-state", str(tmp_path / "tail.json"), "--tail-from-start",
           "-o", "jsonl", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT
        while (not out.exists() or not out.read_bytes().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(log, "ab") as f:
            f.write(sample[sample.index(b"\n") + 1 :])
        while (not out.exists() or out.read_bytes().count(b"\n") < 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # would more follow?
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err.decode()
    alerts = [orjson.loads(raw) for raw in out.read_bytes().splitlines()]
    assert [(a["source"]["line"], a["rule_id"], a["severity"]) for a in alerts] == [
        (1, "node-exec-shell", "low"), (2, "cmd-download-pipe-shell", "critical"), (3, "cmd-miner", "critical"),
    ]  # fmt: skip
    assert all(a["action"] == "process" and a["process"] for a in alerts)
    assert b"falco.log:11: falco: output_fields is str, not an object" in err and b"Traceback" not in err
