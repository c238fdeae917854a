"""The Kubernetes validating admission webhook: AdmissionReview v1 over HTTPS, at any path.

TLS always (1.2 or newer, HTTP/1.1 by ALPN), connections kept alive as kube-apiserver keeps them.
Each connection takes one of ``max_connections`` slots (its own thread); when all are taken the
accept loop waits and the kernel backlog queues the rest, so a flood costs threads no more than the
bound. A body is read only with a Content-Length within ``max_body``; a socket silent for ``timeout``
seconds is closed. A body that is not an AdmissionReview gets 400 and the server keeps serving; a
decider that raises gets 500, and the webhook configuration's failurePolicy says what the API server
then does (docs/guard-kubernetes.md).

The HTTP/1.1 handling is this module's own, not http.server's: a review is one header parse and one
``sendall`` of headers and body together (one TLS record): a third less wall time per review at the
median, and fewer objects for the collector (benchmarks/RESULTS.md, "Admission webhook tail").
``drain`` is the SIGTERM path: stop reading new requests, answer the ones being read, close idle
kept-alive connections.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from ..model import display
from .k8s_request import RequestError
from .review import Judge, Outcome, review

MAX_BODY = 4 << 20  # an AdmissionReview holds the object and the old object: two pods of etcd's 1.5 MB at most
TIMEOUT = 10.0  # the API server's own webhook timeout is at most 30 s and ours is 5 s by default (manifests)
MAX_CONNECTIONS = 64
HEALTH_PATHS = (b"/healthz", b"/readyz", b"/livez")
MAX_LINE = 8192  # request line or one header line
MAX_HEADERS = 100
REASONS = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed", 411: "Length Required", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 505: "HTTP Version Not Supported"}  # fmt: skip
JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"

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


def one_line(text: object) -> str:
    return display(str(text))  # control characters escaped: a client's text cannot forge log lines


class AdmissionServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, judge: Judge, log: Log, limits: Limits) -> None:
        self.judge = judge
        self.log = log
        self.limits = limits
        self.slots = threading.BoundedSemaphore(limits.max_connections)
        self.context = context
        self.draining = False
        self._conns: dict[socket.socket, bool] = {}  # connection -> busy answering a request
        self._conns_lock = threading.Lock()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Connection)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        # without NODELAY, Nagle and the client's delayed ACK can add 40 ms to an answer
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # the handshake runs in the connection's thread, never in the accept loop
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
        # _Connection ends quietly on what a client can cause; anything else is one line, never a traceback
        self.log(f"admission: connection from {client_address[0]}: {one_line(sys.exc_info()[1])}")

    def mark(self, conn: socket.socket, busy: bool | None) -> bool:
        """busy True/False, or None when the connection ends; False once a drain has begun."""
        with self._conns_lock:
            if busy is None:
                self._conns.pop(conn, None)
            else:
                self._conns[conn] = busy
            return not self.draining

    def drain(self, timeout: float = TIMEOUT) -> bool:
        """After shutdown(): answer the requests being read, close idle connections; True when none is left."""
        self.draining = True
        deadline = time.monotonic() + timeout
        while True:
            with self._conns_lock:
                for conn, busy in self._conns.items():
                    if not busy:  # waiting for a next request that will not be read: wake its thread
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(conn, socket.SHUT_RDWR)
                if not self._conns:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


class BadRequest(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _headers(rfile: BinaryIO) -> dict[bytes, bytes]:
    """Header fields (names lower-cased) up to the blank line; BadRequest when too many or too long."""
    fields: dict[bytes, bytes] = {}
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise BadRequest(431, "header line too long")
        if line in (b"\r\n", b"\n"):
            return fields
        if not line:
            raise ConnectionError("closed mid-headers")
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadRequest(400, "malformed header line")
        key = name.strip().lower()
        value = value.strip()
        if key in fields and key == b"content-length" and fields[key] != value:
            raise BadRequest(400, "conflicting Content-Length headers")
        fields[key] = value
    raise BadRequest(431, f"more than {MAX_HEADERS} header fields")


class _Connection(socketserver.BaseRequestHandler):
    server: AdmissionServer
    request: ssl.SSLSocket

    def handle(self) -> None:
        sock = self.request
        server = self.server
        server.mark(sock, False)
        try:
            sock.settimeout(server.limits.timeout)
            sock.do_handshake()
            rfile: BinaryIO = sock.makefile("rb", buffering=65536)  # type: ignore[assignment]
            while self._one(sock, rfile):
                pass
        except (OSError, ConnectionError, ValueError):
            pass  # a client that resets, times out, fails the handshake or is shut by a drain: nothing to answer
        finally:
            server.mark(sock, None)
            with contextlib.suppress(OSError):
                sock.close()

    def _one(self, sock: ssl.SSLSocket, rfile: BinaryIO) -> bool:
        """Read and answer one request; False when the connection is to close."""
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            return False
        self.server.mark(sock, True)
        keep = True
        try:
            parts = line.split()
            if len(line) > MAX_LINE or len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                raise BadRequest(400, "malformed request line")
            method, target, version = parts
            fields = _headers(rfile)
            connection = fields.get(b"connection", b"").lower()
            keep = b"close" not in connection and (version == b"HTTP/1.1" or b"keep-alive" in connection)
            code, body, ctype = self._route(method, target, fields, rfile, sock)
        except BadRequest as exc:
            self._log_refusal(exc.code, str(exc))
            keep = False
            code, body, ctype = exc.code, str(exc).encode() + b"\n", TEXT
        keep = keep and not self.server.draining and code not in (411, 413)
        reason = REASONS.get(code, "")
        head = (f"HTTP/1.1 {code} {reason}\r\nServer: execguard\r\nContent-Type: {ctype.decode()}\r\n"
                f"Content-Length: {len(body)}\r\n{'' if keep else 'Connection: close' + chr(13) + chr(10)}\r\n")  # fmt: skip
        sock.sendall(head.encode() + body)
        return self.server.mark(sock, False) and keep  # idle only once answered: a drain never cuts an answer

    def _log_refusal(self, code: int, message: str) -> None:
        self.server.log(f"admission: {code} from {self.client_address[0]}: {one_line(message)}")

    def _route(
        self, method: bytes, target: bytes, fields: dict[bytes, bytes], rfile: BinaryIO, sock: ssl.SSLSocket
    ) -> tuple[int, bytes, bytes]:
        if method == b"GET":
            if target.split(b"?", 1)[0] in HEALTH_PATHS:
                return 200, b"ok\n", TEXT
            raise BadRequest(405, "POST an AdmissionReview")
        if method != b"POST":
            raise BadRequest(405, "POST an AdmissionReview")
        if b"transfer-encoding" in fields:
            raise BadRequest(411, "a Content-Length is required")
        try:
            length = int(fields[b"content-length"])
        except (KeyError, ValueError):
            raise BadRequest(411, "a Content-Length is required") from None
        limit = self.server.limits.max_body
        if length < 0 or length > limit:
            raise BadRequest(413, f"body of {length} bytes; the limit is {limit}")
        if fields.get(b"expect", b"").lower() == b"100-continue":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        data = rfile.read(length)
        if len(data) < length:
            raise ConnectionError("closed mid-body")
        return self._review(data)

    def _review(self, data: bytes) -> tuple[int, bytes, bytes]:
        try:
            outcome = review(orjson.loads(data), self.server.judge)
        except orjson.JSONDecodeError as exc:
            message = f"body is not JSON: {exc}"
        except RequestError as exc:
            message = f"not an AdmissionReview v1: {exc}"
        except Exception as exc:  # the decider failed: the API server's failurePolicy decides
            self._log_refusal(500, f"decision failed: {type(exc).__name__}: {exc}")
            return 500, f"decision failed: {type(exc).__name__}: {exc}\n".encode(), TEXT
        else:
            self.server.log(one_line(outcome.log_line()))
            return 200, orjson.dumps(outcome.response()), JSON
        self._log_refusal(400, message)
        return 400, message.encode() + b"\n", TEXT


def serve(address: tuple[str, int], context: ssl.SSLContext, judge: Judge, log: Log, limits: Limits | None = None) -> AdmissionServer:
    """A bound server; the caller runs ``serve_forever`` (a thread in tests), then ``shutdown``, ``drain``, ``server_close``."""
    return AdmissionServer(address, context, judge, log, limits or Limits())


def parse_listen(text: str) -> tuple[str, int]:
    """ADDR:PORT, [V6]:PORT or :PORT (all addresses) -> (host, port); ValueError naming the problem."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected ADDR:PORT, e.g. 0.0.0.0:8443")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


__all__ = ["AdmissionServer", "Limits", "Outcome", "parse_listen", "serve", "tls_context"]
