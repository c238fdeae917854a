"""The audit webhook over real HTTP(S) on loopback: TLS + token, mTLS, bad bodies, overload, kill -9 mid-load."""

from __future__ import annotations

import http.client
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.live.inputs import supervise
from execguard.live.metrics import Metrics
from execguard.live.runner import Detector, OutFile, Runner
from execguard.live.spool import Spool
from execguard.live.webhook import Receiver, SpoolInput, serve, tls_context
from execguard.sinks.jsonl import JsonlSink
from execguard.testing.dockerd import TLSFiles, free_port
from webhook_util import Client, alerts_by_audit_id, event_list, post_until, start_watch, stop, wait_healthy

TOKEN = "s3cret-token-for-tests"



class Live:
    """A receiver and the spool consumer in this process, on a loopback port."""

    def __init__(self, tmp: Path, tls: ssl.SSLContext | None = None, token: str | None = None, max_bytes: int = 1 << 30,
                 consume: bool = True, timeout: float = 5.0) -> None:  # fmt: skip
        self.spool = Spool(tmp / "spool", max_bytes=max_bytes)
        self.metrics = Metrics(lambda: self.spool.size, lambda: self.spool.lag)
        self.out = OutFile(tmp / "alerts.jsonl", self.spool.mark, text=False)
        detector = Detector(Engine(load_rules()), None, 0)
        self.warnings: list[str] = []
        self.runner = Runner(detector, JsonlSink(self.out.handle), self.metrics, self.out, self.warnings.append)
        self.receiver = Receiver(("127.0.0.1", 0), self.spool, self.metrics, tls, token, timeout=timeout)
        self.port = int(self.receiver.server_address[1])
        serve(self.receiver)
        self._loop: threading.Thread | None = None
        if consume:
            self.consume()

    def consume(self) -> None:
        supervise(SpoolInput(self.spool, self.metrics), self.runner.queue, self.runner.stop, self.warnings.append)
        self._loop = threading.Thread(target=self._run, daemon=True)
        self._loop.start()

    def _run(self) -> None:
        while not self.runner.stop.is_set():
            self.runner.step(0.1)

    def wait_drained(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.spool.empty():
            assert time.monotonic() < deadline, "spool not drained"
            time.sleep(0.05)

    def close(self) -> None:
        self.receiver.shutdown()
        self.runner.stop.set()
        if self._loop is not None:
            self._loop.join(5)
        self.receiver.server_close()
        self.out.handle.close()
        self.spool.close()


@pytest.fixture
def live_factory(tmp_path: Path) -> Iterator[list[Live]]:
    made: list[Live] = []
    yield made
    for one in made:
        one.close()


def test_tls_token_posts_become_alerts_and_metrics(tmp_path: Path, certs: TLSFiles, live_factory: list[Live]) -> None:
    live = Live(tmp_path, tls_context(certs.server_cert, certs.server_key), TOKEN)
    live_factory.append(live)
    client = Client(live.port, certs.ca, TOKEN)
    assert client.post(event_list(["t-1", "t-2"]), "/k8s/audit") == 200
    assert client.post(event_list(["t-3"]), "/") == 200  # any path, the same keep-alive connection
    assert Client(live.port, certs.ca, "wrong").post(event_list(["t-x"])) == 401
    assert Client(live.port, certs.ca).post(event_list(["t-y"])) == 401
    with pytest.raises(ssl.SSLError):  # a client that does not trust our CA never gets to talk
        Client(live.port, certs.client_cert, TOKEN).post(event_list(["t-z"]))
    live.wait_drained()
    assert alerts_by_audit_id(tmp_path / "alerts.jsonl") == {"t-1": 1, "t-2": 1, "t-3": 1}
    status, headers, body = client.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    assert 'execguard_events_total{input="audit-webhook"} 3.0' in text
    assert 'execguard_alerts_total{severity="medium"} 3.0' in text
    assert "execguard_spool_lag_bytes 0.0" in text
    assert 'execguard_webhook_requests_total{code="401"} 2.0' in text
    assert TOKEN not in text
    assert client.request("GET", "/readyz")[0] == 200


def test_mtls_requires_a_client_certificate(tmp_path: Path, certs: TLSFiles, live_factory: list[Live]) -> None:
    live = Live(tmp_path, tls_context(certs.server_cert, certs.server_key, certs.ca))
    live_factory.append(live)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        Client(live.port, certs.ca).post(event_list(["m-0"]))
    with_cert = Client(live.port, certs.ca, cert=(certs.client_cert, certs.client_key))
    assert with_cert.post(event_list(["m-1"])) == 200
    live.wait_drained()
    assert alerts_by_audit_id(tmp_path / "alerts.jsonl") == {"m-1": 1}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", b"not JSON"),
        (b"[]", b"not an EventList object"),
        (b'{"kind":"Pod","items":[]}', b"not 'EventList'"),
        (b'{"kind":"EventList","apiVersion":"v1","items":[]}', b"not audit.k8s.io/v1"),
        (b'{"kind":"EventList"}', b"without an items list"),
        (b'{"kind":"EventList","items":[1]}', b"items[0] is not an object"),
    ],
)
def test_bad_bodies_get_400_with_a_reason_and_serving_goes_on(tmp_path: Path, live_factory: list[Live], body: bytes, reason: bytes) -> None:
    live = Live(tmp_path)
    live_factory.append(live)
    client = Client(live.port)
    status, _, answer = client.request("POST", "/", body)
    assert status == 400 and reason in answer
    assert client.post(event_list(["after-bad"])) == 200
    live.wait_drained()
    assert alerts_by_audit_id(tmp_path / "alerts.jsonl") == {"after-bad": 1}


def test_oversized_body_gets_413_and_a_bad_item_is_a_warning(tmp_path: Path, live_factory: list[Live]) -> None:
    live = Live(tmp_path)
    live.receiver.max_body = 10_000
    live_factory.append(live)
    client = Client(live.port)
    assert client.post(event_list([f"big-{i}" for i in range(50)])) == 413
    # an item the parser refuses: that item is reported, its neighbours alert
    body = event_list(["ok-1"]).replace(b'"items":[', b'"items":[{"kind":"Event","user":"not an object","auditID":"bad"},')
    assert client.post(body) == 200
    live.wait_drained()
    assert alerts_by_audit_id(tmp_path / "alerts.jsonl") == {"ok-1": 1}
    assert any("item 1" in w and "user is str" in w for w in live.warnings)


def test_overload_gets_429_and_every_accepted_batch_is_alerted(tmp_path: Path, live_factory: list[Live]) -> None:
    live = Live(tmp_path, max_bytes=64 * 1024, consume=False)  # nothing drains the spool yet
    live_factory.append(live)
    client = Client(live.port)
    accepted: list[str] = []
    refused = 0
    for b in range(40):
        ids = [f"o-{b}-{i}" for i in range(10)]
        status, headers, _ = client.request("POST", "/", event_list(ids))
        if status == 200:
            accepted.extend(ids)
        else:
            assert status == 429 and headers["retry-after"] == "1"
            refused += 1
    assert accepted and refused
    assert client.request("GET", "/readyz")[0] == 503  # full: a load balancer should send batches elsewhere
    live.consume()
    live.wait_drained()
    assert client.post(event_list(["o-late"])) == 200  # room again once processed
    live.wait_drained()
    assert alerts_by_audit_id(tmp_path / "alerts.jsonl") == dict.fromkeys([*accepted, "o-late"], 1)


def test_silent_clients_time_out_and_do_not_block_others(tmp_path: Path, certs: TLSFiles, live_factory: list[Live]) -> None:
    live = Live(tmp_path, tls_context(certs.server_cert, certs.server_key), timeout=1.0)
    live_factory.append(live)
    silent = [socket.create_connection(("127.0.0.1", live.port), timeout=10) for _ in range(3)]  # no handshake, no headers
    half = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    with ssl.create_default_context(cafile=str(certs.ca)).wrap_socket(half, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")  # a body that never comes
        assert Client(live.port, certs.ca).post(event_list(["while-stalled"])) == 200
        started = time.monotonic()
        assert tls.recv(100) == b""  # the server gave up on the stalled body after its timeout
        assert time.monotonic() - started < 8
    for s in silent:
        s.settimeout(8)
        assert s.recv(100) == b""  # closed by the server, not left open forever
        s.close()
    live.wait_drained()
    assert alerts_by_audit_id(tmp_path / "alerts.jsonl") == {"while-stalled": 1}


def _loader(k: int, port: int, ca: Path, stop_at: threading.Event, accepted: list[str], unsure: list[str]) -> None:
    post_until(Client(port, ca, TOKEN, timeout=5.0), f"k-{k}", 200, stop_at, accepted, unsure)


def test_kill_9_mid_load_then_restart_alerts_each_accepted_event_once(tmp_path: Path, certs: TLSFiles) -> None:
    port = free_port()
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    out = tmp_path / "alerts.jsonl"
    args = ["--audit-webhook", f"127.0.0.1:{port}", "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
            "--token-file", str(token), "--spool", str(tmp_path / "spool"), "-o", "jsonl", "--out", str(out)]  # fmt: skip
    proc = start_watch(args, tmp_path / "stderr.txt")
    try:
        wait_healthy(port, proc, certs.ca)
        accepted: list[str] = []
        unsure: list[str] = []
        done = threading.Event()
        loaders = [threading.Thread(target=_loader, args=(k, port, certs.ca, done, accepted, unsure)) for k in range(3)]
        for t in loaders:
            t.start()
        deadline = time.monotonic() + 20
        # kill once alerts are being written and batches are still arriving
        while (len(accepted) < 3000 or not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.kill()  # kill -9 mid-load: batches in flight, alerts written but not checkpointed
        proc.wait(10)
        done.set()
        for t in loaders:
            t.join(10)
        assert len(accepted) >= 1000
        before = sum(alerts_by_audit_id(out).values())

        proc = start_watch(args, tmp_path / "stderr.txt")
        wait_healthy(port, proc, certs.ca)
        client = Client(port, certs.ca, TOKEN)
        assert client.post(event_list(["after-restart"])) == 200
        deadline = time.monotonic() + 60
        while alerts_by_audit_id(out).get("after-restart") != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stop(proc) == 0  # SIGTERM: drains and exits cleanly
    finally:
        stop(proc, signal.SIGKILL)
    counts = alerts_by_audit_id(out)
    missing = [i for i in accepted if counts[i] != 1]
    assert not missing, f"{len(missing)} accepted events not alerted exactly once, e.g. {missing[:3]} -> {[counts[i] for i in missing[:3]]}"
    assert all(n == 1 for n in counts.values()), "an event alerted twice"
    assert set(counts) <= {*accepted, *unsure, "after-restart"}
    assert before <= len(counts)


POLICY = """apiVersion: execguard/v1
kind: Policy
metadata: {name: test}
entries:
  - name: alice-shells
    action: suppress
    reason: {reason}
    match:
      users: [alice]
"""


def test_sighup_reloads_the_policy_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    port = free_port()
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY.replace("{reason}", "first"))
    out = tmp_path / "alerts.jsonl"
    args = ["--audit-webhook", f"127.0.0.1:{port}", "--no-tls", "--spool", str(tmp_path / "spool"), "--policy", str(policy),
            "-o", "jsonl", "--out", str(out)]  # fmt: skip
    errors = tmp_path / "stderr.txt"
    proc = start_watch(args, errors)
    try:
        wait_healthy(port, proc)
        client = Client(port)

        def posted(audit_id: str) -> None:
            assert client.post(event_list([audit_id])) == 200
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and b"execguard_spool_lag_bytes 0.0" not in client.request("GET", "/metrics")[2]:
                time.sleep(0.05)

        posted("h-suppressed")  # alice's shell: suppressed by the policy
        policy.write_text("entries: [not: a policy")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while b"reload failed" not in errors.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        posted("h-still-suppressed")  # the last good policy still applies
        policy.write_text("apiVersion: execguard/v1\nkind: Policy\nmetadata: {name: empty}\nentries: []\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while b"rules and policy reloaded" not in errors.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        posted("h-alerted")  # the new policy suppresses nothing
        metrics = client.request("GET", "/metrics")[2].decode()
        assert 'execguard_reloads_total{result="failed"} 1.0' in metrics
        assert 'execguard_reloads_total{result="ok"} 1.0' in metrics
        assert stop(proc) == 0
    finally:
        stop(proc, signal.SIGKILL)
    assert alerts_by_audit_id(out) == {"h-alerted": 1}
    text = errors.read_text()
    assert "error: reload failed, keeping the rules and policy in use:" in text and "Traceback" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give an input"),
        (["--audit-webhook", "nope"], "expected HOST:PORT"),
        (["--audit-webhook", "0.0.0.0:8443"], "needs --tls-cert and --tls-key"),
        (["--audit-webhook", "0.0.0.0:8443", "--no-tls"], "not a loopback address"),
        (["--audit-webhook", "127.0.0.1:0", "--no-tls", "--token-file", "/nonexistent/token"], "/nonexistent/token"),
    ],
)
def test_unsafe_or_incomplete_options_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from execguard.cli import app

    result = CliRunner().invoke(app, ["watch", *args, "--spool", str(tmp_path / "spool")])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
