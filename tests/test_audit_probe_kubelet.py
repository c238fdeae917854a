"""--probe against servers that answer /pods exactly as a kubelet does (no kubelet binary can run here).

The answers come from the kubelet's server (pkg/kubelet/server/server.go, InstallAuthFilter): a failed
authentication is 401 with the body "Unauthorized"; a request the authorizer refuses is 403 with
"Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)"; /pods itself is a v1 PodList
(kind, apiVersion, metadata, items). The read-only port (10255) serves the same PodList over plain HTTP.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from execguard.audit.engine import evaluate
from execguard.audit.gather.probe import probe
from execguard.testing.dockerd import DockerdUnavailable, make_test_certs

FORBIDDEN = b"Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)"


def pod_list(n: int) -> bytes:
    pod = {"metadata": {"name": "web", "namespace": "shop", "uid": "u"}, "spec": {"containers": [{"name": "app", "image": "nginx"}]},
           "status": {"phase": "Running"}}  # fmt: skip
    return json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [pod] * n}).encode()


Answer = tuple[int, str, bytes]
KUBELET: dict[str, Answer] = {
    "anonymous-off": (401, "text/plain; charset=utf-8", b"Unauthorized"),
    "webhook": (403, "text/plain; charset=utf-8", FORBIDDEN),
    "always-allow": (200, "application/json", pod_list(3)),
    "big": (200, "application/json", pod_list(20000)),  # ~3 MB: counted only up to the read limit
    "not-a-kubelet": (200, "text/html", b"<html>welcome</html>"),
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        files = make_test_certs(tmp_path_factory.mktemp("kubelet-certs"))
    except DockerdUnavailable as exc:
        pytest.skip(str(exc))
    return files.server_cert.parent


@pytest.fixture
def serve(certs: Path) -> Iterator[Callable[[Answer, bool], int]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer, tls: bool) -> int:
        code, ctype, body = answer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                assert self.path == "/pods"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certs / "server-cert.pem", certs / "server-key.pem")
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.mark.parametrize(
    ("name", "decision", "finding"),
    [
        ("anonymous-off", "rejected", None),
        ("webhook", "authenticated-but-denied", "EG-NET-003"),
        ("always-allow", "authorized", "EG-NET-002"),
        ("big", "authorized", "EG-NET-002"),
        ("not-a-kubelet", "other (200)", None),
    ],
)
def test_kubelet_port(serve: Callable[[Answer, bool], int], name: str, decision: str, finding: str | None) -> None:
    port = serve(KUBELET[name], True)
    [item] = probe(f"127.0.0.1:{port}/kubelet")
    assert item.facts["service"] == "kubelet" and item.facts["open"]
    assert item.facts["kubelet_anonymous"] == decision
    ids = [f.id for f in evaluate([item])]
    assert ids == ([finding] if finding else [])
    if name == "webhook":
        assert "user=system:anonymous" in item.facts["answer"]
    if name == "always-allow":
        assert "PodList of 3 pods" in item.facts["answer"]
    if name == "big":
        assert "more than 4 MB" in item.facts["answer"] or "20000 pods" in item.facts["answer"]


@pytest.mark.parametrize(("name", "readable"), [("always-allow", True), ("not-a-kubelet", False)])
def test_read_only_port(serve: Callable[[Answer, bool], int], name: str, readable: bool) -> None:
    port = serve(KUBELET[name], False)
    [item] = probe(f"127.0.0.1:{port}/kubelet-readonly")
    assert item.facts["kubelet_readonly"] is readable
    assert [f.id for f in evaluate([item])] == (["EG-NET-004"] if readable else [])


def test_closed_port_is_no_finding() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        [item] = probe(f"127.0.0.1:{port}/kubelet")
    assert not item.facts["open"] and evaluate([item]) == []
