"""The Kubernetes validating admission webhook: AdmissionReview v1 over HTTPS, at any path.

TLS always (1.2 or newer, HTTP/1.1 by ALPN). Each connection takes one of ``max_connections`` slots;
when all are taken the accept loop waits and the kernel backlog queues the rest, so a flood costs
threads no more than the bound. A body is read only with a Content-Length within ``max_body``; a
socket silent for ``timeout`` seconds is closed. A body that is not an AdmissionReview gets 400 and
the server keeps serving; a decider that raises gets 500, and the webhook configuration's
failurePolicy says what the API server then does (docs/guard-kubernetes.md).
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from ..cli.util import one_line
from .k8s_request import RequestError
from .review import Judge, Outcome, review

MAX_BODY = 4 << 20  # an AdmissionReview holds the object and the old object: two pods of etcd's 1.5 MB at most
TIMEOUT = 10.0  # the API server's own webhook timeout is at most 30 s and ours is 5 s by default (manifests)
MAX_CONNECTIONS = 64
HEALTH_PATHS = ("/healthz", "/readyz", "/livez")

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Limits:
    max_body: int = MAX_BODY
    timeout: float = TIMEOUT
    max_connections: int = MAX_CONNECTIONS


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """Server context from PEM files; ssl.SSLError/OSError when they do not load."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class AdmissionServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, judge: Judge, log: Log, limits: Limits) -> None:
        self.judge = judge
        self.log = log
        self.limits = limits
        self.slots = threading.BoundedSemaphore(limits.max_connections)
        self.context = context
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        # headers and body leave in two writes: without NODELAY, Nagle and the client's delayed ACK add 40 ms to each answer
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # the handshake runs in the connection's thread (first read), never in the accept loop
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def process_request(self, request: Any, client_address: Any) -> None:
        self.slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that resets, times out or fails the handshake: one line, never a traceback
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, OSError, TimeoutError)):
            return
        self.log(f"admission: connection from {client_address[0]}: {one_line(exc)}")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the API server keeps connections open between reviews
    server: AdmissionServer
    server_version = "execguard"
    sys_version = ""

    def setup(self) -> None:
        self.request.settimeout(self.server.limits.timeout)  # StreamRequestHandler's class-wide timeout, per server
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one decision line per review instead of an access log

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, code: int, message: str, close: bool = False) -> None:
        self.server.log(f"admission: {code} from {self.client_address[0]}: {one_line(message)}")
        if close:
            self.close_connection = True
        self._send(code, message.encode() + b"\n", "text/plain; charset=utf-8")

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] in HEALTH_PATHS:
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        else:
            self._refuse(405, "POST an AdmissionReview")

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self._refuse(411, "a Content-Length is required", close=True)
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._refuse(411, "a Content-Length is required", close=True)
            return
        if length < 0 or length > self.server.limits.max_body:
            self._refuse(413, f"body of {length} bytes; the limit is {self.server.limits.max_body}", close=True)
            return
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            return  # the client went away mid-body
        try:
            outcome = review(orjson.loads(data), self.server.judge)
        except orjson.JSONDecodeError as exc:
            self._refuse(400, f"body is not JSON: {exc}")
            return
        except RequestError as exc:
            self._refuse(400, f"not an AdmissionReview v1: {exc}")
            return
        except Exception as exc:  # the decider failed: the API server's failurePolicy decides
            self._refuse(500, f"decision failed: {type(exc).__name__}: {exc}")
            return
        self.server.log(one_line(outcome.log_line()))
        self._send(200, orjson.dumps(outcome.response()))


def serve(address: tuple[str, int], context: ssl.SSLContext, judge: Judge, log: Log, limits: Limits | None = None) -> AdmissionServer:
    """A bound server; the caller runs ``serve_forever`` (a thread in tests) and ``shutdown``."""
    return AdmissionServer(address, context, judge, log, limits or Limits())


def parse_listen(text: str) -> tuple[str, int]:
    """ADDR:PORT, [V6]:PORT or :PORT (all addresses) -> (host, port); ValueError naming the problem."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected ADDR:PORT, e.g. 0.0.0.0:8443")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


__all__ = ["AdmissionServer", "Limits", "Outcome", "parse_listen", "serve", "tls_context"]
