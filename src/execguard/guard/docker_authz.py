"""Docker's authorization plugin protocol (moby pkg/authorization) on a unix socket, deciding with GuardRuntime.

dockerd POSTs JSON to /Plugin.Activate, /AuthZPlugin.AuthZReq (before the API call runs) and
/AuthZPlugin.AuthZRes (after, with the response). Request fields: User, UserAuthNMethod (dockerd
fills them from the TLS client certificate's CN), RequestMethod, RequestURI, RequestBody (base64;
dockerd sends it only for JSON bodies under 1 MiB), RequestHeaders, RequestPeerCertificates;
AuthZRes adds ResponseStatusCode, ResponseBody, ResponseHeaders. The answer is {Allow, Msg, Err};
dockerd shows Msg to the client as "authorization denied by plugin NAME: Msg".

Guarded calls: POST /containers/{id}/exec, POST /exec/{id}/start, POST /containers/create and
POST /containers/{id}/attach (any /vX.Y prefix). Everything else is allowed untouched and not recorded.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import socketserver
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .. import redact
from .decide import Request
from .runtime import GuardRuntime

PLUGIN_DIR = Path("/run/docker/plugins")
CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
MAX_REQUEST = 4 << 20  # dockerd forwards bodies up to 1 MiB, base64 makes that 1.4 MiB; headers and JSON on top
READ_TIMEOUT = 10.0  # seconds a connection may take to send one request
EXEC_MEMORY = 10_000  # exec IDs remembered between their create and their start
FAIL_MODES = ("closed", "open")
_VERSION = re.compile(r"v\d+(\.\d+)?")


class BadBody(ValueError):
    """A guarded call whose body cannot be read: denied when failing closed, allowed and recorded when open."""


def _uri(req: dict[str, Any]) -> str:
    # Go's encoding/json writes the field RequestURI under its tag, "RequestUri"; read either spelling
    return str(req.get("RequestUri") or req.get("RequestURI") or "")


def _segments(uri: str) -> tuple[list[str], dict[str, str]]:
    parts = urlsplit(uri)
    segs = [s for s in parts.path.split("/") if s]
    if segs and _VERSION.fullmatch(segs[0]):
        segs = segs[1:]
    return segs, dict(parse_qsl(parts.query, keep_blank_values=True))


def _body(req: dict[str, Any]) -> dict[str, Any]:
    raw = req.get("RequestBody")
    if not raw:
        raise BadBody("no request body (dockerd forwards JSON bodies under 1 MiB only)")
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
        obj = json.loads(data)
    except (binascii.Error, ValueError) as exc:
        raise BadBody(f"request body is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadBody("request body is not a JSON object")
    return obj


def _strings(value: Any, what: str) -> list[str]:
    """Cmd and Entrypoint: a list of strings, or one string (the API's StrSlice takes both)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadBody(f"{what} is neither a string nor a list of strings")


def _flag(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise BadBody(f"{what} is not true or false")


def _mounts(host: dict[str, Any]) -> list[str]:
    binds = _strings(host.get("Binds"), "HostConfig.Binds")
    mounts = host.get("Mounts") or []
    if not isinstance(mounts, list):
        raise BadBody("HostConfig.Mounts is not a list")
    for m in mounts:
        if not isinstance(m, dict):
            raise BadBody("HostConfig.Mounts has an item that is not an object")
        if m.get("Type", "bind") == "bind" and m.get("Source"):
            binds.append(f"{m['Source']}:{m.get('Target', '')}" + (":ro" if m.get("ReadOnly") else ""))
    return binds


def to_request(req: dict[str, Any]) -> Request | None:
    """The guard Request for an AuthZReq, or None for a call guard does not judge; BadBody when it cannot tell."""
    method = str(req.get("RequestMethod") or "").upper()
    uri = _uri(req)
    segs, query = _segments(uri)
    user = str(req.get("User") or "") or None
    shown = redact.text(uri)
    if method != "POST":
        return None
    if len(segs) == 3 and segs[0] == "containers" and segs[2] == "exec":
        body = _body(req)
        user_in = body.get("User")
        return Request(
            operation="exec",
            container=segs[1],
            argv=_strings(body.get("Cmd"), "Cmd"),
            privileged=_flag(body.get("Privileged"), "Privileged"),
            run_as_user=user_in if isinstance(user_in, str) else None,
            tty=_flag(body.get("Tty"), "Tty"),
            stdin=_flag(body.get("AttachStdin"), "AttachStdin"),
            platform="docker",
            user=user,
            uri=shown,
        )
    if segs == ["containers", "create"]:
        body = _body(req)
        host = body.get("HostConfig") or {}
        if not isinstance(host, dict):
            raise BadBody("HostConfig is not an object")
        image = body.get("Image")
        user_in = body.get("User")
        return Request(
            operation="create",
            container=query.get("name") or None,
            image=image if isinstance(image, str) else None,
            argv=_strings(body.get("Entrypoint"), "Entrypoint") + _strings(body.get("Cmd"), "Cmd"),
            privileged=_flag(host.get("Privileged"), "HostConfig.Privileged"),
            mounts=_mounts(host),
            host_pid=host.get("PidMode") == "host",
            run_as_user=user_in if isinstance(user_in, str) else None,
            tty=_flag(body.get("Tty"), "Tty"),
            stdin=_flag(body.get("OpenStdin"), "OpenStdin"),
            platform="docker",
            user=user,
            uri=shown,
        )
    if len(segs) == 3 and segs[0] == "containers" and segs[2] == "attach":
        stdin = query.get("stdin") in ("1", "true")
        return Request(operation="attach", container=segs[1], stdin=stdin, platform="docker", user=user, uri=shown)
    return None


class AuthzPlugin:
    """The protocol, apart from the HTTP server: one method per plugin endpoint, JSON in, JSON out."""

    def __init__(self, runtime: GuardRuntime, fail: str = "closed") -> None:
        if fail not in FAIL_MODES:
            raise ValueError(f"fail mode {fail!r}: choose closed or open")
        self.runtime = runtime
        self.fail = fail
        self._execs: OrderedDict[str, Request] = OrderedDict()  # exec ID -> its create, for the start
        self._lock = threading.Lock()

    def activate(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"Implements": ["authz"]}

    def authz_req(self, req: dict[str, Any]) -> dict[str, Any]:
        method, uri = str(req.get("RequestMethod") or ""), _uri(req)
        segs, _ = _segments(uri)
        if method.upper() == "POST" and len(segs) == 3 and segs[0] == "exec" and segs[2] == "start":
            return self._start(segs[1], req)
        try:
            request = to_request(req)
        except BadBody as exc:
            return self._bad(req, str(exc))
        if request is None:
            return {"Allow": True}
        decision = self.runtime.decide(request)
        return {"Allow": decision.allowed, "Msg": decision.message if not decision.allowed else ""}

    def _start(self, exec_id: str, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            request = self._execs.get(exec_id)
        if request is None:
            # created before this plugin ran (or its create answer never reached us): the create is where guard judges
            uri = redact.text(_uri(req))
            why = "exec start of an exec guard did not see created"
            self.runtime.recorder.record("unjudged", {"platform": "docker", "uri": uri, "user": req.get("User") or None, "why": why})
            return {"Allow": True}
        # judged again: an approval may have run out or the policy changed since the create
        request.uri = redact.text(_uri(req))
        decision = self.runtime.decide(request, {"stage": "exec_start", "exec_id": exec_id})
        return {"Allow": decision.allowed, "Msg": decision.message if not decision.allowed else ""}

    def _bad(self, req: dict[str, Any], why: str) -> dict[str, Any]:
        allow = self.fail == "open"
        uri = redact.text(_uri(req))
        self.runtime.recorder.record("unparseable", {"platform": "docker", "uri": uri, "user": req.get("User") or None,
                                                     "why": why, "allowed": allow, "fail": self.fail})  # fmt: skip
        return {"Allow": allow, "Msg": "" if allow else f"execguard denied {uri}: {why} (fail-closed)"}

    def authz_res(self, req: dict[str, Any]) -> dict[str, Any]:
        """After an exec create: remember its ID with the request, so the start is judged with the command."""
        segs, _ = _segments(_uri(req))
        if str(req.get("RequestMethod") or "").upper() == "POST" and len(segs) == 3 and segs[0] == "containers" and segs[2] == "exec":
            with contextlib.suppress(BadBody, ValueError, binascii.Error):
                request = to_request(req)
                body = json.loads(base64.b64decode(req.get("ResponseBody") or ""))
                exec_id = body.get("Id") if isinstance(body, dict) else None
                if request is not None and isinstance(exec_id, str):
                    with self._lock:
                        self._execs[exec_id] = request
                        while len(self._execs) > EXEC_MEMORY:
                            self._execs.popitem(last=False)
        return {"Allow": True}

    def handle(self, path: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        route = {"/Plugin.Activate": self.activate, "/AuthZPlugin.AuthZReq": self.authz_req, "/AuthZPlugin.AuthZRes": self.authz_res}
        fn = route.get(path)
        return fn(payload) if fn else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # dockerd's Go client keeps connections alive
    timeout = READ_TIMEOUT
    server: UnixHTTPServer

    def _send(self, code: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        with self.server.counting():
            if self.server.draining:  # stopping: no decision is made (or recorded) any more; dockerd refuses the call
                self.close_connection = True
                self._send(503, {"Allow": False, "Err": "execguard is stopping"})
                return
            self._post()

    def _post(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST:
            self.close_connection = True
            self._send(413, {"Allow": False, "Err": f"request larger than {MAX_REQUEST} bytes or without a length"})
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, {"Allow": False, "Err": "request is not JSON"})
            return
        if not isinstance(payload, dict):
            self._send(400, {"Allow": False, "Err": "request is not a JSON object"})
            return
        try:
            answer = self.server.plugin.handle(self.path, payload)
        except Exception as exc:  # one bad request must not take the plugin down; dockerd treats Err as a denial
            self.server.plugin.runtime.warn(f"{self.path}: internal error: {type(exc).__name__}: {exc}")
            self._send(500, {"Allow": False, "Err": f"execguard internal error: {type(exc).__name__}"})
            return
        if answer is None:
            self._send(404, {"Err": f"unknown endpoint {self.path}"})
        else:
            self._send(200, answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every decision is recorded by the runtime; access logs would only repeat it

    def address_string(self) -> str:
        return "unix"


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, plugin: AuthzPlugin) -> None:
        self.plugin = plugin
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if path.is_socket():
                path.unlink()  # a stale socket from a plugin that died; anything else we leave alone
        self._busy = 0  # requests being answered
        self.draining = False
        self._busy_lock = threading.Lock()
        super().__init__(str(path), _Handler)
        os.chmod(path, 0o600)  # dockerd runs as root; nobody else should talk to the plugin

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        with self._busy_lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._busy_lock:
                self._busy -= 1

    def drain(self, timeout: float = READ_TIMEOUT) -> bool:
        """After shutdown(): wait for the requests being answered (idle kept-alive connections end with the process)."""
        self.draining = True
        deadline = time.monotonic() + timeout
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._busy

    def handle_error(self, request: Any, client_address: Any) -> None:
        # dockerd closing or resetting a connection (it restarts, a call is cancelled): nothing to say; else one line
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            self.plugin.runtime.warn(f"docker-authz: connection failed: {type(exc).__name__}: {exc}")

    def server_close(self) -> None:
        super().server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def socket_for(name: str) -> Path:
    """Where dockerd looks for a plugin called NAME: /run/docker/plugins/NAME.sock."""
    return PLUGIN_DIR / f"{name}.sock"
