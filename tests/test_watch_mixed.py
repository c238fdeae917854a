"""One watch process with the audit webhook and a tailed file at once, sharing one --out: a kill -9 in the middle
of both loads and a restart alert every accepted event and every tailed record exactly once (docs/watch.md
"Exactly once": one state file holds the --out size and both inputs' positions)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from execguard.testing.dockerd import free_port
from webhook_util import Client, alerts_by_audit_id, event_list, post_until, start_watch, stop, wait_healthy


def tailed(i: int) -> bytes:
    """One docker-events exec record; its exec ID (the alert's event_id) carries the number."""
    obj = {
        "Type": "container", "Action": f"exec_start: sh -c echo {i}", "timeNano": 1_764_000_000_000_000_000 + i,
        "Actor": {"ID": "c" * 64, "Attributes": {"execID": f"tail-{i:05d}", "name": "web", "image": "bb"}},
    }  # fmt: skip
    return orjson.dumps(obj) + b"\n"


def _poster(k: int, port: int, done: threading.Event, accepted: list[str], unsure: list[str]) -> None:
    post_until(Client(port, timeout=5.0), f"w-{k}", 100, done, accepted, unsure)


def _writer(log: Path, done: threading.Event, written: list[int]) -> None:
    i = len(written)
    while not done.is_set():
        with open(log, "ab") as f:
            f.write(b"".join(tailed(n) for n in range(i, i + 20)))
        written.extend(range(i, i + 20))
        i += 20
        time.sleep(0.005)


def test_kill_9_with_webhook_and_tail_sharing_out_alerts_each_once(tmp_path: Path) -> None:
    port = free_port()
    log, out, state = tmp_path / "app.log", tmp_path / "alerts.jsonl", tmp_path / "state.json"
    args = ["--audit-webhook", f"127.0.0.1:{port}", "--no-tls", "--spool", str(tmp_path / "spool"),
            "--tail", str(log), "--tail-from-start", "--state", str(state), "-o", "jsonl", "--out", str(out)]  # fmt: skip
    written: list[int] = []
    log.write_bytes(b"".join(tailed(n) for n in range(100)))
    written.extend(range(100))
    proc = start_watch(args, tmp_path / "stderr.txt")
    accepted: list[str] = []
    unsure: list[str] = []
    try:
        wait_healthy(port, proc)
        done = threading.Event()
        threads = [threading.Thread(target=_poster, args=(k, port, done, accepted, unsure)) for k in range(2)]
        threads.append(threading.Thread(target=_writer, args=(log, done, written)))
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        # kill once alerts of both inputs are being written and both loads still run
        while time.monotonic() < deadline:
            counts = alerts_by_audit_id(out) if out.exists() else {}
            if len(accepted) >= 2000 and any(k.startswith("tail-") for k in counts) and any(k.startswith("w-") for k in counts):
                break
            time.sleep(0.02)
        proc.kill()
        proc.wait(10)
        done.set()
        for t in threads:
            t.join(10)
        assert len(accepted) >= 1000 and len(written) > 100

        with open(log, "ab") as f:  # written while nothing watches
            f.write(b"".join(tailed(n) for n in range(len(written), len(written) + 50)))
        written.extend(range(len(written), len(written) + 50))
        proc = start_watch(args, tmp_path / "stderr.txt")
        wait_healthy(port, proc)
        assert Client(port).post(event_list(["after-restart"])) == 200
        want = {f"tail-{n:05d}" for n in written} | {"after-restart"}
        deadline = time.monotonic() + 60
        while not want <= set(alerts_by_audit_id(out)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stop(proc) == 0  # SIGTERM: drains and exits cleanly
    finally:
        stop(proc, signal.SIGKILL)
    counts = alerts_by_audit_id(out)
    assert all(n == 1 for n in counts.values()), f"alerted twice: {[k for k, n in counts.items() if n > 1][:5]}"
    missing = [i for i in accepted if counts[i] != 1]
    assert not missing, f"{len(missing)} accepted webhook events not alerted, e.g. {missing[:3]}"
    lost = [n for n in written if counts[f"tail-{n:05d}"] != 1]
    assert not lost, f"{len(lost)} tailed records not alerted, e.g. {lost[:3]}"
    assert set(counts) <= {*accepted, *unsure, "after-restart", *(f"tail-{n:05d}" for n in written)}
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()


def test_reader_of_stdout_going_away_stops_watch_quietly(tmp_path: Path) -> None:
    """`watch ... | head -1`: once nobody reads the alerts, watch stops (exit 0, no traceback), as hunt does."""
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(tailed(n) for n in range(5)))
    exe = Path(sys.executable).with_name("execguard")
    proc = subprocess.Popen([str(exe), "watch", "--tail", str(log), "--tail-from-start", "-o", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert b"tail-00000" in proc.stdout.readline()
        proc.stdout.close()
        for n in range(5, 200):  # alerts keep coming: their writes find the pipe closed
            with open(log, "ab") as f:
                f.write(tailed(n))
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"retrying" not in err


def test_unreadable_state_file_is_one_error_naming_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from execguard.cli import app

    state = tmp_path / "state.json"
    state.write_text("{not json")
    result = CliRunner().invoke(app, ["watch", "--tail", str(tmp_path / "*.log"), "--state", str(state)])
    assert result.exit_code == 2
    assert f"{state}: not a watch state file" in result.stderr and "Traceback" not in result.stderr
    assert state.read_text() == "{not json"  # left for the user to look at, not overwritten
