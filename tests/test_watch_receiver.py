"""watch with the webhook's receiver in its own process (docs/watch.md "Two processes"): kill -9 of either process
mid-load, several listeners, --metrics without the webhook, and the --store/--sink/--throttle options. Real
processes, real HTTP(S) on loopback; every wait is bounded."""

from __future__ import annotations

import http.client
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import orjson
import pytest

from execguard.testing.dockerd import TLSFiles, free_port
from webhook_util import Client, alerts_by_audit_id, event_list, exec_event, start_watch, stop, wait_healthy


def receiver_pid(watch_pid: int) -> int:
    """The spawned receiver among watch's children (the other is multiprocessing's resource tracker)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # a child is listed under the thread that started it: a restarted receiver under the supervising thread
        kids = [k for task in Path(f"/proc/{watch_pid}/task").glob("*/children") for k in task.read_text().split()]
        for kid in kids:
            try:
                if b"spawn_main" in Path(f"/proc/{kid}/cmdline").read_bytes():
                    return int(kid)
            except OSError:
                continue
        time.sleep(0.05)
    raise AssertionError("no receiver process")


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":  # exited, waiting for its parent to reap it
            return True
        time.sleep(0.05)
    return False


def value(text: str, series: str) -> float:
    """A sample's value in Prometheus text: the line that starts with ``series``."""
    found = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(series + " ")]
    assert found, f"{series} not in the metrics"
    return float(found[0])


def _loader(k: int, port: int, done: threading.Event, accepted: list[str], unsure: list[str]) -> None:
    """Posts until done; a connection error (the receiver was killed) makes the batch unsure, then it goes on."""
    client = Client(port, timeout=5.0)
    b = 0
    while not done.is_set():
        ids = [f"l{k}-{b}-{i}" for i in range(50)]
        b += 1
        try:
            status = client.post(event_list(ids))
        except (OSError, http.client.HTTPException):
            unsure.extend(ids)  # spooled or not: either is right for a batch never answered
            time.sleep(0.05)
            continue
        if status == 200:
            accepted.extend(ids)
        else:
            time.sleep(0.05)


def _load(port: int, n: int) -> tuple[threading.Event, list[threading.Thread], list[str], list[str]]:
    done = threading.Event()
    accepted: list[str] = []
    unsure: list[str] = []
    threads = [threading.Thread(target=_loader, args=(k, port, done, accepted, unsure)) for k in range(n)]
    for t in threads:
        t.start()
    return done, threads, accepted, unsure


def _wait(cond: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_kill_9_of_the_receiver_mid_load_restarts_it_and_alerts_each_accepted_event_once(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "alerts.jsonl"
    args = ["--audit-webhook", f"127.0.0.1:{port}", "--no-tls", "--spool", str(tmp_path / "spool"), "-o", "jsonl", "--out", str(out)]
    proc = start_watch(args, tmp_path / "stderr.txt")
    try:
        wait_healthy(port, proc)
        first = receiver_pid(proc.pid)
        done, threads, accepted, unsure = _load(port, 3)
        _wait(lambda: len(accepted) >= 1500 and out.exists() and out.stat().st_size > 0, 20)
        os.kill(first, signal.SIGKILL)  # mid-load: requests in flight, the spool's tail maybe torn
        _wait(lambda: receiver_pid(proc.pid) != first, 20)
        second = receiver_pid(proc.pid)
        assert second != first and proc.poll() is None, "the engine process must survive and start a new receiver"
        wait_healthy(port, proc)
        at_restart = len(accepted)
        _wait(lambda: len(accepted) >= at_restart + 1500, 20)  # the new receiver takes load on the same port
        done.set()
        for t in threads:
            t.join(10)
        assert len(accepted) >= at_restart + 1500
        _wait(lambda: sum(alerts_by_audit_id(out).values()) >= len(accepted), 60)
        assert stop(proc) == 0  # SIGTERM: the receiver drains, the engine alerts on what is spooled
        assert gone(second)
    finally:
        stop(proc, signal.SIGKILL)
    counts = alerts_by_audit_id(out)
    missing = [i for i in accepted if counts[i] != 1]
    assert not missing, f"{len(missing)} accepted events not alerted exactly once, e.g. {missing[:3]}"
    assert all(n == 1 for n in counts.values()), "an event alerted twice"
    assert set(counts) <= {*accepted, *unsure}
    err = (tmp_path / "stderr.txt").read_text()
    assert "audit webhook receiver exited (signal SIGKILL); started again" in err and "Traceback" not in err


def test_kill_9_of_the_engine_takes_the_receiver_with_it_and_a_restart_resumes(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "alerts.jsonl"
    args = ["--audit-webhook", f"127.0.0.1:{port}", "--no-tls", "--spool", str(tmp_path / "spool"), "-o", "jsonl", "--out", str(out)]
    proc = start_watch(args, tmp_path / "stderr.txt")
    try:
        wait_healthy(port, proc)
        child = receiver_pid(proc.pid)
        done, threads, accepted, unsure = _load(port, 2)
        _wait(lambda: len(accepted) >= 1000 and out.exists() and out.stat().st_size > 0, 20)
        proc.kill()
        proc.wait(10)
        assert gone(child), "the receiver outlived the engine (PR_SET_PDEATHSIG)"
        done.set()
        for t in threads:
            t.join(10)
        proc = start_watch(args, tmp_path / "stderr.txt")  # the port is free again
        wait_healthy(port, proc)
        assert Client(port).post(event_list(["after-restart"])) == 200
        _wait(lambda: alerts_by_audit_id(out).get("after-restart") == 1, 60)
        assert stop(proc) == 0
    finally:
        stop(proc, signal.SIGKILL)
    counts = alerts_by_audit_id(out)
    assert not [i for i in accepted if counts[i] != 1]
    assert all(n == 1 for n in counts.values())
    assert set(counts) <= {*accepted, *unsure, "after-restart"}


def test_two_listeners_and_a_metrics_port_share_one_engine_and_one_set_of_counters(tmp_path: Path, certs: TLSFiles) -> None:
    a, b, m = free_port(), free_port(), free_port()
    out = tmp_path / "alerts.jsonl"
    tls = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
    args = ["--audit-webhook", f"127.0.0.1:{a}", "--audit-webhook", f"127.0.0.1:{b}", "--metrics", f"127.0.0.1:{m}", *tls,
            "--spool", str(tmp_path / "spool"), "-o", "jsonl", "--out", str(out)]  # fmt: skip
    proc = start_watch(args, tmp_path / "stderr.txt")
    try:
        wait_healthy(a, proc, certs.ca)
        wait_healthy(b, proc, certs.ca)
        wait_healthy(m, proc, certs.ca)
        assert Client(a, certs.ca).post(event_list(["via-a"])) == 200
        assert Client(b, certs.ca).post(event_list(["via-b"])) == 200
        assert Client(a, certs.ca).post(b"{}") == 400
        _wait(lambda: set(alerts_by_audit_id(out)) >= {"via-a", "via-b"}, 30)
        metrics = Client(m, certs.ca)
        status, headers, body = metrics.request("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        text = body.decode()
        # counted in the receiver process (answers, 400s) and in the engine (events, alerts), shown together
        assert value(text, 'execguard_webhook_requests_total{code="200"}') >= 2  # two POSTs, and the health checks
        assert value(text, 'execguard_webhook_requests_total{code="400"}') == 1
        assert 'execguard_parse_errors_total{input="audit-webhook"} 1.0' in text
        assert 'execguard_events_total{input="audit-webhook"} 2.0' in text
        assert "execguard_spool_bytes" in text and 'execguard_alerts_total{severity="' in text
        assert Client(a, certs.ca).request("GET", "/metrics")[2].count(b"execguard_events_total{") == 1  # the same, on the webhook
        assert metrics.request("GET", "/healthz")[0] == 200 and metrics.request("GET", "/readyz")[0] == 200
        assert Client(m, certs.ca).post(event_list(["not-here"])) == 404  # the metrics port takes no batches
        with pytest.raises((OSError, http.client.HTTPException)):
            Client(m).request("GET", "/metrics")  # plain HTTP to a TLS port
        assert stop(proc) == 0
    finally:
        stop(proc, signal.SIGKILL)
    assert set(alerts_by_audit_id(out)) == {"via-a", "via-b"}


def test_metrics_without_the_webhook_for_a_tail_only_watch(tmp_path: Path) -> None:
    m = free_port()
    log, out = tmp_path / "audit.log", tmp_path / "alerts.jsonl"
    log.write_bytes(orjson.dumps(exec_event("tailed-1")) + b"\n")
    args = ["--tail", str(log), "--tail-from-start", "--metrics", f"127.0.0.1:{m}", "--no-tls", "-o", "jsonl", "--out", str(out)]
    proc = start_watch(args, tmp_path / "stderr.txt")
    try:
        wait_healthy(m, proc)
        _wait(lambda: "tailed-1" in alerts_by_audit_id(out), 30)
        text = Client(m).request("GET", "/metrics")[2].decode()
        assert 'execguard_events_total{input="tail"} 1.0' in text
        assert 'execguard_webhook_requests_total{code="' not in text  # no receiver: nothing counted there
        assert Client(m).request("GET", "/readyz")[0] == 200
        assert stop(proc) == 0
    finally:
        stop(proc, signal.SIGKILL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metrics", "0.0.0.0:9090", "--no-tls"], "not a loopback address"),
        (["--metrics", "127.0.0.1:9090"], "--metrics needs --tls-cert and --tls-key"),
        (["--metrics", "nope", "--no-tls"], "expected HOST:PORT"),
        (["--sink", "carrier-pigeon:x"], "--sink 'carrier-pigeon:x'"),
    ],
)
def test_bad_metrics_and_sink_options_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from execguard.cli import app

    result = CliRunner().invoke(app, ["watch", "--tail", str(tmp_path / "x.log"), *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_store_keeps_every_alert_and_a_throttled_sink_pages_once_with_a_count(tmp_path: Path) -> None:
    port = free_port()
    out, store, paged = tmp_path / "alerts.jsonl", tmp_path / "alerts.db", tmp_path / "paged.jsonl"
    args = ["--audit-webhook", f"127.0.0.1:{port}", "--no-tls", "--spool", str(tmp_path / "spool"), "-o", "jsonl", "--out", str(out),
            "--store", str(store), "--sink", f"file:{paged}", "--throttle", "600"]  # fmt: skip
    proc = start_watch(args, tmp_path / "stderr.txt")
    try:
        wait_healthy(port, proc)
        # five shells by the same user in the same pod: one (rule, actor, target) key
        assert Client(port).post(event_list([f"same-{i}" for i in range(5)])) == 200
        _wait(lambda: len(alerts_by_audit_id(out)) >= 5, 30)
        _wait(lambda: paged.exists() and paged.stat().st_size > 0, 10)
        with sqlite3.connect(store) as db:  # committed before the batch was acked
            stored = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
        lines_before_stop = [orjson.loads(x) for x in paged.read_bytes().splitlines()]
        assert stop(proc) == 0
    finally:
        stop(proc, signal.SIGKILL)
    assert len(alerts_by_audit_id(out)) == 5  # the record keeps every alert
    assert stored == 5
    assert [d["event_id"] for d in lines_before_stop] == ["same-0"]  # paged at once, the repeats held back
    paged_alerts = [orjson.loads(x) for x in paged.read_bytes().splitlines()]
    assert len(paged_alerts) == 2
    assert paged_alerts[1]["event_id"] == "same-4" and paged_alerts[1]["throttled"]["count"] == 4  # the summary, at close
