"""The receiver for kube-apiserver's audit webhook backend, and the input that reads its spool.

kube-apiserver POSTs ``audit.k8s.io/v1`` EventList bodies (JSON, Content-Length set) to the URL
of its webhook kubeconfig and retries on any non-2xx answer. So: 200 only once the body is in
the spool (fsynced), 429 + Retry-After when the spool is full, 400 with a reason for a body
that is not an EventList, 413 past the size limit, 401 without the bearer token. GET
``/metrics``, ``/healthz`` and ``/readyz`` are answered on the same port (no token: they carry no
event data). Requests are served by a bounded number of threads; each connection has a
socket timeout that bounds the TLS handshake, the headers and the body read.
"""

from __future__ import annotations

import hmac
import ipaddress
import queue
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import orjson

from ..model import Event, SourceRef
from ..sources import k8s_audit
from ..sources.base import SourceError
from .inputs import Batch
from .metrics import Metrics
from .spool import Frame, Position, Spool, SpoolFull

MAX_BODY = 32 << 20  # kube-apiserver's default --audit-webhook-batch-max-size of 400 events is a few MB
TIMEOUT = 10.0
DISCARD = 64 << 20  # refused bodies up to this size are read and dropped, so the answer arrives
WORKERS = 32
NAME = "audit-webhook"
TEXT = "text/plain; charset=utf-8"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def tls_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def check_body(body: bytes) -> str | None:
    """Why the body is not an audit EventList, or None."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return f"body is not JSON: {exc}"
    if not isinstance(obj, dict):
        return f"body is a JSON {type(obj).__name__}, not an EventList object"
    if obj.get("kind") != "EventList":
        return f"kind is {obj.get('kind')!r}, not 'EventList'"
    api = obj.get("apiVersion")
    if api is not None and not str(api).startswith("audit.k8s.io/"):
        return f"apiVersion is {api!r}, not audit.k8s.io/v1"
    items = obj.get("items")
    if not isinstance(items, list):
        return "EventList without an items list"
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return f"items[{i}] is not an object"
    return None


class Stats(Protocol):
    """What the receiver counts, and /metrics: Metrics in this process, or handoff.SharedStats in a receiver process."""

    def request(self, code: int) -> None: ...

    def rejected_batch(self) -> None: ...

    def tls_failure(self) -> None: ...

    def bad_body(self) -> None: ...

    def render(self) -> tuple[bytes, str]: ...


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        spool: Spool | None,
        metrics: Stats,
        tls: ssl.SSLContext | None = None,
        token: str | None = None,
        max_body: int = MAX_BODY,
        timeout: float = TIMEOUT,
        workers: int = WORKERS,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.spool = spool
        self.metrics = metrics
        self.tls = tls
        self.token = ("Bearer " + token).encode() if token else None
        self.max_body = max_body
        self.conn_timeout = timeout
        self.ready = ready
        self.draining = False
        self.refused_at: int | None = None  # spool size at the last 429; not ready until it shrinks
        self._slots = threading.BoundedSemaphore(workers)
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._idle = threading.Condition(self._busy_lock)
        self.address_family = bind_family(address[0])
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # bounded concurrency: past ``workers`` open connections the accept loop waits, and the
        # kernel's listen backlog holds the rest
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def enter(self) -> None:
        with self._busy_lock:
            self._busy += 1

    def leave(self) -> None:
        with self._busy_lock:
            self._busy -= 1
            self._idle.notify_all()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.conn_timeout)
        if self.tls is not None:
            try:  # the handshake runs here, in the connection's thread, under its timeout
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                self.metrics.tls_failure()
                request.close()
                return
        try:
            super().finish_request(request, client_address)
        finally:
            if self.tls is not None:
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-request: nothing to report, the next one is served

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no POST is in flight (for a drain after shutdown()); idle keep-alive connections do not count."""
        with self._busy_lock:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)


class Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"  # keep-alive: kube-apiserver reuses its connections
    server_version = "execguard"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log on stderr; /metrics counts requests by code

    def _answer(self, code: int, body: bytes = b"", ctype: str = TEXT, headers: dict[str, str] | None = None) -> None:
        if self.server.spool is not None:  # a --metrics port's own GETs are not webhook answers
            self.server.metrics.request(code)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if code >= 400 and code not in (429,):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body, ctype = self.server.metrics.render()
            except OSError as exc:  # the engine process did not answer in time
                self._answer(503, f"metrics unavailable: {exc}\n".encode())
                return
            self._answer(200, body, ctype)
        elif path == "/healthz":
            self._answer(200, b"ok\n")
        elif path == "/readyz":
            srv = self.server
            refusing = srv.spool is not None and srv.refused_at is not None and srv.spool.size >= srv.refused_at
            ok = srv.ready() and not srv.draining and not refusing
            self._answer(200 if ok else 503, b"ok\n" if ok else b"not ready\n")
        else:
            self._answer(404, b"not found: POST audit EventLists to any path; GET /metrics /healthz /readyz\n")

    def _discard(self, n: int) -> None:
        """Read and drop a body we refuse: closing with unread bytes would reset the connection, and the
        client would lose our answer. Past DISCARD bytes we close anyway (the read timeout bounds the time)."""
        if n > DISCARD:
            return
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 16))
            if not chunk:
                return
            n -= len(chunk)

    def do_POST(self) -> None:
        self.server.enter()
        try:
            self._post()
        finally:
            self.server.leave()

    def _post(self) -> None:
        srv = self.server
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self._answer(411, b"Content-Length required\n")
            return
        n = int(length)
        if srv.spool is None:  # a --metrics port: GETs only
            self._discard(n)
            self._answer(404, b"not found: this port serves GET /metrics /healthz /readyz only\n")
            return
        if srv.token is not None:
            given = self.headers.get("Authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, srv.token):
                self._discard(n)
                self._answer(401, b"missing or wrong bearer token\n", headers={"WWW-Authenticate": "Bearer"})
                return
        if srv.draining:
            self._discard(n)
            self._answer(503, b"shutting down\n", headers={"Retry-After": "5"})
            return
        if n > srv.max_body:
            self._discard(n)
            self._answer(413, f"body of {n} bytes is over the limit of {srv.max_body}\n".encode())
            return
        body = self.rfile.read(n)  # read even when full: the keep-alive connection stays usable after a 429
        if len(body) < n:
            self.close_connection = True
            return  # the client went away or timed out mid-body: nothing accepted
        if srv.spool.full(n):
            srv.metrics.rejected_batch()
            srv.refused_at = srv.spool.size
            self._answer(429, b"spool full, retry later\n", headers={"Retry-After": "1"})
            return
        reason = check_body(body)
        if reason is not None:
            srv.metrics.bad_body()
            self._answer(400, (reason + "\n").encode())
            return
        try:
            srv.spool.append(body)
        except SpoolFull:
            srv.metrics.rejected_batch()
            srv.refused_at = srv.spool.size
            self._answer(429, b"spool full, retry later\n", headers={"Retry-After": "1"})
            return
        except OSError as exc:  # a full disk: the apiserver keeps the batch and retries
            self._answer(503, f"spool write failed: {exc.strerror or exc}\n".encode(), headers={"Retry-After": "5"})
            return
        srv.refused_at = None
        self._answer(200, b"")


def serve(receiver: Receiver) -> threading.Thread:
    t = threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.2}, name="audit-webhook", daemon=True)
    t.start()
    return t


class SpoolSource(Protocol):
    """The consumer's side of a spool: Spool in one process, handoff.SpoolReader beside a receiver process."""

    def read(self, max_frames: int = 64, timeout: float | None = None) -> list[Frame]: ...

    def commit(self, end: Position, mark: dict[str, Any] | None = None) -> None: ...

    def rewind(self) -> None: ...


class SpoolInput:
    """The watch input that turns spooled EventLists into Events; acks commit the spool."""

    name = NAME

    def __init__(self, spool: SpoolSource, metrics: Metrics, frames: int = 8) -> None:
        self.spool = spool
        self.metrics = metrics
        self.frames = frames
        self.batches = 0
        self._acked = threading.Condition()
        self._pending = 0

    def run(self, out: queue.Queue[Batch], stop: threading.Event) -> None:
        self.spool.rewind()  # a restart of this input: anything read and not acked is read again
        while not stop.is_set():
            frames = self.spool.read(self.frames, timeout=0.2)
            if not frames:
                continue
            out.put(self.batch(frames))
            with self._acked:  # one batch in flight: the checkpoint order is the spool order, memory is bounded
                while not self._acked.wait_for(lambda: self._pending == 0 or stop.is_set(), 0.5):
                    pass

    def batch(self, frames: list[Frame]) -> Batch:
        events: list[Event] = []
        bad: list[str] = []
        for frame in frames:
            self.batches += 1
            where = f"webhook batch at spool {frame.end.segment}:{frame.end.offset}"
            try:
                items = orjson.loads(frame.payload).get("items") or []
            except (orjson.JSONDecodeError, AttributeError) as exc:  # checked on receipt; a bug if seen
                bad.append(f"{where}: {exc}")
                continue
            for i, item in enumerate(items):
                ref = SourceRef(k8s_audit.FORMAT, "audit-webhook", i + 1)
                try:
                    events.extend(k8s_audit.from_audit_event(item, ref))
                except SourceError as exc:
                    bad.append(f"{where} item {i + 1}: {exc}")
        end = frames[-1].end
        with self._acked:
            self._pending = 1

        def ack(mark: dict[str, Any]) -> None:
            self.spool.commit(end, mark)
            with self._acked:
                self._pending = 0
                self._acked.notify_all()

        return Batch(self.name, events, ack, bad, {"segment": end.segment, "offset": end.offset})


def listen_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: expected HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def bind_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
