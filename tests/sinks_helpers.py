"""Alerts from the bundled samples, and loopback receivers (HTTP, syslog UDP/TCP), for the sink tests."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from execguard.cli import sample_dir
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.model import Alert
from execguard.sources.reader import Reader


@cache
def _samples() -> tuple[Alert, ...]:
    files = [str(p) for p in sorted(sample_dir().iterdir()) if p.suffix != ".md"]
    return tuple(Engine(load_rules([])).run(Reader().read(files)))


def sample_alerts() -> list[Alert]:
    return list(_samples())


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll until check() is true; False after timeout (every test stays bounded in time)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()


@dataclass
class Receiver:
    """A real HTTP server on loopback recording every JSON body; ``status`` answers, ``gate`` holds requests."""

    port: int = 0
    status: list[int] = field(default_factory=list)  # answers to give first, then 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    gate: threading.Event | None = None
    tls: Any = None  # an ssl.SSLContext for https
    arrived: int = 0  # requests read, answered or not

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.arrived += 1
                if receiver.gate is not None:
                    receiver.gate.wait(30)
                code = receiver.status.pop(0) if receiver.status else 200
                if code == 200:
                    receiver.bodies.append(orjson.loads(body))
                self.send_response(code)
                if code == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()


RFC5424 = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<pid>\S+) (?P<msgid>\S+) (?P<sd>-|\[.*?(?<!\\)\])(?: (?P<msg>.*))?",
    re.S,
)
SD_PARAM = re.compile(r'(\w+)="((?:[^"\\\]]|\\["\\\]])*)"')


def parse_syslog(data: bytes) -> dict[str, Any]:
    m = RFC5424.fullmatch(data)
    assert m is not None, data[:200]
    sd = m["sd"].decode()
    params = {k: re.sub(r'\\(["\\\]])', r"\1", v) for k, v in SD_PARAM.findall(sd)}
    msg = m["msg"] or b""
    return {"pri": int(m["pri"]), "ts": m["ts"].decode(), "msgid": m["msgid"].decode(), "sd_id": sd[1:].split(" ")[0],
            "params": params, "bom": msg.startswith(b"\xef\xbb\xbf"), "msg": msg.removeprefix(b"\xef\xbb\xbf").decode()}  # fmt: skip


def udp_listener() -> tuple[socket.socket, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(10)
    return s, s.getsockname()[1]


class TcpCollector:
    """A syslog TCP listener reading RFC 6587 octet-counted frames."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.frames: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while b" " in buf:
                    length, _, rest = buf.partition(b" ")
                    n = int(length)
                    if len(rest) < n:
                        break
                    self.frames.append(rest[:n])
                    buf = rest[n:]

    def close(self) -> None:
        self.sock.close()


class Collect:
    """A sink that keeps alerts and lets a test wait for one (the live-input tests)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.cond = threading.Condition()

    def write(self, alert: Alert) -> None:
        with self.cond:
            self.alerts.append(alert)
            self.cond.notify_all()

    def close(self) -> None:
        pass

    def wait_for(self, pred: Callable[[Alert], bool], timeout: float = 30.0) -> Alert:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = next((a for a in self.alerts if pred(a)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(a.event.event_id, a.event.command) for a in self.alerts]
                    raise AssertionError(f"no such alert within {timeout}s; got {got}")
                self.cond.wait(left)
