"""A small HTTP/1.1 client for the Docker Engine API over a unix socket or TCP (TLS as `audit --docker-host` reads it).

Our own connection, not the docker SDK's: requests would let HTTP(S)_PROXY and REQUESTS_CA_BUNDLE reroute or
re-trust it, and the /events stream needs a read that can time out (to see a stop request) without losing framing.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import orjson

from ..audit.collect.docker import parse_host
from ..audit.gather.docker_live import ClientTLS, _context

TIMEOUT = 5.0
MAX_BODY = 8 << 20
MAX_LINE = 4 << 20


class ApiError(OSError):
    """The daemon answered with an error status, or the connection failed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Endpoint:
    """Where the daemon listens: unix://PATH, /PATH, tcp://HOST:PORT (TLS when ``tls`` is given)."""

    def __init__(self, url: str, tls: ClientTLS | None = None) -> None:
        h = parse_host(url, tls is not None)
        self.url = url
        self.scheme = h["scheme"]
        if self.scheme == "unix":
            self.path = url.split("://", 1)[-1] if "://" in url else url
        elif self.scheme != "tcp":
            raise ValueError(f"{url}: only unix:// and tcp:// Docker hosts can be watched")
        self.host, self.port = h["address"], h["port"]
        self.tls = tls
        self._ctx = _context(tls) if tls is not None else None

    def connect(self, timeout: float = TIMEOUT) -> socket.socket:
        if self.scheme == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(self.path)
            except OSError:
                s.close()
                raise
            return s
        raw = socket.create_connection((self.host, self.port), timeout=timeout)
        if self._ctx is None:
            return raw
        try:
            return self._ctx.wrap_socket(raw, server_hostname=self.host)
        except (OSError, ssl.SSLError):
            raw.close()
            raise


class Response:
    """Status, headers and a body framed by Content-Length, chunks, or the end of the connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        head = self._until(b"\r\n\r\n", 64 << 10)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ApiError(f"not an HTTP answer: {lines[0][:80]!r}")
        self.status = int(parts[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self.left = int(length) if length and length.isdigit() else None
        self.done = False
        self.chunk_left: int | None = None

    def _fill(self) -> None:
        data = self.sock.recv(65536)  # socket.timeout propagates: the caller decides whether to wait again
        if not data:
            raise ApiError("connection closed by the daemon")
        self.buf += data

    def _until(self, mark: bytes, limit: int) -> bytes:
        while True:
            at = self.buf.find(mark)
            if at >= 0:
                out = bytes(self.buf[:at])
                del self.buf[: at + len(mark)]
                return out
            if len(self.buf) > limit:
                raise ApiError("answer too long")
            self._fill()

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def chunks(self) -> Iterator[bytes]:
        """Body pieces as they arrive. A read timeout escapes between pieces with nothing lost: call again to resume."""
        while not self.done:
            if self.chunked:
                # only complete pieces are taken from buf, and the chunk being read is remembered here
                if self.chunk_left is None:
                    size_line = self._until(b"\r\n", 1024)
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.done = True
                        return
                    self.chunk_left = size + 2
                piece = self._take(self.chunk_left)[:-2]
                self.chunk_left = None
                yield piece
            elif self.left is not None:
                if not self.buf:
                    self._fill()
                n = min(self.left, len(self.buf))
                piece = bytes(self.buf[:n])
                del self.buf[:n]
                self.left -= n
                self.done = self.left <= 0
                yield piece
            else:
                try:
                    self._fill()
                except ApiError:
                    self.done = True
                    return
                piece, self.buf = bytes(self.buf), bytearray()
                yield piece

    def body(self, limit: int = MAX_BODY) -> bytes:
        if not self.chunked and self.left is not None:
            if self.left > limit:
                raise ApiError("answer too long")
            whole = self._take(self.left)
            self.left, self.done = 0, True
            return whole
        out = bytearray()
        for piece in self.chunks():
            out += piece
            if len(out) > limit:
                raise ApiError("answer too long")
        return bytes(out)


def request(ep: Endpoint, path: str, timeout: float = TIMEOUT) -> tuple[socket.socket, Response]:
    sock = ep.connect(timeout)
    try:
        host = "docker" if ep.scheme == "unix" else f"{ep.host}:{ep.port}"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: execguard-watch\r\nConnection: close\r\n\r\n".encode())
        return sock, Response(sock)
    except BaseException:
        sock.close()
        raise


def get(ep: Endpoint, path: str, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """GET path: the status and the whole body, the connection closed."""
    sock, resp = request(ep, path, timeout)
    try:
        return resp.status, resp.body()
    finally:
        sock.close()


def get_json(ep: Endpoint, path: str, timeout: float = TIMEOUT) -> Any:
    """GET path; None on 404 (an exec or container already gone); ApiError on another status."""
    status, body = get(ep, path, timeout)
    if status == 404:
        return None
    if status != 200:
        raise ApiError(f"GET {path.split('?')[0]} → {status} {body[:120].decode(errors='replace').strip()}", status)
    return orjson.loads(body)


def json_lines(resp: Response) -> Iterator[dict[str, Any] | None]:
    """Objects of a newline-delimited JSON stream; None on each read timeout so the caller can look at its stop flag."""
    pending = bytearray()
    pieces = resp.chunks()
    while True:
        try:
            piece = next(pieces)
        except StopIteration:
            return
        except TimeoutError:
            pieces = resp.chunks()  # framing state lives in resp: resume where the read stopped
            yield None
            continue
        pending += piece
        while (nl := pending.find(b"\n")) >= 0:
            line = bytes(pending[:nl])
            del pending[: nl + 1]
            if line.strip():
                obj = orjson.loads(line)
                if isinstance(obj, dict):
                    yield obj
        if len(pending) > MAX_LINE:
            raise ApiError("event longer than 4 MiB")
